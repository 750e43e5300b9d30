//! `validate` and `require_keys`: the backup must parse before it replaces
//! anything.
//!
//! TOML with the `toml` crate, JSON with `serde_json`, YAML with
//! `serde_norway` (merge keys `<<` applied before keys are looked up), dotenv
//! with env-toggle's reader read strictly ([`crate::dotenv::strict_keys`]).
//! The text must be UTF-8 (a leading byte-order mark is allowed) and not
//! empty. Messages name the line and column but never quote the text: a
//! config file holds secrets.

#![forbid(unsafe_code)]

use crate::keys::KeyPath;

/// Files larger than this are neither validated nor diffed: a config file is
/// small, and both need the whole text in memory. (`validate = "none"`
/// restores larger files, streamed, without a diff.)
pub const MAX_CHECKED_BYTES: u64 = 16 * 1024 * 1024;

/// How a backup must parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Toml,
    Json,
    Yaml,
    Dotenv,
    /// No check: the backup is copied as it is.
    None,
}

impl Format {
    /// The words `validate` accepts, for messages.
    pub const WORDS: &'static str = "`toml`, `json`, `yaml`, `dotenv` or `none`";

    pub fn from_word(word: &str) -> Option<Self> {
        Some(match word {
            "toml" => Self::Toml,
            "json" => Self::Json,
            "yaml" => Self::Yaml,
            "dotenv" => Self::Dotenv,
            "none" => Self::None,
            _ => return None,
        })
    }

    /// As written in a runbook.
    pub fn word(self) -> &'static str {
        match self {
            Self::Toml => "toml",
            Self::Json => "json",
            Self::Yaml => "yaml",
            Self::Dotenv => "dotenv",
            Self::None => "none",
        }
    }

    /// As named in prose.
    pub fn name(self) -> &'static str {
        match self {
            Self::Toml => "TOML",
            Self::Json => "JSON",
            Self::Yaml => "YAML",
            Self::Dotenv => "dotenv",
            Self::None => "unchecked",
        }
    }
}

/// Checks `bytes` (the backup `file`) as `format`, with every key of
/// `require`. `Ok` says what was checked, for plan and logs; `Err` says why
/// the backup is refused (the message starts with the file's name).
pub fn check(format: Format, bytes: &[u8], require: &[KeyPath], file: &str) -> Result<String, String> {
    if format == Format::None {
        return Ok("not checked (`validate = \"none\"`)".to_owned());
    }
    if bytes.is_empty() {
        return Err(format!("`{file}` is empty; an empty backup is only restored with `validate = \"none\"`"));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
        format!(
            "`{file}` is not UTF-8 text (line {line} holds bytes that are not UTF-8), so it is not valid {}",
            format.name()
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let invalid = |why: String| format!("`{file}` is not valid {}: {why}", format.name());
    let missing: Vec<&str> = match format {
        Format::Toml => {
            let table = toml::from_str::<toml::Table>(text).map_err(|e| invalid(toml_error(&e, text)))?;
            require.iter().filter(|k| !toml_has(&table, &k.parts)).map(|k| k.text.as_str()).collect()
        }
        Format::Json => {
            let value = serde_json::from_str::<serde_json::Value>(text).map_err(|e| invalid(e.to_string()))?;
            require.iter().filter(|k| !json_has(&value, &k.parts)).map(|k| k.text.as_str()).collect()
        }
        Format::Yaml => {
            let mut value = serde_norway::from_str::<serde_norway::Value>(text).map_err(|e| invalid(e.to_string()))?;
            value.apply_merge().map_err(|e| invalid(e.to_string()))?;
            require.iter().filter(|k| !yaml_has(&value, &k.parts)).map(|k| k.text.as_str()).collect()
        }
        Format::Dotenv => {
            let keys = crate::dotenv::strict_keys(text.as_bytes(), file)
                .map_err(|refusal| format!("`{file}` is not a readable dotenv file: {refusal}"))?;
            require.iter().filter(|k| !keys.contains(&k.parts[0])).map(|k| k.text.as_str()).collect()
        }
        Format::None => unreachable!("returned above"),
    };
    if !missing.is_empty() {
        let noun = if missing.len() == 1 { "key" } else { "keys" };
        return Err(format!(
            "`{file}` is valid {} but lacks the required {noun} {}",
            format.name(),
            missing.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(match require {
        [] => format!("valid {}", format.name()),
        keys => format!(
            "valid {}, with {}",
            format.name(),
            keys.iter().map(|k| format!("`{}`", k.text)).collect::<Vec<_>>().join(", ")
        ),
    })
}

/// The toml crate's own rendering quotes the offending line; say where
/// instead (a line may hold a secret).
fn toml_error(e: &toml::de::Error, text: &str) -> String {
    let message = e.message().trim_end().replace('\n', "; ");
    match e.span() {
        Some(span) => {
            let (line, column) = line_column(text, span.start);
            format!("{message} at line {line} column {column}")
        }
        None => message,
    }
}

/// 1-based line and column (in characters) of byte `offset`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or_default().chars().count() + 1;
    (line, column)
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

fn toml_has(table: &toml::Table, parts: &[String]) -> bool {
    let Some((first, rest)) = parts.split_first() else { return true };
    table.get(first).is_some_and(|value| toml_value_has(value, rest))
}

fn toml_value_has(value: &toml::Value, parts: &[String]) -> bool {
    let Some((first, rest)) = parts.split_first() else { return true };
    match value {
        toml::Value::Table(table) => table.get(first).is_some_and(|v| toml_value_has(v, rest)),
        toml::Value::Array(items) => index(first).and_then(|i| items.get(i)).is_some_and(|v| toml_value_has(v, rest)),
        _ => false,
    }
}

fn json_has(value: &serde_json::Value, parts: &[String]) -> bool {
    let Some((first, rest)) = parts.split_first() else { return true };
    match value {
        serde_json::Value::Object(map) => map.get(first).is_some_and(|v| json_has(v, rest)),
        serde_json::Value::Array(items) => index(first).and_then(|i| items.get(i)).is_some_and(|v| json_has(v, rest)),
        _ => false,
    }
}

fn yaml_has(value: &serde_norway::Value, parts: &[String]) -> bool {
    use serde_norway::Value;
    let Some((first, rest)) = parts.split_first() else { return true };
    match value {
        Value::Mapping(map) => map.iter().any(|(k, v)| yaml_key_is(k, first) && yaml_has(v, rest)),
        Value::Sequence(items) => index(first).and_then(|i| items.get(i)).is_some_and(|v| yaml_has(v, rest)),
        Value::Tagged(tagged) => yaml_has(&tagged.value, parts),
        _ => false,
    }
}

/// A YAML key matches a part when it is that string, or a number or
/// boolean written that way (`8080:`, `true:`).
fn yaml_key_is(key: &serde_norway::Value, part: &str) -> bool {
    use serde_norway::Value;
    match key {
        Value::String(s) => s == part,
        Value::Number(n) => n.to_string() == part,
        Value::Bool(b) => b.to_string() == part,
        Value::Tagged(tagged) => yaml_key_is(&tagged.value, part),
        _ => false,
    }
}

/// A part that indexes an array: decimal digits, no sign, no leading zero.
fn index(part: &str) -> Option<usize> {
    let digits =
        !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) && (part == "0" || !part.starts_with('0'));
    if digits { part.parse().ok() } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(format: Format, texts: &[&str]) -> Vec<KeyPath> {
        texts.iter().map(|t| KeyPath::parse(t, format).unwrap()).collect()
    }

    fn ok(format: Format, text: &str, require: &[&str]) -> String {
        check(format, text.as_bytes(), &keys(format, require), "/b/x").unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn refused(format: Format, text: &str, require: &[&str]) -> String {
        check(format, text.as_bytes(), &keys(format, require), "/b/x").expect_err(text)
    }

    const TOML: &str = "title = \"cortex\"\n[server]\nport = 8080\n[[workers]]\nname = \"a\"\n[features.\"insight.v2\"]\nenabled = true\n";

    #[test]
    fn toml_parses_and_finds_dotted_keys() {
        assert_eq!(ok(Format::Toml, TOML, &[]), "valid TOML");
        assert_eq!(
            ok(Format::Toml, TOML, &["server.port", "workers.0.name", r#"features."insight.v2".enabled"#]),
            r#"valid TOML, with `server.port`, `workers.0.name`, `features."insight.v2".enabled`"#
        );
        let missing = refused(Format::Toml, TOML, &["server.host", "workers.1.name", "title.x"]);
        assert_eq!(
            missing,
            "`/b/x` is valid TOML but lacks the required keys `server.host`, `workers.1.name`, `title.x`"
        );
    }

    #[test]
    fn broken_toml_is_refused_with_a_position_and_without_its_text() {
        let error = refused(Format::Toml, "[server]\nport = 8080\npassword = \"s3cret\n", &[]);
        assert!(error.starts_with("`/b/x` is not valid TOML: "), "{error}");
        assert!(error.contains("at line 3 column"), "{error}");
        assert!(!error.contains("s3cret"), "{error}");
        let error = refused(Format::Toml, "a = 1\na = 2\n", &[]);
        assert!(error.contains("duplicate key") && error.contains("line 2"), "{error}");
    }

    #[test]
    fn json_parses_and_finds_keys_and_indexes() {
        let text = r#"{"server": {"port": 8080}, "workers": [{"name": "a"}], "a.b": {"c": null}}"#;
        assert!(
            ok(Format::Json, text, &["server.port", "workers.0.name", r#""a.b".c"#]).starts_with("valid JSON, with")
        );
        assert!(refused(Format::Json, text, &["workers.01.name"]).contains("`workers.01.name`"));
        let error = refused(Format::Json, "{\"password\": \"s3cret\",}", &[]);
        assert!(error.starts_with("`/b/x` is not valid JSON: ") && error.contains("line 1 column"), "{error}");
        assert!(!error.contains("s3cret"), "{error}");
        assert!(refused(Format::Json, "{\"a\": 1} trailing", &[]).contains("trailing characters"));
    }

    #[test]
    fn yaml_parses_applies_merges_and_finds_keys() {
        let text = "base: &base\n  port: 8080\nserver:\n  <<: *base\n  host: x\nlist:\n  - name: a\n8080: numeric\n";
        assert!(
            ok(Format::Yaml, text, &["server.port", "server.host", "list.0.name", "8080"]).starts_with("valid YAML")
        );
        assert!(refused(Format::Yaml, text, &["server.user"]).contains("lacks the required key `server.user`"));
        let error = refused(Format::Yaml, "server:\n  port: 8080\n password: s3cret\n", &[]);
        assert!(error.starts_with("`/b/x` is not valid YAML: ") && error.contains("line 3"), "{error}");
        assert!(!error.contains("s3cret"), "{error}");
        assert!(refused(Format::Yaml, "a: [1, 2\n", &[]).contains("not valid YAML"));
    }

    #[test]
    fn dotenv_is_read_strictly_with_env_toggles_reader() {
        let text = "# prod\nexport NODE_ENV=production\nDATABASE_URL=\"postgres://app:pw@db/app\"\n";
        assert_eq!(
            ok(Format::Dotenv, text, &["DATABASE_URL", "NODE_ENV"]),
            "valid dotenv, with `DATABASE_URL`, `NODE_ENV`"
        );
        assert!(refused(Format::Dotenv, text, &["API_KEY"]).contains("lacks the required key `API_KEY`"));
        let error = refused(Format::Dotenv, "A=1\n<html>oops s3cret</html>\n", &[]);
        assert_eq!(
            error,
            "`/b/x` is not a readable dotenv file: line 2 is not a `KEY=VALUE` assignment, a `#` comment or a blank line"
        );
        assert!(refused(Format::Dotenv, "A=\"never closed\n", &[]).contains("never closed"));
    }

    #[test]
    fn empty_and_non_utf8_backups_are_refused_unless_unchecked() {
        for format in [Format::Toml, Format::Json, Format::Yaml, Format::Dotenv] {
            assert!(refused(format, "", &[]).contains("is empty"), "{format:?}");
            let error = check(format, b"a = \"\xff\"\n", &[], "/b/x").unwrap_err();
            assert!(error.contains("is not UTF-8 text (line 1"), "{format:?}: {error}");
        }
        assert_eq!(check(Format::None, b"\xff\x00", &[], "/b/x").unwrap(), "not checked (`validate = \"none\"`)");
        assert_eq!(ok(Format::Json, "\u{feff}{}", &[]), "valid JSON", "a byte-order mark is allowed");
    }

    #[test]
    fn array_indexes_are_plain_decimals() {
        assert_eq!(index("0"), Some(0));
        assert_eq!(index("12"), Some(12));
        assert_eq!(index("01"), None);
        assert_eq!(index("-1"), None);
        assert_eq!(index(""), None);
    }
}
