# -*- coding: utf-8 -*-
# Copyright: contributors to backout
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every backout module shares: the options that say where backout keeps
its registry, state and cache and which registries it trusts; the command
line built from them; and the reading of backout's JSON output (one document,
or the JSON Lines event stream of `run`, `undo` and `resume`, README
"Events"). The modules run on the managed host and call the backout binary
there; nothing here talks to the controller."""

from __future__ import annotations

import json
import os

# The options every module takes (documented in the doc fragment
# backout.rollback.common), merged into each module's argument_spec.
COMMON_ARGS = dict(
    binary=dict(type="str", default="backout"),
    registry=dict(type="path"),
    state_dir=dict(type="path"),
    cache_dir=dict(type="path"),
    trust=dict(type="path"),
    require_signed=dict(type="bool", default=True),
)

# Run states that leave changes in place, so that `backout undo` has
# something to put back (README "When things go wrong").
LEAVES_CHANGES = ("failed", "timed-out", "interrupted", "needs-attention")


def argument_spec(**own):
    """The module's own options plus the common ones."""
    spec = dict(COMMON_ARGS)
    spec.update(own)
    return spec


def command(module, *words):
    """The backout command line: the binary, the global options from the
    common parameters, `--output json`, then `words`.

    A bare binary name is looked up in PATH on the managed host (and fails
    the module when it is missing); a path is used as it is."""
    params = module.params
    binary = params["binary"]
    if os.sep not in binary:
        binary = module.get_bin_path(binary, required=True)
    argv = [binary, "--output", "json", "--color", "never"]
    for option, flag in (
        ("registry", "--registry"),
        ("state_dir", "--state-dir"),
        ("cache_dir", "--cache-dir"),
        ("trust", "--trust"),
    ):
        if params.get(option):
            argv += [flag, params[option]]
    if params.get("require_signed"):
        argv.append("--require-signed")
    return argv + list(words)


def _run(module, argv):
    """Run backout without the BACKOUT_* variables of the module's
    environment, which would override the options behind the module's back
    (an operator's shell profile on the host, say), and with TERM=dumb so
    that stderr carries plain timestamped lines."""
    for name in [name for name in os.environ if name.startswith("BACKOUT_")]:
        del os.environ[name]
    return module.run_command(
        argv, check_rc=False, environ_update={"TERM": "dumb", "NO_COLOR": "1"}
    )


def run_document(module, argv):
    """Run a command whose stdout is one JSON document.

    Returns (exit code, the document or None, stderr)."""
    rc, out, err = _run(module, argv)
    try:
        doc = json.loads(out) if out.strip() else None
    except ValueError:
        doc = None
    return rc, doc, err


def run_events(module, argv):
    """Run `run`, `undo` or `resume` with `--output json` and read its event
    stream. Returns (exit code, events, stderr). A line that is not JSON
    (there should be none) is kept as an `unparsed` event, never dropped."""
    rc, out, err = _run(module, argv)
    events = []
    for line in out.splitlines():
        if not line.strip():
            continue
        try:
            events.append(json.loads(line))
        except ValueError:
            events.append({"event": "unparsed", "line": line})
    return rc, events, err


def last_event(events, kind):
    """The last event of one kind, or None."""
    for event in reversed(events):
        if event.get("event") == kind:
            return event
    return None


def error_message(events, stderr):
    """What a refused or failed command said: the `error` event's message,
    causes and hint, else the last lines of stderr."""
    error = last_event(events, "error")
    if error:
        parts = [error.get("message", "")]
        parts += ["caused by: %s" % cause for cause in error.get("causes") or []]
        for diagnostic in error.get("diagnostics") or []:
            if diagnostic.get("severity") == "error":
                parts.append("error: %s" % diagnostic.get("message", ""))
        if error.get("hint"):
            parts.append("hint: %s" % error["hint"])
        return "; ".join(p for p in parts if p)
    lines = [line for line in stderr.splitlines() if line.strip()]
    return "\n".join(lines[-10:]) or "backout printed nothing"


def step_results(run):
    """Each step of a run (the `run` object of a `report` event or of
    `backout show --output json`), cut down to what a playbook branches on."""
    results = []
    for step in (run or {}).get("steps", []):
        result = {
            "id": step.get("id"),
            "uses": step.get("uses"),
            "status": step.get("status"),
            "summary": step.get("summary"),
            "elapsed_ms": step.get("elapsed_ms"),
            "undo": (step.get("undo") or {}).get("state"),
            "undo_summary": (step.get("undo") or {}).get("summary"),
            "undo_available": step.get("undo_available"),
        }
        if step.get("failure"):
            result["failed_in"] = step.get("failed_in")
            result["failure"] = step["failure"].get("message")
        results.append(result)
    return results


def plan_actions(plan):
    """The plan as lines of text: each step and what it would do (its
    plugin's preview), for Ansible's diff output."""
    lines = []
    registry = (plan.get("registry") or {}).get("status")
    if registry:
        lines.append(registry)
    lines.append(
        "Plan for `%s` (%s), on failure: %s"
        % (plan.get("runbook"), plan.get("path"), plan.get("on_failure"))
    )
    for number, step in enumerate(plan.get("steps", []), start=1):
        lines.append("  %d. %s: %s" % (number, step.get("id"), step.get("uses")))
        preview = step.get("preview") or {}
        actions = preview.get("actions")
        if actions is None:
            lines.append("     will: %s" % json.dumps(preview, sort_keys=True))
            continue
        for action in actions:
            lines.append("     will: %s" % action.get("summary", ""))
            for detail in (action.get("detail") or "").splitlines():
                lines.append("           %s" % detail)
    for warning in plan.get("warnings") or []:
        message = warning.get("message") if isinstance(warning, dict) else warning
        lines.append("warning: %s" % message)
    return "\n".join(lines) + "\n"
