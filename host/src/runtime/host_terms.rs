//! A plugin's error message in the operator's terms.
//!
//! A plugin sees the sandbox, and its errors say so: guest paths
//! (`/data/cortex.db`) and WASI error numbers (`os error 44`, Python's
//! `[Errno 63]`), which mean nothing on the host at 3 a.m. — WASI numbers
//! its errors differently from Linux, so even a reader who knows errno
//! values is misled. When a call fails, the host rewrites the plugin's
//! message before anyone sees it:
//!
//! - a WASI error number, with the text wasi-libc gives it, becomes words
//!   (`not found`, `not permitted`), and
//!   when the refusal is the sandbox's own (a write during `plan`, or under
//!   a read-only grant) it says so;
//! - each granted guest path the message names gets its host path:
//!   `/data/cortex.db (host: /srv/cortex/data/cortex.db)`.
//!
//! The rewrite only adds words and replaces the number; it never drops what
//! the plugin said. It runs after the secrets are masked, on one line.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::capability::Phase;
use crate::capability::files::{Access, DirGrant, grant_holding, is_plain_guest_path};

/// WASI error numbers (`wasi:filesystem` / wasi-libc's `errno`, as Rust's
/// std and CPython report them in a component), the text wasi-libc's
/// `strerror` gives each, and the words backout shows instead.
const ERRNOS: &[(u32, &str, &str)] = &[
    (2, "Permission denied", "permission denied"),
    (8, "Bad file descriptor", "bad file descriptor"),
    (20, "File exists", "already exists"),
    (28, "Invalid argument", "invalid argument"),
    (29, "I/O error", "I/O error"),
    (31, "Is a directory", "is a directory"),
    (32, "Symbolic link loop", "too many symbolic links"),
    (37, "Filename too long", "name too long"),
    (44, "No such file or directory", "not found"),
    (51, "No space left on device", "no space left on the device"),
    (54, "Not a directory", "not a directory"),
    (55, "Directory not empty", "directory not empty"),
    (58, "Not supported", "not supported"),
    (63, "Operation not permitted", "not permitted"),
    (69, "Read-only file system", "read-only file system"),
    (75, "Cross-device link", "crosses file systems"),
    (76, "Capabilities insufficient", "outside what the step was granted"),
];

/// Errors a write refused by the sandbox's read-only mounts comes back as.
const WRITE_REFUSED: &[u32] = &[2, 63, 69];

/// `message` with WASI error numbers in words and guest paths mapped to
/// host paths, for a call in `phase` with directory grants `dirs`.
pub fn explain(message: &str, dirs: &[DirGrant], phase: Phase) -> String {
    let (text, errno) = errno_in_words(message);
    let mut text = with_host_paths(&text, dirs);
    if errno.is_some_and(|n| WRITE_REFUSED.contains(&n))
        && let Some(why) = read_only_reason(message, dirs, phase)
    {
        let _ = write!(text, " ({why})");
    }
    text
}

/// Replaces `<strerror text> (os error N)` (Rust) and `[Errno N]
/// <strerror text>` (Python) with backout's words, when the text is the
/// one wasi-libc gives that WASI number: only then is the error certainly
/// the sandbox's. Anything else (a remote server's "No space left on device
/// (os error 28)", quoted in a plugin's message, is a Linux number) is left
/// as it is. Returns the text and the first WASI number replaced.
fn errno_in_words(message: &str) -> (String, Option<u32>) {
    let mut out = String::with_capacity(message.len());
    let mut first = None;
    let mut rest = message;
    loop {
        let rust = rest.find("(os error ").map(|at| (at, true));
        let python = rest.find("[Errno ").map(|at| (at, false));
        let Some((at, is_rust)) = [rust, python].into_iter().flatten().min_by_key(|(at, _)| *at) else { break };
        let prefix = if is_rust { "(os error " } else { "[Errno " };
        let digits_at = at + prefix.len();
        let digits = rest[digits_at..].bytes().take_while(u8::is_ascii_digit).count();
        let end = digits_at + digits;
        let known = rest[digits_at..end].parse::<u32>().ok().and_then(|n| ERRNOS.iter().find(|(e, ..)| *e == n));
        let replaced = known.and_then(|&(n, libc, words)| {
            if is_rust {
                // "<libc text> (os error N)" → "<words>"
                let before = rest[..at].strip_suffix(' ')?.strip_suffix(libc)?;
                rest[end..].starts_with(')').then(|| (before.len(), end + 1, n, words))
            } else {
                // "[Errno N] <libc text>" → "<words>"
                rest[end..].strip_prefix("] ")?.starts_with(libc).then(|| (at, end + 2 + libc.len(), n, words))
            }
        });
        match replaced {
            Some((start, stop, n, words)) => {
                out.push_str(&rest[..start]);
                out.push_str(words);
                first.get_or_insert(n);
                rest = &rest[stop..];
            }
            None => {
                out.push_str(&rest[..end]);
                rest = &rest[end..];
            }
        }
    }
    out.push_str(rest);
    (out, first)
}

/// Characters that end a path inside a message.
fn ends_path(c: char) -> bool {
    c.is_whitespace() || matches!(c, '`' | '\'' | '"' | ')' | '(' | ',' | ';' | '<' | '>' | '[' | ']')
}

/// Each guest path under a directory grant, the first time it appears,
/// followed by ` (host: <host path>)` (after its closing quote, if quoted).
/// Paths are mapped lexically: the message is about the moment the plugin
/// failed, and the host path says where to look, not what is there now.
fn with_host_paths(message: &str, dirs: &[DirGrant]) -> String {
    let mut out = String::with_capacity(message.len());
    let mut seen: Vec<String> = Vec::new();
    let mut rest = message;
    while let Some(at) = rest.find('/') {
        let boundary = rest[..at].chars().next_back().is_none_or(|c| ends_path(c) || c == '=' || c == ':');
        let token_len = rest[at..].find(ends_path).unwrap_or(rest.len() - at);
        let token = &rest[at..at + token_len];
        // A sentence may end right after a path: "cannot open /data/x." or "/data/x: …".
        let path = token.trim_end_matches(['.', ':']);
        let suffix = &token[path.len()..];
        out.push_str(&rest[..at]);
        rest = &rest[at + token_len..];
        // "a path such as `/app/.env`" gives an example, not a file.
        let example = out.trim_end_matches(['`', '\'', '"']).ends_with("such as ");
        let skip = !boundary || example || seen.iter().any(|s| s == path);
        let host = if skip { None } else { host_path(dirs, path) };
        let Some(host) = host else {
            out.push_str(token);
            continue;
        };
        seen.push(path.to_string());
        out.push_str(path);
        // After the closing quote, if the path was quoted; the note is the message's, not the path's.
        let close = rest.chars().next().filter(|c| suffix.is_empty() && matches!(c, '`' | '\'' | '"'));
        if let Some(c) = close {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
        let _ = write!(out, " (host: {})", host.display());
        out.push_str(suffix);
    }
    out.push_str(rest);
    out
}

/// The host path of a plain guest path inside a grant, when it differs
/// from the guest path (a directory mounted at its own host path needs no note).
fn host_path(dirs: &[DirGrant], guest: &str) -> Option<PathBuf> {
    if !is_plain_guest_path(guest) {
        return None;
    }
    let (grant, rel) = grant_holding(dirs, guest)?;
    let host = if rel.is_empty() { grant.host.clone() } else { grant.host.join(rel) };
    (host.as_os_str() != guest).then_some(host)
}

/// Why a write was refused, when the sandbox refused it: the phase mounts
/// everything read-only, or the path the message names is under a
/// read-only grant.
fn read_only_reason(message: &str, dirs: &[DirGrant], phase: Phase) -> Option<String> {
    if phase.read_only() {
        return Some(format!("every granted directory is read-only during `{}`", phase.as_str()));
    }
    let named = message
        .split(ends_path)
        .map(|t| t.trim_end_matches(['.', ':']))
        .filter(|t| is_plain_guest_path(t))
        .find_map(|t| grant_holding(dirs, t).filter(|(g, _)| g.access == Access::ReadOnly))
        .map(|(grant, _)| format!("`{}` is granted read-only (`ro`)", grant.guest));
    // Rust's and Python's errors often name no path; if every grant is
    // read-only, the sandbox refused whichever it was.
    named.or_else(|| {
        (!dirs.is_empty() && dirs.iter().all(|d| d.access == Access::ReadOnly))
            .then(|| "every directory this step was granted is read-only (`ro`)".to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs() -> Vec<DirGrant> {
        vec![
            DirGrant::for_test("/srv/cortex/data", "/data", Access::ReadWrite),
            DirGrant::for_test("/srv/cortex/backups", "/backups", Access::ReadOnly),
            DirGrant::for_test("/srv/app", "/srv/app", Access::ReadWrite),
        ]
    }

    #[test]
    fn rust_errors_lose_the_wasi_number_and_gain_the_host_path() {
        assert_eq!(
            explain("cannot open `/data/cortex.db`: No such file or directory (os error 44)", &dirs(), Phase::Run),
            "cannot open `/data/cortex.db` (host: /srv/cortex/data/cortex.db): not found"
        );
        assert_eq!(
            explain("failed to read /data/.env: No such file or directory (os error 44)", &dirs(), Phase::Run),
            "failed to read /data/.env (host: /srv/cortex/data/.env): not found"
        );
    }

    #[test]
    fn a_write_refused_by_a_read_only_grant_says_so() {
        assert_eq!(
            explain("cannot create /backups/x.tmp: Operation not permitted (os error 63)", &dirs(), Phase::Run),
            "cannot create /backups/x.tmp (host: /srv/cortex/backups/x.tmp): not permitted \
             (`/backups` is granted read-only (`ro`))"
        );
        assert_eq!(
            explain("cannot write /data/x: Read-only file system (os error 69)", &dirs(), Phase::Plan),
            "cannot write /data/x (host: /srv/cortex/data/x): read-only file system \
             (every granted directory is read-only during `plan`)"
        );
        let read_only = [DirGrant::for_test("/srv/cortex/backups", "/backups", Access::ReadOnly)];
        assert_eq!(
            explain("blocked: Operation not permitted (os error 63)", &read_only, Phase::Run),
            "blocked: not permitted (every directory this step was granted is read-only (`ro`))"
        );
        // A refusal on a read-write grant in `run` is not the sandbox's doing: no note.
        assert_eq!(
            explain("cannot write /data/x: Permission denied (os error 2)", &dirs(), Phase::Run),
            "cannot write /data/x (host: /srv/cortex/data/x): permission denied"
        );
    }

    #[test]
    fn python_errno_and_unknown_numbers() {
        assert_eq!(
            explain("[Errno 44] No such file or directory: '/data/flags.json'", &dirs(), Phase::Run),
            "not found: '/data/flags.json' (host: /srv/cortex/data/flags.json)"
        );
        // Only a WASI number with wasi-libc's own text is certainly the sandbox's.
        for text in [
            "boom (os error 250)",
            "only a number (os error 44)",
            "Service internal error: No space left on device (os error 28)",
            "[Errno 28] No space left on device",
            "(os error",
            "[Errno 44]",
        ] {
            assert_eq!(explain(text, &dirs(), Phase::Run), text);
        }
    }

    #[test]
    fn paths_outside_grants_and_lookalikes_are_left_alone() {
        let dirs = dirs();
        for text in [
            "see https://example.com/data/x",
            "/database is not /data",
            "/srv/app/.env is where it is",
            "a/data/b",
            "/data/../etc/passwd",
        ] {
            let expected = if text == "/database is not /data" {
                "/database is not /data (host: /srv/cortex/data)".to_string()
            } else {
                text.to_string()
            };
            assert_eq!(explain(text, &dirs, Phase::Run), expected, "{text}");
        }
    }

    #[test]
    fn an_example_path_is_not_a_file_and_gets_no_host_path() {
        let text = "`file` must be an absolute guest path such as `/data/.env`, not `data/.env`";
        assert_eq!(explain(text, &dirs(), Phase::Plan), text);
        assert_eq!(
            explain("give a path such as /data/x, not /data/y", &dirs(), Phase::Plan),
            "give a path such as /data/x, not /data/y (host: /srv/cortex/data/y)"
        );
    }

    #[test]
    fn each_path_is_noted_once_and_punctuation_stays_outside() {
        assert_eq!(
            explain("copy /backups/a.db to /data/a.db failed; /data/a.db kept.", &dirs(), Phase::Run),
            "copy /backups/a.db (host: /srv/cortex/backups/a.db) to /data/a.db (host: /srv/cortex/data/a.db) \
             failed; /data/a.db kept."
        );
        assert_eq!(
            explain("path=/data/a.db: gone", &dirs(), Phase::Run),
            "path=/data/a.db (host: /srv/cortex/data/a.db): gone"
        );
    }
}
