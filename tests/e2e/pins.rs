//! No pin, no run: plugin bytes are hashed and compared with every pin before
//! anything compiles them, and a mismatch shows both digests.

use backout_tests::HOSTILE;
use backout_tests::cli::{Sandbox, sha256_file};

use crate::bin;

fn flip_first_bit(path: &std::path::Path) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[0] ^= 1; // breaks the wasm magic: compiling it would fail differently
    std::fs::write(path, bytes).unwrap();
}

fn echo_runbook(sb: &Sandbox, uses: &str, pin: Option<&str>) -> std::path::PathBuf {
    let pin = pin.map(|p| format!("sha256 = \"{p}\"\n")).unwrap_or_default();
    sb.write(
        "runbook.toml",
        format!("version = 1\nname = \"pins\"\n\n[[step]]\nid = \"echo\"\nuses = \"{uses}\"\n{pin}with = {{ attack = \"echo\" }}\n"),
    )
}

#[test]
fn a_flipped_bit_in_a_registry_blob_is_refused_before_compilation() {
    let sb = Sandbox::new(bin());
    sb.add(HOSTILE);
    let digest = sha256_file(HOSTILE);
    flip_first_bit(&sb.registry().join("blobs/sha256").join(&digest));
    let runbook = echo_runbook(&sb, "hostile@0.1.0", None);
    let out = sb.run(&["run", "--yes", runbook.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains(&format!("expected `sha256:{digest}`")), "{}", out.all());
    assert!(out.stderr.contains("computed `sha256:"), "{}", out.all());
    assert!(!out.stderr.contains("compile"), "the bytes must not reach the compiler:\n{}", out.all());
    assert!(!sb.state().join("runs").exists(), "nothing may run, not even a journal");
}

#[test]
fn a_flipped_bit_in_a_pinned_file_is_refused_with_both_digests() {
    let sb = Sandbox::new(bin());
    let plugin = sb.path().join("hostile.wasm");
    std::fs::copy(HOSTILE, &plugin).unwrap();
    let pinned = sha256_file(&plugin);
    flip_first_bit(&plugin);
    let computed = sha256_file(&plugin);
    let runbook = echo_runbook(&sb, "./hostile.wasm", Some(&pinned));
    let runbook = runbook.to_str().unwrap();
    for args in [vec!["validate", runbook], vec!["plan", runbook], vec!["run", "--yes", runbook]] {
        let out = sb.run(&args);
        assert_eq!(out.code, 2, "{}", out.all());
        assert!(
            out.stderr.contains(&format!("expected `sha256:{pinned}`, computed `sha256:{computed}`")),
            "{}",
            out.all()
        );
        assert!(out.stderr.contains("runbook.toml:7:"), "the error points at the pin:\n{}", out.all());
    }
}

#[test]
fn a_matching_pin_is_accepted_for_files_and_registry_entries() {
    let sb = Sandbox::new(bin());
    sb.add(HOSTILE);
    let digest = sha256_file(HOSTILE);
    let plugin = sb.path().join("hostile.wasm");
    std::fs::copy(HOSTILE, &plugin).unwrap();
    for (uses, pin) in [("./hostile.wasm", digest.clone()), ("hostile@0.1.0", format!("sha256:{digest}"))] {
        let runbook = echo_runbook(&sb, uses, Some(&pin));
        let out = sb.run(&["run", "--yes", runbook.to_str().unwrap()]);
        assert_eq!(out.code, 0, "{}", out.all());
    }
}

#[test]
fn a_registry_plugin_with_a_different_extra_pin_is_refused() {
    let sb = Sandbox::new(bin());
    sb.add(HOSTILE);
    let wrong = "ab".repeat(32);
    let runbook = echo_runbook(&sb, "hostile@0.1.0", Some(&wrong));
    let out = sb.run(&["plan", runbook.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr.contains(&format!("expected `sha256:{wrong}`, computed `sha256:{}`", sha256_file(HOSTILE))),
        "{}",
        out.all()
    );
}

#[test]
fn a_file_plugin_without_a_pin_is_refused_and_the_hint_names_its_digest() {
    let sb = Sandbox::new(bin());
    let plugin = sb.path().join("hostile.wasm");
    std::fs::copy(HOSTILE, &plugin).unwrap();
    let runbook = echo_runbook(&sb, "./hostile.wasm", None);
    let out = sb.run(&["plan", runbook.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("plugin file `./hostile.wasm` is not pinned"), "{}", out.all());
    assert!(out.stderr.contains(&sha256_file(&plugin)), "{}", out.all());
}

#[test]
fn a_core_module_is_not_a_plugin() {
    let sb = Sandbox::new(bin());
    // The smallest valid core module: magic and version 1.
    let module = sb.write("core.wasm", b"\0asm\x01\0\0\0");
    let digest = sha256_file(&module);
    let runbook = echo_runbook(&sb, "./core.wasm", Some(&digest));
    let out = sb.run(&["validate", runbook.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("core WebAssembly module, not a component"), "{}", out.all());
    let out = sb.run(&["registry", "add", module.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        !sb.registry().join("index.toml").exists()
            || !std::fs::read_to_string(sb.registry().join("index.toml")).unwrap().contains("[[plugin]]")
    );
}
