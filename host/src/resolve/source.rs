//! Where a step's plugin comes from: [`PluginRef`], the one place that
//! decides whether `uses` (or a plugin named on the command line) is a file
//! or a registry entry, and where a relative path starts. `resolve`,
//! `inspect`, `lock` and `registry show` all go through it, and all open the
//! registry through [`open_trusted`], so none of them skips the signature
//! policy.

use std::path::{Path, PathBuf};

use backout_registry::{AcceptedSerials, Digest, Entry, Registry, StoreError, TrustStore, Trusted, VersionReq};

use crate::capability::Grants;
use crate::diagnostic::Diagnostic;
use crate::lockfile::Drift;
use crate::plan::PluginSource;
use crate::runbook::StepDef;
use crate::runtime::limits::Limits;
use crate::runtime::{CallContext, Plugin, PluginInfo};

use super::{Planner, Stage, drift_diagnostic};

/// Why the registry could not be opened: the message and its hint.
pub(super) type Refusal = (String, Option<String>);

/// What a step's `uses` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginRef {
    /// A component file: `uses` ends in `.wasm` or contains `/`. A relative
    /// path starts at the runbook's directory (on the command line, at the
    /// current directory).
    File { path: PathBuf },
    /// `name@REQ`: the highest version of `name` in the registry that the
    /// requirement matches (`1.2.3` exactly, `^1.2`, `~1.2`, `1`, `*`).
    Registry { name: String, requirement: VersionReq },
}

impl PluginRef {
    /// What to write instead, for a `uses` that [`PluginRef::parse`] refuses.
    pub const SYNTAX_HINT: &str =
        "write `name@version` (or a range such as `name@^1.2`) for a registry plugin, or a path ending in `.wasm`";

    /// Parses a step's `uses`; `base` is the directory relative paths start from.
    pub fn parse(uses: &str, base: &Path) -> Result<PluginRef, String> {
        if looks_like_path(uses) {
            return Ok(PluginRef::File { path: base.join(uses) });
        }
        let (name, requirement) = parse_name_requirement(uses)?;
        Ok(PluginRef::Registry { name, requirement })
    }

    /// Parses a plugin named on the command line (`inspect`, `registry
    /// show`): as [`PluginRef::parse`] from the current directory, except
    /// that a bare `name` means its highest version (`name@*`).
    pub fn parse_argument(text: &str) -> Result<PluginRef, String> {
        if !looks_like_path(text) && !text.contains('@') {
            return PluginRef::parse(&format!("{text}@*"), Path::new(""));
        }
        PluginRef::parse(text, Path::new(""))
    }

    /// The registry entry this names: the highest matching version
    /// (`None` for a file).
    pub fn entry<'r>(&self, registry: &'r Registry) -> Result<Option<&'r Entry>, backout_registry::Error> {
        match self {
            PluginRef::File { .. } => Ok(None),
            PluginRef::Registry { name, requirement } => registry.resolve(name, requirement).map(Some),
        }
    }
}

impl Planner<'_> {
    /// Finds the plugin's bytes, checks them against every pin, compiles
    /// them and asks the plugin to describe itself.
    pub(super) async fn source(&mut self, def: &StepDef) -> Option<(PluginSource, Digest, u64, Plugin, PluginInfo)> {
        let id = def.id.get_ref().clone();
        let uses = def.uses.get_ref();
        let pin = match &def.sha256 {
            None => None,
            Some(p) => match p.get_ref().parse::<Digest>() {
                Ok(d) => Some((d, p.span())),
                Err(e) => {
                    self.error(&id, format!("bad `sha256` pin: {e}"), &p.span()).hint = Some(
                        "write the 64 hex digits of the plugin's sha256, optionally prefixed with `sha256:`".into(),
                    );
                    return None;
                }
            },
        };
        let reference = match PluginRef::parse(uses, &self.runbook_dir()) {
            Ok(reference) => reference,
            Err(e) => {
                self.error(&id, e, &def.uses.span()).hint = Some(PluginRef::SYNTAX_HINT.into());
                return None;
            }
        };
        let (origin, bytes) = match reference {
            PluginRef::File { path } => {
                let bytes = match std::fs::read(&path) {
                    Ok(b) => b,
                    Err(e) => {
                        self.error(&id, format!("failed to read plugin `{}`: {e}", path.display()), &def.uses.span());
                        return None;
                    }
                };
                if pin.is_none() {
                    self.error(&id, format!("plugin file `{uses}` is not pinned"), &def.uses.span()).hint = Some(
                        format!(
                            "a plugin loaded from a file needs `sha256 = \"…\"`; after checking where it came from, pin `{}`",
                            Digest::of(&bytes)
                        ),
                    );
                    return None;
                }
                if let Ok(Some(l)) = self.locked_step(def) {
                    let found = Digest::of(&bytes);
                    if l.digest != found {
                        let drift =
                            Drift::DigestChanged { step: id.clone(), plugin: uses.clone(), locked: l.digest, found };
                        self.problems.push(drift_diagnostic(&drift, self.parsed, Some(def)));
                        return None;
                    }
                }
                (PluginSource::File { path }, bytes)
            }
            PluginRef::Registry { name, requirement } => {
                let locked = match self.locked_step(def) {
                    Ok(l) => l,
                    Err(()) => return None,
                };
                let parsed = self.parsed;
                let registry = match self.registry() {
                    Ok(r) => r,
                    Err((message, hint)) => {
                        self.error(&id, message, &def.uses.span()).hint = hint;
                        return None;
                    }
                };
                let found: Result<_, Diagnostic> = match &locked {
                    // With a lock, exactly the locked version, whatever else the registry holds.
                    Some(l) => {
                        let version = l.version.clone().unwrap_or_default();
                        registry.find(&name, &version).cloned().ok_or_else(|| {
                            let drift = Drift::VersionMissing { step: id.clone(), name: name.clone(), version };
                            drift_diagnostic(&drift, parsed, Some(def))
                        })
                    }
                    None => registry.resolve(&name, &requirement).cloned().map_err(|e| {
                        let d = Diagnostic::error(e.to_string()).in_step(&id).at(parsed.locate(&def.uses.span()));
                        match e.hint() {
                            Some(hint) => d.hint(hint),
                            None => d,
                        }
                    }),
                };
                let entry = match found {
                    Ok(entry) => entry,
                    Err(diagnostic) => {
                        self.problems.push(diagnostic);
                        return None;
                    }
                };
                if let Some(l) = &locked
                    && l.digest != entry.digest
                {
                    let drift = Drift::DigestChanged {
                        step: id.clone(),
                        plugin: format!("{}@{}", entry.name, entry.version),
                        locked: l.digest,
                        found: entry.digest,
                    };
                    self.problems.push(drift_diagnostic(&drift, self.parsed, Some(def)));
                    return None;
                }
                let (name, version) = (entry.name.clone(), entry.version.clone());
                // The registry's index is the first pin: read_verified hashes the blob
                // and returns it only if it matches the index.
                let bytes = match registry.read_verified(&entry.digest) {
                    Ok(b) => b,
                    Err(e) => {
                        self.error(
                            &id,
                            format!("plugin `{name}@{version}` failed verification: {e}"),
                            &def.uses.span(),
                        )
                        .hint = e.hint();
                        return None;
                    }
                };
                (PluginSource::Registry { name, version, registry: registry.root().to_path_buf() }, bytes)
            }
        };
        let digest = Digest::of(&bytes);
        if let Some((expected, span)) = pin
            && expected != digest
        {
            self.error(
                &id,
                format!("plugin `{uses}` does not match its `sha256` pin: expected `{expected}`, computed `{digest}`"),
                &span,
            )
            .hint = Some("the plugin's bytes changed since the runbook was pinned; nothing was compiled or run".into());
            return None;
        }
        if let Some((plugin, info)) = self.loaded.get(&digest) {
            return Some((origin, digest, bytes.len() as u64, plugin.clone(), info.clone()));
        }
        (self.options.stages)(Stage::Loading { step: &id, uses });
        let plugin = match self.runtime.load_verified(&digest, &bytes) {
            Ok(p) => p,
            Err(e) => {
                self.error(&id, format!("plugin `{uses}` cannot be used: {e}"), &def.uses.span());
                return None;
            }
        };
        let grants = Grants::default();
        let ctx = CallContext::new(&id, &grants, Limits::default(), self.options.observer.clone())
            .secrets(self.secrets.clone());
        let info = match plugin.describe(&ctx).await.result {
            Ok(info) => info,
            Err(failure) => {
                self.error(&id, format!("plugin `{uses}` failed to describe itself: {failure}"), &def.uses.span());
                return None;
            }
        };
        if let PluginSource::Registry { name, version, .. } = &origin
            && (&info.name != name || &info.version != version)
        {
            self.problems.push(
                Diagnostic::warning(format!(
                    "registry entry `{name}@{version}` holds a plugin that calls itself `{}@{}`",
                    info.name, info.version
                ))
                .in_step(&id)
                .at(self.at(&def.uses.span())),
            );
        }
        self.loaded.insert(digest, (plugin.clone(), info.clone()));
        Some((origin, digest, bytes.len() as u64, plugin, info))
    }

    /// The registry, opened and its signature checked on first use; an
    /// error is the message and the hint that goes with it (each trust
    /// error has its own).
    fn registry(&mut self) -> Result<&Registry, Refusal> {
        let options = self.options;
        let opened = self.registry.get_or_insert_with(|| {
            open_trusted(&options.registry, &options.trust, &options.accepted).map_err(|e| {
                let hint = match &e {
                    backout_registry::Error::Store(StoreError::NotFound { .. }) => Some(
                        "add plugins with `backout registry add FILE`, or point `--registry` / `BACKOUT_REGISTRY` \
                         at a registry"
                            .to_owned(),
                    ),
                    other => other.hint(),
                };
                (e.to_string(), hint)
            })
        });
        opened.as_ref().map(|(r, _)| r).map_err(|e| e.clone())
    }

    /// The directory a step's relative plugin path starts from: the runbook's.
    fn runbook_dir(&self) -> PathBuf {
        self.parsed.source.path.parent().map(Path::to_path_buf).unwrap_or_default()
    }
}

/// Opens the registry and applies the signature policy: with any trusted
/// key, the index must be signed by one of them, not expired (or too old),
/// and not older than the serial this host last accepted for this registry;
/// with `require_signed`, an index that cannot be verified is refused.
pub fn open_trusted(
    root: &Path,
    trust: &TrustStore,
    accepted: &AcceptedSerials,
) -> Result<(Registry, Trusted), backout_registry::Error> {
    let registry = Registry::open(root)?;
    let trusted = registry.check_trust_accepted(trust, accepted, std::time::SystemTime::now())?;
    Ok((registry, trusted))
}

/// `uses` names a file when it ends in `.wasm` or contains a path separator.
fn looks_like_path(uses: &str) -> bool {
    uses.ends_with(".wasm") || uses.contains('/')
}

/// `name@REQ`: a registry name and a version requirement (`1.2.3` exactly,
/// `^1.2`, `~1.2`, `1`, `*`; see the README).
pub fn parse_name_requirement(uses: &str) -> Result<(String, VersionReq), String> {
    let (name, requirement) = uses.split_once('@').ok_or_else(|| format!("`{uses}` names no version"))?;
    backout_registry::validate_name(name).map_err(|e| e.to_string())?;
    let requirement = requirement.parse::<VersionReq>().map_err(|e| e.to_string())?;
    Ok((name.to_string(), requirement))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uses_is_a_path_or_name_at_version() {
        assert!(looks_like_path("./p.wasm") && looks_like_path("/x/y") && !looks_like_path("env-toggle@0.1.0"));
        let (name, req) = parse_name_requirement("env-toggle@^0.1").unwrap();
        assert_eq!((name.as_str(), req.to_string().as_str()), ("env-toggle", "^0.1"));
        assert!(parse_name_requirement("env-toggle").unwrap_err().contains("names no version"));
        assert!(parse_name_requirement("Env@0.1.0").is_err());
        assert!(parse_name_requirement("env-toggle@not-a-version").is_err());
    }

    #[test]
    fn one_rule_decides_file_or_registry_and_where_a_relative_path_starts() {
        let base = Path::new("/srv/runbooks");
        assert_eq!(
            PluginRef::parse("plugins/p.wasm", base).unwrap(),
            PluginRef::File { path: "/srv/runbooks/plugins/p.wasm".into() }
        );
        assert_eq!(PluginRef::parse("/abs/p.wasm", base).unwrap(), PluginRef::File { path: "/abs/p.wasm".into() });
        assert!(matches!(
            PluginRef::parse("smoke-test@0.1", base).unwrap(),
            PluginRef::Registry { name, requirement } if name == "smoke-test" && requirement.to_string() == "0.1"
        ));
        assert!(PluginRef::parse("smoke-test", base).is_err(), "a runbook names a version");
        assert!(matches!(
            PluginRef::parse_argument("smoke-test").unwrap(),
            PluginRef::Registry { requirement, .. } if requirement.to_string() == "*"
        ));
        assert_eq!(PluginRef::parse_argument("p.wasm").unwrap(), PluginRef::File { path: "p.wasm".into() });
    }
}
