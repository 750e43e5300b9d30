//! `backout-wit-bindgen-c WIT [--world NAME] [--out-dir DIR]`: writes the C
//! bindings `wit-bindgen c WIT --world NAME --out-dir DIR` writes (same
//! generator, default options): `<world>.h`, `<world>.c` and
//! `<world>_component_type.o`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use wit_bindgen_core::wit_parser::Resolve;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut wit, mut world, mut out_dir) = (None, None, PathBuf::from("."));
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--world" => world = Some(args.next().context("--world needs a value")?),
            "--out-dir" => out_dir = args.next().context("--out-dir needs a value")?.into(),
            "--version" => {
                println!("backout-wit-bindgen-c {}", env!("CARGO_PKG_VERSION"));
                return Ok(());
            }
            _ if arg.starts_with('-') => bail!("unknown option `{arg}`"),
            _ if wit.is_some() => bail!("one WIT path only"),
            _ => wit = Some(PathBuf::from(arg)),
        }
    }
    let wit = wit.context("usage: backout-wit-bindgen-c WIT [--world NAME] [--out-dir DIR]")?;

    let mut resolve = Resolve::default();
    let (package, _) = resolve.push_path(&wit).with_context(|| format!("reading {}", wit.display()))?;
    let world = resolve.select_world(&[package], world.as_deref())?;
    let mut files = wit_bindgen_core::Files::default();
    wit_bindgen_c::Opts::default().build().generate(&mut resolve, world, &mut files)?;
    std::fs::create_dir_all(&out_dir)?;
    for (name, contents) in files.iter() {
        let path = out_dir.join(name);
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("Generating {:?}", path.display().to_string());
    }
    Ok(())
}
