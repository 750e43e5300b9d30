//! release-switch through the real host: real release directories and real
//! symbolic links in temp directories, the component built from
//! `plugins/release-switch`, the registry, the CLI (`plan`, `run`, `undo`,
//! `resume`). Every refusal is checked for what it says and for the tree
//! on disk, links included, being exactly as it was. (The version order and
//! the target checks also have unit tests in `plugins/release-switch/src/`.)

use std::collections::BTreeMap;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use backout::journal;
use backout_tests::RELEASE_SWITCH;
use backout_tests::cli::{EXIT_NEEDS_ATTENTION, EXIT_SUCCEEDED, EXIT_UNDONE, Output, Sandbox, snapshot};
use serde_json::{Value, json};

use crate::bin;

/// A deployment: `app/releases/<version>/` (each with a `REVISION` file
/// naming it and an `index.html`), `app/current -> releases/<current>`,
/// and beside `app/` a directory `outside/` that no step is granted.
struct Deploy {
    sb: Sandbox,
    app: PathBuf,
    outside: PathBuf,
}

impl Deploy {
    fn new(releases: &[&str], current: &str) -> Self {
        let sb = Sandbox::new(bin());
        sb.add(RELEASE_SWITCH);
        let app = sb.mkdir("app/releases").parent().unwrap().to_path_buf();
        let outside = sb.mkdir("outside");
        sb.write("outside/secret.txt", "not for the web server\n");
        let deploy = Self { sb, app, outside };
        for release in releases {
            deploy.release(release, true);
        }
        symlink(format!("releases/{current}"), deploy.app.join("current")).unwrap();
        deploy
    }

    /// Adds `app/releases/<name>/`, with its `REVISION` marker when `complete`.
    fn release(&self, name: &str, complete: bool) {
        self.sb.write(&format!("app/releases/{name}/index.html"), format!("<h1>{name}</h1>\n"));
        if complete {
            self.sb.write(&format!("app/releases/{name}/REVISION"), format!("{name}\n"));
        }
    }

    /// A one-step runbook switching `/app/current` to a release in
    /// `releases_dir`, with `with` added to its config and the directories
    /// `dirs` granted.
    fn runbook_at(&self, releases_dir: &str, with: &str, dirs: &str) -> PathBuf {
        self.sb.write(
            "runbook.toml",
            format!(
                "version = 1\nname = \"app-rollback\"\n\n[[step]]\nid = \"switch\"\nuses = \"release-switch@0.1.0\"\n\
                 with = {{ link = \"/app/current\", releases_dir = \"{releases_dir}\", {with} }}\n\n[step.grants]\n\
                 dirs = [{dirs}]\n"
            ),
        )
    }

    /// `/app` granted with `mode`.
    fn app_grant(&self, mode: &str) -> String {
        format!("{{ host = \"{}\", guest = \"/app\", mode = \"{mode}\" }}", self.app.display())
    }

    /// A runbook on `/app/releases` with `/app` granted read-write.
    fn runbook(&self, with: &str) -> PathBuf {
        self.runbook_at("/app/releases", with, &self.app_grant("rw"))
    }

    fn cli(&self, args: &[&str], runbook: &Path) -> Output {
        let mut all = args.to_vec();
        all.push(runbook.to_str().unwrap());
        self.sb.run(&all)
    }

    /// `current`'s target, as written.
    fn current(&self) -> String {
        std::fs::read_link(self.app.join("current")).unwrap().display().to_string()
    }

    /// Every file and link of the deployment and of `outside/`.
    fn tree(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut tree = snapshot(&self.app);
        tree.extend(snapshot(&self.outside));
        tree
    }

    /// Asserts that `run` of `runbook` is refused before anything runs,
    /// saying each of `says`, and that no file or link changed.
    fn assert_refused(&self, runbook: &Path, says: &[&str]) {
        let before = self.tree();
        let out = self.cli(&["run", "--yes"], runbook);
        assert_eq!(out.code, 2, "must be refused before anything runs:\n{}", out.all());
        assert!(out.stderr.contains("nothing was run"), "{}", out.all());
        for part in says {
            assert!(out.stderr_in_guest_terms().contains(part), "the refusal should say `{part}`:\n{}", out.all());
        }
        assert_eq!(self.tree(), before, "a refused run changed files or links:\n{}", out.all());
    }
}

fn outputs(out: &Output) -> Value {
    let report = backout_tests::events::report(&out.stdout);
    report["run"]["steps"][0]["outputs"].clone()
}

#[test]
fn plan_shows_from_and_to_and_changes_nothing() {
    let d = Deploy::new(&["1.0.0", "2.0.0"], "2.0.0");
    let before = d.tree();
    let out = d.cli(&["plan"], &d.runbook(r#"to = "1.0.0", marker = "REVISION""#));
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("switch /app/current from 2.0.0 to 1.0.0"), "{}", out.all());
    assert!(
        out.stdout.contains("current -> releases/2.0.0 becomes current -> releases/1.0.0; 1.0.0 holds REVISION"),
        "{}",
        out.all()
    );
    assert_eq!(d.tree(), before);
}

#[test]
fn run_switches_to_a_relative_link_verifies_and_undo_switches_back_exactly() {
    let d = Deploy::new(&["1.0.0", "2.0.0"], "2.0.0");
    let before = d.tree();
    let runbook = d.runbook(r#"to = "1.0.0", marker = "REVISION""#);
    let out = d.cli(&["--output", "json", "run", "--yes"], &runbook);
    assert_eq!(out.code, EXIT_SUCCEEDED, "{}", out.all());
    assert_eq!(
        outputs(&out),
        json!({
            "link": "/app/current",
            "releases_dir": "/app/releases",
            "from": "2.0.0",
            "to": "1.0.0",
            "from_target": "releases/2.0.0",
            "to_target": "releases/1.0.0",
            "switched": true
        })
    );
    // Relative, so the web server on the host follows it to the same release.
    assert_eq!(d.current(), "releases/1.0.0");
    assert_eq!(std::fs::read_to_string(d.app.join("current/REVISION")).unwrap(), "1.0.0\n");
    // Only the link changed: no staged link or anything else left beside it.
    let mut expected = before.clone();
    expected.insert(d.app.join("current"), b"-> releases/1.0.0".to_vec());
    assert_eq!(d.tree(), expected);
    // The journal: the staged link declared and the outputs checkpointed
    // before `run` returned, then the step verified.
    let events: Vec<Value> = journal::read(&d.sb.journal_paths().pop().unwrap())
        .unwrap()
        .records
        .into_iter()
        .map(|r| serde_json::to_value(r.event).unwrap())
        .collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["run-started", "step-started", "temporary-file", "checkpoint", "step-ran", "step-finished", "run-finished"]
    );
    assert!(events[2]["path"].as_str().unwrap().starts_with("/app/.current.backout-tmp-"), "{}", events[2]);
    assert_eq!(events[3]["outputs"], outputs(&out));
    assert_eq!(events[5]["status"], "succeeded", "{}", events[5]);

    // A second run has nothing to do: the plan says so and nothing runs.
    let again = d.cli(&["run", "--yes"], &runbook);
    assert_eq!(again.code, EXIT_SUCCEEDED, "{}", again.all());
    assert!(again.stderr.contains("it already points there  [already in place]"), "{}", again.all());
    assert!(
        again.stderr.contains("nothing to change: every step is already in place; nothing was run"),
        "{}",
        again.all()
    );
    assert_eq!(d.tree(), expected);

    // Undo of the first run: back to 2.0.0, every file and link as before.
    let journals = d.sb.journal_paths();
    let first = journals[0].parent().unwrap().file_name().unwrap().to_str().unwrap();
    let undo = d.sb.run(&["undo", first, "--yes"]);
    assert_eq!(undo.code, EXIT_SUCCEEDED, "{}", undo.all());
    assert!(
        undo.all().contains("switched /app/current back from 1.0.0 to 2.0.0 (current -> releases/2.0.0)"),
        "{}",
        undo.all()
    );
    assert_eq!(d.current(), "releases/2.0.0");
    assert_eq!(d.tree(), before);
}

#[test]
fn to_previous_picks_the_release_before_the_current_one() {
    let d = Deploy::new(&["1.9.0", "1.10.0", "2.0.0", "2.1.0-rc.1"], "2.0.0");
    let runbook = d.runbook(r#"to = "previous", marker = "REVISION""#);
    let plan = d.cli(&["plan"], &runbook);
    assert_eq!(plan.code, 0, "{}", plan.all());
    assert!(plan.stdout.contains("switch /app/current from 2.0.0 to 1.10.0"), "{}", plan.all());
    assert!(
        plan.stdout
            .contains("\"previous\": the release before 2.0.0 in semver order (1.9.0, 1.10.0, 2.0.0, 2.1.0-rc.1)"),
        "{}",
        plan.all()
    );
    let out = d.cli(&["run", "--yes"], &runbook);
    assert_eq!(out.code, EXIT_SUCCEEDED, "{}", out.all());
    assert_eq!(d.current(), "releases/1.10.0");

    // Timestamped releases (not versions) are in name order, which is time order.
    let d = Deploy::new(&["20240102080000", "20240521093000", "20231130120000"], "20240521093000");
    let out = d.cli(&["run", "--yes"], &d.runbook(r#"to = "previous""#));
    assert_eq!(out.code, EXIT_SUCCEEDED, "{}", out.all());
    assert_eq!(d.current(), "releases/20240102080000");
}

#[test]
fn previous_with_nothing_before_the_current_release_is_refused() {
    let d = Deploy::new(&["1.0.0", "2.0.0"], "1.0.0");
    d.assert_refused(
        &d.runbook(r#"to = "previous""#),
        &["plan refused: precondition failed: there is no release before `1.0.0` in `/app/releases` (semver order: \
           1.0.0, 2.0.0); nothing to switch back to; nothing was changed"],
    );
}

#[test]
fn an_incomplete_release_is_refused_and_nothing_changes() {
    let d = Deploy::new(&["2.0.0"], "2.0.0");
    d.release("1.0.0", false);
    d.assert_refused(
        &d.runbook(r#"to = "1.0.0", marker = "REVISION""#),
        &["plan refused: precondition failed: release `1.0.0` is incomplete: `/app/releases/1.0.0/REVISION` does \
           not exist (the `marker` every complete release holds); nothing was changed"],
    );
    // "previous" does not skip it either: the operator names another release.
    d.assert_refused(
        &d.runbook(r#"to = "previous", marker = "REVISION""#),
        &["plan refused: precondition failed: release `1.0.0` is incomplete"],
    );
}

#[test]
fn a_missing_release_is_refused_naming_the_releases() {
    let d = Deploy::new(&["1.0.0", "2.0.0"], "2.0.0");
    d.assert_refused(
        &d.runbook(r#"to = "1.5.0""#),
        &["plan refused: precondition failed: release `1.5.0` does not exist in `/app/releases` (releases: 1.0.0, \
           2.0.0); nothing was changed"],
    );
}

#[test]
fn a_target_outside_the_grant_is_refused_every_way() {
    let d = Deploy::new(&["1.0.0", "2.0.0"], "2.0.0");
    // By the name in `to`.
    let slash = "it contains `/` (a release is one directory directly inside `releases_dir`)";
    for (to, why) in [("../../etc", slash), ("2.0.0/../../../outside", slash), ("..", "it contains `..`")] {
        d.assert_refused(
            &d.runbook(&format!(r#"to = "{to}""#)),
            &[&format!(
                "plan refused: invalid config: `to` must be \"previous\" or the name of a release directory in \
                     `releases_dir` (such as \"2.0.0\"), not `{to}`: {why}"
            )],
        );
    }
    // A release that is itself a link out of the grant (or anywhere).
    symlink("../../outside", d.app.join("releases/evil")).unwrap();
    d.assert_refused(
        &d.runbook(r#"to = "evil""#),
        &["plan refused: precondition failed: `/app/releases/evil` is a symbolic link (to `../../outside`), not a \
           release directory; release-switch switches only to real directories inside `/app/releases`; nothing was \
           changed"],
    );
    // `releases_dir` in another grant, or in none.
    let other = d.sb.mkdir("other/releases/1.0.0").parent().unwrap().parent().unwrap().to_path_buf();
    let both =
        format!("{}, {{ host = \"{}\", guest = \"/other\", mode = \"rw\" }}", d.app_grant("rw"), other.display());
    d.assert_refused(
        &d.runbook_at("/other/releases", r#"to = "1.0.0""#, &both),
        &["plan refused: precondition failed: `releases_dir` `/other/releases` is in the granted directory \
           `/other`, but `link` `/app/current` is in `/app`: the link's target must stay inside the link's grant, \
           so grant one directory holding both"],
    );
    d.assert_refused(
        &d.runbook_at("/etc", r#"to = "1.0.0""#, &d.app_grant("rw")),
        &["plan refused: precondition failed: `releases_dir` `/etc` is not under `link`'s granted directory `/app` \
           (nor any other granted directory): the link's target must stay inside the link's grant"],
    );
    // A `releases_dir` that is a link out of the grant.
    symlink("../outside", d.app.join("elsewhere")).unwrap();
    d.assert_refused(
        &d.runbook_at("/app/elsewhere", r#"to = "1.0.0""#, &d.app_grant("rw")),
        &["plan refused: precondition failed: `/app/elsewhere` (`releases_dir`) is a symbolic link (to \
           `../outside`); release-switch needs real directories there"],
    );
    // A `current` pointing out of the grant: undo could never write it back.
    std::fs::remove_file(d.app.join("current")).unwrap();
    symlink("../outside", d.app.join("current")).unwrap();
    d.assert_refused(
        &d.runbook(r#"to = "1.0.0""#),
        &["plan refused: precondition failed: `/app/current` points to `../outside`, which is outside the granted \
           directory `/app`; undo would have to write a link out of its grant; nothing was changed"],
    );
    // A `current` with an absolute target: WASI cannot make one, so undo could not put it back.
    std::fs::remove_file(d.app.join("current")).unwrap();
    symlink(d.app.join("releases/2.0.0"), d.app.join("current")).unwrap();
    d.assert_refused(
        &d.runbook(r#"to = "1.0.0""#),
        &["plan refused: precondition failed: `/app/current` is a symbolic link whose target the sandbox refuses \
           to read (it does for an absolute target); WASI cannot make a link with an absolute target, so undo could \
           not put it back: make it relative first (for example `ln -sfn releases/<version> current` in its \
           directory); nothing was changed"],
    );
}

#[test]
fn a_real_directory_as_link_is_refused() {
    let d = Deploy::new(&["1.0.0", "2.0.0"], "2.0.0");
    std::fs::remove_file(d.app.join("current")).unwrap();
    d.sb.write("app/current/index.html", "<h1>copied in by hand</h1>\n");
    d.assert_refused(
        &d.runbook(r#"to = "1.0.0""#),
        &["plan refused: precondition failed: `/app/current` is a real directory, not a symbolic link; \
           release-switch only switches a symbolic link (`current -> releases/<version>`) and never replaces a \
           directory or file; nothing was changed"],
    );
}

#[test]
fn undo_is_refused_when_someone_moved_the_link_meanwhile() {
    let d = Deploy::new(&["1.0.0", "2.0.0", "3.0.0"], "2.0.0");
    let out = d.cli(&["run", "--yes"], &d.runbook(r#"to = "1.0.0""#));
    assert_eq!(out.code, EXIT_SUCCEEDED, "{}", out.all());
    // Someone deploys 3.0.0 after the rollback.
    symlink("releases/3.0.0", d.app.join(".current.deploy")).unwrap();
    std::fs::rename(d.app.join(".current.deploy"), d.app.join("current")).unwrap();
    let before = d.tree();
    let undo = d.sb.run(&["undo", "last", "--yes"]);
    assert_eq!(undo.code, EXIT_NEEDS_ATTENTION, "{}", undo.all());
    assert!(
        undo.all_in_guest_terms().contains(
            "`/app/current` points to `releases/3.0.0`: neither where the run put it (`releases/1.0.0`) nor where \
             it pointed before (`releases/2.0.0`); it was changed since the run, so undo leaves it alone; nothing \
             was changed"
        ),
        "{}",
        undo.all()
    );
    assert_eq!(d.current(), "releases/3.0.0");
    assert_eq!(d.tree(), before);
}

#[test]
fn a_read_only_grant_fails_cleanly() {
    let d = Deploy::new(&["1.0.0", "2.0.0"], "2.0.0");
    let ro = d.app_grant("ro");
    // Only a read-only grant: the host refuses before anything runs.
    d.assert_refused(
        &d.runbook_at("/app/releases", r#"to = "1.0.0""#, &ro),
        &["error: step `switch`: `release-switch` writes files, but the step grants no read-write directory"],
    );
    // The link's directory read-only, another one read-write: run fails
    // before it changes anything, and nothing is left behind.
    let scratch = d.sb.mkdir("scratch");
    let dirs = format!("{ro}, {{ host = \"{}\", guest = \"/scratch\", mode = \"rw\" }}", scratch.display());
    let before = d.tree();
    let out = d.cli(&["run", "--yes"], &d.runbook_at("/app/releases", r#"to = "1.0.0""#, &dirs));
    assert_eq!(out.code, EXIT_UNDONE, "{}", out.all());
    assert!(
        out.stdout_in_guest_terms().contains(
            "FAILED   switch  in run: could not make the new link beside `/app/current`: the host did not accept a \
             temporary file: `/app/.current.backout-tmp-"
        ),
        "{}",
        out.all()
    );
    assert!(
        out.stdout.contains(
            "it is in a read-only grant; a temporary file can only be made in a read-write one; nothing was changed"
        ),
        "{}",
        out.all()
    );
    assert_eq!(d.tree(), before);
    assert!(snapshot(&scratch).is_empty());
}

/// backout killed after each record a run journals (the checkpoint and the
/// staged link among them), then `undo` or `resume`: the link is at its old
/// target or its new one, never missing, and nothing is left beside it.
#[test]
fn a_run_killed_after_any_record_is_undone_or_resumed_to_a_whole_state() {
    let reference = Deploy::new(&["1.0.0", "2.0.0"], "2.0.0");
    let out = reference.cli(&["run", "--yes"], &reference.runbook(r#"to = "1.0.0""#));
    assert_eq!(out.code, EXIT_SUCCEEDED, "{}", out.all());
    let path = reference.sb.journal_paths().pop().unwrap();
    let records = journal::read(&path).unwrap().records.len();
    assert!(records >= 6, "{records} records");
    for n in 1..records {
        let d = Deploy::new(&["1.0.0", "2.0.0"], "2.0.0");
        let before = d.tree();
        let runbook = d.runbook(r#"to = "1.0.0""#);
        let killed =
            d.sb.command()
                .args(["run", "--yes", runbook.to_str().unwrap()])
                .env("BACKOUT_TEST_CRASH_AFTER_RECORD", n.to_string())
                .output()
                .unwrap();
        assert_eq!(killed.status.code(), None, "record {n}: backout should have aborted");
        let link = std::fs::read_link(d.app.join("current")).unwrap().display().to_string();
        assert!(link == "releases/2.0.0" || link == "releases/1.0.0", "record {n}: the crash left `{link}`");
        let resume = n % 2 == 0;
        let what = format!("killed after record {n} of {records}, then {}", if resume { "resume" } else { "undo" });
        let out = d.sb.run(&[if resume { "resume" } else { "undo" }, "last", "--yes"]);
        assert!(
            out.code == 0 || (resume && out.code == 2 && out.stderr.contains("nothing to resume")),
            "{what}:\n{}",
            out.all()
        );
        let mut expected = before.clone();
        if resume {
            expected.insert(d.app.join("current"), b"-> releases/1.0.0".to_vec());
        }
        assert_eq!(d.tree(), expected, "{what}");
    }
}
