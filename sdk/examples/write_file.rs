//! The plugin from the README's "Writing a plugin in Rust", kept compiling:
//! `cargo test -p backout-sdk` builds it natively, and
//! `cargo build --release --target wasm32-wasip2 -p backout-sdk --example write_file`
//! builds the component.

use backout_sdk::{Action, FileAccess, Info, Needs, Outcome, Step, StepError, export_step, fs, log};
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
        let safety_copy = fs::safety_copy(path, None).map_err(StepError::failed)?; // 1. keep what you replace
        fs::replace_atomically(path, c.contents.as_bytes()).map_err(StepError::failed)?; // 2. temp, fsync, rename, fsync dir
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
