# -*- coding: utf-8 -*-
# Copyright: contributors to backout
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    # The options every backout module takes: where backout keeps things on
    # the managed host, and which registries it trusts.
    DOCUMENTATION = r"""
options:
  binary:
    description:
      - The backout binary on the managed host.
      - A bare name is looked up in E(PATH); a path is used as it is.
    type: str
    default: backout
  registry:
    description:
      - The registry directory (C(--registry)).
      - Default, backout's own C(~/.local/share/backout/registry). Any E(BACKOUT_REGISTRY) in the module's environment is ignored.
    type: path
  state_dir:
    description:
      - Where backout keeps run journals, locks and accepted serials (C(--state-dir)).
      - Operators who share a host should share it.
    type: path
  cache_dir:
    description:
      - The compile cache (C(--cache-dir)).
    type: path
  trust:
    description:
      - The trust file listing the publisher keys this host trusts (C(--trust)).
    type: path
  require_signed:
    description:
      - Refuse a registry index that cannot be verified, unsigned or with no trusted key (C(--require-signed)).
      - On by default, so that a missing trust file never silently means unchecked.
    type: bool
    default: true
notes:
  - The modules call backout on the managed host with C(--output json) and read its JSON output; see the README sections "Events" and "CLI reference".
"""
