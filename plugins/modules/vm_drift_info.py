#!/usr/bin/python
# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vm_drift_info
short_description: Compare a cluster's VMs with the site model, without changing anything
version_added: 0.1.0
description:
  - Reads every VM and template of one vSphere or Proxmox VE cluster in bulk (one PropertyCollector
    retrieve, or one C(/cluster/resources) call) and compares them with the model's C(dc_vms) and
    C(dc_templates) of that cluster.
  - Reports VMs the model has and the cluster lacks (C(missing)), VMs whose CPUs, memory, disk,
    power state, template flag or networks differ (C(different)), VMs the model declares absent that
    still exist (C(to_remove)), and VMs the cluster has that the model does not describe (C(extra)).
  - Networks are compared on vSphere only; on Proxmox they need one call per VM.
  - Used by C(playbooks/plan.yml); the result carries C(twinsite_plan) for the plan callback that
    sets the exit code (0 in sync, 2 drift, 1 error).
extends_documentation_fragment: [twinsite.dc.cluster]
options:
  vms:
    description: The model's C(dc_vms) of this cluster.
    type: list
    elements: dict
    default: []
  templates:
    description: The model's C(dc_templates) of this cluster.
    type: list
    elements: dict
    default: []
  pools:
    description:
      - The model's C(dc_vdi_pools) of this cluster. A VM whose name the naming of one of them makes is
        that pool's desktop - compared by M(twinsite.dc.vdi_drift_info), not reported here as extra.
    type: list
    elements: dict
    default: []
    version_added: 0.6.0
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
- name: Compare the primary cluster with the model
  twinsite.dc.vm_drift_info:
    cluster: "{{ dc_clusters | selectattr('name', 'eq', 'cl-primary') | first }}"
    vms: "{{ dc_vms | selectattr('cluster', 'eq', 'cl-primary') }}"
    templates: "{{ dc_templates | selectattr('cluster', 'eq', 'cl-primary') }}"
  register: plan
"""

RETURN = r"""
drift:
  description: The differences, in the model's terms.
  returned: success
  type: dict
  sample:
    missing: [dns2]
    different: [{name: db1, changes: {cpus: {model: 4, live: 8}}}]
    to_remove: []
    extra: [old-test-vm]
in_sync:
  description: True when there is no difference at all.
  returned: success
  type: bool
  sample: false
lines:
  description: The plan as text, one line per difference.
  returned: success
  type: list
  elements: str
  sample: ["cl-primary: 1 difference(s)", "  ~ db1: cpus 8 -> 4"]
twinsite_plan:
  description: Marker for the plan callback.
  returned: success
  type: dict
  sample: {drift: true}
"""


from ansible_collections.twinsite.dc.plugins.module_utils import _cluster, _estate
from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError, secret_aware_module
from ansible_collections.twinsite.dc.plugins.module_utils._vdi import Naming


def live_vms(cluster: dict) -> dict:
    client = _cluster.connect(cluster)
    try:
        return _estate.vsphere_vms(client) if cluster["type"] == "vsphere" else _estate.proxmox_vms(client)
    finally:
        _cluster.close(client)


def main():
    module = secret_aware_module()(
        argument_spec={
            "cluster": _cluster.CLUSTER_OPTION,
            "vms": {"type": "list", "elements": "dict", "default": []},
            "templates": {"type": "list", "elements": "dict", "default": []},
            "pools": {"type": "list", "elements": "dict", "default": []},
        },
        supports_check_mode=True,
    )
    cluster = _cluster.prepare(module)
    try:
        live = live_vms(cluster)
        namings = [Naming(p["naming"], where=f"pool '{p.get('name')}' naming") for p in module.params["pools"] if p.get("naming")]
    except TwinsiteError as exc:
        module.fail_json(msg=f"cluster {cluster.get('name')}: {exc}")
    # A pool's desktops are the pool's business (vdi_drift_info), not VMs the model lacks.
    live = {name: vm for name, vm in live.items() if not any(n.number(name) is not None for n in namings)}
    drift = _estate.diff(_estate.wanted(module.params["vms"], module.params["templates"]), live)
    in_sync = not any(drift.values())
    module.exit_json(changed=False, drift=drift, in_sync=in_sync, lines=_estate.describe(cluster.get("name", "?"), drift),
                     twinsite_plan={"drift": not in_sync})


if __name__ == "__main__":
    main()
