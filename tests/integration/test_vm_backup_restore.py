"""The hypervisor pieces of the DR drill's two VM methods, through `ansible` against the lab:

- vm_backup_restore: twinsite.dc.vm_backup backs a VM up (vzdump on fakepve), twinsite.dc.vm_backup_restore
  restores it as a new VM on the isolated drill network and starts it, a second run changes nothing, absent
  removes it, absent again changes nothing; a missing archive is an error naming it.
- replica_vm (test failover): twinsite.dc.vm `clone_from` copies a replica VM (not a template) onto the drill
  network and starts the copy, on Proxmox VE and on vSphere; the replica itself is not touched.

Each step is checked by reading the simulator directly. Test VMs and backups are named t-... (a VM the test
clones from dns1-replica is what gets backed up, so the model's VMs gain no test backups), and are removed
in a `finally` whatever happens."""

from __future__ import annotations

import pytest
from test_vm import CLUSTERS, cluster_expr, live, pve_api, run_module, vm

PVE = CLUSTERS["proxmox"]
SOURCE, RESTORED, COPY = "t-bk-src", "t-bk-restored", "t-replica-drill"
DRILL_VLAN = 70  # dc_networks "drill" (inventory/lab/group_vars/all/networks.yml)


def backup(check: bool = False, **args) -> dict:
    return run_module("vm_backup", {"cluster": cluster_expr(PVE), **args}, check=check)


def restore(check: bool = False, **args) -> dict:
    return run_module("vm_backup_restore", {"cluster": cluster_expr(PVE), "networks_model": "{{ dc_networks }}", **args}, check=check)


def backups_on_pve(api, vmid: int) -> dict[str, dict]:
    """{volid: item} of every backup of ``vmid`` on storage local, on every node (local is per node)."""
    found = {}
    for node in ("pve1", "pve2"):
        for item in api.nodes(node).storage("local").content.get(content="backup", vmid=vmid):
            found[item["volid"]] = {**item, "node": node}
    return found


def pve_config(api, name: str) -> dict | None:
    rows = [r for r in api.cluster.resources.get(type="vm") if r.get("name") == name]
    return api.nodes(rows[0]["node"]).qemu(rows[0]["vmid"]).config.get() if rows else None


def test_backup_then_restore_on_the_drill_network(lab, ca_pem):
    api = pve_api(lab, ca_pem)
    source_vmid, earlier = None, {}
    try:
        # The VM backed up: a full copy of the replica, on two networks, so the restore must drop one.
        made = vm(PVE, name=SOURCE, clone_from="dns1-replica", networks=["servers", "dmz"])
        assert made["rc"] == 0 and made["changed"], made["output"]
        source_vmid, source_node = made["vm"]["vmid"], made["vm"]["node"]
        # PVE reuses the vmid of a deleted VM: backups of an earlier VM with this vmid (the DR
        # failback's intranet1-dr, say) may already be on the storage. They are not this VM's.
        earlier = backups_on_pve(api, source_vmid)

        # vm_backup: check mode makes nothing; then a backup; then it is fresh enough.
        planned = backup(check=True, vm=SOURCE)
        assert planned["rc"] == 0 and planned["changed"], planned["output"]
        assert backups_on_pve(api, source_vmid) == earlier
        first = backup(vm=SOURCE, notes="{{ '{{guestname}}' }} - twinsite test")
        assert first["rc"] == 0 and first["changed"] and first["node"] == source_node, first["output"]
        listed = {volid: b for volid, b in backups_on_pve(api, source_vmid).items() if volid not in earlier}
        assert list(listed) == [first["archive"]] and first["archive"].endswith(".vma.zst")
        item = listed[first["archive"]]
        assert item["ctime"] == first["backup_time"] and item["node"] == source_node and item["notes"] == f"{SOURCE} - twinsite test"
        again = backup(vm=SOURCE)
        assert again["rc"] == 0 and not again["changed"] and again["archive"] == first["archive"], again["output"]

        # vm_backup_restore: check mode predicts, restores nothing.
        args = {"source": SOURCE, "name": RESTORED, "networks": ["drill"], "state": "started"}
        predicted = restore(check=True, **args)
        assert predicted["rc"] == 0 and predicted["changed"], predicted["output"]
        assert predicted["vm"]["networks"] == ["drill"] and predicted["vm"]["power"] == "on"
        assert live(lab, ca_pem, "proxmox", RESTORED) is None

        # Restore: a NEW VM, running, with one NIC on the drill VLAN and a MAC of its own.
        restored = restore(**args)
        assert restored["rc"] == 0 and restored["changed"], restored["output"]
        assert restored["archive"] == first["archive"] and restored["backup_time"] == first["backup_time"]
        seen = live(lab, ca_pem, "proxmox", RESTORED)
        assert seen is not None and seen["power"] == "on" and seen["id"] == restored["vmid"] != source_vmid
        config = pve_config(api, RESTORED)
        source_config = pve_config(api, SOURCE)
        nics = sorted(k for k in config if k.startswith("net"))
        assert nics == ["net0"] and f"tag={DRILL_VLAN}" in config["net0"]
        assert config["net0"].split(",")[0] != source_config["net0"].split(",")[0]  # model=MAC differs from the source's
        assert f"twinsite-restore: archive={first['archive']} backup_time={first['backup_time']}" in config["description"]
        for key in ("cpus", "memory_mb", "disk_gb", "networks", "power", "node", "vmid"):
            assert predicted["vm"][key] == restored["vm"][key], key  # check mode predicted what the restore made
        info = run_module("vm_info", {"cluster": cluster_expr(PVE), "name": RESTORED, "networks_model": "{{ dc_networks }}"})
        assert info["rc"] == 0 and info["vms"][0]["networks"] == ["drill"], info["output"]

        # Again: it exists, nothing to do, and it still says which backup it holds (the drill's RPO).
        second = restore(**args)
        assert second["rc"] == 0 and not second["changed"] and second["actions"] == [], second["output"]
        assert second["archive"] == first["archive"] and second["backup_time_iso"] == first["backup_time_iso"]

        # The drill's cleanup, twice.
        gone = restore(name=RESTORED, state="absent")
        assert gone["rc"] == 0 and gone["changed"] and gone["actions"] == ["power off", "delete"], gone["output"]
        assert live(lab, ca_pem, "proxmox", RESTORED) is None
        still_gone = restore(name=RESTORED, state="absent")
        assert still_gone["rc"] == 0 and not still_gone["changed"], still_gone["output"]

        # A backup that does not exist is an error naming it; nothing is made.
        archive = f"local:backup/vzdump-qemu-{source_vmid}-2000_01_01-00_00_00.vma.zst"
        missing = restore(archive=archive, name=RESTORED, networks=["drill"])
        assert missing["rc"] != 0 and f"restore of backup archive '{archive}' failed: no such backup on storage 'local'" in missing["msg"]
        assert live(lab, ca_pem, "proxmox", RESTORED) is None

        # The source VM is only read; the backup can be deleted, once.
        assert live(lab, ca_pem, "proxmox", SOURCE)["id"] == source_vmid
        deleted = backup(state="absent", archive=first["archive"])
        assert deleted["rc"] == 0 and deleted["changed"] and backups_on_pve(api, source_vmid) == earlier, deleted["output"]
        assert not backup(state="absent", archive=first["archive"])["changed"]
        assert "lab-pve-pw" not in first["output"] + restored["output"]
    finally:
        restore(name=RESTORED, state="absent")
        if source_vmid is not None:
            for volid in backups_on_pve(api, source_vmid):
                if volid not in earlier:  # only this test's; an earlier VM's backups are not ours
                    backup(state="absent", archive=volid)
        vm(PVE, name=SOURCE, state="absent")


@pytest.mark.parametrize("kind", ["proxmox", "vsphere"])
def test_replica_copy_started_on_the_drill_network(kind, lab, ca_pem):
    """A test failover of a replica: a copy of it runs on the drill network; the replica stays as it was.
    Proxmox copies the model's dns1-replica (stopped); vcsim's model has no replica, so the test makes one."""
    cl = CLUSTERS[kind]
    replica = "dns1-replica" if kind == "proxmox" else "t-replica-src"
    try:
        if kind == "vsphere":
            made = vm(cl, name=replica, template="tpl-debian12", folder="Servers", networks=["servers"])
            assert made["rc"] == 0, made["output"]
        before = live(lab, ca_pem, kind, replica)
        assert before is not None and before["power"] == "off"
        args = {"name": COPY, "clone_from": replica, "folder": "Servers", "networks": ["drill"], "state": "started"}

        planned = vm(cl, check=True, **args)
        assert planned["rc"] == 0 and planned["changed"], planned["output"]
        assert planned["actions"] == [f"clone from VM {replica} (full)", "reconfigure networks=['drill']", "power on"]
        assert live(lab, ca_pem, kind, COPY) is None

        copied = vm(cl, **args)
        assert copied["rc"] == 0 and copied["changed"], copied["output"]
        seen = live(lab, ca_pem, kind, COPY)
        assert seen["power"] == "on" and seen["id"] == copied["vm"]["id"] != before["id"] and not seen["template"]
        info = run_module("vm_info", {"cluster": cluster_expr(cl), "name": COPY, "networks_model": "{{ dc_networks }}"})
        assert info["rc"] == 0 and info["vms"][0]["networks"] == ["drill"], info["output"]
        if kind == "proxmox":
            assert f"tag={DRILL_VLAN}" in pve_config(pve_api(lab, ca_pem), COPY)["net0"]

        again = vm(cl, **args)
        assert again["rc"] == 0 and not again["changed"] and again["actions"] == [], again["output"]
        assert live(lab, ca_pem, kind, replica) == before  # the replica itself: not started, not changed

        gone = vm(cl, name=COPY, state="absent")
        assert gone["rc"] == 0 and gone["changed"] and gone["actions"] == ["power off", "delete"], gone["output"]
        assert live(lab, ca_pem, kind, COPY) is None
        assert not vm(cl, name=COPY, state="absent")["changed"]
    finally:
        vm(cl, name=COPY, state="absent")
        if kind == "vsphere":
            vm(cl, name=replica, state="absent")
