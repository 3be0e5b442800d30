# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""VM snapshots with one contract over vSphere and Proxmox VE.

A backend finds the VM once, then lists, creates, reverts and removes snapshots by name. Snapshots
are plain dicts ``{name, description, parent}`` (parent: the name of the snapshot it hangs from,
or None), sorted by name, so both backends return the same shape.
"""

from __future__ import annotations

from ansible_collections.twinsite.dc.plugins.module_utils._cluster import proxmox_vm
from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError


class VsphereSnapshots:
    def __init__(self, client, vm_name: str):
        from pyVmomi import vim

        self.client, self.obj = client, f"VM {vm_name!r}"
        # One retrieve for every VM: the snapshot tree comes with the name, no call per VM.
        rows = [r for r in client.retrieve(vim.VirtualMachine, ["name", "snapshot"]) if r.get("name") == vm_name]
        if not rows:
            raise TwinsiteError("no such VM in vCenter", obj=self.obj, action="lookup")
        self.vm, self._tree = rows[0]["_obj"], rows[0].get("snapshot")
        self._by_name = {}

    def list(self) -> list[dict]:
        self._by_name = {}
        found = []

        def walk(nodes, parent):
            for node in nodes or []:
                self._by_name[node.name] = node.snapshot
                found.append({"name": node.name, "description": node.description or "", "parent": parent})
                walk(node.childSnapshotList, node.name)

        walk(self._tree.rootSnapshotList if self._tree else [], None)
        return sorted(found, key=lambda s: s["name"])

    def refresh(self) -> list[dict]:
        from pyVmomi import vim

        rows = [r for r in self.client.retrieve(vim.VirtualMachine, ["snapshot"]) if r["_obj"] == self.vm]
        self._tree = rows[0].get("snapshot") if rows else None
        return self.list()

    def create(self, name: str, description: str, memory: bool, quiesce: bool) -> None:
        task = self.client.create_snapshot(self.vm, name, description, memory, quiesce)
        self.client.wait_task(task, obj=self.obj, action=f"snapshot {name!r}")

    def revert(self, name: str) -> None:
        self.client.wait_task_state(self.client.revert_snapshot(self._by_name[name]), obj=self.obj, action=f"revert to snapshot {name!r}")

    def remove(self, name: str) -> None:
        self.client.wait_task_state(self.client.remove_snapshot(self._by_name[name]), obj=self.obj, action=f"removal of snapshot {name!r}")


class ProxmoxSnapshots:
    def __init__(self, client, vm_name: str):
        self.client, self.obj = client, f"VM {vm_name!r}"
        row = proxmox_vm(client, vm_name)
        self.node, self.vmid = row["node"], row["vmid"]
        self.path = f"nodes/{self.node}/qemu/{self.vmid}/snapshot"

    def list(self) -> list[dict]:
        # "current" is PVE's marker for the running state, not a snapshot.
        snaps = [s for s in self.client.snapshots(self.node, self.vmid) if s.get("name") != "current"]
        return sorted(({"name": s["name"], "description": (s.get("description") or "").strip(), "parent": s.get("parent")} for s in snaps),
                      key=lambda s: s["name"])

    refresh = list

    def create(self, name: str, description: str, memory: bool, quiesce: bool) -> None:
        # quiesce is vSphere's; PVE freezes the guest through its agent when one runs.
        params = {"snapname": name, "description": description, "vmstate": int(memory)}
        self._wait(self.client.post(self.path, **params), f"snapshot {name!r}")

    def revert(self, name: str) -> None:
        self._wait(self.client.post(f"{self.path}/{name}/rollback"), f"revert to snapshot {name!r}")

    def remove(self, name: str) -> None:
        self._wait(self.client.delete(f"{self.path}/{name}"), f"removal of snapshot {name!r}")

    def _wait(self, upid, action: str) -> None:
        self.client.wait_task(self.node, upid, obj=self.obj, action=action)


def backend(cluster: dict, client, vm_name: str):
    return (VsphereSnapshots if cluster["type"] == "vsphere" else ProxmoxSnapshots)(client, vm_name)
