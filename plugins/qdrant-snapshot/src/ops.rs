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

#![forbid(unsafe_code)]

use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::Duration;

use backout_sdk::fs::{replace_atomically_with, sha256_file, sync_dir};
use backout_sdk::http::{Error as HttpError, Url};
use backout_sdk::{Action as PlanAction, Outcome, StepError};
use sha2::{Digest, Sha256};

use crate::api::{ApiError, Client, CollectionInfo, Done, Env, Failure};
use crate::config::{Action, Expect, Restore, Source, Valid, snapshot_name_problem};
use crate::multipart::Multipart;
use crate::outputs::{Created, Downloaded, Emergency, Listed, Outputs, Pruned, Restored, SourceOut, shown_url};
use crate::snapshots::{Reconciled, Snapshot, newest_first, plan_prune, reconcile_create, show_size};
use crate::version::{Version, compatibility_warning};

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
    let mut reach = PlanAction::new(format!("reach Qdrant at {}", valid.base));
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
                PlanAction::new(format!("list the snapshots of collection `{}`", valid.collection))
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
                    PlanAction::new(format!("leave {target} as it is"))
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
                    PlanAction::new(format!("delete no snapshot of collection `{}`", valid.collection))
                        .detail(format!("{} now; keep_last = {keep_last}", plural(total, "snapshot"))),
                );
            }
            actions.extend(prune.delete.iter().map(|s| delete_action(valid, s, *keep_last)));
            if !prune.keep.is_empty() {
                let kept: Vec<String> = prune.keep.iter().map(|s| format!("`{}`", s.name)).collect();
                actions
                    .push(PlanAction::new(format!("keep {}", plural(kept.len(), "snapshot"))).detail(kept.join(", ")));
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
        return Err(StepError::invalid_config(format!(
            "`url` {} is not allowed by the step's `net` grant: {reason}; grant Qdrant's origin with \
             `net = [\"{}\"]` in `[step.grants]`",
            valid.base, valid.origin
        )));
    }
    let key = match &valid.api_key_env {
        None => None,
        Some(name) => match env.var(name) {
            Some(value) if !value.is_empty() => Some(value),
            Some(_) => return Err(StepError::invalid_config(format!("`api_key_env` names `{name}`, which is empty"))),
            None => {
                return Err(StepError::invalid_config(format!(
                    "`api_key_env` names `{name}`, which is not set on the host or not granted to the step: add \
                     `env = [\"{name}\"]` to `[step.grants]`"
                )));
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

fn mismatch(valid: &Valid, outputs: &Outputs) -> StepError {
    StepError::invalid_config(format!(
        "the run's outputs are for `{}` on collection `{}`, but the config says `{}` on `{}`; use the config the \
         run used",
        outputs.action(),
        outputs.collection(),
        valid.action.name(),
        valid.collection
    ))
}

// ---------------------------------------------------------------------------
// create, list, prune
// ---------------------------------------------------------------------------

fn run_create(valid: &Valid, client: &mut Client<'_>, keep_last: Option<u64>) -> Result<Outcome<Outputs>, StepError> {
    let before = client.list().map_err(|e| fail(client, e, NOTHING_CHANGED))?;
    let (snapshot, reconciled) = create_reconciled(client, &before, "the snapshot")?;
    let mut summary = format!(
        "created snapshot `{}` of `{}` ({}, sha256 {})",
        snapshot.name,
        valid.collection,
        show_size(snapshot.size),
        show_opt(&snapshot.checksum)
    );
    client.env().info(summary.clone());
    let mut pruned = Vec::new();
    if let Some(keep) = keep_last {
        let done = format!("snapshot `{}` was created", snapshot.name);
        let (deleted, _) = prune(client, keep, std::slice::from_ref(&snapshot.name), &done)?;
        if !deleted.is_empty() {
            summary.push_str(&format!("; deleted {} older", plural(deleted.len(), "snapshot")));
        }
        pruned = deleted.into_iter().map(|s| s.name).collect();
    }
    let outputs = Created {
        collection: valid.collection.clone(),
        name: snapshot.name,
        checksum: snapshot.checksum,
        size: snapshot.size,
        creation_time: snapshot.creation_time,
        reconciled,
        pruned,
        deleted_by_undo: None,
    };
    Ok(Outcome::new(summary, Outputs::Create(outputs)))
}

/// Creates a snapshot. When the answer does not come (a timeout, a broken
/// connection, a 202), lists again and adopts the one new snapshot; never
/// sends the create twice.
fn create_reconciled(client: &mut Client<'_>, before: &[Snapshot], what: &str) -> Result<(Snapshot, bool), StepError> {
    let unknown = match client.create() {
        Ok(Done::Completed(s)) => return Ok((s, false)),
        Ok(Done::Accepted) => format!(
            "Qdrant accepted the create of {what} without waiting (202) and gave no name; the outcome is unknown"
        ),
        Err(e) if e.is_outcome_unknown() => e.to_string(),
        Err(e) => return Err(fail(client, e, &format!("{what} was not created"))),
    };
    client.env().warn(format!("{unknown}; listing the snapshots again to reconcile (the create is not sent again)"));
    for attempt in 0..RECONCILE_TRIES {
        if attempt > 0 {
            client.env().sleep(RECONCILE_WAIT);
        }
        let after = client.list().map_err(|e| {
            StepError::failed(format!(
                "{unknown}; listing again to reconcile failed too ({e}); whether {what} was created is unknown: \
                 list the collection's snapshots before running again"
            ))
        })?;
        match reconcile_create(before, &after) {
            Reconciled::Created(s) => {
                client
                    .env()
                    .info(format!("reconciled: {what} `{}` is in the list; it is the one this run created", s.name));
                return Ok((s, true));
            }
            Reconciled::Ambiguous(new) => {
                let names: Vec<String> = new.iter().map(|s| format!("`{}`", s.name)).collect();
                return Err(StepError::failed(format!(
                    "{unknown}; listing again found {} new snapshots ({}): which one this run created cannot be \
                     told, so none is claimed; nothing was sent again",
                    new.len(),
                    names.join(", ")
                )));
            }
            Reconciled::NotCreated => {}
        }
    }
    Err(StepError::transient(format!(
        "{unknown}; no new snapshot appeared after listing {RECONCILE_TRIES} times: Qdrant did not create {what} \
         or is still creating it; nothing was sent again; list the collection's snapshots before running again"
    )))
}

/// Deletes a snapshot; when the answer does not come, lists again: no longer
/// listed means deleted. A 404 means someone deleted it already.
fn delete_reconciled(client: &mut Client<'_>, name: &str) -> Result<(), StepError> {
    let unknown = match client.delete(name) {
        Ok(Done::Completed(())) => return Ok(()),
        Ok(Done::Accepted) => format!("Qdrant accepted the delete of `{name}` without waiting (202)"),
        Err(e) if e.status() == Some(404) => {
            client.env().info(format!("snapshot `{name}` was already gone"));
            return Ok(());
        }
        Err(e) if e.is_outcome_unknown() => e.to_string(),
        Err(e) => return Err(fail(client, e, &format!("`{name}` was not deleted"))),
    };
    client.env().warn(format!("{unknown}; listing the snapshots again to reconcile (the delete is not sent again)"));
    for attempt in 0..RECONCILE_TRIES {
        if attempt > 0 {
            client.env().sleep(RECONCILE_WAIT);
        }
        let after = client.list().map_err(|e| {
            StepError::failed(format!(
                "{unknown}; listing again failed too ({e}); whether `{name}` was deleted is unknown"
            ))
        })?;
        if !after.iter().any(|s| s.name == name) {
            client.env().info(format!("reconciled: snapshot `{name}` is no longer listed"));
            return Ok(());
        }
    }
    Err(StepError::transient(format!(
        "{unknown}; `{name}` is still listed after {RECONCILE_TRIES} tries: Qdrant did not delete it or is still \
         deleting it; nothing was sent again"
    )))
}

/// Deletes what [`plan_prune`] says, one by one. `done` says what the step
/// had changed before, for error messages.
fn prune(
    client: &mut Client<'_>,
    keep_last: u64,
    protect: &[String],
    done: &str,
) -> Result<(Vec<Snapshot>, Vec<String>), StepError> {
    let list = client.list().map_err(|e| fail(client, e, done))?;
    let plan = plan_prune(list, keep_last, protect);
    let mut deleted: Vec<Snapshot> = Vec::new();
    for s in plan.delete {
        debug_assert!(!protect.contains(&s.name));
        if let Err(e) = delete_reconciled(client, &s.name) {
            let so_far: Vec<String> = deleted.iter().map(|d| format!("`{}`", d.name)).collect();
            let so_far = if so_far.is_empty() { "none".to_owned() } else { so_far.join(", ") };
            let before = if done.is_empty() { String::new() } else { format!("{done}; ") };
            return Err(with_context(e, &format!("{before}deleted before this failure: {so_far}")));
        }
        client.env().info(format!("deleted snapshot `{}`{}", s.name, created(&s)));
        deleted.push(s);
    }
    Ok((deleted, plan.keep.into_iter().map(|s| s.name).collect()))
}

fn run_prune(
    valid: &Valid,
    client: &mut Client<'_>,
    keep_last: u64,
    protect: &[String],
) -> Result<Outcome<Outputs>, StepError> {
    let (deleted, kept) = prune(client, keep_last, protect, "")?;
    let summary = format!(
        "deleted {} of `{}`, kept {}",
        plural(deleted.len(), "snapshot"),
        valid.collection,
        plural(kept.len(), "snapshot")
    );
    let outputs = Pruned { collection: valid.collection.clone(), keep_last, deleted, kept };
    Ok(Outcome::new(summary, Outputs::Prune(outputs)))
}

fn run_list(valid: &Valid, client: &mut Client<'_>) -> Result<Outcome<Outputs>, StepError> {
    let list = newest_first(client.list().map_err(|e| fail(client, e, ""))?);
    let newest = list.first().map(|s| s.name.clone());
    let summary = match &newest {
        Some(n) => format!("`{}` has {}; newest `{n}`", valid.collection, plural(list.len(), "snapshot")),
        None => format!("`{}` has no snapshots", valid.collection),
    };
    let outputs = Listed { collection: valid.collection.clone(), count: list.len(), newest, snapshots: list };
    Ok(Outcome::new(summary, Outputs::List(outputs)))
}

fn undo_create(client: &mut Client<'_>, o: Created) -> Result<Outcome<Outputs>, StepError> {
    let list = client.list().map_err(|e| fail(client, e, NOTHING_CHANGED))?;
    let pruned = if o.pruned.is_empty() {
        String::new()
    } else {
        format!("; the {} deleted after it cannot be brought back", plural(o.pruned.len(), "older snapshot"))
    };
    match list.iter().find(|s| s.name == o.name) {
        None => {
            let summary = format!("nothing to undo: snapshot `{}` is already gone{pruned}", o.name);
            client.env().info(summary.clone());
            Ok(Outcome::new(summary, Outputs::Create(o)))
        }
        Some(s) if s.checksum != o.checksum => Err(StepError::precondition(format!(
            "snapshot `{}` now has checksum {}, not the {} this run created; it was not deleted",
            o.name,
            show_opt(&s.checksum),
            show_opt(&o.checksum)
        ))),
        Some(_) => {
            delete_reconciled(client, &o.name)?;
            let summary = format!("deleted snapshot `{}`, which the run created{pruned}", o.name);
            client.env().info(summary.clone());
            let name = o.name.clone();
            Ok(Outcome::new(summary, Outputs::Create(Created { deleted_by_undo: Some(name), ..o })))
        }
    }
}

// ---------------------------------------------------------------------------
// download
// ---------------------------------------------------------------------------

/// The snapshot named, or the newest.
fn pick(valid: &Valid, list: &[Snapshot], name: Option<&str>) -> Result<Snapshot, StepError> {
    let found = match name {
        Some(n) => list.iter().find(|s| s.name == n).cloned(),
        None => newest_first(list.to_vec()).into_iter().next(),
    };
    let chosen = found.ok_or_else(|| match name {
        Some(n) => StepError::precondition(format!(
            "collection `{}` has no snapshot named `{n}`{}",
            valid.collection,
            known(list)
        )),
        None => StepError::precondition(format!("collection `{}` has no snapshots", valid.collection)),
    })?;
    if let Some(why) = snapshot_name_problem(&chosen.name) {
        return Err(StepError::precondition(format!(
            "Qdrant lists a snapshot whose name {why}; it is not written to disk"
        )));
    }
    Ok(chosen)
}

fn required_checksum(s: &Snapshot) -> Result<String, StepError> {
    s.checksum.as_deref().and_then(crate::config::normalize_checksum).ok_or_else(|| {
        StepError::precondition(format!(
            "Qdrant lists no sha256 checksum for snapshot `{}` (Qdrant before 1.8 records none), so its download \
             cannot be verified; nothing was downloaded",
            s.name
        ))
    })
}

fn check_directory(dir: &str) -> Result<(), StepError> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(StepError::precondition(format!("`to` {dir} is not a directory"))),
        Err(e) => Err(StepError::precondition(format!(
            "`to` {dir} does not exist or is not inside a directory granted to the step ({e})"
        ))),
    }
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn join(dir: &str, name: &str) -> String {
    if dir == "/" { format!("/{name}") } else { format!("{dir}/{name}") }
}

/// Whether `target` already holds the snapshot; refuses anything else there.
fn existing_download(target: &str, checksum: &str) -> Result<bool, StepError> {
    match fs::symlink_metadata(target) {
        Ok(m) if m.is_file() => {
            let found = sha256_file(Path::new(target))
                .map_err(|e| StepError::precondition(format!("cannot read the existing {target}: {e}")))?;
            if found == checksum {
                Ok(true)
            } else {
                Err(StepError::precondition(format!(
                    "{target} already exists with sha256 {found}, not the snapshot's {checksum}; it is not \
                     overwritten: move it away or download into another directory"
                )))
            }
        }
        Ok(_) => Err(StepError::precondition(format!("{target} exists and is not a regular file"))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(StepError::precondition(format!("cannot inspect {target}: {e}"))),
    }
}

fn run_download(
    valid: &Valid,
    client: &mut Client<'_>,
    name: Option<&str>,
    to: &str,
) -> Result<Outcome<Outputs>, StepError> {
    let list = client.list().map_err(|e| fail(client, e, NOTHING_CHANGED))?;
    let chosen = pick(valid, &list, name)?;
    let checksum = required_checksum(&chosen)?;
    check_directory(to)?;
    let target = join(to, &chosen.name);
    let mut outputs = Downloaded {
        collection: valid.collection.clone(),
        name: chosen.name.clone(),
        path: target.clone(),
        sha256: checksum.clone(),
        size: chosen.size,
        creation_time: chosen.creation_time.clone(),
        already_present: false,
        removed_by_undo: false,
    };
    if existing_download(&target, &checksum)? {
        outputs.already_present = true;
        let summary =
            format!("{target} already holds snapshot `{}` (sha256 {checksum}); nothing was written", chosen.name);
        client.env().info(summary.clone());
        return Ok(Outcome::new(summary, Outputs::Download(outputs)));
    }
    client.env().info(format!("downloading snapshot `{}` ({}) to {target}", chosen.name, show_size(chosen.size)));
    let (digest, size) = download_atomically(client, &chosen, &checksum, &target)?;
    outputs.sha256 = digest;
    outputs.size = size;
    let summary = format!(
        "downloaded snapshot `{}` to {target} ({}, sha256 {} as Qdrant lists it)",
        chosen.name,
        show_size(size),
        outputs.sha256
    );
    client.env().info(summary.clone());
    Ok(Outcome::new(summary, Outputs::Download(outputs)))
}

/// Writes what it receives to the temp file, hashing it, and keeps the
/// first bytes (an error answer's text).
struct HashingSink<'a> {
    file: &'a mut fs::File,
    hasher: Sha256,
    written: u64,
    head: Vec<u8>,
    total: Option<u64>,
    progress: &'a mut dyn FnMut(u64, Option<u64>),
}

const KEPT_HEAD: usize = 4096;

impl Write for HashingSink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write_all(buf)?;
        self.hasher.update(buf);
        self.written += buf.len() as u64;
        if self.head.len() < KEPT_HEAD {
            let n = (KEPT_HEAD - self.head.len()).min(buf.len());
            self.head.extend_from_slice(&buf[..n]);
        }
        (self.progress)(self.written, self.total);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Streams the snapshot into a temp file beside `target`, checks its sha256,
/// and renames it into place only when it matches; on any failure the temp
/// file is removed, so nothing is left under either name.
///
/// The file has backout's default mode (0666 less its umask) from creation
/// to the end: `target` never exists here (an existing file is left alone or
/// refused), so there is no file whose permissions it could take, and WASI
/// cannot choose a mode. A snapshot holds the collection's points and
/// payloads; the directory `to` is what keeps other users out, and the plan
/// says so.
fn download_atomically(
    client: &mut Client<'_>,
    snapshot: &Snapshot,
    checksum: &str,
    target: &str,
) -> Result<(String, u64), StepError> {
    let mut error: Option<StepError> = None;
    let mut got = (String::new(), 0u64);
    let mut progress = client.env().progress_reporter();
    let written = replace_atomically_with(Path::new(target), |file| {
        let mut sink = HashingSink {
            file,
            hasher: Sha256::new(),
            written: 0,
            head: Vec::new(),
            total: Some(snapshot.size),
            progress: &mut *progress,
        };
        let stop = |e: StepError, error: &mut Option<StepError>| {
            *error = Some(e);
            io::Error::other("download refused")
        };
        let head = match client.download(&snapshot.name, &mut sink) {
            Ok(head) => head,
            Err(e) => {
                let e = fail(client, e, &format!("nothing was left at {target}"));
                return Err(stop(e, &mut error));
            }
        };
        if head.status != 200 {
            let e = ApiError {
                what: format!("GET {}", client.snapshot_path(&snapshot.name)),
                failure: Failure::Status { status: head.status, error: crate::api::error_text(&sink.head) },
            };
            let e = fail(client, e, &format!("nothing was left at {target}"));
            return Err(stop(e, &mut error));
        }
        let written = sink.written;
        let digest = hex::encode(std::mem::take(&mut sink.hasher).finalize());
        if digest != checksum {
            let e = StepError::failed(format!(
                "the downloaded snapshot `{}` ({written} bytes) has sha256 {digest}, not Qdrant's checksum \
                 {checksum}; the download was discarded and nothing was left at {target}",
                snapshot.name
            ));
            return Err(stop(e, &mut error));
        }
        got = (digest, written);
        Ok(())
    });
    match (written, error) {
        (Ok(()), _) => Ok(got),
        (Err(_), Some(e)) => Err(e),
        (Err(e), None) => Err(StepError::failed(format!(
            "could not write {target}: {e}; nothing was left under that name (is `to` in a read-write grant?)"
        ))),
    }
}

fn undo_download(o: Downloaded, env: &mut dyn Env) -> Result<Outcome<Outputs>, StepError> {
    if o.already_present {
        let summary = format!("nothing to undo: {} was already there before the run", o.path);
        return Ok(Outcome::new(summary, Outputs::Download(o)));
    }
    let path = Path::new(&o.path);
    match sha256_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let summary = format!("nothing to undo: {} is already gone", o.path);
            Ok(Outcome::new(summary, Outputs::Download(o)))
        }
        Err(e) => Err(StepError::precondition(format!("cannot read {}: {e}; nothing was removed", o.path))),
        Ok(found) if found != o.sha256 => Err(StepError::precondition(format!(
            "{} changed since the run (sha256 {found}, not {}); it was not removed",
            o.path, o.sha256
        ))),
        Ok(_) => {
            fs::remove_file(path)
                .and_then(|()| sync_dir(path.parent().unwrap_or(Path::new("/"))))
                .map_err(|e| StepError::failed(format!("could not remove {}: {e}", o.path)))?;
            let summary = format!("removed {}, which the run downloaded", o.path);
            env.info(summary.clone());
            Ok(Outcome::new(summary, Outputs::Download(Downloaded { removed_by_undo: true, ..o })))
        }
    }
}

// ---------------------------------------------------------------------------
// restore
// ---------------------------------------------------------------------------

/// A restore's source, checked against the server or the disk.
struct Resolved {
    out: SourceOut,
    /// The checksum to pass to Qdrant.
    checksum: Option<String>,
    /// For a file: its length.
    file_len: Option<u64>,
    /// One line for plan and logs.
    describe: String,
}

fn resolve_source(
    valid: &Valid,
    restore: &Restore,
    client: &mut Client<'_>,
    listed: &mut Option<Vec<Snapshot>>,
) -> Result<Resolved, StepError> {
    let given = restore.source.checksum().map(str::to_owned);
    match &restore.source {
        Source::Name { name, .. } => {
            let list = client.list().map_err(|e| fail(client, e, NOTHING_CHANGED))?;
            let found = list.iter().find(|s| s.name == *name).cloned();
            *listed = Some(list.clone());
            let s = found.ok_or_else(|| {
                StepError::precondition(format!(
                    "collection `{}` has no snapshot named `{name}` on {}{}; nothing was changed",
                    valid.collection,
                    valid.base,
                    known(&list)
                ))
            })?;
            let listed_sum = s.checksum.as_deref().and_then(crate::config::normalize_checksum);
            if let (Some(g), Some(l)) = (&given, &listed_sum)
                && g != l
            {
                return Err(StepError::precondition(format!(
                    "snapshot `{name}` has checksum {l} on the server, not the `source.checksum` {g}; nothing was \
                     changed"
                )));
            }
            let checksum = listed_sum.or(given);
            Ok(Resolved {
                describe: format!(
                    "snapshot `{name}` on the server ({}{}, sha256 {})",
                    show_size(s.size),
                    created(&s),
                    show_opt(&checksum)
                ),
                out: SourceOut {
                    kind: "name".into(),
                    name: Some(name.clone()),
                    file: None,
                    url: None,
                    size: Some(s.size),
                },
                checksum,
                file_len: None,
            })
        }
        Source::File { path, .. } => {
            let meta = fs::metadata(path).map_err(|e| {
                StepError::precondition(format!(
                    "`source.file` {path} does not exist or is not inside a directory granted to the step ({e}); \
                     nothing was changed"
                ))
            })?;
            if !meta.is_file() {
                return Err(StepError::precondition(format!("`source.file` {path} is not a regular file")));
            }
            if meta.len() == 0 {
                return Err(StepError::precondition(format!("`source.file` {path} is empty; nothing was changed")));
            }
            let digest = sha256_file(Path::new(path))
                .map_err(|e| StepError::precondition(format!("cannot read `source.file` {path}: {e}")))?;
            if let Some(g) = &given
                && *g != digest
            {
                return Err(StepError::precondition(format!(
                    "`source.file` {path} has sha256 {digest}, not the `source.checksum` {g}; nothing was changed"
                )));
            }
            Ok(Resolved {
                describe: format!("file {path} ({}, sha256 {digest})", show_size(meta.len())),
                out: SourceOut {
                    kind: "file".into(),
                    name: None,
                    file: Some(path.clone()),
                    url: None,
                    size: Some(meta.len()),
                },
                checksum: Some(digest),
                file_len: Some(meta.len()),
            })
        }
        Source::Url { url, .. } => Ok(Resolved {
            describe: format!(
                "{} (fetched by Qdrant itself; {})",
                shown_url(url),
                match &given {
                    Some(g) => format!("Qdrant checks its sha256 against {g}"),
                    None => "no checksum given: Qdrant cannot verify it".to_owned(),
                }
            ),
            out: SourceOut { kind: "url".into(), name: None, file: None, url: Some(shown_url(url)), size: None },
            checksum: given,
            file_len: None,
        }),
    }
}

/// Whether `url` is on Qdrant's own origin (then Qdrant fetches it with the
/// API key; another server never gets the key).
fn same_origin(valid: &Valid, url: &str) -> bool {
    Url::parse(url).is_ok_and(|u| u.origin() == valid.origin)
}

fn version_warning(server: Option<&str>, source: Option<Version>) -> Option<String> {
    let server = Version::parse(server?)?;
    compatibility_warning(server, source?)
}

fn plan_restore(
    valid: &Valid,
    restore: &Restore,
    client: &mut Client<'_>,
    server_version: &str,
    info: Option<CollectionInfo>,
    actions: &mut Vec<PlanAction>,
) -> Result<(), StepError> {
    if let Some(w) = version_warning(Some(server_version), restore.source_version)
        && let Some(first) = actions.first_mut()
    {
        first.detail = Some(format!("{}; warning: {w}", first.detail.clone().unwrap_or_default()));
    }
    let c = &valid.collection;
    let mut listed = None;
    let source = resolve_source(valid, restore, client, &mut listed)?;
    match &info {
        Some(i) if restore.emergency_snapshot => actions.push(
            PlanAction::new(format!("create an emergency snapshot of collection `{c}` first"))
                .detail(format!("{}; undo recovers it", describe(i))),
        ),
        Some(i) => actions.push(
            PlanAction::new(format!("take no emergency snapshot of collection `{c}`"))
                .detail(format!("{}; `emergency_snapshot = false`: undo will not be possible", describe(i))),
        ),
        None => actions.push(
            PlanAction::new(format!("collection `{c}` does not exist yet"))
                .detail("the recovery creates it; there is nothing to keep an emergency snapshot of"),
        ),
    }
    let how = match &restore.source {
        Source::File { .. } => "upload",
        _ => "recover from",
    };
    actions.push(PlanAction::new(format!("{how} {} into collection `{c}`", source.describe)).detail(format!(
        "priority `{}`; this replaces the collection's data on the server",
        restore.priority.as_str()
    )));
    actions.push(PlanAction::new("then verify".to_owned()).detail(describe_expect(&restore.expect)));
    Ok(())
}

fn describe_expect(expect: &Expect) -> String {
    let mut parts = vec![format!("status is {}", expect.status.join(" or "))];
    if expect.readyz {
        parts.push("GET /readyz answers 200".to_owned());
    }
    if let Some(p) = expect.points {
        parts.push(format!(
            "exactly {p}{} points (an exact count, taken by run right after the recovery)",
            expect.tolerance.describe()
        ));
    }
    parts.join(", ")
}

fn run_restore(valid: &Valid, restore: &Restore, client: &mut Client<'_>) -> Result<Outcome<Outputs>, StepError> {
    let c = valid.collection.clone();
    let version = client.version().map_err(|e| fail(client, e, NOTHING_CHANGED))?;
    let mut warnings = Vec::new();
    if Version::parse(&version.version).is_none() {
        warnings.push(format!("cannot read the server's version `{}`; the version check was skipped", version.version));
    }
    if let Some(w) = version_warning(Some(&version.version), restore.source_version) {
        warnings.push(w);
    }
    let info = client.collection_info().map_err(|e| fail(client, e, NOTHING_CHANGED))?;
    let points_before = match &info {
        Some(_) => Some(client.count_exact().map_err(|e| fail(client, e, NOTHING_CHANGED))?),
        None => None,
    };
    client.env().info(format!(
        "{} {} at {}; collection `{c}`: {}",
        version.title,
        version.version,
        valid.base,
        match (&info, points_before) {
            (Some(i), Some(p)) => format!("status {}, {p} points", i.status),
            _ => "does not exist yet".to_owned(),
        }
    ));
    let mut listed = None;
    let source = resolve_source(valid, restore, client, &mut listed)?;
    for w in &warnings {
        client.env().warn(w.clone());
    }

    let emergency = match (&info, restore.emergency_snapshot) {
        (Some(_), true) => {
            let before = match listed {
                Some(list) => list,
                None => client.list().map_err(|e| fail(client, e, NOTHING_CHANGED))?,
            };
            let (snap, _) = create_reconciled(client, &before, "the emergency snapshot")
                .map_err(|e| with_context(e, "the restore was not started"))?;
            if snap.checksum.is_none() {
                warnings.push(format!(
                    "Qdrant lists no checksum for the emergency snapshot `{}`; undo will recover it unverified",
                    snap.name
                ));
            }
            client.env().info(format!(
                "emergency snapshot `{}` (sha256 {}) holds collection `{c}` as it is now{}",
                snap.name,
                show_opt(&snap.checksum),
                points_before.map(|p| format!(" ({p} points)")).unwrap_or_default()
            ));
            Some(Emergency::of(&snap, points_before))
        }
        (Some(_), false) => {
            warnings.push(
                "`emergency_snapshot = false`: no snapshot of the collection was taken first; undo is not possible"
                    .to_owned(),
            );
            None
        }
        (None, _) => {
            client.env().info(format!("collection `{c}` does not exist; the recovery creates it"));
            None
        }
    };

    client.env().info(format!("recovering collection `{c}` from {}", source.describe));
    let priority = restore.priority.as_str();
    let checksum = source.checksum.as_deref();
    let result = match &restore.source {
        Source::Name { name, .. } => {
            let location = client.snapshot_url(name);
            client.recover(&location, priority, checksum, true)
        }
        Source::Url { url, .. } => {
            let send_key = same_origin(valid, url);
            client.recover(url, priority, checksum, send_key)
        }
        Source::File { path, .. } => {
            let len = source.file_len.unwrap_or(0);
            match fs::File::open(path) {
                Ok(file) => {
                    let multipart = Multipart::for_file(file_name(path), checksum.unwrap_or_default());
                    let reader =
                        Progress { inner: file, done: 0, total: len, report: client.env().progress_reporter() };
                    client.upload(Box::new(reader), len, &multipart, priority, checksum)
                }
                Err(e) => {
                    return Err(StepError::failed(format!(
                        "cannot open `source.file` {path}: {e}; the recovery was not started{}",
                        emergency_hint(&emergency)
                    )));
                }
            }
        }
    };
    match result {
        Ok(Done::Completed(())) => {}
        Ok(Done::Accepted) => warnings.push(
            "Qdrant accepted the recovery without waiting (202): it continues in the background; verify checks the \
             result"
                .to_owned(),
        ),
        Err(e) => return Err(restore_failed(client, e, &emergency)),
    }

    let after = client.collection_info();
    let status_after = match after {
        Ok(Some(i)) => Some(i.status),
        Ok(None) => None,
        Err(e) => {
            warnings.push(format!("could not read the collection after the restore: {e}"));
            None
        }
    };
    let points_after = match client.count_exact() {
        Ok(n) => Some(n),
        Err(e) => {
            warnings.push(format!("could not count the points after the restore: {e}"));
            None
        }
    };
    for w in warnings.iter().filter(|w| w.starts_with("could not") || w.starts_with("Qdrant accepted")) {
        client.env().warn(w.clone());
    }
    let from = match &restore.source {
        Source::Name { name, .. } => format!("snapshot `{name}`"),
        Source::File { path, .. } => format!("uploaded file {path}"),
        Source::Url { url, .. } => shown_url(url),
    };
    let summary = format!(
        "restored collection `{c}` from {from}: {}{}{}",
        points_after.map(|p| format!("{p} points")).unwrap_or_else(|| "point count unknown".into()),
        points_before.map(|p| format!(" (was {p})")).unwrap_or_default(),
        emergency.as_ref().map(|e| format!("; emergency snapshot `{}`", e.name)).unwrap_or_default()
    );
    client.env().info(summary.clone());
    let outputs = Restored {
        collection: c,
        server_version: Some(version.version),
        source: source.out,
        checksum: source.checksum,
        priority: priority.to_owned(),
        emergency,
        points_before,
        points_after,
        status_after,
        warnings,
        undone_from: None,
        points_after_undo: None,
    };
    Ok(Outcome::new(summary, Outputs::Restore(Box::new(outputs))))
}

/// Counts what a reader yields, for progress.
struct Progress<R> {
    inner: R,
    done: u64,
    total: u64,
    report: Box<dyn FnMut(u64, Option<u64>)>,
}

impl<R: Read> Read for Progress<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        (self.report)(self.done, Some(self.total));
        Ok(n)
    }
}

fn emergency_hint(emergency: &Option<Emergency>) -> String {
    match emergency {
        Some(e) => format!(
            "; the emergency snapshot `{}` (sha256 {}) holds the collection as it was before: recover it with \
             `action = \"restore\"` and `source = {{ name = \"{}\" }}`",
            e.name,
            show_opt(&e.checksum),
            e.name
        ),
        None => String::new(),
    }
}

/// A failed recovery: Qdrant's error verbatim, the collection's state now,
/// and the emergency snapshot.
fn restore_failed(client: &mut Client<'_>, e: ApiError, emergency: &Option<Emergency>) -> StepError {
    let not_sent = matches!(e.failure, Failure::NotSent(_));
    let state = match (not_sent, client.collection_info()) {
        (true, _) => "the recovery was not sent, so the collection was not changed".to_owned(),
        (false, Ok(Some(i))) => format!("the collection now reports status {}{}", i.status, approx(&i)),
        (false, Ok(None)) => "the collection does not exist now".to_owned(),
        (false, Err(read)) => format!("its state could not be read ({read})"),
    };
    let head = if e.is_outcome_unknown() {
        format!("{e}; the recovery was not sent again")
    } else {
        format!("the recovery failed: {e}")
    };
    let kind_of = fail(client, e, "");
    let message = format!("{head}; {state}{}", emergency_hint(emergency));
    match kind_of {
        StepError::InvalidConfig(_) => StepError::InvalidConfig(message),
        _ => StepError::Failed(message),
    }
}

/// The `expect` checks, with `GET` requests only (the host allows no other
/// in `verify`): the collection's status and `/readyz` now, and the exact
/// count `run` took right after the recovery (`POST …/points/count` is a
/// POST). Each problem in words; request failures are errors.
fn check_expect(client: &mut Client<'_>, expect: &Expect, counted: Option<u64>) -> Result<Vec<String>, StepError> {
    let mut problems = Vec::new();
    let c = client.collection.clone();
    let info = match client.collection_info().map_err(|e| fail(client, e, ""))? {
        None => {
            problems.push(format!("collection `{c}` does not exist"));
            return Ok(problems);
        }
        Some(info) => info,
    };
    if !expect.status.contains(&info.status) {
        problems.push(format!(
            "collection `{c}` has status `{}`, expected {}",
            info.status,
            expect.status.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(" or ")
        ));
    }
    if expect.readyz {
        let (status, text) = client.readyz().map_err(|e| fail(client, e, ""))?;
        if status != 200 {
            problems.push(format!("GET /readyz answered {status}: {text}"));
        }
    }
    if let Some(expected) = expect.points {
        let allowed = expect.tolerance.allowed(expected);
        match counted {
            Some(count) if count.abs_diff(expected) > allowed => problems.push(format!(
                "collection `{c}` had {count} points right after the restore (exact count), expected {expected}{}",
                expect.tolerance.describe()
            )),
            Some(_) => {}
            None => problems.push(format!(
                "the run could not count the points of `{c}` after the restore, so `expect.points` cannot be checked"
            )),
        }
        if let Some(now) = info.points_count
            && now.abs_diff(expected) > allowed
        {
            client.env().warn(format!(
                "collection `{c}` reports about {now} points now (Qdrant's approximate count); expected {expected}{}",
                expect.tolerance.describe()
            ));
        }
    }
    Ok(problems)
}

fn undo_restore(client: &mut Client<'_>, restore: &Restore, o: Restored) -> Result<Outcome<Outputs>, StepError> {
    let Some(emergency) = o.emergency.clone() else {
        return Err(StepError::precondition(format!(
            "the run took no emergency snapshot of collection `{}` ({}), so there is nothing to recover; nothing was \
             changed",
            o.collection,
            if restore.emergency_snapshot {
                "it did not exist before the restore"
            } else {
                "`emergency_snapshot = false`"
            }
        )));
    };
    let list = client.list().map_err(|e| fail(client, e, NOTHING_CHANGED))?;
    match list.iter().find(|s| s.name == emergency.name) {
        None => {
            return Err(StepError::precondition(format!(
                "the emergency snapshot `{}` is no longer on the server; nothing was changed",
                emergency.name
            )));
        }
        Some(s) if emergency.checksum.is_some() && s.checksum != emergency.checksum => {
            return Err(StepError::precondition(format!(
                "the emergency snapshot `{}` now has checksum {}, not the {} it was taken with; nothing was changed",
                emergency.name,
                show_opt(&s.checksum),
                show_opt(&emergency.checksum)
            )));
        }
        Some(_) => {}
    }
    // Only while the collection still holds what the run left: writes since
    // then would be lost.
    let now = client.count_exact().map_err(|e| fail(client, e, NOTHING_CHANGED))?;
    match o.points_after {
        Some(after) if after != now => {
            return Err(StepError::precondition(format!(
                "collection `{}` has {now} points, not the {after} the restore left: it changed since the run, and \
                 recovering the emergency snapshot `{}` would lose those changes; nothing was changed",
                o.collection, emergency.name
            )));
        }
        Some(_) => {}
        None => client.env().warn("the run could not count the points after the restore; undo cannot check that the collection is unchanged since".to_owned()),
    }
    let version = client.version().map_err(|e| fail(client, e, NOTHING_CHANGED))?;
    let taken_on = o.server_version.as_deref().and_then(Version::parse);
    if let Some(w) = version_warning(Some(&version.version), taken_on) {
        client.env().warn(w);
    }
    client.env().info(format!(
        "recovering collection `{}` from the emergency snapshot `{}` (sha256 {})",
        o.collection,
        emergency.name,
        show_opt(&emergency.checksum)
    ));
    let location = client.snapshot_url(&emergency.name);
    let checksum = emergency.checksum.as_deref();
    match client.recover(&location, restore.priority.as_str(), checksum, true) {
        Ok(Done::Completed(())) => {}
        Ok(Done::Accepted) => client.env().warn("Qdrant accepted the recovery without waiting (202)".to_owned()),
        Err(e) => return Err(restore_failed(client, e, &Some(emergency))),
    }
    let points = client.count_exact().ok();
    let summary = format!(
        "recovered collection `{}` from the emergency snapshot `{}`: {}",
        o.collection,
        emergency.name,
        points.map(|p| format!("{p} points")).unwrap_or_else(|| "point count unknown".into())
    );
    client.env().info(summary.clone());
    Ok(Outcome::new(
        summary,
        Outputs::Restore(Box::new(Restored { undone_from: Some(emergency.name), points_after_undo: points, ..o })),
    ))
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

fn plural(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

fn known(list: &[Snapshot]) -> String {
    if list.is_empty() {
        return " (it has no snapshots)".to_owned();
    }
    let names: Vec<String> = newest_first(list.to_vec()).iter().take(5).map(|s| format!("`{}`", s.name)).collect();
    format!(" (newest: {})", names.join(", "))
}

fn delete_action(valid: &Valid, s: &Snapshot, keep: u64) -> PlanAction {
    PlanAction::new(format!("delete snapshot `{}` of collection `{}`", s.name, valid.collection)).detail(format!(
        "{}{}; older than the newest {keep}; a deleted snapshot cannot be brought back",
        show_size(s.size),
        created(s)
    ))
}

#[cfg(test)]
#[path = "ops_tests.rs"]
mod tests;
