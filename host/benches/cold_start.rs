//! `cargo bench -p backout --bench cold_start`: what a plugin costs before
//! its first useful call, per language: read the file, sha256 it (the pin
//! check), compile it (Cranelift; no compile cache yet), instantiate it in a
//! fresh store and call `describe`. Every `backout` command pays this once
//! per plugin it loads. Results are recorded in the README ("Benchmarks").
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use backout::capability::Grants;
use backout::runtime::host_api::quiet;
use backout::runtime::limits::Limits;
use backout::runtime::{CallContext, Runtime};
use backout_registry::Digest;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let runtime = Runtime::new().unwrap();
    let grants = Grants::default();
    let ctx = CallContext::new("bench", &grants, Limits::default(), quiet());
    let plugins = [
        ("env-toggle", "Rust", backout_tests::ENV_TOGGLE),
        ("smoke-test", "Rust", backout_tests::SMOKE_TEST),
        ("sqlite-restore", "Rust + C", backout_tests::SQLITE_RESTORE),
        ("qdrant-snapshot", "Rust", backout_tests::QDRANT_SNAPSHOT),
        ("maintenance-flag", "C", backout_tests::MAINTENANCE_FLAG),
        ("webhook-notify", "Python", backout_tests::WEBHOOK_NOTIFY),
        ("json-config", "JavaScript", backout_tests::JSON_CONFIG),
    ];
    println!(
        "{:<17} {:<11} {:>9} {:>9} {:>10} {:>12} {:>10}",
        "plugin", "language", "size", "sha256", "compile", "inst+describe", "total"
    );
    for (name, language, path) in plugins {
        let runs = 3;
        let (mut hash, mut compile, mut call, mut total) = (vec![], vec![], vec![], vec![]);
        let mut size = 0;
        for _ in 0..runs {
            let start = Instant::now();
            let bytes = std::fs::read(path).unwrap();
            size = bytes.len();
            let t = Instant::now();
            std::hint::black_box(Digest::of(&bytes));
            hash.push(t.elapsed());
            let t = Instant::now();
            let plugin = runtime.load(&bytes).unwrap();
            compile.push(t.elapsed());
            let t = Instant::now();
            rt.block_on(plugin.describe(&ctx)).result.unwrap();
            call.push(t.elapsed());
            total.push(start.elapsed());
        }
        println!(
            "{name:<17} {language:<11} {:>7.1}MB {:>9.1?} {:>10.1?} {:>12.1?} {:>10.1?}",
            size as f64 / 1e6,
            median(hash),
            median(compile),
            median(call),
            median(total)
        );
    }
}
