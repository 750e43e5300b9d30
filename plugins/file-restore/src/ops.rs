//! The step's operations: plan, run, verify, undo, for a file target and for
//! a directory target.
//!
//! They take the validated config and a `log` callback instead of calling
//! the host, so the whole flow (pick, check, safety copy, atomic replace or
//! directory swap, read-back, undo's digest checks) runs natively in unit
//! tests on real temporary files.
//!
//! # A file
//!
//! `run` reads the backup (at most [`MAX_CHECKED_BYTES`] when it is
//! validated: the bytes checked are the bytes written), keeps a safety copy
//! of the live file beside it ([`backout_sdk::fs::safety_copy`]: same mode
//! and owner, complete before it gets its `.bak` name), checkpoints, replaces
//! the file atomically keeping its mode and owner
//! ([`backout_sdk::fs::replace_atomically_with`]), and reads it back. `undo`
//! copies the safety copy's bytes back the same way, and keeps the copy.
//!
//! # A directory
//!
//! There is no atomic replace of a directory: `run` copies the backup into
//! a staging directory beside the target (`.NAME.backout-stage-…`), checks
//! the copy's digest, checkpoints, then renames the live directory to its
//! safety copy (`NAME.backout-<UTC time>.bak`: the directory itself, exact)
//! and the staging directory to the target's name. Between the two renames
//! the target's name is briefly absent. `undo` does the reverse: the
//! restored directory is renamed aside (`.NAME.backout-….bak.replaced`), the
//! safety copy renamed back, and the aside copy (which holds what `run`
//! copied from the backup, still in `source`) removed. Every state a crash
//! can leave between those renames is recognised from the outputs alone.

#![forbid(unsafe_code)]

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use backout_sdk::fs::{replace_atomically_with, safety_copy, sha256_file, sha256_hex, sync_dir, utc_stamp};
use backout_sdk::{Action, Outcome, StepError, checkpoint};

use crate::config::Valid;
use crate::diff::{self, MAX_DIFF_LINES};
use crate::outputs::Outputs;
use crate::pick::{self, Candidate, Kind};
use crate::tree::{self, Node, Tree};
use crate::validate::{self, Format, MAX_CHECKED_BYTES};

/// Where log lines go: the host's log in a plugin, a vector in tests.
pub type Log<'a> = &'a mut dyn FnMut(String);

// ---------------------------------------------------------------------------
// plan
// ---------------------------------------------------------------------------

/// Finds the target and the backup, checks the backup, and says what `run`
/// would do, with the diff. Reads only.
pub fn plan(valid: &Valid) -> Result<Vec<Action>, StepError> {
    let kind = inspect_target(valid)?;
    let backup = pick::resolve(&valid.source, &valid.target, kind)?;
    match kind {
        Kind::File => plan_file(valid, &backup),
        Kind::Directory => plan_directory(valid, &backup),
    }
}

fn plan_file(valid: &Valid, backup: &Candidate) -> Result<Vec<Action>, StepError> {
    let target = valid.target.as_str();
    let checked = check_backup_file(valid, &backup.path)?;
    let before = sha256_file(Path::new(target)).map_err(|e| unreadable_target(target, &e))?;
    if before == checked.sha256 {
        return Ok(vec![unchanged_action(target, backup)]);
    }
    let live_size = fs::metadata(target).map(|m| m.len()).unwrap_or(0);
    let restore = Action::new(format!("restore {target} from {}", backup.path)).detail(
        [
            format!("backup: {}; {}", backup_facts(backup, checked.size), backup.how),
            format!("check: {}", checked.summary),
            format!(
                "keep: a safety copy of {target} beside it ({target}.backout-<UTC time>.bak); \
                 the file keeps its mode and owner"
            ),
        ]
        .join("\n"),
    );
    let mut budget = MAX_DIFF_LINES;
    let change = match (read_text(target), backup_text(&checked, &backup.path)) {
        (Some(old), Some(new)) => {
            let d = diff::unified(
                &format!("{target} (live)"),
                &format!("{} (backup)", backup.path),
                &old,
                &new,
                valid.validate,
                &mut budget,
            );
            let removed = backout_sdk::text::count(d.removed, "line");
            Action::new(format!("change {target}: {removed} removed, {} added", d.added)).detail(d.text)
        }
        _ => Action::new(format!("replace {target}: {} → {}", human(live_size), human(checked.size))).detail(format!(
            "no diff shown: a side is not UTF-8 text or is larger than {} MiB (sha256 {before} → {})",
            MAX_CHECKED_BYTES >> 20,
            checked.sha256
        )),
    };
    Ok(vec![restore, change])
}

fn plan_directory(valid: &Valid, backup: &Candidate) -> Result<Vec<Action>, StepError> {
    let target = valid.target.as_str();
    let source = read_backup_tree(valid, &backup.path)?;
    let live = Tree::read(target, false).map_err(|e| unreadable_target(target, &e))?;
    if live.digest() == source.tree.digest() {
        return Ok(vec![unchanged_action(target, backup)]);
    }
    let (files, bytes) = source.tree.files();
    let mut detail = vec![
        format!(
            "backup: {}, {}{}; {}",
            backout_sdk::text::count(files as usize, "file"),
            human(bytes),
            modified_facts(backup),
            backup.how
        ),
        format!("check: {}", source.summary),
        format!(
            "keep: {target} itself becomes the safety copy {target}.backout-<UTC time>.bak (renamed, \
             untouched); the backup is copied to a staging directory beside it, checked, and renamed into \
             place. Files keep the mode and owner of the live files they replace (new files: the backup's); \
             directories get the default mode"
        ),
    ];
    for leftover in leftover_staging(target) {
        detail.push(format!("note: {leftover} was left by an interrupted run; `backout undo` of that run removes it"));
    }
    let restore = Action::new(format!("restore {target} from {}", backup.path)).detail(detail.join("\n"));
    Ok(vec![restore, directory_changes(valid, backup, &live, &source.tree)])
}

/// What changes in a directory, file by file, with the diffs of changed
/// text files (within the plan's diff budget).
fn directory_changes(valid: &Valid, backup: &Candidate, live: &Tree, source: &Tree) -> Action {
    let target = valid.target.as_str();
    let mut lines = Vec::new();
    let mut diffs = Vec::new();
    let (mut added, mut removed, mut changed, mut same) = (0, 0, 0, 0);
    let mut budget = MAX_DIFF_LINES;
    for (rel, node) in &source.nodes {
        match live.nodes.get(rel) {
            None => {
                added += 1;
                lines.push(format!("add     {rel}{}", if *node == Node::Dir { "/" } else { "" }));
            }
            Some(old) if old == node => same += 1,
            Some(old) => {
                changed += 1;
                lines.push(format!("change  {rel}{}", kind_change(old, node)));
                if let (Node::File { .. }, Node::File { .. }) = (old, node) {
                    let (old_path, new_path) = (tree::join(target, rel), tree::join(&backup.path, rel));
                    if budget == 0 {
                        continue;
                    }
                    if let (Some(old), Some(new)) = (read_text(&old_path), read_text(&new_path)) {
                        let d = diff::unified(
                            &format!("{old_path} (live)"),
                            &format!("{new_path} (backup)"),
                            &old,
                            &new,
                            valid.validate,
                            &mut budget,
                        );
                        diffs.push(d.text);
                    }
                }
            }
        }
    }
    for (rel, node) in &live.nodes {
        if !source.nodes.contains_key(rel) {
            removed += 1;
            lines.push(format!("remove  {rel}{}", if *node == Node::Dir { "/" } else { "" }));
        }
    }
    if budget == 0 {
        diffs.push(format!("(diffs beyond {MAX_DIFF_LINES} lines are not shown)"));
    }
    lines.extend(diffs);
    Action::new(format!("change {target}: {added} added, {removed} removed, {changed} changed, {same} unchanged"))
        .detail(lines.join("\n"))
}

fn kind_change(old: &Node, new: &Node) -> &'static str {
    match (old, new) {
        (Node::File { .. }, Node::File { .. }) => "",
        (_, Node::Dir) => " (becomes a directory)",
        _ => " (becomes a file)",
    }
}

fn unchanged_action(target: &str, backup: &Candidate) -> Action {
    Action::in_place(format!("leave {target} as it is"))
        .detail(format!("it already holds exactly what the backup {} holds ({})", backup.path, backup.how))
}

// ---------------------------------------------------------------------------
// run
// ---------------------------------------------------------------------------

/// Does it all again (never trusting plan), then replaces.
pub fn run(valid: &Valid, log: Log<'_>) -> Result<Outcome<Outputs>, StepError> {
    let kind = inspect_target(valid)?;
    let backup = pick::resolve(&valid.source, &valid.target, kind)?;
    log(format!("backup: {} ({})", backup.path, backup.how));
    match kind {
        Kind::File => run_file(valid, &backup, log),
        Kind::Directory => run_directory(valid, &backup, log),
    }
}

fn run_file(valid: &Valid, backup: &Candidate, log: Log<'_>) -> Result<Outcome<Outputs>, StepError> {
    let target = valid.target.as_str();
    let checked = check_backup_file(valid, &backup.path)?;
    log(format!("check: {}", checked.summary));
    let before = sha256_file(Path::new(target)).map_err(|e| unreadable_target(target, &e))?;
    let mut outputs =
        new_outputs(valid, backup, Kind::File, &checked.summary, checked.size, None, &before, &checked.sha256);
    if before == checked.sha256 {
        return Ok(nothing_to_do(outputs, log));
    }
    let copy = take_safety_copy(target, &before)?;
    outputs.safety_copy = Some(copy.clone());
    // The write-ahead record: from here on `verify` and `undo` get these
    // outputs whether the replace happened or not.
    if let Err(e) = checkpoint(&outputs) {
        let _ = fs::remove_file(&copy);
        return Err(e);
    }
    let written = replace_atomically_with(Path::new(target), |file| match &checked.bytes {
        Some(bytes) => file.write_all(bytes),
        None => {
            let copied = tree::copy_hashed(&mut File::open(&backup.path)?, file)?;
            if copied == checked.sha256 {
                Ok(())
            } else {
                Err(io::Error::other(format!(
                    "the backup `{}` changed while it was copied (sha256 `{}` when read, `{copied}` when copied)",
                    backup.path, checked.sha256
                )))
            }
        }
    });
    if let Err(e) = written {
        let state = file_state(target, &before, &checked.sha256);
        return Err(StepError::failed(format!(
            "could not write `{target}`: {e}{}; {state}; the safety copy is `{copy}`",
            write_hint(&e)
        )));
    }
    let found = sha256_file(Path::new(target)).unwrap_or_else(|e| format!("unreadable: {e}"));
    if found != checked.sha256 {
        return Err(put_back_after_bad_write(
            target,
            &copy,
            &before,
            &format!("reading it back gives sha256 `{found}` instead of the backup's `{}`", checked.sha256),
        ));
    }
    let summary = format!("restored {target} from {} (safety copy {copy})", backup.path);
    log(summary.clone());
    Ok(Outcome::new(summary, outputs))
}

fn run_directory(valid: &Valid, backup: &Candidate, log: Log<'_>) -> Result<Outcome<Outputs>, StepError> {
    let target = valid.target.as_str();
    let source = read_backup_tree(valid, &backup.path)?;
    log(format!("check: {}", source.summary));
    let live = Tree::read(target, false).map_err(|e| unreadable_target(target, &e))?;
    let (before, after) = (live.digest(), source.tree.digest());
    let (files, bytes) = source.tree.files();
    let mut outputs = new_outputs(valid, backup, Kind::Directory, &source.summary, bytes, Some(files), &before, &after);
    if before == after {
        return Ok(nothing_to_do(outputs, log));
    }
    let (parent, name) = split(target);
    let staging = free_name(&parent, &format!(".{name}.backout-stage-{:x}", nanos()));
    let safety = free_name(&parent, &format!("{name}.backout-{}.bak", utc_stamp(SystemTime::now())));
    outputs.safety_copy = Some(safety.clone());
    outputs.staging = Some(staging.clone());
    // Before the staging directory exists: a crash from here on leaves
    // outputs that `undo` uses to remove it, or to put the target back.
    checkpoint(&outputs)?;
    let discard = |why: String| {
        let _ = tree::remove_tree(&staging);
        StepError::failed(format!("{why}; nothing was changed in `{target}`"))
    };
    if let Err(e) = tree::stage(&backup.path, &source.tree, &staging, target) {
        return Err(discard(format!("could not copy the backup to `{staging}`: {e}{}", write_hint(&e))));
    }
    match Tree::read(&staging, true).map(|t| t.digest()) {
        Ok(staged) if staged == after => {}
        Ok(staged) => {
            return Err(discard(format!(
                "the staged copy `{staging}` does not match the backup (digest `{staged}`, expected `{after}`)"
            )));
        }
        Err(e) => return Err(discard(format!("cannot read back the staged copy `{staging}`: {e}"))),
    }
    if let Err(e) = rename_no_clobber(target, &safety) {
        return Err(discard(format!("could not move `{target}` aside to `{safety}`: {e}")));
    }
    if let Err(e) = fs::rename(&staging, target) {
        let back = fs::rename(&safety, target);
        let _ = tree::remove_tree(&staging);
        return Err(match back {
            Ok(()) => StepError::failed(format!(
                "could not rename the staged copy to `{target}`: {e}; the previous directory was put back; \
                 nothing was changed"
            )),
            Err(e2) => StepError::failed(format!(
                "could not rename the staged copy to `{target}`: {e}, nor put the previous directory back \
                 ({e2}): it is at `{safety}`; move it back by hand"
            )),
        });
    }
    sync_dir(Path::new(&parent)).map_err(|e| {
        StepError::failed(format!(
            "restored `{target}` but could not fsync `{parent}`: {e}; the change may not be durable; the \
             previous directory is `{safety}`"
        ))
    })?;
    match Tree::read(target, false).map(|t| t.digest()) {
        Ok(found) if found == after => {}
        found => {
            let why = match found {
                Ok(found) => format!("its digest is `{found}` instead of the backup's `{after}`"),
                Err(e) => format!("it cannot be read back ({e})"),
            };
            return Err(match swap_back(target, &safety) {
                Ok(()) => {
                    StepError::failed(format!("after restoring `{target}`, {why}; the previous directory was put back"))
                }
                Err(e) => StepError::failed(format!(
                    "after restoring `{target}`, {why}; putting the previous directory back failed too ({e}): \
                     it is at `{safety}`"
                )),
            });
        }
    }
    let summary = format!("restored {target} from {} ({files} files; safety copy {safety})", backup.path);
    log(summary.clone());
    Ok(Outcome::new(summary, outputs))
}

#[allow(clippy::too_many_arguments)]
fn new_outputs(
    valid: &Valid,
    backup: &Candidate,
    kind: Kind,
    checked: &str,
    size: u64,
    files: Option<u64>,
    before: &str,
    after: &str,
) -> Outputs {
    Outputs {
        target: valid.target.clone(),
        kind,
        source: backup.path.clone(),
        picked: backup.how.clone(),
        source_modified: backup.modified.map(rfc3339),
        validate: valid.validate.word().to_owned(),
        checked: checked.to_owned(),
        size,
        files,
        sha256_before: before.to_owned(),
        sha256_after: after.to_owned(),
        safety_copy: None,
        staging: None,
        restored_from: None,
    }
}

fn nothing_to_do(outputs: Outputs, log: Log<'_>) -> Outcome<Outputs> {
    let summary = format!(
        "no change needed: {} already holds what {} holds; nothing was written",
        outputs.target, outputs.source
    );
    log(summary.clone());
    Outcome::new(summary, outputs)
}

// ---------------------------------------------------------------------------
// verify
// ---------------------------------------------------------------------------

/// Checks that the target holds what `run` put there. No effects. After a
/// crash `outputs` is the checkpoint, and the restore may never have
/// happened: then the target still holds its old content, and this fails.
pub fn verify(valid: &Valid, outputs: &Outputs) -> Result<(), StepError> {
    same_target(valid, outputs)?;
    let target = outputs.target.as_str();
    let found = digest_of(target, outputs.kind).map_err(|e| unreadable_target(target, &e))?;
    if found == outputs.sha256_after {
        return Ok(());
    }
    if found == outputs.sha256_before {
        return Err(StepError::precondition(format!(
            "`{target}` still holds its content from before the run (sha256 `{found}`): the backup was never put in place"
        )));
    }
    Err(StepError::precondition(format!(
        "`{target}` does not hold what the run put there (expected sha256 `{}`, found `{found}`)",
        outputs.sha256_after
    )))
}

// ---------------------------------------------------------------------------
// undo
// ---------------------------------------------------------------------------

/// Puts the safety copy back, only if the target still holds exactly what
/// `run` put there. Idempotent: a target that already holds its content
/// from before the run is left alone ("nothing to undo").
pub fn undo(valid: &Valid, outputs: Outputs, log: Log<'_>) -> Result<Outcome<Outputs>, StepError> {
    same_target(valid, &outputs)?;
    let Some(copy) = outputs.safety_copy.clone() else {
        let summary = format!("nothing to undo: the run changed nothing in {}", outputs.target);
        log(summary.clone());
        return Ok(Outcome::new(summary, outputs));
    };
    match outputs.kind {
        Kind::File => undo_file(outputs, &copy, log),
        Kind::Directory => undo_directory(outputs, &copy, log),
    }
}

fn undo_file(outputs: Outputs, copy: &str, log: Log<'_>) -> Result<Outcome<Outputs>, StepError> {
    let target = outputs.target.clone();
    let found = sha256_file(Path::new(&target)).map_err(|e| {
        StepError::precondition(format!(
            "cannot read `{target}`: {e}; nothing was restored; its content from before the run is in the safety \
             copy `{copy}`"
        ))
    })?;
    if found == outputs.sha256_before {
        let summary = format!("nothing to undo: {target} already holds its content from before the run");
        log(summary.clone());
        return Ok(Outcome::new(summary, outputs));
    }
    if found != outputs.sha256_after {
        return Err(changed_since_run(&target, &outputs.sha256_after, &found, copy));
    }
    let kept = sha256_file(Path::new(copy)).map_err(|e| {
        StepError::precondition(format!("cannot read the safety copy `{copy}`: {e}; nothing was restored"))
    })?;
    if kept != outputs.sha256_before {
        return Err(StepError::precondition(format!(
            "the safety copy `{copy}` does not hold what the run replaced (expected sha256 `{}`, found `{kept}`); \
             nothing was restored",
            outputs.sha256_before
        )));
    }
    let restored = replace_atomically_with(Path::new(&target), |file| {
        let copied = tree::copy_hashed(&mut File::open(copy)?, file)?;
        if copied == outputs.sha256_before {
            Ok(())
        } else {
            Err(io::Error::other(format!("the safety copy `{copy}` changed while it was copied")))
        }
    });
    if let Err(e) = restored {
        let state = match sha256_file(Path::new(&target)) {
            Ok(d) if d == outputs.sha256_before => "the original content is in place, but may not be durable",
            Ok(d) if d == outputs.sha256_after => "the file still holds what the run wrote",
            _ => "the file's content could not be confirmed",
        };
        return Err(StepError::failed(format!(
            "could not restore `{target}` from the safety copy `{copy}`: {e}; {state}"
        )));
    }
    let now = sha256_file(Path::new(&target)).unwrap_or_else(|e| format!("unreadable: {e}"));
    if now != outputs.sha256_before {
        return Err(StepError::failed(format!(
            "restored `{target}` from the safety copy `{copy}`, but reading it back gives sha256 `{now}` instead of \
             `{}`; the safety copy is intact",
            outputs.sha256_before
        )));
    }
    let summary = format!("restored {target} from safety copy {copy}");
    log(summary.clone());
    Ok(Outcome::new(summary, Outputs { restored_from: Some(copy.to_owned()), ..outputs }))
}

fn undo_directory(outputs: Outputs, copy: &str, log: Log<'_>) -> Result<Outcome<Outputs>, StepError> {
    let target = outputs.target.clone();
    let (parent, _) = split(&target);
    let aside = aside_name(copy);
    let (before, after) = (outputs.sha256_before.as_str(), outputs.sha256_after.as_str());
    if let Some(staging) = &outputs.staging
        && is_own_staging(staging, &target)
        && Path::new(staging).exists()
    {
        tree::remove_tree(staging)
            .map_err(|e| StepError::failed(format!("cannot remove the staging directory `{staging}`: {e}")))?;
        log(format!("removed {staging}, left by an interrupted run"));
    }
    let is_dir = |path: &str| fs::symlink_metadata(path).is_ok_and(|m| m.is_dir());
    let digest = |path: &str| Tree::read(path, false).map(|t| t.digest()).ok();
    // The restored directory moved aside by an earlier undo that was killed:
    // it holds only what the run copied from the backup.
    let remove_aside = |log: Log<'_>| {
        if is_dir(&aside) && digest(&aside).as_deref() == Some(after) {
            match tree::remove_tree(&aside) {
                Ok(()) => log(format!("removed {aside} (what the run had put in place)")),
                Err(e) => log(format!("could not remove {aside} ({e}); it holds what the run had put in place")),
            }
        }
    };
    let summary = if is_dir(&target) {
        let found = digest(&target)
            .ok_or_else(|| StepError::precondition(format!("cannot read `{target}`; nothing was restored")))?;
        if found == before {
            remove_aside(log);
            let summary = format!("nothing to undo: {target} already holds its content from before the run");
            log(summary.clone());
            return Ok(Outcome::new(summary, outputs));
        }
        if found != after {
            return Err(changed_since_run(&target, after, &found, copy));
        }
        require_safety_directory(copy, before, is_dir(copy), digest(copy).as_deref())?;
        if Path::new(&aside).exists() {
            remove_aside(log);
            if Path::new(&aside).exists() {
                return Err(StepError::precondition(format!(
                    "`{aside}` is in the way and does not hold what the run put in place; nothing was restored"
                )));
            }
        }
        rename_no_clobber(&target, &aside).map_err(|e| {
            StepError::failed(format!("could not move `{target}` aside to `{aside}`: {e}; nothing was restored"))
        })?;
        if let Err(e) = fs::rename(copy, &target) {
            let back = fs::rename(&aside, &target);
            return Err(StepError::failed(match back {
                Ok(()) => format!("could not rename the safety copy `{copy}` to `{target}`: {e}; nothing was restored"),
                Err(e2) => format!(
                    "could not rename the safety copy `{copy}` to `{target}`: {e}, nor move the restored directory \
                     back from `{aside}` ({e2}); `{target}` is missing: rename `{copy}` to it by hand"
                ),
            }));
        }
        sync_dir(Path::new(&parent)).map_err(|e| {
            StepError::failed(format!("put `{copy}` back as `{target}` but could not fsync `{parent}`: {e}"))
        })?;
        remove_aside(log);
        format!("restored {target} from safety copy {copy}")
    } else if Path::new(&target).exists() {
        return Err(StepError::precondition(format!(
            "`{target}` is no longer a directory; nothing was restored; the directory from before the run is `{copy}`"
        )));
    } else {
        // Killed between the two renames of a run or of an undo.
        require_safety_directory(copy, before, is_dir(copy), digest(copy).as_deref())?;
        fs::rename(copy, &target)
            .map_err(|e| StepError::failed(format!("could not rename the safety copy `{copy}` to `{target}`: {e}")))?;
        sync_dir(Path::new(&parent)).map_err(|e| {
            StepError::failed(format!("put `{copy}` back as `{target}` but could not fsync `{parent}`: {e}"))
        })?;
        remove_aside(log);
        format!("restored {target} from safety copy {copy} (it was missing: an earlier call was interrupted)")
    };
    match digest(&target) {
        Some(found) if found == before => {}
        found => {
            return Err(StepError::failed(format!(
                "put the safety copy back as `{target}`, but its digest is now `{}` instead of `{before}`",
                found.unwrap_or_else(|| "unreadable".into())
            )));
        }
    }
    log(summary.clone());
    Ok(Outcome::new(summary, Outputs { restored_from: Some(copy.to_owned()), ..outputs }))
}

fn require_safety_directory(copy: &str, before: &str, exists: bool, digest: Option<&str>) -> Result<(), StepError> {
    match (exists, digest) {
        (true, Some(d)) if d == before => Ok(()),
        (false, _) => {
            Err(StepError::precondition(format!("the safety copy `{copy}` is missing; nothing was restored")))
        }
        (true, d) => Err(StepError::precondition(format!(
            "the safety copy `{copy}` does not hold what the run replaced (expected digest `{before}`, found `{}`); \
             nothing was restored",
            d.unwrap_or("unreadable")
        ))),
    }
}

fn changed_since_run(target: &str, after: &str, found: &str, copy: &str) -> StepError {
    StepError::precondition(format!(
        "`{target}` changed since the run (expected sha256 `{after}`, found `{found}`); nothing was restored; its \
         content from before the run is in the safety copy `{copy}`"
    ))
}

/// Where `undo` moves the restored directory while it renames the safety
/// copy back: named after the safety copy, so a later undo finds it.
fn aside_name(copy: &str) -> String {
    let (parent, name) = split(copy);
    tree::join(&parent, &format!(".{name}.replaced"))
}

/// Whether `staging` is a staging name this step makes for `target`, so
/// undo never removes anything else whatever the outputs say.
fn is_own_staging(staging: &str, target: &str) -> bool {
    let (parent, name) = split(target);
    let (staging_parent, staging_name) = split(staging);
    staging_parent == parent && staging_name.starts_with(&format!(".{name}.backout-stage-"))
}

/// Staging directories of interrupted runs beside `target`.
fn leftover_staging(target: &str) -> Vec<String> {
    let (parent, name) = split(target);
    let prefix = format!(".{name}.backout-stage-");
    let mut found: Vec<String> = fs::read_dir(&parent)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                .filter(|n| n.starts_with(&prefix))
                .map(|n| tree::join(&parent, &n))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

// ---------------------------------------------------------------------------
// shared
// ---------------------------------------------------------------------------

/// The target must exist, and be a regular file or a directory (not a
/// symbolic link: replacing one would replace the link, not what it points
/// to). A directory's parent must be reachable: it is where the staging and
/// safety copies go.
fn inspect_target(valid: &Valid) -> Result<Kind, StepError> {
    let target = valid.target.as_str();
    let meta = fs::symlink_metadata(target).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => StepError::precondition(format!(
            "`{target}` does not exist, or is not inside a directory granted to this step; file-restore puts back a \
             file or directory that exists"
        )),
        _ => unreadable_target(target, &e),
    })?;
    let kind = if meta.file_type().is_symlink() {
        let to = fs::read_link(target).map(|t| format!(" to `{}`", t.display())).unwrap_or_default();
        return Err(StepError::precondition(format!(
            "`{target}` is a symbolic link{to}; replacing it would replace the link with a plain file or directory, \
             so set `target` to what it points to"
        )));
    } else if meta.is_file() {
        Kind::File
    } else if meta.is_dir() {
        Kind::Directory
    } else {
        return Err(StepError::precondition(format!("`{target}` is neither a regular file nor a directory")));
    };
    if kind == Kind::Directory {
        if !valid.require_keys.is_empty() {
            return Err(StepError::invalid_config_at(
                "/require_keys",
                format!("`require_keys` applies to a file target; `{target}` is a directory"),
            ));
        }
        let (parent, _) = split(target);
        if fs::metadata(&parent).is_err() {
            return Err(StepError::precondition(format!(
                "`{target}` is a granted directory itself, and file-restore replaces a directory by renaming it \
                 inside its parent: grant the host directory that holds it read-write (for example as `/srv`) and \
                 set `target` to the directory inside that grant (`/srv/{}`)",
                split(target).1
            )));
        }
    }
    Ok(kind)
}

/// A backup file, checked.
struct CheckedFile {
    /// Its bytes, when it was validated (what is checked is what is written).
    bytes: Option<Vec<u8>>,
    sha256: String,
    size: u64,
    summary: String,
}

fn check_backup_file(valid: &Valid, path: &str) -> Result<CheckedFile, StepError> {
    if valid.validate == Format::None {
        let size = fs::metadata(path).map(|m| m.len()).map_err(|e| unreadable_backup(path, &e))?;
        let sha256 = sha256_file(Path::new(path)).map_err(|e| unreadable_backup(path, &e))?;
        let summary = validate::check(Format::None, &[], &[], path).unwrap_or_default();
        return Ok(CheckedFile { bytes: None, sha256, size, summary });
    }
    let bytes = read_limited(path).map_err(|e| match e.kind() {
        io::ErrorKind::FileTooLarge => StepError::precondition(format!(
            "the backup `{path}` {e}; set `validate = \"none\"` to restore it unchecked (and without a diff)"
        )),
        _ => unreadable_backup(path, &e),
    })?;
    let summary = validate::check(valid.validate, &bytes, &valid.require_keys, path)
        .map_err(|why| StepError::precondition(format!("{why}; nothing was changed")))?;
    Ok(CheckedFile { sha256: sha256_hex(&bytes), size: bytes.len() as u64, summary, bytes: Some(bytes) })
}

/// A backup directory, read (links and special files refused) and every
/// file in it checked.
struct CheckedTree {
    tree: Tree,
    summary: String,
}

fn read_backup_tree(valid: &Valid, path: &str) -> Result<CheckedTree, StepError> {
    let tree = Tree::read(path, true)
        .map_err(|e| StepError::precondition(format!("cannot restore from `{path}`: {e}; nothing was changed")))?;
    if valid.validate == Format::None {
        return Ok(CheckedTree { tree, summary: "not checked (`validate = \"none\"`)".to_owned() });
    }
    let mut problems = Vec::new();
    let mut files = 0;
    for (rel, node) in &tree.nodes {
        if let Node::File { .. } = node {
            files += 1;
            let file = tree::join(path, rel);
            let result = match read_limited(&file) {
                Ok(bytes) => validate::check(valid.validate, &bytes, &[], &file).map(|_| ()),
                Err(e) => Err(format!("`{file}` {e}")),
            };
            if let Err(why) = result {
                problems.push(why);
            }
        }
    }
    if !problems.is_empty() {
        let count = problems.len();
        problems.truncate(5);
        let more = if count > 5 { format!("; and {} more", count - 5) } else { String::new() };
        return Err(StepError::precondition(format!("{}{more}; nothing was changed", problems.join("; "))));
    }
    let summary =
        format!("every one of its {} is valid {}", backout_sdk::text::count(files, "file"), valid.validate.name());
    Ok(CheckedTree { tree, summary })
}

/// Reads at most [`MAX_CHECKED_BYTES`], failing beyond.
fn read_limited(path: &str) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    File::open(path)?.take(MAX_CHECKED_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_CHECKED_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("is larger than {} MiB, the most file-restore validates and diffs", MAX_CHECKED_BYTES >> 20),
        ));
    }
    Ok(bytes)
}

/// A file's text for a diff: UTF-8 without NUL, within the size bound.
fn read_text(path: &str) -> Option<String> {
    read_limited(path).ok().and_then(|bytes| String::from_utf8(bytes).ok()).filter(|t| !t.contains('\0'))
}

fn backup_text(checked: &CheckedFile, path: &str) -> Option<String> {
    match &checked.bytes {
        Some(bytes) => std::str::from_utf8(bytes).ok().filter(|t| !t.contains('\0')).map(str::to_owned),
        None => read_text(path),
    }
}

fn digest_of(target: &str, kind: Kind) -> io::Result<String> {
    match kind {
        Kind::File => sha256_file(Path::new(target)),
        Kind::Directory => {
            if !fs::symlink_metadata(target)?.is_dir() {
                return Err(io::Error::other("it is no longer a directory"));
            }
            Tree::read(target, false).map(|t| t.digest())
        }
    }
}

/// `verify` and `undo` must act on the target `run` restored.
fn same_target(valid: &Valid, outputs: &Outputs) -> Result<(), StepError> {
    if valid.target == outputs.target {
        return Ok(());
    }
    Err(StepError::invalid_config_at(
        "/target",
        format!(
            "the run's outputs are for `{}` but the config names `{}`; use the config the run used",
            outputs.target, valid.target
        ),
    ))
}

/// Takes the safety copy and checks it holds the bytes read before: if the
/// file changed in between, nothing is written.
fn take_safety_copy(target: &str, before: &str) -> Result<String, StepError> {
    let copy = safety_copy(Path::new(target), None).map_err(|e| {
        StepError::failed(format!(
            "could not take a safety copy of `{target}`: {e}{}; nothing was changed",
            write_hint(&e)
        ))
    })?;
    let name = copy.display().to_string();
    let digest = sha256_file(&copy).unwrap_or_else(|e| format!("unreadable: {e}"));
    if digest != before {
        return Err(StepError::transient(format!(
            "`{target}` changed while file-restore was working (sha256 `{before}` when read, `{digest}` when \
             copied); nothing was written to it and the safety copy `{name}` was kept; try again"
        )));
    }
    Ok(name)
}

/// After a write that does not read back as the backup: put the original
/// bytes back from the safety copy.
fn put_back_after_bad_write(target: &str, copy: &str, before: &str, problem: &str) -> StepError {
    let restored =
        replace_atomically_with(Path::new(target), |file| tree::copy_hashed(&mut File::open(copy)?, file).map(|_| ()));
    match restored.and_then(|()| sha256_file(Path::new(target))) {
        Ok(d) if d == before => StepError::failed(format!(
            "after writing `{target}`, {problem}; restored its original content (also in the safety copy `{copy}`)"
        )),
        Ok(_) => StepError::failed(format!(
            "after writing `{target}`, {problem}; putting the original back did not read back either; the original \
             is in the safety copy `{copy}`"
        )),
        Err(e) => StepError::failed(format!(
            "after writing `{target}`, {problem}; restoring its original content failed too ({e}); the original is \
             in the safety copy `{copy}`"
        )),
    }
}

/// What a failed write left, found by reading the file again.
fn file_state(target: &str, before: &str, after: &str) -> &'static str {
    match sha256_file(Path::new(target)) {
        Ok(d) if d == before => "the file is unchanged",
        Ok(d) if d == after => "the backup's content is in place, but may not be durable",
        _ => "the file's content could not be confirmed",
    }
}

/// Renames the restored directory aside and the safety copy back (run's
/// read-back failed).
fn swap_back(target: &str, safety: &str) -> io::Result<()> {
    let aside = aside_name(safety);
    rename_no_clobber(target, &aside)?;
    if let Err(e) = fs::rename(safety, target) {
        let _ = fs::rename(&aside, target);
        return Err(e);
    }
    let (parent, _) = split(target);
    sync_dir(Path::new(&parent))?;
    tree::remove_tree(&aside)
}

/// Renames `from` to `to` unless something is at `to`. (A directory cannot
/// be hard-linked, so this checks first: a rename over an empty directory
/// would otherwise replace it silently.)
fn rename_no_clobber(from: &str, to: &str) -> io::Result<()> {
    match fs::symlink_metadata(to) {
        Ok(_) => Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("`{to}` already exists"))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => fs::rename(from, to),
        Err(e) => Err(e),
    }
}

/// `parent/name`, or with `-1`, `-2`… before its last `.bak` (or at the
/// end) when that is taken.
fn free_name(parent: &str, name: &str) -> String {
    let first = tree::join(parent, name);
    if fs::symlink_metadata(&first).is_err() {
        return first;
    }
    let (stem, ext) = name.strip_suffix(".bak").map_or((name, ""), |s| (s, ".bak"));
    (1..)
        .map(|n| tree::join(parent, &format!("{stem}-{n}{ext}")))
        .find(|p| fs::symlink_metadata(p).is_err())
        .unwrap_or(first)
}

/// (parent directory, name) of a guest path.
fn split(path: &str) -> (String, String) {
    match path.rsplit_once('/') {
        Some(("", name)) => ("/".to_owned(), name.to_owned()),
        Some((parent, name)) => (parent.to_owned(), name.to_owned()),
        None => (".".to_owned(), path.to_owned()),
    }
}

fn nanos() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

/// A hint for a write refused because the directory is not writable (a
/// read-only grant, a read-only file system).
fn write_hint(e: &io::Error) -> &'static str {
    let text = e.to_string();
    let read_only = matches!(e.kind(), io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem)
        || text.contains("read-only");
    if read_only { " (the target's directory must be in a read-write grant)" } else { "" }
}

fn unreadable_target(target: &str, e: &io::Error) -> StepError {
    StepError::precondition(format!("cannot read `{target}`: {e}; it must be inside a directory granted to this step"))
}

fn unreadable_backup(path: &str, e: &io::Error) -> StepError {
    StepError::precondition(format!("cannot read the backup `{path}`: {e}"))
}

/// Size and modification time of a backup file, for plan.
fn backup_facts(backup: &Candidate, size: u64) -> String {
    format!("{}{}", human(size), modified_facts(backup))
}

fn modified_facts(backup: &Candidate) -> String {
    backup.modified.map(|t| format!(", modified {}", rfc3339(t))).unwrap_or_default()
}

pub use backout_sdk::fs::rfc3339;
pub use backout_sdk::quantity::human_size as human;
