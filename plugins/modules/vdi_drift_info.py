#!/usr/bin/python
# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vdi_drift_info
short_description: Compare a VDI desktop pool with the site model, without changing anything
version_added: 0.6.0
description:
  - Reads the pool's desktops on its cluster and the broker's sessions, assignments and entitlements,
    and reports what M(twinsite.dc.vdi_pool) would do - desktops to create, remove, refresh (and which
    are deferred because a user has a session on them), power on or off, and entitlements to change.
  - Used by C(playbooks/plan.yml); the result carries C(twinsite_plan) for the plan callback that sets
    the exit code (0 in sync, 2 drift, 1 error).
extends_documentation_fragment: [twinsite.dc.cluster]
options:
  pool:
    description: The pool, as the site model's C(dc_vdi_pools) item (see M(twinsite.dc.vdi_pool)).
    type: dict
    required: true
  broker:
    description: The broker, as M(twinsite.dc.vdi_pool) takes it; omitted for none.
    type: dict
  networks_model:
    description: The model's C(dc_networks).
    type: list
    elements: dict
  now:
    description: The time of day (C(HH:MM)) to judge the power policy by; the controller's local time when omitted.
    type: str
  timeout:
    description: Seconds to wait for each vendor call.
    type: int
    default: 600
attributes:
  check_mode:
    support: full
    description: Reads only.
  diff_mode:
    support: none
requirements: [pyvmomi (vsphere), proxmoxer (proxmox)]
author: twinsite engineers
"""

EXAMPLES = r"""
- name: Compare the staff pool with the model
  twinsite.dc.vdi_drift_info:
    cluster: "{{ dc_clusters | selectattr('name', 'eq', 'cl-primary') | first }}"
    pool: "{{ dc_vdi_pools | selectattr('name', 'eq', 'staff') | first }}"
    broker: "{{ dc_vdi_broker }}"
    networks_model: "{{ dc_networks }}"
"""

RETURN = r"""
drift:
  description: What would change.
  returned: success
  type: dict
  sample: {create: [vdi-staff-005], remove: [], refresh: [], deferred: [], power_on: [], power_off: [], entitlements: false}
in_sync:
  description: True when there is no difference at all.
  returned: success
  type: bool
lines:
  description: The plan as text, one line per difference.
  returned: success
  type: list
  elements: str
  sample: ["pool staff on cl-primary: 1 difference(s)", "  + vdi-staff-005: missing, would be created"]
twinsite_plan:
  description: Marker for the plan callback.
  returned: success
  type: dict
  sample: {drift: true}
"""

import time

from ansible_collections.twinsite.dc.plugins.module_utils import _cluster
from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError, secret_aware_module
from ansible_collections.twinsite.dc.plugins.module_utils._vdi import checked_pool, converge_pool, describe


def main():
    module = secret_aware_module()(
        argument_spec={
            "cluster": _cluster.CLUSTER_OPTION,
            "pool": {"type": "dict", "required": True},
            "broker": {"type": "dict"},
            "networks_model": {"type": "list", "elements": "dict"},
            "now": {"type": "str"},
            "timeout": {"type": "int", "default": 600},
        },
        supports_check_mode=True,
    )
    params, cluster = module.params, module.params["cluster"]
    _cluster.prepare(module)
    try:
        pool = checked_pool(params["pool"], "present")
        report = converge_pool(cluster, pool, params["broker"], params["networks_model"], params["now"] or time.strftime("%H:%M"),
                               check_mode=True, timeout=params["timeout"])
    except TwinsiteError as exc:
        module.fail_json(msg=f"pool {params['pool'].get('name')} on cluster {cluster.get('name')}: {exc}")
    drift = {"create": report["created"], "remove": report["removed"], "refresh": report["refreshed"], "deferred": report["deferred"],
             "power_on": report["powered_on"], "power_off": report["powered_off"],
             "entitlements": bool((report.get("entitlements") or {}).get("changed"))}
    in_sync = not any(drift.values())
    module.exit_json(changed=False, drift=drift, in_sync=in_sync, lines=describe(pool["name"], cluster.get("name", "?"), report),
                     twinsite_plan={"drift": not in_sync})


if __name__ == "__main__":
    main()
