//! The step's operations: plan, run, verify, undo.
//!
//! They take the validated config and an [`Observer`] instead of calling the
//! host, so the whole flow (staging, checks, safety copy, swap, undo's digest
//! checks) runs natively in unit tests on real temporary files.
//!
//! The swap keeps these invariants (see the crate docs for why):
//! 1. the live database is only ever replaced by a rename of a file in its
//!    own directory that passed the header check and the configured check;
//! 2. before that, the previous database and its `-wal`/`-journal` are kept
//!    as the safety copy (a hard link and renames when the safety directory
//!    allows, fsync'd copies otherwise);
//! 3. no `-wal`, `-shm` or `-journal` of the old file is left beside the new one;
//! 4. every file written is fsync'd, and so is every directory changed;
//! 5. every file written under a name that is not final is declared to the
//!    host first (`temporary_file`), and a file only takes a final name
//!    (the safety copy's, a side file's) once it is complete;
//! 6. the outputs are checkpointed once the safety copy is kept and before
//!    the first change a crash could leave behind (moving a `-wal` away, the
//!    rename), so that after a crash `verify` tells whether the restore
//!    happened (by the live database's sha256) and `undo` puts back exactly
//!    what was moved, or says there is nothing to undo.

#![forbid(unsafe_code)]

use std::fs::{self, OpenOptions};
use std::io;
use std::path::Path;
use std::time::SystemTime;

use backout_sdk::fs::{copy_permissions, sync_dir, utc_stamp};
use backout_sdk::{Action, Outcome, StepError};

use crate::config::{Source, Valid, file_name, parent};
use crate::files::{self, CopyError, FileInfo, JOURNAL, SHM, Sides, WAL, human};
use crate::header::{self, Header};
use crate::outputs::Outputs;
use crate::sqlite;

/// Where log lines and progress go: the host in a plugin, vectors in tests.
pub trait Observer {
    fn info(&mut self, line: String);
    fn progress(&mut self, done: u64, total: u64);
}

/// An observer that drops everything.
#[derive(Debug, Default)]
pub struct Quiet;

impl Observer for Quiet {
    fn info(&mut self, _: String) {}
    fn progress(&mut self, _: u64, _: u64) {}
}

/// The backup this config means, checked as far as is cheap.
#[derive(Debug, Clone)]
pub struct Chosen {
    pub file: FileInfo,
    pub header: Header,
    /// How it was chosen, for plan: "the newest of 3 files matching …".
    pub why: Option<String>,
}

/// The live database as found.
#[derive(Debug, Clone)]
pub struct Live {
    pub file: Option<FileInfo>,
    pub sides: Sides,
}

// ---------------------------------------------------------------------------
// plan

/// Says which backup would be restored, what lies beside the live database,
/// the space needed and the checks that will run. Reads only; refuses here
/// whatever `run` would refuse without running the expensive check.
pub fn plan(valid: &Valid) -> Result<Vec<Action>, StepError> {
    let chosen = choose_backup(valid)?;
    let live = inspect_live(valid)?;
    if !valid.expect.is_empty() {
        let conn = sqlite::open(&chosen.file.path).map_err(|e| cannot_open(&chosen.file.path, &e))?;
        sqlite::prepare_all(&conn, &valid.expect).map_err(StepError::invalid_config)?;
    }
    let b = &chosen.file;
    if let Some(sha256) = already_restored(valid, &chosen, &live)? {
        let mut actions = vec![
            Action::in_place(format!(
                "leave {} as it is: it already holds the bytes of the backup {}",
                valid.db, b.path
            ))
            .detail(format!("sha256 {sha256}, {}; nothing beside it", human(b.size))),
            Action::check(format!("check {} with PRAGMA {}", valid.db, valid.check.pragma()))
                .detail("read-only, as a restored copy is checked: the backup's bytes must pass it in place too"),
        ];
        actions.extend(expect_action(valid));
        return Ok(actions);
    }
    let mut backup_detail = format!(
        "backup {}: {}, modified {}, {} pages of {} bytes{}",
        b.path,
        human(b.size),
        b.modified.map(files::rfc3339).unwrap_or_else(|| "at an unknown time".into()),
        chosen.header.page_count(b.size),
        chosen.header.page_size,
        if chosen.header.wal_mode { " (WAL mode)" } else { "" },
    );
    if let Some(why) = &chosen.why {
        backup_detail.push_str(&format!("\n{why}"));
    }
    let mut actions = vec![Action::new(format!("restore {} from {}", valid.db, b.path)).detail(backup_detail)];

    let dir = parent(&valid.db);
    let space = format!("space needed: {} in {dir} for the restored copy", human(b.size));
    actions.push(match &live.file {
        None => Action::new(format!("create {} (there is no database there now)", valid.db)).detail(format!(
            "{space}\nit gets the permissions and owner of the backup {}; change them afterwards if the service \
             needs others",
            b.path
        )),
        Some(current) => {
            let sides = if live.sides.has_state() {
                format!("; beside it {}, kept with the safety copy (allow_wal)", live.sides.describe(&valid.db))
            } else {
                "; no -wal or -journal beside it".to_owned()
            };
            let shm = if live.sides.shm.is_some() { format!("; `{}{SHM}` will be removed", valid.db) } else { String::new() };
            Action::new(format!("keep the current {} as a safety copy in {}", valid.db, valid.safety_dir)).detail(format!(
                "current database: {}{sides}{shm}\n{space}, and up to {} in {} if the safety copy cannot be a hard link",
                human(current.size),
                human(current.size + live.sides.wal.unwrap_or(0)),
                valid.safety_dir
            ))
        }
    });
    actions.push(
        Action::check(format!(
            "check the restored copy with PRAGMA {} before it replaces {}",
            valid.check.pragma(),
            valid.db
        ))
        .detail("header checked, sha256 recorded for undo; a failing check leaves the live database untouched"),
    );
    actions.extend(expect_action(valid));
    Ok(actions)
}

/// The plan's line for the `expect` queries, if any: they only read.
fn expect_action(valid: &Valid) -> Option<Action> {
    (!valid.expect.is_empty()).then(|| {
        let lines: Vec<String> = valid.expect.iter().map(|e| format!("{} → {}", e.sql, e.describe())).collect();
        Action::check(format!(
            "then check {} on {}",
            backout_sdk::text::count(valid.expect.len(), "expectation"),
            valid.db
        ))
        .detail(lines.join("\n"))
    })
}

/// The sha256 of the live database when it already holds exactly the
/// backup's bytes, with no `-wal` or `-journal` beside it to change what it
/// reads as: the restore would change nothing. Sizes are compared first, so
/// only a database that may be the backup is hashed (by the host, natively).
fn already_restored(valid: &Valid, chosen: &Chosen, live: &Live) -> Result<Option<String>, StepError> {
    let Some(current) = &live.file else { return Ok(None) };
    if current.size != chosen.file.size || live.sides.has_state() {
        return Ok(None);
    }
    let live_sha = files::sha256(&valid.db, &mut |_, _| {}).map_err(|e| cannot_read(&valid.db, &e))?;
    let backup = &chosen.file.path;
    let backup_sha = files::sha256(backup, &mut |_, _| {}).map_err(|e| cannot_read(backup, &e))?;
    Ok((live_sha == backup_sha).then_some(live_sha))
}

// ---------------------------------------------------------------------------
// run

/// Restores the backup: stage and check a copy beside the database (the
/// configured check and `expect`), keep the safety copy, swap, then run
/// `expect` again on the restored database (for the outputs; it can only
/// fail there if the file changed under the step).
pub fn run(valid: &Valid, obs: &mut dyn Observer) -> Result<Outcome<Outputs>, StepError> {
    let chosen = choose_backup(valid)?;
    let live = inspect_live(valid)?;
    if let Some(sha256) = already_restored(valid, &chosen, &live)? {
        return leave_in_place(valid, &chosen, sha256, obs);
    }
    let backup = chosen.file.path.clone();
    obs.info(format!("restoring {} from {backup} ({})", valid.db, human(chosen.file.size)));

    // The staged copy is as readable as the database it will replace, or,
    // when there is none, as the backup its bytes come from.
    let permissions_from = if live.file.is_some() { valid.db.as_str() } else { backup.as_str() };
    let staged = stage(valid, &backup, permissions_from, obs)?;
    // What the outputs say whatever happens to the live database; `swap`
    // adds where the previous one went and checkpoints it before the swap.
    let planned = outputs_of(valid, &chosen, staged.sha256.clone(), staged.size, &staged.header);
    let kept = swap(valid, &staged, &planned, obs)?;

    let (expect, failed) = match sqlite::open(&valid.db) {
        Ok(conn) => {
            let results = sqlite::evaluate(&conn, &valid.expect);
            let failed = sqlite::unmet(&results);
            (results, failed)
        }
        Err(e) => (Vec::new(), vec![format!("the restored database does not open: {e}")]),
    };
    for r in &expect {
        obs.info(format!("expect `{}` → {} ({}): {}", r.sql, r.value, r.expected, if r.ok { "ok" } else { "NOT MET" }));
    }
    if !failed.is_empty() {
        return Err(StepError::failed(format!(
            "restored `{}` from `{backup}`, but {}; the restored database is in place and the previous one {}",
            valid.db,
            failed.join("; "),
            match &kept.copy {
                Some(copy) => format!("is in the safety copy `{copy}`{}", with_sides(&kept)),
                None => "did not exist".to_owned(),
            }
        )));
    }

    let summary = format!(
        "restored {} from {backup} ({}, {} ok{})",
        valid.db,
        human(staged.size),
        valid.check.pragma(),
        kept.copy.as_ref().map(|c| format!("; safety copy {c}")).unwrap_or_default()
    );
    obs.info(summary.clone());
    let outputs = Outputs {
        safety_copy: kept.copy,
        safety_copy_size: kept.copy_size,
        safety_wal: kept.wal,
        safety_journal: kept.journal,
        expect,
        ..planned
    };
    Ok(Outcome::new(summary, outputs))
}

/// `run` when the live database already holds the backup's bytes: it is
/// checked as a restored copy would be (the configured check, `expect`),
/// read-only, and nothing is written: no staging copy, no safety copy, no
/// checkpoint. The outputs say `unchanged`, so `undo` leaves it alone.
fn leave_in_place(
    valid: &Valid,
    chosen: &Chosen,
    sha256: String,
    obs: &mut dyn Observer,
) -> Result<Outcome<Outputs>, StepError> {
    let backup = &chosen.file.path;
    let conn = sqlite::open(&valid.db).map_err(|e| cannot_open(&valid.db, &e))?;
    sqlite::check(&conn, valid.check).map_err(|m| {
        StepError::precondition(format!(
            "`{}` already holds the bytes of the backup `{backup}`, but {m}; nothing was changed",
            valid.db
        ))
    })?;
    let expect = sqlite::evaluate(&conn, &valid.expect);
    let unmet = sqlite::unmet(&expect);
    if !unmet.is_empty() {
        return Err(StepError::precondition(format!(
            "`{}` already holds the bytes of the backup `{backup}`, but {}; nothing was changed",
            valid.db,
            unmet.join("; ")
        )));
    }
    let summary = format!(
        "no change needed: {} already holds the bytes of the backup {backup} (sha256 {sha256}; {} ok); nothing was written",
        valid.db,
        valid.check.pragma()
    );
    obs.info(summary.clone());
    let outputs =
        Outputs { expect, unchanged: true, ..outputs_of(valid, chosen, sha256, chosen.file.size, &chosen.header) };
    Ok(Outcome::new(summary, outputs))
}

/// The outputs of restoring `chosen` as a database of `size` bytes with
/// `sha256` and `header`, before anything is known of a safety copy or of
/// `expect` on the live database.
fn outputs_of(valid: &Valid, chosen: &Chosen, sha256: String, size: u64, header: &Header) -> Outputs {
    Outputs {
        db: valid.db.clone(),
        backup: chosen.file.path.clone(),
        backup_size: chosen.file.size,
        backup_modified: chosen.file.modified.map(files::rfc3339),
        sha256,
        size,
        page_size: header.page_size,
        page_count: header.page_count(size),
        check: valid.check.pragma().to_owned(),
        safety_copy: None,
        safety_copy_size: None,
        safety_wal: None,
        safety_journal: None,
        expect: Vec::new(),
        unchanged: false,
        undone_from: None,
    }
}

/// A checked copy of the backup beside the live database, not yet in place.
#[derive(Debug)]
struct Staged {
    temp: String,
    size: u64,
    sha256: String,
    header: Header,
}

/// Streams the backup into a temp file in the database's directory (hashing
/// and checking the header on the way), fsyncs it, and runs the configured
/// check and the `expect` queries on it. On any failure the temp file is
/// removed and nothing else was touched.
///
/// The temp file gets the permissions and owner of `permissions_from` (the
/// live database, or the backup when there is no live database) while it is
/// still empty, before the first byte of the backup is written: a 0600
/// database is never readable by others through its staged copy. Without a
/// live database the restored one keeps the backup's permissions and owner:
/// WASI cannot create a file 0600, the host's default mode (usually 0644)
/// could make a 0600 backup readable by every user, and the backup is what
/// says who may read these bytes.
fn stage(valid: &Valid, backup: &str, permissions_from: &str, obs: &mut dyn Observer) -> Result<Staged, StepError> {
    let cannot_create = |e: io::Error| {
        StepError::precondition(format!(
            "cannot create a file in `{}` ({e}); the database's directory must be in a read-write grant; nothing was changed",
            parent(&valid.db)
        ))
    };
    let temp = files::declared_temp(&valid.db, "restore").map_err(cannot_create)?;
    let mut file = OpenOptions::new().write(true).create_new(true).open(&temp).map_err(cannot_create)?;
    let discard = |temp: &str, e: StepError| {
        let _ = fs::remove_file(temp);
        e
    };
    copy_permissions(Path::new(permissions_from), Path::new(&temp)).map_err(|e| {
        discard(
            &temp,
            StepError::precondition(format!(
                "cannot give the restored copy the permissions and owner of `{permissions_from}` before writing \
                 it: {e}; nothing was changed"
            )),
        )
    })?;
    let copied = files::copy_checked(backup, &temp, &mut file, &mut |d, t| obs.progress(d, t))
        .map_err(|e| match e {
            CopyError::NotADatabase(m) => refuse_backup(backup, &m),
            CopyError::Io(e) => {
                StepError::failed(format!("cannot copy `{backup}` to `{temp}`: {e}; nothing was changed"))
            }
        })
        .and_then(|c| {
            file.sync_all()
                .map(|_| c)
                .map_err(|e| StepError::failed(format!("cannot fsync `{temp}`: {e}; nothing was changed")))
        })
        .map_err(|e| discard(&temp, e))?;
    drop(file);
    obs.info(format!("copied {} to {temp} (sha256 {})", human(copied.size), copied.sha256));

    let checked = sqlite::open(&temp)
        .map_err(|e| format!("cannot be opened by SQLite: {e}"))
        .and_then(|conn| {
            sqlite::check(&conn, valid.check)?;
            sqlite::prepare_all(&conn, &valid.expect)
                .map_err(|m| format!("does not suit the `expect` queries: {m}"))?;
            // The staged bytes are the bytes that will be live: a backup that
            // does not answer `expect` is refused before anything is touched.
            let unmet = sqlite::unmet(&sqlite::evaluate(&conn, &valid.expect));
            if unmet.is_empty() { Ok(()) } else { Err(format!("does not meet `expect`: {}", unmet.join("; "))) }
        })
        .map_err(|m| refuse_backup(backup, &m));
    checked.map_err(|e| discard(&temp, e))?;
    obs.info(format!("{}: ok", valid.check.pragma()));
    Ok(Staged { temp, size: copied.size, sha256: copied.sha256, header: copied.header })
}

/// Where the previous database went.
#[derive(Debug, Default)]
struct Kept {
    copy: Option<String>,
    copy_size: Option<u64>,
    wal: Option<String>,
    journal: Option<String>,
}

fn with_sides(kept: &Kept) -> String {
    let names: Vec<String> = [&kept.wal, &kept.journal].into_iter().flatten().map(|p| format!("`{p}`")).collect();
    if names.is_empty() { String::new() } else { format!(" (with {})", names.join(" and ")) }
}

/// Keeps the previous database and its side files, then renames the staged
/// copy over the live database and fsyncs the directories. On failure, puts
/// back what it can and says exactly what state things are in.
///
/// `planned` is what `run` will return, less where the previous database
/// goes: once the safety copy is kept (and before a side file moves or the
/// rename), those outputs with the safety copy's names are checkpointed.
fn swap(valid: &Valid, staged: &Staged, planned: &Outputs, obs: &mut dyn Observer) -> Result<Kept, StepError> {
    let db = valid.db.as_str();
    let dir = parent(db);
    let abandon = |e: StepError| {
        let _ = fs::remove_file(&staged.temp);
        e
    };
    // Look again right before the swap: the world may have moved since plan.
    let live = inspect_live(valid).map_err(abandon)?;
    let mut kept = Kept::default();
    if let Some(current) = &live.file {
        // Again: the database may have appeared or changed hands since the
        // staged copy got its permissions.
        copy_permissions(Path::new(db), Path::new(&staged.temp)).map_err(|e| {
            abandon(StepError::failed(format!(
                "cannot give the restored copy the permissions and owner of `{db}`: {e}; nothing was changed"
            )))
        })?;
        let copy = keep_safety_copy(valid, current, obs).map_err(abandon)?;
        // The side files are checkpointed under the names they are about to
        // take: after a crash, undo looks for each at one name or the other.
        let checkpointed = Outputs {
            safety_copy: Some(copy.clone()),
            safety_copy_size: Some(current.size),
            safety_wal: live.sides.wal.map(|_| format!("{copy}{WAL}")),
            safety_journal: live.sides.journal.map(|_| format!("{copy}{JOURNAL}")),
            ..planned.clone()
        };
        if let Err(e) = backout_sdk::checkpoint(&checkpointed) {
            let _ = fs::remove_file(&copy);
            return Err(abandon(e));
        }
        kept.copy = Some(copy.clone());
        kept.copy_size = Some(current.size);
        // Side files follow the database into the safety directory: a -wal
        // left beside the new file would be replayed into it.
        for (suffix, present) in [(WAL, live.sides.wal.is_some()), (JOURNAL, live.sides.journal.is_some())] {
            if !present {
                continue;
            }
            let from = format!("{db}{suffix}");
            let to = format!("{copy}{suffix}");
            if let Err(e) = files::move_file(&from, &to, &mut |d, t| obs.progress(d, t)) {
                let undone = put_back_sides(db, &kept);
                return Err(abandon(StepError::failed(format!(
                    "cannot move `{from}` to `{to}`: {e}; {undone}the live database `{db}` was not replaced; \
                     a safety copy of it is at `{copy}`"
                ))));
            }
            if suffix == WAL {
                kept.wal = Some(to);
            } else {
                kept.journal = Some(to);
            }
        }
        if live.sides.shm.is_some() {
            let shm = format!("{db}{SHM}");
            if let Err(e) = fs::remove_file(&shm)
                && e.kind() != io::ErrorKind::NotFound
            {
                let undone = put_back_sides(db, &kept);
                return Err(abandon(StepError::failed(format!(
                    "cannot remove `{shm}`: {e}; {undone}the live database `{db}` was not replaced; a safety copy of it is at `{copy}`"
                ))));
            }
        }
        if let Err(e) = sync_dirs(&[dir, &valid.safety_dir]) {
            let undone = put_back_sides(db, &kept);
            return Err(abandon(StepError::failed(format!(
                "cannot fsync `{dir}` after keeping the safety copy `{copy}`{}: {e}; {undone}the live database `{db}` \
                 was not replaced",
                with_sides(&kept)
            ))));
        }
        obs.info(format!("kept the previous database as {copy}{}", with_sides(&kept)));
    } else {
        // No database to keep: the checkpoint still comes first, so that
        // undo removes the database the rename creates.
        backout_sdk::checkpoint(planned).map_err(abandon)?;
    }
    if let Err(e) = fs::rename(&staged.temp, db) {
        let undone = put_back_sides(db, &kept);
        let _ = fs::remove_file(&staged.temp);
        return Err(StepError::failed(format!(
            "cannot rename the checked copy over `{db}`: {e}; {undone}the live database was not replaced{}",
            kept.copy.as_ref().map(|c| format!("; a safety copy of it is at `{c}`")).unwrap_or_default()
        )));
    }
    sync_dir(Path::new(dir)).map_err(|e| {
        StepError::failed(format!(
            "replaced `{db}` but cannot fsync `{dir}`: {e}; the replacement may not survive a crash{}",
            kept.copy
                .as_ref()
                .map(|c| format!("; the previous database is in the safety copy `{c}`"))
                .unwrap_or_default()
        ))
    })?;
    obs.info(format!("replaced {db} (sha256 {})", staged.sha256));
    Ok(kept)
}

/// After a failed swap, moves the side files already kept back beside the
/// live database. Returns words for the error message.
fn put_back_sides(db: &str, kept: &Kept) -> String {
    let mut failed = Vec::new();
    for (suffix, slot) in [(WAL, &kept.wal), (JOURNAL, &kept.journal)] {
        if let Some(moved) = slot
            && let Err(e) = files::move_file(moved, &format!("{db}{suffix}"), &mut |_, _| {})
        {
            failed.push(format!("could not move `{moved}` back to `{db}{suffix}` ({e}), do it by hand"));
        }
    }
    if failed.is_empty() { String::new() } else { format!("{}; ", failed.join("; ")) }
}

/// The safety copy of the live database: a hard link when the safety
/// directory is on the same file system and in the same grant (instant, and
/// the file keeps its inode, mode and owner), otherwise a fsync'd streamed
/// copy with the same permissions, written to a declared temporary file and
/// given its name only when complete, so no partial file ever carries a
/// safety copy's name. Its name is new, and so are the names its side files
/// will take.
fn keep_safety_copy(valid: &Valid, current: &FileInfo, obs: &mut dyn Observer) -> Result<String, StepError> {
    let stamp = utc_stamp(SystemTime::now());
    let cannot_keep = |e: &dyn std::fmt::Display| {
        StepError::failed(format!(
            "cannot keep a safety copy of `{}` in `{}`: {e}; nothing was changed",
            valid.db, valid.safety_dir
        ))
    };
    let no_free_name = || {
        StepError::failed(format!(
            "no free safety-copy name for `{}` in `{}`; nothing was changed",
            file_name(&valid.db),
            valid.safety_dir
        ))
    };
    let mut refused = None;
    for copy in safety_names(valid, &stamp) {
        match fs::hard_link(&valid.db, &copy) {
            Ok(()) => return Ok(copy),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(_) => {
                refused = Some(copy);
                break;
            }
        }
    }
    let Some(first) = refused else {
        return Err(no_free_name());
    };
    obs.info(format!("copying {} to {first} (a hard link is not possible there)", human(current.size)));
    let dir = if valid.safety_dir == "/" { "" } else { valid.safety_dir.as_str() };
    let temp = files::declared_temp(&format!("{dir}/{}", file_name(&valid.db)), "tmp").map_err(|e| cannot_keep(&e))?;
    files::copy_new(&valid.db, &temp, &mut |d, t| obs.progress(d, t)).map_err(|e| cannot_keep(&e))?;
    for copy in safety_names(valid, &stamp) {
        match backout_sdk::fs::rename_no_clobber(Path::new(&temp), Path::new(&copy)) {
            Ok(()) => {
                return match sync_dir(Path::new(&valid.safety_dir)) {
                    Ok(()) => Ok(copy),
                    Err(e) => {
                        let _ = fs::remove_file(&copy);
                        Err(cannot_keep(&e))
                    }
                };
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                let _ = fs::remove_file(&temp);
                return Err(cannot_keep(&e));
            }
        }
    }
    let _ = fs::remove_file(&temp);
    Err(no_free_name())
}

/// The names a safety copy taken now may get, in order, leaving out those
/// already taken by a file or by one of its side files.
fn safety_names<'a>(valid: &'a Valid, stamp: &'a str) -> impl Iterator<Item = String> + 'a {
    let name = file_name(&valid.db);
    let dir = if valid.safety_dir == "/" { "" } else { valid.safety_dir.as_str() };
    (0u32..1000)
        .map(move |attempt| {
            let suffix = if attempt == 0 { String::new() } else { format!("-{attempt}") };
            format!("{dir}/{name}.backout-{stamp}{suffix}.bak")
        })
        .filter(|copy| ["", WAL, JOURNAL].iter().all(|s| fs::symlink_metadata(format!("{copy}{s}")).is_err()))
}

fn sync_dirs(dirs: &[&str]) -> io::Result<()> {
    for (i, d) in dirs.iter().enumerate() {
        if !dirs[..i].contains(d) {
            sync_dir(Path::new(d))?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// verify

/// Checks that the restored database is in place: same size and sha256 as
/// the copy `run` restored, no `-wal` or `-journal` beside it, a sound
/// header, and `expect`. No effects.
///
/// The sha256 is what tells, after a crash, whether the restore happened: a
/// database from before the run can have the same size and pass every check.
/// It also makes the configured integrity check needless here: `run` ran it
/// on the staged copy before the swap and before its checkpoint, so a live
/// database with that sha256 is those very bytes, already checked. (On a
/// 1 GiB database the check is most of a restore's time.)
pub fn verify(valid: &Valid, outputs: &Outputs) -> Result<(), StepError> {
    same_db(valid, outputs)?;
    let live = inspect_live_any(&valid.db)?;
    let Some(file) = live.file else {
        return Err(StepError::precondition(format!("`{}` does not exist", valid.db)));
    };
    if live.sides.has_state() {
        return Err(StepError::precondition(format!(
            "{} lies beside `{}`: the database changed or is open since the restore",
            live.sides.describe(&valid.db),
            valid.db
        )));
    }
    if file.size != outputs.size {
        return Err(StepError::precondition(format!(
            "`{}` is {} bytes, but the restore wrote {}",
            valid.db, file.size, outputs.size
        )));
    }
    let found = files::sha256(&valid.db, &mut |_, _| {}).map_err(|e| cannot_read(&valid.db, &e))?;
    if found != outputs.sha256 {
        return Err(StepError::precondition(format!(
            "`{}` has sha256 `{found}`, not the `{}` of the database the restore wrote: the restore did not \
             happen, or the database changed since",
            valid.db, outputs.sha256
        )));
    }
    let head = files::read_head(&valid.db).map_err(|e| cannot_read(&valid.db, &e))?;
    header::parse(&head)
        .and_then(|h| h.check_size(file.size))
        .map_err(|m| StepError::precondition(format!("`{}` {m}", valid.db)))?;
    let conn = sqlite::open(&valid.db).map_err(|e| cannot_open(&valid.db, &e))?;
    let failed = sqlite::unmet(&sqlite::evaluate(&conn, &valid.expect));
    if failed.is_empty() {
        Ok(())
    } else {
        Err(StepError::precondition(format!("on `{}`: {}", valid.db, failed.join("; "))))
    }
}

// ---------------------------------------------------------------------------
// undo

/// Puts the safety copy (and its `-wal`/`-journal`) back, only if the live
/// database still has the sha256 `run` wrote and nothing beside it. The
/// safety copy is copied, not moved, so it stays as evidence; when `run`
/// created the database from nothing, undo removes it again.
///
/// Idempotent, since after a crash it gets `run`'s checkpoint and may run
/// again after an interrupted undo: when the live database holds the safety
/// copy's bytes (the swap never happened, or an earlier undo put it back),
/// it only puts back side files that were moved away and not yet returned,
/// and says there was nothing to undo; when there was no database before
/// the run and there is none now, likewise.
pub fn undo(valid: &Valid, outputs: Outputs, obs: &mut dyn Observer) -> Result<Outcome<Outputs>, StepError> {
    same_db(valid, &outputs)?;
    if outputs.unchanged {
        let summary = format!("nothing to undo: the run found {} already restored and changed nothing", outputs.db);
        obs.info(summary.clone());
        return Ok(Outcome::new(summary, outputs));
    }
    let db = outputs.db.clone();
    let dir = parent(&db).to_owned();
    let live = inspect_live_any(&db).map_err(nothing_restored)?;
    let Some(current) = live.file else {
        if outputs.safety_copy.is_none() {
            let summary = format!("nothing to undo: {db} does not exist, and there was no database before the run");
            obs.info(summary.clone());
            return Ok(Outcome::new(summary, outputs));
        }
        return Err(StepError::precondition(format!("`{db}` does not exist; nothing was restored")));
    };
    let found =
        files::sha256(&db, &mut |d, t| obs.progress(d, t)).map_err(|e| nothing_restored(cannot_read(&db, &e)))?;
    if found != outputs.sha256 {
        if let Some(copy) = &outputs.safety_copy
            && holds_copy(copy, current.size, &found, obs)
        {
            let put_back = put_back_moved_sides(&db, &outputs)?;
            let summary = format!(
                "nothing to undo: {db} still holds the database from before the run{}",
                if put_back.is_empty() { String::new() } else { format!("; put back {}", put_back.join(" and ")) }
            );
            obs.info(summary.clone());
            return Ok(Outcome::new(summary, outputs));
        }
        return Err(StepError::precondition(format!(
            "`{db}` changed since the restore (expected sha256 `{}`, found `{found}`); nothing was restored{}",
            outputs.sha256,
            outputs
                .safety_copy
                .as_ref()
                .map(|c| format!("; the database from before the restore is in the safety copy `{c}`"))
                .unwrap_or_default()
        )));
    }
    if live.sides.has_state() {
        return Err(StepError::precondition(format!(
            "{} lies beside `{db}`: the database changed or is open since the restore; stop the service; nothing was restored",
            live.sides.describe(&db)
        )));
    }
    let Some(copy) = outputs.safety_copy.clone() else {
        remove_restored(&db, &dir)?;
        let summary = format!("removed {db}: there was no database before the restore");
        obs.info(summary.clone());
        return Ok(Outcome::new(summary, Outputs { undone_from: Some("nothing".into()), ..outputs }));
    };
    // Every piece of the safety copy must be there before anything moves.
    let size = fs::metadata(&copy).map(|m| m.len()).map_err(|e| {
        StepError::precondition(format!("the safety copy `{copy}` cannot be read: {e}; nothing was restored"))
    })?;
    if Some(size) != outputs.safety_copy_size {
        return Err(StepError::precondition(format!(
            "the safety copy `{copy}` is {size} bytes, not the {} it had; nothing was restored",
            outputs.safety_copy_size.unwrap_or(0)
        )));
    }
    let sides: Vec<(&str, String)> = [(WAL, &outputs.safety_wal), (JOURNAL, &outputs.safety_journal)]
        .into_iter()
        .filter_map(|(s, p)| p.clone().map(|p| (s, p)))
        .collect();
    for (_, side) in &sides {
        if fs::symlink_metadata(side).is_err() {
            return Err(StepError::precondition(format!(
                "`{side}`, kept with the safety copy, is missing; nothing was restored"
            )));
        }
    }

    // Stage every file beside the database first, then rename them in: the
    // database, then its side files (a side file beside the wrong database
    // would be replayed into it).
    let mut staged: Vec<(String, String)> = Vec::new();
    let cleanup = |staged: &[(String, String)]| {
        for (t, _) in staged {
            let _ = fs::remove_file(t);
        }
    };
    for (from, to) in
        std::iter::once((copy.clone(), db.clone())).chain(sides.iter().map(|(s, p)| (p.clone(), format!("{db}{s}"))))
    {
        let copied = files::declared_temp(&to, "undo").and_then(|temp| {
            files::copy_new(&from, &temp, &mut |d, t| obs.progress(d, t)).map(|_| temp).map_err(|e| {
                io::Error::new(e.kind(), format!("cannot copy `{from}` to a temporary file beside `{to}`: {e}"))
            })
        });
        let temp = match copied {
            Ok(temp) => temp,
            Err(e) => {
                cleanup(&staged);
                return Err(StepError::failed(format!("{e}; nothing was restored")));
            }
        };
        staged.push((temp, to));
    }
    let shm = format!("{db}{SHM}");
    if let Err(e) = fs::remove_file(&shm)
        && e.kind() != io::ErrorKind::NotFound
    {
        cleanup(&staged);
        return Err(StepError::failed(format!("cannot remove `{shm}`: {e}; nothing was restored")));
    }
    for (i, (temp, to)) in staged.iter().enumerate() {
        if let Err(e) = fs::rename(temp, to) {
            cleanup(&staged[i..]);
            let done = if i == 0 {
                "nothing was restored".to_owned()
            } else {
                format!(
                    "`{db}` was restored but its side files were not: run undo again to put them back, or copy them \
                     from beside `{copy}` by hand"
                )
            };
            return Err(StepError::failed(format!("cannot rename `{temp}` to `{to}`: {e}; {done}")));
        }
    }
    sync_dir(Path::new(&dir)).map_err(|e| {
        StepError::failed(format!("restored `{db}` but cannot fsync `{dir}`: {e}; the restore may not survive a crash"))
    })?;
    let summary =
        format!("restored {db} from safety copy {copy}{}", if sides.is_empty() { "" } else { " with its side files" });
    obs.info(summary.clone());
    Ok(Outcome::new(summary, Outputs { undone_from: Some(copy), ..outputs }))
}

/// Whether the safety copy `copy` holds the bytes with sha256 `found` (the
/// live database's, `size` bytes long). A copy that cannot be read does not.
fn holds_copy(copy: &str, size: u64, found: &str, obs: &mut dyn Observer) -> bool {
    fs::metadata(copy).is_ok_and(|m| m.len() == size)
        && files::sha256(copy, &mut |d, t| obs.progress(d, t)).is_ok_and(|digest| digest == found)
}

/// When the swap never happened (or an undo was interrupted after putting
/// the database back), a `-wal` or `-journal` that `run` had already moved
/// to the safety copy's side is missing beside the database: copies each
/// back (through a declared temporary file, fsync'd, then renamed into
/// place without overwriting), leaving the safety copy whole. Returns what
/// it put back, for the summary.
fn put_back_moved_sides(db: &str, outputs: &Outputs) -> Result<Vec<String>, StepError> {
    let mut put_back = Vec::new();
    for (suffix, kept) in [(WAL, &outputs.safety_wal), (JOURNAL, &outputs.safety_journal)] {
        let Some(kept) = kept else { continue };
        let beside = format!("{db}{suffix}");
        if fs::symlink_metadata(&beside).is_ok() || fs::symlink_metadata(kept).is_err() {
            continue;
        }
        match files::copy_to_new_name(kept, &beside, &mut |_, _| {}) {
            Ok(_) => put_back.push(format!("`{beside}` from `{kept}`")),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(StepError::failed(format!(
                    "`{db}` holds the database from before the run, but `{beside}`, moved to `{kept}` by the run, \
                     cannot be put back: {e}; {}",
                    if put_back.is_empty() {
                        "nothing was changed".to_owned()
                    } else {
                        format!("put back {} only", put_back.join(" and "))
                    }
                )));
            }
        }
    }
    if !put_back.is_empty() {
        let dir = parent(db);
        sync_dir(Path::new(dir)).map_err(|e| {
            StepError::failed(format!(
                "put back {} but cannot fsync `{dir}`: {e}; it may not survive a crash",
                put_back.join(" and ")
            ))
        })?;
    }
    Ok(put_back)
}

fn remove_restored(db: &str, dir: &str) -> Result<(), StepError> {
    for path in [format!("{db}{SHM}"), db.to_owned()] {
        if let Err(e) = fs::remove_file(&path)
            && e.kind() != io::ErrorKind::NotFound
        {
            return Err(StepError::failed(format!("cannot remove `{path}`: {e}")));
        }
    }
    sync_dir(Path::new(dir)).map_err(|e| StepError::failed(format!("removed `{db}` but cannot fsync `{dir}`: {e}")))
}

// ---------------------------------------------------------------------------
// shared

/// Finds the backup (`backup`, or the newest match in `backup_dir`) and
/// checks its header and size and that no `-wal` or hot journal lies beside it.
pub fn choose_backup(valid: &Valid) -> Result<Chosen, StepError> {
    let (file, why) = match &valid.source {
        Source::File(path) => (files::stat(path).map_err(|e| missing_backup(path, &e))?, None),
        Source::Latest { dir, pattern } => {
            let found = files::candidates(dir, pattern.as_deref(), &valid.db).map_err(|e| {
                StepError::precondition(format!(
                    "cannot list `{dir}`: {e}; it must be a directory inside a granted directory"
                ))
            })?;
            let matching = match pattern {
                Some(p) => format!("matching `{p}`"),
                None => "".to_owned(),
            };
            let Some(newest) = files::newest(&found).cloned() else {
                return Err(StepError::precondition(format!(
                    "no backup{} in `{dir}`{}",
                    if matching.is_empty() { String::new() } else { format!(" {matching}") },
                    if pattern.is_some() {
                        ""
                    } else {
                        " (hidden files, -wal/-shm/-journal files and safety copies are never picked)"
                    }
                )));
            };
            let why = format!(
                "the newest of {}{} in {dir}",
                backout_sdk::text::count(found.len(), "file"),
                if matching.is_empty() { String::new() } else { format!(" {matching}") }
            );
            (newest, Some(why))
        }
    };
    let head = files::read_head(&file.path).map_err(|e| missing_backup(&file.path, &e))?;
    let header = header::parse(&head)
        .and_then(|h| h.check_size(file.size).map(|_| h))
        .map_err(|m| refuse_backup(&file.path, &m))?;
    let sides = files::sides(&file.path).map_err(|e| missing_backup(&file.path, &e))?;
    if sides.wal.is_some_and(|n| n > 0) || sides.journal.is_some_and(|(_, hot)| hot) {
        return Err(StepError::precondition(format!(
            "{} lies beside the backup: it holds changes that are not in `{}`; make a self-contained backup \
             (`sqlite3 live.db \".backup out.db\"`, or checkpoint it); nothing was changed",
            sides.describe(&file.path),
            file.path
        )));
    }
    Ok(Chosen { file, header, why })
}

/// Looks at the live database and refuses what `run` must not touch: a
/// symbolic link or non-file, and (without `allow_wal`) a `-wal` or `-journal`.
pub fn inspect_live(valid: &Valid) -> Result<Live, StepError> {
    if !fs::metadata(&valid.safety_dir).is_ok_and(|m| m.is_dir()) {
        return Err(StepError::precondition(format!(
            "the safety directory `{}` does not exist, or is not inside a directory granted to this step",
            valid.safety_dir
        )));
    }
    let live = inspect_live_any(&valid.db)?;
    if live.sides.has_state() && !valid.allow_wal {
        let what = if live.file.is_none() {
            format!("{} lies where no database is", live.sides.describe(&valid.db))
        } else {
            format!("{} lies beside the live database", live.sides.describe(&valid.db))
        };
        return Err(StepError::precondition(format!(
            "{what}: it may hold committed changes, or a service may still have the database open, and WASI \
             has no file locks to tell; stop the service first, then set `allow_wal = true` to keep it with the \
             safety copy; nothing was changed"
        )));
    }
    if live.sides.has_state() && live.file.is_none() {
        return Err(StepError::precondition(format!(
            "{} lies where no database is; remove it by hand if it is stale; nothing was changed",
            live.sides.describe(&valid.db)
        )));
    }
    Ok(live)
}

fn inspect_live_any(db: &str) -> Result<Live, StepError> {
    let file = match fs::symlink_metadata(db) {
        Ok(m) if m.file_type().is_symlink() => {
            return Err(StepError::precondition(format!(
                "`{db}` is a symbolic link; replacing it would replace the link, so set `db` to the file it points to"
            )));
        }
        Ok(m) if !m.is_file() => return Err(StepError::precondition(format!("`{db}` is not a regular file"))),
        Ok(m) => Some(FileInfo { path: db.to_owned(), size: m.len(), modified: m.modified().ok() }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if fs::metadata(parent(db)).is_err() {
                return Err(StepError::precondition(format!(
                    "the directory of `{db}` does not exist, or is not inside a directory granted to this step"
                )));
            }
            None
        }
        Err(e) => return Err(cannot_read(db, &e)),
    };
    let sides = files::sides(db).map_err(|e| cannot_read(db, &e))?;
    Ok(Live { file, sides })
}

fn same_db(valid: &Valid, outputs: &Outputs) -> Result<(), StepError> {
    if valid.db == outputs.db {
        return Ok(());
    }
    Err(StepError::invalid_config_at(
        "/db",
        format!(
            "the run's outputs are for `{}` but the config names `{}`; use the config the run used",
            outputs.db, valid.db
        ),
    ))
}

fn refuse_backup(backup: &str, problem: &str) -> StepError {
    StepError::precondition(format!("the backup `{backup}` {problem}; nothing was changed"))
}

fn missing_backup(path: &str, e: &io::Error) -> StepError {
    StepError::precondition(format!(
        "cannot read the backup `{path}`: {e}; it must be a regular file inside a granted directory"
    ))
}

fn cannot_read(path: &str, e: &io::Error) -> StepError {
    StepError::precondition(format!("cannot read `{path}`: {e}"))
}

fn cannot_open(path: &str, e: &str) -> StepError {
    StepError::precondition(format!("SQLite cannot open `{path}`: {e}"))
}

fn nothing_restored(e: StepError) -> StepError {
    match e {
        StepError::Precondition(m) => StepError::Precondition(format!("{m}; nothing was restored")),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    //! The flow natively, on real temp files (the end-to-end tests run the
    //! same code as a component through the host).
    use super::*;
    use crate::config::{Check, Expectation};
    use backout_sdk::checkpoint;
    use backout_sdk::fs::temporary_file;
    use rusqlite::Connection;
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::rc::Rc;

    struct Dir {
        _tmp: tempfile::TempDir,
        root: String,
    }

    impl Dir {
        fn new() -> Self {
            let tmp = tempfile::tempdir().unwrap();
            let root = tmp.path().to_string_lossy().into_owned();
            fs::create_dir(format!("{root}/data")).unwrap();
            fs::create_dir(format!("{root}/backups")).unwrap();
            Self { _tmp: tmp, root }
        }
        fn p(&self, rel: &str) -> String {
            format!("{}/{rel}", self.root)
        }
        fn valid(&self) -> Valid {
            Valid {
                db: self.p("data/app.db"),
                source: Source::File(self.p("backups/app.db")),
                safety_dir: self.p("data"),
                check: Check::Full,
                expect: vec![],
                allow_wal: false,
            }
        }
    }

    fn make_db(path: &str, rows: i64) {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch("CREATE TABLE t(x INTEGER PRIMARY KEY, y TEXT)").unwrap();
        for i in 0..rows {
            conn.execute("INSERT INTO t(y) VALUES (?1)", [format!("row {i}")]).unwrap();
        }
    }

    fn listing(dir: &str) -> Vec<String> {
        let mut names: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    /// A live WAL-mode database with committed rows still only in its
    /// `-wal`, as a service stopped hard leaves it: the connection that wrote
    /// them stays open while they are copied, so nothing checkpoints.
    fn make_wal_db(live: &str, in_main: i64, in_wal: i64) {
        let scratch = format!("{}/scratch.db", parent(live));
        let conn = Connection::open(&scratch).unwrap();
        conn.pragma_update(None, "journal_mode", "wal").unwrap();
        conn.execute_batch("CREATE TABLE t(x INTEGER PRIMARY KEY, y TEXT)").unwrap();
        for i in 0..in_main {
            conn.execute("INSERT INTO t(y) VALUES (?1)", [format!("row {i}")]).unwrap();
        }
        conn.pragma_update(None, "wal_checkpoint", "TRUNCATE").unwrap();
        conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        for i in 0..in_wal {
            conn.execute("INSERT INTO t(y) VALUES (?1)", [format!("wal row {i}")]).unwrap();
        }
        fs::copy(&scratch, live).unwrap();
        fs::copy(format!("{scratch}{WAL}"), format!("{live}{WAL}")).unwrap();
        drop(conn);
        for suffix in ["", WAL, SHM] {
            let _ = fs::remove_file(format!("{scratch}{suffix}"));
        }
    }

    /// Whether a name is one of the step's safety copies or their side files.
    fn is_safety_copy(name: &str) -> bool {
        name.contains(".backout-") && [".bak", ".bak-wal", ".bak-journal"].iter().any(|s| name.ends_with(s))
    }

    /// Every file in `dir` with its bytes, leaving out the step's own files
    /// (safety copies, temporaries): what must be as before the run or as
    /// after it, whatever happened.
    fn contents(dir: &str) -> BTreeMap<String, Vec<u8>> {
        listing(dir)
            .into_iter()
            .filter(|n| !n.contains(".backout-"))
            .map(|n| {
                let bytes = fs::read(format!("{dir}/{n}")).unwrap();
                (n, bytes)
            })
            .collect()
    }

    /// The step's files in `dir` that are not safety copies: temporaries a
    /// call left behind.
    fn debris(dir: &str) -> Vec<String> {
        listing(dir).into_iter().filter(|n| n.contains(".backout-") && !is_safety_copy(n)).collect()
    }

    /// What the host does for a call that never returned: removes the
    /// temporary files it declared.
    fn remove_declared_temporaries() {
        for temp in temporary_file::declared() {
            let _ = fs::remove_file(temp);
        }
        temporary_file::clear();
    }

    /// Runs `run` as if backout were killed right after the host journaled
    /// the checkpoint, then cleans up as the host would. Returns the
    /// checkpointed outputs; the files are as the crash left them.
    fn run_killed_after_the_checkpoint(valid: &Valid) -> Outputs {
        checkpoint::clear();
        temporary_file::clear();
        let seen = Rc::new(RefCell::new(None));
        let keep = Rc::clone(&seen);
        checkpoint::set_hook(move |outputs| {
            *keep.borrow_mut() = Some(outputs.clone());
            panic!("backout is killed right after the checkpoint");
        });
        let crashed = catch_unwind(AssertUnwindSafe(|| run(valid, &mut Quiet)));
        assert!(crashed.is_err(), "run went on past the checkpoint");
        checkpoint::clear();
        remove_declared_temporaries();
        let value = seen.borrow_mut().take().expect("run recorded a checkpoint");
        serde_json::from_value(value).expect("the checkpoint reads as outputs")
    }

    #[test]
    fn run_checkpoints_the_outputs_it_returns_before_the_wal_moves_or_the_swap() {
        let d = Dir::new();
        make_wal_db(&d.p("data/app.db"), 10, 5);
        make_db(&d.p("backups/app.db"), 40);
        let mut valid = d.valid();
        valid.allow_wal = true;
        let before = contents(&d.p("data"));
        let original = fs::read(&valid.db).unwrap();
        checkpoint::clear();
        temporary_file::clear();
        let dir = d.p("data");
        let at_checkpoint = before.clone();
        checkpoint::set_hook(move |outputs| {
            assert_eq!(contents(&dir), at_checkpoint, "a file changed before the checkpoint");
            let copy = outputs["safety_copy"].as_str().expect("the checkpoint names the safety copy");
            assert_eq!(fs::read(copy).unwrap(), original, "the safety copy is complete at the checkpoint");
            assert_eq!(outputs["safety_wal"], format!("{copy}{WAL}"), "the name the -wal is about to get");
            Ok(())
        });
        let outcome = run(&valid, &mut Quiet).unwrap();
        let returned = outcome.outputs;
        assert_eq!(
            checkpoint::recorded(),
            [serde_json::to_value(Outputs { expect: vec![], ..returned.clone() }).unwrap()]
        );
        checkpoint::clear();
        let declared: Vec<String> =
            temporary_file::declared().iter().map(|p| p.to_string_lossy().into_owned()).collect();
        assert!(declared.iter().any(|p| p.contains("/.app.db.backout-restore-")), "{declared:?}");
        assert!(debris(&d.p("data")).is_empty(), "{:?}", listing(&d.p("data")));
    }

    #[test]
    fn undo_after_a_crash_at_the_checkpoint_changes_nothing_and_succeeds_every_time() {
        let d = Dir::new();
        make_wal_db(&d.p("data/app.db"), 10, 5);
        make_db(&d.p("backups/app.db"), 40);
        let mut valid = d.valid();
        valid.allow_wal = true;
        let before = contents(&d.p("data"));
        let o = run_killed_after_the_checkpoint(&valid);
        assert_eq!(contents(&d.p("data")), before, "the crash came before any change");
        for _ in 0..2 {
            let undone = undo(&valid, o.clone(), &mut Quiet).unwrap();
            assert_eq!(
                undone.summary,
                format!("nothing to undo: {} still holds the database from before the run", valid.db)
            );
            assert_eq!(undone.outputs.undone_from, None);
            assert_eq!(contents(&d.p("data")), before);
        }
        assert!(debris(&d.p("data")).is_empty(), "{:?}", listing(&d.p("data")));
    }

    #[test]
    fn undo_after_a_crash_between_moving_the_wal_and_the_swap_puts_the_wal_back() {
        let d = Dir::new();
        make_wal_db(&d.p("data/app.db"), 10, 5);
        make_db(&d.p("backups/app.db"), 40);
        let mut valid = d.valid();
        valid.allow_wal = true;
        let before = contents(&d.p("data"));
        let o = run_killed_after_the_checkpoint(&valid);
        // Where the next crash point leaves the files: the -wal moved, no swap.
        let kept_wal = o.safety_wal.clone().expect("the checkpoint names the -wal's new place");
        fs::rename(format!("{}{WAL}", valid.db), &kept_wal).unwrap();
        assert!(verify(&valid, &o).is_err(), "the restore did not happen");

        let undone = undo(&valid, o.clone(), &mut Quiet).unwrap();
        assert!(undone.summary.starts_with("nothing to undo"), "{}", undone.summary);
        assert!(undone.summary.contains(&format!("put back `{}{WAL}`", valid.db)), "{}", undone.summary);
        assert_eq!(contents(&d.p("data")), before);
        assert!(Path::new(&kept_wal).exists(), "the safety copy keeps its -wal");
        let again = undo(&valid, o, &mut Quiet).unwrap();
        assert!(!again.summary.contains("put back"), "{}", again.summary);
        assert_eq!(contents(&d.p("data")), before);
        assert!(debris(&d.p("data")).is_empty(), "{:?}", listing(&d.p("data")));
    }

    #[test]
    fn undo_after_a_crash_in_the_middle_of_an_undo_puts_the_side_files_back() {
        let d = Dir::new();
        make_wal_db(&d.p("data/app.db"), 10, 5);
        make_db(&d.p("backups/app.db"), 40);
        let mut valid = d.valid();
        valid.allow_wal = true;
        let before = contents(&d.p("data"));
        let o = run(&valid, &mut Quiet).unwrap().outputs;
        // An undo killed after renaming the database back, before its -wal.
        let copy = o.safety_copy.clone().unwrap();
        fs::write(&valid.db, fs::read(&copy).unwrap()).unwrap();
        assert!(!Path::new(&format!("{}{WAL}", valid.db)).exists());

        let undone = undo(&valid, o, &mut Quiet).unwrap();
        assert!(undone.summary.contains("put back"), "{}", undone.summary);
        assert_eq!(contents(&d.p("data")), before);
        assert!(debris(&d.p("data")).is_empty(), "{:?}", listing(&d.p("data")));
    }

    #[test]
    fn a_database_that_already_holds_the_backup_is_left_as_it_is_and_undo_keeps_it() {
        let d = Dir::new();
        make_db(&d.p("backups/app.db"), 30);
        fs::copy(d.p("backups/app.db"), d.p("data/app.db")).unwrap();
        let mut valid = d.valid();
        valid.expect =
            vec![Expectation { sql: "SELECT count(*) FROM t".into(), min: Some(30.0), max: None, equals: None }];
        let before = listing(&d.p("data"));
        let bytes = fs::read(&valid.db).unwrap();

        let actions = plan(&valid).unwrap();
        use backout_sdk::Effect::{Check, InPlace};
        let effects: Vec<_> = actions.iter().map(|a| a.effect).collect();
        assert_eq!(effects, [InPlace, Check, Check], "{actions:?}");
        assert!(actions[0].summary.starts_with(&format!("leave {} as it is", valid.db)), "{actions:?}");

        let outcome = run(&valid, &mut Quiet).unwrap();
        assert!(outcome.summary.starts_with("no change needed"), "{}", outcome.summary);
        assert!(outcome.outputs.unchanged && outcome.outputs.safety_copy.is_none(), "{:?}", outcome.outputs);
        assert_eq!(outcome.outputs.expect.len(), 1);
        assert_eq!(listing(&d.p("data")), before, "no safety copy, no temporary");
        assert!(temporary_file::declared().is_empty());
        verify(&valid, &outcome.outputs).unwrap();

        let undone = undo(&valid, outcome.outputs, &mut Quiet).unwrap();
        assert!(undone.summary.starts_with("nothing to undo"), "{}", undone.summary);
        assert_eq!(fs::read(&valid.db).unwrap(), bytes, "undo of a run that changed nothing keeps the database");
        assert_eq!(listing(&d.p("data")), before);
    }

    #[test]
    fn a_database_in_place_that_fails_the_check_is_refused_and_left_alone() {
        let d = Dir::new();
        make_db(&d.p("backups/app.db"), 300);
        // Scribble over a b-tree page after the header page: still a
        // database by its header, no longer an intact one.
        let mut bytes = fs::read(d.p("backups/app.db")).unwrap();
        assert!(bytes.len() > 3 * 4096, "{}", bytes.len());
        bytes[2 * 4096..2 * 4096 + 64].fill(0xA5);
        fs::write(d.p("backups/app.db"), &bytes).unwrap();
        fs::write(d.p("data/app.db"), &bytes).unwrap();
        let valid = d.valid();
        let before = contents(&d.p("data"));
        assert_eq!(plan(&valid).unwrap()[0].effect, backout_sdk::Effect::InPlace, "plan does not run the check");
        let err = run(&valid, &mut Quiet).unwrap_err();
        let StepError::Precondition(message) = &err else { panic!("{err:?}") };
        assert!(
            message.contains("already holds the bytes of the backup") && message.contains("nothing was changed"),
            "{message}"
        );
        assert_eq!(contents(&d.p("data")), before);
        assert_eq!(listing(&d.p("data")), ["app.db"]);
    }

    /// A backup, and a live database of its size whose bytes differ in one row.
    fn same_size_other_bytes() -> Dir {
        let d = Dir::new();
        make_db(&d.p("backups/app.db"), 30);
        fs::copy(d.p("backups/app.db"), d.p("data/app.db")).unwrap();
        let conn = Connection::open(d.p("data/app.db")).unwrap();
        conn.execute("UPDATE t SET y = 'ROW 7' WHERE y = 'row 7'", []).unwrap();
        d
    }

    #[test]
    fn a_database_of_the_same_size_with_other_bytes_is_restored() {
        let d = same_size_other_bytes();
        let valid = d.valid();
        let actions = plan(&valid).unwrap();
        assert_eq!(actions[0].effect, backout_sdk::Effect::Change, "{actions:?}");
        let outcome = run(&valid, &mut Quiet).unwrap();
        assert!(!outcome.outputs.unchanged && outcome.outputs.safety_copy.is_some(), "{:?}", outcome.outputs);
        temporary_file::clear();
    }

    #[test]
    fn undo_twice_restores_once_then_has_nothing_to_undo() {
        let d = Dir::new();
        make_wal_db(&d.p("data/app.db"), 10, 5);
        make_db(&d.p("backups/app.db"), 40);
        let mut valid = d.valid();
        valid.allow_wal = true;
        let before = contents(&d.p("data"));
        let o = run(&valid, &mut Quiet).unwrap().outputs;
        temporary_file::clear();
        let first = undo(&valid, o.clone(), &mut Quiet).unwrap();
        assert!(first.summary.starts_with("restored"), "{}", first.summary);
        assert_eq!(contents(&d.p("data")), before);
        let declared: Vec<String> =
            temporary_file::declared().iter().map(|p| p.to_string_lossy().into_owned()).collect();
        assert_eq!(declared.iter().filter(|p| p.contains(".backout-undo-")).count(), 2, "{declared:?}");
        let second = undo(&valid, o, &mut Quiet).unwrap();
        assert!(second.summary.starts_with("nothing to undo"), "{}", second.summary);
        assert_eq!(contents(&d.p("data")), before);
        assert!(debris(&d.p("data")).is_empty(), "{:?}", listing(&d.p("data")));
    }

    #[test]
    fn verify_fails_on_a_database_from_before_the_run_of_the_same_size() {
        let d = same_size_other_bytes();
        let valid = d.valid();
        assert_eq!(fs::metadata(&valid.db).unwrap().len(), fs::metadata(d.p("backups/app.db")).unwrap().len());
        let o = run_killed_after_the_checkpoint(&valid);
        let err = verify(&valid, &o).unwrap_err();
        assert!(matches!(err, StepError::Precondition(_)), "{err:?}");
        assert!(err.message().contains("the restore did not happen"), "{err}");
    }

    #[test]
    fn a_fresh_restore_checkpoints_before_creating_the_database() {
        let d = Dir::new();
        make_db(&d.p("backups/app.db"), 10);
        let valid = d.valid();
        let o = run_killed_after_the_checkpoint(&valid);
        assert_eq!(o.safety_copy, None);
        assert!(listing(&d.p("data")).is_empty(), "nothing is left of the crashed run");
        assert!(verify(&valid, &o).unwrap_err().message().contains("does not exist"));
        for _ in 0..2 {
            let undone = undo(&valid, o.clone(), &mut Quiet).unwrap();
            assert!(undone.summary.starts_with("nothing to undo"), "{}", undone.summary);
        }
        // Killed after the rename: undo removes what the run created.
        let o = run(&valid, &mut Quiet).unwrap().outputs;
        undo(&valid, o.clone(), &mut Quiet).unwrap();
        assert!(listing(&d.p("data")).is_empty());
        assert!(undo(&valid, o, &mut Quiet).unwrap().summary.starts_with("nothing to undo"));
    }

    /// The permission bits of a file, in octal as `ls -l` thinks of them.
    fn octal_mode(path: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        format!("{:o}", fs::metadata(path).unwrap().permissions().mode() & 0o777)
    }

    fn set_mode(path: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    /// At every progress report, the mode of each declared temporary file
    /// whose name holds `tag` (`backout-restore-`: the staged copy;
    /// `backout-undo-`: what undo puts back) and that exists: what other
    /// users may do with it while bytes go in.
    struct TempModes {
        tag: &'static str,
        seen: Vec<String>,
    }

    impl TempModes {
        fn of(tag: &'static str) -> Self {
            temporary_file::clear();
            Self { tag, seen: Vec::new() }
        }
    }

    impl Observer for TempModes {
        fn info(&mut self, _: String) {}
        fn progress(&mut self, _: u64, _: u64) {
            for temp in temporary_file::declared() {
                let temp = temp.to_string_lossy();
                if temp.contains(self.tag) && Path::new(&*temp).exists() {
                    self.seen.push(octal_mode(&temp));
                }
            }
        }
    }

    #[test]
    fn the_staged_copy_has_the_live_databases_mode_from_its_first_chunk_on() {
        let d = Dir::new();
        make_db(&d.p("data/app.db"), 3);
        make_db(&d.p("backups/app.db"), 10);
        set_mode(&d.p("data/app.db"), 0o600);
        set_mode(&d.p("backups/app.db"), 0o644);
        let mut staged = TempModes::of(".backout-restore-");
        run(&d.valid(), &mut staged).unwrap();
        assert!(!staged.seen.is_empty(), "staging reports progress");
        assert!(staged.seen.iter().all(|m| m == "600"), "the staged copy's mode at each chunk: {:?}", staged.seen);
        assert_eq!(octal_mode(&d.p("data/app.db")), "600");
    }

    #[test]
    fn a_fresh_restore_stages_with_the_backups_mode_and_keeps_it() {
        let d = Dir::new();
        make_db(&d.p("backups/app.db"), 10);
        set_mode(&d.p("backups/app.db"), 0o600);
        let mut staged = TempModes::of(".backout-restore-");
        run(&d.valid(), &mut staged).unwrap();
        assert!(!staged.seen.is_empty(), "staging reports progress");
        assert!(staged.seen.iter().all(|m| m == "600"), "the staged copy's mode at each chunk: {:?}", staged.seen);
        assert_eq!(octal_mode(&d.p("data/app.db")), "600", "no live database: the backup's mode");
    }

    #[test]
    fn undo_puts_back_a_copy_that_has_the_safety_copys_mode_from_its_first_chunk_on() {
        let d = Dir::new();
        make_db(&d.p("data/app.db"), 3);
        make_db(&d.p("backups/app.db"), 10);
        set_mode(&d.p("data/app.db"), 0o600);
        let valid = d.valid();
        let o = run(&valid, &mut Quiet).unwrap().outputs;
        set_mode(&valid.db, 0o644); // what run left is readable; what undo puts back must not be
        let mut seen = TempModes::of(".backout-undo-");
        undo(&valid, o, &mut seen).unwrap();
        assert!(!seen.seen.is_empty(), "undo reports progress while it copies");
        assert!(seen.seen.iter().all(|m| m == "600"), "the copy's mode at each chunk: {:?}", seen.seen);
        assert_eq!(octal_mode(&valid.db), "600");
    }

    #[test]
    fn a_failed_checkpoint_changes_nothing_and_leaves_no_file_behind() {
        let d = Dir::new();
        make_wal_db(&d.p("data/app.db"), 10, 5);
        make_db(&d.p("backups/app.db"), 40);
        let mut valid = d.valid();
        valid.allow_wal = true;
        let before = listing(&d.p("data"));
        let contents_before = contents(&d.p("data"));
        checkpoint::clear();
        checkpoint::set_hook(|_| Err("the journal's disk is full".to_owned()));
        let err = run(&valid, &mut Quiet).unwrap_err();
        checkpoint::clear();
        assert!(matches!(err, StepError::Failed(_)), "{err:?}");
        assert!(err.message().contains("the journal's disk is full; nothing was changed"), "{err}");
        assert_eq!(listing(&d.p("data")), before, "no safety copy, no temporary file");
        assert_eq!(contents(&d.p("data")), contents_before);
    }

    #[test]
    fn refusals_while_staging_leave_no_temporary_file() {
        let d = Dir::new();
        make_db(&d.p("data/app.db"), 3);
        make_db(&d.p("backups/app.db"), 10);
        let mut valid = d.valid();

        // Refused while staging: the staged copy is removed.
        valid.expect =
            vec![Expectation { sql: "SELECT count(*) FROM nope".into(), min: None, max: None, equals: None }];
        let err = run(&valid, &mut Quiet).unwrap_err();
        assert!(err.message().contains("nothing was changed"), "{err}");
        assert_eq!(listing(&d.p("data")), ["app.db"]);

        // An expectation the backup does not meet: refused while staging too,
        // before any safety copy or swap.
        valid.expect =
            vec![Expectation { sql: "SELECT count(*) FROM t".into(), min: Some(1000.0), max: None, equals: None }];
        let err = run(&valid, &mut Quiet).unwrap_err();
        assert!(matches!(err, StepError::Precondition(_)), "{err:?}");
        assert!(err.message().contains("does not meet `expect`: `SELECT count(*) FROM t` returned 10"), "{err}");
        assert!(err.message().ends_with("nothing was changed"), "{err}");
        assert_eq!(listing(&d.p("data")), ["app.db"], "no safety copy, no temporary file");
    }

    #[test]
    fn run_then_undo_round_trips_and_logs_each_stage() {
        let d = Dir::new();
        make_db(&d.p("data/app.db"), 2);
        make_db(&d.p("backups/app.db"), 50);
        let original = fs::read(d.p("data/app.db")).unwrap();
        let mut valid = d.valid();
        valid.expect =
            vec![Expectation { sql: "SELECT count(*) FROM t".into(), min: Some(50.0), max: None, equals: None }];

        #[derive(Default)]
        struct Seen(Vec<String>, u64);
        impl Observer for Seen {
            fn info(&mut self, line: String) {
                self.0.push(line);
            }
            fn progress(&mut self, done: u64, _: u64) {
                self.1 = done;
            }
        }
        let mut seen = Seen::default();
        let outcome = run(&valid, &mut seen).unwrap();
        let o = outcome.outputs;
        assert_eq!(fs::read(&valid.db).unwrap(), fs::read(d.p("backups/app.db")).unwrap());
        assert_eq!(seen.1, o.size, "progress reached the whole file");
        for part in ["restoring", "integrity_check: ok", "kept the previous database", "replaced", "expect"] {
            assert!(seen.0.iter().any(|l| l.contains(part)), "{part}: {:?}", seen.0);
        }
        verify(&valid, &o).unwrap();
        assert_eq!(listing(&d.p("data")).len(), 2, "the database and its safety copy, no temp file");

        let undone = undo(&valid, o.clone(), &mut Quiet).unwrap();
        assert_eq!(undone.outputs.undone_from, o.safety_copy);
        assert_eq!(fs::read(&valid.db).unwrap(), original);
        assert!(verify(&valid, &o).is_err(), "verify fails once undone");
    }

    #[test]
    fn a_backup_with_its_own_wal_is_refused() {
        let d = Dir::new();
        make_db(&d.p("backups/app.db"), 3);
        fs::write(d.p("backups/app.db-wal"), b"frames").unwrap();
        let err = run(&d.valid(), &mut Quiet).unwrap_err();
        assert!(err.message().contains("lies beside the backup"), "{err}");
        assert!(listing(&d.p("data")).is_empty());
    }

    #[test]
    fn a_wal_without_a_database_is_refused_even_with_allow_wal() {
        let d = Dir::new();
        make_db(&d.p("backups/app.db"), 3);
        fs::write(d.p("data/app.db-wal"), b"frames").unwrap();
        let mut valid = d.valid();
        assert!(plan(&valid).unwrap_err().message().contains("allow_wal = true"));
        valid.allow_wal = true;
        assert!(plan(&valid).unwrap_err().message().contains("lies where no database is"));
    }

    #[test]
    fn a_symlinked_database_is_refused() {
        let d = Dir::new();
        make_db(&d.p("backups/app.db"), 3);
        make_db(&d.p("data/real.db"), 3);
        std::os::unix::fs::symlink(d.p("data/real.db"), d.p("data/app.db")).unwrap();
        assert!(run(&d.valid(), &mut Quiet).unwrap_err().message().contains("symbolic link"));
    }

    #[test]
    fn verify_and_undo_notice_changes() {
        let d = Dir::new();
        make_db(&d.p("data/app.db"), 2);
        make_db(&d.p("backups/app.db"), 5);
        let valid = d.valid();
        let o = run(&valid, &mut Quiet).unwrap().outputs;
        fs::write(format!("{}-journal", valid.db), b"").unwrap();
        assert!(verify(&valid, &o).unwrap_err().message().contains("-journal"));
        assert!(undo(&valid, o.clone(), &mut Quiet).unwrap_err().message().contains("nothing was restored"));
        fs::remove_file(format!("{}-journal", valid.db)).unwrap();
        fs::remove_file(o.safety_copy.as_ref().unwrap()).unwrap();
        let err = undo(&valid, o, &mut Quiet).unwrap_err();
        assert!(err.message().contains("cannot be read") && err.message().contains("nothing was restored"), "{err}");
    }

    #[test]
    fn outputs_of_another_database_are_refused() {
        let d = Dir::new();
        make_db(&d.p("backups/app.db"), 5);
        let valid = d.valid();
        let o = run(&valid, &mut Quiet).unwrap().outputs;
        let other = Valid { db: d.p("data/other.db"), ..valid };
        assert!(matches!(verify(&other, &o), Err(StepError::InvalidConfig(_))));
    }
}
