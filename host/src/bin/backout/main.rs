//! The `backout` command: a thin layer over the `backout` library that parses
//! arguments, prints results and maps outcomes to exit codes.
#![forbid(unsafe_code)]
// Printing goes through `output::{outln, out, errln, err}`, which survive a closed pipe.

mod args;
mod commands;
mod live;
mod output;

use std::process::ExitCode;

/// Documented exit codes (see `backout --help`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    StepFailed = 1,
    Invalid = 2,
    Declined = 3,
    Undone = 4,
    NeedsAttention = 5,
    Interrupted = 6,
    TimedOut = 7,
    /// A second Ctrl-C: exited at once (128 + SIGINT, as shells report it).
    Killed = 130,
}

impl Exit {
    /// `plan --detailed-exitcode`: changes are pending. Terraform's code,
    /// which the flag exists to match, so it shares 2 with `Invalid`.
    pub const CHANGES_PENDING: Exit = Exit::Invalid;
    /// `plan --detailed-exitcode`: any error, where 2 is taken.
    pub const PLAN_FAILED: Exit = Exit::StepFailed;

    /// The exit code of a `run` or `resume` that ended in `state`.
    pub fn of_run(state: backout::journal::event::RunState) -> Self {
        use backout::journal::event::RunState;
        match state {
            RunState::Succeeded => Exit::Success,
            RunState::Failed => Exit::StepFailed,
            RunState::Undone => Exit::Undone,
            RunState::NeedsAttention => Exit::NeedsAttention,
            RunState::Interrupted | RunState::Running => Exit::Interrupted,
            RunState::TimedOut => Exit::TimedOut,
        }
    }
}

fn main() -> ExitCode {
    let cli = args::parse();
    raise_open_file_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            output::error(&anyhow::Error::from(e).context("failed to start the async runtime"), None);
            return ExitCode::from(Exit::Invalid as u8);
        }
    };
    let exit = runtime.block_on(commands::dispatch(cli));
    ExitCode::from(exit as u8)
}

/// Raises the soft limit on open files to the hard one: every file a plugin
/// holds open is a descriptor of this process, and a call may hold up to
/// half the soft limit (`runtime::Bounds`), so the host keeps room for its
/// journal, sockets and registry. Failing to raise it only lowers that bound.
fn raise_open_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.maximum.is_some_and(|hard| limit.current.is_some_and(|soft| soft < hard)) {
        let _ = setrlimit(Resource::Nofile, rustix::process::Rlimit { current: limit.maximum, maximum: limit.maximum });
    }
}
