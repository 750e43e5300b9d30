//! Secrets hidden in the lines of a config file, for the diff `plan` shows.
//!
//! A diff is shown far from the file (a terminal, a CI log, the journal), so
//! every line goes through [`masked_lines`] first. A value becomes `***` when
//! its key looks secret by the SDK's rule ([`backout_sdk::secrets`]: the key
//! contains `SECRET`, `TOKEN`, `PASSWORD`, `PASSWD`, `PASS`, `KEY`,
//! `CREDENTIAL`, `PRIVATE`, `AUTH`, `SALT`, `DSN` or `CERT`, in any case,
//! anywhere in a dotted key) and the password of every URL
//! (`scheme://user:PASSWORD@host`) becomes `***` wherever it is. What a
//! secret key holds on the following lines is masked too:
//!
//! * a TOML table whose name looks secret (`[credentials]`,
//!   `[database.auth]`): every value until the next table header;
//! * a YAML key with nothing after the colon, or a block scalar (`|`, `>`):
//!   every line indented deeper (and `- ` items at its own indentation);
//! * an object or array opened and not closed on the line (JSON, TOML
//!   arrays, YAML flow collections): every line until it closes;
//! * a quoted string that does not close on its line (dotenv and YAML
//!   double or single quotes, TOML `"""` and `'''`): every line until it does;
//! * a PEM block (`-----BEGIN … -----` … `-----END … -----`), whatever key
//!   holds it: every line between.
//!
//! Inline tables, flow mappings and one-line JSON are scanned pair by pair,
//! so `db = { user = "app", password = "x" }` shows `password = ***`.
//!
//! It reads lines as a person would, not as a parser: it never fails, even
//! on a file that does not parse (the live file being replaced may be
//! broken), and it errs on the side of hiding. A changed secret still shows
//! as a changed line, `-password = ***` then `+password = ***`: the diff says
//! that it changes, not what it was or becomes.

#![forbid(unsafe_code)]

use backout_sdk::secrets::{MASK, is_secret_key, mask_url_passwords};

use crate::validate::Format;

/// `lines` (without their line endings) as they may be shown, one for one.
pub fn masked_lines<S: AsRef<str>>(lines: &[S], format: Format) -> Vec<String> {
    let mut masker = Masker { style: Style::of(format), section_secret: false, block: None };
    lines.iter().map(|line| mask_url_passwords(&masker.line(line.as_ref())).into_owned()).collect()
}

/// Which constructs a format has.
#[derive(Debug, Clone, Copy)]
struct Style {
    /// `key = value` (TOML, dotenv).
    equals: bool,
    /// `key: value` (YAML, JSON).
    colon: bool,
    /// Keys are always quoted strings; a scalar ends at `,` (JSON).
    json: bool,
    /// `[table]` headers (TOML).
    headers: bool,
    /// Nesting by indentation, block scalars, `- ` items (YAML).
    indentation: bool,
    /// Quoted strings may span lines (dotenv, YAML).
    multiline_quotes: bool,
    /// `"""` and `'''` strings (TOML).
    triple_quotes: bool,
    /// `export KEY=value` (dotenv).
    export: bool,
}

impl Style {
    fn of(format: Format) -> Self {
        let none = Self {
            equals: false,
            colon: false,
            json: false,
            headers: false,
            indentation: false,
            multiline_quotes: false,
            triple_quotes: false,
            export: false,
        };
        match format {
            Format::Toml => Self { equals: true, headers: true, triple_quotes: true, ..none },
            Format::Json => Self { colon: true, json: true, ..none },
            Format::Yaml => Self { colon: true, indentation: true, multiline_quotes: true, ..none },
            Format::Dotenv => Self { equals: true, multiline_quotes: true, export: true, ..none },
            // Unknown: every rule, so whatever the file is, its secrets are hidden.
            Format::None => Self {
                equals: true,
                colon: true,
                json: false,
                headers: true,
                indentation: true,
                multiline_quotes: true,
                triple_quotes: true,
                export: true,
            },
        }
    }
}

/// A secret value that goes on over the following lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    /// Lines indented deeper than column `base`; with `dash`, also `- `
    /// items at `base` (a YAML sequence under its key).
    Indent { base: usize, dash: bool },
    /// Lines up to the one holding this closing delimiter.
    Until(&'static str),
    /// Lines until this many open brackets are closed.
    Depth(usize),
    /// Lines up to `-----END`.
    Pem,
}

#[derive(Debug)]
struct Masker {
    style: Style,
    /// Inside a TOML table whose name looks secret.
    section_secret: bool,
    block: Option<Block>,
}

impl Masker {
    fn line(&mut self, line: &str) -> String {
        let indent = line.len() - line.trim_start().len();
        if let Some(block) = self.block.take()
            && let Some(shown) = self.continue_block(block, line, indent)
        {
            return shown;
        }
        let body = &line[indent..];
        if self.style.headers
            && let Some(name) = table_header(body)
        {
            self.section_secret = is_secret_key(name);
            return line.to_owned();
        }
        let mut out = String::with_capacity(line.len());
        let block = self.entries(line, indent, &mut out);
        self.block =
            block.or_else(|| (line.contains("-----BEGIN") && !line.contains("-----END")).then_some(Block::Pem));
        out
    }

    /// Shows a line that may belong to `block`: `Some` when it does (the
    /// block goes on in `self.block` unless it closed here), `None` when the
    /// block ended before this line.
    fn continue_block(&mut self, block: Block, line: &str, indent: usize) -> Option<String> {
        let lead = &line[..indent];
        let body = &line[indent..];
        match block {
            Block::Indent { base, dash } => {
                let column = lead.chars().count();
                let item = body == "-" || body.starts_with("- ");
                if body.is_empty() {
                    self.block = Some(block);
                    Some(line.to_owned())
                } else if column > base || (dash && column == base && item) {
                    self.block = Some(block);
                    Some(format!("{lead}{MASK}"))
                } else {
                    None
                }
            }
            Block::Until(closer) => match line.find(closer) {
                Some(at) => Some(masked_up_to(line, indent, at)),
                None => {
                    self.block = Some(block);
                    Some(masked_whole(line, indent))
                }
            },
            Block::Depth(open) => match close_depth(line, open) {
                Ok(at) => Some(masked_up_to(line, indent, at)),
                Err(still_open) => {
                    self.block = Some(Block::Depth(still_open));
                    Some(masked_whole(line, indent))
                }
            },
            Block::Pem => {
                if !body.contains("-----END") {
                    self.block = Some(block);
                    return Some(masked_whole(line, indent));
                }
                Some(line.to_owned())
            }
        }
    }

    /// Scans the entries of one line (not inside a block) into `out`;
    /// returns the block a secret value opens, if one does.
    fn entries(&self, line: &str, indent: usize, out: &mut String) -> Option<Block> {
        let bytes = line.as_bytes();
        let mut pos = indent;
        out.push_str(&line[..indent]);
        if self.style.export && line[pos..].starts_with("export ") {
            pos = skip_blanks(bytes, pos + "export ".len());
        }
        if self.style.indentation {
            while line[pos..].starts_with("- ") {
                pos = skip_blanks(bytes, pos + 2);
            }
        }
        out.push_str(&line[indent..pos]);
        if self.style.json || matches!(bytes.get(pos), Some(b'{' | b'[')) {
            // One-line JSON, `{ … }` or `[ … ]` on a line of its own: pairs anywhere.
            return self.container(line, pos, None, out).1;
        }
        let Some((key, after)) = self.key_at(line, pos, false) else {
            out.push_str(&line[pos..]);
            return None;
        };
        out.push_str(&line[pos..after]);
        let start = skip_blanks(bytes, after);
        out.push_str(&line[after..start]);
        let secret = is_secret_key(&key) || self.section_secret;
        let column = line[..pos].chars().count();
        self.value(line, start, None, secret, column, out).1
    }

    /// Scans `line` from `pos`, inside a container closed by `closer` (or
    /// at the top of a JSON line when `None`), until that closer; returns
    /// where it stopped and the block a secret value opens.
    fn container(&self, line: &str, mut pos: usize, closer: Option<u8>, out: &mut String) -> (usize, Option<Block>) {
        let bytes = line.as_bytes();
        loop {
            let next = skip_blanks(bytes, pos);
            out.push_str(&line[pos..next]);
            pos = next;
            let Some(&c) = bytes.get(pos) else { return (pos, None) };
            if Some(c) == closer {
                out.push(c as char);
                return (pos + 1, None);
            }
            if c == b',' {
                out.push(',');
                pos += 1;
                continue;
            }
            let in_map = closer != Some(b']');
            if in_map && let Some((key, after)) = self.key_at(line, pos, true) {
                out.push_str(&line[pos..after]);
                let start = skip_blanks(bytes, after);
                out.push_str(&line[after..start]);
                let column = line[..pos].chars().count();
                let (end, block) = self.value(line, start, Some(closer), is_secret_key(&key), column, out);
                if block.is_some() {
                    return (end, block);
                }
                pos = end;
            } else {
                let (end, block) = self.value(line, pos, Some(closer), false, 0, out);
                if block.is_some() || end == pos {
                    // Nothing recognisable: keep the rest as it is.
                    out.push_str(&line[end..]);
                    return (line.len(), block);
                }
                pos = end;
            }
        }
    }

    /// Shows the value starting at `start`: masked when `secret`, else
    /// scanned for nested pairs. `within` is the enclosing container's
    /// closer (`None` at the top of a line). Returns where the value ends
    /// and the block a secret value opens.
    fn value(
        &self,
        line: &str,
        start: usize,
        within: Option<Option<u8>>,
        secret: bool,
        column: usize,
        out: &mut String,
    ) -> (usize, Option<Block>) {
        let bytes = line.as_bytes();
        if !secret && let Some(&open @ (b'{' | b'[')) = bytes.get(start) {
            out.push(open as char);
            let closer = if open == b'{' { b'}' } else { b']' };
            return self.container(line, start + 1, Some(closer), out);
        }
        let (end, block) = self.extent(line, start, within, column);
        if secret {
            if end > start {
                out.push_str(MASK);
            }
            let block = block.or_else(|| {
                (self.style.indentation && within.is_none() && start >= line.trim_end().len())
                    .then_some(Block::Indent { base: column, dash: true })
            });
            (end, block)
        } else {
            out.push_str(&line[start..end]);
            (end, None)
        }
    }

    /// Where the value starting at `start` ends on this line, and the block
    /// it opens when it goes on over the next lines.
    fn extent(&self, line: &str, start: usize, within: Option<Option<u8>>, column: usize) -> (usize, Option<Block>) {
        let bytes = line.as_bytes();
        let rest = &line[start..];
        let to_end = line.len();
        if self.style.triple_quotes {
            for delimiter in ["\"\"\"", "'''"] {
                if let Some(inner) = rest.strip_prefix(delimiter) {
                    return match inner.find(delimiter) {
                        Some(at) => (start + 3 + at + 3, None),
                        None => (to_end, Some(Block::Until(delimiter))),
                    };
                }
            }
        }
        match bytes.get(start) {
            None => (start, None),
            Some(&quote @ (b'"' | b'\'')) if quote == b'"' || !self.style.json => match closing_quote(bytes, start) {
                Some(at) if within.is_some() => (at + 1, None),
                Some(_) => (to_end, None),
                None if self.style.multiline_quotes => {
                    (to_end, Some(Block::Until(if quote == b'"' { "\"" } else { "'" })))
                }
                None => (to_end, None),
            },
            Some(b'{' | b'[') => match close_depth(&line[start..], 0) {
                Ok(at) if within.is_some() => (start + at + 1, None),
                Ok(_) => (to_end, None),
                Err(open) => (to_end, Some(Block::Depth(open))),
            },
            Some(b'|' | b'>') if self.style.indentation && within.is_none() => {
                (to_end, Some(Block::Indent { base: column, dash: false }))
            }
            _ if within.is_some() || self.style.json => {
                let mut end = scalar_end(bytes, start);
                while end > start && matches!(bytes[end - 1], b' ' | b'\t') {
                    end -= 1;
                }
                (end, None)
            }
            _ => (to_end, None),
        }
    }

    /// A key at `pos` followed by its separator: the key (quotes removed)
    /// and the offset just after the separator.
    fn key_at(&self, line: &str, pos: usize, in_container: bool) -> Option<(String, usize)> {
        let bytes = line.as_bytes();
        let mut key = String::new();
        let mut p = pos;
        loop {
            match bytes.get(p) {
                Some(b'"' | b'\'') => {
                    let close = closing_quote(bytes, p)?;
                    key.push_str(&line[p + 1..close]);
                    p = close + 1;
                }
                Some(_) if self.style.json => return None,
                Some(_) => {
                    let end = self.bare_key_end(bytes, p, in_container);
                    if end == p {
                        return None;
                    }
                    key.push_str(&line[p..end]);
                    p = end;
                }
                None => return None,
            }
            // TOML dotted keys may mix bare and quoted parts: `a."b.c".d`.
            if self.style.equals && bytes.get(p) == Some(&b'.') {
                key.push('.');
                p += 1;
                continue;
            }
            break;
        }
        let sep = skip_blanks(bytes, p);
        match bytes.get(sep) {
            Some(b'=') if self.style.equals => Some((key, sep + 1)),
            Some(b':') if self.style.colon => {
                let next = bytes.get(sep + 1);
                let ends = self.style.json
                    || matches!(next, None | Some(b' ' | b'\t'))
                    || (in_container && matches!(next, Some(b',' | b'}' | b']')));
                ends.then_some((key, sep + 1))
            }
            _ => None,
        }
    }

    /// The end of a bare key starting at `pos`: TOML and dotenv keys are
    /// letters, digits, `_`, `-` (and `.` between parts); a YAML key runs to
    /// the `: ` that ends it and may hold blanks.
    fn bare_key_end(&self, bytes: &[u8], pos: usize, in_container: bool) -> usize {
        let mut end = pos;
        if self.style.equals {
            while bytes.get(end).is_some_and(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')) {
                end += 1;
            }
            // `KEY.` followed by a quote is a dotted key going on.
            if end > pos && bytes[end - 1] == b'.' {
                end -= 1;
            }
            if end > pos && (!self.style.colon || bytes.get(skip_blanks(bytes, end)) == Some(&b'=')) {
                return end;
            }
            end = pos;
        }
        if self.style.colon {
            while let Some(&b) = bytes.get(end) {
                let stops = matches!(b, b'{' | b'}' | b'[' | b']' | b'"' | b'\'')
                    || (b == b',' && in_container)
                    || (b == b'#' && end > pos && matches!(bytes[end - 1], b' ' | b'\t'));
                if stops {
                    return pos;
                }
                if b == b':' && matches!(bytes.get(end + 1), None | Some(b' ' | b'\t' | b',' | b'}' | b']')) {
                    break;
                }
                end += 1;
            }
            while end > pos && matches!(bytes[end - 1], b' ' | b'\t') {
                end -= 1;
            }
            if bytes.get(skip_blanks(bytes, end)) != Some(&b':') {
                return pos;
            }
        }
        end
    }
}

/// A TOML table header (`[name]`, `[[name]]`, an optional comment after):
/// its name.
fn table_header(body: &str) -> Option<&str> {
    let (inner, rest) = if let Some(after) = body.strip_prefix("[[") {
        let close = after.find("]]")?;
        (&after[..close], &after[close + 2..])
    } else {
        let after = body.strip_prefix('[')?;
        let close = after.find(']')?;
        (&after[..close], &after[close + 1..])
    };
    let rest = rest.trim_start();
    let name_ok = !inner.trim().is_empty()
        && inner.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '"' | '\'' | ' ' | '\t'));
    (name_ok && (rest.is_empty() || rest.starts_with('#'))).then_some(inner.trim())
}

fn skip_blanks(bytes: &[u8], mut pos: usize) -> usize {
    while matches!(bytes.get(pos), Some(b' ' | b'\t')) {
        pos += 1;
    }
    pos
}

/// The offset of the quote closing the one at `open` (dotenv's rule: in
/// double quotes a backslash escapes the next byte; single quotes know no
/// escapes).
fn closing_quote(bytes: &[u8], open: usize) -> Option<usize> {
    crate::dotenv::find_closing_quote(bytes, open, bytes[open])
}

/// Scans `text` with `open` brackets already open: `Ok(offset)` of the
/// bracket that closes the last of them (or of the first bracket opened in
/// `text`, when `open` is 0), `Err(still open)` when the line ends first.
/// Quoted strings are skipped.
fn close_depth(text: &str, open: usize) -> Result<usize, usize> {
    let bytes = text.as_bytes();
    let mut depth = open;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' | b'\'' => match closing_quote(bytes, i) {
                Some(close) => i = close,
                None => return Err(depth),
            },
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Ok(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    Err(depth)
}

/// The end of an unquoted scalar inside a container: the next `,`, `}` or
/// `]` outside quotes and brackets, or the end of the line.
fn scalar_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start;
    while i < bytes.len() {
        match bytes[i] {
            b',' | b'}' | b']' => return i,
            b'"' => match closing_quote(bytes, i) {
                Some(close) => i = close,
                None => return bytes.len(),
            },
            _ => {}
        }
        i += 1;
    }
    bytes.len()
}

/// A line wholly inside a secret value: its indentation and `***`.
fn masked_whole(line: &str, indent: usize) -> String {
    if line.len() == indent { line.to_owned() } else { format!("{}{MASK}", &line[..indent]) }
}

/// A line whose secret part ends at `at` (a closing delimiter, kept).
fn masked_up_to(line: &str, indent: usize, at: usize) -> String {
    let hidden = if at > indent && !line[indent..at].trim().is_empty() { MASK } else { "" };
    format!("{}{hidden}{}", &line[..indent.min(at)], &line[at.max(indent)..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(format: Format, text: &str) -> String {
        let lines: Vec<&str> = text.lines().collect();
        masked_lines(&lines, format).join("\n")
    }

    #[track_caller]
    fn same(format: Format, text: &str, expected: &str) {
        assert_eq!(masked(format, text), expected, "{format:?}\n{text}");
    }

    #[test]
    fn dotenv_values_of_secret_keys_are_hidden() {
        same(
            Format::Dotenv,
            "# prod\nexport NODE_ENV=production\nDB_PASSWORD=hunter2\napi_key = 'abc'\nLOG_LEVEL=info # KEY in a comment",
            "# prod\nexport NODE_ENV=production\nDB_PASSWORD=***\napi_key = ***\nLOG_LEVEL=info # KEY in a comment",
        );
        same(Format::Dotenv, "EMPTY_TOKEN=\nA=1", "EMPTY_TOKEN=\nA=1");
    }

    #[test]
    fn a_multi_line_secret_is_hidden_to_its_closing_quote() {
        same(
            Format::Dotenv,
            "PRIVATE_KEY=\"-----BEGIN KEY-----\nMIIEv\nabc-----END KEY-----\"\nNEXT=1",
            "PRIVATE_KEY=***\n***\n***\"\nNEXT=1",
        );
    }

    #[test]
    fn url_passwords_are_hidden_under_any_key() {
        same(
            Format::Dotenv,
            "DATABASE_URL=postgres://app:s3cret@db:5432/app\nSITE=https://example.com/x",
            "DATABASE_URL=postgres://app:***@db:5432/app\nSITE=https://example.com/x",
        );
        same(Format::Yaml, "url: \"redis://:pw@cache\"", "url: \"redis://:***@cache\"");
    }

    #[test]
    fn toml_keys_tables_inline_tables_and_multi_line_strings() {
        same(
            Format::Toml,
            "[server]\nport = 8080\nsecret_key = \"abc\" # rotated\ndb.password = 'x'\n\"api-token\" = \"y\"",
            "[server]\nport = 8080\nsecret_key = ***\ndb.password = ***\n\"api-token\" = ***",
        );
        same(
            Format::Toml,
            "[database.credentials]\nuser = \"app\"\nlist = [\n  \"a\",\n]\n[server]\nhost = \"x\"",
            "[database.credentials]\nuser = ***\nlist = ***\n  ***\n]\n[server]\nhost = \"x\"",
        );
        same(
            Format::Toml,
            "db = { user = \"app\", password = \"x\", opts = { auth_mode = 1 } }",
            "db = { user = \"app\", password = ***, opts = { auth_mode = *** } }",
        );
        same(
            Format::Toml,
            "cert_pem = \"\"\"\nline one\nline two\"\"\"\nport = 1\nnote = \"\"\"\npassword = x\n\"\"\"",
            "cert_pem = ***\n***\n***\"\"\"\nport = 1\nnote = \"\"\"\npassword = ***\n\"\"\"",
        );
        same(Format::Toml, "tokens = [\"a\", \"b\"]\nports = [1, 2]", "tokens = ***\nports = [1, 2]");
    }

    #[test]
    fn yaml_nesting_block_scalars_sequences_and_flow_collections() {
        same(
            Format::Yaml,
            "server:\n  port: 8080\n  password: s3cret\ncredentials:\n  user: app\n\n  value: x\nname: ok",
            "server:\n  port: 8080\n  password: ***\ncredentials:\n  ***\n\n  ***\nname: ok",
        );
        same(
            Format::Yaml,
            "tls:\n  private_key: |\n    -----BEGIN-----\n    abc\n  port: 443",
            "tls:\n  private_key: ***\n    ***\n    ***\n  port: 443",
        );
        same(Format::Yaml, "tokens:\n- a\n- b\nnext: 1", "tokens:\n***\n***\nnext: 1");
        same(Format::Yaml, "- name: x\n  token: y", "- name: x\n  token: ***");
        same(Format::Yaml, "db: {user: app, password: x}\nauth: [a, b]", "db: {user: app, password: ***}\nauth: ***");
        same(
            Format::Yaml,
            "\"My Key\": v\nmy secret: v\nurl: http://x:80/y",
            "\"My Key\": ***\nmy secret: ***\nurl: http://x:80/y",
        );
    }

    #[test]
    fn json_pretty_and_on_one_line() {
        same(
            Format::Json,
            "{\n  \"name\": \"x\",\n  \"password\": \"s3cret\",\n  \"auth\": {\n    \"user\": \"a\",\n    \"n\": [1, {\"b\": 2}]\n  },\n  \"port\": 1\n}",
            "{\n  \"name\": \"x\",\n  \"password\": ***,\n  \"auth\": ***\n    ***\n    ***\n  },\n  \"port\": 1\n}",
        );
        same(
            Format::Json,
            "{\"a\":1,\"token\":\"t\",\"nested\":{\"secret\":[1,2],\"ok\":true},\"list\":[{\"key\":\"k\"}]}",
            "{\"a\":1,\"token\":***,\"nested\":{\"secret\":***,\"ok\":true},\"list\":[{\"key\":***}]}",
        );
        same(Format::Json, "  \"password\": \"a,b\",", "  \"password\": ***,");
    }

    #[test]
    fn pem_blocks_are_hidden_under_any_key_and_in_unknown_formats() {
        same(
            Format::None,
            "-----BEGIN RSA PRIVATE KEY-----\nMIIE\nxyz\n-----END RSA PRIVATE KEY-----\nafter",
            "-----BEGIN RSA PRIVATE KEY-----\n***\n***\n-----END RSA PRIVATE KEY-----\nafter",
        );
        same(
            Format::Yaml,
            "tls: |\n  -----BEGIN CERTIFICATE-----\n  abc\n  -----END CERTIFICATE-----\nnext: 1",
            "tls: |\n  -----BEGIN CERTIFICATE-----\n  ***\n  -----END CERTIFICATE-----\nnext: 1",
        );
    }

    #[test]
    fn unknown_formats_use_every_rule() {
        same(
            Format::None,
            "PASSWORD=x\npassword: y\n\"token\": \"z\",\nhost: h\n[auth]\nuser = u\nplain text line\nport: 1",
            "PASSWORD=***\npassword: ***\n\"token\": ***\nhost: h\n[auth]\nuser = ***\nplain text line\nport: ***",
        );
    }

    #[test]
    fn lines_that_are_not_entries_are_kept_and_nothing_panics() {
        for format in [Format::Toml, Format::Json, Format::Yaml, Format::Dotenv, Format::None] {
            for text in [
                "",
                "\"",
                "'",
                "{",
                "]",
                "a = \"",
                "key: [",
                "[",
                "[[]]",
                "é: ü",
                "- - -",
                "a.\"b",
                "x = {a = [\"",
                "\t\t",
            ] {
                let lines = masked_lines(&[text, text, "password = 1"], format);
                assert_eq!(lines.len(), 3, "{format:?} {text:?}");
            }
        }
        same(Format::Toml, "# a comment = with equals\n", "# a comment = with equals");
    }
}
