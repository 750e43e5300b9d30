//! The compile cache: compiled components kept on disk, so that a command
//! does not compile every plugin from scratch.
//!
//! Loading compiled code is `unsafe` in wasmtime: `Component::deserialize`
//! maps whatever machine code its bytes contain and runs it, with no more
//! than a light check of their structure. Everything that decides whether
//! bytes may be loaded lives in this module, and the one `unsafe` call in
//! the crate is `deserialize_verified`, which takes only a
//! `VerifiedArtifact`: a type nothing but `CompileCache::verify` constructs.
//!
//! # Layout
//!
//! ```text
//! <dir>/                                       0700 when backout creates it
//!   <engine>/                                  0700; the engine key (below), 64 hex
//!     <component-sha256>.cwasm                 0600; `Component::serialize` of the component
//!     <component-sha256>.cwasm.sha256          0600; `<artifact sha256>  <component-sha256>.cwasm`
//!     <component-sha256>.describe.json         0600; the plugin's `describe` answer (below)
//!     .<name>.tmp.<pid>.<n>                    a write in progress (or a crashed one)
//! ```
//!
//! The entry is keyed by the sha256 of the component bytes, which the caller
//! has just computed over the bytes it read (and compared with every pin), and
//! by the engine key: the sha256 of wasmtime's
//! `Engine::precompile_compatibility_hash` (target, Cranelift flags, tunables,
//! wasm features and the wasmtime version). The record file is in
//! `sha256sum` format, so `sha256sum -c *.sha256` checks a directory by hand.
//!
//! # Safety argument
//!
//! An artifact is deserialized only when all of these hold, checked in this
//! order, each on the bytes or the open file that is used next:
//!
//! 1. the cache directory and the engine directory are directories owned by
//!    the user running backout and not writable by group or others (the
//!    engine directory not a symlink), so nobody else can add, replace or
//!    rename an entry;
//! 2. the record and the artifact are regular files (not symlinks, checked
//!    with `symlink_metadata`), owned by that user and not writable by group
//!    or others; the file opened is the file checked (same device and inode,
//!    checked again on the open handle); the artifact is not empty and at
//!    most [`MAX_ARTIFACT`] bytes;
//! 3. the record names this entry's artifact file (so an entry cannot be
//!    moved to another component's name) and the sha256 of the artifact
//!    bytes read into memory equals the sha256 the record holds, which the
//!    host wrote when it stored the artifact; a corrupt, truncated or swapped
//!    artifact fails here;
//! 4. those same in-memory bytes, not the file, are handed to wasmtime, for
//!    this engine's key; wasmtime itself refuses an artifact built by another
//!    version or configuration (its own header check).
//!
//! So the bytes loaded are bytes this host wrote with `Component::serialize`
//! from a component it compiled itself from bytes with exactly that digest,
//! unless the user running backout (or root) forged them, and they could run
//! code as that user anyway. Any check that fails makes the entry *ignored*:
//! the component is compiled from its bytes as if there were no cache, and
//! the entry is written again. A failure to write is never an error; the
//! caller goes on with the component it compiled.
//!
//! # `describe` answers
//!
//! `describe` takes no config, no grants and no environment, so its answer
//! is a property of the component's bytes, like its compiled code: a plugin
//! loaded through the cache keeps the answer (as the host understood it:
//! name, version, summary, config schema, needs) in
//! `<component-sha256>.describe.json`, and the next command reads it instead
//! of instantiating the plugin to ask again. It is data, not code, and passes
//! the same checks as a record (1 and 2 above, at most [`MAX_INFO`] bytes);
//! it names the component it describes and the backout version that wrote
//! it, and anything else (another component, another backout, a file that
//! does not parse) is ignored, the plugin asked again, and the file
//! rewritten. Its content decides no grant: the runbook's grants are what a
//! step gets, whatever `needs` says.
//!
//! Not covered: a directory above the cache directory that someone else can
//! write (`--cache-dir /tmp/x` under a world-writable parent without the
//! sticky bit) lets them swap the whole cache directory; point the cache at a
//! directory whose parents are yours.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use backout_registry::Digest;
use sha2::{Digest as _, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::runtime::PluginInfo;

/// Largest artifact the cache loads. A compiled 19 MB Python component is
/// well under 100 MiB; anything past this is not something backout wrote.
pub const MAX_ARTIFACT: u64 = 1 << 30;
/// Largest record file: one line of 64 + 2 + 64 + 6 characters and a newline.
const MAX_RECORD: u64 = 4096;
/// The extension of a compiled artifact.
const ARTIFACT_EXT: &str = ".cwasm";
/// The extension of an artifact's record (after [`ARTIFACT_EXT`]).
const RECORD_EXT: &str = ".cwasm.sha256";
/// The extension of a component's kept `describe` answer.
const INFO_EXT: &str = ".describe.json";
/// Largest `describe` answer the cache reads back (config schemas are a few KiB).
pub const MAX_INFO: u64 = 1 << 20;
/// The layout of a `.describe.json` file; a file of another layout is ignored.
const INFO_FORMAT: u32 = 1;
/// Temporary files older than this are a crashed write; `gc` removes them.
const STALE_TEMPORARY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Receives the outcome of every cached load, for the CLI's warnings and
/// `--verbose` notes. Called on the loading thread, once per load.
pub type CacheObserver = Arc<dyn Fn(&Digest, &CacheOutcome) + Send + Sync>;

/// A directory of compiled components; see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileCache {
    dir: PathBuf,
}

/// What [`CompileCache::load_or_compile`] did.
#[derive(Debug)]
pub enum CacheOutcome {
    /// A verified entry was loaded; nothing was compiled.
    Hit { artifact: PathBuf },
    /// There was no entry: the component was compiled, then stored (or not).
    Miss { stored: Result<PathBuf, StoreError> },
    /// There was an entry, but it failed a check and was never loaded: the
    /// component was compiled from its bytes and the entry written again (or not).
    Ignored { reason: Ignored, stored: Result<PathBuf, StoreError> },
}

impl CacheOutcome {
    /// Why the compiled component could not be stored, if it could not.
    pub fn store_error(&self) -> Option<&StoreError> {
        match self {
            CacheOutcome::Hit { .. } => None,
            CacheOutcome::Miss { stored } | CacheOutcome::Ignored { stored, .. } => stored.as_ref().err(),
        }
    }
}

/// Why an entry was not loaded. Each one means "compile instead".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Ignored {
    #[error("cannot tell which user runs backout: {0}")]
    UnknownUser(String),
    #[error("`{}` is not a directory", .path.display())]
    NotADirectory { path: PathBuf },
    #[error("`{}` is not a regular file (a symlink, or something else)", .path.display())]
    NotARegularFile { path: PathBuf },
    #[error("`{}` is owned by uid {owner}, not by uid {uid} that runs backout", .path.display())]
    OwnedByAnother { path: PathBuf, owner: u32, uid: u32 },
    #[error("`{}` is writable by group or others (mode {mode:04o})", .path.display())]
    WritableByOthers { path: PathBuf, mode: u32 },
    #[error("`{}` has {size} bytes; a compiled component has between 1 and {MAX_ARTIFACT}", .path.display())]
    BadSize { path: PathBuf, size: u64 },
    #[error("`{}` changed while it was being checked", .path.display())]
    Changed { path: PathBuf },
    #[error("failed to read `{}`: {error}", .path.display())]
    Unreadable { path: PathBuf, error: String },
    #[error("the artifact has no record of its sha256 (`{}` is missing)", .path.display())]
    MissingRecord { path: PathBuf },
    #[error("`{}` is not `<sha256>  {expected}`", .path.display())]
    MalformedRecord { path: PathBuf, expected: String },
    #[error("the artifact's sha256 is `{computed}`, but `{expected}` was recorded when it was written")]
    ArtifactMismatch { expected: String, computed: String },
    #[error("wasmtime refused the artifact: {0}")]
    Rejected(String),
    #[error("`{}` was written for another component, format or backout version", .path.display())]
    StaleInfo { path: PathBuf },
}

/// Why a compiled component could not be stored. Never fatal.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("failed to serialize the compiled component: {0}")]
    Serialize(String),
    #[error("the cache directory is not safe to write to: {0}")]
    Unsafe(Ignored),
    #[error("failed to write `{}`: {source}", .path.display())]
    Io { path: PathBuf, source: io::Error },
}

/// One removed entry (or stray temporary file), for `backout cache gc|clear`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Removed {
    /// The engine directory's name (64 hex).
    pub engine: String,
    /// The component's digest, or `None` for a temporary file.
    pub component: Option<Digest>,
    /// The files removed.
    pub files: Vec<PathBuf>,
    /// Bytes freed.
    pub bytes: u64,
    pub reason: Removal,
}

/// Why `gc` or `clear` removed something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Removal {
    /// `clear`: everything goes.
    Cleared,
    /// Compiled by another engine (another backout or wasmtime build, or configuration).
    OtherEngine,
    /// No registry entry has this component's digest.
    NotInRegistry,
    /// A write that never finished.
    Temporary,
}

impl Removal {
    pub fn as_str(self) -> &'static str {
        match self {
            Removal::Cleared => "cleared",
            Removal::OtherEngine => "compiled by another engine",
            Removal::NotInRegistry => "not in the registry",
            Removal::Temporary => "an unfinished write",
        }
    }
}

/// The paths of one entry.
#[derive(Debug)]
struct Entry {
    engine_dir: PathBuf,
    /// `<hex>.cwasm`, as the record names it.
    artifact_name: String,
    artifact: PathBuf,
    record: PathBuf,
    /// `<hex>.describe.json`.
    info: PathBuf,
}

/// A `.describe.json` file: the answer, and what it answers for.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KeptInfo {
    format: u32,
    /// The backout version that wrote it: how the host reads a plugin's answer may change.
    backout: String,
    /// The digest of the component that gave the answer.
    component: String,
    info: PluginInfo,
}

/// What is on disk for an entry.
enum Lookup {
    Absent,
    Verified(VerifiedArtifact),
    Ignored(Ignored),
}

/// Artifact bytes that passed every check of [`CompileCache::verify`]; the
/// only thing [`deserialize_verified`] accepts. Deliberately not `Clone` and
/// constructed in one place.
struct VerifiedArtifact {
    bytes: Vec<u8>,
}

impl CompileCache {
    /// A cache in `dir`. Nothing is created until something is stored.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// `$XDG_CACHE_HOME/backout/compiled`, else `~/.cache/backout/compiled`;
    /// `None` when neither variable is set (to an absolute path).
    pub fn default_dir() -> Option<PathBuf> {
        let absolute = |v: std::ffi::OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
        if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").and_then(absolute) {
            return Some(dir.join("backout/compiled"));
        }
        std::env::var_os("HOME").and_then(absolute).map(|home| home.join(".cache/backout/compiled"))
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where `digest`'s compiled artifact is (or would be) kept for `engine`.
    pub fn artifact_path(&self, engine: &Engine, digest: &Digest) -> PathBuf {
        self.entry(engine, digest).artifact
    }

    /// The component `bytes`, loaded from a verified entry if there is one,
    /// else compiled (and stored). `digest` must be the sha256 of `bytes`,
    /// which the caller computed to check its pins: it is the cache key.
    ///
    /// Errors are compilation errors only: a cache problem is an outcome.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        digest: &Digest,
        bytes: &[u8],
    ) -> Result<(Component, CacheOutcome), wasmtime::Error> {
        debug_assert_eq!(Digest::of(bytes), *digest, "the cache key must be the digest of the bytes");
        let entry = self.entry(engine, digest);
        let mut lookup = self.verify(&entry);
        if let Lookup::Ignored(Ignored::Changed { .. }) = lookup {
            // Another backout stored the same entry while this one read it
            // (compiling is deterministic: it wrote the same bytes). Once more.
            lookup = self.verify(&entry);
        }
        let ignored = match lookup {
            Lookup::Absent => None,
            Lookup::Ignored(reason) => Some(reason),
            Lookup::Verified(artifact) => match deserialize_verified(engine, artifact) {
                Ok(component) => return Ok((component, CacheOutcome::Hit { artifact: entry.artifact })),
                Err(e) => Some(Ignored::Rejected(format!("{:#}", anyhow::Error::from(e)))),
            },
        };
        let component = Component::new(engine, bytes)?;
        let stored = self.store(&entry, &component);
        let outcome = match ignored {
            None => CacheOutcome::Miss { stored },
            Some(reason) => CacheOutcome::Ignored { reason, stored },
        };
        Ok((component, outcome))
    }

    fn entry(&self, engine: &Engine, digest: &Digest) -> Entry {
        let engine_dir = self.dir.join(engine_key(engine));
        let artifact_name = format!("{}{ARTIFACT_EXT}", digest.hex());
        Entry {
            artifact: engine_dir.join(&artifact_name),
            record: engine_dir.join(format!("{}{RECORD_EXT}", digest.hex())),
            info: engine_dir.join(format!("{}{INFO_EXT}", digest.hex())),
            engine_dir,
            artifact_name,
        }
    }

    /// Every check of the safety argument (module documentation), in order.
    fn verify(&self, entry: &Entry) -> Lookup {
        match fs::symlink_metadata(&entry.artifact) {
            // No entry; or no cache directory (a file in its place: storing says so).
            Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => {
                return Lookup::Absent;
            }
            Err(e) => {
                return Lookup::Ignored(Ignored::Unreadable { path: entry.artifact.clone(), error: e.to_string() });
            }
            Ok(_) => {}
        }
        let checked = (|| {
            let uid = current_uid()?;
            check_dir(&self.dir, uid, true)?;
            check_dir(&entry.engine_dir, uid, false)?;
            let record = match read_checked(&entry.record, uid, MAX_RECORD) {
                Err(Ignored::Unreadable { path, .. }) if !path_exists(&path) => {
                    return Err(Ignored::MissingRecord { path });
                }
                other => other?,
            };
            let expected = parse_record(&record, &entry.artifact_name).ok_or_else(|| Ignored::MalformedRecord {
                path: entry.record.clone(),
                expected: entry.artifact_name.clone(),
            })?;
            let bytes = read_checked(&entry.artifact, uid, MAX_ARTIFACT)?;
            let computed = hex::encode(Sha256::digest(&bytes));
            if computed != expected {
                return Err(Ignored::ArtifactMismatch { expected, computed });
            }
            Ok(VerifiedArtifact { bytes })
        })();
        match checked {
            Ok(artifact) => Lookup::Verified(artifact),
            Err(reason) => Lookup::Ignored(reason),
        }
    }

    /// Serializes `component` into the entry: the record, then the artifact
    /// (its rename is the commit point), each written to a temporary file in
    /// the same directory with mode 0600, fsync'd and renamed; then the
    /// directory is fsync'd. Directories are created 0700.
    fn store(&self, entry: &Entry, component: &Component) -> Result<PathBuf, StoreError> {
        let artifact =
            component.serialize().map_err(|e| StoreError::Serialize(format!("{:#}", anyhow::Error::from(e))))?;
        self.prepare(entry)?;
        let record = format!("{}  {}\n", hex::encode(Sha256::digest(&artifact)), entry.artifact_name);
        write_private(&entry.record, record.as_bytes())?;
        write_private(&entry.artifact, &artifact)?;
        File::open(&entry.engine_dir)
            .and_then(|d| d.sync_all())
            .map_err(|source| StoreError::Io { path: entry.engine_dir.clone(), source })?;
        Ok(entry.artifact.clone())
    }

    /// Creates the cache and engine directories (0700) if they are missing,
    /// and checks that they are safe to write into.
    fn prepare(&self, entry: &Entry) -> Result<(), StoreError> {
        let uid = current_uid().map_err(StoreError::Unsafe)?;
        create_private_dir(&self.dir, true)?;
        check_dir(&self.dir, uid, true).map_err(StoreError::Unsafe)?;
        create_private_dir(&entry.engine_dir, false)?;
        check_dir(&entry.engine_dir, uid, false).map_err(StoreError::Unsafe)
    }

    /// The `describe` answer kept for `digest`, if there is one that passes
    /// every check (module documentation); `None` means "ask the plugin".
    pub fn cached_info(&self, engine: &Engine, digest: &Digest) -> Option<PluginInfo> {
        self.check_info(&self.entry(engine, digest), digest).ok()
    }

    fn check_info(&self, entry: &Entry, digest: &Digest) -> Result<PluginInfo, Ignored> {
        let uid = current_uid()?;
        check_dir(&self.dir, uid, true)?;
        check_dir(&entry.engine_dir, uid, false)?;
        let bytes = read_checked(&entry.info, uid, MAX_INFO)?;
        let kept: KeptInfo = serde_json::from_slice(&bytes)
            .map_err(|e| Ignored::Unreadable { path: entry.info.clone(), error: e.to_string() })?;
        if kept.format != INFO_FORMAT || kept.backout != env!("CARGO_PKG_VERSION") || kept.component != digest.hex() {
            return Err(Ignored::StaleInfo { path: entry.info.clone() });
        }
        Ok(kept.info)
    }

    /// Keeps `info`, the answer of the component with `digest` to
    /// `describe`, for [`CompileCache::cached_info`]. Written like an
    /// artifact: a 0600 temporary file, fsync'd, renamed.
    pub fn store_info(&self, engine: &Engine, digest: &Digest, info: &PluginInfo) -> Result<(), StoreError> {
        let entry = self.entry(engine, digest);
        let kept = KeptInfo {
            format: INFO_FORMAT,
            backout: env!("CARGO_PKG_VERSION").to_string(),
            component: digest.hex(),
            info: info.clone(),
        };
        let bytes = serde_json::to_vec(&kept).map_err(|e| StoreError::Serialize(e.to_string()))?;
        self.prepare(&entry)?;
        write_private(&entry.info, &bytes)
    }

    /// Removes every entry and temporary file (`backout cache clear`).
    /// Files and directories that are not the cache's own (by name) are left alone.
    pub fn clear(&self) -> io::Result<Vec<Removed>> {
        self.sweep(true, |_, _| Some(Removal::Cleared))
    }

    /// Removes entries for other engines than `engine`, entries whose
    /// component `in_registry` does not know, and temporary files older than
    /// an hour (`backout cache gc`).
    pub fn gc(&self, engine: &Engine, in_registry: impl Fn(&Digest) -> bool) -> io::Result<Vec<Removed>> {
        let current = engine_key(engine);
        self.sweep(false, |engine_name, component| {
            if engine_name != current {
                Some(Removal::OtherEngine)
            } else if !in_registry(component) {
                Some(Removal::NotInRegistry)
            } else {
                None
            }
        })
    }

    /// Walks `<dir>/<engine>/` and removes each entry `decide` gives a
    /// reason for, and temporary files (all of them when `clearing`, else
    /// those older than an hour). Only names the cache writes are touched;
    /// symlinks are removed, never followed.
    fn sweep(&self, clearing: bool, decide: impl Fn(&str, &Digest) -> Option<Removal>) -> io::Result<Vec<Removed>> {
        let mut removed = Vec::new();
        let engines = match fs::read_dir(&self.dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(removed),
            other => other?,
        };
        let mut engine_dirs: Vec<(String, PathBuf)> = Vec::new();
        for dirent in engines {
            let dirent = dirent?;
            let Some(name) = dirent.file_name().to_str().map(str::to_string) else { continue };
            if is_hex64(&name) && dirent.file_type()?.is_dir() {
                engine_dirs.push((name, dirent.path()));
            }
        }
        engine_dirs.sort();
        for (engine_name, engine_dir) in engine_dirs {
            let mut names: Vec<String> =
                fs::read_dir(&engine_dir)?.filter_map(|d| d.ok()?.file_name().to_str().map(str::to_string)).collect();
            names.sort();
            for name in names {
                let path = engine_dir.join(&name);
                if is_temp_name(&name) {
                    let stale = fs::symlink_metadata(&path)
                        .and_then(|m| m.modified())
                        .map(|t| t.elapsed().unwrap_or_default() > STALE_TEMPORARY)
                        .unwrap_or(false);
                    if clearing || stale {
                        let bytes = remove_file(&path)?;
                        removed.push(Removed {
                            engine: engine_name.clone(),
                            component: None,
                            files: vec![path],
                            bytes,
                            reason: if clearing { Removal::Cleared } else { Removal::Temporary },
                        });
                    }
                    continue;
                }
                // One decision per component: on its artifact, or on a lone record or answer.
                let Some(hex_part) = name
                    .strip_suffix(ARTIFACT_EXT)
                    .or_else(|| name.strip_suffix(RECORD_EXT))
                    .or_else(|| name.strip_suffix(INFO_EXT))
                else {
                    continue;
                };
                if !is_hex64(hex_part) || !path_exists(&path) {
                    continue; // not ours, or removed with its artifact just now
                }
                let Ok(component) = hex_part.parse::<Digest>() else { continue };
                let Some(reason) = decide(&engine_name, &component) else { continue };
                let mut entry = Removed {
                    engine: engine_name.clone(),
                    component: Some(component),
                    files: Vec::new(),
                    bytes: 0,
                    reason,
                };
                for file in [
                    format!("{hex_part}{ARTIFACT_EXT}"),
                    format!("{hex_part}{RECORD_EXT}"),
                    format!("{hex_part}{INFO_EXT}"),
                ] {
                    let file = engine_dir.join(file);
                    match remove_file(&file) {
                        Ok(bytes) => {
                            entry.bytes += bytes;
                            entry.files.push(file);
                        }
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(e),
                    }
                }
                if !entry.files.is_empty() {
                    removed.push(entry);
                }
            }
            // Gone if now empty; kept (silently) if anything else is in it.
            let _ = fs::remove_dir(&engine_dir);
        }
        Ok(removed)
    }
}

/// The engine's compatibility key: the sha256 (hex) of what wasmtime's
/// `Engine::precompile_compatibility_hash` feeds a hasher. Two engines with
/// the same key load each other's artifacts.
pub fn engine_key(engine: &Engine) -> String {
    /// A `Hasher` that keeps every byte it is fed in a sha256: stable across
    /// processes and Rust releases, unlike `DefaultHasher`.
    struct Sha256Hasher(Sha256);
    impl std::hash::Hasher for Sha256Hasher {
        fn finish(&self) -> u64 {
            let digest = self.0.clone().finalize();
            u64::from_le_bytes(digest[..8].try_into().expect("a sha256 has 32 bytes"))
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut hasher = Sha256Hasher(Sha256::new());
    std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
    hex::encode(hasher.0.finalize())
}

/// Loads an artifact that passed every check of [`CompileCache::verify`].
/// The crate's only `unsafe` code.
#[allow(unsafe_code)]
fn deserialize_verified(engine: &Engine, artifact: VerifiedArtifact) -> wasmtime::Result<Component> {
    // SAFETY: `Component::deserialize` requires bytes produced by
    // `Component::serialize` (or `Engine::precompile_component`), unmodified.
    // A `VerifiedArtifact` exists only after `CompileCache::verify` checked
    // that these exact in-memory bytes hash to the sha256 the host recorded
    // when it serialized a component it had compiled itself, from component
    // bytes with the digest this entry is named after; that the record names
    // this entry; and that the directories and files involved are owned by
    // the user running backout and writable by nobody else, so no one but
    // that user (or root) can have written them. The entry sits in this
    // engine's directory (its compatibility key), and wasmtime refuses
    // artifacts from another version or configuration with an error.
    unsafe { Component::deserialize(engine, &artifact.bytes) }
}

/// The effective uid of this process, from `/proc/self/status` (no libc).
fn current_uid() -> Result<u32, Ignored> {
    static UID: OnceLock<Result<u32, String>> = OnceLock::new();
    UID.get_or_init(|| {
        let status =
            fs::read_to_string("/proc/self/status").map_err(|e| format!("failed to read `/proc/self/status`: {e}"))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            .and_then(|effective| effective.parse().ok())
            .ok_or_else(|| "`/proc/self/status` has no effective uid".to_string())
    })
    .clone()
    .map_err(Ignored::UnknownUser)
}

/// A directory owned by `uid` and writable by nobody else. `follow`: the
/// path may be a symlink to such a directory (the cache directory itself,
/// which the operator chose); otherwise a symlink is refused.
fn check_dir(path: &Path, uid: u32, follow: bool) -> Result<(), Ignored> {
    let meta = if follow { fs::metadata(path) } else { fs::symlink_metadata(path) }
        .map_err(|e| Ignored::Unreadable { path: path.to_path_buf(), error: e.to_string() })?;
    if !meta.is_dir() {
        return Err(Ignored::NotADirectory { path: path.to_path_buf() });
    }
    check_owner_and_mode(path, &meta, uid)
}

fn check_owner_and_mode(path: &Path, meta: &fs::Metadata, uid: u32) -> Result<(), Ignored> {
    if meta.uid() != uid {
        return Err(Ignored::OwnedByAnother { path: path.to_path_buf(), owner: meta.uid(), uid });
    }
    if meta.mode() & 0o022 != 0 {
        return Err(Ignored::WritableByOthers { path: path.to_path_buf(), mode: meta.mode() & 0o7777 });
    }
    Ok(())
}

/// Reads a regular file owned by `uid`, writable by nobody else, of 1 to
/// `max` bytes, making sure the file read is the file checked.
fn read_checked(path: &Path, uid: u32, max: u64) -> Result<Vec<u8>, Ignored> {
    let unreadable = |e: io::Error| Ignored::Unreadable { path: path.to_path_buf(), error: e.to_string() };
    let before = fs::symlink_metadata(path).map_err(unreadable)?;
    if !before.file_type().is_file() {
        return Err(Ignored::NotARegularFile { path: path.to_path_buf() });
    }
    check_owner_and_mode(path, &before, uid)?;
    if before.len() == 0 || before.len() > max {
        return Err(Ignored::BadSize { path: path.to_path_buf(), size: before.len() });
    }
    let mut file = File::open(path).map_err(unreadable)?;
    let after = file.metadata().map_err(unreadable)?;
    if (after.dev(), after.ino()) != (before.dev(), before.ino()) || !after.file_type().is_file() {
        return Err(Ignored::Changed { path: path.to_path_buf() });
    }
    check_owner_and_mode(path, &after, uid)?;
    let mut bytes = Vec::with_capacity(after.len() as usize);
    (&mut file).take(max + 1).read_to_end(&mut bytes).map_err(unreadable)?;
    if bytes.len() as u64 != after.len() {
        return Err(Ignored::Changed { path: path.to_path_buf() });
    }
    Ok(bytes)
}

/// `<64 lowercase hex>  <artifact name>\n` → the hex.
fn parse_record(record: &[u8], artifact_name: &str) -> Option<String> {
    let text = std::str::from_utf8(record).ok()?;
    let line = text.strip_suffix('\n')?;
    let (sha, name) = line.split_once("  ")?;
    (is_hex64(sha) && name == artifact_name).then(|| sha.to_string())
}

fn is_hex64(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.contains(".tmp.")
}

fn path_exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

/// Creates `path` with mode 0700 (and, if `parents`, its missing parents
/// too). An existing directory is left as it is; [`check_dir`] judges it.
fn create_private_dir(path: &Path, parents: bool) -> Result<(), StoreError> {
    match DirBuilder::new().recursive(parents).mode(0o700).create(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(StoreError::Io { path: path.to_path_buf(), source }),
    }
}

/// Writes `bytes` to `target` through a new 0600 temporary file in the same
/// directory: write, fsync, rename. The temporary is removed on failure.
fn write_private(target: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = target.parent().unwrap_or(Path::new("."));
    let name = target.file_name().and_then(|n| n.to_str()).unwrap_or("entry");
    let temp = dir.join(format!(".{name}.tmp.{}.{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
    let io_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StoreError::Io { path, source }
    };
    let written = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    if let Err(source) = written {
        let _ = fs::remove_file(&temp);
        return Err(io_error(&temp)(source));
    }
    fs::rename(&temp, target).map_err(|source| {
        let _ = fs::remove_file(&temp);
        io_error(target)(source)
    })
}

/// Removes a file (or symlink), returning its size.
fn remove_file(path: &Path) -> io::Result<u64> {
    let size = fs::symlink_metadata(path)?.len();
    fs::remove_file(path)?;
    Ok(size)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::runtime::Runtime;

    struct Fixture {
        _dir: tempfile::TempDir,
        cache: CompileCache,
        runtime: Runtime,
        bytes: Vec<u8>,
        digest: Digest,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::new(dir.path().join("compiled"));
        let bytes = fs::read(backout_tests::ENV_TOGGLE).unwrap();
        let digest = Digest::of(&bytes);
        Fixture { _dir: dir, cache, runtime: Runtime::new().unwrap(), bytes, digest }
    }

    impl Fixture {
        fn load(&self) -> CacheOutcome {
            self.cache.load_or_compile(self.runtime.engine(), &self.digest, &self.bytes).unwrap().1
        }
        fn artifact(&self) -> PathBuf {
            self.cache.artifact_path(self.runtime.engine(), &self.digest)
        }
        fn record(&self) -> PathBuf {
            PathBuf::from(format!("{}.sha256", self.artifact().display()))
        }
        fn info_path(&self) -> PathBuf {
            self.artifact().with_file_name(format!("{}.describe.json", self.digest.hex()))
        }
        /// A runtime with this cache: plugins it loads keep `describe`'s answer.
        fn cached_runtime(&self) -> Runtime {
            Runtime::new().unwrap().with_cache(self.cache.clone(), Arc::new(|_, _| {}))
        }
        /// `describe` of a plugin loaded through the cache.
        fn describe(&self) -> PluginInfo {
            let plugin = self.cached_runtime().load_verified(&self.digest, &self.bytes).unwrap();
            block_on_describe(&plugin)
        }
        /// `describe`, asking the plugin itself (no cache involved).
        fn describe_uncached(&self) -> PluginInfo {
            block_on_describe(&self.runtime.load(&self.bytes).unwrap())
        }
        /// Stores the entry; panics unless it was a miss that stored.
        fn stored(&self) -> PathBuf {
            match self.load() {
                CacheOutcome::Miss { stored: Ok(path) } => path,
                other => panic!("expected a miss that stores, got {other:?}"),
            }
        }
    }

    /// Ignored for `reason`, and stored again (so the next load hits).
    fn assert_ignored(outcome: CacheOutcome, check: impl Fn(&Ignored) -> bool) {
        match &outcome {
            CacheOutcome::Ignored { reason, stored: Ok(_) } if check(reason) => {}
            other => panic!("unexpected outcome: {other:?}"),
        }
    }

    fn block_on_describe(plugin: &crate::runtime::Plugin) -> PluginInfo {
        let grants = crate::capability::Grants::default();
        let ctx = crate::runtime::CallContext::new("t", &grants, Default::default(), crate::runtime::host_api::quiet());
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(plugin.describe(&ctx)).result.unwrap()
    }

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_stored_entry_is_a_hit_next_time() {
        let f = fixture();
        let artifact = f.stored();
        assert_eq!(artifact, f.artifact());
        assert_eq!(mode(f.cache.dir()), 0o700);
        assert_eq!(mode(artifact.parent().unwrap()), 0o700);
        assert_eq!(mode(&artifact), 0o600);
        assert_eq!(mode(&f.record()), 0o600);
        let record = fs::read_to_string(f.record()).unwrap();
        let artifact_sha = hex::encode(Sha256::digest(fs::read(&artifact).unwrap()));
        assert_eq!(record, format!("{artifact_sha}  {}.cwasm\n", f.digest.hex()));

        let (component, outcome) = f.cache.load_or_compile(f.runtime.engine(), &f.digest, &f.bytes).unwrap();
        assert!(matches!(outcome, CacheOutcome::Hit { .. }), "{outcome:?}");
        // The loaded component is the plugin: it links and describes itself.
        let plugin = f.runtime.link(component).unwrap();
        let grants = crate::capability::Grants::default();
        let ctx = crate::runtime::CallContext::new("t", &grants, Default::default(), crate::runtime::host_api::quiet());
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        assert_eq!(rt.block_on(plugin.describe(&ctx)).result.unwrap().name, "env-toggle");
    }

    #[test]
    fn a_flipped_byte_in_the_artifact_is_ignored_and_recompiled() {
        let f = fixture();
        let artifact = f.stored();
        let mut bytes = fs::read(&artifact).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
        fs::write(&artifact, &bytes).unwrap();
        assert_ignored(f.load(), |r| matches!(r, Ignored::ArtifactMismatch { .. }));
        // Written again: the next load hits.
        assert!(matches!(f.load(), CacheOutcome::Hit { .. }));
    }

    #[test]
    fn a_truncated_artifact_is_ignored() {
        let f = fixture();
        let artifact = f.stored();
        let bytes = fs::read(&artifact).unwrap();
        fs::write(&artifact, &bytes[..bytes.len() / 3]).unwrap();
        assert_ignored(f.load(), |r| matches!(r, Ignored::ArtifactMismatch { .. }));
        fs::write(&artifact, b"").unwrap();
        assert_ignored(f.load(), |r| matches!(r, Ignored::BadSize { size: 0, .. }));
    }

    #[test]
    fn a_wrong_recorded_sha256_is_ignored() {
        let f = fixture();
        f.stored();
        fs::write(f.record(), format!("{}  {}.cwasm\n", "0".repeat(64), f.digest.hex())).unwrap();
        assert_ignored(f.load(), |r| matches!(r, Ignored::ArtifactMismatch { .. }));
        // A record that names another component's artifact (an entry moved to this name).
        let sha = fs::read_to_string(f.record()).unwrap()[..64].to_string();
        fs::write(f.record(), format!("{sha}  {}.cwasm\n", "a".repeat(64))).unwrap();
        assert_ignored(f.load(), |r| matches!(r, Ignored::MalformedRecord { .. }));
        fs::remove_file(f.record()).unwrap();
        assert_ignored(f.load(), |r| matches!(r, Ignored::MissingRecord { .. }));
    }

    #[test]
    fn a_group_writable_directory_or_file_is_ignored() {
        let f = fixture();
        let artifact = f.stored();
        let engine_dir = artifact.parent().unwrap().to_path_buf();
        for (path, private) in [(f.cache.dir().to_path_buf(), 0o700), (engine_dir, 0o700), (artifact.clone(), 0o600)] {
            fs::set_permissions(&path, fs::Permissions::from_mode(private | 0o020)).unwrap();
            match f.load() {
                CacheOutcome::Ignored { reason: Ignored::WritableByOthers { path: p, mode }, stored } => {
                    assert_eq!(p, path);
                    assert_eq!(mode & 0o777, private | 0o020);
                    // Nothing is written into a directory others can write either.
                    if path.is_dir() {
                        assert!(matches!(stored, Err(StoreError::Unsafe(_))), "{stored:?}");
                    }
                }
                other => panic!("{}: {other:?}", path.display()),
            }
            fs::set_permissions(&path, fs::Permissions::from_mode(private)).unwrap();
        }
        // The file was replaced by the store after the file case; all private again.
        assert!(matches!(f.load(), CacheOutcome::Hit { .. }));
        fs::set_permissions(&artifact, fs::Permissions::from_mode(0o606)).unwrap();
        assert_ignored(f.load(), |r| matches!(r, Ignored::WritableByOthers { .. }));
    }

    #[test]
    #[allow(clippy::print_stderr)]
    fn an_entry_owned_by_another_user_is_ignored() {
        let f = fixture();
        let artifact = f.stored();
        if std::os::unix::fs::chown(&artifact, Some(65534), None).is_err() {
            eprintln!("skipped: changing a file's owner needs root");
            return;
        }
        assert_ignored(f.load(), |r| matches!(r, Ignored::OwnedByAnother { owner: 65534, .. }));
        // The store replaced it with a file of ours.
        assert_eq!(fs::metadata(&artifact).unwrap().uid(), current_uid().unwrap());
    }

    #[test]
    fn a_symlinked_entry_is_ignored() {
        let f = fixture();
        let artifact = f.stored();
        let elsewhere = artifact.with_extension("elsewhere");
        fs::rename(&artifact, &elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &artifact).unwrap();
        assert_ignored(f.load(), |r| matches!(r, Ignored::NotARegularFile { .. }));
        // The store renamed a real file over the link.
        assert!(fs::symlink_metadata(&artifact).unwrap().file_type().is_file());

        // A symlinked engine directory is refused too.
        let engine_dir = artifact.parent().unwrap();
        let moved = f.cache.dir().join("moved");
        fs::rename(engine_dir, &moved).unwrap();
        std::os::unix::fs::symlink(&moved, engine_dir).unwrap();
        match f.load() {
            CacheOutcome::Ignored { reason: Ignored::NotADirectory { .. }, stored: Err(StoreError::Unsafe(_)) } => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_entry_for_another_engine_is_not_used() {
        let f = fixture();
        let artifact = f.stored();
        // Another configuration: another compatibility key, so another directory.
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        config.consume_fuel(true);
        let other = Engine::new(&config).unwrap();
        assert_ne!(engine_key(&other), engine_key(f.runtime.engine()));
        let (_, outcome) = f.cache.load_or_compile(&other, &f.digest, &f.bytes).unwrap();
        assert!(matches!(outcome, CacheOutcome::Miss { stored: Ok(_) }), "{outcome:?}");

        // Another engine's artifact under this engine's key, with a valid
        // record (as if the key failed to tell them apart): wasmtime refuses
        // it, and it is recompiled, never loaded.
        let foreign = f.cache.artifact_path(&other, &f.digest);
        fs::copy(&foreign, &artifact).unwrap();
        fs::copy(format!("{}.sha256", foreign.display()), f.record()).unwrap();
        assert_ignored(f.load(), |r| matches!(r, Ignored::Rejected(_)));
        assert!(matches!(f.load(), CacheOutcome::Hit { .. }));
    }

    #[test]
    fn a_cache_that_cannot_be_written_is_only_an_outcome() {
        let f = fixture();
        fs::write(f.cache.dir(), b"a file where the directory should be").unwrap();
        let (component, outcome) = f.cache.load_or_compile(f.runtime.engine(), &f.digest, &f.bytes).unwrap();
        assert!(matches!(outcome, CacheOutcome::Miss { stored: Err(_) }), "{outcome:?}");
        f.runtime.link(component).unwrap();
    }

    #[test]
    fn compiling_is_deterministic_so_concurrent_writers_agree() {
        let f = fixture();
        let a = Component::new(f.runtime.engine(), &f.bytes).unwrap().serialize().unwrap();
        let b = Component::new(f.runtime.engine(), &f.bytes).unwrap().serialize().unwrap();
        assert!(a == b, "two compiles of the same bytes serialize differently");
    }

    #[test]
    fn engine_key_is_stable_for_one_configuration() {
        let a = Runtime::new().unwrap();
        let b = Runtime::new().unwrap();
        assert_eq!(engine_key(a.engine()), engine_key(b.engine()));
        assert!(is_hex64(&engine_key(a.engine())));
    }

    #[test]
    fn gc_and_clear_remove_only_cache_files() {
        let f = fixture();
        let artifact = f.stored();
        let engine_dir = artifact.parent().unwrap().to_path_buf();
        let other_engine = f.cache.dir().join("b".repeat(64));
        fs::create_dir(&other_engine).unwrap();
        fs::write(other_engine.join(format!("{}.cwasm", f.digest.hex())), b"old").unwrap();
        let stale = engine_dir.join(format!(".{}.cwasm.tmp.1.0", f.digest.hex()));
        fs::write(&stale, b"x").unwrap();
        let fresh = engine_dir.join(format!(".{}.cwasm.tmp.2.0", f.digest.hex()));
        fs::write(&fresh, b"x").unwrap();
        File::options()
            .write(true)
            .open(&stale)
            .unwrap()
            .set_modified(std::time::SystemTime::now() - STALE_TEMPORARY * 2)
            .unwrap();
        let unrelated = f.cache.dir().join("notes.txt");
        fs::write(&unrelated, b"mine").unwrap();

        let removed = f.cache.gc(f.runtime.engine(), |d| *d == f.digest).unwrap();
        let mut reasons: Vec<&str> = removed.iter().map(|r| r.reason.as_str()).collect();
        reasons.sort();
        assert_eq!(reasons, [Removal::Temporary.as_str(), Removal::OtherEngine.as_str()], "{removed:?}");
        assert!(!other_engine.exists() && !stale.exists() && fresh.exists() && artifact.exists());

        let info = f.info_path();
        f.cache.store_info(f.runtime.engine(), &f.digest, &f.describe_uncached()).unwrap();
        let removed = f.cache.gc(f.runtime.engine(), |_| false).unwrap();
        assert_eq!(removed.len(), 1, "{removed:?}");
        assert_eq!(removed[0].reason, Removal::NotInRegistry);
        assert_eq!(removed[0].component, Some(f.digest));
        assert_eq!(removed[0].files, [artifact.clone(), f.record(), info.clone()]);
        assert!(!info.exists());
        assert!(!artifact.exists() && fresh.exists());

        f.stored();
        let removed = f.cache.clear().unwrap();
        assert_eq!(removed.len(), 2, "the entry and the unfinished write: {removed:?}");
        assert!(!engine_dir.exists(), "an emptied engine directory goes too");
        assert_eq!(fs::read(&unrelated).unwrap(), b"mine", "files the cache did not write stay");
        assert!(f.cache.clear().unwrap().is_empty());
    }
    #[test]
    fn a_describe_answer_is_kept_and_read_back_instead_of_asking() {
        let f = fixture();
        let asked = f.describe();
        assert_eq!(asked.name, "env-toggle");
        let info = f.info_path();
        assert_eq!(mode(&info), 0o600);
        let kept: serde_json::Value = serde_json::from_slice(&fs::read(&info).unwrap()).unwrap();
        assert_eq!(kept["component"], f.digest.hex());
        assert_eq!(kept["backout"], env!("CARGO_PKG_VERSION"));
        assert_eq!(kept["info"]["summary"], asked.summary);

        // Proof that the next load reads the file and does not ask the
        // plugin: an answer edited (by its owner) is the answer given.
        let mut edited = kept.clone();
        edited["info"]["summary"] = "kept, not asked".into();
        fs::write(&info, serde_json::to_vec(&edited).unwrap()).unwrap();
        let read = f.describe();
        assert_eq!(read.summary, "kept, not asked");
        assert_eq!(read.name, asked.name);
        assert_eq!(read.config_schema, asked.config_schema);
        assert_eq!(read.needs.files, asked.needs.files);
        assert_eq!(read.needs.env, asked.needs.env);
        // Needs known from the imports are the component's, not the file's.
        assert_eq!(read.needs.commands, asked.needs.commands);

        // A plugin loaded without the cache always asks.
        assert_eq!(f.describe_uncached().summary, asked.summary);
    }

    #[test]
    fn a_kept_answer_that_fails_a_check_is_ignored_and_asked_again() {
        let f = fixture();
        let asked = f.describe();
        let info = f.info_path();
        let kept: serde_json::Value = serde_json::from_slice(&fs::read(&info).unwrap()).unwrap();
        let edited = |field: &str, value: serde_json::Value| {
            let mut edited = kept.clone();
            edited["info"]["summary"] = "must not be used".into();
            edited[field] = value;
            serde_json::to_vec(&edited).unwrap()
        };
        type Spoil<'a> = Box<dyn Fn() + 'a>;
        let bad: Vec<(&str, Spoil)> = vec![
            (
                "another component's answer",
                Box::new(|| fs::write(&info, edited("component", "0".repeat(64).into())).unwrap()),
            ),
            (
                "another backout's answer",
                Box::new(|| fs::write(&info, edited("backout", "0.0.0-other".into())).unwrap()),
            ),
            ("another format", Box::new(|| fs::write(&info, edited("format", 2.into())).unwrap())),
            ("an unknown field", Box::new(|| fs::write(&info, edited("extra", true.into())).unwrap())),
            ("not JSON", Box::new(|| fs::write(&info, b"{\"format\": 1, \"info\": {").unwrap())),
            ("empty", Box::new(|| fs::write(&info, b"").unwrap())),
            (
                "writable by others",
                Box::new(|| {
                    let mut edited = kept.clone();
                    edited["info"]["summary"] = "must not be used".into();
                    fs::write(&info, serde_json::to_vec(&edited).unwrap()).unwrap();
                    fs::set_permissions(&info, fs::Permissions::from_mode(0o666)).unwrap();
                }),
            ),
            (
                "a symlink",
                Box::new(|| {
                    let mut edited = kept.clone();
                    edited["info"]["summary"] = "must not be used".into();
                    let elsewhere = info.with_extension("elsewhere");
                    fs::write(&elsewhere, serde_json::to_vec(&edited).unwrap()).unwrap();
                    fs::remove_file(&info).unwrap();
                    std::os::unix::fs::symlink(&elsewhere, &info).unwrap();
                }),
            ),
        ];
        for (what, spoil) in bad {
            spoil();
            assert_eq!(f.describe().summary, asked.summary, "{what}: the kept answer was used");
            // Asked again, and kept again: a regular 0600 file with the right key.
            assert!(fs::symlink_metadata(&info).unwrap().file_type().is_file(), "{what}");
            assert_eq!(mode(&info), 0o600, "{what}");
            let rewritten: serde_json::Value = serde_json::from_slice(&fs::read(&info).unwrap()).unwrap();
            assert_eq!(rewritten, kept, "{what}: not rewritten");
        }
    }

    #[test]
    #[allow(clippy::print_stderr)]
    fn a_kept_answer_owned_by_another_user_is_ignored() {
        let f = fixture();
        let asked = f.describe();
        let info = f.info_path();
        let mut edited: serde_json::Value = serde_json::from_slice(&fs::read(&info).unwrap()).unwrap();
        edited["info"]["summary"] = "must not be used".into();
        fs::write(&info, serde_json::to_vec(&edited).unwrap()).unwrap();
        if std::os::unix::fs::chown(&info, Some(65534), None).is_err() {
            eprintln!("skipped: changing a file's owner needs root");
            return;
        }
        assert_eq!(f.describe().summary, asked.summary);
        assert_eq!(fs::metadata(&info).unwrap().uid(), current_uid().unwrap());
    }
}
