"""twinsite.dc.vm and vm_info on both simulators, through `ansible` (the real plumbing): check mode ->
apply -> apply again -> change -> stop/start -> delete -> delete again, each step checked by reading
the simulator directly. Test VMs are named t-...; the model's VMs are never touched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import vcenter
from proxmoxer import ProxmoxAPI
from pyVmomi import vim, vmodl

REPO = Path(__file__).resolve().parents[2]
CLUSTERS = {"vsphere": "cl-primary", "proxmox": "cl-secondary"}


def cluster_expr(name: str) -> str:
    return "{{ dc_clusters | selectattr('name', 'eq', '" + name + "') | first }}"


def run_module(module: str, args: dict, check: bool = False, inventory: str | Path = "inventory/lab", env: dict | None = None) -> dict:
    """Run one module with `ansible localhost -m`; return its result (with ``rc`` and the raw output).
    ``env`` adds variables; a None value unsets one."""
    argv = ["ansible", "localhost", "-i", str(inventory), "-m", f"twinsite.dc.{module}", "-a", json.dumps(args), "--diff",
            # The controller's own Python (the venv with pyvmomi and proxmoxer), as inventory/lab sets it.
            "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}"]
    if check:
        argv.append("--check")
    # One task per process: Mitogen's start-up (+0.6 s a call) buys nothing here, and the module is what
    # is under test. The playbook tests run under ansible.cfg's strategy.
    full_env = {**os.environ, "TWINSITE_LAB_STATE": str(REPO / ".lab"), "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
                "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", "ANSIBLE_STRATEGY": "linear", **(env or {})}
    full_env = {k: v for k, v in full_env.items() if v is not None}  # None in env: unset it
    done = subprocess.run(argv, cwd=REPO, env=full_env, capture_output=True, text=True, check=False, timeout=300)
    try:
        result = json.loads(done.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (ValueError, KeyError, IndexError):
        result = {}
    return {**result, "rc": done.returncode, "output": done.stdout + done.stderr}


def vm(cluster: str, check: bool = False, **args) -> dict:
    return run_module("vm", {"cluster": cluster_expr(cluster), "networks_model": "{{ dc_networks }}", **args}, check=check)


# --- reading the simulators directly -----------------------------------------------------------


def pve_api(lab, ca_pem) -> ProxmoxAPI:
    spec = lab.model["fakepve"]
    return ProxmoxAPI(spec["host"], port=spec["port"], user=spec["username"], password=spec["password"], verify_ssl=str(ca_pem))


def live(lab, ca_pem, kind: str, name: str) -> dict | None:
    """The VM as the simulator itself reports it: {id, cpus, memory_mb, power}, or None."""
    if kind == "vsphere":
        with vcenter(lab, ca_pem) as si:
            view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [vim.VirtualMachine], True)
            try:
                found = [v for v in view.view if _name(v) == name]
                if not found:
                    return None
                v = found[0]
                return {"id": v.config.instanceUuid, "cpus": v.config.hardware.numCPU, "memory_mb": v.config.hardware.memoryMB,
                        "power": "on" if v.runtime.powerState == "poweredOn" else "off", "template": v.config.template}
            finally:
                view.Destroy()
    rows = [r for r in pve_api(lab, ca_pem).cluster.resources.get(type="vm") if r.get("name") == name]
    if not rows:
        return None
    r = rows[0]
    return {"id": r["vmid"], "cpus": r["maxcpu"], "memory_mb": r["maxmem"] // 1024**2,
            "power": "on" if r["status"] == "running" else "off", "template": bool(r.get("template"))}


def _name(managed_vm) -> str | None:
    try:
        return managed_vm.name
    except vmodl.fault.ManagedObjectNotFound:  # deleted meanwhile (other tests share the simulator)
        return None


@pytest.fixture(params=["vsphere", "proxmox"])
def kind(request, lab):
    """A backend; whatever the test leaves is removed (t- VMs only)."""
    yield request.param
    for name in ("t-life", "t-cust"):
        vm(CLUSTERS[request.param], name=name, state="absent")


def test_vm_lifecycle(kind, lab, ca_pem):
    cl = CLUSTERS[kind]
    base = {"name": "t-life", "template": "tpl-debian12", "folder": "Servers", "cpus": 2, "memory_mb": 1024,
            "networks": ["servers"], "notes": "twinsite test VM"}
    if kind == "proxmox":
        base.update(node="pve2", vmid=4242)

    # Check mode: the predicted VM, nothing created.
    planned = vm(cl, check=True, **base)
    assert planned["rc"] == 0 and planned["changed"], planned["output"]
    assert planned["vm"]["memory_mb"] == 1024 and planned["vm"]["power"] == "off"
    assert planned["actions"][0] == "clone from template tpl-debian12 (full)"
    assert live(lab, ca_pem, kind, "t-life") is None

    # Apply: a NEW VM, with its own id (not the template's).
    made = vm(cl, **base)
    assert made["rc"] == 0 and made["changed"], made["output"]
    seen = live(lab, ca_pem, kind, "t-life")
    assert seen is not None and not seen["template"]
    assert made["vm"]["id"] == seen["id"] and (seen["cpus"], seen["memory_mb"]) == (2, 1024)
    assert made["vm"]["networks"] == ["servers"] and made["vm"]["notes"] == "twinsite test VM"
    assert made["diff"]["before"] == {}
    if kind == "proxmox":
        assert seen["id"] == 4242 and made["vm"]["node"] == "pve2"

    # Again: unchanged, no action.
    again = vm(cl, **base)
    assert again["rc"] == 0 and not again["changed"] and again["actions"] == [], again["output"]

    # Change CPUs and memory: a diff in the model's terms.
    changed = vm(cl, **{**base, "cpus": 3, "memory_mb": 1536})
    assert changed["rc"] == 0 and changed["changed"], changed["output"]
    assert (changed["diff"]["before"]["cpus"], changed["diff"]["after"]["cpus"]) == (2, 3)
    assert (changed["diff"]["before"]["memory_mb"], changed["diff"]["after"]["memory_mb"]) == (1024, 1536)
    assert list(changed["diff"]["after"]) == sorted(changed["diff"]["after"])
    assert (live(lab, ca_pem, kind, "t-life")["cpus"], live(lab, ca_pem, kind, "t-life")["memory_mb"]) == (3, 1536)

    # Start, then stop.
    started = vm(cl, **{**base, "cpus": 3, "memory_mb": 1536, "state": "started"})
    assert started["rc"] == 0 and started["actions"] == ["power on"], started["output"]
    assert live(lab, ca_pem, kind, "t-life")["power"] == "on"
    # A running VM's CPUs change only with allow_restart: without it, an error that names the VM.
    refused = vm(cl, **{**base, "cpus": 4, "memory_mb": 1536, "state": "started"})
    assert refused["rc"] != 0 and "reconfigure of VM 't-life' failed: cpus cannot change while it runs" in refused["msg"]
    assert live(lab, ca_pem, kind, "t-life")["cpus"] == 3
    stopped = vm(cl, **{**base, "cpus": 3, "memory_mb": 1536, "state": "stopped"})
    assert stopped["rc"] == 0 and stopped["actions"] == ["power off"], stopped["output"]
    assert live(lab, ca_pem, kind, "t-life")["power"] == "off"

    # Shrinking the disk is an error naming the VM; nothing changes.
    shrink = vm(cl, **{**base, "cpus": 3, "memory_mb": 1536, "disk_gb": 1})
    assert shrink["rc"] != 0 and "resize of VM 't-life' failed: disks only grow" in shrink["msg"]

    # Delete, then delete again.
    gone = vm(cl, name="t-life", state="absent")
    assert gone["rc"] == 0 and gone["changed"] and gone["actions"] == ["delete"], gone["output"]
    assert live(lab, ca_pem, kind, "t-life") is None
    still_gone = vm(cl, name="t-life", state="absent")
    assert still_gone["rc"] == 0 and not still_gone["changed"]


def test_vm_info_reads_in_model_terms(kind, lab, ca_pem):
    cl = CLUSTERS[kind]
    every = run_module("vm_info", {"cluster": cluster_expr(cl)}, check=True)
    assert every["rc"] == 0, every["output"]
    names = [v["name"] for v in every["vms"]]
    assert names == sorted(names) and not any(v["template"] for v in every["vms"])
    model_vm = {"vsphere": "db1", "proxmox": "backup-proxy"}[kind]
    one = run_module("vm_info", {"cluster": cluster_expr(cl), "name": model_vm, "networks_model": "{{ dc_networks }}"})
    assert one["rc"] == 0 and len(one["vms"]) == 1, one["output"]
    assert one["vms"][0]["networks"] == {"vsphere": ["servers"], "proxmox": ["backup"]}[kind]
    assert one["vms"][0]["id"] == live(lab, ca_pem, kind, model_vm)["id"]
    assert "lab-vcenter-pw" not in one["output"] and "lab-pve-pw" not in one["output"]


def test_customization_on_clone(kind, lab, ca_pem):
    """vSphere: the Linux customization spec goes with the clone (vcsim accepts it, runs no guest).
    Proxmox: cloud-init ipconfig0 / nameserver, read back from the VM's config."""
    custom = {"hostname": "t-cust.town.example", "ip": "192.0.2.30", "prefix": 24, "gateway": "192.0.2.254", "dns": ["192.0.2.53"]}
    made = vm(CLUSTERS[kind], name="t-cust", template="tpl-debian12", folder="Servers", customization=custom)
    assert made["rc"] == 0 and made["changed"], made["output"]
    assert made["vm"]["id"] == live(lab, ca_pem, kind, "t-cust")["id"]
    if kind == "proxmox":
        config = pve_api(lab, ca_pem).nodes(made["vm"]["node"]).qemu(made["vm"]["vmid"]).config.get()
        assert config["ipconfig0"] == "ip=192.0.2.30/24,gw=192.0.2.254" and config["nameserver"] == "192.0.2.53"
