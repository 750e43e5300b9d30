//! Every way out of the sandbox, tried by a real plugin (`tests/plugins/hostile`)
//! through the real CLI: each attempt fails cleanly, with a clear message,
//! the host stays healthy, and files outside the grants are untouched.

use std::path::PathBuf;

use backout_tests::HOSTILE;
use backout_tests::cli::{EXIT_UNDONE, Output, Sandbox, snapshot};

use crate::bin;

/// A sandbox with the hostile plugin registered, a granted directory `data/`
/// holding `data/inside.txt`, and an ungranted `outside/secret.txt`.
struct Arena {
    sb: Sandbox,
    data: PathBuf,
    secret: PathBuf,
}

const SECRET: &str = "TOPSECRET-do-not-leak";

impl Arena {
    fn new() -> Self {
        let sb = Sandbox::new(bin());
        sb.add(HOSTILE);
        let data = sb.mkdir("data");
        sb.write("data/inside.txt", "inside\n");
        let secret = sb.write("outside/secret.txt", SECRET);
        Self { sb, data, secret }
    }

    /// Writes a one-step runbook: `with` is the inside of the `with` table,
    /// `mode` the grant of `data/` (or `None` for no grant), `extra` more step keys.
    fn runbook(&self, with: &str, mode: Option<&str>, extra: &str) -> PathBuf {
        let grants = match mode {
            Some(mode) => format!(
                "[step.grants]\ndirs = [{{ host = \"{}\", guest = \"/data\", mode = \"{mode}\" }}]\n",
                self.data.display()
            ),
            None => String::new(),
        };
        let text = format!(
            "version = 1\nname = \"attack\"\n\n[[step]]\nid = \"attack\"\nuses = \"hostile@0.1.0\"\n{extra}\nwith = {{ {with} }}\n{grants}"
        );
        self.sb.write("runbook.toml", text)
    }

    fn run(&self, with: &str, mode: Option<&str>, extra: &str) -> Output {
        let runbook = self.runbook(with, mode, extra);
        self.sb.run(&["run", "--yes", runbook.to_str().unwrap()])
    }

    fn outside_untouched(&self) {
        assert_eq!(std::fs::read_to_string(&self.secret).unwrap(), SECRET, "the file outside the grant changed");
    }
}

/// The attack was stopped: the step failed with `blocked: …`, nothing leaked.
fn assert_blocked(out: &Output) {
    assert_eq!(out.code, EXIT_UNDONE, "{}", out.all());
    assert!(out.stdout.contains("blocked:"), "expected the attack to be blocked:\n{}", out.all());
    assert!(!out.stdout.contains("ESCAPED") && !out.stderr.contains("ESCAPED"), "{}", out.all());
    assert!(!out.stdout.contains(SECRET) && !out.stderr.contains(SECRET), "the secret leaked:\n{}", out.all());
    assert!(out.stdout.contains("Run failed at step `attack`"), "{}", out.all());
}

#[test]
fn reading_a_host_path_outside_the_grant_is_impossible() {
    let a = Arena::new();
    let host_path = a.secret.display().to_string();
    for path in [host_path.as_str(), "/outside/secret.txt", "/etc/hostname", "/etc/passwd"] {
        let out = a.run(&format!(r#"attack = "read", path = "{path}""#), Some("ro"), "");
        assert_blocked(&out);
    }
    a.outside_untouched();
}

#[test]
fn dot_dot_cannot_climb_out_of_a_grant() {
    let a = Arena::new();
    for path in ["/data/../outside/secret.txt", "/data/../../../../../etc/passwd", "../outside/secret.txt"] {
        let out = a.run(&format!(r#"attack = "read", path = "{path}""#), Some("rw"), "");
        assert_blocked(&out);
        let out = a.run(&format!(r#"attack = "write", path = "{path}", contents = "pwned""#), Some("rw"), "");
        assert_blocked(&out);
    }
    a.outside_untouched();
}

#[test]
fn symlinks_inside_a_grant_cannot_point_out_of_it() {
    let a = Arena::new();
    std::os::unix::fs::symlink(&a.secret, a.data.join("absolute-link")).unwrap();
    std::os::unix::fs::symlink("../outside/secret.txt", a.data.join("relative-link")).unwrap();
    std::os::unix::fs::symlink(a.secret.parent().unwrap(), a.data.join("dir-link")).unwrap();
    for path in ["/data/absolute-link", "/data/relative-link", "/data/dir-link/secret.txt"] {
        let out = a.run(&format!(r#"attack = "read", path = "{path}""#), Some("rw"), "");
        assert_blocked(&out);
        let out = a.run(&format!(r#"attack = "write", path = "{path}", contents = "pwned""#), Some("rw"), "");
        assert_blocked(&out);
        let out = a.run(&format!(r#"attack = "append", path = "{path}", contents = "pwned""#), Some("rw"), "");
        assert_blocked(&out);
    }
    a.outside_untouched();
}

#[test]
fn a_read_only_grant_cannot_be_written() {
    let a = Arena::new();
    let before = snapshot(&a.data);
    for with in [
        r#"attack = "write", path = "/data/inside.txt", contents = "changed""#,
        r#"attack = "write", path = "/data/new.txt", contents = "new""#,
        r#"attack = "append", path = "/data/inside.txt", contents = "more""#,
        r#"attack = "delete", path = "/data/inside.txt""#,
    ] {
        assert_blocked(&a.run(with, Some("ro"), ""));
    }
    assert_eq!(snapshot(&a.data), before, "a read-only grant was changed");
}

#[test]
fn a_refused_write_is_explained_in_the_operators_terms() {
    let a = Arena::new();
    // No WASI error numbers; the reason is the sandbox's, and says so. (A
    // write during `plan` is explained the same way: `host_terms` unit tests.)
    let out = a.run(r#"attack = "write", path = "/data/inside.txt", contents = "x""#, Some("ro"), "");
    assert_blocked(&out);
    assert!(out.stdout.contains("(every directory this step was granted is read-only (`ro`))"), "{}", out.all());
    assert!(!out.stdout.contains("os error"), "{}", out.all());
    assert_eq!(std::fs::read_to_string(a.data.join("inside.txt")).unwrap(), "inside\n");
}

#[test]
fn copy_permissions_cannot_reach_outside_the_grant_or_act_during_plan() {
    use std::os::unix::fs::PermissionsExt;
    let a = Arena::new();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    a.sb.write("data/open.txt", "o");
    std::fs::set_permissions(a.data.join("open.txt"), std::fs::Permissions::from_mode(0o666)).unwrap();
    std::fs::set_permissions(&a.secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::hard_link(&a.secret, a.data.join("hard-link")).unwrap();
    std::os::unix::fs::symlink(&a.secret, a.data.join("soft-link")).unwrap();
    for target in ["/data/hard-link", "/data/soft-link", "/data/../outside/secret.txt", "/outside/secret.txt"] {
        let out = a.run(&format!(r#"attack = "chmod", path = "/data/open.txt", target = "{target}""#), Some("rw"), "");
        assert_blocked(&out);
    }
    assert_eq!(mode(&a.secret), 0o600, "the file outside the grant changed mode");

    // Read-only grants and plan-time calls change nothing either.
    let out = a.run(r#"attack = "chmod", path = "/data/open.txt", target = "/data/inside.txt""#, Some("ro"), "");
    assert_blocked(&out);
    let before = mode(&a.data.join("inside.txt"));
    let runbook = a.runbook(
        r#"attack = "chmod", path = "/data/open.txt", target = "/data/inside.txt", in_plan = true"#,
        Some("rw"),
        "",
    );
    let out = a.sb.run(&["plan", runbook.to_str().unwrap()]);
    assert!(out.stdout.contains("blocked: `copy-permissions` is refused during `plan`"), "{}", out.all());
    assert_eq!(mode(&a.data.join("inside.txt")), before);

    // Inside a read-write grant, during run, it works.
    let out = a.run(r#"attack = "chmod", path = "/data/open.txt", target = "/data/inside.txt""#, Some("rw"), "");
    assert!(out.stdout.contains("ESCAPED: copied permissions"), "{}", out.all());
    assert_eq!(mode(&a.data.join("inside.txt")), 0o666);
    a.outside_untouched();
}

#[test]
fn no_grant_means_no_files_at_all() {
    let a = Arena::new();
    assert_blocked(&a.run(r#"attack = "list", path = "/""#, None, ""));
    assert_blocked(&a.run(r#"attack = "read", path = "/data/inside.txt""#, None, ""));
    assert_blocked(&a.run(r#"attack = "list", path = ".""#, None, ""));
}

#[test]
fn plan_cannot_change_anything_even_with_a_read_write_grant() {
    let a = Arena::new();
    let before = snapshot(&a.data);
    for with in [
        r#"attack = "write", path = "/data/new.txt", contents = "x", in_plan = true"#,
        r#"attack = "write", path = "/data/inside.txt", contents = "x", in_plan = true"#,
        r#"attack = "delete", path = "/data/inside.txt", in_plan = true"#,
    ] {
        let runbook = a.runbook(with, Some("rw"), "");
        let out = a.sb.run(&["plan", runbook.to_str().unwrap()]);
        assert_eq!(out.code, 0, "{}", out.all());
        assert!(out.stdout.contains("blocked:"), "{}", out.all());
        assert!(out.stdout.contains("nothing has been changed"), "{}", out.all());
        // validate plans too, and is just as read-only
        let out = a.sb.run(&["validate", runbook.to_str().unwrap()]);
        assert_eq!(out.code, 0, "{}", out.all());
    }
    assert_eq!(snapshot(&a.data), before, "plan changed a granted directory");
}

#[test]
fn a_guest_spinning_forever_is_stopped_at_its_timeout() {
    let a = Arena::new();
    let out = a.run(r#"attack = "spin""#, None, "timeout = \"1s\"");
    assert_eq!(out.code, EXIT_UNDONE, "{}", out.all());
    assert!(out.stdout.contains("timed out after 1s"), "{}", out.all());
}

#[test]
fn a_guest_parked_in_a_host_call_is_stopped_at_its_timeout() {
    let a = Arena::new();
    let out = a.run(r#"attack = "sleep""#, None, "timeout = \"1s\"");
    assert_eq!(out.code, EXIT_UNDONE, "{}", out.all());
    assert!(out.stdout.contains("timed out after 1s"), "{}", out.all());
}

#[test]
fn unbounded_allocation_hits_the_memory_limit() {
    let a = Arena::new();
    let out = a.run(r#"attack = "allocate""#, None, "memory = \"32MiB\"");
    assert_eq!(out.code, EXIT_UNDONE, "{}", out.all());
    assert!(out.stdout.contains("memory limit of 32MiB exceeded"), "{}", out.all());
}

#[test]
fn a_panic_is_the_step_failing_not_the_host() {
    let a = Arena::new();
    let out = a.run(r#"attack = "panic""#, None, "");
    assert_eq!(out.code, EXIT_UNDONE, "{}", out.all());
    assert!(out.stdout.contains("the plugin crashed"), "{}", out.all());
    assert!(out.stderr.contains("hostile plugin panicked on purpose"), "the panic message is shown:\n{}", out.all());
}

#[test]
fn environment_variables_are_invisible_unless_granted() {
    let a = Arena::new();
    let runbook = a.runbook(r#"attack = "env", name = "BACKOUT_TEST_TOKEN""#, None, "");
    let out =
        a.sb.command().arg("run").arg("--yes").arg(&runbook).env("BACKOUT_TEST_TOKEN", "tok-123456").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(EXIT_UNDONE), "{stdout}");
    assert!(stdout.contains("blocked: env BACKOUT_TEST_TOKEN"), "{stdout}");
    assert!(!stdout.contains("tok-123456"));

    // The plugin sees no variable at all, not even PATH or HOME.
    let runbook = a.runbook(r#"attack = "env-all""#, None, "");
    let out = a.sb.run(&["--output", "json", "run", "--yes", runbook.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.all());
    let report = backout_tests::events::report(&out.stdout);
    assert_eq!(report["run"]["steps"][0]["outputs"]["names"], serde_json::json!([]));
}

#[test]
fn a_granted_variable_is_visible_to_the_plugin_but_masked_in_what_is_shown() {
    let a = Arena::new();
    let runbook = a.runbook(r#"attack = "env", name = "BACKOUT_TEST_TOKEN""#, None, "");
    let text = std::fs::read_to_string(&runbook).unwrap() + "[step.grants]\nenv = [\"BACKOUT_TEST_TOKEN\"]\n";
    std::fs::write(&runbook, text).unwrap();
    let out =
        a.sb.command().arg("run").arg("--yes").arg(&runbook).env("BACKOUT_TEST_TOKEN", "tok-123456").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The hostile plugin reports reading it as an escape; here that is the grant working.
    assert!(stdout.contains("ESCAPED: env BACKOUT_TEST_TOKEN=***"), "{stdout}\n{stderr}");
    assert!(
        !stdout.contains("tok-123456") && !stderr.contains("tok-123456"),
        "the granted value leaked:\n{stdout}\n{stderr}"
    );
    let journal = a.sb.journals();
    assert!(journal.contains("env BACKOUT_TEST_TOKEN=***"), "{journal}");
    assert!(!journal.contains("tok-123456"), "the granted value leaked into the journal:\n{journal}");
}

#[test]
fn sockets_are_denied() {
    let a = Arena::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let out = a.run(&format!(r#"attack = "connect", target = "{addr}""#), None, "");
    assert_blocked(&out);
    assert!(listener.accept().is_err(), "the plugin reached the listener");
}

#[test]
fn log_floods_are_bounded() {
    let a = Arena::new();
    let runbook = a.runbook(r#"attack = "log-flood", count = 5000"#, None, "");
    let out = a.sb.run(&["--output", "json", "run", "--yes", runbook.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.all());
    let report = backout_tests::events::report(&out.stdout);
    let step = &report["run"]["steps"][0];
    assert_eq!(step["log"].as_array().unwrap().len(), 1000);
    assert!(step["log_dropped"].as_u64().unwrap() >= 4000, "{step}");
}

#[test]
fn stdout_floods_are_bounded_and_do_not_kill_the_step() {
    let a = Arena::new();
    // 16 MiB of output; the host keeps 64 KiB.
    let runbook = a.runbook(r#"attack = "stdout-flood", count = 16384"#, None, "");
    let out = a.sb.run(&["--output", "json", "run", "--yes", runbook.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.all());
    let report = backout_tests::events::report(&out.stdout);
    let step = &report["run"]["steps"][0];
    assert_eq!(step["status"], "succeeded");
    assert!(step["log_dropped"].as_u64().unwrap() > 15 << 20, "{}", step["log_dropped"]);
}

#[test]
fn oversized_outputs_fail_the_step_cleanly() {
    let a = Arena::new();
    let out = a.run(r#"attack = "huge-outputs", count = 33554432"#, None, "memory = \"256MiB\"");
    assert_eq!(out.code, EXIT_UNDONE, "{}", out.all());
    assert!(out.stdout.contains("FAILED"), "{}", out.all());
}

/// The library view: one runtime survives a timeout, a memory blow-up and a
/// panic, and then runs a well-behaved call.
#[test]
fn the_runtime_stays_healthy_after_every_kind_of_failure() {
    use backout::capability::Grants;
    use backout::runtime::host_api::quiet;
    use backout::runtime::limits::Limits;
    use backout::runtime::{CallContext, Failure, Runtime};

    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let runtime = Runtime::new().unwrap();
        let plugin = runtime.load(&std::fs::read(HOSTILE).unwrap()).unwrap();
        let grants = Grants::default();
        let limits = Limits { timeout: std::time::Duration::from_millis(500), memory: 32 << 20, ..Limits::default() };
        let ctx = CallContext::new("s", &grants, limits, quiet());
        let spin = plugin.run(&ctx, r#"{"attack":"spin"}"#).await;
        assert!(matches!(spin.result, Err(Failure::Timeout { .. })), "{:?}", spin.result);
        let alloc = plugin.run(&ctx, r#"{"attack":"allocate"}"#).await;
        assert!(matches!(alloc.result, Err(Failure::MemoryLimit { .. })), "{:?}", alloc.result);
        let panic = plugin.run(&ctx, r#"{"attack":"panic"}"#).await;
        assert!(matches!(panic.result, Err(Failure::Trap { .. })), "{:?}", panic.result);
        let echo = plugin.run(&ctx, r#"{"attack":"echo","contents":"still here"}"#).await;
        assert_eq!(echo.result.unwrap().outputs["value"], "still here");
    });
}

/// A step with a read-write grant replaces a directory that a later step is
/// granted with a symbolic link out of it. The later step must not be given
/// what the link points to: every grant is opened without following links
/// and must still be the directory the plan checked.
#[test]
fn a_grant_swapped_for_a_symlink_by_an_earlier_step_is_refused() {
    let sb = Sandbox::new(bin());
    sb.add(HOSTILE);
    let app = sb.mkdir("app");
    let data = sb.mkdir("app/data");
    sb.write("app/data/inside.txt", "inside\n");
    let secret = sb.write("outside/secret.txt", SECRET);
    let runbook = sb.write(
        "runbook.toml",
        format!(
            "version = 1\nname = \"swap\"\non_failure = \"abort\"\n\n\
             [[step]]\nid = \"swap\"\nuses = \"hostile@0.1.0\"\n\
             with = {{ attack = \"swap-for-symlink\", path = \"/app/data\", target = \"../outside\" }}\n\
             [step.grants]\ndirs = [{{ host = \"{}\", guest = \"/app\", mode = \"rw\" }}]\n\n\
             [[step]]\nid = \"steal\"\nuses = \"hostile@0.1.0\"\n\
             with = {{ attack = \"read\", path = \"/data/secret.txt\" }}\n\
             [step.grants]\ndirs = [{{ host = \"{}\", guest = \"/data\", mode = \"rw\" }}]\n",
            app.display(),
            data.display()
        ),
    );
    let out = sb.run(&["run", "--yes", runbook.to_str().unwrap()]);
    assert!(!out.all().contains("ESCAPED") && !out.all().contains(SECRET), "the grant was swapped:\n{}", out.all());
    assert_eq!(out.code, backout_tests::cli::EXIT_FAILED, "{}", out.all());
    assert!(out.stdout.contains("ok       swap"), "the first step did its part:\n{}", out.all());
    let planned = sb.path().canonicalize().unwrap().join("app/data");
    assert!(
        out.stdout.contains(&format!("granted directory `{}` changed since plan", planned.display())),
        "{}",
        out.all()
    );
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), SECRET);
}

#[test]
fn a_flood_of_finished_progress_prints_one_line() {
    let a = Arena::new();
    let out = a.run(r#"attack = "progress-flood", count = 100000"#, None, "");
    assert_eq!(out.code, 0, "{}", out.all());
    let lines = out.stderr.lines().filter(|l| l.contains("run progress")).count();
    assert_eq!(lines, 1, "a finished total is shown once:\n{}", out.stderr);
}
