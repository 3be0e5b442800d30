"""The vm_fleet role on the lab: it converges t- VMs added to a copy of the model, a second run
changes nothing and calls twinsite.dc.vm for no VM, and a change made behind its back is put right."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from pyVmomi import vim
from test_vm import REPO, live, pve_api, vcenter, vm

FLEET_VMS = """
  - {name: t-fleet-v, cluster: cl-primary, template: tpl-debian12, folder: Servers, cpus: 1, memory_mb: 1024, networks: [servers], power: "off"}
  - {name: t-fleet-p, cluster: cl-secondary, template: tpl-debian12, node: pve2, vmid: 4343, cpus: 1, memory_mb: 1024, networks: [servers], power: "off"}
  - {name: t-fleet-gone, cluster: cl-primary, state: absent}
"""
PLAYBOOK = """---
- name: Converge the VMs
  hosts: localhost
  gather_facts: false
  roles:
    - twinsite.dc.vm_fleet
"""


@pytest.fixture
def inventory(lab, tmp_path):
    """A copy of the lab model with two t- VMs to create and one declared absent."""
    copy = tmp_path / "inventory" / "lab"
    shutil.copytree(REPO / "inventory" / "lab", copy)
    hv = copy / "group_vars" / "all" / "hypervisors.yml"
    hv.write_text(hv.read_text().rstrip("\n") + "\n" + FLEET_VMS.lstrip("\n"))
    (tmp_path / "fleet.yml").write_text(PLAYBOOK)
    yield copy
    for name, cluster in (("t-fleet-v", "cl-primary"), ("t-fleet-p", "cl-secondary"), ("t-fleet-gone", "cl-primary")):
        vm(cluster, name=name, state="absent")


def converge(inventory: Path) -> dict:
    """Run the role; return {task name: result for localhost} and the recap of changed tasks."""
    env = {**os.environ, "TWINSITE_LAB_STATE": str(REPO / ".lab"), "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"}
    done = subprocess.run(["ansible-playbook", "-i", str(inventory), str(inventory.parents[1] / "fleet.yml")], cwd=REPO, env=env,
                          capture_output=True, text=True, check=False, timeout=600)
    # A converge run keeps Ansible's exit codes: plan_exit only acts on plays marked as plans.
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["stats"]["localhost"]["failures"] == 0
    tasks = {t["task"]["name"].split(" : ", 1)[-1]: t["hosts"]["localhost"] for t in report["plays"][0]["tasks"]}
    return {"tasks": tasks, "changed": report["stats"]["localhost"]["changed"], "rc": done.returncode}


def per_vm_calls(run: dict) -> list[str]:
    return [r["item"] for r in run["tasks"]["Converge each VM that needs it"].get("results", [])]


def test_role_converges_then_is_idempotent_then_repairs(inventory, lab, ca_pem):
    vm("cl-primary", name="t-fleet-gone", template="tpl-debian12", folder="Servers")  # declared absent: must go
    assert live(lab, ca_pem, "vsphere", "t-fleet-gone") is not None

    first = converge(inventory)
    assert first["changed"] >= 1
    assert sorted(per_vm_calls(first)) == ["t-fleet-gone", "t-fleet-p", "t-fleet-v"]
    assert live(lab, ca_pem, "vsphere", "t-fleet-gone") is None
    for kind, name in (("vsphere", "t-fleet-v"), ("proxmox", "t-fleet-p")):
        seen = live(lab, ca_pem, kind, name)
        assert (seen["cpus"], seen["memory_mb"], seen["power"]) == (1, 1024, "off"), (name, seen)

    second = converge(inventory)
    assert second["changed"] == 0
    assert per_vm_calls(second) == []  # one bulk read per cluster, no call per VM

    # Behind the role's back: more CPUs on vSphere, a started VM on Proxmox.
    with vcenter(lab, ca_pem) as si:
        view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [vim.VirtualMachine], True)
        target = next(v for v in view.view if v.name == "t-fleet-v")
        view.Destroy()
        task = target.ReconfigVM_Task(vim.vm.ConfigSpec(numCPUs=2))
        while task.info.state not in ("success", "error"):
            time.sleep(0.1)
    pve_api(lab, ca_pem).nodes("pve2").qemu(4343).status.start.post()
    assert live(lab, ca_pem, "vsphere", "t-fleet-v")["cpus"] == 2 and live(lab, ca_pem, "proxmox", "t-fleet-p")["power"] == "on"

    repaired = converge(inventory)
    assert repaired["changed"] >= 1
    assert sorted(per_vm_calls(repaired)) == ["t-fleet-p", "t-fleet-v"]
    assert live(lab, ca_pem, "vsphere", "t-fleet-v")["cpus"] == 1
    assert live(lab, ca_pem, "proxmox", "t-fleet-p")["power"] == "off"
    assert converge(inventory)["changed"] == 0
