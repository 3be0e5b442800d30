"""twinsite.dc.network against the lab's simulators: check mode -> apply -> apply again -> VLAN
change -> delete -> delete again, each checked by reading the simulator directly. On vSphere a
distributed port group on dvs-core (vcsim); on Proxmox an SDN vnet (the lab's fakepve keeps vnets and
their running config, labkit.fakepve_server.SdnVnets)."""

from __future__ import annotations

import ssl

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim
from test_snapshot import cluster_arg, run_module
from test_vm import pve_api

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


def vnets(lab, ca_pem, running: bool = False) -> dict:
    """{vnet: {tag, zone, alias}} of the lab's Proxmox cluster, from its SDN config (or the running one)."""
    api = pve_api(lab, ca_pem)
    return {v["vnet"]: {"tag": v.get("tag"), "zone": v.get("zone"), "alias": v.get("alias")}
            for v in api.cluster.sdn.vnets.get(**({"running": 1} if running else {}))}


@pytest.mark.lab
def test_proxmox_vnet_lifecycle(lab, ca_pem):
    """On Proxmox the network is an SDN vnet (the lab's fakepve keeps them, labkit.fakepve_server):
    check mode -> apply (applied to the running config) -> again -> VLAN change -> delete -> again."""
    args = {"cluster": cluster_arg("cl-secondary"), "name": NET, "vnet": "tnetit", "zone": "t-zone", "vlan": 3001}
    try:
        checked = run_module("network", args, check=True)
        assert checked["changed"] and checked["network"] == {"name": NET, "vlan": 3001}
        assert "tnetit" not in vnets(lab, ca_pem), "check mode must not write"

        applied = run_module("network", args)
        assert applied["changed"] and not applied.get("failed"), applied
        want = {"tag": 3001, "zone": "t-zone", "alias": NET}
        assert vnets(lab, ca_pem)["tnetit"] == want and vnets(lab, ca_pem, running=True)["tnetit"] == want

        again = run_module("network", args)
        assert not again["changed"] and again["network"]["vlan"] == 3001, again

        moved = run_module("network", {**args, "vlan": 3002}, diff=True)
        assert moved["changed"] and moved["diff"]["before"]["network"]["vlan"] == 3001 and moved["diff"]["after"]["network"]["vlan"] == 3002
        assert vnets(lab, ca_pem, running=True)["tnetit"]["tag"] == 3002

        assert run_module("network", {**args, "state": "absent"})["changed"]
        assert "tnetit" not in vnets(lab, ca_pem) and "tnetit" not in vnets(lab, ca_pem, running=True)
        assert not run_module("network", {**args, "state": "absent"})["changed"]
    finally:
        if "tnetit" in vnets(lab, ca_pem):
            run_module("network", {**args, "state": "absent"})


@pytest.mark.lab
def test_a_vlan_another_vnet_of_the_zone_has_is_refused_with_the_vnet_named(lab, ca_pem):
    args = {"cluster": cluster_arg("cl-secondary"), "name": NET, "vnet": "tnetit", "zone": "t-zone", "vlan": 3001}
    try:
        assert run_module("network", args)["changed"]
        clash = run_module("network", {**args, "name": "t-net-other", "vnet": "tnetot"})
        assert clash["failed"] and "SDN vnet 'tnetot'" in clash["msg"] and "tag 3001 already exist in vnet tnetit" in clash["msg"], clash
        assert "tnetot" not in vnets(lab, ca_pem)
    finally:
        for vnet in ("tnetit", "tnetot"):
            if vnet in vnets(lab, ca_pem):
                run_module("network", {**args, "vnet": vnet, "state": "absent"})


def test_the_lab_simulator_keeps_vnets_as_pve_does(tmp_path):
    """labkit.fakepve_server.SdnVnets, served in this process: what the docs (lab.md) say it keeps,
    shows and refuses, so that the tests above prove something about PVE's behaviour."""
    from proxmoxer import ProxmoxAPI
    from proxmoxer.core import ResourceException
    from test_backup_job import PASSWORD, _private

    serving = _private(tmp_path)
    try:
        api = ProxmoxAPI("127.0.0.1", port=serving.pve.port, user="root@pam", password=PASSWORD, verify_ssl=serving.pve.ca_pem)
        vnets = api.cluster.sdn.vnets
        vnets.post(vnet="tdrill", zone="vlanzone", tag=70, alias="drill")
        assert [(v["vnet"], v["tag"], v["zone"], v["alias"], v["type"]) for v in vnets.get()] == [("tdrill", 70, "vlanzone", "drill", "vnet")]
        assert vnets.get(running=1) == []  # pending until applied
        assert vnets.get(pending=1) == [{"vnet": "tdrill", "type": "vnet", "state": "new",
                                         "pending": {"zone": "vlanzone", "tag": 70, "alias": "drill"}}]
        assert "reloadnetworkall" in api.cluster.sdn.put()
        assert [v["vnet"] for v in vnets.get(running=1)] == ["tdrill"] and "state" not in vnets.get(pending=1)[0]
        refused = {
            "create sdn vnet object failed: sdn vnet object ID 'tdrill' already defined": lambda: vnets.post(vnet="tdrill", zone="vlanzone", tag=71),
            "tag 70 already exist in vnet tdrill": lambda: vnets.post(vnet="tother", zone="vlanzone", tag=70),
            "missing vlan tag": lambda: vnets.post(vnet="tnotag", zone="vlanzone"),
            "vlan tag max value is 4096": lambda: vnets.post(vnet="tbig", zone="vlanzone", tag=5000),
            "delete sdn vnet object failed: sdn vnet 'tnone' does not exist": lambda: vnets("tnone").delete(),
            "sdn vnet 'tnone' does not exist": lambda: vnets("tnone").get(),
        }
        for message, call in refused.items():
            with pytest.raises(ResourceException) as failed:
                call()
            assert message in str(failed.value), (message, str(failed.value))
        vnets.post(vnet="tother", zone="otherzone", tag=70)  # the same tag in another zone is allowed
        vnets("tdrill").put(tag=72)
        assert vnets.get(pending=1)[0] == {"vnet": "tdrill", "type": "vnet", "zone": "vlanzone", "tag": 70, "alias": "drill",
                                          "state": "changed", "pending": {"tag": 72}}
        vnets("tdrill").delete()
        assert [v["vnet"] for v in vnets.get()] == ["tother"]
        assert vnets.get(pending=1)[0]["state"] == "deleted" and vnets.get(pending=1)[1]["state"] == "new"
        api.cluster.sdn.put()
        assert [v["vnet"] for v in vnets.get(running=1)] == ["tother"]
    finally:
        serving.stop()
