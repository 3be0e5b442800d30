#!/usr/bin/python
# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vm_backup_restore
short_description: Restore a Proxmox VE VM's vzdump backup as a new VM, on the networks given
version_added: 0.3.0
description:
  - Restores the newest backup of VM O(source) (or the backup O(archive)) as a new VM O(name), with a new
    vmid and new MACs, its NICs put on O(networks) in the restore itself, so that it never starts on the
    backed-up VM's networks. The DR drill's C(vm_backup_restore) method - restore on the isolated drill
    network, probe, remove - and the way back from a lost VM.
  - The backed-up VM is only read; it may be gone altogether (give O(source_vmid) or O(archive) then).
  - Once VM O(name) exists it is not restored again (C(changed=false)); O(state=started) powers it on.
    To restore a newer backup, remove it first (O(state=absent)).
  - "The restored VM's notes end with a mark, C(twinsite-restore: archive=<volid> backup_time=<epoch>). It tells
    a later run which backup the VM came from (returned as RV(archive) and RV(backup_time), for a drill's achieved
    RPO), and O(state=absent) deletes only a VM that carries it - a mistyped name never deletes a production VM."
  - "With O(replace=true) an existing VM O(name) gets the backup's disks instead (PVE's restore with C(force)), a
    failback bringing home what changed on the copy a failover ran. The VM keeps its vmid, node, name, notes, NICs
    (with their MACs) and SMBIOS uuid; it is powered off first. Only a backup of this VM, or of a VM restored from a
    backup of it, is accepted. Its notes then end with C(twinsite-replaced: archive=<volid> backup_time=<epoch>
    origin=<volid>), the origin being the backup the copy was restored from; a later run whose backup has the same
    origin changes nothing (a rerun of a failback after a newer backup of the same copy). PVE deletes the VM's
    disks before it restores over it; a replace that fails says so, and the next run replaces them again."
  - A restore that fails leaves nothing behind (PVE keeps the new VM's config; it is removed, and the error says so).
  - "A backup on a storage that is not shared (C(local)) exists on the node that made it only: it is restored
    there unless O(node) says otherwise, which is then an error naming the node to use."
  - Proxmox VE only. Networks map to NICs as in M(twinsite.dc.vm) - a NIC on O(bridge) tagged with the
    network's VLAN from O(networks_model).
extends_documentation_fragment: [twinsite.dc.cluster]
options:
  name:
    description: The restored VM's name.
    type: str
    required: true
  state:
    description:
      - C(present) - restored (and left powered off). C(started) - restored and running.
        C(absent) - powered off and deleted with its disks, if it carries the restore mark.
    type: str
    choices: [present, started, absent]
    default: present
  source:
    description:
      - The VM whose newest backup on O(storage) is restored, by name.
      - One of O(source), O(source_vmid) and O(archive) is needed to restore.
    type: str
  source_vmid:
    description: The same by vmid, for a VM that no longer exists.
    type: int
  archive:
    description: This backup rather than the newest, by its volume id (C(local:backup/vzdump-qemu-201-2025_03_01-02_30_07.vma.zst)).
    type: str
  storage:
    description: The storage holding the backups of O(source) / O(source_vmid). Not used with O(archive), which names its storage.
    type: str
    default: local
  node:
    description:
      - The node to restore on. Default - the node holding the backup (storage not shared), else the backed-up VM's
        node, else the first node.
    type: str
  vmid:
    description:
      - The restored VM's vmid. Default - the cluster's next free one, chosen again when another VM takes it before the restore starts.
      - A vmid in use is an error, never overwritten.
    type: int
  target_storage:
    description: The storage the restored disks go to. Default - the storage each disk was on.
    type: str
  networks:
    description:
      - Names of the model's C(dc_networks), one NIC each, in order, replacing the backed-up VM's NICs (surplus NICs
        are removed). Not given, the NICs stay on the backed-up VM's networks - never what a drill wants.
    type: list
    elements: str
  networks_model:
    description: The model's C(dc_networks) (name and vlan of each), to turn O(networks) into VLAN tags and read them back.
    type: list
    elements: dict
  bridge:
    description: The bridge every NIC is attached to (VLAN-aware).
    type: str
    default: vmbr0
  replace:
    description:
      - When VM O(name) exists, put the backup's disks under it rather than leave it as it is (see above).
      - A VM that does not exist (a failback onto a primary that lost it) is restored as that VM - under the vmid it had
        (the one in the origin of the backup's data) while no other VM holds it, with the replace mark in its notes and no
        restore mark, so O(state=absent) refuses it and a rerun changes nothing. Set O(unique=false) to keep its MACs.
    type: bool
    default: false
  unique:
    description:
      - Give the restored VM new MACs (and SMBIOS uuid), so that it never clashes with the backed-up VM. Keep it on for a copy
        that runs beside the backed-up VM (a DR drill).
      - Off, the restored VM keeps the backup's MACs on O(networks). For a VM that takes over from one that is stopped or lost
        (a DR failover, a failback onto a primary whose VM is gone), so that DHCP reservations, switch port security and licences bound
        to a MAC still know it.
    type: bool
    default: true
  timeout:
    description: Seconds to wait for each task (the restore, start, stop, delete).
    type: int
    default: 3600
attributes:
  check_mode:
    support: full
    description: >-
      Reads only (one more call reads the VM config inside the backup); returns the VM that would be restored, with
      C(changed=true) and the planned C(actions).
  diff_mode:
    support: full
    description: The VM before and after, in the model's terms, keys sorted.
requirements: [proxmoxer, requests]
seealso:
  - module: twinsite.dc.vm_backup
  - module: twinsite.dc.vm
author: twinsite engineers
"""

EXAMPLES = r"""
- name: DR drill - restore dns1-replica's newest backup on the isolated drill network, running
  twinsite.dc.vm_backup_restore:
    cluster: "{{ dc_clusters | selectattr('name', 'eq', 'cl-secondary') | first }}"
    networks_model: "{{ dc_networks }}"
    source: dns1-replica
    name: dns1-drill
    networks: [drill]
    state: started
  register: restored

- name: The drill's achieved RPO - from the restored backup to now
  ansible.builtin.debug:
    msg: "RPO {{ (now(utc=true).timestamp() - restored.backup_time) | int }} s, backup {{ restored.archive }}"

- name: Restore a given backup of a VM that is gone, as vmid 4201 on pve1
  twinsite.dc.vm_backup_restore:
    cluster: "{{ dc_clusters | selectattr('name', 'eq', 'cl-secondary') | first }}"
    networks_model: "{{ dc_networks }}"
    archive: local:backup/vzdump-qemu-201-2025_03_01-02_30_07.vma.zst
    name: dns1-restored
    vmid: 4201
    node: pve1
    networks: [servers]

- name: Failback - what changed on intranet1-dr, the failover's copy, goes back into intranet1 (same vmid, MACs, notes)
  twinsite.dc.vm_backup_restore:
    cluster: "{{ dc_clusters | selectattr('name', 'eq', 'cl-secondary') | first }}"
    name: intranet1
    archive: "{{ last_backup_of_intranet1_dr.archive }}"
    replace: true
    state: started

- name: The drill's cleanup
  twinsite.dc.vm_backup_restore:
    cluster: "{{ dc_clusters | selectattr('name', 'eq', 'cl-secondary') | first }}"
    name: dns1-drill
    state: absent
"""

RETURN = r"""
vm:
  description: The restored VM (predicted in check mode) as M(twinsite.dc.vm_info) shows it; empty once absent.
  returned: always
  type: dict
  sample: {name: dns1-drill, id: 4201, vmid: 4201, node: pve2, cluster: cl-secondary, template: false, cpus: 2, memory_mb: 2048,
           disk_gb: 20, networks: [drill], power: "on", tags: [],
           notes: "twinsite-restore: archive=local:backup/vzdump-qemu-201-2025_03_01-02_30_07.vma.zst backup_time=1740796207"}
vmid:
  description: The restored VM's vmid (the removed one's with O(state=absent)); null when there is none.
  returned: always
  type: int
  sample: 4201
node:
  description: The node the restored VM is on.
  returned: always
  type: str
  sample: pve2
archive:
  description: The backup the VM was restored from (read from its restore mark when it existed already); null when unknown.
  returned: always
  type: str
  sample: local:backup/vzdump-qemu-201-2025_03_01-02_30_07.vma.zst
backup_time:
  description: When that backup was taken, seconds since the epoch (the start of the data the VM holds); null when unknown.
  returned: always
  type: int
  sample: 1740796207
backup_time_iso:
  description: The same in ISO 8601, UTC.
  returned: always
  type: str
  sample: "2025-03-01T02:30:07Z"
actions:
  description: What was done (would be done in check mode), in order.
  returned: always
  type: list
  elements: str
  sample:
    - >-
      restore backup local:backup/vzdump-qemu-201-2025_03_01-02_30_07.vma.zst of 2025-03-01T02:30:07Z
      as VM dns1-drill (vmid 4201) on node pve2
    - power on
diff:
  description: The VM before and after, keys sorted.
  returned: always
  type: dict
  sample: {before: {}, after: {name: dns1-drill, power: "on"}}
"""


from ansible_collections.twinsite.dc.plugins.module_utils import _cluster
from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError, secret_aware_module
from ansible_collections.twinsite.dc.plugins.module_utils._vm_backup import ProxmoxBackups, RestoreService
from ansible_collections.twinsite.dc.plugins.module_utils._vm_proxmox import ProxmoxVms

ARGUMENT_SPEC = {
    "cluster": _cluster.CLUSTER_OPTION,
    "name": {"type": "str", "required": True},
    "state": {"type": "str", "choices": ["present", "started", "absent"], "default": "present"},
    "source": {"type": "str"},
    "source_vmid": {"type": "int"},
    "archive": {"type": "str"},
    "storage": {"type": "str", "default": "local"},
    "node": {"type": "str"},
    "vmid": {"type": "int"},
    "target_storage": {"type": "str"},
    "networks": {"type": "list", "elements": "str"},
    "networks_model": {"type": "list", "elements": "dict"},
    "bridge": {"type": "str", "default": "vmbr0"},
    "replace": {"type": "bool", "default": False},
    "unique": {"type": "bool", "default": True},
    "timeout": {"type": "int", "default": 3600},
}


def main():
    module = secret_aware_module()(
        argument_spec=ARGUMENT_SPEC, supports_check_mode=True,
        mutually_exclusive=[("source", "source_vmid", "archive")],
        required_if=[("state", "present", ("source", "source_vmid", "archive"), True),
                     ("state", "started", ("source", "source_vmid", "archive"), True)],
    )
    params = module.params
    cluster = _cluster.prepare(module)
    if cluster.get("type") != "proxmox":
        module.fail_json(msg=f"cluster {cluster.get('name')}: vzdump backups are a Proxmox VE feature; "
                             f"this cluster is of type {cluster.get('type')!r}")
    try:
        client = _cluster.connect(cluster)
        vms = ProxmoxVms(client, cluster, params["networks_model"], bridge=params["bridge"], timeout=params["timeout"])
        backups = ProxmoxBackups(client, cluster, timeout=params["timeout"])
        outcome = RestoreService(vms, backups, module.check_mode).converge(params)
    except TwinsiteError as exc:
        module.fail_json(msg=f"cluster {cluster.get('name')}: {exc}")
    module.exit_json(**outcome)


if __name__ == "__main__":
    main()
