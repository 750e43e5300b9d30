//! `backout registry …` and `backout key …`.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::SystemTime;

use anyhow::Context;
use backout::resolve::PluginRef;
use backout::runtime::WORLD;
use backout::text::count;
use backout_registry::{
    AcceptedSerials, AddOutcome, BlobDamage, Digest, Entry, ImportReport, IndexReport, MirrorOptions, OnSigned,
    Registry, SignatureChange, SignatureState, SigningKey, Trusted,
};
use serde_json::json;

use super::{Ctx, describe, print_json};
use crate::Exit;
use crate::args::{Output, RegistryCommand, SignedChange};
use crate::output::{self, errln, outln};

pub async fn dispatch(ctx: &Ctx, command: RegistryCommand) -> Exit {
    let result = match command {
        RegistryCommand::Add { file, oci_ref, name, version, signature } => {
            add(ctx, &file, oci_ref.as_deref(), name.as_deref(), version.as_deref(), &signature).await
        }
        RegistryCommand::List => return list(ctx),
        RegistryCommand::Init => init(ctx),
        RegistryCommand::Show { plugin } => show(ctx, &plugin),
        RegistryCommand::Verify => return verify(ctx),
        RegistryCommand::Remove { plugin, signature } => remove(ctx, &plugin, &signature),
        RegistryCommand::Gc => gc(ctx),
        RegistryCommand::Sign { key, expires_in } => sign(ctx, &key, expires_in.as_deref()),
        RegistryCommand::Export { to } => export(ctx, &to),
        RegistryCommand::Import { bundle } => import(ctx, &bundle),
        RegistryCommand::Mirror { from } => mirror(ctx, &from),
    };
    finish(result)
}

/// Prints an error with the hint its typed cause carries (see
/// `output::hint_of`), and maps it to exit code 2.
fn finish(result: anyhow::Result<()>) -> Exit {
    match result {
        Ok(()) => Exit::Success,
        Err(e) => {
            output::error(&e, output::hint_of(&e).as_deref());
            Exit::Invalid
        }
    }
}

/// One registry entry in JSON, sizes in `_bytes` (README: "JSON output").
pub(crate) fn entry_json(e: &Entry) -> serde_json::Value {
    json!({
        "name": e.name,
        "version": e.version,
        "digest": e.digest.to_string(),
        "size_bytes": e.size,
        "world": e.world,
        "publisher": e.publisher,
        "added": e.added,
    })
}

/// `--key FILE` or `--unsign`, read: what a change does to a signed index.
fn signing_key(signature: &SignedChange) -> anyhow::Result<Option<SigningKey>> {
    Ok(signature.key.as_deref().map(SigningKey::read).transpose()?)
}

fn on_signed<'a>(key: &'a Option<SigningKey>, signature: &SignedChange) -> OnSigned<'a> {
    match (key, signature.unsign) {
        (Some(key), _) => OnSigned::Sign(key),
        (None, true) => OnSigned::Unsign,
        (None, false) => OnSigned::Refuse,
    }
}

/// The line that says what happened to the signature, if anything did.
fn signature_line(change: &SignatureChange, serial: u64) -> Option<String> {
    match change {
        SignatureChange::Unchanged => None,
        SignatureChange::Removed => Some(
            "removed the index's signature: hosts that trust a key refuse this registry until \
             `backout registry sign --key FILE`"
                .to_owned(),
        ),
        SignatureChange::Signed { key } => Some(format!("signed the changed index with {key} at serial {serial}")),
    }
}

fn signature_json(change: &SignatureChange) -> serde_json::Value {
    match change {
        SignatureChange::Unchanged => json!({ "change": "unchanged" }),
        SignatureChange::Removed => json!({ "change": "removed" }),
        SignatureChange::Signed { key } => json!({ "change": "signed", "key": key.to_string() }),
    }
}

fn open(ctx: &Ctx) -> anyhow::Result<Registry> {
    Ok(Registry::open(&ctx.registry)?)
}

async fn add(
    ctx: &Ctx,
    file: &Path,
    oci_ref: Option<&str>,
    name: Option<&str>,
    version: Option<&str>,
    signature: &SignedChange,
) -> anyhow::Result<()> {
    let key = signing_key(signature)?;
    let bytes = if file.is_dir() {
        if !backout_registry::oci::is_layout(file) {
            anyhow::bail!(
                "`{}` is a directory but not an OCI image layout (no `oci-layout` file); give a .wasm file",
                file.display()
            );
        }
        let component = backout_registry::oci::read_component(file, oci_ref)?;
        errln!(
            "OCI image layout `{}`: manifest {}{}, layer {} ({}), digests checked",
            file.display(),
            component.manifest,
            component.reference.as_deref().map(|r| format!(" (`{r}`)")).unwrap_or_default(),
            component.layer,
            count(component.bytes.len(), "byte")
        );
        component.bytes
    } else {
        if oci_ref.is_some() {
            anyhow::bail!("`--ref` picks a manifest in an OCI image layout directory; `{}` is a file", file.display());
        }
        std::fs::read(file).with_context(|| format!("failed to read `{}`", file.display()))?
    };
    // Compiled through the compile cache: the first run will not compile it again.
    let runtime = ctx.runtime()?;
    let plugin = runtime
        .load_verified(&Digest::of(&bytes), &bytes)
        .with_context(|| format!("`{}` is not a usable backout plugin", file.display()))?;
    let info = describe(&plugin).await?;
    let name = name.unwrap_or(&info.name);
    let version = version.unwrap_or(&info.version);
    let mut registry = Registry::open_or_init(&ctx.registry)?;
    let report = registry.add_with(name, version, WORLD, &bytes, on_signed(&key, signature))?;
    let entry = &report.entry;
    let (outcome, damage) = match &report.outcome {
        AddOutcome::Added => ("added", serde_json::Value::Null),
        AddOutcome::AlreadyPinned => ("already-pinned", serde_json::Value::Null),
        AddOutcome::Repaired(BlobDamage::Missing) => ("repaired", json!({ "was": "missing" })),
        AddOutcome::Repaired(BlobDamage::Corrupt { computed }) => {
            ("repaired", json!({ "was": "corrupt", "computed": computed.to_string() }))
        }
    };
    match ctx.output {
        Output::Json => {
            let mut value = entry_json(entry);
            value["outcome"] = json!(outcome);
            value["repaired"] = damage;
            value["signature"] = signature_json(&report.signature);
            print_json(&value);
        }
        Output::Text => {
            let id = format!("{}@{}", entry.name, entry.version);
            let at = ctx.registry.display();
            match &report.outcome {
                AddOutcome::Added => {
                    outln!("added {id} ({}, {}) to `{at}`", entry.digest, count(entry.size as usize, "byte"))
                }
                AddOutcome::AlreadyPinned => {
                    outln!("{id} is already pinned to {} in `{at}`; nothing changed", entry.digest)
                }
                AddOutcome::Repaired(damage) => {
                    let was = match damage {
                        BlobDamage::Missing => "was missing".to_owned(),
                        BlobDamage::Corrupt { computed } => format!("was corrupt (its bytes hashed to {computed})"),
                    };
                    outln!("repaired {id} in `{at}`: its blob {} {was} and holds the right bytes again", entry.digest);
                }
            }
            if let Some(line) = signature_line(&report.signature, registry.serial()) {
                outln!("{line}");
            }
        }
    }
    Ok(())
}

/// Lists the entries; the index is checked as `verify` checks it (without
/// rehashing blobs), and any problem is printed and makes the exit code 2.
fn list(ctx: &Ctx) -> Exit {
    let checked = (|| -> anyhow::Result<_> {
        let registry = open(ctx)?;
        let index = check_index(ctx, &registry)?;
        Ok((registry, index))
    })();
    let (registry, index) = match checked {
        Ok(checked) => checked,
        Err(e) => return finish(Err(e)),
    };
    match ctx.output {
        Output::Json => print_json(&json!(registry.entries().iter().map(entry_json).collect::<Vec<_>>())),
        Output::Text => {
            if registry.entries().is_empty() {
                outln!("the registry at `{}` is empty", ctx.registry.display());
            }
            for e in registry.entries() {
                outln!("{:<24} {:<12} {}  {:>10} bytes  {}", e.name, e.version, e.digest, e.size, e.added);
            }
        }
    }
    for problem in &index.problems {
        output::error(&anyhow::anyhow!("{problem}"), problem.hint().as_deref());
    }
    if index.problems.is_empty() { Exit::Success } else { Exit::Invalid }
}

/// The index check of `list` and `verify`, with this host's trust file and
/// accepted serials.
fn check_index(ctx: &Ctx, registry: &Registry) -> anyhow::Result<IndexReport> {
    let trust = ctx.trust_store()?;
    let accepted = AcceptedSerials::load(&ctx.accepted_serials_path())?;
    Ok(registry.check_index(&trust, &accepted, SystemTime::now())?)
}

fn init(ctx: &Ctx) -> anyhow::Result<()> {
    let existed = ctx.registry.join("index.toml").exists();
    let registry = Registry::open_or_init(&ctx.registry)?;
    match ctx.output {
        Output::Json => print_json(&json!({
            "registry": ctx.registry,
            "created": !existed,
            "serial": registry.serial(),
            "plugins": registry.entries().len(),
        })),
        Output::Text => outln!(
            "{} registry at `{}`",
            if existed { "there already is a" } else { "created an empty" },
            ctx.registry.display()
        ),
    }
    Ok(())
}

fn show(ctx: &Ctx, plugin: &str) -> anyhow::Result<()> {
    let reference = PluginRef::parse_argument(plugin).map_err(anyhow::Error::msg)?;
    let registry = open(ctx)?;
    let entry = reference.entry(&registry)?.with_context(|| {
        format!(
            "`{plugin}` is a file; `registry show` shows registry entries (`backout inspect {plugin}` shows a file)"
        )
    })?;
    let name = entry.name.as_str();
    match ctx.output {
        Output::Json => {
            let mut value = entry_json(entry);
            value["blob"] = json!(registry.blob_path(&entry.digest));
            value["versions"] = json!(registry.versions_of(name).iter().map(|e| &e.version).collect::<Vec<_>>());
            print_json(&value);
        }
        Output::Text => {
            outln!("name       {}", entry.name);
            outln!("version    {}", entry.version);
            outln!("digest     {}", entry.digest);
            outln!("size       {}", count(entry.size as usize, "byte"));
            outln!("world      {}", entry.world);
            outln!("publisher  {}", entry.publisher);
            outln!("added      {}", entry.added);
            outln!("blob       {}", registry.blob_path(&entry.digest).display());
            let others: Vec<&str> = registry.versions_of(name).iter().map(|e| e.version.as_str()).collect();
            outln!("versions   {}", others.join(", "));
        }
    }
    Ok(())
}

/// Rehashes every blob and checks the index (signature, serial, expiry,
/// this host's trust policy); exit 2 on any problem.
fn verify(ctx: &Ctx) -> Exit {
    let checked = (|| -> anyhow::Result<_> {
        let registry = open(ctx)?;
        let blobs = registry.verify()?;
        let index = check_index(ctx, &registry)?;
        Ok((registry, blobs, index))
    })();
    let (registry, report, index) = match checked {
        Ok(checked) => checked,
        Err(e) => return finish(Err(e)),
    };
    let unique = |entries: &mut dyn Iterator<Item = &Entry>| entries.map(|e| e.digest).collect::<BTreeSet<_>>().len();
    let blobs = unique(&mut registry.entries().iter());
    let intact = unique(&mut report.checked.iter());
    let missing = unique(&mut report.missing.iter());
    let corrupt = unique(&mut report.corrupt.iter().map(|c| &c.entry));
    let blobs_damaged = missing + corrupt > 0;
    let clean = report.is_clean() && index.problems.is_empty();
    let heal = "put a damaged blob back with `backout registry add FILE` (the original component), or import or \
                mirror the publisher's registry again (`backout registry import BUNDLE`, `backout registry mirror \
                --from URL`): both replace missing and corrupt blobs they carry";
    match ctx.output {
        Output::Json => print_json(&json!({
            "clean": clean,
            "plugins": registry.entries().len(),
            "blobs": blobs,
            "intact": intact,
            "hashed_bytes": report.bytes_hashed,
            "missing": report.missing.iter().map(|e| format!("{}@{}", e.name, e.version)).collect::<Vec<_>>(),
            "corrupt": report.corrupt.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            "orphaned": report.orphaned,
            "index": index_json(&index),
            "hint": blobs_damaged.then_some(heal),
        })),
        Output::Text => {
            for e in &report.missing {
                outln!("missing   {}@{}: blob {} is not there", e.name, e.version, e.digest);
            }
            for c in &report.corrupt {
                outln!("corrupt   {c}");
            }
            for o in &report.orphaned {
                outln!("orphaned  {} (no entry refers to it; `backout registry gc` removes it)", o.display());
            }
            outln!("index     {}", index_summary(&index));
            for problem in &index.problems {
                outln!("problem   {problem}");
                if let Some(hint) = problem.hint() {
                    outln!("          hint: {hint}");
                }
            }
            outln!(
                "{}: {} in {}: {intact} intact, {missing} missing, {corrupt} corrupt ({} hashed); {} orphaned; {}",
                if clean { "ok" } else { "PROBLEMS" },
                count(registry.entries().len(), "plugin"),
                count(blobs, "blob"),
                count(report.bytes_hashed as usize, "byte"),
                count(report.orphaned.len(), "file"),
                match index.problems.len() {
                    0 => "the index is sound".to_owned(),
                    n => format!("{} with the index", count(n, "problem")),
                }
            );
            if blobs_damaged {
                outln!("hint: {heal}");
            }
        }
    }
    if clean { Exit::Success } else { Exit::Invalid }
}

/// "serial 8, signed by `ed25519:…` (trusted as `acme`), expires … (in 3 days)"
fn index_summary(index: &IndexReport) -> String {
    let signature = match &index.signature {
        SignatureState::Unsigned => "unsigned".to_owned(),
        SignatureState::Valid { key } => match &index.trust {
            Ok(Trusted::Signed { key_name, .. }) => format!("signed by {key} (trusted as `{key_name}`)"),
            _ => format!("signed by {key}"),
        },
        SignatureState::Invalid { .. } => "signature INVALID".to_owned(),
    };
    let expires = match (&index.expires, index.expires_in_seconds) {
        (Some(at), Some(left)) if left > 0 => format!(", expires {at} (in {})", count((left / 86_400) as usize, "day")),
        (Some(at), _) => format!(", EXPIRED at {at}"),
        (None, _) => String::new(),
    };
    format!("serial {}, {signature}{expires}", index.serial)
}

/// The index check as JSON: each part with its `problem` (`null` when
/// sound), durations in `_ms`.
fn index_json(index: &IndexReport) -> serde_json::Value {
    use backout_registry::{Error as E, FileError, SigningError, TrustError as T};
    let problem = |part: fn(&E) -> bool| {
        index
            .problems
            .iter()
            .find(|p| part(p))
            .map(|p| json!({ "message": p.to_string(), "hint": p.hint() }))
            .unwrap_or(serde_json::Value::Null)
    };
    json!({
        "serial": {
            "value": index.serial,
            "accepted": index.accepted_serial,
            "problem": problem(|p| matches!(p, E::Trust(T::Rollback { .. } | T::SerialReused { .. }))),
        },
        "signature": {
            "state": match index.signature {
                SignatureState::Unsigned => "unsigned",
                SignatureState::Valid { .. } => "valid",
                SignatureState::Invalid { .. } => "invalid",
            },
            "key": match &index.signature {
                SignatureState::Valid { key } | SignatureState::Invalid { key: Some(key) } => Some(key.to_string()),
                _ => None,
            },
            "signed": index.signed,
            "problem": problem(|p| {
                matches!(
                    p,
                    E::Trust(T::BadSignature { .. })
                        | E::Signing(SigningError::Format(_))
                        | E::File(FileError::TooLarge { .. })
                )
            }),
        },
        "expires": {
            "at": index.expires,
            "in_ms": index.expires_in_seconds.map(|s| s.saturating_mul(1000)),
            "problem": problem(|p| matches!(p, E::Trust(T::Expired { .. } | T::TooOld { .. } | T::AgeUnknown))),
        },
        "trust": {
            "trusted_as": match &index.trust {
                Ok(Trusted::Signed { key_name, .. }) => Some(key_name.as_str()),
                _ => None,
            },
            "problem": problem(|p| {
                matches!(p, E::Trust(T::Unsigned { .. } | T::UntrustedKey { .. } | T::SignatureRequired { .. }))
            }),
        },
    })
}

fn remove(ctx: &Ctx, plugin: &str, signature: &SignedChange) -> anyhow::Result<()> {
    let key = signing_key(signature)?;
    let (name, version) = plugin.split_once('@').with_context(|| format!("`{plugin}` is not `name@version`"))?;
    let mut registry = open(ctx)?;
    let (entry, change) = registry.remove_with(name, version, on_signed(&key, signature))?;
    match ctx.output {
        Output::Json => {
            let mut value = entry_json(&entry);
            value["signature"] = signature_json(&change);
            value["serial"] = json!(registry.serial());
            print_json(&value);
        }
        Output::Text => {
            outln!(
                "removed {}@{} ({}); its blob stays until `backout registry gc`",
                entry.name,
                entry.version,
                entry.digest
            );
            if let Some(line) = signature_line(&change, registry.serial()) {
                outln!("{line}");
            }
        }
    }
    Ok(())
}

fn gc(ctx: &Ctx) -> anyhow::Result<()> {
    let removed = open(ctx)?.gc()?;
    match ctx.output {
        Output::Json => print_json(&json!({
            "deleted": removed.iter().map(ToString::to_string).collect::<Vec<_>>(),
        })),
        Output::Text => {
            for d in &removed {
                outln!("deleted {d}");
            }
            outln!("{} deleted", count(removed.len(), "unreferenced blob"));
        }
    }
    Ok(())
}

fn sign(ctx: &Ctx, key: &Path, expires_in: Option<&str>) -> anyhow::Result<()> {
    let key = SigningKey::read(key)?;
    let expires = match expires_in {
        Some(text) => Some(SystemTime::now() + backout::quantity::parse_duration(text).map_err(anyhow::Error::msg)?),
        None => None,
    };
    let mut registry = open(ctx)?;
    registry.sign(&key, expires)?;
    match ctx.output {
        Output::Json => print_json(&json!({
            "index": ctx.registry.join("index.toml"),
            "key": key.public().to_string(),
            "serial": registry.serial(),
            "expires": registry.expires(),
            "signed": registry.signed(),
        })),
        Output::Text => outln!(
            "signed `{}` with {} at serial {}{}",
            ctx.registry.join("index.toml").display(),
            key.public(),
            registry.serial(),
            registry.expires().map(|e| format!(", expires {e}")).unwrap_or_default()
        ),
    }
    Ok(())
}

fn export(ctx: &Ctx, to: &Path) -> anyhow::Result<()> {
    let registry = open(ctx)?;
    registry.export(to)?;
    let size = std::fs::metadata(to).map(|m| m.len()).ok();
    match ctx.output {
        Output::Json => print_json(&json!({
            "to": to,
            "serial": registry.serial(),
            "plugins": registry.entries().len(),
            "size_bytes": size,
        })),
        Output::Text => outln!(
            "exported {} at serial {} to `{}`",
            count(registry.entries().len(), "plugin"),
            registry.serial(),
            to.display()
        ),
    }
    Ok(())
}

fn import(ctx: &Ctx, bundle: &Path) -> anyhow::Result<()> {
    let trust = ctx.trust_store()?;
    let path = ctx.accepted_serials_path();
    let accepted = AcceptedSerials::load(&path)?;
    // The bundle's key is known only from its signature; check with no
    // recorded serial first, then against the serial this host accepted.
    let accepted_serial = Registry::bundle_signer(bundle)?.and_then(|key| accepted.floor(&ctx.registry, &key));
    let report = Registry::import(&ctx.registry, bundle, &trust, accepted_serial, SystemTime::now())?;
    admitted(ctx, &report, &bundle.display().to_string(), "imported")
}

fn mirror(ctx: &Ctx, from: &str) -> anyhow::Result<()> {
    let trust = ctx.trust_store()?;
    let accepted = AcceptedSerials::load(&ctx.accepted_serials_path())?;
    let report =
        Registry::mirror(&ctx.registry, from, &trust, &accepted, SystemTime::now(), &MirrorOptions::default())?;
    admitted(ctx, &report, from, "mirrored")
}

/// Records the accepted serial, prints what an import or a mirror admitted
/// from `source` (a bundle path or a URL), and precompiles the new blobs.
fn admitted(ctx: &Ctx, report: &ImportReport, source: &str, verb: &str) -> anyhow::Result<()> {
    ctx.record_trusted(&ctx.registry, &report.trusted)?;
    let added_bytes: u64 = report
        .added_blobs
        .iter()
        .filter_map(|digest| report.entries.iter().find(|e| e.digest == *digest))
        .map(|e| e.size)
        .sum();
    match ctx.output {
        Output::Json => print_json(&json!({
            "from": source,
            "registry": ctx.registry,
            "serial": report.serial,
            "unchanged": report.unchanged,
            "entries": report.entries,
            "added_blobs": report.added_blobs.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "repaired_blobs": report.repaired_blobs.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "added_bytes": added_bytes,
            "signed_by": match &report.trusted {
                Trusted::Signed { key_name, key, .. } => json!({ "name": key_name, "key": key.to_string() }),
                Trusted::NotConfigured => serde_json::Value::Null,
            },
        })),
        Output::Text if report.unchanged && report.added_blobs.is_empty() && report.repaired_blobs.is_empty() => {
            outln!("`{}` already holds serial {}; nothing changed", ctx.registry.display(), report.serial);
        }
        Output::Text if report.unchanged => outln!(
            "`{}` already holds serial {}; healed from `{source}`: {} restored, {} replaced",
            ctx.registry.display(),
            report.serial,
            count(report.added_blobs.len(), "missing blob"),
            count(report.repaired_blobs.len(), "corrupt blob"),
        ),
        Output::Text => outln!(
            "{verb} serial {} from `{source}`: {}, {} ({}){}, into `{}`",
            report.serial,
            count(report.entries.len(), "plugin"),
            count(report.added_blobs.len(), "new blob"),
            count(added_bytes as usize, "byte"),
            match report.repaired_blobs.len() {
                0 => String::new(),
                n => format!(", {} replaced", count(n, "corrupt blob")),
            },
            ctx.registry.display()
        ),
    }
    super::cache::precompile(ctx, report);
    Ok(())
}

pub fn key_generate(ctx: &Ctx, out: &Path) -> Exit {
    let result = (|| -> anyhow::Result<()> {
        let key = SigningKey::generate()?;
        key.write_new(out)?;
        match ctx.output {
            Output::Json => print_json(&json!({ "private_key": out, "public_key": key.public().to_string() })),
            Output::Text => {
                outln!("wrote private key `{}` (mode 0600; keep it offline)", out.display());
                outln!("public key: {}", key.public());
                outln!(
                    "hosts trust it with this trust file (`--trust FILE`, or ~/.config/backout/trust.toml); \
                     to add it to an existing one, copy the [[key]] table:\n\nformat = 1\n\n[[key]]\nname = \"publisher\"\npublic = \"{}\"",
                    key.public()
                );
            }
        }
        Ok(())
    })();
    finish(result)
}
