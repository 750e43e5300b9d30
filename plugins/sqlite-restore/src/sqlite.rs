//! SQLite itself, compiled into the component: open a file without changing
//! it, run the configured check, and evaluate `expect`.
//!
//! Every open is read-only with `immutable=1`. Under WASI that is not only
//! the safe choice but the only one that works everywhere: during `plan` and
//! `verify` every directory is mounted read-only, and a plain read-only open
//! still wants locks and may create `-journal`/`-shm` files (it fails there
//! with "access permission denied"); WASI has neither file locks nor shared
//! memory, so a WAL database cannot be opened read-write at all. An immutable
//! open takes no locks, creates nothing and ignores any `-wal`: which is why
//! the step refuses (or sets aside) every `-wal` and `-journal` instead of
//! reading through them.

#![forbid(unsafe_code)]

use rusqlite::limits::Limit;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{Check, Expectation};

/// The page cache for checks: large enough that an index check rarely
/// re-reads a page, small enough for the default 128 MiB step memory.
const CACHE_KIB: i64 = 16 * 1024;

/// At most this many problems are collected from a failing check.
const MAX_PROBLEMS: u32 = 10;

/// Opens `path` read-only and immutable (see the module docs), with ATTACH
/// disabled so an `expect` query cannot reach another file.
pub fn open(path: &str) -> Result<Connection, String> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(uri(path), flags).map_err(|e| e.to_string())?;
    conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0).map_err(|e| e.to_string())?;
    conn.pragma_update(None, "cache_size", -CACHE_KIB).map_err(|e| e.to_string())?;
    Ok(conn)
}

/// `file:` URI for an absolute path: `%`, `?` and `#` would otherwise be read
/// as escapes, the query or a fragment.
pub fn uri(path: &str) -> String {
    let mut out = String::from("file:");
    for c in path.chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3f"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out.push_str("?immutable=1");
    out
}

/// Runs `PRAGMA integrity_check` or `quick_check`; the error lists what
/// SQLite found (at most [`MAX_PROBLEMS`] lines) and completes a sentence
/// that starts with the file's name ("`/b/app.db` fails integrity_check: …").
pub fn check(conn: &Connection, check: Check) -> Result<(), String> {
    let sql = format!("PRAGMA {}({MAX_PROBLEMS})", check.pragma());
    let rows: Result<Vec<String>, rusqlite::Error> =
        conn.prepare(&sql).and_then(|mut stmt| stmt.query_map([], |row| row.get::<_, String>(0))?.collect());
    match rows {
        Ok(rows) if rows.len() == 1 && rows[0] == "ok" => Ok(()),
        Ok(rows) if rows.is_empty() => Err(format!("fails {}: it returned nothing", check.pragma())),
        Ok(rows) => Err(format!("fails {}: {}", check.pragma(), rows.join("; "))),
        Err(e) => Err(format!("fails {}: {e}", check.pragma())),
    }
}

/// Prepares every `expect` query without running it, refusing any that could
/// change something (`sqlite3_stmt_readonly`) or that returns no column.
/// Reports every problem at once.
pub fn prepare_all(conn: &Connection, expect: &[Expectation]) -> Result<(), String> {
    let problems: Vec<String> = expect
        .iter()
        .enumerate()
        .filter_map(|(i, e)| prepare(conn, &e.sql).err().map(|m| format!("`expect[{i}]` `{}` {m}", e.sql)))
        .collect();
    if problems.is_empty() { Ok(()) } else { Err(problems.join("; ")) }
}

fn prepare<'c>(conn: &'c Connection, sql: &str) -> Result<rusqlite::Statement<'c>, String> {
    let stmt = conn.prepare(sql).map_err(|e| match e {
        rusqlite::Error::MultipleStatement => "holds more than one statement; give one query per entry".to_owned(),
        e => format!("cannot be prepared: {e}"),
    })?;
    if !stmt.readonly() {
        return Err("is not a read-only statement; `expect` only reads".to_owned());
    }
    if stmt.column_count() == 0 {
        return Err("returns no value; `expect` needs a query such as `SELECT count(*) FROM t`".to_owned());
    }
    Ok(stmt)
}

/// What one `expect` query returned and whether that was expected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpectResult {
    pub sql: String,
    /// The first column of the first row (`null` when there was no row).
    pub value: Value,
    /// The expectation in words (`≥ 1`).
    pub expected: String,
    pub ok: bool,
}

/// Runs every `expect` query; a query that fails to run counts as not met.
pub fn evaluate(conn: &Connection, expect: &[Expectation]) -> Vec<ExpectResult> {
    expect
        .iter()
        .map(|e| {
            let (value, ok) = match first_value(conn, &e.sql) {
                Ok(v) => {
                    let ok = satisfies(&v, e);
                    (v, ok)
                }
                Err(m) => (Value::String(format!("error: {m}")), false),
            };
            ExpectResult { sql: e.sql.clone(), value, expected: e.describe(), ok }
        })
        .collect()
}

/// The results that missed their expectation, each in words:
/// "`SELECT count(*) FROM t` returned 3 (expected ≥ 30)".
pub fn unmet(results: &[ExpectResult]) -> Vec<String> {
    results
        .iter()
        .filter(|r| !r.ok)
        .map(|r| format!("`{}` returned {} (expected {})", r.sql, r.value, r.expected))
        .collect()
}

fn first_value(conn: &Connection, sql: &str) -> Result<Value, String> {
    let mut stmt = prepare(conn, sql)?;
    let mut rows = stmt.query([]).map_err(|e| e.to_string())?;
    let Some(row) = rows.next().map_err(|e| e.to_string())? else {
        return Ok(Value::Null);
    };
    Ok(match row.get_ref(0).map_err(|e| e.to_string())? {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::String(format!("<blob of {} bytes>", b.len())),
    })
}

/// Whether `value` meets every bound of `e`. Numbers compare by value (`1`
/// equals `1.0`); a boolean equals SQLite's `1` or `0`; `min`/`max` need a number.
pub fn satisfies(value: &Value, e: &Expectation) -> bool {
    let number = match value {
        Value::Number(n) => n.as_f64(),
        _ => None,
    };
    let equals_ok = match (&e.equals, value) {
        (None, _) => true,
        (Some(Value::Number(want)), Value::Number(got)) => match (want.as_i64(), got.as_i64()) {
            (Some(a), Some(b)) => a == b,
            _ => want.as_f64() == got.as_f64(),
        },
        (Some(Value::Bool(want)), Value::Number(got)) => got.as_i64() == Some(i64::from(*want)),
        (Some(want), got) => want == got,
    };
    let min_ok = e.min.is_none_or(|m| number.is_some_and(|n| n >= m));
    let max_ok = e.max.is_none_or(|m| number.is_some_and(|n| n <= m));
    equals_ok && min_ok && max_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn exp(min: Option<f64>, max: Option<f64>, equals: Option<Value>) -> Expectation {
        Expectation { sql: "SELECT 1".into(), min, max, equals }
    }

    #[test]
    fn uris_escape_what_sqlite_would_misread() {
        assert_eq!(uri("/data/app.db"), "file:/data/app.db?immutable=1");
        assert_eq!(uri("/d/50%?#.db"), "file:/d/50%25%3f%23.db?immutable=1");
    }

    #[test]
    fn bounds_and_equality() {
        assert!(satisfies(&json!(3), &exp(Some(1.0), None, None)));
        assert!(!satisfies(&json!(0), &exp(Some(1.0), None, None)));
        assert!(satisfies(&json!(10), &exp(Some(1.0), Some(10.0), None)));
        assert!(!satisfies(&json!(11), &exp(None, Some(10.0), None)));
        assert!(!satisfies(&Value::Null, &exp(Some(0.0), None, None)), "no row meets a minimum");
        assert!(!satisfies(&json!("5"), &exp(Some(1.0), None, None)), "text is not a number");
        assert!(satisfies(&json!(1), &exp(None, None, Some(json!(1.0)))));
        assert!(satisfies(&json!(2.5), &exp(None, None, Some(json!(2.5)))));
        assert!(!satisfies(&json!(2), &exp(None, None, Some(json!(3)))));
        assert!(satisfies(&json!("ok"), &exp(None, None, Some(json!("ok")))));
        assert!(!satisfies(&json!("OK"), &exp(None, None, Some(json!("ok")))));
        assert!(satisfies(&json!(1), &exp(None, None, Some(json!(true)))));
        assert!(satisfies(&json!(0), &exp(None, None, Some(json!(false)))));
        assert!(!satisfies(&json!(2), &exp(None, None, Some(json!(true)))));
    }

    #[test]
    fn only_single_read_only_queries_are_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let rw = Connection::open(&path).unwrap();
        rw.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2);").unwrap();
        drop(rw);
        let conn = open(path.to_str().unwrap()).unwrap();
        let e = |sql: &str| Expectation { sql: sql.into(), min: Some(1.0), max: None, equals: None };
        assert_eq!(prepare_all(&conn, &[e("SELECT count(*) FROM t")]), Ok(()));
        for (sql, says) in [
            ("DELETE FROM t", "not a read-only statement"),
            ("INSERT INTO t VALUES (3)", "not a read-only statement"),
            ("DROP TABLE t", "not a read-only statement"),
            ("PRAGMA user_version = 3", "not a read-only statement"),
            ("VACUUM INTO '/tmp/x.db'", "not a read-only statement"),
            ("SELECT 1; DELETE FROM t", "more than one statement"),
            ("BEGIN", "returns no value"),
            ("ATTACH 'x.db' AS x", "returns no value"),
            ("SELECT * FROM missing", "no such table"),
        ] {
            let err = prepare_all(&conn, &[e(sql)]).unwrap_err();
            assert!(err.contains(says), "`{sql}`: {err}");
        }
        let results = evaluate(&conn, &[e("SELECT count(*) FROM t"), e("SELECT x FROM t WHERE x > 5")]);
        assert_eq!(results[0].value, json!(2));
        assert!(results[0].ok);
        assert_eq!(results[1].value, Value::Null);
        assert!(!results[1].ok);
        assert_eq!(check(&conn, Check::Full), Ok(()));
        assert_eq!(check(&conn, Check::Quick), Ok(()));
    }
}
