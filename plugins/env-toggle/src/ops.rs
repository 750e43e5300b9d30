//! The step's operations on the file: plan, run, verify, undo.
//!
//! They take the validated config and a `log` callback instead of calling the
//! host, so the whole flow (safety copy, atomic write, read-back, undo's
//! digest checks) runs natively in unit tests on real temporary files.

#![forbid(unsafe_code)]

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::Path;

use backout_sdk::fs::{replace_atomically, safety_copy, sha256_hex};
use backout_sdk::{Action, Outcome, StepError};

use crate::config::Valid;
use crate::dotenv::{self, ChangeKind, Edit};
use crate::report::{self, Outputs};

/// Files larger than this are refused: a `.env` file is small, and the whole
/// file is held in memory to edit it.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Where log lines go: the host's log in a plugin, a vector in tests.
pub type Log<'a> = &'a mut dyn FnMut(String);

/// Reads the file and says what `run` would do, one action per key.
pub fn plan(valid: &Valid) -> Result<Vec<Action>, StepError> {
    let bytes = read_env_file(&valid.file)?;
    let edit = compute_edit(&bytes, valid)?;
    Ok(edit
        .changes
        .iter()
        .map(|c| {
            let summary = report::action_summary(c, &valid.file);
            // A key already as requested is in place: a re-run changes nothing.
            let action = match c.kind {
                ChangeKind::Unchanged => Action::in_place(summary),
                _ => Action::new(summary),
            };
            action.detail(report::action_detail(c))
        })
        .collect())
}

/// Re-reads the file, recomputes the edit (never trusting plan's result),
/// takes a safety copy, writes atomically and reads the result back.
pub fn run(valid: &Valid, log: Log<'_>) -> Result<Outcome<Outputs>, StepError> {
    let file = valid.file.as_str();
    let before = read_env_file(file)?;
    let edit = compute_edit(&before, valid)?;
    let sha256_before = sha256_hex(&before);
    let changes = edit.changes.iter().map(report::record).collect();
    if edit.is_noop() {
        let summary = report::run_summary(&edit.changes, file, None);
        log(summary.clone());
        let outputs = Outputs {
            file: file.to_owned(),
            safety_copy: None,
            changes,
            sha256_after: sha256_before.clone(),
            sha256_before,
            restored_from: None,
        };
        return Ok(Outcome::new(summary, outputs));
    }
    let copy = take_safety_copy(file, &sha256_before)?;
    let outputs = Outputs {
        file: file.to_owned(),
        safety_copy: Some(copy.clone()),
        changes,
        sha256_before,
        sha256_after: sha256_hex(&edit.output),
        restored_from: None,
    };
    // The write-ahead record: if backout dies from here on, `verify` and
    // `undo` get these outputs whether the replace happened or not.
    if let Err(e) = backout_sdk::checkpoint(&outputs) {
        let _ = fs::remove_file(&copy);
        return Err(e);
    }
    write_and_confirm(valid, &before, &edit, &copy)?;
    for change in &edit.changes {
        log(report::log_line(change, file));
    }
    Ok(Outcome::new(report::run_summary(&edit.changes, file, Some(&copy)), outputs))
}

/// Checks that every key set reads as its new value and every key unset is
/// absent. No effects.
///
/// After a crash `outputs` is run's checkpoint, taken before the replace,
/// so the edit may never have been written: then a key reads wrong, and
/// a file that still holds exactly its bytes from before the run fails even
/// where every key happens to read as requested.
pub fn verify(valid: &Valid, outputs: &Outputs) -> Result<(), StepError> {
    same_file(valid, outputs)?;
    let bytes = read_env_file(&valid.file)?;
    let mismatches = dotenv::check(&bytes, &valid.set, &valid.unset);
    if mismatches.is_empty() {
        if outputs.sha256_before != outputs.sha256_after && sha256_hex(&bytes) == outputs.sha256_before {
            return Err(StepError::precondition(format!(
                "`{}` still holds its content from before the run (sha256 `{}`): the edit was never written",
                valid.file, outputs.sha256_before
            )));
        }
        return Ok(());
    }
    let messages: Vec<String> =
        mismatches.iter().map(|m| report::mismatch_message(m, &valid.file, expected_value(valid, &m.key))).collect();
    Err(StepError::precondition(messages.join("; ")))
}

/// Puts the safety copy's bytes back, only if the file still holds exactly
/// what `run` wrote and the copy still holds exactly what `run` replaced.
/// The safety copy stays in place as evidence.
///
/// Idempotent: a file that already holds its bytes from before the run (the
/// run was killed before its replace, or an earlier undo finished) is left
/// alone, and undo succeeds with "nothing to undo".
pub fn undo(valid: &Valid, outputs: Outputs, log: Log<'_>) -> Result<Outcome<Outputs>, StepError> {
    same_file(valid, &outputs)?;
    let file = outputs.file.clone();
    let Some(copy) = outputs.safety_copy.clone() else {
        let summary = format!("nothing to undo: the run changed nothing in {file}");
        log(summary.clone());
        return Ok(Outcome::new(summary, outputs));
    };
    let current = read_env_file(&file).map_err(nothing_restored)?;
    let found = sha256_hex(&current);
    if found == outputs.sha256_before {
        let summary = format!("nothing to undo: {file} already holds its content from before the run");
        log(summary.clone());
        return Ok(Outcome::new(summary, outputs));
    }
    if found != outputs.sha256_after {
        return Err(StepError::precondition(format!(
            "`{file}` changed since the run (expected sha256 `{}`, found `{found}`); nothing was \
             restored; its content from before the run is in the safety copy `{copy}`",
            outputs.sha256_after
        )));
    }
    let original = read_safety_copy(&copy, &outputs.sha256_before)?;
    restore(&file, &copy, &original, &outputs.sha256_before)?;
    let summary = format!("restored {file} from safety copy {copy}");
    log(summary.clone());
    Ok(Outcome::new(summary, Outputs { restored_from: Some(copy), ..outputs }))
}

// ---------------------------------------------------------------------------

fn compute_edit(bytes: &[u8], valid: &Valid) -> Result<Edit, StepError> {
    dotenv::plan_edit(bytes, &valid.request()).map_err(StepError::precondition)
}

fn expected_value<'a>(valid: &'a Valid, key: &str) -> Option<&'a str> {
    valid.set.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// `verify` and `undo` must act on the file `run` edited.
fn same_file(valid: &Valid, outputs: &Outputs) -> Result<(), StepError> {
    if valid.file == outputs.file {
        return Ok(());
    }
    Err(StepError::invalid_config_at(
        "/file",
        format!(
            "the run's outputs are for `{}` but the config names `{}`; use the config the run used",
            outputs.file, valid.file
        ),
    ))
}

/// Reads the file to edit, refusing what an atomic replace would break: a
/// symbolic link (the link would become a plain file) or anything that is not
/// a regular file, and files too large to be a `.env` file.
pub fn read_env_file(file: &str) -> Result<Vec<u8>, StepError> {
    let path = Path::new(file);
    let meta = fs::symlink_metadata(path).map_err(|e| unreadable(file, &e))?;
    if meta.file_type().is_symlink() {
        let target = fs::read_link(path).map(|t| format!(" to `{}`", t.display())).unwrap_or_default();
        return Err(StepError::precondition(format!(
            "`{file}` is a symbolic link{target}; replacing it would replace the link with a plain \
             file, so set `file` to the file it points to"
        )));
    }
    if !meta.is_file() {
        return Err(StepError::precondition(format!("`{file}` is not a regular file")));
    }
    read_limited(path).map_err(|e| match e.kind() {
        io::ErrorKind::FileTooLarge => StepError::precondition(format!("`{file}` {e}")),
        _ => unreadable(file, &e),
    })
}

/// Reads at most [`MAX_FILE_BYTES`], failing beyond.
fn read_limited(path: &Path) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    File::open(path)?.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("is larger than {} MiB, too large for a .env file", MAX_FILE_BYTES / (1024 * 1024)),
        ));
    }
    Ok(bytes)
}

fn unreadable(file: &str, e: &io::Error) -> StepError {
    match e.kind() {
        io::ErrorKind::NotFound => StepError::precondition(format!(
            "`{file}` does not exist, or is not inside a directory granted to this step: the file \
             must be inside a granted directory ({e})"
        )),
        _ => StepError::precondition(format!(
            "cannot read `{file}`: {e}; the file must be inside a directory granted to this step"
        )),
    }
}

/// Undo's refusals say that nothing was restored.
fn nothing_restored(e: StepError) -> StepError {
    match e {
        StepError::Precondition(m) => StepError::Precondition(format!("{m}; nothing was restored")),
        other => other,
    }
}

/// Takes the safety copy and checks it holds the bytes the edit was computed
/// from: if the file changed in between, nothing is written.
fn take_safety_copy(file: &str, sha256_before: &str) -> Result<String, StepError> {
    let copy = safety_copy(Path::new(file), None).map_err(|e| {
        StepError::failed(format!("could not take a safety copy of `{file}`: {e}; nothing was changed"))
    })?;
    let copy_name = copy.display().to_string();
    let bytes = read_limited(&copy).map_err(|e| {
        StepError::failed(format!(
            "could not read back the safety copy `{copy_name}`: {e}; nothing was written to `{file}`"
        ))
    })?;
    let digest = sha256_hex(&bytes);
    if digest != sha256_before {
        return Err(StepError::transient(format!(
            "`{file}` changed while env-toggle was working (sha256 `{sha256_before}` when read, \
             `{digest}` when copied); nothing was written to it and the safety copy `{copy_name}` \
             was kept; try again"
        )));
    }
    Ok(copy_name)
}

/// Writes the edit atomically, then reads the file back and checks every
/// targeted key; if that fails, puts the original bytes back.
fn write_and_confirm(valid: &Valid, before: &[u8], edit: &Edit, copy: &str) -> Result<(), StepError> {
    let file = valid.file.as_str();
    let path = Path::new(file);
    if let Err(e) = replace_atomically(path, &edit.output) {
        let state = describe_state(path, before, &edit.output);
        return Err(StepError::failed(format!("could not write `{file}`: {e}; {state}; the safety copy is `{copy}`")));
    }
    let problem = match fs::read(path) {
        Err(e) => Some(format!("it could not be read back ({e})")),
        Ok(bytes) if bytes != edit.output => Some("it does not hold the bytes written".to_owned()),
        Ok(bytes) => dotenv::check(&bytes, &valid.set, &valid.unset)
            .first()
            .map(|m| report::mismatch_message(m, file, expected_value(valid, &m.key))),
    };
    let Some(problem) = problem else {
        return Ok(());
    };
    Err(match replace_atomically(path, before) {
        Ok(()) => StepError::failed(format!(
            "after writing `{file}`, {problem}; restored its original content (also in the safety \
             copy `{copy}`)"
        )),
        Err(e) => StepError::failed(format!(
            "after writing `{file}`, {problem}; restoring its original content failed too ({e}); \
             the original is in the safety copy `{copy}`"
        )),
    })
}

/// What a failed write left behind, found by reading the file again.
fn describe_state(path: &Path, before: &[u8], after: &[u8]) -> &'static str {
    match fs::read(path) {
        Ok(bytes) if bytes == before => "the file is unchanged",
        Ok(bytes) if bytes == after => "the new content is in place, but may not be durable",
        _ => "the file's content could not be confirmed",
    }
}

/// Reads the safety copy and checks it still holds what `run` replaced.
fn read_safety_copy(copy: &str, sha256_before: &str) -> Result<Vec<u8>, StepError> {
    let bytes = read_limited(Path::new(copy)).map_err(|e| {
        StepError::precondition(format!("cannot read the safety copy `{copy}`: {e}; nothing was restored"))
    })?;
    let digest = sha256_hex(&bytes);
    if digest != sha256_before {
        return Err(StepError::precondition(format!(
            "the safety copy `{copy}` does not hold what the run replaced (expected sha256 \
             `{sha256_before}`, found `{digest}`); nothing was restored"
        )));
    }
    Ok(bytes)
}

/// Writes the original bytes back atomically and confirms them.
fn restore(file: &str, copy: &str, original: &[u8], sha256_before: &str) -> Result<(), StepError> {
    let path = Path::new(file);
    if let Err(e) = replace_atomically(path, original) {
        let state = match fs::read(path) {
            Ok(bytes) if bytes == original => "the original content is in place, but may not be durable",
            Ok(_) => "the file still holds what the run wrote",
            Err(_) => "the file's content could not be confirmed",
        };
        return Err(StepError::failed(format!(
            "could not restore `{file}` from the safety copy `{copy}`: {e}; {state}"
        )));
    }
    let found = fs::read(path).map(|b| sha256_hex(&b)).unwrap_or_else(|e| format!("unreadable: {e}"));
    if found != sha256_before {
        return Err(StepError::failed(format!(
            "restored `{file}` from the safety copy `{copy}`, but reading it back gives sha256 \
             `{found}` instead of `{sha256_before}`; the safety copy is intact"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::report::{ChangeAction, ChangeRecord};
    use backout_sdk::{Validate, checkpoint};
    use std::cell::RefCell;
    use std::path::PathBuf;
    use std::rc::Rc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("env-toggle-test-{}-{n}", std::process::id()));
            fs::create_dir_all(&dir).expect("create temp dir");
            Self(dir)
        }

        fn file(&self, name: &str, contents: &[u8]) -> String {
            let path = self.0.join(name);
            fs::write(&path, contents).expect("write test file");
            path.display().to_string()
        }

        fn names(&self) -> Vec<String> {
            let mut names: Vec<String> = fs::read_dir(&self.0)
                .expect("read dir")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn valid(json: serde_json::Value) -> Valid {
        let config: Config = serde_json::from_value(json).expect("config deserializes");
        config.validate().expect("config is valid")
    }

    fn run_logged(valid: &Valid) -> (Result<Outcome<Outputs>, StepError>, Vec<String>) {
        let mut lines = Vec::new();
        let result = run(valid, &mut |l| lines.push(l));
        (result, lines)
    }

    fn no_log() -> impl FnMut(String) {
        |_| {}
    }

    #[test]
    fn a_key_already_as_requested_is_planned_in_place_and_the_others_as_changes() {
        let dir = TempDir::new();
        let file = dir.file(".env", b"A=false\nB=1\n");
        let valid = valid(serde_json::json!({"file": file, "set": {"A": "false", "B": "2"}}));
        let effects: Vec<_> = plan(&valid).expect("plan").iter().map(|a| (a.summary.clone(), a.effect)).collect();
        assert_eq!(
            effects,
            [
                (format!("leave A as it is in {file}"), backout_sdk::Effect::InPlace),
                (format!("set B in {file}"), backout_sdk::Effect::Change)
            ]
        );
    }

    #[test]
    fn run_edits_the_file_keeps_a_safety_copy_and_verifies() {
        let dir = TempDir::new();
        let original = b"# app\r\nexport INSIGHT_GENERATION_ENABLED=true # flag\r\nOTHER=1";
        let file = dir.file(".env", original);
        let valid = valid(serde_json::json!({"file": file, "set": {"INSIGHT_GENERATION_ENABLED": "false"}}));

        let plan = plan(&valid).expect("plan");
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].summary, format!("set INSIGHT_GENERATION_ENABLED in {file}"));
        assert_eq!(plan[0].detail.as_deref(), Some("line 2: true → false"));
        assert_eq!(plan[0].effect, backout_sdk::Effect::Change);

        let (outcome, log) = run_logged(&valid);
        let outcome = outcome.expect("run");
        let written = fs::read(&file).expect("read");
        assert_eq!(written, b"# app\r\nexport INSIGHT_GENERATION_ENABLED=false # flag\r\nOTHER=1");
        let outputs = &outcome.outputs;
        let copy = outputs.safety_copy.clone().expect("safety copy");
        assert_eq!(fs::read(&copy).expect("copy"), original);
        assert_eq!(outputs.sha256_before, sha256_hex(original));
        assert_eq!(outputs.sha256_after, sha256_hex(&written));
        assert_eq!(
            outputs.changes,
            [ChangeRecord {
                key: "INSIGHT_GENERATION_ENABLED".into(),
                action: ChangeAction::Set,
                old: Some("true".into()),
                new: Some("false".into()),
                lines: vec![2],
            }]
        );
        assert_eq!(outcome.summary, format!("changed 1 key in {file} (safety copy {copy})"));
        assert_eq!(log, [format!("set INSIGHT_GENERATION_ENABLED in {file}: line 2: true → false")]);
        verify(&valid, outputs).expect("verify");
    }

    /// Runs `run` as if backout were killed right after the host journaled
    /// the checkpoint: returns the checkpointed outputs, with the files as
    /// the crash left them.
    fn run_killed_after_the_checkpoint(valid: &Valid) -> Outputs {
        checkpoint::clear();
        let seen = Rc::new(RefCell::new(None));
        let keep = Rc::clone(&seen);
        checkpoint::set_hook(move |outputs| {
            *keep.borrow_mut() = Some(outputs.clone());
            panic!("backout is killed right after the checkpoint");
        });
        let crashed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(valid, &mut no_log())));
        assert!(crashed.is_err(), "run went on past the checkpoint");
        checkpoint::clear();
        let value = seen.borrow_mut().take().expect("run recorded a checkpoint");
        serde_json::from_value(value).expect("the checkpoint reads as outputs")
    }

    #[test]
    fn run_checkpoints_its_final_outputs_before_the_file_changes() {
        let dir = TempDir::new();
        let original = b"A=1\nB=2\n";
        let file = dir.file(".env", original);
        let valid = valid(serde_json::json!({"file": file, "set": {"A": "9"}, "unset": ["B"]}));
        checkpoint::clear();
        let path = file.clone();
        checkpoint::set_hook(move |outputs| {
            assert_eq!(fs::read(&path).unwrap(), original, "the file changed before the checkpoint");
            let copy = outputs["safety_copy"].as_str().expect("the checkpoint names the safety copy");
            assert_eq!(fs::read(copy).unwrap(), original, "the safety copy is complete at the checkpoint");
            Ok(())
        });
        let outcome = run(&valid, &mut no_log()).expect("run");
        assert_eq!(fs::read(&file).expect("read"), b"A=9\n");
        assert_eq!(checkpoint::recorded(), [serde_json::to_value(&outcome.outputs).unwrap()]);
        checkpoint::clear();
    }

    #[test]
    fn a_failed_checkpoint_changes_nothing_and_keeps_no_safety_copy() {
        let dir = TempDir::new();
        let file = dir.file(".env", b"A=1\n");
        let valid = valid(serde_json::json!({"file": file, "set": {"A": "2"}}));
        checkpoint::clear();
        checkpoint::set_hook(|_| Err("the journal's disk is full".to_owned()));
        let error = run(&valid, &mut no_log()).expect_err("refused");
        checkpoint::clear();
        let StepError::Failed(message) = error else { panic!("wrong kind: {error:?}") };
        assert!(message.contains("the journal's disk is full; nothing was changed"), "{message}");
        assert_eq!(fs::read(&file).expect("read"), b"A=1\n");
        assert_eq!(dir.names(), [".env"]);
    }

    #[test]
    fn undo_after_a_crash_before_the_replace_changes_nothing_and_succeeds_every_time() {
        let dir = TempDir::new();
        let original = b"A=1\nB=2\n";
        let file = dir.file(".env", original);
        let valid = valid(serde_json::json!({"file": file, "set": {"A": "9"}, "unset": ["B"]}));
        let outputs = run_killed_after_the_checkpoint(&valid);
        assert_eq!(fs::read(&file).expect("read"), original, "the crash came before the replace");
        let copy = outputs.safety_copy.clone().expect("the checkpoint names the safety copy");
        for _ in 0..2 {
            let undone = undo(&valid, outputs.clone(), &mut no_log()).expect("undo");
            assert!(undone.summary.starts_with("nothing to undo"), "{}", undone.summary);
            assert_eq!(undone.outputs.restored_from, None);
            assert_eq!(fs::read(&file).expect("read"), original);
        }
        let bak = Path::new(&copy).file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(dir.names(), [".env".to_owned(), bak], "no temporary file is left");
    }

    #[test]
    fn verify_after_a_crash_before_the_replace_fails() {
        let dir = TempDir::new();
        let file = dir.file(".env", b"A=1\nB=2\n");
        let valid = valid(serde_json::json!({"file": file, "set": {"A": "9"}, "unset": ["B"]}));
        let outputs = run_killed_after_the_checkpoint(&valid);
        let error = verify(&valid, &outputs).expect_err("the edit is not in place");
        assert!(matches!(error, StepError::Precondition(_)), "{error:?}");
        assert!(error.message().contains("key `A`"), "{error}");
    }

    #[test]
    fn verify_fails_on_the_bytes_from_before_the_run_even_when_the_keys_read_right() {
        let dir = TempDir::new();
        let file = dir.file(".env", b"A=1\n");
        let valid = valid(serde_json::json!({"file": file, "set": {"A": "2"}}));
        let mut outputs = run(&valid, &mut no_log()).expect("run").outputs;
        verify(&valid, &outputs).expect("verify after the run");
        // As if the run had been computed from these bytes and killed before
        // its replace: the keys read as requested, but the edit is not there.
        outputs.sha256_before = outputs.sha256_after.clone();
        outputs.sha256_after = sha256_hex(b"A=2 # edited\n");
        let error = verify(&valid, &outputs).expect_err("the edit is not in place");
        assert!(error.message().contains("still holds its content from before the run"), "{error}");
    }

    #[test]
    fn undo_after_a_crash_after_the_replace_restores_the_original() {
        let dir = TempDir::new();
        let original = b"A=1\n";
        let file = dir.file(".env", original);
        let valid = valid(serde_json::json!({"file": file, "set": {"A": "2"}}));
        checkpoint::clear();
        run(&valid, &mut no_log()).expect("run");
        // Killed after the replace, before run returned: undo gets the checkpoint.
        let recorded = checkpoint::recorded();
        checkpoint::clear();
        let outputs: Outputs = serde_json::from_value(recorded[0].clone()).expect("outputs");
        undo(&valid, outputs.clone(), &mut no_log()).expect("undo");
        assert_eq!(fs::read(&file).expect("read"), original);
        let again = undo(&valid, outputs, &mut no_log()).expect("second undo");
        assert!(again.summary.starts_with("nothing to undo"), "{}", again.summary);
    }

    #[test]
    fn run_without_changes_writes_nothing_and_takes_no_copy() {
        let dir = TempDir::new();
        let file = dir.file(".env", b"A=false\n");
        let valid = valid(serde_json::json!({"file": file, "set": {"A": "false"}, "unset": ["GONE"]}));
        let (outcome, _) = run_logged(&valid);
        let outcome = outcome.expect("run");
        assert_eq!(outcome.outputs.safety_copy, None);
        assert_eq!(outcome.outputs.sha256_before, outcome.outputs.sha256_after);
        assert!(outcome.summary.starts_with("no change needed"), "{}", outcome.summary);
        assert_eq!(dir.names(), [".env"]);
        verify(&valid, &outcome.outputs).expect("verify");
        let undone = undo(&valid, outcome.outputs, &mut no_log()).expect("undo");
        assert!(undone.summary.starts_with("nothing to undo"), "{}", undone.summary);
    }

    #[test]
    fn undo_restores_the_original_bytes_and_keeps_the_copy() {
        let dir = TempDir::new();
        let original = b"A=1\nB=2\n";
        let file = dir.file(".env", original);
        let valid = valid(serde_json::json!({"file": file, "set": {"A": "9"}, "unset": ["B"]}));
        let outputs = run(&valid, &mut no_log()).expect("run").outputs;
        assert_eq!(fs::read(&file).expect("read"), b"A=9\n");
        let undone = undo(&valid, outputs.clone(), &mut no_log()).expect("undo");
        assert_eq!(fs::read(&file).expect("read"), original);
        assert_eq!(undone.outputs.restored_from, outputs.safety_copy);
        assert!(Path::new(outputs.safety_copy.as_deref().expect("copy")).exists());
        // A second undo finds the original content in place and does nothing.
        let again = undo(&valid, outputs, &mut no_log()).expect("second undo");
        assert!(again.summary.contains("already holds"), "{}", again.summary);
    }

    #[test]
    fn undo_refuses_when_the_file_changed_since_the_run() {
        let dir = TempDir::new();
        let file = dir.file(".env", b"A=1\n");
        let valid = valid(serde_json::json!({"file": file, "set": {"A": "2"}}));
        let outputs = run(&valid, &mut no_log()).expect("run").outputs;
        fs::write(&file, b"A=3\n").expect("edit by hand");
        let error = undo(&valid, outputs, &mut no_log()).expect_err("refused");
        let StepError::Precondition(message) = error else { panic!("wrong kind: {error:?}") };
        assert!(message.contains("changed since the run") && message.contains("nothing was restored"), "{message}");
        assert_eq!(fs::read(&file).expect("read"), b"A=3\n");
    }

    #[test]
    fn undo_refuses_when_the_safety_copy_is_missing_or_altered() {
        let dir = TempDir::new();
        let file = dir.file(".env", b"A=1\n");
        let valid = valid(serde_json::json!({"file": file, "set": {"A": "2"}}));
        let outputs = run(&valid, &mut no_log()).expect("run").outputs;
        let copy = outputs.safety_copy.clone().expect("copy");
        fs::write(&copy, b"A=tampered\n").expect("tamper");
        let error = undo(&valid, outputs.clone(), &mut no_log()).expect_err("refused");
        assert!(error.message().contains("does not hold what the run replaced"), "{error}");
        fs::remove_file(&copy).expect("remove copy");
        let error = undo(&valid, outputs, &mut no_log()).expect_err("refused");
        assert!(matches!(error, StepError::Precondition(_)), "{error:?}");
        assert!(error.message().contains("cannot read the safety copy"), "{error}");
        assert_eq!(fs::read(&file).expect("read"), b"A=2\n");
    }

    #[test]
    fn verify_names_the_key_and_what_it_found() {
        let dir = TempDir::new();
        let file = dir.file(".env", b"A=1\nB=2\n");
        let valid = valid(serde_json::json!({"file": file, "set": {"A": "2"}, "unset": ["B"]}));
        let outputs = run(&valid, &mut no_log()).expect("run").outputs;
        fs::write(&file, b"A=1\nB=2\n").expect("revert by hand");
        let error = verify(&valid, &outputs).expect_err("fails");
        let StepError::Precondition(message) = error else { panic!("wrong kind: {error:?}") };
        assert!(message.contains("key `A`") && message.contains("holds `1`; expected `2`"), "{message}");
        assert!(message.contains("key `B` is still in"), "{message}");
    }

    #[test]
    fn missing_file_is_a_precondition_naming_the_grant() {
        let dir = TempDir::new();
        let file = dir.0.join("absent.env").display().to_string();
        let valid = valid(serde_json::json!({"file": file, "set": {"A": "1"}}));
        let error = plan(&valid).expect_err("refused");
        let StepError::Precondition(message) = error else { panic!("wrong kind: {error:?}") };
        assert!(message.contains(&format!("`{file}`")) && message.contains("granted directory"), "{message}");
    }

    #[test]
    fn refusals_are_preconditions_and_change_nothing() {
        let dir = TempDir::new();
        let file = dir.file(".env", b"A=1\nA=2\n");
        let valid = valid(serde_json::json!({"file": file, "set": {"A": "3"}}));
        let error = run(&valid, &mut no_log()).expect_err("refused");
        assert!(matches!(error, StepError::Precondition(_)), "{error:?}");
        assert_eq!(fs::read(&file).expect("read"), b"A=1\nA=2\n");
        assert_eq!(dir.names(), [".env"]);
    }

    #[cfg(unix)]
    #[test]
    fn symbolic_link_is_refused() {
        let dir = TempDir::new();
        let target = dir.file("real.env", b"A=1\n");
        let link = dir.0.join(".env");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        let valid = valid(serde_json::json!({"file": link.display().to_string(), "set": {"A": "2"}}));
        let error = run(&valid, &mut no_log()).expect_err("refused");
        assert!(error.message().contains("symbolic link"), "{error}");
        assert_eq!(fs::read(&target).expect("read"), b"A=1\n");
    }

    #[test]
    fn outputs_of_another_file_are_refused() {
        let dir = TempDir::new();
        let file = dir.file(".env", b"A=1\n");
        let valid_a = valid(serde_json::json!({"file": file, "set": {"A": "2"}}));
        let outputs = run(&valid_a, &mut no_log()).expect("run").outputs;
        let other = valid(serde_json::json!({"file": "/elsewhere/.env", "set": {"A": "2"}}));
        let error = undo(&other, outputs, &mut no_log()).expect_err("refused");
        assert!(matches!(error, StepError::InvalidConfig(_)), "{error:?}");
    }

    #[test]
    fn secret_values_never_reach_outputs_or_logs() {
        let dir = TempDir::new();
        let file = dir.file(".env", b"DB_PASSWORD=hunter2\n");
        let valid = valid(serde_json::json!({"file": file, "set": {"DB_PASSWORD": "s3cret"}}));
        let plan = plan(&valid).expect("plan");
        let (outcome, log) = run_logged(&valid);
        let outcome = outcome.expect("run");
        let shown =
            format!("{plan:?} {} {log:?} {}", outcome.summary, serde_json::to_string(&outcome.outputs).expect("json"));
        assert!(!shown.contains("hunter2") && !shown.contains("s3cret"), "{shown}");
        assert_eq!(fs::read(&file).expect("read"), b"DB_PASSWORD=s3cret\n");
    }
}
