//! `backout completions SHELL`, loaded into the real shells: bash completes
//! commands, options and values as readline would ask it to; zsh registers
//! the completion function; fish answers `complete -C`. The shells come from
//! Debian through `tests/setup.sh`.

use std::path::Path;
use std::process::Command;

use backout_tests::cli::Sandbox;

use crate::bin;

/// Sources the bash script and asks its completion function (the one
/// `complete -p backout` names) for the last of `words`, setting COMP_WORDS,
/// COMP_CWORD, COMP_LINE and COMP_POINT as bash does before calling it.
/// Returns what it offers, one per line.
fn bash_offers(script: &Path, words: &[&str]) -> Vec<String> {
    const ASK: &str = r#"
source "$1"; shift
spec=$(complete -p backout) || { echo "no completion for backout" >&2; exit 3; }
func=$(sed -n 's/.* -F \([^ ]*\) .*/\1/p' <<<"$spec")
COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 ))
COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
"$func" backout "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
"#;
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", ASK, "ask"])
        .arg(script)
        .args(words)
        .output()
        .expect("bash runs (tests/setup.sh installs it)");
    assert!(out.status.success(), "bash: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.is_empty()).map(str::to_owned).collect()
}

fn script(sb: &Sandbox, shell: &str, file: &str) -> std::path::PathBuf {
    let out = sb.run(&["completions", shell]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stderr.is_empty(), "{}", out.all());
    sb.write(file, &out.stdout)
}

#[test]
fn bash_completes_commands_options_and_values_from_the_script() {
    let sb = Sandbox::new(bin());
    let script = script(&sb, "bash", "backout.bash");

    let spec = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", "source \"$1\" && complete -p backout", "spec"])
        .arg(&script)
        .output()
        .unwrap();
    let spec = String::from_utf8_lossy(&spec.stdout);
    assert!(
        spec.starts_with("complete ") && spec.contains(" -F _backout ") && spec.trim_end().ends_with(" backout"),
        "{spec}"
    );

    assert_eq!(bash_offers(&script, &["backout", "reg"]), ["registry"]);
    assert_eq!(bash_offers(&script, &["backout", "re"]), ["resume", "registry"], "prefix of two commands");
    assert_eq!(bash_offers(&script, &["backout", "registry", "a"]), ["add"]);
    assert_eq!(
        bash_offers(&script, &["backout", "cache", ""]),
        [
            "-q",
            "-v",
            "-h",
            "--registry",
            "--output",
            "--color",
            "--quiet",
            "--trust",
            "--require-signed",
            "--state-dir",
            "--cache-dir",
            "--no-cache",
            "--verbose",
            "--help",
            "gc",
            "clear",
            "help"
        ]
    );
    // Global options complete after a subcommand, though its help hides them.
    assert_eq!(bash_offers(&script, &["backout", "plan", "--reg"]), ["--registry"]);
    assert_eq!(bash_offers(&script, &["backout", "--output", ""]), ["text", "json"]);
    assert_eq!(bash_offers(&script, &["backout", "new", "--lang", ""]), ["rust", "python", "js"]);
    let shells = bash_offers(&script, &["backout", "completions", ""]);
    assert!(shells.ends_with(&["bash".to_owned(), "zsh".to_owned(), "fish".to_owned()]), "{shells:?}");
    assert!(bash_offers(&script, &["backout", "regsitry"]).is_empty(), "a typo completes to nothing");
}

#[test]
fn zsh_registers_the_completion_function_from_fpath() {
    let sb = Sandbox::new(bin());
    let functions = sb.mkdir("zfunc");
    script(&sb, "zsh", "zfunc/_backout");

    let syntax = Command::new("zsh").arg("-n").arg(functions.join("_backout")).output().expect("zsh (tests/setup.sh)");
    assert!(syntax.status.success(), "zsh -n: {}", String::from_utf8_lossy(&syntax.stderr));
    // As a user's .zshrc would: the directory on fpath, then compinit.
    let out = Command::new("zsh")
        .args([
            "-f",
            "-c",
            "fpath=(\"$1\" $fpath); autoload -Uz compinit; compinit -u -D; print -r -- $_comps[backout]",
        ])
        .arg("zsh")
        .arg(&functions)
        .env("HOME", sb.path())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "_backout", "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn fish_completes_commands_and_options_from_the_script() {
    let sb = Sandbox::new(bin());
    let script = script(&sb, "fish", "backout.fish");

    let syntax = Command::new("fish").arg("--no-execute").arg(&script).output().expect("fish (tests/setup.sh)");
    assert!(syntax.status.success(), "fish --no-execute: {}", String::from_utf8_lossy(&syntax.stderr));
    let complete = |line: &str| -> Vec<String> {
        let out = Command::new("fish")
            .args(["--no-config", "-c", "source $argv[1]; complete -C $argv[2]"])
            .arg(&script)
            .arg(line)
            .env("HOME", sb.path())
            .current_dir(sb.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "fish: {}", String::from_utf8_lossy(&out.stderr));
        // `candidate<TAB>description`
        String::from_utf8_lossy(&out.stdout).lines().map(|l| l.split('\t').next().unwrap().to_owned()).collect()
    };
    assert_eq!(complete("backout reg"), ["registry"]);
    assert_eq!(complete("backout registry a"), ["add"]);
    assert_eq!(complete("backout plan --reg"), ["--registry"]);
    assert_eq!(complete("backout plan --output "), ["json", "text"]);
    assert_eq!(complete("backout --output="), ["--output=json", "--output=text"]);
}

#[test]
fn an_unknown_shell_is_refused_with_the_ones_there_are() {
    let sb = Sandbox::new(bin());
    let out = sb.run(&["completions", "tcsh"]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stdout.is_empty(), "{}", out.all());
    assert!(out.stderr.contains("invalid value 'tcsh'") && out.stderr.contains("[possible values: bash, zsh, fish]"));
}
