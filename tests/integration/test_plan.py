"""plan.yml compares the model with the live estate and exits like `terraform plan -detailed-exitcode`:
0 in sync, 2 drift (and names it), 1 when the plan cannot be made."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from conftest import vcenter
from proxmoxer import ProxmoxAPI
from pyVmomi import vim

REPO = Path(__file__).resolve().parents[2]


def plan(inventory: Path | str = "inventory/lab") -> subprocess.CompletedProcess:
    env = {**os.environ, "TWINSITE_LAB_STATE": str(REPO / ".lab")}
    return subprocess.run(["ansible-playbook", "-i", str(inventory), "playbooks/plan.yml"], cwd=REPO, env=env,
                          capture_output=True, text=True, check=False, timeout=300)


def _vm(si, name):
    view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [vim.VirtualMachine], True)
    try:
        return next(vm for vm in view.view if vm.name == name)
    finally:
        view.Destroy()


def _wait(task):
    deadline = time.monotonic() + 30
    while task.info.state not in ("success", "error") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert task.info.state == "success", task.info.error


def test_in_sync_lab_exits_0(lab):
    result = plan()
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "cl-primary: in sync with the model" in result.stdout
    assert "cl-secondary: in sync with the model" in result.stdout
    text = " ".join(result.stdout.split())  # the YAML callback wraps long lines
    assert "fw1: in sync, the ruleset applied last is the one rendered from the model and is loaded" in text
    assert "fw2: in sync, the ruleset applied last is the one rendered from the model and is loaded" in text


def test_changes_behind_twinsites_back_exit_2_and_are_named(lab, ca_pem):
    pve = lab.model["fakepve"]
    api = ProxmoxAPI(pve["host"], port=pve["port"], user=pve["username"], password=pve["password"], verify_ssl=str(ca_pem))
    replica = next(g for g in pve["guests"] if g["name"] == "dns1-replica")
    want_cpus = next(v["cpus"] for v in lab.model["vcsim"]["vms"] if v["name"] == "db1")
    with vcenter(lab, ca_pem) as si:
        _wait(_vm(si, "db1").ReconfigVM_Task(vim.vm.ConfigSpec(numCPUs=want_cpus * 2)))
        api.nodes(replica["node"]).qemu(replica["vmid"]).status.start.post()
        try:
            result = plan()
            assert result.returncode == 2, result.stdout[-3000:]
            assert f"~ db1: cpus {want_cpus * 2} -> {want_cpus}" in result.stdout
            assert "~ dns1-replica: power on -> off" in result.stdout
            assert "plan: drift found (exit 2)" in result.stderr
        finally:
            _wait(_vm(si, "db1").ReconfigVM_Task(vim.vm.ConfigSpec(numCPUs=want_cpus)))
            api.nodes(replica["node"]).qemu(replica["vmid"]).status.stop.post()
    # Nothing of the above is left behind (fakepve runs tasks instantly at --time-scale 0).
    assert plan().returncode == 0


def test_unreachable_endpoint_exits_1_not_2(lab, tmp_path):
    broken = tmp_path / "inventory" / "lab"
    shutil.copytree(REPO / "inventory" / "lab", broken)
    hv = broken / "group_vars" / "all" / "hypervisors.yml"
    hv.write_text(hv.read_text().replace("port: 8006", "port: 1"))
    result = plan(broken)
    assert result.returncode == 1, result.stdout[-3000:]
    assert "cluster cl-secondary: login of Proxmox VE 127.0.0.1:1 failed: cannot connect" in result.stdout
    assert "plan: error: the plan is incomplete (exit 1)" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "lab-pve-pw" not in result.stdout + result.stderr  # the failed item does not print the cluster's password


def test_a_desktop_removed_behind_twinsites_back_is_in_the_pool_plan_and_the_role_puts_it_back(lab, ca_pem):
    """A VDI pool's desktops are planned by the pool (vdi_drift_info), never reported as VMs the model lacks."""
    with vcenter(lab, ca_pem) as si:
        desktop = _vm(si, "vdi-staff-003")
        if desktop.runtime.powerState == "poweredOn":
            _wait(desktop.PowerOffVM_Task())
        _wait(desktop.Destroy_Task())
    result = plan()
    assert result.returncode == 2, result.stdout[-3000:]
    assert "+ vdi-staff-003: missing, would be created" in result.stdout
    assert "pool staff on cl-primary: 1 difference(s)" in result.stdout
    assert "cl-primary: in sync with the model" in result.stdout  # the other desktops are not "extra" VMs
    env = {**os.environ, "TWINSITE_LAB_STATE": str(REPO / ".lab")}
    again = subprocess.run(["ansible-playbook", "-i", "inventory/lab", "playbooks/vdi.yml"], cwd=REPO, env=env,
                           capture_output=True, text=True, check=False, timeout=300)
    assert again.returncode == 0, again.stdout[-3000:]
    assert plan().returncode == 0
