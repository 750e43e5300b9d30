//! `smoke-test`: a backout step that runs HTTP health checks, reaching only
//! the origins the runbook grants.
//!
//! # Why it exists
//!
//! The last step of most rollback runbooks is a shell loop of `curl`
//! calls: is `/health` up, does the database answer, does a search return
//! results, can we store and read back a record. Written by hand, that loop
//! runs with every privilege of the operator, retries forever or not at
//! all, greps JSON with `grep`, and prints API keys into the terminal. This
//! step says the same thing as data: each check names a request and what
//! the answer must look like; `plan` proves every target is in the step's
//! `net` grant before anything runs; retries, backoff and a success
//! threshold are explicit; a failure says which assertion failed, what was
//! expected and what came back; secrets stay `${env.…}` placeholders in
//! the plan, logs and outputs.
//!
//! # Config
//!
//! ```toml
//! [[step]]
//! id = "smoke"
//! uses = "smoke-test"
//! [step.grants]
//! net = ["http://127.0.0.1:3000"]
//! env = ["API_KEY"]
//! [step.with]
//! timeout = "5s"
//! retry = { attempts = 5, interval = "1s", backoff = 2.0 }
//! [[step.with.checks]]
//! name = "api health"
//! url = "http://127.0.0.1:3000/health"
//! expect.json = [{ path = "$.status", equals = "healthy" }]
//! ```
//!
//! Step-level keys are defaults for every check; a check may override each:
//!
//! * `timeout` (default `"5s"`, at most `"10m"`): limit for one request,
//!   from sending it to the last byte of the body;
//! * `retry`: `attempts` (default 1; tries in all, the first included; at
//!   most 100), `interval` (default `"1s"`; the wait after the first
//!   failure), `backoff` (default 1.0, up to 10.0; each wait after a failure
//!   is the previous one times this), `max_interval` (default `"30s"`; no
//!   single wait is longer). A check's `retry` table overrides the step's
//!   key by key. The waits of one check may add up to 15 minutes at most;
//!   `plan` refuses more;
//! * `success_threshold` (default 1): consecutive passes needed, as in
//!   Kubernetes probes; between passes the step waits `interval`. A check
//!   stops early when its remaining attempts can no longer reach it;
//! * `max_body` (default `"1MiB"`, at most `"64MiB"`): most bytes read from
//!   one response; a larger body fails the try.
//!
//! `checks` (at least one) run in order; the first that fails ends the
//! step. Each check has:
//!
//! * `name` (default `"METHOD url"`): used in the plan, logs, outputs and
//!   errors;
//! * `method` (default `GET`);
//! * `url` (required): absolute `http://` or `https://`; its origin must be
//!   in the step's `net` grant. Redirects are not followed;
//! * `headers`: a table of names and string values;
//! * `body`: a string, or `{ json = … }` sent as JSON with
//!   `content-type: application/json` unless `headers` gives one;
//! * `expect.status` (default `"200-399"`): a code (`200`), a class
//!   (`"2xx"`), a range (`"200-299"`) or a list of those (`["2xx", 304]`);
//! * `expect.json`: a list of `{ path = "…", <condition> = … }`; a path is
//!   `$`, then `.key`, `['key']` or `[0]` steps (see [`jsonpath`]). The
//!   conditions: `equals` (JSON equality, so `1` equals `1.0`), `in` (a list
//!   of values), `exists = true|false`, `not_exists = true`, `matches` (a
//!   regular expression, on a string or on the JSON text of another value),
//!   `gt` and `lt` (numbers). An entry may hold several conditions, all of
//!   which must hold. A path that leads nowhere is "missing": only
//!   `exists = false`/`not_exists = true` accept it;
//! * `expect.body_contains`: text the body must contain;
//! * `expect.body_matches`: a regular expression the body must match
//!   (syntax of the `regex-lite` crate: no Unicode classes);
//! * `expect.max_latency_ms`: the slowest acceptable response;
//! * `capture`: a table of `name = "<JSON path>"`; after the check passes,
//!   each value is saved and later checks use it as `${captures.name}`
//!   (strings as they are, other values as JSON text). A capture whose path
//!   is missing fails the try.
//!
//! `${env.NAME}` (NAME must be in the step's `env` grant) and
//! `${captures.NAME}` are expanded in `url`, header values, `body`,
//! `expect.body_contains` and the values of `expect.json` `equals`/`in`,
//! inside the sandbox and only when a request is built: the plan, logs,
//! outputs and error messages keep the placeholder of an env value.
//!
//! # What each call does
//!
//! * `plan` validates everything (statuses, paths, regular expressions,
//!   durations, that every `${captures.x}` is captured by an earlier check
//!   and every `${env.X}` is set) and asks the host whether each URL is
//!   granted, without sending anything. A URL whose path uses a capture has
//!   its origin checked; one whose origin uses a capture is checked when
//!   sent. One action per check.
//! * `run` runs the checks. Outputs: `checks` (`name`, `url`, `status`,
//!   `latency_ms`, `attempts`, `passed` per check) and `captures`.
//! * `verify` runs the read-only checks (`GET`, `HEAD`) again,
//!   with the values `run` captured; it skips checks that may change state
//!   (`POST`, …), since `verify` changes nothing.
//! * `undo` has nothing to undo: the step changes nothing itself. A check
//!   that sends `POST`, `PUT` or `DELETE` may have changed the service; that
//!   is not reversed (give such requests their own cleanup if needed).
//!
//! A request the host denies fails its check at once, without retries;
//! refused connections, timeouts and failed expectations are retried.

pub mod checks;
pub mod config;
pub mod expect;
pub mod jsonpath;

use backout_sdk::config::{Pointer, Problems};
use backout_sdk::text::count;
use backout_sdk::vars::{self, Namespace};
use backout_sdk::{Action, Info, Needs, Outcome, Step, StepError, log, validated};
use serde::{Deserialize, Serialize};

use crate::checks::{Captures, CheckRecord, HostTransport};
use crate::config::{Check, Config, Valid, label};

/// The step. Every call gets a fresh instance, so it holds no state: what
/// `verify` needs travels in [`Outputs`].
#[derive(Debug)]
pub struct SmokeTest;

/// What `run` returns, and `verify` and `undo` receive back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outputs {
    /// One record per check, in order.
    pub checks: Vec<CheckRecord>,
    /// Every value captured, by name.
    #[serde(default)]
    pub captures: Captures,
}

impl Step for SmokeTest {
    type Config = Config;
    type Outputs = Outputs;

    fn describe() -> Info {
        Info::new(
            "smoke-test",
            env!("CARGO_PKG_VERSION"),
            "HTTP health checks with retries, JSON assertions and captured values, to granted origins only",
        )
        .schema(config::schema())
        .needs(Needs { network: true, ..Needs::default() })
    }

    fn plan(config: Config) -> Result<Vec<Action>, StepError> {
        plan_actions(&validated(config)?, &backout_sdk::http::check, &vars::env)
    }

    fn run(config: Config) -> Result<Outcome<Outputs>, StepError> {
        let valid = validated(config)?;
        let mut captures = Captures::new();
        let records = checks::run_all(
            &valid.checks,
            &mut HostTransport::new(),
            &vars::env,
            &mut captures,
            false,
            &mut log::to_host,
        )?;
        Ok(Outcome::new(run_summary(&records), Outputs { checks: records, captures }))
    }

    fn verify(config: Config, outputs: Outputs) -> Result<(), StepError> {
        let valid = validated(config)?;
        let mut captures = outputs.captures;
        checks::run_all(&valid.checks, &mut HostTransport::new(), &vars::env, &mut captures, true, &mut log::to_host)?;
        Ok(())
    }

    fn undo(config: Config, outputs: Outputs) -> Result<Outcome<Outputs>, StepError> {
        let valid = validated(config)?;
        Ok(Outcome::new(undo_summary(&valid), outputs))
    }
}

backout_sdk::export_step!(SmokeTest);

/// Validates what plan can without sending anything and returns one action
/// per check. `check` asks the host about a method and URL
/// ([`backout_sdk::http::check`]); `env` reads granted variables.
pub fn plan_actions(
    valid: &Valid,
    check: &dyn Fn(&str, &str) -> Result<(), String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Action>, StepError> {
    let mut unset = Vec::new();
    let mut denied = Problems::new();
    let mut actions = Vec::with_capacity(valid.checks.len());
    for (index, c) in valid.checks.iter().enumerate() {
        let who = label(index, &c.name);
        for (namespace, name) in c.references() {
            if namespace == Namespace::Env && env(&name).is_none() {
                unset.push(format!(
                    "{who}: `${{env.{name}}}` is not set (is `{name}` in the step's `env` grant and set for backout?)"
                ));
            }
        }
        let note = match grant_target(c, env) {
            Target::Url(url, note) => {
                if let Err(reason) = ask(check, &c.method, &url) {
                    denied.at(
                        Pointer::root().key("checks").index(index).key("url"),
                        format!("{who}: {} {url}: {reason}", c.method),
                    );
                }
                note
            }
            Target::Unknown(note) => Some(note),
        };
        let mut detail = checks::plan_detail(c);
        if let Some(note) = note {
            detail.push_str("; ");
            detail.push_str(&note);
        }
        // A check only looks, unless its method may change what it asks.
        let action = match c.is_read_only() {
            true => Action::check(checks::plan_summary(c)),
            false => Action::new(checks::plan_summary(c)),
        };
        actions.push(action.detail(detail));
    }
    if !denied.is_empty() {
        return Err(StepError::from(denied));
    }
    if !unset.is_empty() {
        return Err(StepError::Precondition(unset.join("; ")));
    }
    Ok(actions)
}

/// Asks the host about `method` to `url`. The host lets `plan` itself send
/// only `GET` and `HEAD`, and says so for other methods; grants name
/// origins, not methods, so a `GET` to the same URL answers whether `run`
/// may reach it.
fn ask(check: &dyn Fn(&str, &str) -> Result<(), String>, method: &str, url: &str) -> Result<(), String> {
    match check(method, url) {
        Err(_) if !matches!(method, "GET" | "HEAD") => check("GET", url),
        answer => answer,
    }
}

/// What plan can check of a check's URL.
enum Target {
    /// This URL, with a note when it is only the origin.
    Url(String, Option<String>),
    /// Nothing before `run`: the origin uses a captured value.
    Unknown(String),
}

fn grant_target(c: &Check, env: &dyn Fn(&str) -> Option<String>) -> Target {
    // Env values are known now; the host checks them as part of the URL.
    let url = vars::expand_only(&c.url, Namespace::Env, env).unwrap_or_else(|_| c.url.clone());
    let captures = vars::references(&url);
    if captures.is_empty() {
        return Target::Url(url, None);
    }
    match config::origin_end(&url) {
        Some(end) if captures.iter().all(|r| r.span.start >= end) => Target::Url(
            format!("{}/", &url[..end]),
            Some("origin checked; the rest of the URL uses captured values".to_owned()),
        ),
        _ => Target::Unknown(
            "not checked against the `net` grant during plan: the origin uses captured values (the host \
             checks the request when it is sent)"
                .to_owned(),
        ),
    }
}

fn run_summary(records: &[CheckRecord]) -> String {
    let parts: Vec<String> = records
        .iter()
        .map(|r| {
            let status = r.status.map(|s| s.to_string()).unwrap_or_default();
            let latency = r.latency_ms.map(|l| format!(" in {l}ms")).unwrap_or_default();
            let tries = if r.attempts > 1 { format!(", {} attempts", r.attempts) } else { String::new() };
            format!("\"{}\" {status}{latency}{tries}", r.name)
        })
        .collect();
    format!("{} passed: {}", count(records.len(), "check"), parts.join("; "))
}

fn undo_summary(valid: &Valid) -> String {
    let changing: Vec<String> =
        valid.checks.iter().filter(|c| !c.is_read_only()).map(|c| format!("\"{}\" ({})", c.name, c.method)).collect();
    if changing.is_empty() {
        "nothing to undo: the smoke test only read from the service".to_owned()
    } else {
        format!(
            "nothing to undo: the smoke test changes nothing itself; what {} sent is not reversed",
            changing.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use serde_json::json;

    use backout_sdk::Validate;

    use super::*;

    fn valid(config: serde_json::Value) -> Valid {
        serde_json::from_value::<Config>(config).expect("deserializes").validate().expect("valid")
    }

    fn granted(origin: &'static str) -> impl Fn(&str, &str) -> Result<(), String> {
        move |method: &str, url: &str| {
            if url.starts_with(origin) {
                Ok(())
            } else {
                Err(format!("{url} is not granted (the step's `net` grant: {origin}); {method}"))
            }
        }
    }

    fn env(name: &str) -> Option<String> {
        (name == "API_KEY").then(|| "s3cret".to_owned())
    }

    #[test]
    fn describe_names_the_step_and_needs_the_network() {
        let info = SmokeTest::describe();
        assert_eq!(info.name, "smoke-test");
        assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
        assert_eq!(info.needs, Needs { network: true, ..Needs::default() });
        assert_eq!(info.config_schema["type"], "object");
    }

    #[test]
    fn plan_returns_one_action_per_check() {
        let v = valid(json!({"checks": [
            {"name": "api health", "url": "http://127.0.0.1:3000/health",
             "expect": {"json": [{"path": "$.status", "equals": "healthy"}]}},
            {"name": "db", "url": "http://127.0.0.1:3000/health/db", "headers": {"Authorization": "Bearer ${env.API_KEY}"}}
        ]}));
        let actions = plan_actions(&v, &granted("http://127.0.0.1:3000"), &env).unwrap();
        assert_eq!(actions.len(), 2);
        assert_eq!(
            actions[0].summary,
            r#"GET http://127.0.0.1:3000/health expect status 200-399, $.status == "healthy""#
        );
        assert_eq!(actions[0].detail.as_deref(), Some("timeout 5s"));
        assert!(actions.iter().all(|a| a.effect == backout_sdk::Effect::Check), "a GET only looks");
        let detail = actions[1].detail.as_deref().unwrap();
        assert!(detail.contains("headers Authorization; uses env API_KEY") && !detail.contains("s3cret"), "{detail}");
    }

    #[test]
    fn plan_refuses_targets_outside_the_grant_naming_the_check_and_reason() {
        let v = valid(json!({"checks": [
            {"name": "ok", "url": "http://127.0.0.1:3000/health"},
            {"name": "elsewhere", "url": "http://10.0.0.1/health"}
        ]}));
        let e = plan_actions(&v, &granted("http://127.0.0.1:3000"), &env).unwrap_err();
        assert_eq!(
            e,
            StepError::InvalidConfig(
                "`#/checks/1/url`: check #2 \"elsewhere\": GET http://10.0.0.1/health: http://10.0.0.1/health is not granted (the \
                 step's `net` grant: http://127.0.0.1:3000); GET"
                    .to_owned()
            )
        );
    }

    #[test]
    fn plan_checks_post_targets_by_their_origin_since_plan_itself_may_only_read() {
        let asked = RefCell::new(Vec::new());
        let host = |method: &str, url: &str| {
            asked.borrow_mut().push(format!("{method} {url}"));
            match method {
                "GET" | "HEAD" => Ok(()),
                other => Err(format!("`plan` may only send GET and HEAD requests, not {other}")),
            }
        };
        let v = valid(json!({"checks": [{"name": "store", "method": "POST", "url": "http://127.0.0.1:3000/m"}]}));
        assert!(plan_actions(&v, &host, &env).is_ok());
        assert_eq!(*asked.borrow(), ["POST http://127.0.0.1:3000/m", "GET http://127.0.0.1:3000/m"]);
    }

    #[test]
    fn plan_checks_env_urls_expanded_and_capture_urls_by_origin() {
        let asked = RefCell::new(Vec::new());
        let host = |_: &str, url: &str| {
            asked.borrow_mut().push(url.to_owned());
            Ok(())
        };
        let v = valid(json!({"checks": [
            {"name": "store", "method": "POST", "url": "http://127.0.0.1:3000/m?key=${env.API_KEY}", "capture": {"id": "$.id", "host": "$.host"}},
            {"name": "read", "url": "http://127.0.0.1:3000/m/${captures.id}"},
            {"name": "elsewhere", "url": "http://${captures.host}/x"}
        ]}));
        let actions = plan_actions(&v, &host, &env).unwrap();
        assert_eq!(*asked.borrow(), ["http://127.0.0.1:3000/m?key=s3cret", "http://127.0.0.1:3000/"]);
        assert!(actions[0].summary.contains("${env.API_KEY}") && !actions[0].summary.contains("s3cret"));
        assert!(
            actions[1].detail.as_deref().unwrap().ends_with("origin checked; the rest of the URL uses captured values")
        );
        assert!(actions[2].detail.as_deref().unwrap().contains("not checked against the `net` grant during plan"));
    }

    #[test]
    fn plan_refuses_unset_env_variables() {
        let v = valid(
            json!({"checks": [{"name": "api", "url": "http://127.0.0.1:3000/", "headers": {"K": "${env.OTHER}"}}]}),
        );
        let e = plan_actions(&v, &granted("http://127.0.0.1:3000"), &env).unwrap_err();
        assert_eq!(
            e,
            StepError::Precondition(
                "check #1 \"api\": `${env.OTHER}` is not set (is `OTHER` in the step's `env` grant and set for backout?)"
                    .to_owned()
            )
        );
    }

    #[test]
    fn invalid_config_is_reported_by_plan() {
        let config: Config =
            serde_json::from_value(json!({"checks": [{"url": "http://h/", "expect": {"status": "abc"}}]})).unwrap();
        let e = SmokeTest::plan(config).unwrap_err();
        assert!(matches!(&e, StepError::InvalidConfig(m) if m.contains("`abc` is not a status")), "{e}");
    }

    #[test]
    fn undo_changes_nothing_and_says_what_it_cannot_reverse() {
        let config = json!({"checks": [{"name": "h", "url": "http://h/"}]});
        let outputs = Outputs { checks: vec![], captures: Captures::new() };
        let c: Config = serde_json::from_value(config).unwrap();
        let outcome = SmokeTest::undo(c, outputs.clone()).unwrap();
        assert_eq!(outcome.summary, "nothing to undo: the smoke test only read from the service");
        assert_eq!(outcome.outputs, outputs);
        let c: Config =
            serde_json::from_value(json!({"checks": [{"name": "store", "method": "POST", "url": "http://h/"}]}))
                .unwrap();
        let outcome = SmokeTest::undo(c, outputs).unwrap();
        assert_eq!(
            outcome.summary,
            "nothing to undo: the smoke test changes nothing itself; what \"store\" (POST) sent is not reversed"
        );
    }

    #[test]
    fn outputs_serialize_with_the_documented_shape() {
        let outputs = Outputs {
            checks: vec![CheckRecord {
                name: "api health".into(),
                url: "http://127.0.0.1:3000/health".into(),
                status: Some(200),
                latency_ms: Some(12),
                attempts: 1,
                passed: true,
            }],
            captures: Captures::from([("memory_id".to_owned(), json!("m-1")), ("n".to_owned(), json!(3))]),
        };
        let value = serde_json::to_value(&outputs).unwrap();
        assert_eq!(
            value,
            json!({
                "checks": [{"name": "api health", "url": "http://127.0.0.1:3000/health", "status": 200,
                            "latency_ms": 12, "attempts": 1, "passed": true}],
                "captures": {"memory_id": "m-1", "n": 3}
            })
        );
        assert_eq!(serde_json::from_value::<Outputs>(value).unwrap(), outputs);
        let without_captures: Outputs = serde_json::from_value(json!({"checks": []})).unwrap();
        assert!(without_captures.captures.is_empty());
    }

    #[test]
    fn run_summary_lists_each_check() {
        let record = |name: &str, attempts| CheckRecord {
            name: name.into(),
            url: "u".into(),
            status: Some(200),
            latency_ms: Some(3),
            attempts,
            passed: true,
        };
        assert_eq!(run_summary(&[record("a", 1)]), "1 check passed: \"a\" 200 in 3ms");
        assert_eq!(
            run_summary(&[record("a", 1), record("b", 2)]),
            "2 checks passed: \"a\" 200 in 3ms; \"b\" 200 in 3ms, 2 attempts"
        );
    }
}
