//! The step's configuration: what the runbook's `with` table may hold, how it
//! is checked, and its JSON Schema.
//!
//! Deserializing checks shapes (and refuses unknown keys everywhere);
//! [`Config::validate`] checks meaning, resolves every default, and reports
//! every problem at once, each naming its check and key. What it returns,
//! [`Valid`], is all `plan`, `run` and `verify` work from.

#![forbid(unsafe_code)]

use backout_sdk::Validate;
use backout_sdk::config::{Pointer, Problem, Problems};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use backout_sdk::http;
use backout_sdk::vars::{self, Namespace};
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use crate::expect::{Expectations, JsonAssertion, JsonOp, Pattern, StatusSpec};
use crate::jsonpath::JsonPath;

// ---------------------------------------------------------------------------
// What the runbook says
// ---------------------------------------------------------------------------

/// The runbook's `with` table for a `smoke-test` step.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Default for every check: per request, from sending to the last byte (`"5s"`).
    pub timeout: Option<String>,
    /// Default for every check.
    pub retry: Option<RetryConfig>,
    /// Default for every check: consecutive passes needed.
    pub success_threshold: Option<u32>,
    /// Default for every check: most bytes read per response (`"1MiB"`).
    pub max_body: Option<String>,
    pub checks: Vec<CheckConfig>,
}

/// The settings a check inherits from the step and may override. (Kept out
/// of the serde types: `flatten` and `deny_unknown_fields` do not mix.)
#[derive(Debug, Clone, Default)]
struct Settings<'a> {
    timeout: Option<&'a String>,
    retry: Option<&'a RetryConfig>,
    success_threshold: Option<u32>,
    max_body: Option<&'a String>,
}

/// `retry = { attempts = 3, interval = "1s", backoff = 2.0 }`. A check's
/// table overrides the step's key by key.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    pub attempts: Option<u32>,
    pub interval: Option<String>,
    pub backoff: Option<f64>,
    pub max_interval: Option<String>,
}

/// One `[[checks]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckConfig {
    pub name: Option<String>,
    pub method: Option<String>,
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, Value>,
    /// A string, or `{ json = … }`.
    pub body: Option<Value>,
    #[serde(default)]
    pub expect: ExpectConfig,
    /// Name → JSON path into the response.
    #[serde(default)]
    pub capture: BTreeMap<String, String>,
    pub timeout: Option<String>,
    pub retry: Option<RetryConfig>,
    pub success_threshold: Option<u32>,
    pub max_body: Option<String>,
}

/// A check's `expect` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectConfig {
    pub status: Option<Value>,
    #[serde(default)]
    pub json: Vec<JsonAssertionConfig>,
    pub body_contains: Option<String>,
    pub body_matches: Option<String>,
    pub max_latency_ms: Option<u64>,
}

/// One `expect.json` entry: a path and one or more conditions, all of
/// which must hold.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonAssertionConfig {
    pub path: String,
    #[serde(default, deserialize_with = "present")]
    pub equals: Option<Value>,
    #[serde(rename = "in")]
    pub in_: Option<Vec<Value>>,
    pub exists: Option<bool>,
    pub not_exists: Option<bool>,
    pub matches: Option<String>,
    pub gt: Option<f64>,
    pub lt: Option<f64>,
}

/// `equals = null` (possible in JSON configs) is a value to compare with,
/// not a missing key.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

// ---------------------------------------------------------------------------
// What the step works from
// ---------------------------------------------------------------------------

/// A config that passed [`Config::validate`].
#[derive(Debug, Clone)]
pub struct Valid {
    pub checks: Vec<Check>,
}

/// One check, every default resolved.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    /// Upper-case.
    pub method: String,
    /// May hold `${env.…}` and `${captures.…}`, expanded per request.
    pub url: String,
    /// Values may hold references.
    pub headers: Vec<(String, String)>,
    pub body: Option<RequestBody>,
    pub expect: Expectations,
    /// Name and where to find the value, in name order.
    pub captures: Vec<(String, JsonPath)>,
    pub timeout: Duration,
    pub retry: Retry,
    pub success_threshold: u32,
    pub max_body: usize,
}

impl Check {
    /// Whether the method only reads (`GET`, `HEAD`): `verify` repeats only
    /// these, so it changes nothing; the host allows nothing else in
    /// `plan` and `verify`.
    pub fn is_read_only(&self) -> bool {
        matches!(self.method.as_str(), "GET" | "HEAD")
    }

    /// Every reference this check uses, in url, headers, body and expected
    /// values, without repeats.
    pub fn references(&self) -> BTreeSet<(Namespace, String)> {
        let mut texts: Vec<&str> = vec![&self.url];
        texts.extend(self.headers.iter().map(|(_, v)| v.as_str()));
        let mut values = Vec::new();
        match &self.body {
            Some(RequestBody::Text(t)) => texts.push(t),
            Some(RequestBody::Json(v)) => values.push(v),
            None => {}
        }
        texts.extend(self.expect.body_contains.as_deref());
        for a in &self.expect.json {
            match &a.op {
                JsonOp::Equals(v) => values.push(v),
                JsonOp::In(vs) => values.extend(vs),
                _ => {}
            }
        }
        let mut strings: Vec<String> = texts.into_iter().map(str::to_owned).collect();
        for v in values {
            collect_strings(v, &mut strings);
        }
        strings.iter().flat_map(|s| vars::references(s)).map(|r| (r.namespace, r.name)).collect()
    }
}

/// What a check sends after its headers.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestBody {
    /// Sent as is (after expansion).
    Text(String),
    /// Sent as JSON; string leaves are expanded.
    Json(Value),
}

/// How often to try, and how long to wait between tries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retry {
    /// Tries in all, the first included.
    pub attempts: u32,
    /// The wait after the first failure, and after a pass when more passes
    /// are needed.
    pub interval: Duration,
    /// Each wait after a failure is the previous one times this.
    pub backoff: f64,
    /// No single wait is longer.
    pub max_interval: Duration,
}

impl Retry {
    /// The wait after `failures` consecutive failures (1 or more).
    pub fn wait_after_failures(&self, failures: u32) -> Duration {
        let factor = self.backoff.powi(i32::try_from(failures.saturating_sub(1)).unwrap_or(i32::MAX));
        let secs = self.interval.as_secs_f64() * factor;
        if !secs.is_finite() || secs >= self.max_interval.as_secs_f64() {
            self.max_interval
        } else {
            Duration::from_secs_f64(secs)
        }
    }

    /// The longest the waits of one check can add up to (every try fails).
    pub fn worst_case_waiting(&self) -> Duration {
        (1..self.attempts).map(|n| self.wait_after_failures(n)).sum()
    }
}

// ---------------------------------------------------------------------------
// Limits and defaults
// ---------------------------------------------------------------------------

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
pub const DEFAULT_MAX_INTERVAL: Duration = Duration::from_secs(30);
pub const DEFAULT_MAX_BODY: usize = 1 << 20;
pub const MAX_TIMEOUT: Duration = Duration::from_secs(10 * 60);
pub const MAX_ATTEMPTS: u32 = 100;
pub const MAX_BACKOFF: f64 = 10.0;
/// Longest one check may spend waiting between tries: a smoke test that
/// needs longer is a deployment that did not come up.
pub const MAX_TOTAL_WAIT: Duration = Duration::from_secs(15 * 60);
pub const MAX_BODY_LIMIT: usize = 64 << 20;

// ---------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------

impl Validate for Config {
    type Valid = Valid;
    type Error = Problems;

    /// Checks everything that can be checked without the network or the
    /// environment, reporting every problem at once, each at the key it is
    /// about (`/checks/1/retry/attempts`).
    fn validate(self) -> Result<Valid, Problems> {
        let mut problems = Problems::new();
        if self.checks.is_empty() {
            problems.at("/checks", "`checks` is empty: give at least one `[[checks]]` entry with a `url`");
        }
        let settings = Settings {
            timeout: self.timeout.as_ref(),
            retry: self.retry.as_ref(),
            success_threshold: self.success_threshold,
            max_body: self.max_body.as_ref(),
        };
        let defaults = Scope::new("", &Pointer::root(), &settings, None, &mut problems);
        let mut checks = Vec::with_capacity(self.checks.len());
        let mut captured: BTreeMap<String, String> = BTreeMap::new();
        for (index, config) in self.checks.into_iter().enumerate() {
            let here = Pointer::root().key("checks").index(index);
            let capture_keys: Vec<String> = config.capture.keys().cloned().collect();
            let check = validate_check(index, config, &defaults, &mut problems);
            // References to captures must name a capture of an earlier check.
            for (namespace, name) in check.references() {
                if namespace == Namespace::Captures && !captured.contains_key(&name) {
                    let hint = match check.captures.iter().any(|(n, _)| *n == name) {
                        true => "it is captured by this same check, after its response; use it in a later check",
                        false => "no earlier check captures it",
                    };
                    // The reference may sit in any of the check's strings: at the check.
                    problems.at(
                        here.clone(),
                        format!("{}: `${{captures.{name}}}` is used, but {hint}", label(index, &check.name)),
                    );
                }
            }
            for (name, _) in &check.captures {
                if let Some(earlier) = captured.get(name) {
                    let at = match capture_keys.contains(name) {
                        true => here.clone().key("capture").key(name.as_str()),
                        false => here.clone(),
                    };
                    problems.at(
                        at,
                        format!(
                            "{}: capture `{name}` is already captured by {earlier}; give it another name",
                            label(index, &check.name)
                        ),
                    );
                } else {
                    captured.insert(name.clone(), label(index, &check.name));
                }
            }
            checks.push(check);
        }
        problems.into_result(Valid { checks })
    }
}

/// `check #1 "api health"`: how messages name a check (1-based, as listed).
pub fn label(index: usize, name: &str) -> String {
    format!("check #{} \"{name}\"", index + 1)
}

/// Resolved settings at one level (the step's defaults, then a check's).
#[derive(Debug, Clone, Copy)]
struct Scope {
    timeout: Duration,
    retry: Retry,
    success_threshold: u32,
    max_body: usize,
}

impl Scope {
    /// Resolves `settings` over `parent` (the built-in defaults when
    /// `None`); `at` prefixes messages, `table` is where `settings` are
    /// written (the `with` table, or a check's).
    fn new(
        at: &str,
        table: &Pointer,
        settings: &Settings<'_>,
        parent: Option<&Scope>,
        problems: &mut Problems,
    ) -> Self {
        let base = parent.copied().unwrap_or(Scope {
            timeout: DEFAULT_TIMEOUT,
            retry: Retry { attempts: 1, interval: DEFAULT_INTERVAL, backoff: 1.0, max_interval: DEFAULT_MAX_INTERVAL },
            success_threshold: 1,
            max_body: DEFAULT_MAX_BODY,
        });
        let mut problem = |key: &str, message: String| problems.at(under(table, key), format!("{at}{message}"));
        let mut duration = |key: &str, text: Option<&String>, default: Duration, max: Duration| match text {
            None => default,
            Some(text) => match parse_duration(text) {
                Ok(d) if d <= max => d,
                Ok(_) => {
                    problem(key, format!("`{key}` is `{text}`; at most {} is allowed", show_duration(max)));
                    default
                }
                Err(e) => {
                    problem(key, format!("`{key}`: {e}"));
                    default
                }
            },
        };
        let timeout = duration("timeout", settings.timeout, base.timeout, MAX_TIMEOUT);
        let retry_config = settings.retry.cloned().unwrap_or_default();
        let interval = duration("retry.interval", retry_config.interval.as_ref(), base.retry.interval, MAX_TIMEOUT);
        let max_interval =
            duration("retry.max_interval", retry_config.max_interval.as_ref(), base.retry.max_interval, MAX_TIMEOUT);
        let mut attempts = retry_config.attempts.unwrap_or(base.retry.attempts);
        if !(1..=MAX_ATTEMPTS).contains(&attempts) {
            problem(
                "retry.attempts",
                format!("`retry.attempts` is {attempts}; give 1 to {MAX_ATTEMPTS} (the first try counts)"),
            );
            attempts = attempts.clamp(1, MAX_ATTEMPTS);
        }
        let mut backoff = retry_config.backoff.unwrap_or(base.retry.backoff);
        if !(1.0..=MAX_BACKOFF).contains(&backoff) {
            problem(
                "retry.backoff",
                format!("`retry.backoff` is {backoff}; give a factor from 1.0 (no growth) to {MAX_BACKOFF}"),
            );
            backoff = 1.0;
        }
        let success_threshold = settings.success_threshold.unwrap_or(base.success_threshold);
        if success_threshold == 0 {
            problem("success_threshold", "`success_threshold` is 0; give 1 or more".to_owned());
        }
        let max_body = match settings.max_body {
            None => base.max_body,
            Some(text) => match parse_size(text) {
                Ok(n) if n <= MAX_BODY_LIMIT as u64 => n as usize,
                Ok(_) => {
                    problem("max_body", format!("`max_body` is `{text}`; at most 64MiB is allowed"));
                    base.max_body
                }
                Err(e) => {
                    problem("max_body", format!("`max_body`: {e}"));
                    base.max_body
                }
            },
        };
        Scope {
            timeout,
            retry: Retry { attempts, interval, backoff, max_interval },
            success_threshold: success_threshold.max(1),
            max_body,
        }
    }
}

/// `table`'s key written in dotted form (`retry.attempts`), as a pointer.
fn under(table: &Pointer, dotted: &str) -> Pointer {
    dotted.split('.').fold(table.clone(), Pointer::key)
}

fn validate_check(index: usize, config: CheckConfig, defaults: &Scope, problems: &mut Problems) -> Check {
    let method = config.method.as_deref().unwrap_or("GET");
    let name = config.name.clone().unwrap_or_else(|| format!("{} {}", method.to_ascii_uppercase(), config.url));
    let at = format!("{}: ", label(index, &name));
    let here = Pointer::root().key("checks").index(index);
    let mut problem = |key: Pointer, message: String| problems.at(key, format!("{at}{message}"));
    let key = |k: &str| here.clone().key(k);

    if name.trim().is_empty() {
        problem(key("name"), "`name` is empty".to_owned());
    }
    let method = match http::normalize_method(method) {
        Ok(m) => m,
        Err(_) => {
            problem(
                key("method"),
                format!("`method` `{method}` is not an HTTP method (GET, HEAD, POST, PUT, PATCH, DELETE, …)"),
            );
            "GET".to_owned()
        }
    };
    if let Err(e) = check_url_template(&config.url) {
        problem(key("url"), format!("`url`: {e}"));
    }

    let mut headers = Vec::with_capacity(config.headers.len());
    for (header, value) in config.headers {
        let at = key("headers").key(header.as_str());
        let Value::String(value) = value else {
            problem(at, format!("`headers.{header}` must be a string, not {}", kind(&value)));
            continue;
        };
        // References are expanded later; check the rest of the value now.
        let literal = without_references(&value);
        if let Err(e) = http::validate_header(&header, &literal) {
            problem(at, format!("`headers.{header}`: {}", e.to_string().trim_start_matches("invalid request: ")));
        }
        headers.push((header, value));
    }

    let body = match config.body {
        None => None,
        Some(Value::String(text)) => Some(RequestBody::Text(text)),
        Some(Value::Object(mut map)) if map.len() == 1 && map.contains_key("json") => {
            map.remove("json").map(RequestBody::Json)
        }
        Some(other) => {
            problem(key("body"), format!("`body` must be a string or `{{ json = … }}`, not {}", kind(&other)));
            None
        }
    };
    if body.is_some() && method == "HEAD" {
        problem(key("body"), "`body` is given, but a HEAD request has no body".to_owned());
    }
    if matches!(body, Some(RequestBody::Json(_)))
        && !headers.iter().any(|(h, _)| h.eq_ignore_ascii_case("content-type"))
    {
        headers.push(("content-type".to_owned(), "application/json".to_owned()));
    }

    let mut inner = Problems::new();
    let expect = validate_expect(config.expect, &key("expect"), &mut inner);
    let mut captures = Vec::with_capacity(config.capture.len());
    for (capture, path) in config.capture {
        let at = key("capture").key(capture.as_str());
        if !vars::is_valid_name(&capture) {
            inner.at(at.clone(), format!(
                "capture name `{capture}` is not valid: use letters, digits, `_` and `-` (it is read as `${{captures.{capture}}}`)"
            ));
        }
        match JsonPath::parse(&path) {
            Ok(p) => captures.push((capture, p)),
            Err(e) => inner.at(at, format!("`capture.{capture}`: {e}")),
        }
    }
    for (name, text) in [("name", config.name.as_ref()), ("method", config.method.as_ref())] {
        if let Some(text) = text
            && !vars::references(text).is_empty()
        {
            inner.at(key(name), format!("`{name}` holds `${{…}}`, which is only expanded in {EXPANDED_IN}"));
        }
    }
    for Problem { pointer, message } in inner.0 {
        problem(pointer.unwrap_or_else(|| here.clone()), message);
    }
    // Where a conflict between settings is shown: the first key the message
    // names that this check writes, else the check itself.
    let retry_keys = config.retry.as_ref();
    let written = |candidates: &[(&str, bool)]| {
        candidates.iter().find(|(_, given)| *given).map_or_else(|| here.clone(), |(k, _)| under(&here, k))
    };
    let threshold_at = written(&[
        ("success_threshold", config.success_threshold.is_some()),
        ("retry.attempts", retry_keys.is_some_and(|r| r.attempts.is_some())),
    ]);
    let interval_at = written(&[
        ("retry.max_interval", retry_keys.is_some_and(|r| r.max_interval.is_some())),
        ("retry.interval", retry_keys.is_some_and(|r| r.interval.is_some())),
    ]);
    let waiting_at = written(&[("retry", retry_keys.is_some())]);
    let settings = Settings {
        timeout: config.timeout.as_ref(),
        retry: config.retry.as_ref(),
        success_threshold: config.success_threshold,
        max_body: config.max_body.as_ref(),
    };
    let scope = Scope::new(&at, &here, &settings, Some(defaults), problems);
    let retry = scope.retry;
    if scope.success_threshold > retry.attempts {
        problems.at(threshold_at, format!(
            "{at}`success_threshold` is {}, more than the {} attempts allowed (`retry.attempts`): it could never pass",
            scope.success_threshold, retry.attempts
        ));
    }
    if retry.max_interval < retry.interval {
        problems.at(
            interval_at,
            format!(
                "{at}`retry.max_interval` ({}) is shorter than `retry.interval` ({})",
                show_duration(retry.max_interval),
                show_duration(retry.interval)
            ),
        );
    }
    let waiting = retry.worst_case_waiting();
    if waiting > MAX_TOTAL_WAIT {
        problems.at(
            waiting_at,
            format!(
                "{at}`retry` could wait {} between attempts, more than {}: lower `attempts`, `interval`, \
             `backoff` or `max_interval`",
                show_duration(waiting),
                show_duration(MAX_TOTAL_WAIT)
            ),
        );
    }
    Check {
        name,
        method,
        url: config.url,
        headers,
        body,
        expect,
        captures,
        timeout: scope.timeout,
        retry,
        success_threshold: scope.success_threshold,
        max_body: scope.max_body,
    }
}

/// Where `${env.…}` and `${captures.…}` are expanded.
pub const EXPANDED_IN: &str = "`url`, `headers`, `body`, `expect.body_contains` and `expect.json` `equals`/`in`";

/// `table` is where the `expect` table is (`/checks/0/expect`).
fn validate_expect(config: ExpectConfig, table: &Pointer, problems: &mut Problems) -> Expectations {
    let status = match &config.status {
        None => StatusSpec::default(),
        Some(v) => StatusSpec::parse(v).unwrap_or_else(|e| {
            problems.at(table.clone().key("status"), e);
            StatusSpec::default()
        }),
    };
    let mut json = Vec::new();
    for (n, a) in config.json.into_iter().enumerate() {
        let at = format!("`expect.json[{n}]` (`{}`)", a.path);
        let here = table.clone().key("json").index(n);
        let key = |k: &str| here.clone().key(k);
        let path = match JsonPath::parse(&a.path) {
            Ok(p) => p,
            Err(e) => {
                problems.at(key("path"), format!("`expect.json[{n}]`: {e}"));
                continue;
            }
        };
        let mut ops = Vec::new();
        if let Some(v) = a.equals {
            ops.push(JsonOp::Equals(v));
        }
        if let Some(vs) = a.in_ {
            if vs.is_empty() {
                problems.at(key("in"), format!("{at}: `in` is an empty list; nothing could match"));
            }
            ops.push(JsonOp::In(vs));
        }
        match (a.exists, a.not_exists) {
            (Some(e), Some(n)) if e == n => {
                problems
                    .at(key("exists"), format!("{at}: `exists = {e}` and `not_exists = {n}` contradict each other"));
            }
            (Some(e), _) => ops.push(JsonOp::Exists(e)),
            (None, Some(n)) => ops.push(JsonOp::Exists(!n)),
            (None, None) => {}
        }
        if let Some(source) = &a.matches {
            if !vars::references(source).is_empty() {
                problems.at(
                    key("matches"),
                    format!("{at}: `matches` holds `${{…}}`, which is only expanded in {EXPANDED_IN}"),
                );
            }
            match Pattern::new(source, &format!("{at}: `matches`")) {
                Ok(p) => ops.push(JsonOp::Matches(p)),
                Err(e) => problems.at(key("matches"), e),
            }
        }
        for (key, bound, op) in [("gt", a.gt, JsonOp::Gt as fn(f64) -> JsonOp), ("lt", a.lt, JsonOp::Lt)] {
            if let Some(b) = bound {
                if b.is_finite() {
                    ops.push(op(b));
                } else {
                    problems.at(here.clone().key(key), format!("{at}: `{key}` must be a finite number"));
                }
            }
        }
        if ops.is_empty() && a.exists.is_none() && a.not_exists.is_none() {
            problems.at(here.clone(), format!(
                "{at}: says nothing about the value; add `equals`, `in`, `exists`, `not_exists`, `matches`, `gt` or `lt`"
            ));
        }
        let conflicting = ops.iter().any(|o| matches!(o, JsonOp::Exists(false))) && ops.len() > 1;
        if conflicting {
            let absent = if a.not_exists.is_some() { "not_exists" } else { "exists" };
            problems.at(key(absent), format!("{at}: a value that must be absent cannot also be compared"));
        }
        json.extend(ops.into_iter().map(|op| JsonAssertion { path: path.clone(), op }));
    }
    let body_matches = config.body_matches.as_deref().and_then(|source| {
        let at = table.clone().key("body_matches");
        if !vars::references(source).is_empty() {
            problems.at(
                at.clone(),
                format!("`expect.body_matches` holds `${{…}}`, which is only expanded in {EXPANDED_IN}"),
            );
        }
        Pattern::new(source, "`expect.body_matches`").map_err(|e| problems.at(at, e)).ok()
    });
    let max_latency = match config.max_latency_ms {
        Some(0) => {
            problems.at(
                table.clone().key("max_latency_ms"),
                "`expect.max_latency_ms` is 0; give the most milliseconds a response may take",
            );
            None
        }
        other => other.map(Duration::from_millis),
    };
    Expectations { status, json, body_contains: config.body_contains, body_matches, max_latency }
}

/// Checks the parts of a URL that do not depend on references: the
/// scheme always; the whole URL when no reference sits in its origin.
fn check_url_template(url: &str) -> Result<(), String> {
    let refs = vars::references(url);
    if refs.is_empty() {
        return http::Url::parse(url).map(|_| ()).map_err(|e| e.to_string());
    }
    match origin_end(url) {
        // The origin has no reference: check it all, with stand-ins.
        Some(end) if refs.iter().all(|r| r.span.start >= end) => {
            http::Url::parse(&without_references(url)).map(|_| ()).map_err(|e| e.to_string())
        }
        _ => {
            let scheme_ok =
                ["http://", "https://"].iter().any(|s| url.get(..s.len()).is_some_and(|p| p.eq_ignore_ascii_case(s)));
            match scheme_ok {
                true => Ok(()),
                false => Err(format!("`{url}` must start with `http://` or `https://`")),
            }
        }
    }
}

/// The byte index where the origin (`scheme://host:port`) of `url` ends.
pub fn origin_end(url: &str) -> Option<usize> {
    let after_scheme = url.find("://")? + 3;
    Some(url[after_scheme..].find(['/', '?', '#']).map_or(url.len(), |i| after_scheme + i))
}

/// `text` with every reference replaced by `x`, to check its syntax.
fn without_references(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for r in vars::references(text) {
        out.push_str(&text[copied..r.span.start]);
        out.push('x');
        copied = r.span.end;
    }
    out.push_str(&text[copied..]);
    out
}

fn collect_strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a table",
    }
}

// ---------------------------------------------------------------------------
// Durations and sizes (the host's syntax: a whole number and a unit)
// ---------------------------------------------------------------------------

pub use backout_sdk::quantity::{format_duration as show_duration, parse_duration, parse_size};

// ---------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------

/// The config's JSON Schema (draft 2020-12), for people and tools. `plan`
/// stays the authority: it also checks what a schema cannot say (a
/// `${captures.x}` that no earlier check captures, a regular expression).
pub fn schema() -> Value {
    let duration = json!({
        "type": "string",
        "pattern": "^\\s*[0-9]+\\s*(ms|s|m|h)$",
        "examples": ["500ms", "5s", "1m"]
    });
    let size =
        json!({ "type": "string", "pattern": "^\\s*[0-9]+\\s*(B|KiB|MiB|GiB|KB|kB|MB|GB)$", "examples": ["1MiB"] });
    let status_item = json!({
        "oneOf": [
            { "type": "integer", "minimum": 100, "maximum": 599 },
            { "type": "string", "pattern": "^\\s*([1-5][xX][xX]|[0-9]{3}|[0-9]{3}\\s*-\\s*[0-9]{3})\\s*$" }
        ]
    });
    let settings = json!({
        "timeout": {
            "description": "Limit for each request, from sending to the last byte of the body.",
            "$ref": "#/$defs/duration", "default": "5s"
        },
        "retry": {
            "description": "How often to try a check and how long to wait between tries. A check's \
                            table overrides the step's key by key.",
            "type": "object",
            "properties": {
                "attempts": { "description": "Tries in all, the first included.", "type": "integer",
                              "minimum": 1, "maximum": MAX_ATTEMPTS, "default": 1 },
                "interval": { "description": "Wait after the first failure (and between passes when \
                                              success_threshold > 1).", "$ref": "#/$defs/duration", "default": "1s" },
                "backoff": { "description": "Each wait after a failure is the previous one times this.",
                             "type": "number", "minimum": 1.0, "maximum": MAX_BACKOFF, "default": 1.0 },
                "max_interval": { "description": "No single wait is longer.", "$ref": "#/$defs/duration",
                                  "default": "30s" }
            },
            "additionalProperties": false
        },
        "success_threshold": {
            "description": "Consecutive passes needed (as Kubernetes' successThreshold).",
            "type": "integer", "minimum": 1, "default": 1
        },
        "max_body": { "description": "Most bytes read per response.", "$ref": "#/$defs/size", "default": "1MiB" }
    });
    let mut check_properties = json!({
        "name": { "description": "Names the check in the plan, logs, outputs and errors.", "type": "string",
                  "minLength": 1 },
        "method": { "description": "HTTP method.", "type": "string", "default": "GET" },
        "url": { "description": "Absolute http(s) URL; its origin must be in the step's `net` grant. \
                                 May use ${env.NAME} and ${captures.NAME}.", "type": "string",
                 "pattern": "^[hH][tT][tT][pP][sS]?://" },
        "headers": { "description": "Request headers; values may use ${env.NAME} and ${captures.NAME}.",
                     "type": "object", "additionalProperties": { "type": "string" } },
        "body": {
            "description": "Request body: text, or { json = … } (sent with content-type application/json \
                            unless a header gives one). Strings may use ${env.NAME} and ${captures.NAME}.",
            "oneOf": [
                { "type": "string" },
                { "type": "object", "properties": { "json": {} }, "required": ["json"], "additionalProperties": false }
            ]
        },
        "expect": {
            "type": "object",
            "properties": {
                "status": { "description": "Accepted status codes.", "default": "200-399",
                            "oneOf": [ status_item.clone(), { "type": "array", "items": status_item, "minItems": 1 } ] },
                "json": { "type": "array", "items": { "$ref": "#/$defs/assertion" } },
                "body_contains": { "type": "string" },
                "body_matches": { "description": "Regular expression the body must match.", "type": "string" },
                "max_latency_ms": { "type": "integer", "minimum": 1 }
            },
            "additionalProperties": false
        },
        "capture": {
            "description": "Values saved for later checks as ${captures.NAME}: name = JSON path.",
            "type": "object",
            "propertyNames": { "pattern": "^[A-Za-z0-9_-]+$" },
            "additionalProperties": { "type": "string", "pattern": "^\\$" }
        }
    });
    let mut step_properties = settings.clone();
    if let (Some(check), Some(shared)) = (check_properties.as_object_mut(), settings.as_object()) {
        check.extend(shared.clone());
    }
    if let Some(step) = step_properties.as_object_mut() {
        step.insert(
            "checks".to_owned(),
            json!({ "description": "The checks, run in order; each must pass.", "type": "array", "minItems": 1,
                    "items": { "$ref": "#/$defs/check" } }),
        );
    }
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "smoke-test",
        "description": "HTTP health checks, with retries, JSON assertions and captured values, reaching \
                        only the origins in the step's `net` grant.",
        "type": "object",
        "properties": step_properties,
        "required": ["checks"],
        "additionalProperties": false,
        "$defs": {
            "duration": duration,
            "size": size,
            "check": {
                "type": "object",
                "properties": check_properties,
                "required": ["url"],
                "additionalProperties": false
            },
            "assertion": {
                "type": "object",
                "properties": {
                    "path": { "description": "JSON path: $, .key, ['key'], [0].", "type": "string", "pattern": "^\\$" },
                    "equals": {},
                    "in": { "type": "array", "minItems": 1 },
                    "exists": { "type": "boolean" },
                    "not_exists": { "type": "boolean" },
                    "matches": { "type": "string" },
                    "gt": { "type": "number" },
                    "lt": { "type": "number" }
                },
                "required": ["path"],
                "additionalProperties": false
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: Value) -> Result<Config, serde_json::Error> {
        serde_json::from_value(json)
    }

    /// The config checked; a refusal as its words (the messages joined with "; ").
    fn validate(json: Value) -> Result<Valid, String> {
        parse(json).expect("deserializes").validate().map_err(|p| p.to_string())
    }

    /// The pointer of every problem, in the order found.
    fn pointers(json: Value) -> Vec<Option<String>> {
        let problems = parse(json).expect("deserializes").validate().expect_err("refused");
        problems.0.iter().map(|p| p.pointer.as_ref().map(ToString::to_string)).collect()
    }

    #[test]
    fn each_problem_names_its_key() {
        let at = |p: &str| vec![Some(p.to_owned())];
        let second = |check: Value| pointers(json!({ "checks": [{ "url": "http://h/a" }, check] }));
        assert_eq!(pointers(json!({ "checks": [] })), at("/checks"));
        assert_eq!(pointers(json!({ "timeout": "1h", "checks": [{ "url": "http://h/" }] })), at("/timeout"));
        assert_eq!(
            pointers(json!({ "retry": { "attempts": 0 }, "checks": [{ "url": "http://h/" }] })),
            at("/retry/attempts")
        );
        assert_eq!(second(json!({ "url": "ftp://h/" })), at("/checks/1/url"));
        assert_eq!(second(json!({ "url": "http://h/", "name": " " })), at("/checks/1/name"));
        assert_eq!(second(json!({ "url": "http://h/", "method": "GE T" })), at("/checks/1/method"));
        assert_eq!(second(json!({ "url": "http://h/", "headers": { "x-a": 1 } })), at("/checks/1/headers/x-a"));
        assert_eq!(second(json!({ "url": "http://h/", "method": "HEAD", "body": "x" })), at("/checks/1/body"));
        assert_eq!(second(json!({ "url": "http://h/", "timeout": "1h" })), at("/checks/1/timeout"));
        assert_eq!(second(json!({ "url": "http://h/", "retry": { "backoff": 20 } })), at("/checks/1/retry/backoff"));
        assert_eq!(second(json!({ "url": "http://h/", "max_body": "1GiB" })), at("/checks/1/max_body"));
        assert_eq!(second(json!({ "url": "http://h/", "success_threshold": 2 })), at("/checks/1/success_threshold"));
        assert_eq!(
            second(json!({ "url": "http://h/", "retry": { "interval": "10s", "max_interval": "1s" } })),
            at("/checks/1/retry/max_interval")
        );
        assert_eq!(
            second(json!({ "url": "http://h/", "retry": { "attempts": 100, "interval": "1m", "max_interval": "1m" } })),
            at("/checks/1/retry")
        );
        assert_eq!(second(json!({ "url": "http://h/", "capture": { "a b": "$.x" } })), at("/checks/1/capture/a b"));
        assert_eq!(second(json!({ "url": "http://h/", "capture": { "a": "x" } })), at("/checks/1/capture/a"));
        assert_eq!(second(json!({ "url": "http://h/${captures.t}" })), at("/checks/1"));
        assert_eq!(second(json!({ "url": "http://h/", "expect": { "status": "7xx" } })), at("/checks/1/expect/status"));
        assert_eq!(
            second(json!({ "url": "http://h/", "expect": { "max_latency_ms": 0 } })),
            at("/checks/1/expect/max_latency_ms")
        );
        assert_eq!(
            second(json!({ "url": "http://h/", "expect": { "body_matches": "(" } })),
            at("/checks/1/expect/body_matches")
        );
        let json = |a: Value| {
            second(json!({ "url": "http://h/", "expect": { "json": [{ "path": "$.a", "exists": true }, a] } }))
        };
        assert_eq!(json(json!({ "path": "x" })), at("/checks/1/expect/json/1/path"));
        assert_eq!(json(json!({ "path": "$.a" })), at("/checks/1/expect/json/1"));
        assert_eq!(json(json!({ "path": "$.a", "in": [] })), at("/checks/1/expect/json/1/in"));
        assert_eq!(
            json(json!({ "path": "$.a", "matches": "(", "exists": true })),
            at("/checks/1/expect/json/1/matches")
        );
        assert_eq!(
            json(json!({ "path": "$.a", "exists": true, "not_exists": true })),
            at("/checks/1/expect/json/1/exists")
        );
        assert_eq!(
            json(json!({ "path": "$.a", "not_exists": true, "equals": 1 })),
            at("/checks/1/expect/json/1/not_exists")
        );
        // A capture captured twice: at the second capture.
        assert_eq!(
            pointers(json!({ "checks": [
                { "url": "http://h/a", "capture": { "t": "$.t" } },
                { "url": "http://h/b", "capture": { "t": "$.u" } }
            ] })),
            at("/checks/1/capture/t")
        );
    }

    fn one(check: Value) -> Result<Check, String> {
        validate(json!({ "checks": [check] })).map(|mut v| v.checks.remove(0))
    }

    #[test]
    fn minimal_check_gets_every_default() {
        let c = one(json!({"url": "http://127.0.0.1:3000/health"})).unwrap();
        assert_eq!(c.name, "GET http://127.0.0.1:3000/health");
        assert_eq!(c.method, "GET");
        assert_eq!(c.timeout, DEFAULT_TIMEOUT);
        assert_eq!(
            c.retry,
            Retry { attempts: 1, interval: DEFAULT_INTERVAL, backoff: 1.0, max_interval: DEFAULT_MAX_INTERVAL }
        );
        assert_eq!(c.success_threshold, 1);
        assert_eq!(c.max_body, DEFAULT_MAX_BODY);
        assert_eq!(c.expect.status, StatusSpec::default());
        assert!(c.headers.is_empty() && c.body.is_none() && c.captures.is_empty());
    }

    #[test]
    fn step_defaults_apply_and_checks_override_key_by_key() {
        let v = validate(json!({
            "timeout": "2s",
            "retry": { "attempts": 3, "interval": "500ms", "backoff": 2 },
            "success_threshold": 2,
            "max_body": "64KiB",
            "checks": [
                { "url": "http://h/a" },
                { "url": "http://h/b", "timeout": "1m", "retry": { "attempts": 5 }, "success_threshold": 1, "max_body": "1MB" }
            ]
        }))
        .unwrap();
        let (a, b) = (&v.checks[0], &v.checks[1]);
        assert_eq!(a.timeout, Duration::from_secs(2));
        assert_eq!(a.retry.attempts, 3);
        assert_eq!(a.retry.interval, Duration::from_millis(500));
        assert_eq!(a.retry.backoff, 2.0);
        assert_eq!((a.success_threshold, a.max_body), (2, 64 << 10));
        assert_eq!(b.timeout, Duration::from_secs(60));
        assert_eq!(b.retry.attempts, 5);
        assert_eq!(b.retry.interval, Duration::from_millis(500), "inherited key by key");
        assert_eq!(b.retry.backoff, 2.0);
        assert_eq!((b.success_threshold, b.max_body), (1, 1_000_000));
    }

    #[test]
    fn unknown_keys_are_refused_at_every_level() {
        for config in [
            json!({"checks": [], "timout": "1s"}),
            json!({"checks": [{"url": "http://h/", "expect": {"statuss": 200}}]}),
            json!({"checks": [{"url": "http://h/", "expect": {"json": [{"path": "$", "equal": 1}]}}]}),
            json!({"checks": [{"url": "http://h/", "retry": {"attempt": 2}}]}),
            json!({"checks": [{"url": "http://h/", "urll": "x"}]}),
        ] {
            let e = parse(config.clone()).expect_err(&config.to_string()).to_string();
            assert!(e.contains("unknown field"), "{config}: {e}");
        }
    }

    #[test]
    fn empty_checks_and_missing_url_are_refused() {
        assert!(validate(json!({"checks": []})).unwrap_err().contains("`checks` is empty"));
        assert!(parse(json!({"checks": [{"name": "x"}]})).unwrap_err().to_string().contains("missing field `url`"));
        assert!(parse(json!({})).unwrap_err().to_string().contains("missing field `checks`"));
    }

    #[test]
    fn bad_values_are_reported_together_naming_the_check() {
        let e = validate(json!({"checks": [{
            "name": "api", "url": "ftp://h/", "method": "G T", "timeout": "5", "max_body": "1 parsec",
            "expect": {"status": "6xx", "body_matches": "(", "json": [{"path": "status", "equals": 1}]},
            "retry": {"attempts": 0, "backoff": 0.5, "interval": "1fortnight"}, "success_threshold": 0
        }]}))
        .unwrap_err();
        for part in [
            "check #1 \"api\": `url`: invalid URL: `ftp://h/` has the scheme `ftp`",
            "`method` `G T` is not an HTTP method",
            "`timeout`: `5` has no unit",
            "`max_body`: unknown size unit `parsec`",
            "`6xx` is not a status",
            "`expect.body_matches`: `(` is not a valid regular expression",
            "`expect.json[0]`: JSON path `status` must start with `$`",
            "`retry.attempts` is 0",
            "`retry.backoff` is 0.5",
            "unknown duration unit `fortnight`",
            "`success_threshold` is 0",
        ] {
            assert!(e.contains(part), "missing {part:?} in {e}");
        }
    }

    #[test]
    fn limits_are_enforced() {
        let e = one(json!({"url": "http://h/", "timeout": "11m"})).unwrap_err();
        assert!(e.contains("at most 10m"), "{e}");
        let e = one(json!({"url": "http://h/", "max_body": "65MiB"})).unwrap_err();
        assert!(e.contains("at most 64MiB"), "{e}");
        let e = one(json!({"url": "http://h/", "retry": {"attempts": 101}})).unwrap_err();
        assert!(e.contains("give 1 to 100"), "{e}");
        let e = one(json!({"url": "http://h/", "retry": {"attempts": 3}, "success_threshold": 4})).unwrap_err();
        assert!(e.contains("could never pass"), "{e}");
        let e = one(json!({"url": "http://h/", "retry": {"interval": "1m", "max_interval": "10s"}})).unwrap_err();
        assert!(e.contains("`retry.max_interval` (10s) is shorter than `retry.interval` (1m)"), "{e}");
        let e = one(json!({"url": "http://h/", "retry": {"attempts": 40, "interval": "30s"}})).unwrap_err();
        assert!(e.contains("could wait 19m30s between attempts, more than 15m"), "{e}");
        let e = one(json!({"url": "http://h/", "expect": {"max_latency_ms": 0}})).unwrap_err();
        assert!(e.contains("`expect.max_latency_ms` is 0"), "{e}");
    }

    #[test]
    fn waits_grow_by_backoff_up_to_max_interval() {
        let r =
            Retry { attempts: 6, interval: Duration::from_secs(1), backoff: 2.0, max_interval: Duration::from_secs(5) };
        let waits: Vec<u64> = (1..=5).map(|n| r.wait_after_failures(n).as_millis() as u64).collect();
        assert_eq!(waits, [1000, 2000, 4000, 5000, 5000]);
        assert_eq!(r.worst_case_waiting(), Duration::from_secs(17));
        let flat = Retry { backoff: 1.0, ..r };
        assert_eq!(flat.worst_case_waiting(), Duration::from_secs(5));
        let huge = Retry { attempts: 100, backoff: 10.0, ..r };
        assert_eq!(huge.wait_after_failures(99), Duration::from_secs(5), "no overflow");
    }

    #[test]
    fn headers_must_be_strings_with_valid_names() {
        let e = one(json!({"url": "http://h/", "headers": {"X-N": 5}})).unwrap_err();
        assert!(e.contains("`headers.X-N` must be a string, not a number"), "{e}");
        let e = one(json!({"url": "http://h/", "headers": {"Host": "x"}})).unwrap_err();
        assert!(e.contains("`headers.Host`: header `Host` is set by the host"), "{e}");
        let e = one(json!({"url": "http://h/", "headers": {"X": "a\nb ${env.K}"}})).unwrap_err();
        assert!(e.contains("line break"), "{e}");
        let c = one(json!({"url": "http://h/", "headers": {"Authorization": "Bearer ${env.API_KEY}"}})).unwrap();
        assert_eq!(c.headers, [("Authorization".to_owned(), "Bearer ${env.API_KEY}".to_owned())]);
    }

    #[test]
    fn bodies_are_text_or_json_with_a_default_content_type() {
        let c = one(json!({"url": "http://h/", "method": "post", "body": "hi"})).unwrap();
        assert_eq!((c.method.as_str(), c.body), ("POST", Some(RequestBody::Text("hi".into()))));
        assert!(c.headers.is_empty());
        let c = one(json!({"url": "http://h/", "method": "POST", "body": {"json": {"q": "x"}}})).unwrap();
        assert_eq!(c.body, Some(RequestBody::Json(json!({"q": "x"}))));
        assert_eq!(c.headers, [("content-type".to_owned(), "application/json".to_owned())]);
        let c = one(json!({"url": "http://h/", "method": "POST", "headers": {"Content-Type": "application/x+json"},
                           "body": {"json": 1}}))
        .unwrap();
        assert_eq!(c.headers.len(), 1);
        let e = one(json!({"url": "http://h/", "body": {"text": "x"}})).unwrap_err();
        assert!(e.contains("`body` must be a string or `{ json = … }`, not a table"), "{e}");
        let e = one(json!({"url": "http://h/", "body": 3})).unwrap_err();
        assert!(e.contains("not a number"), "{e}");
        let e = one(json!({"url": "http://h/", "method": "HEAD", "body": "x"})).unwrap_err();
        assert!(e.contains("HEAD request has no body"), "{e}");
    }

    #[test]
    fn json_assertions_compile_each_condition() {
        let c = one(json!({"url": "http://h/", "expect": {"json": [
            {"path": "$.status", "equals": "healthy"},
            {"path": "$.count", "gt": 0, "lt": 10},
            {"path": "$.error", "not_exists": true},
            {"path": "$.id", "exists": true},
            {"path": "$.v", "equals": null}
        ]}}))
        .unwrap();
        let shown: Vec<String> = c.expect.json.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [r#"$.status == "healthy""#, "$.count > 0", "$.count < 10", "$.error absent", "$.id exists", "$.v == null"]
        );
    }

    #[test]
    fn json_assertions_must_say_something_consistent() {
        let e = one(json!({"url": "http://h/", "expect": {"json": [{"path": "$.a"}]}})).unwrap_err();
        assert!(e.contains("says nothing about the value"), "{e}");
        let e =
            one(json!({"url": "http://h/", "expect": {"json": [{"path": "$.a", "exists": true, "not_exists": true}]}}))
                .unwrap_err();
        assert!(e.contains("contradict"), "{e}");
        let e =
            one(json!({"url": "http://h/", "expect": {"json": [{"path": "$.a", "not_exists": true, "equals": 1}]}}))
                .unwrap_err();
        assert!(e.contains("must be absent cannot also be compared"), "{e}");
        let e = one(json!({"url": "http://h/", "expect": {"json": [{"path": "$.a", "in": []}]}})).unwrap_err();
        assert!(e.contains("empty list"), "{e}");
        let e = one(json!({"url": "http://h/", "expect": {"json": [{"path": "$.a", "matches": "[" }]}})).unwrap_err();
        assert!(e.contains("`matches`: `[` is not a valid regular expression"), "{e}");
    }

    #[test]
    fn captures_must_come_from_earlier_checks() {
        let ok = validate(json!({"checks": [
            {"name": "store", "url": "http://h/m", "method": "POST", "capture": {"memory_id": "$.result.id"}},
            {"name": "read", "url": "http://h/m/${captures.memory_id}",
             "expect": {"json": [{"path": "$.id", "equals": "${captures.memory_id}"}]}}
        ]}));
        assert!(ok.is_ok(), "{ok:?}");
        let e = validate(json!({"checks": [
            {"name": "read", "url": "http://h/m/${captures.memory_id}"},
            {"name": "store", "url": "http://h/m", "capture": {"memory_id": "$.id"}}
        ]}))
        .unwrap_err();
        assert!(
            e.contains("check #1 \"read\": `${captures.memory_id}` is used, but no earlier check captures it"),
            "{e}"
        );
        let e = one(json!({"url": "http://h/", "headers": {"X": "${captures.id}"}, "capture": {"id": "$.id"}}))
            .unwrap_err();
        assert!(e.contains("captured by this same check"), "{e}");
        let e = validate(json!({"checks": [
            {"name": "a", "url": "http://h/", "capture": {"id": "$.id"}},
            {"name": "b", "url": "http://h/", "capture": {"id": "$.id"}}
        ]}))
        .unwrap_err();
        assert!(e.contains("capture `id` is already captured by check #1 \"a\""), "{e}");
        let e = one(json!({"url": "http://h/", "capture": {"a b": "$.x", "ok": "x"}})).unwrap_err();
        assert!(e.contains("capture name `a b` is not valid") && e.contains("`capture.ok`: JSON path `x`"), "{e}");
    }

    #[test]
    fn references_are_found_everywhere_they_are_expanded() {
        let c = one(json!({"url": "http://h/${env.A}", "method": "POST",
            "headers": {"X": "${env.B}"}, "body": {"json": {"k": ["${env.C}"]}},
            "expect": {"body_contains": "${env.D}", "json": [{"path": "$.x", "in": ["${env.E}"]}]}}))
        .unwrap();
        let names: Vec<String> = c.references().into_iter().map(|(_, n)| n).collect();
        assert_eq!(names, ["A", "B", "C", "D", "E"]);
        let e = one(json!({"url": "http://h/", "expect": {"body_matches": "${env.X}"}})).unwrap_err();
        assert!(e.contains("only expanded in"), "{e}");
    }

    #[test]
    fn urls_with_references_are_checked_as_far_as_possible() {
        assert!(one(json!({"url": "http://h:3000/m/${captures.id}?k=${env.K}"})).is_err(), "unknown capture");
        assert!(one(json!({"url": "http://h:3000/m?k=${env.K}"})).is_ok());
        assert!(one(json!({"url": "https://${env.HOST}/health"})).is_ok());
        let e = one(json!({"url": "${env.URL}"})).unwrap_err();
        assert!(e.contains("must start with `http://` or `https://`"), "{e}");
        let e = one(json!({"url": "http://h:99999/${env.X}"})).unwrap_err();
        assert!(e.contains("invalid port"), "{e}");
        assert_eq!(origin_end("http://h:1/a?b"), Some(10));
        assert_eq!(origin_end("http://h"), Some(8));
        assert_eq!(origin_end("h/a"), None);
    }

    #[test]
    fn durations_and_sizes_parse_strictly() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration(" 1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("0s").unwrap_err().contains("greater than zero"));
        assert!(parse_duration("1.5s").unwrap_err().contains("unknown duration unit `.5s`"));
        assert!(parse_duration("s").unwrap_err().contains("whole number"));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("512KiB"), Ok(512 << 10));
        assert_eq!(parse_size("1KB"), Ok(1000));
        assert!(parse_size("1024").unwrap_err().contains("no unit"));
        assert_eq!(show_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(show_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(show_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(show_duration(Duration::from_secs(120)), "2m");
    }

    #[test]
    fn read_only_methods() {
        for (method, read_only) in
            [("GET", true), ("head", true), ("OPTIONS", false), ("POST", false), ("DELETE", false)]
        {
            let c = one(json!({"url": "http://h/", "method": method})).unwrap();
            assert_eq!(c.is_read_only(), read_only, "{method}");
        }
    }

    #[test]
    fn schema_describes_every_config_field() {
        let schema = schema();
        assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
        let step: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
        assert_eq!(step, ["checks", "max_body", "retry", "success_threshold", "timeout"]);
        let check: Vec<&String> = schema["$defs"]["check"]["properties"].as_object().unwrap().keys().collect();
        assert_eq!(
            check,
            [
                "body",
                "capture",
                "expect",
                "headers",
                "max_body",
                "method",
                "name",
                "retry",
                "success_threshold",
                "timeout",
                "url"
            ]
        );
        let expect: Vec<&String> =
            schema["$defs"]["check"]["properties"]["expect"]["properties"].as_object().unwrap().keys().collect();
        assert_eq!(expect, ["body_contains", "body_matches", "json", "max_latency_ms", "status"]);
        let assertion: Vec<&String> = schema["$defs"]["assertion"]["properties"].as_object().unwrap().keys().collect();
        assert_eq!(assertion, ["equals", "exists", "gt", "in", "lt", "matches", "not_exists", "path"]);
    }
}
