//! The hostile suite, completed (issue 13, section 3): every way out of the
//! sandbox that `sandbox.rs` and `net.rs` do not try yet, made by the real
//! hostile plugin (`tests/plugins/hostile`) through the real CLI.
//!
//! Each test proves the same four things: the attack fails with a message
//! that names the step and the reason; the exit code is the one for that
//! failure (4 after a step failed and `before` was undone, 2 for a plan-time
//! refusal); the host carries on normally (it undoes the step before the
//! attack with a fresh instance and answers the next command); and a
//! snapshot of everything outside the read-write grant (`outside/`, which no
//! step is granted, and the read-only grant `ro/`: contents, and for every
//! entry its kind, mode, size, link count, inode and times) is the same
//! before and after.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use backout_tests::HOSTILE;
use backout_tests::cli::{EXIT_SUCCEEDED, EXIT_UNDONE, Output, Sandbox, sha256_bytes, snapshot};

use crate::bin;

/// What the file outside every grant holds: it must never show up in output.
const SECRET: &str = "TOPSECRET-escapes-do-not-leak";

/// A sandbox with the hostile plugin registered and three trees: `data/`
/// (granted read-write as `/data`), `ro/` (granted read-only as `/ro`) and
/// `outside/` (granted to no step).
struct Arena {
    sb: Sandbox,
    data: PathBuf,
    ro: PathBuf,
    outside: PathBuf,
}

/// Everything a step may not change: file contents, and per entry its metadata.
#[derive(Debug, PartialEq)]
struct Protected {
    contents: BTreeMap<PathBuf, Vec<u8>>,
    metadata: BTreeMap<PathBuf, String>,
}

impl Arena {
    fn new() -> Self {
        use std::os::unix::fs::PermissionsExt;
        let sb = Sandbox::new(bin());
        sb.add(HOSTILE);
        sb.write("data/inside.txt", "inside\n");
        sb.write("ro/kept.txt", "kept\n");
        sb.write("ro/sub/deep.txt", "deep\n");
        let secret = sb.write("outside/secret.txt", SECRET);
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        sb.write("outside/dir/nested.txt", "nested\n");
        let root = sb.path().canonicalize().unwrap();
        Self { data: root.join("data"), ro: root.join("ro"), outside: root.join("outside"), sb }
    }

    fn secret(&self) -> PathBuf {
        self.outside.join("secret.txt")
    }

    /// `outside/` and `ro/`: contents ([`snapshot`]) and, for every entry
    /// (directories too), kind, mode, size, link count, inode, mtime and ctime.
    fn protected(&self) -> Protected {
        let mut contents = snapshot(&self.outside);
        contents.extend(snapshot(&self.ro));
        let mut metadata = BTreeMap::new();
        for root in [&self.outside, &self.ro] {
            metadata_of(root, &mut metadata);
        }
        Protected { contents, metadata }
    }

    /// The `[step.grants]` of the attacking step: `data/` read-write, `ro/` read-only.
    fn grants(&self) -> String {
        format!(
            "[step.grants]\ndirs = [{{ host = \"{}\", guest = \"/data\", mode = \"rw\" }}, \
             {{ host = \"{}\", guest = \"/ro\", mode = \"ro\" }}]\n",
            self.data.display(),
            self.ro.display()
        )
    }

    /// A runbook of two steps: `before` (an echo with no grants, which the
    /// host must undo after the attack fails) and `attack`, the hostile
    /// plugin with `with` (the inside of its `with` table), the grants of
    /// [`Arena::grants`] plus `extra_grants`, and `extra` more step keys.
    fn runbook_with(&self, with: &str, extra: &str, extra_grants: &str) -> PathBuf {
        let text = format!(
            "version = 1\nname = \"escape\"\n\n\
             [[step]]\nid = \"before\"\nuses = \"hostile@0.1.0\"\nwith = {{ attack = \"echo\", contents = \"first\" }}\n\n\
             [[step]]\nid = \"attack\"\nuses = \"hostile@0.1.0\"\n{extra}\nwith = {{ {with} }}\n{}{extra_grants}",
            self.grants()
        );
        self.sb.write("runbook.toml", text)
    }

    fn runbook(&self, with: &str, extra: &str) -> PathBuf {
        self.runbook_with(with, extra, "")
    }

    fn run(&self, with: &str, extra: &str) -> Output {
        let runbook = self.runbook(with, extra);
        self.sb.run(&["run", "--yes", runbook.to_str().unwrap()])
    }

    fn plan(&self, with: &str) -> Output {
        let runbook = self.runbook(with, "");
        self.sb.run(&["plan", runbook.to_str().unwrap()])
    }

    /// The attack was refused: exit 4; the `FAILED   attack` line names the
    /// step and contains `reason`; nothing escaped or leaked; the host undid
    /// `before` (a fresh instance after the failure) and still answers
    /// `backout runs`.
    fn assert_refused(&self, out: &Output, reason: &str) {
        assert_eq!(out.code, EXIT_UNDONE, "{}", out.all());
        let failed = failed_line(out);
        assert!(failed.contains(reason), "the failure must say `{reason}`:\n{}", out.all());
        assert!(out.stdout.contains("Run failed at step `attack`"), "{}", out.all());
        self.assert_nothing_leaked(out);
        self.assert_host_carried_on(out);
    }

    fn assert_nothing_leaked(&self, out: &Output) {
        assert!(!out.all().contains("ESCAPED"), "the attack got through:\n{}", out.all());
        assert!(!out.all().contains(SECRET), "the secret leaked:\n{}", out.all());
        assert!(!self.sb.journals().contains(SECRET), "the secret reached the journal");
    }

    /// The host went on after the failure: it undid `before` with a fresh
    /// instance, and the next command works and sees the run.
    fn assert_host_carried_on(&self, out: &Output) {
        assert!(out.stdout.contains("undone   before"), "the host must undo `before`:\n{}", out.all());
        let runs = self.sb.run(&["runs"]);
        assert_eq!(runs.code, 0, "{}", runs.all());
        assert!(runs.stdout.contains("undone"), "{}", runs.all());
    }
}

/// Kind, mode, size, link count, inode, mtime and ctime of `dir` and
/// everything under it, without following symbolic links.
fn metadata_of(dir: &Path, into: &mut BTreeMap<PathBuf, String>) {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(dir).unwrap();
    let kind = if meta.is_dir() {
        "dir"
    } else if meta.is_file() {
        "file"
    } else {
        "other"
    };
    into.insert(
        dir.to_path_buf(),
        format!(
            "{kind} mode {:o} size {} links {} inode {} mtime {}.{} ctime {}.{}",
            meta.mode(),
            meta.size(),
            meta.nlink(),
            meta.ino(),
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ctime(),
            meta.ctime_nsec()
        ),
    );
    if meta.is_dir() {
        for entry in std::fs::read_dir(dir).unwrap() {
            metadata_of(&entry.unwrap().path(), into);
        }
    }
}

/// The `FAILED   attack  …` entry of a run's report: its line and the
/// indented lines that continue the failure message (a trap's backtrace).
fn failed_line(out: &Output) -> String {
    let mut lines = out.stdout.lines().skip_while(|l| !l.starts_with("FAILED   attack"));
    let first = lines.next().unwrap_or_else(|| panic!("no `FAILED   attack` line:\n{}", out.all()));
    std::iter::once(first).chain(lines.take_while(|l| l.starts_with("    "))).collect::<Vec<_>>().join("\n")
}

/// The id of the run `out` reports (`Run id: …`).
fn run_id(out: &Output) -> String {
    let line = out.stdout.lines().find(|l| l.starts_with("Run id: ")).expect("a run id");
    line["Run id: ".len()..].split_whitespace().next().unwrap().to_string()
}

// ---------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------

/// A symbolic link the plugin makes itself, to a file or directory outside
/// its grants, cannot be followed by its reads, writes, appends or listings,
/// nor by the host's `copy-permissions` (a link with an absolute target is
/// refused when it is made; one with a relative target is made, and refused
/// when it is followed).
#[test]
fn a_symlink_the_plugin_makes_cannot_be_followed_out_of_its_grant() {
    let a = Arena::new();
    let before = a.protected();
    let secret = a.secret().display().to_string();
    let outside = a.outside.display().to_string();
    let targets = [
        (secret.as_str(), ""),
        ("../outside/secret.txt", ""),
        ("/outside/secret.txt", ""),
        ("../ro/../outside/secret.txt", ""),
        (outside.as_str(), "/secret.txt"),
        ("../outside", "/secret.txt"),
        ("..", "/outside/secret.txt"),
    ];
    let mut n = 0;
    for (target, via) in targets {
        for then in [
            r#"attack = "read""#,
            r#"attack = "write", contents = "pwned""#,
            r#"attack = "append", contents = "pwned""#,
            r#"attack = "chmod", path = "/data/inside.txt""#,
        ] {
            n += 1;
            let link = format!("/data/link{n}");
            let through = format!("{link}{via}");
            let then = if then.contains("chmod") {
                format!(r#"{then}, target = "{through}""#)
            } else {
                format!(r#"{then}, path = "{through}""#)
            };
            let out =
                a.run(&format!(r#"attack = "symlink", path = "{link}", target = "{target}", then = {{ {then} }}"#), "");
            a.assert_refused(&out, "blocked:");
        }
        // A listing through a link to a directory.
        n += 1;
        let out = a.run(
            &format!(
                r#"attack = "symlink", path = "/data/link{n}", target = "{target}", then = {{ attack = "list", path = "/data/link{n}" }}"#
            ),
            "",
        );
        a.assert_refused(&out, "blocked:");
    }
    assert_eq!(a.protected(), before, "something outside the read-write grant changed");
}

/// A temporary file the plugin declares and then turns into a symbolic link
/// out of its grant before it crashes: the host's clean-up removes the link,
/// never what it points to.
#[test]
fn the_host_removes_a_leftover_temporary_that_became_a_symlink_without_following_it() {
    let a = Arena::new();
    let before = a.protected();
    let out = a.run(
        r#"attack = "temp-file", path = "/data/partial.tmp", then = { attack = "symlink", path = "/data/partial.tmp", target = "../outside/secret.txt", then = { attack = "panic" } }"#,
        "",
    );
    a.assert_refused(&out, "the plugin crashed");
    assert!(out.stderr.contains("backout removed the temporary file `/data/partial.tmp`"), "{}", out.all());
    assert!(std::fs::symlink_metadata(a.data.join("partial.tmp")).is_err(), "the link is removed");
    assert_eq!(a.protected(), before, "the link's target changed");
}

/// An earlier step that replaces a parent of a later step's grant with a
/// symbolic link (even one to the very same directory), or plants a link
/// inside it: the later step is refused its grant, or confined by it.
#[test]
fn links_an_earlier_step_plants_are_not_followed_by_a_later_one() {
    let a = Arena::new();
    a.sb.write("data/app/deep/inside.txt", "deep inside\n");
    let before = a.protected();
    let swap = a.runbook_with(
        r#"attack = "swap-for-symlink", path = "/data/app", target = "app.orig""#,
        "",
        &format!(
            "\n[[step]]\nid = \"later\"\nuses = \"hostile@0.1.0\"\n\
             with = {{ attack = \"read\", path = \"/deep/inside.txt\" }}\n\
             [step.grants]\ndirs = [{{ host = \"{}\", guest = \"/deep\", mode = \"rw\" }}]\n",
            a.data.join("app/deep").display()
        ),
    );
    // `attack` is the step that succeeds here; `later` is refused its grant.
    let out = a.sb.run(&["run", "--yes", swap.to_str().unwrap()]);
    assert_eq!(out.code, EXIT_UNDONE, "{}", out.all());
    assert!(out.stdout.contains("ok       attack"), "the swap itself is allowed:\n{}", out.all());
    let refused =
        out.stdout.lines().find(|l| l.starts_with("FAILED   later")).unwrap_or_else(|| panic!("{}", out.all()));
    assert!(
        refused.contains(&format!("granted directory `{}` changed since plan", a.data.join("app/deep").display()))
            && refused.contains("is a symbolic link now"),
        "{}",
        out.all()
    );
    assert!(out.stdout.contains("undone   attack") && out.stdout.contains("undone   before"), "{}", out.all());
    a.assert_nothing_leaked(&out);

    // Planted inside the later step's grant: followed only inside it.
    std::fs::remove_file(a.data.join("app")).unwrap();
    std::fs::rename(a.data.join("app.orig"), a.data.join("app")).unwrap();
    let plant = a.runbook_with(
        r#"attack = "symlink", path = "/data/app/deep/escape", target = "../../../outside""#,
        "",
        &format!(
            "\n[[step]]\nid = \"later\"\nuses = \"hostile@0.1.0\"\n\
             with = {{ attack = \"write\", path = \"/deep/escape/secret.txt\", contents = \"pwned\" }}\n\
             [step.grants]\ndirs = [{{ host = \"{}\", guest = \"/deep\", mode = \"rw\" }}]\n",
            a.data.join("app/deep").display()
        ),
    );
    let out = a.sb.run(&["run", "--yes", plant.to_str().unwrap()]);
    assert_eq!(out.code, EXIT_UNDONE, "{}", out.all());
    let refused =
        out.stdout.lines().find(|l| l.starts_with("FAILED   later")).unwrap_or_else(|| panic!("{}", out.all()));
    assert!(refused.contains("blocked:"), "{}", out.all());
    assert!(out.stdout.contains("undone   before"), "{}", out.all());
    a.assert_nothing_leaked(&out);
    assert_eq!(a.protected(), before, "something outside the read-write grant changed");
}

/// `link-at` cannot give a read-only file (or a link out of the grant) a
/// name in a writable grant to write it through.
#[test]
fn a_hard_link_cannot_make_a_read_only_or_outside_file_writable() {
    let a = Arena::new();
    let before = a.protected();
    for with in [
        // Across two preopens, read-only into read-write, then written through.
        r#"attack = "hardlink", path = "/ro/kept.txt", target = "/data/kept-link", then = { attack = "write", path = "/data/kept-link", contents = "pwned" }"#,
        r#"attack = "hardlink", path = "/ro/sub/deep.txt", target = "/data/deep-link", then = { attack = "append", path = "/data/deep-link", contents = "pwned" }"#,
        // Inside the read-only grant.
        r#"attack = "hardlink", path = "/ro/kept.txt", target = "/ro/kept-link""#,
        // Out of the grant by `..`.
        r#"attack = "hardlink", path = "/data/../outside/secret.txt", target = "/data/secret-link", then = { attack = "write", path = "/data/secret-link", contents = "pwned" }"#,
        // A link to a symbolic link that points out, then written through.
        r#"attack = "symlink", path = "/data/soft", target = "../outside/secret.txt", then = { attack = "hardlink", path = "/data/soft", target = "/data/hard", then = { attack = "write", path = "/data/hard", contents = "pwned" } }"#,
    ] {
        let out = a.run(with, "");
        a.assert_refused(&out, "blocked:");
    }
    // During plan every grant is read-only, even a read-write one.
    let out = a.plan(r#"attack = "hardlink", path = "/data/inside.txt", target = "/data/plan-link", in_plan = true"#);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("plan-time attack hardlink: blocked:"), "{}", out.all());
    assert!(!a.data.join("plan-link").exists(), "plan made a link");
    assert_eq!(a.protected(), before, "something outside the read-write grant changed");
}

/// Renaming, truncating, shortening, re-timing and changing the mode of
/// anything in a read-only grant is refused (so is making directories or
/// links in it), and during `plan` a read-write grant is read-only too.
#[test]
fn rename_truncate_and_chmod_change_nothing_in_a_read_only_grant() {
    let a = Arena::new();
    let before = a.protected();
    for with in [
        r#"attack = "rename", path = "/ro/kept.txt", target = "/ro/moved.txt""#,
        r#"attack = "rename", path = "/ro/sub", target = "/ro/sub2""#,
        r#"attack = "rename", path = "/ro/kept.txt", target = "/ro/sub/deep.txt""#,
        r#"attack = "truncate", path = "/ro/kept.txt""#,
        r#"attack = "set-len", path = "/ro/kept.txt""#,
        r#"attack = "set-permissions", path = "/ro/kept.txt""#,
        r#"attack = "set-times", path = "/ro/kept.txt""#,
        r#"attack = "set-times", path = "/ro/sub""#,
        r#"attack = "chmod", path = "/data/inside.txt", target = "/ro/kept.txt""#,
        r#"attack = "mkdir", path = "/ro/new""#,
        r#"attack = "symlink", path = "/ro/link", target = "kept.txt""#,
        r#"attack = "delete", path = "/ro/sub/deep.txt""#,
    ] {
        let out = a.run(with, "");
        a.assert_refused(&out, "blocked:");
    }
    assert_eq!(a.protected(), before, "a read-only grant changed");

    let data_before = snapshot(&a.data);
    let mut data_meta = BTreeMap::new();
    metadata_of(&a.data, &mut data_meta);
    for with in [
        r#"attack = "rename", path = "/data/inside.txt", target = "/data/moved.txt", in_plan = true"#,
        r#"attack = "truncate", path = "/data/inside.txt", in_plan = true"#,
        r#"attack = "set-len", path = "/data/inside.txt", in_plan = true"#,
        r#"attack = "set-times", path = "/data/inside.txt", in_plan = true"#,
        r#"attack = "mkdir", path = "/data/new", in_plan = true"#,
    ] {
        let out = a.plan(with);
        assert_eq!(out.code, 0, "{}", out.all());
        assert!(out.stdout.contains(": blocked:"), "{with}:\n{}", out.all());
        assert!(out.stdout.contains("nothing has been changed"), "{}", out.all());
    }
    let mut data_meta_after = BTreeMap::new();
    metadata_of(&a.data, &mut data_meta_after);
    assert_eq!(snapshot(&a.data), data_before, "plan changed a read-write grant");
    assert_eq!(data_meta_after, data_meta, "plan changed a read-write grant's metadata");
    assert_eq!(a.protected(), before);
}

/// The host's file operations (`backout:step/files`, called raw by the
/// plugin) reach exactly what its own file access reaches: `copy-file`
/// reads from any grant and writes only into a read-write one, only in
/// `run` and `undo`; `sha256-file` reads from any grant; neither follows a
/// link out of a grant, writes through a link, or names a path outside.
#[test]
fn the_hosts_file_operations_reach_no_further_than_the_grants() {
    let a = Arena::new();
    std::os::unix::fs::symlink(a.secret(), a.data.join("link-out")).unwrap();
    let before = a.protected();
    let secret = a.secret().display().to_string();
    for (with, reason) in [
        (format!(r#"attack = "copy-file", path = "{secret}", target = "/data/stolen""#), "is not granted"),
        (r#"attack = "copy-file", path = "/data/../ro/kept.txt", target = "/data/stolen""#.into(), "plain absolute"),
        (r#"attack = "copy-file", path = "/data/link-out", target = "/data/stolen""#.into(), "failed to open"),
        (r#"attack = "copy-file", path = "/data/inside.txt", target = "/ro/kept.txt""#.into(), "read-only grant"),
        (r#"attack = "copy-file", path = "/data/inside.txt", target = "/ro/new.txt""#.into(), "read-only grant"),
        (r#"attack = "copy-file", path = "/data/inside.txt", target = "/data/link-out""#.into(), "symbolic link"),
        (r#"attack = "copy-file", path = "/data/inside.txt", target = "/data""#.into(), "blocked:"),
        (format!(r#"attack = "sha256-file", path = "{secret}""#), "is not granted"),
        (r#"attack = "sha256-file", path = "/data/link-out""#.into(), "failed to open"),
        (r#"attack = "sha256-file", path = "/ro/sub""#.into(), "not a regular file"),
    ] {
        let out = a.run(&with, "");
        a.assert_refused(&out, reason);
        assert!(!a.data.join("stolen").exists(), "{with}: a refused copy left a file");
    }
    assert_eq!(a.protected(), before, "outside/ or the read-only grant changed");
    assert_eq!(std::fs::read_to_string(a.secret()).unwrap(), SECRET);

    // Planning may hash but never copy.
    let out = a.plan(r#"attack = "copy-file", path = "/ro/kept.txt", target = "/data/copy", in_plan = true"#);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("blocked: `copy-file` is refused during `plan`"), "{}", out.all());
    assert!(!a.data.join("copy").exists(), "plan made a file");
    let out = a.plan(r#"attack = "sha256-file", path = "/ro/kept.txt", in_plan = true"#);
    assert!(out.stdout.contains(&format!("sha256 {}", sha256_bytes(b"kept\n"))), "{}", out.all());

    // Inside the grants both work, with the bytes and digest a native copy gives.
    let out = a.run(r#"attack = "copy-file", path = "/ro/sub/deep.txt", target = "/data/copy""#, "");
    assert_eq!(out.code, EXIT_SUCCEEDED, "{}", out.all());
    assert_eq!(std::fs::read(a.data.join("copy")).unwrap(), b"deep\n");
    assert_eq!(a.protected(), before);
}

/// A rename cannot move a file from a read-write grant into a read-only one
/// (over a file there or beside it), nor out of a read-only one.
#[test]
fn a_rename_cannot_cross_between_a_writable_and_a_read_only_grant() {
    let a = Arena::new();
    let before = a.protected();
    let data_before = snapshot(&a.data);
    for with in [
        r#"attack = "rename", path = "/data/inside.txt", target = "/ro/inside.txt""#,
        r#"attack = "rename", path = "/data/inside.txt", target = "/ro/kept.txt""#,
        r#"attack = "rename", path = "/data/inside.txt", target = "/ro/sub/deep.txt""#,
        r#"attack = "rename", path = "/ro/kept.txt", target = "/data/kept.txt""#,
        r#"attack = "rename", path = "/ro/sub", target = "/data/sub""#,
        r#"attack = "rename", path = "/data/inside.txt", target = "/data/../ro/inside.txt""#,
    ] {
        let out = a.run(with, "");
        a.assert_refused(&out, "blocked:");
    }
    assert_eq!(snapshot(&a.data), data_before, "the read-write grant lost or gained a file");
    assert_eq!(a.protected(), before, "the read-only grant changed");
}

/// `.`, `//` and trailing slashes neither reach outside a grant nor turn a
/// read-only grant writable, in the guest's own file calls or in the host's
/// `copy-permissions`.
#[test]
fn dots_double_slashes_and_trailing_slashes_do_not_widen_a_grant() {
    let a = Arena::new();
    let before = a.protected();
    let secret = a.secret().display().to_string();
    let reads = [
        "/data/./../outside/secret.txt",
        "/data/.//..//outside/secret.txt",
        "/data/inside.txt/../../outside/secret.txt",
        "/data/../data/../outside/secret.txt",
        "/data/./././../outside/./secret.txt",
        "/data/../outside/secret.txt/",
        "/data/../outside/secret.txt/.",
        "//outside/secret.txt",
        "/./outside/secret.txt",
        "/ro/./../outside/secret.txt",
        "/ro/sub/../../outside/secret.txt",
    ];
    for path in reads {
        let out = a.run(&format!(r#"attack = "read", path = "{path}""#), "");
        a.assert_refused(&out, "blocked:");
    }
    let writes = [
        "/ro/./kept.txt",
        "/ro//kept.txt",
        "/ro/sub/../kept.txt",
        "/ro/./sub/./deep.txt",
        "/ro/kept.txt/",
        "/ro/.//new.txt",
        "/data/../ro/kept.txt",
        "/data/./../ro/new.txt",
        "/data/../outside/secret.txt/",
    ];
    for path in writes {
        let out = a.run(&format!(r#"attack = "write", path = "{path}", contents = "pwned""#), "");
        a.assert_refused(&out, "blocked:");
    }
    for target in [
        format!("/data/{secret}"),
        format!("/data//{secret}"),
        "/data/./../outside/secret.txt".to_string(),
        "/data/.".to_string(),
        "/data/".to_string(),
        "/ro/./kept.txt".to_string(),
        "/data/../ro/kept.txt".to_string(),
    ] {
        let out = a.run(&format!(r#"attack = "chmod", path = "/data/inside.txt", target = "{target}""#), "");
        a.assert_refused(&out, "blocked:");
    }
    assert_eq!(a.protected(), before, "something outside the read-write grant changed");
}

/// `temporary-file` refuses `.` and `..`, but `//` and a trailing slash
/// slip through: `/data//etc/passwd` is journaled with the host path
/// `/etc/passwd`, outside the grant. Nothing outside is removed (removal
/// resolves the guest path, confined), but after a crash `backout show`
/// says `leftover temporary file /etc/passwd (still there; backout undo
/// removes it)` and `plan` prints its size: the host stats a path outside
/// every grant and tells the operator to delete it.
#[test]
fn a_temporary_file_path_with_empty_components_is_refused() {
    let a = Arena::new();
    let before = a.protected();
    let secret = a.secret().display().to_string();
    for path in [format!("/data/{secret}"), "/data/partial.tmp/".to_string(), "/data//partial.tmp".to_string()] {
        let out = a.run(&format!(r#"attack = "temp-file", path = "{path}", then = {{ attack = "panic" }}"#), "");
        a.assert_refused(&out, "blocked: the host did not accept");
        assert!(!a.sb.journals().contains(&format!("\"{secret}\"")), "a host path outside the grant was journaled");
    }
    assert_eq!(a.protected(), before, "something outside the read-write grant changed");
}

/// A guest path in the outputs is shown with its host path only when it is
/// plainly inside a grant: `/data//etc/shadow` must not be shown as
/// `(host: /etc/shadow)`.
#[test]
fn an_output_path_with_a_double_slash_is_not_shown_as_a_host_path_outside_the_grants() {
    let a = Arena::new();
    let before = a.protected();
    for path in ["/data//etc/shadow", "/data///etc/shadow", "/ro//etc/passwd"] {
        let out = a.run(&format!(r#"attack = "echo", path = "{path}""#), "");
        assert_eq!(out.code, EXIT_SUCCEEDED, "{}", out.all());
        let shown = out
            .stdout
            .lines()
            .find(|l| l.contains(&format!("path: {path}")))
            .unwrap_or_else(|| panic!("{}", out.all()));
        assert!(!shown.contains("(host: /etc/"), "a host path outside every grant is shown: {shown}");
        let show = a.sb.run(&["show", &run_id(&out)]);
        assert_eq!(show.code, 0, "{}", show.all());
        assert!(!show.stdout.contains("(host: /etc/"), "{}", show.all());
    }
    assert_eq!(a.protected(), before);
}

// ---------------------------------------------------------------------------
// Network
// ---------------------------------------------------------------------------

/// The guest cannot look names up itself (`wasi:sockets/ip-name-lookup`),
/// not even the name of an origin it is granted.
#[test]
fn a_guest_name_lookup_is_refused_even_with_a_net_grant() {
    let a = Arena::new();
    let before = a.protected();
    let net = "net = [\"http://localhost:8080\"]\n";
    for name in ["localhost", "example.com", "metadata.google.internal", "127.0.0.1", "169.254.169.254"] {
        let runbook = a.runbook_with(&format!(r#"attack = "lookup", target = "{name}""#), "", net);
        let out = a.sb.run(&["run", "--yes", runbook.to_str().unwrap()]);
        a.assert_refused(&out, &format!("blocked: resolve {name}: "));
        assert!(failed_line(&out).contains("permanent-resolver-failure"), "{}", out.all());
    }
    assert_eq!(a.protected(), before);
}

/// A server that answers with a body that never ends, as fast as it can
/// (`drip = false`) or one byte at a time (`drip = true`), until the
/// client hangs up. Returns its origin and the bytes it has sent.
fn endless_server(drip: bool) -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let counter = counter.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    line.clear();
                }
                let head =
                    "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
                if stream.write_all(head.as_bytes()).is_err() {
                    return;
                }
                let chunk = if drip {
                    b"1\r\nx\r\n".to_vec()
                } else {
                    [b"10000\r\n".as_slice(), &[b'x'; 0x10000], b"\r\n"].concat()
                };
                let payload = if drip { 1 } else { 0x10000 };
                while stream.write_all(&chunk).is_ok() {
                    counter.fetch_add(payload, Ordering::SeqCst);
                    if drip {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                }
            });
        }
    });
    (origin, sent)
}

/// A granted server whose response body never ends: the host stops reading
/// at the step's `max_received`, says so, and the step fails; a body that
/// drips forever is cut off by the step's timeout.
#[test]
fn a_response_body_that_never_ends_is_cut_off() {
    let a = Arena::new();
    let before = a.protected();
    let (origin, sent) = endless_server(false);
    let net = format!("net = [\"{origin}\"]\n");
    let runbook =
        a.runbook_with(&format!(r#"attack = "fetch", target = "{origin}/forever""#), "max_received = \"1MiB\"", &net);
    let out = a.sb.run(&["run", "--yes", runbook.to_str().unwrap()]);
    a.assert_refused(&out, &format!("fetch {origin}/forever"));
    assert!(
        out.stderr.contains("stopped reading the response: the step's `max_received` of 1048576 bytes is used up"),
        "{}",
        out.all()
    );
    let failed = failed_line(&out);
    assert!(
        failed.contains("response body size exceeds limit"),
        "the budget must stop it, not the timeout:\n{}",
        out.all()
    );
    assert!(sent.load(Ordering::SeqCst) < 64 << 20, "the host kept reading: {} bytes", sent.load(Ordering::SeqCst));

    let (origin, _) = endless_server(true);
    let net = format!("net = [\"{origin}\"]\n");
    let runbook = a.runbook_with(&format!(r#"attack = "fetch", target = "{origin}/drip""#), "timeout = \"2s\"", &net);
    let out = a.sb.run(&["run", "--yes", runbook.to_str().unwrap()]);
    a.assert_refused(&out, "");
    let failed = failed_line(&out);
    assert!(failed.contains("timed out after 2s") || failed.contains("connection read timeout"), "{}", out.all());
    assert_eq!(a.protected(), before);
}

// ---------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------

/// Recursion without end overflows the guest's own stack: the step crashes,
/// the host does not. Outputs nested deeper than the host parses are
/// refused as not JSON, and so is such a checkpoint.
#[test]
fn deep_recursion_is_the_step_failing_not_the_host() {
    let a = Arena::new();
    let before = a.protected();
    let out = a.run(r#"attack = "recurse", count = 100000000"#, "");
    a.assert_refused(&out, "the plugin crashed");
    let out = a.run(r#"attack = "deep-outputs", count = 1000"#, "");
    a.assert_refused(&out, "the plugin's outputs are not valid JSON: recursion limit exceeded");
    assert_eq!(a.protected(), before);
}

/// A million live resource handles (`wasi:http` `fields`) grow the store's
/// handle table only to wasmtime's limit: the step traps there.
#[test]
fn a_million_resource_handles_stop_at_the_handle_limit() {
    let a = Arena::new();
    let before = a.protected();
    let out = a.run(r#"attack = "fields", count = 1000000, size = 1"#, "");
    a.assert_refused(&out, "resources at once (the step's limit, from its `memory`)");
    assert_eq!(a.protected(), before);
}

/// `fields` live in the host's resource table, outside the guest's memory:
/// 2048 of 127 KiB each would be 254 MiB of host memory for a step limited
/// to 32 MiB. The host bounds both how much one `fields` holds and how many
/// resources a call holds, from the step's memory, so their product stays
/// within it: this flood is refused at its first oversized `fields`, and
/// `a_million_resource_handles_stop_at_the_handle_limit` at the count.
#[test]
fn resources_held_in_the_host_count_against_the_memory_limit() {
    let a = Arena::new();
    let before = a.protected();
    let out = a.run(r#"attack = "fields", count = 2048, size = 130048"#, "memory = \"32MiB\"");
    a.assert_refused(&out, "header fields over 32KiB");
    assert_eq!(a.protected(), before);
}

/// Thousands of open descriptors, each a host file descriptor: the guest
/// runs out (a descriptor limit, or the store's handle limit) before the
/// host does, the host can still journal a checkpoint meanwhile, and it
/// carries on once the call ends.
#[test]
fn thousands_of_open_files_do_not_starve_the_host() {
    let a = Arena::new();
    let before = a.protected();
    let out = a.run(r#"attack = "open-files", path = "/data/inside.txt", count = 1000000"#, "");
    assert_eq!(out.code, EXIT_UNDONE, "{}", out.all());
    let failed = failed_line(&out);
    assert!(
        (failed.contains("blocked: open #") && failed.contains("checkpoint with"))
            || failed.contains("resources at once (the step's limit, from its `memory`)"),
        "{}",
        out.all()
    );
    assert!(
        !failed.contains("checkpoint with") || failed.contains("journaled"),
        "the host could not journal:\n{}",
        out.all()
    );
    a.assert_nothing_leaked(&out);
    a.assert_host_carried_on(&out);
    assert_eq!(a.protected(), before);
}

/// The bound above is the process's descriptor limit (`RLIMIT_NOFILE`),
/// shared with the host itself, and the guest is told `I/O error` (wasi has
/// no `EMFILE`): the host must bound a call's open descriptors below it,
/// and the step's failure must name that limit.
#[test]
fn open_descriptors_are_bounded_per_call_with_a_clear_reason() {
    let a = Arena::new();
    let before = a.protected();
    let out = a.run(r#"attack = "open-files", path = "/data/inside.txt", count = 1000000"#, "");
    a.assert_refused(&out, "limit");
    assert!(!failed_line(&out).contains("I/O error"), "{}", out.all());
    assert_eq!(a.protected(), before);
}

/// `get-random-bytes` with a huge length is refused before the host
/// allocates it, and a length the guest cannot hold hits the memory limit.
#[test]
fn a_huge_random_request_is_refused() {
    let a = Arena::new();
    let before = a.protected();
    for with in [
        r#"attack = "random", count = 9223372036854775807"#,
        r#"attack = "random", count = 4294967296"#,
        r#"attack = "random", name = "insecure", count = 9223372036854775807"#,
    ] {
        let out = a.run(with, "memory = \"32MiB\"");
        a.assert_refused(&out, "more than 8MiB of random bytes");
    }
    // What the guest could not even hold is refused before the host allocates it.
    let out = a.run(r#"attack = "random", count = 67108864"#, "memory = \"32MiB\"");
    a.assert_refused(&out, "more than 8MiB of random bytes");
    assert_eq!(a.protected(), before);
}

/// A 200 MiB log message is more than a guest may hand the host in one
/// call: refused before the host copies it, and the step fails saying so.
#[test]
fn a_200_mib_log_message_is_refused_before_the_host_copies_it() {
    let a = Arena::new();
    let before = a.protected();
    let out = a.run(r#"attack = "huge-log", count = 209715200"#, "memory = \"512MiB\"");
    a.assert_refused(&out, "the plugin handed the host more than 16MiB in one call");
    assert!(!out.stderr.contains("zzzzzzzz"), "the message reached the log");
    assert_eq!(a.protected(), before);
}

/// The bounds above hold, but the step is reported as `the plugin crashed`
/// with a wasm backtrace before the reason: a limit the host enforces
/// (hostcall data, live handles, random size) must read as that limit, on
/// the `FAILED` line itself, like the memory limit and the timeout do.
#[test]
fn a_limit_the_host_enforces_is_reported_as_that_limit_not_as_a_crash() {
    let a = Arena::new();
    let before = a.protected();
    for (with, extra, reason) in [
        (r#"attack = "huge-log", count = 209715200"#, "memory = \"512MiB\"", "16MiB"),
        (r#"attack = "fields", count = 1000000, size = 1"#, "", "resources at once"),
        (r#"attack = "random", count = 9223372036854775807"#, "", "32MiB of random bytes"),
        (r#"attack = "fields", count = 2, size = 130048"#, "", "header fields over 32KiB"),
    ] {
        let out = a.run(with, extra);
        a.assert_refused(&out, reason);
        let failed = failed_line(&out);
        assert!(!failed.contains("the plugin crashed"), "a host limit is not a crash:\n{failed}");
        assert!(!failed.contains('\n'), "the reason belongs on the `FAILED` line, without a backtrace:\n{failed}");
    }
    assert_eq!(a.protected(), before);
}

// ---------------------------------------------------------------------------
// What reaches the operator
// ---------------------------------------------------------------------------

/// Control characters a terminal would obey, or text that reads backwards.
fn raw_controls(text: &str) -> Vec<char> {
    text.chars()
        .filter(|&c| {
            (c.is_control() && c != '\n' && c != '\t')
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
        })
        .collect()
}

fn assert_inert(what: &str, out: &Output) {
    for (stream, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let raw = raw_controls(text);
        assert!(raw.is_empty(), "{what}: raw control characters {raw:?} on {stream}:\n{}", out.all());
        assert!(
            !text.lines().any(|l| l.starts_with("ok       forged")),
            "{what}: a forged `ok` line on {stream}:\n{}",
            out.all()
        );
    }
}

/// Terminal escapes in what a plugin logs (log lines, progress units, its
/// stdout and stderr) and in its output keys and values reach the terminal
/// inert, and an embedded newline starts a new `[attack]` line instead of
/// forging an `ok` line.
#[test]
fn terminal_escapes_in_logs_progress_and_outputs_reach_the_terminal_inert() {
    let a = Arena::new();
    let before = a.protected();
    let out = a.run(r#"attack = "escapes", count = 1"#, "");
    assert_eq!(out.code, EXIT_SUCCEEDED, "{}", out.all());
    let shown = |text: &str| -> Output {
        Output {
            code: out.code,
            stdout: text.lines().filter(|l| l.starts_with("         ")).collect::<Vec<_>>().join("\n"),
            stderr: out.stderr.clone(),
        }
    };
    // stderr: the plan (the plugin's text is not in it without `in_plan`)
    // and every log, progress, stdout and stderr line; stdout: the outputs.
    assert_inert("log lines, progress and outputs", &shown(&out.stdout));
    for line in [
        "[attack] run info: log \\x1b[2K\\r",
        "[attack] run progress: 50% (1/2 \\x1b[2K",
        "[attack] run stdout: stdout \\x1b",
    ] {
        assert!(out.stderr.contains(line), "`{line}`:\n{}", out.all());
    }
    assert!(out.stderr.contains("[attack] run info: ok       forged  done"), "{}", out.all());
    assert!(out.stdout.contains("         key \\x1b[2K\\r"), "{}", out.all());
    let show = a.sb.run(&["show", &run_id(&out)]);
    assert_eq!(show.code, 0, "{}", show.all());
    assert_inert(
        "the outputs in show",
        &Output {
            code: 0,
            stdout: show.stdout.lines().filter(|l| l.starts_with("           ")).collect::<Vec<_>>().join("\n"),
            stderr: String::new(),
        },
    );
    let runs = a.sb.run(&["runs"]);
    assert_eq!(runs.code, 0, "{}", runs.all());
    assert_inert("runs", &runs);

    // A failing run: the host carries on after it.
    let out = a.run(r#"attack = "escapes""#, "");
    assert_eq!(out.code, EXIT_UNDONE, "{}", out.all());
    assert!(out.stdout.contains("Run failed at step `attack`"), "{}", out.all());
    assert_inert(
        "log lines and progress of a failed run",
        &Output { code: out.code, stdout: String::new(), stderr: out.stderr.clone() },
    );
    a.assert_host_carried_on(&out);
    assert_eq!(a.protected(), before);
}

/// The rest of what a plugin says, which reaches the terminal raw today:
/// its failure message, its summary and its plan actions, in `run`, `show`
/// and `plan` (the plan is what the operator reads before `Run N steps?
/// [y/N]`: `\x1b[1A\x1b[2K` erases its grant lines, and a newline forges an
/// `ok` line); and DEL, C1 controls and bidirectional overrides, which
/// serde_json leaves raw in `--output json`.
#[test]
fn terminal_escapes_in_failures_summaries_and_plans_reach_the_terminal_inert() {
    let a = Arena::new();
    let before = a.protected();
    let out = a.run(r#"attack = "escapes""#, "");
    assert_inert("a failed run", &out);
    a.assert_refused(&out, "failure \\x1b[2K\\r");
    let show = a.sb.run(&["show", &run_id(&out)]);
    assert_eq!(show.code, 0, "{}", show.all());
    assert_inert("show of the failed run", &show);

    let runbook = a.runbook(r#"attack = "escapes", count = 1"#, "");
    let out = a.sb.run(&["run", "--yes", runbook.to_str().unwrap()]);
    assert_eq!(out.code, EXIT_SUCCEEDED, "{}", out.all());
    assert_inert("a succeeded run", &out);
    assert!(out.stdout.contains("ok       attack  summary \\x1b[2K"), "{}", out.all());
    let show = a.sb.run(&["show", &run_id(&out)]);
    assert_eq!(show.code, 0, "{}", show.all());
    assert_inert("show of the succeeded run", &show);

    let out = a.plan(r#"attack = "escapes", in_plan = true"#);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_inert("plan", &out);
    assert!(out.all().contains("plan-time attack escapes: failure \\x1b[2K"), "{}", out.all());

    let runbook = a.runbook(r#"attack = "escapes", count = 1, in_plan = true"#, "");
    let out = a.sb.run(&["--output", "json", "run", "--yes", runbook.to_str().unwrap()]);
    assert_eq!(out.code, EXIT_SUCCEEDED, "{}", out.all());
    assert_inert("--output json", &out);
    assert_eq!(a.protected(), before);
}

// ---------------------------------------------------------------------------
// Bad components
// ---------------------------------------------------------------------------

/// Components that are not plugins, end to end: each is refused when the
/// runbook is planned (and so before anything runs, even a first step that
/// would write), with exit code 2 and a message naming the step, the file
/// and the reason; the host then runs a good runbook as usual.
#[test]
fn a_bad_component_is_refused_at_plan_time_naming_the_step_and_the_reason() {
    let a = Arena::new();
    let before = a.protected();
    let data_before = snapshot(&a.data);
    let real = std::fs::read(HOSTILE).unwrap();
    let replace = |from: &[u8], to: &[u8]| -> Vec<u8> {
        assert_eq!(from.len(), to.len());
        let mut bytes = real.clone();
        let mut i = 0;
        let mut found = 0;
        while i + from.len() <= bytes.len() {
            if &bytes[i..i + from.len()] == from {
                bytes[i..i + from.len()].copy_from_slice(to);
                found += 1;
                i += from.len();
            } else {
                i += 1;
            }
        }
        assert!(found > 0, "`{}` is not in the hostile component", String::from_utf8_lossy(from));
        bytes
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "empty.wasm",
            Vec::new(),
            "failed to compile the component: failed to parse WebAssembly module: unexpected end-of-file",
        ),
        (
            "half.wasm",
            real[..real.len() / 2].to_vec(),
            "failed to compile the component: failed to parse WebAssembly module",
        ),
        (
            "short.wasm",
            real[..real.len() - 1].to_vec(),
            "failed to compile the component: failed to parse WebAssembly module",
        ),
        ("header.wasm", real[..9].to_vec(), "failed to compile the component: failed to parse WebAssembly module"),
        ("core.wasm", b"\0asm\x01\0\0\0".to_vec(), "the file is a core WebAssembly module, not a component"),
        (
            "nothing.wasm",
            b"\0asm\x0d\0\x01\0".to_vec(),
            "the component does not export `backout:step/step@0.2.0` (it exports: nothing)",
        ),
        (
            "other-world.wasm",
            replace(b"backout:step/step@0.2.0", b"backout:step/stop@0.2.0"),
            "the component does not export `backout:step/step@0.2.0` (it exports: `backout:step/stop@0.2.0`)",
        ),
        (
            "old-contract.wasm",
            replace(b"backout:step/step@0.2.0", b"backout:step/step@0.1.0"),
            "the plugin was built for `backout:step/step@0.1.0`, and this backout runs plugins built for \
             `backout:step/step@0.2.0`; rebuild it with this backout's SDK and `wit/`",
        ),
        (
            "evil-import.wasm",
            replace(b"backout:step/host@0.2.0", b"backout:evil/host@0.2.0"),
            "the component imports `backout:evil/host@0.2.0`, which backout does not provide",
        ),
        (
            "incoming.wasm",
            replace(b"wasi:http/outgoing-handler@0.2.12", b"wasi:http/incoming-handler@0.2.12"),
            "the component imports `wasi:http/incoming-handler@0.2.12`, which backout does not provide",
        ),
    ];
    for (file, bytes, reason) in cases {
        a.sb.write(file, &bytes);
        let runbook = a.sb.write(
            "bad.toml",
            format!(
                "version = 1\nname = \"bad\"\n\n\
                 [[step]]\nid = \"first\"\nuses = \"hostile@0.1.0\"\n\
                 with = {{ attack = \"write\", path = \"/data/new.txt\", contents = \"ran\" }}\n\
                 [step.grants]\ndirs = [{{ host = \"{}\", guest = \"/data\", mode = \"rw\" }}]\n\n\
                 [[step]]\nid = \"bad\"\nuses = \"./{file}\"\nsha256 = \"{}\"\nwith = {{ attack = \"echo\" }}\n",
                a.data.display(),
                sha256_bytes(&bytes)
            ),
        );
        let runbook = runbook.to_str().unwrap();
        for args in [vec!["validate", runbook], vec!["plan", runbook], vec!["run", "--yes", runbook]] {
            let out = a.sb.run(&args);
            assert_eq!(out.code, 2, "{file} {args:?}:\n{}", out.all());
            assert!(
                out.stderr.contains(&format!("step `bad`: plugin `./{file}` cannot be used: {reason}")),
                "{file} {args:?}:\n{}",
                out.all()
            );
            assert!(out.stderr.contains("nothing was run"), "{}", out.all());
            assert!(!out.stdout.contains("ok       first"), "{file}: the first step ran:\n{}", out.all());
        }
    }
    assert_eq!(snapshot(&a.data), data_before, "a step ran although a later one was refused");
    assert!(!a.sb.state().join("runs").exists(), "a refused runbook started a run");

    // The host carries on: a good runbook runs.
    let good = a.runbook(r#"attack = "echo", contents = "still here""#, "");
    let out = a.sb.run(&["run", "--yes", good.to_str().unwrap()]);
    assert_eq!(out.code, EXIT_SUCCEEDED, "{}", out.all());
    assert!(out.stdout.contains("ok       attack  echo still here"), "{}", out.all());
    assert_eq!(a.protected(), before);
}
