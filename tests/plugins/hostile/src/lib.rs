//! A test-only plugin that attacks its sandbox. Never publish it.
//!
//! Config `{ "attack": "<name>", ...parameters }` picks one attack. `run`
//! performs it; `plan` performs it too when `"in_plan": true` (to prove plan
//! is read-only whatever the plugin does). An attack the sandbox stops makes
//! the call fail with `failed("blocked: <error>")`; one that gets through
//! succeeds with the summary `ESCAPED: …`, which the tests treat as a
//! security failure. Resource attacks (spin, allocate, sleep, floods) never
//! return on their own: the host must stop them. `then = { attack = … }`
//! chains a second attack after a first that succeeded (make a symlink,
//! then read through it), all in one call.

#![allow(clippy::print_stdout, clippy::print_stderr)] // floods stdout and writes escapes on purpose

use std::io::Write;

use backout_sdk::{Action, Info, Outcome, Step, StepError, Value, export_step, json, log};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    attack: String,
    #[serde(default)]
    path: String,
    /// The command line for `exec` and `exec-check` (`path`, if set, is its
    /// working directory).
    #[serde(default)]
    argv: Vec<String>,
    #[serde(default)]
    target: String,
    #[serde(default)]
    contents: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    in_plan: bool,
    #[serde(default)]
    count: u64,
    /// HTTP method for `http`, `fetch` and `follow` (default GET).
    #[serde(default)]
    method: String,
    /// Bytes per item for `fields` (the size of each header value).
    #[serde(default)]
    size: u64,
    /// Milliseconds to wait between progress updates for `narrate`.
    #[serde(default)]
    pause_ms: u64,
    /// Another attack to make once this one has succeeded: a preparation
    /// (`symlink`, `hardlink`) followed by what it prepares for.
    #[serde(default)]
    then: Option<Box<Config>>,
}

/// The step; `Config.attack` picks what it does.
#[derive(Debug)]
pub struct Hostile;

fn blocked(e: impl std::fmt::Display) -> StepError {
    StepError::failed(format!("blocked: {e}"))
}

fn escaped(what: String) -> Result<Outcome<Value>, StepError> {
    Ok(Outcome::new(format!("ESCAPED: {what}"), json!({ "escaped": what })))
}

/// Text that would take over an operator's terminal if shown raw: erase the
/// line and move up, write the clipboard (OSC 52), colour a forged `ok`
/// line, ring the bell, C1 CSI, a right-to-left override, and a newline
/// that starts a forged line.
const TERMINAL_TAKEOVER: &str =
    "\x1b[2K\r\x1b[1A\x1b]52;c;cHduZWQ=\x07\x1b[32mok\x1b[0m\x08\x7f\u{9b}31m\u{202e}gnp.exe\nok       forged  done";

/// Makes the attack `c`, then the one in `c.then` if this one succeeded.
fn attack(c: &Config) -> Result<Outcome<Value>, StepError> {
    let outcome = one_attack(c)?;
    match &c.then {
        Some(next) => attack(next),
        None => Ok(outcome),
    }
}

fn one_attack(c: &Config) -> Result<Outcome<Value>, StepError> {
    match c.attack.as_str() {
        "read" => match std::fs::read_to_string(&c.path) {
            Ok(text) => escaped(format!("read {} ({} bytes): {}", c.path, text.len(), text.trim())),
            Err(e) => Err(blocked(e)),
        },
        "write" => match std::fs::write(&c.path, &c.contents) {
            Ok(()) => escaped(format!("wrote {}", c.path)),
            Err(e) => Err(blocked(e)),
        },
        "append" => match std::fs::OpenOptions::new()
            .append(true)
            .open(&c.path)
            .and_then(|mut f| f.write_all(c.contents.as_bytes()))
        {
            Ok(()) => escaped(format!("appended to {}", c.path)),
            Err(e) => Err(blocked(e)),
        },
        "delete" => match std::fs::remove_file(&c.path) {
            Ok(()) => escaped(format!("deleted {}", c.path)),
            Err(e) => Err(blocked(e)),
        },
        "chmod" => {
            match backout_sdk::fs::copy_permissions(std::path::Path::new(&c.path), std::path::Path::new(&c.target)) {
                Ok(()) => escaped(format!("copied permissions of {} to {}", c.path, c.target)),
                Err(e) => Err(blocked(e)),
            }
        }
        "list" => match std::fs::read_dir(&c.path) {
            Ok(entries) => {
                let names: Vec<String> =
                    entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
                escaped(format!("listed {}: {}", c.path, names.join(",")))
            }
            Err(e) => Err(blocked(e)),
        },
        "env" => match std::env::var(&c.name) {
            Ok(v) => escaped(format!("env {}={v}", c.name)),
            Err(e) => Err(blocked(format!("env {}: {e}", c.name))),
        },
        "env-all" => {
            let vars: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
            Ok(Outcome::new(format!("saw {} variables", vars.len()), json!({ "names": vars })))
        }
        "connect" => match std::net::TcpStream::connect(&c.target) {
            Ok(_) => escaped(format!("connected to {}", c.target)),
            Err(e) => Err(blocked(e)),
        },
        // Network: `http` is a request the test expects the host to deny;
        // `fetch` is a legitimate one; `follow` follows redirects by hand,
        // each hop a new request.
        "http" => match fetch(c, &c.target) {
            Ok(r) => escaped(format!("HTTP {} from {}", r.status, c.target)),
            Err(e) => Err(blocked(e)),
        },
        "fetch" => {
            let r = fetch(c, &c.target).map_err(|e| StepError::failed(format!("fetch {}: {e}", c.target)))?;
            let body = String::from_utf8_lossy(&r.body).into_owned();
            Ok(Outcome::new(format!("fetched HTTP {}", r.status), json!({ "status": r.status, "body": body })))
        }
        "follow" => {
            let mut url = c.target.clone();
            for _ in 0..5 {
                let r = fetch(c, &url).map_err(|e| blocked(format!("{url}: {e}")))?;
                match r.location {
                    Some(next) if (300..400).contains(&r.status) => url = next,
                    _ => return escaped(format!("followed to {url}: HTTP {}", r.status)),
                }
            }
            Err(StepError::failed("too many redirects"))
        }
        "spin" => {
            let mut x: u64 = 0;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        "sleep" => {
            // Parks inside a host call (wasi:clocks + poll): epochs cannot
            // interrupt it; only the host's async timeout can.
            std::thread::sleep(std::time::Duration::from_secs(3600));
            escaped("slept an hour".into())
        }
        "allocate" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        "log-flood" => {
            for i in 0..c.count {
                log::info(format!("flood line {i}"));
            }
            Ok(Outcome::new("flooded the log", json!({})))
        }
        "stdout-flood" => {
            let line = "x".repeat(1023) + "\n";
            let mut out = std::io::stdout();
            for _ in 0..c.count {
                let _ = out.write_all(line.as_bytes());
            }
            println!("last line");
            Ok(Outcome::new("flooded stdout", json!({})))
        }
        "huge-outputs" => {
            let big = "y".repeat(c.count as usize);
            Ok(Outcome::new("returned huge outputs", json!({ "big": big })))
        }
        "progress" => {
            for done in 0..=c.count {
                log::progress(done, Some(c.count), "items");
            }
            Ok(Outcome::new(format!("reported progress to {}", c.count), json!({})))
        }
        // Prepares an attack on a later step: moves the directory `path`
        // aside and puts a symbolic link to `target` in its place (inside a
        // read-write grant, which is allowed: the attack is a later step
        // whose grant names `path` being given `target` instead).
        "swap-for-symlink" => {
            let aside = format!("{}.orig", c.path);
            std::fs::rename(&c.path, &aside).map_err(|e| blocked(format!("rename {}: {e}", c.path)))?;
            symlink(&c.target, &c.path).map_err(blocked)?;
            Ok(Outcome::new(format!("{} is now a symlink to {}", c.path, c.target), json!({})))
        }
        // Not an attack: talks to the operator the way a long restore does,
        // for the tests of the live view. One line at each log level, then
        // `count` progress updates of `size` bytes each, `pause_ms` apart.
        "narrate" => {
            log::trace("trace: every detail");
            log::debug("debug: a detail for -v");
            log::info("info: copying the backup");
            log::warn("warn: the backup is older than a day");
            let size = c.size.max(1);
            for done in 0..=c.count {
                log::progress(done * size, Some(c.count * size), "bytes");
                if done < c.count {
                    std::thread::sleep(std::time::Duration::from_millis(c.pause_ms));
                }
            }
            Ok(Outcome::new(format!("copied {} bytes", c.count * size), json!({ "bytes": c.count * size })))
        }
        // The same finished progress, again and again.
        "progress-flood" => {
            for _ in 0..c.count {
                log::progress(1, Some(1), "items");
            }
            Ok(Outcome::new(format!("reported finished progress {} times", c.count), json!({})))
        }
        // Preparations (`symlink`, `hardlink`, `temp-file`): they succeed
        // quietly and leave something behind for `then` or a later step.
        "symlink" => {
            symlink(&c.target, &c.path).map_err(blocked)?;
            Ok(Outcome::new(format!("made {} a symlink to {}", c.path, c.target), json!({})))
        }
        // A hard link at `target` to the file `path`, through `link-at`
        // across two preopens (std has no hard links on wasi).
        "hardlink" => {
            let (from_dir, from) = preopen_for(&c.path).map_err(blocked)?;
            let (to_dir, to) = preopen_for(&c.target).map_err(blocked)?;
            from_dir
                .link_at(wasip2::filesystem::types::PathFlags::empty(), &from, &to_dir, &to)
                .map_err(|e| blocked(format!("link {} to {}: {e:?}", c.target, c.path)))?;
            Ok(Outcome::new(format!("linked {} to {}", c.target, c.path), json!({})))
        }
        // Changing what a read-only grant holds without writing a byte.
        "rename" => match std::fs::rename(&c.path, &c.target) {
            Ok(()) => escaped(format!("renamed {} to {}", c.path, c.target)),
            Err(e) => Err(blocked(format!("rename {} to {}: {e}", c.path, c.target))),
        },
        "truncate" => match std::fs::OpenOptions::new().write(true).truncate(true).open(&c.path) {
            Ok(_) => escaped(format!("truncated {}", c.path)),
            Err(e) => Err(blocked(format!("truncate {}: {e}", c.path))),
        },
        // Opened for reading, then shortened (`set-size` on the descriptor).
        "set-len" => match std::fs::File::open(&c.path).and_then(|f| f.set_len(0)) {
            Ok(()) => escaped(format!("set the length of {} to 0", c.path)),
            Err(e) => Err(blocked(format!("set-len {}: {e}", c.path))),
        },
        "set-permissions" => {
            let result = std::fs::metadata(&c.path).and_then(|m| {
                let mut perms = m.permissions();
                perms.set_readonly(!perms.readonly());
                std::fs::set_permissions(&c.path, perms)
            });
            match result {
                Ok(()) => escaped(format!("changed the permissions of {}", c.path)),
                Err(e) => Err(blocked(format!("set-permissions {}: {e}", c.path))),
            }
        }
        // Backdates a file's times to 1970 (`set-times-at`).
        "set-times" => {
            use wasip2::clocks::wall_clock::Datetime;
            use wasip2::filesystem::types::{NewTimestamp, PathFlags};
            let (dir, rel) = preopen_for(&c.path).map_err(blocked)?;
            let epoch = NewTimestamp::Timestamp(Datetime { seconds: 0, nanoseconds: 0 });
            match dir.set_times_at(PathFlags::empty(), &rel, epoch, epoch) {
                Ok(()) => escaped(format!("set the times of {}", c.path)),
                Err(e) => Err(blocked(format!("set-times {}: {e:?}", c.path))),
            }
        }
        "mkdir" => match std::fs::create_dir(&c.path) {
            Ok(()) => escaped(format!("made directory {}", c.path)),
            Err(e) => Err(blocked(format!("mkdir {}: {e}", c.path))),
        },
        // Declares `path` as a temporary file (`backout:step/host.temporary-file`).
        "temp-file" => {
            backout_sdk::fs::temporary_file(std::path::Path::new(&c.path)).map_err(blocked)?;
            Ok(Outcome::new(format!("declared {} as a temporary file", c.path), json!({})))
        }
        // A name lookup of `target` by the guest itself (`wasi:sockets/ip-name-lookup`).
        "lookup" => {
            use wasip2::sockets::network::ErrorCode;
            let network = wasip2::sockets::instance_network::instance_network();
            let stream = wasip2::sockets::ip_name_lookup::resolve_addresses(&network, &c.target)
                .map_err(|e| blocked(format!("resolve {}: {e:?}", c.target)))?;
            let mut found = Vec::new();
            loop {
                match stream.resolve_next_address() {
                    Ok(Some(address)) => found.push(format!("{address:?}")),
                    Ok(None) => break,
                    Err(ErrorCode::WouldBlock) => stream.subscribe().block(),
                    Err(e) => return Err(blocked(format!("resolve {}: {e:?}", c.target))),
                }
            }
            escaped(format!("resolved {} to {}", c.target, found.join(", ")))
        }
        // `count` random bytes in one request (`name = "insecure"` for the insecure generator).
        "random" => {
            let bytes = if c.name == "insecure" {
                wasip2::random::insecure::get_insecure_random_bytes(c.count)
            } else {
                wasip2::random::random::get_random_bytes(c.count)
            };
            escaped(format!("received {} random bytes", bytes.len()))
        }
        // Recursion `count` calls deep (the guest's own stack).
        "recurse" => Ok(Outcome::new(format!("recursed to depth {}", recurse(c.count)), json!({}))),
        // Outputs nested `count` arrays deep, for the host to parse.
        "deep-outputs" => {
            let mut nested = json!([]);
            for _ in 0..c.count {
                nested = Value::Array(vec![nested]);
            }
            Ok(Outcome::new(format!("returned outputs {} levels deep", c.count), json!({ "deep": nested })))
        }
        // `count` `wasi:http` `fields`, each holding a header value of
        // `size` bytes, all kept alive: host memory the guest never sees.
        "fields" => {
            use wasip2::http::types::Fields;
            let entry = [("x-hoard".to_string(), vec![b'a'; c.size as usize])];
            let mut held = Vec::new();
            for i in 0..c.count {
                match Fields::from_list(&entry) {
                    Ok(fields) => held.push(fields),
                    Err(e) => return Err(blocked(format!("fields #{i}: {e:?}"))),
                }
            }
            escaped(format!("the host holds {} fields of {} bytes each for me", held.len(), c.size))
        }
        // `count` open descriptors of `path`, all kept open; then a
        // checkpoint, which the host must still be able to journal.
        "open-files" => {
            let mut held = Vec::new();
            for i in 0..c.count {
                match std::fs::File::open(&c.path) {
                    Ok(f) => held.push(f),
                    Err(e) => {
                        let journaled = backout_sdk::checkpoint(&json!({ "held": i }));
                        return Err(blocked(format!(
                            "open #{i} of {}: {e} (checkpoint with {i} files open: {})",
                            c.path,
                            if journaled.is_ok() { "journaled" } else { "refused" }
                        )));
                    }
                }
            }
            escaped(format!("held {} open descriptors of {}", held.len(), c.path))
        }
        // One log message of `count` bytes.
        "huge-log" => {
            let message = "z".repeat(c.count as usize);
            log::info(&message);
            Ok(Outcome::new(format!("logged a message of {} bytes", message.len()), json!({})))
        }
        // Terminal control sequences in every piece of text the host shows:
        // log lines, progress units, stdout, stderr, then the failure
        // message (`count = 0`) or the summary and output keys and values.
        "escapes" => {
            log::info(format!("log {TERMINAL_TAKEOVER}"));
            log::progress(1, Some(2), TERMINAL_TAKEOVER);
            println!("stdout {TERMINAL_TAKEOVER}");
            eprintln!("stderr {TERMINAL_TAKEOVER}");
            if c.count == 0 {
                return Err(StepError::failed(format!("failure {TERMINAL_TAKEOVER}")));
            }
            let mut outputs = serde_json::Map::new();
            outputs.insert(format!("key {TERMINAL_TAKEOVER}"), json!(format!("value {TERMINAL_TAKEOVER}")));
            outputs.insert("path".into(), json!(format!("/data/{TERMINAL_TAKEOVER}")));
            Ok(Outcome::new(format!("summary {TERMINAL_TAKEOVER}"), Value::Object(outputs)))
        }
        "exec" => {
            let argv: Vec<&str> = c.argv.iter().map(String::as_str).collect();
            let cwd = (!c.path.is_empty()).then_some(c.path.as_str());
            let exit = backout_sdk::exec::run(&argv, cwd).map_err(blocked)?;
            Ok(Outcome::new(
                format!("ran: {}", exit.describe()),
                json!({
                    "code": exit.code, "signal": exit.signal, "stdout": exit.stdout, "stderr": exit.stderr,
                    "truncated": exit.truncated, "timed_out": exit.timed_out,
                }),
            ))
        }
        // The host's file operations, called raw (no SDK checks first).
        "copy-file" => {
            let n = backout_sdk::bindings::backout::step::files::copy_file(&c.path, &c.target).map_err(blocked)?;
            Ok(Outcome::new(format!("copied {n} bytes"), json!({ "bytes": n })))
        }
        "sha256-file" => {
            let digest = backout_sdk::bindings::backout::step::files::sha256_file(&c.path).map_err(blocked)?;
            Ok(Outcome::new(format!("sha256 {digest}"), json!({ "sha256": digest })))
        }
        "exec-check" => {
            let argv: Vec<&str> = c.argv.iter().map(String::as_str).collect();
            let program = backout_sdk::exec::check(&argv).map_err(blocked)?;
            Ok(Outcome::new(format!("granted: {program}"), json!({ "program": program })))
        }
        "panic" => panic!("hostile plugin panicked on purpose"),
        // A config refused only at run time, naming its keys: `contents`
        // (in the runbook) and `nowhere` (a key the runbook does not have).
        "invalid-config" => {
            let mut problems = backout_sdk::Problems::new();
            problems.at("/contents", format!("`contents` `{}` is refused at run time", c.contents));
            problems.at("/nowhere", "`nowhere` is missing");
            Err(StepError::from(problems))
        }
        "echo" => Ok(Outcome::new(format!("echo {}", c.contents), json!({ "value": c.contents, "path": c.path }))),
        other => Err(StepError::invalid_config(format!("unknown attack `{other}`"))),
    }
}

/// `symlinkat` through `wasi:filesystem` (std has no stable symlink on
/// wasi): `link` is a guest path inside a preopen, `target` the link's text.
fn symlink(target: &str, link: &str) -> Result<(), String> {
    let (dir, rel) = preopen_for(link)?;
    dir.symlink_at(target, &rel).map_err(|e| format!("symlink {link}: {e:?}"))
}

/// The preopened directory a guest path is in, and the rest of the path,
/// passed on exactly as written (`.`, `..`, `//` and all).
fn preopen_for(path: &str) -> Result<(wasip2::filesystem::types::Descriptor, String), String> {
    for (dir, root) in wasip2::filesystem::preopens::get_directories() {
        let prefix = format!("{}/", root.trim_end_matches('/'));
        if let Some(rel) = path.strip_prefix(&prefix) {
            return Ok((dir, rel.to_string()));
        }
    }
    Err(format!("{path}: not inside a preopened directory"))
}

/// Calls itself `depth` times, each frame holding a buffer the optimizer
/// cannot remove.
fn recurse(depth: u64) -> u64 {
    if depth == 0 {
        return 0;
    }
    let frame = std::hint::black_box([depth as u8; 512]);
    std::hint::black_box(recurse(depth - 1)) + u64::from(frame[0] & 1)
}

/// A response: status, `location` header, body.
struct Fetched {
    status: u16,
    location: Option<String>,
    body: Vec<u8>,
}

/// One request through raw `wasi:http` bindings, not the SDK: the authority
/// goes to the host exactly as the test wrote it (`127.1:80`,
/// `user@host`), so the tests prove the host's checks, not the SDK's.
fn fetch(c: &Config, url: &str) -> Result<Fetched, String> {
    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{Fields, Method, OutgoingBody, OutgoingRequest, Scheme};

    let (scheme, rest) = url.split_once("://").ok_or("not a URL")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let request = OutgoingRequest::new(Fields::new());
    let method = match c.method.as_str() {
        "" | "GET" => Method::Get,
        "POST" => Method::Post,
        "DELETE" => Method::Delete,
        other => Method::Other(other.to_string()),
    };
    request.set_method(&method).map_err(|()| "bad method")?;
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_string()),
    };
    request.set_scheme(Some(&scheme)).map_err(|()| "bad scheme")?;
    request.set_authority(Some(authority)).map_err(|()| format!("bad authority `{authority}`"))?;
    request.set_path_with_query(Some(path)).map_err(|()| "bad path")?;
    let body = request.body().map_err(|()| "no body")?;
    let future = outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
    if !c.contents.is_empty() {
        let out = body.write().map_err(|()| "no body stream")?;
        out.blocking_write_and_flush(c.contents.as_bytes()).map_err(|e| format!("writing the body: {e:?}"))?;
    }
    OutgoingBody::finish(body, None).map_err(|e| format!("{e:?}"))?;
    let pollable = future.subscribe();
    pollable.block();
    drop(pollable);
    let response = match future.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(format!("{code:?}")),
        Some(Err(())) | None => return Err("no response".into()),
    };
    let status = response.status();
    let headers = response.headers();
    let location = headers.get("location").first().map(|v| String::from_utf8_lossy(v).into_owned());
    drop(headers);
    let incoming = response.consume().map_err(|()| "no body")?;
    let stream = incoming.stream().map_err(|()| "no stream")?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(wasip2::io::streams::StreamError::Closed) => break,
            // Say why: the host's reason (`max_received` used up, a read timeout).
            Err(wasip2::io::streams::StreamError::LastOperationFailed(e)) => {
                return Err(match wasip2::http::types::http_error_code(&e) {
                    Some(code) => format!("reading the body: {code:?}"),
                    None => format!("reading the body: {}", e.to_debug_string()),
                });
            }
        }
    }
    Ok(Fetched { status, location, body: bytes })
}

impl Step for Hostile {
    type Config = Config;
    type Outputs = Value;

    fn describe() -> Info {
        Info::new("hostile", env!("CARGO_PKG_VERSION"), "attacks its own sandbox (test-only)")
    }

    fn plan(c: Config) -> Result<Vec<Action>, StepError> {
        if !c.in_plan {
            return Ok(vec![Action::new(format!("attack: {}", c.attack))]);
        }
        // Report, never fail: the test checks the files on disk.
        let result = match attack(&c) {
            Ok(o) => o.summary,
            Err(e) => e.message().to_string(),
        };
        Ok(vec![Action::new(format!("plan-time attack {}: {result}", c.attack))])
    }

    fn run(c: Config) -> Result<Outcome<Value>, StepError> {
        attack(&c)
    }

    fn verify(_c: Config, _o: Value) -> Result<(), StepError> {
        Ok(())
    }

    fn undo(_c: Config, o: Value) -> Result<Outcome<Value>, StepError> {
        Ok(Outcome::new("nothing to undo", o))
    }
}

export_step!(Hostile);
