#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to backout
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: backout_fleet_summary
short_description: Record one host's rollback and rewrite the fleet's summary on the controller
description:
  - "Meant to run on the controller (C(delegate_to: localhost)), once for each host as that host finishes,
    whether its rollback succeeded or failed."
  - "Writes the host's record to C(DIR/hosts/HOST.json), then rewrites C(DIR/summary.json) and C(DIR/summary.txt)
    from every record there: the hosts rolled back, failed and undone, the hosts the rollout never reached,
    each host's run id and the paths of its fetched report and journal."
  - "Because every host rewrites the summary as it finishes, the summary is complete even when C(max_fail_percentage)
    stops the play and no later task runs. Run it with C(throttle: 1) so that two hosts never rewrite it at once."
version_added: 0.1.0
author: backout contributors (@backout)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  dir:
    description:
      - The fleet's output directory on the controller.
    type: path
    required: true
  host:
    description:
      - The host this record is about (C(inventory_hostname)).
    type: str
    required: true
  record:
    description:
      - What happened on the host. C(outcome) is one of C(rolled-back), C(undone), C(undo-failed), C(failed), C(refused).
      - Other keys (C(run_id), C(state), C(exit_code), C(failed_step), C(failure), C(report), C(journal)) are kept as they are.
    type: dict
    required: true
  hosts:
    description:
      - Every host of the rollout (C(ansible_play_hosts_all)); those without a record are listed as not reached.
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    details: Computes the summary; writes nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Record this host and rewrite the summary
  backout.rollback.backout_fleet_summary:
    dir: "{{ playbook_dir }}/fleet-out"
    host: "{{ inventory_hostname }}"
    hosts: "{{ ansible_play_hosts_all }}"
    record:
      outcome: rolled-back
      run_id: "{{ rollback.run_id }}"
      state: "{{ rollback.state }}"
  delegate_to: localhost
  throttle: 1
"""

RETURN = r"""
summary:
  description: The fleet so far, as written to C(summary.json).
  returned: always
  type: dict
  contains:
    rolled_back:
      description: Hosts whose rollback succeeded.
      type: list
      elements: str
    failed:
      description: Hosts whose rollback failed (undone or not).
      type: list
      elements: str
    undone:
      description: Failed hosts whose changes were all put back.
      type: list
      elements: str
    not_reached:
      description: Hosts the rollout never got to.
      type: list
      elements: str
    runs:
      description: Each host's run id.
      type: dict
    reports:
      description: Each host's fetched HTML report on the controller.
      type: dict
    journals:
      description: Each host's fetched journal on the controller.
      type: dict
text:
  description: The summary as C(summary.txt) has it.
  returned: always
  type: str
"""

import json
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule

OUTCOMES = ("rolled-back", "undone", "undo-failed", "failed", "refused")


def write(path, text):
    fd, scratch = tempfile.mkstemp(prefix=".", dir=os.path.dirname(path))
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(scratch, 0o644)
    os.replace(scratch, path)


def read_records(directory):
    records = {}
    if not os.path.isdir(directory):
        return records
    for name in sorted(os.listdir(directory)):
        if name.endswith(".json") and not name.startswith("."):
            with open(os.path.join(directory, name), encoding="utf-8") as f:
                record = json.load(f)
            records[record["host"]] = record
    return records


def summarize(records, hosts):
    def having(*outcomes):
        return sorted(h for h, r in records.items() if r.get("outcome") in outcomes)

    return {
        "format": 1,
        "hosts": sorted(set(hosts) | set(records)),
        "rolled_back": having("rolled-back"),
        "failed": having("undone", "undo-failed", "failed", "refused"),
        "undone": having("undone"),
        "not_reached": sorted(set(hosts) - set(records)),
        "runs": {h: r.get("run_id") for h, r in sorted(records.items())},
        "reports": {h: r.get("report") for h, r in sorted(records.items()) if r.get("report")},
        "journals": {h: r.get("journal") for h, r in sorted(records.items()) if r.get("journal")},
        "records": [records[h] for h in sorted(records)],
    }


def as_text(summary):
    lines = [
        "Fleet rollback: %d rolled back, %d failed (%d undone), %d not reached, of %d hosts"
        % (
            len(summary["rolled_back"]),
            len(summary["failed"]),
            len(summary["undone"]),
            len(summary["not_reached"]),
            len(summary["hosts"]),
        ),
        "",
        "%-16s %-12s %-16s %-44s %s" % ("HOST", "OUTCOME", "STATE", "RUN", "REPORT"),
    ]
    for record in summary["records"]:
        lines.append(
            "%-16s %-12s %-16s %-44s %s"
            % (
                record["host"],
                record.get("outcome"),
                record.get("state") or "-",
                record.get("run_id") or "-",
                record.get("report") or "-",
            )
        )
        if record.get("failure"):
            lines.append("%-16s failed at `%s`: %s" % ("", record.get("failed_step"), record["failure"]))
    for host in summary["not_reached"]:
        lines.append("%-16s %-12s" % (host, "not-reached"))
    return "\n".join(lines) + "\n"


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dir=dict(type="path", required=True),
            host=dict(type="str", required=True),
            record=dict(type="dict", required=True),
            hosts=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    params = module.params
    record = dict(params["record"])
    record["host"] = params["host"]
    if record.get("outcome") not in OUTCOMES:
        module.fail_json(msg="outcome `%s` is none of %s" % (record.get("outcome"), ", ".join(OUTCOMES)))

    records_dir = os.path.join(params["dir"], "hosts")
    records = read_records(records_dir)
    records[params["host"]] = record
    summary = summarize(records, params["hosts"])
    text = as_text(summary)
    if not module.check_mode:
        os.makedirs(records_dir, mode=0o755, exist_ok=True)
        write(os.path.join(records_dir, params["host"] + ".json"), json.dumps(record, indent=2, sort_keys=True) + "\n")
        write(os.path.join(params["dir"], "summary.json"), json.dumps(summary, indent=2, sort_keys=True) + "\n")
        write(os.path.join(params["dir"], "summary.txt"), text)
    module.exit_json(changed=not module.check_mode, summary=summary, text=text)


if __name__ == "__main__":
    main()
