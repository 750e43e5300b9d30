//! `cargo bench -p backout`: what backout's own machinery costs, measured.
//!
//! A plain bench binary (no Criterion: fewer dependencies to build on a
//! 2-core machine). Each figure is the median of several runs; results are
//! recorded in the README's "Benchmarks" section.
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

fn measure<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    median(
        (0..runs)
            .map(|_| {
                let start = Instant::now();
                std::hint::black_box(f());
                start.elapsed()
            })
            .collect(),
    )
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();

    // 1. Hashing: every plugin's bytes are hashed before they are compiled.
    let buffer = vec![0xa5u8; 256 << 20];
    let t = measure(5, || Digest::of(&buffer));
    println!("sha256 of 256 MiB                     {:>10.1?}  ({:.0} MiB/s)", t, 256.0 / t.as_secs_f64());

    // 2. Cold start: compile a component (no cache yet), per plugin.
    let runtime = Runtime::new().unwrap();
    for (name, path) in [("env-toggle", backout_tests::ENV_TOGGLE), ("hostile", backout_tests::HOSTILE)] {
        let bytes = std::fs::read(path).unwrap();
        let t = measure(5, || runtime.load(&bytes).unwrap());
        println!("compile {name:<12} ({:>4} KiB)        {:>10.1?}", bytes.len() / 1024, t);
    }

    // 3. Per-call overhead: fresh store + instance + `describe`.
    let plugin = runtime.load(&std::fs::read(backout_tests::ENV_TOGGLE).unwrap()).unwrap();
    let grants = Grants::default();
    let ctx = CallContext::new("bench", &grants, Limits::default(), quiet());
    let t = measure(200, || rt.block_on(plugin.describe(&ctx)).result.unwrap());
    println!("instantiate + describe                {t:>10.1?}");

    // 4. A real plan: env-toggle reads and edits a 1,000-line .env, read-only.
    let dir = tempfile::tempdir().unwrap();
    let mut env = String::new();
    for i in 0..1000 {
        env.push_str(&format!("# setting {i}\nKEY_{i}=value-{i}\n"));
    }
    std::fs::write(dir.path().join(".env"), &env).unwrap();
    let parsed = backout::runbook::parse(backout::diagnostic::SourceFile::new(
        "bench.toml",
        format!(
            "version = 1\nname = \"bench\"\n[[step]]\nid = \"t\"\nuses = \"{}\"\nsha256 = \"{}\"\n\
             with = {{ file = \"/app/.env\", set = {{ KEY_500 = \"changed\" }} }}\n\
             [step.grants]\ndirs = [{{ host = \"{}\", guest = \"/app\", mode = \"rw\" }}]\n",
            backout_tests::ENV_TOGGLE,
            Digest::of(&std::fs::read(backout_tests::ENV_TOGGLE).unwrap()),
            dir.path().display()
        ),
    ))
    .unwrap();
    let options = backout::resolve::Options::new(dir.path().join("no-registry"));
    let t = measure(10, || rt.block_on(backout::resolve::resolve(&parsed, &runtime, &options)).unwrap());
    println!("resolve a 1-step runbook (hash, compile, describe, plan)  {t:>10.1?}");
    let plan = rt.block_on(backout::resolve::resolve(&parsed, &runtime, &options)).unwrap();
    let step = &plan.steps[0];
    let config = step.config.render(&plan.vars, &Default::default()).unwrap();
    let ctx = CallContext::new("t", &step.grants, step.limits, quiet());
    let t = measure(50, || rt.block_on(step.plugin.plan(&ctx, &config)).result.unwrap());
    println!("env-toggle plan, 2,000-line .env      {t:>10.1?}");
}
