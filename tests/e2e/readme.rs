//! The README's quick start, run as written: its shell block is taken from
//! `README.md` itself and run by `bash -eu` on a fresh `HOME` (so the
//! default registry, state and cache directories are the ones a newcomer
//! gets), and its runbook is compared with `examples/quickstart.toml`.
//!
//! Three adjustments, each because the test harness already did the work
//! or has no terminal: the setup and build lines are skipped (the test
//! build ran them: `tests/build.rs` built env-toggle and cargo built the
//! binary under test), `PATH` points at the binary under test and the path
//! of the test-built env-toggle stands for `target/wasm32-wasip2/release`,
//! and `backout run` gets `--yes`, the answer an operator types at its
//! prompt (without a terminal it refuses to ask).

use std::path::{Path, PathBuf};
use std::process::Command;

use backout_tests::ENV_TOGGLE;

use crate::bin;

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap()
}

/// The body of the first fenced block of `language` after the heading `heading`.
fn block_after(text: &str, heading: &str, language: &str) -> String {
    let section = &text[text.find(heading).unwrap_or_else(|| panic!("README has no `{heading}`"))..];
    let fence = format!("```{language}\n");
    let start =
        section.find(&fence).unwrap_or_else(|| panic!("no ```{language} block after `{heading}`")) + fence.len();
    let end = section[start..].find("```").expect("an unterminated block");
    section[start..start + end].to_string()
}

/// Runs `script` with `bash -eu` in `cwd` as a newcomer's shell: `HOME` (and
/// `TMPDIR`) is `home`, no backout or XDG variable is set, and the binary
/// under test comes first on `PATH`.
fn newcomer(home: &Path, cwd: &Path, script: &str) -> std::process::Output {
    let bin_dir = Path::new(bin()).parent().unwrap();
    let mut cmd = Command::new("bash");
    cmd.args(["-eu", "-c", script])
        .current_dir(cwd)
        .env("HOME", home)
        .env("TMPDIR", home)
        .env("PATH", format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap()));
    for var in ["XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"] {
        cmd.env_remove(var);
    }
    for var in ["REGISTRY", "STATE_DIR", "CACHE_DIR", "TRUST", "REQUIRE_SIGNED"] {
        cmd.env_remove(format!("BACKOUT_{var}"));
    }
    cmd.output().unwrap()
}

fn text_of(out: &std::process::Output) -> String {
    format!("{}\n--- stderr ---\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn the_quick_start_runs_as_written() {
    let text = readme();
    let runbook = block_after(&text, "## Quick start", "toml");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    assert_eq!(
        runbook,
        std::fs::read_to_string(repo.join("examples/quickstart.toml")).unwrap(),
        "the README's runbook and examples/quickstart.toml differ"
    );

    let commands = block_after(&text, "## Quick start", "sh");
    let skipped = ["tests/setup.sh", "cargo build", "export PATH="];
    let script: Vec<String> = commands
        .lines()
        .filter(|line| !skipped.iter().any(|s| line.starts_with(s)))
        .map(|line| {
            line.replace("target/wasm32-wasip2/release/env_toggle.wasm", ENV_TOGGLE)
                .replace("backout run ", "backout run --yes ")
        })
        .collect();
    assert!(script.iter().any(|l| l.starts_with("backout run --yes")), "{script:?}");

    let home = tempfile::tempdir().unwrap();
    let out = newcomer(home.path(), &repo, &script.join("\n"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let all = format!("{stdout}\n--- stderr ---\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the quick start failed:\n{all}");

    // `mktemp -d` made the app directory under TMPDIR; the run edited its .env.
    let apps: Vec<PathBuf> = std::fs::read_dir(home.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join(".env").is_file())
        .collect();
    assert_eq!(apps.len(), 1, "{apps:?}\n{all}");
    assert_eq!(
        std::fs::read_to_string(apps[0].join(".env")).unwrap(),
        "INSIGHT_GENERATION_ENABLED=false\nLOG_LEVEL=info\n",
        "{all}"
    );
    assert!(stdout.contains("Run succeeded: 1 of 1 step"), "{all}");
    // `cat "$app/.env"`, the last line of the block, printed the result.
    assert!(stdout.trim_end().ends_with("INSIGHT_GENERATION_ENABLED=false\nLOG_LEVEL=info"), "{all}");
    // Everything went where a newcomer's backout puts it: under $HOME.
    for dir in [".local/share/backout/registry", ".local/state/backout/runs", ".cache/backout/compiled"] {
        assert!(home.path().join(dir).is_dir(), "no {dir} under HOME:\n{all}");
    }
    println!("{stdout}");
}

#[test]
fn the_completion_and_man_page_install_runs_as_written() {
    let text = readme();
    let section = &text[text.find("Tab completion and the manual page").expect("README says how to install them")..];
    let commands = block_after(section, "Tab completion", "sh");
    assert!(commands.contains("backout completions bash >") && commands.contains("backout man --dir"), "{commands}");

    let home = tempfile::tempdir().unwrap();
    let bin_dir = Path::new(bin()).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    let out = Command::new("bash")
        .args(["-eu", "-c", &commands])
        .env("HOME", home.path())
        .env("PATH", &path)
        .output()
        .unwrap();
    assert!(out.status.success(), "the install failed:\n{}", String::from_utf8_lossy(&out.stderr));

    // What it wrote works where it was put: bash finds the completion, man the page.
    let completion = home.path().join(".local/share/bash-completion/completions/backout");
    let spec = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", "source \"$1\" && complete -p backout", "check"])
        .arg(&completion)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&spec.stdout).contains("-F _backout"), "{}", String::from_utf8_lossy(&spec.stderr));
    let man_dir = home.path().join(".local/share/man");
    let page = Command::new("man")
        .args(["-M"])
        .arg(&man_dir)
        .arg("backout-run")
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "80")
        .output()
        .unwrap();
    let page_text = String::from_utf8_lossy(&page.stdout);
    assert!(
        page.status.success() && page_text.starts_with("backout-run(1)"),
        "{page_text}{}",
        String::from_utf8_lossy(&page.stderr)
    );
}

/// "Publishing and the air gap", as written: on the connected side a
/// registry holding env-toggle and a locked runbook; the README's three
/// commands make a key, sign and export. The air-gapped side is another
/// `HOME`: the README's trust file with that public key, then its two
/// commands import the tar and run the locked runbook (`--yes`, as an
/// operator answers the prompt), and "The run report"'s command writes the
/// page of that run. Nothing but the tar, the runbook and its lock crosses.
#[test]
fn the_air_gap_session_runs_as_written() {
    let text = readme();
    let section = &text[text.find("**Publishing and the air gap.**").expect("the README has the air gap")..];
    let publish = block_after(section, "On the connected side", "sh");
    let trust = block_after(section, "On the air-gapped host", "toml");
    let import = block_after(section, "Every plan says how the registry was trusted", "sh");
    assert!(publish.contains("backout registry export") && import.contains("backout registry import"), "{section}");

    // The connected side: a registry with the plugin, a runbook and its lock.
    let connected = tempfile::tempdir().unwrap();
    let app = tempfile::tempdir().unwrap();
    std::fs::write(app.path().join(".env"), "INSIGHT_GENERATION_ENABLED=true\n").unwrap();
    let quickstart = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart.toml"));
    let runbook = quickstart.unwrap().replace("\"/srv/app\"", &format!("\"{}\"", app.path().display()));
    std::fs::write(connected.path().join("rollback.toml"), runbook).unwrap();
    let setup = format!("backout registry add {ENV_TOGGLE} && backout lock rollback.toml");
    let out = newcomer(connected.path(), connected.path(), &setup);
    assert!(out.status.success(), "{}", text_of(&out));
    let out = newcomer(connected.path(), connected.path(), &publish);
    assert!(out.status.success(), "publishing failed:\n{}", text_of(&out));
    let printed = String::from_utf8_lossy(&out.stdout);
    let public = printed
        .lines()
        .find_map(|l| l.strip_prefix("public key: "))
        .unwrap_or_else(|| panic!("key generate printed no public key:\n{printed}"));

    // The air-gapped side: only the tar, the runbook and its lock.
    let gapped = tempfile::tempdir().unwrap();
    for file in ["registry.tar", "rollback.toml", "rollback.toml.lock"] {
        std::fs::copy(connected.path().join(file), gapped.path().join(file)).unwrap();
    }
    let config = gapped.path().join(".config/backout");
    std::fs::create_dir_all(&config).unwrap();
    assert!(trust.contains("public = \"ed25519:…\""), "{trust}");
    std::fs::write(config.join("trust.toml"), trust.replace("ed25519:…", public)).unwrap();
    let script = import.replace("backout run ", "backout run --yes ");
    let out = newcomer(gapped.path(), gapped.path(), &script);
    let all = text_of(&out);
    assert!(out.status.success(), "the air-gapped side failed:\n{all}");
    assert!(all.contains("verified: signed by trusted key `acme`"), "{all}");
    assert!(all.contains("Run succeeded: 1 of 1 step"), "{all}");
    assert_eq!(std::fs::read_to_string(app.path().join(".env")).unwrap(), "INSIGHT_GENERATION_ENABLED=false\n");

    // "The run report", as written, about that run.
    let report = block_after(&text, "## The run report", "sh");
    let out = newcomer(gapped.path(), gapped.path(), &report);
    assert!(out.status.success(), "{}", text_of(&out));
    let page = std::fs::read_to_string(gapped.path().join("report.html")).unwrap();
    assert!(
        page.starts_with("<!DOCTYPE html>") && page.contains("feature-rollback"),
        "{}",
        &page[..page.len().min(300)]
    );
}
