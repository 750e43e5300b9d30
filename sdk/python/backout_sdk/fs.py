"""Safe-file helpers: the data-safety rules every step that writes must keep
(the Python twin of the Rust SDK's `fs`).

1. Take a safety copy before overwriting anything (`safety_copy`) and put its
   path in the outputs. A safety copy is written under a temporary name and
   only then given its `.bak` name, so a `.bak` file is always complete.
2. Write to a temporary file in the same directory, fsync it, rename it over
   the target, fsync the directory (`replace_atomically`). A reader sees the
   old file or the new one, never a mix, and a crash leaves one of them.
3. Declare every temporary file to the host before creating it
   (`temporary_file`; both helpers above do): if backout is killed mid-call,
   the host knows the file is debris and removes it.
4. Call `backout_sdk.checkpoint` once the safety copy is taken and before the
   first change a crash could leave behind (the rename over the live file),
   so `verify` and `undo` can finish the job after a crash.
5. Keep the file's permissions and owner: WASI cannot chmod or chown, so a
   new file would get the host's default mode (a 0600 secrets file would
   become 0644). `copy_permissions` asks the host, and both `safety_copy` and
   `replace_atomically` use it on the temporary file while it is still empty,
   before its first byte is written: a copy of a 0600 file is never readable
   by others, not even while it is being written. A brand-new file (an atomic
   replace of a path where no file is) has nothing to take permissions from
   and keeps the host's default mode (0666 less backout's umask) from
   creation on, which is the mode it ends with anyway: nothing of an existing
   file is in it.
6. Any write or fsync error is an error, never a warning: every function here
   raises `OSError`.

Paths are guest paths (`/app/.env`): they resolve inside the directories the
host granted to the step, and nowhere else.
"""

import errno
import hashlib
import os
import shutil
import stat
import time

from . import _bindings

__all__ = [
    "sha256_hex",
    "sha256_file",
    "copy_file",
    "sync_dir",
    "copy_permissions",
    "temporary_file",
    "declared_temporary_files",
    "clear_declared_temporary_files",
    "rename_no_clobber",
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


def _host_path(path):
    """`path` as a string when the host's file operations can take it: in a
    component, an absolute guest path to a regular file (checked here first,
    so a missing file raises `FileNotFoundError` as `open` would)."""
    path = os.fspath(path)
    if not (_bindings.HAS_FILES and os.path.isabs(path)):
        return None
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise OSError(errno.EINVAL, f"`{path}` is not a regular file")
    return path


def sha256_file(path):
    """Lowercase hex sha256 of a regular file's contents.

    In a component, for an absolute guest path, the host hashes it
    (`backout:step/files.sha256-file`: native sha256, many times faster than
    hashing in the interpreter) within the same grants as the plugin's own
    reads. Elsewhere it is read here in bounded chunks. Same digest either way."""
    host = _host_path(path)
    if host is not None:
        try:
            return _bindings.files.sha256_file(host)
        except _bindings.Err as e:
            raise OSError(f"cannot hash `{host}`: {e.value}") from None
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            chunk = f.read(_CHUNK)
            if not chunk:
                break
            digest.update(chunk)
    return digest.hexdigest()


def copy_file(source, target):
    """Copies the regular file `source` to `target` (created, or truncated
    and rewritten), fsyncs `target`, and returns the bytes copied. `target`'s
    permissions are left as they are (see `copy_permissions`).

    In a component, for absolute guest paths, the host copies
    (`backout:step/files.copy-file`: in the kernel, with progress shown to the
    operator) within the same grants as the plugin's own writes, and only in
    `run` and `undo`. Elsewhere it streams through this process. Same bytes
    either way."""
    host = _host_path(source)
    target = os.fspath(target)
    if host is not None and os.path.isabs(target):
        try:
            return _bindings.files.copy_file(host, target)
        except _bindings.Err as e:
            raise OSError(f"cannot copy `{host}` to `{target}`: {e.value}") from None
    with open(source, "rb") as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, _CHUNK)
        dst.flush()
        os.fsync(dst.fileno())
        return dst.tell()


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


_declared = []


def temporary_file(path):
    """Declares to the host that the step is about to create a temporary
    file at `path` (an absolute guest path inside a read-write grant) and
    will remove or rename it away before the call returns
    (`backout:step/host.temporary-file`). Call it before the file exists: if
    the call never returns (backout is killed, the call times out or traps),
    the host removes the file. Only `run` and `undo` may call it;
    `safety_copy` and `replace_atomically` declare their own. Raises
    `OSError` with the host's reason.

    Outside a component (native unit tests) it records `path` in a list that
    `declared_temporary_files()` returns."""
    path = os.fspath(path)
    if _bindings.IN_COMPONENT:
        try:
            _bindings.host.temporary_file(path)
        except _bindings.Err as e:
            raise OSError(f"the host did not accept `{path}` as a temporary file: {e.value}") from None
        return
    _declared.append(path)


def declared_temporary_files():
    """The paths `temporary_file` declared so far, oldest first. Native only."""
    return list(_declared)


def clear_declared_temporary_files():
    """Forgets the declared paths. Native only."""
    _declared.clear()


def rename_no_clobber(source, target):
    """Gives the complete file `source` the new name `target`, never
    replacing a file already there (`FileExistsError`). Both must be in the
    same directory (or at least the same grant and file system). Does not
    fsync the directory: the caller does, once.

    A hard link to `target` and then the removal of `source`, so the file
    system itself refuses an existing `target`. Where hard links are
    unsupported (EPERM, ENOTSUP) it checks that `target` is free and renames.
    On error `source` is still there and `target` is not this call's."""
    source, target = os.fspath(source), os.fspath(target)
    try:
        os.link(source, target)
    except FileExistsError:
        raise
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS):
            raise
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, f"`{target}` already exists") from None
        os.rename(source, target)
        return
    try:
        os.remove(source)
    except BaseException:
        _remove_quietly(target)
        raise


def _create_temp(directory, name, permissions_from=None):
    """A new hidden temporary file `.{name}.backout-tmp-{ns}` in `directory`,
    declared to the host before it exists, open for binary writing: returns
    `(path, file)`. A name already taken is skipped, never declared.

    With `permissions_from`, the empty file gets that file's permissions and
    owner (`copy_permissions`) before it is returned, so not one byte is ever
    written to it under the default mode; if that fails, the file is removed
    and the error raised."""
    nanos = time.time_ns()
    for attempt in range(100):
        suffix = f"-{attempt}" if attempt else ""
        temp = os.path.join(directory, f".{name}.backout-tmp-{nanos:x}{suffix}")
        if os.path.lexists(temp):
            continue
        temporary_file(temp)
        try:
            f = open(temp, "xb")
        except FileExistsError:
            continue
        if permissions_from is not None:
            try:
                copy_permissions(permissions_from, temp)
            except BaseException:
                f.close()
                _remove_quietly(temp)
                raise
        return temp, f
    raise FileExistsError(errno.EEXIST, f"no free temporary name for `{name}` in `{directory}`")


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

    The copy has `path`'s permissions and owner from before its first byte:
    they are given to the empty temporary file, so a copy of a 0600 file is
    never readable by others while it is written.

    The bytes go to a declared temporary file first (`temporary_file`), which
    takes the `.bak` name only once complete and fsync'd
    (`rename_no_clobber`): a crash never leaves a partial file under a safety
    copy's name. The copy streams in bounded memory, so it works for files of
    any size."""
    path = os.fspath(path)
    directory = os.fspath(directory) if directory is not None else _parent_of(path)
    name = _name_of(path)
    stamp = utc_stamp()
    with open(path, "rb") as source:
        temp, copy = _create_temp(directory, name, permissions_from=path)
        try:
            with copy:
                if _host_path(path) is not None:
                    # The host fills the empty temporary file, which
                    # already has `path`'s permissions, and fsyncs it.
                    copy_file(path, temp)
                else:
                    shutil.copyfileobj(source, copy, _CHUNK)
                    copy.flush()
                    os.fsync(copy.fileno())
            for attempt in range(1000):
                suffix = f"-{attempt}" if attempt else ""
                candidate = os.path.join(directory, f"{name}.backout-{stamp}{suffix}.bak")
                try:
                    rename_no_clobber(temp, candidate)
                except FileExistsError:
                    continue
                try:
                    sync_dir(directory)
                except BaseException:
                    _remove_quietly(candidate)
                    raise
                return candidate
        except BaseException:
            _remove_quietly(temp)
            raise
        _remove_quietly(temp)
    raise FileExistsError(errno.EEXIST, f"no free safety-copy name for `{name}` in `{directory}`")


def replace_atomically(path, contents):
    """Replaces `path` with `contents` (bytes, or text written as UTF-8)
    atomically: a temp file in the same directory, given the permissions and
    owner of the file it replaces (when there is one) while still empty,
    written, fsynced, renamed over `path`, then the directory fsynced. On
    error the temp file is removed and `path` is untouched.

    When no file is at `path`, the new file keeps the host's default mode
    (0666 less backout's umask) throughout: WASI has no chmod and there is no
    file to take other permissions from, and the finished file would have
    that mode anyway."""
    if isinstance(contents, str):
        contents = contents.encode("utf-8")
    replace_atomically_with(path, lambda f: f.write(contents))


def replace_atomically_with(path, write):
    """Like `replace_atomically`, but `write(file)` fills the temp file (a
    binary file object): use it to stream large contents. `write` must not
    close, rename or remove the file. The temp file is declared to the host
    before it is created (`temporary_file`), and already has the replaced
    file's permissions and owner when `write` gets it."""
    path = os.fspath(path)
    directory = _parent_of(path)
    name = _name_of(path)
    try:
        replaces_a_file = stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        replaces_a_file = False
    temp, f = _create_temp(directory, name, permissions_from=path if replaces_a_file else None)
    try:
        with f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
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
