//! Builds every guest plugin the tests use for `wasm32-wasip2`, the way
//! wasmtime's test-programs do: a nested `cargo build` with its own target
//! directory (sharing the outer one would deadlock on cargo's lock), then one
//! `GUEST_<NAME>` environment variable per component for `src/lib.rs`.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Package names of the guests; each must have a constant in `src/lib.rs`.
const GUESTS: &[&str] = &["env-toggle", "hostile", "smoke-test", "sqlite-restore"];

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir.parent().expect("tests/ is inside the workspace").to_path_buf();
    let target_dir = root.join("target").join("guests");

    for dir in ["wit", "sdk", "plugins", "tests/plugins", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }

    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root).args(["build", "--release", "--target", "wasm32-wasip2"]);
    for guest in GUESTS {
        cmd.args(["-p", guest]);
    }
    cmd.env("CARGO_TARGET_DIR", &target_dir);
    // Flags meant for the host build must not leak into the guest build.
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_CFG_")
            || key.starts_with("CARGO_FEATURE_")
            || matches!(
                key.as_ref(),
                "CARGO_ENCODED_RUSTFLAGS" | "RUSTFLAGS" | "RUSTC_WORKSPACE_WRAPPER" | "CARGO_BUILD_TARGET"
            )
        {
            cmd.env_remove(key.as_ref());
        }
    }
    let status = cmd.status().expect("failed to run cargo for the guest plugins");
    if !status.success() {
        panic!(
            "building the guest plugins failed ({status}); is the wasm target installed? \
             run `rustup target add wasm32-wasip2` (tests/run.sh does it for you)"
        );
    }

    for guest in GUESTS {
        let file = guest.replace('-', "_");
        let path = target_dir.join("wasm32-wasip2/release").join(format!("{file}.wasm"));
        assert!(Path::new(&path).exists(), "expected `{}` after the guest build", path.display());
        println!("cargo:rustc-env=GUEST_{}={}", file.to_uppercase(), path.display());
    }
}
