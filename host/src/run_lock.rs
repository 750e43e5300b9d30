//! One run at a time: locks per runbook and per read-write directory.
//!
//! `backout run`, `backout resume RUN` and `backout undo RUN` change host
//! files. Two of them working on the same runbook, or on overlapping
//! read-write directories, would undo each other's work and leave journals
//! that no longer describe the files. So each takes a lock before its first
//! step and keeps it until it ends.
//!
//! The model is Terraform's state lock, built so that a crash never leaves a
//! trap behind (Helm's stuck "another operation is in progress", StackStorm's
//! executions stuck "running"):
//!
//! - a lock is a file, `<locks dir>/<run id>.lock` (JSON, `format: 1`, mode
//!   0600, written atomically), naming its [`Holder`] (run id, pid, host, start
//!   time, command) and its [`Resources`] (the runbook and the read-write
//!   directories, canonical);
//! - a lock whose process is gone is *stale*: it is reported as such, naming the
//!   run that holds it, and broken only on request ([`Takeover::ForceUnlock`]),
//!   or taken over by a resume or undo of that very run ([`Takeover::OwnRun`]).
//!   Whatever is broken is returned ([`Broken`]) so the caller can journal it;
//! - a lock held on another host cannot be checked, so it counts as held; only
//!   `--force-unlock` breaks it;
//! - a lock file that cannot be read is an error naming the file, never
//!   ignored and never deleted: it might be the only record of a running run.
//!
//! Acquiring is serialized by an exclusive OS lock ([`File::lock`]) on
//! `<locks dir>/.guard`, held only while lock files are read, written and
//! removed. The OS releases it when the process dies, so the guard itself can
//! never be stale.
//!
//! A process is identified by its pid *and* its start time (field 22 of
//! `/proc/<pid>/stat`) and the boot it belongs to, so a pid reused by an
//! unrelated process, or after a reboot, does not keep a stale lock alive.
//!
//! Locks coordinate the runs that share a state directory (one per user by
//! default): a run started by another user, with another state directory, is
//! not seen.

use std::fmt;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// The lock file format version (`"format": 1`).
pub const FORMAT_VERSION: u32 = 1;

/// The file whose OS lock serializes acquiring and releasing.
const GUARD_FILE: &str = ".guard";
/// Lock files are `<run id>` followed by this.
const LOCK_SUFFIX: &str = ".lock";
/// A lock file is a few hundred bytes; anything larger is not one of ours.
const MAX_LOCK_FILE_BYTES: u64 = 1 << 20;
/// Leaves room for `.` + `.lock.tmp.<pid>.<n>` in a 255-byte file name.
const MAX_RUN_ID_BYTES: usize = 128;

/// Who holds a lock: written into the lock file when it is taken, shown when
/// another run is refused, journaled when the lock is broken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub run_id: String,
    pub pid: u32,
    /// The host name (`/proc/sys/kernel/hostname`); empty if it could not be read.
    pub host: String,
    /// When the lock was taken, RFC 3339 UTC (`2026-12-04T21:12:28Z`).
    pub started: String,
    /// The backout command: `run`, `resume` or `undo`.
    pub command: String,
    /// The process's start time in clock ticks since boot (field 22 of
    /// `/proc/<pid>/stat`), which tells a reused pid from the holder.
    #[serde(default)]
    pub process_start: Option<u64>,
    /// `/proc/sys/kernel/random/boot_id`: a start time only means something
    /// within one boot.
    #[serde(default)]
    pub boot_id: Option<String>,
}

impl Holder {
    /// The current process, about to lock `run_id` for `command`. Called once
    /// per command, just before [`RunLock::acquire`]; reads `/proc` and the clock.
    pub fn current(run_id: &str, command: &str) -> Holder {
        let own = fs::read_to_string("/proc/self/stat").ok().and_then(|stat| parse_stat(&stat));
        Holder {
            run_id: run_id.to_owned(),
            pid: std::process::id(),
            host: hostname().unwrap_or_default(),
            started: backout_registry::utc_timestamp(SystemTime::now()),
            command: command.to_owned(),
            process_start: own.map(|stat| stat.start_time),
            boot_id: boot_id(),
        }
    }
}

impl fmt::Display for Holder {
    /// `run `ID` (backout undo, pid 4242 on host `db1`, since 2026-12-04T21:12:28Z)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "run `{}` ({})", self.run_id, HolderDetails(self))
    }
}

/// The parenthesized part of a holder's description.
struct HolderDetails<'a>(&'a Holder);

impl fmt::Display for HolderDetails<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = self.0;
        write!(f, "backout {}, pid {} on host `{}`, since {}", h.command, h.pid, h.host, h.started)
    }
}

/// Whether a lock's holder is still running, as far as this host can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Liveness {
    /// Same host, and the process with that pid and start time exists.
    Alive,
    /// Same host, and the process is gone (no such pid, the pid now belongs to
    /// another process, it is a zombie, or the host rebooted): the lock is stale.
    Dead,
    /// Held on another host (or this host's name cannot be read): it cannot be
    /// checked, so it counts as held.
    OtherHost,
}

impl fmt::Display for Liveness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Liveness::Alive => "running",
            Liveness::Dead => "interrupted",
            Liveness::OtherHost => "on another host",
        })
    }
}

/// Whether `holder`'s process is still running. Reads `/proc`; called for
/// every lock file each time locks are acquired or listed. When in doubt (a
/// process whose `/proc` entry exists but cannot be read) it says
/// [`Liveness::Alive`]: a live run must never be reported as stale.
pub fn liveness(holder: &Holder) -> Liveness {
    judge(holder, hostname().as_deref(), boot_id().as_deref(), fs::read_to_string(format!("/proc/{}/stat", holder.pid)))
}

/// [`liveness`] from what was read: this host's name and boot id, and the
/// holder pid's `/proc/<pid>/stat`.
fn judge(holder: &Holder, host: Option<&str>, boot_id: Option<&str>, stat: io::Result<String>) -> Liveness {
    match host {
        Some(host) if !host.is_empty() && host == holder.host => {}
        _ => return Liveness::OtherHost,
    }
    if let (Some(theirs), Some(ours)) = (holder.boot_id.as_deref(), boot_id)
        && theirs != ours
    {
        return Liveness::Dead;
    }
    let stat = match stat {
        Ok(stat) => stat,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Liveness::Dead,
        Err(_) => return Liveness::Alive,
    };
    let Some(stat) = parse_stat(&stat) else { return Liveness::Alive };
    if matches!(stat.state, 'Z' | 'X' | 'x') {
        return Liveness::Dead;
    }
    match holder.process_start {
        Some(start) if start != stat.start_time => Liveness::Dead,
        _ => Liveness::Alive,
    }
}

/// The fields of `/proc/<pid>/stat` that liveness needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ProcStat {
    /// Field 3: `R`, `S`, `D`, `Z` (zombie), `X` (dead), …
    state: char,
    /// Field 22: clock ticks since boot.
    start_time: u64,
}

/// Parses `/proc/<pid>/stat`. Field 2 is the command name in parentheses and
/// may itself contain spaces and `)`, so the fields after it are found from
/// the *last* `)`.
fn parse_stat(stat: &str) -> Option<ProcStat> {
    let (_, after_comm) = stat.rsplit_once(')')?;
    let mut fields = after_comm.split_whitespace(); // field 3 onwards
    let mut state = fields.next()?.chars();
    let (Some(state), None) = (state.next(), state.next()) else { return None };
    let start_time = fields.nth(22 - 4)?.parse().ok()?;
    Some(ProcStat { state, start_time })
}

fn hostname() -> Option<String> {
    let name = fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    Some(name.trim().to_owned()).filter(|name| !name.is_empty())
}

fn boot_id() -> Option<String> {
    let id = fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    Some(id.trim().to_owned()).filter(|id| !id.is_empty())
}

/// What a run locks: its runbook and its read-write host directories, all
/// absolute and canonical (the caller canonicalizes; `..` is refused).
/// Read-only directories are not locked: reading alongside a run is allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    pub runbook: PathBuf,
    pub dirs: Vec<PathBuf>,
}

/// Which of our resources another lock holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    /// The same runbook.
    Runbook { path: PathBuf },
    /// Read-write directories that are equal, or one inside the other.
    Dir { ours: PathBuf, theirs: PathBuf },
    /// The same run id (a resume or undo of a run that is still locked),
    /// whatever it holds.
    Run { run_id: String },
}

impl fmt::Display for Conflict {
    /// The subject of "… is locked by": `runbook `/srv/rb.toml``, `` `/srv/app` ``,
    /// `` `/srv/app` (which contains `/srv/app/data`) ``.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Conflict::Runbook { path } => write!(f, "runbook `{}`", path.display()),
            Conflict::Dir { ours, theirs } if ours == theirs => write!(f, "`{}`", ours.display()),
            Conflict::Dir { ours, theirs } if ours.starts_with(theirs) => {
                write!(f, "`{}` (inside `{}`)", ours.display(), theirs.display())
            }
            Conflict::Dir { ours, theirs } => write!(f, "`{}` (which contains `{}`)", ours.display(), theirs.display()),
            Conflict::Run { run_id } => write!(f, "run `{run_id}`"),
        }
    }
}

/// What [`RunLock::acquire`] may do with a conflicting lock it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takeover {
    /// Nothing: any conflicting lock refuses the run.
    No,
    /// Replace a stale lock held by the same run id (`backout resume RUN`,
    /// `backout undo RUN`: recovering that run is what the operator should
    /// do). Other runs' locks still refuse.
    OwnRun,
    /// `--force-unlock`: break every conflicting stale lock and every
    /// conflicting lock held on another host. Never a live lock on this host.
    ForceUnlock,
}

/// A lock file as [`list`] found it, or as [`RunLock::acquire`] broke it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    pub file: PathBuf,
    pub holder: Holder,
    pub resources: Resources,
    pub liveness: Liveness,
}

/// A lock that [`RunLock::acquire`] removed (`--force-unlock`, or an own-run
/// takeover), returned so the caller can journal what was broken.
pub type Broken = LockInfo;

/// What [`RunLock::release`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Released {
    /// The lock file was ours and is removed.
    Removed,
    /// The lock file was already gone (someone removed it by hand).
    Missing,
    /// The lock file now names another holder (it was broken with
    /// `--force-unlock` and taken again); it is left alone.
    Replaced { holder: Holder },
}

/// Why a lock was not taken, released or listed. [`LockError::hint`] says what
/// the operator can do.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// A conflicting lock whose holder is running, or cannot be checked
    /// because it is on another host.
    #[error("{}", refusal(conflict, holder, match liveness {
        Liveness::OtherHost => ", which cannot be checked from this host",
        Liveness::Alive | Liveness::Dead => "",
    }))]
    Held { holder: Box<Holder>, liveness: Liveness, conflict: Conflict, file: PathBuf },
    /// A conflicting lock whose holder is gone, and no takeover allowed it.
    #[error("{}", refusal(conflict, holder, ", whose process is gone: the run was interrupted"))]
    Stale { holder: Box<Holder>, conflict: Conflict, file: PathBuf },
    /// A lock file that cannot be read: it might belong to a running run, so it
    /// blocks every run until someone looks at it.
    #[error("lock file `{}` is corrupt: {reason}", .file.display())]
    Corrupt { file: PathBuf, reason: String },
    /// A run id that is not a plain file name (the lock file is `<run id>.lock`).
    #[error("run id `{run_id}` cannot name a lock file: {reason}")]
    InvalidRunId { run_id: String, reason: &'static str },
    /// A resource path that is not absolute, canonical UTF-8: it could not be
    /// compared with other locks' paths.
    #[error("cannot lock `{}`: {reason}", .path.display())]
    InvalidPath { path: PathBuf, reason: &'static str },
    #[error("failed to {action} `{}`", .path.display())]
    Io { action: &'static str, path: PathBuf, source: io::Error },
}

fn refusal(conflict: &Conflict, holder: &Holder, tail: &str) -> String {
    match conflict {
        Conflict::Run { run_id } => format!("run `{run_id}` is already locked ({}){tail}", HolderDetails(holder)),
        _ => format!("{conflict} is locked by {holder}{tail}"),
    }
}

impl LockError {
    /// What the operator can do about it, for the `hint:` line.
    pub fn hint(&self) -> Option<String> {
        match self {
            LockError::Held { liveness: Liveness::OtherHost, .. } => Some(
                "only `--force-unlock` breaks a lock held on another host; make sure that run is over first".to_owned(),
            ),
            LockError::Held { .. } => {
                Some("wait for it to finish, or stop it (Ctrl-C stops it at a safe point)".to_owned())
            }
            LockError::Stale { holder, .. } => {
                let run = &holder.run_id;
                Some(format!(
                    "see it with `backout show {run}`; `backout resume {run}` or `backout undo {run}` takes the lock \
                     over; `--force-unlock` breaks it"
                ))
            }
            LockError::Corrupt { .. } => Some(
                "no run can be locked while it is there; look at it, and if no backout run is using it, remove it"
                    .to_owned(),
            ),
            LockError::InvalidRunId { .. } | LockError::InvalidPath { .. } | LockError::Io { .. } => None,
        }
    }
}

/// The lock file's contents.
#[derive(Debug, Serialize, Deserialize)]
struct LockFile {
    format: u32,
    holder: Holder,
    resources: Resources,
}

/// A held run lock. Dropping it releases it like [`RunLock::release`],
/// ignoring errors.
#[derive(Debug)]
pub struct RunLock {
    dir: PathBuf,
    file: PathBuf,
    holder: Holder,
    resources: Resources,
    released: bool,
}

impl RunLock {
    /// Locks `resources` for `holder`, once per command before its first step.
    ///
    /// Creates `locks_dir` (0700) if needed and, under the guard, reads every
    /// lock file in it. A lock conflicts if it names the same runbook, a
    /// read-write directory equal to, inside or containing one of ours, or the
    /// same run id. If any conflicting lock may not be broken under `takeover`,
    /// nothing is changed and the most blocking one is returned (a live holder
    /// before one on another host before a stale one). Otherwise our lock file
    /// is written, the conflicting ones are removed and returned.
    pub fn acquire(
        locks_dir: &Path,
        resources: &Resources,
        holder: Holder,
        takeover: Takeover,
    ) -> Result<(RunLock, Vec<Broken>), LockError> {
        validate_run_id(&holder.run_id)?;
        validate_resources(resources)?;
        create_locks_dir(locks_dir)?;
        let guard = Guard::lock(locks_dir)?;
        let file = lock_path(locks_dir, &holder.run_id);

        let mut blockers = Vec::new();
        let mut broken = Vec::new();
        for found in scan(locks_dir)? {
            let Some(conflict) = conflict_with(resources, &holder.run_id, &found) else { continue };
            if may_break(&found, &holder.run_id, takeover) {
                broken.push(found);
            } else {
                blockers.push((found, conflict));
            }
        }
        let severity = |liveness: Liveness| match liveness {
            Liveness::Alive => 0,
            Liveness::OtherHost => 1,
            Liveness::Dead => 2,
        };
        if let Some((found, conflict)) = blockers.into_iter().min_by_key(|(found, _)| severity(found.liveness)) {
            let LockInfo { file, holder, liveness, .. } = found;
            let holder = Box::new(holder);
            return Err(match liveness {
                Liveness::Dead => LockError::Stale { holder, conflict, file },
                Liveness::Alive | Liveness::OtherHost => LockError::Held { holder, liveness, conflict, file },
            });
        }

        // Ours first (a stale lock of our own run is replaced by the rename),
        // then the others: if writing ours fails, nothing was broken.
        let contents = LockFile { format: FORMAT_VERSION, holder, resources: resources.clone() };
        write_lock(locks_dir, &file, &contents)?;
        let LockFile { holder, .. } = contents;
        let removed = broken
            .iter()
            .filter(|found| found.file != file)
            .try_for_each(|found| remove_file(&found.file))
            .and_then(|()| sync_dir(locks_dir));
        if let Err(e) = removed {
            // Still under the guard: remove ours directly (dropping a RunLock
            // would wait for the guard we hold).
            let _ = remove_if_ours(&file, &holder);
            return Err(e);
        }
        drop(guard);
        let lock = RunLock { dir: locks_dir.to_owned(), file, holder, resources: resources.clone(), released: false };
        Ok((lock, broken))
    }

    /// The lock file, `<locks dir>/<run id>.lock`.
    pub fn path(&self) -> &Path {
        &self.file
    }

    pub fn holder(&self) -> &Holder {
        &self.holder
    }

    pub fn resources(&self) -> &Resources {
        &self.resources
    }

    /// Releases the lock when the command ends: removes the lock file, but only
    /// if it still names this holder (a lock broken with `--force-unlock` and
    /// taken by another run stays theirs).
    pub fn release(mut self) -> Result<Released, LockError> {
        self.release_once()
    }

    fn release_once(&mut self) -> Result<Released, LockError> {
        self.released = true;
        let _guard = match Guard::lock(&self.dir) {
            Ok(guard) => guard,
            Err(LockError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Ok(Released::Missing);
            }
            Err(e) => return Err(e),
        };
        let released = remove_if_ours(&self.file, &self.holder)?;
        if released == Released::Removed {
            sync_dir(&self.dir)?;
        }
        Ok(released)
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        if !self.released {
            let _ = self.release_once();
        }
    }
}

/// Every lock in `locks_dir` with its holder's liveness, sorted by file name;
/// for `backout runs` to tell a running run from an interrupted one. A missing
/// directory has no locks. Takes no lock: lock files are replaced by rename,
/// so each is read whole or not at all.
pub fn list(locks_dir: &Path) -> Result<Vec<LockInfo>, LockError> {
    scan(locks_dir)
}

/// Holds the exclusive OS lock on `<locks dir>/.guard` until dropped.
#[derive(Debug)]
struct Guard {
    _file: File,
}

impl Guard {
    /// Blocks until no other acquire or release runs on `dir`.
    fn lock(dir: &Path) -> Result<Guard, LockError> {
        let path = dir.join(GUARD_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|source| LockError::Io { action: "open lock guard", path: path.clone(), source })?;
        file.lock().map_err(|source| LockError::Io { action: "lock", path, source })?;
        Ok(Guard { _file: file })
    }
}

fn validate_run_id(run_id: &str) -> Result<(), LockError> {
    let reason = if run_id.is_empty() {
        "it is empty"
    } else if run_id.len() > MAX_RUN_ID_BYTES {
        "it is longer than 128 bytes"
    } else if run_id.starts_with('.') {
        "it starts with `.`"
    } else if !run_id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        "only ASCII letters, digits, `-`, `_` and `.` are allowed"
    } else {
        return Ok(());
    };
    Err(LockError::InvalidRunId { run_id: run_id.to_owned(), reason })
}

fn validate_resources(resources: &Resources) -> Result<(), LockError> {
    for path in std::iter::once(&resources.runbook).chain(&resources.dirs) {
        let reason = if !path.is_absolute() {
            "the path is not absolute"
        } else if path.components().any(|c| c == Component::ParentDir) {
            "the path is not canonical (it contains `..`)"
        } else if path.to_str().is_none() {
            "the path is not valid UTF-8"
        } else {
            continue;
        };
        return Err(LockError::InvalidPath { path: path.clone(), reason });
    }
    Ok(())
}

fn create_locks_dir(dir: &Path) -> Result<(), LockError> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|source| LockError::Io {
        action: "create lock directory",
        path: dir.to_owned(),
        source,
    })
}

fn lock_path(dir: &Path, run_id: &str) -> PathBuf {
    dir.join(format!("{run_id}{LOCK_SUFFIX}"))
}

/// Which of `ours` the lock `found` holds, if any.
fn conflict_with(ours: &Resources, run_id: &str, found: &LockInfo) -> Option<Conflict> {
    let theirs = &found.resources;
    if theirs.runbook == ours.runbook {
        return Some(Conflict::Runbook { path: ours.runbook.clone() });
    }
    for mine in &ours.dirs {
        // `Path::starts_with` compares whole components: /srv/app is not a
        // prefix of /srv/apple.
        if let Some(other) = theirs.dirs.iter().find(|other| mine.starts_with(other) || other.starts_with(mine)) {
            return Some(Conflict::Dir { ours: mine.clone(), theirs: other.clone() });
        }
    }
    (found.holder.run_id == run_id).then(|| Conflict::Run { run_id: run_id.to_owned() })
}

fn may_break(found: &LockInfo, run_id: &str, takeover: Takeover) -> bool {
    match found.liveness {
        Liveness::Alive => false,
        Liveness::Dead => {
            takeover == Takeover::ForceUnlock || (takeover == Takeover::OwnRun && found.holder.run_id == run_id)
        }
        Liveness::OtherHost => takeover == Takeover::ForceUnlock,
    }
}

/// Reads every `*.lock` in `dir` (not dot files: the guard and temporaries).
fn scan(dir: &Path) -> Result<Vec<LockInfo>, LockError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(LockError::Io { action: "read lock directory", path: dir.to_owned(), source }),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry =
            entry.map_err(|source| LockError::Io { action: "read lock directory", path: dir.to_owned(), source })?;
        let name = entry.file_name();
        // A name that is not UTF-8 cannot be `<run id>.lock`.
        if let Some(name) = name.to_str()
            && name.ends_with(LOCK_SUFFIX)
            && !name.starts_with('.')
        {
            files.push(entry.path());
        }
    }
    files.sort();
    let mut found = Vec::new();
    for file in files {
        // Removed since the directory was read: released meanwhile.
        let Some(LockFile { holder, resources, .. }) = read_lock(&file)? else { continue };
        let liveness = liveness(&holder);
        found.push(LockInfo { file, holder, resources, liveness });
    }
    Ok(found)
}

/// Reads and checks one lock file; `None` if it does not exist.
fn read_lock(file: &Path) -> Result<Option<LockFile>, LockError> {
    let corrupt = |reason: String| LockError::Corrupt { file: file.to_owned(), reason };
    let io_error = |source| LockError::Io { action: "read lock file", path: file.to_owned(), source };
    match fs::symlink_metadata(file) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(io_error(source)),
        Ok(meta) if !meta.is_file() => return Err(corrupt("it is not a regular file".to_owned())),
        Ok(_) => {}
    }
    let mut bytes = Vec::new();
    match File::open(file).and_then(|f| f.take(MAX_LOCK_FILE_BYTES + 1).read_to_end(&mut bytes)) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(io_error(source)),
        Ok(_) => {}
    }
    if bytes.len() as u64 > MAX_LOCK_FILE_BYTES {
        return Err(corrupt("it is larger than 1 MiB".to_owned()));
    }
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| corrupt(format!("it is not valid JSON ({e})")))?;
    match value.get("format").and_then(serde_json::Value::as_u64) {
        Some(format) if format == u64::from(FORMAT_VERSION) => {}
        Some(format) => {
            return Err(corrupt(format!("it has format `{format}`; this backout reads format `{FORMAT_VERSION}`")));
        }
        None => return Err(corrupt("it has no numeric `format`".to_owned())),
    }
    let lock: LockFile = serde_json::from_value(value).map_err(|e| corrupt(format!("{e}")))?;
    let expected = file.file_name().and_then(|name| name.to_str()).and_then(|name| name.strip_suffix(LOCK_SUFFIX));
    if expected != Some(lock.holder.run_id.as_str()) {
        return Err(corrupt(format!("it names run `{}`, not the run its file name says", lock.holder.run_id)));
    }
    Ok(Some(lock))
}

/// Writes `contents` to `file` atomically: a 0600 temporary beside it,
/// fsync, rename, fsync the directory. The temporary is removed on error.
fn write_lock(dir: &Path, file: &Path, contents: &LockFile) -> Result<(), LockError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut bytes = serde_json::to_vec_pretty(contents).map_err(|e| LockError::Io {
        action: "encode lock file",
        path: file.to_owned(),
        source: e.into(),
    })?;
    bytes.push(b'\n');
    let name = file.file_name().and_then(|name| name.to_str()).unwrap_or("run.lock");
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let temp = dir.join(format!(".{name}.tmp.{}.{n}", std::process::id()));
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)
        .and_then(|mut f| f.write_all(&bytes).and_then(|()| f.sync_all()))
        .map_err(|source| LockError::Io { action: "write lock file", path: temp.clone(), source })
        .and_then(|()| {
            fs::rename(&temp, file).map_err(|source| LockError::Io {
                action: "rename lock file into place",
                path: file.to_owned(),
                source,
            })
        });
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written?;
    sync_dir(dir)
}

/// Removes `file` if it still names `holder`. The caller holds the guard.
fn remove_if_ours(file: &Path, holder: &Holder) -> Result<Released, LockError> {
    match read_lock(file)? {
        None => Ok(Released::Missing),
        Some(found) if found.holder == *holder => {
            remove_file(file)?;
            Ok(Released::Removed)
        }
        Some(found) => Ok(Released::Replaced { holder: found.holder }),
    }
}

fn remove_file(file: &Path) -> Result<(), LockError> {
    match fs::remove_file(file) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(LockError::Io { action: "remove lock file", path: file.to_owned(), source: e })
        }
        _ => Ok(()),
    }
}

fn sync_dir(dir: &Path) -> Result<(), LockError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|source| LockError::Io {
        action: "flush lock directory",
        path: dir.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;
    use std::sync::{Arc, Barrier};

    fn resources(runbook: &str, dirs: &[&str]) -> Resources {
        Resources { runbook: PathBuf::from(runbook), dirs: dirs.iter().map(PathBuf::from).collect() }
    }

    /// A holder on this host, as another process would have written it.
    fn holder(run_id: &str, pid: u32, process_start: Option<u64>) -> Holder {
        Holder { pid, process_start, ..Holder::current(run_id, "undo") }
    }

    /// A pid whose process has exited and been reaped, with the start time it
    /// had (read before reaping, so a reuse of the pid cannot fool the test).
    fn dead_process() -> (u32, u64) {
        let mut child = Command::new("true").spawn().unwrap();
        let stat = fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap();
        let start = parse_stat(&stat).unwrap().start_time;
        child.wait().unwrap();
        (child.id(), start)
    }

    fn dead_holder(run_id: &str) -> Holder {
        let (pid, start) = dead_process();
        holder(run_id, pid, Some(start))
    }

    /// Writes a lock file as another backout process would.
    fn plant(dir: &Path, holder: Holder, resources: Resources) -> PathBuf {
        create_locks_dir(dir).unwrap();
        let file = lock_path(dir, &holder.run_id);
        write_lock(dir, &file, &LockFile { format: FORMAT_VERSION, holder, resources }).unwrap();
        file
    }

    fn locks_dir() -> (tempfile::TempDir, PathBuf) {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("state").join("locks");
        (temp, dir)
    }

    #[test]
    fn acquire_writes_a_lock_file_and_release_removes_it() {
        let (_temp, dir) = locks_dir();
        let res = resources("/srv/rb.toml", &["/srv/app"]);
        let (lock, broken) = RunLock::acquire(&dir, &res, Holder::current("run-1", "run"), Takeover::No).unwrap();
        assert!(broken.is_empty());
        assert_eq!(lock.path(), dir.join("run-1.lock"));
        let listed = list(&dir).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].holder, *lock.holder());
        assert_eq!(listed[0].resources, res);
        assert_eq!(listed[0].liveness, Liveness::Alive);
        let file = lock.path().to_owned();
        assert_eq!(lock.release().unwrap(), Released::Removed);
        assert!(!file.exists());
        assert!(list(&dir).unwrap().is_empty());
    }

    #[test]
    fn dropping_the_lock_releases_it() {
        let (_temp, dir) = locks_dir();
        let res = resources("/srv/rb.toml", &[]);
        let (lock, _) = RunLock::acquire(&dir, &res, Holder::current("run-1", "run"), Takeover::No).unwrap();
        let file = lock.path().to_owned();
        drop(lock);
        assert!(!file.exists());
        RunLock::acquire(&dir, &res, Holder::current("run-2", "run"), Takeover::No).unwrap();
    }

    #[test]
    fn the_lock_file_says_format_1_and_names_holder_and_resources() {
        let (_temp, dir) = locks_dir();
        let res = resources("/srv/rb.toml", &["/srv/app"]);
        let (lock, _) = RunLock::acquire(&dir, &res, Holder::current("run-1", "run"), Takeover::No).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&fs::read(lock.path()).unwrap()).unwrap();
        assert_eq!(json["format"], 1);
        assert_eq!(json["holder"]["run_id"], "run-1");
        assert_eq!(json["holder"]["pid"], std::process::id());
        assert_eq!(json["holder"]["command"], "run");
        assert_eq!(json["resources"]["runbook"], "/srv/rb.toml");
        assert_eq!(json["resources"]["dirs"][0], "/srv/app");
    }

    #[test]
    fn a_second_run_of_the_same_runbook_is_refused_naming_the_holders_pid() {
        let (_temp, dir) = locks_dir();
        let (first, _) = RunLock::acquire(
            &dir,
            &resources("/srv/rb.toml", &["/srv/a"]),
            Holder::current("run-1", "run"),
            Takeover::No,
        )
        .unwrap();
        let err = RunLock::acquire(
            &dir,
            &resources("/srv/rb.toml", &["/srv/b"]),
            Holder::current("run-2", "run"),
            Takeover::ForceUnlock,
        )
        .unwrap_err();
        let LockError::Held { holder, liveness, conflict, file } = &err else { panic!("{err:?}") };
        assert_eq!(holder.run_id, "run-1");
        assert_eq!(*liveness, Liveness::Alive);
        assert_eq!(*conflict, Conflict::Runbook { path: PathBuf::from("/srv/rb.toml") });
        assert_eq!(file, first.path());
        let message = err.to_string();
        assert!(message.contains(&format!("pid {}", std::process::id())), "{message}");
        assert!(message.starts_with("runbook `/srv/rb.toml` is locked by run `run-1` (backout run, pid "), "{message}");
        assert!(first.path().exists(), "a refused acquire leaves the holder's lock alone");
    }

    #[test]
    fn overlapping_directories_are_refused_whichever_contains_the_other() {
        let (_temp, dir) = locks_dir();
        let (_held, _) = RunLock::acquire(
            &dir,
            &resources("/srv/one.toml", &["/x/other", "/x/app/data"]),
            Holder::current("run-1", "run"),
            Takeover::No,
        )
        .unwrap();
        for (ours, theirs) in
            [("/x/app/data", "/x/app/data"), ("/x/app", "/x/app/data"), ("/x/app/data/db", "/x/app/data")]
        {
            let err = RunLock::acquire(
                &dir,
                &resources("/srv/two.toml", &["/y", ours]),
                Holder::current("run-2", "run"),
                Takeover::No,
            )
            .unwrap_err();
            let LockError::Held { conflict, .. } = &err else { panic!("{err:?}") };
            assert_eq!(*conflict, Conflict::Dir { ours: PathBuf::from(ours), theirs: PathBuf::from(theirs) });
        }
    }

    #[test]
    fn a_sibling_sharing_a_name_prefix_does_not_conflict() {
        let (_temp, dir) = locks_dir();
        let (_held, _) = RunLock::acquire(
            &dir,
            &resources("/srv/one.toml", &["/x/app"]),
            Holder::current("run-1", "run"),
            Takeover::No,
        )
        .unwrap();
        let (_second, broken) = RunLock::acquire(
            &dir,
            &resources("/srv/two.toml", &["/x/apple", "/x/ap"]),
            Holder::current("run-2", "run"),
            Takeover::No,
        )
        .unwrap();
        assert!(broken.is_empty());
        assert_eq!(list(&dir).unwrap().len(), 2);
    }

    #[test]
    fn a_lock_whose_process_is_gone_is_reported_stale_and_kept() {
        let (_temp, dir) = locks_dir();
        let file = plant(&dir, dead_holder("run-old"), resources("/srv/rb.toml", &["/srv/app"]));
        for takeover in [Takeover::No, Takeover::OwnRun] {
            let err =
                RunLock::acquire(&dir, &resources("/srv/rb.toml", &[]), Holder::current("run-new", "run"), takeover)
                    .unwrap_err();
            let LockError::Stale { holder, file: named, .. } = &err else { panic!("{err:?}") };
            assert_eq!(holder.run_id, "run-old");
            assert_eq!(*named, file);
            assert!(err.to_string().ends_with(", whose process is gone: the run was interrupted"), "{err}");
            assert!(file.exists(), "a stale lock is only broken on request");
        }
    }

    #[test]
    fn force_unlock_breaks_a_stale_lock_and_returns_it() {
        let (_temp, dir) = locks_dir();
        let stale = dead_holder("run-old");
        let file = plant(&dir, stale.clone(), resources("/srv/old.toml", &["/srv/app"]));
        let (lock, broken) = RunLock::acquire(
            &dir,
            &resources("/srv/new.toml", &["/srv/app/data"]),
            Holder::current("run-new", "run"),
            Takeover::ForceUnlock,
        )
        .unwrap();
        assert_eq!(
            broken,
            vec![Broken {
                file: file.clone(),
                holder: stale,
                resources: resources("/srv/old.toml", &["/srv/app"]),
                liveness: Liveness::Dead,
            }]
        );
        assert!(!file.exists());
        assert!(lock.path().exists());
    }

    #[test]
    fn a_live_pid_with_another_start_time_counts_as_dead() {
        let own = Holder::current("run-1", "run");
        let reused = Holder { process_start: own.process_start.map(|start| start + 1), ..own.clone() };
        assert_eq!(liveness(&own), Liveness::Alive);
        assert_eq!(liveness(&reused), Liveness::Dead);

        let (_temp, dir) = locks_dir();
        plant(&dir, Holder { run_id: "run-old".to_owned(), ..reused }, resources("/srv/rb.toml", &[]));
        let err = RunLock::acquire(&dir, &resources("/srv/rb.toml", &[]), own, Takeover::No).unwrap_err();
        assert!(matches!(err, LockError::Stale { .. }), "{err:?}");
    }

    #[test]
    fn own_run_takes_over_its_stale_lock() {
        let (_temp, dir) = locks_dir();
        let res = resources("/srv/rb.toml", &["/srv/app"]);
        let stale = dead_holder("run-1");
        let file = plant(&dir, stale.clone(), res.clone());
        let (lock, broken) =
            RunLock::acquire(&dir, &res, Holder::current("run-1", "resume"), Takeover::OwnRun).unwrap();
        assert_eq!(broken.len(), 1);
        assert_eq!(broken[0].holder, stale);
        assert_eq!(broken[0].file, file);
        assert_eq!(lock.path(), file);
        assert_eq!(list(&dir).unwrap()[0].holder, *lock.holder(), "the lock file now names the new holder");
    }

    #[test]
    fn own_run_does_not_take_over_a_live_lock() {
        let (_temp, dir) = locks_dir();
        let res = resources("/srv/rb.toml", &[]);
        let (first, _) = RunLock::acquire(&dir, &res, Holder::current("run-1", "run"), Takeover::No).unwrap();
        for takeover in [Takeover::OwnRun, Takeover::ForceUnlock] {
            let err = RunLock::acquire(&dir, &res, Holder::current("run-1", "undo"), takeover).unwrap_err();
            assert!(matches!(&err, LockError::Held { liveness: Liveness::Alive, .. }), "{err:?}");
        }
        assert_eq!(list(&dir).unwrap()[0].holder, *first.holder());
    }

    #[test]
    fn own_run_does_not_break_another_runs_stale_lock() {
        let (_temp, dir) = locks_dir();
        let other = plant(&dir, dead_holder("run-other"), resources("/srv/other.toml", &["/srv/app"]));
        let own = plant(&dir, dead_holder("run-1"), resources("/srv/rb.toml", &["/srv/app"]));
        let err = RunLock::acquire(
            &dir,
            &resources("/srv/rb.toml", &["/srv/app"]),
            Holder::current("run-1", "undo"),
            Takeover::OwnRun,
        )
        .unwrap_err();
        assert!(matches!(&err, LockError::Stale { holder, .. } if holder.run_id == "run-other"), "{err:?}");
        assert!(other.exists() && own.exists(), "a refused acquire breaks nothing");
    }

    #[test]
    fn a_stale_lock_of_the_same_run_conflicts_even_without_shared_resources() {
        let (_temp, dir) = locks_dir();
        plant(&dir, dead_holder("run-1"), resources("/srv/old.toml", &["/srv/old"]));
        let err = RunLock::acquire(
            &dir,
            &resources("/srv/new.toml", &["/srv/new"]),
            Holder::current("run-1", "resume"),
            Takeover::No,
        )
        .unwrap_err();
        let LockError::Stale { conflict, .. } = &err else { panic!("{err:?}") };
        assert_eq!(*conflict, Conflict::Run { run_id: "run-1".to_owned() });
        assert!(err.to_string().starts_with("run `run-1` is already locked (backout undo, pid "), "{err}");
    }

    #[test]
    fn a_lock_held_on_another_host_is_refused_unless_force_unlock() {
        let (_temp, dir) = locks_dir();
        let elsewhere = Holder { host: "db2.invalid".to_owned(), ..holder("run-db2", 1, Some(1)) };
        let file = plant(&dir, elsewhere.clone(), resources("/srv/rb.toml", &[]));
        for takeover in [Takeover::No, Takeover::OwnRun] {
            let err =
                RunLock::acquire(&dir, &resources("/srv/rb.toml", &[]), Holder::current("run-1", "run"), takeover)
                    .unwrap_err();
            assert!(matches!(&err, LockError::Held { liveness: Liveness::OtherHost, .. }), "{err:?}");
            assert!(err.to_string().ends_with(", which cannot be checked from this host"), "{err}");
            assert!(err.hint().unwrap().starts_with("only `--force-unlock` breaks a lock held on another host"));
        }
        let (_lock, broken) = RunLock::acquire(
            &dir,
            &resources("/srv/rb.toml", &[]),
            Holder::current("run-1", "run"),
            Takeover::ForceUnlock,
        )
        .unwrap();
        assert_eq!(broken.len(), 1);
        assert_eq!(broken[0].holder, elsewhere);
        assert_eq!(broken[0].liveness, Liveness::OtherHost);
        assert!(!file.exists());
    }

    #[test]
    fn a_live_holder_is_reported_before_a_stale_one() {
        let (_temp, dir) = locks_dir();
        plant(&dir, dead_holder("run-a"), resources("/srv/a.toml", &["/srv/app"]));
        let (_live, _) = RunLock::acquire(
            &dir,
            &resources("/srv/b.toml", &["/srv/db"]),
            Holder::current("run-b", "run"),
            Takeover::No,
        )
        .unwrap();
        let err = RunLock::acquire(
            &dir,
            &resources("/srv/c.toml", &["/srv"]),
            Holder::current("run-c", "run"),
            Takeover::ForceUnlock,
        )
        .unwrap_err();
        assert!(matches!(&err, LockError::Held { holder, .. } if holder.run_id == "run-b"), "{err:?}");
        assert_eq!(list(&dir).unwrap().len(), 2, "nothing is broken when the run is refused");
    }

    #[test]
    fn a_corrupt_lock_file_is_an_error_naming_the_file_and_is_kept() {
        let (_temp, dir) = locks_dir();
        create_locks_dir(&dir).unwrap();
        let cases: [(&str, &[u8], &str); 4] = [
            ("torn.lock", b"{\"format\":1,\"hold", "it is not valid JSON"),
            ("future.lock", b"{\"format\":2}", "it has format `2`; this backout reads format `1`"),
            ("unformatted.lock", b"{}", "it has no numeric `format`"),
            ("renamed.lock", b"", "it names run `elsewhere`"),
        ];
        for (name, bytes, reason) in cases {
            let file = dir.join(name);
            if bytes.is_empty() {
                plant(&dir, holder("elsewhere", 1, None), resources("/srv/x.toml", &[]));
                fs::rename(dir.join("elsewhere.lock"), &file).unwrap();
            } else {
                fs::write(&file, bytes).unwrap();
            }
            for takeover in [Takeover::No, Takeover::ForceUnlock] {
                let err =
                    RunLock::acquire(&dir, &resources("/srv/rb.toml", &[]), Holder::current("run-1", "run"), takeover)
                        .unwrap_err();
                let LockError::Corrupt { file: named, reason: got } = &err else { panic!("{err:?}") };
                assert_eq!(*named, file);
                assert!(got.starts_with(reason), "{got}");
                assert!(err.to_string().starts_with(&format!("lock file `{}` is corrupt: ", file.display())));
                assert!(err.hint().is_some());
            }
            assert!(matches!(list(&dir), Err(LockError::Corrupt { .. })));
            assert!(file.exists(), "a corrupt lock file is never deleted");
            fs::remove_file(&file).unwrap();
        }
    }

    #[test]
    fn leftover_temporaries_and_other_files_are_not_locks() {
        let (_temp, dir) = locks_dir();
        create_locks_dir(&dir).unwrap();
        fs::write(dir.join(".run-0.lock.tmp.1.0"), b"{").unwrap();
        fs::write(dir.join("README"), b"not a lock").unwrap();
        RunLock::acquire(&dir, &resources("/srv/rb.toml", &[]), Holder::current("run-1", "run"), Takeover::No).unwrap();
    }

    #[test]
    fn drop_keeps_a_lock_file_rewritten_by_someone_else() {
        let (_temp, dir) = locks_dir();
        let res = resources("/srv/rb.toml", &[]);
        let (lock, _) = RunLock::acquire(&dir, &res, Holder::current("run-1", "run"), Takeover::No).unwrap();
        let file = lock.path().to_owned();
        let other = holder("run-1", std::process::id() + 1, None);
        plant(&dir, other.clone(), res.clone());
        drop(lock);
        assert!(file.exists());
        assert_eq!(list(&dir).unwrap()[0].holder, other);

        let (lock, _) =
            RunLock::acquire(&dir, &resources("/srv/other.toml", &[]), Holder::current("run-2", "run"), Takeover::No)
                .unwrap();
        let replacement = holder("run-2", 1, Some(1));
        plant(&dir, replacement.clone(), res);
        assert_eq!(lock.release().unwrap(), Released::Replaced { holder: replacement });
    }

    #[test]
    fn release_of_a_lock_file_removed_by_hand_says_so() {
        let (_temp, dir) = locks_dir();
        let (lock, _) =
            RunLock::acquire(&dir, &resources("/srv/rb.toml", &[]), Holder::current("run-1", "run"), Takeover::No)
                .unwrap();
        fs::remove_file(lock.path()).unwrap();
        assert_eq!(lock.release().unwrap(), Released::Missing);
    }

    #[test]
    fn lock_files_are_0600_and_the_lock_directory_0700() {
        let (_temp, dir) = locks_dir();
        let (lock, _) =
            RunLock::acquire(&dir, &resources("/srv/rb.toml", &[]), Holder::current("run-1", "run"), Takeover::No)
                .unwrap();
        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(lock.path()), 0o600);
        assert_eq!(mode(&dir.join(GUARD_FILE)), 0o600);
    }

    #[test]
    fn concurrent_acquires_of_one_runbook_let_exactly_one_through() {
        let (_temp, dir) = locks_dir();
        let threads = 8;
        let barrier = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let (dir, barrier) = (dir.clone(), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    let res = resources("/srv/rb.toml", &[]);
                    RunLock::acquire(&dir, &res, Holder::current(&format!("run-{i}"), "run"), Takeover::No)
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
        assert!(results.iter().filter_map(|r| r.as_ref().err()).all(|e| matches!(e, LockError::Held { .. })));
    }

    #[test]
    fn stat_parser_finds_the_fields_after_a_command_name_with_parentheses_and_spaces() {
        let rest: Vec<String> =
            (4..=52).map(|field| if field == 22 { "987654".to_owned() } else { field.to_string() }).collect();
        let stat = format!("4242 (evil) (name ) x) S {}\n", rest.join(" "));
        assert_eq!(parse_stat(&stat), Some(ProcStat { state: 'S', start_time: 987_654 }));
        let stat = format!("4242 ()) Z {}", rest.join(" "));
        assert_eq!(parse_stat(&stat), Some(ProcStat { state: 'Z', start_time: 987_654 }));
        assert_eq!(parse_stat("4242 (no closing paren S 1 2 3"), None);
        assert_eq!(parse_stat("4242 (short) S 1 2 3"), None);
        assert!(parse_stat(&fs::read_to_string("/proc/self/stat").unwrap()).is_some());
    }

    #[test]
    fn liveness_counts_zombies_other_boots_and_missing_processes_as_dead() {
        let own = Holder::current("run-1", "run");
        let host = own.host.clone();
        let boot = own.boot_id.clone();
        let stat = |state: char, start: u64| {
            let rest: Vec<String> = (4..=52).map(|f| if f == 22 { start.to_string() } else { f.to_string() }).collect();
            Ok(format!("1 (backout) {state} {}", rest.join(" ")))
        };
        let start = 1_000;
        let h = Holder { process_start: Some(start), boot_id: Some("boot-a".to_owned()), ..own };
        let judge_with = |boot: &str, stat| judge(&h, Some(&host), Some(boot), stat);
        assert_eq!(judge_with("boot-a", stat('S', start)), Liveness::Alive);
        assert_eq!(judge_with("boot-a", stat('Z', start)), Liveness::Dead);
        assert_eq!(judge_with("boot-a", stat('R', start + 1)), Liveness::Dead);
        assert_eq!(judge_with("boot-b", stat('S', start)), Liveness::Dead);
        assert_eq!(judge_with("boot-a", Err(io::ErrorKind::NotFound.into())), Liveness::Dead);
        assert_eq!(judge_with("boot-a", Err(io::ErrorKind::PermissionDenied.into())), Liveness::Alive);
        assert_eq!(judge_with("boot-a", Ok("garbage".to_owned())), Liveness::Alive);
        assert_eq!(judge(&h, None, boot.as_deref(), stat('S', start)), Liveness::OtherHost);
        assert_eq!(judge(&h, Some("elsewhere"), boot.as_deref(), stat('S', start)), Liveness::OtherHost);
    }

    #[test]
    fn a_reaped_child_is_dead_and_this_process_is_alive() {
        assert_eq!(liveness(&dead_holder("run-1")), Liveness::Dead);
        let own = Holder::current("run-1", "run");
        assert!(own.process_start.is_some());
        assert_eq!(liveness(&own), Liveness::Alive);
    }

    #[test]
    fn run_ids_that_are_not_plain_file_names_are_refused() {
        let (_temp, dir) = locks_dir();
        for run_id in ["", "../escape", "a/b", ".guard", "with space", &"x".repeat(129)] {
            let err =
                RunLock::acquire(&dir, &resources("/srv/rb.toml", &[]), Holder::current(run_id, "run"), Takeover::No)
                    .unwrap_err();
            assert!(matches!(&err, LockError::InvalidRunId { run_id: named, .. } if named == run_id), "{err:?}");
        }
        assert!(!dir.exists(), "nothing is created for a refused run id");
    }

    #[test]
    fn relative_and_non_canonical_paths_are_refused() {
        let (_temp, dir) = locks_dir();
        for res in [
            resources("rb.toml", &[]),
            resources("/srv/rb.toml", &["app"]),
            resources("/srv/rb.toml", &["/srv/../etc"]),
        ] {
            let err = RunLock::acquire(&dir, &res, Holder::current("run-1", "run"), Takeover::No).unwrap_err();
            assert!(matches!(err, LockError::InvalidPath { .. }), "{err:?}");
        }
    }

    #[test]
    fn listing_a_missing_lock_directory_finds_nothing() {
        let (_temp, dir) = locks_dir();
        assert!(list(&dir).unwrap().is_empty());
    }

    #[test]
    fn messages_name_the_path_the_run_its_process_and_the_time() {
        let holder = Holder {
            run_id: "20261204T211228Z-db-rollback-3f2a".to_owned(),
            pid: 4242,
            host: "db1".to_owned(),
            started: "2026-12-04T21:12:28Z".to_owned(),
            command: "undo".to_owned(),
            process_start: Some(1),
            boot_id: None,
        };
        let conflict = Conflict::Dir { ours: "/srv/app/data".into(), theirs: "/srv/app/data".into() };
        let file = PathBuf::from("/state/locks/20261204T211228Z-db-rollback-3f2a.lock");
        let held = LockError::Held {
            holder: Box::new(holder.clone()),
            liveness: Liveness::Alive,
            conflict: conflict.clone(),
            file: file.clone(),
        };
        assert_eq!(
            held.to_string(),
            "`/srv/app/data` is locked by run `20261204T211228Z-db-rollback-3f2a` \
             (backout undo, pid 4242 on host `db1`, since 2026-12-04T21:12:28Z)"
        );
        assert_eq!(held.hint().unwrap(), "wait for it to finish, or stop it (Ctrl-C stops it at a safe point)");
        let stale = LockError::Stale { holder: Box::new(holder), conflict, file };
        assert_eq!(
            stale.to_string(),
            "`/srv/app/data` is locked by run `20261204T211228Z-db-rollback-3f2a` \
             (backout undo, pid 4242 on host `db1`, since 2026-12-04T21:12:28Z), \
             whose process is gone: the run was interrupted"
        );
        assert_eq!(
            stale.hint().unwrap(),
            "see it with `backout show 20261204T211228Z-db-rollback-3f2a`; \
             `backout resume 20261204T211228Z-db-rollback-3f2a` or \
             `backout undo 20261204T211228Z-db-rollback-3f2a` takes the lock over; `--force-unlock` breaks it"
        );
        let inside = Conflict::Dir { ours: "/srv/app/data".into(), theirs: "/srv/app".into() };
        assert_eq!(inside.to_string(), "`/srv/app/data` (inside `/srv/app`)");
        let contains = Conflict::Dir { ours: "/srv/app".into(), theirs: "/srv/app/data".into() };
        assert_eq!(contains.to_string(), "`/srv/app` (which contains `/srv/app/data`)");
    }

    #[test]
    fn broken_locks_serialize_for_the_journal() {
        let broken = Broken {
            file: "/state/locks/run-1.lock".into(),
            holder: holder("run-1", 7, Some(9)),
            resources: resources("/srv/rb.toml", &["/srv/app"]),
            liveness: Liveness::OtherHost,
        };
        let json = serde_json::to_value(&broken).unwrap();
        assert_eq!(json["liveness"], "other-host");
        assert_eq!(json["holder"]["pid"], 7);
        assert_eq!(serde_json::from_value::<Broken>(json).unwrap(), broken);
    }
}
