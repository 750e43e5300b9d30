//! What is wrong with a step's config, each problem naming the key it is
//! about, and how that travels inside the contract's `invalid-config` text.
//!
//! The contract (`wit/step.wit`) carries an `invalid-config` error as one
//! string. To let the host point at the offending key of the runbook rather
//! than at the `[step.with]` line, a problem names its key with a JSON
//! pointer (RFC 6901) into the `with` table, written at the start of the
//! problem in its URI-fragment form and in backticks:
//!
//! ```text
//! `#/checks/1/expect/status`: check #2 "health": `expect.status` must be a code, a class or a range
//! ```
//!
//! Several problems are joined with `"; "`; a problem that names a key
//! starts a new one, and problems that name none come first. A host that
//! understands the convention removes the pointer and shows each problem at
//! the key's line and column (or at the `with` table when the pointer leads
//! nowhere); one that does not shows the text as it is, which still reads.
//! The words after the pointer must therefore make sense without it: they
//! name the key themselves, as every message does.
//!
//! The convention lives in a message rather than in a new field so that the
//! WIT types stay as they are and every plugin already built keeps loading.
//!
//! One file for both sides: the SDK writes with it, and the host
//! (`backout-runbook` includes it by path) reads with it. It uses nothing
//! but `std`.

use std::fmt;

/// A JSON pointer (RFC 6901) into a step's `with` table: `/checks/1/url`.
/// The empty pointer is the whole table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Pointer {
    tokens: Vec<String>,
}

impl Pointer {
    /// The whole `with` table.
    pub fn root() -> Self {
        Self::default()
    }

    /// This pointer, one object key further: `.key("url")`.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.tokens.push(key.into());
        self
    }

    /// This pointer, one array element further: `.index(1)`.
    pub fn index(mut self, index: usize) -> Self {
        self.tokens.push(index.to_string());
        self
    }

    /// The reference tokens, unescaped, from the table down.
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// Whether this is the whole table.
    pub fn is_root(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Reads the JSON string form (`/checks/1/url`, `~1` for `/` and `~0`
    /// for `~` inside a token); `None` unless it is empty or starts with `/`
    /// and every `~` is followed by `0` or `1`.
    pub fn parse(text: &str) -> Option<Self> {
        if text.is_empty() {
            return Some(Self::root());
        }
        let rest = text.strip_prefix('/')?;
        let tokens = rest.split('/').map(unescape_token).collect::<Option<Vec<_>>>()?;
        Some(Self { tokens })
    }

    /// The key as a runbook writes it: `checks[1].expect.status`, a key
    /// that is not a bare TOML key in quotes (`headers."x-api-key"` stays
    /// bare; `set."A B"`). Tokens of digits are shown as indexes, since a
    /// `with` table's keys are rarely numbers.
    pub fn dotted(&self) -> String {
        let mut out = String::new();
        for token in &self.tokens {
            if !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()) {
                out.push('[');
                out.push_str(token);
                out.push(']');
                continue;
            }
            if !out.is_empty() {
                out.push('.');
            }
            let bare = !token.is_empty() && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if bare {
                out.push_str(token);
            } else {
                out.push('"');
                for c in token.chars() {
                    match c {
                        '"' => out.push_str("\\\""),
                        '\\' => out.push_str("\\\\"),
                        c => out.push(c),
                    }
                }
                out.push('"');
            }
        }
        out
    }

    /// The URI-fragment form used in messages: `#` then the pointer, with
    /// every byte outside RFC 3986's fragment characters percent-encoded,
    /// so that it never holds a backtick or a space.
    fn fragment(&self) -> String {
        let mut out = String::from("#");
        for byte in self.to_string().bytes() {
            if is_fragment_byte(byte) {
                out.push(byte as char);
            } else {
                out.push_str(&format!("%{byte:02X}"));
            }
        }
        out
    }

    /// Reads [`Pointer::fragment`]'s form back.
    fn from_fragment(text: &str) -> Option<Self> {
        let rest = text.strip_prefix('#')?;
        let mut bytes = Vec::with_capacity(rest.len());
        let mut iter = rest.bytes();
        while let Some(b) = iter.next() {
            match b {
                b'%' => {
                    let hex = [iter.next()?, iter.next()?];
                    let hex = std::str::from_utf8(&hex).ok()?;
                    bytes.push(u8::from_str_radix(hex, 16).ok()?);
                }
                b if is_fragment_byte(b) => bytes.push(b),
                _ => return None,
            }
        }
        Self::parse(&String::from_utf8(bytes).ok()?)
    }
}

impl fmt::Display for Pointer {
    /// The JSON string form: `/checks/1/url`, or nothing for the root.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for token in &self.tokens {
            write!(f, "/{}", token.replace('~', "~0").replace('/', "~1"))?;
        }
        Ok(())
    }
}

impl From<&str> for Pointer {
    /// A pointer in its JSON string form; text that is not one (no leading
    /// `/`, a stray `~`) is taken as a single key.
    fn from(text: &str) -> Self {
        Self::parse(text).unwrap_or_else(|| Self::root().key(text))
    }
}

fn unescape_token(token: &str) -> Option<String> {
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// RFC 3986 `fragment` characters less `%` and `?` (`pchar` and `/`).
fn is_fragment_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&b)
}

/// One thing wrong with a config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key it is about, when it is about one.
    pub pointer: Option<Pointer>,
    /// What is wrong, naming the key in words too: lowercase, values in
    /// backticks.
    pub message: String,
}

impl Problem {
    /// A problem about the config as a whole (nothing to do, two keys that
    /// contradict each other).
    pub fn new(message: impl Into<String>) -> Self {
        Self { pointer: None, message: message.into() }
    }

    /// A problem about the key `pointer` names.
    pub fn at(pointer: impl Into<Pointer>, message: impl Into<String>) -> Self {
        let pointer = pointer.into();
        Self { pointer: (!pointer.is_root()).then_some(pointer), message: message.into() }
    }
}

/// Every problem found in a config, in the order found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a problem about the config as a whole.
    pub fn push(&mut self, message: impl Into<String>) {
        self.0.push(Problem::new(message));
    }

    /// Adds a problem about the key `pointer` names.
    pub fn at(&mut self, pointer: impl Into<Pointer>, message: impl Into<String>) {
        self.0.push(Problem::at(pointer, message));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(value)` when nothing was found, else `Err(self)`.
    pub fn into_result<T>(self, value: T) -> Result<T, Self> {
        if self.0.is_empty() { Ok(value) } else { Err(self) }
    }

    /// The `invalid-config` text: problems without a key first, then each
    /// keyed one behind its pointer, joined with `"; "`.
    pub fn encode(&self) -> String {
        let plain = self.0.iter().filter(|p| p.pointer.is_none()).map(|p| p.message.clone());
        let keyed = self
            .0
            .iter()
            .filter_map(|p| p.pointer.as_ref().map(|pointer| format!("`{}`: {}", pointer.fragment(), p.message)));
        plain.chain(keyed).collect::<Vec<_>>().join("; ")
    }

    /// Reads an `invalid-config` text back into its problems. Text written
    /// without the convention is one problem without a key; a malformed
    /// pointer is left in the text as it is.
    pub fn decode(text: &str) -> Self {
        let mut problems = Vec::new();
        let mut rest = text;
        loop {
            let (head, tail) = match split_before_next_keyed(rest) {
                Some(i) => (&rest[..i], Some(&rest[i + 2..])),
                None => (rest, None),
            };
            problems.push(match keyed(head) {
                Some((pointer, message)) => Problem { pointer: Some(pointer), message: message.to_string() },
                None => Problem::new(head),
            });
            match tail {
                Some(t) => rest = t,
                None => break,
            }
        }
        Self(problems)
    }
}

impl From<String> for Problems {
    /// One problem about the config as a whole: the text as it is.
    fn from(message: String) -> Self {
        Self(vec![Problem::new(message)])
    }
}

impl From<Problem> for Problems {
    fn from(problem: Problem) -> Self {
        Self(vec![problem])
    }
}

impl fmt::Display for Problems {
    /// The problems joined with `"; "`, each starting with its key in
    /// words (the pointer is the host's to show).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            f.write_str(&p.message)?;
        }
        Ok(())
    }
}

/// The byte offset of the next `"; "` that is followed by a well-formed
/// keyed problem.
fn split_before_next_keyed(text: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = text[from..].find("; `#") {
        let at = from + i;
        if keyed(&text[at + 2..]).is_some() {
            return Some(at);
        }
        from = at + 2;
    }
    None
}

/// `("`#/a/b`: words")` → the pointer and the words.
fn keyed(text: &str) -> Option<(Pointer, &str)> {
    let inner = text.strip_prefix('`')?;
    let end = inner.find('`')?;
    let message = inner[end + 1..].strip_prefix(": ")?;
    let pointer = Pointer::from_fragment(&inner[..end])?;
    Some((pointer, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_escape_slash_and_tilde() {
        let p = Pointer::root().key("a/b").key("c~d").index(2);
        assert_eq!(p.to_string(), "/a~1b/c~0d/2");
        assert_eq!(Pointer::parse("/a~1b/c~0d/2"), Some(p));
        assert_eq!(Pointer::parse("a"), None);
        assert_eq!(Pointer::parse("/a~2"), None);
        assert_eq!(Pointer::parse(""), Some(Pointer::root()));
    }

    #[test]
    fn dotted_form_reads_like_the_runbook() {
        assert_eq!(Pointer::from("/checks/1/expect/status").dotted(), "checks[1].expect.status");
        assert_eq!(Pointer::from("/set/A B").dotted(), "set.\"A B\"");
        assert_eq!(Pointer::from("/headers/x-api-key").dotted(), "headers.x-api-key");
    }

    #[test]
    fn problems_round_trip_through_the_message() {
        let mut problems = Problems::new();
        problems.at("/checks/1/url", "check #2: `url` must start with `http://`; not `ftp://x`");
        problems.push("nothing to do");
        problems.at(Pointer::root().key("set").key("A `B`"), "`set.\"A `B`\"` is not a valid key");
        let text = problems.encode();
        assert_eq!(
            text,
            "nothing to do; `#/checks/1/url`: check #2: `url` must start with `http://`; not `ftp://x`; \
             `#/set/A%20%60B%60`: `set.\"A `B`\"` is not a valid key"
        );
        let back = Problems::decode(&text);
        assert_eq!(back.0.len(), 3);
        assert_eq!(back.0[0], Problem::new("nothing to do"));
        assert_eq!(back.0[1].pointer, Some(Pointer::from("/checks/1/url")));
        assert_eq!(back.0[1].message, "check #2: `url` must start with `http://`; not `ftp://x`");
        assert_eq!(back.0[2].pointer, Some(Pointer::root().key("set").key("A `B`")));
    }

    #[test]
    fn text_without_the_convention_is_one_problem() {
        for text in ["`/app/.env`: no such file", "a; b", "`#/a b`: not a pointer", "`#/a~2`: bad escape", ""] {
            assert_eq!(Problems::decode(text), Problems(vec![Problem::new(text)]), "{text}");
        }
    }

    #[test]
    fn a_root_pointer_names_no_key() {
        assert_eq!(Problem::at("", "x"), Problem::new("x"));
        assert_eq!(Problems::decode("`#`: whole").0[0].pointer, Some(Pointer::root()));
    }
}
