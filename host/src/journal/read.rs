//! Reading a journal back: every line a typed [`Record`], or an error that
//! says which line is wrong and why.
//!
//! One thing is tolerated: a last line without its newline that does not
//! parse. The process died while writing it (SIGKILL, power loss); it was
//! never made durable, so what it announced never happened. A last line
//! without a newline that does parse is kept: it was written completely.

use std::path::{Path, PathBuf};

use super::event::{Event, FORMAT, Record};

/// A journal's records, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Contents {
    pub records: Vec<Record>,
    /// Bytes of a torn last line that were dropped (0 when none).
    pub torn_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("failed to read journal `{}`", .path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("journal `{}` is empty", .path.display())]
    Empty { path: PathBuf },
    #[error("journal `{}` line {line} is not a journal record: {reason}", .path.display())]
    Malformed { path: PathBuf, line: usize, reason: String },
    #[error(
        "journal `{}` line {line} has format {found}; this backout reads format {FORMAT}",
        .path.display()
    )]
    Format { path: PathBuf, line: usize, found: String },
    #[error("journal `{}` does not start with `run-started`", .path.display())]
    NoStart { path: PathBuf },
}

/// Reads and checks every record of the journal at `path`.
pub fn read(path: &Path) -> Result<Contents, ReadError> {
    let bytes = std::fs::read(path).map_err(|source| ReadError::Io { path: path.into(), source })?;
    parse(path, &bytes)
}

/// The length of `bytes` up to and including its last complete line; a
/// last line without a newline counts as complete only if it parses.
pub(super) fn complete_length(bytes: &[u8]) -> u64 {
    let through_newline = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let tail = &bytes[through_newline..];
    if !tail.is_empty() && serde_json::from_slice::<Record>(tail).is_ok() {
        return bytes.len() as u64;
    }
    through_newline as u64
}

fn parse(path: &Path, bytes: &[u8]) -> Result<Contents, ReadError> {
    let complete = complete_length(bytes) as usize;
    let torn_bytes = (bytes.len() - complete) as u64;
    let malformed = |line: usize, reason: String| ReadError::Malformed { path: path.into(), line, reason };
    let body = &bytes[..complete];
    let body = body.strip_suffix(b"\n").unwrap_or(body);
    if body.is_empty() {
        return Err(ReadError::Empty { path: path.into() });
    }
    let mut records = Vec::new();
    for (i, line) in body.split(|&b| b == b'\n').enumerate() {
        let number = i + 1;
        if line.is_empty() {
            return Err(malformed(number, "the line is empty".into()));
        }
        let value: serde_json::Value = serde_json::from_slice(line).map_err(|e| malformed(number, e.to_string()))?;
        match value.get("format") {
            Some(f) if f.as_u64() == Some(u64::from(FORMAT)) => {}
            Some(f) => return Err(ReadError::Format { path: path.into(), line: number, found: f.to_string() }),
            None => {
                let found = value.get("version").map_or_else(|| "none".to_string(), |v| format!("version {v}"));
                return Err(ReadError::Format { path: path.into(), line: number, found });
            }
        }
        let record: Record = serde_json::from_value(value).map_err(|e| malformed(number, e.to_string()))?;
        records.push(record);
    }
    match records.first() {
        None => Err(ReadError::Empty { path: path.into() }),
        Some(Record { event: Event::RunStarted(_), .. }) => Ok(Contents { records, torn_bytes }),
        Some(_) => Err(ReadError::NoStart { path: path.into() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::event::RunState;

    fn record(event: Event) -> String {
        serde_json::to_string(&Record { format: FORMAT, time: "2026-12-04T21:12:28Z".into(), event }).unwrap()
    }

    fn start() -> String {
        // The smallest run-started a test needs, built as JSON so this test
        // does not depend on every field's constructor.
        let json = serde_json::json!({
            "format": FORMAT, "time": "2026-12-04T21:12:28Z", "event": "run-started",
            "run_id": "r", "runbook": {"name": "n", "path": "/r.toml", "sha256": "sha256:00"},
            "vars": {}, "overrides": [], "on_failure": "undo", "steps": [],
            "session": {"command": "run", "operator": "o", "host": "h", "pid": 1, "process_start": null, "backout": "0"}
        });
        json.to_string()
    }

    fn finished() -> String {
        record(Event::RunFinished { state: RunState::Failed, failed_step: Some("a".into()), elapsed_ms: 1 })
    }

    #[test]
    fn complete_lines_are_read_in_order() {
        let text = format!("{}\n{}\n", start(), finished());
        let contents = parse(Path::new("j"), text.as_bytes()).unwrap();
        assert_eq!(contents.records.len(), 2);
        assert_eq!(contents.torn_bytes, 0);
        assert!(matches!(contents.records[1].event, Event::RunFinished { state: RunState::Failed, .. }));
    }

    #[test]
    fn a_torn_last_line_is_dropped() {
        let full = finished();
        let text = format!("{}\n{}", start(), &full[..full.len() / 2]);
        let contents = parse(Path::new("j"), text.as_bytes()).unwrap();
        assert_eq!(contents.records.len(), 1);
        assert_eq!(contents.torn_bytes as usize, full.len() / 2);
    }

    #[test]
    fn a_complete_last_line_without_newline_is_kept() {
        let text = format!("{}\n{}", start(), finished());
        assert_eq!(parse(Path::new("j"), text.as_bytes()).unwrap().records.len(), 2);
    }

    #[test]
    fn a_malformed_line_before_the_last_is_an_error() {
        let text = format!("{}\n{{\"format\":2,\"ti\n{}\n", start(), finished());
        let e = parse(Path::new("j"), text.as_bytes()).unwrap_err();
        assert!(matches!(e, ReadError::Malformed { line: 2, .. }), "{e}");
        let text = format!("{}\n\n{}\n", start(), finished());
        assert!(matches!(parse(Path::new("j"), text.as_bytes()).unwrap_err(), ReadError::Malformed { line: 2, .. }));
    }

    #[test]
    fn unknown_events_and_other_formats_are_errors() {
        let text = format!("{}\n{}\n", start(), r#"{"format":2,"time":"t","event":"step-exploded"}"#);
        assert!(matches!(parse(Path::new("j"), text.as_bytes()).unwrap_err(), ReadError::Malformed { line: 2, .. }));
        let old = r#"{"version":1,"time":"t","event":"run-started","data":{}}"#;
        let e = parse(Path::new("j"), format!("{old}\n").as_bytes()).unwrap_err();
        assert!(e.to_string().contains("has format version 1"), "{e}");
    }

    #[test]
    fn a_journal_must_start_with_run_started() {
        assert!(matches!(parse(Path::new("j"), b"").unwrap_err(), ReadError::Empty { .. }));
        let text = format!("{}\n", finished());
        assert!(matches!(parse(Path::new("j"), text.as_bytes()).unwrap_err(), ReadError::NoStart { .. }));
    }
}
