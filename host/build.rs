//! Embeds the `backout new` project templates: for each language, the files
//! a new plugin project starts with, read from the repository at build time
//! so the binary always scaffolds what this checkout's SDKs and WIT are.
//! Writes `$OUT_DIR/scaffold_files.rs`: `(language, path in the project,
//! bytes)` for every file.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// What each language's project is made of: (directory or file in the
/// repository, where it goes in the new project). Missing sources are
/// skipped; `backout new` checks that a language has files.
const SOURCES: &[(&str, &[(&str, &str)])] = &[
    ("rust", &[("sdk/template/rust", ""), ("sdk/src", "backout-sdk/src"), ("wit", "wit")]),
    ("python", &[("sdk/python/template", ""), ("sdk/python/backout_sdk", "backout_sdk"), ("wit", "wit")]),
    ("js", &[("sdk/js/template", ""), ("sdk/js/backout-sdk.js", "backout-sdk.js"), ("wit", "wit")]),
];

/// Never copied into a new project.
const SKIP: &[&str] = &["__pycache__", "node_modules", "target", ".pytest_cache"];

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest.parent().expect("host/ is inside the workspace").to_path_buf();
    let mut out = String::from("/// (language, path in the new project, contents)\n");
    out.push_str("pub static FILES: &[(&str, &str, &[u8])] = &[\n");
    for (lang, sources) in SOURCES {
        for (from, to) in *sources {
            let from = root.join(from);
            println!("cargo:rerun-if-changed={}", from.display());
            let mut files = Vec::new();
            collect(&from, &mut files);
            files.sort();
            for file in files {
                let rel = file.strip_prefix(&from).expect("collected under `from`");
                let dest = if rel.as_os_str().is_empty() {
                    (*to).to_string()
                } else {
                    Path::new(to).join(rel).to_string_lossy().into_owned()
                };
                writeln!(out, "    ({lang:?}, {dest:?}, include_bytes!({:?})),", file.display().to_string())
                    .expect("write to a String");
            }
        }
    }
    out.push_str("];\n");
    let dest = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("scaffold_files.rs");
    std::fs::write(&dest, out).expect("write scaffold_files.rs");
}

fn collect(path: &Path, files: &mut Vec<PathBuf>) {
    if path.file_name().is_some_and(|n| SKIP.iter().any(|s| n == *s)) {
        return;
    }
    if path.is_file() {
        files.push(path.to_path_buf());
    } else if let Ok(entries) = std::fs::read_dir(path) {
        for entry in entries.flatten() {
            collect(&entry.path(), files);
        }
    }
}
