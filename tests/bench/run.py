#!/usr/bin/env python3
"""Side-by-side benchmarks of backout against the shell scripts it replaces.

Called by tests/bench.sh (which builds everything first):

  run.py --backout BIN --plugins DIR [--pairs N] [--size MiB] [--big MiB] [--work DIR]

Every row is measured in one run, the two sides alternating (shell first in
even pairs, backout first in odd ones) on fresh copies of the same files, so
the machine's state and noise hit both alike. Wall time is a median; peak RSS
is the largest resident set of the command and everything it waited for
(`wait4`). Prints a Markdown table (what the README's "Benchmarks" shows).
"""

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PLUGINS = {"env-toggle": "env_toggle.wasm", "sqlite-restore": "sqlite_restore.wasm", "smoke-test": "smoke_test.wasm"}


def measure(cmd, env=None):
    """(seconds, peak RSS in MiB) of one command, which must succeed."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"benchmark command failed: {' '.join(cmd)}\n{output.decode(errors='replace')}")
    return seconds, usage.ru_maxrss / 1024


def mib(pristine):
    """The backup database's size, as the table shows it."""
    size = os.path.getsize(os.path.join(pristine, "backups", "app.db")) / (1 << 20)
    return f"{size:.0f} MiB"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = os.path.realpath(args.work)
        os.makedirs(self.work, exist_ok=True)
        self.env = dict(
            os.environ,
            BACKOUT_REGISTRY=os.path.join(self.work, "registry"),
            BACKOUT_STATE_DIR=os.path.join(self.work, "state"),
            BACKOUT_CACHE_DIR=os.path.join(self.work, "cache"),
            XDG_CONFIG_HOME=os.path.join(self.work, "config"),
            NO_COLOR="1",
        )
        # Registry, journals and compile cache are made afresh each time (the
        # plugins may have been rebuilt); the generated data is kept.
        for sub in ("registry", "state", "cache", "config"):
            shutil.rmtree(os.path.join(self.work, sub), ignore_errors=True)
        for name, file in PLUGINS.items():
            self.backout("registry", "add", os.path.join(args.plugins, file))
        self.rows = []

    def backout(self, *argv):
        done = subprocess.run([self.args.backout, *argv], env=self.env, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"backout {' '.join(argv)} failed:\n{done.stderr}")

    def data(self, size):
        """A pristine copy of the files at `size` MiB (made once)."""
        pristine = os.path.join(self.work, f"pristine-{size}")
        if not os.path.exists(os.path.join(pristine, "data", "app.db")):
            print(f"making {size} MiB databases in {pristine} …", file=sys.stderr)
            subprocess.run([sys.executable, os.path.join(HERE, "make_data.py"), pristine, str(size)], check=True)
        return pristine

    def fresh(self, pristine):
        live = os.path.join(self.work, "live")
        shutil.rmtree(live, ignore_errors=True)
        subprocess.run(["cp", "-a", "--reflink=auto", pristine, live], check=True)
        subprocess.run(["sync"], check=True)
        return live

    def pair(self, name, pristine, shell, backout, pairs):
        """Runs `shell(dir)` and `backout(dir)` `pairs` times each, alternating."""
        times = {"shell": [], "backout": []}
        rss = {"shell": 0.0, "backout": 0.0}
        for i in range(pairs):
            order = [("shell", shell), ("backout", backout)]
            if i % 2:
                order.reverse()
            for side, make in order:
                live = self.fresh(pristine)
                seconds, peak = measure(make(live), self.env)
                times[side].append(seconds)
                rss[side] = max(rss[side], peak)
        s, b = statistics.median(times["shell"]), statistics.median(times["backout"])
        self.rows.append((name, s, b, rss["shell"], rss["backout"]))
        print(f"{name}: shell {s:.3f} s, backout {b:.3f} s ({b / s:.2f}×)", file=sys.stderr)

    def run(self):
        a = self.args
        port = free_port()
        origin = f"http://127.0.0.1:{port}"
        pristine = self.data(a.size)
        server = subprocess.Popen(
            [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port), "--directory",
             os.path.join(pristine, "www")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(50):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.1)
            rollback = os.path.join(HERE, "rollback.toml")

            def backout_run(runbook, *extra):
                return lambda live: [a.backout, "run", "--yes", "--var", f"dir={live}", *extra, runbook]

            # Warm the compile cache: every later command loads plugins from it.
            live = self.fresh(pristine)
            measure(backout_run(rollback, "--var", f"origin={origin}")(live), self.env)

            self.pair(f"whole rollback ({mib(pristine)} database)", pristine,
                      lambda live: [os.path.join(HERE, "rollback.sh"), live, origin],
                      backout_run(rollback, "--var", f"origin={origin}"), a.pairs)
            for runbook, steps in ((rollback, 3), (os.path.join(HERE, "plan5.toml"), 5)):
                live = self.fresh(pristine)
                plan = [a.backout, "plan", "--var", f"dir={live}", "--var", f"origin={origin}", runbook]
                samples = [measure(plan, self.env) for _ in range(a.pairs)]
                self.rows.append((f"`backout plan`, {steps} steps, warm", None,
                                  statistics.median(t for t, _ in samples), None, max(r for _, r in samples)))
            for size, pairs in ((a.medium, a.pairs), (a.big, max(1, min(a.pairs, 3)))):
                data = self.data(size)
                self.pair(f"sqlite-restore, {mib(data)}", data,
                          lambda live: [os.path.join(HERE, "restore.sh"), live],
                          backout_run(os.path.join(HERE, "restore.toml")), pairs)
        finally:
            server.terminate()
            server.wait()
        self.table()

    def table(self):
        print("| what | shell script | backout | backout / shell | peak RSS shell | peak RSS backout |")
        print("|---|---|---|---|---|---|")
        for name, s, b, rs, rb in self.rows:
            shell = f"{s:.3f} s" if s is not None else "—"
            ratio = f"**{b / s:.2f}×**" if s is not None else "—"
            rss_s = f"{rs:.0f} MiB" if rs is not None else "—"
            print(f"| {name} | {shell} | {b:.3f} s | {ratio} | {rss_s} | {rb:.0f} MiB |")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backout", required=True)
    p.add_argument("--plugins", required=True, help="directory of the release-built plugin components")
    p.add_argument("--pairs", type=int, default=5)
    p.add_argument("--size", type=int, default=273, help="MiB of the whole rollback's databases")
    p.add_argument("--medium", type=int, default=64, help="MiB of the first sqlite-restore row")
    p.add_argument("--big", type=int, default=1024, help="MiB of the second sqlite-restore row")
    p.add_argument("--work", default=os.path.join(HERE, "..", "..", "target", "bench"))
    Bench(p.parse_args()).run()


if __name__ == "__main__":
    main()
