//! `cargo bench -p backout --bench sqlite_restore`: restoring a SQLite
//! database with the sqlite-restore plugin (full integrity check, safety
//! copy, fsyncs) against doing it natively by hand on the same machine:
//! `cp backup.db live.db && sqlite3 backup.db 'PRAGMA integrity_check' && sync`.
//!
//! Sizes come from `BENCH_SQLITE_MIB` (default `64,1024`); each figure is the
//! median of `BENCH_RUNS` runs (default 3). Needs the `sqlite3` command-line
//! shell. Results are recorded in the README's "Benchmarks" section.
#![allow(clippy::print_stdout)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use backout::runtime::CallContext;
use backout::runtime::host_api::quiet;
use backout_registry::Digest;
use rusqlite::Connection;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// A database of about `mib` MiB: a table with an index, ~1 KiB rows.
fn make_db(path: &Path, mib: u64) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;
         CREATE TABLE agents(id INTEGER PRIMARY KEY, name TEXT NOT NULL, note BLOB);
         CREATE INDEX agents_name ON agents(name);",
    )
    .unwrap();
    let rows = mib * 1024 * 1024 / 1100;
    conn.execute_batch("BEGIN").unwrap();
    {
        let mut insert = conn.prepare("INSERT INTO agents(name, note) VALUES (?1, randomblob(1000))").unwrap();
        for i in 0..rows {
            insert.execute([format!("agent-{:010}", i.wrapping_mul(2_654_435_761) % 1_000_000_007)]).unwrap();
        }
    }
    conn.execute_batch("COMMIT").unwrap();
}

fn sh(script: &str) {
    let status = Command::new("sh").args(["-c", script]).status().unwrap();
    assert!(status.success(), "`{script}` failed");
}

fn main() {
    let sizes: Vec<u64> = std::env::var("BENCH_SQLITE_MIB")
        .unwrap_or_else(|_| "64,1024".into())
        .split(',')
        .map(|s| s.trim().parse().expect("BENCH_SQLITE_MIB: sizes in MiB, comma-separated"))
        .collect();
    let runs: usize = std::env::var("BENCH_RUNS").ok().map_or(3, |s| s.parse().unwrap());
    if Command::new("sqlite3").arg("-version").output().is_err() {
        println!("sqlite3 (the command-line shell) is not installed: `apt-get install sqlite3`");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let runtime = backout::runtime::Runtime::new().unwrap();
    let plugin = backout_tests::SQLITE_RESTORE;
    let digest = Digest::of(&std::fs::read(plugin).unwrap());

    println!("size      native cp+check+sync   backout run   ratio   backout run+verify   ratio");
    for mib in sizes {
        let dir = tempfile::tempdir_in(std::env::var("BENCH_DIR").unwrap_or_else(|_| "/var/tmp".into())).unwrap();
        let (data, backups) = (dir.path().join("data"), dir.path().join("backups"));
        std::fs::create_dir_all(&data).unwrap();
        std::fs::create_dir_all(&backups).unwrap();
        let backup = backups.join("app.db");
        let live = data.join("app.db");
        make_db(&backup, mib);
        make_db(&data.join("original.db"), 1);
        let (b, l) = (backup.display(), live.display());

        // Native: what an operator types.
        let native = median(
            (0..runs)
                .map(|_| {
                    sh(&format!("cp {}/original.db {l} && sync", data.display()));
                    let start = Instant::now();
                    sh(&format!("cp {b} {l} && sqlite3 {b} 'PRAGMA integrity_check' >/dev/null && sync"));
                    start.elapsed()
                })
                .collect(),
        );

        // backout: the plugin's `run` (stage, hash, integrity_check, safety
        // copy, swap, fsyncs), then `run` + read-only `verify` as `backout run` does.
        let source = backout::diagnostic::SourceFile::new(
            "bench.toml",
            format!(
                "version = 1\nname = \"bench\"\n[[step]]\nid = \"restore\"\nuses = \"{plugin}\"\nsha256 = \"{digest}\"\n\
                 timeout = \"30m\"\nwith = {{ db = \"/data/app.db\", backup = \"/backups/app.db\" }}\n\
                 [step.grants]\ndirs = [{{ host = \"{}\", guest = \"/data\", mode = \"rw\" }}, \
                 {{ host = \"{}\", guest = \"/backups\", mode = \"ro\" }}]\n",
                data.display(),
                backups.display()
            ),
        );
        let parsed = backout::runbook::parse(source).unwrap();
        let options = backout::resolve::Options::new(dir.path().join("no-registry"));
        let plan = rt.block_on(backout::resolve::resolve(&parsed, &runtime, &options)).unwrap();
        let step = &plan.steps[0];
        let config = step.config.render(&plan.vars, &Default::default()).unwrap();
        let ctx = CallContext::new("restore", &step.grants, step.limits, quiet());
        let reset = || {
            sh(&format!("rm -f {}/app.db.backout-* && cp {}/original.db {l} && sync", data.display(), data.display()))
        };
        let run = median(
            (0..runs)
                .map(|_| {
                    reset();
                    let start = Instant::now();
                    rt.block_on(step.plugin.run(&ctx, &config)).result.unwrap();
                    start.elapsed()
                })
                .collect(),
        );
        let run_verify = median(
            (0..runs)
                .map(|_| {
                    reset();
                    let start = Instant::now();
                    let report = rt.block_on(backout::execute::execute(&plan, quiet(), None));
                    assert!(report.succeeded());
                    start.elapsed()
                })
                .collect(),
        );
        let ratio = |t: Duration| t.as_secs_f64() / native.as_secs_f64();
        println!(
            "{mib:>5} MiB {native:>18.2?} {run:>15.2?} {:>6.2}x {run_verify:>18.2?} {:>7.2}x",
            ratio(run),
            ratio(run_verify)
        );
    }
}
