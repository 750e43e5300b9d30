//! What the step does, over a [`World`] (the host in a component, a
//! simulated service in the unit tests).

use std::time::{Duration, Instant};

use backout_sdk::config::Pointer;
use backout_sdk::exec::Exit;
use backout_sdk::quantity::format_duration;
use backout_sdk::{Action, Outcome, StepError};
use serde::{Deserialize, Serialize};

use crate::config::{Action as Verb, StoppedWhen, Valid, Wait, WaitHealthy, WaitStopped};

/// What one probe of a URL found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// The server answered with this status and body.
    Answered { status: u16, body: String },
    /// Nothing listens: the connection was refused.
    Refused,
    /// No answer in time, or another transport error: not proof of either.
    NoAnswer(String),
    /// The host refused the request (not granted): waiting cannot help.
    Denied(String),
}

/// Everything the step touches outside its own logic.
pub trait World {
    /// `exec.check`: the program the host would start, or why not.
    fn check(&mut self, argv: &[String]) -> Result<String, String>;
    /// `exec.run`.
    fn exec(&mut self, argv: &[String], cwd: Option<&str>) -> Result<Exit, String>;
    /// Whether a GET to `url` is granted in this call.
    fn check_url(&mut self, url: &str) -> Result<(), String>;
    fn probe(&mut self, url: &str, timeout: Duration) -> Probe;
    /// Whether a guest path exists.
    fn exists(&mut self, path: &str) -> Result<bool, String>;
    fn sleep(&mut self, duration: Duration);
    fn now(&mut self) -> Instant;
    fn checkpoint(&mut self, outputs: &Outputs) -> Result<(), StepError>;
    fn log(&mut self, message: &str);
}

/// The host, through the SDK.
#[derive(Debug)]
pub struct Host;

impl World for Host {
    fn check(&mut self, argv: &[String]) -> Result<String, String> {
        backout_sdk::exec::check(&argv.iter().map(String::as_str).collect::<Vec<_>>())
    }

    fn exec(&mut self, argv: &[String], cwd: Option<&str>) -> Result<Exit, String> {
        backout_sdk::exec::run(&argv.iter().map(String::as_str).collect::<Vec<_>>(), cwd)
    }

    fn check_url(&mut self, url: &str) -> Result<(), String> {
        backout_sdk::http::check("GET", url)
    }

    fn probe(&mut self, url: &str, timeout: Duration) -> Probe {
        use backout_sdk::http::{Error, Request, send};
        match send(Request::get(url).timeout(timeout).max_body(64 * 1024)) {
            Ok(response) => Probe::Answered { status: response.status, body: response.text().into_owned() },
            Err(Error::ConnectionRefused(_)) => Probe::Refused,
            Err(Error::Denied(why)) => Probe::Denied(why),
            Err(other) => Probe::NoAnswer(other.to_string()),
        }
    }

    fn exists(&mut self, path: &str) -> Result<bool, String> {
        match std::fs::symlink_metadata(path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(format!("cannot look at `{path}`: {e}")),
        }
    }

    fn sleep(&mut self, duration: Duration) {
        std::thread::sleep(duration);
    }

    fn now(&mut self) -> Instant {
        Instant::now()
    }

    fn checkpoint(&mut self, outputs: &Outputs) -> Result<(), StepError> {
        backout_sdk::checkpoint(outputs)
    }

    fn log(&mut self, message: &str) {
        backout_sdk::log::info(message);
    }
}

/// What `run` did, for `verify` and `undo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outputs {
    pub action: Verb,
    /// The argv that ran.
    pub command: Vec<String>,
    /// Its exit status; `None` in a checkpoint taken before it ran.
    pub exit_code: Option<i32>,
    /// How the wait ended (`down after 1.2s`), if there was one.
    pub waited: Option<String>,
    /// The argv `undo` runs (stop ↔ start), if any.
    pub undo_command: Option<Vec<String>>,
}

fn shown(argv: &[String]) -> String {
    argv.iter()
        .map(|a| if a.is_empty() || a.contains(char::is_whitespace) { format!("{a:?}") } else { a.clone() })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A command or URL the step's grants refuse: `invalid-config` at its key.
fn denied(key: &[&str], message: String) -> StepError {
    StepError::invalid_config_at(key.iter().fold(Pointer::root(), |p, k| p.key(*k)), message)
}

/// What `plan` shows, after proving every command and URL the step (and its
/// undo) will use is granted. Starts nothing.
pub fn plan(valid: &Valid, world: &mut dyn World) -> Result<Vec<Action>, StepError> {
    let granted = |world: &mut dyn World, argv: &[String], key: &str| {
        world
            .check(argv)
            .map_err(|why| denied(&["commands", key], format!("`commands.{key}` (`{}`): {why}", shown(argv))))
    };
    let mut actions = Vec::new();
    let program = granted(world, &valid.argv, valid.action.as_str())?;
    let mut action = Action::new(format!("{}: run `{}`", valid.action.as_str(), shown(&valid.argv)))
        .detail(format!("program {program}{}", valid.cwd.as_ref().map(|c| format!(", in {c}")).unwrap_or_default()));
    if valid.action == Verb::Status {
        action = Action::check(action.summary)
            .detail(format!("program {program}; reports its exit status, changes nothing"));
    }
    actions.push(action);
    if let Some(wait) = valid.wait_after(valid.action) {
        actions.push(plan_wait(wait, world)?);
    }
    if let (Some(inverse), Some(argv)) = (valid.action.inverse(), &valid.undo_argv) {
        let program = granted(world, argv, inverse.as_str())?;
        let then = match valid.wait_after(inverse) {
            Some(wait) => format!(", then {}", plan_wait(wait, world)?.summary),
            None => String::new(),
        };
        actions
            .push(Action::new(format!("undo would run `{}`{then}", shown(argv))).detail(format!("program {program}")));
    }
    Ok(actions)
}

fn plan_wait(wait: Wait<'_>, world: &mut dyn World) -> Result<Action, StepError> {
    let url_granted = |world: &mut dyn World, url: &str, key: &str| {
        world.check_url(url).map_err(|why| denied(&[key, "url"], format!("`{key}.url`: {why}")))
    };
    Ok(match wait {
        Wait::Healthy(w) => {
            url_granted(world, &w.url, "wait_healthy")?;
            Action::check(format!("wait until {} answers {}", w.url, expectation(w))).detail(w.poll.describe())
        }
        Wait::Stopped(w) => match &w.when {
            StoppedWhen::Refused(url) => {
                url_granted(world, url, "wait_stopped")?;
                Action::check(format!("wait until {url} refuses connections")).detail(w.poll.describe())
            }
            StoppedWhen::PidFileGone(path) => {
                Action::check(format!("wait until {path} is gone")).detail(w.poll.describe())
            }
        },
    })
}

fn expectation(w: &WaitHealthy) -> String {
    let status = w.status.map(|s| format!("status {s}")).unwrap_or_else(|| "a 2xx status".to_string());
    match &w.body_contains {
        Some(text) => format!("{status} with {text:?} in the body"),
        None => status,
    }
}

/// Runs the action, then its wait.
pub fn run(valid: &Valid, world: &mut dyn World) -> Result<Outcome<Outputs>, StepError> {
    let mut outputs = Outputs {
        action: valid.action,
        command: valid.argv.clone(),
        exit_code: None,
        waited: None,
        undo_command: valid.undo_argv.clone(),
    };
    if valid.action != Verb::Status {
        // Before the command: if backout dies while it runs, `undo` still
        // knows what to run and `verify` can look at the service.
        world.checkpoint(&outputs)?;
    }
    let exit = run_command(world, &valid.argv, valid.cwd.as_deref())?;
    outputs.exit_code = exit.code;
    if valid.action == Verb::Status {
        let summary = format!("status: `{}` {}", shown(&valid.argv), exit.describe());
        return Ok(Outcome::new(summary, outputs));
    }
    if !exit.success() {
        return Err(StepError::failed(format!(
            "`{}` failed ({}); the service may be partly {}",
            shown(&valid.argv),
            exit.describe(),
            past(valid.action)
        )));
    }
    outputs.waited = match valid.wait_after(valid.action) {
        Some(wait) => Some(wait_for(wait, world)?),
        None => None,
    };
    let summary = format!(
        "{}: `{}` exit 0{}",
        past(valid.action),
        shown(&valid.argv),
        outputs.waited.as_ref().map(|w| format!("; {w}")).unwrap_or_default()
    );
    Ok(Outcome::new(summary, outputs))
}

fn past(action: Verb) -> &'static str {
    match action {
        Verb::Stop => "stopped",
        Verb::Start => "started",
        Verb::Restart => "restarted",
        Verb::Reload => "reloaded",
        Verb::Status => "checked",
    }
}

fn run_command(world: &mut dyn World, argv: &[String], cwd: Option<&str>) -> Result<Exit, StepError> {
    world
        .exec(argv, cwd)
        .map_err(|why| StepError::failed(format!("`{}` did not start: {why}; nothing was run", shown(argv))))
}

/// Polls until the wait is satisfied; fails with what the last probe saw
/// when its timeout passes.
fn wait_for(wait: Wait<'_>, world: &mut dyn World) -> Result<String, StepError> {
    let poll = match wait {
        Wait::Healthy(w) => w.poll,
        Wait::Stopped(w) => w.poll,
    };
    let started = world.now();
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let elapsed = world.now().duration_since(started);
        let left = poll.timeout.saturating_sub(elapsed);
        let probe_timeout = left.min(Duration::from_secs(5)).max(Duration::from_millis(100));
        let seen = match check_once(wait, world, probe_timeout)? {
            Ok(done) => {
                let took = format_duration(world.now().duration_since(started));
                world.log(&format!("{done} after {took} ({attempts} probes)"));
                return Ok(format!("{done} after {took}"));
            }
            Err(seen) => seen,
        };
        if world.now().duration_since(started) + poll.interval > poll.timeout {
            return Err(StepError::failed(format!(
                "{} after {} ({attempts} probes): {seen}",
                match wait {
                    Wait::Healthy(w) => format!("{} did not answer {}", w.url, expectation(w)),
                    Wait::Stopped(w) => still_up(w),
                },
                format_duration(poll.timeout)
            )));
        }
        world.sleep(poll.interval);
    }
}

fn still_up(w: &WaitStopped) -> String {
    match &w.when {
        StoppedWhen::Refused(url) => format!("the service still answers at {url}"),
        StoppedWhen::PidFileGone(path) => format!("{path} is still there"),
    }
}

/// One probe: `Ok(Ok(what))` when the wait is satisfied, `Ok(Err(what was
/// seen))` when not yet, `Err` when waiting cannot help (not granted).
fn check_once(wait: Wait<'_>, world: &mut dyn World, timeout: Duration) -> Result<Result<String, String>, StepError> {
    let denied = |why: String| StepError::failed(format!("the wait is not granted: {why}"));
    Ok(match wait {
        Wait::Healthy(w) => match world.probe(&w.url, timeout) {
            Probe::Answered { status, body } => {
                let status_ok = w.status.map_or((200..300).contains(&status), |s| s == status);
                let body_ok = w.body_contains.as_ref().is_none_or(|t| body.contains(t.as_str()));
                if status_ok && body_ok {
                    Ok(format!("healthy ({status})"))
                } else {
                    Err(format!(
                        "the last answer was status {status}{}",
                        if body_ok { "" } else { " without the expected text" }
                    ))
                }
            }
            Probe::Refused => Err("the last try was refused (nothing listens yet)".to_string()),
            Probe::NoAnswer(why) => Err(format!("the last try got no answer: {why}")),
            Probe::Denied(why) => return Err(denied(why)),
        },
        Wait::Stopped(w) => match &w.when {
            StoppedWhen::Refused(url) => match world.probe(url, timeout) {
                Probe::Refused => Ok("down (connections refused)".to_string()),
                Probe::Answered { status, .. } => Err(format!("the last try was answered with status {status}")),
                Probe::NoAnswer(why) => Err(format!("the last try got no answer but was not refused: {why}")),
                Probe::Denied(why) => return Err(denied(why)),
            },
            StoppedWhen::PidFileGone(path) => match world.exists(path) {
                Ok(false) => Ok(format!("down ({path} is gone)")),
                Ok(true) => Err(format!("{path} is still there")),
                Err(why) => return Err(StepError::failed(why)),
            },
        },
    })
}

/// After `run` (or a crash in it): the wait's condition holds now. Without a
/// wait, a recorded exit status 0 is all there is to check.
pub fn verify(valid: &Valid, outputs: &Outputs, world: &mut dyn World) -> Result<(), StepError> {
    if valid.action == Verb::Status {
        return Ok(());
    }
    match valid.wait_after(outputs.action) {
        Some(wait) => match check_once(wait, world, Duration::from_secs(5))? {
            Ok(_) => Ok(()),
            Err(seen) => {
                Err(StepError::failed(format!("the service is not {} as `run` left it: {seen}", past(outputs.action))))
            }
        },
        None if outputs.exit_code == Some(0) => Ok(()),
        None => Err(StepError::failed(format!(
            "`{}` has no recorded exit status 0 (backout stopped while it ran?) and there is no wait to check the service with",
            shown(&outputs.command)
        ))),
    }
}

/// Runs the inverse action (stop ↔ start) and its wait; the others have
/// nothing to put back. Running it again is harmless (a start of a running
/// service, a stop of a stopped one), so a retried undo is safe.
pub fn undo(valid: &Valid, outputs: &Outputs, world: &mut dyn World) -> Result<Outcome<Outputs>, StepError> {
    let (Some(inverse), Some(argv)) =
        (outputs.action.inverse(), outputs.undo_command.as_ref().or(valid.undo_argv.as_ref()))
    else {
        return Ok(Outcome::new(
            format!("nothing to put back: a {} cannot be undone", outputs.action.as_str()),
            outputs.clone(),
        ));
    };
    let exit = run_command(world, argv, valid.cwd.as_deref())?;
    if !exit.success() {
        return Err(StepError::failed(format!(
            "undo: `{}` failed ({}); the service was {} by `run` and may still be",
            shown(argv),
            exit.describe(),
            past(outputs.action)
        )));
    }
    let waited = match valid.wait_after(inverse) {
        Some(wait) => Some(wait_for(wait, world)?),
        None => None,
    };
    let summary =
        format!("undone: `{}` exit 0{}", shown(argv), waited.as_ref().map(|w| format!("; {w}")).unwrap_or_default());
    Ok(Outcome::new(
        summary,
        Outputs { action: inverse, command: argv.clone(), exit_code: exit.code, waited, undo_command: None },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, validate};
    use serde_json::json;

    /// A service the commands start and stop, which comes up (or goes down)
    /// `lag` probes after its command, with a clock that sleeping advances.
    struct Simulated {
        up: bool,
        pending: Option<(bool, u32)>,
        lag: u32,
        granted: Vec<Vec<String>>,
        ran: Vec<Vec<String>>,
        checkpoints: Vec<Outputs>,
        clock: Instant,
        exit_code: i32,
    }

    impl Simulated {
        fn new(up: bool, lag: u32) -> Self {
            Simulated {
                up,
                pending: None,
                lag,
                granted: vec![argv(&["svc", "stop"]), argv(&["svc", "start"])],
                ran: Vec::new(),
                checkpoints: Vec::new(),
                clock: Instant::now(),
                exit_code: 0,
            }
        }
    }

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    impl World for Simulated {
        fn check(&mut self, argv: &[String]) -> Result<String, String> {
            if self.granted.iter().any(|g| g == argv) {
                Ok(format!("/usr/bin/{}", argv[0]))
            } else {
                Err("not granted".into())
            }
        }
        fn exec(&mut self, argv: &[String], _cwd: Option<&str>) -> Result<Exit, String> {
            self.check(argv)?;
            self.ran.push(argv.to_vec());
            self.pending = Some((argv[1] == "start", self.lag));
            Ok(Exit { code: Some(self.exit_code), ..Exit::default() })
        }
        fn check_url(&mut self, url: &str) -> Result<(), String> {
            if url.starts_with("http://127.0.0.1:8080") { Ok(()) } else { Err(format!("{url} is not granted")) }
        }
        fn probe(&mut self, _url: &str, _timeout: Duration) -> Probe {
            if let Some((target, left)) = self.pending {
                if left == 0 {
                    self.up = target;
                    self.pending = None;
                } else {
                    self.pending = Some((target, left - 1));
                }
            }
            if self.up { Probe::Answered { status: 200, body: "ok".into() } } else { Probe::Refused }
        }
        fn exists(&mut self, _path: &str) -> Result<bool, String> {
            Ok(self.up)
        }
        fn sleep(&mut self, duration: Duration) {
            self.clock += duration;
        }
        fn now(&mut self) -> Instant {
            self.clock
        }
        fn checkpoint(&mut self, outputs: &Outputs) -> Result<(), StepError> {
            self.checkpoints.push(outputs.clone());
            Ok(())
        }
        fn log(&mut self, _message: &str) {}
    }

    fn valid(action: &str) -> Valid {
        let config: Config = serde_json::from_value(json!({
            "action": action,
            "commands": { "stop": ["svc", "stop"], "start": ["svc", "start"], "status": ["svc", "status"] },
            "wait_stopped": { "url": "http://127.0.0.1:8080/health", "timeout": "5s", "interval": "1s" },
            "wait_healthy": { "url": "http://127.0.0.1:8080/health", "timeout": "5s", "interval": "1s" }
        }))
        .unwrap();
        validate(config).unwrap()
    }

    #[test]
    fn stop_checkpoints_first_then_waits_until_down_and_undo_starts_it_again() {
        let mut world = Simulated::new(true, 2);
        let done = run(&valid("stop"), &mut world).unwrap();
        assert_eq!(world.checkpoints.len(), 1, "checkpointed before the command");
        assert_eq!(world.checkpoints[0].exit_code, None);
        assert!(!world.up);
        assert_eq!(done.outputs.waited.as_deref(), Some("down (connections refused) after 2s"));
        verify(&valid("stop"), &done.outputs, &mut world).unwrap();

        let undone = undo(&valid("stop"), &done.outputs, &mut world).unwrap();
        assert!(world.up);
        assert_eq!(world.ran, [argv(&["svc", "stop"]), argv(&["svc", "start"])]);
        assert!(undone.summary.starts_with("undone: `svc start` exit 0; healthy (200) after"), "{}", undone.summary);
    }

    #[test]
    fn a_service_that_never_goes_down_fails_the_step_with_what_was_seen() {
        let mut world = Simulated::new(true, 1000);
        let e = run(&valid("stop"), &mut world).unwrap_err();
        assert!(
            e.message().starts_with(
                "the service still answers at http://127.0.0.1:8080/health after 5s (6 probes): the last try was answered with status 200"
            ),
            "{e:?}"
        );
        // And verify after a crash says so too.
        let outputs = world.checkpoints[0].clone();
        assert!(verify(&valid("stop"), &outputs, &mut world).is_err());
    }

    #[test]
    fn a_failing_command_fails_the_step_and_plan_refuses_what_is_not_granted() {
        let mut world = Simulated::new(true, 0);
        world.exit_code = 5;
        let e = run(&valid("stop"), &mut world).unwrap_err();
        assert!(e.message().contains("`svc stop` failed (exit 5); the service may be partly stopped"), "{e:?}");

        let mut world = Simulated::new(true, 0);
        let actions = plan(&valid("stop"), &mut world).unwrap();
        let shown: Vec<&str> = actions.iter().map(|a| a.summary.as_str()).collect();
        assert_eq!(
            shown,
            [
                "stop: run `svc stop`",
                "wait until http://127.0.0.1:8080/health refuses connections",
                "undo would run `svc start`, then wait until http://127.0.0.1:8080/health answers a 2xx status"
            ]
        );
        assert!(world.ran.is_empty(), "plan starts nothing");
        world.granted.pop();
        let e = plan(&valid("stop"), &mut world).unwrap_err();
        assert!(e.message().contains("`commands.start` (`svc start`): not granted"), "{e:?}");
    }

    #[test]
    fn status_changes_nothing_and_has_nothing_to_undo() {
        let mut world = Simulated::new(true, 0);
        world.granted.push(argv(&["svc", "status"]));
        let done = run(&valid("status"), &mut world).unwrap();
        assert!(world.checkpoints.is_empty());
        let undone = undo(&valid("status"), &done.outputs, &mut world).unwrap();
        assert_eq!(undone.summary, "nothing to put back: a status cannot be undone");
        assert_eq!(world.ran.len(), 1);
    }

    #[test]
    fn what_the_grants_refuse_is_named_at_its_key() {
        use backout_sdk::config::Problems;
        let at = |e: StepError| Problems::decode(e.message()).0[0].pointer.as_ref().map(ToString::to_string);
        let mut world = Simulated::new(true, 0);
        world.granted.pop();
        assert_eq!(at(plan(&valid("stop"), &mut world).unwrap_err()).as_deref(), Some("/commands/start"));
        let mut config = valid("stop");
        config.wait_stopped = None;
        config.wait_healthy.as_mut().unwrap().url = "http://10.0.0.1/health".into();
        let mut world = Simulated::new(true, 0);
        assert_eq!(at(plan(&config, &mut world).unwrap_err()).as_deref(), Some("/wait_healthy/url"));
    }
}
