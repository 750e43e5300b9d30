//! What the step tells people: plan actions, run outputs, log lines and
//! check failures, with secret-looking values masked.
//!
//! # Masking
//!
//! A `.env` file often holds secrets, and plan output, logs and outputs are
//! shown and stored far from it. A value is replaced by `***` wherever it is
//! reported when its key looks secret ([`is_secret_key`]) or the value itself
//! carries credentials (a URL with a password, [`has_url_credentials`]). Old and
//! new values are masked alike: a new value may come from a secret substituted
//! into the runbook. An unchanged masked key reads "already has the requested
//! value", which reveals nothing the operator did not ask for.

#![forbid(unsafe_code)]

use backout_sdk::text::count;
use serde::{Deserialize, Serialize};

use crate::dotenv::{Change, ChangeKind, Found, Mismatch};

/// The masking rules are the SDK's, shared with the other first-party
/// plugins: see [`backout_sdk::secrets`].
pub use backout_sdk::secrets::{MASK, has_url_credentials, is_secret_key};

/// Whether values of `key` are masked, given the values seen for it.
fn masks<'a>(key: &str, values: impl IntoIterator<Item = Option<&'a str>>) -> bool {
    is_secret_key(key) || values.into_iter().flatten().any(has_url_credentials)
}

/// A value as shown to people: an empty value reads `(empty)`, a value with
/// surrounding blanks or control characters is quoted so they are visible.
fn show(value: &str) -> String {
    let needs_quotes = value.starts_with(char::is_whitespace)
        || value.ends_with(char::is_whitespace)
        || value.contains(char::is_control);
    if value.is_empty() {
        "(empty)".to_owned()
    } else if needs_quotes {
        format!("{value:?}")
    } else {
        value.to_owned()
    }
}

/// `value` for display, or [`MASK`] when `masked`.
fn shown(value: &str, masked: bool) -> String {
    if masked { MASK.to_owned() } else { show(value) }
}

// ---------------------------------------------------------------------------
// Outputs
// ---------------------------------------------------------------------------

/// What `run` returns, and `verify` and `undo` receive back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outputs {
    /// The file edited (the config's `file`).
    pub file: String,
    /// Path of the copy taken before writing; `null` when nothing changed and
    /// the file was not written.
    pub safety_copy: Option<String>,
    /// One record per key in the config, `set` keys first.
    pub changes: Vec<ChangeRecord>,
    /// sha256 (lowercase hex) of the file's bytes before the run.
    pub sha256_before: String,
    /// sha256 of the file's bytes after the run (equal to `sha256_before`
    /// when nothing changed).
    pub sha256_after: String,
    /// Set by `undo`: the safety copy whose bytes were put back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_from: Option<String>,
}

/// What happened to one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRecord {
    pub key: String,
    pub action: ChangeAction,
    /// The value before (the last occurrence, as dotenv loads it); `null`
    /// when the key was absent. `***` when masked.
    pub old: Option<String>,
    /// The value asked for; `null` for a key to unset. `***` when masked.
    pub new: Option<String>,
    /// 1-based line numbers: where the key was before the run, or, for a
    /// created key, the line it was appended as.
    pub lines: Vec<usize>,
}

/// The `action` of a [`ChangeRecord`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeAction {
    Set,
    Unset,
    Unchanged,
    Created,
}

impl From<ChangeKind> for ChangeAction {
    fn from(kind: ChangeKind) -> Self {
        match kind {
            ChangeKind::Set => Self::Set,
            ChangeKind::Unset => Self::Unset,
            ChangeKind::Unchanged => Self::Unchanged,
            ChangeKind::Created => Self::Created,
        }
    }
}

/// A change as recorded in the outputs, values masked as needed.
pub fn record(change: &Change) -> ChangeRecord {
    let masked = masks(&change.key, change_values(change));
    ChangeRecord {
        key: change.key.clone(),
        action: change.kind.into(),
        old: change.old().map(|v| if masked { MASK.to_owned() } else { v.to_owned() }),
        new: change.new.as_deref().map(|v| if masked { MASK.to_owned() } else { v.to_owned() }),
        lines: change.lines(),
    }
}

fn change_values(change: &Change) -> impl Iterator<Item = Option<&str>> {
    change.occurrences.iter().map(|o| Some(o.old.as_str())).chain(std::iter::once(change.new.as_deref()))
}

// ---------------------------------------------------------------------------
// Plan actions and log lines
// ---------------------------------------------------------------------------

/// The one-line summary of a change, imperative, as a plan action.
pub fn action_summary(change: &Change, file: &str) -> String {
    let key = &change.key;
    match (change.kind, &change.new) {
        (ChangeKind::Set, _) => format!("set {key} in {file}"),
        (ChangeKind::Created, _) => format!("add {key} to {file}"),
        (ChangeKind::Unset, _) => format!("remove {key} from {file}"),
        (ChangeKind::Unchanged, Some(_)) => format!("leave {key} as it is in {file}"),
        (ChangeKind::Unchanged, None) => format!("leave {key} absent from {file}"),
    }
}

/// The detail under a plan action: `old → new` per line, `remove (was …)`,
/// or what already holds.
pub fn action_detail(change: &Change) -> String {
    let masked = masks(&change.key, change_values(change));
    let new = change.new.as_deref().map(|v| shown(v, masked)).unwrap_or_default();
    match change.kind {
        ChangeKind::Set => per_line(change, |old| format!("{} → {new}", shown(old, masked))),
        ChangeKind::Unset => per_line(change, |old| format!("remove (was {})", shown(old, masked))),
        ChangeKind::Created => {
            let line = change.appended_line.map(|l| format!(" (new line {l})")).unwrap_or_default();
            format!("absent → {new}{line}")
        }
        ChangeKind::Unchanged if change.new.is_none() => "already absent".to_owned(),
        ChangeKind::Unchanged if masked => "already has the requested value (hidden)".to_owned(),
        ChangeKind::Unchanged => format!("already {new}"),
    }
}

/// One `line N: …` part per occurrence that changes, joined by `; `.
fn per_line(change: &Change, describe: impl Fn(&str) -> String) -> String {
    let parts: Vec<String> = change
        .occurrences
        .iter()
        .filter(|o| o.changes)
        .map(|o| format!("line {}: {}", o.line, describe(&o.old)))
        .collect();
    parts.join("; ")
}

/// A log line for a change `run` made.
pub fn log_line(change: &Change, file: &str) -> String {
    format!("{}: {}", action_summary(change, file), action_detail(change))
}

/// The summary of a run: how many keys changed, and where the safety copy is.
pub fn run_summary(changes: &[Change], file: &str, safety_copy: Option<&str>) -> String {
    let changed = changes.iter().filter(|c| c.kind != ChangeKind::Unchanged).count();
    let unchanged = changes.len() - changed;
    let Some(copy) = safety_copy else {
        return format!("no change needed: {file} already has the requested values; nothing was written");
    };
    let already = if unchanged > 0 { format!(", {unchanged} already as requested") } else { String::new() };
    format!("changed {} in {file}{already} (safety copy {copy})", count(changed, "key"))
}

// ---------------------------------------------------------------------------
// Check failures
// ---------------------------------------------------------------------------

/// Says what was found for a key that does not read as requested, without
/// showing a masked value.
pub fn mismatch_message(mismatch: &Mismatch, file: &str, expected: Option<&str>) -> String {
    let key = &mismatch.key;
    let masked = match &mismatch.found {
        Found::Differs { value, .. } => masks(key, [Some(value.as_str()), expected]),
        _ => masks(key, [expected]),
    };
    let want = expected.map(|v| format!("`{}`", shown(v, masked))).unwrap_or_default();
    match &mismatch.found {
        Found::Missing => format!("key `{key}` is not in `{file}`; expected {want}"),
        Found::Differs { line, .. } if masked => {
            format!("key `{key}` in `{file}` (line {line}) does not hold the requested value (values hidden)")
        }
        Found::Differs { line, value } => {
            format!("key `{key}` in `{file}` (line {line}) holds `{}`; expected {want}", show(value))
        }
        Found::Unclear { line } => format!(
            "key `{key}` in `{file}` (line {line}) has a value that cannot be read unambiguously \
             (it spans lines, may be expanded, or is malformed); expected {want}"
        ),
        Found::Present { lines } => {
            let lines: Vec<String> = lines.iter().map(ToString::to_string).collect();
            let noun = if lines.len() == 1 { "line" } else { "lines" };
            format!("key `{key}` is still in `{file}` ({noun} {}); expected it to be absent", lines.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dotenv::Occurrence;

    fn change(key: &str, kind: ChangeKind, olds: &[(usize, &str)], new: Option<&str>) -> Change {
        Change {
            key: key.into(),
            kind,
            new: new.map(Into::into),
            occurrences: olds.iter().map(|(l, o)| Occurrence { line: *l, old: (*o).into(), changes: true }).collect(),
            appended_line: None,
        }
    }

    #[test]
    fn plan_detail_shows_old_and_new_values() {
        let c = change("ENABLED", ChangeKind::Set, &[(3, "true")], Some("false"));
        assert_eq!(action_summary(&c, "/app/.env"), "set ENABLED in /app/.env");
        assert_eq!(action_detail(&c), "line 3: true → false");
    }

    #[test]
    fn plan_detail_lists_every_changed_occurrence() {
        let c = change("A", ChangeKind::Set, &[(3, "1"), (7, "")], Some("2"));
        assert_eq!(action_detail(&c), "line 3: 1 → 2; line 7: (empty) → 2");
    }

    #[test]
    fn secret_values_are_masked_in_plan_details_and_outputs() {
        let c = change("DB_PASSWORD", ChangeKind::Set, &[(1, "hunter2")], Some("correct horse"));
        assert_eq!(action_detail(&c), "line 1: *** → ***");
        let r = record(&c);
        assert_eq!((r.old.as_deref(), r.new.as_deref()), (Some(MASK), Some(MASK)));
        let c = change("DB_PASSWORD", ChangeKind::Unchanged, &[(1, "x")], Some("x"));
        assert_eq!(action_detail(&c), "already has the requested value (hidden)");
        let c = change("DB_PASSWORD", ChangeKind::Unset, &[(1, "x")], None);
        assert_eq!(action_detail(&c), "line 1: remove (was ***)");
    }

    #[test]
    fn url_credentials_mask_the_values_of_any_key() {
        let c = change("DATABASE_URL", ChangeKind::Set, &[(2, "postgres://u:p@db/x")], Some("postgres://db/y"));
        assert_eq!(action_detail(&c), "line 2: *** → ***");
    }

    #[test]
    fn unchanged_and_absent_details() {
        let c = change("A", ChangeKind::Unchanged, &[(1, "false")], Some("false"));
        assert_eq!(action_summary(&c, "/f"), "leave A as it is in /f");
        assert_eq!(action_detail(&c), "already false");
        let c = change("A", ChangeKind::Unchanged, &[], None);
        assert_eq!(action_summary(&c, "/f"), "leave A absent from /f");
        assert_eq!(action_detail(&c), "already absent");
    }

    #[test]
    fn created_detail_names_the_new_line() {
        let mut c = change("A", ChangeKind::Created, &[], Some(" x"));
        c.appended_line = Some(4);
        assert_eq!(action_summary(&c, "/f"), "add A to /f");
        assert_eq!(action_detail(&c), "absent → \" x\" (new line 4)");
        assert_eq!(record(&c).lines, [4]);
    }

    #[test]
    fn outputs_serialize_with_the_documented_shape() {
        let outputs = Outputs {
            file: "/app/.env".into(),
            safety_copy: None,
            changes: vec![record(&change("A", ChangeKind::Unchanged, &[], None))],
            sha256_before: "ab".into(),
            sha256_after: "ab".into(),
            restored_from: None,
        };
        let json = serde_json::to_value(&outputs).expect("serializes");
        assert_eq!(
            json,
            serde_json::json!({
                "file": "/app/.env",
                "safety_copy": null,
                "changes": [{"key": "A", "action": "unchanged", "old": null, "new": null, "lines": []}],
                "sha256_before": "ab",
                "sha256_after": "ab"
            })
        );
        let back: Outputs = serde_json::from_value(json).expect("deserializes");
        assert_eq!(back, outputs);
    }

    #[test]
    fn run_summary_counts_keys_and_names_the_safety_copy() {
        let set = change("A", ChangeKind::Set, &[(1, "1")], Some("2"));
        let same = change("B", ChangeKind::Unchanged, &[(2, "1")], Some("1"));
        assert_eq!(
            run_summary(&[set.clone(), same.clone()], "/app/.env", Some("/app/.env.backout-x.bak")),
            "changed 1 key in /app/.env, 1 already as requested (safety copy /app/.env.backout-x.bak)"
        );
        assert_eq!(
            run_summary(&[same], "/app/.env", None),
            "no change needed: /app/.env already has the requested values; nothing was written"
        );
    }

    #[test]
    fn mismatch_messages_hide_secret_values() {
        let m = Mismatch { key: "API_TOKEN".into(), found: Found::Differs { line: 2, value: "hunter2".into() } };
        let message = mismatch_message(&m, "/f", Some("s3cret"));
        assert!(!message.contains("hunter2") && !message.contains("s3cret"), "{message}");
        let m = Mismatch { key: "FLAG".into(), found: Found::Differs { line: 2, value: "true".into() } };
        assert_eq!(
            mismatch_message(&m, "/f", Some("false")),
            "key `FLAG` in `/f` (line 2) holds `true`; expected `false`"
        );
        let m = Mismatch { key: "FLAG".into(), found: Found::Present { lines: vec![4] } };
        assert_eq!(mismatch_message(&m, "/f", None), "key `FLAG` is still in `/f` (line 4); expected it to be absent");
    }
}
