//! Where a restore comes from (a snapshot Qdrant lists, a URL, a file in a
//! granted directory), checked against the server or the disk before
//! anything is changed.

use std::fs;
use std::path::Path;

use backout_sdk::StepError;
use backout_sdk::fs::sha256_file;
use backout_sdk::http::Url;

use crate::api::Client;
use crate::config::{Restore, Source, Valid};
use crate::outputs::{SourceOut, shown_url};
use crate::snapshots::{Snapshot, show_size};
use crate::version::{Version, compatibility_warning};

use crate::ops::{NOTHING_CHANGED, created, fail, known, show_opt};

/// A restore's source, checked against the server or the disk.
pub(super) struct Resolved {
    pub(super) out: SourceOut,
    /// The checksum to pass to Qdrant.
    pub(super) checksum: Option<String>,
    /// For a file: its length.
    pub(super) file_len: Option<u64>,
    /// One line for plan and logs.
    pub(super) describe: String,
}

pub(super) fn resolve_source(
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
pub(super) fn same_origin(valid: &Valid, url: &str) -> bool {
    Url::parse(url).is_ok_and(|u| u.origin() == valid.origin)
}

pub(super) fn version_warning(server: Option<&str>, source: Option<Version>) -> Option<String> {
    let server = Version::parse(server?)?;
    compatibility_warning(server, source?)
}
