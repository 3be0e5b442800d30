"""The rollback of an Open vSwitch change: ``ovs_restore_operations``, computed from the bridge as
read before the change and the change's operations, puts every port back exactly (structure and
columns), whatever the change did: moved ports, trunk lists, descriptions, bonds created, removed or
with other members. Applied with the strict ovs-vsctl stand-in of test_switching_ovs."""

from __future__ import annotations

import copy

import pytest
from test_switching import lab, small
from test_switching_ovs import Bridge, config, factory, live

from ansible_collections.twinsite.dc.plugins.module_utils import _switching as sw


def snapshot(bridge: Bridge) -> dict:
    return {name: {**copy.deepcopy(row), "interfaces": sorted(row["interfaces"])} for name, row in bridge.ports.items()}


def change_and_roll_back(bridge: Bridge, after: sw.SwitchConfig, state: str) -> list[list[str]]:
    """Change the bridge as ``state`` asks, then run the rollback computed beforehand; assert the
    bridge is back as it was and that the change did change something (else the test proves nothing)."""
    before_rows = snapshot(bridge)
    tables = bridge.tables()
    operations = sw.ovs_operations(bridge.parse(after.switch), after, state, bridge.name)
    assert operations, "the change must change something"
    restore = sw.ovs_restore_operations(*tables, operations, bridge=bridge.name)
    bridge.apply(operations)
    assert snapshot(bridge) != before_rows
    bridge.apply(restore)
    assert snapshot(bridge) == before_rows
    return restore


@pytest.mark.parametrize("state", ["merged", "replaced", "overridden", "deleted"])
def test_the_lab_core_switch_change_rolls_back_exactly(state):
    change_and_roll_back(live(), lab("core1"), state)


def test_a_bond_made_from_plain_ports_is_undone_and_the_ports_come_back():
    bridge = factory("GigabitEthernet0/1", "GigabitEthernet0/2", "GigabitEthernet0/3", "GigabitEthernet0/4")
    restore = change_and_roll_back(bridge, small(), "replaced")
    assert restore[0] == ["--if-exists", "del-port", "br0", "po1"]


def test_a_removed_bond_is_rebuilt_with_its_members_and_settings():
    lag = sw.Lag("bond0", 0, ("eth1", "eth2"), "lacp", (10, 20), "to core2")
    bridge = Bridge()
    bridge.apply(sw.ovs_operations(bridge.parse(), config(lags=[lag]), "merged"))
    change_and_roll_back(bridge, config(access={"eth2": 20}), "overridden")
    assert bridge.ports["bond0"]["interfaces"] == ["eth1", "eth2"] and bridge.ports["bond0"]["lacp"] == "active"


def test_a_bond_whose_members_changed_gets_its_old_members_back():
    old = sw.Lag("bond0", 0, ("eth1", "eth2"), "lacp", (10,), "")
    new = sw.Lag("bond0", 0, ("eth1", "eth3"), "lacp", (10,), "")
    bridge = Bridge()
    bridge.apply(sw.ovs_operations(bridge.parse(), config(lags=[old]), "merged"))
    change_and_roll_back(bridge, config(lags=[new]), "replaced")
    assert sorted(bridge.ports["bond0"]["interfaces"]) == ["eth1", "eth2"]


def test_descriptions_with_quotes_and_other_external_ids_come_back():
    bridge = Bridge("br0", {"ep1": {"tag": 30, "vlan_mode": "access", "external_ids": {"description": 'desk "7" \\ a', "owner": "x"}}})
    change_and_roll_back(bridge, config(access={"ep1": 20}), "replaced")


def test_nothing_to_undo_when_the_change_is_empty():
    bridge = live()
    target = sw.parse_linux_ovs(*bridge.tables(), "core1")
    assert sw.ovs_operations(target, target, "replaced") == []
