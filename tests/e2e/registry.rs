//! The registry through the CLI: version resolution, lockfiles, signatures,
//! and the air-gapped path (sign, export, carry one tar, import, run locked).

use std::path::PathBuf;

use backout_tests::cli::{Output, Sandbox, sha256_file, snapshot};
use backout_tests::{ENV_TOGGLE, HOSTILE};

use crate::bin;

fn echo_runbook(sb: &Sandbox, uses: &str) -> PathBuf {
    sb.write(
        "runbook.toml",
        format!("version = 1\nname = \"echo\"\n\n[[step]]\nid = \"echo\"\nuses = \"{uses}\"\nwith = {{ attack = \"echo\", contents = \"hi\" }}\n"),
    )
}

pub(crate) fn ok(out: Output) -> Output {
    assert_eq!(out.code, 0, "{}", out.all());
    out
}

/// A publisher with a signing key and a signed registry holding the hostile plugin.
pub(crate) fn publisher() -> (Sandbox, PathBuf, String) {
    let sb = Sandbox::new(bin());
    sb.add(HOSTILE);
    let key = sb.path().join("acme.key");
    let out = ok(sb.run(&["key", "generate", "--out", key.to_str().unwrap()]));
    let public = out.stdout.lines().find_map(|l| l.strip_prefix("public key: ")).unwrap().to_string();
    ok(sb.run(&["registry", "sign", "--key", key.to_str().unwrap()]));
    (sb, key, public)
}

/// A host that trusts `public`.
pub(crate) fn host_trusting(public: &str) -> (Sandbox, PathBuf) {
    let sb = Sandbox::new(bin());
    let trust = sb.write("trust.toml", format!("format = 1\n\n[[key]]\nname = \"acme\"\npublic = \"{public}\"\n"));
    (sb, trust)
}

#[test]
fn version_requirements_pick_the_highest_match_and_misses_list_what_exists() {
    let sb = Sandbox::new(bin());
    sb.add(HOSTILE);
    ok(sb.run(&["registry", "add", HOSTILE, "--version", "0.2.0"]));
    ok(sb.run(&["registry", "add", HOSTILE, "--version", "1.0.0"]));
    for (uses, expected) in
        [("hostile@^0.1", "0.1.0"), ("hostile@0", "0.2.0"), ("hostile@*", "1.0.0"), ("hostile@0.2.0", "0.2.0")]
    {
        let runbook = echo_runbook(&sb, uses);
        let out = ok(sb.run(&["--output", "json", "plan", runbook.to_str().unwrap()]));
        let plan: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(plan["steps"][0]["source"]["version"], expected, "{uses}");
    }
    let runbook = echo_runbook(&sb, "hostile@^2");
    let out = sb.run(&["plan", runbook.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("`0.1.0`, `0.2.0`, `1.0.0`"), "{}", out.all());
}

#[test]
fn a_lock_pins_exact_digests_and_drift_is_explained() {
    let sb = Sandbox::new(bin());
    sb.add(HOSTILE);
    let runbook = echo_runbook(&sb, "hostile@^0.1");
    let out = ok(sb.run(&["lock", runbook.to_str().unwrap()]));
    assert!(out.stdout.contains("wrote"), "{}", out.all());
    let lock = std::fs::read_to_string(sb.path().join("runbook.toml.lock")).unwrap();
    assert!(lock.contains("version = \"0.1.0\"") && lock.contains(&sha256_file(HOSTILE)), "{lock}");
    ok(sb.run(&["run", "--yes", runbook.to_str().unwrap()]));

    // A newer matching version appears: the lock keeps the run on 0.1.0...
    ok(sb.run(&["registry", "add", HOSTILE, "--version", "0.1.1"]));
    let out = ok(sb.run(&["--output", "json", "plan", runbook.to_str().unwrap()]));
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(plan["steps"][0]["source"]["version"], "0.1.0");
    // ...and `lock` says the lock is stale until `--update`.
    let out = sb.run(&["lock", runbook.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.all());
    ok(sb.run(&["lock", "--update", runbook.to_str().unwrap()]));

    // The locked bytes are swapped for others under the same version: refused, with both digests.
    ok(sb.run(&["registry", "remove", "hostile@0.1.1"]));
    ok(sb.run(&["registry", "add", ENV_TOGGLE, "--name", "hostile", "--version", "0.1.1"]));
    let out = sb.run(&["plan", runbook.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("the lock does not match: step `echo`: `hostile@0.1.1` is now"), "{}", out.all());
    assert!(
        out.stderr.contains(&sha256_file(HOSTILE)) && out.stderr.contains(&sha256_file(ENV_TOGGLE)),
        "{}",
        out.all()
    );

    // The runbook changes `uses`: drift again.
    let runbook = echo_runbook(&sb, "hostile@0.1.0");
    let out = sb.run(&["validate", runbook.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("now uses `hostile@0.1.0`, but the lock was made for `hostile@^0.1`"), "{}", out.all());
}

#[test]
fn signed_bundle_crosses_the_air_gap_and_runs_locked() {
    let (publisher, _key, public) = publisher();
    let runbook = echo_runbook(&publisher, "hostile@0.1");
    ok(publisher.run(&["lock", runbook.to_str().unwrap()]));
    let bundle = publisher.path().join("registry.tar");
    ok(publisher.run(&["registry", "export", "--to", bundle.to_str().unwrap()]));
    let again = publisher.path().join("again.tar");
    ok(publisher.run(&["registry", "export", "--to", again.to_str().unwrap()]));
    assert_eq!(std::fs::read(&bundle).unwrap(), std::fs::read(&again).unwrap(), "export is deterministic");

    let (host, trust) = host_trusting(&public);
    let carried = host.path().join("registry.tar");
    std::fs::copy(&bundle, &carried).unwrap();
    let out = ok(host.run(&["--trust", trust.to_str().unwrap(), "registry", "import", carried.to_str().unwrap()]));
    assert!(out.stdout.contains("imported serial"), "{}", out.all());
    ok(host.run(&["registry", "verify"]));
    for file in ["runbook.toml", "runbook.toml.lock"] {
        std::fs::copy(publisher.path().join(file), host.path().join(file)).unwrap();
    }
    let out = ok(host.run(&[
        "--trust",
        trust.to_str().unwrap(),
        "run",
        "--yes",
        host.path().join("runbook.toml").to_str().unwrap(),
    ]));
    assert!(out.stdout.contains("Run succeeded"), "{}", out.all());
}

#[test]
fn tampered_untrusted_and_replayed_indexes_are_refused() {
    let (publisher, key, public) = publisher();
    let (host, trust) = host_trusting(&public);
    let trust = trust.to_str().unwrap().to_string();
    let old_bundle = publisher.path().join("old.tar");
    ok(publisher.run(&["registry", "export", "--to", old_bundle.to_str().unwrap()]));
    ok(publisher.run(&["registry", "sign", "--key", key.to_str().unwrap()]));
    let new_bundle = publisher.path().join("new.tar");
    ok(publisher.run(&["registry", "export", "--to", new_bundle.to_str().unwrap()]));

    // Newer first; then the older, validly signed bundle is replayed: refused, registry unchanged.
    ok(host.run(&["--trust", &trust, "registry", "import", new_bundle.to_str().unwrap()]));
    let before = snapshot(&host.registry());
    let out = host.run(&["--trust", &trust, "registry", "import", old_bundle.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert_eq!(snapshot(&host.registry()), before);

    // The index is edited after signing: every runbook against it is refused.
    let runbook = echo_runbook(&host, "hostile@0.1.0");
    ok(host.run(&["--trust", &trust, "plan", runbook.to_str().unwrap()]));
    let index = host.registry().join("index.toml");
    let text = std::fs::read_to_string(&index).unwrap();
    std::fs::write(&index, text.replace("publisher = \"local\"", "publisher = \"evil\"")).unwrap();
    let out = host.run(&["--trust", &trust, "plan", runbook.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.to_lowercase().contains("signature"), "{}", out.all());
    std::fs::write(&index, text).unwrap();

    // A host that trusts someone else refuses the publisher's index.
    let (_, stranger_key_host) = publisher_key_only();
    let (other, other_trust) = host_trusting(&stranger_key_host);
    let out =
        other.run(&["--trust", other_trust.to_str().unwrap(), "registry", "import", new_bundle.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("which is not a trusted key"), "{}", out.all());
    assert!(!other.registry().join("index.toml").exists(), "nothing may be admitted");
}

#[test]
fn every_plan_says_whether_the_registry_was_verified_and_require_signed_refuses_what_was_not() {
    let (publisher, _key, public) = publisher();
    let runbook = echo_runbook(&publisher, "hostile@0.1");
    let runbook = runbook.to_str().unwrap();

    // Signed, but this host has no trust file (as under sudo with another
    // $HOME): the plan says the signature was not checked.
    let out = ok(publisher.run(&["plan", runbook]));
    assert!(
        out.stdout.contains("(serial 2): NOT verified: it is signed, but no trusted key is configured"),
        "{}",
        out.all()
    );
    let out = ok(publisher.run(&["--output", "json", "plan", runbook]));
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(plan["registry"]["verified"], false, "{plan}");
    assert_eq!(plan["registry"]["signature_present"], true, "{plan}");

    // `--require-signed` (or `require_signed = true`) refuses it, and running it too.
    let strict = publisher.write("strict.toml", "format = 1\nrequire_signed = true\n");
    let before = snapshot(publisher.path());
    for args in [vec!["--require-signed", "plan", runbook], vec!["--require-signed", "run", "--yes", runbook]] {
        let out = publisher.run(&args);
        assert_eq!(out.code, 2, "{}", out.all());
        assert!(
            out.stderr.contains("signatures are required, but no trusted key is configured")
                && out.stderr.contains("cannot be verified (it is signed)"),
            "{}",
            out.all()
        );
    }
    let out = publisher.run(&["--trust", strict.to_str().unwrap(), "plan", runbook]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(snapshot(publisher.path()) == before, "nothing ran, nothing was recorded");

    // With the publisher's key trusted: verified, by name, with its signing time.
    let (_host, trust) = host_trusting(&public);
    let out = ok(publisher.run(&["--trust", trust.to_str().unwrap(), "--require-signed", "plan", runbook]));
    assert!(out.stdout.contains("(serial 2): verified: signed by trusted key `acme`, signed 20"), "{}", out.all());
    assert!(out.stdout.contains(", no expiry"), "{}", out.all());

    // Unsigned and untrusted: said as plainly.
    std::fs::remove_file(publisher.registry().join("index.toml.sig")).unwrap();
    let out = ok(publisher.run(&["plan", runbook]));
    assert!(out.stdout.contains("NOT verified: unsigned, and no trusted key is configured"), "{}", out.all());
}

#[test]
fn an_old_index_signed_by_another_trusted_key_is_refused_after_a_run() {
    // Two trusted publishers. The host runs serial 4 (signed by `acme`);
    // serial 3, validly signed by `ops`, is put back: a rollback all the same.
    let (publisher, acme_key, acme) = publisher();
    let ops_key = publisher.path().join("ops.key");
    let out = ok(publisher.run(&["key", "generate", "--out", ops_key.to_str().unwrap()]));
    let ops = out.stdout.lines().find_map(|l| l.strip_prefix("public key: ")).unwrap().to_string();
    let trust = publisher.write(
        "two.toml",
        format!("format = 1\n\n[[key]]\nname = \"acme\"\npublic = \"{acme}\"\n\n[[key]]\nname = \"ops\"\npublic = \"{ops}\"\n"),
    );
    let trust = trust.to_str().unwrap();
    ok(publisher.run(&["registry", "sign", "--key", ops_key.to_str().unwrap()]));
    let (index, sig) = (publisher.registry().join("index.toml"), publisher.registry().join("index.toml.sig"));
    let (old_index, old_sig) = (std::fs::read(&index).unwrap(), std::fs::read(&sig).unwrap());
    ok(publisher.run(&["registry", "sign", "--key", acme_key.to_str().unwrap()]));

    let runbook = echo_runbook(&publisher, "hostile@0.1");
    let runbook = runbook.to_str().unwrap();
    ok(publisher.run(&["--trust", trust, "run", "--yes", runbook]));
    let recorded = std::fs::read_to_string(publisher.state().join("accepted-serials.toml")).unwrap();
    assert!(recorded.starts_with("format = 2\n\n[[registry]]\npath = "), "{recorded}");
    assert!(recorded.contains("serial = 4"), "{recorded}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(publisher.state()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "the state directory holds journals");

    std::fs::write(&index, old_index).unwrap();
    std::fs::write(&sig, old_sig).unwrap();
    let out = publisher.run(&["--trust", trust, "plan", runbook]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr.contains("the index has serial `3`, older than serial `4` already accepted: refusing a rollback"),
        "{}",
        out.all()
    );
}

/// Just a key, for a host that trusts someone other than the publisher.
fn publisher_key_only() -> (Sandbox, String) {
    let sb = Sandbox::new(bin());
    let key = sb.path().join("other.key");
    let out = ok(sb.run(&["key", "generate", "--out", key.to_str().unwrap()]));
    let public = out.stdout.lines().find_map(|l| l.strip_prefix("public key: ")).unwrap().to_string();
    (sb, public)
}

#[test]
fn a_bundle_with_one_corrupt_blob_admits_nothing() {
    let (publisher, _key, public) = publisher();
    let bundle = publisher.path().join("registry.tar");
    ok(publisher.run(&["registry", "export", "--to", bundle.to_str().unwrap()]));
    let mut bytes = std::fs::read(&bundle).unwrap();
    let wasm_at = bytes.windows(4).position(|w| w == b"\0asm").unwrap();
    bytes[wasm_at + 100] ^= 1;
    std::fs::write(&bundle, bytes).unwrap();

    let (host, trust) = host_trusting(&public);
    host.add(ENV_TOGGLE);
    let before = snapshot(&host.registry());
    let out = host.run(&["--trust", trust.to_str().unwrap(), "registry", "import", bundle.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert_eq!(snapshot(&host.registry()), before, "the registry changed");
}

#[test]
fn verify_reports_a_flipped_bit_and_a_private_key_is_0600() {
    let (publisher, key, _) = publisher();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    ok(publisher.run(&["registry", "verify"]));
    let blob = publisher.registry().join("blobs/sha256").join(sha256_file(HOSTILE));
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[1000] ^= 0x10;
    std::fs::write(&blob, bytes).unwrap();
    let out = publisher.run(&["registry", "verify"]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stdout.contains("corrupt"), "{}", out.all());
}

#[test]
fn an_expired_index_is_refused() {
    let (publisher, key, public) = publisher();
    ok(publisher.run(&["registry", "sign", "--key", key.to_str().unwrap(), "--expires-in", "1s"]));
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let (host, trust) = host_trusting(&public);
    let runbook = echo_runbook(&host, "hostile@0.1.0");
    let out = host
        .command()
        .args(["--trust", trust.to_str().unwrap(), "plan", runbook.to_str().unwrap()])
        .env("BACKOUT_REGISTRY", publisher.registry())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("expired"), "{stderr}");
}

#[test]
fn concurrent_adds_from_several_processes_lose_nothing() {
    let sb = Sandbox::new(bin());
    ok(sb.run(&["registry", "init"]));
    let children: Vec<_> = (0..6)
        .map(|i| {
            sb.command()
                .args(["registry", "add", HOSTILE, "--version", &format!("1.0.{i}")])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let out = ok(sb.run(&["--output", "json", "registry", "list"]));
    let entries: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(entries.as_array().unwrap().len(), 6, "{}", out.stdout);
    ok(sb.run(&["registry", "verify"]));
}

#[test]
fn show_remove_and_gc_keep_the_registry_consistent() {
    let sb = Sandbox::new(bin());
    sb.add(HOSTILE);
    sb.add(ENV_TOGGLE);
    let out = ok(sb.run(&["registry", "show", "env-toggle"]));
    assert!(out.stdout.contains(&format!("digest     sha256:{}", sha256_file(ENV_TOGGLE))), "{}", out.all());
    ok(sb.run(&["registry", "remove", "env-toggle@0.1.0"]));
    let out = sb.run(&["registry", "verify"]);
    assert_eq!(out.code, 2, "an orphaned blob is a problem until gc:\n{}", out.all());
    assert!(out.stdout.contains("orphaned"), "{}", out.all());
    let out = ok(sb.run(&["registry", "gc"]));
    assert!(out.stdout.contains("1 unreferenced blob deleted"), "{}", out.all());
    ok(sb.run(&["registry", "verify"]));
    let out = sb.run(&["registry", "remove", "env-toggle@0.1.0"]);
    assert_eq!(out.code, 2, "{}", out.all());
}

/// Writes an OCI image layout holding `component` as the `application/wasm`
/// layer of one manifest tagged `tag`, the way `wkg oci pull` lays it out.
fn oci_layout(dir: &std::path::Path, component: &[u8], tag: &str) -> String {
    use serde_json::json;
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let blob = |bytes: &[u8], media_type: &str| {
        let hex = backout_registry::Digest::of(bytes).hex();
        std::fs::write(blobs.join(&hex), bytes).unwrap();
        json!({ "mediaType": media_type, "digest": format!("sha256:{hex}"), "size": bytes.len() })
    };
    let config = blob(b"{}", "application/vnd.wasm.config.v0+json");
    let layer = blob(component, "application/wasm");
    let manifest = json!({ "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": config, "layers": [layer.clone()] });
    let mut descriptor = blob(manifest.to_string().as_bytes(), "application/vnd.oci.image.manifest.v1+json");
    descriptor["annotations"] = json!({ "org.opencontainers.image.ref.name": tag });
    std::fs::write(dir.join("index.json"), json!({ "schemaVersion": 2, "manifests": [descriptor] }).to_string())
        .unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    layer["digest"].as_str().unwrap().to_string()
}

#[test]
fn a_component_enters_from_an_oci_image_layout_with_its_layer_digest() {
    let sb = Sandbox::new(bin());
    let layout = sb.mkdir("env-toggle-oci");
    let digest = oci_layout(&layout, &std::fs::read(ENV_TOGGLE).unwrap(), "0.1.0");
    let out = ok(sb.run(&["registry", "add", layout.to_str().unwrap(), "--ref", "0.1.0"]));
    assert!(out.stderr.contains("digests checked"), "{}", out.all());
    assert!(out.stdout.contains(&digest), "the registry pins the layer's digest:\n{}", out.all());
    assert_eq!(digest, format!("sha256:{}", sha256_file(ENV_TOGGLE)));
}

#[test]
fn a_tampered_oci_layout_adds_nothing() {
    let sb = Sandbox::new(bin());
    sb.run(&["registry", "init"]);
    let layout = sb.mkdir("env-toggle-oci");
    let digest = oci_layout(&layout, &std::fs::read(ENV_TOGGLE).unwrap(), "0.1.0");
    let layer = layout.join("blobs/sha256").join(digest.strip_prefix("sha256:").unwrap());
    let mut bytes = std::fs::read(&layer).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&layer, bytes).unwrap();
    let before = snapshot(&sb.registry());
    let out = sb.run(&["registry", "add", layout.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("tampered"), "{}", out.all());
    assert_eq!(snapshot(&sb.registry()), before, "the registry changed");

    let out = sb.run(&["registry", "add", layout.to_str().unwrap(), "--ref", "9.9.9"]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("no manifest is tagged `9.9.9` (tags: `0.1.0`)"), "{}", out.all());
}
