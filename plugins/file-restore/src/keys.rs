//! `require_keys`: dotted paths into a parsed document.
//!
//! `server.port` names the key `port` in the table (object, mapping)
//! `server`; a part that is a number indexes an array (`servers.0.host`); a
//! part in double quotes may hold dots (`features."insight.v2".enabled`,
//! with `\"` and `\\` inside). For dotenv files the whole entry is one
//! variable name: dotenv has no nesting, and names may hold dots.

#![forbid(unsafe_code)]

use crate::validate::Format;

/// A parsed `require_keys` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPath {
    /// As written in the runbook, for messages.
    pub text: String,
    /// The parts, quotes removed.
    pub parts: Vec<String>,
}

impl KeyPath {
    /// Parses `text` for documents of `format`.
    pub fn parse(text: &str, format: Format) -> Result<Self, String> {
        if format == Format::Dotenv {
            let ok =
                !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
            if !ok {
                return Err("is not a dotenv variable name (letters, digits, `_`, `.` and `-`)".into());
            }
            return Ok(Self { text: text.to_owned(), parts: vec![text.to_owned()] });
        }
        let mut parts = Vec::new();
        let mut chars = text.chars().peekable();
        loop {
            let mut part = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                loop {
                    match chars.next() {
                        None => return Err("a quoted part is never closed".into()),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => part.push(c),
                            _ => return Err("inside quotes only `\\\"` and `\\\\` are escapes".into()),
                        },
                        Some(c) => part.push(c),
                    }
                }
                if !matches!(chars.peek(), None | Some('.')) {
                    return Err("a quoted part must be followed by `.` or the end".into());
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == '.' {
                        break;
                    }
                    if c == '"' {
                        return Err("a `\"` may only open a part (`a.\"b.c\"`)".into());
                    }
                    part.push(c);
                    chars.next();
                }
                if part.is_empty() {
                    return Err("has an empty part; quote a key that holds dots: `a.\"b.c\"`".into());
                }
            }
            parts.push(part);
            match chars.next() {
                None => break,
                Some(_dot) if chars.peek().is_none() => return Err("ends with `.`".into()),
                Some(_dot) => {}
            }
        }
        Ok(Self { text: text.to_owned(), parts })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(text: &str) -> Vec<String> {
        KeyPath::parse(text, Format::Toml).unwrap_or_else(|e| panic!("{text}: {e}")).parts
    }

    #[test]
    fn dotted_paths_split_on_dots_outside_quotes() {
        assert_eq!(parts("server"), ["server"]);
        assert_eq!(parts("server.port"), ["server", "port"]);
        assert_eq!(parts("servers.0.host"), ["servers", "0", "host"]);
        assert_eq!(parts(r#"features."insight.v2".enabled"#), ["features", "insight.v2", "enabled"]);
        assert_eq!(parts(r#""a \"quoted\" \\ key""#), [r#"a "quoted" \ key"#]);
        assert_eq!(parts("my key.with spaces"), ["my key", "with spaces"]);
        assert_eq!(parts(r#""""#), [""], "an empty key, quoted, is a key");
    }

    #[test]
    fn malformed_paths_say_why() {
        for (text, why) in [
            ("", "empty part"),
            ("a..b", "empty part"),
            (".a", "empty part"),
            ("a.", "ends with `.`"),
            (r#"a."b"#, "never closed"),
            (r#"a."b"c"#, "followed by `.`"),
            (r#"a"b"#, "may only open a part"),
            (r#""\n""#, "escapes"),
        ] {
            let error = KeyPath::parse(text, Format::Json).unwrap_err();
            assert!(error.contains(why), "{text}: {error}");
        }
    }

    #[test]
    fn dotenv_names_are_whole() {
        let key = KeyPath::parse("sentry.dsn-url_2", Format::Dotenv).unwrap();
        assert_eq!(key.parts, ["sentry.dsn-url_2"]);
        assert!(KeyPath::parse("A B", Format::Dotenv).is_err());
        assert!(KeyPath::parse("", Format::Dotenv).is_err());
    }
}
