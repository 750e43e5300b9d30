//! The step's configuration: what the runbook's `with` table may hold, how it
//! is checked, and its JSON Schema.
//!
//! Deserializing checks shapes; [`Config::validate`] checks meaning by the
//! text alone (what needs the file system or the grants is checked by
//! [`crate::layout`]) and reports every problem at once.

#![forbid(unsafe_code)]

use backout_sdk::Validate;
use backout_sdk::config::{Pointer, Problems};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::paths;

/// The keyword of `to` that asks for the release before the current one.
pub const PREVIOUS: &str = "previous";

/// The runbook's `with` table for a `release-switch` step.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The symbolic link to switch, as a guest path (`/app/current`).
    pub link: String,
    /// The directory holding one directory per release (`/app/releases`).
    pub releases_dir: String,
    /// `"previous"`, or the name of a release directory in `releases_dir`.
    pub to: String,
    /// A file every complete release holds (`REVISION`,
    /// `.release-complete`), relative to the release directory.
    #[serde(default)]
    pub marker: Option<String>,
}

/// Which release to switch to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum To {
    /// The release just before the one the link points at (see [`crate::version`]).
    Previous,
    /// This release.
    Release(String),
}

/// A config that passed [`Config::validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Valid {
    pub link: String,
    pub releases_dir: String,
    pub to: To,
    pub marker: Option<String>,
}

impl Validate for Config {
    type Valid = Valid;
    type Error = Problems;

    /// Checks what deserializing cannot, reporting every problem at once,
    /// each at the key it is about (`link` and `releases_dir` together: at
    /// `releases_dir`, the one that has to move).
    fn validate(self) -> Result<Valid, Problems> {
        let mut problems = Problems::new();
        for (field, path, example) in
            [("link", &self.link, "/app/current"), ("releases_dir", &self.releases_dir, "/app/releases")]
        {
            if let Some(why) = paths::plain_absolute_problem(path) {
                problems.at(
                    Pointer::root().key(field),
                    format!("`{field}` must be a plain absolute guest path such as `{example}`, not `{path}`: {why}"),
                );
            }
        }
        if self.link == self.releases_dir {
            problems.at("/releases_dir", format!("`link` and `releases_dir` are both `{}`", self.link));
        } else if paths::is_inside(&self.releases_dir, &self.link) {
            problems.at("/releases_dir", format!(
                "`releases_dir` `{}` is inside `link` `{}`, which is the link to switch: put the releases beside it",
                self.releases_dir, self.link
            ));
        }
        let to = if self.to == PREVIOUS {
            To::Previous
        } else {
            if let Some(why) = paths::release_name_problem(&self.to) {
                problems.at(
                    "/to",
                    format!(
                        "`to` must be \"previous\" or the name of a release directory in `releases_dir` (such as \
                     \"2.0.0\"), not `{}`: {why}",
                        self.to.escape_debug()
                    ),
                );
            }
            To::Release(self.to)
        };
        if let Some(marker) = &self.marker
            && let Some(why) = paths::marker_problem(marker)
        {
            problems.at(
                "/marker",
                format!(
                    "`marker` must name a file inside each release, such as \"REVISION\", not `{}`: {why}",
                    marker.escape_debug()
                ),
            );
        }
        problems.into_result(Valid { link: self.link, releases_dir: self.releases_dir, to, marker: self.marker })
    }
}

/// The config's JSON Schema (draft 2020-12), for people and tools. `plan`
/// stays the authority: it also checks what a schema cannot say (that the
/// release exists, is complete and stays inside the grant).
pub fn schema() -> Value {
    let plain = "^(/[^/\\u0000]+)+$";
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "release-switch",
        "description": "Point a `current` symbolic link at another release directory (releases/<version>/), \
                        atomically, with a relative target that stays inside the link's grant; undo points it back.",
        "type": "object",
        "properties": {
            "link": {
                "description": "Guest path of the symbolic link to switch, inside a directory granted read-write.",
                "type": "string",
                "pattern": plain,
                "examples": ["/app/current"]
            },
            "releases_dir": {
                "description": "Guest path of the directory holding one directory per release, in the same grant as `link`.",
                "type": "string",
                "pattern": plain,
                "examples": ["/app/releases"]
            },
            "to": {
                "description": "\"previous\" (the release just before the current one: semver order when every \
                                release name is a semantic version, else name order), or the name of a release \
                                directory in `releases_dir`.",
                "type": "string",
                "minLength": 1,
                "maxLength": paths::NAME_MAX,
                "pattern": "^[^./][^/]*$",
                "not": { "pattern": "\\.\\." },
                "examples": ["previous", "2.0.0"]
            },
            "marker": {
                "description": "A file a release must hold to count as complete (relative to the release directory).",
                "type": "string",
                "minLength": 1,
                "examples": ["REVISION", ".release-complete"]
            }
        },
        "required": ["link", "releases_dir", "to"],
        "additionalProperties": false
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The config checked; a refusal as its words (the messages joined with "; ").
    fn validate(json: Value) -> Result<Valid, String> {
        serde_json::from_value::<Config>(json).expect("deserializes").validate().map_err(|p| p.to_string())
    }

    /// The pointer of every problem, in the order found.
    fn pointers(json: Value) -> Vec<Option<String>> {
        let problems = serde_json::from_value::<Config>(json).expect("deserializes").validate().expect_err("refused");
        problems.0.iter().map(|p| p.pointer.as_ref().map(ToString::to_string)).collect()
    }

    #[test]
    fn each_problem_names_its_key() {
        let ok = json!({"link": "/app/current", "releases_dir": "/app/releases", "to": "previous"});
        let with = |key: &str, value: &str| {
            let mut v = ok.clone();
            v[key] = json!(value);
            pointers(v)
        };
        assert_eq!(with("link", "app/current"), [Some("/link".into())]);
        assert_eq!(with("releases_dir", "/app/../x"), [Some("/releases_dir".into())]);
        assert_eq!(with("to", "../1.0"), [Some("/to".into())]);
        assert_eq!(with("marker", "/REVISION"), [Some("/marker".into())]);
        // Releases inside (or equal to) the link: at `releases_dir`.
        assert_eq!(with("releases_dir", "/app/current"), [Some("/releases_dir".into())]);
        assert_eq!(with("releases_dir", "/app/current/r"), [Some("/releases_dir".into())]);
    }

    #[test]
    fn a_minimal_config_is_valid() {
        let valid = validate(json!({"link": "/app/current", "releases_dir": "/app/releases", "to": "2.0.0"}));
        assert_eq!(
            valid,
            Ok(Valid {
                link: "/app/current".into(),
                releases_dir: "/app/releases".into(),
                to: To::Release("2.0.0".into()),
                marker: None,
            })
        );
        let valid = validate(
            json!({"link": "/app/current", "releases_dir": "/app/releases", "to": "previous", "marker": "REVISION"}),
        )
        .expect("valid");
        assert_eq!((valid.to, valid.marker.as_deref()), (To::Previous, Some("REVISION")));
    }

    #[test]
    fn unknown_and_missing_fields_are_refused_by_serde() {
        let unknown = serde_json::from_value::<Config>(
            json!({"link": "/a/c", "releases_dir": "/a/r", "to": "1", "markers": "x"}),
        )
        .expect_err("refused");
        assert!(unknown.to_string().contains("unknown field `markers`"), "{unknown}");
        let missing =
            serde_json::from_value::<Config>(json!({"link": "/a/c", "releases_dir": "/a/r"})).expect_err("refused");
        assert!(missing.to_string().contains("missing field `to`"), "{missing}");
    }

    #[test]
    fn a_target_outside_releases_dir_is_refused_by_its_name() {
        for (to, why) in [
            ("../../etc", "contains `/`"),
            ("2.0.0/../../..", "contains `/`"),
            ("..", "contains `..`"),
            (".", "starts with `.`"),
            ("", "it is empty"),
        ] {
            let error = validate(json!({"link": "/app/current", "releases_dir": "/app/releases", "to": to}))
                .expect_err("refused");
            assert!(error.starts_with("`to` must be \"previous\" or the name of a release directory"), "{error}");
            assert!(error.contains(why), "{to:?}: {error}");
        }
    }

    #[test]
    fn paths_must_be_plain_and_absolute() {
        let error =
            validate(json!({"link": "current", "releases_dir": "/app/../etc", "to": "1"})).expect_err("refused");
        assert!(error.contains("`link` must be a plain absolute guest path such as `/app/current`, not `current`"));
        assert!(error.contains("`releases_dir` must be a plain absolute guest path"), "{error}");
        assert!(error.contains("`..` part"), "{error}");
    }

    #[test]
    fn releases_inside_the_link_or_equal_to_it_are_refused() {
        let error =
            validate(json!({"link": "/app/current", "releases_dir": "/app/current/releases", "to": "1"})).unwrap_err();
        assert!(error.contains("is inside `link`"), "{error}");
        let error = validate(json!({"link": "/app/x", "releases_dir": "/app/x", "to": "1"})).unwrap_err();
        assert!(error.contains("are both `/app/x`"), "{error}");
    }

    #[test]
    fn a_marker_must_stay_inside_the_release() {
        for marker in ["", "/etc/passwd", "../REVISION", "a/../../b"] {
            let error =
                validate(json!({"link": "/app/current", "releases_dir": "/app/releases", "to": "1", "marker": marker}))
                    .expect_err("refused");
            assert!(error.starts_with("`marker` must name a file inside each release"), "{marker:?}: {error}");
        }
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let error = validate(json!({"link": "x", "releases_dir": "y", "to": "../z", "marker": "/m"})).unwrap_err();
        assert_eq!(error.matches("; ").count(), 3, "{error}");
    }

    #[test]
    fn schema_describes_every_config_field() {
        let schema = schema();
        let mut names: Vec<&str> = schema["properties"].as_object().unwrap().keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["link", "marker", "releases_dir", "to"]);
        assert_eq!(schema["required"], json!(["link", "releases_dir", "to"]));
    }
}
