#!/usr/bin/python
# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vm_info
short_description: The VMs of a vSphere or Proxmox VE cluster, in the site model's terms
version_added: 0.2.0
description:
  - Without O(name), every VM of the cluster in one bulk read (one PropertyCollector retrieve, or one
    C(/cluster/resources) call). On Proxmox that bulk read carries no networks or notes.
  - With O(name), that one VM in full (on Proxmox one more call, for its config).
  - Templates are not listed.
extends_documentation_fragment: [twinsite.dc.cluster]
options:
  name:
    description: One VM's name.
    type: str
  with_tags:
    description:
      - vSphere - read each VM's vAPI tags into C(tags) (V(backup:daily), or the name alone in category C(twinsite)).
        Without O(name), one REST call per tag and per category plus one for all attachments, never one per VM;
        with O(name), one for the VM plus one per tag. Needs vCenter's tagging service (not an ESXi host).
      - Proxmox VE tags are always read (they come with the VM at no cost) and this option is ignored.
    type: bool
    default: true
  networks_model:
    description: The model's C(dc_networks), so Proxmox VLAN tags read back as network names.
    type: list
    elements: dict
attributes:
  check_mode:
    support: full
    description: Reads only.
  diff_mode:
    support: none
requirements: [pyvmomi (vsphere), proxmoxer and requests (proxmox)]
author: twinsite engineers
"""

EXAMPLES = r"""
- name: Every VM of the secondary cluster
  twinsite.dc.vm_info:
    cluster: "{{ dc_clusters | selectattr('name', 'eq', 'cl-secondary') | first }}"
  register: secondary

- name: One VM, networks by name
  twinsite.dc.vm_info:
    cluster: "{{ dc_clusters | selectattr('name', 'eq', 'cl-secondary') | first }}"
    networks_model: "{{ dc_networks }}"
    name: backup-proxy
"""

RETURN = r"""
vms:
  description: The VMs, sorted by name; empty when O(name) does not exist.
  returned: success
  type: list
  elements: dict
  sample: [{name: backup-proxy, id: 110, vmid: 110, node: pve1, cluster: cl-secondary, cpus: 2, memory_mb: 4096,
            disk_gb: 32, networks: [backup], power: "on", template: false, notes: "", tags: [backup]}]
"""


from ansible_collections.twinsite.dc.plugins.module_utils import _cluster
from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError, secret_aware_module
from ansible_collections.twinsite.dc.plugins.module_utils._vm import open_backend, public


def main():
    module = secret_aware_module()(
        argument_spec={"cluster": {"type": "dict", "required": True}, "name": {"type": "str"},
                       "networks_model": {"type": "list", "elements": "dict"}, "with_tags": {"type": "bool", "default": True}},
        supports_check_mode=True,
    )
    cluster, name = module.params["cluster"], module.params["name"]
    _cluster.prepare(module)
    try:
        with open_backend(cluster, module.params["networks_model"], tags=module.params["with_tags"]) as backend:
            found = ([backend.read(name)] if name else backend.list())
    except TwinsiteError as exc:
        module.fail_json(msg=f"cluster {cluster.get('name')}: {exc}")
    module.exit_json(changed=False, vms=sorted((public(v) for v in found if v), key=lambda v: v["name"]))


if __name__ == "__main__":
    main()
