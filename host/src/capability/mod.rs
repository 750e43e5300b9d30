//! Capabilities: deny by default, one module per capability, one shape.
//!
//! Every capability — files (`dirs`), environment (`env`), network (`net`),
//! host commands (`commands`) — is a module with one type implementing [`Capability`]:
//!
//! - **definition**: the runbook's words, a field of `runbook::GrantsDef`;
//! - **checked grant** ([`Capability::Grant`]): built once per step by
//!   [`Capability::check`], before anything runs; every problem a diagnostic;
//! - **needs**: [`Capability::match_needs`] compares the plugin's declared
//!   [`Needs`] with the grant (a need not granted is an error, a grant not
//!   needed a warning);
//! - **per-call state**: [`Capability::instantiate`] gives one call into the
//!   plugin what the grant allows *in that call's [`Phase`]*;
//! - **display**: [`Capability::describe`] is what the plan shows.
//!
//! The phase policy lives in one place, [`Phase::allows`]: `describe` gets
//! nothing, `plan` and `verify` may only read, `run` everything, `undo`
//! everything but checkpoints. A refusal is a typed [`Denied`] naming what
//! was requested and what was granted. A plugin that asks for nothing gets
//! nothing. Sockets and name lookups are never granted, whatever the runbook
//! says: the only way out is `wasi:http`, checked request by request.
//!
//! Adding a capability is filling in one module: its `…Def` in
//! `runbook::GrantsDef`, a type implementing [`Capability`], a field in
//! [`Grants`] and one line in each of [`Grants::check`],
//! [`Grants::match_needs`], [`Grants::sandbox`] and [`Grants::describe`];
//! an [`Effect`] if it does something new, allowed per phase in
//! [`Phase::allows`]; and hostile-plugin tests proving an ungranted use fails.

pub mod commands;
pub mod env;
pub mod file_ops;
pub mod files;
pub mod net;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::cli::StdoutStream;

use crate::diagnostic::Diagnostic;
use crate::runbook::{GrantsDef, Parsed};
use crate::template::{Segment, Template};

/// Substitutes `${vars.*}` in a grant. Grants are fixed before anything
/// runs, so step outputs and plugin-side references are refused.
pub(crate) fn render_grant(text: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let template = Template::parse(text)?;
    if template.references().any(|s| !matches!(s, Segment::Var { .. })) {
        return Err(format!("`{text}`: grants are fixed before anything runs and may use only `${{vars.*}}`"));
    }
    template.render(vars, &BTreeMap::new())
}

/// Why the host is calling into a plugin; decides, through [`Phase::allows`],
/// how much of the grants it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// `describe`: nothing at all.
    Describe,
    /// `plan`: read only, whatever the grant, so plan cannot change anything
    /// even if the plugin tries.
    Plan,
    /// `run`: exactly the grants.
    Run,
    /// `verify`: read only, like plan; verify has no side effects.
    Verify,
    /// `undo`: exactly the grants (no checkpoints).
    Undo,
}

/// Something a call may do with its grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Read granted directories.
    ReadFiles,
    /// Change files in read-write grants: WASI writes, `copy-permissions`,
    /// `temporary-file`.
    WriteFiles,
    /// See granted environment variables.
    ReadEnv,
    /// Send GET and HEAD requests, without a body, to granted origins.
    HttpRead,
    /// Send any other request, or one with a body.
    HttpWrite,
    /// Journal a checkpoint (`checkpoint`).
    Checkpoint,
    /// Start a granted host command (`exec.run`).
    Exec,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Describe => "describe",
            Phase::Plan => "plan",
            Phase::Run => "run",
            Phase::Verify => "verify",
            Phase::Undo => "undo",
        }
    }

    /// The phase policy, in one place: whether a call in this phase may have
    /// `effect`. Every capability and host function asks here.
    pub fn allows(self, effect: Effect) -> bool {
        use Effect::*;
        match self {
            Phase::Describe => false,
            Phase::Plan | Phase::Verify => matches!(effect, ReadFiles | ReadEnv | HttpRead),
            Phase::Run => true,
            Phase::Undo => effect != Checkpoint,
        }
    }

    /// `Ok` when the phase allows `effect`; otherwise why not, naming `action`.
    pub fn require(self, effect: Effect, action: impl Into<String>) -> Result<(), Denied> {
        if self.allows(effect) { Ok(()) } else { Err(Denied::Phase { phase: self, action: action.into() }) }
    }

    /// Whether a call in this phase may only read (`plan`, `verify`).
    pub fn read_only(self) -> bool {
        self.allows(Effect::ReadFiles) && !self.allows(Effect::WriteFiles)
    }

    /// Why this phase refuses what it refuses, for messages.
    fn refusal(self) -> &'static str {
        match self {
            Phase::Describe => "a plugin describing itself gets nothing",
            Phase::Plan | Phase::Verify => "nothing may change",
            Phase::Undo => "only `run` records checkpoints",
            Phase::Run => "",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the host refused something a plugin asked for: typed, naming what was
/// requested and what was granted. The plugin sees the message; the host
/// logs it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// The call's phase does not allow it (`plan` writing a file).
    #[error("`{action}` is refused during `{phase}`: {}", phase.refusal())]
    Phase { phase: Phase, action: String },
    /// Outside every grant of the capability.
    #[error("{requested} is not granted (the step's `{capability}` grant: {granted})")]
    NotGranted { capability: &'static str, requested: String, granted: String },
    /// Within reach, but refused for a reason of its own (a read-only grant,
    /// a link-local address, a file that is not a regular file).
    #[error("{requested}: {why}")]
    Refused { capability: &'static str, requested: String, why: String },
    /// A granted directory is not the one the plan checked.
    #[error(transparent)]
    GrantChanged(#[from] files::GrantChanged),
}

/// What a plugin says it needs, from `describe`. Compared with the grants
/// at plan time ([`Capability::match_needs`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Needs {
    pub files: FileNeed,
    pub env: Vec<String>,
    /// The plugin always makes HTTP requests: a step without a `net` grant
    /// is an error.
    pub network: bool,
    /// The component imports `wasi:http/outgoing-handler`, so it may make
    /// requests for some configs (known from the component, not from
    /// `describe`): a `net` grant is not flagged as unneeded.
    pub may_use_network: bool,
    /// The component imports `backout:step/exec` (known from the
    /// component itself, not from `describe`).
    pub commands: bool,
}

/// How much of the file system a plugin needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileNeed {
    None,
    Read,
    ReadWrite,
}

/// A need that is not granted (an error), or a grant that is not needed (a
/// warning: the runbook should grant no more than the step uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    Missing { message: String, hint: String },
    Unneeded { message: String },
}

/// What checking a grant needs besides its definition.
pub struct CheckCx<'a> {
    pub vars: &'a BTreeMap<String, String>,
    /// The `--var NAME=VALUE` overrides among `vars`, as given: a problem
    /// an override caused is reported in the operator's terms.
    pub overrides: &'a [(String, String)],
    /// Reads a host environment variable (the process environment outside tests).
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// Where the definitions are, for diagnostics.
    pub parsed: &'a Parsed,
}

impl std::fmt::Debug for CheckCx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckCx").field("vars", &self.vars).finish_non_exhaustive()
    }
}

/// One call's sandbox while the capabilities fill it in: the WASI context
/// and what the host keeps for the call's host functions.
pub struct Sandbox {
    pub wasi: WasiCtxBuilder,
    /// Directories the host functions may act in (`copy-permissions`, `temporary-file`).
    pub dirs: Vec<files::DirGrant>,
    /// Origins `wasi:http` requests are checked against.
    pub net: net::NetGrants,
    /// Commands `exec` may start (in phases that allow it).
    pub commands: Vec<commands::CommandGrant>,
    /// The environment the call sees, which is all a command it starts gets.
    pub env: Vec<(String, String)>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("dirs", &self.dirs)
            .field("net", &self.net)
            .field("commands", &self.commands)
            .finish_non_exhaustive()
    }
}

/// One capability, in the shape every capability has (see the module docs).
pub trait Capability {
    /// The key in `[step.grants]`, as messages name it.
    const KEY: &'static str;
    /// The checked grant.
    type Grant: Clone + Default + std::fmt::Debug;

    /// Checks what the runbook says, once per step, before anything runs.
    /// Every problem is a diagnostic; what passed is granted.
    fn check(def: &GrantsDef, cx: &CheckCx<'_>, problems: &mut Vec<Diagnostic>) -> Self::Grant;

    /// Compares what the plugin `plugin` says it needs with the grant.
    fn match_needs(plugin: &str, needs: &Needs, grant: &Self::Grant) -> Vec<Finding>;

    /// Gives one call in `phase` what the grant and the phase allow.
    fn instantiate(grant: &Self::Grant, phase: Phase, sandbox: &mut Sandbox) -> Result<(), Denied>;

    /// One line per granted thing, for the plan.
    fn describe(grant: &Self::Grant) -> Vec<String>;
}

/// Everything one step was granted, checked: one grant per capability.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    pub dirs: <files::Files as Capability>::Grant,
    pub env: <env::Env as Capability>::Grant,
    /// Origins reachable through `wasi:http`; the runtime enforces them
    /// request by request (`runtime::http`).
    pub net: <net::Net as Capability>::Grant,
    /// Host command lines `exec` may start (`capability::commands`).
    pub commands: <commands::Commands as Capability>::Grant,
}

impl Grants {
    /// Checks a step's `[step.grants]` (absent: nothing granted).
    pub fn check(def: Option<&GrantsDef>, cx: &CheckCx<'_>, problems: &mut Vec<Diagnostic>) -> Self {
        let Some(def) = def else { return Self::default() };
        Self {
            dirs: files::Files::check(def, cx, problems),
            env: env::Env::check(def, cx, problems),
            net: net::Net::check(def, cx, problems),
            commands: commands::Commands::check(def, cx, problems),
        }
    }

    /// Every capability's findings for the plugin's needs.
    pub fn match_needs(&self, plugin: &str, needs: &Needs) -> Vec<Finding> {
        let mut findings = files::Files::match_needs(plugin, needs, &self.dirs);
        findings.extend(env::Env::match_needs(plugin, needs, &self.env));
        findings.extend(net::Net::match_needs(plugin, needs, &self.net));
        findings.extend(commands::Commands::match_needs(plugin, needs, &self.commands));
        findings
    }

    /// The sandbox of one call in `phase`: a WASI context with nothing but
    /// what the capabilities put in. Sockets, TCP, UDP and name lookups stay
    /// denied (the `WasiCtxBuilder` defaults, restated so a change of
    /// defaults upstream cannot open them); stdin is empty; stdout and
    /// stderr go where the caller says (bounded captures).
    pub fn sandbox(
        &self,
        phase: Phase,
        stdout: impl StdoutStream + 'static,
        stderr: impl StdoutStream + 'static,
    ) -> Result<Sandbox, Denied> {
        let mut wasi = WasiCtxBuilder::new();
        // File calls run on the calling thread instead of tokio's blocking
        // pool: each SQLite page read is one WASI call, and the hand-off costs
        // ~70 µs, which made `integrity_check` 4× slower. The price: the async
        // timeout cannot interrupt a file call the kernel never returns from
        // (a dead network mount); epochs still stop guest code.
        wasi.allow_blocking_current_thread(true);
        wasi.stdout(stdout)
            .stderr(stderr)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }));
        let mut sandbox =
            Sandbox { wasi, dirs: Vec::new(), net: net::NetGrants::default(), commands: Vec::new(), env: Vec::new() };
        files::Files::instantiate(&self.dirs, phase, &mut sandbox)?;
        env::Env::instantiate(&self.env, phase, &mut sandbox)?;
        net::Net::instantiate(&self.net, phase, &mut sandbox)?;
        commands::Commands::instantiate(&self.commands, phase, &mut sandbox)?;
        Ok(sandbox)
    }

    /// What the plan shows, one line per granted thing (`nothing` when empty).
    pub fn describe(&self) -> Vec<String> {
        let mut lines = files::Files::describe(&self.dirs);
        lines.extend(env::Env::describe(&self.env));
        lines.extend(net::Net::describe(&self.net));
        lines.extend(commands::Commands::describe(&self.commands));
        if lines.is_empty() {
            lines.push("nothing".to_string());
        }
        lines
    }

    /// Text to mask wherever plugin-provided text is shown: the values of
    /// granted environment variables.
    pub fn secrets(&self) -> Vec<String> {
        self.env.iter().map(|e| e.secret().to_string()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_phase_policy_is_read_only_for_plan_and_verify_and_nothing_for_describe() {
        use Effect::*;
        let all = [ReadFiles, WriteFiles, ReadEnv, HttpRead, HttpWrite, Checkpoint, Exec];
        assert!(all.iter().all(|e| !Phase::Describe.allows(*e)));
        for phase in [Phase::Plan, Phase::Verify] {
            let allowed: Vec<Effect> = all.into_iter().filter(|e| phase.allows(*e)).collect();
            assert_eq!(allowed, [ReadFiles, ReadEnv, HttpRead], "{phase}");
            assert!(phase.read_only());
        }
        assert!(all.iter().all(|e| Phase::Run.allows(*e)));
        assert!(!Phase::Undo.allows(Checkpoint) && Phase::Undo.allows(WriteFiles) && Phase::Undo.allows(Exec));
    }

    #[test]
    fn a_phase_refusal_names_the_action_and_the_reason() {
        let e = Phase::Plan.require(Effect::WriteFiles, "copy-permissions").unwrap_err();
        assert_eq!(e.to_string(), "`copy-permissions` is refused during `plan`: nothing may change");
        assert!(Phase::Run.require(Effect::Checkpoint, "checkpoint").is_ok());
    }
}
