//! The step's configuration: what the runbook's `with` table may hold, how it
//! is checked, and its JSON Schema.
//!
//! Deserializing checks shapes; [`Config::validate`] checks meaning and
//! reports every problem at once, each naming the offending key.

#![forbid(unsafe_code)]

use backout_sdk::Validate;
use backout_sdk::config::{Pointer, Problems};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::keys::KeyPath;
use crate::validate::Format;

/// The runbook's `with` table for a `file-restore` step.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The file or directory to put back, as a guest path (`/app/.env`).
    pub target: String,
    /// The backup to restore from: a file (a directory when `target` is one).
    #[serde(default)]
    pub source: Option<String>,
    /// A directory of backups to pick from (instead of `source`).
    #[serde(default)]
    pub source_dir: Option<String>,
    /// How to pick from `source_dir`: `latest`, the only choice (the default).
    #[serde(default)]
    pub pick: Option<String>,
    /// Only names in `source_dir` matching this glob are candidates.
    #[serde(default)]
    pub pattern: Option<String>,
    /// How the backup must parse before it replaces anything: `toml`, `json`,
    /// `yaml`, `dotenv` or `none`. Required: skipping the check is a choice.
    #[serde(default)]
    pub validate: Option<String>,
    /// Keys (dotted paths) the backup must hold.
    #[serde(default)]
    pub require_keys: Vec<String>,
}

/// Where the backup comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `source`: this file (or directory).
    Given(String),
    /// `source_dir` + `pick = "latest"`: the newest entry of the target's
    /// kind whose name matches `pattern` (every name when `None`).
    Latest { dir: String, pattern: Option<String> },
}

/// A config that passed [`Config::validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Valid {
    pub target: String,
    pub source: Source,
    pub validate: Format,
    pub require_keys: Vec<KeyPath>,
}

impl Validate for Config {
    type Valid = Valid;
    type Error = Problems;

    /// Checks what deserializing cannot, reporting every problem at once,
    /// each at the key it is about.
    fn validate(self) -> Result<Valid, Problems> {
        let mut problems = Problems::new();
        check_path("target", &self.target, &mut problems);
        let source = self.check_source(&mut problems);
        let validate = match self.validate.as_deref() {
            None => {
                problems.push(format!(
                    "`validate` is required: say how the backup must parse before it replaces anything ({}), \
                     or `\"none\"` to copy it unchecked",
                    Format::WORDS
                ));
                None
            }
            Some(word) => match Format::from_word(word) {
                Some(format) => Some(format),
                None => {
                    problems.at("/validate", format!("`validate` is `{word}`; use one of {}", Format::WORDS));
                    None
                }
            },
        };
        let require_keys = match validate {
            Some(format) => check_require_keys(&self.require_keys, format, &mut problems),
            None => Vec::new(),
        };
        match (source, validate) {
            (Some(source), Some(validate)) if problems.is_empty() => {
                Ok(Valid { target: self.target, source, validate, require_keys })
            }
            _ => Err(problems),
        }
    }
}

impl Config {
    /// Where the backup comes from. A conflict is named at the key that
    /// is wrong, or at the first of the two (`source` before `source_dir`,
    /// the backup before `target`).
    fn check_source(&self, problems: &mut Problems) -> Option<Source> {
        let source = match (&self.source, &self.source_dir) {
            (Some(_), Some(_)) => {
                problems
                    .at("/source", "give `source` (one backup) or `source_dir` (a directory to pick from), not both");
                return None;
            }
            (None, None) => {
                problems.push("nothing to restore from: give `source` (the backup) or `source_dir` with `pattern`");
                return None;
            }
            (Some(file), None) => {
                if self.pick.is_some() || self.pattern.is_some() {
                    let at = if self.pick.is_some() { "/pick" } else { "/pattern" };
                    problems.at(at, "`pick` and `pattern` choose from `source_dir`; with `source` leave them out");
                }
                check_path("source", file, problems);
                Source::Given(file.clone())
            }
            (None, Some(dir)) => {
                check_path("source_dir", dir, problems);
                match self.pick.as_deref() {
                    None | Some("latest") => {}
                    Some(other) => problems.at(
                        "/pick",
                        format!("`pick` is `{other}`; `latest` (the newest by modification time) is the only choice"),
                    ),
                }
                if let Some(pattern) = &self.pattern {
                    if pattern.is_empty() {
                        problems.at("/pattern", "`pattern` is empty; leave it out to consider every name");
                    } else if pattern.contains('/') {
                        problems.at(
                            "/pattern",
                            format!(
                                "`pattern` `{pattern}` contains `/`; it matches names inside `source_dir`, not paths"
                            ),
                        );
                    }
                }
                Source::Latest { dir: dir.clone(), pattern: self.pattern.clone() }
            }
        };
        let from = match &source {
            Source::Given(p) => ("source", p),
            Source::Latest { dir, .. } => ("source_dir", dir),
        };
        if from.1 == &self.target {
            problems.at(
                Pointer::root().key(from.0),
                format!("`{}` and `target` are the same path `{}`", from.0, self.target),
            );
        } else if is_inside(from.1, &self.target) {
            problems.at(
                Pointer::root().key(from.0),
                format!(
                    "`{}` `{}` is inside `target` `{}`: restoring would replace the backup itself",
                    from.0, from.1, self.target
                ),
            );
        }
        Some(source)
    }
}

/// Whether `path` lies strictly inside the directory `dir`.
pub fn is_inside(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir).is_some_and(|rest| rest.starts_with('/'))
}

/// A guest path must be plain and absolute, like the host requires of every
/// path it maps: no empty, `.` or `..` parts, no trailing `/`, not `/`.
fn check_path(key: &str, path: &str, problems: &mut Problems) {
    let plain =
        path.strip_prefix('/').is_some_and(|rest| rest.split('/').all(|p| !p.is_empty() && p != "." && p != ".."));
    let at = Pointer::root().key(key);
    if path.is_empty() {
        problems.at(at, format!("`{key}` is empty: give an absolute guest path such as `/app/.env`"));
    } else if path.contains('\0') {
        problems.at(at, format!("`{key}` contains a NUL character"));
    } else if !plain {
        problems.at(
            at,
            format!(
                "`{key}` must be a plain absolute guest path such as `/app/.env` (no `.` or `..` parts, \
             no doubled or trailing `/`), not `{path}`"
            ),
        );
    }
}

fn check_require_keys(keys: &[String], format: Format, problems: &mut Problems) -> Vec<KeyPath> {
    if !keys.is_empty() && format == Format::None {
        problems.at(
            "/require_keys",
            "`require_keys` needs a format to look keys up in: set `validate` to one of \
             `toml`, `json`, `yaml`, `dotenv`",
        );
        return Vec::new();
    }
    let mut parsed: Vec<KeyPath> = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let at = Pointer::root().key("require_keys").index(i);
        match KeyPath::parse(key, format) {
            Ok(path) if parsed.contains(&path) => problems.at(at, format!("`require_keys` lists `{key}` twice")),
            Ok(path) => parsed.push(path),
            Err(why) => problems.at(at, format!("`require_keys` entry `{key}`: {why}")),
        }
    }
    parsed
}

/// The config's JSON Schema (draft 2020-12). `plan` stays the authority.
pub fn schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "file-restore",
        "description": "Put a file or directory back from a backup: the backup is checked (it must parse, \
                        with the required keys) before anything is replaced; a safety copy is kept; \
                        the replace is atomic and keeps the live file's mode and owner.",
        "type": "object",
        "properties": {
            "target": {
                "description": "Guest path of the live file or directory, inside a read-write grant. It must exist.",
                "type": "string",
                "pattern": "^/",
                "examples": ["/app/.env", "/app/cortex.toml", "/app/conf.d"]
            },
            "source": {
                "description": "The backup: a file, or a directory when `target` is a directory.",
                "type": "string",
                "pattern": "^/",
                "examples": ["/backups/config/.env.production"]
            },
            "source_dir": {
                "description": "A directory of backups; `pick` chooses one entry of the target's kind.",
                "type": "string",
                "pattern": "^/"
            },
            "pick": {
                "description": "`latest`: the newest by modification time; on a tie, the greatest name.",
                "enum": ["latest"],
                "default": "latest"
            },
            "pattern": {
                "description": "Only names matching this glob (`*` any run, `?` one character) are candidates. \
                                Hidden names only when the pattern starts with `.`.",
                "type": "string",
                "examples": ["cortex-*.toml"]
            },
            "validate": {
                "description": "How the backup must parse before it replaces anything.",
                "enum": ["toml", "json", "yaml", "dotenv", "none"]
            },
            "require_keys": {
                "description": "Dotted paths that must exist in the backup (`server.port`, `servers.0.host`, \
                                `a.\"dotted.key\"`); for dotenv, variable names.",
                "type": "array",
                "items": { "type": "string", "minLength": 1 },
                "uniqueItems": true,
                "default": []
            }
        },
        "required": ["target", "validate"],
        "additionalProperties": false,
        "oneOf": [
            { "required": ["source"], "not": { "anyOf": [{ "required": ["source_dir"] }, { "required": ["pick"] }, { "required": ["pattern"] }] } },
            { "required": ["source_dir"], "not": { "required": ["source"] } }
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The config checked; a refusal as its words (the messages joined with "; ").
    fn validate(json: &str) -> Result<Valid, String> {
        refused(json).map_err(|p| p.to_string())
    }

    fn refused(json: &str) -> Result<Valid, Problems> {
        serde_json::from_str::<Config>(json).expect("deserializes").validate()
    }

    /// The pointer of every problem, in the order reported.
    fn pointers(json: &str) -> Vec<Option<String>> {
        let problems = Problems::decode(&refused(json).expect_err("refused").encode());
        problems.0.iter().map(|p| p.pointer.as_ref().map(ToString::to_string)).collect()
    }

    #[test]
    fn each_problem_names_its_key() {
        let p = |json: &str| pointers(json);
        assert_eq!(p(r#"{"target": "app", "source": "/b/x", "validate": "none"}"#), [Some("/target".into())]);
        assert_eq!(p(r#"{"target": "/a/x", "source": "/b/../x", "validate": "none"}"#), [Some("/source".into())]);
        assert_eq!(p(r#"{"target": "/a/x", "source_dir": "", "validate": "none"}"#), [Some("/source_dir".into())]);
        assert_eq!(p(r#"{"target": "/a/x", "source": "/b/x", "validate": "ini"}"#), [Some("/validate".into())]);
        // Both sources: the first of the two.
        assert_eq!(
            p(r#"{"target": "/a/x", "source": "/b/x", "source_dir": "/b", "validate": "none"}"#),
            [Some("/source".into())]
        );
        // `pick`/`pattern` with `source`: the key that is wrong.
        assert_eq!(
            p(r#"{"target": "/a/x", "source": "/b/x", "pattern": "*", "validate": "none"}"#),
            [Some("/pattern".into())]
        );
        assert_eq!(
            p(r#"{"target": "/a/x", "source": "/b/x", "pick": "latest", "validate": "none"}"#),
            [Some("/pick".into())]
        );
        assert_eq!(
            p(r#"{"target": "/a/x", "source_dir": "/b", "pick": "oldest", "validate": "none"}"#),
            [Some("/pick".into())]
        );
        assert_eq!(
            p(r#"{"target": "/a/x", "source_dir": "/b", "pattern": "a/b", "validate": "none"}"#),
            [Some("/pattern".into())]
        );
        // The backup inside (or equal to) `target`: named at the backup.
        assert_eq!(p(r#"{"target": "/a", "source_dir": "/a/old", "validate": "none"}"#), [Some("/source_dir".into())]);
        assert_eq!(p(r#"{"target": "/a/x", "source": "/a/x", "validate": "none"}"#), [Some("/source".into())]);
        assert_eq!(
            p(r#"{"target": "/a/x", "source": "/b/x", "validate": "none", "require_keys": ["A"]}"#),
            [Some("/require_keys".into())]
        );
        assert_eq!(
            p(r#"{"target": "/a/x", "source": "/b/x", "validate": "toml", "require_keys": ["a", "b..c", "a"]}"#),
            [Some("/require_keys/1".into()), Some("/require_keys/2".into())]
        );
        // Problems with no key to blame: none missing, nothing to restore from.
        assert_eq!(p(r#"{"target": "/a/x", "source": "/b/x"}"#), [None]);
        assert_eq!(p(r#"{"target": "/a/x", "validate": "none"}"#), [None]);
    }

    #[test]
    fn a_given_source_with_defaults() {
        let valid = validate(r#"{"target": "/app/.env", "source": "/backups/.env.production", "validate": "dotenv"}"#)
            .expect("valid");
        assert_eq!(valid.source, Source::Given("/backups/.env.production".into()));
        assert_eq!(valid.validate, Format::Dotenv);
        assert!(valid.require_keys.is_empty());
    }

    #[test]
    fn source_dir_picks_the_latest_by_default() {
        let valid = validate(
            r#"{"target": "/app/cortex.toml", "source_dir": "/app/rollback-config", "pattern": "cortex-*.toml",
                "validate": "toml", "require_keys": ["server.port"]}"#,
        )
        .expect("valid");
        assert_eq!(
            valid.source,
            Source::Latest { dir: "/app/rollback-config".into(), pattern: Some("cortex-*.toml".into()) }
        );
        assert_eq!(valid.require_keys.len(), 1);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let error =
            validate(r#"{"target": "app/.env", "source": "/b/x", "source_dir": "/b", "validate": "ini"}"#).unwrap_err();
        assert!(error.contains("plain absolute guest path"), "{error}");
        assert!(error.contains("not both"), "{error}");
        assert!(error.contains("`validate` is `ini`; use one of"), "{error}");
    }

    #[test]
    fn validate_is_required_and_none_must_be_said() {
        let error = validate(r#"{"target": "/app/.env", "source": "/b/.env"}"#).unwrap_err();
        assert!(error.starts_with("`validate` is required"), "{error}");
        assert!(validate(r#"{"target": "/app/.env", "source": "/b/.env", "validate": "none"}"#).is_ok());
        let error =
            validate(r#"{"target": "/a/x", "source": "/b/x", "validate": "none", "require_keys": ["A"]}"#).unwrap_err();
        assert!(error.contains("`require_keys` needs a format"), "{error}");
    }

    #[test]
    fn source_and_target_must_not_overlap() {
        let same = validate(r#"{"target": "/app/x", "source": "/app/x", "validate": "none"}"#).unwrap_err();
        assert!(same.contains("same path"), "{same}");
        let inside =
            validate(r#"{"target": "/app/conf", "source_dir": "/app/conf/old", "validate": "none"}"#).unwrap_err();
        assert!(inside.contains("is inside `target`"), "{inside}");
        // The target may sit inside the directory of backups: it is never a candidate.
        assert!(validate(r#"{"target": "/app/cortex.toml", "source_dir": "/app", "pattern": "cortex-*.toml", "validate": "toml"}"#).is_ok());
    }

    #[test]
    fn pick_and_pattern_belong_to_source_dir() {
        let error =
            validate(r#"{"target": "/a/x", "source": "/b/x", "pattern": "*.toml", "validate": "toml"}"#).unwrap_err();
        assert!(error.contains("with `source` leave them out"), "{error}");
        let error =
            validate(r#"{"target": "/a/x", "source_dir": "/b", "pick": "oldest", "validate": "toml"}"#).unwrap_err();
        assert!(error.contains("`latest` (the newest by modification time) is the only choice"), "{error}");
        let error = validate(r#"{"target": "/a/x", "source_dir": "/b", "pattern": "old/*.toml", "validate": "toml"}"#)
            .unwrap_err();
        assert!(error.contains("contains `/`"), "{error}");
    }

    #[test]
    fn require_keys_are_parsed_for_the_format_and_not_repeated() {
        let error =
            validate(r#"{"target": "/a/x", "source": "/b/x", "validate": "toml", "require_keys": ["a..b", "c", "c"]}"#)
                .unwrap_err();
        assert!(error.contains("`require_keys` entry `a..b`"), "{error}");
        assert!(error.contains("lists `c` twice"), "{error}");
        let error =
            validate(r#"{"target": "/a/x", "source": "/b/x", "validate": "dotenv", "require_keys": ["NOT VALID"]}"#)
                .unwrap_err();
        assert!(error.contains("`NOT VALID`"), "{error}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let error = serde_json::from_str::<Config>(r#"{"target": "/a", "sorce": "/b"}"#).unwrap_err().to_string();
        assert!(error.contains("unknown field `sorce`"), "{error}");
    }

    #[test]
    fn the_schema_names_every_key() {
        let schema = schema();
        for key in ["target", "source", "source_dir", "pick", "pattern", "validate", "require_keys"] {
            assert!(schema["properties"][key].is_object(), "{key}");
        }
    }
}
