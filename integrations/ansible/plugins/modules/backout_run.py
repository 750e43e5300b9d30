#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to backout
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: backout_run
short_description: Run a backout runbook on the managed host
description:
  - Runs C(backout run --yes RUNBOOK) on the managed host with C(--output json) and reads the event stream.
  - Reports the run id, the final state, backout's exit code and each step's result.
  - The task fails unless the run succeeded (exit code 0).
  - The failed result still carries the run id, so a C(rescue) can undo it with M(backout.rollback.backout_undo).
  - A runbook already in place (every step's plan says so) reports C(changed=false) and the state C(unchanged).
  - backout then runs nothing, or only the steps that check.
  - In check mode, runs C(backout plan) instead, which checks everything and changes nothing.
  - In check mode C(changed) says whether the plan has changes pending.
  - In diff mode, shows what each step of the plan would do.
version_added: 0.1.0
author: backout contributors (@backout)
extends_documentation_fragment:
  - backout.rollback.common
  - ansible.builtin.action_common_attributes
options:
  runbook:
    description:
      - The runbook (TOML) on the managed host.
    type: path
    required: true
  vars:
    description:
      - Overrides of the runbook's C([vars]), passed as C(--var NAME=VALUE).
      - Overriding a var the runbook does not declare is an error.
    type: dict
    default: {}
  lock:
    description:
      - The runbook's lock file. backout reads only the lock beside the runbook (C(RUNBOOK.lock)), so this must be that file.
      - When set, the task fails before anything runs if the lock is missing or is not beside the runbook; the run then uses exactly the locked plugin digests.
    type: path
  force_unlock:
    description:
      - Pass C(--force-unlock) to break a stale lock (its process is gone). A lock held by a live process is never broken.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    details: Runs C(backout plan), which changes nothing.
  diff_mode:
    support: full
    details: Shows the plan's actions, step by step.
  platform:
    platforms: posix
seealso:
  - module: backout.rollback.backout_undo
  - module: backout.rollback.backout_runs
"""

EXAMPLES = r"""
- name: Roll this host back
  backout.rollback.backout_run:
    binary: /opt/backout/bin/backout
    runbook: /opt/backout/runbooks/rollback.toml
    lock: /opt/backout/runbooks/rollback.toml.lock
    registry: /opt/backout/registry
    state_dir: /var/lib/backout
    trust: /etc/backout/trust.toml
    vars:
      app_dir: /srv/cortex
      origin: http://127.0.0.1:3000
  register: rollback

- name: Show the plan only
  backout.rollback.backout_run:
    runbook: /opt/backout/runbooks/rollback.toml
  check_mode: true
  diff: true
"""

RETURN = r"""
run_id:
  description: The run's id (for C(backout show), C(undo), C(resume)); null when backout refused to start.
  returned: when not in check mode
  type: str
  sample: 20261207T062559.000Z-fleet-rollback-3c58
state:
  description:
    - How the run ended (C(succeeded), C(undone), C(failed), C(timed-out), C(needs-attention), C(interrupted)).
    - C(refused) when nothing ran; C(unchanged) when every step was already in place and nothing ran; C(planned) in check mode.
  returned: always
  type: str
  sample: succeeded
exit_code:
  description: backout's exit code (README "Exit codes").
  returned: always
  type: int
  sample: 0
failed_step:
  description: The id of the step whose failure decided the run.
  returned: when not in check mode
  type: str
steps:
  description: Each step's result.
  returned: when not in check mode
  type: list
  elements: dict
  contains:
    id:
      description: The step id.
      type: str
    status:
      description: C(succeeded), C(failed) or C(not-run).
      type: str
    summary:
      description: What the step did, in its plugin's words.
      type: str
    failure:
      description: Why it failed.
      type: str
    undo:
      description: The step's undo state (C(not-undone), C(undone), C(failed)).
      type: str
journal:
  description: The run's journal on the managed host.
  returned: when a run started
  type: str
run:
  description: The whole run as C(backout show RUN --output json) gives it.
  returned: when a run started
  type: dict
plan:
  description: The plan as C(backout plan --output json) gives it.
  returned: in check mode
  type: dict
stderr_lines:
  description: The last 50 lines backout wrote to stderr (its live view as plain timestamped lines).
  returned: when not in check mode
  type: list
  elements: str
msg:
  description: What happened, in one line.
  returned: always
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.backout.rollback.plugins.module_utils.backout import (
    argument_spec,
    command,
    error_message,
    last_event,
    plan_actions,
    run_document,
    run_events,
    step_results,
)


def var_args(variables):
    args = []
    for name in sorted(variables):
        args += ["--var", "%s=%s" % (name, variables[name])]
    return args


def check_lock(module, runbook, lock):
    expected = os.path.realpath(runbook) + ".lock"
    if os.path.realpath(lock) != expected:
        module.fail_json(
            msg="backout reads the lock beside the runbook: `%s`, not `%s`; copy the lock there"
            % (expected, lock),
            state="refused",
            exit_code=2,
            changed=False,
        )
    if not os.path.isfile(lock):
        module.fail_json(
            msg="the lock `%s` does not exist; write it with `backout lock` and copy it beside the runbook"
            % lock,
            state="refused",
            exit_code=2,
            changed=False,
        )


def diff_of(module, plan):
    if not module._diff or not plan:
        return {}
    return {"diff": {"prepared": plan_actions(plan)}}


def plan_only(module, runbook, variables):
    argv = command(module, "plan", runbook) + var_args(variables)
    rc, plan, stderr = run_document(module, argv)
    if rc != 0 or not isinstance(plan, dict) or "steps" not in plan:
        module.fail_json(
            msg="backout plan refused `%s`: %s" % (runbook, error_message([], stderr)),
            state="refused",
            exit_code=rc,
            changed=False,
            stderr=stderr,
        )
    steps = plan.get("steps", [])
    result = dict(
        changed=pending(plan),
        state="planned",
        exit_code=rc,
        plan=plan,
        msg="the plan of `%s` has %d step(s); nothing was changed" % (plan.get("runbook"), len(steps)),
    )
    result.update(diff_of(module, plan))
    module.exit_json(**result)


def pending(plan):
    """Whether `plan` would change anything (backout's own count of the steps'
    effects; a plan without it, from an older backout, is taken to)."""
    if not isinstance(plan, dict):
        return True
    changes = plan.get("changes")
    if not isinstance(changes, dict):
        return bool(plan.get("steps"))
    return bool(changes.get("pending", True))


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(
            runbook=dict(type="path", required=True),
            vars=dict(type="dict", default={}),
            lock=dict(type="path"),
            force_unlock=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    params = module.params
    runbook = params["runbook"]
    variables = params["vars"] or {}
    if not os.path.isfile(runbook):
        module.fail_json(msg="the runbook `%s` does not exist" % runbook, state="refused", exit_code=2, changed=False)
    if params["lock"]:
        check_lock(module, runbook, params["lock"])

    if module.check_mode:
        plan_only(module, runbook, variables)

    argv = command(module, "run", "--yes", runbook) + var_args(variables)
    if params["force_unlock"]:
        argv.append("--force-unlock")
    rc, events, stderr = run_events(module, argv)

    plan_event = last_event(events, "plan")
    plan = plan_event.get("plan") if plan_event else None
    report = last_event(events, "report")
    started = last_event(events, "run-started")
    # Something on the host may have changed as soon as one step was started,
    # unless the plan said that no step would change anything.
    started_any = any(e.get("event") in ("step-started", "undo-started") for e in events)
    changed = started_any and pending(plan)
    result = dict(changed=changed, exit_code=rc, stderr_lines=stderr.splitlines()[-50:])
    result.update(diff_of(module, plan))

    unchanged = last_event(events, "nothing-to-change")
    if unchanged is not None and rc == 0:
        result.update(changed=False, state="unchanged", run_id=None, steps=[], msg=unchanged.get("message"))
        module.exit_json(**result)

    if report is None:
        result.update(
            state="refused" if started is None else "unknown",
            run_id=started.get("run_id") if started else None,
            msg=error_message(events, stderr),
        )
        module.fail_json(**result)

    run = report.get("run") or {}
    result.update(
        run_id=run.get("id"),
        state=run.get("state"),
        exit_code=report.get("exit_code", rc),
        failed_step=run.get("failed_step"),
        steps=step_results(run),
        journal=run.get("journal"),
        run=run,
    )
    done = sum(1 for step in result["steps"] if step["status"] == "succeeded")
    total = len(result["steps"])
    # As backout's own summary words it: "1 of 1 step", "1 of 2 steps".
    result["msg"] = "run %s of `%s`: %s (%d of %d %s completed)" % (
        run.get("id"),
        run.get("runbook"),
        run.get("state"),
        done,
        total,
        "step" if total == 1 else "steps",
    )
    if result["exit_code"] != 0:
        failed = [s for s in result["steps"] if s.get("failure")]
        if failed:
            result["msg"] += "; step `%s` failed: %s" % (failed[0]["id"], failed[0]["failure"])
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
