//! What a response must look like: the status spec and the assertions of a
//! check's `expect` table, how they read in a plan, and how a failure is
//! reported (the assertion, what was expected, what came back).

#![forbid(unsafe_code)]

use std::fmt;
use std::time::Duration;

use regex_lite::Regex;
use serde_json::Value;

use crate::jsonpath::JsonPath;

// ---------------------------------------------------------------------------
// Status
// ---------------------------------------------------------------------------

/// Accepted status codes: a union of single codes, ranges and classes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSpec {
    items: Vec<StatusItem>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StatusItem {
    Code(u16),
    /// `2xx`: the digit.
    Class(u16),
    Range(u16, u16),
}

impl StatusItem {
    fn contains(self, status: u16) -> bool {
        match self {
            Self::Code(c) => status == c,
            Self::Class(d) => status / 100 == d,
            Self::Range(lo, hi) => (lo..=hi).contains(&status),
        }
    }
}

impl fmt::Display for StatusItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Code(c) => write!(f, "{c}"),
            Self::Class(d) => write!(f, "{d}xx"),
            Self::Range(lo, hi) => write!(f, "{lo}-{hi}"),
        }
    }
}

impl Default for StatusSpec {
    /// 200-399, as Kubernetes probes: success and redirects (which are not
    /// followed) pass.
    fn default() -> Self {
        Self { items: vec![StatusItem::Range(200, 399)] }
    }
}

impl StatusSpec {
    /// Parses `200`, `"2xx"`, `"200-299"`, `"204"` or a list of those.
    pub fn parse(value: &Value) -> Result<Self, String> {
        let items = match value {
            Value::Array(list) if list.is_empty() => {
                return Err("`expect.status` is an empty list; give at least one code".to_owned());
            }
            Value::Array(list) => list.iter().map(item).collect::<Result<_, _>>()?,
            single => vec![item(single)?],
        };
        Ok(Self { items })
    }

    pub fn matches(&self, status: u16) -> bool {
        self.items.iter().any(|i| i.contains(status))
    }
}

impl fmt::Display for StatusSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, item) in self.items.iter().enumerate() {
            if n > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{item}")?;
        }
        Ok(())
    }
}

const STATUS_HINT: &str = "write a code (`200`), a class (`\"2xx\"`), a range (`\"200-299\"`) or a list of those";

fn item(value: &Value) -> Result<StatusItem, String> {
    let code = |n: u64| -> Result<u16, String> {
        match u16::try_from(n) {
            Ok(c @ 100..=599) => Ok(c),
            _ => Err(format!("`expect.status`: {n} is not an HTTP status code (100 to 599)")),
        }
    };
    match value {
        Value::Number(n) => match n.as_u64() {
            Some(n) => Ok(StatusItem::Code(code(n)?)),
            None => Err(format!("`expect.status`: {n} is not an HTTP status code (100 to 599)")),
        },
        Value::String(text) => {
            let t = text.trim();
            let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            if t.len() == 3 && t[1..].eq_ignore_ascii_case("xx") && matches!(t.as_bytes()[0], b'1'..=b'5') {
                Ok(StatusItem::Class(u16::from(t.as_bytes()[0] - b'0')))
            } else if let Some((lo, hi)) = t.split_once('-').filter(|(lo, hi)| digits(lo.trim()) && digits(hi.trim())) {
                let parse =
                    |s: &str| s.trim().parse::<u64>().map_err(|_| format!("`expect.status`: `{text}` is too large"));
                let (lo, hi) = (code(parse(lo)?)?, code(parse(hi)?)?);
                if lo > hi {
                    return Err(format!("`expect.status`: the range `{text}` is empty; write the smaller code first"));
                }
                Ok(StatusItem::Range(lo, hi))
            } else if digits(t) {
                Ok(StatusItem::Code(code(t.parse().map_err(|_| format!("`expect.status`: `{text}` is too large"))?)?))
            } else {
                Err(format!("`expect.status`: `{text}` is not a status; {STATUS_HINT}"))
            }
        }
        other => Err(format!("`expect.status`: {other} is not a status; {STATUS_HINT}")),
    }
}

// ---------------------------------------------------------------------------
// Assertions
// ---------------------------------------------------------------------------

/// A compiled regular expression, remembered as written.
#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    regex: Regex,
}

impl Pattern {
    /// Compiles `source`; `field` names the key for the error.
    pub fn new(source: &str, field: &str) -> Result<Self, String> {
        Regex::new(source)
            .map(|regex| Self { source: source.to_owned(), regex })
            .map_err(|e| format!("{field}: `{source}` is not a valid regular expression: {e}"))
    }

    pub fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}/", self.source)
    }
}

/// What a JSON value must satisfy.
#[derive(Debug, Clone)]
pub enum JsonOp {
    /// Equal as JSON (`1` equals `1.0`). String leaves may hold `${…}`.
    Equals(Value),
    /// Equal to one of these.
    In(Vec<Value>),
    /// `true`: the path leads to a value (even `null`); `false`: it does not.
    Exists(bool),
    /// A string matches; a non-string value's JSON text matches.
    Matches(Pattern),
    Gt(f64),
    Lt(f64),
}

/// `path` satisfies `op`.
#[derive(Debug, Clone)]
pub struct JsonAssertion {
    pub path: JsonPath,
    pub op: JsonOp,
}

impl fmt::Display for JsonAssertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = &self.path;
        match &self.op {
            JsonOp::Equals(v) => write!(f, "{path} == {}", show(v)),
            JsonOp::In(vs) => write!(f, "{path} in {}", show(&Value::Array(vs.clone()))),
            JsonOp::Exists(true) => write!(f, "{path} exists"),
            JsonOp::Exists(false) => write!(f, "{path} absent"),
            JsonOp::Matches(p) => write!(f, "{path} matches {p}"),
            JsonOp::Gt(n) => write!(f, "{path} > {n}"),
            JsonOp::Lt(n) => write!(f, "{path} < {n}"),
        }
    }
}

/// Everything a check's response must satisfy.
#[derive(Debug, Clone, Default)]
pub struct Expectations {
    pub status: StatusSpec,
    pub json: Vec<JsonAssertion>,
    /// May hold `${…}`.
    pub body_contains: Option<String>,
    pub body_matches: Option<Pattern>,
    pub max_latency: Option<Duration>,
}

impl Expectations {
    /// One line for the plan: `status 200-399, $.status == "healthy"`.
    pub fn summary(&self) -> String {
        let mut parts = vec![format!("status {}", self.status)];
        parts.extend(self.json.iter().map(ToString::to_string));
        if let Some(text) = &self.body_contains {
            parts.push(format!("body contains {}", show(&Value::String(text.clone()))));
        }
        if let Some(p) = &self.body_matches {
            parts.push(format!("body matches {p}"));
        }
        if let Some(d) = self.max_latency {
            parts.push(format!("latency <= {}ms", d.as_millis()));
        }
        parts.join(", ")
    }

    /// Every expectation `response` fails, in the order they are written.
    /// When the status is wrong, assertions on the body are skipped: an
    /// error page fails them all, and the status already says why.
    /// `expand` fills in `${…}` in expected values; its error is returned.
    pub fn evaluate(
        &self,
        response: &Observed<'_>,
        expand: &dyn Fn(&str) -> Result<String, String>,
    ) -> Result<Vec<Failure>, String> {
        let mut failures = Vec::new();
        if !self.status.matches(response.status) {
            failures.push(Failure::new("status", format!("expected {}, got {}", self.status, response.status)));
        }
        if let Some(max) = self.max_latency
            && response.latency > max
        {
            failures.push(Failure {
                subject: "latency".to_owned(),
                message: format!("expected at most {}ms, got {}ms", max.as_millis(), response.latency.as_millis()),
                about_body: false,
            });
        }
        if failures.first().is_some_and(|f| f.subject == "status") {
            return Ok(failures);
        }
        if !self.json.is_empty() {
            match parse_json(response.body) {
                Ok(document) => {
                    for assertion in &self.json {
                        if let Some(message) = check_json(assertion, &document, expand)? {
                            failures.push(Failure::new(assertion.path.as_str(), message));
                        }
                    }
                }
                Err(why) => failures.push(Failure::new("body", format!("expected JSON, got {why}"))),
            }
        }
        let text = String::from_utf8_lossy(response.body);
        if let Some(needle) = &self.body_contains {
            let needle = expand(needle)?;
            if !text.contains(&needle) {
                failures.push(Failure::new("body", format!("expected to contain {}", show(&Value::String(needle)))));
            }
        }
        if let Some(pattern) = &self.body_matches
            && !pattern.is_match(&text)
        {
            failures.push(Failure::new("body", format!("expected to match {pattern}")));
        }
        Ok(failures)
    }
}

/// What came back from one request.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    pub status: u16,
    pub body: &'a [u8],
    pub latency: Duration,
}

/// One unmet expectation: `$.status: expected "healthy", got "degraded"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// `status`, `latency`, `body`, or the JSON path.
    pub subject: String,
    pub message: String,
    /// Whether showing the body helps to understand it.
    pub about_body: bool,
}

impl Failure {
    pub fn new(subject: impl Into<String>, message: impl Into<String>) -> Self {
        Self { subject: subject.into(), message: message.into(), about_body: true }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.subject, self.message)
    }
}

/// The body as JSON, or why it is not JSON (`an empty body`, `invalid
/// JSON (…)`).
pub fn parse_json(body: &[u8]) -> Result<Value, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err("an empty body".to_owned());
    }
    serde_json::from_slice(body).map_err(|e| format!("invalid JSON ({e})"))
}

/// `None` when `assertion` holds in `document`, else what is wrong.
fn check_json(
    assertion: &JsonAssertion,
    document: &Value,
    expand: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Option<String>, String> {
    let found = assertion.path.get(document);
    let got = || found.map_or_else(|| "nothing (the path is missing)".to_owned(), show);
    let message = match &assertion.op {
        JsonOp::Exists(true) => found.is_none().then(|| "expected to exist, but the path is missing".to_owned()),
        JsonOp::Exists(false) => found.map(|v| format!("expected to be absent, got {}", show(v))),
        JsonOp::Equals(expected) => {
            let expected = expand_strings(expected, expand)?;
            (!found.is_some_and(|v| json_equal(v, &expected)))
                .then(|| format!("expected {}, got {}", show(&expected), got()))
        }
        JsonOp::In(options) => {
            let options = options.iter().map(|o| expand_strings(o, expand)).collect::<Result<Vec<_>, _>>()?;
            (!found.is_some_and(|v| options.iter().any(|o| json_equal(v, o))))
                .then(|| format!("expected one of {}, got {}", show(&Value::Array(options)), got()))
        }
        JsonOp::Matches(pattern) => {
            let holds = found.is_some_and(|v| match v {
                Value::String(s) => pattern.is_match(s),
                other => pattern.is_match(&other.to_string()),
            });
            (!holds).then(|| format!("expected to match {pattern}, got {}", got()))
        }
        JsonOp::Gt(bound) => compare(found, |n| n > *bound, &format!("a number > {bound}")),
        JsonOp::Lt(bound) => compare(found, |n| n < *bound, &format!("a number < {bound}")),
    };
    Ok(message)
}

fn compare(found: Option<&Value>, holds: impl Fn(f64) -> bool, wanted: &str) -> Option<String> {
    match found {
        Some(v) if v.as_f64().is_some_and(&holds) => None,
        Some(v) => Some(format!("expected {wanted}, got {}", show(v))),
        None => Some(format!("expected {wanted}, got nothing (the path is missing)")),
    }
}

/// JSON equality where numbers compare by value (`1` equals `1.0`).
pub fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
            (Some(x), Some(y), _, _) => x == y,
            (_, _, Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_equal(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

/// `value` with `expand` applied to every string in it.
pub fn expand_strings(value: &Value, expand: &dyn Fn(&str) -> Result<String, String>) -> Result<Value, String> {
    Ok(match value {
        Value::String(s) => Value::String(expand(s)?),
        Value::Array(items) => Value::Array(items.iter().map(|v| expand_strings(v, expand)).collect::<Result<_, _>>()?),
        Value::Object(map) => Value::Object(
            map.iter().map(|(k, v)| Ok((k.clone(), expand_strings(v, expand)?))).collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// Longest value shown in a message, in characters.
const SHOWN_VALUE: usize = 100;

/// A JSON value as compact JSON text, cut to [`SHOWN_VALUE`] characters.
pub fn show(value: &Value) -> String {
    truncate(&value.to_string(), SHOWN_VALUE)
}

/// `text` cut to `max` characters with `…`, control characters as blanks,
/// so a message stays on one line.
pub fn truncate(text: &str, max: usize) -> String {
    let mut out: String = text.chars().take(max).map(|c| if c.is_control() { ' ' } else { c }).collect();
    if text.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: Value) -> StatusSpec {
        StatusSpec::parse(&v).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn status_default_is_200_to_399() {
        let s = StatusSpec::default();
        assert!(s.matches(200) && s.matches(204) && s.matches(301) && s.matches(399));
        assert!(!s.matches(199) && !s.matches(400) && !s.matches(503));
        assert_eq!(s.to_string(), "200-399");
    }

    #[test]
    fn status_single_codes_numbers_or_strings() {
        let s = spec(json!(200));
        assert!(s.matches(200) && !s.matches(201));
        assert_eq!(s.to_string(), "200");
        assert!(spec(json!("204")).matches(204));
    }

    #[test]
    fn status_lists_classes_and_ranges() {
        let s = spec(json!([200, 204]));
        assert!(s.matches(204) && !s.matches(201));
        assert_eq!(s.to_string(), "200, 204");
        let s = spec(json!("2xx"));
        assert!(s.matches(200) && s.matches(299) && !s.matches(300));
        let s = spec(json!(["2XX", 304]));
        assert!(s.matches(250) && s.matches(304) && !s.matches(301));
        assert_eq!(s.to_string(), "2xx, 304");
        let s = spec(json!("200-299"));
        assert!(s.matches(200) && s.matches(299) && !s.matches(300));
        assert_eq!(spec(json!(" 500 - 503 ")).to_string(), "500-503");
    }

    #[test]
    fn invalid_status_specs_are_refused() {
        let cases = [
            (json!(99), "not an HTTP status code"),
            (json!(600), "not an HTTP status code"),
            (json!(-1), "not an HTTP status code"),
            (json!(200.5), "not an HTTP status code"),
            (json!("6xx"), "is not a status"),
            (json!("2x"), "is not a status"),
            (json!("ok"), "is not a status"),
            (json!("299-200"), "range `299-200` is empty"),
            (json!("200-700"), "700 is not an HTTP status code"),
            (json!([]), "empty list"),
            (json!([200, true]), "true is not a status"),
            (json!({"a": 1}), "is not a status"),
            (json!("99999999999999999999999"), "too large"),
        ];
        for (value, expected) in cases {
            let error = StatusSpec::parse(&value).expect_err(&value.to_string());
            assert!(error.contains(expected), "{value}: {error}");
        }
    }

    fn path(p: &str) -> JsonPath {
        JsonPath::parse(p).unwrap()
    }

    fn assertion(p: &str, op: JsonOp) -> JsonAssertion {
        JsonAssertion { path: path(p), op }
    }

    fn no_refs(s: &str) -> Result<String, String> {
        Ok(s.to_owned())
    }

    fn failures(exp: &Expectations, status: u16, body: &str, latency_ms: u64) -> Vec<String> {
        let observed = Observed { status, body: body.as_bytes(), latency: Duration::from_millis(latency_ms) };
        exp.evaluate(&observed, &no_refs).unwrap().iter().map(ToString::to_string).collect()
    }

    fn json_expect(assertions: Vec<JsonAssertion>) -> Expectations {
        Expectations { json: assertions, ..Expectations::default() }
    }

    #[test]
    fn equals_compares_json_values() {
        let e = json_expect(vec![assertion("$.status", JsonOp::Equals(json!("healthy")))]);
        assert!(failures(&e, 200, r#"{"status":"healthy"}"#, 1).is_empty());
        assert_eq!(
            failures(&e, 200, r#"{"status":"degraded"}"#, 1),
            [r#"$.status: expected "healthy", got "degraded""#]
        );
        assert_eq!(
            failures(&e, 200, r#"{}"#, 1),
            [r#"$.status: expected "healthy", got nothing (the path is missing)"#]
        );
        let e = json_expect(vec![assertion("$.n", JsonOp::Equals(json!(1)))]);
        assert!(failures(&e, 200, r#"{"n":1.0}"#, 1).is_empty(), "1 equals 1.0");
        assert_eq!(failures(&e, 200, r#"{"n":"1"}"#, 1), [r#"$.n: expected 1, got "1""#], "a string is not a number");
        let e = json_expect(vec![assertion("$.o", JsonOp::Equals(json!({"a": [1, 2.0]})))]);
        assert!(failures(&e, 200, r#"{"o":{"a":[1.0,2]}}"#, 1).is_empty());
        assert_eq!(failures(&e, 200, r#"{"o":{"a":[1],"b":1}}"#, 1).len(), 1);
    }

    #[test]
    fn in_accepts_any_listed_value() {
        let e = json_expect(vec![assertion("$.db", JsonOp::In(vec![json!("ok"), json!("degraded")]))]);
        assert!(failures(&e, 200, r#"{"db":"ok"}"#, 1).is_empty());
        assert!(failures(&e, 200, r#"{"db":"degraded"}"#, 1).is_empty());
        assert_eq!(
            failures(&e, 200, r#"{"db":"down"}"#, 1),
            [r#"$.db: expected one of ["ok","degraded"], got "down""#]
        );
        assert_eq!(failures(&e, 200, r#"{}"#, 1).len(), 1);
    }

    #[test]
    fn exists_and_absent() {
        let e = json_expect(vec![assertion("$.id", JsonOp::Exists(true)), assertion("$.error", JsonOp::Exists(false))]);
        assert!(failures(&e, 200, r#"{"id":null}"#, 1).is_empty(), "null exists");
        assert_eq!(
            failures(&e, 200, r#"{"error":{"code":1}}"#, 1),
            ["$.id: expected to exist, but the path is missing", r#"$.error: expected to be absent, got {"code":1}"#]
        );
    }

    #[test]
    fn matches_strings_and_the_text_of_other_values() {
        let e = json_expect(vec![assertion("$.name", JsonOp::Matches(Pattern::new("^qdrant", "m").unwrap()))]);
        assert!(failures(&e, 200, r#"{"name":"qdrant - vector search engine"}"#, 1).is_empty());
        assert_eq!(
            failures(&e, 200, r#"{"name":"other"}"#, 1),
            [r#"$.name: expected to match /^qdrant/, got "other""#]
        );
        let e = json_expect(vec![assertion("$.v", JsonOp::Matches(Pattern::new(r"^1\.\d+$", "m").unwrap()))]);
        assert!(failures(&e, 200, r#"{"v":1.19}"#, 1).is_empty(), "a number's JSON text");
        assert_eq!(
            failures(&e, 200, r#"{}"#, 1),
            ["$.v: expected to match /^1\\.\\d+$/, got nothing (the path is missing)"]
        );
    }

    #[test]
    fn gt_and_lt_need_numbers() {
        let e = json_expect(vec![assertion("$.count", JsonOp::Gt(0.0)), assertion("$.latency", JsonOp::Lt(100.0))]);
        assert!(failures(&e, 200, r#"{"count":3,"latency":99.5}"#, 1).is_empty());
        assert_eq!(
            failures(&e, 200, r#"{"count":0,"latency":100}"#, 1),
            ["$.count: expected a number > 0, got 0", "$.latency: expected a number < 100, got 100"]
        );
        assert_eq!(
            failures(&e, 200, r#"{"count":"3"}"#, 1),
            [
                r#"$.count: expected a number > 0, got "3""#,
                "$.latency: expected a number < 100, got nothing (the path is missing)"
            ]
        );
    }

    #[test]
    fn a_body_that_is_not_json_fails_json_assertions_once() {
        let e = json_expect(vec![assertion("$.a", JsonOp::Exists(true)), assertion("$.b", JsonOp::Exists(true))]);
        let f = failures(&e, 200, "OK", 1);
        assert_eq!(f.len(), 1);
        assert!(f[0].starts_with("body: expected JSON, got invalid JSON ("), "{f:?}");
        assert_eq!(failures(&e, 200, " \n", 1), ["body: expected JSON, got an empty body"]);
    }

    #[test]
    fn a_wrong_status_skips_the_body_assertions() {
        let e = Expectations {
            json: vec![assertion("$.status", JsonOp::Equals(json!("healthy")))],
            body_contains: Some("ok".into()),
            max_latency: Some(Duration::from_millis(10)),
            ..Expectations::default()
        };
        assert_eq!(
            failures(&e, 503, r#"{"status":"down"}"#, 20),
            ["status: expected 200-399, got 503", "latency: expected at most 10ms, got 20ms"]
        );
    }

    #[test]
    fn body_contains_matches_and_latency() {
        let e = Expectations {
            body_contains: Some("ok".into()),
            body_matches: Some(Pattern::new("^OK", "body_matches").unwrap()),
            max_latency: Some(Duration::from_millis(500)),
            ..Expectations::default()
        };
        assert!(failures(&e, 200, "OK ok", 500).is_empty(), "latency equal to the bound passes");
        assert_eq!(
            failures(&e, 200, "nope", 812),
            [
                "latency: expected at most 500ms, got 812ms",
                r#"body: expected to contain "ok""#,
                "body: expected to match /^OK/"
            ]
        );
    }

    #[test]
    fn expected_values_may_use_references() {
        let e = Expectations {
            json: vec![assertion("$.id", JsonOp::Equals(json!("${captures.id}")))],
            body_contains: Some("${captures.id}".into()),
            ..Expectations::default()
        };
        let expand = |s: &str| Ok(s.replace("${captures.id}", "m-1"));
        let observed = Observed { status: 200, body: br#"{"id":"m-1"}"#, latency: Duration::ZERO };
        assert!(e.evaluate(&observed, &expand).unwrap().is_empty());
        let failing = |_: &str| Err("`${captures.id}` has not been captured".to_owned());
        assert!(e.evaluate(&observed, &failing).is_err());
    }

    #[test]
    fn invalid_regex_is_refused_with_the_field() {
        let e = Pattern::new("(", "checks[0].expect.body_matches").unwrap_err();
        assert!(e.starts_with("checks[0].expect.body_matches: `(` is not a valid regular expression"), "{e}");
    }

    #[test]
    fn summaries_read_like_the_config() {
        let e = Expectations {
            status: spec(json!(200)),
            json: vec![
                assertion("$.status", JsonOp::Equals(json!("healthy"))),
                assertion("$.db", JsonOp::In(vec![json!("ok"), json!("degraded")])),
                assertion("$.id", JsonOp::Exists(true)),
                assertion("$.error", JsonOp::Exists(false)),
                assertion("$.name", JsonOp::Matches(Pattern::new("^q", "m").unwrap())),
                assertion("$.count", JsonOp::Gt(0.0)),
                assertion("$.latency", JsonOp::Lt(100.5)),
            ],
            body_contains: Some("ok".into()),
            body_matches: Some(Pattern::new("^OK", "m").unwrap()),
            max_latency: Some(Duration::from_millis(500)),
        };
        assert_eq!(
            e.summary(),
            r#"status 200, $.status == "healthy", $.db in ["ok","degraded"], $.id exists, $.error absent, $.name matches /^q/, $.count > 0, $.latency < 100.5, body contains "ok", body matches /^OK/, latency <= 500ms"#
        );
    }

    #[test]
    fn long_values_are_cut_and_kept_on_one_line() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("abcdef", 3), "abc…");
        assert_eq!(truncate("a\nb", 5), "a b");
        assert_eq!(truncate("éééé", 2), "éé…");
        assert_eq!(show(&json!("x".repeat(200))).chars().count(), SHOWN_VALUE + 1);
    }
}
