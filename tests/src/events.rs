//! The event stream of `backout run|undo|resume --output json`: JSON Lines,
//! one event per line, the run's report last. Helpers to read it, and the
//! schema (`docs/events.schema.json`) every line is checked against.

use std::path::Path;

use serde_json::Value;

/// Every line of `stdout`, parsed; panics naming the line that is not JSON.
pub fn lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("line {} of the event stream is not JSON ({e}): {line}\n{stdout}", i + 1))
        })
        .collect()
}

/// The `event` of every line, in order.
pub fn kinds(stdout: &str) -> Vec<String> {
    lines(stdout).iter().map(|l| l["event"].as_str().unwrap_or("?").to_string()).collect()
}

/// What a script reads from the stream: `{"plan": …, "run": …, "exit_code": …}`
/// from the `plan` event (null without one) and the last line, which must
/// be the `report`.
pub fn report(stdout: &str) -> Value {
    try_report(stdout).unwrap_or_else(|| panic!("no event stream ending with a `report` line:\n{stdout}"))
}

/// [`report`], or `None` when `stdout` is not an event stream that ends with a report.
pub fn try_report(stdout: &str) -> Option<Value> {
    let lines: Vec<Value> = stdout.lines().map(serde_json::from_str).collect::<Result<_, _>>().ok()?;
    let last = lines.last().filter(|l| l["event"] == "report")?;
    let plan = lines.iter().find(|l| l["event"] == "plan").map_or(Value::Null, |l| l["plan"].clone());
    Some(serde_json::json!({ "plan": plan, "run": last["run"], "exit_code": last["exit_code"] }))
}

/// `docs/events.schema.json`, compiled (JSON Schema draft 2020-12).
pub struct Schema {
    schemas: boon::Schemas,
    index: boon::SchemaIndex,
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schema").finish_non_exhaustive()
    }
}

impl Schema {
    /// The schema in the repository.
    pub fn load() -> Self {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/events.schema.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let value: Value = serde_json::from_str(&text).expect("the schema is JSON");
        let mut compiler = boon::Compiler::new();
        compiler.set_default_draft(boon::Draft::V2020_12);
        let url = "file:///backout/docs/events.schema.json";
        compiler.add_resource(url, value).expect("add the schema");
        let mut schemas = boon::Schemas::new();
        let index =
            compiler.compile(url, &mut schemas).unwrap_or_else(|e| panic!("the schema does not compile: {e:#}"));
        Self { schemas, index }
    }

    /// Checks one line; `Err` says where it breaks the schema.
    pub fn check(&self, line: &Value) -> Result<(), String> {
        self.schemas.validate(line, self.index).map_err(|e| format!("{e:#}"))
    }

    /// Checks every line of a stream, panicking with each line that fails.
    pub fn check_stream(&self, stdout: &str) {
        let failures: Vec<String> =
            lines(stdout).iter().filter_map(|line| self.check(line).err().map(|e| format!("{line}\n  {e}"))).collect();
        assert!(failures.is_empty(), "event lines that break docs/events.schema.json:\n{}", failures.join("\n\n"));
    }
}
