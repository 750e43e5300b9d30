//! The order of release names, and which release is "previous".
//!
//! Releases are ordered by **semantic version** (semver 2.0.0 precedence,
//! with an optional leading `v`: `v2.0.1`) when every name in the set
//! parses as one, and by **name** (byte order, as `LC_ALL=C ls` sorts)
//! otherwise. Timestamped releases (`20240521093000`, as Capistrano and
//! Deployer name them) have names of one length, so name order is their
//! time order. Two names of equal semver precedence (`1.0.0+a` and
//! `1.0.0+b`, or `1.0.0` and `v1.0.0`) are ordered by name, so the order is
//! total and the same on every call.
//!
//! "previous" is the release just before the current one in that order:
//! the greatest release that sorts below it.

#![forbid(unsafe_code)]

use std::cmp::Ordering;

/// How a set of release names is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Every name is a semantic version: semver precedence, then name.
    Semver,
    /// At least one name is not: byte order of the names.
    Name,
}

impl Order {
    /// The order of `names`: [`Order::Semver`] when every one parses.
    pub fn of<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        if names.into_iter().all(|n| Semver::parse(n).is_some()) { Self::Semver } else { Self::Name }
    }

    /// Compares two names in this order.
    pub fn compare(self, a: &str, b: &str) -> Ordering {
        match (self, Semver::parse(a), Semver::parse(b)) {
            (Self::Semver, Some(x), Some(y)) => x.cmp_precedence(&y).then_with(|| a.cmp(b)),
            _ => a.cmp(b),
        }
    }

    /// `names` sorted in this order, oldest first.
    pub fn sorted(self, names: &[String]) -> Vec<String> {
        let mut sorted = names.to_vec();
        sorted.sort_by(|a, b| self.compare(a, b));
        sorted
    }

    /// How the order is named in messages.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Semver => "semver order",
            Self::Name => "name order",
        }
    }
}

/// The release just before `current` among `releases` (which may or may not
/// include `current`), and the order that decided it: the order of
/// `releases` and `current` together. `None` when no release sorts below it.
pub fn previous<'a>(releases: &'a [String], current: &str) -> (Order, Option<&'a str>) {
    let order = Order::of(releases.iter().map(String::as_str).chain([current]));
    let before = releases
        .iter()
        .map(String::as_str)
        .filter(|r| order.compare(r, current) == Ordering::Less)
        .max_by(|a, b| order.compare(a, b));
    (order, before)
}

/// A semantic version (<https://semver.org>, 2.0.0), borrowed from its name.
/// Numbers are kept as their digits (no leading zeros), so any length compares
/// correctly without overflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Semver<'a> {
    pub major: &'a str,
    pub minor: &'a str,
    pub patch: &'a str,
    /// The pre-release identifiers (`rc.1` → `["rc", "1"]`); empty for a release.
    pub pre: Vec<&'a str>,
    /// The build metadata (`+build.5`); ignored by precedence.
    pub build: Option<&'a str>,
}

impl<'a> Semver<'a> {
    /// Parses `MAJOR.MINOR.PATCH[-PRE][+BUILD]`, with an optional leading `v`.
    pub fn parse(name: &'a str) -> Option<Self> {
        let text = name.strip_prefix('v').unwrap_or(name);
        let (text, build) = match text.split_once('+') {
            Some((t, b)) => (t, Some(b)),
            None => (text, None),
        };
        if let Some(b) = build
            && !b.split('.').all(is_identifier)
        {
            return None;
        }
        let (core, pre) = match text.split_once('-') {
            Some((c, p)) => (c, Some(p)),
            None => (text, None),
        };
        let pre: Vec<&str> = match pre {
            Some(p) => p.split('.').collect(),
            None => Vec::new(),
        };
        if !pre.iter().all(|id| is_identifier(id) && (!is_digits(id) || is_number(id))) {
            return None;
        }
        let mut parts = core.split('.');
        let (major, minor, patch) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || ![major, minor, patch].iter().all(|n| is_number(n)) {
            return None;
        }
        Some(Self { major, minor, patch, pre, build })
    }

    /// Semver precedence: the numbers, then a pre-release below its release,
    /// then the pre-release identifiers one by one (numbers below words,
    /// numbers by value, words by ASCII), then the longer list above.
    pub fn cmp_precedence(&self, other: &Self) -> Ordering {
        cmp_number(self.major, other.major)
            .then_with(|| cmp_number(self.minor, other.minor))
            .then_with(|| cmp_number(self.patch, other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => cmp_pre(&self.pre, &other.pre),
            })
    }
}

fn cmp_pre(a: &[&str], b: &[&str]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let ordering = match (is_digits(x), is_digits(y)) {
            (true, true) => cmp_number(x, y),
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => x.cmp(y),
        };
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    a.len().cmp(&b.len())
}

/// Numbers without leading zeros: the longer is the greater.
fn cmp_number(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// A semver number: digits, and no leading zero unless it is `0`.
fn is_number(s: &str) -> bool {
    is_digits(s) && (s == "0" || !s.starts_with('0'))
}

/// A semver identifier: `[0-9A-Za-z-]+`.
fn is_identifier(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn semver_parses_the_grammar_and_nothing_else() {
        let v = Semver::parse("v1.2.3-rc.1+build.5").expect("parses");
        assert_eq!((v.major, v.minor, v.patch), ("1", "2", "3"));
        assert_eq!((v.pre, v.build), (vec!["rc", "1"], Some("build.5")));
        for ok in ["0.0.0", "10.20.30", "1.0.0-alpha", "1.0.0-0.3.7", "1.0.0-x-y-z.--", "1.0.0+001", "v2.0.1"] {
            assert!(Semver::parse(ok).is_some(), "{ok}");
        }
        for bad in [
            "1",
            "1.2",
            "1.2.3.4",
            "01.2.3",
            "1.02.3",
            "1.2.03",
            "1.2.3-",
            "1.2.3-01",
            "1.2.3-a..b",
            "1.2.3+",
            "1.2.3+a..b",
            "1.2.3-a_b",
            "V1.2.3",
            "vv1.2.3",
            "",
            "current",
            "20240521093000",
            "1.2.x",
            "-1.2.3",
        ] {
            assert!(Semver::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn semver_precedence_follows_the_specification_example() {
        // semver.org, item 11: 1.0.0-alpha < 1.0.0-alpha.1 < 1.0.0-alpha.beta < 1.0.0-beta
        // < 1.0.0-beta.2 < 1.0.0-beta.11 < 1.0.0-rc.1 < 1.0.0.
        let chain = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.9.0",
            "1.10.0",
            "2.0.0",
            "10.0.0",
            "99999999999999999999999.0.0",
        ];
        let mut shuffled = names(&chain);
        shuffled.reverse();
        shuffled.swap(0, 5);
        assert_eq!(Order::of(shuffled.iter().map(String::as_str)), Order::Semver);
        assert_eq!(Order::Semver.sorted(&shuffled), names(&chain));
    }

    #[test]
    fn build_metadata_and_a_v_prefix_tie_and_fall_back_to_the_name() {
        let a = Semver::parse("1.0.0+a").unwrap();
        let b = Semver::parse("1.0.0+b").unwrap();
        assert_eq!(a.cmp_precedence(&b), Ordering::Equal);
        assert_eq!(Order::Semver.compare("1.0.0+b", "1.0.0+a"), Ordering::Greater);
        assert_eq!(Order::Semver.sorted(&names(&["v1.0.0", "1.0.0", "0.9.0"])), names(&["0.9.0", "1.0.0", "v1.0.0"]));
    }

    #[test]
    fn one_name_that_is_not_a_version_makes_it_name_order() {
        let releases = names(&["1.10.0", "1.9.0", "latest-hotfix"]);
        assert_eq!(Order::of(releases.iter().map(String::as_str)), Order::Name);
        assert_eq!(Order::Name.sorted(&releases), names(&["1.10.0", "1.9.0", "latest-hotfix"]));
    }

    #[test]
    fn timestamps_in_name_order_are_time_order() {
        let releases = names(&["20240521093000", "20231130120000", "20240102080000"]);
        let (order, before) = previous(&releases, "20240521093000");
        assert_eq!((order, before), (Order::Name, Some("20240102080000")));
    }

    #[test]
    fn previous_is_the_release_just_below_the_current_one() {
        let releases = names(&["1.9.0", "1.10.0", "2.0.0", "1.10.0-rc.1", "0.1.0"]);
        assert_eq!(previous(&releases, "2.0.0"), (Order::Semver, Some("1.10.0")));
        assert_eq!(previous(&releases, "1.10.0"), (Order::Semver, Some("1.10.0-rc.1")));
        assert_eq!(previous(&releases, "1.10.0-rc.1"), (Order::Semver, Some("1.9.0")));
        assert_eq!(previous(&releases, "0.1.0"), (Order::Semver, None), "nothing before the oldest");
        // A current release that is no longer in the list still has a place in the order.
        assert_eq!(previous(&releases, "1.9.5"), (Order::Semver, Some("1.9.0")));
        // Newer releases than the current one are never "previous".
        assert_eq!(previous(&names(&["3.0.0"]), "2.0.0"), (Order::Semver, None));
    }

    #[test]
    fn a_current_name_that_is_not_a_version_makes_the_whole_set_name_ordered() {
        // In semver order 1.10.0 is after 1.9.0; with `hotfix` in the set, names decide.
        let releases = names(&["1.9.0", "1.10.0"]);
        assert_eq!(previous(&releases, "hotfix"), (Order::Name, Some("1.9.0")));
        assert_eq!(previous(&releases, "1.9.1"), (Order::Semver, Some("1.9.0")));
    }
}
