//! Capabilities: deny by default, one module per capability, one shape.
//!
//! Each capability has a grant written in the runbook (`runbook::GrantsDef`),
//! a checked grant type built once before anything runs (`files::DirGrant`,
//! `env::EnvGrant`, `net::NetGrants`), and a way to apply it to one sandbox
//! instance ([`Grants::wasi_ctx`] for files and environment; the runtime's
//! `wasi:http` hooks for the network). A plugin that asks for nothing gets
//! nothing: no directories, no environment, no HTTP. Sockets and name
//! lookups are never granted, whatever the runbook says: the only way out is
//! `wasi:http`, checked request by request.

pub mod env;
pub mod files;
pub mod net;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder};

use crate::runtime::output::CapturedOutput;
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

/// Why the host is calling into a plugin; decides how much of the grants it
/// gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// `describe`: nothing at all.
    Describe,
    /// `plan`: directories read-only whatever the grant, so plan cannot change
    /// anything even if the plugin tries.
    Plan,
    /// `run`: exactly the grants.
    Run,
    /// `verify`: read-only, like plan; verify has no side effects.
    Verify,
    /// `undo`: exactly the grants.
    Undo,
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

    /// Whether a call in this phase may only read (`plan`, `verify`).
    pub fn read_only(self) -> bool {
        matches!(self, Phase::Plan | Phase::Verify)
    }

    /// Whether a call in this phase may change anything (`run` and `undo`).
    pub fn may_write(self) -> bool {
        matches!(self, Phase::Run | Phase::Undo)
    }
}

/// Everything one step was granted, checked.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    pub dirs: Vec<files::DirGrant>,
    pub env: Vec<env::EnvGrant>,
    /// Origins reachable through `wasi:http`; the runtime enforces them
    /// request by request (`runtime::http`).
    pub net: net::NetGrants,
}

impl Grants {
    /// Builds the WASI context for one call. Sockets, TCP, UDP and name
    /// lookups stay denied (the `WasiCtxBuilder` defaults, restated here so a
    /// change of defaults upstream cannot open them); stdin is empty; stdout
    /// and stderr go to bounded captures.
    pub fn wasi_ctx(&self, phase: Phase, stdout: CapturedOutput, stderr: CapturedOutput) -> anyhow::Result<WasiCtx> {
        let mut builder = WasiCtxBuilder::new();
        // File calls run on the calling thread instead of tokio's blocking
        // pool: each SQLite page read is one WASI call, and the hand-off costs
        // ~70 µs, which made `integrity_check` 4× slower. The price: the async
        // timeout cannot interrupt a file call the kernel never returns from
        // (a dead network mount); epochs still stop guest code.
        builder.allow_blocking_current_thread(true);
        builder
            .stdout(stdout)
            .stderr(stderr)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }));
        if phase != Phase::Describe {
            for dir in &self.dirs {
                dir.mount(&mut builder, phase.read_only())?;
            }
            for var in &self.env {
                var.apply(&mut builder);
            }
        }
        Ok(builder.build())
    }

    /// Text to mask wherever plugin-provided text is shown: the values of
    /// granted environment variables.
    pub fn secrets(&self) -> Vec<String> {
        self.env.iter().map(|e| e.secret().to_string()).collect()
    }
}
