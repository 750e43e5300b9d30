//! smoke-test through the real CLI against a real HTTP server on 127.0.0.1
//! that counts every request it receives.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use backout_tests::SMOKE_TEST;
use backout_tests::cli::{EXIT_UNDONE, Output, Sandbox};
use backout_tests::http_server::{Recorded, Response, TestServer};
use serde_json::json;

use crate::bin;

const API_KEY: &str = "sk-live-7c1d9e2fa40b";

fn sandbox() -> Sandbox {
    let sb = Sandbox::new(bin());
    sb.add(SMOKE_TEST);
    sb
}

/// A runbook with one smoke-test step: `with` is TOML for `[step.with]`
/// (checks as `[[step.with.checks]]`), granted `net` to `origin` and the
/// `API_KEY` variable.
fn runbook(sb: &Sandbox, origin: &str, with: &str, extra: &str) -> PathBuf {
    sb.write(
        "smoke.toml",
        format!(
            "version = 1\nname = \"smoke\"\n\n[[step]]\nid = \"smoke\"\nuses = \"smoke-test@0.1\"\n{extra}\n\
             [step.grants]\nnet = [\"{origin}\"]\nenv = [\"API_KEY\"]\n\n[step.with]\n{with}\n"
        ),
    )
}

/// Runs `backout ARGS… RUNBOOK` with `API_KEY` set.
fn backout(sb: &Sandbox, args: &[&str], runbook: &Path) -> Output {
    let args: Vec<&str> = args.iter().copied().chain([runbook.to_str().unwrap()]).collect();
    sb.run_with_env(&args, &[("API_KEY", &API_KEY)])
}

fn run(sb: &Sandbox, runbook: &Path) -> Output {
    backout(sb, &["run", "--yes"], runbook)
}

fn plan(sb: &Sandbox, runbook: &Path) -> Output {
    backout(sb, &["plan"], runbook)
}

/// The service a rollback leaves behind, as the typical smoke sequence sees
/// it: health, database health, search, and a memory store that can be
/// written then read back.
fn service() -> TestServer {
    let stored = Arc::new(std::sync::Mutex::new(None::<String>));
    TestServer::start(move |req: &Recorded, _| match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/health") => Response::json(200, &json!({ "status": "healthy", "version": "2.0.0" })),
        ("GET", "/db/health") => Response::json(200, &json!({ "database": "ok", "latency_ms": 3 })),
        ("POST", "/search") => Response::json(200, &json!({ "results": [{ "id": "m-1", "score": 0.93 }] })),
        ("POST", "/memories") => {
            let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
            *stored.lock().unwrap() = body["text"].as_str().map(str::to_string);
            Response::json(201, &json!({ "id": "m-42" }))
        }
        ("GET", "/memories/m-42") => match &*stored.lock().unwrap() {
            Some(text) => Response::json(200, &json!({ "id": "m-42", "text": text })),
            None => Response::json(404, &json!({ "error": "no such memory" })),
        },
        _ => Response::not_found(),
    })
}

#[test]
fn the_typical_rollback_smoke_sequence_passes_with_a_capture_round_trip() {
    let server = service();
    let sb = sandbox();
    let url = server.url();
    let with = format!(
        r#"
[[step.with.checks]]
name = "api health"
url = "{url}/health"
headers = {{ Authorization = "Bearer ${{env.API_KEY}}" }}
expect.json = [{{ path = "$.status", equals = "healthy" }}]

[[step.with.checks]]
name = "database health"
url = "{url}/db/health"
expect = {{ status = 200, json = [{{ path = "$.database", equals = "ok" }}, {{ path = "$.latency_ms", lt = 100 }}] }}

[[step.with.checks]]
name = "search"
method = "POST"
url = "{url}/search"
body = {{ json = {{ query = "rollback" }} }}
expect.json = [{{ path = "$.results", exists = true }}, {{ path = "$.results[0].score", gt = 0.5 }}]

[[step.with.checks]]
name = "store"
method = "POST"
url = "{url}/memories"
body = {{ json = {{ text = "smoke-test canary" }} }}
expect.status = 201
capture = {{ memory_id = "$.id" }}

[[step.with.checks]]
name = "read back"
url = "{url}/memories/${{captures.memory_id}}"
expect.json = [{{ path = "$.text", equals = "smoke-test canary" }}]
"#
    );
    let path = runbook(&sb, &url, &with, "");
    let out = run(&sb, &path);
    assert_eq!(out.code, 0, "{}", out.all());
    let paths: Vec<String> = server.requests().iter().map(|r| format!("{} {}", r.method, r.path)).collect();
    // run, then verify re-runs the read-only checks with run's capture.
    let run = ["GET /health", "GET /db/health", "POST /search", "POST /memories", "GET /memories/m-42"];
    let verify = ["GET /health", "GET /db/health", "GET /memories/m-42"];
    assert_eq!(paths, [&run[..], &verify[..]].concat(), "{}", out.all());
    assert_eq!(server.requests()[0].header("authorization"), Some(format!("Bearer {API_KEY}").as_str()));
    assert!(out.stdout.contains("m-42"), "the capture is in the outputs:\n{}", out.all());
    for text in [&out.stdout, &out.stderr, &sb.journals()] {
        assert!(!text.contains(API_KEY), "the API key leaked:\n{text}");
    }
}

#[test]
fn plan_lists_every_check_and_sends_nothing() {
    let server = service();
    let sb = sandbox();
    let url = server.url();
    let with = format!(
        "[[step.with.checks]]\nname = \"api health\"\nurl = \"{url}/health\"\n\n\
         [[step.with.checks]]\nname = \"store\"\nmethod = \"POST\"\nurl = \"{url}/memories\"\nbody = \"x\"\n"
    );
    let path = runbook(&sb, &url, &with, "");
    let out = plan(&sb, &path);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains(&format!("{url}/health")), "{}", out.all());
    assert!(out.stdout.contains(&format!("POST {url}/memories")), "{}", out.all());
    assert_eq!(server.count(), 0, "plan sent a request");
}

#[test]
fn an_ungranted_target_fails_the_plan_and_nothing_is_sent() {
    let server = service();
    let sb = sandbox();
    let url = server.url();
    let with = format!("[[step.with.checks]]\nname = \"sneaky\"\nurl = \"http://127.1:{}/health\"\n", server.port());
    let path = runbook(&sb, &url, &with, "");
    let out = run(&sb, &path);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.all().contains("sneaky"), "{}", out.all());
    assert_eq!(server.count(), 0);
}

#[test]
fn unhealthy_json_fails_with_the_assertion_expected_and_actual() {
    let server = TestServer::start(|_, _| Response::json(200, &json!({ "status": "degraded" })));
    let sb = sandbox();
    let url = server.url();
    let with = format!(
        "[[step.with.checks]]\nname = \"api health\"\nurl = \"{url}/health\"\n\
         expect.json = [{{ path = \"$.status\", equals = \"healthy\" }}]\n"
    );
    let out = run(&sb, &runbook(&sb, &url, &with, ""));
    assert_eq!(out.code, EXIT_UNDONE, "{}", out.all());
    for part in ["api health", "$.status", "healthy", "degraded"] {
        assert!(out.stdout.contains(part), "missing `{part}`:\n{}", out.all());
    }
    assert_eq!(server.count(), 1);
}

#[test]
fn a_response_over_the_latency_budget_fails() {
    let server = TestServer::start(|_, _| Response::json(200, &json!({})).delay(Duration::from_millis(400)));
    let sb = sandbox();
    let url = server.url();
    let with = format!("[[step.with.checks]]\nname = \"slow\"\nurl = \"{url}/\"\nexpect.max_latency_ms = 100\n");
    let out = run(&sb, &runbook(&sb, &url, &with, ""));
    assert_eq!(out.code, EXIT_UNDONE, "{}", out.all());
    assert!(out.stdout.contains("slow") && out.stdout.contains("100"), "{}", out.all());
}

#[test]
fn a_500_then_a_200_passes_on_retry() {
    let server = TestServer::start(|_, n| {
        if n == 0 { Response::json(500, &json!({ "error": "warming up" })) } else { Response::json(200, &json!({})) }
    });
    let sb = sandbox();
    let url = server.url();
    let with = format!(
        "retry = {{ attempts = 3, interval = \"50ms\" }}\n[[step.with.checks]]\nname = \"health\"\nurl = \"{url}/health\"\n"
    );
    let out = run(&sb, &runbook(&sb, &url, &with, ""));
    assert_eq!(out.code, 0, "{}", out.all());
    // Two tries in run, one in verify.
    assert_eq!(server.count(), 3, "{}", out.all());
}

#[test]
fn connection_refused_fails_after_the_retries() {
    // A port that was free a moment ago: nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let sb = sandbox();
    let with = format!(
        "retry = {{ attempts = 2, interval = \"10ms\" }}\n[[step.with.checks]]\nname = \"down\"\nurl = \"{url}/health\"\n"
    );
    let out = run(&sb, &runbook(&sb, &url, &with, ""));
    assert_eq!(out.code, EXIT_UNDONE, "{}", out.all());
    assert!(out.stdout.contains("down") && out.stdout.to_lowercase().contains("refused"), "{}", out.all());
}

#[test]
fn a_body_bigger_than_the_cap_fails() {
    let server = TestServer::start(|_, _| Response::text(200, &"x".repeat(256 * 1024)));
    let sb = sandbox();
    let url = server.url();
    let with = format!("[[step.with.checks]]\nname = \"big\"\nurl = \"{url}/\"\n");
    let out = run(&sb, &runbook(&sb, &url, &with, "max_received = \"64KiB\""));
    assert_eq!(out.code, EXIT_UNDONE, "{}", out.all());
    assert!(out.all().contains("max_received"), "{}", out.all());
}

#[test]
fn success_threshold_needs_consecutive_passes() {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    // pass, fail, pass, pass: with a threshold of 2 the run passes on the fourth try.
    let server = TestServer::start(move |_, _| {
        let n = seen.fetch_add(1, Ordering::SeqCst);
        if n == 1 { Response::json(503, &json!({})) } else { Response::json(200, &json!({})) }
    });
    let sb = sandbox();
    let url = server.url();
    let with = format!(
        "success_threshold = 2\nretry = {{ attempts = 5, interval = \"10ms\" }}\n\
         [[step.with.checks]]\nname = \"stable\"\nurl = \"{url}/\"\n"
    );
    let out = run(&sb, &runbook(&sb, &url, &with, ""));
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(calls.load(Ordering::SeqCst) >= 4, "{}", out.all());
}
