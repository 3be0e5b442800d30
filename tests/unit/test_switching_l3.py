"""SVIs and the redundant-core pair (issue #8) in the switch IR: ``dc_switch_svis`` compile into
``Svi`` (prefix from the network's subnet), render on IOS (dotted mask), EOS (CIDR) and OVS (internal
port + ``ip addr``), parse back and diff per state in the safe order (VLAN, then SVI; SVI removed
before its VLAN); ``dc_switch_pairs`` compile into ``Mlag``, render as EOS ``mlag configuration``, are
refused on IOS (no MLAG on Catalyst) and are cross-checked by ``check_model`` (the peer link carries
every VLAN of the pair, the same at both ends). A model without SVIs or pairs compiles, renders and
diffs exactly as before."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest
import yaml
from test_switching import LAGS, NETWORKS, PORTS, RUNNING, SMALL_LAGS, SMALL_NETWORKS, SMALL_PORTS, SWITCHING, lab, small
from test_switching import config as ios_config

from ansible_collections.twinsite.dc.plugins.module_utils import _switching as sw

REPO = Path(__file__).resolve().parents[2]

# A pair of EOS core switches: one access port each, the peer link a LAG, a management SVI each and
# the MLAG peer VLAN 4094 with a /30 between them.
NETS = [
    {"name": "mgmt", "vlan": 10, "subnet": "172.31.10.0/24", "gateway": "172.31.10.254"},
    {"name": "servers", "vlan": 20, "subnet": "172.31.20.0/24"},
    {"name": "users", "vlan": 30, "subnet": "172.31.30.0/24"},
    {"name": "nosubnet", "vlan": 40},
    {"name": "novlan", "subnet": "172.31.50.0/24"},
    {"name": "peer", "vlan": 4094, "subnet": "10.255.255.0/30"},
]
PAIR_PORTS = [
    {"switch": "sw1", "port": "Ethernet1", "mode": "access", "network": "servers", "description": "esx01 vmnic0"},
    {"switch": "sw2", "port": "Ethernet1", "mode": "access", "network": "servers"},
]
PAIR_LAGS = [
    {"switch": "sw1", "name": "po10", "members": ["Ethernet47", "Ethernet48"], "mode": "lacp", "networks": ["mgmt", "servers", "peer"],
     "description": "peer link"},
    {"switch": "sw2", "name": "po10", "members": ["Ethernet47", "Ethernet48"], "mode": "lacp", "networks": ["mgmt", "servers", "peer"]},
]
SVIS = [
    {"switch": "sw1", "network": "mgmt", "address": "172.31.10.2", "description": "management"},
    {"switch": "sw2", "network": "mgmt", "address": "172.31.10.3"},
    {"switch": "sw1", "network": "peer", "address": "10.255.255.1", "description": "mlag peer"},
    {"switch": "sw2", "network": "peer", "address": "10.255.255.2"},
]
PAIRS = [{"name": "core", "switches": ["sw1", "sw2"], "peer_link": "po10", "peer_network": "peer"}]


def pair(switch="sw1", ports=None, lags=None, svis=None, pairs=None, networks=None) -> sw.SwitchConfig:
    return sw.compile_switch(switch, NETS if networks is None else networks, PAIR_PORTS if ports is None else ports,
                             PAIR_LAGS if lags is None else lags, svis=SVIS if svis is None else svis, pairs=PAIRS if pairs is None else pairs)


def with_svis(cfg: sw.SwitchConfig, *svis: sw.Svi, vlans=None) -> sw.SwitchConfig:
    """``cfg`` with these SVIs (and, if given, these VLANs {id: name})."""
    cfg = replace(cfg, svis=tuple(sorted(svis, key=lambda s: s.vlan)))
    if vlans is not None:
        cfg = replace(cfg, vlans=tuple(sw.Vlan(v, n) for v, n in sorted(vlans.items())))
    return cfg


def _error(**kwargs) -> sw.SwitchError:
    with pytest.raises(sw.SwitchError) as info:
        pair(**kwargs)
    assert str(info.value) == f"{info.value.path}: {info.value.message}"
    return info.value


# --- backward compatibility ---------------------------------------------------------------------------


@pytest.mark.parametrize("switch", ["core1", "core2", "accsw1"])
def test_no_svis_no_pairs_is_what_it_always_was(switch):
    cfg = lab(switch)
    assert cfg.svis == () and cfg.mlag is None
    assert sw.compile_switch(switch, NETWORKS, PORTS, LAGS, svis=None, pairs=None) == cfg
    assert sw.compile_switch(switch, NETWORKS, PORTS, LAGS, svis=[], pairs=[]) == cfg
    assert sw.SwitchConfig(cfg.switch, cfg.vlans, cfg.access, cfg.trunks, cfg.lags) == cfg  # positional, five fields
    data = cfg.to_dict()
    assert data["svis"] == [] and data["mlag"] is None


def test_svis_of_other_switches_do_not_touch_this_one():
    assert sw.compile_switch("sw1", SMALL_NETWORKS, SMALL_PORTS, SMALL_LAGS, svis=SVIS[1:2] + SVIS[3:]) == small()


def test_lab_pair_compiles_and_renders_on_ovs_with_core1s_svi():
    svis, pairs = SWITCHING["dc_switch_svis"], SWITCHING["dc_switch_pairs"]
    # the access switch's management address, and core1's address in servers; core2 has none
    assert [s["switch"] for s in svis] == ["accsw1", "core1"]
    assert pairs == [{"name": "core", "switches": ["core1", "core2"], "peer_link": "peer1"}]
    core1_svi = sw.Svi(vlan=20, address="172.31.20.250/24", description="core1 in servers")
    for switch, peer, own in (("core1", "core2", (core1_svi,)), ("core2", "core1", ())):
        cfg = sw.compile_switch(switch, NETWORKS, PORTS, LAGS, svis=svis, pairs=pairs)
        assert cfg.mlag == sw.Mlag(domain_id=1, peer=peer, peer_link="peer1", local_address=None, peer_address=None, pair="core",
                                   path="dc_switch_pairs[0]")
        assert replace(cfg, mlag=None, svis=()) == lab(switch) and cfg.svis == own
        # OVS: no MLAG and no error; the SVI is one more internal port after the ports
        assert sw.render_linux_ovs(cfg)[:-1 if own else None] == sw.render_linux_ovs(lab(switch))
        assert sw.ovs_svi_addresses(cfg) == [("vlan20", "172.31.20.250/24")] * len(own)


def test_lab_access_switch_gets_its_management_svi():
    cfg = sw.compile_switch("accsw1", NETWORKS, PORTS, LAGS, svis=SWITCHING["dc_switch_svis"], pairs=SWITCHING["dc_switch_pairs"])
    assert cfg.svis == (sw.Svi(vlan=10, address="172.31.10.71/24", description="management"),)
    assert "interface Vlan10\n description management\n ip address 172.31.10.71 255.255.255.0\n" in sw.render_cisco_ios(cfg)


def test_existing_diff_leaves_unmodelled_svis_alone():
    """RUNNING has ``interface Vlan10`` with an address: it parses as an SVI, and a model without
    SVIs (every model before #8) never removes it, not even overridden."""
    before = sw.parse_cisco_ios(RUNNING, "sw1")
    assert before.svis == (sw.Svi(10, "172.31.10.2/24", ""),)
    for state in sw.STATES:
        assert not [c for c in sw.diff_commands(before, small(), state) if "Vlan" in c]


# --- compile ----------------------------------------------------------------------------------------


def test_compile_svis_and_mlag():
    cfg = pair()
    assert cfg.svis == (sw.Svi(10, "172.31.10.2/24", "management"), sw.Svi(4094, "10.255.255.1/30", "mlag peer"))
    assert [v.id for v in cfg.vlans] == [10, 20, 4094]
    assert cfg.mlag == sw.Mlag(domain_id=1, peer="sw2", peer_link="po10", local_address="10.255.255.1", peer_address="10.255.255.2",
                               pair="core", path="dc_switch_pairs[0]")
    assert pair("sw2").mlag == sw.Mlag(1, "sw1", "po10", "10.255.255.2", "10.255.255.1", "core", "dc_switch_pairs[0]")
    assert cfg.to_dict()["svis"][0] == {"vlan": 10, "address": "172.31.10.2/24", "description": "management"}
    assert cfg.to_dict()["mlag"]["peer_address"] == "10.255.255.2"


def test_svi_vlan_counts_as_used():
    cfg = sw.compile_switch("sw3", NETS, [], [], svis=[{"switch": "sw3", "network": "users", "address": "172.31.30.9"}])
    assert cfg.vlans == (sw.Vlan(30, "users"),)
    assert cfg.svis == (sw.Svi(30, "172.31.30.9/24", ""),)


def test_svis_sorted_by_vlan():
    svis = [{"switch": "s", "network": "users", "address": "172.31.30.2"}, {"switch": "s", "network": "mgmt", "address": "172.31.10.2"}]
    assert [s.vlan for s in sw.compile_switch("s", NETS, [], [], svis=svis).svis] == [10, 30]


def test_domain_id_from_position_or_given():
    pairs = [{"name": "a", "switches": ["x1", "x2"], "peer_link": "l"}, dict(PAIRS[0], peer_network=None)]
    assert pair(pairs=pairs).mlag.domain_id == 2
    pairs[1]["domain_id"] = 7
    assert pair(pairs=pairs).mlag.domain_id == 7


def test_peer_link_may_be_a_trunk_port():
    ports = PAIR_PORTS + [{"switch": s, "port": "Ethernet49", "mode": "trunk", "networks": ["mgmt", "servers", "peer"]} for s in ("sw1", "sw2")]
    cfg = pair(ports=ports, pairs=[dict(PAIRS[0], peer_link="Ethernet49")])
    assert cfg.mlag.peer_link == "Ethernet49"
    assert sw.render_arista_eos(cfg).endswith(" peer-link Ethernet49\n")


# --- SVI errors name their model path ------------------------------------------------------------------


def _svis_with(index: int, **changes) -> list[dict]:
    svis = copy.deepcopy(SVIS)
    svis[index].update(changes)
    return [{k: v for k, v in s.items() if v is not None} for s in svis]


@pytest.mark.parametrize(("changes", "path", "words"), [
    ({"network": "nope"}, "dc_switch_svis[2].network", "'nope' is not a network"),
    ({"network": "novlan"}, "dc_switch_svis[2].network", "has no VLAN"),
    ({"network": "nosubnet"}, "dc_switch_svis[2].network", "has no subnet (dc_networks[3].subnet)"),
    ({"address": "nope"}, "dc_switch_svis[2].address", "'nope' is not an IPv4 address"),
    ({"address": None}, "dc_switch_svis[2].address", "None is not an IPv4 address"),
    ({"address": "fd00::1"}, "dc_switch_svis[2].address", "is not an IPv4 address"),
    ({"address": "10.255.255.1/30"}, "dc_switch_svis[2].address", "without a prefix"),
    ({"address": "10.255.255.5"}, "dc_switch_svis[2].address", "not in network 'peer''s subnet 10.255.255.0/30 (dc_networks[5].subnet)"),
    ({"address": "10.255.255.0"}, "dc_switch_svis[2].address", "own address of subnet"),
    ({"address": "10.255.255.3"}, "dc_switch_svis[2].address", "broadcast address"),
    ({"network": "mgmt", "address": "172.31.10.9"}, "dc_switch_svis[2].network", "VLAN 10 (mgmt) already has an SVI on sw1 (dc_switch_svis[0])"),
])
def test_svi_errors(changes, path, words):
    err = _error(svis=_svis_with(2, **changes), pairs=[])
    assert err.path == path
    assert words in err.message


def test_svi_address_is_the_gateway():
    err = _error(svis=_svis_with(0, address="172.31.10.254"), pairs=[])
    assert (err.path, err.message) == ("dc_switch_svis[0].address", "172.31.10.254 is network 'mgmt''s gateway (dc_networks[0].gateway): "
                                       "pick another address")


def test_svi_address_used_twice_on_a_switch():
    svis = SVIS + [{"switch": "sw1", "network": "users", "address": "172.31.30.2"},
                   {"switch": "sw1", "network": "servers", "address": "172.31.20.2"}]
    assert pair(svis=svis, pairs=[]).svis[1] == sw.Svi(20, "172.31.20.2/24", "")
    nets = copy.deepcopy(NETS)
    nets[2]["subnet"] = "172.31.20.0/23"  # users overlaps servers: the same address can be in both
    svis[4]["address"] = "172.31.20.2"
    err = _error(svis=svis, pairs=[], networks=nets)
    assert err.path == "dc_switch_svis[5].address"
    assert err.message == "172.31.20.2 is already an address of sw1 (dc_switch_svis[4].address): one address, one SVI"


def test_same_address_on_two_switches_is_not_this_switchs_error():
    assert pair(svis=_svis_with(1, address="172.31.10.2"), pairs=[]).svis[0].address == "172.31.10.2/24"


def test_bad_subnet_names_the_network():
    nets = copy.deepcopy(NETS)
    nets[0]["subnet"] = "172.31.10.1/24"
    err = _error(networks=nets, pairs=[])
    assert err.path == "dc_networks[0].subnet"
    nets[0]["subnet"] = "fd00::/64"
    assert "IPv6" in _error(networks=nets, pairs=[]).message


def test_svis_not_a_list():
    assert _error(svis={"switch": "sw1"}, pairs=[]).path == "dc_switch_svis"


# --- pair errors name their model path -------------------------------------------------------------------


@pytest.mark.parametrize(("changes", "path", "words"), [
    ({"switches": ["sw1"]}, "dc_switch_pairs[0].switches", "exactly two distinct switches"),
    ({"switches": ["sw1", "sw2", "sw3"]}, "dc_switch_pairs[0].switches", "exactly two distinct switches"),
    ({"switches": ["sw1", "sw1"]}, "dc_switch_pairs[0].switches", "exactly two distinct switches"),
    ({"switches": "sw1,sw2"}, "dc_switch_pairs[0].switches", "exactly two distinct switches"),
    ({"name": ""}, "dc_switch_pairs[0].name", "is not a pair name"),
    ({"peer_link": None}, "dc_switch_pairs[0].peer_link", "is not a port or LAG name"),
    ({"domain_id": 0}, "dc_switch_pairs[0].domain_id", "is not a domain id (1-4094)"),
    ({"domain_id": True}, "dc_switch_pairs[0].domain_id", "is not a domain id"),
    ({"peer_link": "po11"}, "dc_switch_pairs[0].peer_link", "'po11' is not a port or LAG of sw1"),
    ({"peer_link": "Ethernet1"}, "dc_switch_pairs[0].peer_link", "'Ethernet1' is an access port of sw1 (dc_switch_ports[0])"),
    ({"peer_link": "Ethernet47"}, "dc_switch_pairs[0].peer_link", "is a member of a LAG on sw1 (dc_lags[0].members[0])"),
    ({"peer_network": "nope"}, "dc_switch_pairs[0].peer_network", "'nope' is not a network"),
    ({"peer_network": "users"}, "dc_switch_pairs[0].peer_network", "sw1 has no SVI in network 'users'"),
])
def test_pair_errors(changes, path, words):
    err = _error(pairs=[dict(PAIRS[0], **changes)])
    assert err.path == path
    assert words in err.message


def test_pair_error_on_the_other_side():
    lags = [PAIR_LAGS[0], dict(PAIR_LAGS[1], name="po11")]
    assert "'po10' is not a port or LAG of sw2" in _error(lags=lags).message
    err = _error(svis=SVIS[:3])
    assert (err.path, err.message.split(":")[0]) == ("dc_switch_pairs[0].peer_network", "sw2 has no SVI in network 'peer' (dc_switch_svis)")


def test_switch_in_two_pairs_even_when_compiling_another():
    pairs = PAIRS + [{"name": "other", "switches": ["sw3", "sw2"], "peer_link": "x"}]
    err = _error(pairs=pairs)
    assert err.path == "dc_switch_pairs[1].switches[1]"
    assert err.message == "sw2 is already in pair dc_switch_pairs[0] (core): a switch has one twin"
    with pytest.raises(sw.SwitchError, match="already in pair"):
        sw.compile_switch("sw9", NETS, [], [], pairs=pairs)


def test_a_pair_port_that_says_lag_is_a_member():
    ports = PAIR_PORTS + [{"switch": "sw2", "port": "Ethernet47", "lag": "po10"}]
    err = _error(ports=ports, pairs=[dict(PAIRS[0], peer_link="Ethernet47")])
    assert "member of a LAG on sw1" in err.message
    err = _error(ports=ports, lags=[PAIR_LAGS[0], dict(PAIR_LAGS[1], members=["Ethernet48"])], pairs=[dict(PAIRS[0], peer_link="Ethernet47")])
    assert "member of a LAG on sw1" in err.message


# --- render --------------------------------------------------------------------------------------------

PAIR_IOS_HEAD = """\
vlan 10
 name mgmt
vlan 20
 name servers
vlan 4094
 name peer
interface Vlan10
 description management
 ip address 172.31.10.2 255.255.255.0
interface Vlan4094
 description mlag peer
 ip address 10.255.255.1 255.255.255.252
interface Port-channel10
 description peer link
 switchport mode trunk
 switchport trunk allowed vlan 10,20,4094
interface Ethernet1
 description esx01 vmnic0
 switchport mode access
 switchport access vlan 20
interface Ethernet47
 channel-group 10 mode active
interface Ethernet48
 channel-group 10 mode active
"""

PAIR_EOS = """\
vlan 10
 name mgmt
vlan 20
 name servers
vlan 4094
 name peer
interface Vlan10
 description management
 ip address 172.31.10.2/24
interface Vlan4094
 description mlag peer
 ip address 10.255.255.1/30
interface Port-Channel10
 description peer link
 switchport mode trunk
 switchport trunk allowed vlan 10,20,4094
interface Ethernet1
 description esx01 vmnic0
 switchport mode access
 switchport access vlan 20
interface Ethernet47
 channel-group 10 mode active
interface Ethernet48
 channel-group 10 mode active
mlag configuration
 domain-id core
 local-interface Vlan4094
 peer-address 10.255.255.2
 peer-link Port-Channel10
"""


def test_render_cisco_ios_svis_after_vlans_before_port_channels():
    assert sw.render_cisco_ios(pair(pairs=[])) == PAIR_IOS_HEAD


def test_render_arista_eos_svis_and_mlag_exact():
    assert sw.render_arista_eos(pair()) == PAIR_EOS
    assert sw.render_arista_eos(pair(pairs=[])) == PAIR_EOS.split("mlag configuration")[0].replace("Port-channel", "Port-Channel")


def test_render_cisco_ios_refuses_a_pair():
    with pytest.raises(sw.SwitchError) as info:
        sw.render_cisco_ios(pair())
    assert info.value.path == "dc_switch_pairs[0]"
    assert "Cisco IOS (Catalyst) has no MLAG" in info.value.message
    assert "stack or VSS, model it as one switch" in info.value.message


def test_render_arista_eos_needs_a_peer_network():
    with pytest.raises(sw.SwitchError) as info:
        sw.render_arista_eos(pair(pairs=[dict(PAIRS[0], peer_network=None)]))
    assert info.value.path == "dc_switch_pairs[0].peer_network"


def test_render_linux_ovs_svi_is_an_internal_port_and_pair_is_nothing():
    ops = sw.render_linux_ovs(pair(), bridge="br-core")
    assert ops[-2:] == [
        ["--may-exist", "add-port", "br-core", "vlan10", "--", "set", "interface", "vlan10", "type=internal", "--", "set", "port", "vlan10", "tag=10"],
        ["--may-exist", "add-port", "br-core", "vlan4094", "--", "set", "interface", "vlan4094", "type=internal",
         "--", "set", "port", "vlan4094", "tag=4094"],
    ]
    assert ops[:-2] == sw.render_linux_ovs(replace(pair(), svis=(), mlag=None), bridge="br-core")
    assert sw.ovs_svi_addresses(pair()) == [("vlan10", "172.31.10.2/24"), ("vlan4094", "10.255.255.1/30")]


# --- parse ------------------------------------------------------------------------------------------


def _named_lags(cfg: sw.SwitchConfig) -> sw.SwitchConfig:
    """``cfg`` as a device says it: LAGs named after their port-channel, no MLAG (not parsed)."""
    return replace(cfg, lags=tuple(replace(g, name=f"Port-channel{g.number}") for g in cfg.lags), mlag=None)


@pytest.mark.parametrize("render", [sw.render_cisco_ios, sw.render_arista_eos], ids=["ios", "eos"])
def test_round_trip_svis(render):
    cfg = pair(pairs=[])
    assert sw.parse_cisco_ios(render(cfg), "sw1") == _named_lags(cfg)
    for state in ("merged", "replaced", "overridden"):
        assert sw.diff_commands(sw.parse_cisco_ios(render(cfg), "sw1"), cfg, state) == []


def test_round_trip_eos_with_mlag_keeps_the_rest():
    assert sw.parse_cisco_ios(sw.render_arista_eos(pair()), "sw1") == _named_lags(pair())


def test_parse_svis():
    text = """\
interface Vlan10
 description management
 ip address 172.31.10.2 255.255.255.0
 ip address 172.31.11.2 255.255.255.0 secondary
 shutdown
!
interface Vlan20
 no ip address
!
interface Vlan30
 ip address dhcp
!
interface Vlan40
   ip address 172.31.40.2/24
!
interface Vlan50
 ip address 172.31.50.2 255.255.255.0
 no ip address
!
interface GigabitEthernet0/0
 no switchport
 ip address 192.0.2.1 255.255.255.0
"""
    cfg = sw.parse_cisco_ios(text, "s")
    assert cfg.svis == (sw.Svi(10, "172.31.10.2/24", "management"), sw.Svi(40, "172.31.40.2/24", ""))
    assert cfg.access == cfg.trunks == cfg.lags == () and cfg.mlag is None


def test_parse_rejects_a_bad_mask():
    with pytest.raises(ValueError, match="not an address and mask"):
        sw.parse_cisco_ios("interface Vlan10\n ip address 172.31.10.2 255.0.255.0\n", "s")


# --- diff ---------------------------------------------------------------------------------------------

BEFORE = with_svis(ios_config(vlans={1: "default", 10: "mgmt", 20: "servers", 99: "old"}, access={"ep1": 20}),
                   sw.Svi(10, "172.31.10.9/24", "old mgmt"), sw.Svi(99, "192.0.2.1/24", ""))
AFTER = with_svis(ios_config(vlans={10: "mgmt", 20: "servers", 30: "users"}, access={"ep1": 20}),
                  sw.Svi(10, "172.31.10.2/24", ""), sw.Svi(30, "172.31.30.2/24", "users gw"))


def test_diff_merged_sets_address_keeps_description():
    assert sw.diff_commands(BEFORE, AFTER, "merged") == [
        "vlan 30", " name users",
        "interface Vlan10", " ip address 172.31.10.2 255.255.255.0",
        "interface Vlan30", " description users gw", " ip address 172.31.30.2 255.255.255.0",
    ]


def test_diff_replaced_is_exact_for_the_models_svis():
    assert sw.diff_commands(BEFORE, AFTER, "replaced") == [
        "vlan 30", " name users",
        "interface Vlan10", " no description", " ip address 172.31.10.2 255.255.255.0",
        "interface Vlan30", " description users gw", " ip address 172.31.30.2 255.255.255.0",
    ]


def test_diff_overridden_removes_other_svis_before_their_vlan():
    commands = sw.diff_commands(BEFORE, AFTER, "overridden")
    assert commands == [
        "vlan 30", " name users",
        "interface Vlan10", " no description", " ip address 172.31.10.2 255.255.255.0",
        "interface Vlan30", " description users gw", " ip address 172.31.30.2 255.255.255.0",
        "no interface Vlan99",
        "no vlan 99",
    ]
    assert commands.index("no interface Vlan99") < commands.index("no vlan 99")
    assert commands.index("vlan 30") < commands.index("interface Vlan30")


def test_diff_deleted_removes_the_models_svis_then_vlans():
    commands = sw.diff_commands(BEFORE, AFTER, "deleted")
    assert commands == ["default interface ep1", "no interface Vlan10", "no vlan 10", "no vlan 20"]
    gone = with_svis(ios_config(vlans={1: "default", 99: "old"}), sw.Svi(99, "192.0.2.1/24", ""))
    assert sw.diff_commands(gone, AFTER, "deleted") == []


def test_diff_svi_before_the_ports_and_after_a_new_vlan():
    cfg = pair(pairs=[])
    commands = sw.diff_commands(ios_config(), cfg, "merged")
    assert commands[:6] == ["vlan 10", " name mgmt", "vlan 20", " name servers", "vlan 4094", " name peer"]
    assert commands[6:13] == ["interface Vlan10", " description management", " ip address 172.31.10.2 255.255.255.0",
                              "interface Vlan4094", " description mlag peer", " ip address 10.255.255.1 255.255.255.252",
                              "interface Port-channel10"]


def test_diff_overridden_without_model_svis_keeps_the_devices():
    assert sw.diff_commands(BEFORE, replace(AFTER, svis=()), "overridden") == [
        "vlan 30", " name users", "no vlan 99",
    ]


@pytest.mark.parametrize("state", ["merged", "replaced", "overridden"])
def test_diff_idempotent_with_svis(state):
    assert sw.diff_commands(AFTER, AFTER, state) == []
    assert sw.diff_commands(pair(), pair(), state) == []  # no platform: the MLAG is left alone (arista_eos diffs it, test_switching_mlag.py)


@pytest.mark.parametrize("state", sw.STATES)
def test_applying_svi_commands_converges(state):
    text = sw.render_cisco_ios(BEFORE)
    commands = sw.diff_commands(sw.parse_cisco_ios(text, "sw1"), AFTER, state)
    assert commands
    applied = sw.parse_cisco_ios(_apply(text, commands), "sw1")
    assert sw.diff_commands(applied, AFTER, state) == []


def _apply(running: str, commands: list[str]) -> str:
    """A crude IOS (like test_switching's), with ``no interface``: blocks by head line; a sub-command
    replaces the line of the same setting (``ip address``, ``description``)."""
    blocks: dict[str, list[str]] = {}
    for head, body in sw._blocks(running):
        blocks.setdefault(head, []).extend(body)
    current = None
    for cmd in commands:
        if cmd.startswith(" "):
            sub = cmd.strip()
            key = " ".join(sub.split()[:2]) if sub.startswith("ip ") else sub.split()[0]
            if sub.startswith("no "):
                blocks[current] = [line for line in blocks[current] if not line.startswith(sub[3:])]
            else:
                blocks[current] = [line for line in blocks[current] if not (key in ("ip address", "description") and line.startswith(key))]
                blocks[current].append(sub)
        elif cmd.startswith("default interface "):
            blocks[f"interface {cmd.split()[-1]}"] = []
        elif cmd.startswith(("no interface ", "no vlan ")):
            blocks.pop(cmd[3:], None)
        else:
            current = cmd
            blocks.setdefault(cmd, [])
    return "".join(f"{head}\n" + "".join(f" {line}\n" for line in body) for head, body in blocks.items())


# --- check_model: the pair -------------------------------------------------------------------------


def test_check_model_clean_pair():
    assert sw.check_model(NETS, PAIR_PORTS, PAIR_LAGS, svis=SVIS, pairs=PAIRS) == []


def test_check_model_lab_pair_is_clean():
    assert sw.check_model(NETWORKS, PORTS, LAGS, hypervisor_networks=["mgmt", "servers", "backup"],
                          switches=["core1", "core2"], svis=SWITCHING["dc_switch_svis"], pairs=SWITCHING["dc_switch_pairs"]) == []


def test_check_model_peer_link_ends_differ():
    lags = [PAIR_LAGS[0], dict(PAIR_LAGS[1], networks=["mgmt", "servers", "users", "peer"])]
    assert sw.check_model(NETS, PAIR_PORTS, lags, svis=SVIS, pairs=PAIRS) == [
        "dc_lags[0].networks: peer link 'po10' of pair 'core' (dc_switch_pairs[0]) carries VLANs 10,20,4094 on sw1 but "
        "10,20,30,4094 on sw2 (dc_lags[1].networks); make its two ends carry the same networks",
    ]


def test_check_model_vlan_not_on_the_peer_link():
    ports = PAIR_PORTS + [{"switch": "sw2", "port": "Ethernet2", "mode": "access", "network": "users"}]
    assert sw.check_model(NETS, ports, PAIR_LAGS, svis=SVIS, pairs=PAIRS) == [
        "dc_switch_pairs[0].peer_link: VLAN 30 (users) is used on sw2 but its end of peer link 'po10' (dc_lags[1].networks) does not "
        "carry it, so the network is split between the rooms; add it to the peer link",
    ]


def test_check_model_lab_peer_trunk_missing_a_vlan_on_one_side():
    ports = copy.deepcopy(PORTS)
    ports[6]["networks"] = [n for n in ports[6]["networks"] if n != "backup"]  # core2's peer1; core2 uses backup on ep2
    findings = sw.check_model(NETWORKS, ports, LAGS, switches=["core1", "core2"], svis=[], pairs=SWITCHING["dc_switch_pairs"])
    assert findings == [
        "dc_switch_ports[5].networks: peer link 'peer1' of pair 'core' (dc_switch_pairs[0]) carries VLANs 10,20,30,40,50,60,70 on "
        "core1 but 10,20,30,40,60,70 on core2 (dc_switch_ports[6].networks); make its two ends carry the same networks",
        "dc_switch_pairs[0].peer_link: VLAN 50 (backup) is used on core2 but its end of peer link 'peer1' (dc_switch_ports[6].networks) "
        "does not carry it, so the network is split between the rooms; add it to the peer link",
    ]


def test_check_model_keeps_existing_findings_first():
    ports = [dict(p, networks=["mgmt"]) if p["switch"] == "sw2" and p.get("mode") == "trunk" else p for p in PAIR_PORTS]
    lags = [PAIR_LAGS[0], dict(PAIR_LAGS[1], networks=["mgmt", "servers", "peer", "users"])]
    findings = sw.check_model(NETS, ports, lags, firewall_networks=["users"], svis=SVIS, pairs=PAIRS)
    assert findings[0] == "dc_lags[0].networks: LAG 'po10' of sw1 does not carry VLAN 30 (firewall_networks[0]); add the network to it"
    assert findings[1].startswith("dc_lags[0].networks: peer link 'po10' of pair 'core'")
    assert len(findings) == 2


def test_check_model_pair_structure_said_once_at_the_end():
    pairs = PAIRS + [{"name": "bad", "switches": ["sw3"], "peer_link": "x"}]
    ports = PAIR_PORTS + [{"switch": "sw9", "port": "x", "mode": "access", "network": "nope"}]
    assert sw.check_model(NETS, ports, PAIR_LAGS, svis=SVIS, pairs=pairs) == [
        "dc_switch_ports[2].network: 'nope' is not a network (known: mgmt, nosubnet, novlan, peer, servers, users)",
        "dc_switch_pairs[1].switches: a redundant pair is exactly two distinct switches, found ['sw3']",
    ]


def test_check_model_compile_errors_of_svis_and_pairs_are_findings():
    findings = sw.check_model(NETS, PAIR_PORTS, PAIR_LAGS, svis=_svis_with(1, address="10.0.0.1"), pairs=PAIRS)
    # sw1 compiles sw2's SVIs for the peer address and sw2 its own: the same problem, said once
    assert findings == ["dc_switch_svis[1].address: 10.0.0.1 is not in network 'mgmt''s subnet 172.31.10.0/24 (dc_networks[0].subnet)"]


def test_check_model_restricted_to_other_switches_skips_the_pair():
    lags = [PAIR_LAGS[0], dict(PAIR_LAGS[1], networks=["mgmt"])]
    assert sw.check_model(NETS, PAIR_PORTS + [{"switch": "sw5", "port": "e1", "mode": "access", "network": "users"}], lags,
                          svis=SVIS, pairs=PAIRS, switches=["sw5"]) == []


# --- schema and lab model ---------------------------------------------------------------------------


def _schema_errors(data: dict) -> list[str]:
    schema = yaml.safe_load((REPO / "schemas" / "switching.schema.yml").read_text())
    schema.pop("scope", None)
    return [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(data)]


def test_schema_accepts_the_lab_and_the_pair_model():
    assert _schema_errors(SWITCHING) == []
    assert _schema_errors({"dc_switch_svis": SVIS, "dc_switch_pairs": [dict(PAIRS[0], domain_id=4094)]}) == []


@pytest.mark.parametrize("data", [
    {"dc_switch_svis": [{"switch": "sw1", "network": "mgmt"}]},
    {"dc_switch_svis": [dict(SVIS[0], prefix=24)]},
    {"dc_switch_pairs": [dict(PAIRS[0], switches=["sw1"])]},
    {"dc_switch_pairs": [dict(PAIRS[0], switches=["sw1", "sw1"])]},
    {"dc_switch_pairs": [dict(PAIRS[0], domain_id=4095)]},
    {"dc_switch_pairs": [dict(PAIRS[0], mode="mlag")]},
    {"dc_switch_pairs": [{"name": "core", "switches": ["a", "b"]}]},
])
def test_schema_rejects(data):
    assert _schema_errors(data)


def test_secrets_of_a_running_config_are_masked_for_the_task_result():
    from ansible_collections.twinsite.dc.plugins.module_utils._switching import mask_secrets

    config = "\n".join([
        "enable secret 5 $1$abcd$XYZ", "enable password 7 0822455D0A16", "username admin privilege 15 secret 5 $1$xyz$abc",
        "username ops password 0 plaintext", "snmp-server community s3cretRO RO 10", "tacacs-server key 7 045802150C2E",
        "radius-server key plainkey", "tacacs server T1", " address ipv4 10.0.0.1", " key 7 045802150C2E",
        "line vty 0 4", " password 7 121A0C041104", " login", "key chain K", " key 1", "  key-string 7 0822455D0A16",
        "interface Vlan10", " description password manager VLAN", " ip address 172.31.10.71 255.255.255.0", ""])
    masked = mask_secrets(config)
    for secret in ("$1$abcd$XYZ", "0822455D0A16", "$1$xyz$abc", "plaintext", "s3cretRO", "045802150C2E", "plainkey", "121A0C041104"):
        assert secret not in masked, secret
    assert "snmp-server community <hidden> RO 10" in masked and "enable secret 5 <hidden>" in masked
    # What is not a secret stays as it was: a key chain's key number, a description, the interfaces.
    for line in ("key chain K", " key 1", " description password manager VLAN", " ip address 172.31.10.71 255.255.255.0"):
        assert line + "\n" in masked
    assert mask_secrets(masked) == masked


def test_switch_l2_shows_the_ios_backup_masked_and_stores_it_as_read(tmp_path, capsys, monkeypatch):
    import json
    import subprocess

    from ansible.module_utils.testing import patch_module_args

    from ansible_collections.twinsite.dc.plugins.modules import switch_l2

    config = "hostname accsw1\nenable secret 5 $1$abcd$XYZ\nsnmp-server community s3cretRO RO\nvlan 10\n name mgmt\n!\nend\n"
    sent = []

    class FakeCli:
        def __init__(self, *args, **kwargs):
            self.conn = None

        def open(self):
            self.conn = object()

        def running_config(self):
            return config

        def configure(self, commands, revert_minutes=None):
            sent.append(list(commands))

        def save(self):
            sent.append(["write memory"])

        def close(self):
            self.conn = None

    monkeypatch.setattr(switch_l2, "IosCli", FakeCli)
    args = {"switch": "accsw1", "platform": "cisco_ios", "host": "192.0.2.7", "username": "admin", "password": "pw",
            "networks": [{"name": "mgmt", "vlan": 10}, {"name": "users", "vlan": 30}], "state": "merged",
            "ports": [{"switch": "accsw1", "port": "FastEthernet0/1", "mode": "access", "network": "users"}],
            "rollback_seconds": 0, "store": str(tmp_path / "store")}
    with patch_module_args({**args, "_ansible_check_mode": False}), pytest.raises(SystemExit):
        switch_l2.main()
    result = json.loads(capsys.readouterr().out)
    assert result.get("changed"), result
    assert "$1$abcd$XYZ" not in json.dumps(result) and "s3cretRO" not in json.dumps(result)
    assert "enable secret 5 <hidden>" in result["backup"]
    assert sent[0][:2] == ["vlan 30", " name users"]  # the change went out after the backup was stored
    stored = subprocess.run(["git", "-C", str(tmp_path / "store"), "show", "HEAD:accsw1.cfg"], capture_output=True, text=True, check=True)
    assert stored.stdout == config  # the store keeps the config as read: a restore needs the secrets
