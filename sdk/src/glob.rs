//! File-name patterns, as `pattern` in the first-party plugins' configs
//! (sqlite-restore's and file-restore's `pattern = "cortex-*.toml"`): `*`
//! matches any run of characters (including none), `?` exactly one,
//! everything else itself. No character classes or braces: backup names need
//! no more, and a tiny matcher keeps plugins' dependency trees small.

#![forbid(unsafe_code)]

/// Whether `name` matches `pattern` as a whole.
pub fn matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    // Where the last `*` was, and how much of the name it has swallowed: on a
    // mismatch, let that star take one more character and try again. Linear
    // backtracking suffices because a later star can absorb anything an
    // earlier one would have.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}
#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn literal_names_match_only_themselves() {
        assert!(matches("app.db", "app.db"));
        assert!(!matches("app.db", "app.db2"));
        assert!(!matches("app.db", "xapp.db"));
        assert!(matches("", ""));
        assert!(!matches("", "a"));
    }

    #[test]
    fn star_matches_any_run_including_none() {
        assert!(matches("*", ""));
        assert!(matches("*", "anything.db"));
        assert!(matches("cortex-backup-*.db", "cortex-backup-2026-11-23.db"));
        assert!(matches("cortex-backup-*.db", "cortex-backup-.db"));
        assert!(!matches("cortex-backup-*.db", "cortex-backup-1.db-wal"));
        assert!(!matches("cortex-backup-*.db", "other-backup-1.db"));
        assert!(matches("*.db", "a.b.c.db"));
        assert!(matches("a*b*c", "aXXbYYbZZc"));
        assert!(!matches("a*b*c", "aXXbYYbZZ"));
        assert!(matches("**x", "abcx"));
    }

    #[test]
    fn question_mark_matches_exactly_one_character() {
        assert!(matches("app-?.db", "app-1.db"));
        assert!(!matches("app-?.db", "app-12.db"));
        assert!(!matches("app-?.db", "app-.db"));
        assert!(matches("app-?.db", "app-é.db"), "one character, not one byte");
    }

    #[test]
    fn backtracking_finds_the_right_split() {
        assert!(matches("*ab", "aab"));
        assert!(matches("*a*b", "xaxxab"));
        assert!(!matches("*a*b", "xaxxa"));
        assert!(matches("?*?", "ab"));
        assert!(!matches("?*?", "a"));
    }
}
