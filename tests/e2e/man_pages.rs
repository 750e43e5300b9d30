//! `backout man`, rendered by the real `man` (man-db and groff, from
//! Debian through `tests/setup.sh`) with groff's warnings on: every page
//! formats cleanly and carries the sections an operator looks for.

use std::path::Path;
use std::process::{Command, Stdio};

use backout_tests::cli::Sandbox;

use crate::bin;

/// `man --warnings -l FILE` at 80 columns: the text, after checking that
/// groff warned about nothing.
fn render(page: &Path) -> String {
    let out = Command::new("man")
        .args(["--warnings", "-l"])
        .arg(page)
        .env("MANWIDTH", "80")
        .env("MANPAGER", "cat")
        .env("LC_ALL", "C.UTF-8")
        .stdin(Stdio::null())
        .output()
        .expect("man runs (tests/setup.sh installs man-db and groff-base)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.is_empty(), "man -l {}: {stderr}", page.display());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `text` with every run of white space one space: man justifies lines.
fn words(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The section headings of a rendered page: lines in capitals at the margin.
fn sections(text: &str) -> Vec<&str> {
    text.lines()
        .skip(1)
        .filter(|l| l.chars().next().is_some_and(|c| c.is_ascii_uppercase()) && l.chars().all(|c| !c.is_lowercase()))
        .collect()
}

#[test]
fn backout_1_renders_with_every_section_an_operator_looks_for() {
    let sb = Sandbox::new(bin());
    let out = sb.run(&["man"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let page = sb.write("backout.1", &out.stdout);
    let text = render(&page);
    assert_eq!(
        sections(&text),
        [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "OPTIONS",
            "SUBCOMMANDS",
            "EXIT STATUS",
            "ENVIRONMENT",
            "EXAMPLES",
            "SEE ALSO",
            "VERSION"
        ],
        "{text}"
    );
    assert!(text.starts_with("backout(1)"), "{text}");
    for expected in [
        "backout - Run rollback steps as sandboxed WebAssembly components",
        "--state-dir <DIR>",
        "BACKOUT_TRUST",
        "backout-registry(1)",
        "backout-completions(1)",
        "130  a second Ctrl-C",
        "backout plan rollback.toml",
    ] {
        assert!(text.contains(expected), "`{expected}` missing:\n{text}");
    }
}

#[test]
fn man_dir_writes_a_page_per_command_each_with_examples_and_no_global_options() {
    let sb = Sandbox::new(bin());
    let dir = sb.mkdir("man1");
    let out = sb.run(&["man", "--dir", dir.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.all());
    let mut names: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(out.stdout, format!("wrote {} manual pages to `{}`\n", names.len(), dir.display()));
    for expected in ["backout.1", "backout-run.1", "backout-registry-add.1", "backout-key-generate.1", "backout-man.1"]
    {
        assert!(names.iter().any(|n| n == expected), "{expected} missing from {names:?}");
    }
    assert!(names.len() >= 30 && !names.iter().any(|n| n.contains("help")), "{names:?}");
    for name in names.iter().filter(|n| *n != "backout.1") {
        let text = render(&dir.join(name));
        let title = name.trim_end_matches(".1");
        assert!(text.starts_with(&format!("{title}(1)")), "{name}:\n{text}");
        let sections = sections(&text);
        assert!(sections.starts_with(&["NAME", "SYNOPSIS", "DESCRIPTION"]), "{name}: {sections:?}");
        assert!(sections.ends_with(&["EXAMPLES", "SEE ALSO"]), "{name}: {sections:?}");
        assert!(words(&text).contains("backout(1) for the global options (--registry,"), "{name}:\n{text}");
        assert!(!text.contains("--state-dir <DIR>"), "{name} repeats a global option:\n{text}");
    }
    let run = render(&dir.join("backout-run.1"));
    assert!(run.contains("--yes") && run.contains("backout run rollback.toml"), "{run}");
    // The same page as `backout man` prints.
    assert_eq!(std::fs::read_to_string(dir.join("backout.1")).unwrap(), sb.run(&["man"]).stdout);
}

#[test]
fn man_dir_that_is_not_a_directory_is_refused_and_nothing_is_written() {
    let sb = Sandbox::new(bin());
    let file = sb.write("not-a-dir", "keep me\n");
    let out = sb.run(&["man", "--dir", file.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("is not a directory") && out.stderr.contains("hint: give `--dir`"), "{}", out.all());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me\n");
    let missing = sb.path().join("missing");
    let out = sb.run(&["man", "--dir", missing.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(!missing.exists());
}
