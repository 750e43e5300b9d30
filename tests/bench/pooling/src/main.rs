//! Does wasmtime's pooling instance allocator make backout's calls start
//! faster? backout instantiates a plugin afresh for every call (`describe`,
//! `plan`, `run`, `verify`, `undo`: one call, one store), so instantiation
//! is paid several times per step. This measures exactly that cost for each
//! component given on the command line, with the engine configured as
//! backout configures it (component model, epoch interruption), under the
//! default on-demand allocator and under the pooling allocator sized for
//! one plugin at a time with backout's default 128 MiB memory limit.
//!
//! Only instantiation is measured: imports are defined as traps (nothing
//! calls them while instantiating), so no WASI is needed here and the
//! figures are the allocator's and wasmtime's own, not a plugin's.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};

/// backout's default per-step memory limit.
const MEMORY_LIMIT: usize = 128 << 20;
const RUNS: usize = 200;

fn engine(pooling: bool) -> Engine {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    if pooling {
        let mut pool = PoolingAllocationConfig::new();
        // One call at a time per process, with room for the core instances
        // and memories a componentize-py or componentize-js plugin has.
        pool.total_component_instances(4);
        pool.total_core_instances(64);
        pool.total_memories(16);
        pool.total_tables(64);
        pool.max_memory_size(MEMORY_LIMIT);
        pool.max_core_instances_per_component(64);
        pool.max_memories_per_component(16);
        pool.max_tables_per_component(64);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    Engine::new(&config).expect("engine")
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Median time to make a store and instantiate `bytes`, `RUNS` times.
fn instantiate(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Duration> {
    let component = Component::new(engine, bytes)?;
    let mut linker: Linker<()> = Linker::new(engine);
    linker.define_unknown_imports_as_traps(&component)?;
    let pre = linker.instantiate_pre(&component)?;
    let mut samples = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let start = Instant::now();
        let mut store = Store::new(engine, ());
        store.set_epoch_deadline(u64::MAX / 2);
        let instance = pre.instantiate(&mut store)?;
        std::hint::black_box(&instance);
        drop(store);
        samples.push(start.elapsed());
    }
    Ok(median(samples))
}

fn main() {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        eprintln!("usage: pooling-bench PLUGIN.wasm...");
        std::process::exit(2);
    }
    let (on_demand, pooling) = (engine(false), engine(true));
    println!("{:<24} {:>10} {:>12} {:>12} {:>8}", "component", "size", "on-demand", "pooling", "ratio");
    for path in paths {
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let name = std::path::Path::new(&path).file_stem().unwrap().to_string_lossy().into_owned();
        let (a, b) = match (instantiate(&on_demand, &bytes), instantiate(&pooling, &bytes)) {
            (Ok(a), Ok(b)) => (a, b),
            // The C SDK's preview1 adapter runs wasi-libc's constructors,
            // which call WASI, while instantiating: not measurable without WASI.
            (Err(e), _) | (_, Err(e)) => {
                let why = format!("{e:#}");
                let why = if why.contains("unknown import") {
                    "it calls WASI while it is instantiated"
                } else {
                    why.lines().last().unwrap_or_default()
                };
                println!("{name:<24} {:>8.1}MB  not measured: {why}", bytes.len() as f64 / 1e6);
                continue;
            }
        };
        println!(
            "{name:<24} {:>8.1}MB {:>12.1?} {:>12.1?} {:>7.2}x",
            bytes.len() as f64 / 1e6,
            a,
            b,
            a.as_secs_f64() / b.as_secs_f64()
        );
    }
}
