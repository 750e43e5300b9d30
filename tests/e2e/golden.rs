//! Golden tests for what an operator sees: when a runbook is wrong, and in
//! whole sessions of `plan`, `run`, `lock`, `inspect` and `registry …`.
//!
//! Each `golden/<name>.toml` is validated with the real CLI; its stderr and
//! exit code must equal `golden/<name>.err` byte for byte, after the temp
//! directory and the digests of freshly built plugins are replaced by
//! placeholders. Each session in [`sessions`] runs its commands in a fresh
//! sandbox; the transcript (command, exit code, stdout, stderr) must equal
//! `golden/cli/<name>.txt`, with timestamps, keys, run ids, durations and the
//! test plugins' paths, digests and sizes replaced by placeholders. Refresh
//! both with `BLESS=1 cargo test -p backout --test e2e golden` and review the
//! diff.

use std::path::{Path, PathBuf};

use backout_tests::cli::{Sandbox, sha256_file};
use backout_tests::{ENV_TOGGLE, HOSTILE};

use crate::bin;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e/golden")
}

/// Runs `backout validate` on one golden runbook and returns what is compared.
fn observe(sb: &Sandbox, runbook: &Path) -> String {
    let text = std::fs::read_to_string(runbook).unwrap();
    let name = runbook.file_name().unwrap().to_str().unwrap();
    let data = sb.path().join("data");
    let mut cmd = sb.command();
    cmd.current_dir(golden_dir()).arg("validate").arg(name);
    if text.contains("[vars]") || name.starts_with("undeclared-var") {
        cmd.arg("--var").arg(format!("data={}", data.display()));
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr)
        .replace(&sb.path().canonicalize().unwrap().display().to_string(), "<sandbox>")
        .replace(&sb.path().display().to_string(), "<sandbox>")
        .replace(&sha256_file(HOSTILE), "<hostile-sha256>")
        .replace(&sha256_file(ENV_TOGGLE), "<env-toggle-sha256>");
    format!("# exit code {}\n{stderr}", out.status.code().unwrap())
}

#[test]
fn bad_runbooks_print_the_expected_errors() {
    let sb = Sandbox::new(bin());
    sb.add(HOSTILE);
    sb.add(ENV_TOGGLE);
    sb.write("data/.env", "FEATURE=true\n");
    let bless = std::env::var_os("BLESS").is_some();
    let mut runbooks: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    runbooks.sort();
    assert!(runbooks.len() >= 10, "golden runbooks are missing");
    let mut mismatches = Vec::new();
    for runbook in &runbooks {
        let actual = observe(&sb, runbook);
        let expected_path = runbook.with_extension("err");
        if bless {
            std::fs::write(&expected_path, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if actual != expected {
            mismatches.push(format!(
                "{}:\n--- expected ---\n{expected}\n--- actual ---\n{actual}",
                runbook.file_name().unwrap().to_string_lossy()
            ));
        }
        assert!(
            actual.starts_with("# exit code 2\n"),
            "{} must be refused with exit code 2:\n{actual}",
            runbook.display()
        );
    }
    assert!(mismatches.is_empty(), "golden output changed (BLESS=1 to accept):\n\n{}", mismatches.join("\n\n"));
}

/// One command-line session: each command, its exit code, stdout and
/// stderr, after the same replacements as the runbook goldens plus
/// timestamps, public keys and the test plugins' paths and sizes.
struct Transcript<'a> {
    sb: &'a Sandbox,
    text: String,
}

impl<'a> Transcript<'a> {
    fn new(sb: &'a Sandbox) -> Self {
        Self { sb, text: String::new() }
    }

    /// Runs `backout ARGS` and appends what it printed. Help is wrapped at
    /// 100 columns whatever the machine's `COLUMNS` says.
    fn run(&mut self, args: &[&str]) -> i32 {
        let out = self.sb.run_with_env(args, &[("COLUMNS", &"100")]);
        let shown: Vec<String> = args.iter().map(|a| self.normalise(a)).collect();
        self.text.push_str(&format!("$ backout {}\n# exit code {}\n", shown.join(" "), out.code));
        for (name, stream) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            if !stream.is_empty() {
                self.text.push_str(&format!("--- {name}\n{}", self.normalise(stream)));
                if !stream.ends_with('\n') {
                    self.text.push('\n');
                }
            }
        }
        self.text.push('\n');
        out.code
    }

    fn normalise(&self, text: &str) -> String {
        let sandbox = self.sb.path().canonicalize().unwrap().display().to_string();
        let mut text = text
            .replace(&sandbox, "<sandbox>")
            .replace(&self.sb.path().display().to_string(), "<sandbox>")
            .replace(HOSTILE, "<hostile.wasm>")
            .replace(ENV_TOGGLE, "<env-toggle.wasm>")
            .replace(&sha256_file(HOSTILE), "<hostile-sha256>")
            .replace(&sha256_file(ENV_TOGGLE), "<env-toggle-sha256>")
            .replace(&short(&sha256_file(HOSTILE)), "<hostile-sha256-short>")
            .replace(&std::fs::metadata(HOSTILE).unwrap().len().to_string(), "<hostile-size>")
            .replace(&std::fs::metadata(ENV_TOGGLE).unwrap().len().to_string(), "<env-toggle-size>");
        for (pattern, placeholder) in [
            (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "<time>"),
            (r"ed25519:[0-9a-f]{64}", "<key>"),
            (r"sha256:[0-9a-f]{64}", "<sha256>"),
            (r"\b\d+ bytes hashed\b", "<n> bytes hashed"),
            (r"\(in \d+ days?\)", "(in <n> days)"),
            (r"<?\d+(\.\d+)?(ms|s)\b", "<duration>"),
            (r"\d{8}T\d{6}\.\d{3}Z-[a-z0-9-]+", "<run-id>"),
        ] {
            text = regex_lite::Regex::new(pattern).unwrap().replace_all(&text, placeholder).into_owned();
        }
        text
    }
}

/// One golden session: commands run into a transcript.
type Session = fn(&mut Transcript<'_>);

/// A digest as plans show it: the first 8 and last 4 hex digits.
fn short(hex: &str) -> String {
    format!("{}…{}", &hex[..8], &hex[hex.len() - 4..])
}

/// The sessions whose exact output is golden: `golden/cli/<name>.txt`.
fn sessions() -> Vec<(&'static str, Session)> {
    vec![
        ("registry", |t| {
            t.run(&["registry", "list"]);
            t.run(&["registry", "init"]);
            t.run(&["registry", "list"]);
            t.run(&["registry", "add", HOSTILE]);
            t.run(&["registry", "add", HOSTILE]);
            t.run(&["registry", "add", ENV_TOGGLE]);
            t.run(&["registry", "list"]);
            t.run(&["registry", "show", "hostile"]);
            t.run(&["registry", "show", "hostle"]);
            t.run(&["registry", "verify"]);
            t.run(&["registry", "remove", "env-toggle@0.1.0"]);
            t.run(&["registry", "gc"]);
            t.run(&["--output", "json", "registry", "verify"]);
        }),
        ("registry-signed", |t| {
            let key = t.sb.path().join("acme.key");
            let key = key.to_str().unwrap();
            t.run(&["registry", "add", HOSTILE]);
            t.run(&["key", "generate", "--out", key]);
            t.run(&["registry", "sign", "--key", key]);
            t.run(&["registry", "add", ENV_TOGGLE]);
            t.run(&["registry", "add", ENV_TOGGLE, "--key", key]);
            t.run(&["registry", "remove", "env-toggle@0.1.0", "--unsign"]);
            t.run(&["registry", "sign", "--key", key]);
            let bundle = t.sb.path().join("bundle.tar");
            t.run(&["registry", "export", "--to", bundle.to_str().unwrap()]);
            let index = t.sb.registry().join("index.toml");
            let text = std::fs::read_to_string(&index).unwrap();
            std::fs::write(&index, text.replace("publisher = \"local\"", "publisher = \"edited\"")).unwrap();
            t.run(&["registry", "verify"]);
            t.run(&["registry", "list"]);
        }),
        ("registry-damaged", |t| {
            t.run(&["registry", "add", HOSTILE]);
            let bundle = t.sb.path().join("bundle.tar");
            t.run(&["registry", "export", "--to", bundle.to_str().unwrap()]);
            let blob = t.sb.registry().join("blobs/sha256").join(sha256_file(HOSTILE));
            std::fs::write(&blob, b"bit rot").unwrap();
            t.run(&["registry", "verify"]);
            t.run(&["registry", "import", bundle.to_str().unwrap()]);
            std::fs::remove_file(&blob).unwrap();
            t.run(&["registry", "verify"]);
            t.run(&["registry", "add", HOSTILE]);
            t.run(&["registry", "verify"]);
        }),
        ("help", |t| {
            t.run(&["--help"]);
            t.run(&["plan", "--help"]);
            t.run(&["registry", "add", "-h"]);
            t.run(&["completions", "--help"]);
            t.run(&["plan"]);
            t.run(&["registry", "ad"]);
        }),
        ("plan-run-lock-inspect", |t| {
            t.run(&["registry", "add", HOSTILE]);
            t.sb.write(
                "runbook.toml",
                "version = 1\nname = \"echo\"\n\n[[step]]\nid = \"echo\"\nuses = \"hostile@0.1\"\n\
                 with = { attack = \"echo\", contents = \"hi\" }\n",
            );
            t.sb.write("typo.toml", "version = 1\nname = \"typo\"\n\n[[step]]\nid = \"t\"\nuses = \"hostle@0.1\"\n");
            t.run(&["plan", "runbook.toml"]);
            t.run(&["plan", "typo.toml"]);
            t.run(&["lock", "runbook.toml"]);
            t.run(&["lock", "runbook.toml"]);
            t.run(&["--output", "json", "lock", "runbook.toml"]);
            t.sb.write("broken.toml", "version = 1\nname = \n");
            t.run(&["lock", "broken.toml"]);
            t.run(&["run", "--yes", "runbook.toml"]);
            t.run(&["inspect", "hostile@0.1"]);
            t.run(&["inspect", "hostile@9"]);
        }),
    ]
}

#[test]
fn cli_sessions_print_the_expected_output() {
    let bless = std::env::var_os("BLESS").is_some();
    let dir = golden_dir().join("cli");
    let mut mismatches = Vec::new();
    for (name, session) in sessions() {
        let sb = Sandbox::new(bin());
        let mut transcript = Transcript::new(&sb);
        session(&mut transcript);
        let path = dir.join(format!("{name}.txt"));
        if bless {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &transcript.text).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        if transcript.text != expected {
            mismatches.push(format!("{name}:\n--- expected ---\n{expected}\n--- actual ---\n{}", transcript.text));
        }
    }
    assert!(mismatches.is_empty(), "golden output changed (BLESS=1 to accept):\n\n{}", mismatches.join("\n\n"));
}
