//! `backout registry …` and `backout key …`.

use std::path::Path;
use std::time::SystemTime;

use anyhow::Context;
use backout::runtime::WORLD;
use backout_registry::{
    AcceptedSerials, Digest, ImportReport, MirrorOptions, Registry, SigningKey, Trusted, VersionReq,
};
use serde_json::json;

use super::{Ctx, describe, print_json};
use crate::Exit;
use crate::args::{Output, RegistryCommand};
use crate::output::{self, errln, outln};

pub async fn dispatch(ctx: &Ctx, command: RegistryCommand) -> Exit {
    let result = match command {
        RegistryCommand::Add { file, oci_ref, name, version } => {
            add(ctx, &file, oci_ref.as_deref(), name.as_deref(), version.as_deref()).await
        }
        RegistryCommand::List => list(ctx),
        RegistryCommand::Init => init(ctx),
        RegistryCommand::Show { plugin } => show(ctx, &plugin),
        RegistryCommand::Verify => return verify(ctx),
        RegistryCommand::Remove { plugin } => remove(ctx, &plugin),
        RegistryCommand::Gc => gc(ctx),
        RegistryCommand::Sign { key, expires_in } => sign(ctx, &key, expires_in.as_deref()),
        RegistryCommand::Export { to } => export(ctx, &to),
        RegistryCommand::Import { bundle } => import(ctx, &bundle),
        RegistryCommand::Mirror { from } => mirror(ctx, &from),
    };
    finish(result)
}

fn finish(result: anyhow::Result<()>) -> Exit {
    match result {
        Ok(()) => Exit::Success,
        Err(e) => {
            let hint = e.chain().find_map(|c| hint_for(&c.to_string()));
            output::error(&e, hint);
            Exit::Invalid
        }
    }
}

fn hint_for(message: &str) -> Option<&'static str> {
    if message.contains("no registry at") {
        Some("create one with `backout registry init` or `backout registry add FILE`")
    } else if message.contains("not signed") || message.contains("signature") {
        Some("the publisher signs with `backout registry sign --key FILE`; hosts list trusted keys in the trust file")
    } else if message.contains("no registry is published there") {
        Some("serve the registry directory itself: URL/index.toml, URL/index.toml.sig and URL/blobs/sha256/<hex>")
    } else {
        None
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
) -> anyhow::Result<()> {
    let bytes = if file.is_dir() {
        if !backout_registry::oci::is_layout(file) {
            anyhow::bail!(
                "`{}` is a directory but not an OCI image layout (no `oci-layout` file); give a .wasm file",
                file.display()
            );
        }
        let component = backout_registry::oci::read_component(file, oci_ref)?;
        errln!(
            "OCI image layout `{}`: manifest {}{}, layer {} ({} bytes), digests checked",
            file.display(),
            component.manifest,
            component.reference.as_deref().map(|r| format!(" (`{r}`)")).unwrap_or_default(),
            component.layer,
            component.bytes.len()
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
    let entry = registry.add(name, version, WORLD, &bytes)?;
    match ctx.output {
        Output::Json => print_json(&serde_json::to_value(&entry)?),
        Output::Text => outln!(
            "added {}@{} ({}, {} bytes) to `{}`",
            entry.name,
            entry.version,
            entry.digest,
            entry.size,
            ctx.registry.display()
        ),
    }
    Ok(())
}

fn list(ctx: &Ctx) -> anyhow::Result<()> {
    let registry = open(ctx)?;
    match ctx.output {
        Output::Json => print_json(&serde_json::to_value(registry.entries())?),
        Output::Text => {
            if registry.entries().is_empty() {
                outln!("the registry at `{}` is empty", ctx.registry.display());
            }
            for e in registry.entries() {
                outln!("{:<24} {:<12} {}  {:>10} bytes  {}", e.name, e.version, e.digest, e.size, e.added);
            }
        }
    }
    Ok(())
}

fn init(ctx: &Ctx) -> anyhow::Result<()> {
    let existed = ctx.registry.join("index.toml").exists();
    Registry::open_or_init(&ctx.registry)?;
    outln!(
        "{} registry at `{}`",
        if existed { "there already is a" } else { "created an empty" },
        ctx.registry.display()
    );
    Ok(())
}

fn show(ctx: &Ctx, plugin: &str) -> anyhow::Result<()> {
    let registry = open(ctx)?;
    let (name, requirement) = match plugin.split_once('@') {
        Some((n, r)) => (n, r.parse::<VersionReq>()?),
        None => (plugin, "*".parse::<VersionReq>()?),
    };
    let entry = registry.resolve(name, &requirement)?;
    match ctx.output {
        Output::Json => print_json(&serde_json::to_value(entry)?),
        Output::Text => {
            outln!("name       {}", entry.name);
            outln!("version    {}", entry.version);
            outln!("digest     {}", entry.digest);
            outln!("size       {} bytes", entry.size);
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

fn verify(ctx: &Ctx) -> Exit {
    let report = match open(ctx).and_then(|r| Ok(r.verify()?)) {
        Ok(r) => r,
        Err(e) => return finish(Err(e)),
    };
    match ctx.output {
        Output::Json => print_json(&json!({
            "clean": report.is_clean(),
            "checked": report.checked.len(),
            "bytes_hashed": report.bytes_hashed,
            "missing": report.missing.iter().map(|e| format!("{}@{}", e.name, e.version)).collect::<Vec<_>>(),
            "corrupt": report.corrupt.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            "orphaned": report.orphaned,
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
            outln!(
                "{}: {} blobs checked, {} bytes hashed, {} missing, {} corrupt, {} orphaned",
                if report.is_clean() { "ok" } else { "PROBLEMS" },
                report.checked.len(),
                report.bytes_hashed,
                report.missing.len(),
                report.corrupt.len(),
                report.orphaned.len()
            );
        }
    }
    if report.is_clean() { Exit::Success } else { Exit::Invalid }
}

fn remove(ctx: &Ctx, plugin: &str) -> anyhow::Result<()> {
    let (name, version) = plugin.split_once('@').with_context(|| format!("`{plugin}` is not `name@version`"))?;
    let entry = open(ctx)?.remove(name, version)?;
    outln!("removed {}@{} ({}); its blob stays until `backout registry gc`", entry.name, entry.version, entry.digest);
    Ok(())
}

fn gc(ctx: &Ctx) -> anyhow::Result<()> {
    let removed = open(ctx)?.gc()?;
    for d in &removed {
        outln!("deleted {d}");
    }
    outln!("{} unreferenced blob{} deleted", removed.len(), if removed.len() == 1 { "" } else { "s" });
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
    outln!(
        "signed `{}` with {} at serial {}{}",
        ctx.registry.join("index.toml").display(),
        key.public(),
        registry.serial(),
        registry.expires().map(|e| format!(", expires {e}")).unwrap_or_default()
    );
    Ok(())
}

fn export(ctx: &Ctx, to: &Path) -> anyhow::Result<()> {
    let registry = open(ctx)?;
    registry.export(to)?;
    outln!("exported {} plugins at serial {} to `{}`", registry.entries().len(), registry.serial(), to.display());
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
            "added_bytes": added_bytes,
            "signed_by": match &report.trusted {
                Trusted::Signed { key_name, key, .. } => json!({ "name": key_name, "key": key.to_string() }),
                Trusted::NotConfigured => serde_json::Value::Null,
            },
        })),
        Output::Text if report.unchanged => {
            outln!("`{}` already holds serial {}; nothing changed", ctx.registry.display(), report.serial);
        }
        Output::Text => outln!(
            "{verb} serial {} from `{source}`: {} plugins, {} new blobs ({added_bytes} bytes), into `{}`",
            report.serial,
            report.entries.len(),
            report.added_blobs.len(),
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
                    "hosts trust it with a trust file entry:\n\n[[key]]\nname = \"…\"\npublic = \"{}\"",
                    key.public()
                );
            }
        }
        Ok(())
    })();
    finish(result)
}
