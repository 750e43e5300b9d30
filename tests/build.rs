//! Builds every guest plugin the tests use, then sets one `GUEST_<NAME>`
//! environment variable per component for `src/lib.rs`.
//!
//! - Rust guests: a nested `cargo build` for `wasm32-wasip2`, the way
//!   wasmtime's test-programs do, with its own target directory (sharing the
//!   outer one would deadlock on cargo's lock).
//! - Guests in other languages: every `plugins/<name>/build.sh` and
//!   `sdk/<lang>/examples/<name>/build.sh` is run as `build.sh OUT.wasm`
//!   with the repository as working directory; the toolchains come from
//!   `sdk/<lang>/setup.sh` (run by `tests/setup.sh`).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Package names of the guests; each must have a constant in `src/lib.rs`.
const GUESTS: &[&str] = &[
    "env-toggle",
    "file-restore",
    "hostile",
    "qdrant-snapshot",
    "release-switch",
    "service-control",
    "smoke-test",
    "sqlite-restore",
];

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

    let foreign_dir = target_dir.join("foreign");
    std::fs::create_dir_all(&foreign_dir).expect("create target/guests/foreign");
    for script in foreign_build_scripts(&root) {
        let dir = script.parent().expect("a build script is in a directory");
        let name = dir.file_name().expect("the directory has a name").to_string_lossy().into_owned();
        let out = foreign_dir.join(format!("{}.wasm", name.replace('-', "_")));
        let status = Command::new("bash")
            .arg(&script)
            .arg(&out)
            .current_dir(&root)
            .status()
            .unwrap_or_else(|e| panic!("failed to run `{}`: {e}", script.display()));
        if !status.success() || !out.exists() {
            panic!(
                "`{} {}` failed ({status}); are the toolchains installed? run tests/setup.sh",
                script.display(),
                out.display()
            );
        }
        println!("cargo:rustc-env=GUEST_{}={}", name.replace('-', "_").to_uppercase(), out.display());
    }
}

/// `plugins/*/build.sh` and `sdk/*/examples/*/build.sh`, sorted.
fn foreign_build_scripts(root: &Path) -> Vec<PathBuf> {
    let mut scripts = Vec::new();
    let subdirs = |dir: PathBuf| -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect())
            .unwrap_or_default()
    };
    for plugin in subdirs(root.join("plugins")) {
        scripts.push(plugin.join("build.sh"));
    }
    for sdk in subdirs(root.join("sdk")) {
        for example in subdirs(sdk.join("examples")) {
            scripts.push(example.join("build.sh"));
        }
    }
    scripts.retain(|s| s.exists());
    scripts.sort();
    scripts
}
