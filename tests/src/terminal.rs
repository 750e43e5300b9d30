//! Runs `backout` on a pseudo-terminal of a fixed size and reads what an
//! operator would see: the byte stream goes through a terminal emulator
//! (`vt100`), so spinners that redraw themselves and lines printed above a
//! bar end up as the screen shows them.
//!
//! The pty comes from util-linux `script` (as in [`crate::cli::Sandbox::run_on_terminal`]);
//! `stty` sets its size before backout starts, so the live view lays itself
//! out for exactly `cols` columns.

use std::io::Read;
use std::process::Stdio;

use crate::cli::Sandbox;

/// What one run on the terminal showed.
#[derive(Debug)]
pub struct TerminalRun {
    pub code: i32,
    /// Every byte backout wrote to the terminal (stdout and stderr together).
    pub raw: Vec<u8>,
    /// The screen when backout exited.
    pub screen: String,
    /// The screen at the first moment `snapshot_when` held, if it ever did.
    pub snapshot: Option<String>,
}

impl TerminalRun {
    /// The raw stream as text, for assertion messages and escape-code checks.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }

    /// Whether backout wrote any SGR (colour) escape sequence: `ESC [ … m`.
    pub fn has_colour(&self) -> bool {
        let raw = &self.raw;
        (0..raw.len()).any(|i| {
            raw[i] == 0x1b
                && raw.get(i + 1) == Some(&b'[')
                && raw[i + 2..]
                    .iter()
                    .position(|b| !(b.is_ascii_digit() || *b == b';'))
                    .is_some_and(|end| raw[i + 2 + end] == b'm')
        })
    }
}

impl Sandbox {
    /// Runs `backout ARGS` on a `rows`×`cols` terminal with `env` added (and
    /// `NO_COLOR` removed unless `env` sets it), stdin closed. The screen is
    /// kept when `snapshot_when` first holds for it (checked after every
    /// read), and at the end.
    pub fn run_on_sized_terminal(
        &self,
        args: &[&str],
        env: &[(&str, &str)],
        (rows, cols): (u16, u16),
        snapshot_when: impl Fn(&str) -> bool,
    ) -> TerminalRun {
        let inner = self.command();
        let quote = |a: &str| format!("'{}'", a.replace('\'', r"'\''"));
        let line = std::iter::once(inner.get_program().to_str().expect("utf-8 path"))
            .chain(args.iter().copied())
            .map(quote)
            .collect::<Vec<_>>()
            .join(" ");
        let line = format!("stty rows {rows} cols {cols} && exec {line}");
        let mut cmd = std::process::Command::new("script");
        cmd.args(["--quiet", "--return", "--command", &line, "/dev/null"]);
        for (key, value) in inner.get_envs() {
            match value {
                Some(v) => cmd.env(key, v),
                None => cmd.env_remove(key),
            };
        }
        cmd.env_remove("NO_COLOR").env("TERM", "xterm-256color").env("SHELL", "/bin/sh");
        for (key, value) in env {
            cmd.env(key, value);
        }
        let mut child = cmd
            .current_dir(self.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run script");
        drop(child.stdin.take());
        let mut stdout = child.stdout.take().expect("stdout");
        let mut parser = vt100::Parser::new(rows, cols, 0);
        let (mut raw, mut snapshot) = (Vec::new(), None);
        let mut buf = [0u8; 4096];
        loop {
            let n = stdout.read(&mut buf).unwrap_or(0);
            if n == 0 {
                break;
            }
            raw.extend_from_slice(&buf[..n]);
            parser.process(&buf[..n]);
            if snapshot.is_none() {
                let screen = parser.screen().contents();
                if snapshot_when(&screen) {
                    snapshot = Some(screen);
                }
            }
        }
        let status = child.wait().expect("wait for script");
        TerminalRun { code: status.code().expect("exit code"), raw, screen: parser.screen().contents(), snapshot }
    }
}

/// The screen a `rows`×`cols` terminal shows after `raw`.
pub fn screen_of(raw: &[u8], (rows, cols): (u16, u16)) -> String {
    let mut parser = vt100::Parser::new(rows, cols, 0);
    parser.process(raw);
    parser.screen().contents()
}
