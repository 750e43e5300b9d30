//! service-control through the real host against a real local service
//! (`tests/fixtures/service.py` under `bin/svc`): the commands really stop
//! and start it, the waits really poll its port.

use backout_tests::cli::{Output, Sandbox};
use backout_tests::service::Service;
use backout_tests::{HOSTILE, SERVICE_CONTROL};

use crate::bin;

/// Fields drop in order: the service is stopped before its directory goes.
struct Site {
    service: Service,
    sb: Sandbox,
}

impl Site {
    fn new() -> Self {
        let sb = Sandbox::new(bin());
        sb.add(SERVICE_CONTROL);
        sb.add(HOSTILE);
        let app = sb.mkdir("app");
        let service = Service::new(&sb.path().join("service"), &app);
        service.start();
        Site { service, sb }
    }

    /// The service-control step for `action`, with both waits.
    fn step(&self, id: &str, action: &str) -> String {
        let svc = self.service.svc.display();
        let url = self.service.health_url();
        format!(
            "[[step]]\nid = \"{id}\"\nuses = \"service-control@0.1.0\"\n\
             with = {{ action = \"{action}\", commands = {{ stop = [\"{svc}\", \"stop\"], start = [\"{svc}\", \"start\"] }}, \
             wait_stopped = {{ url = \"{url}\", timeout = \"10s\", interval = \"100ms\" }}, \
             wait_healthy = {{ url = \"{url}\", timeout = \"10s\", interval = \"100ms\" }} }}\n\
             [step.grants]\n{}\nnet = [\"{}\"]\n\n",
            self.service.commands_grant(),
            self.service.origin()
        )
    }

    fn runbook(&self, steps: &str) -> String {
        let text = format!("version = 1\nname = \"svc\"\n\n{steps}");
        self.sb.write("runbook.toml", text).to_str().unwrap().to_string()
    }

    fn run(&self, args: &[&str]) -> Output {
        self.sb.run(args)
    }
}

#[test]
fn plan_shows_the_commands_and_waits_and_leaves_the_service_running() {
    let site = Site::new();
    let runbook = site.runbook(&site.step("stop", "stop"));
    let pid_before = site.service.health().unwrap()["pid"].clone();
    let out = site.run(&["plan", &runbook]);
    assert_eq!(out.code, 0, "{}", out.all());
    let svc = site.service.svc.display();
    for line in [
        format!("will     stop: run `{svc} stop`"),
        format!("wait until {} refuses connections", site.service.health_url()),
        format!("undo would run `{svc} start`, then wait until {} answers a 2xx status", site.service.health_url()),
        format!("command {svc} stop  ({svc})"),
    ] {
        assert!(out.stdout.contains(&line), "missing `{line}`:\n{}", out.all());
    }
    assert_eq!(site.service.health().unwrap()["pid"], pid_before, "plan ran nothing");
}

#[test]
fn stop_waits_until_it_is_down_and_undo_starts_it_until_healthy() {
    let site = Site::new();
    let runbook = site.runbook(&site.step("stop", "stop"));
    let out = site.run(&["run", "--yes", &runbook]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(!site.service.is_up(), "down when the step returns: {}", out.all());
    assert!(!site.service.pid_file.exists());
    assert!(
        out.stdout.contains("stopped: `") && out.stdout.contains("down (connections refused) after"),
        "{}",
        out.all()
    );

    let out = site.run(&["undo", "last", "--yes"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(site.service.is_up(), "undo of stop is start: {}", out.all());
    assert_eq!(site.service.health().unwrap()["status"], "healthy");
    assert!(out.all().contains("healthy (200) after"), "{}", out.all());
}

#[test]
fn start_waits_until_healthy_and_a_later_failure_undoes_it() {
    let site = Site::new();
    site.service.stop();
    // Start, then a step that fails: the default policy undoes the start.
    let steps = format!(
        "{}[[step]]\nid = \"broken\"\nuses = \"hostile@0.1.0\"\nwith = {{ attack = \"read\", path = \"/nowhere/x\" }}\n",
        site.step("start", "start")
    );
    let runbook = site.runbook(&steps);
    let out = site.run(&["run", "--yes", &runbook]);
    assert_eq!(out.code, 4, "undone: {}", out.all());
    assert!(out.all().contains("healthy (200) after"), "it was started and healthy first: {}", out.all());
    assert!(!site.service.is_up(), "undo of start is stop: {}", out.all());
}

#[test]
fn a_command_that_fails_fails_the_step_and_an_ungranted_one_fails_the_plan() {
    let site = Site::new();
    let svc = site.service.svc.display().to_string();
    // Grant only `stop`: `start`, which undo needs, is not granted.
    let step = site
        .step("stop", "stop")
        .replace(&site.service.commands_grant(), &format!("commands = [[\"{svc}\", \"stop\"]]"));
    let out = site.run(&["plan", &site.runbook(&step)]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.all().contains(&format!("`commands.start` (`{svc} start`): command {svc} start is not granted")),
        "{}",
        out.all()
    );
    assert!(site.service.is_up());

    // `svc frobnicate` is granted but exits 2: the step fails and says so.
    let text = format!(
        "[[step]]\nid = \"reload\"\nuses = \"service-control@0.1.0\"\n\
         with = {{ action = \"reload\", commands = {{ reload = [\"{svc}\", \"frobnicate\"] }} }}\n\
         [step.grants]\ncommands = [[\"{svc}\", \"frobnicate\"]]\n"
    );
    let out = site.run(&["run", "--yes", &site.runbook(&text)]);
    assert_ne!(out.code, 0, "{}", out.all());
    assert!(
        out.all().contains(&format!("`{svc} frobnicate` failed (exit 2: usage: svc start|stop|restart|status)")),
        "{}",
        out.all()
    );
}
