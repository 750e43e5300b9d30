//! The step's operations: plan, run, verify, undo.
//!
//! They take the validated config, the granted directories and a `log`
//! callback instead of asking the host, so the whole flow (the checks, the
//! staged link, the checkpoint, the rename, undo's comparisons) runs natively
//! in unit tests on real directories and links.

#![forbid(unsafe_code)]

use std::fs;

use backout_sdk::{Action, Outcome, StepError};

use crate::config::Valid;
use crate::layout;
use crate::link::{self, CommitError, Found};
use crate::paths;
use crate::report::{self, Outputs};

/// Where log lines go: the host's log in a plugin, a vector in tests.
pub type Log<'a> = &'a mut dyn FnMut(String);

/// Reads the layout and says what `run` would do. Changes nothing.
pub fn plan(valid: &Valid, grants: &[String]) -> Result<Vec<Action>, StepError> {
    let switch = layout::decide(valid, grants)?;
    Ok(vec![report::plan_action(&switch, valid.marker.as_deref())])
}

/// Decides the switch again (never trusting plan), stages the new link
/// beside the old one, checkpoints the outputs, renames the new link over
/// the old one, fsyncs the directory and reads the link back.
pub fn run(valid: &Valid, grants: &[String], log: Log<'_>) -> Result<Outcome<Outputs>, StepError> {
    let switch = layout::decide(valid, grants)?;
    let outputs = Outputs::of(&switch);
    if !outputs.switched {
        let summary = report::run_summary(&outputs);
        log(summary.clone());
        return Ok(Outcome::new(summary, outputs));
    }
    let link = outputs.link.as_str();
    let staged = link::stage(link, &outputs.to_target).map_err(|e| {
        StepError::failed(format!("could not make the new link beside `{link}`: {e}; nothing was changed"))
    })?;
    // The write-ahead record: if backout dies from here on, `verify` and
    // `undo` get these outputs whether the rename happened or not.
    if let Err(e) = backout_sdk::checkpoint(&outputs) {
        staged.discard();
        return Err(e);
    }
    staged.commit(&outputs.from_target).map_err(|e| commit_error(e, link, &outputs.to_target, "run"))?;
    confirm(link, &outputs.to_target, "after switching it")?;
    let summary = report::run_summary(&outputs);
    log(summary.clone());
    Ok(Outcome::new(summary, outputs))
}

/// Checks that the link points where `run` put it, and that the target is a
/// directory. No effects.
///
/// After a crash `outputs` is run's checkpoint, taken before the rename: a
/// link still at its old target fails, saying the switch was never made.
pub fn verify(valid: &Valid, outputs: &Outputs) -> Result<(), StepError> {
    same_link(valid, outputs)?;
    let link = outputs.link.as_str();
    match link::look(link) {
        Ok(Found::Link(target)) if target == outputs.to_target => {}
        Ok(Found::Link(target)) if target == outputs.from_target => {
            return Err(StepError::precondition(format!(
                "`{link}` still points to `{}`, where it pointed before the run: the switch to `{}` was never made",
                target.escape_debug(),
                outputs.to_target
            )));
        }
        Ok(found) => {
            return Err(StepError::precondition(format!(
                "`{link}` {}; the run pointed it to `{}`",
                found.describe(),
                outputs.to_target
            )));
        }
        Err(e) => return Err(StepError::precondition(format!("cannot read the link `{link}`: {e}"))),
    }
    match fs::metadata(link) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(StepError::precondition(format!(
            "`{link}` points to `{}`, which is not a directory",
            outputs.to_target
        ))),
        Err(e) => Err(StepError::precondition(format!(
            "`{link}` points to `{}`, which cannot be reached: {e}",
            outputs.to_target
        ))),
    }
}

/// Points the link back at `from_target`, only if it still points where
/// `run` put it. Idempotent: a link already at `from_target` (the run never
/// got to switch it, or an earlier undo did) is left alone.
pub fn undo(valid: &Valid, outputs: Outputs, grants: &[String], log: Log<'_>) -> Result<Outcome<Outputs>, StepError> {
    same_link(valid, &outputs)?;
    let link = outputs.link.as_str();
    // What undo writes must be a target run could have replaced: relative,
    // inside the grant (outputs come from the journal, not from the plugin).
    let grant = layout::link_grant(link, grants)?;
    if let Err(why) = paths::resolve(&grant, paths::parent(link), &outputs.from_target) {
        return Err(StepError::precondition(format!(
            "the run's outputs say `{link}` pointed to `{}` before the run, but {why} (`{grant}`): \
             release-switch never writes such a link; nothing was changed",
            outputs.from_target.escape_debug()
        )));
    }
    let found = link::look(link)
        .map_err(|e| StepError::precondition(format!("cannot read the link `{link}`: {e}; nothing was changed")))?;
    match found {
        Found::Link(target) if target == outputs.from_target => {
            let summary = format!(
                "nothing to undo: {link} already points to `{}`, where it pointed before the run",
                target.escape_debug()
            );
            log(summary.clone());
            Ok(Outcome::new(summary, outputs))
        }
        Found::Link(target) if target == outputs.to_target => {
            let staged = link::stage(link, &outputs.from_target).map_err(|e| {
                StepError::failed(format!("could not make the link back beside `{link}`: {e}; nothing was changed"))
            })?;
            staged.commit(&outputs.to_target).map_err(|e| commit_error(e, link, &outputs.from_target, "undo"))?;
            confirm(link, &outputs.from_target, "after switching it back")?;
            let summary = report::undo_summary(&outputs);
            log(summary.clone());
            Ok(Outcome::new(summary, outputs))
        }
        found => Err(StepError::precondition(format!(
            "`{link}` {}: neither where the run put it (`{}`) nor where it pointed before (`{}`); it was changed \
             since the run, so undo leaves it alone; nothing was changed",
            found.describe(),
            outputs.to_target,
            outputs.from_target.escape_debug()
        ))),
    }
}

// ---------------------------------------------------------------------------

/// `verify` and `undo` must act on the link `run` switched.
fn same_link(valid: &Valid, outputs: &Outputs) -> Result<(), StepError> {
    if valid.link == outputs.link {
        return Ok(());
    }
    Err(StepError::invalid_config_at(
        "/link",
        format!(
            "the run's outputs are for `{}` but the config names `{}`; use the config the run used",
            outputs.link, valid.link
        ),
    ))
}

/// The message for a switch (`run`'s or `undo`'s) that did not complete.
fn commit_error(e: CommitError, link: &str, new_target: &str, call: &str) -> StepError {
    match e {
        CommitError::Moved(found) => {
            let message = format!(
                "`{link}` changed while release-switch was working: it now {}; the {call} left it as it is; \
                 nothing was changed",
                found.describe()
            );
            if call == "run" {
                StepError::transient(format!("{message}; try again"))
            } else {
                StepError::precondition(message)
            }
        }
        CommitError::Rename(e) => {
            StepError::failed(format!("could not rename the new link over `{link}`: {e}; nothing was changed"))
        }
        CommitError::NotDurable(e) => StepError::failed(format!(
            "`{link}` now points to `{}`, but its directory could not be fsync'd ({e}): the switch may not \
             survive a power cut",
            new_target.escape_debug()
        )),
    }
}

/// Reads the link back after a switch.
fn confirm(link: &str, expected: &str, when: &str) -> Result<(), StepError> {
    match link::look(link) {
        Ok(Found::Link(target)) if target == expected => Ok(()),
        Ok(found) => Err(StepError::failed(format!(
            "{when}, `{link}` {} instead of `{expected}`; another process may be switching it too",
            found.describe()
        ))),
        Err(e) => Err(StepError::failed(format!("{when}, `{link}` could not be read back: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use backout_sdk::{Validate, checkpoint};
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::os::unix::fs::symlink;
    use std::path::PathBuf;
    use std::rc::Rc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A deployment in a fresh temp directory (the grant): `releases/` and
    /// `current`, removed on drop.
    struct Deploy {
        root: PathBuf,
        grants: Vec<String>,
    }

    impl Deploy {
        fn new() -> Self {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let root = std::env::temp_dir().join(format!("release-switch-test-{}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&root);
            fs::create_dir_all(root.join("releases")).unwrap();
            let grants = vec![root.display().to_string()];
            Self { root, grants }
        }

        /// A deployment with complete releases `names` and `current -> releases/<current>`.
        fn with(names: &[&str], current: &str) -> Self {
            let deploy = Self::new();
            for name in names {
                deploy.release(name, true);
            }
            deploy.link("current", &format!("releases/{current}"));
            deploy
        }

        fn path(&self, rel: &str) -> String {
            self.root.join(rel).display().to_string()
        }

        fn release(&self, name: &str, complete: bool) {
            let dir = self.root.join("releases").join(name);
            fs::create_dir_all(&dir).unwrap();
            if complete {
                fs::write(dir.join("REVISION"), name).unwrap();
            }
        }

        fn link(&self, rel: &str, target: &str) {
            let _ = fs::remove_file(self.root.join(rel));
            symlink(target, self.root.join(rel)).unwrap();
        }

        fn target(&self, rel: &str) -> String {
            fs::read_link(self.root.join(rel)).unwrap().display().to_string()
        }

        fn valid(&self, to: &str) -> Valid {
            self.valid_with(serde_json::json!({"to": to, "marker": "REVISION"}))
        }

        /// A config for `current` and `releases/`, with `extra` fields added or replaced.
        fn valid_with(&self, extra: serde_json::Value) -> Valid {
            let mut json = serde_json::json!({"link": self.path("current"), "releases_dir": self.path("releases")});
            for (k, v) in extra.as_object().unwrap() {
                json[k] = v.clone();
            }
            let config: Config = serde_json::from_value(json).expect("config deserializes");
            config.validate().expect("config is valid")
        }

        /// Every entry under the deployment: files with contents, links with targets.
        fn snapshot(&self) -> BTreeMap<PathBuf, String> {
            let mut found = BTreeMap::new();
            let mut stack = vec![self.root.clone()];
            while let Some(dir) = stack.pop() {
                for entry in fs::read_dir(&dir).unwrap() {
                    let path = entry.unwrap().path();
                    let meta = fs::symlink_metadata(&path).unwrap();
                    let what = if meta.file_type().is_symlink() {
                        format!("-> {}", fs::read_link(&path).unwrap().display())
                    } else if meta.is_dir() {
                        stack.push(path.clone());
                        "dir".to_owned()
                    } else {
                        String::from_utf8_lossy(&fs::read(&path).unwrap()).into_owned()
                    };
                    found.insert(path, what);
                }
            }
            found
        }

        fn run(&self, valid: &Valid) -> Result<Outcome<Outputs>, StepError> {
            run(valid, &self.grants, &mut |_| {})
        }

        fn undo(&self, valid: &Valid, outputs: Outputs) -> Result<Outcome<Outputs>, StepError> {
            undo(valid, outputs, &self.grants, &mut |_| {})
        }

        /// Asserts that `plan` and `run` both refuse with `precondition`
        /// containing `says`, and that nothing changed.
        fn assert_refused(&self, valid: &Valid, says: &str) -> String {
            let before = self.snapshot();
            let planned = plan(valid, &self.grants).expect_err("plan refuses");
            checkpoint::clear();
            let ran = self.run(valid).expect_err("run refuses");
            assert_eq!(planned, ran, "plan and run refuse alike");
            match &ran {
                StepError::Precondition(message) => assert!(message.contains(says), "{message}\nshould say: {says}"),
                other => panic!("expected a precondition error saying {says:?}, got {other:?}"),
            }
            assert!(checkpoint::recorded().is_empty(), "a refused run checkpointed");
            assert_eq!(self.snapshot(), before, "a refused run changed something");
            ran.message().to_owned()
        }
    }

    impl Drop for Deploy {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.root);
        }
    }

    #[test]
    fn plan_says_from_and_to_and_changes_nothing() {
        let d = Deploy::with(&["1.0.0", "2.0.0"], "2.0.0");
        let before = d.snapshot();
        let actions = plan(&d.valid("1.0.0"), &d.grants).expect("plan");
        assert_eq!(actions.len(), 1);
        assert_eq!(actions[0].summary, format!("switch {} from 2.0.0 to 1.0.0", d.path("current")));
        assert_eq!(
            actions[0].detail.as_deref(),
            Some("current -> releases/2.0.0 becomes current -> releases/1.0.0; 1.0.0 holds REVISION")
        );
        assert_eq!(d.snapshot(), before);
    }

    #[test]
    fn run_checkpoints_then_renames_a_relative_link_over_the_old_one() {
        let d = Deploy::with(&["1.0.0", "2.0.0"], "2.0.0");
        let valid = d.valid("1.0.0");
        checkpoint::clear();
        backout_sdk::fs::temporary_file::clear();
        let current = d.path("current");
        checkpoint::set_hook(move |outputs| {
            assert_eq!(
                fs::read_link(&current).unwrap(),
                PathBuf::from("releases/2.0.0"),
                "switched before the checkpoint"
            );
            let staged = backout_sdk::fs::temporary_file::declared();
            assert_eq!(staged.len(), 1, "the new link is staged and declared before the checkpoint");
            assert_eq!(fs::read_link(&staged[0]).unwrap(), PathBuf::from("releases/1.0.0"));
            assert_eq!(outputs["to_target"], "releases/1.0.0");
            Ok(())
        });
        let mut lines = Vec::new();
        let outcome = run(&valid, &d.grants, &mut |l| lines.push(l)).expect("run");
        let outputs = outcome.outputs;
        assert_eq!(d.target("current"), "releases/1.0.0");
        assert_eq!(
            outputs,
            Outputs {
                link: d.path("current"),
                releases_dir: d.path("releases"),
                from: Some("2.0.0".into()),
                to: "1.0.0".into(),
                from_target: "releases/2.0.0".into(),
                to_target: "releases/1.0.0".into(),
                switched: true,
            }
        );
        assert_eq!(checkpoint::recorded(), [serde_json::to_value(&outputs).unwrap()]);
        checkpoint::clear();
        assert_eq!(
            outcome.summary,
            format!("switched {} from 2.0.0 to 1.0.0 (current -> releases/1.0.0)", d.path("current"))
        );
        assert_eq!(lines, std::slice::from_ref(&outcome.summary));
        let mut names: Vec<String> =
            fs::read_dir(&d.root).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert_eq!(names, ["current", "releases"], "no staged link left");
        verify(&valid, &outputs).expect("verify");

        // Undo points it back, exactly as it was written; a second undo has nothing to do.
        let undone = d.undo(&valid, outputs.clone()).expect("undo");
        assert_eq!(
            undone.summary,
            format!("switched {} back from 1.0.0 to 2.0.0 (current -> releases/2.0.0)", d.path("current"))
        );
        assert_eq!(d.target("current"), "releases/2.0.0");
        let again = d.undo(&valid, outputs.clone()).expect("undo again");
        assert!(again.summary.starts_with("nothing to undo:"), "{}", again.summary);
        let error = verify(&valid, &outputs).expect_err("verify after undo");
        assert!(error.message().contains("still points to `releases/2.0.0`"), "{error}");
    }

    #[test]
    fn undo_writes_back_the_old_target_exactly_as_it_was_written() {
        let d = Deploy::with(&["1.0.0", "2.0.0"], "2.0.0");
        d.link("current", "./releases//2.0.0/");
        let valid = d.valid("1.0.0");
        let outputs = d.run(&valid).expect("run").outputs;
        assert_eq!(outputs.from.as_deref(), Some("2.0.0"));
        assert_eq!(d.target("current"), "releases/1.0.0");
        d.undo(&valid, outputs).expect("undo");
        assert_eq!(d.target("current"), "./releases//2.0.0/");
    }

    #[test]
    fn a_link_in_another_directory_gets_a_target_that_goes_up() {
        let d = Deploy::with(&["1.0.0", "2.0.0"], "2.0.0");
        fs::create_dir(d.root.join("www")).unwrap();
        d.link("www/current", "../releases/2.0.0");
        let valid = d.valid_with(serde_json::json!({"link": d.path("www/current"), "to": "previous"}));
        let outputs = d.run(&valid).expect("run").outputs;
        assert_eq!(d.target("www/current"), "../releases/1.0.0");
        assert_eq!(fs::read_to_string(d.root.join("www/current/REVISION")).unwrap(), "1.0.0");
        verify(&valid, &outputs).expect("verify");
    }

    #[test]
    fn previous_is_the_release_before_the_current_one_in_version_order() {
        let d = Deploy::with(&["1.9.0", "1.10.0", "2.0.0", "3.0.0"], "2.0.0");
        let actions = plan(&d.valid("previous"), &d.grants).expect("plan");
        assert_eq!(actions[0].summary, format!("switch {} from 2.0.0 to 1.10.0", d.path("current")));
        let detail = actions[0].detail.as_deref().unwrap();
        assert!(
            detail.contains("\"previous\": the release before 2.0.0 in semver order (1.9.0, 1.10.0, 2.0.0, 3.0.0)"),
            "{detail}"
        );
        let outputs = d.run(&d.valid("previous")).expect("run").outputs;
        assert_eq!((outputs.to.as_str(), d.target("current")), ("1.10.0", "releases/1.10.0".to_owned()));
    }

    #[test]
    fn previous_without_an_older_release_is_refused() {
        let d = Deploy::with(&["1.0.0", "2.0.0"], "1.0.0");
        let message = d.assert_refused(&d.valid("previous"), "there is no release before `1.0.0`");
        assert!(message.contains("(semver order: 1.0.0, 2.0.0)"), "{message}");
    }

    #[test]
    fn previous_needs_the_link_to_point_at_a_release() {
        let d = Deploy::with(&["1.0.0", "2.0.0"], "2.0.0");
        fs::create_dir(d.root.join("maintenance")).unwrap();
        d.link("current", "maintenance");
        d.assert_refused(&d.valid("previous"), "needs `");
        // Naming the release works.
        d.run(&d.valid("2.0.0")).expect("run");
        assert_eq!(d.target("current"), "releases/2.0.0");
    }

    #[test]
    fn an_incomplete_release_is_refused() {
        let d = Deploy::with(&["2.0.0"], "2.0.0");
        d.release("1.0.0", false);
        let message = d.assert_refused(&d.valid("1.0.0"), "release `1.0.0` is incomplete");
        assert!(message.contains("REVISION` does not exist"), "{message}");
        // "previous" is not skipped past an incomplete release either.
        d.assert_refused(&d.valid("previous"), "release `1.0.0` is incomplete");
        // A marker that is a directory or a link does not count.
        fs::create_dir(d.root.join("releases/1.0.0/REVISION")).unwrap();
        d.assert_refused(&d.valid("1.0.0"), "REVISION` is not a regular file");
        fs::remove_dir(d.root.join("releases/1.0.0/REVISION")).unwrap();
        symlink("../2.0.0/REVISION", d.root.join("releases/1.0.0/REVISION")).unwrap();
        d.assert_refused(&d.valid("1.0.0"), "is a symbolic link, not a file the release holds");
        // Without a marker, any release directory is complete.
        d.run(&d.valid_with(serde_json::json!({"to": "1.0.0"}))).expect("run without a marker");
    }

    #[test]
    fn a_missing_release_is_refused_naming_the_releases() {
        let d = Deploy::with(&["1.0.0", "2.0.0"], "2.0.0");
        let message = d.assert_refused(&d.valid("1.5.0"), "release `1.5.0` does not exist in");
        assert!(message.contains("(releases: 1.0.0, 2.0.0)"), "{message}");
    }

    #[test]
    fn a_release_that_is_a_link_is_refused_wherever_it_points() {
        let d = Deploy::with(&["1.0.0", "2.0.0"], "2.0.0");
        symlink("../../..", d.root.join("releases/evil")).unwrap();
        symlink("1.0.0", d.root.join("releases/alias")).unwrap();
        d.assert_refused(&d.valid("evil"), "is a symbolic link (to `../../..`), not a release directory");
        d.assert_refused(&d.valid("alias"), "is a symbolic link (to `1.0.0`), not a release directory");
        fs::write(d.root.join("releases/notes"), b"x").unwrap();
        d.assert_refused(&d.valid("notes"), "is not a directory");
        // Links and files are not releases for "previous" either.
        assert_eq!(d.run(&d.valid("previous")).expect("run").outputs.to, "1.0.0");
    }

    #[test]
    fn releases_outside_the_links_grant_are_refused() {
        let d = Deploy::with(&["1.0.0", "2.0.0"], "2.0.0");
        let other = Deploy::with(&["1.0.0"], "1.0.0");
        let mut grants = d.grants.clone();
        grants.extend(other.grants.clone());
        let elsewhere = d.valid_with(serde_json::json!({"releases_dir": other.path("releases"), "to": "1.0.0"}));
        let error = plan(&elsewhere, &grants).expect_err("refused");
        assert!(error.message().contains("is in the granted directory"), "{error}");
        let error = plan(&elsewhere, &d.grants).expect_err("refused");
        assert!(error.message().contains("is not under `link`'s granted directory"), "{error}");
        // A grant nested inside the link's grant is another grant.
        let nested = vec![d.grants[0].clone(), d.path("releases")];
        let error = plan(&d.valid("1.0.0"), &nested).expect_err("refused");
        assert!(error.message().contains("is in the granted directory"), "{error}");
        // The link itself outside every grant.
        let error = plan(&d.valid("1.0.0"), &other.grants).expect_err("refused");
        assert!(error.message().contains("is not inside a directory granted to this step"), "{error}");
    }

    #[test]
    fn a_releases_dir_that_is_a_link_is_refused() {
        let d = Deploy::with(&["1.0.0", "2.0.0"], "2.0.0");
        fs::rename(d.root.join("releases"), d.root.join("real-releases")).unwrap();
        symlink("real-releases", d.root.join("releases")).unwrap();
        d.assert_refused(&d.valid("1.0.0"), "(`releases_dir`) is a symbolic link (to `real-releases`)");
    }

    #[test]
    fn a_link_that_is_a_directory_a_file_or_nothing_is_refused() {
        let d = Deploy::with(&["1.0.0", "2.0.0"], "2.0.0");
        fs::remove_file(d.root.join("current")).unwrap();
        d.assert_refused(&d.valid("1.0.0"), "does not exist; release-switch switches an existing link");
        fs::create_dir(d.root.join("current")).unwrap();
        fs::write(d.root.join("current/index.html"), b"live").unwrap();
        d.assert_refused(&d.valid("1.0.0"), "is a real directory, not a symbolic link");
        fs::remove_dir_all(d.root.join("current")).unwrap();
        fs::write(d.root.join("current"), b"x").unwrap();
        d.assert_refused(&d.valid("1.0.0"), "is a regular file, not a symbolic link");
    }

    #[test]
    fn a_current_target_undo_could_not_write_back_is_refused() {
        let d = Deploy::with(&["1.0.0", "2.0.0"], "2.0.0");
        d.link("current", &d.path("releases/2.0.0"));
        d.assert_refused(&d.valid("1.0.0"), "which is an absolute path; WASI cannot make a link with an absolute");
        d.link("current", "../../etc");
        d.assert_refused(&d.valid("1.0.0"), "which is outside the granted directory");
    }

    #[test]
    fn a_link_already_at_the_release_is_left_as_it_is() {
        let d = Deploy::with(&["1.0.0", "2.0.0"], "2.0.0");
        d.link("current", "./releases/1.0.0");
        let valid = d.valid("1.0.0");
        let before = d.snapshot();
        let actions = plan(&valid, &d.grants).expect("plan");
        assert!(actions[0].summary.ends_with("at 1.0.0: it already points there"), "{}", actions[0].summary);
        checkpoint::clear();
        let outcome = d.run(&valid).expect("run");
        assert!(!outcome.outputs.switched);
        assert!(outcome.summary.starts_with("no change needed"), "{}", outcome.summary);
        assert!(checkpoint::recorded().is_empty());
        assert_eq!(d.snapshot(), before);
        verify(&valid, &outcome.outputs).expect("verify");
        assert!(d.undo(&valid, outcome.outputs).expect("undo").summary.starts_with("nothing to undo"));
        assert_eq!(d.snapshot(), before);
    }

    /// Runs `run` as if backout were killed right after the host journaled
    /// the checkpoint: returns the checkpointed outputs, with the files as
    /// the crash left them.
    fn run_killed_after_the_checkpoint(d: &Deploy, valid: &Valid) -> Outputs {
        checkpoint::clear();
        let seen = Rc::new(RefCell::new(None));
        let keep = Rc::clone(&seen);
        checkpoint::set_hook(move |outputs| {
            *keep.borrow_mut() = Some(outputs.clone());
            panic!("backout is killed right after the checkpoint");
        });
        let crashed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| d.run(valid)));
        assert!(crashed.is_err(), "run went on past the checkpoint");
        checkpoint::clear();
        let value = seen.borrow_mut().take().expect("run recorded a checkpoint");
        serde_json::from_value(value).expect("the checkpoint reads as outputs")
    }

    #[test]
    fn after_a_crash_at_the_checkpoint_verify_fails_and_undo_has_nothing_to_do() {
        let d = Deploy::with(&["1.0.0", "2.0.0"], "2.0.0");
        let valid = d.valid("1.0.0");
        backout_sdk::fs::temporary_file::clear();
        let checkpointed = run_killed_after_the_checkpoint(&d, &valid);
        assert_eq!(d.target("current"), "releases/2.0.0", "the crash came before the rename");
        // The staged link is the declared temporary the host removes.
        let staged = backout_sdk::fs::temporary_file::declared();
        assert_eq!(staged.len(), 1);
        fs::remove_file(&staged[0]).expect("the staged link is there for the host to remove");
        let error = verify(&valid, &checkpointed).expect_err("verify fails");
        assert!(error.message().contains("the switch to `releases/1.0.0` was never made"), "{error}");
        let before = d.snapshot();
        let undone = d.undo(&valid, checkpointed.clone()).expect("undo");
        assert!(undone.summary.starts_with("nothing to undo"), "{}", undone.summary);
        assert_eq!(d.snapshot(), before);
        // Had the rename happened before the crash, verify passes and undo switches back.
        d.link("current", "releases/1.0.0");
        verify(&valid, &checkpointed).expect("verify");
        d.undo(&valid, checkpointed).expect("undo");
        assert_eq!(d.target("current"), "releases/2.0.0");
    }

    #[test]
    fn a_failed_checkpoint_changes_nothing_and_leaves_no_staged_link() {
        let d = Deploy::with(&["1.0.0", "2.0.0"], "2.0.0");
        let before = d.snapshot();
        checkpoint::clear();
        checkpoint::set_hook(|_| Err("the journal's disk is full".to_owned()));
        let error = d.run(&d.valid("1.0.0")).expect_err("refused");
        checkpoint::clear();
        assert!(error.message().contains("the journal's disk is full; nothing was changed"), "{error}");
        assert_eq!(d.snapshot(), before);
    }

    #[test]
    fn undo_refuses_a_link_someone_moved_since_the_run() {
        let d = Deploy::with(&["1.0.0", "2.0.0", "3.0.0"], "2.0.0");
        let valid = d.valid("1.0.0");
        let outputs = d.run(&valid).expect("run").outputs;
        d.link("current", "releases/3.0.0");
        let before = d.snapshot();
        let error = d.undo(&valid, outputs.clone()).expect_err("refused");
        assert_eq!(
            error,
            StepError::precondition(format!(
                "`{}` points to `releases/3.0.0`: neither where the run put it (`releases/1.0.0`) nor where it \
                 pointed before (`releases/2.0.0`); it was changed since the run, so undo leaves it alone; nothing \
                 was changed",
                d.path("current")
            ))
        );
        assert_eq!(d.snapshot(), before);
        fs::remove_file(d.root.join("current")).unwrap();
        fs::create_dir(d.root.join("current")).unwrap();
        let before = d.snapshot();
        let error = d.undo(&valid, outputs).expect_err("refused");
        assert!(error.message().contains("is a real directory, not a symbolic link: neither"), "{error}");
        assert_eq!(d.snapshot(), before);
    }

    #[test]
    fn undo_refuses_outputs_that_would_write_a_link_out_of_the_grant() {
        let d = Deploy::with(&["1.0.0", "2.0.0"], "2.0.0");
        let valid = d.valid("1.0.0");
        let outputs = d.run(&valid).expect("run").outputs;
        let before = d.snapshot();
        for target in ["../../etc", "/etc", ""] {
            let tampered = Outputs { from_target: target.to_owned(), ..outputs.clone() };
            let error = d.undo(&valid, tampered).expect_err("refused");
            assert!(error.message().contains("release-switch never writes such a link"), "{error}");
            assert_eq!(d.snapshot(), before);
        }
    }

    #[test]
    fn verify_and_undo_refuse_outputs_for_another_link() {
        let d = Deploy::with(&["1.0.0", "2.0.0"], "2.0.0");
        let valid = d.valid("1.0.0");
        let outputs = d.run(&valid).expect("run").outputs;
        let other = Outputs { link: d.path("elsewhere"), ..outputs };
        let error = verify(&valid, &other).expect_err("refused");
        assert!(matches!(&error, StepError::InvalidConfig(m) if m.contains("use the config the run used")), "{error}");
        assert!(matches!(&error, StepError::InvalidConfig(m) if m.starts_with("`#/link`: ")), "{error}");
        assert!(matches!(d.undo(&valid, other), Err(StepError::InvalidConfig(_))));
    }

    #[test]
    fn verify_fails_when_the_link_was_moved_or_replaced() {
        let d = Deploy::with(&["1.0.0", "2.0.0", "3.0.0"], "2.0.0");
        let valid = d.valid("1.0.0");
        let outputs = d.run(&valid).expect("run").outputs;
        d.link("current", "releases/3.0.0");
        let error = verify(&valid, &outputs).expect_err("refused");
        assert_eq!(
            error,
            StepError::precondition(format!(
                "`{}` points to `releases/3.0.0`; the run pointed it to `releases/1.0.0`",
                d.path("current")
            ))
        );
        fs::remove_file(d.root.join("current")).unwrap();
        let error = verify(&valid, &outputs).expect_err("refused");
        assert!(
            error.message().ends_with("current` does not exist; the run pointed it to `releases/1.0.0`"),
            "{error}"
        );
    }

    #[test]
    fn verify_fails_when_the_release_is_gone() {
        let d = Deploy::with(&["1.0.0", "2.0.0"], "2.0.0");
        let valid = d.valid("1.0.0");
        let outputs = d.run(&valid).expect("run").outputs;
        fs::remove_dir_all(d.root.join("releases/1.0.0")).unwrap();
        let error = verify(&valid, &outputs).expect_err("refused");
        assert!(error.message().contains("which cannot be reached"), "{error}");
    }
}
