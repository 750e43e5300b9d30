//! Command grants through the real host: the hostile plugin asks to run
//! commands (`attack = "exec"`), real programs (shell scripts the tests
//! write) leave a marker file when they start, so "never started" is proven
//! by the marker's absence, not by a message.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use backout_tests::HOSTILE;
use backout_tests::cli::{Output, Sandbox};

use crate::bin;

struct Site {
    sb: Sandbox,
    /// Where the test's programs live (0755, owned by the test's user).
    bin: PathBuf,
    /// A directory the steps may use as a working directory.
    work: PathBuf,
    /// Touched by `tool` when it starts.
    marker: PathBuf,
}

impl Site {
    fn new() -> Self {
        let sb = Sandbox::new(bin());
        sb.add(HOSTILE);
        let bin = sb.mkdir("bin");
        let work = sb.mkdir("work");
        let marker = sb.path().join("started");
        let site = Site { sb, bin, work, marker };
        site.program("tool", &format!("echo \"$@\" >> {}\necho done\n", site.marker.display()));
        site
    }

    /// A shell script `name` in `bin/`, mode 0755.
    fn program(&self, name: &str, body: &str) -> String {
        let path = self.bin.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.to_str().unwrap().to_string()
    }

    fn tool(&self) -> String {
        self.bin.join("tool").to_str().unwrap().to_string()
    }

    /// One hostile `exec` step asking for `argv`, with `grants` as the step's grant lines.
    fn runbook(&self, argv: &[&str], extra_with: &str, grants: &str) -> String {
        let argv = serde_json::to_string(argv).unwrap();
        let text = format!(
            "version = 1\nname = \"cmd\"\n\n[[step]]\nid = \"cmd\"\nuses = \"hostile@0.1.0\"\n\
             with = {{ attack = \"exec\", argv = {argv}{extra_with} }}\n\n[step.grants]\n{grants}\n"
        );
        self.sb.write("runbook.toml", text).to_str().unwrap().to_string()
    }

    fn run(&self, runbook: &str) -> Output {
        self.sb.run(&["--output", "json", "run", "--yes", runbook])
    }

    fn started(&self) -> bool {
        self.marker.exists()
    }
}

fn outputs(out: &Output) -> serde_json::Value {
    let report = backout_tests::events::report(&out.stdout);
    report["run"]["steps"][0]["outputs"].clone()
}

#[test]
fn plan_lists_the_exact_commands_with_their_programs_and_never_runs_one() {
    let site = Site::new();
    let tool = site.tool();
    let runbook = site.runbook(
        &[&tool, "stop", "my app"],
        ", in_plan = true",
        &format!("commands = [[\"{tool}\", \"stop\", \"my app\"], [\"sh\", \"-c\", \"true\"]]"),
    );
    let out = site.sb.run(&["plan", &runbook]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains(&format!("command {tool} stop \"my app\"  ({tool})")), "{}", out.all());
    // A bare name is resolved once, through PATH, to an absolute path.
    assert!(
        out.stdout.contains("command sh -c true  (/usr/bin/dash)") || out.stdout.contains("command sh -c true  (/bin/"),
        "{}",
        out.all()
    );
    assert!(out.stdout.contains("is refused during `plan`: nothing may change"), "{}", out.all());
    assert!(!site.started(), "plan never starts a command");
}

#[test]
fn a_granted_command_runs_and_reports_its_exit() {
    let site = Site::new();
    let tool = site.tool();
    let runbook = site.runbook(&[&tool, "stop", "app"], "", &format!("commands = [[\"{tool}\", \"stop\", \"app\"]]"));
    let out = site.run(&runbook);
    assert_eq!(out.code, 0, "{}", out.all());
    let o = outputs(&out);
    assert_eq!((o["code"].as_i64(), o["stdout"].as_str()), (Some(0), Some("done\n")), "{o}");
    assert_eq!(std::fs::read_to_string(&site.marker).unwrap(), "stop app\n");
    assert!(out.stderr.contains(&format!("ran {tool} stop app: exit 0 in ")), "journaled and shown: {}", out.all());
}

#[test]
fn a_command_not_granted_or_with_one_argument_different_never_starts() {
    let site = Site::new();
    let tool = site.tool();
    let grant = format!("commands = [[\"{tool}\", \"stop\", \"app\"]]");
    for argv in [
        vec![tool.as_str(), "stop", "other-app"],
        vec![tool.as_str(), "stop", "app", "--now"],
        vec![tool.as_str(), "stop"],
        vec!["tool", "stop", "app"],
        vec!["/bin/sh", "-c", "touch started"],
    ] {
        let out = site.run(&site.runbook(&argv, "", &grant));
        assert_ne!(out.code, 0, "{argv:?}: {}", out.all());
        assert!(
            out.all().contains(&format!("is not granted (the step's `commands` grant: {tool} stop app)")),
            "{argv:?}: {}",
            out.all()
        );
        assert!(!site.started(), "{argv:?} started");
    }
    // Without any grant, nothing at all.
    let out = site.run(&site.runbook(&[&tool, "stop", "app"], "", ""));
    assert!(out.all().contains("(the step's `commands` grant: none)"), "{}", out.all());
    assert!(!site.started());
}

#[test]
fn relative_and_replaceable_programs_are_refused_at_plan_time() {
    let site = Site::new();
    let runbook = site.runbook(&["./bin/tool"], "", "commands = [[\"./bin/tool\"]]");
    let out = site.sb.run(&["plan", &runbook]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("`./bin/tool` is a relative path; give the program's absolute path"), "{}", out.all());

    let tool = site.tool();
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o777)).unwrap();
    let runbook = site.runbook(&[&tool], "", &format!("commands = [[\"{tool}\"]]"));
    let out = site.sb.run(&["plan", &runbook]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("is writable by others (mode 777)"), "{}", out.all());
    assert!(!site.started());
}

#[test]
fn a_program_replaced_after_plan_is_refused_and_never_starts() {
    let site = Site::new();
    let tool = site.tool();
    // Step 1 may write in bin/ and rewrites the granted program; step 2's
    // command must then be refused.
    let text = format!(
        "version = 1\nname = \"swap\"\non_failure = \"abort\"\n\n\
         [[step]]\nid = \"swap\"\nuses = \"hostile@0.1.0\"\n\
         with = {{ attack = \"write\", path = \"/bin/tool\", contents = \"#!/bin/sh\\ntouch {marker}\\n# evil\\n\" }}\n\
         [step.grants]\ndirs = [{{ host = \"{bin}\", guest = \"/bin\", mode = \"rw\" }}]\n\n\
         [[step]]\nid = \"cmd\"\nuses = \"hostile@0.1.0\"\nwith = {{ attack = \"exec\", argv = [\"{tool}\"] }}\n\
         [step.grants]\ncommands = [[\"{tool}\"]]\n",
        marker = site.marker.display(),
        bin = site.bin.display(),
    );
    let runbook = site.sb.write("swap.toml", text);
    let out = site.sb.run(&["run", "--yes", runbook.to_str().unwrap()]);
    assert_ne!(out.code, 0, "{}", out.all());
    assert!(out.all().contains("changed since plan (its contents differ); not started"), "{}", out.all());
    assert!(!site.started(), "the replaced program never ran");
}

#[test]
fn the_step_timeout_kills_the_command_and_everything_it_started() {
    let site = Site::new();
    let late = site.sb.path().join("late");
    let slow = site.program("slow", &format!("(sleep 3; touch {}) &\nsleep 120\n", late.display()));
    let text = format!(
        "version = 1\nname = \"slow\"\non_failure = \"abort\"\n\n[[step]]\nid = \"slow\"\nuses = \"hostile@0.1.0\"\n\
         timeout = \"1s\"\nwith = {{ attack = \"exec\", argv = [\"{slow}\"] }}\n[step.grants]\ncommands = [[\"{slow}\"]]\n"
    );
    let runbook = site.sb.write("slow.toml", text);
    let started = std::time::Instant::now();
    let out = site.sb.run(&["run", "--yes", runbook.to_str().unwrap()]);
    assert_eq!(out.code, 7, "timed out: {}", out.all());
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    std::thread::sleep(std::time::Duration::from_millis(3500));
    assert!(!late.exists(), "the command's background child was killed with its process group");
}

#[test]
fn a_command_sees_only_the_granted_variables_masked_bounded_output_and_its_granted_cwd() {
    let site = Site::new();
    let probe = site.program("probe", "env\npwd\nhead -c 1000000 /dev/zero | tr '\\000' x\n");
    let work = site.work.display().to_string();
    let runbook = site.runbook(
        &[&probe],
        ", path = \"/work\"",
        &format!(
            "env = [\"BACKOUT_TEST_TOKEN\"]\ncommands = [[\"{probe}\"]]\ndirs = [{{ host = \"{work}\", guest = \"/work\" }}]"
        ),
    );
    let out = site.sb.run_with_env(
        &["--output", "json", "run", "--yes", &runbook],
        &[("BACKOUT_TEST_TOKEN", &"tok-9f8e7d6c"), ("LEAKED_VAR", &"should-not-pass")],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let o = outputs(&out);
    let stdout = o["stdout"].as_str().unwrap();
    let head = &stdout[..stdout.find("xxx").unwrap()];
    assert!(head.contains("BACKOUT_TEST_TOKEN=***\n"), "{head}");
    for absent in ["tok-9f8e7d6c", "LEAKED_VAR", "PATH=", "HOME=", "BACKOUT_REGISTRY"] {
        assert!(!head.contains(absent), "{absent} reached the command: {head}");
    }
    assert!(head.ends_with(&format!("{work}\n")), "ran in the granted directory: {head}");
    assert!(stdout.len() <= 64 * 1024 && o["truncated"] == true, "bounded: {} bytes", stdout.len());

    // A working directory outside every grant is refused; the command never starts.
    let runbook = site.runbook(&[&site.tool()], ", path = \"/etc\"", &format!("commands = [[\"{}\"]]", site.tool()));
    let out = site.run(&runbook);
    assert!(out.all().contains("working directory: `/etc` is not granted"), "{}", out.all());
    assert!(!site.started());
}

#[test]
fn a_commands_grant_the_plugin_cannot_use_is_a_warning() {
    let sb = Sandbox::new(bin());
    sb.add(backout_tests::ENV_TOGGLE);
    let dir = sb.mkdir("app");
    sb.write("app/.env", "A=1\n");
    let runbook = sb.write(
        "runbook.toml",
        format!(
            "version = 1\nname = \"t\"\n\n[[step]]\nid = \"t\"\nuses = \"env-toggle@0.1.0\"\n\
             with = {{ file = \"/app/.env\", set = {{ A = \"2\" }} }}\n[step.grants]\n\
             dirs = [{{ host = \"{}\", guest = \"/app\", mode = \"rw\" }}]\ncommands = [[\"/bin/true\"]]\n",
            dir.display()
        ),
    );
    let out = sb.run(&["plan", runbook.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.all().contains("`env-toggle` does not run host commands (it does not import `backout:step/exec`)"),
        "{}",
        out.all()
    );
}
