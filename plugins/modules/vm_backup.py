#!/usr/bin/python
# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vm_backup
short_description: Back up one Proxmox VE VM now (vzdump), unless a recent enough backup exists
version_added: 0.3.0
description:
  - Makes sure VM O(vm) has a backup on O(storage) that is at most O(max_age_minutes) old; if it has none,
    runs a vzdump of it now, on the node it runs on, waits for it and returns the new backup. The backup
    a DR drill then restores with M(twinsite.dc.vm_backup_restore).
  - O(state=absent) deletes the one backup O(archive); nothing happens when it is already gone.
  - Backups are found by the VM's vmid on O(storage). A storage that is not shared (C(local)) is one
    directory per node, each asked once (one call per node); a shared one is asked once.
  - The age is measured with this machine's clock against the backup's time on the node's clock.
  - Proxmox VE only (vSphere has no vzdump; back vSphere VMs up with your backup product).
extends_documentation_fragment: [twinsite.dc.cluster]
options:
  vm:
    description: The VM to back up (its name). Required with O(state=present).
    type: str
  state:
    description: C(present) - a fresh enough backup exists (made if needed). C(absent) - backup O(archive) does not exist.
    type: str
    choices: [present, absent]
    default: present
  storage:
    description: The storage the backup goes to (and where existing backups are looked for); it needs C(backup) content.
    type: str
    default: local
  max_age_minutes:
    description:
      - A backup at most this old counts, and no new one is made. V(0) makes a new backup on every run (always a change).
    type: int
    default: 60
  mode:
    description: vzdump's mode - C(snapshot) (the VM keeps running), C(suspend), or C(stop) (shut down, back up, start again).
    type: str
    choices: [snapshot, suspend, stop]
    default: snapshot
  compress:
    description: Compression of the archive (C(.vma.zst) for zstd).
    type: str
    choices: ["0", gzip, lzo, zstd]
    default: zstd
  notes:
    description:
      - Notes of the new backup, PVE's C(notes-template) (C({{guestname}}), C({{vmid}}), C({{node}}), C({{cluster}})
        are filled in).
    type: str
  protected:
    description: Protect the new backup from pruning and removal.
    type: bool
    default: false
  archive:
    description:
      - The backup to delete with O(state=absent), by its volume id (C(local:backup/vzdump-qemu-201-2025_03_01-02_30_07.vma.zst)).
    type: str
  timeout:
    description: Seconds to wait for the backup (or removal) task.
    type: int
    default: 3600
attributes:
  check_mode:
    support: full
    description: Reads only. When a backup would be made, returns it as predicted (its name from this machine's clock) with C(changed=true).
  diff_mode:
    support: none
requirements: [proxmoxer, requests]
seealso:
  - module: twinsite.dc.vm_backup_restore
  - module: twinsite.dc.backup_job
author: twinsite engineers
"""

EXAMPLES = r"""
- name: A backup of dns1-replica no older than 15 minutes, before the drill restores it
  twinsite.dc.vm_backup:
    cluster: "{{ dc_clusters | selectattr('name', 'eq', 'cl-secondary') | first }}"
    vm: dns1-replica
    storage: local
    max_age_minutes: 15
    notes: "{{ '{{guestname}}' }} - before the DR drill"
  register: dns1_backup

- name: Back it up now, whatever the last backup's age
  twinsite.dc.vm_backup:
    cluster: "{{ dc_clusters | selectattr('name', 'eq', 'cl-secondary') | first }}"
    vm: dns1-replica
    max_age_minutes: 0

- name: Delete that backup
  twinsite.dc.vm_backup:
    cluster: "{{ dc_clusters | selectattr('name', 'eq', 'cl-secondary') | first }}"
    archive: "{{ dns1_backup.archive }}"
    state: absent
"""

RETURN = r"""
archive:
  description: The volume id of the backup (made, found fresh enough, or deleted).
  returned: always
  type: str
  sample: local:backup/vzdump-qemu-201-2025_03_01-02_30_07.vma.zst
backup_time:
  description: When the backup was taken, seconds since the epoch (PVE's C(ctime)); null when O(archive) was already gone.
  returned: always
  type: int
  sample: 1740796207
backup_time_iso:
  description: The same in ISO 8601, UTC.
  returned: always
  type: str
  sample: "2025-03-01T02:30:07Z"
backup:
  description:
    - The backup as the storage lists it; C(node) is the node whose storage holds it when the storage is not shared, else null.
      Empty with O(state=absent).
  returned: always
  type: dict
  sample: {volid: "local:backup/vzdump-qemu-201-2025_03_01-02_30_07.vma.zst", storage: local, node: pve2, vmid: 201,
           ctime: 1740796207, time: "2025-03-01T02:30:07Z", size: 2147484672, format: vma.zst, notes: "dns1-replica", protected: false}
vmid:
  description: The VM's vmid.
  returned: state is present
  type: int
  sample: 201
node:
  description: The node the VM runs on, where vzdump ran.
  returned: state is present
  type: str
  sample: pve2
actions:
  description: What was done (would be done in check mode).
  returned: always
  type: list
  elements: str
  sample: ["back up VM dns1-replica (vmid 201, node pve2) to storage 'local'"]
"""


from ansible_collections.twinsite.dc.plugins.module_utils import _cluster
from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError, secret_aware_module
from ansible_collections.twinsite.dc.plugins.module_utils._vm_backup import BackupService, ProxmoxBackups

ARGUMENT_SPEC = {
    "cluster": _cluster.CLUSTER_OPTION,
    "vm": {"type": "str"},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    "storage": {"type": "str", "default": "local"},
    "max_age_minutes": {"type": "int", "default": 60},
    "mode": {"type": "str", "choices": ["snapshot", "suspend", "stop"], "default": "snapshot"},
    "compress": {"type": "str", "choices": ["0", "gzip", "lzo", "zstd"], "default": "zstd"},
    "notes": {"type": "str"},
    "protected": {"type": "bool", "default": False},
    "archive": {"type": "str"},
    "timeout": {"type": "int", "default": 3600},
}


def main():
    module = secret_aware_module()(argument_spec=ARGUMENT_SPEC, supports_check_mode=True,
                                   required_if=[("state", "present", ("vm",)), ("state", "absent", ("archive",))])
    cluster = _cluster.prepare(module)
    if cluster.get("type") != "proxmox":
        module.fail_json(msg=f"cluster {cluster.get('name')}: vzdump backups are a Proxmox VE feature; "
                             f"this cluster is of type {cluster.get('type')!r}")
    if module.params["max_age_minutes"] < 0:
        module.fail_json(msg=f"cluster {cluster.get('name')}: max_age_minutes is {module.params['max_age_minutes']}; "
                             "give 0 or more minutes")
    try:
        backups = ProxmoxBackups(_cluster.connect(cluster), cluster, timeout=module.params["timeout"])
        outcome = BackupService(backups, module.check_mode).converge(module.params)
    except TwinsiteError as exc:
        module.fail_json(msg=f"cluster {cluster.get('name')}: {exc}")
    module.exit_json(**outcome)


if __name__ == "__main__":
    main()
