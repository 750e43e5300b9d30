//! A byte-preserving reader and editor for dotenv files.
//!
//! Pure: nothing here touches the file system or the host, so every rule is
//! unit-tested natively. The step (`lib.rs`) reads the file, asks [`plan_edit`]
//! for the new bytes, and writes them.
//!
//! # Why byte-preserving
//!
//! A `.env` file is edited by people, diffed in reviews and read by several
//! libraries that disagree at the edges. A rollback that reformats it (quotes,
//! spacing, line endings, order) makes a noisy diff and may change how some
//! reader loads an untouched line. So an edit splices new bytes into exactly the
//! span of each targeted value, or removes exactly the lines of each unset
//! entry, and keeps every other byte: comments, blank lines, `export `
//! prefixes, spacing around `=`, inline comments, CRLF or LF line by line, a
//! missing final newline, a UTF-8 byte-order mark, and bytes that are not
//! UTF-8 at all (the file is handled as bytes, never decoded as a whole).
//!
//! # The dialect read
//!
//! dotenv has no specification; this module reads the common ground:
//!
//! * one `KEY=VALUE` assignment per line, optionally prefixed by `export `,
//!   with spaces or tabs allowed before the key and around `=`. Keys in the
//!   file are runs of letters, digits, `_`, `.` and `-` (what the popular
//!   libraries accept); any other line is kept as is and never edited;
//! * blank lines and lines starting with `#` are comments;
//! * `'...'` is literal; `"..."` knows the escapes `\n`, `\r`, `\t`, `\\`,
//!   `\"`, `\$` and `\'` (any other backslash pair is kept as written); both may
//!   span lines;
//! * an unquoted value runs to the end of the line or to a `#` preceded by a
//!   space or tab (an inline comment), and is trimmed;
//! * `$` in an unquoted or double-quoted value may be expanded by the reader,
//!   so such a value is never taken as equal to a literal one;
//! * when a key appears more than once, the last assignment wins.
//!
//! Where libraries read a line differently (backtick quotes, text after a
//! closing quote, `\'` inside single quotes, a quote that never closes) the
//! line is kept as is when it is not targeted, and an edit of it is refused.
//!
//! # How new values are written
//!
//! A value keeps its line's quoting style:
//!
//! * single-quoted stays single-quoted; a new value containing `'` (or ending
//!   with `\`) is refused rather than silently re-quoted;
//! * double-quoted stays double-quoted, with `\`, `"` and `$` escaped so the
//!   value is read literally and never expanded;
//! * unquoted stays unquoted when every character is a letter, a digit or one
//!   of `_-.,/:@%+=`. Otherwise it is quoted: with double quotes when it holds
//!   none of `\`, `"`, `$` and `` ` ``, else with single quotes (literal in
//!   every library) when it holds no `'`, else with escaped double quotes.
//!   Escapes are the least portable part of dotenv (Node's `dotenv` decodes
//!   only `\n` and `\r`; python-dotenv does not know `\$`), hence that order.
//!   An empty value before an inline comment is written `""`: some libraries
//!   would read `KEY= # note` as the value `# note`.
//!
//! A new value with a line break is refused: env-toggle writes single-line
//! values only. A line ending is `\n`, `\r\n` or a lone `\r` (as the popular
//! libraries read it), kept per line; appended lines use the ending of the
//! last line that has one.
//!
//! # What is refused
//!
//! Every refusal is an error that names the key, the file and the lines:
//! a duplicated targeted key (unless duplicates are allowed, then every
//! occurrence changes), a targeted value that spans lines, a key to set that
//! is absent (unless `create_missing`), a new value that a line's quoting
//! cannot hold (a `'` inside single quotes), and any edit whose result would
//! read differently from what was asked: every planned edit is re-parsed and
//! compared with the original before it is returned.

#![forbid(unsafe_code)]

use std::fmt;
use std::ops::Range;

use backout_sdk::text::count;

/// The UTF-8 byte-order mark. Kept in place when a file starts with it.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// How a value is written in the file; an edit keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quoting {
    Unquoted,
    Single,
    Double,
    /// Backticks: some libraries treat them as quotes, others as text.
    Backtick,
}

/// Why a value cannot be edited safely: dotenv libraries read it differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flaw {
    /// A quote opens and never closes.
    Unterminated,
    /// Text other than a comment follows the closing quote.
    TextAfterQuote,
    /// A backtick-quoted value.
    Backtick,
    /// `\'` inside single quotes: literal for some, an escaped quote for others.
    EscapedSingleQuote,
}

/// One physical line: `start..content_end` is its text, `content_end..end`
/// its line ending (`\n`, `\r\n`, a lone `\r`, or nothing on a last line
/// without one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Line {
    start: usize,
    content_end: usize,
    end: usize,
}

/// One `KEY=VALUE` assignment, possibly spanning lines (a quoted value).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    key: String,
    exported: bool,
    /// Indexes (0-based) of the first and last physical line.
    first_line: usize,
    last_line: usize,
    /// The value as written, quotes included. For an empty unquoted value,
    /// the empty range right after `=`.
    span: Range<usize>,
    quoting: Quoting,
    /// The value as this module reads it (escapes decoded, `$` not expanded).
    value: Vec<u8>,
    /// The value holds a `$` that a reader may expand.
    expands: bool,
    /// An inline comment follows the value on its line.
    has_comment: bool,
    flaw: Option<Flaw>,
}

impl Entry {
    fn spans_lines(&self) -> bool {
        self.last_line > self.first_line
    }

    /// 1-based line number of the assignment, for messages.
    fn line_number(&self) -> usize {
        self.first_line + 1
    }

    /// Whether `new` is exactly what a reader loads from this entry.
    fn holds(&self, new: &str) -> bool {
        self.flaw.is_none() && !self.spans_lines() && !self.expands && self.value == new.as_bytes()
    }
}

/// A parsed file: its lines and the assignments found in them.
#[derive(Debug, Clone)]
struct Document<'a> {
    bytes: &'a [u8],
    lines: Vec<Line>,
    entries: Vec<Entry>,
}

impl<'a> Document<'a> {
    fn parse(bytes: &'a [u8]) -> Self {
        let lines = split_lines(bytes);
        let mut entries = Vec::new();
        let mut index = 0;
        while index < lines.len() {
            match parse_entry(bytes, &lines, index) {
                Some(entry) => {
                    index = entry.last_line + 1;
                    entries.push(entry);
                }
                None => index += 1,
            }
        }
        Self { bytes, lines, entries }
    }

    fn occurrences(&self, key: &str) -> Vec<&Entry> {
        self.entries.iter().filter(|e| e.key == key).collect()
    }

    /// The line ending to use for appended lines: that of the last line that
    /// has one, so an append matches its neighbourhood; `\n` if none has.
    fn line_ending(&self) -> &'a [u8] {
        self.lines.iter().rev().find(|l| l.end > l.content_end).map_or(b"\n", |l| &self.bytes[l.content_end..l.end])
    }

    /// The bytes of an entry's lines, line endings included, but not a
    /// byte-order mark before it: removing the first line keeps the mark.
    fn entry_lines(&self, entry: &Entry) -> Range<usize> {
        let mut start = self.lines[entry.first_line].start;
        if start == 0 && self.bytes.starts_with(BOM) {
            start = BOM.len();
        }
        start..self.lines[entry.last_line].end
    }

    /// Whether appended lines should start with `export `: when every
    /// assignment in the file does (a file meant to be `source`d).
    fn exports_all(&self) -> bool {
        !self.entries.is_empty() && self.entries.iter().all(|e| e.exported)
    }
}

/// Splits into physical lines. A line ends with `\r\n`, `\n` or a lone `\r`:
/// the popular libraries all treat a lone `\r` as a line break.
fn split_lines(bytes: &[u8]) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut start = 0;
    while start < bytes.len() {
        let line = match bytes[start..].iter().position(|&b| b == b'\n' || b == b'\r') {
            Some(offset) => {
                let content_end = start + offset;
                let crlf = bytes[content_end] == b'\r' && bytes.get(content_end + 1) == Some(&b'\n');
                Line { start, content_end, end: content_end + if crlf { 2 } else { 1 } }
            }
            None => Line { start, content_end: bytes.len(), end: bytes.len() },
        };
        start = line.end;
        lines.push(line);
    }
    lines
}

/// Whether `bytes` ends with a line ending.
fn ends_with_line_ending(bytes: &[u8]) -> bool {
    bytes.ends_with(b"\n") || bytes.ends_with(b"\r")
}

/// Index of the line holding byte `offset`.
fn line_of(lines: &[Line], offset: usize) -> usize {
    lines.partition_point(|l| l.end <= offset).min(lines.len().saturating_sub(1))
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn skip_blanks(bytes: &[u8], mut pos: usize, end: usize) -> usize {
    while pos < end && is_blank(bytes[pos]) {
        pos += 1;
    }
    pos
}

/// Bytes a key may have in a file: what the common libraries accept.
fn is_file_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

/// A key starting at `pos`, followed by optional blanks and `=`: returns the
/// key's range and the offset of `=`.
fn key_then_equals(bytes: &[u8], pos: usize, end: usize) -> Option<(Range<usize>, usize)> {
    let mut key_end = pos;
    while key_end < end && is_file_key_byte(bytes[key_end]) {
        key_end += 1;
    }
    if key_end == pos {
        return None;
    }
    let equals = skip_blanks(bytes, key_end, end);
    (equals < end && bytes[equals] == b'=').then_some((pos..key_end, equals))
}

/// If the text at `pos` is `export` followed by blanks, the offset after them.
fn after_export(bytes: &[u8], pos: usize, end: usize) -> Option<usize> {
    let word_end = pos + b"export".len();
    let is_prefix = word_end < end && &bytes[pos..word_end] == b"export" && is_blank(bytes[word_end]);
    is_prefix.then(|| skip_blanks(bytes, word_end, end))
}

/// Parses the assignment starting on line `index`, if that line holds one.
fn parse_entry(bytes: &[u8], lines: &[Line], index: usize) -> Option<Entry> {
    let line = lines[index];
    let end = line.content_end;
    let mut pos = line.start;
    if index == 0 && bytes[pos..end].starts_with(BOM) {
        pos += BOM.len();
    }
    pos = skip_blanks(bytes, pos, end);
    if pos >= end || bytes[pos] == b'#' {
        return None;
    }
    let exported_key = after_export(bytes, pos, end).and_then(|rest| key_then_equals(bytes, rest, end));
    let (exported, (key, equals)) = match exported_key {
        Some(found) => (true, found),
        None => (false, key_then_equals(bytes, pos, end)?),
    };
    let value = parse_value(bytes, lines, index, equals);
    Some(Entry {
        // The key bytes are ASCII by construction.
        key: String::from_utf8_lossy(&bytes[key]).into_owned(),
        exported,
        first_line: index,
        last_line: value.last_line,
        span: value.span,
        quoting: value.quoting,
        value: value.value,
        expands: value.expands,
        has_comment: value.has_comment,
        flaw: value.flaw,
    })
}

/// A value as parsed, before it joins its key in an [`Entry`].
struct ParsedValue {
    span: Range<usize>,
    quoting: Quoting,
    value: Vec<u8>,
    expands: bool,
    has_comment: bool,
    flaw: Option<Flaw>,
    last_line: usize,
}

impl ParsedValue {
    /// An empty unquoted value sits right after `=`, so a new value written
    /// there keeps any blanks that separate it from an inline comment.
    fn empty(equals: usize, has_comment: bool, line: usize) -> Self {
        Self {
            span: equals + 1..equals + 1,
            quoting: Quoting::Unquoted,
            value: Vec::new(),
            expands: false,
            has_comment,
            flaw: None,
            last_line: line,
        }
    }
}

fn parse_value(bytes: &[u8], lines: &[Line], index: usize, equals: usize) -> ParsedValue {
    let end = lines[index].content_end;
    let start = skip_blanks(bytes, equals + 1, end);
    match bytes.get(start).filter(|_| start < end) {
        None => ParsedValue::empty(equals, false, index),
        Some(b'#') if start > equals + 1 => ParsedValue::empty(equals, true, index),
        Some(&quote @ (b'"' | b'\'')) => parse_quoted(bytes, lines, index, start, quote),
        Some(b'`') => parse_backtick(bytes, index, start, end),
        Some(_) => parse_unquoted(bytes, index, start, end),
    }
}

/// An unquoted value: up to an inline comment (`#` after a blank) or the end
/// of the line, trailing blanks trimmed.
fn parse_unquoted(bytes: &[u8], index: usize, start: usize, end: usize) -> ParsedValue {
    let comment = (start + 1..end).find(|&i| bytes[i] == b'#' && is_blank(bytes[i - 1]));
    let mut value_end = comment.unwrap_or(end);
    while value_end > start && is_blank(bytes[value_end - 1]) {
        value_end -= 1;
    }
    let raw = &bytes[start..value_end];
    ParsedValue {
        span: start..value_end,
        quoting: Quoting::Unquoted,
        value: raw.to_vec(),
        expands: raw.contains(&b'$'),
        has_comment: comment.is_some(),
        flaw: None,
        last_line: index,
    }
}

/// A backtick-quoted value: kept, never edited. Only its own line is taken,
/// as the libraries that do not know backticks read it.
fn parse_backtick(bytes: &[u8], index: usize, start: usize, end: usize) -> ParsedValue {
    let close = (start + 1..end).find(|&i| bytes[i] == b'`');
    let value_end = close.map_or(end, |c| c + 1);
    ParsedValue {
        span: start..value_end,
        quoting: Quoting::Backtick,
        value: bytes[start..value_end].to_vec(),
        expands: true,
        has_comment: false,
        flaw: Some(Flaw::Backtick),
        last_line: index,
    }
}

/// Offset of the quote closing the one at `open`, searching to the end of the
/// file (quoted values may span lines). In double quotes a backslash escapes
/// the next byte; single quotes know no escapes.
pub(crate) fn find_closing_quote(bytes: &[u8], open: usize, quote: u8) -> Option<usize> {
    let mut i = open + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quote == b'"' => i += 2,
            b if b == quote => return Some(i),
            _ => i += 1,
        }
    }
    None
}

fn parse_quoted(bytes: &[u8], lines: &[Line], index: usize, open: usize, quote: u8) -> ParsedValue {
    let quoting = if quote == b'"' { Quoting::Double } else { Quoting::Single };
    let Some(close) = find_closing_quote(bytes, open, quote) else {
        return unterminated(bytes, lines[index], index, open, quoting);
    };
    let last_line = line_of(lines, close);
    let line_end = lines[last_line].content_end;
    let after = skip_blanks(bytes, close + 1, line_end);
    let has_comment = after < line_end && bytes[after] == b'#';
    let raw = &bytes[open + 1..close];
    let (value, expands) = match quoting {
        Quoting::Double => decode_double(raw),
        _ => (raw.to_vec(), false),
    };
    let flaw = if quoting == Quoting::Single && raw.last() == Some(&b'\\') {
        Some(Flaw::EscapedSingleQuote)
    } else if after < line_end && !has_comment {
        Some(Flaw::TextAfterQuote)
    } else {
        None
    };
    ParsedValue { span: open..close + 1, quoting, value, expands, has_comment, flaw, last_line }
}

/// A quote that never closes: libraries disagree (an error, or unquoted
/// text), but they agree the next line starts afresh, so only this line is
/// taken.
fn unterminated(bytes: &[u8], line: Line, index: usize, open: usize, quoting: Quoting) -> ParsedValue {
    let mut end = line.content_end;
    while end > open && is_blank(bytes[end - 1]) {
        end -= 1;
    }
    ParsedValue {
        span: open..end,
        quoting,
        value: bytes[open..end].to_vec(),
        expands: true,
        has_comment: false,
        flaw: Some(Flaw::Unterminated),
        last_line: index,
    }
}

/// Decodes a double-quoted value's escapes; also says whether it holds an
/// unescaped `$` that a reader may expand.
fn decode_double(raw: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::with_capacity(raw.len());
    let mut expands = false;
    let mut i = 0;
    while i < raw.len() {
        match (raw[i], raw.get(i + 1)) {
            (b'\\', Some(&next)) => {
                match next {
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'\\' | b'"' | b'$' | b'\'' => out.push(next),
                    _ => out.extend_from_slice(&[b'\\', next]),
                }
                i += 2;
            }
            (b, _) => {
                expands |= b == b'$';
                out.push(b);
                i += 1;
            }
        }
    }
    (out, expands)
}

// ---------------------------------------------------------------------------
// Writing values
// ---------------------------------------------------------------------------

/// Characters an unquoted value may hold and still read the same in every
/// common dotenv library and in a shell that `source`s the file.
fn is_plain_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ',' | '/' | ':' | '@' | '%' | '+' | '=')
}

/// Why a new value cannot be written in a line's quoting style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unfit {
    /// A `'` for a single-quoted value.
    SingleQuote,
    /// A trailing `\` for a single-quoted value.
    TrailingBackslash,
}

/// Writes `new` in the quoting style `quoting`, the way the line had it;
/// `has_comment` says whether an inline comment follows the value.
fn encode(new: &str, quoting: Quoting, has_comment: bool) -> Result<Vec<u8>, Unfit> {
    match quoting {
        Quoting::Single => encode_single(new),
        Quoting::Double => Ok(encode_double(new)),
        Quoting::Unquoted | Quoting::Backtick => Ok(encode_unquoted(new, has_comment)),
    }
}

/// Single quotes hold anything but `'`; a trailing `\` would read as an
/// escaped closing quote to some libraries. Both are refused rather than
/// silently changing the line's quoting.
fn encode_single(new: &str) -> Result<Vec<u8>, Unfit> {
    if new.contains('\'') {
        return Err(Unfit::SingleQuote);
    }
    if new.ends_with('\\') {
        return Err(Unfit::TrailingBackslash);
    }
    Ok(format!("'{new}'").into_bytes())
}

fn unfit_message(unfit: Unfit, key: &str, file: &str, line: usize) -> String {
    match unfit {
        Unfit::SingleQuote => format!(
            "the new value for `{key}` contains `'`, but line {line} of `{file}` single-quotes its \
             value, and a single-quoted value cannot hold `'`; env-toggle keeps the quoting style, \
             so change the line's quotes by hand or choose another value"
        ),
        Unfit::TrailingBackslash => format!(
            "the new value for `{key}` ends with `\\`, which some dotenv libraries would read as \
             escaping the closing `'` on line {line} of `{file}`; change the line's quotes by hand \
             or choose another value"
        ),
    }
}

/// Double quotes: `\`, `"` and `$` are escaped, so the value is read
/// literally and never expanded.
fn encode_double(new: &str) -> Vec<u8> {
    let mut out = String::with_capacity(new.len() + 2);
    out.push('"');
    for c in new.chars() {
        if matches!(c, '\\' | '"' | '$') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out.into_bytes()
}

/// An unquoted value stays unquoted when every character is plain; otherwise
/// it is quoted: double quotes when nothing needs escaping in them, else
/// single quotes (literal everywhere) when the value has no `'`, else double
/// quotes with escapes. An empty value before an inline comment is written
/// `""`, since some libraries would take the comment as the value.
fn encode_unquoted(new: &str, has_comment: bool) -> Vec<u8> {
    if new.is_empty() {
        return if has_comment { b"\"\"".to_vec() } else { Vec::new() };
    }
    if new.chars().all(is_plain_char) {
        return new.as_bytes().to_vec();
    }
    let needs_escape = new.contains(['\\', '"', '$', '`']);
    if !needs_escape {
        return format!("\"{new}\"").into_bytes();
    }
    if !new.contains('\'') && !new.ends_with('\\') {
        return format!("'{new}'").into_bytes();
    }
    encode_double(new)
}

/// Why a new value cannot be written on one line, if it cannot.
pub fn unwritable_reason(new: &str) -> Option<String> {
    if new.contains(['\n', '\r']) {
        return Some("contains a line break; env-toggle writes single-line values only".to_owned());
    }
    new.chars()
        .find(|&c| c.is_control() && c != '\t')
        .map(|c| format!("contains the control character U+{:04X}, which a .env file cannot hold reliably", c as u32))
}

// ---------------------------------------------------------------------------
// Planning an edit
// ---------------------------------------------------------------------------

/// What to change in one file.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The file's path, for messages only.
    pub file: &'a str,
    /// Keys to set, with their new values, in the order given.
    pub set: &'a [(String, String)],
    /// Keys to remove.
    pub unset: &'a [String],
    /// Append a key to set that is absent, instead of refusing.
    pub create_missing: bool,
    /// Change (or remove) every occurrence of a duplicated key, instead of refusing.
    pub allow_duplicates: bool,
}

impl Request<'_> {
    fn targets(&self, key: &str) -> bool {
        self.set.iter().any(|(k, _)| k == key) || self.unset.iter().any(|k| k == key)
    }
}

/// What happens to one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Its value changes (every occurrence, when duplicates are allowed).
    Set,
    /// Its lines are removed.
    Unset,
    /// It already is as requested: set to the new value, or absent.
    Unchanged,
    /// It was absent and is appended.
    Created,
}

/// One occurrence of a key in the file before the edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    /// 1-based line number.
    pub line: usize,
    /// The value as read, lossily decoded for display.
    pub old: String,
    /// Whether the edit changes this occurrence.
    pub changes: bool,
}

/// What an edit does to one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub key: String,
    pub kind: ChangeKind,
    /// The requested value; `None` for a key to unset.
    pub new: Option<String>,
    /// Where the key was, in file order; empty when it was absent.
    pub occurrences: Vec<Occurrence>,
    /// For a created key, its 1-based line number in the new file.
    pub appended_line: Option<usize>,
}

impl Change {
    /// The value a reader loaded before the edit: the last occurrence wins.
    pub fn old(&self) -> Option<&str> {
        self.occurrences.last().map(|o| o.old.as_str())
    }

    /// Line numbers: of the occurrences, or of the appended line.
    pub fn lines(&self) -> Vec<usize> {
        match self.appended_line {
            Some(line) => vec![line],
            None => self.occurrences.iter().map(|o| o.line).collect(),
        }
    }
}

/// A planned edit: the new file contents and what changes, key by key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub changes: Vec<Change>,
    pub output: Vec<u8>,
}

impl Edit {
    /// Whether the edit leaves the file as it is.
    pub fn is_noop(&self) -> bool {
        self.changes.iter().all(|c| c.kind == ChangeKind::Unchanged)
    }
}

/// Why an edit is refused: one message per problem, all reported at once so
/// the operator can fix them in one go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub Vec<String>);

impl fmt::Display for Refusal {
    /// One problem reads as its message; several are numbered.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [only] => f.write_str(only),
            all => {
                write!(f, "{} problems:", all.len())?;
                for (i, message) in all.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ";" };
                    write!(f, "{sep} ({}) {message}", i + 1)?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for Refusal {}

/// Bytes to splice in: `range` of the original becomes `bytes`.
#[derive(Debug)]
struct Splice {
    range: Range<usize>,
    bytes: Vec<u8>,
}

/// What planning one key produced.
struct KeyPlan {
    change: Change,
    splices: Vec<Splice>,
}

/// Plans the edit `request` asks of `bytes`, or says why it is refused.
/// The result is re-parsed and checked before it is returned: the requested
/// values read back, and every other assignment reads exactly as before.
pub fn plan_edit(bytes: &[u8], request: &Request<'_>) -> Result<Edit, Refusal> {
    refuse_repeated_keys(request)?;
    refuse_utf16(bytes, request.file)?;
    let doc = Document::parse(bytes);
    refuse_ambiguous_structure(&doc, request)?;

    let mut problems = Vec::new();
    let mut plans = Vec::new();
    for (key, new) in request.set {
        match plan_set(&doc, request, key, new) {
            Ok(plan) => plans.push(plan),
            Err(mut messages) => problems.append(&mut messages),
        }
    }
    for key in request.unset {
        match plan_unset(&doc, request, key) {
            Ok(plan) => plans.push(plan),
            Err(mut messages) => problems.append(&mut messages),
        }
    }
    if !problems.is_empty() {
        return Err(Refusal(problems));
    }

    let mut splices: Vec<Splice> = plans.iter_mut().flat_map(|p| p.splices.drain(..)).collect();
    let appends = plans.iter().any(|p| p.change.kind == ChangeKind::Created);
    let mut output = splice(bytes, &mut splices, appends);
    let mut changes: Vec<Change> = plans.into_iter().map(|p| p.change).collect();
    append_created(&doc, &mut output, &mut changes);

    confirm(&doc, &output, request).map_err(|m| Refusal(vec![m]))?;
    Ok(Edit { changes, output })
}

/// Each key may be targeted once: two edits of one line would overlap.
/// (The config is validated the same way; this keeps the module safe alone.)
fn refuse_repeated_keys(request: &Request<'_>) -> Result<(), Refusal> {
    let keys: Vec<&str> =
        request.set.iter().map(|(k, _)| k.as_str()).chain(request.unset.iter().map(String::as_str)).collect();
    let repeated: Vec<String> = keys
        .iter()
        .enumerate()
        .filter(|&(i, key)| keys[..i].iter().filter(|k| *k == key).count() == 1)
        .map(|(_, key)| format!("key `{key}` is targeted more than once; set or unset each key once"))
        .collect();
    if repeated.is_empty() { Ok(()) } else { Err(Refusal(repeated)) }
}

/// A UTF-16 file parses as noise; say what it is instead of "key not found".
fn refuse_utf16(bytes: &[u8], file: &str) -> Result<(), Refusal> {
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        return Err(Refusal(vec![format!(
            "`{file}` starts with a UTF-16 byte-order mark; env-toggle edits UTF-8 (or ASCII) files only"
        )]));
    }
    Ok(())
}

/// A quoted value that spans lines and is followed by stray text means the
/// libraries disagree on where the following assignments start: any edit of
/// such a file is refused.
fn refuse_ambiguous_structure(doc: &Document<'_>, request: &Request<'_>) -> Result<(), Refusal> {
    let messages: Vec<String> = doc
        .entries
        .iter()
        .filter(|e| e.spans_lines() && e.flaw == Some(Flaw::TextAfterQuote))
        .map(|e| {
            format!(
                "the quoted value of `{}` in `{}` opens on line {} and closes on line {} followed by \
                 more text, so dotenv libraries disagree on where the next assignments start; fix \
                 the file by hand",
                e.key,
                request.file,
                e.line_number(),
                e.last_line + 1
            )
        })
        .collect();
    if messages.is_empty() { Ok(()) } else { Err(Refusal(messages)) }
}

/// Problems shared by set and unset: duplicates, multi-line and flawed values.
fn targeted_problems(occurrences: &[&Entry], request: &Request<'_>, key: &str, verb: &str) -> Vec<String> {
    let file = request.file;
    let mut problems = Vec::new();
    if occurrences.len() > 1 && !request.allow_duplicates {
        problems.push(format!(
            "key `{key}` appears {} times in `{file}` (lines {}); set `allow_duplicates = true` to \
             {verb} every occurrence",
            occurrences.len(),
            join_lines(occurrences.iter().map(|e| e.line_number()))
        ));
    }
    for entry in occurrences {
        if entry.spans_lines() {
            problems.push(format!(
                "the value of `{key}` in `{file}` spans lines {}-{}; env-toggle edits single-line \
                 values only, so change it by hand",
                entry.line_number(),
                entry.last_line + 1
            ));
        } else if let Some(flaw) = entry.flaw {
            problems.push(flaw_message(flaw, key, file, entry.line_number()));
        }
    }
    problems
}

fn flaw_message(flaw: Flaw, key: &str, file: &str, line: usize) -> String {
    let what = match flaw {
        Flaw::Unterminated => "opens a quote that is never closed",
        Flaw::TextAfterQuote => "has text after its closing quote",
        Flaw::Backtick => "is quoted with backticks",
        Flaw::EscapedSingleQuote => "ends its single-quoted value with `\\'`",
    };
    format!(
        "the value of `{key}` in `{file}` (line {line}) {what}, which dotenv libraries read \
         differently; env-toggle does not edit it, so fix the line by hand"
    )
}

fn join_lines(lines: impl Iterator<Item = usize>) -> String {
    lines.map(|l| l.to_string()).collect::<Vec<_>>().join(", ")
}

fn plan_set(doc: &Document<'_>, request: &Request<'_>, key: &str, new: &str) -> Result<KeyPlan, Vec<String>> {
    if let Some(reason) = unwritable_reason(new) {
        return Err(vec![format!("the new value for `{key}` {reason}")]);
    }
    let occurrences = doc.occurrences(key);
    if occurrences.is_empty() {
        return plan_create(request, key, new);
    }
    let mut problems = targeted_problems(&occurrences, request, key, "change");
    let mut splices = Vec::new();
    let mut changed = Vec::new();
    for entry in &occurrences {
        if !problems.is_empty() {
            break;
        }
        match encode(new, entry.quoting, entry.has_comment) {
            Err(unfit) => problems.push(unfit_message(unfit, key, request.file, entry.line_number())),
            Ok(encoded) => {
                let unchanged = entry.holds(new) || doc.bytes[entry.span.clone()] == encoded[..];
                if !unchanged {
                    splices.push(Splice { range: entry.span.clone(), bytes: encoded });
                }
                changed.push(!unchanged);
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let kind = if splices.is_empty() { ChangeKind::Unchanged } else { ChangeKind::Set };
    let occurrences = occurrences.iter().zip(changed).map(|(e, c)| occurrence(e, c)).collect();
    let change = Change { key: key.to_owned(), kind, new: Some(new.to_owned()), occurrences, appended_line: None };
    Ok(KeyPlan { change, splices })
}

fn plan_create(request: &Request<'_>, key: &str, new: &str) -> Result<KeyPlan, Vec<String>> {
    if !request.create_missing {
        return Err(vec![format!(
            "key `{key}` is not in `{}`; set `create_missing = true` to append it",
            request.file
        )]);
    }
    let change = Change {
        key: key.to_owned(),
        kind: ChangeKind::Created,
        new: Some(new.to_owned()),
        occurrences: Vec::new(),
        appended_line: None,
    };
    Ok(KeyPlan { change, splices: Vec::new() })
}

/// Unsetting removes every line of each occurrence, line ending included.
/// An absent key is already as requested: unset is idempotent.
fn plan_unset(doc: &Document<'_>, request: &Request<'_>, key: &str) -> Result<KeyPlan, Vec<String>> {
    let occurrences = doc.occurrences(key);
    let problems = targeted_problems(&occurrences, request, key, "remove");
    if !problems.is_empty() {
        return Err(problems);
    }
    let splices = occurrences.iter().map(|e| Splice { range: doc.entry_lines(e), bytes: Vec::new() }).collect();
    let kind = if occurrences.is_empty() { ChangeKind::Unchanged } else { ChangeKind::Unset };
    let change = Change {
        key: key.to_owned(),
        kind,
        new: None,
        occurrences: occurrences.iter().map(|e| occurrence(e, true)).collect(),
        appended_line: None,
    };
    Ok(KeyPlan { change, splices })
}

fn occurrence(entry: &Entry, changes: bool) -> Occurrence {
    Occurrence { line: entry.line_number(), old: String::from_utf8_lossy(&entry.value).into_owned(), changes }
}

/// Applies non-overlapping splices. When the original lacks a final newline
/// and removing its last line left one, that newline goes too, so the file
/// still ends the way it did; unless lines will be appended (`appends`):
/// then the line keeps its own ending, whatever ending they use.
fn splice(bytes: &[u8], splices: &mut [Splice], appends: bool) -> Vec<u8> {
    splices.sort_by_key(|s| s.range.start);
    let mut output = Vec::with_capacity(bytes.len() + 64);
    let mut pos = 0;
    for s in splices.iter() {
        output.extend_from_slice(&bytes[pos..s.range.start]);
        output.extend_from_slice(&s.bytes);
        pos = s.range.end;
    }
    output.extend_from_slice(&bytes[pos..]);
    let lacked_final_newline = !bytes.is_empty() && !ends_with_line_ending(bytes);
    if lacked_final_newline && !appends && ends_with_line_ending(&output) {
        let ending = if output.ends_with(b"\r\n") { 2 } else { 1 };
        output.truncate(output.len() - ending);
    }
    output
}

/// Appends created keys as `KEY=value` lines with the file's line ending,
/// ending the last line first if it had no line ending.
fn append_created(doc: &Document<'_>, output: &mut Vec<u8>, changes: &mut [Change]) {
    let eol = doc.line_ending();
    let prefix: &[u8] = if doc.exports_all() { b"export " } else { b"" };
    let mut line_count = None;
    for change in changes.iter_mut().filter(|c| c.kind == ChangeKind::Created) {
        let count = line_count.get_or_insert_with(|| end_last_line(output, eol));
        let new = change.new.as_deref().unwrap_or_default();
        output.extend_from_slice(prefix);
        output.extend_from_slice(change.key.as_bytes());
        output.push(b'=');
        output.extend_from_slice(&encode_unquoted(new, false));
        output.extend_from_slice(eol);
        *count += 1;
        change.appended_line = Some(*count);
    }
}

/// Ends the last line with `eol` if it has text and no line ending; returns
/// the number of lines. A file holding only a byte-order mark has none.
fn end_last_line(output: &mut Vec<u8>, eol: &[u8]) -> usize {
    if output.strip_prefix(BOM).unwrap_or(output).is_empty() {
        return 0;
    }
    if !ends_with_line_ending(output) {
        output.extend_from_slice(eol);
    }
    split_lines(output).len()
}

/// Re-parses the planned output: every assignment not targeted must read
/// exactly as before, in the same order, and every targeted key must read as
/// requested. Guards against any parse or encode mistake reaching the file.
fn confirm(before: &Document<'_>, output: &[u8], request: &Request<'_>) -> Result<(), String> {
    // Removing the first line can leave the file starting with bytes that
    // read as a byte-order mark (`\xFF\xFE` is a UTF-16 one, which makes the
    // whole file unreadable to env-toggle and to dotenv libraries).
    let mark = |bytes: &[u8]| match bytes {
        [0xEF, 0xBB, 0xBF, ..] => Some("UTF-8"),
        [0xFF, 0xFE, ..] | [0xFE, 0xFF, ..] => Some("UTF-16"),
        _ => None,
    };
    if let Some(kind) = mark(output).filter(|_| mark(output) != mark(before.bytes)) {
        return Err(format!(
            "editing `{}` this way would leave it starting with bytes that read as a {kind} byte-order mark \
             (the line after the removed one starts with them); nothing was changed, fix the file by hand",
            request.file
        ));
    }
    let after = Document::parse(output);
    let untargeted = |doc: &Document<'_>| -> Vec<Entry> {
        doc.entries.iter().filter(|e| !request.targets(&e.key)).cloned().collect()
    };
    let (old, new) = (untargeted(before), untargeted(&after));
    let same = |a: &Entry, b: &Entry| {
        a.key == b.key && a.exported == b.exported && a.value == b.value && a.quoting == b.quoting && a.flaw == b.flaw
    };
    let first_difference = old.iter().zip(&new).position(|(a, b)| !same(a, b));
    if old.len() != new.len() || first_difference.is_some() {
        let at = first_difference
            .and_then(|i| old.get(i))
            .or_else(|| old.get(new.len()))
            .map(|e| format!(" (first difference: `{}` on line {})", e.key, e.line_number()))
            .unwrap_or_default();
        return Err(format!(
            "editing `{}` this way would change how dotenv reads lines that were not targeted{at}, \
             probably because of an unclosed quote; nothing was changed, fix the file by hand",
            request.file
        ));
    }
    let mismatches = check(output, request.set, request.unset);
    if let Some(m) = mismatches.first() {
        return Err(format!(
            "internal check failed: after the edit, key `{}` would not read as requested; refusing \
             to edit `{}`",
            m.key, request.file
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Checking a file
// ---------------------------------------------------------------------------

/// What was found for a key that does not read as requested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// A key to set is absent.
    Missing,
    /// A key to set holds another value (lossily decoded) on `line`.
    Differs { line: usize, value: String },
    /// A key to set has a value on `line` that cannot be read unambiguously
    /// (it spans lines, may be expanded, or is malformed).
    Unclear { line: usize },
    /// A key to unset is still present on these lines.
    Present { lines: Vec<usize> },
}

/// A key that does not read as requested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub key: String,
    pub found: Found,
}

/// Checks that every key in `set` reads as its value (every occurrence) and
/// every key in `unset` is absent.
pub fn check(bytes: &[u8], set: &[(String, String)], unset: &[String]) -> Vec<Mismatch> {
    let doc = Document::parse(bytes);
    let mut mismatches = Vec::new();
    for (key, new) in set {
        let occurrences = doc.occurrences(key);
        let found = if occurrences.is_empty() {
            Some(Found::Missing)
        } else {
            occurrences.iter().find(|e| !e.holds(new)).map(|e| {
                let line = e.line_number();
                if e.flaw.is_some() || e.spans_lines() || e.expands {
                    Found::Unclear { line }
                } else {
                    Found::Differs { line, value: String::from_utf8_lossy(&e.value).into_owned() }
                }
            })
        };
        if let Some(found) = found {
            mismatches.push(Mismatch { key: key.clone(), found });
        }
    }
    for key in unset {
        let lines: Vec<usize> = doc.occurrences(key).iter().map(|e| e.line_number()).collect();
        if !lines.is_empty() {
            mismatches.push(Mismatch { key: key.clone(), found: Found::Present { lines } });
        }
    }
    mismatches
}

// ---------------------------------------------------------------------------
// Reading a whole file strictly
// ---------------------------------------------------------------------------

/// Most problems [`strict_keys`] lists; past them it says how many more.
const MAX_STRICT_PROBLEMS: usize = 10;

/// Reads `bytes` as a whole dotenv file, strictly, and returns the keys it
/// assigns in file order (a repeated key each time), or every problem found.
///
/// Editing is lenient: a line this module cannot read is kept as it is and
/// never targeted. A file about to be installed whole (file-restore's
/// `validate = "dotenv"`) must instead be readable everywhere, so this
/// refuses, each problem naming its line (never its text, which may hold a
/// secret): bytes that are not UTF-8, or a UTF-16 byte-order mark; a control
/// character other than a tab; a line that is not blank, a `#` comment or a
/// `KEY=VALUE` assignment (`export ` allowed); a quote that never closes;
/// text after a closing quote. Backtick quotes and a single-quoted value
/// ending in `\` are accepted: libraries read them differently, but read them.
pub fn strict_keys(bytes: &[u8], file: &str) -> Result<Vec<String>, Refusal> {
    refuse_utf16(bytes, file)?;
    if let Err(e) = std::str::from_utf8(bytes) {
        let line = bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
        return Err(Refusal(vec![format!("`{file}` is not UTF-8 text (line {line} holds bytes that are not UTF-8)")]));
    }
    let doc = Document::parse(bytes);
    let mut problems = Vec::new();
    let mut covered = vec![false; doc.lines.len()];
    for entry in &doc.entries {
        covered[entry.first_line..=entry.last_line].iter_mut().for_each(|c| *c = true);
        let what = match entry.flaw {
            Some(Flaw::Unterminated) => "opens a quote that is never closed",
            Some(Flaw::TextAfterQuote) => "has text after its closing quote",
            _ => continue,
        };
        problems.push(format!("line {}: the value of `{}` {what}", entry.line_number(), entry.key));
    }
    for (index, line) in doc.lines.iter().enumerate() {
        let mut text = &bytes[line.start..line.content_end];
        if index == 0 {
            text = text.strip_prefix(BOM).unwrap_or(text);
        }
        if let Some(c) = String::from_utf8_lossy(text).chars().find(|&c| c.is_control() && c != '\t') {
            problems.push(format!("line {}: holds the control character U+{:04X}", index + 1, c as u32));
            continue;
        }
        let start = skip_blanks(text, 0, text.len());
        if !covered[index] && start < text.len() && text[start] != b'#' {
            problems.push(format!("line {} is not a `KEY=VALUE` assignment, a `#` comment or a blank line", index + 1));
        }
    }
    if problems.is_empty() {
        return Ok(doc.entries.into_iter().map(|e| e.key).collect());
    }
    problems
        .sort_by_key(|p| p.trim_start_matches("line ").split([' ', ':']).next().and_then(|n| n.parse::<usize>().ok()));
    if problems.len() > MAX_STRICT_PROBLEMS {
        let more = problems.len() - MAX_STRICT_PROBLEMS;
        problems.truncate(MAX_STRICT_PROBLEMS);
        problems.push(format!("{} not listed", count(more, "more problem")));
    }
    Err(Refusal(problems))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "/app/.env";

    fn set(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn keys(names: &[&str]) -> Vec<String> {
        names.iter().map(|k| (*k).to_owned()).collect()
    }

    struct Opts {
        create_missing: bool,
        allow_duplicates: bool,
    }

    const STRICT: Opts = Opts { create_missing: false, allow_duplicates: false };

    fn edit_with(input: &[u8], set_pairs: &[(&str, &str)], unset: &[&str], opts: Opts) -> Result<Edit, Refusal> {
        let set = set(set_pairs);
        let unset = keys(unset);
        let request = Request {
            file: FILE,
            set: &set,
            unset: &unset,
            create_missing: opts.create_missing,
            allow_duplicates: opts.allow_duplicates,
        };
        plan_edit(input, &request)
    }

    /// Sets keys and returns the new contents as text.
    fn set_ok(input: &str, pairs: &[(&str, &str)]) -> String {
        let edit = edit_with(input.as_bytes(), pairs, &[], STRICT).expect("edit should be accepted");
        String::from_utf8(edit.output).expect("utf-8")
    }

    fn unset_ok(input: &str, names: &[&str]) -> String {
        let edit = edit_with(input.as_bytes(), &[], names, STRICT).expect("edit should be accepted");
        String::from_utf8(edit.output).expect("utf-8")
    }

    fn refusal(input: &str, pairs: &[(&str, &str)], unset: &[&str], opts: Opts) -> String {
        edit_with(input.as_bytes(), pairs, unset, opts).expect_err("edit should be refused").to_string()
    }

    fn value_of(input: &str, key: &str) -> Option<String> {
        let doc = Document::parse(input.as_bytes());
        doc.occurrences(key).last().map(|e| String::from_utf8_lossy(&e.value).into_owned())
    }

    // --- reading -----------------------------------------------------------

    #[test]
    fn comments_and_blank_lines_are_not_entries() {
        let doc = Document::parse(b"# A=1\n\n   \n\t# B=2\nC=3\n");
        let keys: Vec<&str> = doc.entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["C"]);
    }

    #[test]
    fn unquoted_values_are_trimmed_and_stop_at_inline_comments() {
        assert_eq!(value_of("A=  hello world  \n", "A").as_deref(), Some("hello world"));
        assert_eq!(value_of("A=abc # note\n", "A").as_deref(), Some("abc"));
        assert_eq!(value_of("A=abc\t# note\n", "A").as_deref(), Some("abc"));
        assert_eq!(value_of("A=a#b\n", "A").as_deref(), Some("a#b"));
        assert_eq!(value_of("A=#b\n", "A").as_deref(), Some("#b"));
        assert_eq!(value_of("A= # only a comment\n", "A").as_deref(), Some(""));
    }

    #[test]
    fn quoted_values_are_decoded() {
        assert_eq!(value_of(r#"A="a\"b\\c\$d\ne""#, "A").as_deref(), Some("a\"b\\c$d\ne"));
        assert_eq!(value_of(r#"A='a\nb $X'"#, "A").as_deref(), Some(r"a\nb $X"));
        assert_eq!(value_of(r#"A="x" # c"#, "A").as_deref(), Some("x"));
        assert_eq!(value_of(r#"A="unknown \q escape""#, "A").as_deref(), Some(r"unknown \q escape"));
    }

    #[test]
    fn export_prefix_and_spacing_are_recognised() {
        let doc = Document::parse(b"export A=1\n  export\tB = 2\nexport=3\nexport C\n");
        let found: Vec<(&str, bool)> = doc.entries.iter().map(|e| (e.key.as_str(), e.exported)).collect();
        assert_eq!(found, [("A", true), ("B", true), ("export", false)]);
    }

    #[test]
    fn last_duplicate_is_the_value_reported_as_old() {
        let edit = edit_with(b"A=1\nA=2\n", &[("A", "3")], &[], Opts { create_missing: false, allow_duplicates: true })
            .expect("accepted");
        assert_eq!(edit.changes[0].old(), Some("2"));
    }

    // --- keeping bytes -----------------------------------------------------

    #[test]
    fn only_the_targeted_value_changes() {
        let input = "# header\nA=1\n\nINSIGHT_GENERATION_ENABLED=true\n# footer\nB=2\n";
        let output = set_ok(input, &[("INSIGHT_GENERATION_ENABLED", "false")]);
        assert_eq!(output, "# header\nA=1\n\nINSIGHT_GENERATION_ENABLED=false\n# footer\nB=2\n");
    }

    #[test]
    fn crlf_line_endings_are_kept() {
        let output = set_ok("A=1\r\nB=true\r\nC=3\r\n", &[("B", "false")]);
        assert_eq!(output, "A=1\r\nB=false\r\nC=3\r\n");
    }

    #[test]
    fn mixed_line_endings_are_kept_line_by_line() {
        let output = set_ok("A=1\r\nB=true\nC=3\r\n", &[("B", "false"), ("C", "4")]);
        assert_eq!(output, "A=1\r\nB=false\nC=4\r\n");
    }

    #[test]
    fn lone_carriage_returns_are_line_endings_and_kept() {
        assert_eq!(set_ok("A=1\rB=true\rC=3", &[("B", "false")]), "A=1\rB=false\rC=3");
        assert_eq!(unset_ok("A=1\rB=2", &["B"]), "A=1");
        let edit = edit_with(b"A=1\r", &[("B", "2")], &[], Opts { create_missing: true, allow_duplicates: false })
            .expect("accepted");
        assert_eq!(edit.output, b"A=1\rB=2\r");
    }

    #[test]
    fn missing_final_newline_is_kept() {
        assert_eq!(set_ok("A=1\nB=true", &[("B", "false")]), "A=1\nB=false");
        assert_eq!(set_ok("A=1\r\nB=true", &[("B", "false")]), "A=1\r\nB=false");
    }

    #[test]
    fn export_prefix_is_kept() {
        assert_eq!(set_ok("export A=1\n", &[("A", "2")]), "export A=2\n");
        assert_eq!(set_ok("  export\t A=1\n", &[("A", "2")]), "  export\t A=2\n");
    }

    #[test]
    fn whitespace_around_equals_is_kept() {
        assert_eq!(set_ok("A = 1\n", &[("A", "2")]), "A = 2\n");
        assert_eq!(set_ok("A\t=\t1  \n", &[("A", "2")]), "A\t=\t2  \n");
    }

    #[test]
    fn inline_comment_is_kept() {
        assert_eq!(set_ok("A=true # keep me\n", &[("A", "false")]), "A=false # keep me\n");
        assert_eq!(set_ok("A=\"true\"  # keep me\n", &[("A", "false")]), "A=\"false\"  # keep me\n");
        assert_eq!(set_ok("A='true'# keep me\n", &[("A", "false")]), "A='false'# keep me\n");
    }

    #[test]
    fn empty_value_gets_the_new_value_before_its_comment() {
        assert_eq!(set_ok("A=\n", &[("A", "x")]), "A=x\n");
        assert_eq!(set_ok("A= # note\n", &[("A", "x")]), "A=x # note\n");
        assert_eq!(set_ok("A = \n", &[("A", "x")]), "A =x \n");
    }

    #[test]
    fn emptying_a_value_before_an_inline_comment_writes_empty_quotes() {
        assert_eq!(set_ok("A=x # note\n", &[("A", "")]), "A=\"\" # note\n");
        assert_eq!(set_ok("A=x\n", &[("A", "")]), "A=\n");
    }

    #[test]
    fn utf8_bom_is_kept() {
        let input = b"\xEF\xBB\xBFA=1\nB=2\n";
        let edit = edit_with(input, &[("A", "9")], &[], STRICT).expect("accepted");
        assert_eq!(edit.output, b"\xEF\xBB\xBFA=9\nB=2\n");
    }

    #[test]
    fn non_utf8_bytes_elsewhere_are_kept() {
        let input = b"# caf\xE9 (latin-1)\nA=\xFF\xFE\nB=1\n";
        let edit = edit_with(input, &[("B", "2")], &[], STRICT).expect("accepted");
        assert_eq!(edit.output, b"# caf\xE9 (latin-1)\nA=\xFF\xFE\nB=2\n");
    }

    #[test]
    fn non_utf8_old_value_is_replaced_and_shown_lossily() {
        let edit = edit_with(b"A=\xFFx\n", &[("A", "ok")], &[], STRICT).expect("accepted");
        assert_eq!(edit.output, b"A=ok\n");
        assert_eq!(edit.changes[0].old(), Some("\u{FFFD}x"));
    }

    #[test]
    fn utf16_file_is_refused() {
        let message =
            edit_with(b"\xFF\xFEA\x00=\x001\x00", &[("A", "2")], &[], STRICT).expect_err("refused").to_string();
        assert!(message.contains("UTF-16"), "{message}");
    }

    #[test]
    fn lines_that_are_not_assignments_are_kept() {
        let input = "=\nnot an assignment\n'\n\"\nKEY\nexport\n1=one\nA=1\n";
        assert_eq!(set_ok(input, &[("A", "2")]), input.replace("A=1", "A=2"));
    }

    // --- quoting -----------------------------------------------------------

    #[test]
    fn double_quoted_value_stays_double_quoted_with_escapes() {
        assert_eq!(set_ok("A=\"x\"\n", &[("A", "a b")]), "A=\"a b\"\n");
        assert_eq!(set_ok("A=\"x\"\n", &[("A", r#"q"b\s$c"#)]), "A=\"q\\\"b\\\\s\\$c\"\n");
    }

    #[test]
    fn single_quoted_value_stays_single_quoted() {
        assert_eq!(set_ok("A='x'\n", &[("A", "a \"b\" $c")]), "A='a \"b\" $c'\n");
    }

    #[test]
    fn single_quote_in_new_value_for_single_quoted_entry_is_refused() {
        let message = refusal("A='x'\n", &[("A", "it's")], &[], STRICT);
        assert!(message.contains("contains `'`") && message.contains("line 1"), "{message}");
        assert!(message.contains("/app/.env"), "{message}");
    }

    #[test]
    fn trailing_backslash_for_single_quoted_entry_is_refused() {
        let message = refusal("A='x'\n", &[("A", r"C:\dir\")], &[], STRICT);
        assert!(message.contains("ends with"), "{message}");
    }

    #[test]
    fn unquoted_value_stays_unquoted_when_plain() {
        assert_eq!(set_ok("A=x\n", &[("A", "https://host:8080/path")]), "A=https://host:8080/path\n");
        assert_eq!(set_ok("A=x\n", &[("A", "déjà-vu")]), "A=déjà-vu\n");
    }

    #[test]
    fn unquoted_value_is_double_quoted_when_it_needs_quoting() {
        assert_eq!(set_ok("A=x\n", &[("A", " padded ")]), "A=\" padded \"\n");
        assert_eq!(set_ok("A=x\n", &[("A", "a # b")]), "A=\"a # b\"\n");
        assert_eq!(set_ok("A=x\n", &[("A", "two words")]), "A=\"two words\"\n");
        assert_eq!(set_ok("A=x\n", &[("A", "it's")]), "A=\"it's\"\n");
        assert_eq!(set_ok("A=x # c\n", &[("A", "a&b")]), "A=\"a&b\" # c\n");
    }

    #[test]
    fn unquoted_value_with_dollar_or_backslash_is_single_quoted() {
        assert_eq!(set_ok("A=x\n", &[("A", "pa$$word")]), "A='pa$$word'\n");
        assert_eq!(set_ok("A=x\n", &[("A", r#"say "hi""#)]), "A='say \"hi\"'\n");
        assert_eq!(set_ok("A=x\n", &[("A", r"C:\dir")]), "A='C:\\dir'\n");
    }

    #[test]
    fn unquoted_value_needing_both_quotes_is_double_quoted_with_escapes() {
        assert_eq!(set_ok("A=x\n", &[("A", r#"it's "$5""#)]), "A=\"it's \\\"\\$5\\\"\"\n");
    }

    #[test]
    fn every_written_value_reads_back_exactly() {
        let values = ["", " ", "a b", "it's", "\"", "$HOME", "${X}", "\\", "a\\\"b", "#", " #x", "`cmd`", "é ü", "\t"];
        for template in ["A=x\n", "A=\"x\"\n", "A=x # c\n", "A=\"x\" # c\n", "export A = x\n"] {
            for value in values {
                let edit = edit_with(template.as_bytes(), &[("A", value)], &[], STRICT)
                    .unwrap_or_else(|e| panic!("{template:?} <- {value:?}: {e}"));
                assert!(check(&edit.output, &set(&[("A", value)]), &[]).is_empty(), "{template:?} <- {value:?}");
            }
        }
    }

    #[test]
    fn backtick_quoted_targeted_value_is_refused() {
        let message = refusal("A=`x`\n", &[("A", "y")], &[], STRICT);
        assert!(message.contains("backticks") && message.contains("line 1"), "{message}");
    }

    #[test]
    fn backtick_quoted_untargeted_value_is_kept() {
        assert_eq!(set_ok("A=`x y`\nB=1\n", &[("B", "2")]), "A=`x y`\nB=2\n");
    }

    #[test]
    fn text_after_closing_quote_of_targeted_value_is_refused() {
        let message = refusal("A=\"x\"y\n", &[("A", "z")], &[], STRICT);
        assert!(message.contains("text after its closing quote"), "{message}");
    }

    #[test]
    fn escaped_single_quote_of_targeted_value_is_refused() {
        let message = refusal("A='x\\'\n", &[("A", "z")], &[], STRICT);
        assert!(message.contains("`\\'`"), "{message}");
    }

    #[test]
    fn unterminated_quote_of_targeted_value_is_refused() {
        let message = refusal("A=\"abc\nB=1\n", &[("A", "z")], &[], STRICT);
        assert!(message.contains("never closed") && message.contains("line 1"), "{message}");
    }

    #[test]
    fn unterminated_quote_elsewhere_does_not_hide_later_lines() {
        assert_eq!(set_ok("A=\"abc\nB=1\n", &[("B", "2")]), "A=\"abc\nB=2\n");
    }

    #[test]
    fn edit_that_would_close_an_unclosed_quote_is_refused() {
        let message = refusal("A=\"abc\nB=1\n", &[("B", "two words")], &[], STRICT);
        assert!(message.contains("would not read as requested") || message.contains("not targeted"), "{message}");
    }

    // --- multi-line values -------------------------------------------------

    const PEM: &str = "CERT=\"-----BEGIN\nFOO=inside\n-----END\"\nFOO=bar\n";

    #[test]
    fn untargeted_multi_line_value_is_parsed_past_and_kept() {
        assert_eq!(set_ok(PEM, &[("FOO", "baz")]), "CERT=\"-----BEGIN\nFOO=inside\n-----END\"\nFOO=baz\n");
        assert_eq!(unset_ok(PEM, &["FOO"]), "CERT=\"-----BEGIN\nFOO=inside\n-----END\"\n");
    }

    #[test]
    fn untargeted_single_quoted_multi_line_value_is_kept() {
        let input = "K='a\r\nB=2\r\n'\r\nB=3\r\n";
        assert_eq!(set_ok(input, &[("B", "4")]), "K='a\r\nB=2\r\n'\r\nB=4\r\n");
    }

    #[test]
    fn targeted_multi_line_value_is_refused() {
        let message = refusal(PEM, &[("CERT", "x")], &[], STRICT);
        assert!(message.contains("spans lines 1-3") && message.contains("single-line"), "{message}");
        let message = refusal(PEM, &[], &["CERT"], Opts { create_missing: true, allow_duplicates: true });
        assert!(message.contains("spans lines 1-3"), "{message}");
    }

    #[test]
    fn multi_line_value_followed_by_text_makes_the_file_ambiguous() {
        let message = refusal("A=\"x\nB=1\n\"junk\nC=1\n", &[("C", "2")], &[], STRICT);
        assert!(message.contains("disagree"), "{message}");
    }

    #[test]
    fn new_value_with_line_break_is_refused() {
        let message = refusal("A=1\n", &[("A", "a\nb")], &[], STRICT);
        assert!(message.contains("line break"), "{message}");
        let message = refusal("A=1\n", &[("A", "a\rb")], &[], STRICT);
        assert!(message.contains("line break"), "{message}");
    }

    #[test]
    fn new_value_with_control_character_is_refused() {
        let message = refusal("A=1\n", &[("A", "a\u{0}b")], &[], STRICT);
        assert!(message.contains("U+0000"), "{message}");
    }

    // --- duplicates and missing keys --------------------------------------

    #[test]
    fn duplicate_key_is_refused_by_default() {
        let message = refusal("A=1\nB=2\nA=3\n", &[("A", "4")], &[], STRICT);
        assert_eq!(
            message,
            "key `A` appears 2 times in `/app/.env` (lines 1, 3); set `allow_duplicates = true` to \
             change every occurrence"
        );
    }

    #[test]
    fn duplicate_key_changes_every_occurrence_when_allowed() {
        let opts = Opts { create_missing: false, allow_duplicates: true };
        let edit = edit_with(b"A=1\nB=2\nexport A=\"3\"\n", &[("A", "4")], &[], opts).expect("accepted");
        assert_eq!(edit.output, b"A=4\nB=2\nexport A=\"4\"\n");
        assert_eq!(edit.changes[0].lines(), [1, 3]);
    }

    #[test]
    fn duplicate_key_to_unset_is_refused_by_default_and_removed_everywhere_when_allowed() {
        let message = refusal("A=1\nA=2\n", &[], &["A"], STRICT);
        assert!(message.contains("to remove every occurrence"), "{message}");
        let opts = Opts { create_missing: false, allow_duplicates: true };
        let edit = edit_with(b"A=1\nB=2\nA=2\n", &[], &["A"], opts).expect("accepted");
        assert_eq!(edit.output, b"B=2\n");
    }

    #[test]
    fn missing_key_to_set_is_refused_by_default() {
        let message = refusal("A=1\n", &[("B", "2")], &[], STRICT);
        assert_eq!(message, "key `B` is not in `/app/.env`; set `create_missing = true` to append it");
    }

    #[test]
    fn keys_are_case_sensitive() {
        let message = refusal("a=1\n", &[("A", "2")], &[], STRICT);
        assert!(message.contains("key `A` is not in"), "{message}");
    }

    #[test]
    fn key_targeted_twice_is_refused_not_spliced_twice() {
        let message = refusal("A=1\n", &[("A", "2"), ("A", "3")], &["A"], STRICT);
        assert_eq!(message, "key `A` is targeted more than once; set or unset each key once");
    }

    #[test]
    fn all_problems_are_reported_at_once() {
        let message = refusal("A=1\nA=2\nC='x'\n", &[("A", "3"), ("B", "4"), ("C", "it's")], &[], STRICT);
        assert!(message.contains("key `A` appears 2 times"), "{message}");
        assert!(message.contains("key `B` is not in"), "{message}");
        assert!(message.contains("new value for `C`"), "{message}");
    }

    // --- creating ---------------------------------------------------------

    const CREATE: Opts = Opts { create_missing: true, allow_duplicates: false };

    #[test]
    fn missing_key_is_appended_when_create_missing() {
        let edit = edit_with(b"A=1\n", &[("B", "two words")], &[], CREATE).expect("accepted");
        assert_eq!(edit.output, b"A=1\nB=\"two words\"\n");
        assert_eq!(edit.changes[0].kind, ChangeKind::Created);
        assert_eq!(edit.changes[0].appended_line, Some(2));
    }

    #[test]
    fn appended_line_uses_the_files_line_ending() {
        let edit = edit_with(b"A=1\r\n", &[("B", "2")], &[], CREATE).expect("accepted");
        assert_eq!(edit.output, b"A=1\r\nB=2\r\n");
    }

    #[test]
    fn append_ends_an_unterminated_last_line_first() {
        let edit = edit_with(b"A=1\r\nC=3", &[("B", "2")], &[], CREATE).expect("accepted");
        assert_eq!(edit.output, b"A=1\r\nC=3\r\nB=2\r\n");
        assert_eq!(edit.changes[0].appended_line, Some(3));
    }

    #[test]
    fn append_to_empty_file_and_bom_only_file() {
        let edit = edit_with(b"", &[("B", "2")], &[], CREATE).expect("accepted");
        assert_eq!(edit.output, b"B=2\n");
        let edit = edit_with(BOM, &[("B", "2")], &[], CREATE).expect("accepted");
        assert_eq!(edit.output, b"\xEF\xBB\xBFB=2\n");
        assert_eq!(edit.changes[0].appended_line, Some(1));
    }

    #[test]
    fn append_uses_export_when_every_line_does() {
        let edit = edit_with(b"export A=1\n", &[("B", "2")], &[], CREATE).expect("accepted");
        assert_eq!(edit.output, b"export A=1\nexport B=2\n");
        let edit = edit_with(b"export A=1\nC=3\n", &[("B", "2")], &[], CREATE).expect("accepted");
        assert_eq!(edit.output, b"export A=1\nC=3\nB=2\n");
    }

    #[test]
    fn an_unset_that_would_expose_a_byte_order_mark_is_refused() {
        // Found by the `dotenv` fuzz target: unsetting the first line left
        // `\xFF\xFE` at the start, and the next plan refused the file as UTF-16.
        let refusal = edit_with(b"A=1\n\xFF\xFEjunk\nB=2\n", &[], &["A"], STRICT).unwrap_err();
        let message = refusal.to_string();
        assert!(
            message.contains("would leave it starting with bytes that read as a UTF-16 byte-order mark"),
            "{message}"
        );
        let refusal = edit_with(b"A=1\n\xEF\xBB\xBFjunk\nB=2\n", &[], &["A"], STRICT).unwrap_err();
        assert!(refusal.to_string().contains("UTF-8 byte-order mark"), "{refusal}");
        // A file that starts with a UTF-8 mark keeps it, as before.
        let edit = edit_with(b"\xEF\xBB\xBFA=1\nB=2\n", &[], &["A"], STRICT).expect("accepted");
        assert_eq!(edit.output, b"\xEF\xBB\xBFB=2\n");
    }

    #[test]
    fn append_after_unsetting_the_last_line_keeps_the_new_last_lines_ending() {
        // Found by the `dotenv` fuzz target: `A=1`'s `\r\n` became the `\n`
        // of the removed `B=2` line.
        let edit = edit_with(b"A=1\r\nB=2\nC=3", &[("D", "4")], &["B", "C"], CREATE).expect("accepted");
        assert_eq!(edit.output, b"A=1\r\nD=4\n");
        assert_eq!(edit.changes[0].appended_line, Some(2));
    }

    #[test]
    fn several_appends_keep_config_order() {
        let edit = edit_with(b"A=1\n", &[("Z", "1"), ("B", "2")], &[], CREATE).expect("accepted");
        assert_eq!(edit.output, b"A=1\nZ=1\nB=2\n");
        assert_eq!(edit.changes[1].appended_line, Some(3));
    }

    // --- unset ------------------------------------------------------------

    #[test]
    fn unset_removes_the_whole_line() {
        assert_eq!(unset_ok("A=1\nB=2 # c\nC=3\n", &["B"]), "A=1\nC=3\n");
        assert_eq!(unset_ok("A=1\r\nB=2\r\nC=3\r\n", &["B"]), "A=1\r\nC=3\r\n");
    }

    #[test]
    fn unset_of_last_line_keeps_missing_final_newline() {
        assert_eq!(unset_ok("A=1\nB=2", &["B"]), "A=1");
        assert_eq!(unset_ok("A=1\r\nB=2", &["B"]), "A=1");
        assert_eq!(unset_ok("B=2", &["B"]), "");
        assert_eq!(unset_ok("A=1\nB=2\n", &["B"]), "A=1\n");
    }

    #[test]
    fn unset_keeps_bom() {
        let edit = edit_with(b"\xEF\xBB\xBFA=1\nB=2\n", &[], &["A"], STRICT).expect("accepted");
        assert_eq!(edit.output, b"\xEF\xBB\xBFB=2\n");
    }

    #[test]
    fn unset_of_absent_key_is_unchanged() {
        let edit = edit_with(b"A=1\n", &[], &["B"], STRICT).expect("accepted");
        assert!(edit.is_noop());
        assert_eq!(edit.output, b"A=1\n");
        assert_eq!(edit.changes[0].kind, ChangeKind::Unchanged);
        assert_eq!(edit.changes[0].new, None);
    }

    #[test]
    fn set_and_unset_together() {
        let edit = edit_with(b"A=1\nB=2\nC=3", &[("C", "4")], &["A"], STRICT).expect("accepted");
        assert_eq!(edit.output, b"B=2\nC=4");
    }

    // --- no-ops -----------------------------------------------------------

    #[test]
    fn value_already_equal_is_unchanged() {
        for input in ["A=false\n", "A=\"false\"\n", "A='false'\n", "A = false # c\n"] {
            let edit = edit_with(input.as_bytes(), &[("A", "false")], &[], STRICT).expect("accepted");
            assert!(edit.is_noop(), "{input:?}");
            assert_eq!(edit.output, input.as_bytes());
            assert_eq!(edit.changes[0].kind, ChangeKind::Unchanged);
        }
    }

    #[test]
    fn value_that_may_be_expanded_is_not_taken_as_equal() {
        let edit = edit_with(b"A=\"${B}\"\n", &[("A", "${B}")], &[], STRICT).expect("accepted");
        assert!(!edit.is_noop());
        assert_eq!(edit.output, b"A=\"\\${B}\"\n");
    }

    #[test]
    fn applying_an_edit_twice_changes_nothing_the_second_time() {
        let opts = || Opts { create_missing: true, allow_duplicates: true };
        let input = b"A=1\nB=\"x\" # c\nA=2\nC='q'\nD=gone\n";
        let pairs = [("A", "new value"), ("B", "$y"), ("C", "z z"), ("E", "#")];
        let first = edit_with(input, &pairs, &["D"], opts()).expect("accepted");
        let second = edit_with(&first.output, &pairs, &["D"], opts()).expect("accepted");
        assert!(second.is_noop());
        assert_eq!(second.output, first.output);
    }

    // --- check ------------------------------------------------------------

    #[test]
    fn check_reports_missing_differing_unclear_and_present_keys() {
        let input = b"A=1\nB=\"x\ny\"\nC=$D\nE=1\nE=2\n";
        let found = check(input, &set(&[("A", "2"), ("B", "x"), ("C", "$D"), ("Z", "1")]), &keys(&["E"]));
        assert_eq!(
            found,
            [
                Mismatch { key: "A".into(), found: Found::Differs { line: 1, value: "1".into() } },
                Mismatch { key: "B".into(), found: Found::Unclear { line: 2 } },
                Mismatch { key: "C".into(), found: Found::Unclear { line: 4 } },
                Mismatch { key: "Z".into(), found: Found::Missing },
                Mismatch { key: "E".into(), found: Found::Present { lines: vec![5, 6] } },
            ]
        );
    }

    #[test]
    fn check_requires_every_duplicate_to_hold_the_value() {
        let found = check(b"A=2\nA=1\nA=2\n", &set(&[("A", "2")]), &[]);
        assert_eq!(found, [Mismatch { key: "A".into(), found: Found::Differs { line: 2, value: "1".into() } }]);
    }

    // --- robustness -------------------------------------------------------

    /// A tiny deterministic generator, so the fuzz test needs no dependency.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
            &items[(self.next() % items.len() as u64) as usize]
        }
    }

    const PIECES: &[&[u8]] = &[
        b"A",
        b"B",
        b"KEY",
        b"export ",
        b"export",
        b"=",
        b"==",
        b"\"",
        b"'",
        b"`",
        b"\\",
        b"#",
        b" #",
        b" ",
        b"\t",
        b"\n",
        b"\r\n",
        b"\r",
        b"$",
        b"${A}",
        b"value",
        b"\xEF\xBB\xBF",
        b"\xFF",
        b"\xC3",
        b"\0",
        b"\xE2\x82\xAC",
        b"A=1\n",
        b"B=\"x\ny\"\n",
        b"A='",
        b"=\"",
        b"1",
    ];

    #[test]
    fn odd_inputs_never_panic_and_accepted_edits_read_back() {
        let fixed: &[&[u8]] = &[
            b"",
            b"\"",
            b"'",
            b"=",
            b"==",
            b"A",
            b"A=",
            b"A=\"",
            b"A='",
            b"A=`",
            b"A=\\",
            b"A=\"\\",
            b"\xEF\xBB\xBF",
            b"\xEF\xBB",
            b"\xEF\xBB\xBFA",
            b"\r",
            b"\r\n",
            b"\n\n\n",
            b"export",
            b"export ",
            b"export A",
            b"A=\"x\\\"",
            b"A=1\r",
            b"\xFF\xFE",
            b"#",
            b"A=#",
            b"A= #",
            b"A=\"\"\"",
            b"A='''",
            b"A=\"a\n",
            b"A=\"a\\\n\"",
        ];
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let mut inputs: Vec<Vec<u8>> = fixed.iter().map(|b| b.to_vec()).collect();
        for _ in 0..3000 {
            let len = rng.next() % 12;
            inputs.push((0..len).flat_map(|_| rng.pick(PIECES).iter().copied()).collect());
        }
        let values = ["", "1", "two words", "it's", "\"", "$", "\\", "#", "é"];
        let mut accepted = 0;
        for input in &inputs {
            for opts in [(false, false), (true, true)] {
                let value = *rng.pick(&values);
                let set = set(&[("A", value), ("KEY", "x")]);
                let unset = keys(&["B"]);
                let request =
                    Request { file: FILE, set: &set, unset: &unset, create_missing: opts.0, allow_duplicates: opts.1 };
                if let Ok(edit) = plan_edit(input, &request) {
                    assert!(check(&edit.output, &set, &unset).is_empty(), "{input:?} <- {value:?}");
                    let again = plan_edit(&edit.output, &request)
                        .unwrap_or_else(|e| panic!("second edit of {input:?} refused: {e}"));
                    assert!(again.is_noop(), "{input:?} <- {value:?}");
                    accepted += 1;
                }
            }
        }
        // Guards against the test passing vacuously by refusing everything.
        assert!(accepted > inputs.len() / 10, "only {accepted} of {} edits accepted", inputs.len() * 2);
    }

    #[test]
    fn well_formed_inputs_are_accepted_by_the_fuzz_generator() {
        // Guards the fuzz test above against vacuously refusing everything.
        let edit = edit_with(b"A=1\nB=2\nKEY=z\n", &[("A", "it's"), ("KEY", "x")], &["B"], STRICT).expect("accepted");
        assert_eq!(edit.output, b"A=\"it's\"\nKEY=x\n");
    }

    #[test]
    fn strict_reading_accepts_what_every_library_reads_and_lists_the_keys() {
        let text = "\u{feff}# production\r\nexport NODE_ENV=production\r\n\r\n  A = 1 # note\nB=\"two\nlines\"\nC='x\\'\nD=`tick`\nE=\nA=again";
        let keys = strict_keys(text.as_bytes(), FILE).expect("readable");
        assert_eq!(keys, ["NODE_ENV", "A", "B", "C", "D", "E", "A"]);
        assert_eq!(strict_keys(b"", FILE).expect("empty is fine"), Vec::<String>::new());
    }

    #[test]
    fn strict_reading_refuses_lines_libraries_cannot_read_naming_each_line_but_not_its_text() {
        let refusal = strict_keys(b"A=1\nnot an assignment s3cret\nB=\"open\nC='x' trailing\n", FILE).unwrap_err();
        assert_eq!(
            refusal.0,
            [
                "line 2 is not a `KEY=VALUE` assignment, a `#` comment or a blank line",
                "line 3: the value of `B` opens a quote that is never closed",
                "line 4: the value of `C` has text after its closing quote",
            ]
        );
        assert!(!refusal.to_string().contains("s3cret"));
        let nul = strict_keys(b"A=1\nB=\x00\n", FILE).unwrap_err();
        assert_eq!(nul.0, ["line 2: holds the control character U+0000"]);
        let latin1 = strict_keys(b"A=1\nB=caf\xe9\n", FILE).unwrap_err();
        assert_eq!(latin1.0, ["`/app/.env` is not UTF-8 text (line 2 holds bytes that are not UTF-8)"]);
        assert!(strict_keys(b"\xff\xfeA\x00", FILE).unwrap_err().to_string().contains("UTF-16"));
        let many = strict_keys("x\n".repeat(25).as_bytes(), FILE).unwrap_err();
        assert_eq!(many.0.len(), 11);
        assert_eq!(many.0[10], "15 more problems not listed");
    }
}
