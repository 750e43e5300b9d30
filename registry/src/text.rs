//! Small pieces of wording every command shares: "did you mean" for a name
//! that is not there, and counted nouns ("1 step", "2 steps").
//!
//! They live in the lowest crate of the workspace so that the registry's own
//! errors, the runbook checks and the CLI use one and the same helper
//! (re-exported as `backout::text`).

/// The candidate closest to `word`, if one is close enough to be a typo:
/// at most a third of the longer name's characters differ (optimal string
/// alignment distance: Levenshtein's, where two neighbours swapped, the
/// commonest slip, count as one edit: `nmae` is one from `name`), and at
/// least one character is the same. Ties go to the
/// candidate that comes first. Exact matches are never suggested (the
/// caller would not be asking).
pub fn closest<'a, I, S>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a S>,
    S: AsRef<str> + ?Sized + 'a,
{
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in candidates {
        let candidate = candidate.as_ref();
        if candidate == word {
            continue;
        }
        let distance = strsim::osa_distance(word, candidate);
        let longest = word.chars().count().max(candidate.chars().count());
        if distance * 3 > longest.max(3) || distance >= longest {
            continue;
        }
        if best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// "did you mean `x`?" when [`closest`] finds one: the hint under a "no
/// such name" message.
pub fn did_you_mean<'a, I, S>(word: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = &'a S>,
    S: AsRef<str> + ?Sized + 'a,
{
    closest(word, candidates).map(|c| format!("did you mean `{}`?", c.escape_debug()))
}

/// `n` and the noun, plural unless `n` is 1: `count(1, "step")` is
/// "1 step", `count(2, "entry")` is "2 entries", `count(0, "match")` is
/// "0 matches". Covers the nouns backout counts; irregular plurals are not.
pub fn count(n: usize, noun: &str) -> String {
    format!("{n} {}", if n == 1 { noun.to_owned() } else { plural(noun) })
}

/// The plural of an English noun by the regular rules.
pub fn plural(noun: &str) -> String {
    let consonant_y = noun.strip_suffix('y').filter(|stem| !stem.ends_with(['a', 'e', 'i', 'o', 'u']));
    match consonant_y {
        Some(stem) if !stem.is_empty() => format!("{stem}ies"),
        _ if ["s", "x", "z", "ch", "sh"].iter().any(|end| noun.ends_with(end)) => format!("{noun}es"),
        _ => format!("{noun}s"),
    }
}

/// Each value in backticks, comma-separated: `` `a`, `b` `` (escaped, so
/// a name cannot carry control characters to a terminal).
pub fn backticked<'a, I, S>(values: I) -> String
where
    I: IntoIterator<Item = &'a S>,
    S: AsRef<str> + ?Sized + 'a,
{
    values.into_iter().map(|v| format!("`{}`", v.as_ref().escape_debug())).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_finds_the_closest_name_and_a_stranger_finds_none() {
        let names = ["env-toggle", "json-config", "smoke-test", "sqlite-restore"];
        assert_eq!(closest("json-confg", &names), Some("json-config"));
        assert_eq!(closest("jsonconfig", &names), Some("json-config"));
        assert_eq!(closest("smoke_tset", &names), Some("smoke-test"));
        assert_eq!(closest("webhook-notify", &names), None);
        assert_eq!(closest("x", &["y"]), None, "one letter against one letter is no suggestion");
        assert_eq!(closest("env-toggle", &names), None, "an exact name is not a suggestion");
        assert_eq!(did_you_mean("smoke", &["smoke-test", "stroke"]).unwrap(), "did you mean `stroke`?");
        assert_eq!(did_you_mean("zzz", &names), None);
    }

    #[test]
    fn two_letters_swapped_are_one_typo() {
        assert_eq!(closest("nmae", &["mode", "name"]), Some("name"));
        assert_eq!(closest("mdoe", &["name", "mode"]), Some("mode"));
        assert_eq!(closest("tiemout", &["timeout", "retry"]), Some("timeout"));
    }

    #[test]
    fn counted_nouns_are_plural_unless_one() {
        assert_eq!(count(1, "step"), "1 step");
        assert_eq!(count(0, "step"), "0 steps");
        assert_eq!(count(3, "blob"), "3 blobs");
        assert_eq!(count(2, "entry"), "2 entries");
        assert_eq!(count(2, "key"), "2 keys");
        assert_eq!(count(2, "match"), "2 matches");
        assert_eq!(count(1, "byte"), "1 byte");
    }
}
