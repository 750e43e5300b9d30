//! What `run` reports, and what `verify` and `undo` need back from it.

#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};

use crate::sqlite::ExpectResult;

/// `run`'s outputs: later steps read them as `${steps.ID.outputs.KEY}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outputs {
    /// The live database that was replaced (guest path).
    pub db: String,
    /// The backup restored, its size and modification time (RFC 3339).
    pub backup: String,
    pub backup_size: u64,
    pub backup_modified: Option<String>,
    /// sha256 of the restored database as written: `undo` acts only while
    /// the live database still has it.
    pub sha256: String,
    pub size: u64,
    pub page_size: u32,
    pub page_count: u64,
    /// The check that passed before the swap (`integrity_check` or `quick_check`).
    pub check: String,
    /// The previous database, kept before it was replaced; null when there was none.
    pub safety_copy: Option<String>,
    pub safety_copy_size: Option<u64>,
    /// Its `-wal` and `-journal`, kept beside the safety copy under the same
    /// name plus the suffix, so the copy opens with them as it was.
    pub safety_wal: Option<String>,
    pub safety_journal: Option<String>,
    /// What each `expect` query returned after the restore.
    pub expect: Vec<ExpectResult>,
    /// The live database already held the backup's bytes: `run` wrote
    /// nothing and kept no safety copy, and `undo` has nothing to put back.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unchanged: bool,
    /// Set by `undo`: what it put back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undone_from: Option<String>,
}
