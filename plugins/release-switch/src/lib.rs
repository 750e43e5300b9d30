//! `release-switch`: a backout step that points a `current` link at another
//! release directory, atomically, and can point it back.
//!
//! # Why it exists
//!
//! Many deployments (Capistrano, Deployer, many Node and Python setups) keep
//! one directory per release and a symbolic link to the live one:
//!
//! ```text
//! /srv/app/releases/1.0.0/
//! /srv/app/releases/2.0.0/
//! /srv/app/current -> releases/2.0.0
//! ```
//!
//! Rolling the application back is then `ln -sfn releases/1.0.0 current`:
//! no build, no copy. Done by hand that line is easy to get subtly wrong:
//! a typo points the link at a release that does not exist or was never
//! finished, `ln -sfn` on a `current` that is a real directory puts the link
//! *inside* it, an `ln` that removes the old link before making the new one
//! (as POSIX describes; GNU's renames a temporary link instead) leaves a
//! moment with no application, and nothing records where the link pointed
//! before. This step makes the switch reviewable
//! (`plan` says from which release to which, and why that one), checked (the
//! release exists, is a real directory inside the grant, and holds the
//! marker of a complete release), atomic (a new link renamed over the old
//! one), recoverable (the outputs are checkpointed before the rename) and
//! reversible (`undo` points the link back, only if it still points where
//! `run` put it).
//!
//! # Config
//!
//! ```toml
//! [[step]]
//! uses = "release-switch@0.1.0"
//! with = { link = "/app/current", releases_dir = "/app/releases", to = "previous", marker = "REVISION" }
//! ```
//!
//! * `link`: guest path of the symbolic link (required);
//! * `releases_dir`: guest path of the directory of releases, in the same
//!   grant as `link` (required);
//! * `to`: `"previous"` or a release's directory name (required); see
//!   [`version`] for what "previous" means;
//! * `marker`: a file a release must hold to count as complete (optional).

pub mod config;
pub mod layout;
pub mod link;
pub mod ops;
pub mod paths;
pub mod report;
pub mod version;

use backout_sdk::{Action, FileAccess, Info, Needs, Outcome, Step, StepError, log, validated};

use crate::config::Config;
use crate::report::Outputs;

/// The step. Every call gets a fresh instance, so it holds no state: what
/// `verify` and `undo` need travels in [`Outputs`].
#[derive(Debug)]
pub struct ReleaseSwitch;

impl Step for ReleaseSwitch {
    type Config = Config;
    type Outputs = Outputs;

    fn describe() -> Info {
        Info::new(
            "release-switch",
            env!("CARGO_PKG_VERSION"),
            "point a `current` link at another release directory, atomically, with a relative target; undo points it back",
        )
        .schema(config::schema())
        .needs(Needs { files: FileAccess::ReadWrite, ..Needs::default() })
    }

    fn plan(config: Config) -> Result<Vec<Action>, StepError> {
        ops::plan(&validated(config)?, &link::granted_dirs())
    }

    fn run(config: Config) -> Result<Outcome<Outputs>, StepError> {
        ops::run(&validated(config)?, &link::granted_dirs(), &mut log::to_host)
    }

    fn verify(config: Config, outputs: Outputs) -> Result<(), StepError> {
        ops::verify(&validated(config)?, &outputs)
    }

    fn undo(config: Config, outputs: Outputs) -> Result<Outcome<Outputs>, StepError> {
        ops::undo(&validated(config)?, outputs, &link::granted_dirs(), &mut log::to_host)
    }
}

backout_sdk::export_step!(ReleaseSwitch);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_names_the_step_and_needs_read_write_files_only() {
        let info = ReleaseSwitch::describe();
        assert_eq!(info.name, "release-switch");
        assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
        assert_eq!(info.needs, Needs { files: FileAccess::ReadWrite, env: vec![], network: false });
        assert_eq!(info.config_schema["type"], "object");
    }
}
