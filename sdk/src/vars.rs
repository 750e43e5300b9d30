//! `${env.NAME}` and `${captures.NAME}` inside config strings, expanded by the
//! plugin, inside the sandbox.
//!
//! The host substitutes `${vars.…}` and `${steps.….outputs.…}` itself, but it
//! passes `${env.NAME}` (after checking that NAME is in the step's `env`
//! grant) and `${captures.NAME}` through verbatim. The plugin expands them
//! only at the moment it needs the value, for example in a request header, so
//! a secret never appears in the config, the plan, the journal or the
//! outputs: those keep the placeholder.
//!
//! ```
//! use backout_sdk::vars::{self, Namespace};
//!
//! let header = vars::expand("Bearer ${env.API_KEY}", |ns, name| match (ns, name) {
//!     (Namespace::Env, "API_KEY") => Some("s3cret".to_owned()),
//!     _ => None,
//! });
//! assert_eq!(header.as_deref(), Ok("Bearer s3cret"));
//! ```
//!
//! Anything else between `${` and `}` is left as it is: the host has already
//! refused unknown references, so what remains is text the runbook meant
//! literally.

use std::fmt;

/// Where a `${…}` reference takes its value from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Namespace {
    /// `${env.NAME}`: a host environment variable granted to the step.
    Env,
    /// `${captures.NAME}`: a value the plugin captured earlier in the same call.
    Captures,
}

impl Namespace {
    /// The prefix as written in a reference: `env` or `captures`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Env => "env",
            Self::Captures => "captures",
        }
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `${env.NAME}` or `${captures.NAME}` found in a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub namespace: Namespace,
    pub name: String,
    /// Byte range of the whole `${…}` in the string.
    pub span: std::ops::Range<usize>,
}

impl Reference {
    /// The reference as written: `${env.API_KEY}`.
    pub fn raw(&self) -> String {
        format!("${{{}.{}}}", self.namespace, self.name)
    }
}

/// Whether `name` is a valid reference name: letters, digits, `_` and `-`
/// (the host's rule for every `${…}` reference).
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Every `${env.NAME}` and `${captures.NAME}` in `text`, in order. Other
/// `${…}` text, and references with an invalid name, are not references.
/// Blanks inside the braces are ignored (`${ env.A }`), as the host does.
pub fn references(text: &str) -> Vec<Reference> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find("${") {
        let start = from + i;
        let inner_start = start + 2;
        let Some(len) = text[inner_start..].find('}') else { break };
        let inner = &text[inner_start..inner_start + len];
        let end = inner_start + len + 1;
        let parsed = inner.trim().split_once('.').and_then(|(prefix, name)| {
            let namespace = match prefix {
                "env" => Namespace::Env,
                "captures" => Namespace::Captures,
                _ => return None,
            };
            is_valid_name(name).then(|| (namespace, name.to_owned()))
        });
        match parsed {
            Some((namespace, name)) => {
                found.push(Reference { namespace, name, span: start..end });
                from = end;
            }
            // Not ours: step past the `$` only, so a reference that starts
            // inside this text (`${x ${env.A}`) is still found.
            None => from = start + 1,
        }
    }
    found
}

/// Replaces every `${env.NAME}` and `${captures.NAME}` in `text` with the
/// value `lookup` gives for it; other text is copied as it is.
///
/// A reference `lookup` has no value for is an error naming it (`${env.X}`
/// is not set), never an empty string: an empty API key sent as
/// `Authorization: Bearer ` fails in a far more confusing way.
pub fn expand(text: &str, lookup: impl Fn(Namespace, &str) -> Option<String>) -> Result<String, String> {
    expand_partially(text, |ns, name| lookup(ns, name).map(Some))
}

/// Replaces only the references of `namespace`, leaving the others verbatim.
/// Useful to show a string with `${captures.…}` values filled in while its
/// `${env.…}` secrets stay hidden.
pub fn expand_only(
    text: &str,
    namespace: Namespace,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    expand_partially(text, |ns, name| if ns == namespace { lookup(name).map(Some) } else { Some(None) })
}

/// Like [`expand`], but `lookup` may answer `Some(None)`: keep that
/// reference as written.
fn expand_partially(text: &str, lookup: impl Fn(Namespace, &str) -> Option<Option<String>>) -> Result<String, String> {
    let refs = references(text);
    if refs.is_empty() {
        return Ok(text.to_owned());
    }
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for r in refs {
        out.push_str(&text[copied..r.span.start]);
        match lookup(r.namespace, &r.name) {
            Some(Some(value)) => out.push_str(&value),
            Some(None) => out.push_str(&text[r.span.clone()]),
            None => {
                return Err(match r.namespace {
                    Namespace::Env => format!("`{}` is not set in the host's environment", r.raw()),
                    Namespace::Captures => format!("`{}` has not been captured", r.raw()),
                });
            }
        }
        copied = r.span.end;
    }
    out.push_str(&text[copied..]);
    Ok(out)
}

/// The value of the host environment variable `name`, if the step's `env`
/// grant includes it and it is set (and is valid Unicode). The sandbox sees
/// only granted variables, so an ungranted one reads as unset.
pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// A [`expand`] lookup that reads `${env.NAME}` with [`env`] and knows no
/// captures.
pub fn env_only(namespace: Namespace, name: &str) -> Option<String> {
    match namespace {
        Namespace::Env => env(name),
        Namespace::Captures => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(ns: Namespace, name: &str) -> Option<String> {
        match (ns, name) {
            (Namespace::Env, "API_KEY") => Some("k3y".into()),
            (Namespace::Env, "EMPTY") => Some(String::new()),
            (Namespace::Captures, "id") => Some("42".into()),
            (Namespace::Captures, "memory-id") => Some("m-1".into()),
            _ => None,
        }
    }

    #[test]
    fn text_without_references_is_unchanged() {
        assert_eq!(expand("plain $text {x}", lookup).unwrap(), "plain $text {x}");
        assert_eq!(expand("", lookup).unwrap(), "");
    }

    #[test]
    fn env_and_captures_are_expanded_in_place() {
        assert_eq!(expand("Bearer ${env.API_KEY}", lookup).unwrap(), "Bearer k3y");
        assert_eq!(
            expand("/memories/${captures.id}?k=${env.API_KEY}&m=${captures.memory-id}", lookup).unwrap(),
            "/memories/42?k=k3y&m=m-1"
        );
        assert_eq!(expand("${captures.id}${captures.id}", lookup).unwrap(), "4242");
        assert_eq!(expand("${ env.API_KEY }", lookup).unwrap(), "k3y", "blanks inside the braces, as the host allows");
        assert_eq!(expand("[${env.EMPTY}]", lookup).unwrap(), "[]");
    }

    #[test]
    fn a_missing_value_is_an_error_naming_the_reference() {
        assert_eq!(expand("x ${env.NOPE}", lookup).unwrap_err(), "`${env.NOPE}` is not set in the host's environment");
        assert_eq!(expand("${captures.other}", lookup).unwrap_err(), "`${captures.other}` has not been captured");
    }

    #[test]
    fn other_placeholders_stay_verbatim() {
        for text in ["${vars.x}", "${steps.a.outputs.b}", "${env}", "${env.}", "${env.A.B}", "${env.A B}", "${env.A"] {
            assert_eq!(expand(text, lookup).unwrap(), text, "{text}");
            assert!(references(text).is_empty(), "{text}");
        }
        assert_eq!(expand("${x ${env.API_KEY}", lookup).unwrap(), "${x k3y");
    }

    #[test]
    fn values_are_not_expanded_again() {
        let nested = |_: Namespace, _: &str| Some("${env.API_KEY}".to_owned());
        assert_eq!(expand("${captures.id}", nested).unwrap(), "${env.API_KEY}");
    }

    #[test]
    fn references_report_namespace_name_and_span() {
        let refs = references("a${env.A_1}b${captures.x}");
        assert_eq!(
            refs,
            [
                Reference { namespace: Namespace::Env, name: "A_1".into(), span: 1..11 },
                Reference { namespace: Namespace::Captures, name: "x".into(), span: 12..25 },
            ]
        );
        assert_eq!(refs[0].raw(), "${env.A_1}");
    }

    #[test]
    fn expand_only_keeps_the_other_namespace() {
        let shown =
            expand_only("/m/${captures.id}?k=${env.API_KEY}", Namespace::Captures, |n| lookup(Namespace::Captures, n));
        assert_eq!(shown.unwrap(), "/m/42?k=${env.API_KEY}");
        let missing = expand_only("${captures.nope}", Namespace::Captures, |_| None);
        assert_eq!(missing.unwrap_err(), "`${captures.nope}` has not been captured");
    }

    #[test]
    fn non_ascii_text_around_references_is_kept() {
        assert_eq!(expand("é${captures.id}€", lookup).unwrap(), "é42€");
    }

    #[test]
    fn env_reads_the_process_environment() {
        assert_eq!(env("BACKOUT_SDK_SURELY_UNSET_VARIABLE"), None);
        assert!(env("PATH").is_some());
        assert_eq!(env_only(Namespace::Captures, "PATH"), None);
    }
}
