#!/usr/bin/python
# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: firewall_drift_info
short_description: Compare a firewall node's ruleset with the one rendered from the site model, without changing anything
version_added: 0.4.0
description:
  - Runs on a node of the firewall pair that C(twinsite.dc.firewall_pair) manages. Compares the
    ruleset rendered from the model (O(ruleset)) with the one the role applied and confirmed last
    (C(applied.nft) in O(state_dir)), and the tables the kernel holds now with the listing the role
    recorded right after that load (C(applied.live)), so a change made by hand on the node shows too.
  - Returns the rule diff (applied last -> model) as text and in Ansible's diff form (C(--diff)).
  - Used by C(playbooks/plan.yml); the result carries C(twinsite_plan) for the plan callback that
    sets the exit code (0 in sync, 2 drift, 1 error).
options:
  ruleset:
    description: The ruleset rendered from the model, byte for byte as the role installs it.
    type: str
    required: true
  state_dir:
    description: The role's state directory on the node.
    type: path
    default: /var/lib/twinsite/firewall
  tables:
    description: The nftables tables that are the role's own (C(family name)).
    type: list
    elements: str
    default: [inet twinsite, ip twinsite_nat]
attributes:
  check_mode:
    support: full
    description: Reads only.
  diff_mode:
    support: full
    description: The rule diff, applied last -> model.
requirements: [nftables (the nft command) on the node]
author: twinsite engineers
"""

EXAMPLES = r"""
- name: Compare the node's ruleset with the model
  twinsite.dc.firewall_drift_info:
    ruleset: "{{ lookup('ansible.builtin.template', 'etc/twinsite/firewall/ruleset.nft.j2') }}"
  register: plan
"""

RETURN = r"""
model_differs:
  description: The model's ruleset is not the one applied last (or none was ever applied).
  returned: success
  type: bool
live_differs:
  description: The tables loaded now are not what the role loaded last (changed by hand, lost at a reboot, never loaded).
  returned: success
  type: bool
rule_diff:
  description: Unified diff, the ruleset applied last -> the model's; empty when equal.
  returned: success
  type: str
lines:
  description: The plan as text.
  returned: success
  type: list
  elements: str
  sample: ["fw1: the ruleset rendered from the model differs from the one applied last: +2 -0 lines (safe apply would load it)"]
twinsite_plan:
  description: Marker for the plan callback.
  returned: success
  type: dict
  sample: {drift: true}
"""

import os
import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.twinsite.dc.plugins.module_utils._common import read_text as read
from ansible_collections.twinsite.dc.plugins.module_utils._firewall import rule_diff

TABLE = re.compile(r"^(inet|ip|ip6|arp|bridge|netdev) [A-Za-z0-9_]+$")


def live_listing(module: AnsibleModule, tables: list[str]) -> str:
    """The kernel's listing of our tables, as the role records it (roles/firewall_pair/vars/main.yml)."""
    nft = module.get_bin_path("nft", required=True)
    out = ""
    for table in tables:
        rc, stdout, _ = module.run_command([nft, "-s", "list", "table", *table.split()])
        out += stdout if rc == 0 else f"# table {table} is not loaded\n"
    return out


def main():
    module = AnsibleModule(
        argument_spec={
            "ruleset": {"type": "str", "required": True},
            "state_dir": {"type": "path", "default": "/var/lib/twinsite/firewall"},
            "tables": {"type": "list", "elements": "str", "default": ["inet twinsite", "ip twinsite_nat"]},
        },
        supports_check_mode=True,
    )
    p = module.params
    bad = [t for t in p["tables"] if not TABLE.match(t)]
    if bad:
        module.fail_json(msg=f"tables: expected 'family name' such as 'inet twinsite', found {bad}")
    node = os.uname().nodename
    applied = read(os.path.join(p["state_dir"], "applied.nft"))
    recorded = read(os.path.join(p["state_dir"], "applied.live"))
    live = live_listing(module, p["tables"])
    model_differs = applied != p["ruleset"]
    # The role records the listing with a shell's $(...), which drops trailing newlines.
    live_differs = recorded is None or live.rstrip("\n") != recorded.rstrip("\n")
    diff_text = rule_diff(applied or "", p["ruleset"], fromfile="applied last", tofile="site model") if model_differs else ""
    lines = []
    if applied is None:
        lines.append(f"{node}: no ruleset was ever applied by twinsite; safe apply would load the one rendered from the model")
    elif model_differs:
        added = sum(1 for line in diff_text.splitlines() if line.startswith("+") and not line.startswith("+++"))
        removed = sum(1 for line in diff_text.splitlines() if line.startswith("-") and not line.startswith("---"))
        lines.append(f"{node}: the ruleset rendered from the model differs from the one applied last: +{added} -{removed} lines "
                     "(safe apply would load it)")
        lines += ["  " + line for line in diff_text.splitlines()]
    if applied is not None and live_differs:
        lines.append(f"{node}: the tables loaded now are not the ones applied last (changed by hand, or lost at a reboot); "
                     "safe apply would load the one rendered from the model again")
    if not lines:
        lines.append(f"{node}: in sync, the ruleset applied last is the one rendered from the model and is loaded")
    result = {"changed": False, "model_differs": model_differs, "live_differs": live_differs, "rule_diff": diff_text,
              "lines": lines, "twinsite_plan": {"drift": model_differs or live_differs}}
    if model_differs:
        result["diff"] = {"before": applied or "", "after": p["ruleset"], "before_header": f"{node}: applied last",
                          "after_header": f"{node}: site model"}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
