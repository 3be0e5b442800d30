"""twinsite.dc.vm's decisions, with the vendor clients replaced at their seam (ProxmoxClient /
VsphereClient methods): check mode writes nothing, a second run writes nothing, clones return the
NEW VM, disks only grow, half-made VMs converge, vendor faults name the VM and the action."""

from __future__ import annotations

import contextlib
import io
import json
from unittest import mock

import pytest
from ansible.module_utils.testing import patch_module_args
from pyVmomi import vim

from ansible_collections.twinsite.dc.plugins.module_utils import _common, _vm
from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError
from ansible_collections.twinsite.dc.plugins.module_utils._proxmox import ProxmoxClient
from ansible_collections.twinsite.dc.plugins.module_utils._vm_vsphere import VsphereVms
from ansible_collections.twinsite.dc.plugins.modules import vm as vm_module

CLUSTER = {"name": "cl-test", "type": "proxmox", "nodes": ["pve1", "pve2"],
           "api": {"host": "192.0.2.10", "port": 8006, "username": "root@pam", "password": "s3cret", "ca_bundle": None}}
NETWORKS = [{"name": "servers", "vlan": 20}, {"name": "dmz", "vlan": 40}]
WRITES = ("clone_vm", "update_vm_config", "resize_vm_disk", "vm_power", "destroy_vm")


class FakePve:
    """ProxmoxClient's VM methods over an in-memory cluster; writes are recorded."""

    def __init__(self):
        self.guests = {9000: {"node": "pve1", "name": "tpl-debian12", "template": 1, "status": "stopped",
                              "config": {"cores": 2, "sockets": 1, "memory": "2048", "scsi0": "local-lvm:base-9000-disk-0,size=20G"}}}
        self.writes = []
        self.fail = {}  # method name -> TwinsiteError raised once

    def connect(self):
        return self

    def _write(self, name, *args):
        self.writes.append((name, *args))
        if name in self.fail:
            raise self.fail.pop(name)

    def resources(self, type_=None):
        return [{"type": "qemu", "vmid": vmid, "node": g["node"], "name": g["name"], "template": g["template"], "status": g["status"],
                 "maxcpu": g["config"]["cores"], "maxmem": int(g["config"]["memory"]) * 1024**2} for vmid, g in self.guests.items()]

    def vm_config(self, node, vmid):
        return dict(self.guests[vmid]["config"])

    def next_vmid(self):
        return max(self.guests) + 1

    def clone_vm(self, node, vmid, newid, name, full, target=None):
        self._write("clone_vm", node, vmid, newid)
        src = self.guests[vmid]
        disk = src["config"]["scsi0"].replace(f"base-{vmid}", f"vm-{newid}")
        self.guests[newid] = {"node": target or node, "name": name, "template": 0, "status": "stopped",
                              "config": {**src["config"], "scsi0": disk}}
        return f"UPID:{node}:clone:{newid}"

    def update_vm_config(self, node, vmid, **params):
        self._write("update_vm_config", vmid, params)
        config = self.guests[vmid]["config"]
        for key in (params.pop("delete", "") or "").split(","):
            config.pop(key, None)
        config.update({k: str(v) if k == "memory" else v for k, v in params.items()})

    def resize_vm_disk(self, node, vmid, disk, size):
        self._write("resize_vm_disk", vmid, disk, size)
        config = self.guests[vmid]["config"]
        config[disk] = config[disk].split(",size=")[0] + f",size={size}"
        return f"UPID:{node}:resize:{vmid}"

    def vm_power(self, node, vmid, action):
        self._write("vm_power", vmid, action)
        self.guests[vmid]["status"] = "running" if action in ("start", "reset") else "stopped"
        return f"UPID:{node}:{action}:{vmid}"

    def destroy_vm(self, node, vmid):
        self._write("destroy_vm", vmid)
        del self.guests[vmid]
        return f"UPID:{node}:destroy:{vmid}"

    def wait_task(self, node, upid, obj, action, timeout=600.0):
        return {"status": "stopped", "exitstatus": "OK"}


@pytest.fixture
def pve():
    fake = FakePve()
    with mock.patch.object(ProxmoxClient, "from_params", return_value=fake):
        yield fake


def run_module(check: bool = False, **args) -> dict:
    """Run vm.main() as Ansible would; return its JSON result."""
    params = {"cluster": CLUSTER, "networks_model": NETWORKS, "_ansible_check_mode": check, **args}
    out = io.StringIO()
    with patch_module_args(params), contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        vm_module.main()
    return json.loads(out.getvalue())


WEB = {"name": "t-web", "template": "tpl-debian12", "vmid": 120, "cpus": 2, "memory_mb": 4096, "disk_gb": 30, "networks": ["servers"]}


def test_check_mode_predicts_and_writes_nothing(pve):
    result = run_module(check=True, **WEB)
    assert result["changed"] and pve.writes == []
    assert result["vm"]["memory_mb"] == 4096 and result["vm"]["disk_gb"] == 30 and result["vm"]["networks"] == ["servers"]
    assert result["actions"] == ["clone from template tpl-debian12 (full)",
                                 "reconfigure disk_gb=30, memory_mb=4096, networks=['servers']"]
    assert result["diff"]["before"] == {} and list(result["diff"]["after"]) == sorted(result["diff"]["after"])


def test_clone_returns_the_new_vm_then_nothing_to_do(pve):
    made = run_module(**WEB)
    assert made["changed"] and made["vm"]["id"] == 120 and made["vm"]["name"] == "t-web"  # not the template's 9000
    assert pve.guests[120]["config"]["net0"] == "virtio,bridge=vmbr0,tag=20"
    assert ("resize_vm_disk", 120, "scsi0", "30G") in pve.writes
    assert "s3cret" not in json.dumps(made)
    pve.writes.clear()
    again = run_module(**WEB)
    assert not again["changed"] and again["actions"] == [] and pve.writes == []


def test_a_vmid_another_vm_takes_before_the_clone_is_chosen_again(pve, monkeypatch):
    """PVE's next free vmid reserves nothing: another clone can take it first. PVE refuses the clone
    ("config file already exists"); the module chooses again. A vmid the caller gave fails instead."""
    real_clone = pve.clone_vm

    def clone_vm(node, vmid, newid, name, full, target=None):
        if newid == 9001 and 9001 not in pve.guests:  # someone else's clone lands first
            pve.guests[9001] = {"node": node, "name": "someone-elses", "template": 0, "status": "stopped", "config": dict(pve.guests[9000]["config"])}
            raise TwinsiteError("500 unable to create VM 9001: config file already exists")
        return real_clone(node, vmid, newid, name, full, target)

    monkeypatch.setattr(pve, "clone_vm", clone_vm)
    made = run_module(**{**WEB, "vmid": None})
    assert made["changed"] and made["vm"]["id"] == 9002 and pve.guests[9001]["name"] == "someone-elses"
    del pve.guests[9001], pve.guests[9002]
    given = run_module(**{**WEB, "name": "t-given", "vmid": 9001})
    assert given["failed"] and "config file already exists" in given["msg"] and pve.guests[9001]["name"] == "someone-elses"


class NoSessions:
    """A VDI broker with no sessions and no assignments."""

    def sessions(self, pool):
        return {}

    def assignments(self, pool):
        return {}


def test_a_pools_vmid_another_vm_takes_before_its_clone_is_chosen_again(pve, monkeypatch):
    """A VDI pool chooses its desktops' vmids up front (PVE's next free id would give parallel
    clones the same one). One that another VM takes before its clone starts is chosen again, never
    one a sibling desktop was given; the run converges and a second run writes nothing."""
    from ansible_collections.twinsite.dc.plugins.module_utils import _vdi

    real_clone = pve.clone_vm
    taken = []

    def clone_vm(node, vmid, newid, name, full, target=None):
        if newid == 201 and 201 not in pve.guests:  # someone else's VM lands on 201 first
            pve.guests[201] = {"node": node, "name": "someone-elses", "template": 0, "status": "stopped", "config": dict(pve.guests[9000]["config"])}
            taken.append(name)
            raise TwinsiteError("500 unable to create VM 201: config file already exists")
        return real_clone(node, vmid, newid, name, full, target)

    monkeypatch.setattr(pve, "clone_vm", clone_vm)
    pool = {"name": "staff", "template": "tpl-debian12", "clone": "linked", "naming": "vdi-staff-{n:03d}", "vmid_base": 200,
            "size": {"min": 3, "max": 3, "spare": 0}, "network": "servers", "cpus": 2, "memory_mb": 2048, "power": {}}
    with _vm.open_backend(CLUSTER, NETWORKS, 60) as backend:
        report = _vdi.PoolService(backend, NoSessions(), check_mode=False, parallel=3).converge(pool, "10:00")
    assert taken and sorted(report["created"]) == ["vdi-staff-001", "vdi-staff-002", "vdi-staff-003"]
    names = {vmid: g["name"] for vmid, g in pve.guests.items() if vmid != 9000}
    assert names[201] == "someone-elses"
    assert sorted(n for n in names.values() if n.startswith("vdi-")) == ["vdi-staff-001", "vdi-staff-002", "vdi-staff-003"]
    assert set(names) == {200, 201, 202, 203}  # the desktop that lost 201 took 203, not a sibling's 200 or 202
    pve.writes.clear()
    with _vm.open_backend(CLUSTER, NETWORKS, 60) as backend:
        again = _vdi.PoolService(backend, NoSessions(), check_mode=False).converge(pool, "10:00")
    assert not again["changed"] and pve.writes == []


def test_change_keeps_the_nic_mac_and_diffs_in_model_terms(pve):
    run_module(**WEB)
    pve.guests[120]["config"]["net0"] = "virtio=BC:24:11:AA:BB:CC,bridge=vmbr0,tag=20"
    changed = run_module(**{**WEB, "cpus": 4, "networks": ["dmz"]})
    assert changed["diff"]["before"]["cpus"] == 2 and changed["diff"]["after"]["cpus"] == 4
    assert pve.guests[120]["config"]["net0"] == "virtio=BC:24:11:AA:BB:CC,bridge=vmbr0,tag=40"


def test_disk_never_shrinks(pve):
    run_module(**WEB)
    pve.writes.clear()
    result = run_module(**{**WEB, "disk_gb": 10})
    assert result["failed"] and pve.writes == []
    assert result["msg"] == ("cluster cl-test: resize of VM 't-web' failed: disks only grow: it has 30 GB, disk_gb asks for 10 GB; "
                             "shrinking would destroy data, so build a new VM instead")


def test_running_vm_needs_allow_restart_for_cpus(pve):
    run_module(**{**WEB, "state": "started"})
    refused = run_module(**{**WEB, "cpus": 4, "state": "started"})
    assert refused["failed"] and "cpus cannot change while it runs; set allow_restart: true" in refused["msg"]
    pve.writes.clear()
    allowed = run_module(**{**WEB, "cpus": 4, "state": "started", "allow_restart": True})
    assert allowed["actions"] == ["power off", "reconfigure cpus=4", "power on"]
    assert [w[0] for w in pve.writes] == ["vm_power", "update_vm_config", "vm_power"]


def test_half_created_vm_is_kept_and_converges(pve):
    pve.fail["update_vm_config"] = TwinsiteError("500 Internal Server Error: storage busy", obj="nodes/pve1/qemu/120/config", action="PUT")
    first = run_module(**WEB)
    assert first["failed"] and 120 in pve.guests
    assert "reconfigure of VM 't-web' failed: 500 Internal Server Error: storage busy; the VM was cloned and is left" in first["msg"]
    second = run_module(**WEB)
    assert second["changed"] and second["actions"] == ["reconfigure disk_gb=30, memory_mb=4096, networks=['servers']"]
    assert not run_module(**WEB)["changed"]


def test_absent_only_deletes_when_asked_and_twice_is_unchanged(pve):
    run_module(**{**WEB, "state": "started"})
    gone = run_module(name="t-web", state="absent")
    assert gone["actions"] == ["power off", "delete"] and 120 not in pve.guests
    assert gone["diff"]["after"] == {} and gone["vm"] == {}
    assert not run_module(name="t-web", state="absent")["changed"]


def test_absent_in_check_mode_writes_nothing(pve):
    run_module(**WEB)
    pve.writes.clear()
    planned = run_module(check=True, name="t-web", state="absent")
    assert planned["changed"] and pve.writes == [] and 120 in pve.guests


def test_missing_template_is_named(pve):
    result = run_module(**{**WEB, "template": "tpl-nope"})
    assert result["failed"] and "lookup of template 'tpl-nope' failed: no template of that name on cluster cl-test" in result["msg"]


# --- vSphere: faults raised at once and by tasks, and task timeouts -----------------------------


def vsphere_backend():
    client = mock.Mock(endpoint="vc.example:443")
    return VsphereVms(client, {"name": "cl-primary", "datacenter": "DC", "cluster": "C"}, timeout=1), client


def test_vsphere_method_fault_names_vm_and_action():
    backend, client = vsphere_backend()
    client.power_vm_task.side_effect = vim.fault.InvalidPowerState(msg="The attempted operation cannot be performed in the current state")
    with pytest.raises(TwinsiteError) as err:
        backend.power({"name": "t-web", "_obj": object()}, "on")
    assert str(err.value) == "power on of VM 't-web' failed: InvalidPowerState: The attempted operation cannot be performed in the current state"


def test_vsphere_task_timeout_names_vm_and_action(monkeypatch):
    from ansible_collections.twinsite.dc.plugins.module_utils._vsphere import VsphereClient

    task = mock.Mock()
    task.info.state = vim.TaskInfo.State.running
    monkeypatch.setattr(_common.time, "sleep", lambda s: None)
    clock = iter(range(0, 1000, 1))
    monkeypatch.setattr(_common.time, "monotonic", lambda: next(clock))
    client = VsphereClient.__new__(VsphereClient)
    with pytest.raises(TwinsiteError) as err:
        client.wait_task(task, obj="VM 't-web'", action="reconfigure", timeout=5)
    assert str(err.value) == "reconfigure of VM 't-web' failed: still not done after 5s"


def test_plan_steps_order_for_a_stop_with_changes():
    steps = _vm.plan_steps("t", {"power": "on"}, {"cpus": 4}, "stopped", allow_restart=False)
    assert steps == [("power", "off"), ("reconfigure", {"cpus": 4})]
    assert _vm.plan_steps("t", {"power": "on"}, {}, "restarted", False) == [("power", "reset")]
    assert _vm.plan_steps("t", {"power": "off"}, {}, "restarted", False) == [("power", "on")]


# --- vSphere: reading one VM, linked clones, tags -------------------------------------------------


def _moref(moid: str):
    return vim.VirtualMachine(moid)


def vsphere_with_rows(names: list[dict], full: dict, tags: bool = False):
    """A VsphereVms whose client answers names-only retrieves with ``names`` and object retrieves from ``full``."""
    backend, client = vsphere_backend()
    backend.with_tags = tags
    client.retrieve_many.return_value = {vim.VirtualMachine: names, vim.dvs.DistributedVirtualPortgroup: [], vim.Network: [],
                                         vim.DistributedVirtualSwitch: [], vim.HostSystem: []}
    client.retrieve.return_value = names
    client.retrieve_objects.side_effect = lambda objs, kind, props: [
        {k: v for k, v in full[o._moId].items() if k in props or k in ("_obj", "name")} for o in objs if o._moId in full]
    return backend, client


def test_vsphere_read_fetches_names_then_that_vm_only():
    names = [{"_obj": _moref(f"vm-{i}"), "name": f"vm{i}", "config.template": False} for i in range(500)]
    full = {"vm-7": {"_obj": _moref("vm-7"), "name": "vm7", "config.hardware.numCPU": 2, "config.hardware.memoryMB": 1024,
                     "config.hardware.device": [], "runtime.powerState": "poweredOn", "config.annotation": "x"}}
    backend, client = vsphere_with_rows(names, full)
    vm = backend.read("vm7")
    assert (vm["name"], vm["cpus"], vm["memory_mb"], vm["power"], vm["notes"]) == ("vm7", 2, 1024, "on", "x")
    # The whole-vCenter retrieve asks for names and the template flag only, never devices.
    (props,), _ = client.retrieve_many.call_args
    assert props[vim.VirtualMachine] == ["name", "config.template"]
    (objs, _, vm_props), _ = client.retrieve_objects.call_args
    assert [o._moId for o in objs] == ["vm-7"] and "config.hardware.device" in vm_props
    # The second read of the same run does not fetch the networks again.
    assert backend.read("vm3") is None
    assert client.retrieve_many.call_count == 1 and client.retrieve.call_args[0] == (vim.VirtualMachine, ["name", "config.template"])
    assert "tags" not in vm and not client.attached_tags.called


def test_vsphere_linked_clone_uses_the_template_snapshot():
    snap = vim.vm.Snapshot("snapshot-1")
    names = [{"_obj": _moref("vm-1"), "name": "tpl", "config.template": True}]
    full = {"vm-1": {"_obj": _moref("vm-1"), "name": "tpl", "config.template": True, "config.hardware.device": [],
                     "snapshot": vim.vm.SnapshotInfo(currentSnapshot=snap)},
            "vm-2": {"_obj": _moref("vm-2"), "name": "t-linked", "config.template": False, "config.hardware.device": []}}
    backend, client = vsphere_with_rows(names, full)
    client.wait_task.return_value = _moref("vm-2")
    client.find_by_inventory_path.return_value = mock.Mock(resourcePool=vim.ResourcePool("resgroup-1"))
    new = backend.clone({"name": "t-linked", "template": "tpl", "clone": "linked"})
    assert new["moid"] == "vm-2" and new["name"] == "t-linked"
    (_, _, name, spec), _ = client.clone_vm_task.call_args
    assert name == "t-linked" and spec.snapshot == snap and spec.location.diskMoveType == "createNewChildDiskBacking"
    # The snapshot came with the retrieve: no property of the template was read one by one.
    (_, _, props), _ = client.retrieve_objects.call_args_list[0]
    assert "snapshot" in props

    del full["vm-1"]["snapshot"]
    backend, client = vsphere_with_rows(names, full)
    client.find_by_inventory_path.return_value = mock.Mock(resourcePool=vim.ResourcePool("resgroup-1"))
    with pytest.raises(TwinsiteError, match="a linked clone needs a snapshot of template 'tpl'"):
        backend.clone({"name": "t-linked", "template": "tpl", "clone": "linked"})


def test_vsphere_tags_attach_missing_detach_others_and_skip_reconfigure():
    names = [{"_obj": _moref("vm-7"), "name": "web", "config.template": False}]
    full = {"vm-7": {"_obj": _moref("vm-7"), "name": "web", "config.hardware.device": []}}
    backend, client = vsphere_with_rows(names, full, tags=True)
    client.attached_tags.return_value = [{"id": "t-old", "name": "old", "category": "twinsite"},
                                         {"id": "t-prod", "name": "prod", "category": "twinsite"}]
    client.find_or_create_tag.side_effect = lambda cat, name: f"id-{cat}-{name}"
    service = _vm.VmService(backend, check_mode=False)
    out = service.converge({"name": "web", "state": "present", "tags": ["prod", "backup:daily"], "clone": "full"})
    assert out["changed"] and out["actions"] == ["reconfigure tags=['backup:daily', 'prod']"]
    assert out["diff"]["before"]["tags"] == ["old", "prod"]
    client.find_or_create_tag.assert_called_once_with("backup", "daily")
    client.attach_tag.assert_called_once_with("id-backup-daily", "vm-7")
    client.detach_tag.assert_called_once_with("t-old", "vm-7")
    assert not client.reconfigure_vm_task.called  # tags alone: no ReconfigVM_Task

    client.attached_tags.return_value = [{"id": "x", "name": "daily", "category": "backup"}, {"id": "y", "name": "prod", "category": "twinsite"}]
    client.attach_tag.reset_mock()
    again = service.converge({"name": "web", "state": "present", "tags": ["backup:daily", "prod", "prod"], "clone": "full"})
    assert not again["changed"] and not client.attach_tag.called


def test_proxmox_tags_are_lower_case_and_removed_with_delete():
    from ansible_collections.twinsite.dc.plugins.module_utils._vm_proxmox import ProxmoxVms, split_tags

    assert split_tags("prod;backup, web") == ["backup", "prod", "web"] and split_tags(None) == []
    client = mock.Mock()
    client.resources.return_value = [{"type": "qemu", "vmid": 101, "node": "pve1", "name": "web", "status": "stopped"}]
    client.vm_config.return_value = {"cores": 1, "memory": 512, "tags": "prod;web"}
    client.update_vm_config.return_value = None
    service = _vm.VmService(ProxmoxVms(client, CLUSTER), check_mode=False)
    assert not service.converge({"name": "web", "state": "present", "tags": ["Web", "PROD"], "clone": "full"})["changed"]
    out = service.converge({"name": "web", "state": "present", "tags": [], "clone": "full"})
    assert out["changed"]
    client.update_vm_config.assert_called_once_with("pve1", 101, delete="tags")
