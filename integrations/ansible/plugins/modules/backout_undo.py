#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to backout
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: backout_undo
short_description: Put back what a backout run changed on the managed host
description:
  - Runs C(backout undo --yes RUN) with C(--output json).
  - Every step of the run that may have changed something is undone, newest first, with the config and outputs the journal recorded.
  - Idempotent. A run with nothing left in place (already C(undone), or killed before its first change) reports C(changed=false).
  - The task fails unless backout's exit code is 0; an undo that stops at a failed undo leaves the run C(needs-attention).
  - backout refuses the undo when the runbook's bytes or a plugin's digest changed since the run started, and reuses the run's C(--var) overrides.
version_added: 0.1.0
author: backout contributors (@backout)
extends_documentation_fragment:
  - backout.rollback.common
  - ansible.builtin.action_common_attributes
options:
  run:
    description:
      - The run, by id, a unique prefix of one, or C(last).
    type: str
    required: true
  force_unlock:
    description:
      - Pass C(--force-unlock) to break a lock held on another host. A stale lock of this very run is taken over without it.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    details: Reads the run's journal (C(backout show)) and says which steps would be undone; undoes nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
seealso:
  - module: backout.rollback.backout_run
  - module: backout.rollback.backout_runs
"""

EXAMPLES = r"""
- name: Undo the run that just failed on this host
  backout.rollback.backout_undo:
    binary: /opt/backout/bin/backout
    run: "{{ rollback.run_id }}"
    state_dir: /var/lib/backout
    registry: /opt/backout/registry
    trust: /etc/backout/trust.toml
  when: rollback.state in ['failed', 'timed-out', 'interrupted']
"""

RETURN = r"""
run_id:
  description: The run's full id.
  returned: always
  type: str
state:
  description: The run's state afterwards (C(undone) when nothing it changed is left in place).
  returned: always
  type: str
  sample: undone
exit_code:
  description: backout's exit code.
  returned: when backout ran C(undo)
  type: int
undone:
  description: The steps this call undid, in the order it undid them.
  returned: always
  type: list
  elements: str
would_undo:
  description: In check mode, the steps an undo would put back.
  returned: in check mode
  type: list
  elements: str
steps:
  description: Each step's result, with its C(undo) state; see M(backout.rollback.backout_run).
  returned: always
  type: list
  elements: dict
run:
  description: The whole run as C(backout show RUN --output json) gives it.
  returned: always
  type: dict
msg:
  description: What happened, in one line.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.backout.rollback.plugins.module_utils.backout import (
    argument_spec,
    command,
    error_message,
    last_event,
    run_document,
    run_events,
    step_results,
)


def show(module, run_ref):
    rc, doc, stderr = run_document(module, command(module, "show", run_ref))
    if rc != 0 or not isinstance(doc, dict) or "run" not in doc:
        module.fail_json(msg="backout show %s: %s" % (run_ref, error_message([], stderr)), changed=False, undone=[])
    return doc["run"]


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(
            run=dict(type="str", required=True),
            force_unlock=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    run_ref = module.params["run"]
    before = show(module, run_ref)
    steps = step_results(before)
    would_undo = [s["id"] for s in reversed(steps) if s.get("undo_available")]

    if module.check_mode:
        module.exit_json(
            changed=bool(would_undo),
            run_id=before.get("id"),
            state=before.get("state"),
            undone=[],
            would_undo=would_undo,
            steps=steps,
            run=before,
            msg="run %s is %s; undo would put back %s"
            % (before.get("id"), before.get("state"), ", ".join(would_undo) or "nothing"),
        )

    argv = command(module, "undo", "--yes", before["id"])
    if module.params["force_unlock"]:
        argv.append("--force-unlock")
    rc, events, stderr = run_events(module, argv)
    undone = [e.get("step") for e in events if e.get("event") == "undo-finished" and e.get("result") == "undone"]
    attempted = any(e.get("event") == "undo-started" for e in events)
    report = last_event(events, "report")
    result = dict(changed=attempted, run_id=before.get("id"), undone=undone, exit_code=rc, stderr_lines=stderr.splitlines()[-50:])
    if report is None:
        result.update(state=before.get("state"), steps=steps, run=before, msg=error_message(events, stderr))
        module.fail_json(**result)
    run = report.get("run") or {}
    result.update(
        state=run.get("state"),
        exit_code=report.get("exit_code", rc),
        steps=step_results(run),
        run=run,
        msg="run %s: %s; undid %s" % (run.get("id"), run.get("state"), ", ".join(undone) or "nothing"),
    )
    if result["exit_code"] != 0:
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
