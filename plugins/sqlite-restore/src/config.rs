//! The step's configuration: what the runbook's `with` table may hold, how it
//! is checked, and its JSON Schema.
//!
//! Deserializing only checks shapes; [`Config::validate`] checks meaning and
//! reports every problem at once, naming the offending key.

#![forbid(unsafe_code)]

use backout_sdk::Validate;
use backout_sdk::config::{Pointer, Problems};
use serde::Deserialize;
use serde_json::{Value, json};

/// The runbook's `with` table for a `sqlite-restore` step.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Guest path of the live database; it may not exist yet.
    pub db: String,
    /// One backup file to restore.
    #[serde(default)]
    pub backup: Option<String>,
    /// A directory of backups to pick from (instead of `backup`).
    #[serde(default)]
    pub backup_dir: Option<String>,
    /// How to pick from `backup_dir`: only `"latest"` (the default).
    #[serde(default)]
    pub pick: Option<String>,
    /// Only file names matching this (`*`, `?`) are candidates in `backup_dir`.
    #[serde(default)]
    pub pattern: Option<String>,
    /// Where the current database goes before it is replaced (default: beside it).
    #[serde(default)]
    pub safety_dir: Option<String>,
    /// `"full"` (integrity_check, the default) or `"quick"` (quick_check).
    #[serde(default)]
    pub check: Option<String>,
    /// Read-only queries that must hold after the restore.
    #[serde(default)]
    pub expect: Vec<ExpectDef>,
    /// Restore even though a `-wal` or `-journal` lies beside the live database.
    #[serde(default)]
    pub allow_wal: bool,
}

/// One entry of `expect`, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectDef {
    pub sql: String,
    #[serde(default)]
    pub min: Option<Value>,
    #[serde(default)]
    pub max: Option<Value>,
    #[serde(default)]
    pub equals: Option<Value>,
}

/// Where the backup comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// This file.
    File(String),
    /// The newest file (by modification time) in `dir` whose name matches `pattern`.
    Latest { dir: String, pattern: Option<String> },
}

/// Which SQLite check must pass before the restored copy replaces the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// `PRAGMA integrity_check`: every b-tree, index and constraint; O(N log N).
    Full,
    /// `PRAGMA quick_check`: skips index consistency and UNIQUE; O(N).
    Quick,
}

impl Check {
    pub fn pragma(self) -> &'static str {
        match self {
            Self::Full => "integrity_check",
            Self::Quick => "quick_check",
        }
    }
}

/// A checked `expect` entry: the first column of the first row must satisfy
/// every bound given.
#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    pub sql: String,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub equals: Option<Value>,
}

impl Expectation {
    /// The expectation in words: `≥ 1`, `= "ok"`, `≥ 1 and ≤ 10`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(v) = &self.equals {
            parts.push(format!("= {v}"));
        }
        if let Some(m) = self.min {
            parts.push(format!("≥ {m}"));
        }
        if let Some(m) = self.max {
            parts.push(format!("≤ {m}"));
        }
        parts.join(" and ")
    }
}

/// A config that passed [`Config::validate`].
#[derive(Debug, Clone, PartialEq)]
pub struct Valid {
    pub db: String,
    pub source: Source,
    /// Where safety copies go: `safety_dir`, or the database's directory.
    pub safety_dir: String,
    pub check: Check,
    pub expect: Vec<Expectation>,
    pub allow_wal: bool,
}

impl Validate for Config {
    type Valid = Valid;
    type Error = Problems;

    /// Checks what deserializing cannot, reporting every problem at once,
    /// each at the key it is about.
    fn validate(self) -> Result<Valid, Problems> {
        let mut problems = Problems::new();
        check_path("db", &self.db, true, &mut problems);
        let source = check_source(&self, &mut problems);
        if let Some(dir) = &self.safety_dir {
            check_path("safety_dir", dir, false, &mut problems);
        }
        let check = match self.check.as_deref() {
            None | Some("full") => Check::Full,
            Some("quick") => Check::Quick,
            Some(other) => {
                problems.at("/check", format!("`check` must be `full` or `quick`, not `{other}`"));
                Check::Full
            }
        };
        let expect =
            self.expect.into_iter().enumerate().filter_map(|(i, e)| check_expect(i, e, &mut problems)).collect();
        if !problems.is_empty() {
            return Err(problems);
        }
        let safety_dir = self.safety_dir.map(|d| trim_slash(&d)).unwrap_or_else(|| parent(&self.db).to_owned());
        Ok(Valid {
            db: self.db,
            source: source.expect("no problems, so a source"),
            safety_dir,
            check,
            expect,
            allow_wal: self.allow_wal,
        })
    }
}

/// The directory part of an absolute guest path (`/` for `/app.db`).
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => ".",
    }
}

/// The file-name part of a guest path.
pub fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn trim_slash(dir: &str) -> String {
    match dir.trim_end_matches('/') {
        "" => "/".to_owned(),
        d => d.to_owned(),
    }
}

/// A guest path must be absolute, free of NUL and `..`; a file must not end in `/`.
fn check_path(key: &str, path: &str, is_file: bool, problems: &mut Problems) {
    let at = Pointer::root().key(key);
    if path.is_empty() {
        problems.at(at, format!("`{key}` is empty: give an absolute guest path such as `/data/app.db`"));
    } else if !path.starts_with('/') {
        problems.at(at, format!("`{key}` must be an absolute guest path such as `/data/app.db`, not `{path}`"));
    } else if path.contains('\0') {
        problems.at(at, format!("`{key}` contains a NUL character"));
    } else if path.split('/').any(|c| c == "..") {
        problems.at(at, format!("`{key}` must not contain `..`: `{path}`"));
    } else if is_file && (path.ends_with('/') || path.ends_with("/.")) {
        problems.at(at, format!("`{key}` must name a file, not the directory `{path}`"));
    }
}

/// Where the backup comes from; a conflict is named at the key that is
/// wrong, or at the first of the two (`backup` before `backup_dir`).
fn check_source(c: &Config, problems: &mut Problems) -> Option<Source> {
    match (&c.backup, &c.backup_dir) {
        (Some(_), Some(_)) => {
            problems.at("/backup", "give either `backup` (one file) or `backup_dir` (pick from a directory), not both");
            None
        }
        (None, None) => {
            problems.push(
                "say which backup to restore: `backup = \"/backups/app.db\"`, or `backup_dir` with `pick = \"latest\"`",
            );
            None
        }
        (Some(file), None) => {
            check_path("backup", file, true, problems);
            for (key, set) in [("pick", c.pick.is_some()), ("pattern", c.pattern.is_some())] {
                if set {
                    problems.at(
                        Pointer::root().key(key),
                        format!("`{key}` applies to `backup_dir`, not to a single `backup` file"),
                    );
                }
            }
            if file == &c.db {
                problems.at("/backup", format!("`backup` and `db` are the same file `{file}`"));
            }
            Some(Source::File(file.clone()))
        }
        (None, Some(dir)) => {
            check_path("backup_dir", dir, false, problems);
            match c.pick.as_deref() {
                None | Some("latest") => {}
                Some(other) => problems.at(
                    "/pick",
                    format!("`pick` must be `latest` (the newest file by modification time), not `{other}`"),
                ),
            }
            if let Some(p) = &c.pattern {
                if p.is_empty() {
                    problems.at("/pattern", "`pattern` is empty: leave it out to consider every file");
                } else if p.contains('/') {
                    problems.at("/pattern", format!("`pattern` matches file names and cannot contain `/`: `{p}`"));
                }
            }
            Some(Source::Latest { dir: trim_slash(dir), pattern: c.pattern.clone() })
        }
    }
}

fn check_expect(i: usize, e: ExpectDef, problems: &mut Problems) -> Option<Expectation> {
    let at = format!("expect[{i}]");
    let here = Pointer::root().key("expect").index(i);
    let before = problems.0.len();
    if e.sql.trim().is_empty() {
        problems.at(here.clone().key("sql"), format!("`{at}.sql` is empty"));
    }
    if e.min.is_none() && e.max.is_none() && e.equals.is_none() {
        problems.at(here.clone(), format!("`{at}` (`{}`) needs `min`, `max` or `equals`", e.sql));
    }
    let mut bound = |key: &str, v: Option<Value>| match v {
        None => None,
        Some(Value::Number(n)) => n.as_f64(),
        Some(other) => {
            problems.at(here.clone().key(key), format!("`{at}.{key}` must be a number, not `{other}`"));
            None
        }
    };
    let (min, max) = (bound("min", e.min), bound("max", e.max));
    if let (Some(lo), Some(hi)) = (min, max)
        && lo > hi
    {
        // Two bounds that contradict: at `min`, the first.
        problems.at(here.clone().key("min"), format!("`{at}`: `min` {lo} is greater than `max` {hi}"));
    }
    if let Some(v @ (Value::Array(_) | Value::Object(_))) = &e.equals {
        problems.at(here.key("equals"), format!("`{at}.equals` must be a number, string or boolean, not `{v}`"));
    }
    (problems.0.len() == before).then_some(Expectation { sql: e.sql, min, max, equals: e.equals })
}

/// The config's JSON Schema, for `backout inspect` and editors.
pub fn schema() -> Value {
    let path = |d: &str| json!({ "type": "string", "pattern": "^/", "description": d });
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "sqlite-restore config",
        "type": "object",
        "additionalProperties": false,
        "required": ["db"],
        "properties": {
            "db": path("guest path of the live database; it may not exist yet"),
            "backup": path("the backup file to restore (or give backup_dir)"),
            "backup_dir": path("a directory of backups; the newest matching file is restored"),
            "pick": { "enum": ["latest"], "default": "latest", "description": "how to pick from backup_dir: the newest by modification time" },
            "pattern": { "type": "string", "description": "glob on file names in backup_dir (`*`, `?`), e.g. `app-backup-*.db`" },
            "safety_dir": path("where the current database (with its -wal/-journal) is kept; default: beside it"),
            "check": { "enum": ["full", "quick"], "default": "full", "description": "PRAGMA integrity_check or quick_check" },
            "expect": {
                "type": "array",
                "description": "read-only queries whose first value must satisfy the bounds after the restore",
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["sql"],
                    "properties": {
                        "sql": { "type": "string" },
                        "min": { "type": "number" },
                        "max": { "type": "number" },
                        "equals": { "type": ["number", "string", "boolean"] }
                    }
                }
            },
            "allow_wal": { "type": "boolean", "default": false, "description": "restore although a -wal or -journal lies beside the live database (the service must be stopped)" }
        },
        "oneOf": [{ "required": ["backup"] }, { "required": ["backup_dir"] }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The config checked; a refusal as its words (the messages joined with "; ").
    fn config(json: Value) -> Result<Valid, String> {
        serde_json::from_value::<Config>(json).map_err(|e| e.to_string())?.validate().map_err(|p| p.to_string())
    }

    /// The pointer of every problem, in the order found.
    fn pointers(json: Value) -> Vec<Option<String>> {
        let problems = serde_json::from_value::<Config>(json).expect("deserializes").validate().expect_err("refused");
        problems.0.iter().map(|p| p.pointer.as_ref().map(ToString::to_string)).collect()
    }

    #[test]
    fn each_problem_names_its_key() {
        let one = |p: &str| vec![Some(p.to_owned())];
        assert_eq!(pointers(json!({ "db": "app.db", "backup": "/b/a.db" })), one("/db"));
        assert_eq!(pointers(json!({ "db": "/d/a.db", "backup": "/b/" })), one("/backup"));
        assert_eq!(pointers(json!({ "db": "/d/a.db", "backup_dir": "b" })), one("/backup_dir"));
        assert_eq!(pointers(json!({ "db": "/d/a.db", "backup": "/b/a.db", "safety_dir": "s" })), one("/safety_dir"));
        assert_eq!(pointers(json!({ "db": "/d/a.db", "backup": "/b/a.db", "check": "slow" })), one("/check"));
        assert_eq!(pointers(json!({ "db": "/d/a.db", "backup": "/b/a.db", "backup_dir": "/b" })), one("/backup"));
        assert_eq!(pointers(json!({ "db": "/d/a.db", "backup": "/d/a.db" })), one("/backup"));
        assert_eq!(pointers(json!({ "db": "/d/a.db", "backup": "/b/a.db", "pattern": "*" })), one("/pattern"));
        assert_eq!(pointers(json!({ "db": "/d/a.db", "backup_dir": "/b", "pick": "oldest" })), one("/pick"));
        assert_eq!(pointers(json!({ "db": "/d/a.db", "backup_dir": "/b", "pattern": "x/y" })), one("/pattern"));
        assert_eq!(pointers(json!({ "db": "/d/a.db" })), [None]);
        let expect = |e: Value| {
            pointers(json!({ "db": "/d/a.db", "backup": "/b/a.db", "expect": [{ "sql": "select 1", "min": 1 }, e] }))
        };
        assert_eq!(expect(json!({ "sql": " ", "min": 1 })), one("/expect/1/sql"));
        assert_eq!(expect(json!({ "sql": "select 1" })), one("/expect/1"));
        assert_eq!(expect(json!({ "sql": "select 1", "max": "3" })), one("/expect/1/max"));
        assert_eq!(expect(json!({ "sql": "select 1", "min": 3, "max": 1 })), one("/expect/1/min"));
        assert_eq!(expect(json!({ "sql": "select 1", "equals": [1] })), one("/expect/1/equals"));
    }

    #[test]
    fn a_single_backup_with_defaults() {
        let v = config(json!({ "db": "/data/app.db", "backup": "/backups/app.db" })).unwrap();
        assert_eq!(v.source, Source::File("/backups/app.db".into()));
        assert_eq!(v.safety_dir, "/data");
        assert_eq!(v.check, Check::Full);
        assert!(v.expect.is_empty());
        assert!(!v.allow_wal);
    }

    #[test]
    fn backup_dir_defaults_to_latest_and_keeps_the_pattern() {
        let v = config(json!({ "db": "/app.db", "backup_dir": "/backups/", "pattern": "app-*.db", "safety_dir": "/keep/", "check": "quick" }))
            .unwrap();
        assert_eq!(v.source, Source::Latest { dir: "/backups".into(), pattern: Some("app-*.db".into()) });
        assert_eq!(v.safety_dir, "/keep");
        assert_eq!(v.check, Check::Quick);
        assert_eq!(config(json!({ "db": "/d/a.db", "backup_dir": "/b", "pick": "latest" })).unwrap().safety_dir, "/d");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let err = config(json!({
            "db": "data/app.db", "backup": "/b.db", "backup_dir": "/b", "check": "thorough", "safety_dir": "/a/../b",
        }))
        .unwrap_err();
        for part in [
            "absolute guest path",
            "not both",
            "`check` must be `full` or `quick`, not `thorough`",
            "`safety_dir` must not contain `..`",
        ] {
            assert!(err.contains(part), "{err} should mention {part}");
        }
    }

    #[test]
    fn source_mistakes_are_named() {
        assert!(config(json!({ "db": "/a.db" })).unwrap_err().contains("say which backup"));
        assert!(
            config(json!({ "db": "/a.db", "backup": "/b.db", "pick": "latest" }))
                .unwrap_err()
                .contains("`pick` applies to `backup_dir`")
        );
        assert!(
            config(json!({ "db": "/a.db", "backup_dir": "/b", "pick": "oldest" }))
                .unwrap_err()
                .contains("not `oldest`")
        );
        assert!(
            config(json!({ "db": "/a.db", "backup_dir": "/b", "pattern": "x/*.db" }))
                .unwrap_err()
                .contains("cannot contain `/`")
        );
        assert!(config(json!({ "db": "/a.db", "backup": "/a.db" })).unwrap_err().contains("same file"));
        assert!(config(json!({ "db": "/d/", "backup": "/b.db" })).unwrap_err().contains("must name a file"));
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(
            config(json!({ "db": "/a.db", "backup": "/b.db", "allow_wall": true })).unwrap_err().contains("allow_wall")
        );
        assert!(
            config(json!({ "db": "/a.db", "backup": "/b.db", "expect": [{ "sql": "SELECT 1", "minimum": 1 }] }))
                .unwrap_err()
                .contains("minimum")
        );
    }

    #[test]
    fn expectations_need_a_bound_of_the_right_type() {
        let ok = config(json!({ "db": "/a.db", "backup": "/b.db", "expect": [
            { "sql": "SELECT count(*) FROM t", "min": 1, "max": 10 },
            { "sql": "SELECT name FROM t", "equals": "x" },
        ] }))
        .unwrap();
        assert_eq!(ok.expect[0].describe(), "≥ 1 and ≤ 10");
        assert_eq!(ok.expect[1].describe(), "= \"x\"");
        let err = config(json!({ "db": "/a.db", "backup": "/b.db", "expect": [
            { "sql": "SELECT 1" },
            { "sql": " ", "min": 1 },
            { "sql": "SELECT 1", "min": "1" },
            { "sql": "SELECT 1", "min": 5, "max": 1 },
            { "sql": "SELECT 1", "equals": [1] },
        ] }))
        .unwrap_err();
        for part in [
            "`expect[0]` (`SELECT 1`) needs `min`, `max` or `equals`",
            "`expect[1].sql` is empty",
            "`expect[2].min` must be a number",
            "`min` 5 is greater than `max` 1",
            "`expect[4].equals`",
        ] {
            assert!(err.contains(part), "{err} should mention {part}");
        }
    }

    #[test]
    fn path_helpers() {
        assert_eq!(parent("/data/app.db"), "/data");
        assert_eq!(parent("/app.db"), "/");
        assert_eq!(file_name("/data/app.db"), "app.db");
    }

    #[test]
    fn the_schema_lists_every_key() {
        let s = schema();
        for key in ["db", "backup", "backup_dir", "pick", "pattern", "safety_dir", "check", "expect", "allow_wal"] {
            assert!(s["properties"].get(key).is_some(), "{key}");
        }
    }
}
