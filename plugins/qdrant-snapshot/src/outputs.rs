//! What `run` reports, and what `verify` and `undo` need back from it. One
//! shape per action, tagged by `action`, so later steps read flat keys:
//! `${steps.snap.outputs.name}`, `${steps.restore.outputs.emergency.name}`.

#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};

use crate::snapshots::Snapshot;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum Outputs {
    Create(Created),
    List(Listed),
    Download(Downloaded),
    Restore(Box<Restored>),
    Prune(Pruned),
}

impl Outputs {
    pub fn action(&self) -> &'static str {
        match self {
            Self::Create(_) => "create",
            Self::List(_) => "list",
            Self::Download(_) => "download",
            Self::Restore(_) => "restore",
            Self::Prune(_) => "prune",
        }
    }

    pub fn collection(&self) -> &str {
        match self {
            Self::Create(o) => &o.collection,
            Self::List(o) => &o.collection,
            Self::Download(o) => &o.collection,
            Self::Restore(o) => &o.collection,
            Self::Prune(o) => &o.collection,
        }
    }
}

/// `create`: the snapshot this run created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Created {
    pub collection: String,
    pub name: String,
    pub checksum: Option<String>,
    pub size: u64,
    pub creation_time: Option<String>,
    /// True when the create got no answer and the snapshot was found by
    /// listing again.
    #[serde(default)]
    pub reconciled: bool,
    /// With `keep_last`: the older snapshots deleted after the create.
    #[serde(default)]
    pub pruned: Vec<String>,
    /// Set by `undo`: the snapshot it deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_by_undo: Option<String>,
}

/// `list`: the collection's snapshots, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listed {
    pub collection: String,
    pub count: usize,
    pub newest: Option<String>,
    pub snapshots: Vec<Snapshot>,
}

/// `download`: where the snapshot was written and its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Downloaded {
    pub collection: String,
    pub name: String,
    /// Guest path of the file written.
    pub path: String,
    /// sha256 of the file written; equal to Qdrant's `checksum`.
    pub sha256: String,
    pub size: u64,
    pub creation_time: Option<String>,
    /// True when the file was already there with this digest and nothing was written.
    #[serde(default)]
    pub already_present: bool,
    /// Set by `undo`: the file was removed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub removed_by_undo: bool,
}

/// Where a restore came from, without secrets (a URL's query is dropped).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceOut {
    /// `name`, `file` or `url`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// The snapshot taken before a restore: what `undo` recovers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Emergency {
    pub name: String,
    pub checksum: Option<String>,
    pub size: u64,
    pub creation_time: Option<String>,
    /// The exact point count just before it was taken.
    pub points: Option<u64>,
}

impl Emergency {
    pub fn of(s: &Snapshot, points: Option<u64>) -> Self {
        Self {
            name: s.name.clone(),
            checksum: s.checksum.clone(),
            size: s.size,
            creation_time: s.creation_time.clone(),
            points,
        }
    }
}

/// `restore`: what was restored, from where, and the emergency snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restored {
    pub collection: String,
    pub server_version: Option<String>,
    pub source: SourceOut,
    /// The checksum passed to Qdrant (null when none was known).
    pub checksum: Option<String>,
    pub priority: String,
    /// Null when `emergency_snapshot = false` or the collection did not exist.
    pub emergency: Option<Emergency>,
    pub points_before: Option<u64>,
    pub points_after: Option<u64>,
    pub status_after: Option<String>,
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Set by `undo`: the emergency snapshot recovered, and the count after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undone_from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub points_after_undo: Option<u64>,
}

/// `prune`: what was deleted and kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pruned {
    pub collection: String,
    pub keep_last: u64,
    pub deleted: Vec<Snapshot>,
    pub kept: Vec<String>,
}

/// A URL as shown in logs and outputs: without its query and fragment,
/// which may carry a token (a presigned URL).
pub fn shown_url(url: &str) -> String {
    match url.find(['?', '#']) {
        Some(i) => format!("{}?…", &url[..i]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_flat_and_tagged_by_action() {
        let o = Outputs::Create(Created {
            collection: "docs".into(),
            name: "docs-1.snapshot".into(),
            checksum: Some("ab".into()),
            size: 10,
            creation_time: None,
            reconciled: false,
            pruned: vec![],
            deleted_by_undo: None,
        });
        let json = serde_json::to_value(&o).unwrap();
        assert_eq!(
            json,
            serde_json::json!({ "action": "create", "collection": "docs", "name": "docs-1.snapshot",
                                "checksum": "ab", "size": 10, "creation_time": null, "reconciled": false, "pruned": [] })
        );
        assert_eq!(serde_json::from_value::<Outputs>(json).unwrap(), o);
    }

    #[test]
    fn restore_outputs_round_trip() {
        let o = Outputs::Restore(Box::new(Restored {
            collection: "docs".into(),
            server_version: Some("1.19.0".into()),
            source: SourceOut { kind: "name".into(), name: Some("a".into()), file: None, url: None, size: Some(3) },
            checksum: Some("cd".into()),
            priority: "snapshot".into(),
            emergency: Some(Emergency {
                name: "e".into(),
                checksum: Some("ef".into()),
                size: 4,
                creation_time: None,
                points: Some(7),
            }),
            points_before: Some(7),
            points_after: Some(5),
            status_after: Some("green".into()),
            warnings: vec![],
            undone_from: None,
            points_after_undo: None,
        }));
        let json = serde_json::to_value(&o).unwrap();
        assert_eq!(json["emergency"]["name"], "e");
        assert_eq!(json["source"], serde_json::json!({ "kind": "name", "name": "a", "size": 3 }));
        assert_eq!(serde_json::from_value::<Outputs>(json).unwrap(), o);
    }

    #[test]
    fn urls_lose_their_query() {
        assert_eq!(shown_url("https://s3/x.snapshot?X-Amz-Signature=abc"), "https://s3/x.snapshot?…");
        assert_eq!(shown_url("https://s3/x.snapshot"), "https://s3/x.snapshot");
    }
}
