//! The step's operations: plan, run, verify and undo for each action.
//!
//! They take the validated config and an [`Env`] instead of calling the host,
//! so every flow (reconciling an unanswered create, refusing a download whose
//! digest differs, the order emergency snapshot → recover) runs natively in
//! unit tests against a scripted Qdrant.
//!
//! Rules every operation keeps:
//!
//! * `plan` sends only `GET` requests (the host refuses anything else then);
//! * a request that changes something is never re-sent: when its answer does
//!   not come, the outcome is unknown, so the step lists again and
//!   reconciles (a create found in the list is adopted; a delete no longer
//!   listed is done) or stops and says what to check;
//! * every failure says what, if anything, was changed, and names the
//!   emergency snapshot when one was taken;
//! * Qdrant's error text is shown verbatim; the API key never is.
//!
//! This module holds the four entry points, connecting, and the words they
//! share; each action's own flows live in [`create`] (create, list, prune),
//! [`download`] and [`restore`].

#![forbid(unsafe_code)]

mod create;
mod download;
mod restore;

use std::path::Path;
use std::time::Duration;

use backout_sdk::fs::sha256_file;
use backout_sdk::http::Error as HttpError;
use backout_sdk::{Action as PlanAction, Outcome, StepError};

use crate::api::{ApiError, Client, CollectionInfo, Env, Failure};
use crate::config::{Action, Valid};
use crate::outputs::Outputs;
use crate::snapshots::{Snapshot, newest_first, plan_prune, show_size};
use create::{delete_action, run_create, run_list, run_prune, undo_create};
use download::{check_directory, existing_download, join, pick, required_checksum, run_download, undo_download};
use restore::{check_expect, plan_restore, run_restore, undo_restore};

/// After a change got no answer: how many times to list, and the wait between.
pub const RECONCILE_TRIES: u32 = 3;
pub const RECONCILE_WAIT: Duration = Duration::from_secs(2);

const NOTHING_CHANGED: &str = "nothing was changed";

// ---------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------

/// Checks the grant, reaches Qdrant with `GET` requests only, and says what
/// `run` would do.
pub fn plan(valid: &Valid, env: &mut dyn Env) -> Result<Vec<PlanAction>, StepError> {
    let mut client = connect(valid, env)?;
    let mut actions = Vec::new();
    let version = client.version().map_err(|e| fail(&client, e, ""))?;
    let mut reach = PlanAction::check(format!("reach Qdrant at {}", valid.base));
    reach = reach.detail(format!("{} {}", version.title, version.version));
    actions.push(reach);
    let info = client.collection_info().map_err(|e| fail(&client, e, ""))?;
    match &valid.action {
        Action::Create { keep_last } => {
            let info = require_collection(valid, info)?;
            actions.push(
                PlanAction::new(format!("create a snapshot of collection `{}`", valid.collection))
                    .detail(format!("{}; Qdrant writes it into its snapshots directory", describe(&info))),
            );
            if let Some(keep) = keep_last {
                let list = client.list().map_err(|e| fail(&client, e, ""))?;
                // The new snapshot will be the newest: it takes one of the places.
                let prune = plan_prune(list, keep.saturating_sub(1), &[]);
                actions.extend(prune.delete.iter().map(|s| delete_action(valid, s, *keep)));
            }
        }
        Action::List => {
            require_collection(valid, info)?;
            let list = newest_first(client.list().map_err(|e| fail(&client, e, ""))?);
            let newest = list.first().map(|s| format!("; newest `{}`", s.name)).unwrap_or_default();
            actions.push(
                PlanAction::check(format!("list the snapshots of collection `{}`", valid.collection))
                    .detail(format!("{} now{newest}", plural(list.len(), "snapshot"))),
            );
        }
        Action::Download { snapshot, to } => {
            require_collection(valid, info)?;
            let list = client.list().map_err(|e| fail(&client, e, ""))?;
            let chosen = pick(valid, &list, snapshot.as_deref())?;
            let checksum = required_checksum(&chosen)?;
            check_directory(to)?;
            let target = join(to, &chosen.name);
            match existing_download(&target, &checksum)? {
                true => actions.push(
                    PlanAction::in_place(format!("leave {target} as it is"))
                        .detail(format!("it already holds snapshot `{}` (sha256 {checksum})", chosen.name)),
                ),
                false => actions.push(
                    PlanAction::new(format!("download snapshot `{}` to {target}", chosen.name)).detail(format!(
                        "{}{}; its sha256 must equal Qdrant's checksum {checksum}; written to a temporary file and \
                         renamed into place only when it does; it holds the collection's data and gets backout's \
                         default file mode (0666 less its umask), so keep {to} a directory only its owner can enter",
                        show_size(chosen.size),
                        created(&chosen)
                    )),
                ),
            }
        }
        Action::Restore(restore) => plan_restore(valid, restore, &mut client, &version.version, info, &mut actions)?,
        Action::Prune { keep_last, protect } => {
            require_collection(valid, info)?;
            let list = client.list().map_err(|e| fail(&client, e, ""))?;
            let total = list.len();
            let prune = plan_prune(list, *keep_last, protect);
            if prune.delete.is_empty() {
                actions.push(
                    PlanAction::in_place(format!("delete no snapshot of collection `{}`", valid.collection))
                        .detail(format!("{} now; keep_last = {keep_last}", plural(total, "snapshot"))),
                );
            }
            actions.extend(prune.delete.iter().map(|s| delete_action(valid, s, *keep_last)));
            if !prune.keep.is_empty() {
                let kept: Vec<String> = prune.keep.iter().map(|s| format!("`{}`", s.name)).collect();
                actions.push(
                    PlanAction::in_place(format!("keep {}", plural(kept.len(), "snapshot"))).detail(kept.join(", ")),
                );
            }
        }
    }
    Ok(actions)
}

/// Does the work of the configured action.
pub fn run(valid: &Valid, env: &mut dyn Env) -> Result<Outcome<Outputs>, StepError> {
    let mut client = connect(valid, env)?;
    match &valid.action {
        Action::Create { keep_last } => run_create(valid, &mut client, *keep_last),
        Action::List => run_list(valid, &mut client),
        Action::Download { snapshot, to } => run_download(valid, &mut client, snapshot.as_deref(), to),
        Action::Restore(restore) => run_restore(valid, restore, &mut client),
        Action::Prune { keep_last, protect } => run_prune(valid, &mut client, *keep_last, protect),
    }
}

/// Checks that what `run` did is in place. No effects.
pub fn verify(valid: &Valid, outputs: &Outputs, env: &mut dyn Env) -> Result<(), StepError> {
    same_step(valid, outputs)?;
    match (&valid.action, outputs) {
        (_, Outputs::List(_)) => Ok(()),
        (_, Outputs::Download(o)) => {
            let found = sha256_file(Path::new(&o.path))
                .map_err(|e| StepError::precondition(format!("cannot read the downloaded file `{}`: {e}", o.path)))?;
            if found != o.sha256 {
                return Err(StepError::precondition(format!(
                    "`{}` has sha256 {found}, not the {} that was downloaded",
                    o.path, o.sha256
                )));
            }
            Ok(())
        }
        (_, Outputs::Create(o)) => {
            let mut client = connect(valid, env)?;
            let list = client.list().map_err(|e| fail(&client, e, ""))?;
            match list.iter().find(|s| s.name == o.name) {
                None => Err(StepError::precondition(format!(
                    "snapshot `{}` is not in the list of collection `{}` any more",
                    o.name, o.collection
                ))),
                Some(s) if s.checksum != o.checksum => Err(StepError::precondition(format!(
                    "snapshot `{}` now has checksum {}, not the {} it was created with",
                    o.name,
                    show_opt(&s.checksum),
                    show_opt(&o.checksum)
                ))),
                Some(_) => Ok(()),
            }
        }
        (_, Outputs::Prune(o)) => {
            let mut client = connect(valid, env)?;
            let list = client.list().map_err(|e| fail(&client, e, ""))?;
            let back: Vec<String> = list
                .iter()
                .filter(|s| o.deleted.iter().any(|d| d.name == s.name))
                .map(|s| format!("`{}`", s.name))
                .collect();
            if back.is_empty() {
                Ok(())
            } else {
                Err(StepError::precondition(format!("deleted snapshots are listed again: {}", back.join(", "))))
            }
        }
        (Action::Restore(restore), Outputs::Restore(o)) => {
            let mut client = connect(valid, env)?;
            let problems = check_expect(&mut client, &restore.expect, o.points_after)?;
            if problems.is_empty() {
                return Ok(());
            }
            let keep = match &o.emergency {
                Some(e) => format!(
                    "; the emergency snapshot `{}` holds the collection as it was before the restore (undo recovers it)",
                    e.name
                ),
                None => String::new(),
            };
            Err(StepError::precondition(format!("after the restore, {}{keep}", problems.join("; "))))
        }
        (_, Outputs::Restore(_)) => Err(mismatch(valid, outputs)),
    }
}

/// Puts back what `run` changed, where that is possible.
pub fn undo(valid: &Valid, outputs: Outputs, env: &mut dyn Env) -> Result<Outcome<Outputs>, StepError> {
    same_step(valid, &outputs)?;
    match outputs {
        Outputs::List(_) => Ok(Outcome::new("nothing to undo: listing changes nothing", outputs)),
        Outputs::Prune(ref o) => Err(StepError::precondition(format!(
            "prune deleted {} of collection `{}`; Qdrant cannot bring deleted snapshots back; nothing was changed",
            plural(o.deleted.len(), "snapshot"),
            o.collection
        ))),
        Outputs::Download(o) => undo_download(o, env),
        Outputs::Create(o) => {
            let mut client = connect(valid, env)?;
            undo_create(&mut client, o)
        }
        Outputs::Restore(o) => {
            let Action::Restore(restore) = &valid.action else { unreachable!("same_step checked the action") };
            let mut client = connect(valid, env)?;
            undo_restore(&mut client, restore, *o)
        }
    }
}

// ---------------------------------------------------------------------------
// Connecting
// ---------------------------------------------------------------------------

/// Proves the `url` is in the step's `net` grant, reads the API key, and
/// returns a client.
fn connect<'e>(valid: &Valid, env: &'e mut dyn Env) -> Result<Client<'e>, StepError> {
    if let Err(reason) = env.check("GET", &format!("{}/", valid.base)) {
        return Err(StepError::invalid_config_at(
            "/url",
            format!(
                "`url` {} is not allowed by the step's `net` grant: {reason}; grant Qdrant's origin with \
             `net = [\"{}\"]` in `[step.grants]`",
                valid.base, valid.origin
            ),
        ));
    }
    let key = match &valid.api_key_env {
        None => None,
        Some(name) => match env.var(name) {
            Some(value) if !value.is_empty() => Some(value),
            Some(_) => {
                return Err(StepError::invalid_config_at(
                    "/api_key_env",
                    format!("`api_key_env` names `{name}`, which is empty"),
                ));
            }
            None => {
                return Err(StepError::invalid_config_at(
                    "/api_key_env",
                    format!(
                        "`api_key_env` names `{name}`, which is not set on the host or not granted to the step: add \
                         `env = [\"{name}\"]` to `[step.grants]`"
                    ),
                ));
            }
        },
    };
    Ok(Client::new(env, &valid.base, &valid.collection, key, valid.timeout))
}

/// A failed request as a step error of the right kind; `changed` says what
/// the step had changed so far (empty in `plan` and `verify`).
fn fail(client: &Client<'_>, e: ApiError, changed: &str) -> StepError {
    let tail = if changed.is_empty() { String::new() } else { format!("; {changed}") };
    match &e.failure {
        Failure::NotSent(HttpError::Denied(_) | HttpError::InvalidUrl(_) | HttpError::InvalidRequest(_)) => {
            StepError::invalid_config(format!("{e}{tail}"))
        }
        Failure::NotSent(_) | Failure::NoAnswer(_) => {
            StepError::transient(format!("Qdrant at {} is not reachable: {e}{tail}", client.base))
        }
        Failure::Status { status: 401 | 403, .. } => {
            let hint = if client.has_api_key() {
                "Qdrant refused the API key from `api_key_env` (or it is a read-only key)"
            } else {
                "Qdrant requires an API key: name the granted variable holding it in `api_key_env`"
            };
            StepError::precondition(format!("{e}; {hint}{tail}"))
        }
        Failure::Status { status, .. } if *status >= 500 => StepError::failed(format!("{e}{tail}")),
        Failure::Status { .. } => StepError::precondition(format!("{e}{tail}")),
        Failure::OutcomeUnknown(_) | Failure::Unexpected(_) => StepError::failed(format!("{e}{tail}")),
    }
}

fn require_collection(valid: &Valid, info: Option<CollectionInfo>) -> Result<CollectionInfo, StepError> {
    info.ok_or_else(|| {
        StepError::precondition(format!("collection `{}` does not exist on {}", valid.collection, valid.base))
    })
}

fn same_step(valid: &Valid, outputs: &Outputs) -> Result<(), StepError> {
    if valid.action.name() == outputs.action() && valid.collection == outputs.collection() {
        Ok(())
    } else {
        Err(mismatch(valid, outputs))
    }
}

/// Named at the key that differs from the run's (`action` first).
fn mismatch(valid: &Valid, outputs: &Outputs) -> StepError {
    let at = if valid.action.name() != outputs.action() { "/action" } else { "/collection" };
    StepError::invalid_config_at(
        at,
        format!(
            "the run's outputs are for `{}` on collection `{}`, but the config says `{}` on `{}`; use the config the \
         run used",
            outputs.action(),
            outputs.collection(),
            valid.action.name(),
            valid.collection
        ),
    )
}

// ---------------------------------------------------------------------------
// Words
// ---------------------------------------------------------------------------

fn with_context(e: StepError, context: &str) -> StepError {
    match e {
        StepError::InvalidConfig(m) => StepError::InvalidConfig(format!("{m}; {context}")),
        StepError::Precondition(m) => StepError::Precondition(format!("{m}; {context}")),
        StepError::Transient(m) => StepError::Transient(format!("{m}; {context}")),
        StepError::Failed(m) => StepError::Failed(format!("{m}; {context}")),
    }
}

fn describe(info: &CollectionInfo) -> String {
    format!("status {}{}", info.status, approx(info))
}

fn approx(info: &CollectionInfo) -> String {
    match info.points_count {
        Some(n) => format!(", about {n} points"),
        None => String::new(),
    }
}

fn created(s: &Snapshot) -> String {
    s.creation_time.as_ref().map(|t| format!(", created {t}")).unwrap_or_default()
}

fn show_opt(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "(none)".to_owned())
}

/// `1 snapshot`, `3 snapshots`: the SDK's counted nouns.
use backout_sdk::text::count as plural;

fn known(list: &[Snapshot]) -> String {
    if list.is_empty() {
        return " (it has no snapshots)".to_owned();
    }
    let names: Vec<String> = newest_first(list.to_vec()).iter().take(5).map(|s| format!("`{}`", s.name)).collect();
    format!(" (newest: {})", names.join(", "))
}

#[cfg(test)]
mod tests;
