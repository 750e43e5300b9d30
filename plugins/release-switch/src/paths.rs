//! Guest paths and link targets, by their text alone: no file system.
//!
//! A link's target is resolved the way the kernel would on the host, but
//! lexically: from the link's directory, `..` going up one directory. The
//! target release-switch writes is relative and must stay inside the grant
//! the link is in: the host mounts that grant at the same place for the
//! service that follows the link, so a relative target that never leaves it
//! leads to the same directory inside the sandbox and outside it.

#![forbid(unsafe_code)]

use std::fmt;

/// The longest a file name may be (`NAME_MAX` on Linux).
pub const NAME_MAX: usize = 255;

/// Why a path in the config is refused, or `None` when it is a plain
/// absolute guest path: it starts with `/`, has no empty, `.` or `..` part,
/// no trailing `/`, no NUL, and is not `/` itself.
pub fn plain_absolute_problem(path: &str) -> Option<&'static str> {
    let Some(rest) = path.strip_prefix('/') else {
        return Some("it is not an absolute guest path (it must start with `/`)");
    };
    if rest.is_empty() {
        return Some("it is `/` itself");
    }
    if path.contains('\0') {
        return Some("it contains a NUL character");
    }
    if rest.split('/').any(|part| matches!(part, "" | "." | "..")) {
        return Some("it has an empty, `.` or `..` part, or a trailing `/`");
    }
    None
}

/// Why `name` cannot be the name of a release directory, or `None`: one
/// path component, not hidden (release-switch never switches to a name
/// starting with `.`, which also rules out `.` and `..`), without `..`
/// anywhere, `/`, NUL or control characters, at most [`NAME_MAX`] bytes.
pub fn release_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("it is empty")
    } else if name.contains('/') {
        Some("it contains `/` (a release is one directory directly inside `releases_dir`)")
    } else if name.contains("..") {
        Some("it contains `..`")
    } else if name.starts_with('.') {
        Some("it starts with `.` (hidden directories are never releases)")
    } else if name.chars().any(char::is_control) {
        Some("it contains a control character")
    } else if name.len() > NAME_MAX {
        Some("it is longer than 255 bytes")
    } else {
        None
    }
}

/// Why `marker` cannot name a file inside a release, or `None`: a relative
/// path (`REVISION`, `.release-complete`, `public/BUILD_ID`) with no empty,
/// `.` or `..` part and no NUL.
pub fn marker_problem(marker: &str) -> Option<&'static str> {
    if marker.is_empty() {
        Some("it is empty")
    } else if marker.starts_with('/') {
        Some("it must be a path relative to the release directory, not an absolute one")
    } else if marker.contains('\0') {
        Some("it contains a NUL character")
    } else if marker.split('/').any(|part| matches!(part, "" | "." | "..")) {
        Some("it has an empty, `.` or `..` part, or a trailing `/`")
    } else {
        None
    }
}

/// `dir` with a trailing `/` removed, except for `/` itself.
fn trim(dir: &str) -> &str {
    match dir.trim_end_matches('/') {
        "" => "/",
        trimmed => trimmed,
    }
}

/// Whether `path` lies strictly inside the directory `dir`.
pub fn is_inside(path: &str, dir: &str) -> bool {
    let dir = trim(dir);
    if dir == "/" {
        return path.len() > 1 && path.starts_with('/');
    }
    path.strip_prefix(dir).is_some_and(|rest| rest.len() > 1 && rest.starts_with('/'))
}

/// The granted directory `path` is in, or is: the longest of `grants` that
/// contains it or equals it (grants may nest, and the innermost one is the
/// one the file system uses), without a trailing `/`.
pub fn grant_of<'g>(path: &str, grants: &'g [String]) -> Option<&'g str> {
    grants.iter().map(|g| trim(g)).filter(|g| *g == path || is_inside(path, g)).max_by_key(|g| g.len())
}

/// The directory a plain absolute path is in (`/app/current` → `/app`).
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// The last part of a plain absolute path (`/app/current` → `current`).
pub fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// `dir/name`, for a plain absolute `dir`.
pub fn join(dir: &str, name: &str) -> String {
    if dir == "/" { format!("/{name}") } else { format!("{dir}/{name}") }
}

/// The parts of a plain absolute path below `/`.
fn parts(path: &str) -> Vec<&str> {
    path.split('/').filter(|p| !p.is_empty()).collect()
}

/// The relative link target that leads from the directory `from_dir` to
/// `to` (both plain absolute paths): `releases/2.0.0` from `/app` to
/// `/app/releases/2.0.0`, `../releases/2.0.0` from `/app/www`.
pub fn relative(from_dir: &str, to: &str) -> String {
    let (from, to) = (parts(from_dir), parts(to));
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let ups = std::iter::repeat_n("..", from.len() - common);
    let target: Vec<&str> = ups.chain(to[common..].iter().copied()).collect();
    if target.is_empty() { ".".to_owned() } else { target.join("/") }
}

/// Why a link target does not lead anywhere inside the grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Escape {
    /// The target is an absolute path: inside the sandbox it names a guest
    /// path, outside it a host path, and WASI cannot make such a link.
    Absolute,
    /// Followed from the link's directory, the target goes above the grant.
    Leaves,
    /// The target is empty.
    Empty,
}

impl fmt::Display for Escape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Absolute => "it is an absolute path",
            Self::Leaves => "it leads out of the granted directory",
            Self::Empty => "it is empty",
        })
    }
}

/// Where the link target `target`, in a link in the directory `link_dir`,
/// leads: a plain absolute guest path inside `grant` (or `grant` itself).
/// `.` and empty parts are skipped and `..` goes up one directory, which is
/// what the kernel does when no directory on the way is itself a link
/// (release-switch checks that they are not).
pub fn resolve(grant: &str, link_dir: &str, target: &str) -> Result<String, Escape> {
    if target.is_empty() {
        return Err(Escape::Empty);
    }
    if target.starts_with('/') {
        return Err(Escape::Absolute);
    }
    let grant = trim(grant);
    let below = if link_dir == grant {
        ""
    } else {
        match link_dir.strip_prefix(grant) {
            Some(rest) if grant == "/" || rest.starts_with('/') => rest,
            _ => return Err(Escape::Leaves),
        }
    };
    let mut inside: Vec<&str> = parts(below);
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if inside.pop().is_none() {
                    return Err(Escape::Leaves);
                }
            }
            name => inside.push(name),
        }
    }
    Ok(inside.iter().fold(grant.to_owned(), |path, part| join(&path, part)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn plain_absolute_paths_are_accepted_and_tricks_refused() {
        for ok in ["/app/current", "/a", "/srv/www/app/releases"] {
            assert_eq!(plain_absolute_problem(ok), None, "{ok}");
        }
        for bad in ["app/current", "", "/", "/app/", "/app//current", "/app/./current", "/app/../etc", "/a\0b"] {
            assert!(plain_absolute_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn release_names_are_single_visible_components() {
        for ok in ["2.0.0", "v2.0.1", "20240521093000", "2024-05-21_0930", "rc 1"] {
            assert_eq!(release_name_problem(ok), None, "{ok}");
        }
        let cases = [
            ("../../etc", "contains `/`"),
            ("releases/2.0.0", "contains `/`"),
            ("..", "contains `..`"),
            ("1..2", "contains `..`"),
            (".", "starts with `.`"),
            (".hidden", "starts with `.`"),
            ("", "empty"),
            ("a\nb", "control character"),
        ];
        for (bad, why) in cases {
            let problem = release_name_problem(bad).unwrap_or_else(|| panic!("{bad:?} accepted"));
            assert!(problem.contains(why), "{bad:?}: {problem}");
        }
        assert!(release_name_problem(&"x".repeat(256)).is_some());
        assert_eq!(release_name_problem(&"x".repeat(255)), None);
    }

    #[test]
    fn markers_are_relative_plain_paths() {
        for ok in ["REVISION", ".release-complete", "public/BUILD_ID"] {
            assert_eq!(marker_problem(ok), None, "{ok}");
        }
        for bad in ["", "/REVISION", "../REVISION", "a/../../b", "./REVISION", "dir/"] {
            assert!(marker_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn the_innermost_grant_holds_a_path() {
        let g = grants(&["/app", "/app/releases", "/data/", "/apple"]);
        assert_eq!(grant_of("/app/current", &g), Some("/app"));
        assert_eq!(grant_of("/app/releases/2.0.0", &g), Some("/app/releases"));
        assert_eq!(grant_of("/data/x", &g), Some("/data"));
        assert_eq!(grant_of("/apple/x", &g), Some("/apple"));
        assert_eq!(grant_of("/app/releases", &g), Some("/app/releases"), "a grant's root is in that grant");
        assert_eq!(grant_of("/ap", &g), None);
        assert_eq!(grant_of("/etc/passwd", &g), None);
        assert_eq!(grant_of("/etc/passwd", &grants(&["/"])), Some("/"));
    }

    #[test]
    fn parent_file_name_and_join() {
        assert_eq!((parent("/app/current"), file_name("/app/current")), ("/app", "current"));
        assert_eq!((parent("/current"), file_name("/current")), ("/", "current"));
        assert_eq!(join("/", "x"), "/x");
        assert_eq!(join("/app", "x"), "/app/x");
    }

    #[test]
    fn relative_targets_go_up_only_as_far_as_needed() {
        assert_eq!(relative("/app", "/app/releases/2.0.0"), "releases/2.0.0");
        assert_eq!(relative("/app/www", "/app/releases/2.0.0"), "../releases/2.0.0");
        assert_eq!(relative("/app/a/b", "/app/releases/2.0.0"), "../../releases/2.0.0");
        assert_eq!(relative("/app/releases", "/app/releases/2.0.0"), "2.0.0");
        assert_eq!(relative("/", "/releases/1"), "releases/1");
        assert_eq!(relative("/app", "/app"), ".");
    }

    #[test]
    fn resolve_follows_dots_and_refuses_to_leave_the_grant() {
        assert_eq!(resolve("/app", "/app", "releases/2.0.0"), Ok("/app/releases/2.0.0".to_owned()));
        assert_eq!(resolve("/app", "/app", "./releases//2.0.0/"), Ok("/app/releases/2.0.0".to_owned()));
        assert_eq!(resolve("/app", "/app/www", "../releases/2.0.0"), Ok("/app/releases/2.0.0".to_owned()));
        assert_eq!(resolve("/app", "/app", "releases/../releases/1.0.0"), Ok("/app/releases/1.0.0".to_owned()));
        assert_eq!(resolve("/app", "/app", "releases/.."), Ok("/app".to_owned()));
        assert_eq!(resolve("/", "/srv", "../etc"), Ok("/etc".to_owned()));
        assert_eq!(resolve("/app", "/app", "../../etc"), Err(Escape::Leaves));
        assert_eq!(resolve("/app", "/app", ".."), Err(Escape::Leaves));
        // Out and back in is still out: on the host `..` of the grant is another directory.
        assert_eq!(resolve("/app", "/app", "../app/releases/1.0.0"), Err(Escape::Leaves));
        assert_eq!(resolve("/app", "/app/www", "../../app/releases"), Err(Escape::Leaves));
        assert_eq!(resolve("/app", "/app", "/etc"), Err(Escape::Absolute));
        assert_eq!(resolve("/app", "/app", "/app/releases/1.0.0"), Err(Escape::Absolute));
        assert_eq!(resolve("/app", "/app", ""), Err(Escape::Empty));
        assert_eq!(resolve("/app", "/other", "x"), Err(Escape::Leaves), "a link directory outside the grant");
        assert_eq!(resolve("/app", "/apple", "x"), Err(Escape::Leaves));
    }

    #[test]
    fn a_relative_target_resolves_back_to_where_it_was_made_for() {
        for (dir, to) in [("/app", "/app/releases/2.0.0"), ("/app/www/x", "/app/releases/v1"), ("/app", "/app/r")] {
            assert_eq!(resolve("/app", dir, &relative(dir, to)).as_deref(), Ok(to), "{dir} → {to}");
        }
    }
}
