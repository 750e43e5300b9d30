//! `qdrant-snapshot`: a backout step that creates, lists, downloads, restores
//! and prunes snapshots of one Qdrant collection, through Qdrant's REST API
//! at the one origin the runbook grants.
//!
//! # Why it exists
//!
//! Rolling back a release that wrote to a vector database means putting a
//! collection back as it was. Done by hand that is a handful of `curl`
//! calls, each easy to get subtly wrong: restoring without first keeping the
//! collection as it is now (so the rollback cannot itself be rolled back),
//! forgetting the checksum so a truncated snapshot is restored, pasting the
//! API key into a terminal log, retrying a request that timed out and
//! creating a second snapshot, or "checking" the result with the approximate
//! point count. This step says it as data: `plan` proves Qdrant is reachable
//! through the grant and shows the version, the collection, the snapshot and
//! what will be created or deleted (sending only `GET`s); `run` takes an
//! **emergency snapshot** before it restores and records its name and
//! checksum, and counts the points **exactly** right after the recovery;
//! `verify` (which may only send `GET`s) checks the collection's status,
//! `/readyz` and that exact count; `undo` recovers the emergency snapshot.
//!
//! # Config
//!
//! ```toml
//! [[step]]
//! id = "restore-vectors"
//! uses = "qdrant-snapshot@0.1.0"
//! timeout = "10m"
//! [step.with]
//! url = "http://127.0.0.1:6333"
//! collection = "memories"
//! api_key_env = "QDRANT_API_KEY"
//! action = "restore"
//! source = { name = "memories-3953992725780281-2026-11-23-11-11-24.snapshot" }
//! expect = { points = 120000, tolerance = "1%" }
//! [step.grants]
//! net = ["http://127.0.0.1:6333"]
//! env = ["QDRANT_API_KEY"]
//! ```
//!
//! * `url` (required): Qdrant's REST address; its origin must be in the
//!   step's `net` grant (an ungranted `url` is an invalid config naming the
//!   grant). A path prefix is kept; a query is refused;
//! * `collection` (required);
//! * `api_key_env`: the name of a granted environment variable holding the
//!   API key, sent as the `api-key` header on every request (never logged,
//!   never in outputs);
//! * `timeout` (default `"30s"`): the limit for each request, downloads and
//!   uploads included;
//! * `action` (required): `create`, `list`, `download`, `restore` or `prune`.
//!
//! Per action (a key given to an action that does not take it is refused):
//!
//! * `create`: `POST /collections/{c}/snapshots?wait=true`; outputs `name`,
//!   `checksum`, `size`, `creation_time`. With `keep_last`, older snapshots
//!   beyond the newest `keep_last` are then deleted, never the new one;
//! * `list`: outputs `snapshots` newest first, `count`, `newest`;
//! * `download`: `snapshot` (default: the newest) into the directory `to`
//!   (a read-write grant), streamed into a temp file, its sha256 checked
//!   against the checksum Qdrant lists, and renamed into place only if it
//!   matches; outputs `path` and `sha256`. An existing file with the same
//!   digest is left alone; a different one is never overwritten. The file
//!   gets backout's default mode (0666 less its umask): there is no file to
//!   take permissions from and WASI cannot choose one, so keep `to` a
//!   directory only its owner can enter;
//! * `restore`: `source = { name = "…" }` (a snapshot on the server,
//!   recovered through `PUT …/snapshots/recover` with `location` = the URL
//!   Qdrant serves it at), `{ file = "/backups/x.snapshot" }` (uploaded as
//!   `multipart/form-data` field `snapshot`) or `{ url = "…" }` (fetched by
//!   Qdrant), each with an optional `checksum`; `priority` (default
//!   `snapshot`); `emergency_snapshot` (default `true`); `source_version`
//!   (the Qdrant version the snapshot comes from, for the version check);
//!   `expect = { status = ["green", "yellow"], readyz = true, points = N,
//!   tolerance = 0 | "2%" }`;
//! * `prune`: `keep_last` (at least 1) and `protect` (names never deleted:
//!   pass the snapshots earlier steps of this run created).
//!
//! See `README.md` beside this crate for every key, the outputs, and a
//! database-rollback runbook.
//!
//! # Failure rules
//!
//! A request that changes something is never sent twice. When its answer
//! does not come (a timeout, a dropped connection) the outcome is unknown:
//! the step lists the snapshots again and reconciles (the one new snapshot
//! is adopted as the one it created; a deleted one no longer listed is
//! done), or stops and says what to check. Qdrant's error text
//! (`status.error`) is quoted verbatim; every failure after the emergency
//! snapshot names it and its checksum.

pub mod api;
pub mod config;
pub mod multipart;
pub mod ops;
pub mod outputs;
pub mod snapshots;
pub mod version;

use std::io::Write;
use std::time::Duration;

use backout_sdk::http::{self, Request, Response, ResponseHead};
use backout_sdk::{Action, FileAccess, Info, Needs, Outcome, Step, StepError, log, validated};

use crate::api::Env;
use crate::config::Config;
use crate::outputs::Outputs;

/// The step. Every call gets a fresh instance, so it holds no state: what
/// `verify` and `undo` need travels in [`Outputs`].
#[derive(Debug)]
pub struct QdrantSnapshot;

/// The host: HTTP through `wasi:http`, granted variables, the host's log.
#[derive(Debug)]
struct Host;

impl Env for Host {
    fn send(&mut self, request: Request) -> Result<Response, http::Error> {
        http::send(request)
    }
    fn send_to(&mut self, request: Request, sink: &mut dyn Write) -> Result<ResponseHead, http::Error> {
        http::send_to(request, sink)
    }
    fn check(&mut self, method: &str, url: &str) -> Result<(), String> {
        http::check(method, url)
    }
    fn var(&self, name: &str) -> Option<String> {
        backout_sdk::vars::env(name)
    }
    fn sleep(&mut self, duration: Duration) {
        std::thread::sleep(duration);
    }
    fn info(&mut self, line: String) {
        log::info(line);
    }
    fn warn(&mut self, line: String) {
        log::warn(line);
    }
    fn progress_reporter(&self) -> Box<dyn FnMut(u64, Option<u64>)> {
        Box::new(|done, total| log::progress(done, total, "bytes"))
    }
}

impl Step for QdrantSnapshot {
    type Config = Config;
    type Outputs = Outputs;

    fn describe() -> Info {
        Info::new(
            "qdrant-snapshot",
            env!("CARGO_PKG_VERSION"),
            "create, download, restore and prune Qdrant collection snapshots; an emergency snapshot before every restore",
        )
        .schema(config::schema())
        // Files are used by `download` (`to`) and `restore` from a `file`
        // only; needs are per plugin, not per config, so they are not declared.
        .needs(Needs { files: FileAccess::None, env: Vec::new(), network: true })
    }

    fn plan(config: Config) -> Result<Vec<Action>, StepError> {
        ops::plan(&validated(config)?, &mut Host)
    }

    fn run(config: Config) -> Result<Outcome<Outputs>, StepError> {
        ops::run(&validated(config)?, &mut Host)
    }

    fn verify(config: Config, outputs: Outputs) -> Result<(), StepError> {
        ops::verify(&validated(config)?, &outputs, &mut Host)
    }

    fn undo(config: Config, outputs: Outputs) -> Result<Outcome<Outputs>, StepError> {
        ops::undo(&validated(config)?, outputs, &mut Host)
    }
}

backout_sdk::export_step!(QdrantSnapshot);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_names_the_step_and_needs_the_network() {
        let info = QdrantSnapshot::describe();
        assert_eq!(info.name, "qdrant-snapshot");
        assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
        assert_eq!(info.needs, Needs { files: FileAccess::None, env: vec![], network: true });
        assert_eq!(info.config_schema["type"], "object");
    }
}
