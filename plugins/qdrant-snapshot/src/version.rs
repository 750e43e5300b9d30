//! Qdrant versions and the maintainers' rule for snapshots: restore into the
//! same or the next minor version.

#![forbid(unsafe_code)]

use std::fmt;

/// `major.minor.patch`; a missing patch reads as 0, anything after it
/// (`-dev`, `+build`) is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

impl Version {
    pub fn parse(text: &str) -> Option<Self> {
        let t = text.trim().trim_start_matches('v');
        let core = t.split(['-', '+']).next()?;
        let mut parts = core.split('.');
        let number =
            |p: Option<&str>| p.filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))?.parse().ok();
        let major = number(parts.next())?;
        let minor = number(parts.next())?;
        let patch = match parts.next() {
            None => 0,
            some => number(some)?,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(Self { major, minor, patch })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// A warning when a snapshot taken on `source` is restored into `server`
/// outside the supported range (the same or the next minor version), or
/// `None` when it is inside it.
pub fn compatibility_warning(server: Version, source: Version) -> Option<String> {
    if server.major != source.major {
        return Some(format!(
            "the snapshot was taken on Qdrant {source} and the server runs {server}: a different major version; \
             Qdrant supports restoring a snapshot into the same or the next minor version only"
        ));
    }
    if server.minor > source.minor + 1 {
        return Some(format!(
            "the server runs Qdrant {server}, {} minor versions ahead of the snapshot's {source}; Qdrant supports \
             restoring a snapshot into the same or the next minor version only (restore it on {}.{} first)",
            server.minor - source.minor,
            source.major,
            source.minor + 1
        ));
    }
    if server < source {
        return Some(format!(
            "the server runs Qdrant {server}, older than the snapshot's {source}; an older server may not read a \
             newer snapshot"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        Version::parse(text).unwrap()
    }

    #[test]
    fn parses_the_forms_qdrant_reports() {
        assert_eq!(v("1.19.0"), Version { major: 1, minor: 19, patch: 0 });
        assert_eq!(v("v1.8"), Version { major: 1, minor: 8, patch: 0 });
        assert_eq!(v("1.19.0-dev"), Version { major: 1, minor: 19, patch: 0 });
        assert_eq!(v("1.12.6+abc"), Version { major: 1, minor: 12, patch: 6 });
        for bad in ["", "1", "1.x", "1.2.3.4", "a.b.c", "1..2"] {
            assert_eq!(Version::parse(bad), None, "{bad}");
        }
        assert_eq!(v("1.19.2").to_string(), "1.19.2");
    }

    #[test]
    fn same_or_next_minor_is_fine() {
        assert_eq!(compatibility_warning(v("1.19.0"), v("1.19.0")), None);
        assert_eq!(compatibility_warning(v("1.19.3"), v("1.19.0")), None);
        assert_eq!(compatibility_warning(v("1.19.0"), v("1.18.7")), None);
    }

    #[test]
    fn more_than_one_minor_ahead_warns() {
        let w = compatibility_warning(v("1.19.0"), v("1.17.2")).unwrap();
        assert!(w.contains("2 minor versions ahead") && w.contains("restore it on 1.18 first"), "{w}");
    }

    #[test]
    fn older_server_or_other_major_warns() {
        assert!(compatibility_warning(v("1.18.0"), v("1.19.0")).unwrap().contains("older"));
        assert!(compatibility_warning(v("2.0.0"), v("1.19.0")).unwrap().contains("major"));
    }
}
