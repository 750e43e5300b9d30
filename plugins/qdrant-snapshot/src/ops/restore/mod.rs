//! restore: recover a collection from a snapshot (by name, URL or file),
//! after an emergency snapshot of what it holds now, then check it.

mod expect;
mod source;
mod undo;

use std::fs;
use std::io::{self, Read};

use backout_sdk::{Action as PlanAction, Outcome, StepError};

use crate::api::{ApiError, Client, CollectionInfo, Done, Failure};
use crate::config::{Restore, Source, Valid};
use crate::multipart::Multipart;
use crate::outputs::{Emergency, Outputs, Restored, shown_url};
use crate::version::Version;

use crate::ops::create::create_reconciled;
use crate::ops::download::file_name;
use crate::ops::{NOTHING_CHANGED, approx, describe, fail, show_opt, with_context};
pub(super) use expect::check_expect;
use expect::describe_expect;
use source::{resolve_source, same_origin, version_warning};
pub(super) use undo::undo_restore;

pub(super) fn plan_restore(
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
            PlanAction::check(format!("take no emergency snapshot of collection `{c}`"))
                .detail(format!("{}; `emergency_snapshot = false`: undo will not be possible", describe(i))),
        ),
        None => actions.push(
            PlanAction::check(format!("collection `{c}` does not exist yet"))
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
    actions.push(PlanAction::check("then verify".to_owned()).detail(describe_expect(&restore.expect)));
    Ok(())
}

pub(super) fn run_restore(
    valid: &Valid,
    restore: &Restore,
    client: &mut Client<'_>,
) -> Result<Outcome<Outputs>, StepError> {
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
pub(super) struct Progress<R> {
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

pub(super) fn emergency_hint(emergency: &Option<Emergency>) -> String {
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
pub(super) fn restore_failed(client: &mut Client<'_>, e: ApiError, emergency: &Option<Emergency>) -> StepError {
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
