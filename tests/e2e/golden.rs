//! Golden tests for what an operator sees when a runbook is wrong.
//!
//! Each `golden/<name>.toml` is validated with the real CLI; its stderr and
//! exit code must equal `golden/<name>.err` byte for byte, after the temp
//! directory and the digests of freshly built plugins are replaced by
//! placeholders. Refresh the `.err` files with `BLESS=1 cargo test golden`
//! and review the diff.

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
