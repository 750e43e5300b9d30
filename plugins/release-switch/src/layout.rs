//! Reads the deployment's layout (the link, the releases, the grants) and
//! decides the switch: from which target to which, or why not.
//!
//! Every check here runs again in `run` (never trusting `plan`); nothing
//! here writes.

#![forbid(unsafe_code)]

use std::fs;
use std::io;

use backout_sdk::StepError;

use crate::config::{To, Valid};
use crate::link::{self, Found};
use crate::paths::{self, Escape};
use crate::version::{self, Order};

/// A switch, decided: everything `run` does and reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Switch {
    pub link: String,
    pub releases_dir: String,
    /// The granted directory the link and the releases are in.
    pub grant: String,
    /// The link's target now, as written.
    pub from_target: String,
    /// The release the link points to now, when it points to a directory
    /// directly inside `releases_dir`.
    pub from: Option<String>,
    /// The release to switch to.
    pub to: String,
    /// The relative target `run` writes.
    pub to_target: String,
    /// Set for `to = "previous"`: how the release was chosen.
    pub chosen_by: Option<Chosen>,
    /// The link already points at the release (however its target is
    /// spelled): nothing to do, and `to_target` is `from_target`.
    pub in_place: bool,
}

/// How `to = "previous"` chose its release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    /// The order of the releases (with the current one).
    pub order: Order,
    /// The releases (with the current one), oldest first.
    pub releases: Vec<String>,
}

/// Reads the layout and decides the switch `valid` asks for, or refuses with
/// `precondition` and says why. `grants` are the guest paths of the
/// directories granted to the step.
pub fn decide(valid: &Valid, grants: &[String]) -> Result<Switch, StepError> {
    let link = valid.link.as_str();
    let releases_dir = valid.releases_dir.as_str();
    let grant = link_grant(link, grants)?;
    check_same_grant(releases_dir, &grant, link, grants)?;
    real_directories(&grant, paths::parent(link), "the directory of `link`")?;
    real_directories(&grant, releases_dir, "`releases_dir`")?;
    let from_target = current_target(link)?;
    let from_path = restorable(&grant, link, &from_target)?;
    let from = (paths::parent(&from_path) == releases_dir).then(|| paths::file_name(&from_path).to_owned());
    let releases = list_releases(releases_dir)?;
    let (to, chosen_by) = match &valid.to {
        To::Release(name) => (name.clone(), None),
        To::Previous => previous(link, releases_dir, &from_target, from.as_deref(), &releases)?,
    };
    check_release(releases_dir, &to, valid.marker.as_deref(), &releases)?;
    let to_path = paths::join(releases_dir, &to);
    let in_place = from_path == to_path;
    let to_target = if in_place { from_target.clone() } else { paths::relative(paths::parent(link), &to_path) };
    // By construction; checked anyway, since this is what the sandbox guards.
    if paths::resolve(&grant, paths::parent(link), &to_target).as_deref() != Ok(to_path.as_str()) {
        return Err(StepError::failed(format!(
            "release-switch computed the target `{to_target}` for `{to_path}`, which does not lead there; nothing was changed"
        )));
    }
    Ok(Switch {
        link: link.to_owned(),
        releases_dir: releases_dir.to_owned(),
        grant,
        from_target,
        from,
        to,
        to_target,
        chosen_by,
        in_place,
    })
}

/// The grant the link is in.
pub fn link_grant(link: &str, grants: &[String]) -> Result<String, StepError> {
    match paths::grant_of(link, grants) {
        Some(grant) if grant != link => Ok(grant.to_owned()),
        Some(_) => Err(StepError::precondition(format!(
            "`link` `{link}` is a granted directory itself, not a link inside one; grant the directory that holds \
             the link and the releases, read-write; nothing was changed"
        ))),
        None => Err(StepError::precondition(format!(
            "`link` `{link}` is not inside a directory granted to this step (granted: {}); grant the directory \
             that holds the link and the releases, read-write; nothing was changed",
            shown_grants(grants)
        ))),
    }
}

fn shown_grants(grants: &[String]) -> String {
    if grants.is_empty() {
        "none".to_owned()
    } else {
        grants.iter().map(|g| format!("`{g}`")).collect::<Vec<_>>().join(", ")
    }
}

/// The link's target must stay inside the link's grant, so the releases
/// must be in that same grant (not in another grant, even one that maps the
/// same host directory, nor in a grant nested inside it).
fn check_same_grant(releases_dir: &str, grant: &str, link: &str, grants: &[String]) -> Result<(), StepError> {
    match paths::grant_of(releases_dir, grants) {
        Some(g) if g == grant => Ok(()),
        Some(other) => Err(StepError::precondition(format!(
            "`releases_dir` `{releases_dir}` is in the granted directory `{other}`, but `link` `{link}` is in \
             `{grant}`: the link's target must stay inside the link's grant, so grant one directory holding both; nothing was changed"
        ))),
        None => Err(StepError::precondition(format!(
            "`releases_dir` `{releases_dir}` is not under `link`'s granted directory `{grant}` (nor any other \
             granted directory): the link's target must stay inside the link's grant; nothing was changed"
        ))),
    }
}

/// Every directory from just below `grant` down to `path` must be a real
/// directory, not a symbolic link: a link on the way would make the
/// relative target lead elsewhere on the host than it does here (or out of
/// the grant).
fn real_directories(grant: &str, path: &str, what: &str) -> Result<(), StepError> {
    if path == grant {
        return Ok(());
    }
    let below = path.strip_prefix(grant).unwrap_or(path).trim_start_matches('/');
    let mut at = grant.to_owned();
    for part in below.split('/') {
        at = paths::join(&at, part);
        let problem = match link::look(&at) {
            Ok(Found::Directory) => continue,
            Ok(Found::Nothing) => "does not exist".to_owned(),
            Ok(found @ (Found::Link(_) | Found::HiddenLink)) => format!(
                "is a symbolic link (to {}); release-switch needs real directories there, so that the \
                 relative target it writes leads to the same place on the host and stays inside the grant",
                found.shown_target().unwrap_or_default()
            ),
            Ok(_) => "is not a directory".to_owned(),
            Err(e) => format!("cannot be read ({e})"),
        };
        return Err(StepError::precondition(format!("`{at}` ({what}) {problem}; nothing was changed")));
    }
    Ok(())
}

/// Why a link with an absolute target is refused.
const ABSOLUTE: &str = "WASI cannot make a link with an absolute target, so undo could not put it back: make it \
                        relative first (for example `ln -sfn releases/<version> current` in its directory)";

/// The link's target, refusing anything but a symbolic link.
fn current_target(link: &str) -> Result<String, StepError> {
    match link::look(link) {
        Ok(Found::Link(target)) => Ok(target),
        Ok(Found::Nothing) => Err(StepError::precondition(format!(
            "`{link}` does not exist; release-switch switches an existing link (`current -> releases/<version>`), \
             it does not create one; nothing was changed"
        ))),
        Ok(Found::HiddenLink) => Err(StepError::precondition(format!(
            "`{link}` {}; {ABSOLUTE}; nothing was changed",
            Found::HiddenLink.describe()
        ))),
        Ok(found) => Err(StepError::precondition(format!(
            "`{link}` {}; release-switch only switches a symbolic link (`current -> releases/<version>`) and \
             never replaces a directory or file; nothing was changed",
            found.describe()
        ))),
        Err(e) => Err(StepError::precondition(format!("cannot read the link `{link}`: {e}; nothing was changed"))),
    }
}

/// Where the link's current target leads: it must be one `undo` can write
/// back, a relative path that stays inside the grant.
pub fn restorable(grant: &str, link: &str, target: &str) -> Result<String, StepError> {
    paths::resolve(grant, paths::parent(link), target).map_err(|why| {
        let reason = match why {
            Escape::Absolute => format!("an absolute path; {ABSOLUTE}"),
            Escape::Leaves => {
                format!("outside the granted directory `{grant}`; undo would have to write a link out of its grant")
            }
            Escape::Empty => "empty".to_owned(),
        };
        StepError::precondition(format!(
            "`{link}` points to `{}`, which is {reason}; nothing was changed",
            target.escape_debug()
        ))
    })
}

/// The releases: the real directories directly inside `releases_dir` whose
/// names are not hidden (a name starting with `.`), by name. Links, files
/// and names that are not UTF-8 are not releases.
pub fn list_releases(releases_dir: &str) -> Result<Vec<String>, StepError> {
    let unreadable =
        |e: io::Error| StepError::precondition(format!("cannot list `{releases_dir}`: {e}; nothing was changed"));
    let mut releases = Vec::new();
    for entry in fs::read_dir(releases_dir).map_err(unreadable)? {
        let entry = entry.map_err(unreadable)?;
        let Ok(name) = entry.file_name().into_string() else { continue };
        if name.starts_with('.') {
            continue;
        }
        if entry.file_type().map_err(unreadable)?.is_dir() {
            releases.push(name);
        }
    }
    releases.sort();
    Ok(releases)
}

/// The release before the current one, with the order that chose it.
fn previous(
    link: &str,
    releases_dir: &str,
    from_target: &str,
    from: Option<&str>,
    releases: &[String],
) -> Result<(String, Option<Chosen>), StepError> {
    let Some(current) = from else {
        return Err(StepError::precondition(format!(
            "`to = \"previous\"` needs `{link}` to point at a release in `{releases_dir}`, but it points to `{}`; \
             name the release in `to`; nothing was changed",
            from_target.escape_debug()
        )));
    };
    let (order, before) = version::previous(releases, current);
    let mut all: Vec<String> = releases.to_vec();
    if !all.iter().any(|r| r == current) {
        all.push(current.to_owned());
    }
    let sorted = order.sorted(&all);
    match before {
        Some(name) => Ok((name.to_owned(), Some(Chosen { order, releases: sorted }))),
        None => Err(StepError::precondition(format!(
            "there is no release before `{current}` in `{releases_dir}` ({}: {}); nothing to switch back to; \
             nothing was changed",
            order.describe(),
            list(&sorted)
        ))),
    }
}

/// Names for a message, newest last, at most the 10 newest.
pub fn list(names: &[String]) -> String {
    let skip = names.len().saturating_sub(10);
    let shown: Vec<&str> = names[skip..].iter().map(String::as_str).collect();
    let more = if skip > 0 { format!("{skip} older, ") } else { String::new() };
    if shown.is_empty() { "none".to_owned() } else { format!("{more}{}", shown.join(", ")) }
}

/// The release must be a real directory in `releases_dir` holding the marker.
fn check_release(releases_dir: &str, to: &str, marker: Option<&str>, releases: &[String]) -> Result<(), StepError> {
    let path = paths::join(releases_dir, to);
    let problem = match link::look(&path) {
        Ok(Found::Directory) => None,
        Ok(Found::Nothing) => Some(format!(
            "release `{to}` does not exist in `{releases_dir}` (releases: {})",
            list(&version::Order::of(releases.iter().map(String::as_str)).sorted(releases))
        )),
        Ok(found @ (Found::Link(_) | Found::HiddenLink)) => Some(format!(
            "`{path}` is a symbolic link (to {}), not a release directory; release-switch switches only to \
             real directories inside `{releases_dir}`",
            found.shown_target().unwrap_or_default()
        )),
        Ok(_) => Some(format!("`{path}` is not a directory, so it is not a release")),
        Err(e) => Some(format!("cannot read `{path}`: {e}")),
    };
    if let Some(problem) = problem {
        return Err(StepError::precondition(format!("{problem}; nothing was changed")));
    }
    let Some(marker) = marker else { return Ok(()) };
    let marker_path = paths::join(&path, marker);
    let problem = match link::look(&marker_path) {
        Ok(Found::File) => return Ok(()),
        Ok(Found::Nothing) => format!("`{marker_path}` does not exist"),
        Ok(Found::Link(_) | Found::HiddenLink) => {
            format!("`{marker_path}` is a symbolic link, not a file the release holds")
        }
        Ok(_) => format!("`{marker_path}` is not a regular file"),
        Err(e) => format!("`{marker_path}` cannot be read ({e})"),
    };
    Err(StepError::precondition(format!(
        "release `{to}` is incomplete: {problem} (the `marker` every complete release holds); nothing was changed"
    )))
}
