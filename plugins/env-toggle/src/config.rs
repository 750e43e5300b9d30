//! The step's configuration: what the runbook's `with` table may hold, how it
//! is checked, and its JSON Schema.
//!
//! Deserializing only checks shapes; [`Config::validate`] checks meaning and
//! reports every problem at once, with messages that name the offending key.

#![forbid(unsafe_code)]

use backout_sdk::Validate;
use backout_sdk::config::{Pointer, Problems};
use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::{Value, json};

use crate::dotenv;

/// The runbook's `with` table for an `env-toggle` step.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The file to edit, as a guest path (`/app/.env`).
    pub file: String,
    /// Keys to set, with their new values. Kept in the runbook's order (and
    /// with any repeated key, so it can be reported) rather than in a map.
    #[serde(default, deserialize_with = "entries_in_order")]
    pub set: Vec<(String, Value)>,
    /// Keys to remove. A key already absent is left as it is.
    #[serde(default)]
    pub unset: Vec<String>,
    /// Append a key in `set` that the file lacks, instead of refusing.
    #[serde(default)]
    pub create_missing: bool,
    /// Change (or remove) every occurrence of a repeated key, instead of refusing.
    #[serde(default)]
    pub allow_duplicates: bool,
}

/// A config that passed [`Config::validate`]: every value a string, every key
/// a valid name, something to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Valid {
    pub file: String,
    pub set: Vec<(String, String)>,
    pub unset: Vec<String>,
    pub create_missing: bool,
    pub allow_duplicates: bool,
}

impl Valid {
    /// The edit this config asks of the file.
    pub fn request(&self) -> dotenv::Request<'_> {
        dotenv::Request {
            file: &self.file,
            set: &self.set,
            unset: &self.unset,
            create_missing: self.create_missing,
            allow_duplicates: self.allow_duplicates,
        }
    }
}

/// The rule for keys in `set` and `unset`, as a regular expression for the
/// schema: a letter or `_`, then letters, digits, `_`, `.` or `-`. Portable
/// shells accept fewer (no `.` or `-`), but dotenv files commonly hold them.
pub const KEY_PATTERN: &str = "^[A-Za-z_][A-Za-z0-9_.-]*$";

/// Whether `key` follows [`KEY_PATTERN`].
pub fn is_valid_key(key: &str) -> bool {
    let mut bytes = key.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    first_ok && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

impl Validate for Config {
    type Valid = Valid;
    type Error = Problems;

    /// Checks what deserializing cannot, reporting every problem at once,
    /// each at the key it is about.
    fn validate(self) -> Result<Valid, Problems> {
        let mut problems = Problems::new();
        let nothing_to_do = self.set.is_empty() && self.unset.is_empty();
        if nothing_to_do {
            problems.push("nothing to do: give `set` or `unset` (or both) at least one key");
        }
        check_file(&self.file, &mut problems);
        let set = check_set(self.set, &mut problems);
        check_unset(&self.unset, &set, &mut problems);
        problems.into_result(Valid {
            file: self.file,
            set,
            unset: self.unset,
            create_missing: self.create_missing,
            allow_duplicates: self.allow_duplicates,
        })
    }
}

/// The file must be an absolute guest path naming a file.
fn check_file(file: &str, problems: &mut Problems) {
    let at = Pointer::root().key("file");
    if file.is_empty() {
        problems.at(at, "`file` is empty: give the guest path of the .env file, such as `/app/.env`");
    } else if !file.starts_with('/') {
        problems.at(at, format!("`file` must be an absolute guest path such as `/app/.env`, not `{file}`"));
    } else if file.ends_with('/') || file.ends_with("/.") || file.ends_with("/..") {
        problems.at(at, format!("`file` must name a file, not the directory `{file}`"));
    } else if file.contains('\0') {
        problems.at(at, "`file` contains a NUL character");
    }
}

/// Every value in `set` must be a string: a runbook's `false` is a TOML
/// boolean, and silently writing its text would hide the mistake of not
/// quoting it.
fn check_set(entries: Vec<(String, Value)>, problems: &mut Problems) -> Vec<(String, String)> {
    let mut set: Vec<(String, String)> = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        let at = Pointer::root().key("set").key(key.as_str());
        if !is_valid_key(&key) {
            problems.at(at.clone(), invalid_key_message("set", &key));
        }
        if set.iter().any(|(k, _)| *k == key) {
            problems.at(at, format!("`set` lists `{key}` more than once"));
            continue;
        }
        match value {
            Value::String(text) => {
                if let Some(reason) = dotenv::unwritable_reason(&text) {
                    problems.at(at, format!("set.{key} {reason}"));
                }
                set.push((key, text));
            }
            other => problems.at(at, not_a_string_message(&key, &other)),
        }
    }
    set
}

/// Each key in `unset` valid and listed once (the repeat is named), and
/// not in `set` too (named at `set`, the first of the two).
fn check_unset(unset: &[String], set: &[(String, String)], problems: &mut Problems) {
    for (i, key) in unset.iter().enumerate() {
        let at = Pointer::root().key("unset").index(i);
        if !is_valid_key(key) {
            problems.at(at.clone(), invalid_key_message("unset", key));
        }
        if unset[..i].contains(key) {
            problems.at(at, format!("`unset` lists `{key}` more than once"));
        }
        if set.iter().any(|(k, _)| k == key) {
            let at = Pointer::root().key("set").key(key.as_str());
            problems.at(at, format!("key `{key}` is in both `set` and `unset`; keep it in one of them"));
        }
    }
}

fn invalid_key_message(field: &str, key: &str) -> String {
    format!(
        "`{field}` names `{key}`, which is not a valid variable name: use letters, digits, `_`, `.` \
         and `-`, starting with a letter or `_`"
    )
}

fn not_a_string_message(key: &str, value: &Value) -> String {
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::Array(_) => "an array",
        Value::Object(_) => "a table",
        Value::String(_) => "a string",
    };
    match value {
        Value::Bool(_) | Value::Number(_) => {
            format!("set.{key} must be a string, not {kind}: write `\"{value}\"` (in quotes)")
        }
        _ => format!("set.{key} must be a string, not {kind}"),
    }
}

/// Deserializes a table into its entries, in order, keeping repeats.
fn entries_in_order<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<(String, Value)>, D::Error> {
    struct Entries;

    impl<'de> Visitor<'de> for Entries {
        type Value = Vec<(String, Value)>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a table of KEY = \"value\" pairs")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0));
            while let Some(entry) = map.next_entry::<String, Value>()? {
                entries.push(entry);
            }
            Ok(entries)
        }
    }

    deserializer.deserialize_map(Entries)
}

/// The config's JSON Schema (draft 2020-12), for people and tools. `plan`
/// stays the authority: it also checks what a schema cannot say (a key in
/// both `set` and `unset`).
pub fn schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "env-toggle",
        "description": "Change or remove values in a .env file, keeping every other byte. \
                        Edits single-line values only; refuses duplicated keys and keys \
                        to set that are absent unless told otherwise.",
        "type": "object",
        "properties": {
            "file": {
                "description": "Guest path of the .env file, inside a directory granted read-write to the step.",
                "type": "string",
                "pattern": "^/",
                "examples": ["/app/.env"]
            },
            "set": {
                "description": "Keys to set, with their new values (strings; no line breaks). \
                                A value already as requested is left untouched.",
                "type": "object",
                "propertyNames": { "pattern": KEY_PATTERN },
                "additionalProperties": { "type": "string", "pattern": "^[^\\r\\n]*$" },
                "default": {}
            },
            "unset": {
                "description": "Keys whose lines are removed. A key already absent is left as it is.",
                "type": "array",
                "items": { "type": "string", "pattern": KEY_PATTERN },
                "uniqueItems": true,
                "default": []
            },
            "create_missing": {
                "description": "Append a key in `set` that the file lacks, instead of refusing.",
                "type": "boolean",
                "default": false
            },
            "allow_duplicates": {
                "description": "When a key appears more than once, change (or remove) every \
                                occurrence instead of refusing.",
                "type": "boolean",
                "default": false
            }
        },
        "required": ["file"],
        "additionalProperties": false,
        "anyOf": [
            { "required": ["set"], "properties": { "set": { "minProperties": 1 } } },
            { "required": ["unset"], "properties": { "unset": { "minItems": 1 } } }
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Config, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// The config checked; a refusal as its words (the problems' messages
    /// joined with "; ").
    fn validate(json: &str) -> Result<Valid, String> {
        refused(json).map_err(|p| p.to_string())
    }

    fn refused(json: &str) -> Result<Valid, Problems> {
        parse(json).expect("deserializes").validate()
    }

    /// The pointer of every problem, in the order found.
    fn pointers(json: &str) -> Vec<Option<String>> {
        let problems = refused(json).expect_err("rejected");
        problems.0.iter().map(|p| p.pointer.as_ref().map(ToString::to_string)).collect()
    }

    #[test]
    fn minimal_config_is_valid_with_defaults() {
        let valid = validate(r#"{"file": "/app/.env", "set": {"A": "1"}}"#).expect("valid");
        assert_eq!(
            valid,
            Valid {
                file: "/app/.env".into(),
                set: vec![("A".into(), "1".into())],
                unset: vec![],
                create_missing: false,
                allow_duplicates: false,
            }
        );
    }

    #[test]
    fn set_keeps_the_runbook_order() {
        let valid = validate(r#"{"file": "/a/.env", "set": {"Z": "1", "A": "2", "M": "3"}}"#).expect("valid");
        let keys: Vec<&str> = valid.set.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["Z", "A", "M"]);
    }

    #[test]
    fn unknown_field_is_rejected() {
        let error = parse(r#"{"file": "/a/.env", "sett": {}}"#).expect_err("rejected").to_string();
        assert!(error.contains("unknown field `sett`"), "{error}");
    }

    #[test]
    fn missing_file_is_rejected() {
        let error = parse(r#"{"set": {"A": "1"}}"#).expect_err("rejected").to_string();
        assert!(error.contains("missing field `file`"), "{error}");
    }

    #[test]
    fn boolean_value_is_rejected_with_a_hint() {
        let error = validate(r#"{"file": "/a/.env", "set": {"FLAG": false}}"#).expect_err("rejected");
        assert_eq!(error, "set.FLAG must be a string, not a boolean: write `\"false\"` (in quotes)");
    }

    #[test]
    fn number_and_null_values_are_rejected() {
        let error = validate(r#"{"file": "/a/.env", "set": {"N": 3}}"#).expect_err("rejected");
        assert!(error.starts_with("set.N must be a string, not a number"), "{error}");
        let error = validate(r#"{"file": "/a/.env", "set": {"N": null}}"#).expect_err("rejected");
        assert_eq!(error, "set.N must be a string, not null");
    }

    #[test]
    fn nothing_to_do_is_rejected() {
        let error = validate(r#"{"file": "/a/.env"}"#).expect_err("rejected");
        assert!(error.starts_with("nothing to do"), "{error}");
        let error = validate(r#"{"file": "/a/.env", "set": {}, "unset": []}"#).expect_err("rejected");
        assert!(error.starts_with("nothing to do"), "{error}");
    }

    #[test]
    fn key_in_both_set_and_unset_is_rejected() {
        let error = validate(r#"{"file": "/a/.env", "set": {"A": "1"}, "unset": ["A"]}"#).expect_err("rejected");
        assert_eq!(error, "key `A` is in both `set` and `unset`; keep it in one of them");
    }

    #[test]
    fn invalid_key_names_are_rejected() {
        for key in ["1A", "", "A B", "A=B", "-A", ".A", "É"] {
            let json = serde_json::json!({"file": "/a/.env", "set": {key: "1"}}).to_string();
            let error = validate(&json).expect_err("rejected");
            assert!(error.contains("not a valid variable name"), "{key:?}: {error}");
        }
        let error = validate(r#"{"file": "/a/.env", "unset": ["A B"]}"#).expect_err("rejected");
        assert!(error.contains("`unset` names `A B`"), "{error}");
    }

    #[test]
    fn valid_key_names_are_accepted() {
        for key in ["A", "_", "a.b-c_1", "INSIGHT_GENERATION_ENABLED"] {
            assert!(is_valid_key(key), "{key}");
        }
    }

    #[test]
    fn repeated_keys_are_rejected() {
        let error = validate(r#"{"file": "/a/.env", "set": {"A": "1", "A": "2"}}"#).expect_err("rejected");
        assert_eq!(error, "`set` lists `A` more than once");
        let error = validate(r#"{"file": "/a/.env", "unset": ["B", "B"]}"#).expect_err("rejected");
        assert_eq!(error, "`unset` lists `B` more than once");
    }

    #[test]
    fn multi_line_value_is_rejected() {
        let error = validate(r#"{"file": "/a/.env", "set": {"A": "x\ny"}}"#).expect_err("rejected");
        assert_eq!(error, "set.A contains a line break; env-toggle writes single-line values only");
    }

    #[test]
    fn relative_or_directory_path_is_rejected() {
        let error = validate(r#"{"file": ".env", "unset": ["A"]}"#).expect_err("rejected");
        assert!(error.contains("absolute guest path"), "{error}");
        let error = validate(r#"{"file": "/app/", "unset": ["A"]}"#).expect_err("rejected");
        assert!(error.contains("must name a file"), "{error}");
        let error = validate(r#"{"file": "", "unset": ["A"]}"#).expect_err("rejected");
        assert!(error.contains("`file` is empty"), "{error}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let error = validate(r#"{"file": "x", "set": {"A": 1, "1B": "2"}, "unset": ["A"]}"#).expect_err("rejected");
        assert!(error.contains("absolute guest path"), "{error}");
        assert!(error.contains("set.A must be a string"), "{error}");
        assert!(error.contains("`1B`"), "{error}");
    }

    #[test]
    fn each_problem_names_its_key() {
        assert_eq!(pointers(r#"{"file": "x", "unset": ["A"]}"#), [Some("/file".into())]);
        assert_eq!(pointers(r#"{"file": "/a/.env", "set": {"A": "1", "B": true}}"#), [Some("/set/B".into())]);
        assert_eq!(pointers(r#"{"file": "/a/.env", "set": {"A B": "1"}}"#), [Some("/set/A B".into())]);
        assert_eq!(pointers(r#"{"file": "/a/.env", "set": {"A": "x\ny"}}"#), [Some("/set/A".into())]);
        assert_eq!(pointers(r#"{"file": "/a/.env", "unset": ["A", "B", "A"]}"#), [Some("/unset/2".into())]);
        assert_eq!(pointers(r#"{"file": "/a/.env", "unset": ["A", "1B"]}"#), [Some("/unset/1".into())]);
        // Both `set` and `unset`: named at `set`, the first of the two.
        assert_eq!(pointers(r#"{"file": "/a/.env", "set": {"A": "1"}, "unset": ["B", "A"]}"#), [Some("/set/A".into())]);
        // Nothing to do is about the table as a whole.
        assert_eq!(pointers(r#"{"file": "/a/.env"}"#), [None]);
    }

    #[test]
    fn schema_describes_every_config_field() {
        let schema = schema();
        assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
        let properties = schema["properties"].as_object().expect("properties");
        let mut names: Vec<&str> = properties.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["allow_duplicates", "create_missing", "file", "set", "unset"]);
        // Every property the schema names is accepted by the config.
        let json = r#"{"file": "/a/.env", "set": {"A": "1"}, "unset": ["B"], "create_missing": true, "allow_duplicates": true}"#;
        assert!(validate(json).is_ok());
    }
}
