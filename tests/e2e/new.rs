//! `backout new --lang rust|python|js`: each generated project is built and
//! tested in a temp directory exactly as its README tells a newcomer to, by
//! its own `test.sh` (unit tests where the language has them, the component
//! build, then the real CLI: inspect, registry add, plan and run).

use std::path::Path;
use std::process::Command;

use crate::bin;

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("host/ is inside the repository")
}

/// `backout new --lang LANG NAME --dir DIR`, then `DIR/test.sh`.
fn scaffold_and_test(lang: &str, name: &str, env: &[(&str, &Path)]) {
    let work = tempfile::tempdir().unwrap();
    let project = work.path().join(name);
    let out =
        Command::new(bin()).args(["new", "--lang", lang, name, "--dir", project.to_str().unwrap()]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains(&format!("created {lang} plugin `{name}`")), "{text}");
    for file in ["test.sh", "README.md", "wit/step.wit", "example.toml"] {
        assert!(project.join(file).exists(), "{lang}: {file} is missing");
    }

    let mut test = Command::new(project.join("test.sh"));
    test.current_dir(&project).env("BACKOUT", bin()).env_remove("BACKOUT_REGISTRY").env_remove("BACKOUT_STATE_DIR");
    // A fresh plugin is compiled once and never again: cache it with the project, not in $HOME.
    test.env("BACKOUT_CACHE_DIR", work.path().join("compile-cache"));
    for (key, value) in env {
        test.env(key, value);
    }
    let out = test.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{lang}: test.sh failed\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}");
    assert!(stdout.contains(&format!("ok: {name}")), "{lang}: {stdout}");
}

#[test]
fn a_new_rust_plugin_builds_and_passes_its_test() {
    // Share compiled dependencies between runs; the project itself is new each time.
    let target = repo_root().join("target/scaffold");
    scaffold_and_test("rust", "fresh-rust-step", &[("CARGO_TARGET_DIR", &target)]);
}

#[test]
fn a_new_python_plugin_builds_and_passes_its_test() {
    scaffold_and_test("python", "fresh-python-step", &[]);
}

#[test]
fn a_new_javascript_plugin_builds_and_passes_its_test() {
    // componentize-js as `sdk/js/setup.sh` installed it: no npm install per test.
    let componentize = repo_root().join("sdk/js/node_modules/.bin/componentize-js");
    scaffold_and_test("js", "fresh-js-step", &[("COMPONENTIZE_JS", &componentize)]);
}

#[test]
fn new_refuses_a_bad_name_and_a_directory_in_use() {
    let work = tempfile::tempdir().unwrap();
    let out =
        Command::new(bin()).args(["new", "--lang", "rust", "Bad Name"]).current_dir(work.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be a plugin name"));

    std::fs::write(work.path().join("notes.txt"), "mine").unwrap();
    let out = Command::new(bin())
        .args(["new", "--lang", "js", "ok-name", "--dir", work.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));
    assert_eq!(std::fs::read_to_string(work.path().join("notes.txt")).unwrap(), "mine");
}
