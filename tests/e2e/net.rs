//! Network grants, attacked by a real plugin (`tests/plugins/hostile`) against
//! a real HTTP server on 127.0.0.1 that counts what it receives: a request
//! the grant does not allow is denied before it leaves, so the server
//! records nothing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use backout_tests::HOSTILE;
use backout_tests::cli::{EXIT_UNDONE, Output, Sandbox};
use backout_tests::http_server::{Response, TestServer};
use backout_tests::tls::TestCa;
use serde_json::json;

use crate::bin;

fn healthy() -> TestServer {
    TestServer::start(|_, _| Response::json(200, &json!({ "status": "healthy" })))
}

/// A sandbox with the hostile plugin registered.
fn arena() -> Sandbox {
    let sb = Sandbox::new(bin());
    sb.add(HOSTILE);
    sb
}

/// A one-step runbook for the hostile plugin: `with` is the inside of the
/// `with` table, `net` the step's `net` grant, `extra` more step keys.
fn runbook(sb: &Sandbox, with: &str, net: &[String], extra: &str) -> PathBuf {
    let net = net.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ");
    sb.write(
        "runbook.toml",
        format!(
            "version = 1\nname = \"net\"\n\n[[step]]\nid = \"attack\"\nuses = \"hostile@0.1.0\"\n{extra}\n\
             with = {{ {with} }}\n[step.grants]\nnet = [{net}]\n"
        ),
    )
}

fn run(sb: &Sandbox, with: &str, net: &[String], extra: &str) -> Output {
    let runbook = runbook(sb, with, net, extra);
    sb.run(&["run", "--yes", runbook.to_str().unwrap()])
}

/// `run`, with the host trusting the CA in `ca_file` (`SSL_CERT_FILE`).
fn run_trusting(sb: &Sandbox, ca_file: &std::path::Path, with: &str, net: &[String]) -> Output {
    let runbook = runbook(sb, with, net, "");
    sb.run_with_env(&["run", "--yes", runbook.to_str().unwrap()], &[("SSL_CERT_FILE", &ca_file)])
}

fn assert_blocked(out: &Output) {
    assert_eq!(out.code, EXIT_UNDONE, "{}", out.all());
    assert!(out.stdout.contains("blocked:"), "expected the request to be blocked:\n{}", out.all());
    assert!(!out.all().contains("ESCAPED"), "{}", out.all());
}

#[test]
fn a_granted_origin_is_reachable() {
    let server = healthy();
    let sb = arena();
    let out = run(&sb, &format!(r#"attack = "fetch", target = "{}/health""#, server.url()), &[server.url()], "");
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("fetched HTTP 200"), "{}", out.all());
    assert_eq!(server.count(), 1);
    assert_eq!(server.requests()[0].path, "/health");
}

#[test]
fn other_spellings_ports_hosts_and_schemes_never_reach_the_server() {
    let server = healthy();
    let port = server.port();
    let sb = arena();
    let granted = [server.url()];
    for target in [
        format!("http://127.1:{port}/"),
        format!("http://0x7f.0.0.1:{port}/"),
        format!("http://0x7f000001:{port}/"),
        format!("http://2130706433:{port}/"),
        format!("http://0177.0.0.1:{port}/"),
        format!("http://127.0.0.01:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://[::ffff:7f00:1]:{port}/"),
        format!("http://localhost:{port}/"),
        format!("http://LOCALHOST.:{port}/"),
        format!("http://127.0.0.2:{port}/"),
        format!("http://127.0.0.1:{}/", port.wrapping_add(1).max(1)),
        format!("https://127.0.0.1:{port}/"),
        format!("http://user@127.0.0.1:{port}/"),
    ] {
        let out = run(&sb, &format!(r#"attack = "http", target = "{target}""#), &granted, "");
        assert_blocked(&out);
        assert!(out.all().contains("denied GET"), "the denial must be logged for {target}:\n{}", out.all());
    }
    assert_eq!(server.count(), 0, "a denied request reached the server: {:?}", server.requests());
}

#[test]
fn without_a_net_grant_there_is_no_network() {
    let server = healthy();
    let sb = arena();
    let out = run(&sb, &format!(r#"attack = "http", target = "{}/""#, server.url()), &[], "");
    assert_blocked(&out);
    assert!(out.all().contains("no `net` grant"), "{}", out.all());
    assert_eq!(server.count(), 0);
}

#[test]
fn a_net_grant_opens_no_sockets() {
    let server = healthy();
    let sb = arena();
    let out = run(&sb, &format!(r#"attack = "connect", target = "{}""#, server.addr()), &[server.url()], "");
    assert_blocked(&out);
    assert_eq!(server.count(), 0);
}

#[test]
fn a_redirect_to_another_origin_is_denied_at_the_second_hop() {
    let elsewhere = healthy();
    let target = format!("{}/admin", elsewhere.url());
    let granted = TestServer::start(move |_, _| Response::redirect(302, &target));
    let sb = arena();
    let out = run(&sb, &format!(r#"attack = "follow", target = "{}/health""#, granted.url()), &[granted.url()], "");
    assert_blocked(&out);
    assert_eq!(granted.count(), 1, "the first hop is granted and sent");
    assert_eq!(elsewhere.count(), 0, "the second hop must never leave");
    assert!(out.all().contains(&format!("denied GET {}/admin", elsewhere.url())), "{}", out.all());
}

#[test]
fn plan_sends_only_reads_and_a_post_is_denied() {
    let server = healthy();
    let sb = arena();
    let with = format!(r#"attack = "http", method = "POST", target = "{}/reset", in_plan = true"#, server.url());
    let path = runbook(&sb, &with, &[server.url()], "");
    let out = sb.run(&["plan", path.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("plan-time attack http: blocked:"), "{}", out.all());
    assert!(out.all().contains("may only send GET and HEAD"), "{}", out.all());
    assert_eq!(server.count(), 0, "plan sent a POST");
}

#[test]
fn a_get_with_a_body_is_denied_while_planning() {
    let server = healthy();
    let sb = arena();
    let with = format!(
        r#"attack = "http", method = "GET", contents = "reset=all", target = "{}/health", in_plan = true"#,
        server.url()
    );
    let path = runbook(&sb, &with, &[server.url()], "");
    let out = sb.run(&["plan", path.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("plan-time attack http: blocked:"), "{}", out.all());
    assert!(out.all().contains("a request body is a write: the request has a body"), "{}", out.all());
    assert_eq!(server.count(), 0, "plan sent a body");
}

#[test]
fn a_body_larger_than_max_received_is_refused() {
    let server = TestServer::start(|_, _| Response::bytes(200, vec![b'x'; 64 * 1024]));
    let sb = arena();
    let out = run(
        &sb,
        &format!(r#"attack = "fetch", target = "{}/big""#, server.url()),
        &[server.url()],
        "max_received = \"16KiB\"",
    );
    assert_eq!(out.code, EXIT_UNDONE, "{}", out.all());
    assert!(out.all().contains("max_received"), "{}", out.all());
    assert!(!out.all().contains("fetched HTTP 200"), "{}", out.all());
}

#[test]
fn a_slow_server_is_bounded_by_the_step_timeout() {
    let server = TestServer::start(|_, _| Response::text(200, "late").delay(std::time::Duration::from_secs(10)));
    let sb = arena();
    let out =
        run(&sb, &format!(r#"attack = "fetch", target = "{}/""#, server.url()), &[server.url()], "timeout = \"1s\"");
    assert_eq!(out.code, EXIT_UNDONE, "{}", out.all());
    assert!(!out.all().contains("fetched"), "{}", out.all());
    assert_eq!(server.count(), 1);
}

#[test]
fn bad_net_grants_are_refused_before_anything_runs() {
    let server = healthy();
    let sb = arena();
    for (grant, message) in [
        (format!("{}/health", server.url()), "without a path"),
        ("http://127.1:3000".to_string(), "ambiguous spelling"),
        ("ftp://127.0.0.1".to_string(), "only `http` and `https`"),
        ("http://[::ffff:127.0.0.1]:3000".to_string(), "write the IPv4-mapped address"),
    ] {
        let path = runbook(&sb, r#"attack = "echo""#, std::slice::from_ref(&grant), "");
        let out = sb.run(&["validate", path.to_str().unwrap()]);
        assert_eq!(out.code, 2, "{grant}: {}", out.all());
        assert!(out.all().contains(message), "{grant}: {}", out.all());
    }
    assert_eq!(server.count(), 0);
}

/// Names are resolved by the host, and only checked addresses are
/// connected to. The library takes a fixed resolver table here because no
/// name on this machine resolves to a link-local address.
#[test]
fn a_granted_name_that_resolves_to_link_local_is_refused() {
    use backout::capability::Grants;
    use backout::capability::net::{NameResolver, NetGrants, Origin};
    use backout::runtime::host_api::quiet;
    use backout::runtime::limits::Limits;
    use backout::runtime::{CallContext, Failure, Runtime};

    let server = healthy();
    let port = server.port();
    let table: HashMap<String, Vec<IpAddr>> = HashMap::from([
        ("metadata.test".to_string(), vec!["169.254.169.254".parse().unwrap()]),
        ("api.test".to_string(), vec!["127.0.0.1".parse().unwrap()]),
    ]);
    let origins = [format!("http://metadata.test:{port}"), format!("http://api.test:{port}")]
        .map(|o| Origin::parse_grant(&o).unwrap());
    let grants = Grants {
        net: NetGrants { origins: origins.to_vec(), resolver: NameResolver::Static(Arc::new(table)) },
        ..Grants::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let runtime = Runtime::new().unwrap();
        let plugin = runtime.load(&std::fs::read(HOSTILE).unwrap()).unwrap();
        let ctx = CallContext::new("s", &grants, Limits::default(), quiet());

        let config = json!({ "attack": "fetch", "target": format!("http://metadata.test:{port}/latest/meta-data") });
        let called = plugin.run(&ctx, &config.to_string()).await;
        assert!(matches!(called.result, Err(Failure::Step { .. })), "{:?}", called.result);
        let log: Vec<&str> = called.log.iter().map(|r| r.message.as_str()).collect();
        assert!(log.iter().any(|l| l.contains("denied GET") && l.contains("link-local")), "{log:?}");

        // The same server through a name that resolves to loopback: the
        // host connects to the address it resolved and checked.
        let config = json!({ "attack": "fetch", "target": format!("http://api.test:{port}/health") });
        let called = plugin.run(&ctx, &config.to_string()).await;
        assert_eq!(called.result.unwrap().outputs["status"], 200);
    });
    assert_eq!(server.count(), 1, "only the api.test request may arrive");
    assert_eq!(server.requests()[0].header("host"), Some(format!("api.test:{port}").as_str()));
}

/// HTTPS: the host verifies the server's certificate against the system's
/// CA store (here a test CA, through `SSL_CERT_FILE`) for the granted name,
/// after resolving and checking the name itself.
#[test]
fn https_reaches_a_granted_name_whose_certificate_is_trusted() {
    let ca = TestCa::new();
    let server = TestServer::start_tls(ca.server_config(&["localhost"]), |_, _| {
        Response::json(200, &json!({ "status": "healthy" }))
    });
    let origin = format!("https://localhost:{}", server.port());
    let sb = arena();
    let out = run_trusting(&sb, &ca.ca_file, &format!(r#"attack = "fetch", target = "{origin}/health""#), &[origin]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("fetched HTTP 200"), "{}", out.all());
    assert_eq!(server.count(), 1);
}

#[test]
fn https_refuses_a_certificate_for_another_name_or_from_an_untrusted_ca() {
    let ca = TestCa::new();
    let wrong_name = TestServer::start_tls(ca.server_config(&["other.test"]), |_, _| Response::json(200, &json!({})));
    let origin = format!("https://localhost:{}", wrong_name.port());
    let sb = arena();
    let out = run_trusting(&sb, &ca.ca_file, &format!(r#"attack = "http", target = "{origin}/""#), &[origin]);
    assert_blocked(&out);
    assert!(out.stdout.contains("TlsCertificateError"), "{}", out.all());
    assert_eq!(wrong_name.count(), 0, "no request may follow a failed handshake");

    let right_name = TestServer::start_tls(ca.server_config(&["localhost"]), |_, _| Response::json(200, &json!({})));
    let origin = format!("https://localhost:{}", right_name.port());
    let stranger = TestCa::new();
    let out = run_trusting(&sb, &stranger.ca_file, &format!(r#"attack = "http", target = "{origin}/""#), &[origin]);
    assert_blocked(&out);
    assert!(out.stdout.contains("TlsCertificateError"), "{}", out.all());
    assert_eq!(right_name.count(), 0);
}
