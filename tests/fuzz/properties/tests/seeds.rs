//! Writes the committed seeds of the registry and lockfile targets with the
//! code that writes those files for real, so a seed is always something
//! backout itself produces. Run by hand after a format changes:
//!
//! ```text
//! cargo test -p backout-fuzz-properties --test seeds -- --ignored
//! ```
//!
//! (Keys are generated afresh, so signatures differ on every run.) The
//! runbook, template and dotenv seeds are written by hand.

use std::fs;
use std::path::{Path, PathBuf};

use backout_registry::{Digest, Registry, SigningKey};
use backout_runbook::lockfile::{LockedStep, Lockfile};

const WORLD: &str = "backout:step/plugin@0.1.0";

fn seeds(target: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../seeds").join(target);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// A registry with two plugins (one in two versions), signed when asked.
fn registry(root: &Path, key: Option<&SigningKey>) -> Registry {
    let mut registry = Registry::open_or_init(root).unwrap();
    registry.add("env-toggle", "0.1.0", WORLD, b"\0asm env-toggle 0.1.0").unwrap();
    registry.add("env-toggle", "0.2.0-rc.1+build.5", WORLD, b"\0asm env-toggle 0.2.0").unwrap();
    registry.add("smoke-test", "1.0.0", "backout:step/plugin-wasi@0.1.0", b"\0asm smoke-test").unwrap();
    if let Some(key) = key {
        let expires = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
        registry.sign(key, Some(expires)).unwrap();
    }
    registry
}

#[test]
#[ignore = "writes tests/fuzz/seeds; run by hand"]
fn write_seeds() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate().unwrap();

    let unsigned = registry(&dir.path().join("unsigned"), None);
    let signed = registry(&dir.path().join("signed"), Some(&key));
    fs::write(seeds("index").join("three-entries.toml"), unsigned.index_bytes()).unwrap();
    fs::write(seeds("index").join("signed-with-expiry.toml"), signed.index_bytes()).unwrap();
    fs::write(seeds("index").join("empty.toml"), "format = 1\nserial = 1\n").unwrap();

    unsigned.export(&seeds("bundle_tar").join("unsigned.tar")).unwrap();
    signed.export(&seeds("bundle_tar").join("signed.tar")).unwrap();
    Registry::open_or_init(&dir.path().join("empty")).unwrap().export(&seeds("bundle_tar").join("empty.tar")).unwrap();

    let other = SigningKey::generate().unwrap().public();
    let acme = key.public();
    let trust = format!(
        "format = 1\n\n[[key]]\nname = \"acme\"\npublic = \"{acme}\"\n\n\
         [[key]]\nname = \"ops-2026\"\npublic = \"{other}\"\n"
    );
    fs::write(seeds("trust").join("two-keys.toml"), trust).unwrap();
    fs::write(seeds("trust").join("no-keys.toml"), "format = 1\n").unwrap();

    let lock = Lockfile {
        version: 1,
        steps: vec![
            LockedStep {
                id: "disable-insights".into(),
                uses: "env-toggle@^0.1".into(),
                name: Some("env-toggle".into()),
                version: Some("0.1.0".into()),
                digest: Digest::of(b"\0asm env-toggle 0.1.0"),
            },
            LockedStep {
                id: "local-plugin".into(),
                uses: "./plugins/check.wasm".into(),
                name: None,
                version: None,
                digest: Digest::of(b"\0asm check"),
            },
        ],
    };
    let path = seeds("lockfile").join("two-steps.toml.lock");
    fs::write(&path, lock.render(&path).unwrap()).unwrap();
}
