#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to backout
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: backout_registry
short_description: Import a signed backout registry bundle on the managed host, and verify the registry
description:
  - Runs C(backout registry import BUNDLE) (the tar that C(backout registry export) writes), then C(backout registry verify).
  - backout checks the bundle's signature against the trust file, its serial against the highest serial this host
    accepted (and the registry's own), and every blob's digest and size before it writes anything.
  - On any failure the registry is left byte for byte as it was, and this task fails.
  - Importing the bundle the registry already holds changes nothing (C(changed=false)).
version_added: 0.1.0
author: backout contributors (@backout)
extends_documentation_fragment:
  - backout.rollback.common
  - ansible.builtin.action_common_attributes
options:
  bundle:
    description:
      - The bundle (a tar from C(backout registry export)) on the managed host.
    type: path
    required: true
  verify:
    description:
      - After the import, rehash every blob (C(backout registry verify)) and fail unless the registry is clean.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    details: Compares the bundle's serial with the registry's, without checking the signature or writing anything.
  diff_mode:
    support: none
  platform:
    platforms: posix
seealso:
  - module: backout.rollback.backout_run
"""

EXAMPLES = r"""
- name: Admit the publisher's signed registry
  backout.rollback.backout_registry:
    binary: /opt/backout/bin/backout
    bundle: /opt/backout/incoming/registry.tar
    registry: /opt/backout/registry
    state_dir: /var/lib/backout
    trust: /etc/backout/trust.toml
"""

RETURN = r"""
serial:
  description: The serial of the registry's index afterwards (in check mode, the bundle's).
  returned: always
  type: int
signed_by:
  description: The trusted key that signed the index (C(name), C(key)).
  returned: when not in check mode
  type: dict
entries:
  description: The registry's plugins (C(name), C(version), C(digest), C(size)).
  returned: when not in check mode
  type: list
  elements: dict
added_blobs:
  description: The blobs this import added.
  returned: when not in check mode
  type: list
  elements: str
verify:
  description: What C(backout registry verify) found (C(clean), C(checked), C(corrupt), C(missing), C(orphaned)).
  returned: when O(verify) is true and not in check mode
  type: dict
msg:
  description: What happened, in one line.
  returned: always
  type: str
"""

import os
import re
import tarfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.backout.rollback.plugins.module_utils.backout import (
    argument_spec,
    command,
    error_message,
    run_document,
)

SERIAL = re.compile(r"^serial\s*=\s*(\d+)\s*$", re.MULTILINE)


def serial_of(text):
    match = SERIAL.search(text or "")
    return int(match.group(1)) if match else None


def bundle_serial(path):
    try:
        with tarfile.open(path) as bundle:
            member = bundle.extractfile("index.toml")
            return serial_of(member.read().decode("utf-8")) if member else None
    except (OSError, KeyError, tarfile.TarError, UnicodeDecodeError):
        return None


def registry_serial(registry):
    try:
        with open(os.path.join(registry, "index.toml"), encoding="utf-8") as index:
            return serial_of(index.read())
    except OSError:
        return None


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(
            bundle=dict(type="path", required=True),
            verify=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    bundle = params["bundle"]
    if not os.path.isfile(bundle):
        module.fail_json(msg="the bundle `%s` does not exist" % bundle, changed=False)

    if module.check_mode:
        new = bundle_serial(bundle)
        old = registry_serial(params["registry"]) if params["registry"] else None
        module.exit_json(
            changed=new != old,
            serial=new,
            msg="the bundle is at serial %s, the registry at %s; the signature is checked only when it is imported" % (new, old),
        )

    rc, doc, stderr = run_document(module, command(module, "registry", "import", bundle))
    if rc != 0 or not isinstance(doc, dict):
        module.fail_json(msg="backout refused the bundle `%s`: %s" % (bundle, error_message([], stderr)), changed=False, exit_code=rc)
    result = dict(
        changed=not doc.get("unchanged", False),
        serial=doc.get("serial"),
        signed_by=doc.get("signed_by"),
        entries=doc.get("entries", []),
        added_blobs=doc.get("added_blobs", []),
        msg="%s serial %s from `%s`: %d plugins"
        % ("already at" if doc.get("unchanged") else "imported", doc.get("serial"), bundle, len(doc.get("entries", []))),
    )
    if params["verify"]:
        rc, report, stderr = run_document(module, command(module, "registry", "verify"))
        result["verify"] = report
        if rc != 0 or not isinstance(report, dict) or not report.get("clean"):
            result["msg"] = "the registry does not verify after the import: %s" % (report or error_message([], stderr))
            module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
