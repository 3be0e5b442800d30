"""roles/hypervisor_cluster on the lab, twice: the first run creates what is missing (a t- network
added to the model's), the second changes nothing. The t- port group is removed afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest
from test_network import dv_portgroups
from test_snapshot import cluster_arg, run_module

REPO = Path(__file__).resolve().parents[2]
EXTRA = "t-role-net"


def converge() -> dict:
    play = [{"hosts": "localhost", "gather_facts": False, "roles": [{"role": "hypervisor_cluster"}]}]
    extra = {"hypervisor_cluster_networks": "{{ dc_networks + [{'name': '" + EXTRA + "', 'vlan': 3010}] }}"}
    env = {**os.environ, "TWINSITE_LAB_STATE": str(REPO / ".lab"), "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"}
    with tempfile.NamedTemporaryFile("w", suffix=".yml", dir="/tmp", prefix="t-play-") as playbook:
        json.dump(play, playbook)
        playbook.flush()
        done = subprocess.run(["ansible-playbook", playbook.name, "-e", json.dumps(extra)], cwd=REPO, env=env,
                              capture_output=True, text=True, check=False, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert "lab-vcenter-pw" not in done.stdout and "lab-pve-pw" not in done.stdout
    return json.loads(done.stdout)["stats"]["localhost"]


@pytest.mark.lab
def test_role_twice_second_run_changes_nothing(lab, ca_pem):
    try:
        first = converge()
        assert first["changed"] >= 1 and dv_portgroups(lab, ca_pem)[EXTRA] == 3010
        second = converge()
        assert second["changed"] == 0 and second["failures"] == 0
        live = dv_portgroups(lab, ca_pem)
        assert {n: live[n] for n in ("mgmt", "servers", "users", "dmz", "backup", "intersite")} == {
            "mgmt": 10, "servers": 20, "users": 30, "dmz": 40, "backup": 50, "intersite": 60}
    finally:
        run_module("network", {"cluster": cluster_arg("cl-primary"), "name": EXTRA, "state": "absent"})
    assert EXTRA not in dv_portgroups(lab, ca_pem)
