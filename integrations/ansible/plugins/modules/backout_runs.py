#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to backout
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: backout_runs
short_description: List backout runs on the managed host, or show one
description:
  - Without O(run), lists the runs of the state directory, newest first (C(backout runs)).
  - With O(run), reads that run's journal (C(backout show RUN)).
  - With O(html) as well, writes its run report, one self-contained HTML page, on the managed host (C(backout show RUN --html FILE)).
  - Never changes a run. Writing the O(html) report is the one change it makes, and only when the page's bytes differ.
version_added: 0.1.0
author: backout contributors (@backout)
extends_documentation_fragment:
  - backout.rollback.common
  - ansible.builtin.action_common_attributes
options:
  run:
    description:
      - A run id, a unique prefix of one, or C(last).
    type: str
  limit:
    description:
      - At most this many runs, newest first, when O(run) is not set.
    type: int
  html:
    description:
      - Write the run's HTML report to this file on the managed host. Needs O(run).
    type: path
attributes:
  check_mode:
    support: full
    details: Reads the journals; writes no report.
  diff_mode:
    support: none
  platform:
    platforms: posix
seealso:
  - module: backout.rollback.backout_run
  - module: backout.rollback.backout_undo
"""

EXAMPLES = r"""
- name: The last five runs on this host
  backout.rollback.backout_runs:
    state_dir: /var/lib/backout
    limit: 5
  register: history

- name: One run, and its report for the incident review
  backout.rollback.backout_runs:
    state_dir: /var/lib/backout
    run: "{{ rollback.run_id }}"
    html: /var/lib/backout/reports/{{ rollback.run_id }}.html
"""

RETURN = r"""
runs:
  description: The runs, newest first (C(id), C(runbook), C(started_at), C(state), C(steps), C(steps_done), C(journal)).
  returned: when O(run) is not set
  type: list
  elements: dict
run:
  description: The run as C(backout show RUN --output json) gives it (C(state), C(steps), C(rto), C(journal), ...).
  returned: when O(run) is set
  type: dict
report:
  description: The run report's data (C(headline), C(state_meaning), C(next_steps), each step's outcome).
  returned: when O(run) is set
  type: dict
html:
  description: Where the HTML report was written.
  returned: when O(html) is set
  type: str
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.backout.rollback.plugins.module_utils.backout import (
    argument_spec,
    command,
    error_message,
    run_document,
)


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(
            run=dict(type="str"),
            limit=dict(type="int"),
            html=dict(type="path"),
        ),
        required_by=dict(html="run"),
        supports_check_mode=True,
    )
    params = module.params
    if not params["run"]:
        argv = command(module, "runs")
        if params["limit"] is not None:
            argv += ["--limit", str(params["limit"])]
        rc, doc, stderr = run_document(module, argv)
        if rc != 0 or not isinstance(doc, dict):
            module.fail_json(msg="backout runs: %s" % error_message([], stderr), changed=False)
        module.exit_json(changed=False, runs=doc.get("runs", []))

    changed = False
    argv = command(module, "show", params["run"])
    html = params["html"]
    if html and not module.check_mode:
        # backout writes the page atomically; written beside the target
        # first, so that an unchanged page is not reported as a change.
        fd, scratch = tempfile.mkstemp(prefix=".backout-report-", suffix=".html", dir=os.path.dirname(html) or ".")
        os.close(fd)
        argv += ["--html", scratch]
    else:
        scratch = None
    try:
        rc, doc, stderr = run_document(module, argv)
        if rc != 0 or not isinstance(doc, dict) or "run" not in doc:
            module.fail_json(msg="backout show %s: %s" % (params["run"], error_message([], stderr)), changed=False)
        result = dict(run=doc["run"], report=doc.get("report"))
        if scratch:
            if read(scratch) != read(html):
                os.chmod(scratch, 0o644)
                module.atomic_move(scratch, html)
                scratch = None
                changed = True
            result["html"] = html
    finally:
        if scratch and os.path.exists(scratch):
            os.unlink(scratch)
    module.exit_json(changed=changed, **result)


if __name__ == "__main__":
    main()
