//! Command grants: the exact host command lines a step may run — the one
//! capability that leaves the sandbox, and how it stays bounded.
//!
//! A runbook grants whole argv vectors, never patterns:
//! `commands = [["systemctl", "stop", "cortex-mcp"]]`. When the runbook is
//! checked, each program is resolved to an absolute, canonical path (a bare
//! name through the `PATH` of the shell that runs backout, once; a relative
//! path is refused) and must be a regular, executable file that neither it
//! nor any directory above it lets anyone but root or the user running
//! backout replace. Its device, inode and sha256 are recorded; the plan
//! shows the path.
//!
//! At run time ([`run`]) a plugin's argv must equal a granted one argument
//! for argument; the program must still be the file that was checked (same
//! device, inode and sha256) or it is refused and never started. It starts
//! without a shell, with an empty environment plus the step's granted
//! variables, stdin closed, in a working directory inside a directory grant
//! (or an empty private one), in a process group of its own that is killed
//! when the call's deadline passes or the operator interrupts. Its stdout
//! and stderr are bounded and secrets are masked before the plugin sees
//! them. Only `run` and `undo` may start a command ([`Effect::Exec`]);
//! `plan` can only ask whether one would be allowed ([`check_argv`]).
//!
//! What a granted command does is up to the command: the grant bounds which
//! commands, not their effects. Grant what the shell runbook ran, and no more.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};
use toml::Spanned;

use super::{Capability, CheckCx, Denied, Effect, Finding, Needs, Phase, Sandbox};
use crate::diagnostic::Diagnostic;
use crate::runbook::{GrantsDef, Parsed};

/// Bytes of stdout (and of stderr) a plugin gets back from one command.
pub const MAX_OUTPUT: usize = 64 * 1024;
/// Most arguments in one granted command, and most bytes in one argument.
const MAX_ARGS: usize = 256;
const MAX_ARG_BYTES: usize = 4096;
/// How long the host waits for a command's pipes to close after it exited
/// (a daemon it started may hold them open for ever).
const PIPE_GRACE: Duration = Duration::from_millis(200);

/// A checked command grant.
#[derive(Clone)]
pub struct CommandGrant {
    /// The argv as granted (after `${vars.*}`); `argv[0]` as written.
    pub argv: Vec<String>,
    /// The program, absolute and canonical, as resolved when the runbook was checked.
    pub program: PathBuf,
    identity: ProgramIdentity,
}

impl std::fmt::Debug for CommandGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandGrant").field("argv", &self.argv).field("program", &self.program).finish()
    }
}

impl CommandGrant {
    /// The command line as the plan shows it: arguments that need it quoted.
    pub fn shown(&self) -> String {
        shown_argv(&self.argv)
    }
}

/// Which file a program is: device, inode and the sha256 of its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ProgramIdentity {
    dev: u64,
    ino: u64,
    sha256: [u8; 32],
}

/// The commands capability: `commands = [["program", "arg", …], …]`.
#[derive(Debug)]
pub struct Commands;

impl Capability for Commands {
    const KEY: &'static str = "commands";
    type Grant = Vec<CommandGrant>;

    fn check(def: &GrantsDef, cx: &CheckCx<'_>, problems: &mut Vec<Diagnostic>) -> Vec<CommandGrant> {
        let path = (cx.env)("PATH");
        check(&def.commands, cx.vars, path.as_deref(), cx.parsed, problems)
    }

    /// A plugin that does not import `backout:step/exec` cannot use the
    /// grant: a warning. A plugin that imports it without a grant is not an
    /// error here; its `plan` asks [`check_argv`] for what it will run.
    fn match_needs(plugin: &str, needs: &Needs, grant: &Vec<CommandGrant>) -> Vec<Finding> {
        if grant.is_empty() || needs.commands {
            return Vec::new();
        }
        vec![Finding::Unneeded {
            message: format!(
                "`{plugin}` does not run host commands (it does not import `backout:step/exec`), so the step's `commands` grant is unused"
            ),
        }]
    }

    /// Every phase but `describe` may ask whether a command is granted;
    /// starting one is decided per call by [`run`] (`Effect::Exec`).
    fn instantiate(grant: &Vec<CommandGrant>, phase: Phase, sandbox: &mut Sandbox) -> Result<(), Denied> {
        if phase != Phase::Describe {
            sandbox.commands.clone_from(grant);
        }
        Ok(())
    }

    fn describe(grant: &Vec<CommandGrant>) -> Vec<String> {
        grant.iter().map(|c| format!("command {}  ({})", c.shown(), c.program.display())).collect()
    }
}

/// Checks one step's command grants: each argv rendered (`${vars.*}` only),
/// its program resolved and checked (see the module docs).
pub fn check(
    defs: &[Spanned<Vec<String>>],
    vars: &BTreeMap<String, String>,
    path_var: Option<&str>,
    parsed: &Parsed,
    problems: &mut Vec<Diagnostic>,
) -> Vec<CommandGrant> {
    let mut grants: Vec<CommandGrant> = Vec::new();
    for def in defs {
        let at = parsed.locate(&def.span());
        let argv: Result<Vec<String>, String> = def.get_ref().iter().map(|a| super::render_grant(a, vars)).collect();
        let argv = match argv.and_then(|argv| validate_argv(&argv).map(|()| argv)) {
            Ok(argv) => argv,
            Err(e) => {
                problems.push(Diagnostic::error(format!("command grant: {e}")).at(at));
                continue;
            }
        };
        if grants.iter().any(|g| g.argv == argv) {
            problems.push(Diagnostic::error(format!("command {} is granted twice", shown_argv(&argv))).at(at));
            continue;
        }
        match resolve_program(&argv[0], path_var).and_then(|program| {
            check_program(&program)?;
            let identity = identify(&program)?;
            Ok((program, identity))
        }) {
            Ok((program, identity)) => grants.push(CommandGrant { argv, program, identity }),
            Err(e) => problems.push(
                Diagnostic::error(format!("command {}: {e}", shown_argv(&argv)))
                    .at(at)
                    .hint("grant a program by its absolute path, owned by root (or you) and writable by no one else"),
            ),
        }
    }
    grants
}

fn validate_argv(argv: &[String]) -> Result<(), String> {
    if argv.is_empty() || argv[0].is_empty() {
        return Err("a command needs at least a program: `[\"systemctl\", \"stop\", \"app\"]`".into());
    }
    if argv.len() > MAX_ARGS {
        return Err(format!("{} arguments; at most {MAX_ARGS}", argv.len()));
    }
    if let Some(arg) = argv.iter().find(|a| a.contains('\0') || a.len() > MAX_ARG_BYTES) {
        return Err(format!("argument {arg:?} holds a NUL byte or is longer than {MAX_ARG_BYTES} bytes"));
    }
    Ok(())
}

/// `argv[0]` to an absolute, canonical path: an absolute path as it is, a
/// bare name through `PATH` (absolute entries only). A relative path with a
/// `/` is refused: it would depend on where backout was started.
fn resolve_program(program: &str, path_var: Option<&str>) -> Result<PathBuf, String> {
    let found = if program.starts_with('/') {
        PathBuf::from(program)
    } else if program.contains('/') {
        return Err(format!("`{program}` is a relative path; give the program's absolute path"));
    } else {
        let dirs = path_var.unwrap_or("");
        dirs.split(':')
            .filter(|d| d.starts_with('/'))
            .map(|d| Path::new(d).join(program))
            .find(|candidate| candidate.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
            .ok_or_else(|| {
                format!("`{program}` is not an executable file in any absolute directory of PATH ({dirs})")
            })?
    };
    std::fs::canonicalize(&found).map_err(|e| format!("`{}`: {e}", found.display()))
}

/// A program nobody else can swap: a regular, executable file, owned by root
/// or the user running backout and writable by no one else, in directories
/// with the same properties (a sticky directory's entries can be replaced
/// only by their owners, so it passes when owned by root or this user).
fn check_program(program: &Path) -> Result<(), String> {
    let me = rustix::process::geteuid().as_raw();
    let trusted_owner = |uid: u32| uid == 0 || uid == me;
    let meta = std::fs::symlink_metadata(program).map_err(|e| format!("`{}`: {e}", program.display()))?;
    if !meta.is_file() {
        return Err(format!("`{}` is not a regular file", program.display()));
    }
    if meta.mode() & 0o111 == 0 {
        return Err(format!("`{}` is not executable", program.display()));
    }
    if !trusted_owner(meta.uid()) {
        return Err(format!("`{}` is owned by uid {}, not by root or you", program.display(), meta.uid()));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!("`{}` is writable by others (mode {:o})", program.display(), meta.mode() & 0o7777));
    }
    for dir in program.ancestors().skip(1) {
        let meta = std::fs::metadata(dir).map_err(|e| format!("`{}`: {e}", dir.display()))?;
        let sticky = meta.mode() & 0o1000 != 0;
        if !trusted_owner(meta.uid()) {
            return Err(format!(
                "its directory `{}` is owned by uid {}, not by root or you",
                dir.display(),
                meta.uid()
            ));
        }
        if meta.mode() & 0o022 != 0 && !sticky {
            return Err(format!(
                "its directory `{}` is writable by others (mode {:o}): the program could be replaced",
                dir.display(),
                meta.mode() & 0o7777
            ));
        }
    }
    Ok(())
}

fn identify(program: &Path) -> Result<ProgramIdentity, String> {
    let mut file = std::fs::File::open(program).map_err(|e| format!("`{}`: {e}", program.display()))?;
    let meta = file.metadata().map_err(|e| format!("`{}`: {e}", program.display()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|e| format!("`{}`: {e}", program.display()))?;
    Ok(ProgramIdentity { dev: meta.dev(), ino: meta.ino(), sha256: hasher.finalize().into() })
}

/// `["a", "b c"]` → `a "b c"`: arguments with blanks, quotes or nothing in
/// them quoted, control characters escaped, so two different grants never
/// look the same.
pub fn shown_argv(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if a.is_empty()
                || a.chars().any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '\'' || c == '\\')
            {
                format!("{a:?}")
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The grant `argv` matches exactly, or why there is none.
pub fn find<'a>(grants: &'a [CommandGrant], argv: &[String]) -> Result<&'a CommandGrant, Denied> {
    grants.iter().find(|g| g.argv == argv).ok_or_else(|| Denied::NotGranted {
        capability: Commands::KEY,
        requested: format!("command {}", shown_argv(argv)),
        granted: if grants.is_empty() {
            "none".into()
        } else {
            grants.iter().map(|g| g.shown()).collect::<Vec<_>>().join("; ")
        },
    })
}

/// `exec.check`: whether `argv` may run (in `run`), and the program that
/// would start. Starts nothing.
pub fn check_argv(grants: &[CommandGrant], argv: &[String]) -> Result<PathBuf, Denied> {
    let grant = find(grants, argv)?;
    still_the_same(grant)?;
    Ok(grant.program.clone())
}

/// Refused unless the program is still the file the runbook check saw.
fn still_the_same(grant: &CommandGrant) -> Result<(), Denied> {
    let refused = |why: String| Denied::Refused {
        capability: Commands::KEY,
        requested: format!("command {}", grant.shown()),
        why,
    };
    let meta = std::fs::symlink_metadata(&grant.program)
        .map_err(|e| refused(format!("`{}` changed since plan: {e}; not started", grant.program.display())))?;
    if !meta.is_file() || meta.dev() != grant.identity.dev || meta.ino() != grant.identity.ino {
        return Err(refused(format!(
            "`{}` changed since plan (it is another file now); not started",
            grant.program.display()
        )));
    }
    let now = identify(&grant.program).map_err(refused)?;
    if now != grant.identity {
        return Err(refused(format!(
            "`{}` changed since plan (its contents differ); not started",
            grant.program.display()
        )));
    }
    Ok(())
}

/// How a command ended, as the plugin gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitInfo {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub truncated: bool,
    pub timed_out: bool,
    pub elapsed: Duration,
}

impl ExitInfo {
    /// `exit 0`, `killed by signal 9 at the deadline`.
    pub fn status(&self) -> String {
        match (self.code, self.signal) {
            _ if self.timed_out => "killed at the call's deadline".to_string(),
            (Some(code), _) => format!("exit {code}"),
            (None, Some(signal)) => format!("killed by signal {signal}"),
            (None, None) => "ended".to_string(),
        }
    }
}

/// What one command runs with besides its argv.
pub struct Launch<'a> {
    /// Host working directory (inside a grant, or a private empty one).
    pub cwd: &'a Path,
    /// The whole environment: the step's granted variables.
    pub env: &'a [(String, String)],
    /// When the call must end: the process group is killed then.
    pub deadline: Instant,
    /// Checked while waiting: the operator pressed Ctrl-C.
    pub stop: &'a (dyn Fn() -> bool + Sync),
    /// Masked in stdout and stderr.
    pub secrets: &'a [String],
}

impl std::fmt::Debug for Launch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Launch").field("cwd", &self.cwd).field("deadline", &self.deadline).finish_non_exhaustive()
    }
}

/// Why a command did not start, or failed to be waited for.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    Denied(#[from] Denied),
    #[error("{0}")]
    Failed(String),
}

/// `exec.run`: starts `argv` if the phase allows it and it is granted and
/// unchanged, waits for it within the deadline, returns how it ended.
pub fn run(grants: &[CommandGrant], phase: Phase, argv: &[String], launch: &Launch<'_>) -> Result<ExitInfo, ExecError> {
    phase.require(Effect::Exec, format!("command {}", shown_argv(argv)))?;
    let grant = find(grants, argv)?;
    still_the_same(grant)?;
    if Instant::now() >= launch.deadline {
        return Err(ExecError::Failed("the call's deadline has passed; not started".into()));
    }
    let started = Instant::now();
    let mut child = Command::new(&grant.program)
        .arg0(&grant.argv[0])
        .args(&grant.argv[1..])
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .current_dir(launch.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| ExecError::Failed(format!("failed to start `{}`: {e}", grant.program.display())))?;
    let pgid = child.id();
    let stdout = Capture::start(child.stdout.take());
    let stderr = Capture::start(child.stderr.take());
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => {
                kill_group(pgid);
                let _ = child.wait();
                return Err(ExecError::Failed(format!("failed to wait for `{}`: {e}", grant.program.display())));
            }
        }
        if Instant::now() >= launch.deadline || (launch.stop)() {
            timed_out = Instant::now() >= launch.deadline;
            kill_group(pgid);
            match child.wait() {
                Ok(status) => break status,
                Err(e) => return Err(ExecError::Failed(format!("failed to reap `{}`: {e}", grant.program.display()))),
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = started.elapsed();
    let (out, out_cut) = stdout.finish(PIPE_GRACE);
    let (err, err_cut) = stderr.finish(PIPE_GRACE);
    use std::os::unix::process::ExitStatusExt;
    Ok(ExitInfo {
        code: status.code(),
        signal: status.signal(),
        stdout: crate::redact::text(&out, launch.secrets),
        stderr: crate::redact::text(&err, launch.secrets),
        truncated: out_cut || err_cut,
        timed_out,
        elapsed,
    })
}

fn kill_group(pgid: u32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pgid as i32) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

/// One pipe read on its own thread: the first [`MAX_OUTPUT`] bytes kept,
/// the rest read and counted, so the command never blocks on a full pipe.
struct Capture {
    kept: Arc<Mutex<(Vec<u8>, bool)>>,
    done: std::sync::mpsc::Receiver<()>,
}

impl Capture {
    fn start(pipe: Option<impl Read + Send + 'static>) -> Self {
        let kept = Arc::new(Mutex::new((Vec::new(), false)));
        let (tx, done) = std::sync::mpsc::channel();
        if let Some(mut pipe) = pipe {
            let kept = kept.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let mut kept = kept.lock().unwrap_or_else(|e| e.into_inner());
                    let room = MAX_OUTPUT.saturating_sub(kept.0.len());
                    kept.0.extend_from_slice(&buf[..n.min(room)]);
                    kept.1 |= n > room;
                }
                let _ = tx.send(());
            });
        } else {
            let _ = tx.send(());
        }
        Capture { kept, done }
    }

    /// What was read, and whether it was cut (or the pipe was still open
    /// after `grace`: something the command started holds it).
    fn finish(self, grace: Duration) -> (String, bool) {
        let closed = self.done.recv_timeout(grace).is_ok();
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        (String::from_utf8_lossy(&kept.0).into_owned(), kept.1 || !closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(argv: &[&str]) -> CommandGrant {
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        let program = resolve_program(&argv[0], Some("/usr/bin:/bin")).unwrap();
        check_program(&program).unwrap();
        let identity = identify(&program).unwrap();
        CommandGrant { argv, program, identity }
    }

    fn launch<'a>(cwd: &'a Path, env: &'a [(String, String)], deadline: Instant) -> Launch<'a> {
        Launch { cwd, env, deadline, stop: &|| false, secrets: &[] }
    }

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn programs_resolve_once_to_absolute_paths_and_relative_ones_are_refused() {
        let sh = resolve_program("sh", Some("relative/bin:/usr/bin:/bin")).unwrap();
        assert!(sh.is_absolute() && sh.ends_with("sh") || sh.ends_with("dash") || sh.ends_with("bash"), "{sh:?}");
        assert!(resolve_program("./deploy.sh", Some("/bin")).unwrap_err().contains("relative path"));
        assert!(resolve_program("bin/deploy", Some("/bin")).unwrap_err().contains("relative path"));
        let missing = resolve_program("no-such-program-anywhere", Some("/usr/bin")).unwrap_err();
        assert!(missing.contains("not an executable file in any absolute directory of PATH"), "{missing}");
        assert!(resolve_program("sh", Some("bin:.")).is_err(), "relative PATH entries are skipped");
    }

    #[test]
    fn a_program_others_can_replace_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join("tool");
        std::fs::write(&program, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o757)).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = check_program(&program).unwrap_err();
        assert!(err.contains("is writable by others (mode 757)"), "{err}");
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        check_program(&program).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = check_program(&program).unwrap_err();
        assert!(err.contains("is writable by others (mode 777): the program could be replaced"), "{err}");
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(check_program(&program).unwrap_err().contains("is not executable"));
    }

    #[test]
    fn only_an_exact_argv_matches() {
        let grants = [grant(&["true", "--flag", "a b"])];
        assert!(find(&grants, &argv(&["true", "--flag", "a b"])).is_ok());
        for other in
            [&["true", "--flag", "a  b"][..], &["true", "--flag"], &["true", "--flag", "a b", "x"], &["/bin/true"]]
        {
            let e = find(&grants, &argv(other)).unwrap_err().to_string();
            assert!(e.contains("is not granted (the step's `commands` grant: true --flag \"a b\")"), "{e}");
        }
        assert_eq!(shown_argv(&argv(&["echo", "", "x\ny"])), "echo \"\" \"x\\ny\"");
    }

    #[test]
    fn a_command_runs_with_only_the_granted_environment_and_bounded_output() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("probe");
        std::fs::write(&script, "#!/bin/sh\nenv\npwd\nhead -c 200000 /dev/zero | tr '\\0' x\necho oops >&2\nexit 3\n")
            .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let grants = [grant(&[script.to_str().unwrap()])];
        let env = [("TOKEN".to_string(), "hunter22".to_string())];
        let mut l = launch(dir.path(), &env, Instant::now() + Duration::from_secs(30));
        let secrets = ["hunter22".to_string()];
        l.secrets = &secrets;
        let exit = run(&grants, Phase::Run, &argv(&[script.to_str().unwrap()]), &l).unwrap();
        assert_eq!((exit.code, exit.signal, exit.timed_out), (Some(3), None, false));
        let head = &exit.stdout[..exit.stdout.find("xxx").unwrap()];
        assert!(head.contains("TOKEN=***\n"), "the granted variable, masked: {head}");
        assert!(!head.contains("PATH=") && !head.contains("HOME=") && !head.contains("hunter22"), "{head}");
        assert!(head.ends_with(&format!("{}\n", dir.path().display())), "in the working directory: {head}");
        assert!(
            exit.stdout.len() <= MAX_OUTPUT && exit.stdout.len() > MAX_OUTPUT - 100,
            "kept up to the bound, then masked"
        );
        assert!(exit.truncated);
        assert_eq!(exit.stderr, "oops\n");
    }

    #[test]
    fn plan_and_verify_never_start_a_command() {
        let grants = [grant(&["true"])];
        let dir = tempfile::tempdir().unwrap();
        for phase in [Phase::Plan, Phase::Verify, Phase::Describe] {
            let e = run(
                &grants,
                phase,
                &argv(&["true"]),
                &launch(dir.path(), &[], Instant::now() + Duration::from_secs(5)),
            )
            .unwrap_err()
            .to_string();
            assert!(e.contains("`command true` is refused during"), "{e}");
        }
        assert!(check_argv(&grants, &argv(&["true"])).unwrap().is_absolute());
    }

    #[test]
    fn the_deadline_kills_the_whole_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("survived");
        let script = dir.path().join("slow");
        std::fs::write(&script, format!("#!/bin/sh\n(sleep 2; touch {}) &\nsleep 60\n", marker.display())).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let grants = [grant(&[script.to_str().unwrap()])];
        let started = Instant::now();
        let exit = run(
            &grants,
            Phase::Undo,
            &argv(&[script.to_str().unwrap()]),
            &launch(dir.path(), &[], Instant::now() + Duration::from_millis(300)),
        )
        .unwrap();
        assert!(exit.timed_out && exit.signal == Some(9), "{exit:?}");
        assert!(started.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(2500));
        assert!(!marker.exists(), "the background child was killed with its group");
    }

    #[test]
    fn a_program_replaced_after_the_check_is_not_started() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("ran");
        let script = dir.path().join("tool");
        std::fs::write(&script, format!("#!/bin/sh\ntouch {}\n", marker.display())).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let grants = [grant(&[script.to_str().unwrap()])];
        let l = launch(dir.path(), &[], Instant::now() + Duration::from_secs(10));
        // Rewritten in place (same inode), then replaced by another file.
        std::fs::write(&script, format!("#!/bin/sh\ntouch {}\n# changed\n", marker.display())).unwrap();
        let e = run(&grants, Phase::Run, &argv(&[script.to_str().unwrap()]), &l).unwrap_err().to_string();
        assert!(e.contains("changed since plan (its contents differ); not started"), "{e}");
        let other = dir.path().join("other");
        std::fs::copy(&script, &other).unwrap();
        std::fs::rename(&other, &script).unwrap();
        let e = run(&grants, Phase::Run, &argv(&[script.to_str().unwrap()]), &l).unwrap_err().to_string();
        assert!(e.contains("changed since plan (it is another file now); not started"), "{e}");
        assert!(!marker.exists(), "never started");
    }
}
