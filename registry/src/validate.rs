//! What may enter an index.
//!
//! Names and versions never become file paths (blobs are addressed by digest
//! only), but they are shown to operators, compared by tools and, later,
//! signed. Refusing anything unusual up front keeps `../x`, look-alike unicode
//! and terminal escapes out of every index.

use std::cmp::Ordering;

const MAX_NAME_LEN: usize = 64;
const MAX_VERSION_LEN: usize = 128;
const MAX_LABEL_LEN: usize = 256;

/// Checks a plugin name: 1 to 64 lowercase ASCII letters, digits and `-`,
/// starting with a letter.
pub fn validate_name(name: &str) -> Result<(), ValidateError> {
    let refuse = |reason: String| Err(ValidateError::InvalidName { name: name.to_owned(), reason });
    if name.is_empty() {
        return refuse("must not be empty".to_owned());
    }
    if let Some(c) = name.chars().find(|&c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')) {
        return refuse(format!("`{}` is not allowed, use lowercase ascii letters, digits and `-`", c.escape_debug()));
    }
    // Only ASCII is left, so bytes are characters.
    if name.len() > MAX_NAME_LEN {
        return refuse(format!("must be at most {MAX_NAME_LEN} characters, found {}", name.len()));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return refuse("must start with a lowercase ascii letter".to_owned());
    }
    Ok(())
}

/// Checks a version: semver `MAJOR.MINOR.PATCH` with an optional
/// `-prerelease` and `+build` (<https://semver.org>), at most 128 characters.
pub fn validate_version(version: &str) -> Result<(), ValidateError> {
    let refuse = |reason: String| Err(ValidateError::InvalidVersion { version: version.to_owned(), reason });
    match Version::parse(version) {
        Ok(_) => Ok(()),
        Err(_) if version.len() > 1 && version.starts_with(['v', 'V']) && Version::parse(&version[1..]).is_ok() => {
            refuse(format!("remove the leading `{}`", &version[..1]))
        }
        Err(reason) => refuse(reason),
    }
}

/// A parsed, valid semver version, borrowing from its text.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Version<'a> {
    /// MAJOR, MINOR, PATCH: digits without leading zeros, of any length.
    pub(crate) core: [&'a str; 3],
    pub(crate) pre: Option<&'a str>,
    pub(crate) build: Option<&'a str>,
}

impl<'a> Version<'a> {
    pub(crate) fn parse(text: &'a str) -> Result<Version<'a>, String> {
        const SHAPE: &str = "MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]";
        if text.is_empty() {
            return Err(format!("must not be empty, expected {SHAPE}"));
        }
        if let Some(c) = text.chars().find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'))) {
            return Err(format!("`{}` is not allowed, expected {SHAPE}", c.escape_debug()));
        }
        // Only ASCII is left, so bytes are characters.
        if text.len() > MAX_VERSION_LEN {
            return Err(format!("must be at most {MAX_VERSION_LEN} characters, found {}", text.len()));
        }

        let (rest, build) = match text.split_once('+') {
            Some((rest, build)) => (rest, Some(build)),
            None => (text, None),
        };
        // The core has no `-`, so the first one starts the pre-release (which
        // may contain more).
        let (core, pre) = match rest.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (rest, None),
        };

        let parts: Vec<&str> = core.split('.').collect();
        let [major, minor, patch] = parts[..] else {
            return Err(format!("expected {SHAPE}, found `{core}` before any `-` or `+`"));
        };
        for part in [major, minor, patch] {
            if part.is_empty() {
                return Err(format!("`{core}` has an empty component, expected {SHAPE}"));
            }
            if !is_numeric(part) {
                return Err(format!("`{part}` in `{core}` is not a number, expected {SHAPE}"));
            }
            if has_leading_zero(part) {
                return Err(format!("`{part}` in `{core}` has a leading zero"));
            }
        }
        if pre == Some("") {
            return Err("`-` must be followed by a pre-release".to_owned());
        }
        if build == Some("") {
            return Err("`+` must be followed by build metadata".to_owned());
        }
        if let Some(pre) = pre {
            for identifier in pre.split('.') {
                if identifier.is_empty() {
                    return Err(format!("pre-release `{pre}` has an empty identifier"));
                }
                if is_numeric(identifier) && has_leading_zero(identifier) {
                    return Err(format!("pre-release identifier `{identifier}` has a leading zero"));
                }
            }
        }
        if let Some(build) = build {
            if build.contains('+') {
                return Err("`+` may appear only once".to_owned());
            }
            if build.split('.').any(str::is_empty) {
                return Err(format!("build metadata `{build}` has an empty identifier"));
            }
        }
        Ok(Version { core: [major, minor, patch], pre, build })
    }

    /// Semver precedence (build metadata does not count).
    pub(crate) fn precedence(&self, other: &Version<'_>) -> Ordering {
        let core = self.core.iter().zip(other.core).map(|(a, b)| compare_numeric(a, b));
        core.fold(Ordering::Equal, Ordering::then).then_with(|| match (self.pre, other.pre) {
            (None, None) => Ordering::Equal,
            // A pre-release comes before its release.
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(a), Some(b)) => {
                let mut a = a.split('.');
                let mut b = b.split('.');
                loop {
                    match (a.next(), b.next()) {
                        (None, None) => return Ordering::Equal,
                        (None, Some(_)) => return Ordering::Less,
                        (Some(_), None) => return Ordering::Greater,
                        (Some(x), Some(y)) => {
                            let order = match (is_numeric(x), is_numeric(y)) {
                                (true, true) => compare_numeric(x, y),
                                (true, false) => Ordering::Less,
                                (false, true) => Ordering::Greater,
                                (false, false) => x.cmp(y),
                            };
                            if order != Ordering::Equal {
                                return order;
                            }
                        }
                    }
                }
            }
        })
    }
}

pub(crate) fn is_numeric(identifier: &str) -> bool {
    identifier.bytes().all(|b| b.is_ascii_digit())
}

pub(crate) fn has_leading_zero(number: &str) -> bool {
    number.len() > 1 && number.starts_with('0')
}

/// Compares digit strings without leading zeros, of any length.
pub(crate) fn compare_numeric(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Orders versions by semver precedence, then by text (so `1.0.0+a` and
/// `1.0.0+b` still have a fixed order). Invalid versions, which never reach an
/// index, fall back to text order.
pub(crate) fn compare_versions(a: &str, b: &str) -> Ordering {
    match (Version::parse(a), Version::parse(b)) {
        (Ok(x), Ok(y)) => x.precedence(&y).then_with(|| a.cmp(b)),
        _ => a.cmp(b),
    }
}

/// Whether two versions have the same semver precedence (they differ at
/// most in build metadata).
pub(crate) fn same_precedence(a: &str, b: &str) -> bool {
    match (Version::parse(a), Version::parse(b)) {
        (Ok(x), Ok(y)) => x.precedence(&y) == Ordering::Equal,
        _ => a == b,
    }
}

/// Checks a free-form entry field (`world`, `publisher`): 1 to 256 printable
/// ASCII characters, no spaces.
pub(crate) fn validate_label(field: &'static str, value: &str) -> Result<(), ValidateError> {
    let refuse = |reason: String| Err(ValidateError::InvalidField { field, value: value.to_owned(), reason });
    if value.is_empty() {
        return refuse("must not be empty".to_owned());
    }
    if let Some(c) = value.chars().find(|c| !c.is_ascii_graphic()) {
        return refuse(format!("`{}` is not allowed, use printable ascii without spaces", c.escape_debug()));
    }
    if value.len() > MAX_LABEL_LEN {
        return refuse(format!("must be at most {MAX_LABEL_LEN} characters, found {}", value.len()));
    }
    Ok(())
}

/// A name, version or other entry field that may not enter an index.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidateError {
    #[error("invalid plugin name `{}`: {reason}", .name.escape_debug())]
    InvalidName { name: String, reason: String },

    #[error("invalid version `{}`: {reason}", .version.escape_debug())]
    InvalidVersion { version: String, reason: String },

    /// Another entry field (`world`, `publisher`, `added`) is malformed.
    #[error("invalid {field} `{}`: {reason}", .value.escape_debug())]
    InvalidField { field: &'static str, value: String, reason: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names_are_accepted() {
        for name in ["a", "env-toggle", "k8s-rollout", "x-", "a--b", &"a".repeat(64)] {
            validate_name(name).unwrap_or_else(|e| panic!("{name:?} should be valid: {e}"));
        }
    }

    #[test]
    fn name_errors_say_what_is_wrong() {
        let message = |name: &str| validate_name(name).unwrap_err().to_string();
        assert_eq!(message(""), "invalid plugin name ``: must not be empty");
        assert_eq!(
            message("Env"),
            "invalid plugin name `Env`: `E` is not allowed, use lowercase ascii letters, digits and `-`"
        );
        assert_eq!(message("1password"), "invalid plugin name `1password`: must start with a lowercase ascii letter");
        assert_eq!(
            message(&"a".repeat(65)),
            format!("invalid plugin name `{}`: must be at most 64 characters, found 65", "a".repeat(65))
        );
        // Terminal escapes are shown escaped, not interpreted.
        assert!(message("a\u{1b}[31m").starts_with("invalid plugin name `a\\u{1b}[31m`"));
    }

    #[test]
    fn valid_versions_are_accepted() {
        for version in [
            "0.1.0",
            "0.0.0",
            "10.20.30",
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-0A.is.legal",
            "1.0.0-x-y-z.--",
            "1.0.0+build.5",
            "1.0.0+001",
            "1.0.0-rc.1+sha.5114f85",
            "1.2.3----RC-SNAPSHOT.12.9.1--.12+788",
            "99999999999999999999999.999999999999999999.99999999999999999",
        ] {
            validate_version(version).unwrap_or_else(|e| panic!("{version:?} should be valid: {e}"));
        }
    }

    #[test]
    fn version_errors_say_what_is_wrong() {
        let reason = |version: &str| match validate_version(version) {
            Err(ValidateError::InvalidVersion { version: v, reason }) => {
                assert_eq!(v, version);
                reason
            }
            other => panic!("expected InvalidVersion for {version:?}, got {other:?}"),
        };
        assert_eq!(reason("v1.2.3"), "remove the leading `v`");
        assert_eq!(reason("1.2"), "expected MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD], found `1.2` before any `-` or `+`");
        assert_eq!(reason("01.2.3"), "`01` in `01.2.3` has a leading zero");
        assert_eq!(reason("1.2.3-beta.01"), "pre-release identifier `01` has a leading zero");
        assert_eq!(reason("1.2.3-"), "`-` must be followed by a pre-release");
        assert_eq!(reason("1.2.3-rc..1"), "pre-release `rc..1` has an empty identifier");
        assert_eq!(reason("1..3"), "`1..3` has an empty component, expected MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]");
        assert_eq!(reason("1.x.3"), "`x` in `1.x.3` is not a number, expected MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]");
        assert_eq!(reason("1.2.3+a+b"), "`+` may appear only once");
        assert_eq!(reason("1.2.3-é"), "`é` is not allowed, expected MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]");
    }

    #[test]
    fn versions_sort_by_semver_precedence() {
        // The example chain from semver.org section 11, plus numeric width.
        let ordered = [
            "0.2.0",
            "0.10.0",
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.0+build.1",
            "1.0.0+build.2",
            "2.0.0",
        ];
        for (i, a) in ordered.iter().enumerate() {
            for (j, b) in ordered.iter().enumerate() {
                assert_eq!(compare_versions(a, b), i.cmp(&j), "comparing {a} with {b}");
            }
        }
    }

    #[test]
    fn labels_must_be_printable_ascii() {
        validate_label("world", "backout:step/plugin@0.1.0").unwrap();
        for bad in ["", "a b", "wörld", "a\nb", &"w".repeat(257)] {
            assert!(
                matches!(validate_label("world", bad), Err(ValidateError::InvalidField { field: "world", value, .. }) if value == bad),
                "{bad:?} should be refused"
            );
        }
    }
}
