"""twinsite.dc.vm_backup and vm_backup_restore's decisions, and vm's clone_from, with the Proxmox client
replaced at its seam by an in-memory cluster (``FakePve``): check mode writes nothing, second runs write
nothing, a restore lands on the networks asked for and carries its mark, failures name the object and
leave nothing half-made."""

from __future__ import annotations

import contextlib
import io
import json
import re
from unittest import mock

import pytest
from ansible.module_utils.testing import patch_module_args
from pyVmomi import vim

from ansible_collections.twinsite.dc.plugins.module_utils import _cluster, _vm, _vm_backup
from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError
from ansible_collections.twinsite.dc.plugins.module_utils._vm_proxmox import ProxmoxVms
from ansible_collections.twinsite.dc.plugins.module_utils._vm_vsphere import VsphereVms
from ansible_collections.twinsite.dc.plugins.modules import vm_backup as backup_module
from ansible_collections.twinsite.dc.plugins.modules import vm_backup_restore as restore_module

CLUSTER = {"name": "cl-test", "type": "proxmox", "nodes": ["pve1", "pve2"],
           "api": {"host": "192.0.2.10", "port": 8006, "username": "root@pam", "password": "s3cret", "ca_bundle": None}}
NETWORKS = [{"name": "servers", "vlan": 20}, {"name": "dmz", "vlan": 40}, {"name": "drill", "vlan": 70}]
NOW = 1_740_800_000
REPLICA = {"cores": "2", "sockets": "1", "memory": "2048", "name": "dns1-replica", "description": "Replica of dns1",
           "scsi0": "local-lvm:vm-201-disk-0,iothread=1,size=20G", "net0": "virtio=BC:24:11:00:00:01,bridge=vmbr0,tag=20",
           "net1": "virtio=BC:24:11:00:00:02,bridge=vmbr0,tag=40"}


class FakePve:
    """ProxmoxClient over an in-memory cluster: the VM methods ProxmoxVms calls, and get/post/delete
    for the backup paths. Backups on ``local`` (not shared) belong to a node. Writes are recorded."""

    def __init__(self):
        self.guests = {201: {"node": "pve2", "name": "dns1-replica", "template": 0, "status": "stopped", "config": dict(REPLICA)},
                       110: {"node": "pve1", "name": "backup-proxy", "template": 0, "status": "running",
                             "config": {"cores": "1", "memory": "1024", "net0": "virtio=BC:24:11:00:01:10,bridge=vmbr0,tag=50"}}}
        self.storages = {"local": {"content": "backup,iso,vztmpl", "shared": 0}, "local-lvm": {"content": "images,rootdir", "shared": 0},
                         "nfs-backup": {"content": "backup", "shared": 1}}
        self.backups = []  # {volid, node (None: shared), vmid, ctime, config, subtype}
        self.tasks = {}  # upid -> (exitstatus, log lines)
        self.writes, self.calls = [], []
        self.clock = NOW
        self.fail_restore = None

    def connect(self):
        return self

    # --- the ProxmoxClient VM methods -------------------------------------------------------------

    def resources(self, type_=None):
        if type_ == "storage":
            return [{"type": "storage", "storage": sid, "node": node, "status": "available", "content": s["content"], "shared": s["shared"]}
                    for sid, s in self.storages.items() for node in ("pve1", "pve2")]
        return [{"type": "qemu", "vmid": vmid, "node": g["node"], "name": g["name"], "template": g["template"], "status": g["status"],
                 "maxcpu": int(g["config"].get("cores", 1)), "maxmem": int(g["config"].get("memory", 512)) * 1024**2}
                for vmid, g in self.guests.items()]

    def vm_config(self, node, vmid):
        return dict(self.guests[vmid]["config"])

    def next_vmid(self):
        return max(max(self.guests) + 1, 4200)

    def update_vm_config(self, node, vmid, **params):
        self.writes.append(("update_vm_config", vmid, dict(params)))
        config = self.guests[vmid]["config"]
        for key in (params.pop("delete", "") or "").split(","):
            config.pop(key, None)
        config.update(params)

    def vm_power(self, node, vmid, action):
        self.writes.append(("vm_power", vmid, action))
        self.guests[vmid]["status"] = "running" if action in ("start", "reset") else "stopped"
        return self._task("OK")

    def destroy_vm(self, node, vmid):
        self.writes.append(("destroy_vm", vmid))
        del self.guests[vmid]
        return self._task("OK")

    def wait_task(self, node, upid, obj, action, timeout=600.0):
        status = self.tasks[upid][0]
        if status != "OK":
            raise TwinsiteError(status, obj=obj, action=action)
        return {"status": "stopped", "exitstatus": "OK"}

    def _task(self, status, log=()):
        upid = f"UPID:pve:{len(self.tasks):08X}:"
        self.tasks[upid] = (status, list(log))
        return upid

    # --- REST paths of the backups ----------------------------------------------------------------

    def get(self, path, **params):
        self.calls.append(("get", path, params))
        if found := re.fullmatch(r"nodes/(\w+)/storage/([\w-]+)/content", path):
            node, sid = found.groups()
            return [{"volid": b["volid"], "content": "backup", "format": "vma.zst", "size": 1000, "ctime": b["ctime"], "vmid": b["vmid"],
                     "subtype": b.get("subtype", "qemu"), "notes": b.get("notes", "")}
                    for b in self.backups if b["volid"].startswith(sid + ":") and b["node"] in (None, node)
                    and b["vmid"] == int(params["vmid"])]
        if found := re.fullmatch(r"nodes/(\w+)/vzdump/extractconfig", path):
            backup = next(b for b in self.backups if b["volid"] == params["volume"] and b["node"] in (None, found.group(1)))
            notes = backup["config"].get("description", "").splitlines()
            lines = ["#qmdump#map:scsi0:drive-scsi0:local-lvm:raw:"] + [f"#{line}" for line in notes]
            return "\n".join(lines + [f"{k}: {v}" for k, v in sorted(backup["config"].items()) if k != "description"]) + "\n"
        if found := re.fullmatch(r"nodes/(\w+)/tasks/(.+)/log", path):
            return [{"n": i + 1, "t": line} for i, line in enumerate(self.tasks[found.group(2)][1])]
        raise AssertionError(f"unexpected GET {path}")

    def post(self, path, **params):
        self.writes.append(("post", path, dict(params)))
        node = path.split("/")[1]
        if path.endswith("/vzdump"):
            guest = self.guests[int(params["vmid"])]
            if guest["node"] != node:
                return "OK"
            if guest["config"].get("lock"):
                return self._task("job errors", [f"ERROR: Backup of VM {params['vmid']} failed - VM is locked ({guest['config']['lock']})",
                                                 "INFO: Backup job finished with errors"])
            self.clock += 60
            shared = self.storages[params["storage"]]["shared"]
            volid = f"{params['storage']}:backup/vzdump-qemu-{params['vmid']}-{self.clock}.vma.zst"
            self.backups.append({"volid": volid, "node": None if shared else node, "vmid": int(params["vmid"]), "ctime": self.clock,
                                 "config": {k: v for k, v in guest["config"].items() if k != "lock"}, "data": guest.get("data")})
            return self._task("OK")
        if path.endswith("/qemu"):
            vmid = int(params["vmid"])
            backup = next(b for b in self.backups if b["volid"] == params["archive"])
            if vmid in self.guests and not params.get("force"):
                return self._task(f"unable to restore VM {vmid} - VM {vmid} already exists on node '{self.guests[vmid]['node']}'")
            if vmid in self.guests and self.guests[vmid]["status"] == "running":
                return self._task(f"unable to restore VM {vmid} - vm is running")
            if vmid in self.guests and self.fail_restore:  # PVE deleted the disks first; the config stays
                self.guests[vmid]["config"].pop("scsi0", None)
                return self._task(self.fail_restore, [f"error: {self.fail_restore}"])
            config = {**backup["config"], **{k: v for k, v in params.items() if k not in ("vmid", "archive", "unique", "storage", "force")}}
            config["scsi0"] = f"local-lvm:vm-{vmid}-disk-0,size=20G"
            self.guests[vmid] = {"node": node, "name": config["name"], "template": 0, "status": "stopped", "config": config,
                                 "data": backup.get("data")}  # what is on the disks
            if self.fail_restore:
                self.guests[vmid] = {"node": node, "name": f"VM {vmid}", "template": 0, "status": "stopped", "config": {}}
                return self._task(self.fail_restore, [f"error: {self.fail_restore}"])
            return self._task("OK")
        raise AssertionError(f"unexpected POST {path}")

    def delete(self, path, **params):
        self.writes.append(("delete", path, params))
        volid = path.split("/content/", 1)[1]
        self.backups = [b for b in self.backups if b["volid"] != volid]
        return self._task("OK")

    def add_backup(self, vmid=201, ctime=NOW - 3600, node="pve2", storage="local", **extra):
        volid = f"{storage}:backup/vzdump-qemu-{vmid}-{ctime}.vma.zst"
        self.backups.append({"volid": volid, "node": node, "vmid": vmid, "ctime": ctime, "config": dict(self.guests[vmid]["config"]),
                             **extra})
        return volid


@pytest.fixture
def pve(monkeypatch):
    fake = FakePve()
    monkeypatch.setattr(_vm_backup.time, "time", lambda: NOW)
    with mock.patch.object(_cluster, "connect", return_value=fake):
        yield fake


def run(module, check=False, **args) -> dict:
    params = {"cluster": CLUSTER, "_ansible_check_mode": check, "_ansible_diff": True, **args}
    out = io.StringIO()
    with patch_module_args(params), contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        module.main()
    return json.loads(out.getvalue())


def backup(check=False, **args):
    return run(backup_module, check, **args)


def restore(check=False, **args):
    return run(restore_module, check, **{"networks_model": NETWORKS, **args})


# --- the pieces -----------------------------------------------------------------------------------


def test_config_text_and_restore_mark():
    text = "#qmdump#map:scsi0:drive-scsi0:local-lvm:raw:\n#Replica of dns1\n#second line\ncores: 2\nname: dns1\n[snap1]\ncores: 1\n"
    assert _vm_backup.parse_config(text) == {"cores": "2", "name": "dns1", "description": "Replica of dns1\nsecond line"}
    notes = _vm_backup.with_mark("Replica of dns1", "local:backup/vzdump-qemu-201-x.vma.zst", 1740796207)
    assert notes == "Replica of dns1\ntwinsite-restore: archive=local:backup/vzdump-qemu-201-x.vma.zst backup_time=1740796207"
    assert _vm_backup.restore_mark(notes) == {"archive": "local:backup/vzdump-qemu-201-x.vma.zst", "backup_time": 1740796207}
    # A restore of a restored VM replaces the mark, never stacks two.
    again = _vm_backup.with_mark(notes, "local:backup/vzdump-qemu-4200-y.vma.zst", 1740800000)
    assert again.count("twinsite-restore:") == 1 and again.startswith("Replica of dns1\n")
    assert _vm_backup.restore_mark("Replica of dns1") is None and _vm_backup.restore_mark(None) is None
    assert _vm_backup.iso(1740796207) == "2025-03-01T02:30:07Z" and _vm_backup.iso(None) is None


def test_list_is_newest_first_asks_each_node_of_a_local_storage_and_skips_containers(pve):
    old = pve.add_backup(ctime=NOW - 7200)
    new = pve.add_backup(ctime=NOW - 60)
    pve.add_backup(ctime=NOW, subtype="lxc")
    backups = _vm_backup.ProxmoxBackups(pve, CLUSTER)
    listed = backups.list(201, "local")
    assert [b["volid"] for b in listed] == [new, old] and listed[0]["node"] == "pve2" and listed[0]["time"] == "2025-03-01T03:32:20Z"
    assert [c[1] for c in pve.calls] == ["nodes/pve1/storage/local/content", "nodes/pve2/storage/local/content"]
    pve.calls.clear()
    shared = pve.add_backup(storage="nfs-backup", node=None)
    assert [b["volid"] for b in backups.list(201, "nfs-backup")] == [shared]
    assert len(pve.calls) == 1  # a shared storage is asked once
    with pytest.raises(TwinsiteError, match="lookup of storage 'local-lvm' failed: it does not hold backups"):
        backups.list(201, "local-lvm")
    with pytest.raises(TwinsiteError, match=r"no storage of that name on cluster cl-test \(storages for backups: local, nfs-backup\)"):
        backups.list(201, "pbs")


# --- twinsite.dc.vm_backup ------------------------------------------------------------------------


def test_backup_check_mode_then_apply_then_fresh_enough(pve):
    planned = backup(check=True, vm="dns1-replica", notes="{{guestname}} before the drill")
    assert planned["changed"] and pve.writes == [] and pve.backups == []
    assert re.fullmatch(r"local:backup/vzdump-qemu-201-\d{4}_\d\d_\d\d-\d\d_\d\d_\d\d\.vma\.zst", planned["archive"])
    assert planned["backup"]["notes"] == "dns1-replica before the drill" and planned["backup"]["node"] == "pve2"

    made = backup(vm="dns1-replica", notes="{{guestname}} before the drill")
    assert made["changed"] and made["actions"] == ["back up VM dns1-replica (vmid 201, node pve2) to storage 'local'"]
    assert pve.writes == [("post", "nodes/pve2/vzdump", {"vmid": 201, "storage": "local", "mode": "snapshot", "compress": "zstd",
                                                         "notes-template": "{{guestname}} before the drill"})]
    assert made["archive"] == pve.backups[0]["volid"] and made["backup_time"] == NOW + 60
    assert made["backup_time_iso"] == "2025-03-01T03:34:20Z" and "s3cret" not in json.dumps(made)

    pve.writes.clear()
    again = backup(vm="dns1-replica")
    assert not again["changed"] and pve.writes == [] and again["archive"] == made["archive"]
    # max_age_minutes: 0 backs up on every run.
    assert backup(vm="dns1-replica", max_age_minutes=0)["changed"] and len(pve.backups) == 2


def test_backup_older_than_max_age_is_renewed(pve):
    pve.add_backup(ctime=NOW - 2 * 3600)
    result = backup(vm="dns1-replica", max_age_minutes=60)
    assert result["changed"] and len(pve.backups) == 2 and result["archive"] == pve.backups[1]["volid"]
    assert not backup(vm="dns1-replica", max_age_minutes=60)["changed"]


def test_backup_failure_names_the_vm_and_says_why(pve):
    pve.guests[201]["config"]["lock"] = "snapshot"
    result = backup(vm="dns1-replica")
    assert result["failed"]
    assert result["msg"] == "cluster cl-test: backup to storage 'local' of VM 'dns1-replica' failed: job errors (VM is locked (snapshot))"
    # A vzdump sent to the wrong node answers "OK" and starts nothing.
    pve.guests[201]["config"].pop("lock")
    with mock.patch.object(_vm_backup, "proxmox_vm", return_value={"name": "dns1-replica", "vmid": 201, "node": "pve1"}):
        moved = backup(vm="dns1-replica")
    assert moved["failed"] and "node pve1 started no backup (it answered 'OK'): the VM has moved to another node" in moved["msg"]
    assert backup(vm="nope")["msg"] == "cluster cl-test: lookup of VM 'nope' failed: no such VM in the Proxmox cluster"


def test_backup_absent_deletes_once(pve):
    volid = pve.add_backup()
    planned = backup(check=True, state="absent", archive=volid)
    assert planned["changed"] and pve.writes == []
    gone = backup(state="absent", archive=volid)
    assert gone["changed"] and pve.writes == [("delete", f"nodes/pve2/storage/local/content/{volid}", {})] and pve.backups == []
    assert not backup(state="absent", archive=volid)["changed"]
    bad = backup(state="absent", archive="local:iso/debian.iso")
    assert bad["failed"]
    assert "lookup of backup archive 'local:iso/debian.iso' failed: it is not the volume id of a VM's backup" in bad["msg"]
    assert _vm_backup.archive_parts("pbs:backup/vm/201/2025-03-01T02:30:07Z") == ("pbs", 201)
    assert _vm_backup.archive_parts("local:backup/vzdump-qemu-201-2025_03_01-02_30_07.vma.zst") == ("local", 201)


def test_backup_modules_refuse_vsphere(pve):
    vsphere = {**CLUSTER, "type": "vsphere"}
    for result in (backup(cluster=vsphere, vm="db1"), restore(cluster=vsphere, name="x", source="db1")):
        assert result["failed"] and "vzdump backups are a Proxmox VE feature; this cluster is of type 'vsphere'" in result["msg"]
        assert "s3cret" not in json.dumps(result)


# --- twinsite.dc.vm_backup_restore ----------------------------------------------------------------

DRILL = {"name": "t-dns1-drill", "source": "dns1-replica", "networks": ["drill"], "state": "started"}


def test_restore_check_mode_predicts_from_the_backup_and_writes_nothing(pve):
    volid = pve.add_backup()
    planned = restore(check=True, **DRILL)
    assert planned["changed"] and pve.writes == [] and set(pve.guests) == {110, 201}
    vm = planned["vm"]
    assert (vm["name"], vm["vmid"], vm["node"], vm["cpus"], vm["memory_mb"], vm["power"]) == ("t-dns1-drill", 4200, "pve2", 2, 2048, "on")
    assert vm["networks"] == ["drill"] and vm["notes"].startswith("Replica of dns1\ntwinsite-restore: archive=" + volid)
    assert planned["archive"] == volid and planned["backup_time"] == NOW - 3600 and planned["backup_time_iso"] == "2025-03-01T02:33:20Z"
    assert planned["actions"] == [f"restore backup {volid} of 2025-03-01T02:33:20Z as VM t-dns1-drill (vmid 4200) on node pve2",
                                  "reconfigure networks=['drill']", "power on"]


def test_restore_lands_on_the_drill_network_then_is_idempotent_then_goes(pve):
    pve.add_backup(ctime=NOW - 7200)
    volid = pve.add_backup()
    made = restore(**DRILL)
    assert made["changed"] and made["vmid"] == 4200 and made["archive"] == volid
    post = next(w for w in pve.writes if w[0] == "post")
    assert post[1] == "nodes/pve2/qemu"  # where the backup is: local storage is per node
    assert post[2]["archive"] == volid and post[2]["unique"] == 1 and "start" not in post[2]
    assert post[2]["net0"] == "virtio,bridge=vmbr0,tag=70"  # no MAC: PVE makes a new one
    # The replica's second NIC (dmz) is removed before the VM starts, never carried into the drill.
    assert [w[0] for w in pve.writes] == ["post", "update_vm_config", "vm_power"]
    assert pve.writes[1][2]["delete"] == "net1" and pve.writes[2] == ("vm_power", 4200, "start")
    vm = made["vm"]
    assert vm["networks"] == ["drill"] and vm["power"] == "on" and vm["name"] == "t-dns1-drill"
    assert _vm_backup.restore_mark(vm["notes"]) == {"archive": volid, "backup_time": NOW - 3600}
    assert pve.guests[201]["config"] == REPLICA  # the replica is not touched

    pve.writes.clear()
    again = restore(**DRILL)
    assert not again["changed"] and pve.writes == [] and again["archive"] == volid and again["backup_time"] == NOW - 3600

    gone = restore(name="t-dns1-drill", state="absent")
    assert gone["changed"] and gone["actions"] == ["power off", "delete"] and 4200 not in pve.guests and gone["vm"] == {}
    assert gone["archive"] == volid
    assert not restore(name="t-dns1-drill", state="absent")["changed"]


def test_restore_of_an_existing_vm_only_starts_it(pve):
    pve.add_backup()
    restore(**{**DRILL, "state": "present"})
    pve.writes.clear()
    started = restore(**DRILL)
    assert started["changed"] and started["actions"] == ["power on"] and pve.writes == [("vm_power", 4200, "start")]


def test_absent_refuses_a_vm_a_restore_did_not_make(pve):
    result = restore(name="dns1-replica", state="absent")
    assert result["failed"] and 201 in pve.guests and pve.writes == []
    assert "removal of VM 'dns1-replica' (vmid 201) failed: its notes carry no twinsite-restore mark" in result["msg"]


def test_restore_errors_name_the_backup_and_what_to_do(pve):
    volid = pve.add_backup()
    by_archive = {k: v for k, v in DRILL.items() if k != "source"}
    missing = restore(**by_archive, archive="local:backup/vzdump-qemu-201-2020_01_01-00_00_00.vma.zst")
    assert missing["failed"] and pve.writes == []
    assert missing["msg"] == ("cluster cl-test: restore of backup archive 'local:backup/vzdump-qemu-201-2020_01_01-00_00_00.vma.zst' "
                              "failed: no such backup on storage 'local' (looked on nodes pve1, pve2); "
                              "list the backups with twinsite.dc.vm_backup, or leave archive unset for the newest")
    elsewhere = restore(**{**DRILL, "node": "pve1"})
    assert elsewhere["failed"]
    assert f"restore on node pve1 of backup '{volid}' failed: it is on node pve2's storage 'local', which is not shared" \
        in elsewhere["msg"]
    none = restore(**{**DRILL, "source": "backup-proxy"})
    assert none["msg"] == ("cluster cl-test: restore of VM 'backup-proxy' (vmid 110) failed: it has no backup on storage 'local'; "
                           "make one with twinsite.dc.vm_backup")
    taken = restore(**{**DRILL, "vmid": 110})
    assert taken["failed"] and "vmid 110 is taken by VM 'backup-proxy'" in taken["msg"] and pve.writes == []
    unknown_net = restore(**{**DRILL, "networks": ["nowhere"]})
    assert unknown_net["failed"]
    assert "restore of VM 't-dns1-drill' failed: network 'nowhere' has no VLAN in networks_model" in unknown_net["msg"]
    assert restore(name="x")["msg"] == "state is present but any of the following are missing: source, source_vmid, archive"


def test_failed_restore_leaves_nothing(pve):
    pve.add_backup()
    pve.fail_restore = "unable to write to storage 'local-lvm': No space left on device"
    result = restore(**DRILL)
    assert result["failed"] and 4200 not in pve.guests
    assert result["msg"].endswith("failed: unable to write to storage 'local-lvm': No space left on device; "
                                  "what PVE left of VM 4200 was removed")
    assert ("destroy_vm", 4200) in pve.writes


def test_a_vmid_another_vm_takes_meanwhile_is_left_alone(pve, monkeypatch):
    """PVE's next free vmid reserves nothing: another admin's clone can take it before the restore
    starts. That VM is not what the restore left, so it stays; the module chooses again."""
    pve.add_backup()
    chosen = []

    def next_vmid():
        vmid = max(max(pve.guests) + 1, 4200)
        if not chosen:  # someone else's clone lands on the first vmid chosen
            pve.guests[vmid] = {"node": "pve2", "name": "someone-elses", "template": 0, "status": "stopped", "config": {"name": "someone-elses"}}
        chosen.append(vmid)
        return vmid

    monkeypatch.setattr(pve, "next_vmid", next_vmid)
    result = restore(**DRILL)
    assert not result.get("failed"), result
    assert chosen == [4200, 4201] and pve.guests[4200]["name"] == "someone-elses"
    assert pve.guests[4201]["name"] == "t-dns1-drill" and result["vm"]["vmid"] == 4201
    assert ("destroy_vm", 4200) not in pve.writes
    assert "(vmid 4201)" in result["actions"][0]


def test_a_given_vmid_another_vm_takes_meanwhile_fails_and_is_left_alone(pve, monkeypatch):
    pve.add_backup()
    real_restore = pve.post

    def post(path, **params):
        if path.endswith("/qemu") and int(params["vmid"]) == 4300 and 4300 not in pve.guests:
            pve.guests[4300] = {"node": "pve2", "name": "someone-elses", "template": 0, "status": "stopped", "config": {"name": "someone-elses"}}
        return real_restore(path, **params)

    monkeypatch.setattr(pve, "post", post)
    result = restore(**{**DRILL, "vmid": 4300})
    assert result["failed"] and pve.guests[4300]["name"] == "someone-elses"
    assert "another VM took vmid 4300 after it was checked free; that VM was left alone" in result["msg"]
    assert ("destroy_vm", 4300) not in pve.writes


def test_restore_of_a_gone_vm_by_vmid_uses_the_shared_storage_and_given_node(pve):
    volid = pve.add_backup(storage="nfs-backup", node=None)
    del pve.guests[201]
    made = restore(name="t-back", source_vmid=201, storage="nfs-backup", node="pve1", vmid=4300, networks=["servers"])
    assert made["changed"] and made["vm"]["power"] == "off" and made["archive"] == volid
    post = next(w for w in pve.writes if w[0] == "post")
    assert post[1] == "nodes/pve1/qemu" and post[2]["vmid"] == 4300


# --- twinsite.dc.vm clone_from: a copy of a replica, the replica untouched --------------------------


def test_proxmox_clone_from_a_vm_is_a_full_clone_of_the_new_vmid():
    client = mock.Mock()
    client.resources.return_value = [{"type": "qemu", "vmid": 201, "node": "pve2", "name": "dns1-replica", "status": "stopped"}]
    client.vm_config.return_value = dict(REPLICA)
    client.next_vmid.return_value = 4400
    backend = ProxmoxVms(client, CLUSTER, NETWORKS)
    planned = _vm.VmService(backend, check_mode=True).converge(
        {"name": "t-copy", "clone_from": "dns1-replica", "clone": "full", "state": "started", "networks": ["drill"]})
    assert planned["actions"] == ["clone from VM dns1-replica (full)", "reconfigure networks=['drill']", "power on"]
    assert not client.clone_vm.called

    with pytest.raises(TwinsiteError, match="clone of VM 'dns1-replica' to VM 't-copy' failed: Proxmox VE links clones to templates only"):
        backend.clone({"name": "t-copy", "clone_from": "dns1-replica", "clone": "linked"})
    client.clone_vm.return_value = "UPID:pve2:clone"
    client.resources.side_effect = [client.resources.return_value,
                                    client.resources.return_value + [{"type": "qemu", "vmid": 4400, "node": "pve2", "name": "t-copy"}]]
    new = backend.clone({"name": "t-copy", "clone_from": "dns1-replica", "clone": "full"})
    client.clone_vm.assert_called_once_with("pve2", 201, newid=4400, name="t-copy", full=1)
    assert new["vmid"] == 4400
    _, kwargs = client.wait_task.call_args
    assert kwargs["obj"] == "VM 'dns1-replica' to VM 't-copy'"

    client.resources.side_effect = None
    with pytest.raises(TwinsiteError, match="lookup of VM 'nope' failed: no VM of that name on cluster cl-test to clone from"):
        backend.source({"name": "t-copy", "clone_from": "nope"})


def test_vsphere_clone_from_a_vm():
    names = [{"_obj": vim.VirtualMachine("vm-5"), "name": "dns1-replica", "config.template": False}]
    full = {"vm-5": {"_obj": vim.VirtualMachine("vm-5"), "name": "dns1-replica", "config.template": False, "config.hardware.device": []},
            "vm-9": {"_obj": vim.VirtualMachine("vm-9"), "name": "t-copy", "config.template": False, "config.hardware.device": []}}
    client = mock.Mock(endpoint="vc.example:443")
    client.retrieve_many.return_value = {vim.VirtualMachine: names, vim.dvs.DistributedVirtualPortgroup: [], vim.Network: [],
                                         vim.DistributedVirtualSwitch: [], vim.HostSystem: []}
    client.retrieve.return_value = names
    client.retrieve_objects.side_effect = lambda objs, kind, props: [
        {k: v for k, v in full[o._moId].items() if k in props or k in ("_obj", "name")} for o in objs if o._moId in full]
    client.wait_task.return_value = vim.VirtualMachine("vm-9")
    client.find_by_inventory_path.return_value = mock.Mock(resourcePool=vim.ResourcePool("resgroup-1"))
    backend = VsphereVms(client, {"name": "cl-primary", "datacenter": "DC", "cluster": "C"}, timeout=1)
    new = backend.clone({"name": "t-copy", "clone_from": "dns1-replica", "clone": "full"})
    (source, _, name, spec), _ = client.clone_vm_task.call_args
    assert source._moId == "vm-5" and name == "t-copy" and spec.template is False and new["moid"] == "vm-9"
    with pytest.raises(TwinsiteError, match="a linked clone needs a snapshot of VM 'dns1-replica'"):
        backend.clone({"name": "t-copy2", "clone_from": "dns1-replica", "clone": "linked"})
    # A template is not an ordinary VM: clone_from does not find it.
    names[0]["config.template"] = True
    fresh = VsphereVms(client, {"name": "cl-primary"}, timeout=1)
    with pytest.raises(TwinsiteError, match="lookup of VM 'dns1-replica' failed: no VM of that name in vCenter vc.example:443"):
        fresh.source({"name": "t-copy", "clone_from": "dns1-replica"})


def test_a_backup_of_an_earlier_vm_with_the_same_vmid_does_not_count(pve):
    """vzdump names files by vmid, and PVE reuses the vmid of a deleted VM: the drill's failback backs
    up and deletes <vm>-dr, and the next new VM gets its vmid. Its backup must not pass for theirs."""
    older = pve.add_backup(ctime=NOW - 7200)  # dns1-replica's own
    pve.add_backup(ctime=NOW - 60)
    pve.backups[-1]["config"]["name"] = "intranet1-dr"  # a VM that had vmid 201 and is gone
    made = backup(vm="dns1-replica", max_age_minutes=60)
    assert made["changed"], "a backup of another VM counted as this VM's"
    pve.backups.pop()  # the new one: the restore must now find dns1-replica's own backup, not the stranger's
    checked = restore(check=True, name="t-restored", source="dns1-replica", networks=["drill"])
    assert checked["archive"] == older, checked


# --- replace: a failback puts what changed on the failover's copy back under the production VM -----


INTRANET = {"cores": "2", "sockets": "1", "memory": "2048", "name": "intranet1", "description": "Intranet wiki",
            "scsi0": "local-lvm:vm-120-disk-0,size=32G", "net0": "virtio=BC:24:11:00:01:20,bridge=vmbr0,tag=20",
            "smbios1": "uuid=11111111-2222-3333-4444-555555555555"}


def failed_over(pve) -> str:
    """intranet1 (vmid 120) backed up and restored as intranet1-dr, which ran and was backed up:
    the volume id of that last backup."""
    pve.guests[120] = {"node": "pve1", "name": "intranet1", "template": 0, "status": "running", "config": dict(INTRANET)}
    pve.add_backup(vmid=120, node="pve1")
    dr = restore(name="intranet1-dr", source="intranet1", networks=["servers"], state="started")
    assert dr["changed"], dr
    pve.guests[dr["vmid"]]["data"] = "written during the failover"
    made = backup(vm="intranet1-dr", max_age_minutes=0)
    assert made["changed"], made
    return made["archive"]


def test_replace_puts_the_copys_disks_under_the_production_vm_which_keeps_its_identity(pve):
    archive = failed_over(pve)
    pve.writes.clear()
    planned = restore(check=True, name="intranet1", archive=archive, replace=True, state="started")
    assert planned["changed"] and pve.writes == [], "check mode wrote"
    assert planned["actions"] == ["power off", f"replace the disks with backup {archive} of 2025-03-01T03:34:20Z", "power on"]

    done = restore(name="intranet1", archive=archive, replace=True, state="started")
    assert done["changed"] and done["actions"] == planned["actions"] and done["vmid"] == 120 and done["archive"] == archive
    post = next(w for w in pve.writes if w[0] == "post")
    assert post[1] == "nodes/pve1/qemu" and post[2]["vmid"] == 120 and post[2]["force"] == 1 and post[2]["unique"] == 0
    assert [w[0] if w[0] != "vm_power" else w[2] for w in pve.writes] == ["stop", "post", "start"]  # off before, on after
    config = pve.guests[120]["config"]
    assert pve.guests[120]["data"] == "written during the failover", "the copy's data is not in place"
    # What the network and the guest know it by: its name, MAC, SMBIOS uuid and notes (and no restore mark,
    # so state=absent still refuses it).
    assert config["name"] == "intranet1" and config["net0"] == INTRANET["net0"] and config["smbios1"] == INTRANET["smbios1"]
    assert config["description"].startswith("Intranet wiki\ntwinsite-replaced: archive=" + archive)
    assert _vm_backup.restore_mark(config["description"]) is None
    origin = _vm_backup.restore_mark(pve.guests[4200]["config"]["description"])["archive"]  # intranet1-dr's
    assert _vm_backup.replaced_mark(config["description"])["origin"] == origin
    assert done["vm"]["power"] == "on" and planned["vm"]["networks"] == done["vm"]["networks"] == ["servers"]

    # A rerun of the failback: another backup of the same copy has the same origin - nothing is replaced.
    newer = backup(vm="intranet1-dr", max_age_minutes=0)["archive"]
    pve.writes.clear()
    again = restore(name="intranet1", archive=newer, replace=True, state="started")
    assert not again["changed"] and pve.writes == [] and again["archive"] == archive, again


def failed_over_keeping_macs(pve) -> str:
    """As a failover does: intranet1-dr restored from intranet1's backup with the production MACs
    (unique=false), run and backed up; the volume id of that last backup."""
    pve.guests[120] = {"node": "pve1", "name": "intranet1", "template": 0, "status": "running", "config": dict(INTRANET)}
    pve.add_backup(vmid=120, node="pve1")
    dr = restore(name="intranet1-dr", source="intranet1", networks=["servers"], unique=False, state="started")
    assert dr["changed"] and pve.guests[dr["vmid"]]["config"]["net0"] == INTRANET["net0"], "the failover's copy lost the MAC"
    pve.guests[dr["vmid"]]["data"] = "written during the failover"
    return backup(vm="intranet1-dr", max_age_minutes=0)["archive"]


def test_a_failback_onto_a_primary_that_lost_the_vm_brings_it_back_as_itself(pve):
    """The primary room took intranet1 with it. The failback restores the copy's last backup as
    intranet1: its own vmid, its MAC and SMBIOS uuid, its notes with a replace mark (no restore
    mark, so state=absent refuses it); a rerun changes nothing."""
    archive = failed_over_keeping_macs(pve)
    del pve.guests[120]  # lost with the primary room
    pve.writes.clear()
    planned = restore(check=True, name="intranet1", archive=archive, replace=True, unique=False, state="started")
    assert planned["changed"] and pve.writes == [] and planned["vmid"] == 120, planned
    back = restore(name="intranet1", archive=archive, replace=True, unique=False, state="started")
    assert back["changed"] and back["vmid"] == 120 and back["actions"] == planned["actions"], back
    post = next(w for w in pve.writes if w[0] == "post")
    assert post[2]["vmid"] == 120 and post[2]["unique"] == 0 and "force" not in post[2]
    config = pve.guests[120]["config"]
    assert pve.guests[120]["data"] == "written during the failover" and pve.guests[120]["status"] == "running"
    assert config["name"] == "intranet1" and config["net0"] == INTRANET["net0"] and config["smbios1"] == INTRANET["smbios1"]
    assert config["description"].startswith("Intranet wiki\ntwinsite-replaced: archive=" + archive), config["description"]
    assert _vm_backup.restore_mark(config["description"]) is None
    pve.writes.clear()
    again = restore(name="intranet1", archive=archive, replace=True, unique=False, state="started")
    assert not again["changed"] and pve.writes == [], again
    refused = restore(name="intranet1", state="absent")
    assert refused["failed"] and "no twinsite-restore mark" in refused["msg"] and 120 in pve.guests


def test_a_lost_vms_vmid_another_vm_holds_now_gives_it_a_free_one_and_a_rerun_changes_nothing(pve):
    archive = failed_over_keeping_macs(pve)
    pve.guests[120] = {"node": "pve1", "name": "someone-elses", "template": 0, "status": "stopped", "config": {"cores": "1", "memory": "512"}}
    back = restore(name="intranet1", archive=archive, replace=True, unique=False, state="started")
    assert back["changed"] and back["vmid"] not in (120, None) and pve.guests[120]["name"] == "someone-elses", back
    assert pve.guests[back["vmid"]]["config"]["net0"] == INTRANET["net0"]
    pve.writes.clear()
    again = restore(name="intranet1", archive=archive, replace=True, unique=False, state="started")
    assert not again["changed"] and pve.writes == [], again


def test_replace_refuses_a_backup_of_another_vm(pve):
    failed_over(pve)
    stranger = pve.add_backup(vmid=110, node="pve1")
    pve.writes.clear()
    result = restore(name="intranet1", archive=stranger, replace=True)
    assert result["failed"] and pve.writes == []
    assert result["msg"] == (f"cluster cl-test: replace of VM 'intranet1' (vmid 120) failed: backup '{stranger}' is of VM 'None' "
                             "(vmid 110), which is neither this VM nor restored from a backup of it: its disks do not go under this VM")


def test_a_failed_replace_says_the_disks_may_be_gone_and_the_rerun_replaces_them(pve):
    archive = failed_over(pve)
    pve.fail_restore = "unable to write to storage 'local-lvm': No space left on device"
    result = restore(name="intranet1", archive=archive, replace=True, state="started")
    assert result["failed"] and 120 in pve.guests, "the production VM was removed"
    assert result["msg"].endswith("No space left on device; PVE deletes a VM's disks before it restores over it, "
                                  "so VM 120 may have none now: run again to replace them (the backup is still there)")
    pve.fail_restore = None
    again = restore(name="intranet1", archive=archive, replace=True, state="started")
    assert again["changed"] and pve.guests[120]["data"] == "written during the failover"


def test_replace_of_a_vm_that_is_gone_restores_it(pve):
    archive = failed_over(pve)
    del pve.guests[120]
    made = restore(name="intranet1", archive=archive, replace=True, networks=["servers"])
    assert made["changed"] and made["actions"][0].startswith(f"restore backup {archive} of ") and " as VM intranet1 " in made["actions"][0]
