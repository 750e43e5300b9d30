//! download: a snapshot from Qdrant to a granted directory, hashed while it
//! streams to a temporary file and renamed into place only when its sha256
//! equals Qdrant's checksum; undo removes only that exact file.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use backout_sdk::fs::{replace_atomically_with, sha256_file, sync_dir};
use backout_sdk::{Outcome, StepError};
use sha2::{Digest, Sha256};

use crate::api::{ApiError, Client, Env, Failure};
use crate::config::{Valid, snapshot_name_problem};
use crate::outputs::{Downloaded, Outputs};
use crate::snapshots::{Snapshot, newest_first, show_size};

use crate::ops::{NOTHING_CHANGED, fail, known};

/// The snapshot named, or the newest.
pub(super) fn pick(valid: &Valid, list: &[Snapshot], name: Option<&str>) -> Result<Snapshot, StepError> {
    let found = match name {
        Some(n) => list.iter().find(|s| s.name == n).cloned(),
        None => newest_first(list.to_vec()).into_iter().next(),
    };
    let chosen = found.ok_or_else(|| match name {
        Some(n) => StepError::precondition(format!(
            "collection `{}` has no snapshot named `{n}`{}",
            valid.collection,
            known(list)
        )),
        None => StepError::precondition(format!("collection `{}` has no snapshots", valid.collection)),
    })?;
    if let Some(why) = snapshot_name_problem(&chosen.name) {
        return Err(StepError::precondition(format!(
            "Qdrant lists a snapshot whose name {why}; it is not written to disk"
        )));
    }
    Ok(chosen)
}

pub(super) fn required_checksum(s: &Snapshot) -> Result<String, StepError> {
    s.checksum.as_deref().and_then(crate::config::normalize_checksum).ok_or_else(|| {
        StepError::precondition(format!(
            "Qdrant lists no sha256 checksum for snapshot `{}` (Qdrant before 1.8 records none), so its download \
             cannot be verified; nothing was downloaded",
            s.name
        ))
    })
}

pub(super) fn check_directory(dir: &str) -> Result<(), StepError> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(StepError::precondition(format!("`to` {dir} is not a directory"))),
        Err(e) => Err(StepError::precondition(format!(
            "`to` {dir} does not exist or is not inside a directory granted to the step ({e})"
        ))),
    }
}

pub(super) fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

pub(super) fn join(dir: &str, name: &str) -> String {
    if dir == "/" { format!("/{name}") } else { format!("{dir}/{name}") }
}

/// Whether `target` already holds the snapshot; refuses anything else there.
pub(super) fn existing_download(target: &str, checksum: &str) -> Result<bool, StepError> {
    match fs::symlink_metadata(target) {
        Ok(m) if m.is_file() => {
            let found = sha256_file(Path::new(target))
                .map_err(|e| StepError::precondition(format!("cannot read the existing {target}: {e}")))?;
            if found == checksum {
                Ok(true)
            } else {
                Err(StepError::precondition(format!(
                    "{target} already exists with sha256 {found}, not the snapshot's {checksum}; it is not \
                     overwritten: move it away or download into another directory"
                )))
            }
        }
        Ok(_) => Err(StepError::precondition(format!("{target} exists and is not a regular file"))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(StepError::precondition(format!("cannot inspect {target}: {e}"))),
    }
}

pub(super) fn run_download(
    valid: &Valid,
    client: &mut Client<'_>,
    name: Option<&str>,
    to: &str,
) -> Result<Outcome<Outputs>, StepError> {
    let list = client.list().map_err(|e| fail(client, e, NOTHING_CHANGED))?;
    let chosen = pick(valid, &list, name)?;
    let checksum = required_checksum(&chosen)?;
    check_directory(to)?;
    let target = join(to, &chosen.name);
    let mut outputs = Downloaded {
        collection: valid.collection.clone(),
        name: chosen.name.clone(),
        path: target.clone(),
        sha256: checksum.clone(),
        size: chosen.size,
        creation_time: chosen.creation_time.clone(),
        already_present: false,
        removed_by_undo: false,
    };
    if existing_download(&target, &checksum)? {
        outputs.already_present = true;
        let summary =
            format!("{target} already holds snapshot `{}` (sha256 {checksum}); nothing was written", chosen.name);
        client.env().info(summary.clone());
        return Ok(Outcome::new(summary, Outputs::Download(outputs)));
    }
    client.env().info(format!("downloading snapshot `{}` ({}) to {target}", chosen.name, show_size(chosen.size)));
    let (digest, size) = download_atomically(client, &chosen, &checksum, &target)?;
    outputs.sha256 = digest;
    outputs.size = size;
    let summary = format!(
        "downloaded snapshot `{}` to {target} ({}, sha256 {} as Qdrant lists it)",
        chosen.name,
        show_size(size),
        outputs.sha256
    );
    client.env().info(summary.clone());
    Ok(Outcome::new(summary, Outputs::Download(outputs)))
}

/// Writes what it receives to the temp file, hashing it, and keeps the
/// first bytes (an error answer's text).
pub(super) struct HashingSink<'a> {
    file: &'a mut fs::File,
    hasher: Sha256,
    written: u64,
    head: Vec<u8>,
    total: Option<u64>,
    progress: &'a mut dyn FnMut(u64, Option<u64>),
}

pub(super) const KEPT_HEAD: usize = 4096;

impl Write for HashingSink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write_all(buf)?;
        self.hasher.update(buf);
        self.written += buf.len() as u64;
        if self.head.len() < KEPT_HEAD {
            let n = (KEPT_HEAD - self.head.len()).min(buf.len());
            self.head.extend_from_slice(&buf[..n]);
        }
        (self.progress)(self.written, self.total);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Streams the snapshot into a temp file beside `target`, checks its sha256,
/// and renames it into place only when it matches; on any failure the temp
/// file is removed, so nothing is left under either name.
///
/// The file has backout's default mode (0666 less its umask) from creation
/// to the end: `target` never exists here (an existing file is left alone or
/// refused), so there is no file whose permissions it could take, and WASI
/// cannot choose a mode. A snapshot holds the collection's points and
/// payloads; the directory `to` is what keeps other users out, and the plan
/// says so.
pub(super) fn download_atomically(
    client: &mut Client<'_>,
    snapshot: &Snapshot,
    checksum: &str,
    target: &str,
) -> Result<(String, u64), StepError> {
    let mut error: Option<StepError> = None;
    let mut got = (String::new(), 0u64);
    let mut progress = client.env().progress_reporter();
    let written = replace_atomically_with(Path::new(target), |file| {
        let mut sink = HashingSink {
            file,
            hasher: Sha256::new(),
            written: 0,
            head: Vec::new(),
            total: Some(snapshot.size),
            progress: &mut *progress,
        };
        let stop = |e: StepError, error: &mut Option<StepError>| {
            *error = Some(e);
            io::Error::other("download refused")
        };
        let head = match client.download(&snapshot.name, &mut sink) {
            Ok(head) => head,
            Err(e) => {
                let e = fail(client, e, &format!("nothing was left at {target}"));
                return Err(stop(e, &mut error));
            }
        };
        if head.status != 200 {
            let e = ApiError {
                what: format!("GET {}", client.snapshot_path(&snapshot.name)),
                failure: Failure::Status { status: head.status, error: crate::api::error_text(&sink.head) },
            };
            let e = fail(client, e, &format!("nothing was left at {target}"));
            return Err(stop(e, &mut error));
        }
        let written = sink.written;
        let digest = hex::encode(std::mem::take(&mut sink.hasher).finalize());
        if digest != checksum {
            let e = StepError::failed(format!(
                "the downloaded snapshot `{}` ({written} bytes) has sha256 {digest}, not Qdrant's checksum \
                 {checksum}; the download was discarded and nothing was left at {target}",
                snapshot.name
            ));
            return Err(stop(e, &mut error));
        }
        got = (digest, written);
        Ok(())
    });
    match (written, error) {
        (Ok(()), _) => Ok(got),
        (Err(_), Some(e)) => Err(e),
        (Err(e), None) => Err(StepError::failed(format!(
            "could not write {target}: {e}; nothing was left under that name (is `to` in a read-write grant?)"
        ))),
    }
}

pub(super) fn undo_download(o: Downloaded, env: &mut dyn Env) -> Result<Outcome<Outputs>, StepError> {
    if o.already_present {
        let summary = format!("nothing to undo: {} was already there before the run", o.path);
        return Ok(Outcome::new(summary, Outputs::Download(o)));
    }
    let path = Path::new(&o.path);
    match sha256_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let summary = format!("nothing to undo: {} is already gone", o.path);
            Ok(Outcome::new(summary, Outputs::Download(o)))
        }
        Err(e) => Err(StepError::precondition(format!("cannot read {}: {e}; nothing was removed", o.path))),
        Ok(found) if found != o.sha256 => Err(StepError::precondition(format!(
            "{} changed since the run (sha256 {found}, not {}); it was not removed",
            o.path, o.sha256
        ))),
        Ok(_) => {
            fs::remove_file(path)
                .and_then(|()| sync_dir(path.parent().unwrap_or(Path::new("/"))))
                .map_err(|e| StepError::failed(format!("could not remove {}: {e}", o.path)))?;
            let summary = format!("removed {}, which the run downloaded", o.path);
            env.info(summary.clone());
            Ok(Outcome::new(summary, Outputs::Download(Downloaded { removed_by_undo: true, ..o })))
        }
    }
}
