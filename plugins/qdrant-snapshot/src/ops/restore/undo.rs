//! Undoing a restore: recovering the emergency snapshot `run` took, only if
//! the collection still holds what the restore put there.

use backout_sdk::{Outcome, StepError};

use crate::api::{Client, Done};
use crate::config::Restore;
use crate::outputs::{Outputs, Restored};
use crate::version::Version;

use super::restore_failed;
use super::source::version_warning;
use crate::ops::{NOTHING_CHANGED, fail, show_opt};

pub(in crate::ops) fn undo_restore(
    client: &mut Client<'_>,
    restore: &Restore,
    o: Restored,
) -> Result<Outcome<Outputs>, StepError> {
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
