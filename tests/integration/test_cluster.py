"""twinsite.dc.cluster against the lab. vcsim 0.24 accepts ReconfigureComputeResource_Task but
stores only rules, groups and overrides (not dasConfig/drsConfig), and fakepve answers HA calls
from its schema without storing them: so these tests check the read side, check mode and that the
write path completes; idempotence is covered by the unit tests (tests/unit/test_cluster.py)."""

from __future__ import annotations

import pytest
from test_snapshot import cluster_arg, run_module


@pytest.mark.lab
def test_vsphere_reads_and_predicts(lab):
    current = run_module("cluster", {"cluster": cluster_arg("cl-primary")})
    assert not current["changed"]
    assert current["settings"]["hosts"] == ["esx01.town.example", "esx02.town.example"]
    same = run_module("cluster", {"cluster": cluster_arg("cl-primary"), "drs": current["settings"]["drs"]})
    assert not same["changed"], "asking for what the cluster has is no change"
    flip = not current["settings"]["ha"]["enabled"]
    checked = run_module("cluster", {"cluster": cluster_arg("cl-primary"), "ha": {"enabled": flip}}, check=True, diff=True)
    assert checked["changed"] and checked["settings"]["ha"]["enabled"] is flip
    assert checked["diff"]["before"]["ha"]["enabled"] is not flip


@pytest.mark.lab
def test_vsphere_reconfigure_task_completes(lab):
    answer = run_module("cluster", {"cluster": cluster_arg("cl-primary"), "ha": {"enabled": True}, "drs": {"enabled": True}})
    assert not answer.get("failed"), answer


@pytest.mark.lab
def test_vsphere_add_host_needs_credentials(lab):
    answer = run_module("cluster", {"cluster": cluster_arg("cl-primary"), "hosts": ["t-esx09.town.example"]})
    assert answer["failed"] and "adding host 't-esx09.town.example'" in answer["msg"] and "host_credentials" in answer["msg"]


@pytest.mark.lab
def test_proxmox_ha_write_path(lab):
    args = {"cluster": cluster_arg("cl-secondary"), "ha_groups": [{"name": "t-grp", "nodes": ["pve1", "pve2"]}],
            "ha_resources": [{"sid": "vm:110", "group": "t-grp"}]}
    checked = run_module("cluster", args, check=True)
    assert checked["changed"] and checked["settings"]["ha_groups"]["t-grp"]["nodes"] == ["pve1", "pve2"]
    applied = run_module("cluster", args)
    assert applied["changed"] and not applied.get("failed"), applied
