//! The step's configuration: what the runbook's `with` table may hold, how it
//! is checked, and its JSON Schema.
//!
//! Deserializing only checks shapes; [`Config::validate`] checks meaning and
//! reports every problem at once, naming the offending key. Keys that do not
//! apply to the chosen `action` are refused rather than ignored: a `to` on a
//! `restore` is a mistake the operator should hear about before anything runs.

#![forbid(unsafe_code)]

use backout_sdk::Validate;
use backout_sdk::config::{Pointer, Problems};
use std::time::Duration;

use backout_sdk::http::Url;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::version::Version;

/// The default limit for one request to Qdrant, from sending it to the last
/// byte of the answer. Shorter than the step's default `timeout` (60 s), so
/// a request that times out leaves time to list and reconcile.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest `timeout` accepted.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// The runbook's `with` table for a `qdrant-snapshot` step.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Qdrant's REST address, `http://127.0.0.1:6333`; its origin must be in
    /// the step's `net` grant.
    pub url: String,
    pub collection: String,
    /// Name of a granted environment variable holding the API key.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Limit for each request (`30s`, `5m`).
    #[serde(default)]
    pub timeout: Option<String>,
    /// `create`, `list`, `download`, `restore` or `prune`.
    pub action: String,
    /// `download`: the snapshot to download (default: the newest).
    #[serde(default)]
    pub snapshot: Option<String>,
    /// `download`: the directory to write it into.
    #[serde(default)]
    pub to: Option<String>,
    /// `restore`: where the snapshot comes from.
    #[serde(default)]
    pub source: Option<SourceDef>,
    /// `restore`: `snapshot` (default), `replica` or `no_sync`.
    #[serde(default)]
    pub priority: Option<String>,
    /// `restore`: take a snapshot of the collection first (default true).
    #[serde(default)]
    pub emergency_snapshot: Option<bool>,
    /// `restore`: the Qdrant version the snapshot was taken on, if known.
    #[serde(default)]
    pub source_version: Option<String>,
    /// `prune` (and `create`): how many of the newest snapshots to keep.
    #[serde(default)]
    pub keep_last: Option<Value>,
    /// `prune`: snapshots never deleted (those created earlier in this run).
    #[serde(default)]
    pub protect: Option<Vec<String>>,
    /// `restore`: what must hold afterwards (checked by `verify`).
    #[serde(default)]
    pub expect: Option<ExpectDef>,
}

/// `source = { name = "…" }`, `{ file = "…" }` or `{ url = "…" }`, each with
/// an optional `checksum`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceDef {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub file: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub checksum: Option<String>,
}

/// `expect = { status = […], readyz = true, points = N, tolerance = … }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectDef {
    #[serde(default)]
    pub status: Option<Vec<String>>,
    #[serde(default)]
    pub readyz: Option<bool>,
    #[serde(default)]
    pub points: Option<Value>,
    #[serde(default)]
    pub tolerance: Option<Value>,
}

/// What the step does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Create a snapshot; with `keep_last`, then prune older ones (never the new one).
    Create {
        keep_last: Option<u64>,
    },
    List,
    Download {
        snapshot: Option<String>,
        to: String,
    },
    Restore(Restore),
    Prune {
        keep_last: u64,
        protect: Vec<String>,
    },
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Create { .. } => "create",
            Self::List => "list",
            Self::Download { .. } => "download",
            Self::Restore(_) => "restore",
            Self::Prune { .. } => "prune",
        }
    }
}

/// A checked `restore`.
#[derive(Debug, Clone, PartialEq)]
pub struct Restore {
    pub source: Source,
    pub priority: Priority,
    pub emergency_snapshot: bool,
    pub source_version: Option<Version>,
    pub expect: Expect,
}

/// Where a restore's snapshot comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A snapshot of the collection on the server, by name.
    Name { name: String, checksum: Option<String> },
    /// A snapshot file in a granted directory, uploaded to Qdrant.
    File { path: String, checksum: Option<String> },
    /// A URL Qdrant fetches the snapshot from itself.
    Url { url: String, checksum: Option<String> },
}

impl Source {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Name { .. } => "name",
            Self::File { .. } => "file",
            Self::Url { .. } => "url",
        }
    }

    /// The checksum the runbook gave, if any.
    pub fn checksum(&self) -> Option<&str> {
        match self {
            Self::Name { checksum, .. } | Self::File { checksum, .. } | Self::Url { checksum, .. } => {
                checksum.as_deref()
            }
        }
    }
}

/// `SnapshotPriority` in Qdrant's OpenAPI document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    NoSync,
    Snapshot,
    Replica,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoSync => "no_sync",
            Self::Snapshot => "snapshot",
            Self::Replica => "replica",
        }
    }
}

/// How far the exact point count may be from `points`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Tolerance {
    /// At most this many points either way.
    Points(u64),
    /// At most this percentage of `points` either way.
    Percent(f64),
}

impl Tolerance {
    /// The largest accepted difference from `expected`.
    pub fn allowed(self, expected: u64) -> u64 {
        match self {
            Self::Points(n) => n,
            Self::Percent(p) => (expected as f64 * p / 100.0).floor() as u64,
        }
    }

    pub fn describe(self) -> String {
        match self {
            Self::Points(0) => String::new(),
            Self::Points(n) => format!(" ± {n}"),
            Self::Percent(p) => format!(" ± {p}%"),
        }
    }
}

/// The checks `verify` runs after a restore.
#[derive(Debug, Clone, PartialEq)]
pub struct Expect {
    /// Accepted collection statuses.
    pub status: Vec<String>,
    /// Whether `GET /readyz` must answer 200.
    pub readyz: bool,
    /// The exact point count expected, if any.
    pub points: Option<u64>,
    pub tolerance: Tolerance,
}

impl Default for Expect {
    fn default() -> Self {
        Self {
            status: vec!["green".to_owned(), "yellow".to_owned()],
            readyz: true,
            points: None,
            tolerance: Tolerance::Points(0),
        }
    }
}

/// A config that passed [`Config::validate`].
#[derive(Debug, Clone, PartialEq)]
pub struct Valid {
    /// `url` without a trailing `/`.
    pub base: String,
    /// `scheme://host:port`: what the `net` grant must name.
    pub origin: String,
    pub collection: String,
    pub api_key_env: Option<String>,
    pub timeout: Duration,
    pub action: Action,
}

/// The statuses `CollectionStatus` allows.
pub const STATUSES: [&str; 4] = ["green", "yellow", "grey", "red"];

const ACTIONS: &str = "`create`, `list`, `download`, `restore` or `prune`";

impl Validate for Config {
    type Valid = Valid;
    type Error = Problems;

    /// Checks what deserializing cannot, reporting every problem at once,
    /// each at the key it is about.
    fn validate(self) -> Result<Valid, Problems> {
        let mut problems = Problems::new();
        let (base, origin) = check_url(&self.url, &mut problems);
        check_collection(&self.collection, &mut problems);
        if let Some(name) = &self.api_key_env
            && !is_env_name(name)
        {
            problems.at(
                "/api_key_env",
                format!("`api_key_env` must name an environment variable (letters, digits and `_`), not `{name}`"),
            );
        }
        let timeout = match &self.timeout {
            None => DEFAULT_TIMEOUT,
            Some(text) => match parse_duration(text) {
                Ok(d) if d > MAX_TIMEOUT => {
                    problems.at("/timeout", format!("`timeout` may be at most 24h, not `{text}`"));
                    DEFAULT_TIMEOUT
                }
                Ok(d) => d,
                Err(e) => {
                    problems.at("/timeout", format!("`timeout`: {e}"));
                    DEFAULT_TIMEOUT
                }
            },
        };
        let action = self.check_action(&mut problems);
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Valid {
            base,
            origin,
            collection: self.collection,
            api_key_env: self.api_key_env,
            timeout,
            action: action.expect("no problems, so an action"),
        })
    }
}

impl Config {
    fn check_action(&self, problems: &mut Problems) -> Option<Action> {
        let action = self.action.as_str();
        // Keys that only some actions take: refuse them elsewhere (named at
        // the key, which is the one out of place).
        let only = |key: &str, present: bool, allowed: &[&str], problems: &mut Problems| {
            if present && !allowed.contains(&action) {
                let list: Vec<String> = allowed.iter().map(|a| format!("`{a}`")).collect();
                problems.at(
                    Pointer::root().key(key),
                    format!("`{key}` applies only to action {}, not to `{action}`", list.join(" and ")),
                );
            }
        };
        if ["create", "list", "download", "restore", "prune"].contains(&action) {
            only("snapshot", self.snapshot.is_some(), &["download"], problems);
            only("to", self.to.is_some(), &["download"], problems);
            only("source", self.source.is_some(), &["restore"], problems);
            only("priority", self.priority.is_some(), &["restore"], problems);
            only("emergency_snapshot", self.emergency_snapshot.is_some(), &["restore"], problems);
            only("source_version", self.source_version.is_some(), &["restore"], problems);
            only("expect", self.expect.is_some(), &["restore"], problems);
            only("keep_last", self.keep_last.is_some(), &["create", "prune"], problems);
            only("protect", self.protect.is_some(), &["prune"], problems);
        }
        match action {
            "create" => {
                let keep_last = self.keep_last.as_ref().and_then(|v| count_value("keep_last", v, 1, problems));
                Some(Action::Create { keep_last })
            }
            "list" => Some(Action::List),
            "download" => {
                if let Some(name) = &self.snapshot {
                    check_snapshot_name(Pointer::root().key("snapshot"), "snapshot", name, problems);
                }
                let to = match &self.to {
                    Some(to) => {
                        check_path("to", to, problems);
                        trim_slash(to)
                    }
                    None => {
                        problems.at(
                            "/action",
                            "`download` needs `to`: the guest directory to write the snapshot into, such as `/backups`",
                        );
                        String::new()
                    }
                };
                Some(Action::Download { snapshot: self.snapshot.clone(), to })
            }
            "restore" => self.check_restore(problems).map(Action::Restore),
            "prune" => {
                let keep_last = match &self.keep_last {
                    Some(v) => count_value("keep_last", v, 1, problems).unwrap_or(1),
                    None => {
                        problems.at(
                            "/action",
                            "`prune` needs `keep_last`: how many of the newest snapshots to keep (at least 1)",
                        );
                        1
                    }
                };
                let protect = self.protect.clone().unwrap_or_default();
                for (i, name) in protect.iter().enumerate() {
                    check_snapshot_name(Pointer::root().key("protect").index(i), "protect", name, problems);
                }
                Some(Action::Prune { keep_last, protect })
            }
            other => {
                problems.at("/action", format!("`action` must be {ACTIONS}, not `{other}`"));
                None
            }
        }
    }

    fn check_restore(&self, problems: &mut Problems) -> Option<Restore> {
        let source = match &self.source {
            None => {
                problems.at(
                    "/action",
                    "`restore` needs `source`: `{ name = \"…\" }` (a snapshot on the server), \
                     `{ file = \"/backups/….snapshot\" }` or `{ url = \"…\" }`",
                );
                None
            }
            Some(def) => check_source(def, problems),
        };
        let priority = match self.priority.as_deref() {
            None | Some("snapshot") => Priority::Snapshot,
            Some("replica") => Priority::Replica,
            Some("no_sync") => Priority::NoSync,
            Some(other) => {
                problems
                    .at("/priority", format!("`priority` must be `snapshot`, `replica` or `no_sync`, not `{other}`"));
                Priority::Snapshot
            }
        };
        let source_version = match &self.source_version {
            None => None,
            Some(text) => match Version::parse(text) {
                Some(v) => Some(v),
                None => {
                    problems.at(
                        "/source_version",
                        format!("`source_version` must be a version such as `1.18.2`, not `{text}`"),
                    );
                    None
                }
            },
        };
        let expect = match &self.expect {
            None => Expect::default(),
            Some(def) => check_expect(def, problems),
        };
        Some(Restore {
            source: source?,
            priority,
            emergency_snapshot: self.emergency_snapshot.unwrap_or(true),
            source_version,
            expect,
        })
    }
}

fn check_url(url: &str, problems: &mut Problems) -> (String, String) {
    let parsed = match Url::parse(url) {
        Ok(u) => u,
        Err(e) => {
            problems.at("/url", format!("`url`: {e}"));
            return (String::new(), String::new());
        }
    };
    if parsed.path_with_query.contains('?') || url.contains('#') {
        problems.at("/url", format!("`url` must be Qdrant's address without a query or fragment, not `{url}`"));
    }
    let path = parsed.path_with_query.trim_end_matches('/');
    let base = format!("{}://{}{}", parsed.scheme.as_str(), parsed.authority(), path);
    (base, parsed.origin())
}

fn check_collection(name: &str, problems: &mut Problems) {
    if name.is_empty() {
        problems.at("/collection", "`collection` is empty");
    } else if name.len() > 255 {
        problems.at("/collection", "`collection` is longer than 255 bytes");
    } else if name.chars().any(|c| c.is_control() || c == '/') {
        problems.at("/collection", format!("`collection` must not contain `/` or control characters: {name:?}"));
    }
}

/// Snapshot names become URL path segments and file names: no `/`, `\`,
/// control characters, leading `.`.
pub fn snapshot_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("is empty".to_owned())
    } else if name.starts_with('.') {
        Some(format!("`{name}` starts with `.`"))
    } else if name.chars().any(|c| c.is_control() || c == '/' || c == '\\') {
        Some(format!("{name:?} contains `/`, `\\` or a control character"))
    } else if name.len() > 255 {
        Some("is longer than 255 bytes".to_owned())
    } else {
        None
    }
}

/// `at` is where the name is (`/protect/2`), `key` how the message names it.
fn check_snapshot_name(at: Pointer, key: &str, name: &str, problems: &mut Problems) {
    if let Some(why) = snapshot_name_problem(name) {
        problems.at(at, format!("`{key}`: the snapshot name {why}"));
    }
}

/// The pointer of a key named in dotted form (`source.file`).
fn pointer(dotted: &str) -> Pointer {
    dotted.split('.').fold(Pointer::root(), Pointer::key)
}

fn check_path(key: &str, path: &str, problems: &mut Problems) {
    let at = pointer(key);
    if path.is_empty() {
        problems.at(at, format!("`{key}` is empty: give an absolute guest path such as `/backups`"));
    } else if !path.starts_with('/') {
        problems.at(at, format!("`{key}` must be an absolute guest path such as `/backups`, not `{path}`"));
    } else if path.contains('\0') {
        problems.at(at, format!("`{key}` contains a NUL character"));
    } else if path.split('/').any(|c| c == "..") {
        problems.at(at, format!("`{key}` must not contain `..`: `{path}`"));
    }
}

fn trim_slash(dir: &str) -> String {
    match dir.trim_end_matches('/') {
        "" => "/".to_owned(),
        d => d.to_owned(),
    }
}

fn check_source(def: &SourceDef, problems: &mut Problems) -> Option<Source> {
    let checksum = def.checksum.as_ref().and_then(|c| match normalize_checksum(c) {
        Some(c) => Some(c),
        None => {
            problems.at(
                "/source/checksum",
                format!("`source.checksum` must be a sha256 in hex (64 characters), not `{c}`"),
            );
            None
        }
    });
    let given = [def.name.is_some(), def.file.is_some(), def.url.is_some()].iter().filter(|b| **b).count();
    if given != 1 {
        // Two given: the second is the one too many (`name`, `file`, `url`
        // in that order); none given: the `source` table itself.
        let extra = [("name", def.name.is_some()), ("file", def.file.is_some()), ("url", def.url.is_some())]
            .into_iter()
            .filter(|(_, given)| *given)
            .nth(1)
            .map_or_else(|| pointer("source"), |(key, _)| pointer("source").key(key));
        problems.at(
            extra,
            "`source` must have exactly one of `name` (a snapshot on the server), `file` (a snapshot file in a \
             granted directory) or `url` (fetched by Qdrant)",
        );
        return None;
    }
    if let Some(name) = &def.name {
        check_snapshot_name(pointer("source.name"), "source.name", name, problems);
        return Some(Source::Name { name: name.clone(), checksum });
    }
    if let Some(file) = &def.file {
        check_path("source.file", file, problems);
        if file.ends_with('/') {
            problems.at("/source/file", format!("`source.file` must name a file, not the directory `{file}`"));
        }
        return Some(Source::File { path: file.clone(), checksum });
    }
    let url = def.url.clone().unwrap_or_default();
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("file:") {
        problems.at(
            "/source/url",
            "`source.url` must be an `http://` or `https://` URL; a file on the Qdrant server must be inside its \
             snapshots directory: restore it by `name`",
        );
    } else if let Err(e) = Url::parse(&url) {
        problems.at("/source/url", format!("`source.url`: {e}"));
    }
    Some(Source::Url { url, checksum })
}

fn check_expect(def: &ExpectDef, problems: &mut Problems) -> Expect {
    let mut expect = Expect::default();
    if let Some(status) = &def.status {
        if status.is_empty() {
            problems
                .at("/expect/status", "`expect.status` is empty: list the accepted statuses, such as `[\"green\"]`");
        }
        for (i, s) in status.iter().enumerate() {
            if !STATUSES.contains(&s.as_str()) {
                problems.at(
                    pointer("expect.status").index(i),
                    format!("`expect.status` may hold `green`, `yellow`, `grey` and `red`, not `{s}`"),
                );
            }
        }
        expect.status = status.clone();
    }
    if let Some(readyz) = def.readyz {
        expect.readyz = readyz;
    }
    if let Some(points) = &def.points {
        expect.points = count_value("expect.points", points, 0, problems);
    }
    if let Some(tolerance) = &def.tolerance {
        if def.points.is_none() {
            problems.at("/expect/tolerance", "`expect.tolerance` needs `expect.points`");
        }
        match parse_tolerance(tolerance) {
            Ok(t) => expect.tolerance = t,
            Err(e) => problems.at("/expect/tolerance", format!("`expect.tolerance` {e}")),
        }
    }
    expect
}

/// A non-negative integer given as a number or as a string of digits (a
/// `${steps.…}` reference renders as a string), at least `min`.
fn count_value(key: &str, value: &Value, min: u64, problems: &mut Problems) -> Option<u64> {
    let n = match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok(),
        _ => None,
    };
    match n {
        Some(n) if n >= min => Some(n),
        _ => {
            problems.at(pointer(key), format!("`{key}` must be a whole number of at least {min}, not {value}"));
            None
        }
    }
}

/// `5` (points) or `"2%"` (of `expect.points`).
pub fn parse_tolerance(value: &Value) -> Result<Tolerance, String> {
    let bad = || format!("must be a number of points (`5`) or a percentage (`\"2%\"`), not {value}");
    match value {
        Value::Number(n) => n.as_u64().map(Tolerance::Points).ok_or_else(bad),
        Value::String(s) => {
            if let Some(p) = s.trim().strip_suffix('%') {
                match p.trim().parse::<f64>() {
                    Ok(p) if p.is_finite() && (0.0..=100.0).contains(&p) => Ok(Tolerance::Percent(p)),
                    _ => Err(bad()),
                }
            } else if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                s.parse().map(Tolerance::Points).map_err(|_| bad())
            } else {
                Err(bad())
            }
        }
        _ => Err(bad()),
    }
}

/// A sha256 in hex, lowercased; `None` if it is not one.
pub fn normalize_checksum(text: &str) -> Option<String> {
    let t = text.trim();
    (t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit())).then(|| t.to_ascii_lowercase())
}

fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub use backout_sdk::quantity::parse_duration;

/// The config's JSON Schema (draft 2020-12), for people and tools. `plan`
/// stays the authority: it also checks what a schema cannot say (keys that
/// apply only to some actions).
pub fn schema() -> Value {
    let name = json!({ "type": "string", "minLength": 1, "pattern": "^[^./\\\\][^/\\\\]*$" });
    let checksum = json!({ "type": "string", "pattern": "^[0-9a-fA-F]{64}$",
                           "description": "sha256 of the snapshot file, hex" });
    let count = json!({ "anyOf": [{ "type": "integer", "minimum": 0 }, { "type": "string", "pattern": "^[0-9]+$" }] });
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "qdrant-snapshot",
        "description": "Create, list, download, restore and prune snapshots of one Qdrant collection, \
                        through Qdrant's REST API at the granted origin.",
        "type": "object",
        "properties": {
            "url": { "type": "string", "description": "Qdrant's REST address; its origin must be in the step's `net` grant.",
                     "examples": ["http://127.0.0.1:6333"] },
            "collection": { "type": "string", "minLength": 1 },
            "api_key_env": { "type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
                             "description": "A granted environment variable holding the API key, sent as the `api-key` header." },
            "timeout": { "type": "string", "pattern": "^[0-9]+(ms|s|m|h)$", "default": "30s",
                         "description": "Limit for each request to Qdrant, including downloads and uploads." },
            "action": { "enum": ["create", "list", "download", "restore", "prune"] },
            "snapshot": { "description": "download: the snapshot's name (default: the newest).", "allOf": [name] },
            "to": { "type": "string", "pattern": "^/", "description": "download: guest directory to write into (read-write grant)." },
            "source": {
                "description": "restore: exactly one of `name`, `file`, `url`; `checksum` optional.",
                "type": "object",
                "properties": { "name": name, "file": { "type": "string", "pattern": "^/" },
                                "url": { "type": "string", "pattern": "^https?://" }, "checksum": checksum },
                "additionalProperties": false,
                "oneOf": [{ "required": ["name"] }, { "required": ["file"] }, { "required": ["url"] }]
            },
            "priority": { "enum": ["snapshot", "replica", "no_sync"], "default": "snapshot" },
            "emergency_snapshot": { "type": "boolean", "default": true },
            "source_version": { "type": "string", "pattern": "^[0-9]+\\.[0-9]+(\\.[0-9]+)?" },
            "keep_last": { "description": "prune (and create): how many of the newest snapshots to keep, at least 1.", "allOf": [count] },
            "protect": { "type": "array", "items": name, "description": "prune: snapshots never deleted." },
            "expect": {
                "type": "object",
                "properties": {
                    "status": { "type": "array", "items": { "enum": STATUSES }, "default": ["green", "yellow"] },
                    "readyz": { "type": "boolean", "default": true },
                    "points": count,
                    "tolerance": { "anyOf": [{ "type": "integer", "minimum": 0 }, { "type": "string", "pattern": "^[0-9.]+%$" }] }
                },
                "additionalProperties": false
            }
        },
        "required": ["url", "collection", "action"],
        "additionalProperties": false
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The config checked; a refusal as its words (the messages joined with "; ").
    fn validate(value: Value) -> Result<Valid, String> {
        let config: Config = serde_json::from_value(value).map_err(|e| e.to_string())?;
        config.validate().map_err(|p| p.to_string())
    }

    /// The pointer of every problem with `extra` over the base config.
    fn pointers(extra: Value) -> Vec<Option<String>> {
        let config: Config = serde_json::from_value(with(extra)).expect("deserializes");
        let problems = config.validate().expect_err("refused");
        problems.0.iter().map(|p| p.pointer.as_ref().map(ToString::to_string)).collect()
    }

    #[test]
    fn each_problem_names_its_key() {
        let one = |p: &str| vec![Some(p.to_owned())];
        assert_eq!(pointers(json!({"action": "create", "url": "ftp://x"})), one("/url"));
        assert_eq!(pointers(json!({"action": "create", "collection": "a/b"})), one("/collection"));
        assert_eq!(pointers(json!({"action": "create", "api_key_env": "A-B"})), one("/api_key_env"));
        assert_eq!(pointers(json!({"action": "create", "timeout": "2d"})), one("/timeout"));
        assert_eq!(pointers(json!({"action": "create", "keep_last": 0})), one("/keep_last"));
        assert_eq!(pointers(json!({"action": "create", "to": "/b"})), one("/to"));
        assert_eq!(pointers(json!({"action": "undo"})), one("/action"));
        // A key the action needs but lacks: named at `action`.
        assert_eq!(pointers(json!({"action": "download"})), one("/action"));
        assert_eq!(pointers(json!({"action": "prune"})), one("/action"));
        assert_eq!(pointers(json!({"action": "restore"})), one("/action"));
        assert_eq!(
            pointers(json!({"action": "download", "to": "b", "snapshot": ".x"})),
            [Some("/snapshot".into()), Some("/to".into())]
        );
        assert_eq!(pointers(json!({"action": "prune", "keep_last": 1, "protect": ["a", ".b"]})), one("/protect/1"));
        let restore = |extra: Value| {
            let mut v = json!({"action": "restore", "source": {"name": "s"}});
            for (k, x) in extra.as_object().unwrap() {
                v[k] = x.clone();
            }
            pointers(v)
        };
        assert_eq!(restore(json!({"priority": "now"})), one("/priority"));
        assert_eq!(restore(json!({"source_version": "x"})), one("/source_version"));
        assert_eq!(restore(json!({"source": {"name": "s", "file": "/b/s"}})), one("/source/file"));
        assert_eq!(restore(json!({"source": {}})), one("/source"));
        assert_eq!(restore(json!({"source": {"file": "b"}})), one("/source/file"));
        assert_eq!(restore(json!({"source": {"url": "file:///x"}})), one("/source/url"));
        assert_eq!(restore(json!({"source": {"name": "s", "checksum": "x"}})), one("/source/checksum"));
        assert_eq!(restore(json!({"expect": {"status": ["green", "blue"]}})), one("/expect/status/1"));
        assert_eq!(restore(json!({"expect": {"points": -1}})), one("/expect/points"));
        assert_eq!(restore(json!({"expect": {"tolerance": 5}})), one("/expect/tolerance"));
    }

    fn base() -> Value {
        json!({ "url": "http://127.0.0.1:6333", "collection": "docs" })
    }

    fn with(extra: Value) -> Value {
        let mut v = base();
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    }

    #[test]
    fn minimal_create_has_the_defaults() {
        let v = validate(with(json!({ "action": "create" }))).unwrap();
        assert_eq!(v.base, "http://127.0.0.1:6333");
        assert_eq!(v.origin, "http://127.0.0.1:6333");
        assert_eq!(v.timeout, DEFAULT_TIMEOUT);
        assert_eq!(v.action, Action::Create { keep_last: None });
        assert_eq!(v.api_key_env, None);
    }

    #[test]
    fn url_keeps_a_path_prefix_and_gets_its_port() {
        let v = validate(json!({ "url": "https://Qdrant.internal/db/", "collection": "c", "action": "list" })).unwrap();
        assert_eq!(v.base, "https://qdrant.internal/db");
        assert_eq!(v.origin, "https://qdrant.internal:443");
        for bad in ["127.0.0.1:6333", "http://h:6333/?x=1", "ftp://h", "http://u:p@h:6333"] {
            let e = validate(json!({ "url": bad, "collection": "c", "action": "list" })).unwrap_err();
            assert!(e.contains("`url`"), "{bad}: {e}");
        }
    }

    #[test]
    fn restore_defaults() {
        let v = validate(with(json!({ "action": "restore", "source": { "name": "docs-1.snapshot" } }))).unwrap();
        let Action::Restore(r) = v.action else { panic!() };
        assert_eq!(r.source, Source::Name { name: "docs-1.snapshot".into(), checksum: None });
        assert_eq!(r.priority, Priority::Snapshot);
        assert!(r.emergency_snapshot);
        assert_eq!(r.expect, Expect::default());
        assert_eq!(r.expect.status, ["green", "yellow"]);
        assert!(r.expect.readyz);
    }

    #[test]
    fn restore_sources_and_checksums() {
        let sum = "AB".repeat(32);
        let v = validate(with(
            json!({ "action": "restore", "source": { "file": "/backups/x.snapshot", "checksum": sum } }),
        ))
        .unwrap();
        let Action::Restore(r) = v.action else { panic!() };
        assert_eq!(r.source, Source::File { path: "/backups/x.snapshot".into(), checksum: Some("ab".repeat(32)) });

        let e =
            validate(with(json!({ "action": "restore", "source": { "name": "a", "url": "http://x/" } }))).unwrap_err();
        assert!(e.contains("exactly one of"), "{e}");
        let e =
            validate(with(json!({ "action": "restore", "source": { "name": "a", "checksum": "abc" } }))).unwrap_err();
        assert!(e.contains("sha256"), "{e}");
        let e = validate(with(json!({ "action": "restore", "source": { "url": "file:///qdrant/snapshots/x" } })))
            .unwrap_err();
        assert!(e.contains("restore it by `name`"), "{e}");
        let e = validate(with(json!({ "action": "restore" }))).unwrap_err();
        assert!(e.contains("needs `source`"), "{e}");
        let e = validate(with(json!({ "action": "restore", "source": { "file": "backups/x" } }))).unwrap_err();
        assert!(e.contains("absolute guest path"), "{e}");
    }

    #[test]
    fn keys_for_other_actions_are_refused() {
        let e = validate(with(json!({ "action": "create", "to": "/b", "priority": "replica" }))).unwrap_err();
        assert!(e.contains("`to` applies only to action `download`, not to `create`"), "{e}");
        assert!(e.contains("`priority` applies only to action `restore`"), "{e}");
        let e = validate(with(json!({ "action": "list", "keep_last": 2 }))).unwrap_err();
        assert!(e.contains("`keep_last` applies only to action `create` and `prune`"), "{e}");
    }

    #[test]
    fn unknown_action_and_keys() {
        let e = validate(with(json!({ "action": "backup" }))).unwrap_err();
        assert!(e.contains("`action` must be `create`"), "{e}");
        let e = validate(with(json!({ "action": "list", "colection": "x" }))).unwrap_err();
        assert!(e.contains("unknown field `colection`"), "{e}");
    }

    #[test]
    fn prune_needs_keep_last_of_at_least_one() {
        let e = validate(with(json!({ "action": "prune" }))).unwrap_err();
        assert!(e.contains("needs `keep_last`"), "{e}");
        let e = validate(with(json!({ "action": "prune", "keep_last": 0 }))).unwrap_err();
        assert!(e.contains("at least 1"), "{e}");
        let v = validate(with(json!({ "action": "prune", "keep_last": "3", "protect": ["a.snapshot"] }))).unwrap();
        assert_eq!(v.action, Action::Prune { keep_last: 3, protect: vec!["a.snapshot".into()] });
        let e = validate(with(json!({ "action": "prune", "keep_last": 2, "protect": ["../x"] }))).unwrap_err();
        assert!(e.contains("`protect`"), "{e}");
    }

    #[test]
    fn download_needs_a_directory() {
        let e = validate(with(json!({ "action": "download" }))).unwrap_err();
        assert!(e.contains("needs `to`"), "{e}");
        let v = validate(with(json!({ "action": "download", "to": "/backups/" }))).unwrap();
        assert_eq!(v.action, Action::Download { snapshot: None, to: "/backups".into() });
        let e = validate(with(json!({ "action": "download", "to": "/b", "snapshot": "a/b" }))).unwrap_err();
        assert!(e.contains("`snapshot`"), "{e}");
    }

    #[test]
    fn expect_is_checked() {
        let v = validate(with(json!({ "action": "restore", "source": { "name": "a" },
            "expect": { "status": ["green"], "points": "1000", "tolerance": "2%", "readyz": false } })))
        .unwrap();
        let Action::Restore(r) = v.action else { panic!() };
        assert_eq!(
            r.expect,
            Expect {
                status: vec!["green".into()],
                readyz: false,
                points: Some(1000),
                tolerance: Tolerance::Percent(2.0)
            }
        );
        assert_eq!(r.expect.tolerance.allowed(1000), 20);
        let e = validate(with(json!({ "action": "restore", "source": { "name": "a" },
            "expect": { "status": ["blue"], "tolerance": 3 } })))
        .unwrap_err();
        assert!(e.contains("not `blue`") && e.contains("needs `expect.points`"), "{e}");
        let e = validate(with(json!({ "action": "restore", "source": { "name": "a" }, "expect": { "points": -1 } })))
            .unwrap_err();
        assert!(e.contains("`expect.points` must be a whole number"), "{e}");
    }

    #[test]
    fn tolerance_forms() {
        assert_eq!(parse_tolerance(&json!(5)).unwrap(), Tolerance::Points(5));
        assert_eq!(parse_tolerance(&json!("5")).unwrap(), Tolerance::Points(5));
        assert_eq!(parse_tolerance(&json!("0.5%")).unwrap(), Tolerance::Percent(0.5));
        assert!(parse_tolerance(&json!("150%")).is_err());
        assert!(parse_tolerance(&json!(-1)).is_err());
        assert!(parse_tolerance(&json!("x")).is_err());
        assert_eq!(Tolerance::Percent(1.0).allowed(250), 2);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert!(parse_duration("30").unwrap_err().contains("no unit"));
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("1.5s").is_err());
        let e = validate(with(json!({ "action": "list", "timeout": "0s" }))).unwrap_err();
        assert!(e.contains("greater than zero"), "{e}");
        let e = validate(with(json!({ "action": "list", "timeout": "2d" }))).unwrap_err();
        assert!(e.contains("`timeout`"), "{e}");
    }

    #[test]
    fn api_key_env_must_be_a_variable_name() {
        let v = validate(with(json!({ "action": "list", "api_key_env": "QDRANT_API_KEY" }))).unwrap();
        assert_eq!(v.api_key_env.as_deref(), Some("QDRANT_API_KEY"));
        let e = validate(with(json!({ "action": "list", "api_key_env": "${env.X}" }))).unwrap_err();
        assert!(e.contains("`api_key_env`"), "{e}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let e = validate(json!({ "url": "nope", "collection": "", "action": "prune", "timeout": "x" })).unwrap_err();
        for part in ["`url`", "`collection` is empty", "`timeout`", "needs `keep_last`"] {
            assert!(e.contains(part), "{part}: {e}");
        }
    }

    #[test]
    fn schema_names_every_config_key() {
        let schema = schema();
        let mut names: Vec<&str> = schema["properties"].as_object().unwrap().keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "action",
                "api_key_env",
                "collection",
                "emergency_snapshot",
                "expect",
                "keep_last",
                "priority",
                "protect",
                "snapshot",
                "source",
                "source_version",
                "timeout",
                "to",
                "url"
            ]
        );
    }
}
