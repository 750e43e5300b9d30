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
    let bin_dir = Path::new(bin()).parent().unwrap();
    let out = Command::new("bash")
        .args(["-eu", "-c", &script.join("\n")])
        .current_dir(&repo)
        .env("HOME", home.path())
        .env("TMPDIR", home.path())
        .env("PATH", format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap()))
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_DATA_HOME")
        .env_remove("XDG_STATE_HOME")
        .env_remove("XDG_CACHE_HOME")
        .env_remove("BACKOUT_REGISTRY")
        .env_remove("BACKOUT_STATE_DIR")
        .env_remove("BACKOUT_CACHE_DIR")
        .env_remove("BACKOUT_TRUST")
        .env_remove("BACKOUT_REQUIRE_SIGNED")
        .output()
        .unwrap();
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
