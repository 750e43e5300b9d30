//! Directory grants: the only files a step can see.
//!
//! A grant maps one existing host directory to one guest path, read-only or
//! read-write. It is checked once, before anything runs: the host path must
//! be absolute, free of `..`, an existing directory, not `/` and not in a
//! kernel interface (`/proc`, `/sys`, `/dev`: `/proc/self/environ` alone is
//! the host's whole environment); it is then canonicalized and its identity
//! (device and inode) recorded.
//!
//! Every later use opens it again from `/`, one component at a time, never
//! following a symbolic link, and refuses it unless it is still the same
//! directory ([`GrantChanged`]). An earlier step with a read-write grant on
//! `/srv/app` can replace `/srv/app/data` with a link to `../../..`; a later
//! step granted `/srv/app/data` then gets an error, not `/`. wasmtime-wasi
//! preopens the directory through `/proc/self/fd/N` of that verified handle,
//! so nothing resolves the path again between the check and the open.
//! Inside the sandbox, wasmtime-wasi confines every path to the preopened
//! directories (no `..` or symlink escapes) and enforces read-only mounts.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use serde::Serialize;
use toml::Spanned;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use super::{Capability, CheckCx, Denied, Effect, FileNeed, Finding, Needs, Phase, Sandbox};
use crate::diagnostic::Diagnostic;
use crate::runbook::{DirDef, GrantsDef};

/// What a step may do in a granted directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Access {
    #[serde(rename = "ro")]
    ReadOnly,
    #[serde(rename = "rw")]
    ReadWrite,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::ReadOnly => "ro",
            Access::ReadWrite => "rw",
        }
    }
}

/// A checked directory grant.
#[derive(Debug, Clone, Serialize)]
pub struct DirGrant {
    /// Canonical absolute host path.
    pub host: PathBuf,
    /// Absolute, normalized guest path (`/app`).
    pub guest: String,
    pub access: Access,
    /// Device and inode of the directory when the grant was checked.
    #[serde(skip)]
    pub identity: Identity,
}

/// Which directory a grant is: device and inode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Identity {
    dev: u64,
    ino: u64,
}

/// A granted directory is no longer the one the plan checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("granted directory `{}` changed since plan: {what}; nothing was opened", .host.display())]
pub struct GrantChanged {
    pub host: PathBuf,
    /// What it is now (`it is a symbolic link now`, `it is another directory now`).
    pub what: String,
}

impl DirGrant {
    /// A grant as a unit test needs it: no directory behind it.
    #[cfg(test)]
    pub(crate) fn for_test(host: &str, guest: &str, access: Access) -> Self {
        DirGrant { host: PathBuf::from(host), guest: guest.to_string(), access, identity: Identity::default() }
    }

    /// Mounts the directory into a WASI context. `read_only` forces a
    /// read-only mount whatever the grant says (used during plan and verify).
    /// Refused unless the directory is still the one the plan checked.
    pub fn mount(&self, builder: &mut WasiCtxBuilder, read_only: bool) -> Result<(), CallError> {
        let perms = if read_only || self.access == Access::ReadOnly { FsPerms::ReadOnly } else { FsPerms::ReadWrite };
        let handle = self.open_checked()?;
        builder.preopened_dir(proc_path(&handle), &self.guest, perms).map_err(|e| {
            CallError::Failed(format!("failed to open granted directory `{}`: {e}", self.host.display()))
        })?;
        Ok(())
    }

    /// The directory, opened without following any symbolic link and
    /// checked to be the one the plan saw.
    fn open_checked(&self) -> Result<OwnedFd, GrantChanged> {
        let changed = |what: String| GrantChanged { host: self.host.clone(), what };
        let handle = open_no_symlinks(&self.host).map_err(|e| changed(e.to_string()))?;
        let found = identity(&handle).map_err(|e| changed(format!("cannot be examined: {e}")))?;
        if found != self.identity {
            return Err(changed("it is another directory now (moved or replaced)".into()));
        }
        Ok(handle)
    }

    /// The directory as a `cap-primitives` start directory, checked like a mount.
    pub(super) fn open_for_host_calls(&self) -> Result<std::fs::File, CallError> {
        let handle = self.open_checked()?;
        cap_primitives::fs::open_ambient_dir(&proc_path(&handle), cap_primitives::ambient_authority())
            .map_err(|e| CallError::Failed(format!("failed to open granted directory `{}`: {e}", self.guest)))
    }
}

/// Why a host call on files did not happen: refused by policy, or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Denied(#[from] Denied),
    /// The operating system said no (a mode it cannot set, a file it cannot read).
    #[error("{0}")]
    Failed(String),
}

impl From<GrantChanged> for CallError {
    fn from(e: GrantChanged) -> Self {
        CallError::Denied(Denied::GrantChanged(e))
    }
}

/// The files capability: `dirs = [{ host, guest, mode }]`.
#[derive(Debug)]
pub struct Files;

impl Capability for Files {
    const KEY: &'static str = "dirs";
    type Grant = Vec<DirGrant>;

    fn check(def: &GrantsDef, cx: &CheckCx<'_>, problems: &mut Vec<Diagnostic>) -> Vec<DirGrant> {
        check(&def.dirs, cx, problems)
    }

    fn match_needs(plugin: &str, needs: &Needs, grant: &Vec<DirGrant>) -> Vec<Finding> {
        let has_rw = grant.iter().any(|d| d.access == Access::ReadWrite);
        let finding = match needs.files {
            FileNeed::ReadWrite if !has_rw => Finding::Missing {
                message: format!("`{plugin}` writes files, but the step grants no read-write directory"),
                hint: "grant the directory it writes in: `dirs = [{ host = \"…\", guest = \"/…\", mode = \"rw\" }]`"
                    .into(),
            },
            FileNeed::Read if grant.is_empty() => Finding::Missing {
                message: format!("`{plugin}` reads files, but the step grants no directory"),
                hint: "grant the directory it reads: `dirs = [{ host = \"…\", guest = \"/…\", mode = \"ro\" }]`".into(),
            },
            FileNeed::None if !grant.is_empty() => Finding::Unneeded {
                message: format!("`{plugin}` does not use files; its directory grants are not needed"),
            },
            FileNeed::Read if has_rw => Finding::Unneeded {
                message: format!("`{plugin}` only reads files; grant its directories with `mode = \"ro\"`"),
            },
            _ => return Vec::new(),
        };
        vec![finding]
    }

    /// Mounts every granted directory, read-only unless the phase may write;
    /// nothing in `describe`. Each is refused if it changed since plan.
    fn instantiate(grant: &Vec<DirGrant>, phase: Phase, sandbox: &mut Sandbox) -> Result<(), Denied> {
        if !phase.allows(Effect::ReadFiles) {
            return Ok(());
        }
        for dir in grant {
            match dir.mount(&mut sandbox.wasi, !phase.allows(Effect::WriteFiles)) {
                Ok(()) => {}
                Err(CallError::Denied(denied)) => return Err(denied),
                Err(CallError::Failed(why)) => {
                    return Err(Denied::Refused { capability: Self::KEY, requested: format!("`{}`", dir.guest), why });
                }
            }
        }
        sandbox.dirs = grant.clone();
        Ok(())
    }

    fn describe(grant: &Vec<DirGrant>) -> Vec<String> {
        grant.iter().map(|d| format!("{} → {} ({})", d.host.display(), d.guest, d.access.as_str())).collect()
    }
}

/// `/proc/self/fd/N`: opening it opens exactly the directory `handle` holds,
/// without resolving its path again.
fn proc_path(handle: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", handle.as_raw_fd()))
}

/// Opens the absolute, canonical `path` from `/`, one component at a time,
/// refusing any component that is a symbolic link or not a directory. The
/// handle is an `O_PATH` descriptor: it needs no read permission on the way.
fn open_no_symlinks(path: &Path) -> Result<OwnedFd, String> {
    use rustix::fs::{CWD, FileType, Mode, OFlags, fstat, openat};
    let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut dir =
        openat(CWD, "/", flags | OFlags::DIRECTORY, Mode::empty()).map_err(|e| format!("cannot open `/`: {e}"))?;
    let mut walked = PathBuf::from("/");
    for component in path.components() {
        let name = match component {
            Component::RootDir => continue,
            Component::Normal(name) => name,
            other => {
                return Err(format!(
                    "`{}` is not a canonical path (`{}`)",
                    path.display(),
                    other.as_os_str().display()
                ));
            }
        };
        walked.push(name);
        let next = openat(&dir, name, flags, Mode::empty())
            .map_err(|e| format!("`{}` cannot be opened: {e}", walked.display()))?;
        let kind = fstat(&next).map(|st| FileType::from_raw_mode(st.st_mode)).map_err(|e| e.to_string())?;
        match kind {
            FileType::Directory => dir = next,
            FileType::Symlink => return Err(format!("`{}` is a symbolic link now", walked.display())),
            _ => return Err(format!("`{}` is not a directory now", walked.display())),
        }
    }
    Ok(dir)
}

fn identity(handle: &OwnedFd) -> std::io::Result<Identity> {
    let st = rustix::fs::fstat(handle)?;
    Ok(Identity { dev: st.st_dev, ino: st.st_ino })
}

/// Kernel interfaces: never granted, whatever the runbook says.
const KERNEL_INTERFACES: &[&str] = &["/proc", "/sys", "/dev"];

/// Checks one step's directory grants; every problem becomes a diagnostic.
pub fn check(defs: &[Spanned<DirDef>], cx: &CheckCx<'_>, problems: &mut Vec<Diagnostic>) -> Vec<DirGrant> {
    let parsed = cx.parsed;
    let mut grants: Vec<DirGrant> = Vec::new();
    for def in defs {
        let def = def.get_ref();
        let host_at = parsed.locate(&def.host.span());
        let guest_at = parsed.locate(&def.guest.span());
        let host = match super::render_grant(def.host.get_ref(), cx.vars) {
            Err(e) => Err(Diagnostic::error(e)),
            Ok(h) => check_host(&h).map_err(|e| {
                relative_override(def.host.get_ref(), &h, cx.overrides).unwrap_or_else(|| Diagnostic::error(e))
            }),
        };
        let host = match host {
            Ok(h) => Some(h),
            Err(d) => {
                problems.push(d.at(host_at));
                None
            }
        };
        let guest = match check_guest(def.guest.get_ref()) {
            Ok(g) => Some(g),
            Err(e) => {
                problems.push(Diagnostic::error(e).at(guest_at.clone()));
                None
            }
        };
        let access = match def.mode.as_ref().map(|m| m.get_ref().as_str()) {
            None | Some("ro") => Some(Access::ReadOnly),
            Some("rw") => Some(Access::ReadWrite),
            Some(other) => {
                let at = parsed.locate(&def.mode.as_ref().map(|m| m.span()).unwrap_or_default());
                problems.push(
                    Diagnostic::error(format!("unknown mode `{other}`; use `ro` (read-only) or `rw` (read-write)"))
                        .at(at),
                );
                None
            }
        };
        if let Some(guest) = &guest
            && let Some(other) = grants.iter().find(|g| overlaps(&g.guest, guest))
        {
            problems.push(
                Diagnostic::error(format!(
                    "guest path `{guest}` overlaps `{}`, granted earlier in this step",
                    other.guest
                ))
                .at(guest_at)
                .hint("give each directory its own guest path, not nested in another"),
            );
            continue;
        }
        if let (Some((host, identity)), Some(guest), Some(access)) = (host, guest, access) {
            grants.push(DirGrant { host, guest, access, identity });
        }
    }
    grants
}

/// `backout:step/host.copy-permissions`: gives `target` the mode bits (rwx
/// only), owner and group of `source`. Both are guest paths resolved inside
/// `dirs` with cap-primitives, which confines every step of the resolution
/// (no `..` or symlink escapes), exactly as the guest's own view is confined.
///
/// Refused unless `phase` may write and `target` is a regular file, with no
/// other hard links (a link could be the same inode as a file outside the
/// grant), inside a read-write grant. Called at most a few times per step;
/// every call opens its grant afresh.
pub fn copy_permissions(dirs: &[DirGrant], phase: Phase, source: &str, target: &str) -> Result<(), CallError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    phase.require(Effect::WriteFiles, "copy-permissions")?;
    let (source_grant, source_rel) = locate(dirs, source)?;
    let (target_grant, target_rel) = locate(dirs, target)?;
    if target_grant.access != Access::ReadWrite {
        return Err(refused(target, "it is in a read-only grant"));
    }
    let source_file = open_confined(source_grant, &source_rel, source)?;
    let target_file = open_confined(target_grant, &target_rel, target)?;
    let meta = |f: &std::fs::File, p: &str| {
        f.metadata().map_err(|e| CallError::Failed(format!("failed to read metadata of `{p}`: {e}")))
    };
    let (from, to) = (meta(&source_file, source)?, meta(&target_file, target)?);
    if !from.is_file() || !to.is_file() {
        return Err(refused(if from.is_file() { target } else { source }, "it is not a regular file"));
    }
    if to.nlink() != 1 {
        return Err(refused(
            target,
            &format!("it has {} hard links; refusing to change a file shared with other paths", to.nlink()),
        ));
    }
    if (to.uid(), to.gid()) != (from.uid(), from.gid()) {
        std::os::unix::fs::fchown(&target_file, Some(from.uid()), Some(from.gid())).map_err(|e| {
            CallError::Failed(format!(
                "cannot give `{target}` the owner {}:{} of `{source}`: {e}; run backout as that user or as root",
                from.uid(),
                from.gid()
            ))
        })?;
    }
    target_file
        .set_permissions(std::fs::Permissions::from_mode(from.mode() & 0o777))
        .map_err(|e| CallError::Failed(format!("cannot set the mode of `{target}`: {e}")))
}

pub(super) fn refused(guest: &str, why: &str) -> CallError {
    CallError::Denied(Denied::Refused { capability: Files::KEY, requested: format!("`{guest}`"), why: why.to_string() })
}

/// Checks a temporary file a plugin declares (`temporary-file`): only while
/// the phase may write, a plain guest path inside a read-write grant.
/// Returns its host path, for the journal.
pub fn check_temporary(dirs: &[DirGrant], phase: Phase, guest: &str) -> Result<PathBuf, Denied> {
    phase.require(Effect::WriteFiles, "temporary-file")?;
    let (grant, rel) = locate(dirs, guest)?;
    if grant.access != Access::ReadWrite {
        return Err(Denied::Refused {
            capability: Files::KEY,
            requested: format!("`{guest}`"),
            why: "it is in a read-only grant; a temporary file can only be made in a read-write one".into(),
        });
    }
    Ok(grant.host.join(rel))
}

/// Removes a declared temporary file that is still there after the call
/// that declared it ended: only a regular file (a symbolic link is removed
/// as a link, never followed), resolved inside its read-write grant with
/// cap-primitives like every other host-side file access. `Ok(None)` when
/// there is nothing there (the plugin cleaned up, as it should). The host
/// does this itself, after the call, so no phase applies.
pub fn remove_temporary(dirs: &[DirGrant], guest: &str) -> Result<Option<PathBuf>, CallError> {
    let host = check_temporary(dirs, Phase::Undo, guest)?;
    let (grant, rel) = locate(dirs, guest)?;
    let dir = grant.open_for_host_calls()?;
    let meta = match cap_primitives::fs::stat(&dir, &rel, cap_primitives::fs::FollowSymlinks::No) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(CallError::Failed(format!("failed to look at `{guest}`: {e}"))),
    };
    if meta.is_dir() {
        return Err(refused(guest, "it is a directory, not a temporary file; left in place"));
    }
    cap_primitives::fs::remove_file(&dir, &rel)
        .map_err(|e| CallError::Failed(format!("failed to remove `{guest}`: {e}")))?;
    Ok(Some(host))
}

/// The grant a guest path is in, and the path relative to it.
/// Only a plain guest path is located: absolute, with no empty, `.` or `..`
/// part and no trailing `/`. Anything else could name a host path outside
/// the grant when joined (`/data//etc/passwd` joins to `/etc/passwd`).
pub(super) fn locate<'a>(dirs: &'a [DirGrant], guest: &str) -> Result<(&'a DirGrant, PathBuf), Denied> {
    if !is_plain_guest_path(guest) {
        return Err(Denied::Refused {
            capability: Files::KEY,
            requested: format!("`{guest}`"),
            why: "it is not a plain absolute guest path: no empty, `.` or `..` parts and no trailing `/`".into(),
        });
    }
    dirs.iter()
        .filter_map(|d| {
            let rest = guest.strip_prefix(&d.guest)?.strip_prefix('/')?;
            (!rest.is_empty()).then(|| (d, PathBuf::from(rest)))
        })
        .max_by_key(|(d, _)| d.guest.len())
        .ok_or_else(|| not_granted(dirs, guest))
}

/// The host directory a plain guest path names, for a command's working
/// directory: inside a grant (the grant itself included), still the
/// directory the plan checked, and a directory once symbolic links are
/// resolved, still inside the grant.
pub fn host_dir(dirs: &[DirGrant], guest: &str) -> Result<PathBuf, Denied> {
    let refused =
        |why: &str| Denied::Refused { capability: Files::KEY, requested: format!("`{guest}`"), why: why.to_string() };
    if !is_plain_guest_path(guest) && guest != "/" {
        return Err(refused("it is not a plain absolute guest path: no empty, `.` or `..` parts and no trailing `/`"));
    }
    let (grant, rest) = grant_holding(dirs, guest).ok_or_else(|| not_granted(dirs, guest))?;
    grant.open_checked()?;
    let host = std::fs::canonicalize(grant.host.join(rest)).map_err(|e| refused(&e.to_string()))?;
    if !host.starts_with(&grant.host) {
        return Err(refused("it leads out of its grant through a symbolic link"));
    }
    if !host.is_dir() {
        return Err(refused("it is not a directory"));
    }
    Ok(host)
}

/// The grant whose guest path holds `guest` (the grant itself included),
/// the longest such, and the rest of the path after it (empty for the
/// grant itself). Lexical: the caller checks the path is plain.
pub fn grant_holding<'a>(dirs: &'a [DirGrant], guest: &'a str) -> Option<(&'a DirGrant, &'a str)> {
    dirs.iter()
        .filter_map(|d| {
            if guest == d.guest {
                return Some((d, ""));
            }
            let rest = guest.strip_prefix(&d.guest)?;
            let rest = if d.guest == "/" { rest } else { rest.strip_prefix('/')? };
            Some((d, rest))
        })
        .max_by_key(|(d, _)| d.guest.len())
}

/// `guest` is in none of the directory grants `dirs`.
fn not_granted(dirs: &[DirGrant], guest: &str) -> Denied {
    Denied::NotGranted {
        capability: Files::KEY,
        requested: format!("`{guest}`"),
        granted: if dirs.is_empty() {
            "none".to_string()
        } else {
            dirs.iter().map(|d| format!("`{}`", d.guest)).collect::<Vec<_>>().join(", ")
        },
    }
}

/// An absolute path whose every part is a name: no empty, `.` or `..` part,
/// no trailing `/`. The one rule for guest paths the host maps to host paths.
pub fn is_plain_guest_path(guest: &str) -> bool {
    guest.strip_prefix('/').is_some_and(|rest| rest.split('/').all(|p| !p.is_empty() && p != "." && p != ".."))
}

/// Opens `rel` inside the grant for reading metadata. `O_NONBLOCK`: a FIFO
/// (which an operator's directory may hold) would block the open forever,
/// past the step's timeout; with it the open returns at once and the caller
/// refuses anything that is not a regular file.
pub(super) fn open_confined(grant: &DirGrant, rel: &Path, guest: &str) -> Result<std::fs::File, CallError> {
    use cap_primitives::fs::OpenOptionsExt;
    let dir = grant.open_for_host_calls()?;
    let mut options = cap_primitives::fs::OpenOptions::new();
    options.read(true).custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
    cap_primitives::fs::open(&dir, rel, &options)
        .map_err(|e| CallError::Failed(format!("failed to open `{guest}`: {e}")))
}

/// When `--var NAME=VALUE` starts a grant's host path (`${vars.NAME}/…`)
/// and made it relative: still refused (a grant never depends on where
/// backout was started), but said in the operator's terms, with the
/// absolute path it would have been from the current directory and the
/// `--var` that means it. `None` for any other host path.
fn relative_override(template: &str, rendered: &str, overrides: &[(String, String)]) -> Option<Diagnostic> {
    if Path::new(rendered).is_absolute() {
        return None;
    }
    let parsed = crate::template::Template::parse(template).ok()?;
    let Some(crate::template::Segment::Var { name, .. }) = parsed.0.first() else { return None };
    // The last `--var` for a name is the one that counts.
    let (_, value) = overrides.iter().rev().find(|(key, _)| key == name)?;
    let would_be = std::path::absolute(rendered).ok()?;
    let meant = std::path::absolute(value).ok()?;
    Some(
        Diagnostic::error(format!(
            "`--var {name}={value}` makes host directory `{rendered}` a relative path; from the current directory \
             it would be `{}`",
            would_be.display()
        ))
        .hint(format!("grants take absolute paths: pass `--var {name}={}`", meant.display())),
    )
}

/// Checks a grant's host path and returns it canonical, with its identity.
fn check_host(text: &str) -> Result<(PathBuf, Identity), String> {
    let path = Path::new(text);
    if !path.is_absolute() {
        return Err(format!("host directory `{text}` is not an absolute path"));
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(format!("host directory `{text}` contains `..`; write the path it means"));
    }
    let meta = std::fs::metadata(path).map_err(|e| format!("host directory `{text}` cannot be used: {e}"))?;
    if !meta.is_dir() {
        return Err(format!("host path `{text}` is not a directory; grant the directory that holds it"));
    }
    let canonical = path.canonicalize().map_err(|e| format!("failed to resolve host directory `{text}`: {e}"))?;
    if canonical == Path::new("/") {
        return Err(format!(
            "host directory `{text}` is the root of the file system; grant only the directories the step needs"
        ));
    }
    if let Some(kernel) = KERNEL_INTERFACES.iter().find(|k| canonical.starts_with(k)) {
        return Err(format!(
            "host directory `{text}` is in `{kernel}`, a kernel interface: `/proc`, `/sys` and `/dev` are never \
             granted (`/proc/self/environ` alone is the host's whole environment)"
        ));
    }
    let handle = open_no_symlinks(&canonical).map_err(|e| format!("host directory `{text}` cannot be used: {e}"))?;
    let identity = identity(&handle).map_err(|e| format!("host directory `{text}` cannot be examined: {e}"))?;
    Ok((canonical, identity))
}

/// Guest paths are absolute, normalized, and never `/`.
fn check_guest(text: &str) -> Result<String, String> {
    if !text.starts_with('/') {
        return Err(format!("guest path `{text}` is not absolute; write for example `/app`"));
    }
    let mut parts = Vec::new();
    for part in text.split('/').filter(|p| !p.is_empty()) {
        match part {
            "." | ".." => return Err(format!("guest path `{text}` contains `{part}`")),
            _ => parts.push(part),
        }
    }
    if parts.is_empty() {
        return Err("guest path `/` is not allowed; mount the directory at a name such as `/app`".to_string());
    }
    Ok(format!("/{}", parts.join("/")))
}

fn overlaps(a: &str, b: &str) -> bool {
    let within = |x: &str, y: &str| x == y || x.starts_with(&format!("{y}/"));
    within(a, b) || within(b, a)
}

/// A grant of `host` at `guest`, checked as a runbook's would be (unit tests).
#[cfg(test)]
pub(crate) fn test_grant(host: &Path, guest: &str, access: Access) -> DirGrant {
    let (host, identity) = check_host(&host.display().to_string()).unwrap();
    DirGrant { host, guest: guest.into(), access, identity }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_paths_are_normalized_and_checked() {
        assert_eq!(check_guest("/app/").unwrap(), "/app");
        assert_eq!(check_guest("//app//data").unwrap(), "/app/data");
        assert!(check_guest("app").is_err());
        assert!(check_guest("/app/../etc").unwrap_err().to_string().contains("`..`"));
        assert!(check_guest("/").is_err());
    }

    #[test]
    fn a_relative_path_from_a_var_override_names_the_override_and_the_absolute_path() {
        let overrides = vec![("root".to_owned(), "old".to_owned()), ("root".to_owned(), "app".to_owned())];
        let cwd = std::env::current_dir().unwrap();
        let d = relative_override("${vars.root}/data", "app/data", &overrides).expect("the override made it relative");
        assert_eq!(
            d.message,
            format!(
                "`--var root=app` makes host directory `app/data` a relative path; from the current directory it \
                 would be `{}`",
                cwd.join("app/data").display()
            ),
            "the last --var counts"
        );
        assert_eq!(
            d.hint.as_deref(),
            Some(format!("grants take absolute paths: pass `--var root={}`", cwd.join("app").display()).as_str())
        );
        // Not from an override, not at the start, or not relative: the plain message stays.
        assert!(relative_override("${vars.other}/data", "x/data", &overrides).is_none());
        assert!(relative_override("data/${vars.root}", "data/app", &overrides).is_none());
        assert!(relative_override("${vars.root}/data", "/srv/data", &overrides).is_none());
    }

    #[test]
    fn host_paths_must_be_absolute_existing_directories() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        assert!(check_host("relative/dir").unwrap_err().to_string().contains("not an absolute path"));
        assert!(check_host(&format!("{}/../x", dir.path().display())).unwrap_err().to_string().contains("`..`"));
        assert!(check_host(&file.display().to_string()).unwrap_err().to_string().contains("not a directory"));
        assert!(check_host("/definitely/not/here").unwrap_err().to_string().contains("cannot be used"));
        assert!(check_host("/").unwrap_err().to_string().contains("root of the file system"));
        assert_eq!(check_host(&dir.path().display().to_string()).unwrap().0, dir.path().canonicalize().unwrap());
    }

    #[test]
    fn kernel_interfaces_are_never_granted() {
        for path in ["/proc", "/proc/self", "/sys/kernel", "/dev"] {
            let e = check_host(path).unwrap_err();
            assert!(e.contains("kernel interface") && e.contains("/proc/self/environ"), "{path}: {e}");
        }
    }

    fn grant(host: &Path, access: Access) -> DirGrant {
        test_grant(host, "/app", access)
    }

    #[test]
    fn a_grant_replaced_by_a_symlink_or_another_directory_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let g = grant(&data, Access::ReadWrite);
        let mut builder = WasiCtxBuilder::new();
        g.mount(&mut builder, false).unwrap();

        // Swapped for a link to its parent: refused, naming it.
        std::fs::rename(&data, root.path().join("data.orig")).unwrap();
        std::os::unix::fs::symlink("..", &data).unwrap();
        let e = g.open_checked().unwrap_err();
        assert_eq!(e.host, g.host);
        assert!(e.to_string().contains("changed since plan") && e.what.contains("is a symbolic link now"), "{e}");
        assert!(g.mount(&mut builder, false).is_err());
        assert!(
            copy_permissions(std::slice::from_ref(&g), Phase::Run, "/app/a", "/app/b")
                .unwrap_err()
                .to_string()
                .contains("changed since plan")
        );

        // Replaced by another directory of the same name: refused too.
        std::fs::remove_file(&data).unwrap();
        std::fs::create_dir(&data).unwrap();
        assert!(g.open_checked().unwrap_err().what.contains("another directory"));

        // The original put back: accepted again.
        std::fs::remove_dir(&data).unwrap();
        std::fs::rename(root.path().join("data.orig"), &data).unwrap();
        g.open_checked().unwrap();
    }

    #[test]
    fn a_symlink_anywhere_on_the_way_is_refused() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("real/data")).unwrap();
        std::os::unix::fs::symlink(root.path().join("real"), root.path().join("link")).unwrap();
        let via_link = root.path().canonicalize().unwrap().join("link/data");
        assert!(open_no_symlinks(&via_link).unwrap_err().to_string().contains("is a symbolic link now"));
        open_no_symlinks(&root.path().canonicalize().unwrap().join("real/data")).unwrap();
    }

    #[test]
    fn copy_permissions_copies_mode_and_refuses_escapes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        std::fs::write(dir.path().join("secret"), "s").unwrap();
        std::fs::set_permissions(dir.path().join("secret"), std::fs::Permissions::from_mode(0o4600)).unwrap();
        std::fs::write(dir.path().join("new"), "n").unwrap();
        std::fs::set_permissions(dir.path().join("new"), std::fs::Permissions::from_mode(0o644)).unwrap();
        let rw = [grant(dir.path(), Access::ReadWrite)];
        copy_permissions(&rw, Phase::Run, "/app/secret", "/app/new").unwrap();
        assert_eq!(mode(&dir.path().join("new")), 0o600, "mode copied without setuid");

        std::fs::write(outside.path().join("victim"), "v").unwrap();
        std::os::unix::fs::symlink(outside.path().join("victim"), dir.path().join("link")).unwrap();
        std::fs::hard_link(dir.path().join("new"), dir.path().join("twin")).unwrap();
        assert!(
            copy_permissions(&rw, Phase::Run, "/app/secret", "/app/link")
                .unwrap_err()
                .to_string()
                .contains("failed to open")
        );
        assert!(copy_permissions(&rw, Phase::Run, "/app/secret", "/app/../etc/passwd").is_err());
        assert!(
            copy_permissions(&rw, Phase::Run, "/app/secret", "/app/twin")
                .unwrap_err()
                .to_string()
                .contains("2 hard links")
        );
        assert!(
            copy_permissions(&rw, Phase::Run, "/app/secret", "/elsewhere/x")
                .unwrap_err()
                .to_string()
                .contains("is not granted")
        );
        assert!(
            copy_permissions(&rw, Phase::Run, "/app/secret", "/app")
                .unwrap_err()
                .to_string()
                .contains("is not granted")
        );
        let ro = [grant(dir.path(), Access::ReadOnly)];
        assert!(
            copy_permissions(&ro, Phase::Run, "/app/secret", "/app/new").unwrap_err().to_string().contains("read-only")
        );
        for phase in [Phase::Describe, Phase::Plan, Phase::Verify] {
            let e = copy_permissions(&rw, phase, "/app/secret", "/app/new").unwrap_err();
            assert_eq!(e, CallError::Denied(Denied::Phase { phase, action: "copy-permissions".into() }));
            assert!(check_temporary(&rw, phase, "/app/.t").is_err());
        }
    }

    #[test]
    fn temporaries_live_only_in_read_write_grants_and_are_removed_without_following_links() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let rw = [grant(dir.path(), Access::ReadWrite)];
        let ro = [grant(dir.path(), Access::ReadOnly)];
        assert_eq!(check_temporary(&rw, Phase::Run, "/app/.t").unwrap(), dir.path().canonicalize().unwrap().join(".t"));
        assert!(check_temporary(&ro, Phase::Run, "/app/.t").unwrap_err().to_string().contains("read-only"));
        assert!(check_temporary(&rw, Phase::Run, "/app/../etc/x").unwrap_err().to_string().contains("`..`"));
        assert!(check_temporary(&rw, Phase::Run, "/other/x").unwrap_err().to_string().contains("is not granted"));
        for crooked in ["/app//etc/passwd", "/app/./x", "/app/x/", "/app/", "app/x"] {
            assert!(
                check_temporary(&rw, Phase::Run, crooked)
                    .unwrap_err()
                    .to_string()
                    .contains("not a plain absolute guest path"),
                "{crooked}"
            );
        }

        assert_eq!(remove_temporary(&rw, "/app/.t").unwrap(), None, "nothing there");
        std::fs::write(dir.path().join(".t"), "partial").unwrap();
        assert!(remove_temporary(&rw, "/app/.t").unwrap().is_some());
        assert!(!dir.path().join(".t").exists());

        std::fs::write(outside.path().join("victim"), "v").unwrap();
        std::os::unix::fs::symlink(outside.path().join("victim"), dir.path().join(".link")).unwrap();
        remove_temporary(&rw, "/app/.link").unwrap();
        assert!(std::fs::symlink_metadata(dir.path().join(".link")).is_err(), "the link is gone");
        assert_eq!(std::fs::read_to_string(outside.path().join("victim")).unwrap(), "v", "its target is not");
        std::fs::create_dir(dir.path().join(".d")).unwrap();
        assert!(remove_temporary(&rw, "/app/.d").unwrap_err().to_string().contains("directory"));
    }

    #[test]
    fn copy_permissions_refuses_a_fifo_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("source"), "s").unwrap();
        let status = std::process::Command::new("mkfifo").arg(dir.path().join("pipe")).status().unwrap();
        assert!(status.success());
        let rw = [grant(dir.path(), Access::ReadWrite)];
        // Without O_NONBLOCK this open would wait for a writer forever.
        let e = copy_permissions(&rw, Phase::Run, "/app/source", "/app/pipe").unwrap_err().to_string();
        assert!(e.contains("is not a regular file"), "{e}");
        let e = copy_permissions(&rw, Phase::Run, "/app/pipe", "/app/source").unwrap_err().to_string();
        assert!(e.contains("is not a regular file"), "{e}");
    }

    #[test]
    fn nested_guest_paths_overlap() {
        assert!(overlaps("/app", "/app/data"));
        assert!(overlaps("/app", "/app"));
        assert!(!overlaps("/app", "/apple"));
    }
}
