//! Shared pieces of backout's end-to-end tests (`tests/e2e/`): the guest
//! components built from source by `build.rs`, and helpers that drive the real
//! `backout` binary against temp directories.
#![forbid(unsafe_code)]

pub mod browser;
pub mod cli;
pub mod events;
pub mod http_server;
pub mod qdrant_double;
pub mod service;
pub mod terminal;
pub mod tls;

/// The env-toggle plugin, built from `plugins/env-toggle`.
pub const ENV_TOGGLE: &str = env!("GUEST_ENV_TOGGLE");
/// The file-restore plugin, built from `plugins/file-restore`.
pub const FILE_RESTORE: &str = env!("GUEST_FILE_RESTORE");
/// The test-only plugin that attacks its sandbox, built from `tests/plugins/hostile`.
pub const HOSTILE: &str = env!("GUEST_HOSTILE");
/// The json-config plugin, written in JavaScript: built by `plugins/json-config/build.sh`
/// (componentize-js from `sdk/js/setup.sh`).
pub const JSON_CONFIG: &str = env!("GUEST_JSON_CONFIG");
/// The maintenance-flag example plugin, written in C: built by
/// `sdk/c/examples/maintenance-flag/build.sh` (toolchain from `sdk/c/setup.sh`).
pub const MAINTENANCE_FLAG: &str = env!("GUEST_MAINTENANCE_FLAG");
/// The qdrant-snapshot plugin, built from `plugins/qdrant-snapshot`.
pub const QDRANT_SNAPSHOT: &str = env!("GUEST_QDRANT_SNAPSHOT");
/// The release-switch plugin, built from `plugins/release-switch`.
pub const RELEASE_SWITCH: &str = env!("GUEST_RELEASE_SWITCH");
/// The service-control plugin, built from `plugins/service-control`.
pub const SERVICE_CONTROL: &str = env!("GUEST_SERVICE_CONTROL");
/// The smoke-test plugin, built from `plugins/smoke-test`.
pub const SMOKE_TEST: &str = env!("GUEST_SMOKE_TEST");
/// The sqlite-restore plugin, built from `plugins/sqlite-restore` (SQLite
/// compiled in; the wasm C toolchain comes from `tests/setup.sh`).
pub const SQLITE_RESTORE: &str = env!("GUEST_SQLITE_RESTORE");
/// The webhook-notify plugin, written in Python: built by `plugins/webhook-notify/build.sh`
/// (componentize-py from `sdk/python/setup.sh`, bundling `sdk/python/backout_sdk`).
pub const WEBHOOK_NOTIFY: &str = env!("GUEST_WEBHOOK_NOTIFY");

#[cfg(test)]
mod tests {
    /// The README's "Writing a plugin in Rust" example is `sdk/examples/write_file.rs`,
    /// which `cargo test` compiles: the README cannot drift into code that does not build.
    #[test]
    fn readme_plugin_example_is_the_compiled_example() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
        let example = std::fs::read_to_string(root.join("sdk/examples/write_file.rs")).unwrap();
        let body = &example[example.find("use backout_sdk").unwrap()..];
        assert!(readme.contains(&format!("```rust\n{body}```")), "README and sdk/examples/write_file.rs differ");
    }
}
