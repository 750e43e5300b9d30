//! Issue #17's registry workflows, each as the operator meets it: a signed
//! registry changed by `add`, an edited or expired index that `verify` and
//! `list` must not pass, a damaged registry healed by `import` and `add`,
//! `inspect` with a version range, and "did you mean" for a plugin name.

use backout_tests::cli::{Sandbox, sha256_file, snapshot};
use backout_tests::{ENV_TOGGLE, HOSTILE};

use crate::bin;
use crate::registry::{host_trusting, ok, publisher};

fn refused(out: backout_tests::cli::Output) -> backout_tests::cli::Output {
    assert_eq!(out.code, 2, "{}", out.all());
    out
}

fn echo_runbook(sb: &Sandbox) -> std::path::PathBuf {
    sb.write(
        "runbook.toml",
        "version = 1\nname = \"echo\"\n\n[[step]]\nid = \"echo\"\nuses = \"hostile@0.1\"\nwith = { attack = \"echo\", contents = \"hi\" }\n",
    )
}

#[test]
fn adding_to_a_signed_registry_is_refused_unless_it_is_signed_again_or_unsigned() {
    let (publisher, key, public) = publisher();
    let trust =
        publisher.write("trust.toml", format!("format = 1\n\n[[key]]\nname = \"acme\"\npublic = \"{public}\"\n"));
    let trust = trust.to_str().unwrap();
    let runbook = echo_runbook(&publisher);
    let plan = |sb: &Sandbox| sb.run(&["--trust", trust, "plan", runbook.to_str().unwrap()]);
    ok(plan(&publisher));

    // Refused, with a hint that names both ways out; nothing changed on disk.
    let before = snapshot(&publisher.registry());
    let out = refused(publisher.run(&["--trust", trust, "registry", "add", ENV_TOGGLE]));
    assert!(out.stderr.contains("is signed: adding `env-toggle@0.1.0` would change the index"), "{}", out.all());
    assert!(out.stderr.contains("hint: add `--key FILE`") && out.stderr.contains("`--unsign`"), "{}", out.all());
    let out = refused(publisher.run(&["registry", "remove", "hostile@0.1.0"]));
    assert!(out.stderr.contains("is signed: removing `hostile@0.1.0`"), "{}", out.all());
    assert_eq!(snapshot(&publisher.registry()), before);
    ok(plan(&publisher));

    // Signed again with the key: plans keep passing the trust check.
    let out = ok(publisher.run(&["registry", "add", ENV_TOGGLE, "--key", key.to_str().unwrap()]));
    assert!(out.stdout.contains(&format!("signed the changed index with {public} at serial 3")), "{}", out.all());
    ok(plan(&publisher));
    ok(publisher.run(&["--trust", trust, "registry", "verify"]));

    // Unsigned on request: said so, and the trusting host now refuses it
    // with the hint for an unsigned index, not the one for adding plugins.
    let out = ok(publisher.run(&["registry", "remove", "env-toggle@0.1.0", "--unsign"]));
    assert!(out.stdout.contains("removed the index's signature"), "{}", out.all());
    assert!(!publisher.registry().join("index.toml.sig").exists());
    let out = refused(plan(&publisher));
    assert!(out.stderr.contains("is not signed"), "{}", out.all());
    assert!(out.stderr.contains("hint: ask the publisher for a signed index"), "{}", out.all());
    assert!(!out.stderr.contains("registry add FILE"), "{}", out.all());
    assert!(publisher.run(&["registry", "add", ENV_TOGGLE, "--key", "k", "--unsign"]).code == 2, "one or the other");
}

#[test]
fn verify_and_list_refuse_a_hand_edited_or_expired_index_and_say_which_field() {
    let (publisher, key, _) = publisher();
    ok(publisher.run(&["registry", "verify"]));
    let index = publisher.registry().join("index.toml");
    let text = std::fs::read_to_string(&index).unwrap();
    std::fs::write(&index, text.replace("publisher = \"local\"", "publisher = \"someone\"")).unwrap();

    // No trust file at all: the signature is still checked.
    let out = refused(publisher.run(&["registry", "verify"]));
    assert!(out.stdout.contains("signature INVALID"), "{}", out.all());
    assert!(out.stdout.contains("does not match the index: it was changed after signing"), "{}", out.all());
    let out = refused(publisher.run(&["--output", "json", "registry", "verify"]));
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["clean"], false);
    assert_eq!(report["index"]["signature"]["state"], "invalid");
    assert!(report["index"]["signature"]["problem"]["hint"].as_str().unwrap().contains("sign it again"));
    assert_eq!(report["index"]["expires"]["problem"], serde_json::Value::Null);
    let out = refused(publisher.run(&["registry", "list"]));
    assert!(out.stdout.contains("hostile"), "the entries are still listed: {}", out.all());
    assert!(out.stderr.contains("error: the signature in"), "{}", out.all());

    // Signed again, expiring at once: expired is its own field.
    ok(publisher.run(&["registry", "sign", "--key", key.to_str().unwrap(), "--expires-in", "1s"]));
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let out = refused(publisher.run(&["--output", "json", "registry", "verify"]));
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["index"]["signature"]["state"], "valid", "{report}");
    assert!(report["index"]["expires"]["problem"]["message"].as_str().unwrap().contains("expired"), "{report}");
    assert!(report["index"]["expires"]["in_ms"].as_i64().unwrap() <= 0, "{report}");
    refused(publisher.run(&["registry", "list"]));
}

#[test]
fn a_damaged_registry_is_healed_by_importing_its_bundle_again_or_adding_the_original() {
    let (publisher, _key, public) = publisher();
    let bundle = publisher.path().join("bundle.tar");
    ok(publisher.run(&["registry", "export", "--to", bundle.to_str().unwrap()]));
    let (host, trust) = host_trusting(&public);
    let trust = trust.to_str().unwrap();
    ok(host.run(&["--trust", trust, "registry", "import", bundle.to_str().unwrap()]));
    let healthy = snapshot(&host.registry());
    let blob = host.registry().join("blobs/sha256").join(sha256_file(HOSTILE));

    // Corrupt: verify says how to repair; importing the same bundle does it.
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[4000] ^= 0x01;
    std::fs::write(&blob, &bytes).unwrap();
    let out = refused(host.run(&["--trust", trust, "registry", "verify"]));
    assert!(out.stdout.contains("hint: put a damaged blob back with `backout registry add FILE`"), "{}", out.all());
    assert!(out.stdout.contains("registry import BUNDLE"), "{}", out.all());
    let out = ok(host.run(&["--trust", trust, "registry", "import", bundle.to_str().unwrap()]));
    assert!(out.stdout.contains("0 missing blobs restored, 1 corrupt blob replaced"), "{}", out.all());
    assert_eq!(snapshot(&host.registry()), healthy, "byte for byte as imported");

    // Deleted: adding the original component puts it back, signature intact.
    std::fs::remove_file(&blob).unwrap();
    refused(host.run(&["--trust", trust, "registry", "verify"]));
    let out = ok(host.run(&["--trust", trust, "registry", "add", HOSTILE]));
    assert!(out.stdout.contains("repaired hostile@0.1.0") && out.stdout.contains("was missing"), "{}", out.all());
    assert_eq!(snapshot(&host.registry()), healthy);
    ok(host.run(&["--trust", trust, "registry", "verify"]));
}

#[test]
fn inspect_takes_a_range_like_the_hint_that_names_it_and_opens_the_registry_trusted() {
    let sb = Sandbox::new(bin());
    sb.add(HOSTILE);
    for plugin in ["hostile@0.1", "hostile@^0.1.0", "hostile"] {
        let out = ok(sb.run(&["inspect", plugin]));
        assert!(out.stdout.contains("hostile@0.1.0 in registry"), "{plugin}: {}", out.all());
    }
    // `inspect` now applies the trust policy, as plan does.
    let trust = sb.write("trust.toml", "format = 1\nrequire_signed = true\n");
    let out = refused(sb.run(&["--trust", trust.to_str().unwrap(), "inspect", "hostile@0.1"]));
    assert!(out.stderr.contains("signatures are required"), "{}", out.all());
}

#[test]
fn an_unknown_plugin_name_lists_the_registry_and_suggests_the_closest() {
    let sb = Sandbox::new(bin());
    sb.add(HOSTILE);
    sb.add(ENV_TOGGLE);
    let runbook =
        sb.write("runbook.toml", "version = 1\nname = \"typo\"\n\n[[step]]\nid = \"t\"\nuses = \"env-togle@0.1\"\n");
    let out = refused(sb.run(&["plan", runbook.to_str().unwrap()]));
    assert!(
        out.stderr.contains("no plugin named `env-togle` in the registry; it holds `env-toggle`, `hostile`"),
        "{}",
        out.all()
    );
    assert!(out.stderr.contains("hint: did you mean `env-toggle`?"), "{}", out.all());
    let out = refused(sb.run(&["registry", "show", "hostle"]));
    assert!(out.stderr.contains("hint: did you mean `hostile`?"), "{}", out.all());
}

#[test]
fn plan_warns_a_week_before_the_trusted_index_expires() {
    let (publisher, key, public) = publisher();
    let (host, trust) = host_trusting(&public);
    let runbook = echo_runbook(&host);
    let plan = |sb: &Sandbox| {
        let mut cmd = sb.command();
        cmd.args(["--trust", trust.to_str().unwrap(), "plan", runbook.to_str().unwrap()]);
        cmd.env("BACKOUT_REGISTRY", publisher.registry());
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        // The plan's warnings are part of the plan, on stdout.
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    ok(publisher.run(&["registry", "sign", "--key", key.to_str().unwrap(), "--expires-in", "30d"]));
    assert!(!plan(&host).contains("warning: the registry's index expires"), "a month away is no news");
    ok(publisher.run(&["registry", "sign", "--key", key.to_str().unwrap(), "--expires-in", "3d"]));
    let printed = plan(&host);
    assert!(printed.contains("warning: the registry's index expires at"), "{printed}");
    assert!(printed.contains("hint: ask the publisher for a freshly signed index"), "{printed}");
}

#[test]
fn every_registry_command_speaks_json_and_the_key_snippet_is_a_whole_trust_file() {
    let sb = Sandbox::new(bin());
    let json = |args: &[&str]| -> serde_json::Value {
        let mut all = vec!["--output", "json"];
        all.extend_from_slice(args);
        let out = ok(sb.run(&all));
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}\n{}", out.all()))
    };
    assert_eq!(json(&["registry", "init"])["created"], true);
    assert_eq!(json(&["registry", "list"]), serde_json::json!([]));
    let added = json(&["registry", "add", HOSTILE]);
    assert_eq!((added["outcome"].clone(), added["size_bytes"].as_u64().is_some()), ("added".into(), true));
    assert_eq!(json(&["registry", "add", HOSTILE])["outcome"], "already-pinned");
    let key = sb.path().join("k.key");
    let generated = json(&["key", "generate", "--out", key.to_str().unwrap()]);
    assert_eq!(json(&["registry", "sign", "--key", key.to_str().unwrap()])["key"], generated["public_key"]);
    let bundle = sb.path().join("b.tar");
    assert_eq!(json(&["registry", "export", "--to", bundle.to_str().unwrap()])["plugins"], 1);
    let runbook = echo_runbook(&sb);
    let lock = json(&["lock", runbook.to_str().unwrap()]);
    assert_eq!((lock["written"].clone(), lock["steps"][0]["version"].clone()), (true.into(), "0.1.0".into()));
    assert_eq!(json(&["registry", "remove", "hostile@0.1.0", "--unsign"])["signature"]["change"], "removed");
    assert_eq!(json(&["registry", "gc"])["deleted"].as_array().unwrap().len(), 1);

    // The trust snippet `key generate` prints works as a file on its own.
    let second = sb.path().join("k2.key");
    let out = ok(sb.run(&["key", "generate", "--out", second.to_str().unwrap()]));
    let snippet = &out.stdout[out.stdout.find("format = 1").expect("the snippet has `format = 1`")..];
    let trust = sb.write("snippet.toml", snippet);
    let trust = trust.to_str().unwrap();
    refused(sb.run(&["--trust", trust, "registry", "list"]));
    ok(sb.run(&["registry", "sign", "--key", second.to_str().unwrap()]));
    ok(sb.run(&["--trust", trust, "registry", "list"]));
}
