#!/usr/bin/python
# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: snapshot
short_description: Create, revert to or remove a VM snapshot on vSphere or Proxmox VE
version_added: 0.2.0
description:
  - The "snapshot before change" of twinsite's roles. The same options on both backends; the backend
    is chosen by O(cluster), one item of the model's C(dc_clusters).
  - C(state=present) creates the snapshot unless the VM already has one with that name (unchanged).
    C(state=absent) removes it if it exists (unchanged otherwise). C(state=reverted) reverts the VM
    to it; this always reports a change, because whether the VM changed since cannot be known.
  - Names are unique per VM in twinsite; if a vSphere VM holds two snapshots with the same name,
    the module acts on the last one in the tree.
extends_documentation_fragment: [twinsite.dc.cluster]
options:
  vm:
    description: The VM's name (vSphere inventory name, or Proxmox guest name).
    type: str
    required: true
  name:
    description: The snapshot's name.
    type: str
    required: true
  state:
    description: What to do.
    type: str
    choices: [present, reverted, absent]
    default: present
  description:
    description: The snapshot's description, set at creation only.
    type: str
    default: ""
  memory:
    description: Include the VM's memory (vSphere), or its RAM state (Proxmox C(vmstate)).
    type: bool
    default: false
  quiesce:
    description: Quiesce the guest file systems through VMware Tools (vSphere only; ignored on Proxmox).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Returns the predicted snapshot list and changed=True, and calls nothing that writes.
  diff_mode:
    support: full
    description: Before and after snapshot lists.
requirements: [pyvmomi (vsphere), proxmoxer (proxmox)]
author: twinsite engineers
"""

EXAMPLES = r"""
- name: Snapshot db1 before the upgrade
  twinsite.dc.snapshot:
    cluster: "{{ dc_clusters | selectattr('name', 'eq', 'cl-primary') | first }}"
    vm: db1
    name: before-pg16
    description: Taken by the postgresql_server role

- name: Roll back when the upgrade failed
  twinsite.dc.snapshot:
    cluster: "{{ dc_clusters | selectattr('name', 'eq', 'cl-primary') | first }}"
    vm: db1
    name: before-pg16
    state: reverted

- name: Remove the snapshot of the replica
  twinsite.dc.snapshot:
    cluster: "{{ dc_clusters | selectattr('name', 'eq', 'cl-secondary') | first }}"
    vm: dns1-replica
    name: before-pg16
    state: absent
"""

RETURN = r"""
snapshots:
  description: The VM's snapshots after the task (predicted in check mode), sorted by name.
  returned: success
  type: list
  elements: dict
  sample: [{name: before-pg16, description: Taken by the postgresql_server role, parent: null}]
diff:
  description: Before and after snapshot lists (with --diff).
  returned: changed and diff mode
  type: dict
  sample: {before: {snapshots: []}, after: {snapshots: [{name: before-pg16, description: "", parent: null}]}}
"""


from ansible_collections.twinsite.dc.plugins.module_utils import _cluster, _snapshot
from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError, secret_aware_module


def predict(before: list[dict], params: dict) -> tuple[bool, list[dict]]:
    """Whether the task changes anything, and the snapshot list it leaves."""
    name, state = params["name"], params["state"]
    exists = any(s["name"] == name for s in before)
    if state == "present":
        if exists:
            return False, before
        current = None  # the new snapshot hangs from the VM's current one; not predicted exactly
        return True, sorted([*before, {"name": name, "description": params["description"], "parent": current}], key=lambda s: s["name"])
    if state == "absent":
        return exists, [s for s in before if s["name"] != name]
    if not exists:
        raise TwinsiteError("the VM has no snapshot of this name", obj=f"snapshot {name!r} of VM {params['vm']!r}", action="revert")
    return True, before


def apply(snaps, params: dict) -> None:
    name = params["name"]
    if params["state"] == "present":
        snaps.create(name, params["description"], params["memory"], params["quiesce"])
    elif params["state"] == "absent":
        snaps.remove(name)
    else:
        snaps.revert(name)


def run(module, cluster: dict) -> dict:
    params = module.params
    return _cluster.run(module, cluster, "snapshots", diff_key="snapshots",
                        backend=lambda client: _snapshot.backend(cluster, client, params["vm"]),
                        read=lambda snaps: snaps.list(),
                        plan=lambda before: predict(before, params),
                        write=lambda snaps, _change, _before, _after: apply(snaps, params),
                        reread=lambda _client, snaps: snaps.refresh())


def main():
    module = secret_aware_module()(
        argument_spec={
            "cluster": _cluster.CLUSTER_OPTION,
            "vm": {"type": "str", "required": True},
            "name": {"type": "str", "required": True},
            "state": {"type": "str", "choices": ["present", "reverted", "absent"], "default": "present"},
            "description": {"type": "str", "default": ""},
            "memory": {"type": "bool", "default": False},
            "quiesce": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    cluster = _cluster.prepare(module)
    try:
        module.exit_json(**run(module, cluster))
    except TwinsiteError as exc:
        module.fail_json(msg=f"cluster {cluster.get('name')}: {exc}")


if __name__ == "__main__":
    main()
