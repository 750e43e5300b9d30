//! webhook-notify (a plugin written in Python, `plugins/webhook-notify`)
//! through the real CLI, against a real HTTP server on 127.0.0.1 that
//! records every request it receives.
//!
//! The component is ≈18 MB (CPython inside) and each `backout` call compiles
//! it once, so the tests pin it by path and sha256 instead of registering it
//! first (which would compile it a second time); only the `inspect` test
//! registers it.

use std::path::{Path, PathBuf};
use std::process::Command;

use backout_tests::WEBHOOK_NOTIFY;
use backout_tests::cli::{EXIT_UNDONE, Output, Sandbox, sha256_file};
use backout_tests::http_server::{Recorded, Response, TestServer};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::bin;

/// The webhook's path: the secret part of a Slack webhook URL.
const SECRET_PATH: &str = "/services/T0BACKOUT/B0ROLLBACK/x7Kq2mZsecretW3bh00k";

fn ok() -> Response {
    Response::text(200, "ok")
}

/// A runbook with one webhook-notify step, `url = "${env.SLACK_WEBHOOK}"`,
/// granted `net` to `origin` and the `SLACK_WEBHOOK` variable; `with` is more
/// TOML for `[step.with]`.
fn runbook(sb: &Sandbox, origin: &str, with: &str) -> PathBuf {
    // A copy of its own: the pin stays true even if another build replaces
    // the shared component while the test runs (componentize-py builds are
    // not byte-for-byte reproducible).
    let component = sb.path().join("webhook_notify.wasm");
    if !component.exists() {
        std::fs::copy(WEBHOOK_NOTIFY, &component).expect("copy the component");
    }
    let digest = sha256_file(&component);
    sb.write(
        "notify.toml",
        format!(
            "version = 1\nname = \"db-rollback\"\n\n[[step]]\nid = \"notify\"\nuses = \"webhook_notify.wasm\"\n\
             sha256 = \"{digest}\"\n\n[step.grants]\nnet = [\"{origin}\"]\nenv = [\"SLACK_WEBHOOK\"]\n\n\
             [step.with]\nurl = \"${{env.SLACK_WEBHOOK}}\"\nrunbook = \"db-rollback\"\n{with}\n"
        ),
    )
}

/// The usual message: a title, a text and two fields; retries quick.
fn message(attempts: u32) -> String {
    format!(
        "title = \"Rollback finished\"\ntext = \"Restored *orders.db* from last night's backup.\"\n\
         fields = {{ database = \"orders.db\", sha256 = \"4a5b6c\" }}\n\
         retry = {{ attempts = {attempts}, interval = \"20ms\" }}\n"
    )
}

/// Runs `backout ARGS… RUNBOOK` with `SLACK_WEBHOOK` set to `webhook`.
fn backout(sb: &Sandbox, args: &[&str], runbook: &Path, webhook: &str) -> Output {
    let args: Vec<&str> = args.iter().copied().chain([runbook.to_str().unwrap()]).collect();
    sb.run_with_env(&args, &[("SLACK_WEBHOOK", &webhook)])
}

fn run(sb: &Sandbox, runbook: &Path, webhook: &str) -> Output {
    backout(sb, &["run", "--yes"], runbook, webhook)
}

fn assert_secret_kept(sb: &Sandbox, out: &Output) {
    for (what, text) in [("stdout", &out.stdout), ("stderr", &out.stderr), ("journal", &sb.journals())] {
        assert!(!text.contains("x7Kq2mZsecretW3bh00k"), "the webhook URL leaked into {what}:\n{text}");
        assert!(!text.contains("B0ROLLBACK"), "part of the webhook URL leaked into {what}:\n{text}");
    }
}

fn body(request: &Recorded) -> Value {
    serde_json::from_slice(&request.body).unwrap_or_else(|e| panic!("the body is not JSON ({e}): {}", request.text()))
}

#[test]
fn run_posts_exactly_one_well_formed_message() {
    let server = TestServer::start(|_, _| ok());
    let sb = Sandbox::new(bin());
    let path = runbook(&sb, &server.url(), &message(3));
    let out = run(&sb, &path, &format!("{}{SECRET_PATH}", server.url()));
    assert_eq!(out.code, 0, "{}", out.all());

    assert_eq!(server.count(), 1, "run posts once and verify posts nothing:\n{}", out.all());
    let request = &server.requests()[0];
    assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", SECRET_PATH));
    assert_eq!(request.header("content-type"), Some("application/json; charset=utf-8"));
    let json = body(request);
    let text = json["text"].as_str().expect("a top-level text");
    for part in
        ["Rollback finished", "Restored *orders.db*", "• database: orders.db", "• sha256: 4a5b6c", "db-rollback"]
    {
        assert!(text.contains(part), "`{part}` missing from text: {text}");
    }
    let blocks = json["blocks"].as_array().expect("blocks");
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[0]["text"]["text"], "Rollback finished");
    assert_eq!(blocks[1]["text"]["text"], "Restored *orders.db* from last night's backup.");
    assert_eq!(blocks[2]["fields"].as_array().map(Vec::len), Some(2));
    assert_eq!(blocks.last().unwrap()["type"], "context");

    // The outputs record the status, the attempts and the digest of exactly
    // the bytes the server received.
    let digest = hex::encode(Sha256::digest(&request.body));
    for line in ["status: 200", "attempts: 1", &format!("sha256: {digest}"), &format!("origin: {}", server.url())] {
        assert!(out.stdout.contains(line), "`{line}` missing:\n{}", out.all());
    }
    assert!(out.stderr.contains("cannot be read back"), "verify says it re-checks nothing:\n{}", out.all());
    assert_secret_kept(&sb, &out);
}

#[test]
fn attachments_format_carries_color_and_fields() {
    let server = TestServer::start(|_, _| ok());
    let sb = Sandbox::new(bin());
    let with = "text = \"Flag turned off\"\nformat = \"attachments\"\ncolor = \"warning\"\n\
         fields = [{ label = \"flag\", value = \"INSIGHTS\" }, { label = \"env\", value = \"prod\" }]\n";
    let out = run(&sb, &runbook(&sb, &server.url(), with), &format!("{}{SECRET_PATH}", server.url()));
    assert_eq!(out.code, 0, "{}", out.all());
    let json = body(&server.requests()[0]);
    assert_eq!(json["text"], "Flag turned off");
    let attachment = &json["attachments"][0];
    assert_eq!(attachment["color"], "warning");
    // An array of fields keeps its order (a table reaches the plugin sorted).
    let fields: Vec<(&str, &str)> = attachment["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| (f["title"].as_str().unwrap(), f["value"].as_str().unwrap()))
        .collect();
    assert_eq!(fields, [("flag", "INSIGHTS"), ("env", "prod")]);
    assert!(json.get("blocks").is_none(), "{json}");
}

#[test]
fn a_500_then_a_200_is_retried_once() {
    let server = TestServer::start(|_, n| if n == 0 { Response::text(500, "warming up") } else { ok() });
    let sb = Sandbox::new(bin());
    let out = run(&sb, &runbook(&sb, &server.url(), &message(3)), &format!("{}{SECRET_PATH}", server.url()));
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(server.count(), 2, "{}", out.all());
    assert!(out.stdout.contains("attempts: 2"), "{}", out.all());
    assert!(out.stderr.contains("500 Internal Server Error (warming up) (attempt 1 of 3)"), "{}", out.all());
    let bodies: Vec<Vec<u8>> = server.requests().iter().map(|r| r.body.clone()).collect();
    assert_eq!(bodies[0], bodies[1], "a retry sends the same message");
    assert_secret_kept(&sb, &out);
}

#[test]
fn a_429_with_retry_after_is_retried() {
    let server =
        TestServer::start(
            |_, n| {
                if n == 0 { Response::text(429, "rate_limited").header("retry-after", "1") } else { ok() }
            },
        );
    let sb = Sandbox::new(bin());
    let out = run(&sb, &runbook(&sb, &server.url(), &message(2)), &format!("{}{SECRET_PATH}", server.url()));
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(server.count(), 2, "{}", out.all());
    assert!(out.stderr.contains("429 Too Many Requests (rate_limited)"), "{}", out.all());
    assert!(out.stderr.contains("trying again in 1s"), "Retry-After is longer than the 20ms interval:\n{}", out.all());
}

#[test]
fn a_persistent_500_gives_up_after_the_configured_attempts() {
    let server = TestServer::start(|_, _| Response::text(500, "database is down"));
    let sb = Sandbox::new(bin());
    let out = run(&sb, &runbook(&sb, &server.url(), &message(3)), &format!("{}{SECRET_PATH}", server.url()));
    assert_eq!(out.code, EXIT_UNDONE, "{}", out.all());
    assert_eq!(server.count(), 3, "{}", out.all());
    for part in ["gave up after 3 attempts", "500 Internal Server Error (database is down)", "no message was posted"] {
        assert!(out.stdout.contains(part), "`{part}` missing:\n{}", out.all());
    }
    assert_secret_kept(&sb, &out);
}

#[test]
fn a_4xx_is_not_retried() {
    let server = TestServer::start(|_, _| Response::text(404, "no_service"));
    let sb = Sandbox::new(bin());
    let out = run(&sb, &runbook(&sb, &server.url(), &message(5)), &format!("{}{SECRET_PATH}", server.url()));
    assert_eq!(out.code, EXIT_UNDONE, "{}", out.all());
    assert_eq!(server.count(), 1, "{}", out.all());
    for part in ["404 Not Found (no_service)", "not retried", "no message was posted"] {
        assert!(out.stdout.contains(part), "`{part}` missing:\n{}", out.all());
    }
    assert_secret_kept(&sb, &out);
}

#[test]
fn an_ungranted_origin_fails_the_plan_and_nothing_is_sent() {
    let server = TestServer::start(|_, _| ok());
    let other = TestServer::start(|_, _| ok());
    let sb = Sandbox::new(bin());
    // Granted: the other server. Configured: this one.
    let path = runbook(&sb, &other.url(), &message(3));
    let webhook = format!("{}{SECRET_PATH}", server.url());
    for args in [&["plan"][..], &["run", "--yes"][..]] {
        let out = backout(&sb, args, &path, &webhook);
        assert_eq!(out.code, 2, "{}", out.all());
        assert!(out.stderr.contains("is not granted"), "{}", out.all());
        assert!(out.stderr.contains(&server.url()), "the error names the origin:\n{}", out.all());
        assert_secret_kept(&sb, &out);
    }
    assert_eq!(server.count(), 0);
    assert_eq!(other.count(), 0);
}

#[test]
fn plan_sends_nothing_and_shows_only_the_origin() {
    let server = TestServer::start(|_, _| ok());
    let sb = Sandbox::new(bin());
    let path = runbook(&sb, &server.url(), &message(3));
    let out = backout(&sb, &["plan"], &path, &format!("{}{SECRET_PATH}", server.url()));
    assert_eq!(out.code, 0, "{}", out.all());
    let expected =
        format!("post a message about `db-rollback` to {} (the URL in ${{env.SLACK_WEBHOOK}})", server.url());
    assert!(out.stdout.contains(&expected), "{}", out.all());
    assert!(out.stdout.contains("up to 3 attempts"), "{}", out.all());
    assert_eq!(server.count(), 0, "plan sent a request");
    assert_secret_kept(&sb, &out);
}

#[test]
fn a_secret_in_the_message_is_refused() {
    let server = TestServer::start(|_, _| ok());
    let sb = Sandbox::new(bin());
    let path = runbook(&sb, &server.url(), "text = \"the hook is ${env.SLACK_WEBHOOK}\"\n");
    let out = backout(&sb, &["plan"], &path, &format!("{}{SECRET_PATH}", server.url()));
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("expanded only in `url`"), "{}", out.all());
    assert_eq!(server.count(), 0);
}

#[test]
fn inspect_and_registry_add_show_the_describe_info() {
    let sb = Sandbox::new(bin());
    let out = sb.run(&["inspect", WEBHOOK_NOTIFY]);
    assert_eq!(out.code, 0, "{}", out.all());
    for part in [
        "webhook-notify 0.1.0",
        "Slack-compatible incoming webhook",
        "network: yes",
        "wasi:http/outgoing-handler",
        "\"undo_text\"",
    ] {
        assert!(out.stdout.contains(part), "`{part}` missing:\n{}", out.all());
    }
    sb.add(WEBHOOK_NOTIFY);
    let list = sb.run(&["registry", "list"]);
    assert!(list.stdout.contains("webhook-notify") && list.stdout.contains("0.1.0"), "{}", list.all());
}

/// The SDK's and the plugin's own unit tests (plain `python3 -m unittest`),
/// so that CI runs them with everything else.
#[test]
fn python_sdk_and_webhook_notify_unit_tests_pass() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for (dir, pythonpath) in [("sdk/python", "."), ("plugins/webhook-notify", ".")] {
        let out = Command::new("python3")
            .args(["-m", "unittest", "discover", "-s", "tests"])
            .current_dir(root.join(dir))
            .env("PYTHONPATH", pythonpath)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .output()
            .expect("run python3");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "unit tests in {dir} failed:\n{stderr}");
        assert!(stderr.contains("OK"), "{dir}: {stderr}");
    }
}
