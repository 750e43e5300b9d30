//! `sqlite-restore`: a backout step that restores a SQLite database from a
//! backup, checked before and after, and can put the previous one back.
//!
//! # Why it exists
//!
//! "Restore the database" is the rollback step that loses data when done by
//! hand: `cp backup.db live.db` leaves the old `-wal` beside the new file
//! (SQLite then replays it into the wrong database), copies a corrupt or
//! truncated backup over a good database, or overwrites the only copy of the
//! current state. This step checks the backup before the live database is
//! touched (header, then `PRAGMA integrity_check` on a staged copy), keeps
//! the current database **with** its `-wal`/`-journal` as a safety copy,
//! swaps atomically, fsyncs, and runs the operator's `expect` queries.
//!
//! It survives backout being killed at any point: every temporary file is
//! declared to the host before it is created, the safety copy takes its
//! name only when complete, and the outputs are checkpointed before the
//! first change a crash could leave behind. After a crash `verify` tells by
//! the live database's sha256 whether the restore happened, and `undo` puts
//! back what was moved, or says there is nothing to undo (see [`ops`]).
//!
//! # How it works under WASI
//!
//! SQLite is compiled into the component (rusqlite, `bundled`). WASI has no
//! file locks and no shared memory, and plan/verify see every directory
//! read-only, so every SQLite open is `immutable=1` and read-only (see
//! [`sqlite`]). The step never needs to read through a `-wal`: a live
//! database with one is refused unless `allow_wal`, and then the database and
//! its `-wal` are kept together, byte for byte, as the safety copy (rather
//! than checkpointed, which would change the file being kept). The plugin
//! cannot see other processes: the service must be stopped first.
//!
//! # Config
//!
//! ```toml
//! [[step]]
//! uses = "sqlite-restore@0.1.0"
//! with = { db = "/data/app.db", backup_dir = "/backups", pattern = "app-*.db", expect = [{ sql = "SELECT count(*) FROM agents", min = 1 }] }
//! ```
//!
//! See [`config`] for every key.

pub mod config;
pub mod files;
pub mod glob;
pub mod header;
pub mod ops;
pub mod outputs;
pub mod sqlite;

use backout_sdk::{Action, FileAccess, Info, Needs, Outcome, Step, StepError, log, validated};

use crate::config::Config;
use crate::ops::Observer;
use crate::outputs::Outputs;

/// The step. Every call gets a fresh instance, so it holds no state: what
/// `verify` and `undo` need travels in [`Outputs`].
#[derive(Debug)]
pub struct SqliteRestore;

/// Log lines and progress go to the host.
struct Host;

impl Observer for Host {
    fn info(&mut self, line: String) {
        log::info(line);
    }
    fn progress(&mut self, done: u64, total: u64) {
        log::progress(done, Some(total), "bytes");
    }
}

impl Step for SqliteRestore {
    type Config = Config;
    type Outputs = Outputs;

    fn describe() -> Info {
        Info::new(
            "sqlite-restore",
            env!("CARGO_PKG_VERSION"),
            "restore a SQLite database from a backup, checked before and after, with a safety copy for undo",
        )
        .schema(config::schema())
        .needs(Needs { files: FileAccess::ReadWrite, ..Needs::default() })
    }

    fn plan(config: Config) -> Result<Vec<Action>, StepError> {
        ops::plan(&validated(config)?)
    }

    fn run(config: Config) -> Result<Outcome<Outputs>, StepError> {
        ops::run(&validated(config)?, &mut Host)
    }

    fn verify(config: Config, outputs: Outputs) -> Result<(), StepError> {
        ops::verify(&validated(config)?, &outputs)
    }

    fn undo(config: Config, outputs: Outputs) -> Result<Outcome<Outputs>, StepError> {
        ops::undo(&validated(config)?, outputs, &mut Host)
    }
}

backout_sdk::export_step!(SqliteRestore);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_names_the_step_and_needs_read_write_files() {
        let info = SqliteRestore::describe();
        assert_eq!(info.name, "sqlite-restore");
        assert_eq!(info.needs, Needs { files: FileAccess::ReadWrite, env: vec![], network: false });
        assert_eq!(info.config_schema["type"], "object");
    }
}
