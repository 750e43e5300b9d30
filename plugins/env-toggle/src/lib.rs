//! `env-toggle`: a backout step that changes or removes values in a `.env`
//! file, and can put the file back exactly as it was.
//!
//! # Why it exists
//!
//! Rolling back a release often means flipping a feature flag or restoring a
//! setting in a `.env` file on the host. Done by hand (`sed -i`, an editor
//! over SSH) that edit is easy to get subtly wrong: a reformatted line, a
//! lost comment, CRLF turned into LF, a duplicate key where the other
//! occurrence silently wins, a secret pasted into a terminal log. This step
//! makes the edit reviewable (`plan` says key by key what will change),
//! minimal (only the targeted values' bytes change; see [`dotenv`]), safe
//! (a safety copy first, then an atomic replace, then a read-back check),
//! reversible (`undo` restores the copy's bytes, but only if the file still
//! holds exactly what `run` wrote) and recoverable (the outputs are
//! checkpointed between the safety copy and the replace, so after a crash
//! `verify` tells whether the edit was written and `undo` puts back what it
//! finds, or has nothing to undo).
//!
//! # Config
//!
//! ```toml
//! [[step]]
//! uses = "env-toggle"
//! with = { file = "/app/.env", set = { INSIGHT_GENERATION_ENABLED = "false" }, unset = ["BETA_BANNER"] }
//! ```
//!
//! * `file`: guest path of the file (required);
//! * `set`: keys and their new values, all strings (`"false"`, not `false`);
//! * `unset`: keys whose lines are removed; a key already absent is reported
//!   as "already absent" and is not an error, so a rollback can be re-run;
//! * `create_missing` (default `false`): append a key to set that is absent,
//!   instead of refusing;
//! * `allow_duplicates` (default `false`): change or remove every occurrence
//!   of a key that appears more than once, instead of refusing.
//!
//! Keys follow `[A-Za-z_][A-Za-z0-9_.-]*`. Only single-line values are
//! edited: a targeted value that spans lines is refused, as is a new value
//! with a line break. Values whose key looks secret are masked in plan,
//! outputs and logs (see [`report`]).

pub mod config;
pub mod dotenv;
pub mod ops;
pub mod report;

use backout_sdk::{Action, FileAccess, Info, Needs, Outcome, Step, StepError, log, validated};

use crate::config::Config;
use crate::report::Outputs;

/// The step. Every call gets a fresh instance, so it holds no state: what
/// `verify` and `undo` need travels in [`Outputs`].
#[derive(Debug)]
pub struct EnvToggle;

impl Step for EnvToggle {
    type Config = Config;
    type Outputs = Outputs;

    fn describe() -> Info {
        Info::new(
            "env-toggle",
            env!("CARGO_PKG_VERSION"),
            "change or remove values in a .env file, keeping every other byte, with a safety copy for undo",
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

backout_sdk::export_step!(EnvToggle);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_names_the_step_and_needs_read_write_files() {
        let info = EnvToggle::describe();
        assert_eq!(info.name, "env-toggle");
        assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
        assert_eq!(info.needs, Needs { files: FileAccess::ReadWrite, env: vec![], network: false });
        assert_eq!(info.config_schema["type"], "object");
    }
}
