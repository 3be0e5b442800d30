#!/usr/bin/python
# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vdi_pool
short_description: A VDI desktop pool on vSphere or Proxmox VE, sized and refreshed around the users' sessions
version_added: 0.6.0
description:
  - Converges one pool of desktops (one item of the site model's C(dc_vdi_pools)) on the cluster
    O(cluster), through the same VM backends as M(twinsite.dc.vm).
  - A desktop belongs to the pool when its name matches O(pool.naming). The image it was cloned from
    is written in its notes (C(twinsite-vdi pool=staff image=tpl-win11)).
  - "Size: the pool holds C(busy + spare) desktops, at least C(min) and at most C(max). A desktop is
    busy when the broker (O(broker)) reports a session on it (connected or disconnected) or a user it
    is assigned to. New desktops take the lowest free numbers; only free desktops are removed, stale
    ones first, then the highest numbers."
  - "Rolling refresh: a desktop whose image, CPUs, memory or network differ from the pool is deleted
    and cloned again under the same name, O(refresh_batch) at a time; each batch is finished before the
    next starts, and the sessions are read again before each batch. A desktop with a session is never
    touched: it is listed in RV(deferred) and refreshed by a later run."
  - "Power: in hours every desktop runs. Inside C(power.off_hours) only C(spare) free desktops run
    (none with C(power.spare_on=false)); desktops with a session are left as they are."
  - Creations, removals and each refresh batch run O(parallel) desktops at a time in one process.
  - The pool's C(entitlements) are set on the broker.
  - Check mode reads the pool and the broker, and returns what would be created, removed, refreshed and
    powered on or off, with a diff of the desktops; it writes nothing.
  - A desktop that fails leaves the others done and the pool in a state the next run converges from
    (a clone not yet configured has no image in its notes, so it is refreshed; a gap is refilled).
extends_documentation_fragment: [twinsite.dc.cluster]
options:
  pool:
    description:
      - The pool, as the site model's C(dc_vdi_pools) item. Keys used here - C(name), C(template) (the
        golden image), C(clone) (linked, the default, or full), C(naming) (a pattern with one C({n}) field,
        e.g. C(vdi-staff-{n:03d})), C(size) (C(min), C(max), C(spare)), C(network), C(cpus), C(memory_mb),
        C(entitlements), C(power) (C(spare_on), C(off_hours) as C(HH:MM-HH:MM)), C(folder) (vSphere),
        C(node) and C(vmid_base) (Proxmox - where new desktops go and the first vmid they may take).
    type: dict
    required: true
  state:
    description:
      - C(present) - the pool as described. C(absent) - every free desktop removed and the entitlements
        cleared; desktops with a session or an assignment stay (listed in RV(deferred)) until a later run.
    type: str
    choices: [present, absent]
    default: present
  broker:
    description:
      - Where sessions, assignments and entitlements live - C(type=file) with C(path) for a JSON file (small
        sites), C(type=horizon) with C(url), C(username), C(password), C(domain) for the Horizon REST API, or omitted
        for none (no sessions known - every desktop counts as free). See docs/vdi-brokers.md.
    type: dict
  manage_entitlements:
    description:
      - Set the pool's C(entitlements) on the broker (with O(state=absent) - clear them). Off, the broker's
        entitlements are left as they are - as a failback does when it removes the pool it re-created at the
        recovery site under the primary's name, whose entitlements are the primary pool's.
    type: bool
    default: true
  networks_model:
    description: The model's C(dc_networks) (Proxmox - the VLAN of each network).
    type: list
    elements: dict
  now:
    description: The time of day (C(HH:MM)) to judge C(power.off_hours) by; the controller's local time when omitted.
    type: str
  parallel:
    description: Desktops cloned, removed or powered at once.
    type: int
    default: 8
  refresh_batch:
    description: Desktops refreshed at once; the rest keep serving users meanwhile.
    type: int
    default: 5
  timeout:
    description: Seconds to wait for each vendor task.
    type: int
    default: 600
"""

EXAMPLES = r"""
- name: Converge the staff pool
  twinsite.dc.vdi_pool:
    cluster: "{{ dc_clusters | selectattr('name', 'eq', 'cl-primary') | first }}"
    networks_model: "{{ dc_networks }}"
    pool: "{{ dc_vdi_pools | selectattr('name', 'eq', 'staff') | first }}"
    broker: {type: file, path: /var/lib/twinsite/vdi/broker.json}
"""

RETURN = r"""
created:
  description: Desktops cloned (in check mode - that would be).
  returned: always
  type: list
  elements: str
  sample: [vdi-staff-005, vdi-staff-006]
removed:
  description: Free desktops removed (would be).
  returned: always
  type: list
  elements: str
refreshed:
  description: Stale desktops cloned again from the pool's image (would be).
  returned: always
  type: list
  elements: str
batches:
  description: The refresh, in the batches it runs in.
  returned: always
  type: list
  elements: list
deferred:
  description: Stale desktops left alone because a user has a session on them.
  returned: always
  type: list
  elements: dict
  sample: [{name: vdi-staff-003, user: jdoe, state: connected, reason: "image tpl-win11-old, the pool's is tpl-win11"}]
powered_on:
  description: Desktops powered on (would be).
  returned: always
  type: list
  elements: str
powered_off:
  description: Desktops powered off (would be), out of hours.
  returned: always
  type: list
  elements: str
busy:
  description: Desktops with a session or an assignment.
  returned: always
  type: list
  elements: str
target:
  description: How many desktops the pool holds after this run.
  returned: always
  type: int
entitlements:
  description: The groups entitled to the pool on the broker, and whether they changed.
  returned: when a broker is given and O(manage_entitlements) is on
  type: dict
  sample: {groups: [town-staff], changed: false}
desktops:
  description: Every desktop after the run (predicted in check mode) - image, power, cpus, memory_mb, networks.
  returned: always
  type: dict
"""

import time

from ansible_collections.twinsite.dc.plugins.module_utils import _cluster
from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError, secret_aware_module
from ansible_collections.twinsite.dc.plugins.module_utils._vdi import PoolError, checked_pool, converge_pool

ARGUMENT_SPEC = {
    "cluster": {"type": "dict", "required": True},
    "pool": {"type": "dict", "required": True},
    "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
    "broker": {"type": "dict"},
    "manage_entitlements": {"type": "bool", "default": True},
    "networks_model": {"type": "list", "elements": "dict"},
    "now": {"type": "str"},
    "parallel": {"type": "int", "default": 8},
    "refresh_batch": {"type": "int", "default": 5},
    "timeout": {"type": "int", "default": 600},
}

def main():
    module = secret_aware_module()(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params, cluster = module.params, module.params["cluster"]
    _cluster.prepare(module)
    now = params["now"] or time.strftime("%H:%M")
    try:
        pool = checked_pool(params["pool"], params["state"])
        outcome = converge_pool(cluster, pool, params["broker"], params["networks_model"], now, module.check_mode,
                                parallel=params["parallel"], refresh_batch=params["refresh_batch"], timeout=params["timeout"],
                                entitlements=params["manage_entitlements"])
    except PoolError as exc:
        exc.report.pop("warnings", None)
        module.fail_json(msg=f"pool {params['pool'].get('name')} on cluster {cluster.get('name')}: {exc}", **exc.report)
    except TwinsiteError as exc:
        module.fail_json(msg=f"pool {params['pool'].get('name')} on cluster {cluster.get('name')}: {exc}")
    if outcome.get("entitlements"):
        outcome["entitlements"].pop("before", None)
    # What the pool could not do (busy desktops above max) is an Ansible warning, shown after the task.
    for warning in outcome.pop("warnings"):
        module.warn(f"pool {pool['name']}: {warning}")
    module.exit_json(**outcome)


if __name__ == "__main__":
    main()
