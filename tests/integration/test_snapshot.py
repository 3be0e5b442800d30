"""twinsite.dc.snapshot against the lab's vcsim and fakepve, through `ansible localhost -m` (the real
plumbing): check mode -> apply -> apply again -> revert -> delete -> delete again, each step checked by
reading the simulator directly. Snapshots are named t-... and removed at the end."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import tempfile
from pathlib import Path

import pytest
from proxmoxer import ProxmoxAPI
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim, vmodl

REPO = Path(__file__).resolve().parents[2]
SNAP = "t-snapshot-it"


def run_module(module: str, args: dict, check: bool = False, diff: bool = False) -> dict:
    """One module run through ansible-playbook (the real plumbing: inventory, templating, no_log),
    its result as a dict. ``args`` may hold Jinja, so the cluster comes from the lab's model."""
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": [{f"twinsite.dc.{module}": args, "ignore_errors": True}]}]
    env = {**os.environ, "TWINSITE_LAB_STATE": str(REPO / ".lab"), "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"}
    with tempfile.NamedTemporaryFile("w", suffix=".yml", dir="/tmp", prefix="t-play-") as playbook:
        json.dump(play, playbook)
        playbook.flush()
        argv = ["ansible-playbook", playbook.name, *(["--check"] * check), *(["--diff"] * diff)]
        done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, check=False, timeout=300)
    assert done.stdout.strip(), done.stderr
    return json.loads(done.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]


def cluster_arg(name: str) -> str:
    return "{{ dc_clusters | selectattr('name', 'eq', '" + name + "') | first }}"


def vsphere_snapshots(lab, ca_pem, vm_name: str) -> list[str]:
    spec = lab.model["vcsim"]
    si = SmartConnect(host=spec["host"], port=spec["port"], user=spec["username"], pwd=spec["password"],
                      sslContext=ssl.create_default_context(cafile=str(ca_pem)))
    try:
        content = si.RetrieveContent()
        view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
        pc = vmodl.query.PropertyCollector
        spec_ = pc.FilterSpec(objectSet=[pc.ObjectSpec(obj=view, skip=True, selectSet=[pc.TraversalSpec(path="view", type=vim.view.ContainerView)])],
                              propSet=[pc.PropertySpec(type=vim.VirtualMachine, pathSet=["name", "snapshot"])])
        names = []
        for o in content.propertyCollector.RetrieveContents([spec_]):
            props = {p.name: p.val for p in o.propSet}
            if props["name"] == vm_name and props.get("snapshot"):
                stack = list(props["snapshot"].rootSnapshotList)
                while stack:
                    node = stack.pop()
                    names.append(node.name)
                    stack.extend(node.childSnapshotList)
        return sorted(names)
    finally:
        Disconnect(si)


def proxmox_snapshots(lab, ca_pem, vm_name: str) -> list[str]:
    spec = lab.model["fakepve"]
    api = ProxmoxAPI(host=spec["host"], port=spec["port"], user=spec["username"], password=spec["password"], verify_ssl=str(ca_pem))
    guest = next(r for r in api.cluster.resources.get(type="vm") if r.get("name") == vm_name)
    return sorted(s["name"] for s in api.nodes(guest["node"]).qemu(guest["vmid"]).snapshot.get() if s["name"] != "current")


CASES = [("cl-primary", "dns1", vsphere_snapshots), ("cl-secondary", "dns1-replica", proxmox_snapshots)]


@pytest.mark.lab
@pytest.mark.parametrize(("cluster", "vm", "read"), CASES, ids=["vsphere", "proxmox"])
def test_snapshot_lifecycle(lab, ca_pem, cluster, vm, read):
    args = {"cluster": cluster_arg(cluster), "vm": vm, "name": SNAP, "description": "integration test"}
    try:
        checked = run_module("snapshot", args, check=True, diff=True)
        assert checked["changed"] and SNAP in [s["name"] for s in checked["snapshots"]]
        assert SNAP not in read(lab, ca_pem, vm), "check mode must not write"

        created = run_module("snapshot", args)
        assert created["changed"], created
        assert SNAP in read(lab, ca_pem, vm)

        again = run_module("snapshot", args)
        assert not again["changed"], again

        reverted = run_module("snapshot", {**args, "state": "reverted"})
        assert reverted["changed"] and SNAP in read(lab, ca_pem, vm)

        removed = run_module("snapshot", {**args, "state": "absent"}, diff=True)
        assert removed["changed"] and SNAP not in [s["name"] for s in removed["diff"]["after"]["snapshots"]]
        assert SNAP not in read(lab, ca_pem, vm)

        assert not run_module("snapshot", {**args, "state": "absent"})["changed"]
    finally:
        if SNAP in read(lab, ca_pem, vm):  # leave the lab as the model describes it
            run_module("snapshot", {**args, "state": "absent"})


@pytest.mark.lab
def test_snapshot_errors_name_object_and_action(lab):
    missing = run_module("snapshot", {"cluster": cluster_arg("cl-primary"), "vm": "t-no-such-vm", "name": SNAP})
    assert missing["failed"] and "VM 't-no-such-vm'" in missing["msg"] and "Traceback" not in str(missing)
    revert = run_module("snapshot", {"cluster": cluster_arg("cl-secondary"), "vm": "dns1-replica", "name": "t-none", "state": "reverted"})
    assert revert["failed"] and "revert of snapshot 't-none'" in revert["msg"]


@pytest.mark.lab
@pytest.mark.parametrize("cluster", ["cl-primary", "cl-secondary"])
def test_wrong_password_and_missing_ca(lab, cluster):
    base = "dc_clusters | selectattr('name', 'eq', '" + cluster + "') | first"
    wrong = "{{ " + base + " | combine({'api': (" + base + ").api | combine({'password': 't-wrong'})}) }}"
    answer = run_module("snapshot", {"cluster": wrong, "vm": "dns1", "name": SNAP})
    assert answer["failed"] and "login" in answer["msg"] and "wrong user name or password" in answer["msg"]
    assert "t-wrong" not in json.dumps(answer)
    no_ca = "{{ " + base + " | combine({'api': (" + base + ").api | combine({'ca_bundle': '/nonexistent/ca.pem'})}) }}"
    answer = run_module("snapshot", {"cluster": no_ca, "vm": "dns1", "name": SNAP})
    assert answer["failed"] and "/nonexistent/ca.pem" in answer["msg"]
