//! Counted nouns for a plugin's messages: "1 key", "2 keys", "0 entries".
//!
//! A copy of the host's `backout::text::count` and `plural`
//! (`registry/src/text.rs`; the SDK cannot depend on the host's crates), so
//! a plugin's summaries read like backout's own lines. Regular English
//! plurals only: a plugin that counts a noun with an irregular plural writes
//! both forms itself.

/// `n` and the noun, plural unless `n` is 1: `count(1, "key")` is "1 key",
/// `count(2, "entry")` is "2 entries", `count(0, "match")` is "0 matches".
pub fn count(n: usize, noun: &str) -> String {
    format!("{n} {}", if n == 1 { noun.to_owned() } else { plural(noun) })
}

/// The plural of an English noun by the regular rules: `entry` → `entries`,
/// `key` → `keys`, `match` → `matches`, `file` → `files`.
pub fn plural(noun: &str) -> String {
    let consonant_y = noun.strip_suffix('y').filter(|stem| !stem.ends_with(['a', 'e', 'i', 'o', 'u']));
    match consonant_y {
        Some(stem) if !stem.is_empty() => format!("{stem}ies"),
        _ if ["s", "x", "z", "ch", "sh"].iter().any(|end| noun.ends_with(end)) => format!("{noun}es"),
        _ => format!("{noun}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_nouns_are_plural_unless_one() {
        assert_eq!(count(1, "key"), "1 key");
        assert_eq!(count(0, "key"), "0 keys");
        assert_eq!(count(2, "key"), "2 keys");
        assert_eq!(count(2, "entry"), "2 entries");
        assert_eq!(count(3, "match"), "3 matches");
        assert_eq!(count(2, "box"), "2 boxes");
        assert_eq!(count(2, "snapshot"), "2 snapshots");
        assert_eq!(count(1, "byte"), "1 byte");
    }

    #[test]
    fn plural_follows_the_regular_rules() {
        assert_eq!(plural("day"), "days");
        assert_eq!(plural("copy"), "copies");
        assert_eq!(plural("class"), "classes");
        assert_eq!(plural("y"), "ys");
    }
}
