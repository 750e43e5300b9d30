//! `file-restore`: a backout step that puts a configuration file (or a
//! directory of them) back from a backup, and can put the replaced one back.
//!
//! # Why it exists
//!
//! The configuration half of a rollback is two shell lines:
//!
//! ```sh
//! cp /backups/config/.env.production .env
//! cp rollback-config/cortex-2026-12-01.toml cortex.toml
//! ```
//!
//! They copy whatever the backup is, truncated or not, over the only copy of
//! the current configuration, with the backup's mode instead of the live
//! file's (or the other way round), half-written if the disk fills, and the
//! operator has to know which dated file is the right one. This step picks
//! the backup precisely ([`pick`]: `source`, or the latest in `source_dir`),
//! refuses it unless it parses and holds the required keys ([`validate`],
//! [`keys`]), shows the change as a unified diff with secrets masked
//! ([`diff`], [`mask`]), keeps a safety copy, replaces atomically keeping the
//! live file's mode and owner, reads the result back, and can undo it while
//! the target still holds what it wrote ([`ops`]).
//!
//! # Config
//!
//! ```toml
//! [[step]]
//! uses = "file-restore@0.1.0"
//! with = { target = "/app/cortex.toml", source_dir = "/app/rollback-config", pattern = "cortex-*.toml", validate = "toml", require_keys = ["server.port"] }
//! ```
//!
//! See [`config`] for every key.

pub mod config;
pub mod diff;
pub mod keys;
pub mod mask;
pub mod ops;
#[cfg(test)]
mod ops_tests;
pub mod outputs;
pub mod pick;
pub mod tree;
pub mod validate;

/// env-toggle's dotenv reader (`validate = "dotenv"` uses its
/// [`dotenv::strict_keys`]), compiled in from env-toggle's source file
/// rather than depended on as a crate: env-toggle's library also exports
/// its component's `backout:step` functions, and linking it into this
/// component fails with duplicate symbols on wasm32 whenever a code unit
/// holding them is pulled in.
#[path = "../../env-toggle/src/dotenv.rs"]
pub mod dotenv;

use backout_sdk::{Action, FileAccess, Info, Needs, Outcome, Step, StepError, log, validated};

use crate::config::Config;
use crate::outputs::Outputs;

/// The step. Every call gets a fresh instance, so it holds no state: what
/// `verify` and `undo` need travels in [`Outputs`].
#[derive(Debug)]
pub struct FileRestore;

impl Step for FileRestore {
    type Config = Config;
    type Outputs = Outputs;

    fn describe() -> Info {
        Info::new(
            "file-restore",
            env!("CARGO_PKG_VERSION"),
            "put a file or directory back from a backup, checked to parse first, with a safety copy for undo",
        )
        .schema(config::schema())
        .needs(Needs { files: FileAccess::ReadWrite, ..Needs::default() })
    }

    fn plan(config: Config) -> Result<Vec<Action>, StepError> {
        ops::plan(&validated(config)?)
    }

    fn run(config: Config) -> Result<Outcome<Outputs>, StepError> {
        ops::run(&validated(config)?, &mut log::to_host)
    }

    fn verify(config: Config, outputs: Outputs) -> Result<(), StepError> {
        ops::verify(&validated(config)?, &outputs)
    }

    fn undo(config: Config, outputs: Outputs) -> Result<Outcome<Outputs>, StepError> {
        ops::undo(&validated(config)?, outputs, &mut log::to_host)
    }
}

backout_sdk::export_step!(FileRestore);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_names_the_step_and_needs_read_write_files_only() {
        let info = FileRestore::describe();
        assert_eq!(info.name, "file-restore");
        assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
        assert_eq!(info.needs, Needs { files: FileAccess::ReadWrite, env: vec![], network: false });
        assert_eq!(info.config_schema["type"], "object");
    }
}
