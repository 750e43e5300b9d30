//! create (and its `keep_last` pruning), list and prune: the actions on the
//! collection's list of snapshots, each change reconciled with a fresh list
//! when its answer is lost.

use backout_sdk::{Action as PlanAction, Outcome, StepError};

use crate::api::{Client, Done};
use crate::config::Valid;
use crate::outputs::{Created, Listed, Outputs, Pruned};
use crate::snapshots::{Reconciled, Snapshot, newest_first, plan_prune, reconcile_create, show_size};

use crate::ops::{NOTHING_CHANGED, RECONCILE_TRIES, RECONCILE_WAIT, created, fail, plural, show_opt, with_context};

pub(super) fn run_create(
    valid: &Valid,
    client: &mut Client<'_>,
    keep_last: Option<u64>,
) -> Result<Outcome<Outputs>, StepError> {
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
pub(super) fn create_reconciled(
    client: &mut Client<'_>,
    before: &[Snapshot],
    what: &str,
) -> Result<(Snapshot, bool), StepError> {
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
pub(super) fn delete_reconciled(client: &mut Client<'_>, name: &str) -> Result<(), StepError> {
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
pub(super) fn prune(
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

pub(super) fn run_prune(
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

pub(super) fn run_list(valid: &Valid, client: &mut Client<'_>) -> Result<Outcome<Outputs>, StepError> {
    let list = newest_first(client.list().map_err(|e| fail(client, e, ""))?);
    let newest = list.first().map(|s| s.name.clone());
    let summary = match &newest {
        Some(n) => format!("`{}` has {}; newest `{n}`", valid.collection, plural(list.len(), "snapshot")),
        None => format!("`{}` has no snapshots", valid.collection),
    };
    let outputs = Listed { collection: valid.collection.clone(), count: list.len(), newest, snapshots: list };
    Ok(Outcome::new(summary, Outputs::List(outputs)))
}

pub(super) fn undo_create(client: &mut Client<'_>, o: Created) -> Result<Outcome<Outputs>, StepError> {
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

pub(super) fn delete_action(valid: &Valid, s: &Snapshot, keep: u64) -> PlanAction {
    PlanAction::new(format!("delete snapshot `{}` of collection `{}`", s.name, valid.collection)).detail(format!(
        "{}{}; older than the newest {keep}; a deleted snapshot cannot be brought back",
        show_size(s.size),
        created(s)
    ))
}
