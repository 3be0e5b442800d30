"""Decision logic of the snapshot, network and cluster modules, patched at the client seam: what
changes, the diff, and that check mode calls nothing that writes."""

from __future__ import annotations

import json
from unittest import mock

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.twinsite.dc.plugins.module_utils import _cluster, _network, _snapshot
from ansible_collections.twinsite.dc.plugins.modules import cluster as cluster_module
from ansible_collections.twinsite.dc.plugins.modules import network as network_module
from ansible_collections.twinsite.dc.plugins.modules import snapshot as snapshot_module

VSPHERE = {"name": "cl-primary", "type": "vsphere", "api": {"host": "192.0.2.10", "username": "u", "password": "s3cret"}, "cluster": "C"}
PROXMOX = {"name": "cl-secondary", "type": "proxmox", "api": {"host": "192.0.2.11", "username": "u", "password": "s3cret"}}


def run_module(main, args: dict, capsys, check: bool = False, diff: bool = False) -> dict:
    with patch_module_args({**args, "_ansible_check_mode": check, "_ansible_diff": diff}), pytest.raises(SystemExit):
        main()
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def no_connect():
    with mock.patch.object(_cluster, "connect", return_value=mock.MagicMock()), mock.patch.object(_cluster, "close"):
        yield


class FakeSnapshots:
    def __init__(self, names):
        self.snaps = [{"name": n, "description": "", "parent": None} for n in names]
        self.calls = []

    def list(self):
        return list(self.snaps)

    refresh = list

    def create(self, name, description, memory, quiesce):
        self.calls.append(("create", name))
        self.snaps.append({"name": name, "description": description, "parent": None})

    def revert(self, name):
        self.calls.append(("revert", name))

    def remove(self, name):
        self.calls.append(("remove", name))
        self.snaps = [s for s in self.snaps if s["name"] != name]


@pytest.mark.parametrize("cluster", [VSPHERE, PROXMOX], ids=["vsphere", "proxmox"])
@pytest.mark.parametrize(("state", "existing", "changed", "calls"), [
    ("present", [], True, [("create", "t1")]),
    ("present", ["t1"], False, []),
    ("absent", ["t1"], True, [("remove", "t1")]),
    ("absent", [], False, []),
    ("reverted", ["t1"], True, [("revert", "t1")]),
])
def test_snapshot_decisions(capsys, no_connect, cluster, state, existing, changed, calls):
    fake = FakeSnapshots(existing)
    with mock.patch.object(_snapshot, "backend", return_value=fake):
        result = run_module(snapshot_module.main, {"cluster": cluster, "vm": "db1", "name": "t1", "state": state}, capsys, diff=True)
    assert result["changed"] is changed and fake.calls == calls
    assert "s3cret" not in json.dumps(result)
    if changed and state != "reverted":
        assert result["diff"]["before"] != result["diff"]["after"]


@pytest.mark.parametrize("state", ["present", "absent", "reverted"])
def test_snapshot_check_mode_writes_nothing(capsys, no_connect, state):
    fake = FakeSnapshots(["t1"] if state != "present" else [])
    with mock.patch.object(_snapshot, "backend", return_value=fake):
        result = run_module(snapshot_module.main, {"cluster": VSPHERE, "vm": "db1", "name": "t1", "state": state}, capsys, check=True)
    assert result["changed"] and fake.calls == []
    assert ("t1" in [s["name"] for s in result["snapshots"]]) is (state != "absent")


def test_revert_to_missing_snapshot_names_it(capsys, no_connect):
    with mock.patch.object(_snapshot, "backend", return_value=FakeSnapshots([])):
        result = run_module(snapshot_module.main, {"cluster": PROXMOX, "vm": "db1", "name": "t9", "state": "reverted"}, capsys)
    assert result["failed"] and "revert of snapshot 't9' of VM 'db1' failed" in result["msg"]


@pytest.mark.parametrize(("before", "params", "action"), [
    (None, {"state": "present", "name": "n", "vlan": 20}, "create"),
    ({"name": "n", "vlan": 20}, {"state": "present", "name": "n", "vlan": 20}, None),
    ({"name": "n", "vlan": 20}, {"state": "present", "name": "n", "vlan": 21}, "update"),
    ({"name": "n", "vlan": 20}, {"state": "absent", "name": "n", "vlan": None}, "delete"),
    (None, {"state": "absent", "name": "n", "vlan": None}, None),
])
def test_network_decide(before, params, action):
    assert network_module.decide(before, params)[0] == action


def test_network_check_mode_and_diff(capsys, no_connect):
    fake = mock.MagicMock()
    fake.read.return_value = {"name": "servers", "vlan": 20, "switch": "dvs-core", "switch_type": "distributed"}
    with mock.patch.object(_network, "backend", return_value=fake):
        result = run_module(network_module.main, {"cluster": VSPHERE, "name": "servers", "vlan": 21}, capsys, check=True, diff=True)
    assert result["changed"] and result["network"]["vlan"] == 21
    assert result["diff"] == {"before": {"network": {"name": "servers", "switch": "dvs-core", "switch_type": "distributed", "vlan": 20}},
                              "after": {"network": {"name": "servers", "switch": "dvs-core", "switch_type": "distributed", "vlan": 21}}}
    fake.update.assert_not_called()
    fake.create.assert_not_called()


def test_standard_portgroup_adds_missing_and_updates_vlan():
    """Per host: add where missing, update where the VLAN differs, leave the rest."""
    def portgroup(vlan):
        found = mock.MagicMock()
        found.spec.name, found.spec.vlanId = "servers", vlan
        return found

    client = mock.MagicMock()
    hosts = [{"name": "esx01", "_obj": mock.MagicMock(), "_portgroups": []},
             {"name": "esx02", "_obj": mock.MagicMock(), "_portgroups": [portgroup(20)]},
             {"name": "esx03", "_obj": mock.MagicMock(), "_portgroups": [portgroup(21)]}]
    with mock.patch.object(_network, "vsphere_cluster", return_value=({}, hosts)):
        net = _network.VsphereStandard(client, VSPHERE, {"name": "servers", "switch": None})
        assert net.read()["vlan"] is None  # the hosts disagree: the next apply fixes it
        net.update({"vlan": 20})
    assert client.add_host_portgroup.call_count == 1 and client.update_host_portgroup.call_count == 1


def test_proxmox_vnet_needs_a_zone():
    client = mock.MagicMock()
    with pytest.raises(_cluster.TwinsiteError, match="no SDN zone"):
        _network.ProxmoxVnet(client, PROXMOX, {"name": "servers", "vnet": "servers", "zone": None})


def test_vsphere_settings_merge_only_given_options():
    before = {"ha": {"enabled": False}, "drs": {"enabled": True, "automation": "manual"}, "hosts": ["esx01"]}
    after = _cluster.wanted_settings(before, {"ha": {"enabled": True}, "drs": {"enabled": None, "automation": None}, "hosts": None}, "vsphere")
    assert after == {"ha": {"enabled": True}, "drs": {"enabled": True, "automation": "manual"}, "hosts": ["esx01"]}
    assert before["ha"] == {"enabled": False}, "the read state is not mutated"


def test_proxmox_settings_idempotent_when_equal():
    before = {"ha_groups": {"g": {"nodes": ["pve1", "pve2"], "restricted": False, "nofailback": False}},
              "ha_resources": {"vm:110": {"group": "g", "state": "started"}}}
    params = {"ha_groups": [{"name": "g", "nodes": ["pve2", "pve1"], "restricted": False, "nofailback": False}],
              "ha_resources": [{"sid": "vm:110", "group": "g", "state": "started"}]}
    assert _cluster.wanted_settings(before, params, "proxmox") == before


def test_proxmox_settings_write_posts_new_and_puts_changed():
    client = mock.MagicMock()
    client.ha_groups.return_value = [{"group": "g", "nodes": "pve1:2,pve2", "restricted": 0}]
    client.ha_resources.return_value = []
    settings = _cluster.ProxmoxSettings(client, PROXMOX)
    before = settings.read()
    assert before["ha_groups"]["g"]["nodes"] == ["pve1", "pve2"]
    after = _cluster.wanted_settings(before, {"ha_groups": [{"name": "g", "nodes": ["pve1"], "restricted": True, "nofailback": False}],
                                              "ha_resources": [{"sid": "vm:110", "group": "g", "state": "started"}]}, "proxmox")
    settings.write(before, after, None)
    client.put.assert_called_once_with("cluster/ha/groups/g", nodes="pve1", restricted=1, nofailback=0)
    client.post.assert_called_once_with("cluster/ha/resources", sid="vm:110", group="g", state="started")


def test_cluster_check_mode_writes_nothing(capsys, no_connect):
    fake = mock.MagicMock()
    fake.read.return_value = {"ha": {"enabled": False}, "drs": {"enabled": True, "automation": "fullyAutomated"}, "hosts": ["esx01"]}
    with mock.patch.object(_cluster, "settings_backend", return_value=fake):
        result = run_module(cluster_module.main, {"cluster": VSPHERE, "ha": {"enabled": True}}, capsys, check=True, diff=True)
    assert result["changed"] and result["settings"]["ha"] == {"enabled": True}
    assert result["diff"]["before"]["ha"] == {"enabled": False}
    fake.write.assert_not_called()


def test_add_host_without_credentials_names_host():
    settings = _cluster.VsphereSettings.__new__(_cluster.VsphereSettings)
    settings.client, settings.obj, settings.row = mock.MagicMock(), "cluster 'C'", {"_obj": None}
    state = {"ha": {"enabled": True}, "drs": {"enabled": True, "automation": "manual"}, "hosts": ["esx01"]}
    with pytest.raises(_cluster.TwinsiteError, match="adding host 'esx09'"):
        settings.write(state, {**state, "hosts": ["esx01", "esx09"]}, None)
