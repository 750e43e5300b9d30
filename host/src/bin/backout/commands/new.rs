//! `backout new --lang LANG NAME`: a plugin project that builds, and whose
//! test passes, out of the box.
//!
//! The templates are the repository's own (`sdk/template/rust`,
//! `sdk/python/template`, `sdk/js/template`), embedded at build time with
//! the SDK each language needs and the WIT contract (`host/build.rs`), so a
//! project made by this binary matches the host it was made by.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::json;

use super::{Ctx, print_json};
use crate::Exit;
use crate::args::{Lang, NewArgs, Output};
use crate::output::{self, outln};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/scaffold_files.rs"));
}

pub fn new(ctx: &Ctx, args: &NewArgs) -> Exit {
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from(&args.name));
    let result = scaffold(args.lang, &args.name, &dir).map(|written| match ctx.output {
        Output::Json => {
            print_json(&json!({ "name": args.name, "lang": args.lang.as_str(), "dir": dir, "files": written }))
        }
        Output::Text => {
            outln!(
                "created {} plugin `{}` in {}/ ({} files)",
                args.lang.as_str(),
                args.name,
                dir.display(),
                written.len()
            );
            outln!("\nnext:\n  cd {}\n  ./test.sh          # {}", dir.display(), args.lang.test_summary());
            outln!("  cat README.md      # build, test, `backout registry add`");
        }
    });
    match result {
        Ok(()) => Exit::Success,
        Err(e) => {
            output::error(&e, None);
            Exit::Invalid
        }
    }
}

/// Writes the project for `lang` into `dir` (which must not exist or be
/// empty); returns the paths written, relative to `dir`.
pub fn scaffold(lang: Lang, name: &str, dir: &Path) -> anyhow::Result<Vec<String>> {
    backout_registry::validate_name(name).with_context(|| format!("`{name}` cannot be a plugin name"))?;
    if dir.exists() && std::fs::read_dir(dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
        bail!("`{}` already exists and is not empty; pick another name or pass --dir", dir.display());
    }
    let files: Vec<_> = embedded::FILES.iter().filter(|(l, _, _)| *l == lang.as_str()).collect();
    if files.is_empty() {
        bail!("this backout was built without the {} template", lang.as_str());
    }
    let module = name.replace('-', "_");
    let type_name: String = name
        .split(['-', '_'])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect();
    let fill =
        |text: &str| text.replace("{{name}}", name).replace("{{module}}", &module).replace("{{type}}", &type_name);
    let mut written = Vec::new();
    for (_, path, bytes) in files {
        let rel = fill(path);
        let target = dir.join(&rel);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("failed to create `{}`", parent.display()))?;
        }
        let contents = match std::str::from_utf8(bytes) {
            Ok(text) => fill(text).into_bytes(),
            Err(_) => bytes.to_vec(),
        };
        std::fs::write(&target, contents).with_context(|| format!("failed to write `{}`", target.display()))?;
        if rel.ends_with(".sh") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))
                .with_context(|| format!("failed to make `{}` executable", target.display()))?;
        }
        written.push(rel);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_has_a_test_script_and_the_contract() {
        for lang in [Lang::Rust, Lang::Python, Lang::Js] {
            let dir = tempfile::tempdir().unwrap();
            let project = dir.path().join("demo-step");
            let written = scaffold(lang, "demo-step", &project).unwrap();
            assert!(written.iter().any(|f| f == "test.sh"), "{lang:?}: {written:?}");
            assert!(written.iter().any(|f| f == "wit/step.wit"), "{lang:?}: {written:?}");
            let all: String =
                written.iter().map(|f| std::fs::read_to_string(project.join(f)).unwrap_or_default()).collect();
            for placeholder in ["{{name}}", "{{module}}", "{{type}}"] {
                assert!(!all.contains(placeholder), "{lang:?}: {placeholder} left unfilled");
            }
        }
    }

    #[test]
    fn names_are_checked_and_existing_directories_kept() {
        let dir = tempfile::tempdir().unwrap();
        assert!(scaffold(Lang::Rust, "../evil", &dir.path().join("x")).is_err());
        std::fs::write(dir.path().join("keep.txt"), "mine").unwrap();
        let err = scaffold(Lang::Rust, "ok", dir.path()).unwrap_err();
        assert!(err.to_string().contains("not empty"), "{err}");
        assert_eq!(std::fs::read_to_string(dir.path().join("keep.txt")).unwrap(), "mine");
    }
}
