//! `{{name}}`: a backout step. It replaces a file's contents, keeping a
//! safety copy, and can put the file back. Change it into your step: the
//! four rules of a good step are marked 1–4 below.
//!
//! Build the component: `cargo build --release --target wasm32-wasip2`
//! (→ `target/wasm32-wasip2/release/{{module}}.wasm`). Test the logic
//! natively: `cargo test`. Both at once, plus a real `backout plan`:
//! `./test.sh`.

use std::path::{Path, PathBuf};

use backout_sdk::{Action, FileAccess, Info, Needs, Outcome, Step, StepError, export_step, fs, log};
use serde::{Deserialize, Serialize};

/// The runbook's `with` table. Unknown keys are errors, so a typo is caught
/// by `plan`, not discovered in production.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Guest path of the file to replace (inside a granted directory).
    pub file: String,
    /// What to write.
    pub contents: String,
}

/// What `run` reports; `verify` and `undo` get it back.
#[derive(Debug, Serialize, Deserialize)]
pub struct Outputs {
    pub safety_copy: PathBuf,
    pub sha256_after: String,
}

#[derive(Debug)]
pub struct {{type}};

impl Step for {{type}} {
    type Config = Config;
    type Outputs = Outputs;

    fn describe() -> Info {
        Info::new("{{name}}", env!("CARGO_PKG_VERSION"), "replace a file's contents, with a safety copy")
            .needs(Needs { files: FileAccess::ReadWrite, ..Needs::default() })
    }

    fn plan(c: Config) -> Result<Vec<Action>, StepError> {
        // Every directory is read-only here: check, never change.
        if !Path::new(&c.file).is_file() {
            return Err(StepError::precondition(format!("`{}` does not exist", c.file)));
        }
        Ok(vec![Action::new(format!("replace {}", c.file)).detail(format!("{} bytes", c.contents.len()))])
    }

    fn run(c: Config) -> Result<Outcome<Outputs>, StepError> {
        let path = Path::new(&c.file);
        let safety_copy = fs::safety_copy(path, None).map_err(StepError::failed)?; // 1. keep what you replace
        fs::replace_atomically(path, c.contents.as_bytes()).map_err(StepError::failed)?; // 2. temp, fsync, rename
        log::info(format!("replaced {}", c.file));
        Ok(Outcome::new("replaced", Outputs { safety_copy, sha256_after: fs::sha256_hex(c.contents.as_bytes()) }))
    }

    fn verify(c: Config, o: Outputs) -> Result<(), StepError> {
        // 3. check after writing
        match fs::sha256_file(Path::new(&c.file)) {
            Ok(d) if d == o.sha256_after => Ok(()),
            _ => Err(StepError::precondition(format!("`{}` does not hold what run wrote", c.file))),
        }
    }

    fn undo(c: Config, o: Outputs) -> Result<Outcome<Outputs>, StepError> {
        // 4. only if untouched since
        let path = Path::new(&c.file);
        let now = fs::sha256_file(path).map_err(StepError::failed)?;
        if now != o.sha256_after {
            return Err(StepError::precondition(format!("`{}` changed since run; nothing restored", c.file)));
        }
        let original = std::fs::read(&o.safety_copy).map_err(StepError::failed)?;
        fs::replace_atomically(path, &original).map_err(StepError::failed)?;
        Ok(Outcome::new(format!("restored {}", c.file), o))
    }
}

export_step!({{type}});

/// The logic, natively: the SDK's file helpers fall back to std off wasm.
#[cfg(test)]
mod tests {
    use super::*;

    fn config(file: &Path, contents: &str) -> Config {
        Config { file: file.to_string_lossy().into_owned(), contents: contents.to_string() }
    }

    #[test]
    fn run_verify_undo_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("app.conf");
        std::fs::write(&file, "old\n").unwrap();

        assert_eq!({{type}}::plan(config(&file, "new\n")).unwrap().len(), 1);
        let outcome = {{type}}::run(config(&file, "new\n")).unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "new\n");
        assert_eq!(std::fs::read_to_string(&outcome.outputs.safety_copy).unwrap(), "old\n");
        {{type}}::verify(config(&file, "new\n"), outcome.outputs).unwrap();

        let again = {{type}}::run(config(&file, "newer\n")).unwrap();
        {{type}}::undo(config(&file, "newer\n"), again.outputs).unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "new\n");
    }

    #[test]
    fn plan_refuses_a_missing_file() {
        let err = {{type}}::plan(config(Path::new("/nonexistent/app.conf"), "x")).unwrap_err();
        assert!(err.message().contains("does not exist"), "{}", err.message());
    }

    #[test]
    fn undo_refuses_a_file_changed_since_run() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("app.conf");
        std::fs::write(&file, "old\n").unwrap();
        let outcome = {{type}}::run(config(&file, "new\n")).unwrap();
        std::fs::write(&file, "edited by hand\n").unwrap();
        assert!({{type}}::undo(config(&file, "new\n"), outcome.outputs).is_err());
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "edited by hand\n");
    }
}
