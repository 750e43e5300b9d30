//! The step's config: the runbook's `with` table, as JSON, into the plugin's
//! types, and every problem with it reported at the key it is about.
//!
//! Two checks happen, in this order, in every call that takes a config:
//!
//! 1. [`parse`] (the SDK calls it for you): serde into [`crate::Step::Config`].
//!    An unknown key, a missing one or a value of the wrong type becomes an
//!    `invalid-config` error that names the key by its path, so the host
//!    shows it at that key's line and column in the runbook.
//! 2. [`validated`] (the plugin calls it): the plugin's own [`Validate`],
//!    for what serde cannot check (a URL's scheme, a duration's range, two
//!    keys that contradict each other). It reports every problem at once;
//!    a [`Problems`] names each one's key with [`Problems::at`].
//!
//! How a key is named on the wire is [`problems`]' business.

use serde::de::DeserializeOwned;

use crate::StepError;

pub mod problems;

pub use problems::{Pointer, Problem, Problems};

/// A config that checks its meaning beyond its shape, turning itself into
/// the plugin's validated form (`Config` → `Valid`).
///
/// `Error` is [`Problems`] when the plugin names keys; a plain `String`
/// (several problems joined with `"; "`) still works, reported at the
/// `with` table as a whole.
pub trait Validate {
    /// The config once it is known to be good.
    type Valid;
    type Error: Into<Problems>;

    /// Checks everything, reporting every problem rather than the first.
    fn validate(self) -> Result<Self::Valid, Self::Error>;
}

/// `config.validate()` as the `invalid-config` error the contract expects:
/// what every plugin's `plan`, `run`, `verify` and `undo` call first.
pub fn validated<C: Validate>(config: C) -> Result<C::Valid, StepError> {
    config.validate().map_err(|e| StepError::from(e.into()))
}

/// Deserializes the `with` table's JSON into `T`.
///
/// A serde error names the key by its path, in words at the start of the
/// message (`` `retry.attempts`: invalid type: string "3", expected u32 ``)
/// and as a pointer for the host: at the unknown key for an unknown key, at
/// the table that lacks it for a missing one, at the value otherwise.
/// serde_json's " at line 1 column 26" is dropped: it points into the JSON
/// the host generated, not into the runbook.
pub fn parse<T: DeserializeOwned>(json: &str) -> Result<T, StepError> {
    let mut de = serde_json::Deserializer::from_str(json);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let pointer = pointer_of(e.path());
        StepError::from(Problems::from(problem(pointer, e.inner())))
    })?;
    de.end().map_err(|e| StepError::invalid_config(without_position(&e)))?;
    Ok(value)
}

/// The pointer of a serde path, as far as it is known (a path through an
/// untagged enum or a flattened struct loses its way there).
fn pointer_of(path: &serde_path_to_error::Path) -> Pointer {
    use serde_path_to_error::Segment;
    let mut pointer = Pointer::root();
    for segment in path {
        pointer = match segment {
            Segment::Seq { index } => pointer.index(*index),
            Segment::Map { key } => pointer.key(key.clone()),
            Segment::Enum { variant } => pointer.key(variant.clone()),
            Segment::Unknown => break,
        };
    }
    pointer
}

/// The problem for a serde error at `pointer`, its words starting with the
/// key they are about (an unknown key is named by serde itself, after the
/// table it is in).
fn problem(pointer: Pointer, error: &serde_json::Error) -> Problem {
    let words = without_position(error);
    let named = if words.starts_with("unknown field `") {
        let mut table = pointer.tokens().to_vec();
        table.pop();
        table.into_iter().fold(Pointer::root(), Pointer::key)
    } else {
        pointer.clone()
    };
    let message = match named.is_root() {
        true => words,
        false => format!("`{}`: {words}", named.dotted()),
    };
    Problem::at(pointer, message)
}

/// serde_json's message without its " at line 1 column 26" suffix.
pub(crate) fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) if e.line() > 0 => text[..i].to_string(),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Config {
        url: String,
        #[serde(default)]
        checks: Vec<Check>,
        #[serde(default)]
        headers: BTreeMap<String, String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Check {
        name: String,
        #[serde(default)]
        retry: Retry,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Retry {
        attempts: u32,
    }

    fn refusal(json: &str) -> Problems {
        match parse::<Config>(json) {
            Err(StepError::InvalidConfig(text)) => Problems::decode(&text),
            other => panic!("expected invalid config, got {other:?}"),
        }
    }

    #[test]
    fn an_unknown_key_is_pointed_at_itself_and_named_after_its_table() {
        let p = refusal(r#"{"url": "x", "checks": [{"name": "a"}, {"name": "b", "retyr": {}}]}"#);
        assert_eq!(p.0[0].pointer, Some(Pointer::from("/checks/1/retyr")));
        assert!(p.0[0].message.starts_with("`checks[1]`: unknown field `retyr`, expected"), "{}", p.0[0].message);
    }

    #[test]
    fn an_unknown_top_level_key_needs_no_table_name() {
        let p = refusal(r#"{"url": "x", "ulr": "y"}"#);
        assert_eq!(p.0[0].pointer, Some(Pointer::from("/ulr")));
        assert!(p.0[0].message.starts_with("unknown field `ulr`, expected one of `url`"), "{}", p.0[0].message);
    }

    #[test]
    fn a_wrong_type_is_pointed_at_the_value() {
        let p = refusal(r#"{"url": "x", "checks": [{"name": "a", "retry": {"attempts": "3"}}]}"#);
        assert_eq!(p.0[0].pointer, Some(Pointer::from("/checks/0/retry/attempts")));
        assert_eq!(p.0[0].message, "`checks[0].retry.attempts`: invalid type: string \"3\", expected u32");
    }

    #[test]
    fn a_missing_key_is_pointed_at_the_table_that_lacks_it() {
        let p = refusal(r#"{"url": "x", "checks": [{"retry": {"attempts": 1}}]}"#);
        assert_eq!(p.0[0].pointer, Some(Pointer::from("/checks/0")));
        assert_eq!(p.0[0].message, "`checks[0]`: missing field `name`");
        let top = refusal(r#"{}"#);
        assert_eq!(top.0[0], Problem::new("missing field `url`"));
    }

    #[test]
    fn map_keys_that_are_not_bare_are_quoted() {
        let p = refusal(r#"{"url": "x", "headers": {"x api": 1}}"#);
        assert_eq!(p.0[0].pointer, Some(Pointer::root().key("headers").key("x api")));
        assert!(p.0[0].message.starts_with("`headers.\"x api\"`: invalid type: integer `1`"), "{}", p.0[0].message);
    }

    #[test]
    fn validated_keeps_plain_strings_and_names_keys_from_problems() {
        struct Plain;
        impl Validate for Plain {
            type Valid = ();
            type Error = String;
            fn validate(self) -> Result<(), String> {
                Err("`a` is bad; `b` is worse".into())
            }
        }
        struct Keyed;
        impl Validate for Keyed {
            type Valid = ();
            type Error = Problems;
            fn validate(self) -> Result<(), Problems> {
                let mut p = Problems::new();
                p.at("/a", "`a` is bad");
                p.into_result(())
            }
        }
        assert_eq!(validated(Plain), Err(StepError::InvalidConfig("`a` is bad; `b` is worse".into())));
        assert_eq!(validated(Keyed), Err(StepError::InvalidConfig("`#/a`: `a` is bad".into())));
    }
}
