//! `service-control`: stop, start, restart or reload a service through the
//! step's granted host commands, then wait until it is down or healthy.
//!
//! Every rollback runbook has these lines: `systemctl stop cortex-mcp`,
//! `docker compose restart mem0`, `pm2 restart app`, then a `sleep 5` and a
//! hopeful `curl`. This step says the same as data, for any service
//! manager: `commands` names the argv of each action (each must also be in
//! the step's `commands` grant, which the host enforces), `wait_stopped`
//! polls until the service is really down (a granted URL refuses
//! connections, or a pid file is gone) and `wait_healthy` until it answers
//! healthy. `plan` proves every command and URL is granted and runs
//! nothing. `undo` of `stop` is `start` and vice versa, with the same waits;
//! `restart`, `reload` and `status` have nothing to put back.
//!
//! ```toml
//! [[step]]
//! id = "stop"
//! uses = "service-control"
//! with = { action = "stop", commands = { stop = ["systemctl", "stop", "app"], start = ["systemctl", "start", "app"] },
//!          wait_stopped = { url = "http://127.0.0.1:8080/health" }, wait_healthy = { url = "http://127.0.0.1:8080/health" } }
//! [step.grants]
//! commands = [["systemctl", "stop", "app"], ["systemctl", "start", "app"]]
//! net = ["http://127.0.0.1:8080"]
//! ```

pub mod config;
mod control;

use backout_sdk::{Action, FileAccess, Info, Needs, Outcome, Step, StepError, export_step};

pub use config::{Config, Valid, validate};
pub use control::{Host, Outputs, Probe, World};

/// The step.
#[derive(Debug)]
pub struct ServiceControl;

impl Step for ServiceControl {
    type Config = Config;
    type Outputs = Outputs;

    fn describe() -> Info {
        Info::new(
            "service-control",
            env!("CARGO_PKG_VERSION"),
            "stop, start, restart or reload a service with granted commands, and wait until it is down or healthy",
        )
        .schema(config::schema())
        // The network only for the waits, which are optional (the host sees
        // from the component's imports that it may make requests, so a `net`
        // grant is not flagged); files only for an optional `pid_file` or
        // `cwd`.
        .needs(Needs { files: FileAccess::None, env: Vec::new(), network: false })
    }

    fn plan(config: Config) -> Result<Vec<Action>, StepError> {
        control::plan(&validate(config)?, &mut Host)
    }

    fn run(config: Config) -> Result<Outcome<Outputs>, StepError> {
        control::run(&validate(config)?, &mut Host)
    }

    fn verify(config: Config, outputs: Outputs) -> Result<(), StepError> {
        control::verify(&validate(config)?, &outputs, &mut Host)
    }

    fn undo(config: Config, outputs: Outputs) -> Result<Outcome<Outputs>, StepError> {
        control::undo(&validate(config)?, &outputs, &mut Host)
    }
}

export_step!(ServiceControl);
