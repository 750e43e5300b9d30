//! `cargo bench -p backout-registry`: `Registry::verify` throughput against
//! `openssl dgst -sha256` on the same blobs (openssl uses the CPU's SHA
//! extensions). A plain bench binary; results are in the README.
#![allow(clippy::print_stdout)]

use std::process::Command;
use std::time::{Duration, Instant};

use backout_registry::Registry;

const BLOBS: usize = 8;
const BLOB_SIZE: usize = 32 << 20;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("registry");
    let mut registry = Registry::open_or_init(&root).unwrap();
    for i in 0..BLOBS {
        // Distinct contents per blob; not a valid component, which `verify` does not care about.
        let bytes: Vec<u8> = (0..BLOB_SIZE).map(|j| (j as u8).wrapping_mul(31).wrapping_add(i as u8)).collect();
        registry.add(&format!("blob-{i}"), "1.0.0", "backout:step/plugin@0.1.0", &bytes).unwrap();
    }
    let total_mib = (BLOBS * BLOB_SIZE) as f64 / (1 << 20) as f64;

    let ours = median(
        (0..5)
            .map(|_| {
                let start = Instant::now();
                assert!(registry.verify().unwrap().is_clean());
                start.elapsed()
            })
            .collect(),
    );
    println!("registry verify, {BLOBS} x 32 MiB       {ours:>10.1?}  ({:.0} MiB/s)", total_mib / ours.as_secs_f64());

    let blobs: Vec<_> = std::fs::read_dir(root.join("blobs/sha256")).unwrap().map(|e| e.unwrap().path()).collect();
    let openssl = (0..5)
        .map(|_| {
            let start = Instant::now();
            let status = Command::new("openssl").arg("dgst").arg("-sha256").args(&blobs).output();
            status.ok().filter(|o| o.status.success()).map(|_| start.elapsed())
        })
        .collect::<Option<Vec<_>>>();
    match openssl {
        Some(samples) => {
            let theirs = median(samples);
            println!(
                "openssl dgst -sha256, same blobs       {theirs:>10.1?}  ({:.0} MiB/s)",
                total_mib / theirs.as_secs_f64()
            );
            println!("ratio (openssl time / ours)           {:>10.2}x", theirs.as_secs_f64() / ours.as_secs_f64());
        }
        None => println!("openssl not available: no comparison"),
    }
}
