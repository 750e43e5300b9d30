"""Safe-file helpers: the data-safety rules every step that writes must keep
(the Python twin of the Rust SDK's `fs`).

1. Take a safety copy before overwriting anything (`safety_copy`) and put its
   path in the outputs.
2. Write to a temporary file in the same directory, fsync it, rename it over
   the target, fsync the directory (`replace_atomically`). A reader sees the
   old file or the new one, never a mix, and a crash leaves one of them.
3. Keep the file's permissions and owner: WASI cannot chmod or chown, so a
   new file would get the host's default mode (a 0600 secrets file would
   become 0644). `copy_permissions` asks the host, and both `safety_copy` and
   `replace_atomically` use it.
4. Any write or fsync error is an error, never a warning: every function here
   raises `OSError`.

Paths are guest paths (`/app/.env`): they resolve inside the directories the
host granted to the step, and nowhere else.
"""

import hashlib
import os
import shutil
import stat
import time

from . import _bindings

__all__ = [
    "sha256_hex",
    "sha256_file",
    "sync_dir",
    "copy_permissions",
    "safety_copy",
    "replace_atomically",
    "replace_atomically_with",
    "utc_stamp",
]

_CHUNK = 64 * 1024


def sha256_hex(data):
    """Lowercase hex sha256 of `data` (bytes, or text encoded as UTF-8)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def sha256_file(path):
    """Lowercase hex sha256 of a file's contents, read in bounded chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            chunk = f.read(_CHUNK)
            if not chunk:
                break
            digest.update(chunk)
    return digest.hexdigest()


def sync_dir(directory):
    """fsyncs a directory, so a rename or create inside it survives a crash."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def copy_permissions(source, target):
    """Gives `target` the permission bits (rwx only), owner and group of
    `source`, through the host (`backout:step/host.copy-permissions`). Both
    are absolute guest paths in the step's grants; `target` must be in a
    read-write grant. Refused during `plan` and `verify`. Raises `OSError`
    with the host's reason.

    Outside a component (native unit tests) it does the same with chmod and
    chown."""
    source, target = os.fspath(source), os.fspath(target)
    if _bindings.IN_COMPONENT:
        try:
            _bindings.host.copy_permissions(source, target)
        except _bindings.Err as e:
            raise OSError(f"cannot give `{target}` the permissions of `{source}`: {e.value}") from None
        return
    src = os.stat(source)
    dst = os.stat(target)
    if (dst.st_uid, dst.st_gid) != (src.st_uid, src.st_gid):
        os.chown(target, src.st_uid, src.st_gid)
    os.chmod(target, stat.S_IMODE(src.st_mode) & 0o777)


def _parent_of(path):
    return os.path.dirname(path) or "."


def _name_of(path):
    name = os.path.basename(path)
    if not name or name in (".", ".."):
        raise OSError(f"`{path}` names no file")
    return name


def safety_copy(path, directory=None):
    """Copies `path` to a new file in `directory` (default: beside `path`)
    named `<name>.backout-<UTC time>.bak`, with `path`'s permissions and
    owner, fsyncs the copy and the directory, and returns the copy's path.
    Never overwrites: an existing name gets a suffix (`-1`, `-2`, …).

    The copy streams in bounded memory, so it works for files of any size."""
    path = os.fspath(path)
    directory = os.fspath(directory) if directory is not None else _parent_of(path)
    name = _name_of(path)
    stamp = utc_stamp()
    with open(path, "rb") as source:
        for attempt in range(1000):
            suffix = f"-{attempt}" if attempt else ""
            candidate = os.path.join(directory, f"{name}.backout-{stamp}{suffix}.bak")
            try:
                copy = open(candidate, "xb")
            except FileExistsError:
                continue
            try:
                with copy:
                    shutil.copyfileobj(source, copy, _CHUNK)
                    copy.flush()
                    os.fsync(copy.fileno())
                copy_permissions(path, candidate)
                sync_dir(directory)
            except BaseException:
                _remove_quietly(candidate)
                raise
            return candidate
    raise FileExistsError(f"no free safety-copy name for `{name}` in `{directory}`")


def replace_atomically(path, contents):
    """Replaces `path` with `contents` (bytes, or text written as UTF-8)
    atomically: temp file in the same directory, fsync, the permissions and
    owner of the file it replaces (when there is one), rename over `path`,
    fsync the directory. On error the temp file is removed and `path` is
    untouched."""
    if isinstance(contents, str):
        contents = contents.encode("utf-8")
    replace_atomically_with(path, lambda f: f.write(contents))


def replace_atomically_with(path, write):
    """Like `replace_atomically`, but `write(file)` fills the temp file (a
    binary file object): use it to stream large contents. `write` must not
    close, rename or remove the file."""
    path = os.fspath(path)
    directory = _parent_of(path)
    name = _name_of(path)
    temp = os.path.join(directory, f".{name}.backout-tmp-{time.time_ns():x}")
    try:
        replaces_a_file = stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        replaces_a_file = False
    f = open(temp, "xb")
    try:
        with f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if replaces_a_file:
            copy_permissions(path, temp)
        os.rename(temp, path)
        sync_dir(directory)
    except BaseException:
        if os.path.lexists(temp):
            _remove_quietly(temp)
        raise


def _remove_quietly(path):
    try:
        os.remove(path)
    except OSError:
        pass


def utc_stamp(seconds=None):
    """`YYYYMMDDTHHMMSSZ` for a point in time (default: now), in UTC, as
    `date -u +%Y%m%dT%H%M%SZ` prints it."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if seconds is None else seconds))
