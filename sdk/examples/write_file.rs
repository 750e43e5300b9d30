//! The plugin from the README's "Writing a plugin in Rust", kept compiling:
//! `cargo test -p backout-sdk` builds it natively, and
//! `cargo build --release --target wasm32-wasip2 -p backout-sdk --example write_file`
//! builds the component.

use backout_sdk::{Action, FileAccess, Info, Needs, Outcome, Step, StepError, checkpoint, export_step, fs, log};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    file: String,
    contents: String,
}

#[derive(Serialize, Deserialize)]
struct Outputs {
    safety_copy: PathBuf,
    sha256_before: String,
    sha256_after: String,
}

struct WriteFile;

impl Step for WriteFile {
    type Config = Config;
    type Outputs = Outputs;

    fn describe() -> Info {
        Info::new("write-file", env!("CARGO_PKG_VERSION"), "replace a file's contents")
            .needs(Needs { files: FileAccess::ReadWrite, ..Needs::default() })
    }

    fn plan(c: Config) -> Result<Vec<Action>, StepError> {
        // directories are read-only here
        if !Path::new(&c.file).is_file() {
            return Err(StepError::precondition(format!("`{}` does not exist", c.file)));
        }
        Ok(vec![Action::new(format!("replace {}", c.file))])
    }

    fn run(c: Config) -> Result<Outcome<Outputs>, StepError> {
        let path = Path::new(&c.file);
        let sha256_before = fs::sha256_file(path).map_err(StepError::failed)?;
        let safety_copy = fs::safety_copy(path, None).map_err(StepError::failed)?; // 1. keep what you replace
        let outputs = Outputs { safety_copy, sha256_before, sha256_after: fs::sha256_hex(c.contents.as_bytes()) };
        checkpoint(&outputs)?; // 2. journaled before the change: undo works even if backout dies now
        fs::replace_atomically(path, c.contents.as_bytes()).map_err(StepError::failed)?; // 3. temp, fsync, rename, fsync dir
        log::info(format!("replaced {}", c.file));
        Ok(Outcome::new("replaced", outputs))
    }

    fn verify(c: Config, o: Outputs) -> Result<(), StepError> {
        // 4. check after writing (after a crash: fail unless the change is in place)
        match fs::sha256_file(Path::new(&c.file)) {
            Ok(d) if d == o.sha256_after => Ok(()),
            _ => Err(StepError::precondition(format!("`{}` does not hold what run wrote", c.file))),
        }
    }

    fn undo(c: Config, o: Outputs) -> Result<Outcome<Outputs>, StepError> {
        let path = Path::new(&c.file);
        let now = fs::sha256_file(path).map_err(StepError::failed)?;
        if now == o.sha256_before {
            // 5. idempotent: run never got to it, or an earlier undo did it
            return Ok(Outcome::new(format!("nothing to undo in {}", c.file), o));
        }
        if now != o.sha256_after {
            // 6. only if untouched since
            return Err(StepError::precondition(format!(
                "`{}` changed since run (sha256 {now}); nothing restored",
                c.file
            )));
        }
        let original = std::fs::read(&o.safety_copy).map_err(StepError::failed)?;
        fs::replace_atomically(path, &original).map_err(StepError::failed)?;
        Ok(Outcome::new(format!("restored {}", c.file), o))
    }
}

export_step!(WriteFile);
