//! The unified diff `plan` shows between the live file and the backup, with
//! secrets masked ([`crate::mask`]) and its length bounded.
//!
//! Lines are compared as they are (line endings included); they are shown
//! masked. The diff is the `similar` crate's Myers diff, given two seconds
//! before it settles for a longer, still correct, edit script.

#![forbid(unsafe_code)]

use std::time::Duration;

use backout_sdk::text;
use similar::{Algorithm, DiffOp, DiffTag, TextDiffConfig};

use crate::mask::masked_lines;
use crate::validate::Format;

/// Most diff lines one plan shows, all files together; past it the rest is
/// counted, not shown.
pub const MAX_DIFF_LINES: usize = 400;

/// Lines of context around each change.
const CONTEXT: usize = 3;

/// A diff, rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    /// Lines only in the live file.
    pub removed: usize,
    /// Lines only in the backup.
    pub added: usize,
    /// The unified diff (`---`, `+++`, `@@` hunks), masked, cut to the
    /// budget; empty when the texts are equal.
    pub text: String,
}

/// The diff from `old` (the live file, shown as `old_label`) to `new` (the
/// backup), read as `format` for masking. `budget` is how many diff lines
/// may still be shown; what this diff shows is taken from it.
pub fn unified(old_label: &str, new_label: &str, old: &str, new: &str, format: Format, budget: &mut usize) -> Diff {
    let old_lines: Vec<&str> = old.split_inclusive('\n').collect();
    let new_lines: Vec<&str> = new.split_inclusive('\n').collect();
    let diff = TextDiffConfig::default()
        .algorithm(Algorithm::Myers)
        .timeout(Duration::from_secs(2))
        .diff_slices(&old_lines, &new_lines);
    let ops = diff.ops();
    let count = |tag: DiffTag, side: fn(&DiffOp) -> usize| {
        ops.iter().filter(|op| op.tag() == tag || op.tag() == DiffTag::Replace).map(side).sum::<usize>()
    };
    let removed = count(DiffTag::Delete, |op| op.old_range().len());
    let added = count(DiffTag::Insert, |op| op.new_range().len());
    if removed == 0 && added == 0 {
        return Diff { removed, added, text: String::new() };
    }
    let old_shown = masked_lines(&old_lines.iter().map(|l| without_ending(l)).collect::<Vec<_>>(), format);
    let new_shown = masked_lines(&new_lines.iter().map(|l| without_ending(l)).collect::<Vec<_>>(), format);

    let mut out = Output { text: format!("--- {old_label}\n+++ {new_label}\n"), budget, hidden: 0 };
    for group in diff.grouped_ops(CONTEXT) {
        let (Some(first), Some(last)) = (group.first(), group.last()) else { continue };
        let old_range = first.old_range().start..last.old_range().end;
        let new_range = first.new_range().start..last.new_range().end;
        out.line(format!("@@ -{} +{} @@", hunk_range(&old_range), hunk_range(&new_range)));
        for op in &group {
            for (tag, old_index, new_index) in changes(op) {
                let (mark, shown, raw) = match tag {
                    ' ' => (' ', &old_shown[old_index], old_lines[old_index]),
                    '-' => ('-', &old_shown[old_index], old_lines[old_index]),
                    _ => ('+', &new_shown[new_index], new_lines[new_index]),
                };
                out.line(format!("{mark}{shown}"));
                if !raw.ends_with('\n') {
                    out.line("\\ No newline at end of file".to_owned());
                }
            }
        }
    }
    if out.hidden > 0 {
        out.text.push_str(&format!("… {} not shown\n", text::count(out.hidden, "more diff line")));
    }
    let crlf = |lines: &[&str]| lines.iter().any(|l| l.ends_with("\r\n"));
    match (crlf(&old_lines), crlf(&new_lines)) {
        (true, false) => out.text.push_str("(line endings change from CRLF to LF)\n"),
        (false, true) => out.text.push_str("(line endings change from LF to CRLF)\n"),
        _ => {}
    }
    let text = out.text.trim_end_matches('\n').to_owned();
    Diff { removed, added, text }
}

/// The diff text so far and what may still be shown.
struct Output<'a> {
    text: String,
    budget: &'a mut usize,
    hidden: usize,
}

impl Output<'_> {
    fn line(&mut self, line: String) {
        if *self.budget == 0 {
            self.hidden += 1;
            return;
        }
        *self.budget -= 1;
        self.text.push_str(&line);
        self.text.push('\n');
    }
}

/// `start,len` of a hunk, 1-based; an empty range names the line before it.
fn hunk_range(range: &std::ops::Range<usize>) -> String {
    let start = if range.is_empty() { range.start } else { range.start + 1 };
    format!("{start},{}", range.len())
}

fn without_ending(line: &str) -> &str {
    let line = line.strip_suffix('\n').unwrap_or(line);
    line.strip_suffix('\r').unwrap_or(line)
}

/// The changes of one diff operation as (`' '`, `'-'` or `'+'`, old index,
/// new index), in the order a unified diff lists them.
fn changes(op: &DiffOp) -> Vec<(char, usize, usize)> {
    let (old, new) = (op.old_range(), op.new_range());
    match op.tag() {
        DiffTag::Equal => old.zip(new).map(|(o, n)| (' ', o, n)).collect(),
        DiffTag::Delete => old.map(|o| ('-', o, new.start)).collect(),
        DiffTag::Insert => new.map(|n| ('+', old.start, n)).collect(),
        DiffTag::Replace => {
            let (old_start, new_start) = (old.start, new.start);
            old.map(|o| ('-', o, new_start)).chain(new.map(|n| ('+', old_start, n))).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diff(old: &str, new: &str, format: Format) -> Diff {
        unified("/app/a (live)", "/b/a (backup)", old, new, format, &mut MAX_DIFF_LINES.clone())
    }

    #[test]
    fn equal_texts_have_no_diff() {
        assert_eq!(diff("a\nb\n", "a\nb\n", Format::None), Diff { removed: 0, added: 0, text: String::new() });
    }

    #[test]
    fn a_change_is_shown_as_a_unified_hunk_with_context() {
        let old = "[server]\nhost = \"a\"\nport = 8081\nworkers = 4\n";
        let new = "[server]\nhost = \"a\"\nport = 8080\nworkers = 4\n";
        let d = diff(old, new, Format::Toml);
        assert_eq!((d.removed, d.added), (1, 1));
        assert_eq!(
            d.text,
            "--- /app/a (live)\n+++ /b/a (backup)\n@@ -1,4 +1,4 @@\n [server]\n host = \"a\"\n-port = 8081\n+port = 8080\n workers = 4"
        );
    }

    #[test]
    fn secrets_are_masked_on_both_sides_but_the_change_still_shows() {
        let d = diff("A=1\nDB_PASSWORD=old-pw\n", "A=1\nDB_PASSWORD=new-pw\nAPI_TOKEN=t0k\n", Format::Dotenv);
        assert_eq!((d.removed, d.added), (1, 2));
        assert!(d.text.contains("\n-DB_PASSWORD=***\n+DB_PASSWORD=***\n+API_TOKEN=***"), "{}", d.text);
        for secret in ["old-pw", "new-pw", "t0k"] {
            assert!(!d.text.contains(secret), "{}", d.text);
        }
    }

    #[test]
    fn hunks_far_apart_are_separate_and_numbered_from_one() {
        let old: String = (1..=20).map(|i| format!("k{i} = {i}\n")).collect();
        let new = old.replace("k2 = 2\n", "k2 = two\n").replace("k19 = 19\n", "");
        let d = diff(&old, &new, Format::Toml);
        assert!(d.text.contains("@@ -1,5 +1,5 @@\n k1 = 1\n-k2 = 2\n+k2 = two\n"), "{}", d.text);
        assert!(
            d.text.contains("@@ -16,5 +16,4 @@\n k16 = 16\n k17 = 17\n k18 = 18\n-k19 = 19\n k20 = 20"),
            "{}",
            d.text
        );
    }

    #[test]
    fn a_missing_final_newline_and_line_endings_are_said() {
        let d = diff("a\r\nb\r\n", "a\nb", Format::None);
        assert!(
            d.text.ends_with("+b\n\\ No newline at end of file\n(line endings change from CRLF to LF)"),
            "{}",
            d.text
        );
        let d = diff("", "x\n", Format::None);
        assert!(d.text.contains("@@ -0,0 +1,1 @@\n+x"), "{}", d.text);
    }

    #[test]
    fn the_budget_bounds_what_is_shown_and_counts_the_rest() {
        let old: String = (0..100).map(|i| format!("{i}\n")).collect();
        let new: String = (0..100).map(|i| format!("{}\n", i * 7)).collect();
        let mut budget = 10;
        let d = unified("a", "b", &old, &new, Format::None, &mut budget);
        assert_eq!(budget, 0);
        assert_eq!(d.text.lines().filter(|l| !l.starts_with("---") && !l.starts_with("+++")).count(), 11);
        assert!(d.text.ends_with("more diff lines not shown"), "{}", d.text);
        assert!(d.removed > 50 && d.added > 50);
        let mut none_left = 0;
        let d = unified("a", "b", "x\n", "y\n", Format::None, &mut none_left);
        assert_eq!((d.removed, d.added), (1, 1), "counted even when nothing is shown");
        assert!(d.text.ends_with("… 3 more diff lines not shown"), "{}", d.text);
    }
}
