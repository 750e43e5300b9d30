//! The step's config, checked once into [`Valid`] before anything runs.

use std::time::Duration;

use backout_sdk::StepError;
use backout_sdk::config::Pointer;
use backout_sdk::quantity::{format_duration, parse_duration};
use serde::Deserialize;

/// The longest any wait may last.
const MAX_WAIT: Duration = Duration::from_secs(15 * 60);
/// The shortest interval between polls.
const MIN_INTERVAL: Duration = Duration::from_millis(50);

/// `with` as the runbook writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub action: String,
    /// The argv for each action, e.g. `stop = ["systemctl", "stop", "app"]`;
    /// each must also be in the step's `commands` grant.
    pub commands: Commands,
    /// Guest directory the commands run in (inside a directory grant).
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub wait_healthy: Option<WaitHealthyDef>,
    #[serde(default)]
    pub wait_stopped: Option<WaitStoppedDef>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Commands {
    #[serde(default)]
    pub stop: Option<Vec<String>>,
    #[serde(default)]
    pub start: Option<Vec<String>>,
    #[serde(default)]
    pub restart: Option<Vec<String>>,
    #[serde(default)]
    pub reload: Option<Vec<String>>,
    #[serde(default)]
    pub status: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitHealthyDef {
    pub url: String,
    /// Status that means healthy; default any 2xx.
    #[serde(default)]
    pub status: Option<u16>,
    /// Text the body must contain.
    #[serde(default)]
    pub body_contains: Option<String>,
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub interval: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitStoppedDef {
    /// Stopped once a request to it is refused (nothing listens on the port).
    #[serde(default)]
    pub url: Option<String>,
    /// Stopped once this file (a guest path) is gone.
    #[serde(default)]
    pub pid_file: Option<String>,
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub interval: Option<String>,
}

/// What the step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Stop,
    Start,
    Restart,
    Reload,
    Status,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Stop => "stop",
            Action::Start => "start",
            Action::Restart => "restart",
            Action::Reload => "reload",
            Action::Status => "status",
        }
    }

    /// The action that undoes this one: `stop` ↔ `start`; the others change
    /// nothing that can be put back.
    pub fn inverse(self) -> Option<Action> {
        match self {
            Action::Stop => Some(Action::Start),
            Action::Start => Some(Action::Stop),
            _ => None,
        }
    }
}

/// How long and how often to poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Poll {
    pub timeout: Duration,
    pub interval: Duration,
}

impl Poll {
    pub fn describe(&self) -> String {
        format!("at most {}, every {}", format_duration(self.timeout), format_duration(self.interval))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitHealthy {
    pub url: String,
    pub status: Option<u16>,
    pub body_contains: Option<String>,
    pub poll: Poll,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoppedWhen {
    Refused(String),
    PidFileGone(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitStopped {
    pub when: StoppedWhen,
    pub poll: Poll,
}

/// The checked config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Valid {
    pub action: Action,
    /// The action's argv.
    pub argv: Vec<String>,
    /// The inverse action's argv, which `undo` runs (stop ↔ start).
    pub undo_argv: Option<Vec<String>>,
    pub cwd: Option<String>,
    pub wait_healthy: Option<WaitHealthy>,
    pub wait_stopped: Option<WaitStopped>,
}

impl Valid {
    /// The wait that follows `action`: stopped after a stop, healthy after
    /// anything that (re)starts the service.
    pub fn wait_after(&self, action: Action) -> Option<Wait<'_>> {
        match action {
            Action::Stop => self.wait_stopped.as_ref().map(Wait::Stopped),
            Action::Start | Action::Restart | Action::Reload => self.wait_healthy.as_ref().map(Wait::Healthy),
            Action::Status => None,
        }
    }
}

/// One of the two waits.
#[derive(Debug, Clone, Copy)]
pub enum Wait<'a> {
    Healthy(&'a WaitHealthy),
    Stopped(&'a WaitStopped),
}

/// An `invalid-config` error about the key at `pointer`, written as the
/// message names it (`wait_healthy.url` is `/wait_healthy/url`).
fn invalid(dotted: &str, message: impl std::fmt::Display) -> StepError {
    let pointer = dotted.split('.').fold(Pointer::root(), Pointer::key);
    StepError::invalid_config_at(pointer, message)
}

fn poll(timeout: Option<&str>, interval: Option<&str>, what: &str) -> Result<Poll, StepError> {
    let (timeout_key, interval_key) = (format!("{what}.timeout"), format!("{what}.interval"));
    let timeout =
        parse_duration(timeout.unwrap_or("30s")).map_err(|e| invalid(&timeout_key, format!("`{timeout_key}`: {e}")))?;
    let interval = parse_duration(interval.unwrap_or("500ms"))
        .map_err(|e| invalid(&interval_key, format!("`{interval_key}`: {e}")))?;
    if timeout.is_zero() || timeout > MAX_WAIT {
        return Err(invalid(
            &timeout_key,
            format!("`{timeout_key}` must be more than 0 and at most {}", format_duration(MAX_WAIT)),
        ));
    }
    if interval < MIN_INTERVAL || interval > timeout {
        return Err(invalid(
            &interval_key,
            format!("`{interval_key}` must be at least {} and at most the timeout", format_duration(MIN_INTERVAL)),
        ));
    }
    Ok(Poll { timeout, interval })
}

fn argv_of(commands: &Commands, action: Action) -> Option<&Vec<String>> {
    match action {
        Action::Stop => commands.stop.as_ref(),
        Action::Start => commands.start.as_ref(),
        Action::Restart => commands.restart.as_ref(),
        Action::Reload => commands.reload.as_ref(),
        Action::Status => commands.status.as_ref(),
    }
}

/// The argv for `action`; a missing one is named at `action` (the key that
/// asks for it), an empty one at itself.
fn checked_argv(commands: &Commands, action: Action, why: &str) -> Result<Vec<String>, StepError> {
    let argv = argv_of(commands, action).ok_or_else(|| {
        invalid(
            "action",
            format!(
                "`commands.{}` is required {why}: the argv, e.g. [\"systemctl\", \"{0}\", \"app\"]",
                action.as_str()
            ),
        )
    })?;
    if argv.is_empty() || argv[0].is_empty() {
        let key = format!("commands.{}", action.as_str());
        return Err(invalid(&key, format!("`{key}` is empty")));
    }
    Ok(argv.clone())
}

/// Checks `config` into [`Valid`]: the action's argv is there (and, for
/// `stop` and `start`, the inverse one `undo` needs), the waits are well
/// formed and bounded.
pub fn validate(config: Config) -> Result<Valid, StepError> {
    let action: Action = serde_json::from_value(serde_json::Value::String(config.action.clone())).map_err(|_| {
        invalid(
            "action",
            format!(
                "`action` must be \"stop\", \"start\", \"restart\", \"reload\" or \"status\", not {:?}",
                config.action
            ),
        )
    })?;
    let argv = checked_argv(&config.commands, action, &format!("for `action = \"{}\"`", action.as_str()))?;
    let undo_argv = match action.inverse() {
        Some(inverse) => Some(checked_argv(
            &config.commands,
            inverse,
            &format!("to undo `{}` (undo runs `{}`)", action.as_str(), inverse.as_str()),
        )?),
        None => None,
    };
    if let Some(cwd) = &config.cwd
        && !cwd.starts_with('/')
    {
        return Err(invalid("cwd", format!("`cwd` must be an absolute guest path, not {cwd:?}")));
    }
    let wait_healthy = match config.wait_healthy {
        Some(w) => {
            if !(w.url.starts_with("http://") || w.url.starts_with("https://")) {
                return Err(invalid(
                    "wait_healthy.url",
                    format!("`wait_healthy.url` must be an http:// or https:// URL, not {:?}", w.url),
                ));
            }
            if let Some(status) = w.status
                && !(100..=599).contains(&status)
            {
                return Err(invalid(
                    "wait_healthy.status",
                    format!("`wait_healthy.status` {status} is not an HTTP status"),
                ));
            }
            let poll = poll(w.timeout.as_deref(), w.interval.as_deref(), "wait_healthy")?;
            Some(WaitHealthy { url: w.url, status: w.status, body_contains: w.body_contains, poll })
        }
        None => None,
    };
    let wait_stopped = match config.wait_stopped {
        Some(w) => {
            let when = match (w.url, w.pid_file) {
                (Some(url), None) if url.starts_with("http://") || url.starts_with("https://") => {
                    StoppedWhen::Refused(url)
                }
                (Some(url), None) => {
                    return Err(invalid(
                        "wait_stopped.url",
                        format!("`wait_stopped.url` must be an http:// or https:// URL, not {url:?}"),
                    ));
                }
                (None, Some(pid_file)) if pid_file.starts_with('/') => StoppedWhen::PidFileGone(pid_file),
                (None, Some(pid_file)) => {
                    return Err(invalid(
                        "wait_stopped.pid_file",
                        format!("`wait_stopped.pid_file` must be an absolute guest path, not {pid_file:?}"),
                    ));
                }
                // Both: at `pid_file`, the second; neither: at the table.
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        "wait_stopped.pid_file",
                        "`wait_stopped` needs exactly one of `url` and `pid_file`",
                    ));
                }
                (None, None) => {
                    return Err(invalid("wait_stopped", "`wait_stopped` needs exactly one of `url` and `pid_file`"));
                }
            };
            Some(WaitStopped { when, poll: poll(w.timeout.as_deref(), w.interval.as_deref(), "wait_stopped")? })
        }
        None => None,
    };
    Ok(Valid { action, argv, undo_argv, cwd: config.cwd, wait_healthy, wait_stopped })
}

/// The JSON Schema `describe` publishes.
pub fn schema() -> serde_json::Value {
    let argv = serde_json::json!({ "type": "array", "items": { "type": "string" }, "minItems": 1 });
    let poll = serde_json::json!({ "type": "string", "description": "a duration: 500ms, 30s, 2m" });
    serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": false,
        "required": ["action", "commands"],
        "properties": {
            "action": { "enum": ["stop", "start", "restart", "reload", "status"] },
            "commands": {
                "type": "object",
                "additionalProperties": false,
                "properties": { "stop": argv, "start": argv, "restart": argv, "reload": argv, "status": argv }
            },
            "cwd": { "type": "string" },
            "wait_healthy": {
                "type": "object",
                "additionalProperties": false,
                "required": ["url"],
                "properties": {
                    "url": { "type": "string" },
                    "status": { "type": "integer" },
                    "body_contains": { "type": "string" },
                    "timeout": poll, "interval": poll
                }
            },
            "wait_stopped": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "url": { "type": "string" }, "pid_file": { "type": "string" },
                    "timeout": poll, "interval": poll
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use backout_sdk::config::Problems;
    use serde_json::json;

    fn config(value: serde_json::Value) -> Config {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn stop_needs_start_to_be_undone_and_the_waits_are_bounded() {
        let stop = json!({ "action": "stop", "commands": { "stop": ["systemctl", "stop", "app"] } });
        let e = validate(config(stop)).unwrap_err();
        assert!(e.message().contains("`commands.start` is required to undo `stop` (undo runs `start`)"), "{e:?}");

        let ok = validate(config(json!({
            "action": "stop",
            "commands": { "stop": ["systemctl", "stop", "app"], "start": ["systemctl", "start", "app"] },
            "wait_stopped": { "url": "http://127.0.0.1:8080/health", "timeout": "10s", "interval": "100ms" }
        })))
        .unwrap();
        assert_eq!(ok.undo_argv.as_deref(), Some(&["systemctl".to_string(), "start".into(), "app".into()][..]));
        assert_eq!(
            ok.wait_stopped.unwrap().poll,
            Poll { timeout: Duration::from_secs(10), interval: Duration::from_millis(100) }
        );

        for (bad, says, at) in [
            (json!({ "action": "halt", "commands": {} }), "`action` must be", "/action"),
            (
                json!({ "action": "reload", "commands": { "reload": [] } }),
                "`commands.reload` is empty",
                "/commands/reload",
            ),
            (
                json!({ "action": "status", "commands": { "status": ["x"] }, "wait_healthy": { "url": "ftp://x" } }),
                "must be an http:// or https:// URL",
                "/wait_healthy/url",
            ),
            (
                json!({ "action": "status", "commands": { "status": ["x"] }, "wait_healthy": { "url": "http://x", "timeout": "1h" } }),
                "at most 15m",
                "/wait_healthy/timeout",
            ),
            (
                json!({ "action": "status", "commands": { "status": ["x"] }, "wait_stopped": { "url": "http://x", "pid_file": "/p" } }),
                "exactly one of `url` and `pid_file`",
                "/wait_stopped/pid_file",
            ),
            (
                json!({ "action": "status", "commands": { "status": ["x"] }, "wait_stopped": { "pid_file": "run/app.pid" } }),
                "absolute guest path",
                "/wait_stopped/pid_file",
            ),
        ] {
            let e = validate(config(bad.clone())).unwrap_err();
            assert!(e.message().contains(says), "{bad}: {e:?}");
            let problems = Problems::decode(e.message());
            assert_eq!(problems.0[0].pointer, Some(Pointer::from(at)), "{bad}: {e:?}");
        }
        let stop = json!({ "action": "stop", "commands": { "stop": ["x"] } });
        let e = validate(config(stop)).unwrap_err();
        assert_eq!(Problems::decode(e.message()).0[0].pointer, Some(Pointer::from("/action")), "{e:?}");
    }
}
