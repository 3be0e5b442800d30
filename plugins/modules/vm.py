#!/usr/bin/python
# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vm
short_description: One VM on vSphere or Proxmox VE, with the same options on both
version_added: 0.2.0
description:
  - Makes one VM match what is asked - cloned from a template (or from another VM, O(clone_from)), its
    CPUs, memory, disk, networks, notes and power - on the cluster given by O(cluster), one item of the
    site model's C(dc_clusters).
  - Reads the VM, compares, and writes only what differs; a second identical run changes nothing and
    makes no write call. The result is the VM in the site model's terms.
  - Never deletes a VM unless O(state=absent).
  - A clone that succeeded but whose reconfiguration failed is left in place (the error says so);
    the next run finds it by name and finishes it.
  - "vSphere: the VM is found by name in the whole vCenter; networks are distributed port groups of
    the same name; O(customization) is a Linux guest customization applied at clone time only."
  - "Proxmox VE: each network is a NIC on O(bridge) tagged with the network's VLAN from
    O(networks_model); O(customization) is written as cloud-init (C(ipconfig0), C(nameserver)) right
    after the clone; PVE's cloud-init names the guest after the VM."
  - "Power operations are hard (power off, reset): they need no guest tools."
extends_documentation_fragment: [twinsite.dc.cluster]
options:
  name:
    description: The VM's name.
    type: str
    required: true
  state:
    description:
      - C(present) - exists, power left as it is (a new clone stays off). C(started) / C(stopped) - exists
        and runs / does not. C(restarted) - exists and is reset (started if it was off); always a change.
        C(absent) - powered off and deleted with its disks.
    type: str
    choices: [present, absent, started, stopped, restarted]
    default: present
  template:
    description: The template to clone from when the VM does not exist. Not used once it exists.
    type: str
  clone_from:
    description:
      - An ordinary VM (not a template) to clone when the VM does not exist, instead of O(template); it is
        only read. A DR drill's test failover starts a copy of a replica VM this way, with O(networks) set to
        the isolated drill network, and never touches the replica itself. Not used once the VM exists.
      - "Proxmox VE: always a full clone (PVE links clones to templates only); the source may be running."
      - "vSphere: O(clone=linked) needs a snapshot of the source VM."
    type: str
    version_added: 0.3.0
  clone:
    description: Full copy, or linked to the source's disk (vSphere needs a snapshot of the template or VM; Proxmox a template).
    type: str
    choices: [full, linked]
    default: full
  cpus:
    description: Virtual CPUs.
    type: int
  memory_mb:
    description: Memory in MiB.
    type: int
  disk_gb:
    description: Size of the first disk in GiB. Disks only grow; a smaller value is an error naming the VM.
    type: int
  networks:
    description: Names of the model's C(dc_networks), one NIC each, in order. Compared as a set.
    type: list
    elements: str
  networks_model:
    description: The model's C(dc_networks) (name and vlan of each). Proxmox needs it to turn names into VLAN tags.
    type: list
    elements: dict
  bridge:
    description: Proxmox bridge every NIC is attached to (VLAN-aware).
    type: str
    default: vmbr0
  notes:
    description: Free text (vSphere annotation, Proxmox description).
    type: str
  tags:
    description:
      - The VM's tags, exactly (compared as a set); V([]) removes all. Not given, tags are left as they are.
      - "Proxmox VE: the C(tags) of the VM's config (stored in lower case, V(;)-separated)."
      - "vSphere: vAPI tags attached to the VM. V(backup:daily) is tag C(daily) of category C(backup); a name
        without a category is in category C(twinsite). Missing categories (many tags per VM) and tags are
        created. Tags of every category attached to the VM count, so ones not listed are detached.
        vSphere tags are read only when this option is given (they cost REST calls), so only then is
        C(tags) in the result."
    type: list
    elements: str
  folder:
    description: vSphere VM folder, relative to the datacenter's VM folder (C(Servers), C(Servers/Linux)).
    type: str
  node:
    description: Proxmox node the clone goes to (default the template's).
    type: str
  vmid:
    description:
      - Proxmox id of the clone (default the cluster's next free id, chosen again when another VM takes it before the clone starts).
      - An id in use is an error.
    type: int
  customization:
    description: Guest identity and address, applied when the VM is created.
    type: dict
    suboptions:
      hostname: {description: Host name (FQDN allowed on vSphere)., type: str}
      ip: {description: IPv4 address of the first NIC., type: str}
      prefix: {description: Prefix length of O(customization.ip)., type: int, default: 24}
      gateway: {description: Default gateway., type: str}
      dns: {description: DNS servers., type: list, elements: str}
  allow_restart:
    description: Let the module power a running VM off and on again to change its CPUs or memory. Off, that is an error.
    type: bool
    default: false
  timeout:
    description: Seconds to wait for each vendor task.
    type: int
    default: 600
attributes:
  check_mode:
    support: full
    description: Reads, then returns the predicted VM with C(changed=true) and the planned C(actions); no write call.
  diff_mode:
    support: full
    description: Before and after in the model's terms, keys sorted.
requirements: [pyvmomi (vsphere), proxmoxer and requests (proxmox)]
author: twinsite engineers
"""

EXAMPLES = r"""
- name: Web server on the primary cluster
  twinsite.dc.vm:
    cluster: "{{ dc_clusters | selectattr('name', 'eq', 'cl-primary') | first }}"
    name: web2
    template: tpl-debian12
    folder: Servers
    cpus: 2
    memory_mb: 4096
    disk_gb: 40
    networks: [servers, dmz]
    notes: Second portal node
    tags: [prod, "backup:daily"]
    customization: {hostname: web2.town.example, ip: 192.0.2.22, prefix: 24, gateway: 192.0.2.254, dns: [192.0.2.53]}
    state: started

- name: The same VM on the Proxmox cluster
  twinsite.dc.vm:
    cluster: "{{ dc_clusters | selectattr('name', 'eq', 'cl-secondary') | first }}"
    networks_model: "{{ dc_networks }}"
    name: web2
    template: tpl-debian12
    node: pve2
    vmid: 122
    cpus: 2
    memory_mb: 4096
    networks: [servers]
    state: started

- name: DR drill - start a copy of the replica on the isolated drill network (the replica is not touched)
  twinsite.dc.vm:
    cluster: "{{ dc_clusters | selectattr('name', 'eq', 'cl-secondary') | first }}"
    networks_model: "{{ dc_networks }}"
    name: dns1-drill
    clone_from: dns1-replica
    networks: [drill]
    state: started

- name: Remove it
  twinsite.dc.vm:
    cluster: "{{ dc_clusters | selectattr('name', 'eq', 'cl-secondary') | first }}"
    name: web2
    state: absent
"""

RETURN = r"""
vm:
  description: The VM after the run (predicted in check mode), in the model's terms; empty when absent.
  returned: always
  type: dict
  sample:
    name: web2
    id: 5029b2c5-3a64-4d5e-9d1f-1b0a0c1f2e3d
    cluster: cl-primary
    host: esx01.town.example
    cpus: 2
    memory_mb: 4096
    disk_gb: 40
    networks: [servers, dmz]
    power: "on"
    template: false
    notes: Second portal node
    tags: [backup:daily, prod]
actions:
  description: What was done (would be done in check mode), in order.
  returned: always
  type: list
  elements: str
  sample: ["clone from template tpl-debian12 (full)", "reconfigure cpus=2, memory_mb=4096", "power on"]
  # or, with clone_from: ["clone from VM dns1-replica (full)", "reconfigure networks=['drill']", "power on"]
diff:
  description: The VM before and after, keys sorted.
  returned: always
  type: dict
  sample: {before: {cpus: 2, name: web2}, after: {cpus: 4, name: web2}}
"""


from ansible_collections.twinsite.dc.plugins.module_utils import _cluster
from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError, secret_aware_module
from ansible_collections.twinsite.dc.plugins.module_utils._vm import VmService, open_backend

ARGUMENT_SPEC = {
    "cluster": {"type": "dict", "required": True},
    "name": {"type": "str", "required": True},
    "state": {"type": "str", "default": "present", "choices": ["present", "absent", "started", "stopped", "restarted"]},
    "template": {"type": "str"},
    "clone_from": {"type": "str"},
    "clone": {"type": "str", "default": "full", "choices": ["full", "linked"]},
    "cpus": {"type": "int"},
    "memory_mb": {"type": "int"},
    "disk_gb": {"type": "int"},
    "networks": {"type": "list", "elements": "str"},
    "networks_model": {"type": "list", "elements": "dict"},
    "bridge": {"type": "str", "default": "vmbr0"},
    "notes": {"type": "str"},
    "tags": {"type": "list", "elements": "str"},
    "folder": {"type": "str"},
    "node": {"type": "str"},
    "vmid": {"type": "int"},
    "customization": {"type": "dict", "options": {
        "hostname": {"type": "str"}, "ip": {"type": "str"}, "prefix": {"type": "int", "default": 24},
        "gateway": {"type": "str"}, "dns": {"type": "list", "elements": "str"}}},
    "allow_restart": {"type": "bool", "default": False},
    "timeout": {"type": "int", "default": 600},
}


def main():
    module = secret_aware_module()(argument_spec=ARGUMENT_SPEC, supports_check_mode=True, mutually_exclusive=[("template", "clone_from")])
    params, cluster = module.params, module.params["cluster"]
    _cluster.prepare(module)
    try:
        with open_backend(cluster, params["networks_model"], params["timeout"], tags=params["tags"] is not None) as backend:
            outcome = VmService(backend, module.check_mode).converge(params)
    except TwinsiteError as exc:
        module.fail_json(msg=f"cluster {cluster.get('name')}: {exc}")
    module.exit_json(**outcome)


if __name__ == "__main__":
    main()
