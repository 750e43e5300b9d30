//! env-toggle's dotenv editor: an edit keeps every byte it does not target.
//!
//! An input is a request, a NUL byte, then the file (without a NUL, all of
//! it is the file and the request is empty). The request is lines:
//!
//! ```text
//! +KEY=VALUE    set KEY to VALUE
//! -KEY          unset KEY
//! !create       create_missing = true
//! !dup          allow_duplicates = true
//! ```
//!
//! `@N` as a key names the N-th key-like word of the file (modulo their
//! number), so the fuzzer reaches the file's keys without guessing them.

use std::collections::BTreeSet;

use env_toggle::dotenv::{ChangeKind, Edit, Request, check, plan_edit};

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// An edit request and the file it applies to.
struct Case {
    set: Vec<(String, String)>,
    unset: Vec<String>,
    create_missing: bool,
    allow_duplicates: bool,
    file: Vec<u8>,
}

impl Case {
    fn decode(data: &[u8]) -> Case {
        let (header, file) = match data.iter().position(|&b| b == 0) {
            Some(nul) => (&data[..nul], &data[nul + 1..]),
            None => (&[][..], data),
        };
        let keys = key_like_words(file);
        let key = |word: &str| match word.strip_prefix('@').and_then(|n| n.parse::<usize>().ok()) {
            Some(n) if !keys.is_empty() => keys[n % keys.len()].clone(),
            _ => word.to_owned(),
        };
        let mut case = Case {
            set: Vec::new(),
            unset: Vec::new(),
            create_missing: false,
            allow_duplicates: false,
            file: file.to_vec(),
        };
        for line in String::from_utf8_lossy(header).split('\n') {
            if let Some(assignment) = line.strip_prefix('+') {
                let (k, v) = assignment.split_once('=').unwrap_or((assignment, ""));
                case.set.push((key(k), v.to_owned()));
            } else if let Some(k) = line.strip_prefix('-') {
                case.unset.push(key(k));
            } else if line == "!create" {
                case.create_missing = true;
            } else if line == "!dup" {
                case.allow_duplicates = true;
            }
        }
        case
    }

    fn request(&self) -> Request<'_> {
        Request {
            file: "/app/.env",
            set: &self.set,
            unset: &self.unset,
            create_missing: self.create_missing,
            allow_duplicates: self.allow_duplicates,
        }
    }
}

/// Words followed by `=` at the start of a line (after blanks and `export`).
fn key_like_words(file: &[u8]) -> Vec<String> {
    let is_key = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-');
    file.split(|&b| b == b'\n' || b == b'\r')
        .filter_map(|line| {
            let line = line.trim_ascii_start();
            let line = line.strip_prefix(b"export").filter(|l| l.first().is_some_and(|&b| b == b' ' || b == b'\t'));
            let line = line.map(<[u8]>::trim_ascii_start).unwrap_or(line.unwrap_or_default());
            let end = line.iter().position(|b| !is_key(b)).unwrap_or(line.len());
            let rest = line[end..].trim_ascii_start();
            (end > 0 && rest.starts_with(b"=")).then(|| String::from_utf8_lossy(&line[..end]).into_owned())
        })
        .collect()
}

/// `plan_edit` never panics and is deterministic. An edit it plans changes
/// only the lines of its targeted keys: each other byte of the file is
/// kept, a changed line keeps everything up to its `=` and its line ending,
/// an unset line goes whole, created lines come last; the result reads as
/// requested, and planning the same edit on it changes nothing.
pub fn dotenv(data: &[u8]) {
    let case = Case::decode(data);
    let request = case.request();
    let planned = plan_edit(&case.file, &request);
    assert_eq!(plan_edit(&case.file, &request), planned, "planning twice differs");
    match planned {
        Err(refusal) => assert!(!refusal.0.is_empty(), "a refusal without a reason"),
        Ok(edit) => {
            assert_only_targeted_lines_changed(&case.file, &edit);
            let mismatches = check(&edit.output, &case.set, &case.unset);
            assert!(mismatches.is_empty(), "after the edit: {mismatches:?}");
            let again = plan_edit(&edit.output, &request).unwrap_or_else(|r| panic!("the same edit again: {r}"));
            assert!(again.is_noop() && again.output == edit.output, "the same edit again changes {:?}", again.changes);
        }
    }
}

/// A line: `start..content_end` its text, `content_end..end` its ending
/// (`\n`, `\r\n`, a lone `\r`, or nothing at the end of the file).
struct Line {
    start: usize,
    content_end: usize,
    end: usize,
}

fn split_lines(bytes: &[u8]) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut start = 0;
    while start < bytes.len() {
        let content_end =
            bytes[start..].iter().position(|&b| b == b'\n' || b == b'\r').map_or(bytes.len(), |i| start + i);
        let end = match bytes.get(content_end..content_end + 2) {
            Some(b"\r\n") => content_end + 2,
            _ => (content_end + 1).min(bytes.len()),
        };
        lines.push(Line { start, content_end, end });
        start = end;
    }
    lines
}

fn ends_with_line_ending(bytes: &[u8]) -> bool {
    bytes.ends_with(b"\n") || bytes.ends_with(b"\r")
}

/// What the output must hold, in order.
enum Piece<'a> {
    /// These very bytes of the input.
    Kept(&'a [u8]),
    /// A new value (and whatever followed it on its line): anything up to
    /// the next line ending.
    Rewritten,
}

fn assert_only_targeted_lines_changed(input: &[u8], edit: &Edit) {
    let lines_of = |kind: ChangeKind| -> BTreeSet<usize> {
        let changes = edit.changes.iter().filter(|c| c.kind == kind);
        changes.flat_map(|c| c.occurrences.iter().filter(|o| o.changes).map(|o| o.line)).collect()
    };
    let (removed, rewritten) = (lines_of(ChangeKind::Unset), lines_of(ChangeKind::Set));
    let created: Vec<&str> =
        edit.changes.iter().filter(|c| c.kind == ChangeKind::Created).map(|c| c.key.as_str()).collect();

    let mut pieces = Vec::new();
    for (i, line) in split_lines(input).iter().enumerate() {
        let number = i + 1;
        if removed.contains(&number) {
            if i == 0 && input.starts_with(BOM) {
                pieces.push(Piece::Kept(BOM));
            }
        } else if rewritten.contains(&number) {
            let content = &input[line.start..line.content_end];
            let equals = content.iter().position(|&b| b == b'=').expect("a rewritten line has `=`");
            pieces.push(Piece::Kept(&content[..=equals]));
            pieces.push(Piece::Rewritten);
            pieces.push(Piece::Kept(&input[line.content_end..line.end]));
        } else {
            pieces.push(Piece::Kept(&input[line.start..line.end]));
        }
    }

    // The file as spliced: kept bytes as they were, each rewritten line's
    // new text as the output has it (where the output has it, if every
    // byte before it was kept).
    let output = &edit.output;
    let mut spliced = Vec::new();
    for piece in &pieces {
        match piece {
            Piece::Kept(bytes) => spliced.extend_from_slice(bytes),
            Piece::Rewritten => {
                let rest = output.get(spliced.len()..).unwrap_or_default();
                let line_end = rest.iter().position(|&b| b == b'\n' || b == b'\r').unwrap_or(rest.len());
                spliced.extend_from_slice(&rest[..line_end]);
            }
        }
    }
    // A file that did not end with a line ending still does not when its
    // last lines were removed, unless keys are appended after them.
    let lacked_final_newline = !input.is_empty() && !ends_with_line_ending(input);
    if lacked_final_newline && created.is_empty() && ends_with_line_ending(&spliced) {
        spliced.truncate(spliced.len() - if spliced.ends_with(b"\r\n") { 2 } else { 1 });
    }
    assert!(
        output.starts_with(&spliced),
        "bytes not targeted changed: expected `{}` first, got `{}`",
        spliced.escape_ascii(),
        output.escape_ascii()
    );

    // Then the created keys, one line each; the file's last line is ended
    // first if it was not.
    let mut appended = &output[spliced.len()..];
    if created.is_empty() {
        assert!(appended.is_empty(), "bytes appended without creating a key");
        return;
    }
    if !spliced.strip_prefix(BOM).unwrap_or(&spliced).is_empty() && !ends_with_line_ending(&spliced) {
        let eol = [&b"\r\n"[..], b"\n", b"\r"].into_iter().find(|eol| appended.starts_with(eol));
        appended = &appended[eol.expect("the last line ended before appending").len()..];
    }
    let lines = split_lines(appended);
    assert_eq!(lines.len(), created.len(), "one appended line per created key");
    for (line, key) in lines.iter().zip(created) {
        let content = &appended[line.start..line.content_end];
        let content = content.strip_prefix(b"export ").unwrap_or(content);
        assert!(content.starts_with(format!("{key}=").as_bytes()), "appended line for `{key}`");
        assert!(line.end > line.content_end, "the appended line for `{key}` has no line ending");
    }
}
