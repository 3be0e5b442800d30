"""twinsite.dc.network against the lab's vcsim (distributed port group on dvs-core): check mode ->
apply -> apply again -> VLAN change -> delete -> delete again, each checked by reading vcsim
directly. fakepve answers SDN calls from its schema without storing them, so on Proxmox only the
write path (check mode, apply) is exercised; see docs/hypervisor-modules.md."""

from __future__ import annotations

import ssl

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim
from test_snapshot import cluster_arg, run_module

NET = "t-net-it"


def dv_portgroups(lab, ca_pem) -> dict:
    """{port group name: VLAN ID} of every DVS port group in vcsim."""
    spec = lab.model["vcsim"]
    si = SmartConnect(host=spec["host"], port=spec["port"], user=spec["username"], pwd=spec["password"],
                      sslContext=ssl.create_default_context(cafile=str(ca_pem)))
    try:
        view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [vim.dvs.DistributedVirtualPortgroup], True)
        return {pg.name: getattr(pg.config.defaultPortConfig.vlan, "vlanId", None) for pg in view.view}
    finally:
        Disconnect(si)


@pytest.mark.lab
def test_distributed_portgroup_lifecycle(lab, ca_pem):
    args = {"cluster": cluster_arg("cl-primary"), "name": NET, "vlan": 3001}
    try:
        checked = run_module("network", args, check=True, diff=True)
        assert checked["changed"] and checked["network"]["vlan"] == 3001
        assert NET not in dv_portgroups(lab, ca_pem), "check mode must not write"

        assert run_module("network", args)["changed"]
        assert dv_portgroups(lab, ca_pem)[NET] == 3001

        again = run_module("network", args)
        assert not again["changed"] and again["network"]["switch"] == "dvs-core"

        moved = run_module("network", {**args, "vlan": 3002}, diff=True)
        assert moved["changed"] and moved["diff"]["before"]["network"]["vlan"] == 3001 and moved["diff"]["after"]["network"]["vlan"] == 3002
        assert dv_portgroups(lab, ca_pem)[NET] == 3002

        assert run_module("network", {**args, "state": "absent"})["changed"]
        assert NET not in dv_portgroups(lab, ca_pem)
        assert not run_module("network", {**args, "state": "absent"})["changed"]
    finally:
        if NET in dv_portgroups(lab, ca_pem):
            run_module("network", {**args, "state": "absent"})


@pytest.mark.lab
def test_unknown_dvs_is_named(lab):
    answer = run_module("network", {"cluster": cluster_arg("cl-primary"), "name": NET, "vlan": 3001, "switch": "t-no-dvs"})
    assert answer["failed"] and "DVS 't-no-dvs'" in answer["msg"] and "dvs-core" in answer["msg"]


@pytest.mark.lab
def test_proxmox_vnet_write_path(lab):
    args = {"cluster": cluster_arg("cl-secondary"), "name": NET, "vnet": "tnetit", "zone": "t-zone", "vlan": 3001}
    checked = run_module("network", args, check=True)
    assert checked["changed"] and checked["network"] == {"name": NET, "vlan": 3001}
    applied = run_module("network", args)
    assert applied["changed"] and not applied.get("failed"), applied
