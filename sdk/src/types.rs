//! The SDK's view of the contract's types, with constructors that read well in
//! plugin code, and their conversions into the generated bindings.

use std::fmt;

use crate::bindings::backout::step::types as wit;
use crate::config::{Pointer, Problem, Problems};

/// How much of the file system a plugin needs, at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileAccess {
    None,
    Read,
    ReadWrite,
}

/// What a plugin expects the runbook to grant it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needs {
    pub files: FileAccess,
    /// Host environment variables the plugin always reads, by name.
    pub env: Vec<String>,
    pub network: bool,
}

impl Default for Needs {
    /// Nothing: no files, no environment, no network.
    fn default() -> Self {
        Self { files: FileAccess::None, env: Vec::new(), network: false }
    }
}

/// What `describe` returns.
#[derive(Debug, Clone)]
pub struct Info {
    pub name: String,
    pub version: String,
    pub summary: String,
    /// JSON Schema of the config.
    pub config_schema: serde_json::Value,
    pub needs: Needs,
}

impl Info {
    /// An info with an empty schema (`{}`, accepts anything) and no needs.
    pub fn new(name: impl Into<String>, version: impl Into<String>, summary: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            summary: summary.into(),
            config_schema: serde_json::json!({}),
            needs: Needs::default(),
        }
    }

    pub fn schema(mut self, schema: serde_json::Value) -> Self {
        self.config_schema = schema;
        self
    }

    pub fn needs(mut self, needs: Needs) -> Self {
        self.needs = needs;
        self
    }
}

/// What an action does to the world (`effect` in `wit/step.wit`). The host
/// adds them up: when no action is a `Change`, `backout run` says the
/// rollback is already in place and runs nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Effect {
    /// `run` changes something. The default: say otherwise only when the
    /// plan has proved it.
    #[default]
    Change,
    /// `run` only looks, and changes nothing whatever it finds.
    Check,
    /// Already as requested: `run` would leave it as it is.
    InPlace,
}

/// One thing a step would do, as `plan` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub summary: String,
    pub detail: Option<String>,
    pub effect: Effect,
}

impl Action {
    /// A change `run` would make.
    pub fn new(summary: impl Into<String>) -> Self {
        Self { summary: summary.into(), detail: None, effect: Effect::Change }
    }

    /// Something `run` would only look at (a health check, a comparison).
    pub fn check(summary: impl Into<String>) -> Self {
        Self { effect: Effect::Check, ..Self::new(summary) }
    }

    /// Something already as requested, which `run` would leave as it is.
    pub fn in_place(summary: impl Into<String>) -> Self {
        Self { effect: Effect::InPlace, ..Self::new(summary) }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// What `run` and `undo` return on success.
#[derive(Debug, Clone)]
pub struct Outcome<O> {
    pub summary: String,
    pub outputs: O,
}

impl<O> Outcome<O> {
    pub fn new(summary: impl Into<String>, outputs: O) -> Self {
        Self { summary: summary.into(), outputs }
    }
}

/// Why a call failed; see the variants' meaning in `wit/step.wit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepError {
    /// The config is wrong. Nothing was changed.
    InvalidConfig(String),
    /// The world is not in the state the step needs. Nothing was changed.
    Precondition(String),
    /// A temporary problem; trying again later may work.
    Transient(String),
    /// The step failed; the message says what, if anything, was changed.
    Failed(String),
}

impl StepError {
    /// A problem with the config as a whole.
    pub fn invalid_config(message: impl fmt::Display) -> Self {
        Self::InvalidConfig(message.to_string())
    }
    /// A problem with the key `pointer` names (`"/checks/1/url"`, or a
    /// [`Pointer`]): the host shows it at that key's line in the runbook.
    /// The message names the key in words too.
    pub fn invalid_config_at(pointer: impl Into<Pointer>, message: impl fmt::Display) -> Self {
        Problems::from(Problem::at(pointer, message.to_string())).into()
    }
    pub fn precondition(message: impl fmt::Display) -> Self {
        Self::Precondition(message.to_string())
    }
    pub fn transient(message: impl fmt::Display) -> Self {
        Self::Transient(message.to_string())
    }
    pub fn failed(message: impl fmt::Display) -> Self {
        Self::Failed(message.to_string())
    }

    pub fn message(&self) -> &str {
        match self {
            Self::InvalidConfig(m) | Self::Precondition(m) | Self::Transient(m) | Self::Failed(m) => m,
        }
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Self::InvalidConfig(_) => "invalid config",
            Self::Precondition(_) => "precondition failed",
            Self::Transient(_) => "transient error",
            Self::Failed(_) => "failed",
        };
        write!(f, "{kind}: {}", self.message())
    }
}

impl std::error::Error for StepError {}

impl From<Problems> for StepError {
    /// An `invalid-config` error carrying every problem, each keyed one
    /// behind its pointer (see [`crate::config::problems`]).
    fn from(problems: Problems) -> Self {
        Self::InvalidConfig(problems.encode())
    }
}

impl From<StepError> for wit::StepError {
    fn from(e: StepError) -> Self {
        match e {
            StepError::InvalidConfig(m) => Self::InvalidConfig(m),
            StepError::Precondition(m) => Self::Precondition(m),
            StepError::Transient(m) => Self::Transient(m),
            StepError::Failed(m) => Self::Failed(m),
        }
    }
}

impl From<Info> for wit::Info {
    fn from(i: Info) -> Self {
        Self {
            name: i.name,
            version: i.version,
            summary: i.summary,
            config_schema: i.config_schema.to_string(),
            needs: wit::Needs {
                files: match i.needs.files {
                    FileAccess::None => wit::FileAccess::None,
                    FileAccess::Read => wit::FileAccess::Read,
                    FileAccess::ReadWrite => wit::FileAccess::ReadWrite,
                },
                env: i.needs.env,
                network: i.needs.network,
            },
        }
    }
}

impl From<Action> for wit::Action {
    fn from(a: Action) -> Self {
        let effect = match a.effect {
            Effect::Change => wit::Effect::Change,
            Effect::Check => wit::Effect::Check,
            Effect::InPlace => wit::Effect::InPlace,
        };
        Self { summary: a.summary, detail: a.detail, effect }
    }
}
