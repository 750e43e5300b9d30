//! Version requirements: which pinned versions a runbook's `uses` accepts.
//!
//! A runbook says `uses = "name@1"` or `"name@^1.2"`; the registry picks the
//! highest pinned version that matches. The syntax is Cargo's, with one
//! deliberate difference: a bare full version (`1.2.3`) means *exactly* that
//! version, as `=1.2.3` does, because an operator who writes a full version
//! in a runbook means that one and no other. Hand-written instead of a semver
//! crate: the grammar is small and the version rules already live in
//! [`crate::validate`].

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::validate::{Version, has_leading_zero, is_numeric};

/// Longest requirement accepted (the longest valid version plus an operator).
const MAX_LEN: usize = 129;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Any,
    Exact,
    Prefix,
    Caret,
    Tilde,
}

/// A parsed version requirement.
///
/// | requirement | matches |
/// |---|---|
/// | `*` | any release |
/// | `1`, `1.2` | any release with that prefix: `1.x.y`, `1.2.y` |
/// | `1.2.3`, `=1.2.3` | exactly `1.2.3` (build metadata ignored unless given) |
/// | `^1.2.3`, `^1.2`, `^1` | Cargo caret: `>=1.2.3, <2.0.0`; `^0.2.3` is `>=0.2.3, <0.3.0`; `^0.0.3` is `=0.0.3` |
/// | `~1.2.3`, `~1.2`, `~1` | Cargo tilde: `>=1.2.3, <1.3.0`; `~1.2` is `1.2.y`; `~1` is `1.x.y` |
///
/// Pre-releases follow Cargo's rule: a version like `1.3.0-rc.1` matches
/// only a requirement that names a pre-release of the same
/// `MAJOR.MINOR.PATCH` (`^1.3.0-rc.1`, `=1.3.0-rc.1`), never `1`, `^1.2` or `*`.
///
/// Displays as it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionReq {
    text: String,
    op: Op,
    /// The given components (1 to 3), digits without leading zeros.
    parts: Vec<String>,
    pre: Option<String>,
    build: Option<String>,
}

impl VersionReq {
    /// Whether `version` satisfies this requirement. An invalid version
    /// never does.
    pub fn matches(&self, version: &str) -> bool {
        let Ok(version) = Version::parse(version) else {
            return false;
        };
        if version.pre.is_some() {
            // Cargo's rule: pre-releases only when asked for by name, on the
            // same MAJOR.MINOR.PATCH.
            let same_core = self.parts.len() == 3 && self.parts.iter().zip(version.core).all(|(a, b)| a == b);
            if self.pre.is_none() || !same_core {
                return false;
            }
        }
        let at_least_lower = || version.precedence(&self.lower()) != Ordering::Less;
        match self.op {
            Op::Any => true,
            Op::Exact => {
                version.precedence(&self.lower()) == Ordering::Equal
                    && self.build.as_deref().is_none_or(|build| version.build == Some(build))
            }
            Op::Prefix => self.same_leading(&version, self.parts.len()),
            Op::Tilde => self.same_leading(&version, self.parts.len().min(2)) && at_least_lower(),
            Op::Caret => {
                let fixed = match self.parts.iter().map(String::as_str).collect::<Vec<_>>()[..] {
                    [major, ..] if major != "0" => 1,
                    [_] => 1,
                    [_, minor, ..] if minor != "0" => 2,
                    [_, _] => 2,
                    _ => 3,
                };
                self.same_leading(&version, fixed) && at_least_lower()
            }
        }
    }

    /// The smallest version the requirement names: missing parts are `0`.
    fn lower(&self) -> Version<'_> {
        let part = |i: usize| self.parts.get(i).map_or("0", String::as_str);
        Version { core: [part(0), part(1), part(2)], pre: self.pre.as_deref(), build: None }
    }

    /// Whether the first `count` components of `version` equal ours.
    fn same_leading(&self, version: &Version<'_>, count: usize) -> bool {
        self.parts.iter().zip(version.core).take(count).all(|(a, b)| a == b)
    }
}

impl FromStr for VersionReq {
    type Err = InvalidVersionReq;

    fn from_str(text: &str) -> Result<VersionReq, InvalidVersionReq> {
        let invalid = |reason: String| InvalidVersionReq { requirement: text.to_owned(), reason };
        const SHAPE: &str = "expected `*`, `1`, `1.2`, `^1.2`, `~1.2`, `1.2.3` or `=1.2.3`";
        if text == "*" {
            return Ok(VersionReq { text: text.to_owned(), op: Op::Any, parts: Vec::new(), pre: None, build: None });
        }
        if text.is_empty() {
            return Err(invalid(format!("must not be empty, {SHAPE}")));
        }
        let (op, rest) = match text.as_bytes()[0] {
            b'=' => (Some(Op::Exact), &text[1..]),
            b'^' => (Some(Op::Caret), &text[1..]),
            b'~' => (Some(Op::Tilde), &text[1..]),
            _ => (None, text),
        };
        if let Some(c) = rest.chars().find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'))) {
            return Err(invalid(format!("`{}` is not allowed, {SHAPE}", c.escape_debug())));
        }
        if rest.is_empty() {
            return Err(invalid(format!("expected a version after `{}`", &text[..1])));
        }
        // Only ASCII is left, so bytes are characters.
        if text.len() > MAX_LEN {
            return Err(invalid(format!("must be at most {MAX_LEN} characters, found {}", text.len())));
        }

        let (without_build, build) = match rest.split_once('+') {
            Some((rest, build)) => (rest, Some(build)),
            None => (rest, None),
        };
        let (core, pre) = match without_build.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (without_build, None),
        };
        let parts: Vec<&str> = core.split('.').collect();
        if parts.len() > 3 {
            return Err(invalid(format!("`{core}` has more than three components, {SHAPE}")));
        }
        for part in &parts {
            if part.is_empty() || !is_numeric(part) {
                return Err(invalid(format!("`{part}` in `{core}` is not a number, {SHAPE}")));
            }
            if has_leading_zero(part) {
                return Err(invalid(format!("`{part}` in `{core}` has a leading zero")));
            }
        }
        if parts.len() == 3 {
            // Pre-release and build rules are the version's.
            Version::parse(rest).map_err(invalid)?;
        } else if pre.is_some() || build.is_some() {
            return Err(invalid("a pre-release or build metadata needs a full MAJOR.MINOR.PATCH".to_owned()));
        }
        let op = match op {
            None if parts.len() == 3 => Op::Exact,
            None => Op::Prefix,
            Some(Op::Exact) if parts.len() < 3 => {
                return Err(invalid("`=` needs a full version MAJOR.MINOR.PATCH".to_owned()));
            }
            Some(op) => op,
        };
        if build.is_some() && op != Op::Exact {
            return Err(invalid("build metadata is only allowed in an exact version".to_owned()));
        }
        Ok(VersionReq {
            text: text.to_owned(),
            op,
            parts: parts.into_iter().map(str::to_owned).collect(),
            pre: pre.map(str::to_owned),
            build: build.map(str::to_owned),
        })
    }
}

impl fmt::Display for VersionReq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A version requirement (`1`, `^1.2`, `~1.2`, `=1.2.3`, `*`, …) that
/// [`VersionReq`] cannot parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid version requirement `{}`: {reason}", .requirement.escape_debug())]
pub struct InvalidVersionReq {
    pub requirement: String,
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERSIONS: &[&str] = &[
        "0.0.3",
        "0.0.4",
        "0.1.0",
        "0.2.3",
        "0.2.9",
        "0.3.0",
        "1.0.0",
        "1.2.0",
        "1.2.3",
        "1.2.9",
        "1.3.0-rc.1",
        "1.3.0-rc.2",
        "1.3.0",
        "1.10.0",
        "2.0.0-alpha",
        "2.0.0+linux",
    ];

    fn matching(requirement: &str) -> Vec<&'static str> {
        let requirement: VersionReq = requirement.parse().unwrap();
        VERSIONS.iter().copied().filter(|v| requirement.matches(v)).collect()
    }

    #[test]
    fn prefix_requirements_match_every_release_with_that_prefix() {
        assert_eq!(matching("1"), ["1.0.0", "1.2.0", "1.2.3", "1.2.9", "1.3.0", "1.10.0"]);
        assert_eq!(matching("1.2"), ["1.2.0", "1.2.3", "1.2.9"]);
        assert_eq!(matching("0"), ["0.0.3", "0.0.4", "0.1.0", "0.2.3", "0.2.9", "0.3.0"]);
        assert_eq!(matching("1.1"), Vec::<&str>::new());
    }

    #[test]
    fn bare_full_versions_and_equals_pin_exactly() {
        assert_eq!(matching("1.2.3"), ["1.2.3"]);
        assert_eq!(matching("=1.2.3"), ["1.2.3"]);
        assert_eq!(matching("=1.3.0-rc.1"), ["1.3.0-rc.1"]);
        // Build metadata is ignored unless the requirement names it.
        assert_eq!(matching("2.0.0"), ["2.0.0+linux"]);
        assert_eq!(matching("2.0.0+linux"), ["2.0.0+linux"]);
        assert_eq!(matching("2.0.0+windows"), Vec::<&str>::new());
    }

    #[test]
    fn caret_requirements_follow_cargo() {
        assert_eq!(matching("^1.2.3"), ["1.2.3", "1.2.9", "1.3.0", "1.10.0"]);
        assert_eq!(matching("^1.2"), ["1.2.0", "1.2.3", "1.2.9", "1.3.0", "1.10.0"]);
        assert_eq!(matching("^1"), ["1.0.0", "1.2.0", "1.2.3", "1.2.9", "1.3.0", "1.10.0"]);
        assert_eq!(matching("^0.2.3"), ["0.2.3", "0.2.9"]);
        assert_eq!(matching("^0.2"), ["0.2.3", "0.2.9"]);
        assert_eq!(matching("^0.0.3"), ["0.0.3"]);
        assert_eq!(matching("^0.0"), ["0.0.3", "0.0.4"]);
        assert_eq!(matching("^0"), ["0.0.3", "0.0.4", "0.1.0", "0.2.3", "0.2.9", "0.3.0"]);
    }

    #[test]
    fn tilde_requirements_follow_cargo() {
        assert_eq!(matching("~1.2.3"), ["1.2.3", "1.2.9"]);
        assert_eq!(matching("~1.2"), ["1.2.0", "1.2.3", "1.2.9"]);
        assert_eq!(matching("~1"), ["1.0.0", "1.2.0", "1.2.3", "1.2.9", "1.3.0", "1.10.0"]);
        assert_eq!(matching("~0.2.4"), ["0.2.9"]);
    }

    #[test]
    fn star_matches_every_release_but_no_pre_release() {
        assert_eq!(matching("*").len(), VERSIONS.len() - 3);
        assert!(!matching("*").contains(&"1.3.0-rc.1"));
    }

    #[test]
    fn pre_releases_match_only_when_named_on_the_same_core() {
        assert_eq!(matching("^1.3.0-rc.1"), ["1.3.0-rc.1", "1.3.0-rc.2", "1.3.0", "1.10.0"]);
        assert_eq!(matching("~1.3.0-rc.2"), ["1.3.0-rc.2", "1.3.0"]);
        // A pre-release on another core does not open 2.0.0-alpha.
        assert_eq!(matching("^1.2.3-beta"), ["1.2.3", "1.2.9", "1.3.0", "1.10.0"]);
        assert!(!"^2".parse::<VersionReq>().unwrap().matches("2.0.0-alpha"));
        assert!("^2.0.0-alpha".parse::<VersionReq>().unwrap().matches("2.0.0-alpha"));
    }

    #[test]
    fn requirements_display_as_written() {
        for text in ["*", "1", "1.2", "^1.2", "~1.2.3", "=1.2.3", "1.2.3", "^1.3.0-rc.1", "=2.0.0+linux"] {
            assert_eq!(text.parse::<VersionReq>().unwrap().to_string(), text);
        }
    }

    #[test]
    fn invalid_requirements_say_what_is_wrong() {
        let reason = |text: &str| match text.parse::<VersionReq>() {
            Err(InvalidVersionReq { requirement, reason }) => {
                assert_eq!(requirement, text);
                reason
            }
            other => panic!("expected InvalidVersionReq for {text:?}, got {other:?}"),
        };
        assert!(reason("").starts_with("must not be empty"));
        assert_eq!(reason("^"), "expected a version after `^`");
        assert!(reason(">=1.2").starts_with("`>` is not allowed"));
        assert!(reason("1.*").starts_with("`*` is not allowed"));
        assert!(reason(" 1").starts_with("` ` is not allowed"));
        assert!(reason("v1").starts_with("`v1` in `v1` is not a number"));
        assert!(reason("1.2.3.4").starts_with("`1.2.3.4` has more than three components"));
        assert_eq!(reason("01.2"), "`01` in `01.2` has a leading zero");
        assert_eq!(reason("=1.2"), "`=` needs a full version MAJOR.MINOR.PATCH");
        assert_eq!(reason("1.2-rc"), "a pre-release or build metadata needs a full MAJOR.MINOR.PATCH");
        assert_eq!(reason("^1.2.3+b"), "build metadata is only allowed in an exact version");
        assert_eq!(reason("1.2.3-rc..1"), "pre-release `rc..1` has an empty identifier");
        assert!(reason(&"1".repeat(200)).starts_with("must be at most 129 characters"));
        let message = "1.x".parse::<VersionReq>().unwrap_err().to_string();
        assert!(message.starts_with("invalid version requirement `1.x`: `x` in `1.x` is not a number"), "{message}");
    }

    #[test]
    fn huge_components_compare_without_overflow() {
        let big = "99999999999999999999999";
        let requirement: VersionReq = format!("^{big}").parse().unwrap();
        assert!(requirement.matches(&format!("{big}.1.0")));
        assert!(!requirement.matches(&format!("{big}0.1.0")));
        assert!(!requirement.matches("not a version"));
    }
}
