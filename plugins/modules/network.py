#!/usr/bin/python
# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: network
short_description: A VLAN network on a vSphere or Proxmox VE cluster
version_added: 0.2.0
description:
  - Ensures a network carrying one VLAN exists (or not) on a cluster. The backend is chosen by
    O(cluster), one item of the model's C(dc_clusters).
  - vSphere, C(switch_type=distributed) (default) - a distributed port group with that VLAN ID on
    O(switch), or on the one DVS the cluster's hosts are members of.
  - vSphere, C(switch_type=standard) - a standard port group on O(switch) (default C(vSwitch0)) of
    every host of the cluster.
  - Proxmox VE - an SDN vnet with that VLAN tag in O(zone) (a VLAN zone). The vnet id is O(vnet)
    (at most 8 lower-case letters and digits), the network's name goes into the vnet's alias. The
    pending SDN configuration is applied (C(PUT /cluster/sdn)) after each change. A plain Linux bridge
    VLAN (C(vmbr0.20)) is not managed; use a VLAN-aware bridge and the VM NIC's tag for that.
  - A VLAN change on an existing network is a change, shown in the diff.
extends_documentation_fragment: [twinsite.dc.cluster]
options:
  name:
    description: The network's name (port group name; vnet alias on Proxmox).
    type: str
    required: true
  vlan:
    description: The VLAN ID. Required with C(state=present).
    type: int
  state:
    description: Whether the network should exist.
    type: str
    choices: [present, absent]
    default: present
  switch_type:
    description: vSphere only. A distributed or a standard (per host) port group.
    type: str
    choices: [distributed, standard]
    default: distributed
  switch:
    description:
      - vSphere only. The DVS (distributed; default the cluster's only DVS) or the standard
        vSwitch (standard; default C(vSwitch0)).
    type: str
  vnet:
    description: Proxmox only. The vnet id; default O(name), which must then be a valid vnet id.
    type: str
  zone:
    description: Proxmox only. The SDN zone; default the cluster's C(sdn_zone) in the model.
    type: str
attributes:
  check_mode:
    support: full
    description: Returns the predicted network and changed=True, and calls nothing that writes.
  diff_mode:
    support: full
requirements: [pyvmomi (vsphere), proxmoxer (proxmox)]
author: twinsite engineers
"""

EXAMPLES = r"""
- name: The servers VLAN as a distributed port group
  twinsite.dc.network:
    cluster: "{{ dc_clusters | selectattr('name', 'eq', 'cl-primary') | first }}"
    name: servers
    vlan: 20

- name: The backup VLAN as an SDN vnet on the secondary cluster
  twinsite.dc.network:
    cluster: "{{ dc_clusters | selectattr('name', 'eq', 'cl-secondary') | first }}"
    name: backup
    vnet: backup
    zone: vlanzone
    vlan: 50

- name: Remove a test port group from every host
  twinsite.dc.network:
    cluster: "{{ dc_clusters | selectattr('name', 'eq', 'cl-primary') | first }}"
    name: t-lab
    switch_type: standard
    state: absent
"""

RETURN = r"""
network:
  description: The network after the task (predicted in check mode); null when absent.
  returned: success
  type: dict
  sample: {name: servers, vlan: 20, switch: dvs-core, switch_type: distributed}
diff:
  description: Before and after network (with --diff).
  returned: changed and diff mode
  type: dict
  sample: {before: {network: {name: servers, vlan: 20}}, after: {network: {name: servers, vlan: 21}}}
"""


from ansible_collections.twinsite.dc.plugins.module_utils import _cluster, _network
from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError, secret_aware_module


def decide(before: dict | None, params: dict) -> tuple[str | None, dict | None]:
    """The action to take (create, update, delete or None) and the network it leaves."""
    if params["state"] == "absent":
        return ("delete" if before else None), None
    if before is None:
        return "create", {"name": params["name"], "vlan": params["vlan"]}
    if before.get("vlan") != params["vlan"]:
        return "update", {**before, "vlan": params["vlan"]}
    return None, before


def run(module, cluster: dict) -> dict:
    params = module.params
    return _cluster.run(module, cluster, "network", diff_key="network",
                        backend=lambda client: _network.backend(cluster, client, params),
                        read=lambda net: net.read(),
                        plan=lambda before: decide(before, params),
                        write=lambda net, action, _before, after: getattr(net, action)(*([after] if after else [])))


def main():
    module = secret_aware_module()(
        argument_spec={
            "cluster": _cluster.CLUSTER_OPTION,
            "name": {"type": "str", "required": True},
            "vlan": {"type": "int"},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "switch_type": {"type": "str", "choices": ["distributed", "standard"], "default": "distributed"},
            "switch": {"type": "str"},
            "vnet": {"type": "str"},
            "zone": {"type": "str"},
        },
        required_if=[("state", "present", ["vlan"])],
        supports_check_mode=True,
    )
    if module.params["vlan"] is not None and not 0 <= module.params["vlan"] <= 4094:
        module.fail_json(msg=f"network {module.params['name']!r}: vlan must be 0-4094, found {module.params['vlan']}")
    cluster = _cluster.prepare(module)
    try:
        module.exit_json(**run(module, cluster))
    except TwinsiteError as exc:
        module.fail_json(msg=f"cluster {cluster.get('name')}: {exc}")


if __name__ == "__main__":
    main()
