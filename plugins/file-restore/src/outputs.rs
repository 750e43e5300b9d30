//! What `run` returns, and `verify` and `undo` receive back.

#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};

use crate::pick::Kind;

/// The outputs of a run (also its checkpoint).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outputs {
    /// The file or directory restored (the config's `target`).
    pub target: String,
    /// `file` or `directory`.
    pub kind: Kind,
    /// The backup restored from.
    pub source: String,
    /// How the backup was chosen (`given as `source``, `the newest of 3 …`).
    pub picked: String,
    /// The backup's modification time, RFC 3339 (UTC); null when unknown.
    pub source_modified: Option<String>,
    /// The config's `validate`.
    pub validate: String,
    /// What the check found (`valid TOML, with `server.port``).
    pub checked: String,
    /// Bytes restored: the file's size, or the sum of a directory's files.
    pub size: u64,
    /// For a directory: how many regular files it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
    /// sha256 of the target before the run (for a directory, of its
    /// manifest: every path, kind and file digest).
    pub sha256_before: String,
    /// sha256 of what the run put in place (equal to `sha256_before` when
    /// the target already held it and nothing was written).
    pub sha256_after: String,
    /// Where the previous content is: a copy of the file beside it, or the
    /// previous directory itself, renamed. Null when nothing was written.
    pub safety_copy: Option<String>,
    /// For a directory: the name the backup was staged under beside the
    /// target before it was renamed into place (gone after a run that
    /// finished; `undo` removes it after one that was killed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staging: Option<String>,
    /// Set by `undo`: the safety copy that was put back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_from: Option<String>,
}
