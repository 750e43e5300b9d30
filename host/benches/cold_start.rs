//! `cargo bench -p backout --bench cold_start`: what a plugin costs before
//! its first useful call, per language, cold and warm. Cold: read the file,
//! sha256 it (the pin check), compile it (Cranelift), instantiate it in a
//! fresh store and call `describe`. Warm: the same with the compile replaced
//! by a compile cache hit (read the artifact, check its sha256 and owner,
//! deserialize) and `describe` answered from the answer kept beside the
//! artifact (no instance). Every `backout` command pays one of the two once
//! per plugin it loads. Results are recorded in the README ("Benchmarks").
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use backout::capability::Grants;
use backout::runtime::cache::{CacheOutcome, CompileCache};
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
    // A warm cache in a temp directory; every load through it must be a hit
    // (the bench stops otherwise: the figures would not be what they say).
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = CompileCache::new(cache_dir.path().join("compiled"));
    let cached = Runtime::new().unwrap().with_cache(
        cache.clone(),
        Arc::new(|digest, outcome| {
            assert!(matches!(outcome, CacheOutcome::Hit { .. }), "{digest}: not a cache hit: {outcome:?}")
        }),
    );
    let grants = Grants::default();
    let ctx = CallContext::new("bench", &grants, Limits::default(), quiet());
    let plugins = [
        ("env-toggle", "Rust", backout_tests::ENV_TOGGLE),
        ("smoke-test", "Rust", backout_tests::SMOKE_TEST),
        ("sqlite-restore", "Rust + C", backout_tests::SQLITE_RESTORE),
        ("qdrant-snapshot", "Rust", backout_tests::QDRANT_SNAPSHOT),
        ("file-restore", "Rust", backout_tests::FILE_RESTORE),
        ("release-switch", "Rust", backout_tests::RELEASE_SWITCH),
        ("service-control", "Rust", backout_tests::SERVICE_CONTROL),
        ("maintenance-flag", "C", backout_tests::MAINTENANCE_FLAG),
        ("webhook-notify", "Python", backout_tests::WEBHOOK_NOTIFY),
        ("json-config", "JavaScript", backout_tests::JSON_CONFIG),
    ];
    println!(
        "{:<17} {:<11} {:>8} {:>9} {:>9} {:>10} {:>10} {:>13} {:>11} {:>10} {:>10} {:>8}",
        "plugin",
        "language",
        "size",
        "artifact",
        "sha256",
        "compile",
        "cache hit",
        "inst+describe",
        "kept answer",
        "cold",
        "warm",
        "cold/warm"
    );
    for (name, language, original) in plugins {
        // A private copy: a guest rebuilt meanwhile (another build sharing
        // the target directory) must not turn the warm loads into misses.
        let path = cache_dir.path().join(format!("{name}.wasm"));
        std::fs::copy(original, &path).unwrap();
        let runs = 3;
        let (mut hash, mut compile, mut hit, mut call, mut kept, mut cold, mut warm) =
            (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
        let bytes = std::fs::read(&path).unwrap();
        let digest = Digest::of(&bytes);
        // Fill the cache (a miss that stores), and keep `describe`'s answer
        // there, outside the measurements.
        let (_, outcome) = cache.load_or_compile(runtime.engine(), &digest, &bytes).unwrap();
        assert!(matches!(outcome, CacheOutcome::Miss { stored: Ok(_) }), "{outcome:?}");
        let plugin = cached.load_verified(&digest, &bytes).unwrap();
        rt.block_on(plugin.describe(&ctx)).result.unwrap();
        assert!(cache.cached_info(runtime.engine(), &digest).is_some(), "{name}: describe's answer was not kept");
        let artifact = std::fs::metadata(cache.artifact_path(runtime.engine(), &digest)).unwrap().len();
        for _ in 0..runs {
            // Cold: what every command paid before the cache.
            let start = Instant::now();
            let bytes = std::fs::read(&path).unwrap();
            let t = Instant::now();
            std::hint::black_box(Digest::of(&bytes));
            hash.push(t.elapsed());
            let t = Instant::now();
            let plugin = runtime.load(&bytes).unwrap();
            compile.push(t.elapsed());
            let t = Instant::now();
            rt.block_on(plugin.describe(&ctx)).result.unwrap();
            call.push(t.elapsed());
            cold.push(start.elapsed());

            // Warm: the same bytes read and hashed, the compile a cache hit.
            let start = Instant::now();
            let bytes = std::fs::read(&path).unwrap();
            let digest = Digest::of(&bytes);
            let t = Instant::now();
            let plugin = cached.load_verified(&digest, &bytes).unwrap();
            hit.push(t.elapsed());
            let t = Instant::now();
            rt.block_on(plugin.describe(&ctx)).result.unwrap();
            kept.push(t.elapsed());
            warm.push(start.elapsed());
        }
        let (cold, warm) = (median(cold), median(warm));
        println!(
            "{name:<17} {language:<11} {:>6.1}MB {:>7.1}MB {:>9.1?} {:>10.1?} {:>10.1?} {:>13.1?} {:>11.1?} {:>10.1?} {:>10.1?} {:>7.0}x",
            bytes.len() as f64 / 1e6,
            artifact as f64 / 1e6,
            median(hash),
            median(compile),
            median(hit),
            median(call),
            median(kept),
            cold,
            warm,
            cold.as_secs_f64() / warm.as_secs_f64()
        );
    }
}
