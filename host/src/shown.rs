//! Plugin text made safe to show on an operator's terminal.
//!
//! A plugin is not trusted, and its words reach a terminal: log lines,
//! progress units, plan actions, summaries, failures, output keys and
//! values, what `inspect` prints. A terminal obeys control characters: ESC
//! sequences can erase the grant lines printed before `Run N steps? [y/N]`,
//! move the cursor to forge an `ok` line, set the window title or write the
//! clipboard (OSC 52); CR overwrites a line; bidirectional overrides
//! (U+202E) make text read backwards. Every such character is written as a
//! visible escape instead (`\x1b`, `\r`, `\u{202e}`), so what the operator
//! sees is what the plugin sent, inert.
//!
//! Where plugin text enters the host (`runtime`: describe, plan, run, undo,
//! failures, log lines) it is escaped once; values that are data, not words
//! (outputs, which later steps and `undo` read back), are escaped only where
//! they are shown ([`value_line`]). JSON output needs nothing: serde_json
//! escapes control characters itself.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Escapes every control character of `text` but `\t` and (when
/// `multiline`) `\n`. Text without any is returned as it is.
pub fn escape(text: &str, multiline: bool) -> Cow<'_, str> {
    if !text.chars().any(|c| needs_escape(c, multiline)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !needs_escape(c, multiline) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x100 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

/// One line of plugin text: newlines escaped too.
pub fn line(text: &str) -> Cow<'_, str> {
    escape(text, false)
}

/// Several lines of plugin text: newlines kept, everything else escaped.
pub fn lines(text: &str) -> Cow<'_, str> {
    escape(text, true)
}

/// A JSON value shown on one line: strings bare, others as JSON (which
/// escapes control characters itself).
pub fn value_line(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => line(s).into_owned(),
        other => other.to_string(),
    }
}

fn needs_escape(c: char, multiline: bool) -> bool {
    match c {
        '\t' => false,
        '\n' => !multiline,
        // C0, DEL, C1.
        c if c.is_control() => true,
        // Bidirectional formatting: embeddings, overrides, isolates, marks
        // that reorder what follows (the "Trojan Source" characters).
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}' => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_untouched_and_not_copied() {
        assert!(matches!(line("restored /data/app.db (4.0 MiB) ✓"), Cow::Borrowed(_)));
        assert!(matches!(lines("a\n\tb"), Cow::Borrowed(_)));
    }

    #[test]
    fn escape_sequences_carriage_returns_and_bells_become_visible() {
        assert_eq!(line("\x1b[2A\x1b[2Kok       forged\r\x07"), "\\x1b[2A\\x1b[2Kok       forged\\r\\x07");
        assert_eq!(line("osc52 \x1b]52;c;ZWNobyBwd25lZA==\x07"), "osc52 \\x1b]52;c;ZWNobyBwd25lZA==\\x07");
        assert_eq!(line("c1 \u{9b}31m"), "c1 \\x9b31m");
        assert_eq!(line("del \u{7f}"), "del \\x7f");
    }

    #[test]
    fn newlines_are_kept_only_in_multiline_text() {
        assert_eq!(line("one\ntwo"), "one\\ntwo");
        assert_eq!(lines("one\ntwo\r\n"), "one\ntwo\\r\n");
    }

    #[test]
    fn bidi_overrides_cannot_reorder_what_is_shown() {
        assert_eq!(line("safe\u{202e}txt.exe"), "safe\\u{202e}txt.exe");
        assert_eq!(line("\u{2066}x\u{2069}"), "\\u{2066}x\\u{2069}");
    }

    #[test]
    fn values_are_shown_on_one_line() {
        assert_eq!(value_line(&serde_json::json!("a\nb\x1b")), "a\\nb\\x1b");
        assert_eq!(value_line(&serde_json::json!({"k": "\x1b"})), r#"{"k":"\u001b"}"#);
    }
}
