//! `backout man [--dir DIR]`: manual pages rendered by `clap_mangen` from
//! the same definition the parser and `--help` use, so they cannot drift.
//!
//! backout(1) is the whole command line: global options, the commands, exit
//! codes, examples. Each command also gets its own page
//! (backout-registry-add(1)) with its options and examples; the global
//! options are not repeated there, as in `--help`. Rendered on demand, not
//! by build.rs: no build pays for it.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::CommandFactory;
use roff::{Roff, bold, roman};
use serde_json::json;

use super::{Ctx, print_json};
use crate::Exit;
use crate::args::{Cli, ManArgs, Output, TOP_LEVEL_SECTIONS, hide_global_options};
use crate::output::{self, out, outln};

pub fn man(ctx: &Ctx, args: &ManArgs) -> Exit {
    let Some(dir) = &args.dir else {
        out!("{}", pages().swap_remove(0).1);
        return Exit::Success;
    };
    match write_pages(dir) {
        Ok(written) => {
            match ctx.output {
                Output::Json => print_json(&json!({ "dir": dir, "pages": written })),
                Output::Text => {
                    outln!("wrote {} to `{}`", backout::text::count(written.len(), "manual page"), dir.display())
                }
            }
            Exit::Success
        }
        Err(e) => {
            output::error(&e, Some("give `--dir` an existing directory you can write, e.g. `~/.local/share/man/man1`"));
            Exit::Invalid
        }
    }
}

fn write_pages(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        anyhow::bail!("`{}` is not a directory", dir.display());
    }
    pages()
        .into_iter()
        .map(|(name, text)| {
            let path = dir.join(name);
            std::fs::write(&path, text).with_context(|| format!("failed to write `{}`", path.display()))?;
            Ok(path)
        })
        .collect()
}

/// Every page as (file name, roff): backout.1 first, then one per command,
/// depth first (backout-registry.1, backout-registry-add.1, …).
pub fn pages() -> Vec<(String, String)> {
    let mut cmd = hide_global_options(Cli::command()).disable_help_subcommand(true);
    cmd.build();
    let globals: Vec<String> = cmd
        .get_arguments()
        .filter(|a| a.is_global_set())
        .filter_map(|a| a.get_long())
        .map(|l| format!("--{l}"))
        .collect();
    let mut pages = vec![(file_name(&cmd), top_page(&cmd))];
    fn walk(cmd: &clap::Command, globals: &[String], pages: &mut Vec<(String, String)>) {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            pages.push((file_name(sub), command_page(sub, globals)));
            walk(sub, globals, pages);
        }
    }
    walk(&cmd, &globals, &mut pages);
    pages
}

fn file_name(cmd: &clap::Command) -> String {
    format!("{}.1", cmd.get_display_name().unwrap_or_else(|| cmd.get_name()))
}

/// backout(1): clap_mangen's sections, then EXIT STATUS, ENVIRONMENT,
/// EXAMPLES and SEE ALSO from the text `backout --help` ends with.
fn top_page(cmd: &clap::Command) -> String {
    let mut extra = Roff::new();
    for (title, text) in TOP_LEVEL_SECTIONS {
        let heading = match title {
            "Exit codes" => "EXIT STATUS",
            "Typical use" => "EXAMPLES",
            _ => "SEE ALSO",
        };
        if heading == "EXAMPLES" {
            environment(&mut extra, cmd);
        }
        extra.control("SH", [heading]);
        match heading {
            "SEE ALSO" => {
                extra.text([roman(text.to_string())]);
            }
            _ => preformatted(&mut extra, text),
        }
    }
    page(cmd, extra)
}

/// One command's page: its own options (and subcommands), its examples,
/// and where the global options are.
fn command_page(cmd: &clap::Command, globals: &[String]) -> String {
    let mut extra = Roff::new();
    if let Some(after) = cmd.get_after_help() {
        let text = after.to_string();
        let (heading, body) = match text.strip_prefix("Examples:\n") {
            Some(examples) => ("EXAMPLES", examples.to_owned()),
            None => ("NOTES", text),
        };
        extra.control("SH", [heading]);
        preformatted(&mut extra, &body);
    }
    extra.control("SH", ["SEE ALSO"]);
    extra.text([
        bold("backout"),
        roman(format!("(1) for the global options ({}), exit codes and environment.", globals.join(", "))),
    ]);
    page(cmd, extra)
}

/// clap_mangen's title (its footer says `backout VERSION` on every page),
/// NAME, SYNOPSIS, DESCRIPTION, OPTIONS and SUBCOMMANDS, then `extra`, then
/// VERSION on backout(1). Each piece clap_mangen renders
/// starts with the same two-line preamble (it defines the apostrophe
/// string); it is kept once, at the top.
fn page(cmd: &clap::Command, extra: Roff) -> String {
    let man = clap_mangen::Man::new(cmd.clone()).source(format!("backout {}", env!("CARGO_PKG_VERSION")));
    let mut pieces: Vec<Vec<u8>> = Vec::new();
    let mut piece = |render: &dyn Fn(&mut Vec<u8>) -> std::io::Result<()>| {
        let mut bytes = Vec::new();
        render(&mut bytes).expect("rendering into memory cannot fail");
        pieces.push(bytes);
    };
    piece(&|w| man.render_title(w));
    piece(&|w| man.render_name_section(w));
    piece(&|w| man.render_synopsis_section(w));
    piece(&|w| man.render_description_section(w));
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        piece(&|w| man.render_options_section(w));
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        piece(&|w| man.render_subcommands_section(w));
    }
    piece(&|w| extra.to_writer(w));
    if cmd.get_version().is_some() {
        piece(&|w| man.render_version_section(w));
    }
    let mut text = String::new();
    for (i, bytes) in pieces.iter().enumerate() {
        let piece = String::from_utf8_lossy(bytes);
        let preamble_len = preamble().len();
        text.push_str(if i > 0 && piece.starts_with(preamble()) { &piece[preamble_len..] } else { &piece });
    }
    text
}

/// What [`Roff::to_writer`] writes before every document.
fn preamble() -> &'static str {
    static PREAMBLE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PREAMBLE.get_or_init(|| Roff::new().render())
}

/// ENVIRONMENT: each variable an option reads, and NO_COLOR.
fn environment(roff: &mut Roff, cmd: &clap::Command) {
    roff.control("SH", ["ENVIRONMENT"]);
    for arg in cmd.get_arguments() {
        let (Some(env), Some(long)) = (arg.get_env(), arg.get_long()) else { continue };
        roff.control("TP", []);
        roff.text([bold(env.to_string_lossy())]);
        roff.text([roman("The default of "), bold(format!("--{long}")), roman(".")]);
    }
    roff.control("TP", []);
    roff.text([bold("NO_COLOR")]);
    roff.text([roman("Set to anything but the empty string: no colour with "), bold("--color auto"), roman(".")]);
}

/// `text` line for line, as `--help` shows it (commands and their comments).
fn preformatted(roff: &mut Roff, text: &str) {
    roff.control("nf", []);
    for line in text.lines() {
        roff.text([roman(line)]);
    }
    roff.control("fi", []);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_a_page_with_its_examples_and_the_preamble_once() {
        let pages = pages();
        let names: Vec<&str> = pages.iter().map(|(n, _)| n.as_str()).collect();
        for expected in ["backout.1", "backout-run.1", "backout-registry.1", "backout-registry-add.1", "backout-man.1"]
        {
            assert!(names.contains(&expected), "{expected} missing from {names:?}");
        }
        assert!(!names.iter().any(|n| n.contains("help")), "{names:?}");
        for (name, text) in &pages {
            assert_eq!(text.matches(".ds Aq").count(), 2, "{name}: one preamble (two lines)\n{text}");
            assert!(text.starts_with(preamble()), "{name}");
            assert!(text.contains(&format!(" \"backout {}\"", env!("CARGO_PKG_VERSION"))), "{name}: title\n{text}");
            for section in ["NAME", "SYNOPSIS", "DESCRIPTION", "SEE ALSO"] {
                assert!(has_section(text, section), "{name}: no {section}\n{text}");
            }
            if *name != "backout.1" {
                assert!(text.contains(".SH EXAMPLES\n.nf\n"), "{name}: no examples\n{text}");
                assert!(!text.contains("\\fB\\-\\-state\\-dir\\fR"), "{name} repeats the global options\n{text}");
            }
        }
        let top = &pages[0].1;
        for section in ["OPTIONS", "SUBCOMMANDS", "EXIT STATUS", "ENVIRONMENT", "EXAMPLES", "VERSION"] {
            assert!(has_section(top, section), "{section}\n{top}");
        }
        assert!(top.contains("\\fB\\-\\-state\\-dir\\fR \\fI<DIR>\\fR"), "{top}");
        assert!(top.contains("\\fBBACKOUT_TRUST\\fR") && top.contains("backout\\-registry(1)"), "{top}");
    }

    /// `.SH NAME`, or `.SH "SEE ALSO"` (roff quotes an argument with a space).
    fn has_section(text: &str, section: &str) -> bool {
        let quoted = if section.contains(' ') { format!("\"{section}\"") } else { section.to_owned() };
        text.contains(&format!(".SH {quoted}\n"))
    }
}
