//! The small JSON path language of `expect.json` and `capture`.
//!
//! A path starts at the document, `$`, and descends one step at a time:
//!
//! * `.key` — a member of an object; the key is everything up to the next
//!   `.` or `[` (letters, digits, `_`, `-` and other characters except
//!   blanks, quotes and brackets);
//! * `['key']` or `["key"]` — a member whose name has other characters
//!   (`['content-type']`, `["a.b"]`, `['it\'s']`; `\\` is a backslash);
//! * `[0]` — an element of an array, counted from 0.
//!
//! So `$.result.points[0].payload['file name']`. There are no wildcards,
//! filters or negative indices: a smoke test names one value and says what
//! it must be. A path that does not lead to a value is *missing*, which is
//! what `exists = false` wants and every other assertion fails on.

#![forbid(unsafe_code)]

use std::fmt;

use serde_json::Value;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A parsed path; it displays as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    text: String,
    segments: Vec<Segment>,
}

impl JsonPath {
    /// Parses `text`; the error says where and why it is malformed.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = |at: usize, why: &str| format!("JSON path `{text}` is malformed at character {}: {why}", at + 1);
        let Some(rest) = text.strip_prefix('$') else {
            return Err(format!("JSON path `{text}` must start with `$` (the document), as in `$.status`"));
        };
        let chars: Vec<char> = rest.chars().collect();
        let mut segments = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let at = i + 1; // position in `text`, after the `$`
            match chars[i] {
                '.' => {
                    let start = i + 1;
                    let mut end = start;
                    while end < chars.len() && chars[end] != '.' && chars[end] != '[' {
                        let c = chars[end];
                        if c.is_whitespace() || matches!(c, ']' | '\'' | '"') {
                            return Err(bad(end + 1, &format!("{c:?} cannot appear in `.key`; write `['…']`")));
                        }
                        end += 1;
                    }
                    if end == start {
                        return Err(bad(at, "a `.` must be followed by a key"));
                    }
                    segments.push(Segment::Key(chars[start..end].iter().collect()));
                    i = end;
                }
                '[' => {
                    let Some(&next) = chars.get(i + 1) else {
                        return Err(bad(at, "unterminated `[`"));
                    };
                    if next == '\'' || next == '"' {
                        let (key, after) = quoted(&chars, i + 1).map_err(|why| bad(at, why))?;
                        if chars.get(after) != Some(&']') {
                            return Err(bad(after + 1, "expected `]` after the quoted key"));
                        }
                        segments.push(Segment::Key(key));
                        i = after + 1;
                    } else {
                        let close = chars[i + 1..]
                            .iter()
                            .position(|&c| c == ']')
                            .map(|p| i + 1 + p)
                            .ok_or_else(|| bad(at, "unterminated `[`"))?;
                        let inside: String = chars[i + 1..close].iter().collect();
                        if inside.is_empty() || !inside.bytes().all(|b| b.is_ascii_digit()) {
                            return Err(bad(
                                at,
                                &format!("`[{inside}]` is neither an index (`[0]`) nor a quoted key (`['key']`)"),
                            ));
                        }
                        let index = inside.parse().map_err(|_| bad(at, "index too large"))?;
                        segments.push(Segment::Index(index));
                        i = close + 1;
                    }
                }
                c => return Err(bad(at, &format!("expected `.` or `[`, found {c:?}"))),
            }
        }
        Ok(Self { text: text.to_owned(), segments })
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The value the path leads to in `document`, if any.
    pub fn get<'a>(&self, document: &'a Value) -> Option<&'a Value> {
        self.segments.iter().try_fold(document, |value, segment| match (segment, value) {
            (Segment::Key(key), Value::Object(map)) => map.get(key),
            (Segment::Index(index), Value::Array(items)) => items.get(*index),
            _ => None,
        })
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Reads a quoted key starting at the quote `chars[open]`; returns the key
/// and the index just past the closing quote.
fn quoted(chars: &[char], open: usize) -> Result<(String, usize), &'static str> {
    let quote = chars[open];
    let mut key = String::new();
    let mut i = open + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                match chars.get(i + 1) {
                    Some(&c) if c == quote || c == '\\' => key.push(c),
                    _ => return Err("`\\` in a quoted key must be followed by the quote or `\\`"),
                }
                i += 2;
            }
            c if c == quote => return Ok((key, i + 1)),
            c => {
                key.push(c);
                i += 1;
            }
        }
    }
    Err("unterminated quoted key")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn segments(text: &str) -> Vec<Segment> {
        JsonPath::parse(text).unwrap_or_else(|e| panic!("{e}")).segments().to_vec()
    }

    fn key(k: &str) -> Segment {
        Segment::Key(k.into())
    }

    #[test]
    fn dollar_alone_is_the_document() {
        assert!(segments("$").is_empty());
        let doc = json!({"a": 1});
        assert_eq!(JsonPath::parse("$").unwrap().get(&doc), Some(&doc));
    }

    #[test]
    fn keys_indices_and_quoted_keys_parse() {
        assert_eq!(segments("$.status"), [key("status")]);
        assert_eq!(segments("$.result.points[0].id"), [key("result"), key("points"), Segment::Index(0), key("id")]);
        assert_eq!(segments("$['key with spaces']"), [key("key with spaces")]);
        assert_eq!(segments(r#"$["a.b"][12]"#), [key("a.b"), Segment::Index(12)]);
        assert_eq!(segments(r"$['it\'s']['back\\slash']"), [key("it's"), key(r"back\slash")]);
        assert_eq!(segments("$.content-type.x_1"), [key("content-type"), key("x_1")]);
        assert_eq!(segments("$[0][1]"), [Segment::Index(0), Segment::Index(1)]);
        assert_eq!(segments("$.é"), [key("é")]);
    }

    #[test]
    fn malformed_paths_say_where_and_why() {
        let cases = [
            ("status", "must start with `$`"),
            ("", "must start with `$`"),
            ("$.", "must be followed by a key"),
            ("$..a", "must be followed by a key"),
            ("$a", "expected `.` or `[`"),
            ("$[", "unterminated `[`"),
            ("$[0", "unterminated `[`"),
            ("$[-1]", "neither an index"),
            ("$[*]", "neither an index"),
            ("$[]", "neither an index"),
            ("$['a]", "unterminated quoted key"),
            ("$['a'", "expected `]`"),
            ("$['a\\n']", "must be followed by the quote"),
            ("$.a b", "cannot appear in `.key`"),
            ("$.a]", "cannot appear in `.key`"),
            ("$[99999999999999999999999]", "index too large"),
        ];
        for (text, expected) in cases {
            let error = JsonPath::parse(text).expect_err(text);
            assert!(error.contains(expected), "{text}: {error}");
        }
        assert_eq!(
            JsonPath::parse("$.a[x]").unwrap_err(),
            "JSON path `$.a[x]` is malformed at character 4: `[x]` is neither an index (`[0]`) nor a quoted key (`['key']`)"
        );
    }

    #[test]
    fn get_follows_the_path_or_reports_missing() {
        let doc = json!({"result": {"points": [{"id": 7}, {"id": 8}], "name with space": null}, "n": 1});
        let get = |p: &str| JsonPath::parse(p).unwrap().get(&doc).cloned();
        assert_eq!(get("$.result.points[1].id"), Some(json!(8)));
        assert_eq!(get("$.result['name with space']"), Some(Value::Null), "null is a value, not missing");
        assert_eq!(get("$.result.points[2]"), None);
        assert_eq!(get("$.missing.deeper"), None);
        assert_eq!(get("$.n.x"), None, "a key of a number");
        assert_eq!(get("$.result[0]"), None, "an index of an object");
        assert_eq!(get("$.result.points.id"), None, "a key of an array");
    }

    #[test]
    fn displays_as_written() {
        assert_eq!(JsonPath::parse("$['a'].b[0]").unwrap().to_string(), "$['a'].b[0]");
    }
}
