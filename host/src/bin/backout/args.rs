//! Command-line arguments: what the operator typed, before anything is checked.

use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum, ValueHint};

/// The sections after `backout --help`, by title: the man page renders the
/// same text as its EXIT STATUS, EXAMPLES and SEE ALSO (`man.rs`).
pub const TOP_LEVEL_SECTIONS: [(&str, &str); 3] = [
    (
        "Exit codes",
        "  0  success: the run succeeded (for `undo`: the run is undone)
  1  failed: a step failed; the changes of the steps that completed are still in place
  2  invalid input or refused: runbook, pins, grants, registry, arguments, a lock held by
     another run, or a runbook or plugin changed since the run; nothing was run
  3  the operator declined at the confirmation prompt; nothing was run
  4  undone: a step failed (or the run was interrupted) and every change was put back
  5  needs attention: an undo failed; some changes are still in place (the report lists them)
  6  interrupted: stopped by Ctrl-C or SIGTERM; then `backout resume` or `backout undo`
  7  timed out: a step ran out of time; the changes of the steps that completed are still in place
130  a second Ctrl-C: exited at once; the journal says how far the run got",
    ),
    (
        "Typical use",
        "  backout registry add target/wasm32-wasip2/release/env_toggle.wasm
  backout plan rollback.toml        # checks everything, changes nothing
  backout run rollback.toml         # shows the plan, asks, runs
  backout runs                      # what ran, and how it ended
  backout show last                 # one run: each step, its outputs, its safety copies
  backout undo last                 # put back what a run changed, newest step first
  backout completions bash > ~/.local/share/bash-completion/completions/backout",
    ),
    (
        "Docs",
        "README.md (runbook reference, \"When things go wrong\", security model), ARCHITECTURE.md, \
         `backout man`, and `backout COMMAND --help` for each command's options and examples.",
    ),
];

fn top_level_after_help() -> String {
    // An indented block goes under its title, a sentence beside it.
    let section =
        |(title, text): &(&str, &str)| format!("{title}:{}{text}", if text.starts_with(' ') { "\n" } else { " " });
    TOP_LEVEL_SECTIONS.iter().map(section).collect::<Vec<_>>().join("\n\n")
}

/// The command line as operators see it: each global option is listed once,
/// in `backout --help`, and every subcommand's help ends with a line naming
/// them instead of repeating them (and its usage line shows none of them,
/// even when an environment variable sets one).
pub fn command() -> clap::Command {
    let cmd = Cli::command();
    let note = global_options_note(&cmd);
    with_note(hide_global_options(cmd), &note)
}

/// Parses the process's arguments with [`command`].
pub fn parse() -> Cli {
    let mut cmd = command();
    let matches = cmd.get_matches_mut();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut cmd).exit())
}

/// Gives every subcommand (at every depth) its own hidden copy of each
/// global option: clap then propagates nothing, parses the option as before
/// (before or after the subcommand), and leaves it out of the subcommand's
/// help and usage lines. Completions are generated from [`Cli::command`],
/// where the options stay visible everywhere, so `backout plan --reg<TAB>`
/// still completes.
pub fn hide_global_options(cmd: clap::Command) -> clap::Command {
    let globals: Vec<clap::Arg> = cmd.get_arguments().filter(|a| a.is_global_set()).cloned().collect();
    fn hide(mut cmd: clap::Command, globals: &[clap::Arg]) -> clap::Command {
        for sub in cmd.get_subcommands_mut() {
            let own = std::mem::take(sub);
            let own = globals.iter().fold(own, |c, a| c.arg(a.clone().hide(true)));
            *sub = hide(own, globals);
        }
        cmd
    }
    hide(cmd, &globals)
}

/// "Global options (--registry, …) work here too: `backout --help` lists them."
fn global_options_note(cmd: &clap::Command) -> String {
    let names: Vec<String> = cmd
        .get_arguments()
        .filter(|a| a.is_global_set())
        .filter_map(|a| a.get_long())
        .map(|l| format!("--{l}"))
        .collect();
    format!("Global options ({}) work here too; `backout --help` lists them.", names.join(", "))
}

/// Appends `note` to the help of every subcommand, at every depth.
fn with_note(mut cmd: clap::Command, note: &str) -> clap::Command {
    for sub in cmd.get_subcommands_mut() {
        let own = std::mem::take(sub);
        let text = match own.get_after_help() {
            Some(after) => format!("{after}\n\n{note}"),
            None => note.to_owned(),
        };
        *sub = with_note(own.after_help(text), note);
    }
    cmd
}

/// Run rollback steps as sandboxed WebAssembly components.
///
/// A runbook (TOML) chains steps; each step runs a plugin, verified by its
/// sha256 against a pinned registry, with only the directories and environment
/// variables the runbook grants it. Everything is checked before the first
/// step runs.
#[derive(Debug, Parser)]
#[command(name = "backout", version, after_help = top_level_after_help())]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Registry directory that `name@version` plugins come from
    /// [default: $XDG_DATA_HOME/backout/registry, else ~/.local/share/backout/registry]
    #[arg(long, global = true, env = "BACKOUT_REGISTRY", hide_env_values = true, value_name = "DIR", value_hint = ValueHint::DirPath)]
    pub registry: Option<PathBuf>,

    /// How results are printed on stdout (logs and errors go to stderr).
    /// `json` with `run`, `undo` and `resume`: one JSON event per line as it
    /// happens, the run's report last (README: "Events")
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,

    /// Colour on a terminal: `auto` colours only output that goes to a
    /// terminal, and never when NO_COLOR is set (to anything but empty)
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,

    /// Results only: no plugin log lines, no progress (`run`, `undo`, `resume`)
    #[arg(long, short = 'q', global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Publisher keys this host trusts; when it lists any key, an unsigned or
    /// badly signed registry index is refused
    /// [default: $XDG_CONFIG_HOME/backout/trust.toml, else ~/.config/backout/trust.toml]
    #[arg(long, global = true, env = "BACKOUT_TRUST", hide_env_values = true, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub trust: Option<PathBuf>,

    /// Refuse any registry index that cannot be verified: unsigned, or with no
    /// trusted key configured (as `require_signed = true` in the trust file).
    /// Use it where a missing trust file must not mean "unchecked", e.g. under sudo
    #[arg(long, global = true, env = "BACKOUT_REQUIRE_SIGNED", hide_env_values = true)]
    pub require_signed: bool,

    /// Where backout keeps its state: run journals (`runs/<id>/journal.jsonl`),
    /// locks (`locks/`) and the highest serial accepted per registry
    /// [default: $XDG_STATE_HOME/backout, else ~/.local/state/backout]
    #[arg(long, global = true, env = "BACKOUT_STATE_DIR", hide_env_values = true, value_name = "DIR", value_hint = ValueHint::DirPath)]
    pub state_dir: Option<PathBuf>,

    /// Where compiled plugins are kept, keyed by each component's sha256 and
    /// the engine; an entry is loaded only if this user wrote it and it
    /// verifies, else the plugin is compiled again
    /// [default: $XDG_CACHE_HOME/backout/compiled, else ~/.cache/backout/compiled]
    #[arg(long, global = true, env = "BACKOUT_CACHE_DIR", hide_env_values = true, value_name = "DIR", value_hint = ValueHint::DirPath)]
    pub cache_dir: Option<PathBuf>,

    /// Compile every plugin from its bytes; neither read nor write the compile cache
    #[arg(long, global = true)]
    pub no_cache: bool,

    /// Also show plugins' debug and trace log lines, and say on stderr what
    /// the compile cache did for each plugin (loaded, compiled and stored)
    #[arg(long, short = 'v', global = true)]
    pub verbose: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// For people
    Text,
    /// JSON, for scripts: one document; for `run`, `undo` and `resume` one
    /// event per line (JSON Lines)
    Json,
}

/// `--color`: when to colour what is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Only output that goes to a terminal, and not when NO_COLOR is set
    Auto,
    /// Always, even into a pipe or a file, and even with NO_COLOR
    Always,
    /// Never
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a runbook completely without running it: pins, grants, references,
    /// and each plugin's own check of its config (read-only)
    #[command(after_help = "\
Examples:
  backout validate rollback.toml
  backout validate rollback.toml --var app_dir=/srv/app   # a `[vars]` entry set for this check
  backout validate rollback.toml --output json            # {\"valid\": …, \"diagnostics\": […]}")]
    Validate(RunbookArgs),

    /// Show what a runbook would do, step by step; changes nothing, even if a
    /// plugin tries (every directory is mounted read-only while planning)
    ///
    /// Each action is a change, a check (it only looks), or already in
    /// place; the last line says whether anything would change.
    #[command(after_help = "\
Examples:
  backout plan rollback.toml
  backout plan rollback.toml --var app_dir=/srv/app
  backout plan rollback.toml --output json      # the plan as one JSON document
  backout plan rollback.toml --detailed-exitcode   # exit 0: nothing to change, 2: changes pending")]
    Plan(PlanArgs),

    /// Check a runbook, show its plan, ask for confirmation, and run it
    ///
    /// When a step fails, the runbook's `on_failure` decides what happens
    /// (default `undo`: every completed step is put back, newest first).
    /// Ctrl-C or SIGTERM stops the run at the next safe point and applies
    /// the same policy; a second Ctrl-C exits at once. Every state change is
    /// journaled first, so a run killed at any point can be resumed or undone.
    #[command(after_help = "\
Examples:
  backout run rollback.toml                        # shows the plan, asks, runs
  backout run rollback.toml --var app_dir=/srv/app
  backout run rollback.toml --yes --output json    # unattended: events on stdout, the report last")]
    Run(RunArgs),

    /// List runs, newest first: id, runbook, start, state, steps completed
    #[command(after_help = "\
Examples:
  backout runs
  backout runs --limit 0 --output json    # every run, for scripts")]
    Runs(RunsArgs),

    /// Show one run: each step's outcome, duration, outputs (with host
    /// paths), leftovers, and which undo actions are available; `--html
    /// FILE` writes it as a self-contained HTML page
    #[command(after_help = "\
Examples:
  backout show last
  backout show last --html report.html    # one self-contained page that works offline
  backout show 20261206T2131 --output json")]
    Show(ShowArgs),

    /// Put back what a run changed: every step that may have changed
    /// something, newest first, with the config and outputs it recorded
    ///
    /// Works on a finished, failed, interrupted or needs-attention run (and
    /// continues an undo that stopped). Shows what it will undo and asks
    /// first. Refused if the runbook or a plugin changed since the run.
    #[command(after_help = "\
Examples:
  backout undo last
  backout undo 20261206T213125.318Z-feature-rollback-df6c --yes")]
    Undo(RecoverArgs),

    /// Continue an interrupted or failed run from where it stopped
    ///
    /// A step that started but never finished is in doubt: its `verify`
    /// decides whether it completed. A step in doubt or failed with a change
    /// in place is undone before it runs again. Steps that completed are not
    /// run again. Refused if the runbook or a plugin changed since the run.
    #[command(after_help = "\
Examples:
  backout resume last
  backout resume 20261206T2131 --yes")]
    Resume(RecoverArgs),

    /// Show what a plugin is: digest, world, imports, needs, config schema
    #[command(after_help = "\
Examples:
  backout inspect target/wasm32-wasip2/release/env_toggle.wasm
  backout inspect env-toggle@0.1     # the highest 0.1.x in the registry, verified")]
    Inspect(InspectArgs),

    /// Resolve every step's plugin and write RUNBOOK.lock beside the runbook;
    /// plan and run then use exactly the locked digests
    #[command(after_help = "\
Examples:
  backout lock rollback.toml             # writes rollback.toml.lock
  backout lock rollback.toml --update    # after `backout registry add` of a newer version")]
    Lock(LockArgs),

    /// Create a plugin project (Rust, Python or JavaScript) that builds and
    /// whose test passes out of the box: a working step, the SDK, the WIT
    /// contract, an example runbook and `test.sh`
    ///
    /// Needs: rust: the wasm32-wasip2 target; python: componentize-py 0.25.1
    /// (pip); js: Node.js and npm (the project's build.sh installs
    /// componentize-js 0.23.0).
    New(NewArgs),

    /// Manage signing keys
    #[command(
        subcommand,
        after_help = "\
Examples:
  backout key generate --out acme.key    # prints the public key as a trust file
  backout registry sign --key acme.key"
    )]
    Key(KeyCommand),

    /// Manage the local plugin registry
    #[command(
        subcommand,
        after_help = "\
Examples:
  backout registry add target/wasm32-wasip2/release/env_toggle.wasm
  backout registry list
  backout registry verify"
    )]
    Registry(RegistryCommand),

    /// Manage the compile cache (compiled plugins, so that commands need not
    /// compile them again)
    #[command(
        subcommand,
        after_help = "\
Examples:
  backout cache gc
  backout --cache-dir /var/cache/backout cache clear"
    )]
    Cache(CacheCommand),

    /// Print a completion script for a shell, generated from this very
    /// command line, so it always matches this backout
    #[command(after_help = "\
Examples:
  backout completions bash > ~/.local/share/bash-completion/completions/backout
  backout completions zsh > ~/.zfunc/_backout      # with `fpath+=(~/.zfunc)` before `compinit`
  backout completions fish > ~/.config/fish/completions/backout.fish")]
    Completions(CompletionsArgs),

    /// Print the manual page backout(1), or write it and one page per
    /// command (backout-run(1), backout-registry-add(1), …) into a directory
    #[command(after_help = "\
Examples:
  backout man | man -l -
  backout man --dir /usr/local/share/man/man1 && mandb -q")]
    Man(ManArgs),
}

/// `backout completions SHELL`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: Shell,
}

/// The shells whose completions are generated and tested (`tests/e2e/completions.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// Source the script, or put it in bash-completion's directory
    Bash,
    /// A `_backout` file in a directory on `fpath`
    Zsh,
    /// `backout.fish` in fish's completions directory
    Fish,
}

/// `backout man [--dir DIR]`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write backout.1 and a page per command into DIR (which must exist)
    /// instead of printing backout(1)
    #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath)]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Remove entries no registry plugin uses (by digest) and entries compiled
    /// by another engine (another backout or wasmtime build)
    #[command(after_help = "\
Examples:
  backout cache gc
  backout cache gc --output json    # what was removed, and why")]
    Gc,
    /// Remove every entry
    #[command(after_help = "\
Examples:
  backout cache clear")]
    Clear,
}

#[derive(Debug, Args)]
pub struct RunbookArgs {
    /// The runbook file (TOML)
    #[arg(value_hint = ValueHint::FilePath)]
    pub runbook: PathBuf,

    /// Override a `[vars]` entry; repeatable
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub runbook: RunbookArgs,

    /// Exit 0 when nothing would change (every action a check or already in
    /// place), 2 when changes are pending, 1 on any error (invalid runbook,
    /// refused pin, …), as `terraform plan -detailed-exitcode` does
    #[arg(long)]
    pub detailed_exitcode: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub runbook: RunbookArgs,

    /// Run without asking for confirmation (required when stdin is not a terminal)
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Break a stale lock (its process is gone) or one held on another
    /// host; the broken lock is journaled. A lock held by a live process on
    /// this host is never broken
    #[arg(long)]
    pub force_unlock: bool,
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Show at most this many runs (0: all)
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub limit: usize,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A run id, a unique prefix of one, or `last`
    pub run: String,
    /// Write the run report to FILE instead: one self-contained HTML page
    /// (timeline, each step's grants, outputs, undo and log, the RTO
    /// verdict, what to do next) that works offline; `-` writes it to stdout
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub html: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// A run id, a unique prefix of one, or `last`
    pub run: String,

    /// Go ahead without asking for confirmation (required when stdin is not a terminal)
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Break a stale lock held by another run, or one held on another host;
    /// the broken lock is journaled. The run's own stale lock is taken over
    /// without it
    #[arg(long)]
    pub force_unlock: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  backout new --lang rust disk-cleanup
  cd disk-cleanup && ./test.sh    # build, then backout inspect, registry add, plan and run (in a temp registry)
  cat disk-cleanup/README.md      # build, test, `backout registry add`")]
pub struct NewArgs {
    /// The plugin's language
    #[arg(long, value_enum)]
    pub lang: Lang,

    /// The plugin's name, as it will be published: lowercase letters, digits and `-`
    pub name: String,

    /// Where to create the project [default: ./NAME]; must not exist or be empty
    #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath)]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    /// Rust with the backout SDK (wasm32-wasip2)
    Rust,
    /// Python with componentize-py
    Python,
    /// JavaScript with componentize-js
    Js,
}

impl Lang {
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::Js => "js",
        }
    }

    /// What the generated `test.sh` does.
    pub fn test_summary(self) -> &'static str {
        match self {
            Lang::Rust | Lang::Python => "unit tests, build, then backout inspect, registry add, plan and run",
            Lang::Js => "build, then backout inspect, registry add, plan and run",
        }
    }
}

#[derive(Debug, Args)]
pub struct LockArgs {
    /// The runbook file (TOML)
    #[arg(value_hint = ValueHint::FilePath)]
    pub runbook: PathBuf,

    /// Replace an existing lock with what the registry holds now
    #[arg(long)]
    pub update: bool,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create an ed25519 signing key (the file is created with mode 0600)
    /// and print its public key, for publishers' trust files
    #[command(after_help = "\
Examples:
  backout key generate --out acme.key > trust.toml    # the private key, and a trust file for hosts")]
    Generate {
        /// Where to write the private key; never overwritten
        #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
        out: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A component file (`plugin.wasm`) or a registry entry (`name@version`)
    #[arg(value_hint = ValueHint::FilePath)]
    pub plugin: String,
}

#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Add a component to the registry, pinned by its sha256. Name and version
    /// default to what the plugin's `describe` reports
    #[command(after_help = "\
Examples:
  backout registry add target/wasm32-wasip2/release/env_toggle.wasm
  backout registry add ./env-toggle-oci --ref 0.2.0     # an OCI image layout (`wkg oci pull`)
  backout registry add plugin.wasm --key acme.key       # a signed registry: sign it again")]
    Add {
        /// The component file, or an OCI image layout directory holding it as
        /// an `application/wasm` layer (as `wkg oci pull` or `oras` write it;
        /// every blob is checked against its digest)
        #[arg(value_hint = ValueHint::AnyPath)]
        file: PathBuf,
        /// With an OCI image layout holding several manifests: the tag to take
        /// (`org.opencontainers.image.ref.name`)
        #[arg(long = "ref", value_name = "TAG")]
        oci_ref: Option<String>,
        /// Publish under this name instead of the plugin's own
        #[arg(long)]
        name: Option<String>,
        /// Publish under this version instead of the plugin's own
        #[arg(long)]
        version: Option<String>,
        #[command(flatten)]
        signature: SignedChange,
    },
    /// List the registry's plugins
    #[command(after_help = "\
Examples:
  backout registry list
  backout --registry /srv/backout/registry registry list --output json")]
    List,
    /// Create an empty registry
    #[command(after_help = "\
Examples:
  backout registry init
  backout --registry /srv/backout/registry registry init")]
    Init,
    /// Show one plugin's entry (the highest version, unless one is given)
    #[command(after_help = "\
Examples:
  backout registry show env-toggle
  backout registry show env-toggle@0.1")]
    Show {
        /// `name` or `name@version`
        plugin: String,
    },
    /// Rehash every blob and check the index's signature, serial and expiry;
    /// report missing, corrupt and orphaned blobs and every index problem (exit 2 on any)
    #[command(after_help = "\
Examples:
  backout registry verify
  backout registry verify --output json    # each problem a field")]
    Verify,
    /// Remove `name@version` from the index (its blob stays until `gc`)
    #[command(after_help = "\
Examples:
  backout registry remove env-toggle@0.1.0
  backout registry remove env-toggle@0.1.0 --key acme.key    # a signed registry: sign it again")]
    Remove {
        /// `name@version`
        plugin: String,
        #[command(flatten)]
        signature: SignedChange,
    },
    /// Delete blobs that no index entry refers to
    #[command(after_help = "\
Examples:
  backout registry remove env-toggle@0.1.0 && backout registry gc")]
    Gc,
    /// Sign the index with a publisher key (bumps the serial)
    #[command(after_help = "\
Examples:
  backout registry sign --key acme.key
  backout registry sign --key acme.key --expires-in 30d    # hosts refuse it after 30 days")]
    Sign {
        /// The private key file (`backout key generate`)
        #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
        key: PathBuf,
        /// Hosts refuse the index after this long (`30d`, `12h`); none by default
        #[arg(long, value_name = "DURATION")]
        expires_in: Option<String>,
    },
    /// Write the index, its signature and every blob into one deterministic tar
    #[command(after_help = "\
Examples:
  backout registry export --to plugins.tar    # then carry it to hosts without network")]
    Export {
        /// The tar file to write
        #[arg(long, value_name = "FILE.tar", value_hint = ValueHint::FilePath)]
        to: PathBuf,
    },
    /// Admit a bundle written by `export`, all or nothing, after checking its
    /// signature and every blob
    #[command(after_help = "\
Examples:
  backout registry import plugins.tar")]
    Import {
        /// The tar file
        #[arg(value_hint = ValueHint::FilePath)]
        bundle: PathBuf,
    },
    /// Fetch a registry from a static file server over HTTP(S) and admit it,
    /// all or nothing, verified like `import`
    ///
    /// The server serves a registry directory as it is, so any static file
    /// server will do (`python3 -m http.server`, nginx): under URL it must
    /// answer `index.toml`, `index.toml.sig` (a 404 means the index is
    /// unsigned) and `blobs/sha256/<hex>` for every blob the index pins.
    ///
    /// Nothing received is trusted: the index must pass the trust file's
    /// policy (signed by a trusted key, not older than the serial this host
    /// accepted, not expired) and must not be older than this registry's.
    /// Only blobs this registry lacks are downloaded, each into a temporary
    /// file, hashed as it arrives and cut off as soon as it exceeds the size
    /// the index gives it. When every blob is there and verified, the blobs,
    /// the signature and the index are admitted as `import` does. On any
    /// failure (wrong digest, dropped connection, HTTP error, timeout)
    /// nothing is changed.
    ///
    /// Redirects are followed only within the URL's scheme, host and port;
    /// proxy variables (HTTPS_PROXY, …) are ignored; connecting and each
    /// wait for data time out after 30 s.
    #[command(after_help = "\
Examples:
  # publisher, connected side: serve the signed registry directory
  python3 -m http.server --directory ~/.local/share/backout/registry 8000
  # each host
  backout registry mirror --from http://publisher.internal:8000")]
    Mirror {
        /// The registry directory's URL (`https://plugins.example/registry`)
        #[arg(long, value_name = "URL", value_hint = ValueHint::Url)]
        from: String,
    },
}

/// What `registry add` and `registry remove` do to a signed index: without
/// either flag, a change that would break the signature is refused.
#[derive(Debug, Args)]
#[group(multiple = false)]
pub struct SignedChange {
    /// Sign the changed index again with this private key (keeps its `expires`)
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub key: Option<PathBuf>,
    /// Drop the index's signature: hosts that trust a key refuse the
    /// registry until it is signed again
    #[arg(long)]
    pub unsign: bool,
}

fn parse_var(text: &str) -> Result<(String, String), String> {
    let (key, value) = text.split_once('=').ok_or_else(|| format!("`{text}` is not KEY=VALUE"))?;
    if key.is_empty() {
        return Err(format!("`{text}` has an empty KEY"));
    }
    Ok((key.to_string(), value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
        command().debug_assert();
    }

    /// Every command and subcommand, with its path (`registry add`).
    fn all_commands(cmd: &clap::Command, path: &str, out: &mut Vec<(String, clap::Command)>) {
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let path = format!("{path} {}", sub.get_name()).trim().to_owned();
            out.push((path.clone(), sub.clone()));
            all_commands(sub, &path, out);
        }
    }

    #[test]
    fn every_command_has_examples_and_its_help_lists_no_global_option() {
        let mut cmd = command();
        cmd.build();
        let mut commands = Vec::new();
        all_commands(&cmd, "", &mut commands);
        assert!(commands.len() >= 29, "{}", commands.len());
        for (path, mut sub) in commands {
            let after = sub.get_after_help().map(ToString::to_string).unwrap_or_default();
            assert!(after.starts_with("Examples:\n  "), "`{path}` has no examples:\n{after}");
            let example = after.lines().nth(1).unwrap().trim();
            assert!(example.starts_with("backout ") || example.starts_with('#'), "`{path}`: {example}");
            assert!(after.ends_with("work here too; `backout --help` lists them."), "`{path}`:\n{after}");
            let help = sub.render_long_help().to_string();
            let help = help.split("Global options (").next().unwrap();
            for global in ["--registry", "--trust", "--state-dir", "--cache-dir", "--color", "--quiet"] {
                let listed = help.lines().any(|l| l.trim_start().starts_with('-') && l.contains(global));
                assert!(!listed, "`{path}` lists {global}:\n{help}");
            }
            let usage = sub.render_usage().to_string();
            assert!(!usage.contains("--registry") && !usage.contains("--output"), "`{path}`: {usage}");
        }
        let top = cmd.render_long_help().to_string();
        assert_eq!(top.matches("--state-dir <DIR>").count(), 1, "{top}");
    }

    #[test]
    fn examples_run_only_commands_that_exist() {
        // Each example line that starts with `backout` parses (the run ids and
        // files in them need not exist; the words must).
        let mut cmd = command();
        cmd.build();
        let mut commands = Vec::new();
        all_commands(&cmd, "", &mut commands);
        let mut checked = 0;
        for (path, sub) in &commands {
            let after = sub.get_after_help().map(ToString::to_string).unwrap_or_default();
            for line in after.lines().map(str::trim).filter(|l| l.starts_with("backout ")) {
                let parsed = command().try_get_matches_from(words(line));
                assert!(parsed.is_ok(), "`{path}`: `{line}` does not parse: {}", parsed.unwrap_err());
                checked += 1;
            }
        }
        assert!(checked >= 50, "{checked}");
    }

    /// The words of the `backout` command a shell line starts with: up to a
    /// comment, pipe, `&&` or redirection (run ids and files need not exist).
    fn words(line: &str) -> Vec<&str> {
        let mut command = line;
        for end in [" #", " | ", " && ", " > "] {
            command = command.split(end).next().unwrap_or(command);
        }
        command.split_whitespace().collect()
    }

    #[test]
    fn every_backout_command_in_the_readme_parses() {
        // The README's shell blocks: what a newcomer copies. The quick start
        // also runs as written (tests/e2e/readme.rs); here every other line
        // must at least name commands and options that exist.
        let readme = include_str!("../../../../README.md");
        let mut checked = 0;
        for block in readme.split("```sh\n").skip(1) {
            let block = block.split("```").next().unwrap_or_default();
            let joined = block.replace("\\\n", " ");
            for line in joined.lines().map(str::trim).filter(|l| l.starts_with("backout ")) {
                let parsed = command().try_get_matches_from(words(line));
                assert!(parsed.is_ok(), "README: `{line}` does not parse: {}", parsed.unwrap_err());
                checked += 1;
            }
        }
        assert!(checked >= 26, "only {checked} README commands found");
    }

    #[test]
    fn global_options_work_before_and_after_the_subcommand() {
        let a = Cli::try_parse_from(["backout", "--output", "json", "plan", "r.toml"]).unwrap();
        let b = Cli::try_parse_from(["backout", "plan", "r.toml", "--output", "json", "--registry", "/r"]).unwrap();
        assert_eq!(a.global.output, Output::Json);
        assert_eq!(b.global.output, Output::Json);
        assert_eq!(b.global.registry, Some(PathBuf::from("/r")));
    }

    #[test]
    fn undo_and_resume_take_a_run_and_confirmation_flags() {
        let cli = Cli::try_parse_from(["backout", "undo", "last", "--yes", "--force-unlock"]).unwrap();
        let Command::Undo(args) = cli.command else { panic!("not undo") };
        assert_eq!(args.run, "last");
        assert!(args.yes && args.force_unlock);
        assert!(Cli::try_parse_from(["backout", "resume"]).is_err(), "RUN is required");
    }

    #[test]
    fn cache_options_are_global_and_cache_has_gc_and_clear() {
        let cli = Cli::try_parse_from(["backout", "cache", "gc", "--cache-dir", "/c", "-v"]).unwrap();
        assert!(matches!(cli.command, Command::Cache(CacheCommand::Gc)));
        assert_eq!(cli.global.cache_dir, Some(PathBuf::from("/c")));
        assert!(cli.global.verbose && !cli.global.no_cache);
        let cli = Cli::try_parse_from(["backout", "--no-cache", "cache", "clear"]).unwrap();
        assert!(matches!(cli.command, Command::Cache(CacheCommand::Clear)) && cli.global.no_cache);
    }

    #[test]
    fn color_quiet_and_verbose_are_global_and_quiet_excludes_verbose() {
        let cli = Cli::try_parse_from(["backout", "run", "r.toml", "--color", "never", "-q"]).unwrap();
        assert_eq!(cli.global.color, ColorChoice::Never);
        assert!(cli.global.quiet && !cli.global.verbose);
        let cli = Cli::try_parse_from(["backout", "run", "r.toml"]).unwrap();
        assert_eq!(cli.global.color, ColorChoice::Auto);
        assert!(Cli::try_parse_from(["backout", "-q", "-v", "run", "r.toml"]).is_err());
        assert!(Cli::try_parse_from(["backout", "--color", "sometimes", "run", "r.toml"]).is_err());
    }

    #[test]
    fn vars_are_key_value_pairs() {
        assert_eq!(parse_var("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert!(parse_var("novalue").is_err());
        assert!(parse_var("=x").is_err());
    }
}
