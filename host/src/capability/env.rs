//! Environment grants: host variables passed through to a step, by name.
//!
//! Only the named variables reach the plugin, never the host's whole
//! environment. Each must be set when the runbook is checked, so a missing
//! API key is found before the first step runs, not in the middle of a
//! rollback. Values are secrets: they are kept out of every log, report and
//! `Debug` output (see [`EnvGrant`]'s `Debug`).

use std::fmt;

use toml::Spanned;
use wasmtime_wasi::WasiCtxBuilder;

use super::{Capability, CheckCx, Denied, Effect, Finding, Needs, Phase, Sandbox};
use crate::diagnostic::Diagnostic;
use crate::runbook::{GrantsDef, Parsed};

/// A granted variable and the value it had when the runbook was checked.
#[derive(Clone)]
pub struct EnvGrant {
    pub name: String,
    value: String,
}

impl fmt::Debug for EnvGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvGrant").field("name", &self.name).field("value", &"<redacted>").finish()
    }
}

impl EnvGrant {
    pub fn apply(&self, builder: &mut WasiCtxBuilder) {
        builder.env(&self.name, &self.value);
    }

    /// The value, for redaction: text equal to it is masked in anything shown.
    pub fn secret(&self) -> &str {
        &self.value
    }
}

/// The environment capability: `env = ["NAME", …]`.
#[derive(Debug)]
pub struct Env;

impl Capability for Env {
    const KEY: &'static str = "env";
    type Grant = Vec<EnvGrant>;

    fn check(def: &GrantsDef, cx: &CheckCx<'_>, problems: &mut Vec<Diagnostic>) -> Vec<EnvGrant> {
        check(&def.env, cx.env, cx.parsed, problems)
    }

    fn match_needs(plugin: &str, needs: &Needs, grant: &Vec<EnvGrant>) -> Vec<Finding> {
        needs
            .env
            .iter()
            .filter(|var| !grant.iter().any(|g| &g.name == *var))
            .map(|var| Finding::Missing {
                message: format!("`{plugin}` needs environment variable `{var}`, which the step does not grant"),
                hint: format!("add `env = [\"{var}\"]` to `[step.grants]`"),
            })
            .collect()
    }

    /// Sets the granted variables, and nothing else, in every phase but
    /// `describe`.
    fn instantiate(grant: &Vec<EnvGrant>, phase: Phase, sandbox: &mut Sandbox) -> Result<(), Denied> {
        if phase.allows(Effect::ReadEnv) {
            for var in grant {
                var.apply(&mut sandbox.wasi);
                sandbox.env.push((var.name.clone(), var.value.clone()));
            }
        }
        Ok(())
    }

    fn describe(grant: &Vec<EnvGrant>) -> Vec<String> {
        grant.iter().map(|e| format!("env {}", e.name)).collect()
    }
}

/// Checks one step's environment grants, reading values through `lookup`
/// (the process environment in production, a map in tests).
pub fn check(
    defs: &[Spanned<String>],
    lookup: &dyn Fn(&str) -> Option<String>,
    parsed: &Parsed,
    problems: &mut Vec<Diagnostic>,
) -> Vec<EnvGrant> {
    let mut grants: Vec<EnvGrant> = Vec::new();
    for def in defs {
        let name = def.get_ref();
        let at = parsed.locate(&def.span());
        if !valid_name(name) {
            problems.push(Diagnostic::error(format!("`{name}` is not a valid environment variable name")).at(at));
            continue;
        }
        if grants.iter().any(|g| &g.name == name) {
            problems.push(Diagnostic::error(format!("environment variable `{name}` is granted twice")).at(at));
            continue;
        }
        match lookup(name) {
            Some(value) => grants.push(EnvGrant { name: name.clone(), value }),
            None => problems.push(
                Diagnostic::error(format!("granted environment variable `{name}` is not set"))
                    .at(at)
                    .hint(format!("export `{name}` in the shell that runs backout, or remove the grant")),
            ),
        }
    }
    grants
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_value() {
        let g = EnvGrant { name: "TOKEN".into(), value: "hunter2".into() };
        let shown = format!("{g:?}");
        assert!(shown.contains("TOKEN") && !shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn names_follow_posix_shell_rules() {
        assert!(valid_name("API_KEY") && valid_name("_x1"));
        assert!(!valid_name("1X") && !valid_name("A-B") && !valid_name("") && !valid_name("A B"));
    }
}
