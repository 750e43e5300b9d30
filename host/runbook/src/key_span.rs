//! Where a key inside a step's `with` table is written in the runbook.
//!
//! A plugin that refuses its config names the offending key with a JSON
//! pointer into the `with` table ([`crate::problems`]). The runbook's typed
//! structs keep a span for the `with` table as a whole only (its values are
//! plain TOML), so the key is found by reading the runbook's text again into
//! TOML's spanned document tree: every key and value there knows its bytes,
//! whichever way the table was written (a `[step.with]` section, an inline
//! table, dotted keys, `[[step.with.checks]]` arrays of tables).

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::diagnostic::Location;
use crate::problems::Pointer;
use crate::runbook::Parsed;

impl Parsed {
    /// The span of what `pointer` names in the `with` table of the
    /// `step`-th `[[step]]` (0-based): the key itself for a table entry,
    /// the value for an array element. `None` when the pointer leads
    /// nowhere (a key the runbook does not have, an index past the end, a
    /// token into a string) or names the whole table: the caller points at
    /// the `with` table instead.
    pub fn span_of_with_key(&self, step: usize, pointer: &Pointer) -> Option<Range<usize>> {
        let (first, rest) = pointer.tokens().split_first()?;
        let document = DeTable::parse(&self.source.text).ok()?;
        let with = with_table(&document, step)?;
        let found = rest.iter().try_fold(within(with, first)?, |(_, value), token| within(value, token));
        found.map(|(span, _)| span)
    }
}

impl Parsed {
    /// Where every key (and array element) of the `step`-th `with` table
    /// is, as [`Parsed::span_of_with_key`] would find each one: kept with
    /// the plan, so that a problem a plugin reports at run time (when the
    /// runbook's text is no longer at hand) is shown at its key too. Empty
    /// when the step has no `with` table.
    pub fn with_keys(&self, step: usize) -> Vec<(Pointer, Location)> {
        let mut out = Vec::new();
        let Ok(document) = DeTable::parse(&self.source.text) else { return out };
        if let Some(with) = with_table(&document, step) {
            self.every_key(&Pointer::root(), with, &mut out);
        }
        out
    }

    fn every_key(&self, at: &Pointer, value: &Spanned<DeValue<'_>>, out: &mut Vec<(Pointer, Location)>) {
        match value.get_ref() {
            DeValue::Table(table) => {
                for (key, value) in table.iter() {
                    let here = at.clone().key(key.get_ref().as_ref());
                    out.push((here.clone(), self.source.locate(&key.span())));
                    self.every_key(&here, value, out);
                }
            }
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let here = at.clone().index(i);
                    out.push((here.clone(), self.source.locate(&item.span())));
                    self.every_key(&here, item, out);
                }
            }
            _ => {}
        }
    }
}

/// The `with` value of the `step`-th `[[step]]` (0-based) of `document`.
fn with_table<'a, 'i>(document: &'a Spanned<DeTable<'i>>, step: usize) -> Option<&'a Spanned<DeValue<'i>>> {
    let steps = document.get_ref().get("step")?.get_ref().as_array()?;
    steps.get(step)?.get_ref().as_table()?.get("with")
}

/// One step down from `value`: the key `token` of a table (its key's span
/// and its value), or the element `token` of an array.
fn within<'a, 'i>(value: &'a Spanned<DeValue<'i>>, token: &str) -> Option<(Range<usize>, &'a Spanned<DeValue<'i>>)> {
    match value.get_ref() {
        DeValue::Table(table) => table.get_key_value(token).map(|(key, value)| (key.span(), value)),
        DeValue::Array(items) => {
            let index: usize = token.parse().ok().filter(|_| token == "0" || !token.starts_with('0'))?;
            let item = items.get(index)?;
            Some((item.span(), item))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::diagnostic::SourceFile;
    use crate::runbook::parse;

    use super::*;

    /// The line, column and text at what `pointer` names in step `step`.
    fn at(text: &str, step: usize, pointer: &str) -> Option<(usize, usize, String)> {
        let parsed = parse(SourceFile::new("r.toml", text)).expect("parses");
        let span = parsed.span_of_with_key(step, &Pointer::parse(pointer).expect("a pointer"))?;
        let (line, column) = parsed.source.line_col(span.start);
        Some((line, column, text[span].to_string()))
    }

    const HEAD: &str = "version = 1\nname = \"x\"\n";

    #[test]
    fn a_key_of_a_with_section_is_found_on_its_own_line() {
        let text = format!(
            "{HEAD}[[step]]\nid = \"a\"\nuses = \"p@1.0.0\"\n[step.with]\nfile = \"/app/.env\"\n# a comment\n\ncreate_missing = true\n"
        );
        assert_eq!(at(&text, 0, "/create_missing"), Some((10, 1, "create_missing".into())));
        assert_eq!(at(&text, 0, "/file"), Some((7, 1, "file".into())));
    }

    #[test]
    fn nested_tables_and_sections_are_followed() {
        let text = format!(
            "{HEAD}[[step]]\nid = \"a\"\nuses = \"p@1.0.0\"\n[step.with]\nurl = \"x\"\n[step.with.retry]\nattempts = 3\n[step.with.retry.inner]\ndeep = \"y\"\n"
        );
        assert_eq!(at(&text, 0, "/retry/attempts"), Some((9, 1, "attempts".into())));
        assert_eq!(at(&text, 0, "/retry/inner/deep"), Some((11, 1, "deep".into())));
    }

    #[test]
    fn array_elements_point_at_the_value() {
        let text = format!(
            "{HEAD}[[step]]\nid = \"a\"\nuses = \"p@1.0.0\"\n[step.with]\nunset = [\n  \"A\",\n  \"B\",\n  7,\n]\n"
        );
        assert_eq!(at(&text, 0, "/unset/2"), Some((10, 3, "7".into())));
        assert_eq!(at(&text, 0, "/unset/3"), None, "past the end");
        assert_eq!(at(&text, 0, "/unset/01"), None, "not an index");
    }

    #[test]
    fn arrays_of_tables_are_followed() {
        let text = format!(
            "{HEAD}[[step]]\nid = \"a\"\nuses = \"p@1.0.0\"\n[[step.with.checks]]\nurl = \"a\"\n[[step.with.checks]]\nurl = \"b\"\ntimout = \"1s\"\n"
        );
        assert_eq!(at(&text, 0, "/checks/1/timout"), Some((10, 1, "timout".into())));
        assert_eq!(at(&text, 0, "/checks/0/url"), Some((7, 1, "url".into())));
    }

    #[test]
    fn inline_tables_are_followed() {
        let text = format!(
            "{HEAD}[[step]]\nid = \"a\"\nuses = \"p@1.0.0\"\nwith = {{ file = \"/app/.env\", sett = {{ A = \"1\" }} }}\n"
        );
        assert_eq!(at(&text, 0, "/sett"), Some((6, 30, "sett".into())));
        assert_eq!(at(&text, 0, "/sett/A"), Some((6, 39, "A".into())));
    }

    #[test]
    fn dotted_keys_are_followed() {
        let text = format!(
            "{HEAD}[[step]]\nid = \"a\"\nuses = \"p@1.0.0\"\n[step.with]\nset.A = \"1\"\nset.\"B C\" = 2\nexpect.status = 200\n"
        );
        assert_eq!(at(&text, 0, "/set/B C"), Some((8, 5, "\"B C\"".into())));
        assert_eq!(at(&text, 0, "/expect/status"), Some((9, 8, "status".into())));
    }

    #[test]
    fn the_right_step_is_searched() {
        let text = format!(
            "{HEAD}[[step]]\nid = \"a\"\nuses = \"p@1.0.0\"\nwith = {{ k = 1 }}\n[[step]]\nid = \"b\"\nuses = \"p@1.0.0\"\nwith = {{ j = 2, k = 3 }}\n"
        );
        assert_eq!(at(&text, 1, "/k"), Some((10, 17, "k".into())));
        assert_eq!(at(&text, 0, "/j"), None);
        assert_eq!(at(&text, 2, "/k"), None, "no third step");
    }

    #[test]
    fn every_key_is_listed_where_the_pointer_would_find_it() {
        let text = format!(
            "{HEAD}[[step]]\nid = \"a\"\nuses = \"p@1.0.0\"\nwith = {{ k = 1 }}\n[[step]]\nid = \"b\"\nuses = \"p@1.0.0\"\n\
             [step.with]\nfile = \"x\"\nunset = [\"A\", \"B\"]\n[[step.with.checks]]\nurl = \"u\"\n"
        );
        let parsed = parse(SourceFile::new("r.toml", text.as_str())).expect("parses");
        let keys: Vec<(String, usize, usize)> =
            parsed.with_keys(1).into_iter().map(|(p, l)| (p.to_string(), l.line, l.column)).collect();
        assert_eq!(
            keys,
            [
                ("/checks".to_string(), 13, 13),
                ("/checks/0".into(), 13, 1),
                ("/checks/0/url".into(), 14, 1),
                ("/file".into(), 11, 1),
                ("/unset".into(), 12, 1),
                ("/unset/0".into(), 12, 10),
                ("/unset/1".into(), 12, 15),
            ]
        );
        for (pointer, line, column) in &keys {
            let found = at(&text, 1, pointer).map(|(l, c, _)| (l, c));
            assert_eq!(found, Some((*line, *column)), "{pointer}");
        }
        assert_eq!(parsed.with_keys(0).len(), 1);
        assert!(parsed.with_keys(2).is_empty());
    }

    #[test]
    fn a_pointer_that_leads_nowhere_is_none() {
        let text = format!("{HEAD}[[step]]\nid = \"a\"\nuses = \"p@1.0.0\"\n[step.with]\nurl = \"x\"\n");
        assert_eq!(at(&text, 0, "/nope"), None);
        assert_eq!(at(&text, 0, "/url/0"), None, "into a string");
        assert_eq!(at(&text, 0, ""), None, "the whole table");
        let without = format!("{HEAD}[[step]]\nid = \"a\"\nuses = \"p@1.0.0\"\n");
        assert_eq!(at(&without, 0, "/url"), None, "no `with` at all");
    }
}
