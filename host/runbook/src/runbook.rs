//! What a runbook file says: TOML syntax into typed structs, and nothing more.
//!
//! This module knows TOML and the runbook's shape; it never touches the file
//! system beyond reading the runbook, never looks at a registry or a plugin.
//! Unknown keys are errors (a misspelled `timeout` must not silently become
//! the default). Every value keeps its byte span so later stages can say
//! where in the file a problem is. [`crate::resolve`] turns a [`Runbook`] into
//! a checked [`crate::plan::Plan`].

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;
use toml::de::DeTable;

use crate::diagnostic::{Diagnostic, Location, SourceFile};
use crate::keys;

/// The only runbook format this version reads.
pub const FORMAT_VERSION: i64 = 1;

/// A runbook as written, with spans.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runbook {
    pub version: Spanned<i64>,
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub vars: BTreeMap<String, Spanned<String>>,
    /// What a failed step does to the run: `undo` (the default), `abort`
    /// or `continue`; steps may override it.
    #[serde(default)]
    pub on_failure: Option<Spanned<String>>,
    /// The recovery time objective: how long the whole run may take
    /// (`"5m"`). Plan compares the steps' timeouts with it; the report says
    /// whether the run met it.
    #[serde(default)]
    pub rto: Option<Spanned<String>>,
    #[serde(default, rename = "step")]
    pub steps: Vec<StepDef>,
}

/// One `[[step]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepDef {
    pub id: Spanned<String>,
    /// `name@version` from the registry, or a path to a `.wasm` file.
    pub uses: Spanned<String>,
    /// An extra pin: the sha256 the plugin's bytes must have.
    #[serde(default)]
    pub sha256: Option<Spanned<String>>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub timeout: Option<Spanned<String>>,
    /// How long the step usually takes (`"30s"`): the report flags a step
    /// that took longer, and plan adds these up against the runbook's `rto`.
    #[serde(default)]
    pub expected: Option<Spanned<String>>,
    #[serde(default)]
    pub memory: Option<Spanned<String>>,
    /// Cap on response body bytes received over the network per call.
    #[serde(default)]
    pub max_received: Option<Spanned<String>>,
    /// The plugin's config; `${...}` references are substituted in strings.
    #[serde(default, rename = "with")]
    pub with: Option<Spanned<toml::Table>>,
    #[serde(default)]
    pub grants: Option<Spanned<GrantsDef>>,
    /// Overrides the runbook's `on_failure` for this step's failure.
    #[serde(default)]
    pub on_failure: Option<Spanned<String>>,
    /// `false`: the step may fail without failing the run.
    #[serde(default)]
    pub critical: Option<Spanned<bool>>,
    /// `true`: the step runs whatever happened before it, and is never undone.
    #[serde(default)]
    pub always: Option<Spanned<bool>>,
    /// Tries again after errors the plugin marks transient.
    #[serde(default)]
    pub retries: Option<Spanned<RetriesDef>>,
}

/// `retries = { attempts, interval, backoff }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetriesDef {
    /// Every try, the first included.
    pub attempts: Spanned<i64>,
    /// The wait before the second attempt (`"1s"` by default).
    #[serde(default)]
    pub interval: Option<Spanned<String>>,
    /// How much each wait grows over the one before (2 by default).
    #[serde(default)]
    pub backoff: Option<Spanned<f64>>,
}

/// `[step.grants]`: everything a step may use. Absent means nothing.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantsDef {
    #[serde(default)]
    pub dirs: Vec<Spanned<DirDef>>,
    #[serde(default)]
    pub env: Vec<Spanned<String>>,
    /// HTTP(S) origins: `scheme://host[:port]`.
    #[serde(default)]
    pub net: Vec<Spanned<String>>,
    /// Host command lines, each an exact argv: `[["systemctl", "stop", "app"]]`.
    #[serde(default)]
    pub commands: Vec<Spanned<Vec<String>>>,
}

/// One directory grant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirDef {
    /// Absolute path on the host; may use `${vars.*}`.
    pub host: Spanned<String>,
    /// Absolute path the plugin sees.
    pub guest: Spanned<String>,
    /// `ro` (the default) or `rw`.
    #[serde(default)]
    pub mode: Option<Spanned<String>>,
}

/// A parsed runbook and the text it came from.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub runbook: Runbook,
    pub source: SourceFile,
}

impl Parsed {
    pub fn locate(&self, span: &Range<usize>) -> Location {
        self.source.locate(span)
    }
}

/// Reads and parses a runbook file. A syntax or shape error is one diagnostic
/// with the file, line and column (TOML parsing stops at the first one).
pub fn load(path: &Path) -> Result<Parsed, Diagnostic> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Diagnostic::error(format!("failed to read runbook `{}`: {e}", path.display()))
            .hint("pass the path of a runbook file (TOML)")
    })?;
    parse(SourceFile::new(path, text))
}

/// Parses runbook text. TOML syntax is checked first, then every table's
/// keys ([`keys::check`], typed: "did you mean" and the keys allowed there),
/// then the values' types.
pub fn parse(source: SourceFile) -> Result<Parsed, Diagnostic> {
    let at = |span: Option<Range<usize>>| span.map(|span| source.locate(&span));
    let parser_error =
        |e: toml::de::Error| Diagnostic::error(first_line(e.message())).at_opt(at(e.span())).hint(GENERAL_HINT);
    let document = DeTable::parse(&source.text).map_err(parser_error)?;
    if let Some(problem) = keys::check(&document) {
        return Err(Diagnostic::error(problem.to_string()).at(source.locate(&problem.span())).hint(problem.hint()));
    }
    let runbook = Runbook::deserialize(toml::de::Deserializer::from(document)).map_err(parser_error)?;
    if *runbook.version.get_ref() != FORMAT_VERSION {
        return Err(Diagnostic::error(format!(
            "unsupported runbook version `{}`; this backout reads version {FORMAT_VERSION}",
            runbook.version.get_ref()
        ))
        .at(source.locate(&runbook.version.span())));
    }
    Ok(Parsed { runbook, source })
}

/// The hint under an error in the parser's words (TOML syntax, a value of
/// the wrong type): those words change between TOML versions, so no hint
/// is chosen from them.
const GENERAL_HINT: &str = "see the runbook reference in the README";

fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or(message).trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Parsed, Diagnostic> {
        parse(SourceFile::new("r.toml", text))
    }

    #[test]
    fn minimal_runbook_parses() {
        let p = parse_str("version = 1\nname = \"x\"\n[[step]]\nid = \"a\"\nuses = \"env-toggle@0.1.0\"\n").unwrap();
        assert_eq!(p.runbook.steps.len(), 1);
        assert_eq!(p.runbook.steps[0].id.get_ref(), "a");
    }

    const STEP: &str = "version = 1\nname = \"x\"\n[[step]]\nid = \"a\"\nuses = \"p@1.0.0\"\n";

    /// The message, line, column and hint of the one diagnostic `text` gets.
    fn refused(text: &str) -> (String, usize, usize, String) {
        let e = parse_str(text).unwrap_err();
        let loc = e.location.expect("a location");
        (e.message, loc.line, loc.column, e.hint.expect("a hint"))
    }

    #[test]
    fn unknown_key_is_an_error_at_the_key_with_the_closest_allowed_one() {
        let (message, line, column, hint) = refused(&format!("{STEP}timeuot = \"3s\"\n"));
        assert_eq!(message, "unknown key `timeuot` in `[[step]]`; did you mean `timeout`?");
        assert_eq!((line, column), (6, 1));
        assert_eq!(
            hint,
            "the keys allowed in `[[step]]` are `id`, `uses`, `sha256`, `description`, `timeout`, `expected`, \
             `memory`, `max_received`, `with`, `grants`, `on_failure`, `critical`, `always`, `retries`"
        );
    }

    #[test]
    fn unknown_key_with_nothing_close_lists_the_allowed_keys_only() {
        let (message, line, column, hint) = refused(&format!("{STEP}[step.grants]\nfilesystem = []\n"));
        assert_eq!(message, "unknown key `filesystem` in `[step.grants]`");
        assert_eq!((line, column), (7, 1));
        assert_eq!(hint, "the keys allowed in `[step.grants]` are `dirs`, `env`, `net`, `commands`");
    }

    #[test]
    fn unknown_keys_are_found_in_every_table_however_it_is_written() {
        let cases = [
            ("on_falure = \"abort\"\n", "unknown key `on_falure` at the top level; did you mean `on_failure`?", (3, 1)),
            (
                "[[step]]\nid = \"a\"\nuses = \"p@1.0.0\"\nretries = { attempts = 2, intervall = \"1s\" }\n",
                "unknown key `intervall` in `[step.retries]`; did you mean `interval`?",
                (6, 27),
            ),
            (
                "[[step]]\nid = \"a\"\nuses = \"p@1.0.0\"\ngrants.dirz = []\n",
                "unknown key `dirz` in `[step.grants]`; did you mean `dirs`?",
                (6, 8),
            ),
            (
                "[[step]]\nid = \"a\"\nuses = \"p@1.0.0\"\ngrants = { dirs = [{ host = \"/a\", guest = \"/b\", modes = \"rw\" }] }\n",
                "unknown key `modes` in `[[step.grants.dirs]]`; did you mean `mode`?",
                (6, 49),
            ),
            (
                "[[step]]\nid = \"a\"\nuses = \"p@1.0.0\"\n[[step]]\nid = \"b\"\n",
                "missing key `uses` in `[[step]]`",
                (6, 1),
            ),
            (
                "[[step]]\nid = \"a\"\nuse = \"p@1.0.0\"\n",
                "unknown key `use` in `[[step]]`; did you mean `uses`?",
                (5, 1),
            ),
        ];
        for (body, expected, at) in cases {
            let text = format!("version = 1\nname = \"x\"\n{body}");
            let (message, line, column, _) = refused(&text);
            assert_eq!((message.as_str(), (line, column)), (expected, at), "{text}");
        }
    }

    #[test]
    fn the_free_form_tables_take_any_key() {
        let p = parse_str(
            "version = 1\nname = \"x\"\n[vars]\nanything = \"1\"\n[[step]]\nid = \"a\"\nuses = \"p@1.0.0\"\n\
             [step.with]\ntimeuot = 3\nnested = { whatever = true }\n",
        )
        .unwrap();
        assert!(p.runbook.steps[0].with.as_ref().unwrap().get_ref().contains_key("timeuot"));
    }

    #[test]
    fn missing_key_is_an_error_at_its_table_with_what_the_table_needs() {
        let (message, line, column, hint) = refused("version = 1\nname = \"x\"\n\n[[step]]\nid = \"a\"\n");
        assert_eq!(message, "missing key `uses` in `[[step]]`");
        assert_eq!((line, column), (4, 1));
        assert_eq!(hint, "every step needs `id` and `uses`");
        let (message, _, _, hint) = refused(&format!("{STEP}retries = {{ interval = \"1s\" }}\n"));
        assert_eq!(message, "missing key `attempts` in `[step.retries]`");
        assert_eq!(hint, "`retries` needs `attempts` (every try, the first included)");
        let (message, _, _, hint) = refused("name = \"x\"\n");
        assert_eq!(message, "missing key `version` at the top level");
        assert_eq!(hint, "every runbook needs `version = 1` and `name`");
    }

    #[test]
    fn a_runbook_with_only_the_required_keys_of_every_table_parses() {
        parse_str(&format!(
            "{STEP}retries = {{ attempts = 2 }}\n[[step.grants.dirs]]\nhost = \"/a\"\nguest = \"/b\"\n"
        ))
        .unwrap();
    }

    #[test]
    fn other_shape_errors_keep_the_parsers_words_and_a_general_hint() {
        let (message, line, column, hint) = refused(&format!("{STEP}timeout = 30\n"));
        assert!(message.starts_with("invalid type: integer `30`, expected a string"), "{message}");
        assert_eq!((line, column), (6, 11));
        assert_eq!(hint, "see the runbook reference in the README");
    }

    #[test]
    fn failure_policy_keys_parse() {
        let p = parse_str(
            "version = 1\nname = \"x\"\non_failure = \"abort\"\n[[step]]\nid = \"a\"\nuses = \"p@1.0.0\"\n\
             critical = false\nalways = true\non_failure = \"continue\"\nretries = { attempts = 3, interval = \"2s\", backoff = 1 }\n",
        )
        .unwrap();
        assert_eq!(p.runbook.on_failure.unwrap().get_ref(), "abort");
        let step = &p.runbook.steps[0];
        assert!(!*step.critical.as_ref().unwrap().get_ref());
        assert!(*step.always.as_ref().unwrap().get_ref());
        let retries = step.retries.as_ref().unwrap().get_ref();
        assert_eq!(*retries.attempts.get_ref(), 3);
        assert_eq!(*retries.backoff.as_ref().unwrap().get_ref(), 1.0);
    }

    #[test]
    fn other_versions_are_refused() {
        let e = parse_str("version = 2\nname = \"x\"\n").unwrap_err();
        assert!(e.message.contains("unsupported runbook version `2`"));
        assert_eq!(e.location.unwrap().line, 1);
    }
}
