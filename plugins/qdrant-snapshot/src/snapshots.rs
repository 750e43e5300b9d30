//! Snapshot descriptions as Qdrant lists them, their order, which ones a
//! prune deletes, and how an "outcome unknown" create is reconciled.

#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};

/// `SnapshotDescription` in Qdrant's OpenAPI document: `name` and `size`
/// are required, `creation_time` (`2022-08-04T10:49:10`, no zone) and
/// `checksum` (sha256 hex, Qdrant 1.8+) may be null.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub name: String,
    #[serde(default)]
    pub creation_time: Option<String>,
    pub size: u64,
    #[serde(default)]
    pub checksum: Option<String>,
}

/// A point in time as `[year, month, day, hour, minute, second]`, which
/// orders correctly as an array.
pub type Stamp = [u32; 6];

/// When the snapshot was taken: its `creation_time`, else the time Qdrant
/// puts at the end of its names (`{collection}-{peer}-YYYY-MM-DD-HH-MM-SS.snapshot`).
pub fn taken_at(s: &Snapshot) -> Option<Stamp> {
    s.creation_time.as_deref().and_then(parse_creation_time).or_else(|| parse_name_time(&s.name))
}

/// `2022-08-04T10:49:10`, with an optional fraction and `Z`.
pub fn parse_creation_time(text: &str) -> Option<Stamp> {
    let t = text.trim().trim_end_matches('Z');
    let t = t.split('.').next()?;
    let (date, time) = t.split_once(['T', ' '])?;
    let d: Vec<&str> = date.split('-').collect();
    let h: Vec<&str> = time.split(':').collect();
    if d.len() != 3 || h.len() != 3 {
        return None;
    }
    stamp(d.into_iter().chain(h))
}

/// The `YYYY-MM-DD-HH-MM-SS` before `.snapshot` in a Qdrant snapshot name.
pub fn parse_name_time(name: &str) -> Option<Stamp> {
    let stem = name.strip_suffix(".snapshot")?;
    let parts: Vec<&str> = stem.rsplitn(7, '-').collect();
    if parts.len() < 7 {
        return None;
    }
    stamp(parts[..6].iter().rev().copied())
}

fn stamp<'a>(parts: impl Iterator<Item = &'a str>) -> Option<Stamp> {
    let mut out = [0u32; 6];
    let mut n = 0;
    for (i, p) in parts.enumerate() {
        if i >= 6 || p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        out[i] = p.parse().ok()?;
        n += 1;
    }
    let ok =
        n == 6 && (1..=12).contains(&out[1]) && (1..=31).contains(&out[2]) && out[3] < 24 && out[4] < 60 && out[5] < 61;
    ok.then_some(out)
}

/// Newest first: by the time taken, then by name (both descending);
/// snapshots whose time is unknown come last.
pub fn newest_first(mut list: Vec<Snapshot>) -> Vec<Snapshot> {
    list.sort_by(|a, b| taken_at(b).cmp(&taken_at(a)).then_with(|| b.name.cmp(&a.name)));
    list
}

/// What a prune keeps and deletes, newest first in each list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Prune {
    pub keep: Vec<Snapshot>,
    pub delete: Vec<Snapshot>,
}

/// Keeps the newest `keep_last` snapshots, every snapshot named in
/// `protect`, and every snapshot whose age is unknown (it cannot be shown to
/// be old); deletes the rest.
pub fn plan_prune(list: Vec<Snapshot>, keep_last: u64, protect: &[String]) -> Prune {
    let mut prune = Prune::default();
    let mut kept_newest = 0u64;
    for s in newest_first(list) {
        let protected = protect.contains(&s.name);
        let unknown_age = taken_at(&s).is_none();
        if kept_newest < keep_last && !unknown_age {
            kept_newest += 1;
            prune.keep.push(s);
        } else if protected || unknown_age {
            prune.keep.push(s);
        } else {
            prune.delete.push(s);
        }
    }
    prune
}

/// What listing again says about a create whose answer never came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reconciled {
    /// Exactly one snapshot appeared since the list taken before: ours.
    Created(Snapshot),
    /// None appeared: Qdrant did not create it, or has not finished yet.
    NotCreated,
    /// Several appeared (someone else is creating snapshots too): which one
    /// is ours cannot be told.
    Ambiguous(Vec<Snapshot>),
}

/// Compares the lists taken before and after an unanswered create.
pub fn reconcile_create(before: &[Snapshot], after: &[Snapshot]) -> Reconciled {
    let mut new: Vec<Snapshot> = after.iter().filter(|a| !before.iter().any(|b| b.name == a.name)).cloned().collect();
    match new.len() {
        0 => Reconciled::NotCreated,
        1 => Reconciled::Created(new.remove(0)),
        _ => Reconciled::Ambiguous(newest_first(new)),
    }
}

/// `64.5 KiB`, `1.2 GiB`: a size for people.
pub fn show_size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (size, unit) in UNITS {
        if bytes >= size {
            return format!("{:.1} {unit}", bytes as f64 / size as f64);
        }
    }
    format!("{bytes} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(name: &str, time: Option<&str>) -> Snapshot {
        Snapshot { name: name.into(), creation_time: time.map(Into::into), size: 1, checksum: None }
    }

    fn names(list: &[Snapshot]) -> Vec<&str> {
        list.iter().map(|s| s.name.as_str()).collect()
    }

    #[test]
    fn times_come_from_creation_time_or_the_name() {
        assert_eq!(parse_creation_time("2022-08-04T10:49:10"), Some([2022, 8, 4, 10, 49, 10]));
        assert_eq!(parse_creation_time("2022-08-04T10:49:10.123Z"), Some([2022, 8, 4, 10, 49, 10]));
        assert_eq!(parse_creation_time("2022-08-04"), None);
        assert_eq!(parse_creation_time("2022-13-04T10:49:10"), None);
        assert_eq!(
            parse_name_time("test-3953992725780281-2026-11-23-11-11-24.snapshot"),
            Some([2026, 11, 23, 11, 11, 24])
        );
        assert_eq!(parse_name_time("my-coll-1-2024-07-22-08-31-55.snapshot"), Some([2024, 7, 22, 8, 31, 55]));
        assert_eq!(parse_name_time("backup.snapshot"), None);
        assert_eq!(parse_name_time("x-2024-07-22-08-31-55.tar"), None);
        let from_name = snap("c-1-2024-07-22-08-31-55.snapshot", None);
        assert_eq!(taken_at(&from_name), Some([2024, 7, 22, 8, 31, 55]));
    }

    #[test]
    fn newest_first_orders_by_time_then_name_unknown_last() {
        let list = vec![
            snap("b", Some("2026-01-01T00:00:00")),
            snap("odd", None),
            snap("c-1-2026-03-01-00-00-00.snapshot", None),
            snap("a", Some("2026-02-01T00:00:00")),
            snap("z", Some("2026-01-01T00:00:00")),
        ];
        assert_eq!(names(&newest_first(list)), ["c-1-2026-03-01-00-00-00.snapshot", "a", "z", "b", "odd"]);
    }

    #[test]
    fn prune_keeps_the_newest_the_protected_and_the_undated() {
        let list = vec![
            snap("s1", Some("2026-01-01T00:00:01")),
            snap("s2", Some("2026-01-01T00:00:02")),
            snap("s3", Some("2026-01-01T00:00:03")),
            snap("s4", Some("2026-01-01T00:00:04")),
            snap("undated", None),
        ];
        let p = plan_prune(list.clone(), 2, &["s1".into()]);
        assert_eq!(names(&p.keep), ["s4", "s3", "s1", "undated"]);
        assert_eq!(names(&p.delete), ["s2"]);
        let p = plan_prune(list.clone(), 10, &[]);
        assert!(p.delete.is_empty());
        let p = plan_prune(list, 1, &[]);
        assert_eq!(names(&p.delete), ["s3", "s2", "s1"]);
    }

    #[test]
    fn reconcile_finds_the_one_new_snapshot() {
        let before = vec![snap("old", None)];
        let one = vec![snap("old", None), snap("new", None)];
        assert_eq!(reconcile_create(&before, &one), Reconciled::Created(snap("new", None)));
        assert_eq!(reconcile_create(&before, &before), Reconciled::NotCreated);
        let two =
            vec![snap("old", None), snap("n1", Some("2026-01-01T00:00:01")), snap("n2", Some("2026-01-01T00:00:02"))];
        match reconcile_create(&before, &two) {
            Reconciled::Ambiguous(list) => assert_eq!(names(&list), ["n2", "n1"]),
            other => panic!("{other:?}"),
        }
        // A snapshot deleted meanwhile does not confuse it.
        assert_eq!(reconcile_create(&one, &[snap("new", None)]), Reconciled::NotCreated);
    }

    #[test]
    fn descriptions_parse_as_the_document_says() {
        let s: Snapshot = serde_json::from_str(
            r#"{"name":"test-1-2026-11-23-11-11-24.snapshot","creation_time":"2026-11-23T11:11:24","size":64512,"checksum":"ab"}"#,
        )
        .unwrap();
        assert_eq!(s.size, 64512);
        let s: Snapshot = serde_json::from_str(r#"{"name":"x","size":1,"creation_time":null}"#).unwrap();
        assert_eq!((s.creation_time, s.checksum), (None, None));
        assert!(serde_json::from_str::<Snapshot>(r#"{"name":"x"}"#).is_err(), "size is required");
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(show_size(512), "512 bytes");
        assert_eq!(show_size(64512), "63.0 KiB");
        assert_eq!(show_size(3 << 30), "3.0 GiB");
    }
}
