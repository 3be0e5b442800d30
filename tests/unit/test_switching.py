"""The core switches' layer-2 compiler, renderers, IOS parser and diff: the lab's switches compile,
a bad model is reported with its path, what is rendered is exact, a running-config parses back to the
model, and the diff is trunk-safe (a merge never overwrites a trunk's allowed list) and idempotent."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from ansible_collections.twinsite.dc.plugins.module_utils import _switching as sw

REPO = Path(__file__).resolve().parents[2]
LAB = REPO / "inventory" / "lab"


def _yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


NETWORKS = _yaml(LAB / "group_vars" / "all" / "networks.yml")["dc_networks"]
SWITCHING = _yaml(LAB / "group_vars" / "all" / "switching.yml")
PORTS = SWITCHING["dc_switch_ports"]
LAGS = SWITCHING["dc_lags"]

# A small model with one of each: an access port, a trunk, a LACP LAG.
SMALL_NETWORKS = [
    {"name": "mgmt", "vlan": 10},
    {"name": "servers", "vlan": 20},
    {"name": "users", "vlan": 30},
    {"name": "unused", "vlan": 99},
]
SMALL_PORTS = [
    {"switch": "sw1", "port": "GigabitEthernet0/1", "mode": "access", "network": "servers", "description": "esx01 vmnic0"},
    {"switch": "sw1", "port": "GigabitEthernet0/2", "mode": "trunk", "networks": ["servers", "mgmt"], "description": "uplink"},
    {"switch": "sw2", "port": "GigabitEthernet0/1", "mode": "access", "network": "users"},
]
SMALL_LAGS = [
    {"switch": "sw1", "name": "po1", "members": ["GigabitEthernet0/4", "GigabitEthernet0/3"], "mode": "lacp",
     "networks": ["users", "mgmt"], "description": "to core"},
]

SMALL_IOS = """\
vlan 10
 name mgmt
vlan 20
 name servers
vlan 30
 name users
interface Port-channel1
 description to core
 switchport mode trunk
 switchport trunk allowed vlan 10,30
interface GigabitEthernet0/1
 description esx01 vmnic0
 switchport mode access
 switchport access vlan 20
interface GigabitEthernet0/2
 description uplink
 switchport mode trunk
 switchport trunk allowed vlan 10,20
interface GigabitEthernet0/3
 channel-group 1 mode active
interface GigabitEthernet0/4
 channel-group 1 mode active
"""


def small() -> sw.SwitchConfig:
    return sw.compile_switch("sw1", SMALL_NETWORKS, SMALL_PORTS, SMALL_LAGS)


def lab(switch: str) -> sw.SwitchConfig:
    return sw.compile_switch(switch, NETWORKS, PORTS, LAGS)


def config(access=(), trunks=(), lags=(), vlans=()) -> sw.SwitchConfig:
    """A hand-built SwitchConfig: vlans as {id: name}, access as {port: vlan}, trunks as {port: [ids]}."""
    return sw.SwitchConfig(
        switch="sw1",
        vlans=tuple(sw.Vlan(id=v, name=n) for v, n in sorted(dict(vlans).items())),
        access=tuple(sw.AccessPort(name=p, vlan=v, description="") for p, v in dict(access).items()),
        trunks=tuple(sw.Trunk(name=p, allowed=tuple(sorted(a)), native=None, description="") for p, a in dict(trunks).items()),
        lags=tuple(lags),
    )


# --- the lab model --------------------------------------------------------------------------------


@pytest.mark.parametrize("switch", ["core1", "core2"])
def test_lab_switch_compiles(switch):
    cfg = lab(switch)
    assert cfg.switch == switch
    assert [(v.id, v.name) for v in cfg.vlans] == [(10, "mgmt"), (20, "servers"), (30, "users"), (40, "dmz"), (50, "backup"), (60, "intersite"), (70, "drill")]
    assert [t.name for t in cfg.trunks] == ["peer1"]
    assert list(cfg.trunks[0].allowed) == [10, 20, 30, 40, 50, 60, 70]
    assert cfg.trunks[0].native is None
    assert cfg.lags == ()


def test_lab_core1_access_ports():
    assert lab("core1").access == (
        sw.AccessPort(name="ep1", vlan=20, description="esx01 vmnic0"),
        sw.AccessPort(name="ep2", vlan=20, description="esx02 vmnic0"),
        sw.AccessPort(name="ep3", vlan=30, description="zero-client uplink"),
    )


def test_lab_core2_access_ports():
    assert [(p.name, p.vlan) for p in lab("core2").access] == [("ep1", 20), ("ep2", 50)]


def test_to_dict_is_plain_data():
    data = lab("core1").to_dict()
    assert data["trunks"] == [{"name": "peer1", "allowed": [10, 20, 30, 40, 50, 60, 70], "native": None, "description": "peer link to core2"}]
    assert data["vlans"][0] == {"id": 10, "name": "mgmt"}
    assert data["lags"] == []


def test_small_model_compiles_with_lag():
    cfg = small()
    assert [v.id for v in cfg.vlans] == [10, 20, 30]  # 99 is used by no port of sw1
    assert cfg.lags == (sw.Lag(name="po1", number=1, members=("GigabitEthernet0/3", "GigabitEthernet0/4"), mode="lacp",
                               allowed=(10, 30), description="to core"),)
    assert cfg.trunks[0].allowed == (10, 20)
    assert [p.name for p in cfg.access] == ["GigabitEthernet0/1"]


def test_port_lag_key_adds_a_member_and_matching_trunk_is_allowed():
    ports = SMALL_PORTS + [{"switch": "sw1", "port": "GigabitEthernet0/5", "lag": "po1"},
                           {"switch": "sw1", "port": "GigabitEthernet0/3", "mode": "trunk", "networks": ["mgmt", "users"], "lag": "po1"}]
    cfg = sw.compile_switch("sw1", SMALL_NETWORKS, ports, SMALL_LAGS)
    assert cfg.lags[0].members == ("GigabitEthernet0/3", "GigabitEthernet0/4", "GigabitEthernet0/5")
    assert [t.name for t in cfg.trunks] == ["GigabitEthernet0/2"]


def test_lag_number_from_position_when_name_has_no_digits():
    lags = [dict(SMALL_LAGS[0], name="uplink")]
    assert small().lags[0].number == 1
    assert sw.compile_switch("sw1", SMALL_NETWORKS, SMALL_PORTS, lags).lags[0].number == 1
    two = lags + [{"switch": "sw1", "name": "backup", "members": ["Gi0/9"], "mode": "static", "networks": ["mgmt"]}]
    assert [(g.name, g.number) for g in sw.compile_switch("sw1", SMALL_NETWORKS, SMALL_PORTS, two).lags] == [("uplink", 1), ("backup", 2)]


# --- model errors name their path -------------------------------------------------------------------


def _error(networks=None, ports=None, lags=None, switch="sw1") -> sw.SwitchError:
    with pytest.raises(sw.SwitchError) as info:
        sw.compile_switch(switch, SMALL_NETWORKS if networks is None else networks, SMALL_PORTS if ports is None else ports,
                          SMALL_LAGS if lags is None else lags)
    assert str(info.value) == f"{info.value.path}: {info.value.message}"
    return info.value


def test_unknown_network_of_access_port():
    ports = copy.deepcopy(PORTS)
    ports[3]["network"] = "nope"
    with pytest.raises(sw.SwitchError) as info:
        sw.compile_switch("core2", NETWORKS, ports, LAGS)
    assert str(info.value) == ("dc_switch_ports[3].network: 'nope' is not a network "
                               "(known: backup, dmz, drill, intersite, mgmt, servers, users)")


def test_unknown_network_of_trunk():
    ports = copy.deepcopy(SMALL_PORTS)
    ports[1]["networks"] = ["mgmt", "nope"]
    assert _error(ports=ports).path == "dc_switch_ports[1].networks[1]"


def test_unknown_network_of_lag():
    lags = copy.deepcopy(SMALL_LAGS)
    lags[0]["networks"] = ["nope"]
    assert _error(lags=lags).path == "dc_lags[0].networks[0]"


def test_access_port_without_network():
    ports = copy.deepcopy(SMALL_PORTS)
    del ports[0]["network"]
    err = _error(ports=ports)
    assert err.path == "dc_switch_ports[0].network"
    assert "needs the network" in err.message


def test_trunk_without_networks():
    ports = copy.deepcopy(SMALL_PORTS)
    ports[1]["networks"] = []
    assert _error(ports=ports).path == "dc_switch_ports[1].networks"


def test_lag_without_networks():
    lags = copy.deepcopy(SMALL_LAGS)
    del lags[0]["networks"]
    assert _error(lags=lags).path == "dc_lags[0].networks"


def test_bad_mode():
    ports = copy.deepcopy(SMALL_PORTS)
    ports[0]["mode"] = "routed"
    assert _error(ports=ports).path == "dc_switch_ports[0].mode"


def test_port_listed_twice_on_one_switch():
    ports = SMALL_PORTS + [{"switch": "sw1", "port": "GigabitEthernet0/1", "mode": "access", "network": "users"}]
    err = _error(ports=ports)
    assert err.path == "dc_switch_ports[3].port"
    assert "already declared at dc_switch_ports[0]" in err.message


def test_same_port_name_on_two_switches_is_fine():
    assert [p.vlan for p in sw.compile_switch("sw2", SMALL_NETWORKS, SMALL_PORTS, SMALL_LAGS).access] == [30]


def test_lag_member_declared_as_access_port():
    ports = SMALL_PORTS + [{"switch": "sw1", "port": "GigabitEthernet0/3", "mode": "access", "network": "users"}]
    err = _error(ports=ports)
    assert err.path == "dc_switch_ports[3].mode"
    assert "member of LAG 'po1' (dc_lags[0].members[1])" in err.message


def test_lag_member_with_conflicting_trunk_networks():
    ports = SMALL_PORTS + [{"switch": "sw1", "port": "GigabitEthernet0/4", "mode": "trunk", "networks": ["servers"]}]
    err = _error(ports=ports)
    assert err.path == "dc_switch_ports[3].networks"
    assert "carries VLANs 10,30, but lists 20" in err.message


def test_port_lag_names_unknown_lag():
    ports = SMALL_PORTS + [{"switch": "sw1", "port": "GigabitEthernet0/7", "lag": "po9"}]
    assert _error(ports=ports).message == "'po9' is not a LAG of sw1 (known: po1)"


def test_port_lag_disagrees_with_lag_members():
    lags = SMALL_LAGS + [{"switch": "sw1", "name": "po2", "members": ["GigabitEthernet0/8"], "networks": ["mgmt"]}]
    ports = SMALL_PORTS + [{"switch": "sw1", "port": "GigabitEthernet0/3", "lag": "po2"}]
    assert _error(ports=ports, lags=lags).path == "dc_switch_ports[3].lag"


def test_port_in_two_lags():
    lags = SMALL_LAGS + [{"switch": "sw1", "name": "po2", "members": ["GigabitEthernet0/3"], "networks": ["mgmt"]}]
    assert _error(lags=lags).path == "dc_lags[1].members[0]"


def test_lag_without_members():
    lags = [dict(SMALL_LAGS[0], members=[])]
    assert _error(lags=lags).path == "dc_lags[0].members"


def test_lag_bad_mode_and_clashing_numbers():
    assert _error(lags=[dict(SMALL_LAGS[0], mode="pagp")]).path == "dc_lags[0].mode"
    lags = SMALL_LAGS + [{"switch": "sw1", "name": "bond1", "members": ["GigabitEthernet0/8"], "networks": ["mgmt"]}]
    err = _error(lags=lags)
    assert err.path == "dc_lags[1].name"
    assert "channel-group 1 is already LAG 'po1'" in err.message


@pytest.mark.parametrize("vlan", [0, 4095, "20", True])
def test_vlan_id_out_of_range(vlan):
    networks = copy.deepcopy(SMALL_NETWORKS)
    networks[2]["vlan"] = vlan
    err = _error(networks=networks)
    assert err.path == "dc_networks[2].vlan"
    assert err.message == f"{vlan!r} is not a VLAN id (1-4094)"


def test_duplicate_vlan_ids_across_networks():
    networks = copy.deepcopy(SMALL_NETWORKS)
    networks[3]["vlan"] = 20
    err = _error(networks=networks)
    assert str(err) == ("dc_networks[3].vlan: VLAN 20 is already the VLAN of network 'servers' (dc_networks[1].vlan): "
                        "one VLAN id, one network")


def test_network_without_vlan_used_on_a_port():
    networks = copy.deepcopy(SMALL_NETWORKS)
    del networks[1]["vlan"]
    err = _error(networks=networks)
    assert err.path == "dc_switch_ports[0].network"
    assert "has no VLAN (dc_networks[1].vlan)" in err.message


# --- VLAN lists -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("ids", "text"), [
    ([10, 20, 21, 22, 30], "10,20-22,30"),
    ([30, 10, 22, 21, 20, 20], "10,20-22,30"),
    ([10, 11], "10,11"),
    ([1, 2, 3, 4094], "1-3,4094"),
    ([5], "5"),
    ([], "none"),
])
def test_compress_vlans(ids, text):
    assert sw.compress_vlans(ids) == text


def test_expand_vlans():
    assert sw.expand_vlans("10,20-22,30") == (10, 20, 21, 22, 30)
    assert sw.expand_vlans("none") == ()
    assert sw.expand_vlans("ALL") == sw.ALL_VLANS
    with pytest.raises(ValueError, match="not a VLAN id"):
        sw.expand_vlans("0-5")


# --- renderers ------------------------------------------------------------------------------------


def test_render_cisco_ios_small():
    assert sw.render_cisco_ios(small()) == SMALL_IOS


def test_render_cisco_ios_lab_core1():
    text = sw.render_cisco_ios(lab("core1"))
    assert text.startswith("vlan 10\n name mgmt\nvlan 20\n name servers\n")
    assert text.endswith("interface peer1\n description peer link to core2\n switchport mode trunk\n"
                         " switchport trunk allowed vlan 10,20,30,40,50,60,70\n")
    assert sw.render_cisco_ios(lab("core1")) == text  # deterministic


def test_render_cisco_ios_compresses_ranges_and_static_lag():
    networks = [{"name": f"n{v}", "vlan": v} for v in (10, 20, 21, 22, 30)]
    ports = [{"switch": "s", "port": "Gi0/1", "mode": "trunk", "networks": ["n30", "n22", "n10", "n21", "n20"]}]
    lags = [{"switch": "s", "name": "uplink", "members": ["Gi0/2"], "mode": "static", "networks": ["n10"]}]
    text = sw.render_cisco_ios(sw.compile_switch("s", networks, ports, lags))
    assert " switchport trunk allowed vlan 10,20-22,30\n" in text
    assert "interface Gi0/2\n channel-group 1 mode on\n" in text


def test_render_cisco_ios_native_vlan():
    cfg = replace(small(), trunks=(replace(small().trunks[0], native=10),))
    assert " switchport trunk allowed vlan 10,20\n switchport trunk native vlan 10\n" in sw.render_cisco_ios(cfg)


def test_render_arista_eos_small():
    assert sw.render_arista_eos(small()) == SMALL_IOS.replace("interface Port-channel1", "interface Port-Channel1")


def test_render_linux_ovs_small():
    assert sw.render_linux_ovs(small(), bridge="br-core") == [
        ["--may-exist", "add-bond", "br-core", "po1", "GigabitEthernet0/3", "GigabitEthernet0/4",
         "--", "set", "port", "po1", "lacp=active", "trunks=10,30", "vlan_mode=trunk"],
        ["--may-exist", "add-port", "br-core", "GigabitEthernet0/1", "--", "set", "port", "GigabitEthernet0/1", "tag=20", "vlan_mode=access"],
        ["--may-exist", "add-port", "br-core", "GigabitEthernet0/2", "--", "set", "port", "GigabitEthernet0/2", "trunks=10,20", "vlan_mode=trunk"],
    ]


def test_render_linux_ovs_lab_core2_static_lag_and_native():
    assert sw.render_linux_ovs(lab("core2")) == [
        ["--may-exist", "add-port", "br0", "ep1", "--", "set", "port", "ep1", "tag=20", "vlan_mode=access"],
        ["--may-exist", "add-port", "br0", "ep2", "--", "set", "port", "ep2", "tag=50", "vlan_mode=access"],
        ["--may-exist", "add-port", "br0", "peer1", "--", "set", "port", "peer1", "trunks=10,20,30,40,50,60,70", "vlan_mode=trunk"],
    ]
    cfg = config(trunks={"t1": [10, 20]}, lags=[sw.Lag(name="bond0", number=1, members=("a", "b"), mode="static", allowed=(10,),
                                                      description="", native=None)])
    cfg = replace(cfg, trunks=(replace(cfg.trunks[0], native=10),))
    assert sw.render_linux_ovs(cfg) == [
        ["--may-exist", "add-bond", "br0", "bond0", "a", "b", "--", "set", "port", "bond0", "lacp=off", "trunks=10", "vlan_mode=trunk"],
        ["--may-exist", "add-port", "br0", "t1", "--", "set", "port", "t1", "tag=10", "trunks=10,20", "vlan_mode=native-untagged"],
    ]


def test_render_linux_ovs_refuses_empty_trunk():
    with pytest.raises(sw.SwitchError, match="every VLAN"):
        sw.render_linux_ovs(config(trunks={"t1": []}))


# --- parse a running-config -----------------------------------------------------------------------

RUNNING = """\
Building configuration...

Current configuration : 2011 bytes
!
! Last configuration change at 10:12:03 UTC Mon Nov 23 2026
!
version 15.2
hostname core1
!
vlan internal allocation policy ascending
!
vlan 10
 name mgmt
!
vlan 20-22
!
vlan 30
 name users
!
interface Port-channel1
 description to core2
 switchport trunk encapsulation dot1q
 switchport trunk allowed vlan 10,30
 switchport mode trunk
!
interface GigabitEthernet0/0
 no switchport
 ip address 192.0.2.1 255.255.255.0
!
interface GigabitEthernet0/1
 description peer link
 switchport trunk encapsulation dot1q
 switchport trunk allowed vlan 10,20-22
 switchport trunk allowed vlan add 30
 switchport trunk native vlan 10
 switchport mode trunk
!
interface GigabitEthernet0/2
 description esx01 vmnic0
 switchport access vlan 20
 switchport mode access
 spanning-tree portfast edge
!
interface GigabitEthernet0/3
 switchport mode access
!
interface GigabitEthernet0/4
 switchport mode trunk
!
interface GigabitEthernet0/5
 description not managed
 shutdown
!
interface GigabitEthernet0/6
 switchport trunk encapsulation dot1q
 switchport mode trunk
 channel-group 1 mode active
!
interface GigabitEthernet0/7
 channel-group 1 mode passive
!
interface Vlan10
 ip address 172.31.10.2 255.255.255.0
!
line vty 0 4
 login local
!
end
"""


def test_parse_cisco_ios_running_config():
    cfg = sw.parse_cisco_ios(RUNNING, "core1")
    assert cfg.switch == "core1"
    assert cfg.vlans == (sw.Vlan(10, "mgmt"), sw.Vlan(20, "VLAN0020"), sw.Vlan(21, "VLAN0021"), sw.Vlan(22, "VLAN0022"), sw.Vlan(30, "users"))
    assert cfg.access == (sw.AccessPort("GigabitEthernet0/2", 20, "esx01 vmnic0"), sw.AccessPort("GigabitEthernet0/3", 1, ""))
    assert cfg.trunks == (
        sw.Trunk("GigabitEthernet0/1", (10, 20, 21, 22, 30), 10, "peer link"),
        sw.Trunk("GigabitEthernet0/4", sw.ALL_VLANS, None, ""),  # no allowed line: IOS allows every VLAN
    )
    assert cfg.lags == (sw.Lag(name="Port-channel1", number=1, members=("GigabitEthernet0/6", "GigabitEthernet0/7"), mode="lacp",
                               allowed=(10, 30), description="to core2"),)


def test_parse_allowed_vlan_remove_except_none():
    text = "interface Gi1\n switchport mode trunk\n switchport trunk allowed vlan 10-15\n switchport trunk allowed vlan remove 11,13-14\n" \
           "interface Gi2\n switchport mode trunk\n switchport trunk allowed vlan except 2-4094\n" \
           "interface Gi3\n switchport mode trunk\n switchport trunk allowed vlan none\n"
    assert [(t.name, t.allowed) for t in sw.parse_cisco_ios(text, "s").trunks] == [("Gi1", (10, 12, 15)), ("Gi2", (1,)), ("Gi3", ())]


def test_parse_static_channel():
    text = "interface Port-channel7\n switchport mode trunk\n switchport trunk allowed vlan 10\ninterface Gi1\n channel-group 7 mode on\n"
    assert sw.parse_cisco_ios(text, "s").lags == (sw.Lag("Port-channel7", 7, ("Gi1",), "static", (10,), ""),)


@pytest.mark.parametrize("switch", ["core1", "core2"])
def test_round_trip_lab(switch):
    cfg = lab(switch)
    assert sw.parse_cisco_ios(sw.render_cisco_ios(cfg), switch) == cfg


def test_round_trip_small_with_lag():
    """The LAG comes back named after its interface (the model's name is not on the device): LAGs
    are matched by channel number."""
    cfg = small()
    expected = replace(cfg, lags=tuple(replace(g, name=f"Port-channel{g.number}") for g in cfg.lags))
    assert sw.parse_cisco_ios(sw.render_cisco_ios(cfg), "sw1") == expected
    assert sw.diff_commands(sw.parse_cisco_ios(sw.render_cisco_ios(cfg), "sw1"), cfg, "overridden") == []


# --- trunk_change ---------------------------------------------------------------------------------


def test_trunk_change_merged_only_adds():
    assert sw.trunk_change([10, 20], [20, 30], "merged") == [" switchport trunk allowed vlan add 30"]
    assert sw.trunk_change([10, 20, 30], [20, 30], "merged") == []
    assert sw.trunk_change(sw.ALL_VLANS, [20, 30], "merged") == []
    assert sw.trunk_change([10], [20, 21, 22, 30], "merged") == [" switchport trunk allowed vlan add 20-22,30"]


@pytest.mark.parametrize("before", [[10, 20], [1], [], sw.ALL_VLANS, list(range(100, 200))])
def test_trunk_change_merged_never_overwrites(before):
    for line in sw.trunk_change(before, [20, 30, 40], "merged"):
        assert line.startswith(" switchport trunk allowed vlan add ")


def test_trunk_change_not_yet_a_trunk_sets_the_list():
    for state in ("merged", "replaced", "overridden"):
        assert sw.trunk_change(None, [10, 20, 21, 22], state) == [" switchport trunk allowed vlan 10,20-22"]


def test_trunk_change_replaced_prefers_add_remove_when_smaller():
    assert sw.trunk_change([10, 20], [20, 30], "replaced") == [" switchport trunk allowed vlan add 30", " switchport trunk allowed vlan remove 10"]
    assert sw.trunk_change([10, 20, 30], [20, 30], "overridden") == [" switchport trunk allowed vlan remove 10"]
    assert sw.trunk_change([20, 30], [20, 30], "replaced") == []


def test_trunk_change_replaced_overwrites_when_smaller():
    assert sw.trunk_change(sw.ALL_VLANS, [10, 20], "replaced") == [" switchport trunk allowed vlan 10,20"]
    assert sw.trunk_change([1, 2, 3], [10], "overridden") == [" switchport trunk allowed vlan 10"]
    assert sw.trunk_change([10, 20], [], "replaced") == [" switchport trunk allowed vlan none"]


def test_trunk_change_rejects_other_states():
    with pytest.raises(ValueError, match="merged, replaced or overridden"):
        sw.trunk_change([10], [20], "deleted")


# --- diff_commands --------------------------------------------------------------------------------

VLANS = {10: "mgmt", 20: "servers", 30: "users"}


def test_merged_trunk_grows_with_add():
    before = config(vlans=VLANS, trunks={"peer1": [10, 20]})
    after = config(vlans={20: "servers", 30: "users"}, trunks={"peer1": [20, 30]})
    assert sw.diff_commands(before, after, "merged") == ["interface peer1", " switchport trunk allowed vlan add 30"]


def test_merged_never_overwrites_or_removes():
    before = config(vlans={10: "mgmt"}, access={"ep9": 10}, trunks={"peer1": [10, 40]})
    after = config(vlans={10: "mgmt", 20: "servers", 30: "users"}, access={"ep1": 20}, trunks={"peer1": [20, 30]})
    commands = sw.diff_commands(before, after, "merged")
    assert commands == [
        "vlan 20", " name servers",
        "vlan 30", " name users",
        "interface ep1", " switchport mode access", " switchport access vlan 20",
        "interface peer1", " switchport trunk allowed vlan add 20,30",
    ]
    assert not [c for c in commands if c.startswith((" switchport trunk allowed vlan 1", " switchport trunk allowed vlan 2", "no ", " no ", "default"))]


def test_merged_superset_is_no_change():
    before = config(vlans={1: "default", **VLANS, 40: "dmz"}, access={"ep1": 20, "ep2": 30}, trunks={"peer1": [10, 20, 30, 40]})
    after = config(vlans={20: "servers", 30: "users"}, access={"ep1": 20}, trunks={"peer1": [20, 30]})
    assert sw.diff_commands(before, after, "merged") == []


def test_merged_changes_what_differs():
    before = config(vlans={20: "old-name", 30: "users"}, access={"ep1": 30})
    after = config(vlans={20: "servers"}, access={"ep1": 20})
    assert sw.diff_commands(before, after, "merged") == ["vlan 20", " name servers", "interface ep1", " switchport access vlan 20"]


def test_merged_access_port_becomes_trunk_gets_its_list_set():
    before = config(vlans=VLANS, access={"ep1": 20})
    after = config(vlans=VLANS, trunks={"ep1": [10, 20]})
    assert sw.diff_commands(before, after, "merged") == ["interface ep1", " switchport mode trunk", " switchport trunk allowed vlan 10,20"]


def test_replaced_removes_vlan_from_trunk():
    before = config(vlans=VLANS, trunks={"peer1": [10, 20]}, access={"ep9": 10})
    after = config(vlans={20: "servers", 30: "users"}, trunks={"peer1": [20, 30]})
    assert sw.diff_commands(before, after, "replaced") == [
        "interface peer1", " switchport trunk allowed vlan add 30", " switchport trunk allowed vlan remove 10",
    ]


def test_replaced_clears_description_native_and_channel():
    before = replace(config(vlans=VLANS, trunks={"peer1": [10]}), trunks=(sw.Trunk("peer1", (10,), 10, "old"),),
                     lags=(sw.Lag("Port-channel2", 2, ("ep5",), "lacp", (10,), ""),))
    after = config(vlans=VLANS, trunks={"peer1": [10]}, access={"ep5": 20})
    assert sw.diff_commands(before, after, "replaced") == [
        "interface ep5", " no channel-group", " switchport mode access", " switchport access vlan 20",
        "interface peer1", " no description", " no switchport trunk native vlan",
    ]


def test_overridden_resets_unmanaged_ports_and_removes_unused_vlans():
    before = config(vlans={1: "default", **VLANS, 99: "old"}, access={"ep1": 20, "ep9": 99}, trunks={"peer1": [10, 20, 99]})
    after = config(vlans=VLANS, access={"ep1": 20}, trunks={"peer1": [10, 20, 30]})
    assert sw.diff_commands(before, after, "overridden") == [
        "interface peer1", " switchport trunk allowed vlan add 30", " switchport trunk allowed vlan remove 99",
        "default interface ep9",
        "no vlan 99",
    ]


def test_deleted_resets_model_ports_and_removes_model_vlans():
    before = config(vlans={1: "default", **VLANS}, access={"ep1": 20, "ep9": 30}, trunks={"peer1": [1, 10, 20]})
    after = config(vlans={1: "default", 10: "mgmt", 20: "servers", 40: "dmz"}, access={"ep1": 20, "ep2": 20}, trunks={"peer1": [10, 20]})
    assert sw.diff_commands(before, after, "deleted") == ["default interface ep1", "default interface peer1", "no vlan 10", "no vlan 20"]


def test_deleted_twice_is_no_change():
    after = lab("core1")
    gone = sw.SwitchConfig(switch="core1", vlans=(sw.Vlan(1, "default"),), access=(sw.AccessPort("ep9", 1, ""),), trunks=(), lags=())
    assert sw.diff_commands(gone, after, "deleted") == []


def test_new_lag_from_nothing():
    assert sw.diff_commands(config(), small(), "merged") == [
        "vlan 10", " name mgmt", "vlan 20", " name servers", "vlan 30", " name users",
        "interface Port-channel1", " description to core", " switchport mode trunk", " switchport trunk allowed vlan 10,30",
        "interface GigabitEthernet0/1", " description esx01 vmnic0", " switchport mode access", " switchport access vlan 20",
        "interface GigabitEthernet0/2", " description uplink", " switchport mode trunk", " switchport trunk allowed vlan 10,20",
        "interface GigabitEthernet0/3", " channel-group 1 mode active",
        "interface GigabitEthernet0/4", " channel-group 1 mode active",
    ]


@pytest.mark.parametrize("state", ["merged", "replaced", "overridden"])
@pytest.mark.parametrize("cfg", [lab("core1"), lab("core2"), small()], ids=["core1", "core2", "small"])
def test_idempotent_when_before_equals_after(state, cfg):
    assert sw.diff_commands(cfg, cfg, state) == []
    assert sw.diff_commands(sw.parse_cisco_ios(sw.render_cisco_ios(cfg), cfg.switch), cfg, state) == []


@pytest.mark.parametrize("state", ["merged", "replaced", "overridden"])
def test_applying_the_commands_reaches_the_model(state):
    """Replaying the diff on the parsed running-config converges: a second diff is empty."""
    before_text = RUNNING
    after = small()
    commands = sw.diff_commands(sw.parse_cisco_ios(before_text, "sw1"), after, state)
    assert commands
    applied = sw.parse_cisco_ios(_apply(before_text, commands), "sw1")
    assert sw.diff_commands(applied, after, state) == []


def _apply(running: str, commands: list[str]) -> str:
    """A crude IOS: appends each interface's sub-commands to its block, handles ``default
    interface`` and ``no vlan``. Enough to check the diff converges, not a simulator."""
    blocks: dict[str, list[str]] = {}
    order: list[str] = []
    for head, body in sw._blocks(running):
        if head.startswith("vlan ") and head[5:].replace(",", "").replace("-", "").isdigit():
            for vid in sw.expand_vlans(head[5:]):  # one block per VLAN, so ``no vlan 21`` can remove 21 of 20-22
                order.append(f"vlan {vid}")
                blocks[f"vlan {vid}"] = list(body)
            continue
        if head not in blocks:
            order.append(head)
        blocks.setdefault(head, []).extend(body)
    current = None
    for cmd in commands:
        if cmd.startswith(" "):
            sub = cmd.strip()
            if sub.startswith("no "):
                blocks[current] = [line for line in blocks[current] if not line.startswith(sub[3:])]
            else:
                blocks[current].append(sub)
        elif cmd.startswith("default interface "):
            blocks[f"interface {cmd.split()[-1]}"] = []
        elif cmd.startswith("no vlan "):
            blocks.pop(f"vlan {cmd.split()[-1]}", None)
        else:
            current = cmd
            if cmd not in blocks:
                order.append(cmd)
                blocks[cmd] = []
    return "".join(f"{head}\n" + "".join(f" {line}\n" for line in blocks[head]) for head in order if head in blocks)


def test_invalid_state():
    with pytest.raises(ValueError, match="merged, replaced, overridden, deleted"):
        sw.diff_commands(small(), small(), "gathered")


# --- check_model ----------------------------------------------------------------------------------


def test_check_model_lab_is_clean():
    # The core pair carries every zone's network (the drill's too: both firewall nodes have the zone).
    assert sw.check_model(NETWORKS, PORTS, LAGS, hypervisor_networks=["mgmt", "servers", "backup"],
                          firewall_networks=["mgmt", "servers", "users", "dmz", "backup", "intersite", "drill"],
                          switches=["core1", "core2"]) == []


def test_check_model_access_switches_are_not_core():
    # accsw1's uplink carries only what its desks need: checked as a core switch, it would be flagged.
    findings = sw.check_model(NETWORKS, PORTS, LAGS, hypervisor_networks=["servers"], switches=["accsw1"])
    assert findings == ["dc_switch_ports[9].networks: trunk 'GigabitEthernet0/1' of accsw1 does not carry VLAN 20 "
                        "(hypervisor_networks[0]); add the network to it"]


def test_check_model_reports_missing_network_on_core_trunks():
    ports = [dict(p, networks=[n for n in p["networks"] if n != "drill"]) if p["switch"] == "core2" and p["port"] == "peer1" else p
             for p in PORTS]
    findings = sw.check_model(NETWORKS, ports, LAGS, hypervisor_networks=["drill", "nope"], switches=["core2"])
    assert findings == [
        "hypervisor_networks[1]: 'nope' is not a network (known: backup, dmz, drill, intersite, mgmt, servers, users)",
        "dc_switch_ports[6].networks: trunk 'peer1' of core2 does not carry VLAN 70 (hypervisor_networks[0]); add the network to it",
    ]


def test_check_model_reports_lags_and_compile_errors():
    ports = SMALL_PORTS + [{"switch": "sw3", "port": "x", "mode": "access", "network": "nope"}]
    assert sw.check_model(SMALL_NETWORKS, ports, SMALL_LAGS, firewall_networks=["servers"]) == [
        "dc_lags[0].networks: LAG 'po1' of sw1 does not carry VLAN 20 (firewall_networks[0]); add the network to it",
        "dc_switch_ports[3].network: 'nope' is not a network (known: mgmt, servers, unused, users)",
    ]


def test_parse_rejects_add_without_list():
    with pytest.raises(ValueError, match="add without a VLAN list"):
        sw.parse_cisco_ios("interface Gi1\n switchport mode trunk\n switchport trunk allowed vlan add\n", "s")


def test_port_joining_a_lag_is_reset_first_except_in_merged():
    lag = sw.Lag("po1", 1, ("ep1",), "lacp", (10,), "")
    before = config(vlans=VLANS, access={"ep1": 20})
    after = config(vlans=VLANS, lags=[lag])
    tail = ["interface ep1", " channel-group 1 mode active"]
    head = ["interface Port-channel1", " switchport mode trunk", " switchport trunk allowed vlan 10"]
    assert sw.diff_commands(before, after, "replaced") == head + ["default interface ep1"] + tail
    assert sw.diff_commands(before, after, "merged") == head + tail
