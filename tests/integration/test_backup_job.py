"""twinsite.dc.backup_job and the proxmox_backup_jobs role against a Proxmox VE API with stateful
backup jobs, through `ansible localhost -m` (the real plumbing): check mode -> apply -> apply again ->
update -> delete -> delete again, each step read back through the API directly.

Where: the LAB's fakepve by default (its launcher, labkit.fakepve_server, keeps /cluster/backup jobs).
A lab started before that launcher change answers /cluster/backup with canned samples; the tests then
fail saying so. ``TWINSITE_BACKUP_JOB_PVE=private`` runs them against a fakepve of our own instead,
served in this process with the same launcher code (labkit.fakepve_server.build) and the lab's two
Proxmox VMs. The fault tests always use a private one: they inject failures.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from fakepve.pytest_plugin import _Serving
from proxmoxer import ProxmoxAPI
from test_vm import run_module

from labkit import ca
from labkit.fakepve_server import build
from labkit.state import State

REPO = Path(__file__).resolve().parents[2]
JOB = "t-backup-job-it"
PASSWORD = "backup-job-test-pw"
CLUSTER_EXPR = "{{ dc_clusters | selectattr('name', 'eq', 'cl-secondary') | first }}"


def _qemu(vmid, name, node, template=False):
    return {"vmid": vmid, "name": name, "node": node, "type": "qemu", "status": "stopped", "template": template,
            "config": {"cores": 1, "sockets": 1, "memory": 512, "scsi0": f"local-lvm:{'base' if template else 'vm'}-{vmid}-disk-0,size=20G"}}


def _private(tmp_path) -> _Serving:
    state = State(tmp_path / "lab-state")
    cert, key = ca.server_cert(state, "fakepve-backup-jobs", ["127.0.0.1"])
    spec = {"cluster": "cl-secondary", "nodes": ["pve1", "pve2"],
            "guests": [_qemu(9000, "tpl-debian12", "pve1", template=True), _qemu(110, "backup-proxy", "pve1"),
                       _qemu(201, "dns1-replica", "pve2")]}
    serving = _Serving(build(spec, "root@pam", PASSWORD, "127.0.0.1", 0), str(cert), str(key))
    serving.pve.ca_pem = str(state.ca / "ca.pem")
    return serving


class Target:
    """Where the module runs against: its cluster argument, inventory, extra vars and a direct API."""

    def __init__(self, cluster, inventory, api: ProxmoxAPI, extra_vars: dict | None = None):
        self.cluster, self.inventory, self.api, self.extra_vars = cluster, inventory, api, extra_vars or {}

    def job(self, job_id: str = JOB) -> dict | None:
        return next((j for j in self.api.cluster.backup.get() if j["id"] == job_id), None)

    def run(self, check: bool = False, **args) -> dict:
        result = run_module("backup_job", {"cluster": self.cluster, "id": JOB, **args}, check=check, inventory=self.inventory)
        assert "Traceback" not in result["output"], result["output"]
        assert PASSWORD not in result["output"] and "lab-pve-pw" not in result["output"]
        return result


def _private_target(serving) -> Target:
    pve = serving.pve
    cluster = {"name": "cl-secondary", "type": "proxmox", "nodes": ["pve1", "pve2"],
               "api": {"host": "127.0.0.1", "port": pve.port, "username": "root@pam", "password": PASSWORD, "ca_bundle": pve.ca_pem}}
    api = ProxmoxAPI("127.0.0.1", port=pve.port, user="root@pam", password=PASSWORD, verify_ssl=pve.ca_pem)
    return Target(cluster, "localhost,", api, {"dc_clusters": [cluster]})


@pytest.fixture
def target(request, tmp_path):
    if os.environ.get("TWINSITE_BACKUP_JOB_PVE") == "private":
        serving = _private(tmp_path)
        try:
            yield _private_target(serving)
        finally:
            serving.stop()
        return
    lab = request.getfixturevalue("lab")
    ca_pem = request.getfixturevalue("ca_pem")
    spec = lab.model["fakepve"]
    api = ProxmoxAPI(spec["host"], port=spec["port"], user=spec["username"], password=spec["password"], verify_ssl=str(ca_pem))
    # fakepve's canned answer: one example job with a `next-run` (the lab's stateful jobs never run).
    if any("next-run" in j for j in api.cluster.backup.get()):
        pytest.fail("the lab's fakepve answers /cluster/backup with canned samples: it was started before "
                    "labkit.fakepve_server kept backup jobs. Restart it (scripts/lab down && scripts/lab up), "
                    "or run with TWINSITE_BACKUP_JOB_PVE=private")
    target = Target(CLUSTER_EXPR, "inventory/lab", api)
    _drop(target)
    try:
        yield target
    finally:
        _drop(target)


def _drop(target: Target) -> None:
    if target.job() is not None:
        target.api.cluster.backup(JOB).delete()


@pytest.fixture
def private(tmp_path):
    serving = _private(tmp_path)
    try:
        yield serving
    finally:
        serving.stop()


NIGHTLY = {"schedule": "02:30", "storage": "local", "vms": ["dns1-replica", "backup-proxy"],
           "retention": {"keep_last": 3, "keep_daily": 14}, "notes_template": "{{ '{{guestname}}' }} nightly", "mailnotification": "failure"}


@pytest.mark.lab
def test_backup_job_lifecycle(target):
    # Check mode: the predicted job, and nothing written.
    checked = target.run(check=True, **NIGHTLY)
    assert checked["rc"] == 0 and checked["changed"] is True, checked["output"]
    assert checked["job"]["vmids"] == [110, 201] and checked["job"]["retention"] == {"keep_last": 3, "keep_daily": 14}
    assert checked["diff"]["before"] == {} and checked["diff"]["after"]["vms"] == ["backup-proxy", "dns1-replica"]
    assert target.job() is None

    # Apply: the job as real PVE keeps it (vmid a comma list, prune-backups a property string).
    created = target.run(**NIGHTLY)
    assert created["rc"] == 0 and created["changed"] is True, created["output"]
    job = target.job()
    assert job["vmid"] == "110,201" and job["schedule"] == "02:30" and job["storage"] == "local"
    assert job["prune-backups"] == "keep-last=3,keep-daily=14"
    assert job["notes-template"] == "{{guestname}} nightly" and job["compress"] == "zstd" and job["mailnotification"] == "failure"
    assert int(job.get("enabled", 1)) == 1
    assert created["job"] == checked["job"]

    # Again: unchanged, nothing written.
    again = target.run(**NIGHTLY)
    assert again["rc"] == 0 and again["changed"] is False, again["output"]
    assert target.job() == job

    # An update in check mode writes nothing; applied, the diff names what changed.
    update = {**NIGHTLY, "schedule": "sun 01:00", "retention": {"keep_weekly": 4}, "enabled": False, "vms": ["backup-proxy"]}
    predicted = target.run(check=True, **update)
    assert predicted["changed"] is True and target.job() == job
    updated = target.run(**update)
    assert updated["rc"] == 0 and updated["changed"] is True, updated["output"]
    assert updated["diff"]["before"]["schedule"] == "02:30" and updated["diff"]["after"]["schedule"] == "sun 01:00"
    job = target.job()
    assert job["schedule"] == "sun 01:00" and job["prune-backups"] == "keep-weekly=4" and int(job["enabled"]) == 0 and job["vmid"] == "110"
    assert updated["job"] == predicted["job"]
    assert target.run(**update)["changed"] is False

    # all: true replaces the VM list; "" and {} clear a setting.
    cleared = target.run(**{**{k: v for k, v in update.items() if k != "vms"}, "all": True, "notes_template": "", "retention": {}})
    assert cleared["changed"] is True, cleared["output"]
    job = target.job()
    assert int(job["all"]) == 1 and "vmid" not in job and "notes-template" not in job and "prune-backups" not in job

    # Delete, then delete again.
    deleted = target.run(state="absent")
    assert deleted["rc"] == 0 and deleted["changed"] is True and deleted["job"] is None, deleted["output"]
    assert target.job() is None
    assert target.run(state="absent")["changed"] is False


@pytest.mark.lab
def test_role_converges_the_model_and_purges_on_request(target, tmp_path):
    """proxmox_backup_jobs with the lab model's dc_backup_jobs: check mode, apply, unchanged; a job made by
    hand stays unless purge is on."""
    play = [{"hosts": "localhost", "gather_facts": False, "roles": [{"role": "twinsite.dc.proxmox_backup_jobs"}]}]
    playbook = tmp_path / "play.yml"
    playbook.write_text(json.dumps(play))
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps(target.extra_vars))

    def converge(*flags):
        import subprocess
        import sys

        argv = ["ansible-playbook", "-i", "inventory/lab", str(playbook), "-e", f"@{extra}", "-e", f"ansible_python_interpreter={sys.executable}", *flags]
        env = {**os.environ, "TWINSITE_LAB_STATE": str(REPO / ".lab")}
        done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, check=False, timeout=300)
        assert "Traceback" not in done.stdout + done.stderr and PASSWORD not in done.stdout + done.stderr
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    model_id = "secondary-nightly"
    if target.job(model_id) is not None:
        target.api.cluster.backup(model_id).delete()
    target.api.cluster.backup.post(id=JOB, schedule="sat 05:00", all=1)  # made by hand in the web UI
    try:
        assert "changed=1" in converge("--check")
        assert target.job(model_id) is None
        assert "changed=1" in converge()
        job = target.job(model_id)
        assert job["vmid"] == "110,120,201" and job["prune-backups"] == "keep-last=3,keep-daily=14,keep-weekly=8,keep-monthly=6"
        assert job["notes-template"] == "{{guestname}} - twinsite nightly"
        assert "changed=0" in converge()
        assert target.job() is not None  # left alone
        assert "changed=1" in converge("-e", "proxmox_backup_jobs_purge=true")
        assert target.job() is None and target.job(model_id) is not None
    finally:
        _drop(target)


# --- faults: always against a private fakepve (they inject failures) ------------------------------


def test_wrong_password_is_one_clear_line(private):
    cluster = _private_target(private).cluster
    result = run_module("backup_job", {"cluster": {**cluster, "api": {**cluster["api"], "password": "not-the-password"}}, "id": JOB, **NIGHTLY},
                        inventory="localhost,")
    assert result["rc"] != 0 and "Traceback" not in result["output"]
    assert result["msg"] == f"cluster cl-secondary: login of Proxmox VE 127.0.0.1:{private.pve.port} failed: wrong user name or password"
    assert "not-the-password" not in result["output"]


def test_injected_api_failure_names_job_and_action(private):
    target = _private_target(private)
    private.pve.fail("POST", "/cluster/backup", error="no_quorum")
    result = target.run(**NIGHTLY)
    assert result["rc"] != 0
    expected = f"cluster cl-secondary: creation of backup job '{JOB}' failed: 500 Internal Server Error: cluster not ready - no quorum?"
    assert result["msg"] == expected, result["msg"]
    assert target.job() is None


def test_failing_update_and_pve_parameter_errors_are_named(private):
    target = _private_target(private)
    assert target.run(**NIGHTLY)["changed"] is True
    private.pve.fail("PUT", "/cluster/backup/{id}", 500, "can't lock file '/var/lock/pve-manager/pve-jobs.lck' - got timeout", times=1)
    result = target.run(**{**NIGHTLY, "schedule": "03:00"})
    assert result["rc"] != 0
    assert result["msg"].startswith(f"cluster cl-secondary: update of backup job '{JOB}' failed: 500 "), result["msg"]
    assert "pve-jobs.lck' - got timeout" in result["msg"]
    # PVE's 400 names the parameter it refused.
    result = target.run(**{**NIGHTLY, "schedule": "03:00", "node": "no such node!"})
    assert result["rc"] != 0 and "node: invalid format" in result["msg"] and f"backup job '{JOB}'" in result["msg"], result["msg"]


def test_unknown_vm_and_incomplete_job_fail_before_any_write(private):
    target = _private_target(private)
    result = target.run(**{**NIGHTLY, "vms": ["dns9"]})
    assert result["msg"] == f"cluster cl-secondary: lookup of the VMs of backup job '{JOB}' failed: no VM named 'dns9' in the Proxmox cluster"
    result = target.run(vms=["backup-proxy"])
    assert result["msg"] == f"cluster cl-secondary: creation of backup job '{JOB}' failed: a new job needs a schedule"
    assert [r for r in private.pve.requests if r[0] != "GET" and "/cluster/backup" in r[1]] == []
