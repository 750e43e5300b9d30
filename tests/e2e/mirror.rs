//! `backout registry mirror --from URL`: the connected side fetches a signed
//! registry from a real HTTP server (`TestServer`) laid out like a registry
//! directory, verified like an import, all or nothing.

use std::path::{Path, PathBuf};

use backout_tests::cli::{Output, Sandbox, sha256_file, snapshot};
use backout_tests::http_server::{Response, TestServer};
use backout_tests::{ENV_TOGGLE, HOSTILE};

use crate::bin;
use crate::registry::{host_trusting, ok, publisher};

/// Exit code 2 (like every refused registry command) with `text` on stderr.
fn refused(out: Output, text: &str) -> Output {
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains(text), "expected `{text}` in:\n{}", out.all());
    out
}

fn mirror(host: &Sandbox, trust: &str, url: &str) -> Output {
    host.run(&["--trust", trust, "registry", "mirror", "--from", url])
}

/// Serves the files under `dir` like `TestServer::serve_dir`, except that
/// blob `hex` is answered with `blob`.
fn serve_dir_except(dir: PathBuf, hex: String, blob: Response) -> TestServer {
    TestServer::start(move |req, _| {
        if req.path.ends_with(&hex) {
            return blob.clone();
        }
        match std::fs::read(dir.join(req.path.trim_start_matches('/'))) {
            Ok(bytes) => Response::bytes(200, bytes),
            Err(_) => Response::not_found(),
        }
    })
}

fn blob_requests(server: &TestServer) -> usize {
    server.requests().iter().filter(|r| r.path.contains("/blobs/sha256/")).count()
}

/// No temporary file (`.<name>.tmp.<pid>.<n>`) anywhere in the registry.
fn assert_no_temporaries(root: &Path) {
    for path in snapshot(root).keys() {
        let name = path.file_name().unwrap().to_string_lossy();
        assert!(!name.contains(".tmp."), "temporary left behind: {}", path.display());
    }
}

#[test]
fn a_signed_registry_is_mirrored_and_a_locked_runbook_runs_from_it() {
    let (publisher, _key, public) = publisher();
    let runbook = publisher.write(
        "runbook.toml",
        "version = 1\nname = \"echo\"\n\n[[step]]\nid = \"echo\"\nuses = \"hostile@0.1\"\nwith = { attack = \"echo\", contents = \"hi\" }\n",
    );
    ok(publisher.run(&["lock", runbook.to_str().unwrap()]));
    let server = TestServer::serve_dir(publisher.registry());

    let (host, trust) = host_trusting(&public);
    let trust = trust.to_str().unwrap();
    let out = ok(mirror(&host, trust, &format!("{}/", server.url())));
    assert!(out.stdout.contains("mirrored serial 2 from"), "{}", out.all());
    assert_eq!(blob_requests(&server), 1);
    let paths: Vec<String> = server.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths[..2], ["/index.toml", "/index.toml.sig"]);
    assert_eq!(
        std::fs::read(host.registry().join("index.toml")).unwrap(),
        std::fs::read(publisher.registry().join("index.toml")).unwrap()
    );
    ok(host.run(&["registry", "verify"]));
    let out = ok(host.run(&["--output", "json", "registry", "list"]));
    let entries: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(entries[0]["name"], "hostile", "{}", out.stdout);
    assert_eq!(entries[0]["digest"], format!("sha256:{}", sha256_file(HOSTILE)));

    for file in ["runbook.toml", "runbook.toml.lock"] {
        std::fs::copy(publisher.path().join(file), host.path().join(file)).unwrap();
    }
    let runbook = host.path().join("runbook.toml");
    let out = ok(host.run(&["--trust", trust, "run", "--yes", runbook.to_str().unwrap()]));
    assert!(out.stdout.contains("Run succeeded"), "{}", out.all());

    // Up to date: the index and signature are fetched again, no blob.
    let before = snapshot(&host.registry());
    let requests = server.count();
    let out = ok(host.run(&["--trust", trust, "--output", "json", "registry", "mirror", "--from", &server.url()]));
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["unchanged"], true, "{}", out.stdout);
    assert_eq!(report["added_blobs"].as_array().unwrap().len(), 0);
    assert_eq!(report["signed_by"]["name"], "acme");
    assert_eq!(server.count(), requests + 2);
    assert_eq!(blob_requests(&server), 1);
    assert_eq!(snapshot(&host.registry()), before);
}

#[test]
fn a_wrong_blob_leaves_the_registry_byte_for_byte_unchanged() {
    let (publisher, _key, public) = publisher();
    let hex = sha256_file(HOSTILE);
    let mut wrong = std::fs::read(HOSTILE).unwrap();
    wrong[1000] ^= 1;
    let server = serve_dir_except(publisher.registry(), hex.clone(), Response::bytes(200, wrong));

    let (host, trust) = host_trusting(&public);
    let trust = trust.to_str().unwrap();
    host.add(ENV_TOGGLE);
    let before = snapshot(&host.registry());
    let out = refused(mirror(&host, trust, &server.url()), "the mirror is corrupt or was tampered with");
    assert!(
        out.stderr
            .contains(&format!("blob `sha256:{hex}` from `{}/blobs/sha256/{hex}` has digest `sha256:", server.url())),
        "{}",
        out.all()
    );
    assert!(out.stderr.contains("nothing was changed"), "{}", out.all());
    assert_eq!(snapshot(&host.registry()), before, "the registry changed");
    assert_no_temporaries(&host.registry());
}

#[test]
fn a_connection_dropped_mid_blob_leaves_nothing_behind() {
    let (publisher, _key, public) = publisher();
    let hex = sha256_file(HOSTILE);
    let bytes = std::fs::read(HOSTILE).unwrap();
    let half = bytes.len() / 2;
    let server =
        serve_dir_except(publisher.registry(), hex.clone(), Response::bytes(200, bytes.clone()).cut_after(half));

    let (host, trust) = host_trusting(&public);
    let trust = trust.to_str().unwrap();
    host.add(ENV_TOGGLE);
    let before = snapshot(&host.registry());
    let out = refused(mirror(&host, trust, &server.url()), &format!("failed to fetch blob `sha256:{hex}`"));
    assert!(
        out.stderr.contains(&format!("the connection was lost after {half} of {} bytes", bytes.len())),
        "{}",
        out.all()
    );
    assert_eq!(snapshot(&host.registry()), before, "the registry changed");
    assert_no_temporaries(&host.registry());

    // Into a registry that does not exist yet: still no index, no blob, no temporary.
    let (fresh, trust) = host_trusting(&public);
    let trust = trust.to_str().unwrap();
    refused(mirror(&fresh, trust, &server.url()), "the connection was lost");
    assert!(!fresh.registry().join("index.toml").exists());
    assert!(snapshot(&fresh.registry()).keys().all(|p| p.ends_with(".lock")), "{:?}", snapshot(&fresh.registry()));
}

#[test]
fn a_blob_the_mirror_does_not_have_is_a_404_error() {
    let (publisher, _key, public) = publisher();
    let hex = sha256_file(HOSTILE);
    let server = serve_dir_except(publisher.registry(), hex.clone(), Response::not_found());
    let (host, trust) = host_trusting(&public);
    let trust = trust.to_str().unwrap();
    host.add(ENV_TOGGLE);
    let before = snapshot(&host.registry());
    let out = refused(mirror(&host, trust, &server.url()), &format!("the mirror has no blob `sha256:{hex}`"));
    assert!(out.stderr.contains("answered HTTP 404; the mirror is incomplete"), "{}", out.all());
    assert_eq!(snapshot(&host.registry()), before);
}

#[test]
fn an_unsigned_mirror_is_refused_once_a_key_is_trusted() {
    let (_, _key, public) = publisher();
    let unsigned = Sandbox::new(bin());
    unsigned.add(HOSTILE);
    let server = TestServer::serve_dir(unsigned.registry());

    let (host, trust) = host_trusting(&public);
    let trust = trust.to_str().unwrap();
    let out = refused(mirror(&host, trust, &server.url()), "is not signed (no `index.toml.sig`)");
    assert!(out.stderr.contains(&format!("`{}/index.toml`", server.url())), "{}", out.all());
    assert_eq!(blob_requests(&server), 0, "nothing is downloaded before the policy passes");
    assert!(!host.registry().exists(), "nothing was created");

    // Without any trusted key the same mirror is accepted as it is.
    let open = Sandbox::new(bin());
    let out = ok(open.run(&["registry", "mirror", "--from", &server.url()]));
    assert!(out.stdout.contains("1 plugin, 1 new blob ("), "{}", out.all());
    ok(open.run(&["registry", "verify"]));
}

#[test]
fn an_older_serial_is_refused_without_downloading() {
    let (publisher, key, public) = publisher();
    // Keep a copy of the publication at serial 2, then publish serial 3.
    let old = publisher.mkdir("old-registry");
    for file in ["index.toml", "index.toml.sig"] {
        std::fs::copy(publisher.registry().join(file), old.join(file)).unwrap();
    }
    std::fs::create_dir_all(old.join("blobs/sha256")).unwrap();
    let hex = sha256_file(HOSTILE);
    std::fs::copy(publisher.registry().join("blobs/sha256").join(&hex), old.join("blobs/sha256").join(&hex)).unwrap();
    ok(publisher.run(&["registry", "sign", "--key", key.to_str().unwrap()]));
    let current = TestServer::serve_dir(publisher.registry());
    let replayed = TestServer::serve_dir(old);

    let (host, trust) = host_trusting(&public);
    let trust = trust.to_str().unwrap();
    ok(mirror(&host, trust, &current.url()));
    let before = snapshot(&host.registry());
    let out = refused(mirror(&host, trust, &replayed.url()), "refusing a rollback");
    assert!(out.stderr.contains("serial `2`, older than serial `3`"), "{}", out.all());
    assert_eq!(blob_requests(&replayed), 0);
    assert_eq!(snapshot(&host.registry()), before);

    // A fresh registry on the same host: the recorded serial refuses it too.
    let out = host.run(&[
        "--trust",
        trust,
        "--registry",
        host.path().join("other").to_str().unwrap(),
        "registry",
        "mirror",
        "--from",
        &replayed.url(),
    ]);
    refused(out, "refusing a rollback");
}

#[test]
fn only_http_and_https_urls_are_accepted() {
    let sb = Sandbox::new(bin());
    let out =
        refused(sb.run(&["registry", "mirror", "--from", "ftp://plugins.example/registry"]), "invalid mirror URL");
    assert!(out.stderr.contains("use `https://` or `http://`"), "{}", out.all());
    assert!(!sb.registry().exists());
}
