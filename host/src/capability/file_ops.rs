//! `backout:step/files`: copying and hashing large files in the host, on
//! the files capability's own grants.
//!
//! Not a capability of its own: what a plugin may copy or hash is exactly
//! what its directory grants let it read or write through WASI, decided by
//! the same code ([`super::files::locate`], [`super::files::open_confined`]:
//! a plain guest path inside a grant, opened beneath the grant with
//! cap-primitives, no `..` and no symbolic link leading out) and the same
//! phase policy ([`Phase::allows`]: `copy-file` writes, so only `run` and
//! `undo`; `sha256-file` reads, so every call but `describe`). Only regular
//! files: a FIFO, device or directory is refused before a byte moves.
//!
//! Why in the host: through WASI streams every byte of a 1 GiB database
//! crosses the plugin's memory 64 KiB at a time, and sha256 compiled to
//! WebAssembly cannot use the CPU's SHA instructions. Here a copy is a
//! reflink where the file system has them, else `copy_file_range` (the
//! kernel moves the bytes), else a plain read/write loop; hashing is native
//! sha2. Both work in chunks, report progress after each, and stop between
//! two chunks when the call's deadline passes or the operator interrupts.

use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;

use sha2::{Digest, Sha256};

use super::files::{Access, CallError, DirGrant, locate, open_confined, refused};
use super::{Effect, Phase};

/// Bytes moved or hashed between two progress reports and stop checks.
const CHUNK: usize = 32 << 20;
/// The buffer of the read/write fallback and of hashing.
const BUFFER: usize = 1 << 20;

/// What watches a long host-side file operation.
pub struct Watch<'a> {
    /// Called with (bytes done, bytes in all) after each chunk.
    pub progress: &'a mut dyn FnMut(u64, u64),
    /// Says why the operation must stop now (the deadline passed, the
    /// operator pressed Ctrl-C); checked before each chunk.
    pub stop: &'a dyn Fn() -> Option<String>,
}

impl std::fmt::Debug for Watch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").finish_non_exhaustive()
    }
}

impl Watch<'_> {
    fn check(&self, what: &str) -> Result<(), CallError> {
        match (self.stop)() {
            Some(why) => Err(CallError::Failed(format!("{what} stopped: {why}"))),
            None => Ok(()),
        }
    }
}

/// A regular file inside a grant, opened for reading.
fn open_regular(dirs: &[DirGrant], guest: &str) -> Result<std::fs::File, CallError> {
    let (grant, rel) = locate(dirs, guest)?;
    let file = open_confined(grant, &rel, guest)?;
    let meta = file.metadata().map_err(|e| CallError::Failed(format!("failed to read metadata of `{guest}`: {e}")))?;
    if !meta.is_file() {
        return Err(refused(guest, "it is not a regular file"));
    }
    Ok(file)
}

/// Copies the regular file `source` (any grant) to `target` (a read-write
/// grant), created or truncated, and fsyncs it; returns the bytes copied.
/// `target` must not be a symbolic link, must have no other hard links, and
/// must not be `source` itself.
pub fn copy_file(
    dirs: &[DirGrant],
    phase: Phase,
    source: &str,
    target: &str,
    watch: &mut Watch<'_>,
) -> Result<u64, CallError> {
    phase.require(Effect::WriteFiles, "copy-file")?;
    let (target_grant, target_rel) = locate(dirs, target)?;
    if target_grant.access != Access::ReadWrite {
        return Err(refused(target, "it is in a read-only grant"));
    }
    let mut input = open_regular(dirs, source)?;
    let from = input.metadata().map_err(|e| CallError::Failed(format!("failed to read `{source}`: {e}")))?;
    let mut output = open_target(target_grant, &target_rel, target)?;
    let to = output.metadata().map_err(|e| CallError::Failed(format!("failed to read `{target}`: {e}")))?;
    if !to.is_file() {
        return Err(refused(target, "it is not a regular file"));
    }
    if (to.dev(), to.ino()) == (from.dev(), from.ino()) {
        return Err(refused(target, &format!("it is `{source}` itself")));
    }
    if to.nlink() != 1 {
        return Err(refused(
            target,
            &format!("it has {} hard links; refusing to change a file shared with other paths", to.nlink()),
        ));
    }
    let failed = |e: std::io::Error| CallError::Failed(format!("failed to copy `{source}` to `{target}`: {e}"));
    output.set_len(0).map_err(&failed)?;
    let total = from.len();
    watch.check("the copy")?;
    let copied = if rustix::fs::ioctl_ficlone(&output, &input).is_ok() {
        (watch.progress)(total, total);
        total
    } else {
        match copy_in_kernel(&input, &output, total, watch, failed)? {
            Some(done) => done,
            None => copy_through_memory(&mut input, &mut output, total, watch, failed)?,
        }
    };
    output.sync_all().map_err(&failed)?;
    Ok(copied)
}

/// Opens (creating) the target of a copy beneath its grant, never following
/// a symbolic link at its last component. Non-blocking, so a FIFO planted
/// there fails at once instead of hanging the call.
fn open_target(grant: &DirGrant, rel: &std::path::Path, guest: &str) -> Result<std::fs::File, CallError> {
    use cap_primitives::fs::{FollowSymlinks, OpenOptionsExt};
    let dir = grant.open_for_host_calls()?;
    let mut options = cap_primitives::fs::OpenOptions::new();
    options
        .write(true)
        .create(true)
        ._cap_fs_ext_follow(FollowSymlinks::No)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
    cap_primitives::fs::open(&dir, rel, &options).map_err(|e| {
        if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
            refused(guest, "it is a symbolic link")
        } else {
            CallError::Failed(format!("failed to open `{guest}` for writing: {e}"))
        }
    })
}

/// `copy_file_range` in chunks; `Ok(None)` when the kernel cannot do it for
/// these two files (another file system, an old kernel) and nothing was copied.
fn copy_in_kernel(
    input: &std::fs::File,
    output: &std::fs::File,
    total: u64,
    watch: &mut Watch<'_>,
    failed: impl Fn(std::io::Error) -> CallError,
) -> Result<Option<u64>, CallError> {
    use rustix::io::Errno;
    let mut done = 0u64;
    loop {
        watch.check("the copy")?;
        match rustix::fs::copy_file_range(input, None, output, None, CHUNK) {
            Ok(0) => return Ok(Some(done)),
            Ok(n) => {
                done += n as u64;
                (watch.progress)(done, total.max(done));
            }
            Err(Errno::INTR) => {}
            Err(Errno::XDEV | Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP | Errno::PERM) if done == 0 => {
                return Ok(None);
            }
            Err(e) => return Err(failed(e.into())),
        }
    }
}

/// The portable copy: read and write through one buffer.
fn copy_through_memory(
    input: &mut std::fs::File,
    output: &mut std::fs::File,
    total: u64,
    watch: &mut Watch<'_>,
    failed: impl Fn(std::io::Error) -> CallError,
) -> Result<u64, CallError> {
    let mut buf = vec![0u8; BUFFER];
    let mut done = 0u64;
    let mut reported = 0u64;
    loop {
        if done - reported >= CHUNK as u64 || done == 0 {
            watch.check("the copy")?;
        }
        let n = match input.read(&mut buf) {
            Ok(0) => return Ok(done),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(failed(e)),
        };
        output.write_all(&buf[..n]).map_err(&failed)?;
        done += n as u64;
        if done - reported >= CHUNK as u64 {
            reported = done;
            (watch.progress)(done, total.max(done));
        }
    }
}

/// The sha256 of the regular file `path` (any grant), as lowercase hex.
pub fn sha256_file(dirs: &[DirGrant], phase: Phase, path: &str, watch: &mut Watch<'_>) -> Result<String, CallError> {
    phase.require(Effect::ReadFiles, "sha256-file")?;
    let mut file = open_regular(dirs, path)?;
    let total = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; BUFFER];
    let (mut done, mut reported) = (0u64, 0u64);
    watch.check("hashing")?;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CallError::Failed(format!("failed to read `{path}`: {e}"))),
        };
        hasher.update(&buf[..n]);
        done += n as u64;
        if done - reported >= CHUNK as u64 {
            reported = done;
            (watch.progress)(done, total.max(done));
            watch.check("hashing")?;
        }
    }
    if done > reported {
        (watch.progress)(done, total.max(done));
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::capability::Denied;
    use crate::capability::files::test_grant;

    /// `/app` (read-write) and `/backups` (read-only) over two temp dirs,
    /// and a file outside both.
    struct Fixture {
        _root: tempfile::TempDir,
        app: std::path::PathBuf,
        backups: std::path::PathBuf,
        outside: std::path::PathBuf,
        dirs: Vec<DirGrant>,
    }

    fn fixture() -> Fixture {
        let root = tempfile::tempdir().unwrap();
        let app = root.path().join("app");
        let backups = root.path().join("backups");
        std::fs::create_dir_all(&app).unwrap();
        std::fs::create_dir_all(&backups).unwrap();
        let outside = root.path().join("secret");
        std::fs::write(&outside, "outside the grants").unwrap();
        std::fs::write(backups.join("db"), "backup bytes").unwrap();
        let dirs =
            vec![test_grant(&app, "/app", Access::ReadWrite), test_grant(&backups, "/backups", Access::ReadOnly)];
        Fixture { _root: root, app, backups, outside, dirs }
    }

    fn copy(f: &Fixture, phase: Phase, source: &str, target: &str) -> Result<u64, CallError> {
        let mut progress = |_: u64, _: u64| {};
        copy_file(&f.dirs, phase, source, target, &mut Watch { progress: &mut progress, stop: &|| None })
    }

    fn hash(f: &Fixture, phase: Phase, path: &str) -> Result<String, CallError> {
        let mut progress = |_: u64, _: u64| {};
        sha256_file(&f.dirs, phase, path, &mut Watch { progress: &mut progress, stop: &|| None })
    }

    fn denied(e: CallError) -> Denied {
        match e {
            CallError::Denied(d) => d,
            CallError::Failed(m) => panic!("expected a refusal, got a failure: {m}"),
        }
    }

    #[test]
    fn a_copy_is_byte_for_byte_and_replaces_a_longer_target() {
        let f = fixture();
        std::fs::write(f.app.join("db.tmp"), "a much longer earlier content than the backup").unwrap();
        assert_eq!(copy(&f, Phase::Run, "/backups/db", "/app/db.tmp").unwrap(), 12);
        assert_eq!(std::fs::read(f.app.join("db.tmp")).unwrap(), b"backup bytes");
        assert_eq!(copy(&f, Phase::Undo, "/backups/db", "/app/new").unwrap(), 12);
        assert_eq!(std::fs::read(f.app.join("new")).unwrap(), b"backup bytes");
    }

    #[test]
    fn a_large_copy_reports_progress_up_to_its_size_and_matches_the_hash() {
        let f = fixture();
        let size = (CHUNK * 2 + 12_345) as u64;
        let bytes: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(f.backups.join("big"), &bytes).unwrap();
        let mut seen = Vec::new();
        let mut progress = |done: u64, total: u64| seen.push((done, total));
        let copied = copy_file(
            &f.dirs,
            Phase::Run,
            "/backups/big",
            "/app/big",
            &mut Watch { progress: &mut progress, stop: &|| None },
        )
        .unwrap();
        assert_eq!(copied, size);
        assert_eq!(seen.last(), Some(&(size, size)));
        assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "progress only grows: {seen:?}");
        let native = hex::encode(Sha256::digest(&bytes));
        assert_eq!(hash(&f, Phase::Verify, "/app/big").unwrap(), native);
        assert_eq!(hash(&f, Phase::Plan, "/backups/big").unwrap(), native);
    }

    #[test]
    fn copying_is_refused_while_planning_or_verifying_and_creates_nothing() {
        let f = fixture();
        for phase in [Phase::Describe, Phase::Plan, Phase::Verify] {
            let e = denied(copy(&f, phase, "/backups/db", "/app/copy").unwrap_err());
            assert!(matches!(e, Denied::Phase { .. }), "{phase}: {e}");
        }
        assert!(!f.app.join("copy").exists());
        assert!(matches!(denied(hash(&f, Phase::Describe, "/backups/db").unwrap_err()), Denied::Phase { .. }));
    }

    #[test]
    fn a_target_in_a_read_only_grant_or_outside_every_grant_is_refused() {
        let f = fixture();
        std::fs::write(f.app.join("live"), "live").unwrap();
        let e = denied(copy(&f, Phase::Run, "/app/live", "/backups/db").unwrap_err());
        assert!(e.to_string().contains("read-only grant"), "{e}");
        assert_eq!(std::fs::read(f.backups.join("db")).unwrap(), b"backup bytes");
        let e = denied(copy(&f, Phase::Run, "/app/live", "/etc/passwd").unwrap_err());
        assert!(matches!(e, Denied::NotGranted { .. }), "{e}");
        let e = denied(copy(&f, Phase::Run, &f.outside.display().to_string(), "/app/x").unwrap_err());
        assert!(matches!(e, Denied::NotGranted { .. }), "{e}");
        let e = denied(copy(&f, Phase::Run, "/app/../secret", "/app/x").unwrap_err());
        assert!(e.to_string().contains("plain absolute guest path"), "{e}");
        assert!(matches!(denied(hash(&f, Phase::Run, "/etc/passwd").unwrap_err()), Denied::NotGranted { .. }));
        assert!(!f.app.join("x").exists());
    }

    #[test]
    fn symbolic_links_leading_out_of_a_grant_are_not_followed() {
        let f = fixture();
        std::os::unix::fs::symlink(&f.outside, f.app.join("escape")).unwrap();
        // Reading through it: refused by the confined open.
        assert!(copy(&f, Phase::Run, "/app/escape", "/app/stolen").is_err());
        assert!(hash(&f, Phase::Run, "/app/escape").is_err());
        assert!(!f.app.join("stolen").exists(), "a refused source creates no target");
        // Writing through it: the link is never followed; the file outside is untouched.
        let e = denied(copy(&f, Phase::Run, "/backups/db", "/app/escape").unwrap_err());
        assert!(e.to_string().contains("it is a symbolic link"), "{e}");
        assert_eq!(std::fs::read(&f.outside).unwrap(), b"outside the grants");
        // Even a link that stays inside the grant is not a target.
        std::fs::write(f.app.join("real"), "real").unwrap();
        std::os::unix::fs::symlink(f.app.join("real"), f.app.join("link")).unwrap();
        let e = denied(copy(&f, Phase::Run, "/backups/db", "/app/link").unwrap_err());
        assert!(e.to_string().contains("it is a symbolic link"), "{e}");
        assert_eq!(std::fs::read(f.app.join("real")).unwrap(), b"real");
    }

    #[test]
    fn only_regular_files_are_copied_or_hashed() {
        let f = fixture();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            f.app.join("fifo"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        std::fs::create_dir(f.app.join("dir")).unwrap();
        for source in ["/app/fifo", "/app/dir"] {
            let e = denied(copy(&f, Phase::Run, source, "/app/out").unwrap_err());
            assert!(e.to_string().contains("not a regular file"), "{source}: {e}");
            let e = denied(hash(&f, Phase::Run, source).unwrap_err());
            assert!(e.to_string().contains("not a regular file"), "{source}: {e}");
        }
        // A FIFO as the target fails at once instead of waiting for a reader.
        assert!(copy(&f, Phase::Run, "/backups/db", "/app/fifo").is_err());
        assert!(copy(&f, Phase::Run, "/backups/db", "/app/dir").is_err());
    }

    #[test]
    fn a_target_with_other_hard_links_or_the_source_itself_is_refused_unchanged() {
        let f = fixture();
        std::fs::write(f.app.join("shared"), "shared").unwrap();
        std::fs::hard_link(f.app.join("shared"), f.app.join("other-name")).unwrap();
        let e = denied(copy(&f, Phase::Run, "/backups/db", "/app/shared").unwrap_err());
        assert!(e.to_string().contains("2 hard links"), "{e}");
        assert_eq!(std::fs::read(f.app.join("shared")).unwrap(), b"shared");
        std::fs::write(f.app.join("self"), "self").unwrap();
        let e = denied(copy(&f, Phase::Run, "/app/self", "/app/self").unwrap_err());
        assert!(e.to_string().contains("itself"), "{e}");
        assert_eq!(std::fs::read(f.app.join("self")).unwrap(), b"self");
    }

    #[test]
    fn a_stop_ends_the_operation_between_chunks() {
        let f = fixture();
        let mut progress = |_: u64, _: u64| {};
        let stop = || Some("the step's timeout passed".to_string());
        let e = copy_file(
            &f.dirs,
            Phase::Run,
            "/backups/db",
            "/app/out",
            &mut Watch { progress: &mut progress, stop: &stop },
        )
        .unwrap_err();
        assert!(e.to_string().contains("stopped: the step's timeout passed"), "{e}");
        let e = sha256_file(&f.dirs, Phase::Run, "/backups/db", &mut Watch { progress: &mut progress, stop: &stop })
            .unwrap_err();
        assert!(e.to_string().contains("hashing stopped"), "{e}");
    }

    #[test]
    fn the_fallback_copy_gives_the_same_bytes() {
        let f = fixture();
        let bytes: Vec<u8> = (0..(BUFFER * 3 + 17)).map(|i| (i % 13) as u8).collect();
        std::fs::write(f.backups.join("x"), &bytes).unwrap();
        let mut input = std::fs::File::open(f.backups.join("x")).unwrap();
        let mut output = std::fs::File::create(f.app.join("x")).unwrap();
        let mut progress = |_: u64, _: u64| {};
        let failed = |e: std::io::Error| CallError::Failed(e.to_string());
        let n = copy_through_memory(
            &mut input,
            &mut output,
            bytes.len() as u64,
            &mut Watch { progress: &mut progress, stop: &|| None },
            failed,
        )
        .unwrap();
        assert_eq!(n, bytes.len() as u64);
        assert_eq!(std::fs::read(Path::new(&f.app).join("x")).unwrap(), bytes);
    }
}
