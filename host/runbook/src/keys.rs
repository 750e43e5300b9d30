//! The keys each table of a runbook allows and needs, checked by name
//! before serde turns the document into structs.
//!
//! serde's `deny_unknown_fields` refuses a misspelt key too, but only in the
//! TOML crate's words, and a hint chosen from those words breaks when they
//! change. This check walks TOML's spanned document tree instead, so each
//! problem is a [`KeyProblem`] that knows the key, the table and the keys
//! allowed there: the message, the "did you mean" and the hint are built
//! from those values. The allowed keys are the very list serde's derive
//! gives each struct ([`fields_of`]), so the two cannot drift apart; the
//! structs keep `deny_unknown_fields` behind this as a second line.
//!
//! Free-form tables (`vars`, a step's `with`) are not looked into: their keys
//! are the runbook's and the plugin's to choose. A value of the wrong shape
//! (`step = "x"`) is left to serde, which says what it expected.

use std::fmt;
use std::ops::Range;

use serde::Deserialize;
use serde::de::{self, Visitor};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::runbook::{DirDef, GrantsDef, RetriesDef, Runbook, StepDef};

/// A table of the runbook whose keys are fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Runbook,
    Step,
    Retries,
    Grants,
    Dir,
}

impl Table {
    /// Every table whose keys are checked.
    pub const ALL: [Table; 5] = [Table::Runbook, Table::Step, Table::Retries, Table::Grants, Table::Dir];

    /// Where the table is, in words that complete "unknown key `x` …": its
    /// TOML header, however the runbook happens to write it (a section, an
    /// inline table, dotted keys).
    pub fn place(self) -> &'static str {
        match self {
            Table::Runbook => "at the top level",
            Table::Step => "in `[[step]]`",
            Table::Retries => "in `[step.retries]`",
            Table::Grants => "in `[step.grants]`",
            Table::Dir => "in `[[step.grants.dirs]]`",
        }
    }

    /// The keys serde accepts in this table, in the order the struct
    /// declares them (which is the README's order).
    pub fn allowed(self) -> &'static [&'static str] {
        match self {
            Table::Runbook => fields_of::<Runbook>(),
            Table::Step => fields_of::<StepDef>(),
            Table::Retries => fields_of::<RetriesDef>(),
            Table::Grants => fields_of::<GrantsDef>(),
            Table::Dir => fields_of::<DirDef>(),
        }
    }

    /// The keys without a default. A unit test proves a table with just
    /// these deserializes, so the list is never shorter than serde's.
    pub fn required(self) -> &'static [&'static str] {
        match self {
            Table::Runbook => &["version", "name"],
            Table::Step => &["id", "uses"],
            Table::Retries => &["attempts"],
            Table::Grants => &[],
            Table::Dir => &["host", "guest"],
        }
    }

    /// The hint under a missing key: what the table needs, and what for.
    fn needs(self) -> &'static str {
        match self {
            Table::Runbook => "every runbook needs `version = 1` and `name`",
            Table::Step => "every step needs `id` and `uses`",
            Table::Retries => "`retries` needs `attempts` (every try, the first included)",
            Table::Grants => "see the runbook reference in the README",
            Table::Dir => "every directory grant needs `host` (its path on this machine) and `guest` (the plugin's)",
        }
    }

    /// The table a key of this one holds, and whether it is an array of them.
    fn child(self, key: &str) -> Option<(Table, bool)> {
        match (self, key) {
            (Table::Runbook, "step") => Some((Table::Step, true)),
            (Table::Step, "grants") => Some((Table::Grants, false)),
            (Table::Step, "retries") => Some((Table::Retries, false)),
            (Table::Grants, "dirs") => Some((Table::Dir, true)),
            _ => None,
        }
    }
}

/// A key a table does not allow, or one it needs and lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyProblem {
    /// `key` is none of `table`'s keys; `span` is the key's.
    Unknown { key: String, table: Table, span: Range<usize> },
    /// `table` has no `key`, which has no default; `span` is the table's.
    Missing { key: &'static str, table: Table, span: Range<usize> },
}

impl KeyProblem {
    /// Where the diagnostic points: the unknown key itself, or the table
    /// that lacks one.
    pub fn span(&self) -> Range<usize> {
        match self {
            KeyProblem::Unknown { span, .. } | KeyProblem::Missing { span, .. } => span.clone(),
        }
    }

    /// The keys allowed there for an unknown key; what the table needs for
    /// a missing one.
    pub fn hint(&self) -> String {
        match self {
            KeyProblem::Unknown { table, .. } => {
                format!(
                    "the keys allowed {} are {}",
                    table.place(),
                    backout_registry::text::backticked(table.allowed())
                )
            }
            KeyProblem::Missing { table, .. } => table.needs().to_owned(),
        }
    }
}

impl fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyProblem::Unknown { key, table, .. } => {
                write!(f, "unknown key `{}` {}", key.escape_debug(), table.place())?;
                match backout_registry::text::did_you_mean(key, table.allowed()) {
                    Some(suggestion) => write!(f, "; {suggestion}"),
                    None => Ok(()),
                }
            }
            KeyProblem::Missing { key, table, .. } => write!(f, "missing key `{key}` {}", table.place()),
        }
    }
}

/// The first problem with the keys of `document`: the first unknown key in
/// the file, else the first table (in the file) that lacks a key. Unknown
/// keys go first because a misspelt required key is both, and "did you
/// mean `uses`?" at the typo says more than "missing `uses`" at its table.
pub fn check(document: &Spanned<DeTable<'_>>) -> Option<KeyProblem> {
    let mut problems = Vec::new();
    check_table(Table::Runbook, document.get_ref(), document.span(), &mut problems);
    let first_of = |unknown: bool| {
        problems
            .iter()
            .filter(|p| matches!(p, KeyProblem::Unknown { .. }) == unknown)
            .min_by_key(|p| p.span().start)
            .cloned()
    };
    first_of(true).or_else(|| first_of(false))
}

fn check_table(table: Table, entries: &DeTable<'_>, span: Range<usize>, problems: &mut Vec<KeyProblem>) {
    let allowed = table.allowed();
    for (key, value) in entries {
        let name = key.get_ref().as_ref();
        if !allowed.contains(&name) {
            problems.push(KeyProblem::Unknown { key: name.to_owned(), table, span: key.span() });
            continue;
        }
        match (table.child(name), value.get_ref()) {
            (Some((child, false)), DeValue::Table(inner)) => check_table(child, inner, value.span(), problems),
            (Some((child, true)), DeValue::Array(items)) => {
                for item in items {
                    if let DeValue::Table(inner) = item.get_ref() {
                        check_table(child, inner, item.span(), problems);
                    }
                }
            }
            _ => {}
        }
    }
    for &key in table.required() {
        if !entries.keys().any(|k| k.get_ref().as_ref() == key) {
            problems.push(KeyProblem::Missing { key, table, span: span.clone() });
        }
    }
}

/// The field names `#[derive(Deserialize)]` gives `T`: what it passes to
/// `deserialize_struct`, caught by a deserializer that asks for nothing
/// else. Struct names and fields are `'static`, so nothing is leaked.
fn fields_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    struct Catch<'a>(&'a mut &'static [&'static str]);

    impl<'de> de::Deserializer<'de> for Catch<'_> {
        type Error = de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("only structs are introspected"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("introspected"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
            unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }

    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Catch(&mut fields));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allowed_keys_are_serdes_field_names() {
        assert_eq!(Table::Grants.allowed(), ["dirs", "env", "net", "commands"]);
        assert_eq!(Table::Dir.allowed(), ["host", "guest", "mode"]);
        assert!(Table::Runbook.allowed().contains(&"step"), "the renamed field: {:?}", Table::Runbook.allowed());
        assert!(Table::Step.allowed().contains(&"with"));
        for table in Table::ALL {
            for key in table.required() {
                assert!(table.allowed().contains(key), "{table:?} requires `{key}`, which it does not allow");
            }
        }
    }
}
