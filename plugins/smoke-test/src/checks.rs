//! Running checks: requests, retries, the success threshold, captures, and
//! the messages a failure leaves.
//!
//! The network, the clock and sleeping go through [`Transport`], so the
//! sequencing here is unit-tested natively with a scripted fake; the step
//! uses [`HostTransport`], which sends through the host
//! ([`backout_sdk::http`]).
//!
//! One check, in order:
//!
//! 1. build the request, expanding `${env.…}` and `${captures.…}`;
//! 2. send it and measure the latency; a denied or malformed request fails
//!    the check at once (trying again cannot help);
//! 3. evaluate `expect`; on a pass, take the captures (a capture whose
//!    path is missing fails the try);
//! 4. stop when `success_threshold` consecutive tries passed, or when the
//!    attempts left cannot reach it any more; otherwise wait
//!    (`interval`, grown by `backoff` after each failure) and try again.
//!
//! Checks run in the order listed and stop at the first that fails: later
//! checks often depend on earlier ones (a capture, a service that must be
//! up first).

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use backout_sdk::StepError;
use backout_sdk::http::{self, Request, Response};
use backout_sdk::text::count;
use backout_sdk::vars::{self, Namespace};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{Check, RequestBody, label, show_duration};
use crate::expect::{self, Failure, Observed};

/// The world a check talks to.
pub trait Transport {
    /// Sends one request; 4xx and 5xx are responses, not errors.
    fn send(&mut self, request: Request) -> Result<Response, http::Error>;
    /// Waits between tries.
    fn sleep(&mut self, duration: Duration);
    /// A monotonic clock, for latencies.
    fn now(&mut self) -> Duration;
}

/// The real thing: requests through the host, `std` sleep and clock.
#[derive(Debug)]
pub struct HostTransport {
    start: Instant,
}

impl HostTransport {
    pub fn new() -> Self {
        Self { start: Instant::now() }
    }
}

impl Default for HostTransport {
    fn default() -> Self {
        Self::new()
    }
}

impl Transport for HostTransport {
    fn send(&mut self, request: Request) -> Result<Response, http::Error> {
        http::send(request)
    }

    fn sleep(&mut self, duration: Duration) {
        std::thread::sleep(duration);
    }

    fn now(&mut self) -> Duration {
        self.start.elapsed()
    }
}

/// Where log lines go: the host's log in the component, a `Vec` in tests.
pub type Log<'a> = &'a mut dyn FnMut(String);

/// What the outputs record about one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRecord {
    pub name: String,
    /// The URL with captured values filled in and `${env.…}` left as
    /// written, so no secret is recorded.
    pub url: String,
    /// Of the last try; `null` when it got no response.
    pub status: Option<u16>,
    /// Of the last try, in milliseconds; `null` when it got no response.
    pub latency_ms: Option<u64>,
    pub attempts: u32,
    pub passed: bool,
}

/// Values captured so far, by name: strings, or other JSON values.
pub type Captures = BTreeMap<String, Value>;

/// Runs `checks` in order, adding what each captures to `captures`.
/// `env` reads granted environment variables. With `read_only`, checks
/// whose method may change state (`POST`, …) are skipped and logged, and
/// the values they captured in `run` (already in `captures`) are used.
pub fn run_all(
    checks: &[Check],
    transport: &mut dyn Transport,
    env: &dyn Fn(&str) -> Option<String>,
    captures: &mut Captures,
    read_only: bool,
    log: Log<'_>,
) -> Result<Vec<CheckRecord>, StepError> {
    let mut records = Vec::with_capacity(checks.len());
    let mut changed_state: Vec<String> = Vec::new();
    for (index, check) in checks.iter().enumerate() {
        if read_only && !check.is_read_only() {
            log(format!(
                "{}: skipped: {} may change state, and verify changes nothing",
                label(index, &check.name),
                check.method
            ));
            continue;
        }
        if !check.is_read_only() {
            changed_state.push(format!("\"{}\"", check.name));
        }
        match run_one(index, check, transport, env, captures, log) {
            Ok(record) => records.push(record),
            Err(mut error) => {
                if !changed_state.is_empty() {
                    let note =
                        format!(" (requests that may have changed state were sent by {})", changed_state.join(", "));
                    error = with_suffix(error, &note);
                }
                return Err(error);
            }
        }
    }
    Ok(records)
}

fn with_suffix(error: StepError, suffix: &str) -> StepError {
    match error {
        StepError::InvalidConfig(m) => StepError::InvalidConfig(m + suffix),
        StepError::Precondition(m) => StepError::Precondition(m + suffix),
        StepError::Transient(m) => StepError::Transient(m + suffix),
        StepError::Failed(m) => StepError::Failed(m + suffix),
    }
}

/// What one try came to.
enum Try {
    Passed { status: u16, latency: Duration, captured: Vec<(String, Value)> },
    Failed { status: Option<u16>, latency: Option<Duration>, reason: String },
}

/// Runs one check to its verdict.
pub fn run_one(
    index: usize,
    check: &Check,
    transport: &mut dyn Transport,
    env: &dyn Fn(&str) -> Option<String>,
    captures: &mut Captures,
    log: Log<'_>,
) -> Result<CheckRecord, StepError> {
    let who = label(index, &check.name);
    let lookup = |ns: Namespace, name: &str| match ns {
        Namespace::Env => env(name),
        Namespace::Captures => captures.get(name).map(capture_text),
    };
    let expand = |text: &str| vars::expand(text, lookup);
    // What logs, outputs and messages show: captures filled in, env hidden.
    let shown_url = vars::expand_only(&check.url, Namespace::Captures, |name| captures.get(name).map(capture_text))
        .unwrap_or_else(|_| check.url.clone());
    let request_line = format!("{} {shown_url}", check.method);

    let retry = check.retry;
    let mut attempts = 0;
    let mut consecutive = 0;
    let mut failures_in_a_row = 0;
    loop {
        attempts += 1;
        let request = build_request(check, &expand).map_err(|e| StepError::Precondition(format!("{who}: {e}")))?;
        let started = transport.now();
        let sent = transport.send(request);
        let latency = transport.now().saturating_sub(started);
        let outcome = match sent {
            Err(error @ (http::Error::Denied(_) | http::Error::InvalidUrl(_) | http::Error::InvalidRequest(_))) => {
                log(format!("{who}: attempt {attempts}/{}: {request_line}: {error}", retry.attempts));
                return Err(StepError::Failed(format!(
                    "{who} failed (not retried: trying again cannot help): {request_line}: {error}"
                )));
            }
            Err(error) => Try::Failed { status: None, latency: None, reason: format!("{request_line}: {error}") },
            Ok(response) => {
                judge(check, &response, latency, &expand).map_err(|e| StepError::Precondition(format!("{who}: {e}")))?
            }
        };
        let (status, latency_ms) = match &outcome {
            Try::Passed { status, latency, .. } => (Some(*status), Some(millis(*latency))),
            Try::Failed { status, latency, .. } => (*status, latency.map(millis)),
        };
        log(attempt_line(&who, attempts, retry.attempts, &request_line, &outcome));
        match outcome {
            Try::Passed { captured, .. } => {
                consecutive += 1;
                failures_in_a_row = 0;
                if consecutive >= check.success_threshold {
                    for (name, value) in captured {
                        captures.insert(name, value);
                    }
                    return Ok(CheckRecord {
                        name: check.name.clone(),
                        url: shown_url,
                        status,
                        latency_ms,
                        attempts,
                        passed: true,
                    });
                }
            }
            Try::Failed { reason, .. } => {
                consecutive = 0;
                failures_in_a_row += 1;
                let left = retry.attempts - attempts;
                let needed = check.success_threshold;
                if left < needed {
                    let tries = count(attempts as usize, "attempt");
                    let early = if left > 0 {
                        format!(" (of {}: {needed} consecutive passes are no longer possible)", retry.attempts)
                    } else {
                        String::new()
                    };
                    let message = format!("{who} failed after {tries}{early}: {reason}");
                    // No answer, or an answer that says "not now": the
                    // runbook's `retries` may try the step again later.
                    return Err(if status.is_none_or(|s| s >= 500 || s == 408 || s == 429) {
                        StepError::Transient(message)
                    } else {
                        StepError::Failed(message)
                    });
                }
            }
        }
        // Wait: the interval after a pass (more passes are needed), the
        // interval grown by backoff after failures.
        let wait = if failures_in_a_row == 0 { retry.interval } else { retry.wait_after_failures(failures_in_a_row) };
        transport.sleep(wait);
    }
}

/// Judges a response: the expectations, then the captures.
fn judge(
    check: &Check,
    response: &Response,
    latency: Duration,
    expand: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Try, String> {
    let observed = Observed { status: response.status, body: &response.body, latency };
    let mut failures = check.expect.evaluate(&observed, expand)?;
    let mut captured = Vec::new();
    if failures.is_empty() && !check.captures.is_empty() {
        match expect::parse_json(&response.body) {
            Ok(document) => {
                for (name, path) in &check.captures {
                    match path.get(&document) {
                        Some(value) => captured.push((name.clone(), value.clone())),
                        None => failures.push(Failure::new(
                            format!("capture `{name}`"),
                            format!("{path} is missing from the response"),
                        )),
                    }
                }
            }
            Err(why) => failures.push(Failure::new("body", format!("expected JSON to capture from, got {why}"))),
        }
    }
    if failures.is_empty() {
        return Ok(Try::Passed { status: response.status, latency, captured });
    }
    let mut reason = failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
    if failures.iter().any(|f| f.about_body) {
        reason.push_str(&body_excerpt(&response.body));
    }
    Ok(Try::Failed { status: Some(response.status), latency: Some(latency), reason })
}

/// Longest piece of a body a failure message quotes, in characters.
pub const BODY_EXCERPT: usize = 200;

/// ` (body: …)`, cut to [`BODY_EXCERPT`] characters, or ` (empty body)`.
pub fn body_excerpt(body: &[u8]) -> String {
    if body.is_empty() {
        return " (empty body)".to_owned();
    }
    format!(" (body: {})", expect::truncate(&String::from_utf8_lossy(body), BODY_EXCERPT))
}

/// A log line for one try: method, URL, status, latency and the subjects
/// of failed expectations, never header values or the body.
fn attempt_line(who: &str, attempt: u32, attempts: u32, request_line: &str, outcome: &Try) -> String {
    match outcome {
        Try::Passed { status, latency, .. } => {
            format!("{who}: attempt {attempt}/{attempts}: {request_line} → {status} in {}ms: passed", millis(*latency))
        }
        Try::Failed { status: Some(status), latency, reason } => format!(
            "{who}: attempt {attempt}/{attempts}: {request_line} → {status} in {}ms: failed ({})",
            latency.map(millis).unwrap_or(0),
            failed_subjects(reason)
        ),
        Try::Failed { status: None, reason, .. } => format!("{who}: attempt {attempt}/{attempts}: {reason}"),
    }
}

/// `status, $.status`: the subjects of a failure reason, without values.
fn failed_subjects(reason: &str) -> String {
    let without_body = reason.rsplit_once(" (body: ").map_or(reason, |(r, _)| r);
    let without_body = without_body.strip_suffix(" (empty body)").unwrap_or(without_body);
    without_body.split("; ").filter_map(|f| f.split_once(": ").map(|(s, _)| s)).collect::<Vec<_>>().join(", ")
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A captured value as text in a string: strings as they are, anything
/// else as JSON.
pub fn capture_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The request for one try, every reference expanded.
fn build_request(check: &Check, expand: &dyn Fn(&str) -> Result<String, String>) -> Result<Request, String> {
    let mut request =
        Request::new(check.method.clone(), expand(&check.url)?).timeout(check.timeout).max_body(check.max_body);
    for (name, value) in &check.headers {
        request = request.header(name.clone(), expand(value)?);
    }
    match &check.body {
        None => {}
        Some(RequestBody::Text(text)) => request = request.body_bytes(expand(text)?),
        Some(RequestBody::Json(value)) => request = request.body_json(&expect::expand_strings(value, expand)?),
    }
    Ok(request)
}

/// The one-line plan summary of a check.
pub fn plan_summary(check: &Check) -> String {
    format!("{} {} expect {}", check.method, check.url, check.expect.summary())
}

/// The plan detail of a check: tries, waits, what it sends and captures
/// (header names and env variable names, never values).
pub fn plan_detail(check: &Check) -> String {
    let retry = check.retry;
    let mut parts = vec![format!("timeout {}", show_duration(check.timeout))];
    if retry.attempts > 1 {
        let growth =
            if retry.backoff > 1.0 { format!(", ×{} after each failure", retry.backoff) } else { String::new() };
        parts.push(format!("up to {} attempts, {} apart{growth}", retry.attempts, show_duration(retry.interval)));
    }
    if check.success_threshold > 1 {
        parts.push(format!("needs {} consecutive passes", check.success_threshold));
    }
    if !check.headers.is_empty() {
        let names: Vec<&str> = check.headers.iter().map(|(n, _)| n.as_str()).collect();
        parts.push(format!("headers {}", names.join(", ")));
    }
    match &check.body {
        Some(RequestBody::Text(t)) => parts.push(format!("text body ({} bytes)", t.len())),
        Some(RequestBody::Json(_)) => parts.push("JSON body".to_owned()),
        None => {}
    }
    let env: Vec<String> =
        check.references().into_iter().filter(|(ns, _)| *ns == Namespace::Env).map(|(_, name)| name).collect();
    if !env.is_empty() {
        parts.push(format!("uses env {}", env.join(", ")));
    }
    if !check.captures.is_empty() {
        let captures: Vec<String> = check.captures.iter().map(|(n, p)| format!("{n} = {p}")).collect();
        parts.push(format!("captures {}", captures.join(", ")));
    }
    if !check.is_read_only() {
        parts.push(format!("{} may change state; verify skips it", check.method));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use serde_json::json;

    use super::*;
    use backout_sdk::Validate;

    use crate::config::{Config, Valid};

    /// A scripted transport: each `send` takes the next scripted answer,
    /// advancing the clock by its latency; `sleep` advances it too.
    #[derive(Default)]
    struct Fake {
        script: VecDeque<(Result<Response, http::Error>, Duration)>,
        sent: Vec<Request>,
        slept: Vec<Duration>,
        clock: Duration,
    }

    impl Fake {
        fn new() -> Self {
            Self::default()
        }

        fn answer(mut self, status: u16, body: &str) -> Self {
            self.script.push_back((Ok(response(status, body)), Duration::from_millis(5)));
            self
        }

        fn slow(mut self, status: u16, body: &str, latency_ms: u64) -> Self {
            self.script.push_back((Ok(response(status, body)), Duration::from_millis(latency_ms)));
            self
        }

        fn error(mut self, error: http::Error) -> Self {
            self.script.push_back((Err(error), Duration::from_millis(1)));
            self
        }
    }

    fn response(status: u16, body: &str) -> Response {
        Response { status, headers: vec![], body: body.as_bytes().to_vec() }
    }

    impl Transport for Fake {
        fn send(&mut self, request: Request) -> Result<Response, http::Error> {
            self.sent.push(request);
            let (answer, latency) = self.script.pop_front().expect("a scripted answer for every request");
            self.clock += latency;
            answer
        }

        fn sleep(&mut self, duration: Duration) {
            self.slept.push(duration);
            self.clock += duration;
        }

        fn now(&mut self) -> Duration {
            self.clock
        }
    }

    fn valid(config: Value) -> Valid {
        serde_json::from_value::<Config>(config).expect("deserializes").validate().expect("valid")
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    struct Ran {
        result: Result<Vec<CheckRecord>, StepError>,
        captures: Captures,
        log: Vec<String>,
    }

    fn run(config: Value, fake: &mut Fake, env: &dyn Fn(&str) -> Option<String>) -> Ran {
        let valid = valid(config);
        let mut captures = Captures::new();
        let mut log = Vec::new();
        let result = run_all(&valid.checks, fake, env, &mut captures, false, &mut |l| log.push(l));
        Ran { result, captures, log }
    }

    fn failure(ran: &Ran) -> String {
        match &ran.result {
            Err(StepError::Failed(m)) => m.clone(),
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    /// A failure that trying again later may cure: no answer, or 5xx/408/429.
    fn transient(ran: &Ran) -> String {
        match &ran.result {
            Err(StepError::Transient(m)) => m.clone(),
            other => panic!("expected a transient failure, got {other:?}"),
        }
    }

    fn health(retry: Value) -> Value {
        json!({"retry": retry, "checks": [{"name": "api health", "url": "http://127.0.0.1:3000/health",
            "expect": {"json": [{"path": "$.status", "equals": "healthy"}]}}]})
    }

    #[test]
    fn a_passing_check_is_recorded() {
        let mut fake = Fake::new().answer(200, r#"{"status":"healthy"}"#);
        let ran = run(health(json!({})), &mut fake, &no_env);
        let records = ran.result.unwrap();
        assert_eq!(
            records,
            [CheckRecord {
                name: "api health".into(),
                url: "http://127.0.0.1:3000/health".into(),
                status: Some(200),
                latency_ms: Some(5),
                attempts: 1,
                passed: true,
            }]
        );
        assert_eq!(fake.sent[0].method, "GET");
        assert_eq!(fake.sent[0].timeout, Some(Duration::from_secs(5)));
        assert_eq!(fake.sent[0].max_body, 1 << 20);
        assert!(fake.slept.is_empty());
        assert_eq!(
            ran.log,
            ["check #1 \"api health\": attempt 1/1: GET http://127.0.0.1:3000/health → 200 in 5ms: passed"]
        );
    }

    #[test]
    fn a_500_then_a_200_passes_on_the_second_attempt() {
        let mut fake = Fake::new().answer(500, "oops").answer(200, r#"{"status":"healthy"}"#);
        let ran = run(health(json!({"attempts": 3, "interval": "1s", "backoff": 2.0})), &mut fake, &no_env);
        let records = ran.result.unwrap();
        assert_eq!((records[0].attempts, records[0].status), (2, Some(200)));
        assert_eq!(fake.slept, [Duration::from_secs(1)]);
        assert_eq!(
            ran.log[0],
            "check #1 \"api health\": attempt 1/3: GET http://127.0.0.1:3000/health → 500 in 5ms: failed (status)"
        );
    }

    #[test]
    fn all_500_fails_after_every_attempt_with_growing_waits() {
        let mut fake = Fake::new().answer(500, "a").answer(503, "b").answer(500, r#"{"error":"down"}"#);
        let ran = run(health(json!({"attempts": 3, "interval": "1s", "backoff": 2.0})), &mut fake, &no_env);
        assert_eq!(
            transient(&ran),
            r#"check #1 "api health" failed after 3 attempts: status: expected 200-399, got 500 (body: {"error":"down"})"#
        );
        assert_eq!(fake.slept, [Duration::from_secs(1), Duration::from_secs(2)]);
        assert_eq!(fake.sent.len(), 3);
    }

    #[test]
    fn only_a_missing_answer_or_a_5xx_408_429_is_transient() {
        for (status, transient_expected) in
            [(500, true), (503, true), (429, true), (408, true), (404, false), (400, false)]
        {
            let mut fake = Fake::new().answer(status, "");
            let ran = run(health(json!({})), &mut fake, &no_env);
            assert_eq!(matches!(ran.result, Err(StepError::Transient(_))), transient_expected, "{status}");
        }
        let mut fake = Fake::new().error(http::Error::Timeout("waiting".into()));
        transient(&run(health(json!({})), &mut fake, &no_env));
    }

    #[test]
    fn the_failure_names_the_assertion_expected_and_actual_values() {
        let mut fake = Fake::new().answer(200, r#"{"status":"degraded"}"#);
        let ran = run(health(json!({})), &mut fake, &no_env);
        assert_eq!(
            failure(&ran),
            r#"check #1 "api health" failed after 1 attempt: $.status: expected "healthy", got "degraded" (body: {"status":"degraded"})"#
        );
        assert!(ran.log[0].ends_with("→ 200 in 5ms: failed ($.status)"), "no values in the log: {}", ran.log[0]);
    }

    #[test]
    fn long_bodies_are_cut_in_messages() {
        let body = format!(r#"{{"status":"{}"}}"#, "x".repeat(500));
        let mut fake = Fake::new().answer(200, &body);
        let message = failure(&run(health(json!({})), &mut fake, &no_env));
        let excerpt = message.split(" (body: ").nth(1).unwrap();
        assert_eq!(excerpt.chars().count(), BODY_EXCERPT + 2, "200 characters, `…` and `)`: {excerpt}");
        assert!(excerpt.ends_with("…)"));
        assert_eq!(body_excerpt(b""), " (empty body)");
        assert_eq!(body_excerpt(b"a\nb"), " (body: a b)");
    }

    #[test]
    fn a_denied_request_is_not_retried() {
        let reason = "http://10.0.0.1:80 is not granted (the step's `net` grant: http://127.0.0.1:3000)";
        let mut fake = Fake::new().error(http::Error::Denied(reason.into()));
        let ran = run(health(json!({"attempts": 5})), &mut fake, &no_env);
        let message = failure(&ran);
        assert_eq!(
            message,
            format!(
                "check #1 \"api health\" failed (not retried: trying again cannot help): \
                 GET http://127.0.0.1:3000/health: denied: {reason}"
            )
        );
        assert_eq!(fake.sent.len(), 1);
        assert!(fake.slept.is_empty());
    }

    #[test]
    fn refused_connections_and_timeouts_are_retried() {
        let mut fake = Fake::new()
            .error(http::Error::ConnectionRefused("nothing accepts connections at 127.0.0.1:3000".into()))
            .error(http::Error::Timeout("waiting".into()))
            .answer(200, r#"{"status":"healthy"}"#);
        let ran = run(health(json!({"attempts": 3, "interval": "100ms"})), &mut fake, &no_env);
        assert_eq!(ran.result.unwrap()[0].attempts, 3);
        assert_eq!(
            ran.log[0],
            "check #1 \"api health\": attempt 1/3: GET http://127.0.0.1:3000/health: connection refused: nothing \
             accepts connections at 127.0.0.1:3000"
        );
        let mut fake = Fake::new().error(http::Error::ConnectionRefused("nothing at 127.0.0.1:3000".into()));
        let message = transient(&run(health(json!({})), &mut fake, &no_env));
        assert_eq!(
            message,
            "check #1 \"api health\" failed after 1 attempt: GET http://127.0.0.1:3000/health: connection refused: \
             nothing at 127.0.0.1:3000"
        );
    }

    #[test]
    fn success_threshold_needs_consecutive_passes() {
        let ok = r#"{"status":"healthy"}"#;
        let mut fake = Fake::new().answer(200, ok).answer(500, "").answer(200, ok).answer(200, ok);
        let config = json!({"success_threshold": 2, "retry": {"attempts": 5, "interval": "1s", "backoff": 3},
            "checks": [{"name": "api", "url": "http://h/"}]});
        let ran = run(config, &mut fake, &no_env);
        assert_eq!(ran.result.unwrap()[0].attempts, 4);
        // pass → interval; fail → interval (first failure); pass → interval.
        assert_eq!(fake.slept, [Duration::from_secs(1); 3]);
    }

    #[test]
    fn a_check_stops_early_when_the_threshold_is_out_of_reach() {
        let mut fake = Fake::new().answer(200, "").answer(200, "").answer(500, "");
        let config = json!({"success_threshold": 3, "retry": {"attempts": 4},
            "checks": [{"name": "api", "url": "http://h/"}]});
        let message = transient(&run(config, &mut fake, &no_env));
        assert_eq!(
            message,
            "check #1 \"api\" failed after 3 attempts (of 4: 3 consecutive passes are no longer possible): \
             status: expected 200-399, got 500 (empty body)"
        );
        assert_eq!(fake.sent.len(), 3);
    }

    #[test]
    fn captures_are_stored_and_read_by_later_checks() {
        let config = json!({"checks": [
            {"name": "store", "method": "POST", "url": "http://h/memories",
             "body": {"json": {"text": "hello", "tags": ["${env.TAG}"]}},
             "capture": {"memory_id": "$.result.id", "doc": "$.result"}},
            {"name": "read", "url": "http://h/memories/${captures.memory_id}",
             "headers": {"X-Doc": "${captures.doc}"},
             "expect": {"json": [{"path": "$.id", "equals": "${captures.memory_id}"}], "body_contains": "hello"}}
        ]});
        let mut fake =
            Fake::new().answer(201, r#"{"result":{"id":"m-42","n":1}}"#).answer(200, r#"{"id":"m-42","text":"hello"}"#);
        let env = |name: &str| (name == "TAG").then(|| "smoke".to_owned());
        let ran = run(config, &mut fake, &env);
        let records = ran.result.unwrap();
        assert_eq!(records[1].url, "http://h/memories/m-42");
        assert_eq!(fake.sent[1].url, "http://h/memories/m-42");
        assert_eq!(fake.sent[1].headers, [("X-Doc".to_owned(), r#"{"id":"m-42","n":1}"#.to_owned())]);
        let sent_body = match &fake.sent[0].body {
            http::Body::Bytes(b) => String::from_utf8(b.clone()).unwrap(),
            other => panic!("{other:?}"),
        };
        assert_eq!(sent_body, r#"{"tags":["smoke"],"text":"hello"}"#);
        assert_eq!(fake.sent[0].headers, [("content-type".to_owned(), "application/json".to_owned())]);
        assert_eq!(ran.captures["memory_id"], json!("m-42"));
        assert_eq!(ran.captures["doc"], json!({"id": "m-42", "n": 1}));
    }

    #[test]
    fn a_missing_capture_fails_the_try() {
        let config = json!({"retry": {"attempts": 2, "interval": "10ms"}, "checks": [
            {"name": "store", "url": "http://h/", "capture": {"id": "$.result.id"}}
        ]});
        let mut fake = Fake::new().answer(200, r#"{"result":{}}"#).answer(200, "not json");
        let ran = run(config, &mut fake, &no_env);
        let message = failure(&ran);
        assert!(message.contains("body: expected JSON to capture from, got invalid JSON"), "{message}");
        assert!(ran.log[0].ends_with("failed (capture `id`)"), "{}", ran.log[0]);
        assert!(ran.captures.is_empty());
    }

    #[test]
    fn env_values_are_sent_but_never_shown() {
        let config = json!({"checks": [{"name": "api", "url": "http://h/x?key=${env.API_KEY}",
            "headers": {"Authorization": "Bearer ${env.API_KEY}"}}]});
        let mut fake = Fake::new().answer(401, "");
        let env = |name: &str| (name == "API_KEY").then(|| "s3cret".to_owned());
        let ran = run(config, &mut fake, &env);
        assert_eq!(fake.sent[0].headers, [("Authorization".to_owned(), "Bearer s3cret".to_owned())]);
        assert_eq!(fake.sent[0].url, "http://h/x?key=s3cret");
        let message = failure(&ran);
        assert!(!message.contains("s3cret"), "{message}");
        assert!(ran.log[0].contains("GET http://h/x?key=${env.API_KEY} → 401"), "{:?}", ran.log);
        assert!(ran.log.iter().all(|l| !l.contains("s3cret")), "{:?}", ran.log);
    }

    #[test]
    fn an_unset_env_variable_is_a_precondition() {
        let config = json!({"checks": [{"name": "api", "url": "http://h/", "headers": {"K": "${env.API_KEY}"}}]});
        let mut fake = Fake::new();
        let ran = run(config, &mut fake, &no_env);
        assert_eq!(
            ran.result.unwrap_err(),
            StepError::Precondition(
                "check #1 \"api\": `${env.API_KEY}` is not set in the host's environment".to_owned()
            )
        );
        assert!(fake.sent.is_empty());
    }

    #[test]
    fn max_latency_fails_a_slow_response() {
        let config = json!({"checks": [{"name": "fast", "url": "http://h/", "expect": {"max_latency_ms": 500}}]});
        let mut fake = Fake::new().slow(200, "ok", 812);
        let message = failure(&run(config, &mut fake, &no_env));
        assert_eq!(message, "check #1 \"fast\" failed after 1 attempt: latency: expected at most 500ms, got 812ms");
    }

    #[test]
    fn later_checks_do_not_run_after_a_failure_and_state_changes_are_named() {
        let config = json!({"checks": [
            {"name": "store", "method": "POST", "url": "http://h/m", "body": "x"},
            {"name": "read", "url": "http://h/m"},
            {"name": "never", "url": "http://h/n"}
        ]});
        let mut fake = Fake::new().answer(201, "").answer(404, "no");
        let message = failure(&run(config, &mut fake, &no_env));
        assert!(message.starts_with("check #2 \"read\" failed after 1 attempt: status: expected 200-399, got 404"));
        assert!(message.ends_with(" (requests that may have changed state were sent by \"store\")"), "{message}");
        assert_eq!(fake.sent.len(), 2);
    }

    #[test]
    fn read_only_runs_skip_state_changing_checks_and_reuse_captures() {
        let v = valid(json!({"checks": [
            {"name": "store", "method": "POST", "url": "http://h/m", "capture": {"id": "$.id"}},
            {"name": "read", "url": "http://h/m/${captures.id}"}
        ]}));
        let mut fake = Fake::new().answer(200, "{}");
        let mut captures = Captures::from([("id".to_owned(), json!(7))]);
        let mut log = Vec::new();
        let records = run_all(&v.checks, &mut fake, &no_env, &mut captures, true, &mut |l| log.push(l)).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(fake.sent[0].url, "http://h/m/7");
        assert_eq!(log[0], "check #1 \"store\": skipped: POST may change state, and verify changes nothing");
    }

    #[test]
    fn plan_lines_show_templates_and_names_never_values() {
        let v = valid(json!({"retry": {"attempts": 3, "backoff": 2}, "success_threshold": 2, "checks": [
            {"name": "store", "method": "POST", "url": "http://h/m", "headers": {"Authorization": "Bearer ${env.API_KEY}"},
             "body": {"json": {"a": 1}}, "capture": {"id": "$.id"},
             "expect": {"status": [200, 201], "json": [{"path": "$.id", "exists": true}]}}
        ]}));
        let c = &v.checks[0];
        assert_eq!(plan_summary(c), "POST http://h/m expect status 200, 201, $.id exists");
        assert_eq!(
            plan_detail(c),
            "timeout 5s; up to 3 attempts, 1s apart, ×2 after each failure; needs 2 consecutive passes; \
             headers Authorization, content-type; JSON body; uses env API_KEY; captures id = $.id; \
             POST may change state; verify skips it"
        );
    }
}
