//! Components published the standard way: an OCI image layout directory, as
//! `wkg oci pull`, `oras pull --oci-layout` or `oras copy --to-oci-layout`
//! write it, holding a WebAssembly component as an `application/wasm` layer.
//!
//! ```text
//! <dir>/oci-layout                 {"imageLayoutVersion": "1.0.0"}
//! <dir>/index.json                 the manifests, each with an optional tag
//!                                  (annotation `org.opencontainers.image.ref.name`)
//! <dir>/blobs/sha256/<hex>         manifests, configs and layers, by digest
//! ```
//!
//! [`read_component`] trusts nothing in the directory: every blob it reads
//! (the manifest, then the layer) must be a regular file of exactly the size
//! its descriptor gives and hash to exactly its digest, and JSON documents
//! are size-capped before they are parsed. Digests are validated as
//! `sha256:<64 lowercase hex>` before they become paths. The layer's digest
//! is the component's sha256, so the registry pins the very digest the
//! publisher's manifest names. Adding the bytes is then the ordinary
//! [`crate::Registry::add`].

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::Digest;

/// The media type of a WebAssembly component layer.
pub const WASM_LAYER: &str = "application/wasm";
/// The only manifest type read (an index of manifests, for several
/// platforms, is refused: a component has one).
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// The annotation that tags a manifest in `index.json`.
const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// `oci-layout`, `index.json` and manifests are small; refuse anything else.
const MAX_JSON: u64 = 4 << 20;
/// The largest component layer read.
pub const MAX_LAYER: u64 = 1 << 30;

/// A component read from an OCI image layout, digests checked.
#[derive(Debug, Clone)]
pub struct OciComponent {
    /// The component's bytes (the `application/wasm` layer).
    pub bytes: Vec<u8>,
    /// The layer's digest: the sha256 of `bytes`.
    pub layer: Digest,
    /// The manifest's digest.
    pub manifest: Digest,
    /// The manifest's tag in `index.json`, if it has one.
    pub reference: Option<String>,
    /// The manifest's annotations (`org.opencontainers.image.version`, …).
    pub annotations: BTreeMap<String, String>,
}

/// Whether `dir` looks like an OCI image layout (it has `oci-layout`).
pub fn is_layout(dir: &Path) -> bool {
    dir.join("oci-layout").is_file()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Layout {
    image_layout_version: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    schema_version: u32,
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    schema_version: u32,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    #[serde(default)]
    media_type: Option<String>,
    digest: String,
    size: u64,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

impl Descriptor {
    fn reference(&self) -> Option<&str> {
        self.annotations.get(REF_NAME).map(String::as_str)
    }
}

/// Reads the component of the manifest tagged `reference` (or of the only
/// manifest, when `reference` is `None`) from the OCI image layout `dir`.
pub fn read_component(dir: &Path, reference: Option<&str>) -> Result<OciComponent, OciError> {
    let invalid = |reason: String| OciError { path: dir.to_path_buf(), reason };
    let layout: Layout = parse_json(&dir.join("oci-layout"), &invalid)?;
    if !layout.image_layout_version.starts_with("1.") {
        return Err(invalid(format!(
            "unsupported imageLayoutVersion `{}`",
            layout.image_layout_version.escape_debug()
        )));
    }
    let index: Index = parse_json(&dir.join("index.json"), &invalid)?;
    if index.schema_version != 2 {
        return Err(invalid(format!("index.json has schemaVersion {}, not 2", index.schema_version)));
    }
    let descriptor = choose(&index.manifests, reference).map_err(invalid)?;
    if let Some(media_type) = &descriptor.media_type
        && media_type != MANIFEST
    {
        return Err(invalid(format!(
            "the manifest is `{}`, not an image manifest (`{MANIFEST}`); an index of several platforms is not \
             supported: pull the one component you want",
            media_type.escape_debug()
        )));
    }
    let (manifest_digest, manifest_bytes) = read_blob(dir, &descriptor, MAX_JSON).map_err(invalid)?;
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| invalid(format!("manifest {manifest_digest} is not a valid image manifest: {e}")))?;
    if manifest.schema_version != 2 || manifest.media_type.as_deref().is_some_and(|m| m != MANIFEST) {
        return Err(invalid(format!("manifest {manifest_digest} is not an OCI image manifest (schemaVersion 2)")));
    }
    let wasm: Vec<&Descriptor> =
        manifest.layers.iter().filter(|l| l.media_type.as_deref() == Some(WASM_LAYER)).collect();
    let layer = match wasm.as_slice() {
        [layer] => *layer,
        [] => {
            let types: Vec<String> = manifest
                .layers
                .iter()
                .map(|l| format!("`{}`", l.media_type.as_deref().unwrap_or("?").escape_debug()))
                .collect();
            return Err(invalid(format!(
                "manifest {manifest_digest} has no `{WASM_LAYER}` layer (its layers: {}); is it a component \
                 published with wkg or oras?",
                if types.is_empty() { "none".to_string() } else { types.join(", ") }
            )));
        }
        _ => return Err(invalid(format!("manifest {manifest_digest} has several `{WASM_LAYER}` layers"))),
    };
    let (layer_digest, bytes) = read_blob(dir, layer, MAX_LAYER).map_err(invalid)?;
    Ok(OciComponent {
        bytes,
        layer: layer_digest,
        manifest: manifest_digest,
        reference: descriptor.reference().map(str::to_string),
        annotations: manifest.annotations,
    })
}

/// The manifest to read: the one tagged `reference`, or the only one.
fn choose(manifests: &[Descriptor], reference: Option<&str>) -> Result<Descriptor, String> {
    let tags = || {
        let tags: Vec<String> =
            manifests.iter().map(|m| format!("`{}`", m.reference().unwrap_or("(untagged)").escape_debug())).collect();
        if tags.is_empty() { "none".to_string() } else { tags.join(", ") }
    };
    match reference {
        Some(reference) => {
            let found: Vec<&Descriptor> = manifests.iter().filter(|m| m.reference() == Some(reference)).collect();
            match found.as_slice() {
                [one] => Ok((*one).clone()),
                [] => Err(format!("no manifest is tagged `{}` (tags: {})", reference.escape_debug(), tags())),
                _ => Err(format!("several manifests are tagged `{}`", reference.escape_debug())),
            }
        }
        None => match manifests {
            [one] => Ok(one.clone()),
            [] => Err("index.json lists no manifest".to_string()),
            _ => Err(format!("index.json lists {} manifests; pick one with --ref (tags: {})", manifests.len(), tags())),
        },
    }
}

/// Reads the blob `descriptor` names: a regular file of exactly its size,
/// hashing to exactly its digest.
fn read_blob(dir: &Path, descriptor: &Descriptor, limit: u64) -> Result<(Digest, Vec<u8>), String> {
    let text = &descriptor.digest;
    let hex = text
        .strip_prefix("sha256:")
        .filter(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .ok_or_else(|| {
            format!("unsupported digest `{}`: only `sha256:<64 lowercase hex>` is read", text.escape_debug())
        })?;
    let expected: Digest = text.parse().map_err(|e| format!("invalid digest `{}`: {e}", text.escape_debug()))?;
    if descriptor.size > limit {
        return Err(format!("blob {expected} is {} bytes, more than the {limit} allowed", descriptor.size));
    }
    let path: PathBuf = dir.join("blobs").join("sha256").join(hex);
    let meta = std::fs::symlink_metadata(&path).map_err(|e| format!("blob {expected} is missing ({e})"))?;
    if !meta.is_file() {
        return Err(format!("blob {expected} is not a regular file"));
    }
    if meta.len() != descriptor.size {
        return Err(format!("blob {expected} has {} bytes, but its descriptor says {}", meta.len(), descriptor.size));
    }
    let mut bytes = Vec::with_capacity(descriptor.size as usize);
    File::open(&path)
        .and_then(|f| f.take(descriptor.size + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("failed to read blob {expected}: {e}"))?;
    let found = Digest::of(&bytes);
    if found != expected || bytes.len() as u64 != descriptor.size {
        return Err(format!(
            "blob {expected} has digest {found}; the layout is corrupt or was tampered with, nothing was added"
        ));
    }
    Ok((expected, bytes))
}

fn parse_json<T: for<'de> Deserialize<'de>>(path: &Path, invalid: &dyn Fn(String) -> OciError) -> Result<T, OciError> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let meta = std::fs::metadata(path).map_err(|e| invalid(format!("`{name}` is missing ({e})")))?;
    if meta.len() > MAX_JSON {
        return Err(invalid(format!("`{name}` is {} bytes, more than the {MAX_JSON} allowed", meta.len())));
    }
    let bytes = std::fs::read(path).map_err(|e| invalid(format!("failed to read `{name}`: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| invalid(format!("`{name}` is not valid: {e}")))
}

/// An OCI image layout that cannot be read, or whose blobs do not match
/// their descriptors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid OCI image layout `{}`: {reason}", .path.display())]
pub struct OciError {
    pub path: PathBuf,
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// An OCI image layout as wkg writes one: a config blob, one
    /// `application/wasm` layer per component, one manifest each, tagged.
    struct Layout {
        dir: tempfile::TempDir,
        manifests: Vec<serde_json::Value>,
    }

    impl Layout {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir_all(dir.path().join("blobs/sha256")).unwrap();
            std::fs::write(dir.path().join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
            let layout = Self { dir, manifests: Vec::new() };
            layout.write_index();
            layout
        }

        fn blob(&self, bytes: &[u8]) -> serde_json::Value {
            let digest = Digest::of(bytes);
            std::fs::write(self.dir.path().join("blobs/sha256").join(digest.hex()), bytes).unwrap();
            json!({ "digest": digest.to_string(), "size": bytes.len() })
        }

        fn push(&mut self, tag: &str, layers: &[(&str, &[u8])]) -> Digest {
            let mut config = self.blob(br#"{"architecture":"wasm","os":"wasip2"}"#);
            config["mediaType"] = json!("application/vnd.wasm.config.v0+json");
            let layers: Vec<serde_json::Value> = layers
                .iter()
                .map(|(media_type, bytes)| {
                    let mut d = self.blob(bytes);
                    d["mediaType"] = json!(media_type);
                    d
                })
                .collect();
            let manifest = json!({
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "config": config,
                "layers": layers,
                "annotations": { "org.opencontainers.image.version": tag },
            });
            let mut descriptor = self.blob(manifest.to_string().as_bytes());
            descriptor["mediaType"] = json!(MANIFEST);
            descriptor["annotations"] = json!({ REF_NAME: tag });
            let digest: Digest = descriptor["digest"].as_str().unwrap().parse().unwrap();
            self.manifests.push(descriptor);
            self.write_index();
            digest
        }

        fn write_index(&self) {
            let index = json!({ "schemaVersion": 2, "manifests": self.manifests });
            std::fs::write(self.dir.path().join("index.json"), index.to_string()).unwrap();
        }

        fn path(&self) -> &Path {
            self.dir.path()
        }
    }

    fn reason(e: OciError) -> String {
        e.reason
    }

    #[test]
    fn the_wasm_layer_of_the_only_manifest_is_read_with_its_digest() {
        let mut layout = Layout::new();
        let manifest = layout.push("0.1.0", &[(WASM_LAYER, b"\0asm component")]);
        assert!(is_layout(layout.path()));
        let c = read_component(layout.path(), None).unwrap();
        assert_eq!(c.bytes, b"\0asm component");
        assert_eq!(c.layer, Digest::of(b"\0asm component"));
        assert_eq!(c.manifest, manifest);
        assert_eq!(c.reference.as_deref(), Some("0.1.0"));
        assert_eq!(c.annotations["org.opencontainers.image.version"], "0.1.0");
    }

    #[test]
    fn several_manifests_need_a_reference() {
        let mut layout = Layout::new();
        layout.push("0.1.0", &[(WASM_LAYER, b"one")]);
        layout.push("0.2.0", &[(WASM_LAYER, b"two")]);
        let e = reason(read_component(layout.path(), None).unwrap_err());
        assert!(e.contains("2 manifests") && e.contains("`0.1.0`, `0.2.0`"), "{e}");
        assert_eq!(read_component(layout.path(), Some("0.2.0")).unwrap().bytes, b"two");
        let e = reason(read_component(layout.path(), Some("9.9.9")).unwrap_err());
        assert!(e.contains("no manifest is tagged `9.9.9`"), "{e}");
    }

    #[test]
    fn a_tampered_layer_or_manifest_is_refused() {
        let mut layout = Layout::new();
        layout.push("0.1.0", &[(WASM_LAYER, b"\0asm component")]);
        let layer = layout.path().join("blobs/sha256").join(Digest::of(b"\0asm component").hex());
        std::fs::write(&layer, b"\0asm c0mponent").unwrap();
        let e = reason(read_component(layout.path(), None).unwrap_err());
        assert!(e.contains("tampered"), "{e}");
        std::fs::write(&layer, b"\0asm component, longer").unwrap();
        let e = reason(read_component(layout.path(), None).unwrap_err());
        assert!(e.contains("but its descriptor says"), "{e}");
        std::fs::remove_file(&layer).unwrap();
        assert!(reason(read_component(layout.path(), None).unwrap_err()).contains("is missing"));

        // A manifest rewritten to point at other bytes no longer matches the
        // digest index.json gives it.
        let mut layout = Layout::new();
        let manifest = layout.push("0.1.0", &[(WASM_LAYER, b"\0asm component")]);
        let path = layout.path().join("blobs/sha256").join(manifest.hex());
        let text = std::fs::read_to_string(&path).unwrap().replace("0.1.0", "6.6.6");
        std::fs::write(&path, text).unwrap();
        let e = reason(read_component(layout.path(), None).unwrap_err());
        assert!(e.contains(&format!("blob {manifest} has digest")), "{e}");
    }

    #[test]
    fn a_manifest_without_exactly_one_wasm_layer_is_refused() {
        let mut layout = Layout::new();
        layout.push("image", &[("application/vnd.oci.image.layer.v1.tar+gzip", b"tar")]);
        let e = reason(read_component(layout.path(), None).unwrap_err());
        assert!(e.contains("no `application/wasm` layer") && e.contains("tar+gzip"), "{e}");
        let mut layout = Layout::new();
        layout.push("two", &[(WASM_LAYER, b"a"), (WASM_LAYER, b"b")]);
        assert!(reason(read_component(layout.path(), None).unwrap_err()).contains("several"));
    }

    #[test]
    fn digests_must_be_sha256_lowercase_hex_before_they_become_paths() {
        let mut layout = Layout::new();
        layout.push("0.1.0", &[(WASM_LAYER, b"x")]);
        for bad in ["sha512:abcd", "sha256:../../../../etc/passwd", &format!("sha256:{}", "A".repeat(64))] {
            layout.manifests[0]["digest"] = json!(bad);
            layout.write_index();
            let e = reason(read_component(layout.path(), None).unwrap_err());
            assert!(e.contains("unsupported digest"), "{bad}: {e}");
        }
    }

    #[test]
    fn not_a_layout_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_layout(dir.path()));
        assert!(reason(read_component(dir.path(), None).unwrap_err()).contains("`oci-layout` is missing"));
    }
}
