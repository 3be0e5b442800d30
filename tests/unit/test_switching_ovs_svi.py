"""SVIs on Open vSwitch: an SVI is an internal port ``vlan<N>`` in access VLAN N whose address is
the kernel's. The bridge and kernel read back as SVIs, each state adds, corrects and removes them as
``diff_commands`` does on IOS, the ``ip`` commands give them their addresses, a second run does
nothing, and the rollback a timer runs puts the ports and the addresses back as they were. Applied
with the strict ovs-vsctl and ip stand-in of test_switching_ovs (``Bridge``)."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
from test_switching_ovs import Bridge, config, interfaces_doc, port_row, ports_doc

from ansible_collections.twinsite.dc.plugins.module_utils import _switching as sw


def model(*svis: sw.Svi, access=None) -> sw.SwitchConfig:
    """core1's model: ep1 in servers (VLAN 20), and ``svis``."""
    cfg = config(access=access or {"ep1": 20})
    vlans = {v.id for v in cfg.vlans} | {v.vlan for v in svis}
    return replace(cfg, vlans=tuple(sw.Vlan(v, f"VLAN{v:04d}") for v in sorted(vlans)), svis=tuple(sorted(svis, key=lambda v: v.vlan)))


SERVERS = sw.Svi(20, "172.31.20.250/24", "core1 in servers")


def switch() -> Bridge:
    return Bridge("br0", {"ep1": {"tag": 20, "vlan_mode": "access"}, "ep2": {"tag": 1, "vlan_mode": "access"}})


def converge(bridge: Bridge, after: sw.SwitchConfig, state: str) -> tuple[list, list]:
    """Apply both halves of the change, then check that a second run has nothing left to do."""
    before = bridge.parse()
    ops, ip = sw.ovs_operations(before, after, state), None
    bridge.apply(ops)
    ip = sw.ovs_address_operations(before, after, state, copy.deepcopy(bridge.kernel_before))
    bridge.ip(ip)
    again = bridge.parse()
    assert sw.ovs_operations(again, after, state) == [] and sw.ovs_address_operations(again, after, state, bridge.kernel) == []
    return ops, ip


@pytest.fixture(autouse=True)
def _kernel_before(monkeypatch):
    """Bridge.parse() remembers the kernel it read, as the module reads it before the change."""
    original = Bridge.parse

    def parse(self, switch="core1"):
        self.kernel_before = copy.deepcopy(self.kernel)
        return original(self, switch)

    monkeypatch.setattr(Bridge, "parse", parse)


# --- reading ----------------------------------------------------------------------------------------

IP_ADDR = [  # ip -j addr show, trimmed, as iproute2 6.1 (Debian 12) prints it
    {"ifindex": 1, "ifname": "lo", "flags": ["LOOPBACK", "UP", "LOWER_UP"],
     "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8}, {"family": "inet6", "local": "::1", "prefixlen": 128}]},
    {"ifindex": 7, "ifname": "vlan20", "flags": ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"],
     "addr_info": [{"family": "inet", "local": "172.31.20.250", "prefixlen": 24},
                   {"family": "inet", "local": "172.31.20.251", "prefixlen": 24, "secondary": True}]},
    {"ifindex": 8, "ifname": "vlan30", "flags": ["BROADCAST", "MULTICAST"], "addr_info": []},
    {},
]


def test_the_kernel_view_reads_addresses_in_order_and_the_up_flag():
    assert sw.ovs_kernel_view(IP_ADDR) == {
        "lo": {"up": True, "addresses": ["127.0.0.1/8"]},
        "vlan20": {"up": True, "addresses": ["172.31.20.250/24", "172.31.20.251/24"]},
        "vlan30": {"up": False, "addresses": []},
    }


@pytest.mark.parametrize(("doc", "path"), [
    ({"ifname": "x"}, "ip.addr"),
    ([{"ifname": 3, "flags": [], "addr_info": []}], "ip.addr[0]"),
    ([{"ifname": "vlan20", "flags": [], "addr_info": [{"family": "inet", "local": "172.31.20.300", "prefixlen": 24}]}],
     "ip.addr[0].addr_info[0]"),
])
def test_the_kernel_view_names_what_it_cannot_read(doc, path):
    with pytest.raises(sw.SwitchError) as info:
        sw.ovs_kernel_view(doc)
    assert info.value.path == path


def test_an_internal_port_in_its_own_vlan_reads_as_an_svi_with_its_first_address():
    kernel = sw.ovs_kernel_view(IP_ADDR)
    rows = [port_row("br0"), port_row("ep1", tag=20), port_row("vlan20", tag=20, vlan_mode="access", description="mgmt"),
            port_row("vlan30", tag=30), port_row("vlan40", tag=99), port_row("vlan50", tag=50)]
    types = {"br0": "internal", "vlan20": "internal", "vlan30": "internal", "vlan40": "internal", "vlan50": ""}
    cfg = sw.parse_linux_ovs(ports_doc(*rows), interfaces_doc([r[0] for r in rows], types), "core1", kernel=kernel)
    assert cfg.svis == (sw.Svi(20, "172.31.20.250/24", "mgmt"), sw.Svi(30, "", ""))
    # in another VLAN (vlan40) or not internal (vlan50, a cable named so): the plain port it is
    assert [p.name for p in cfg.access] == ["ep1", "vlan40", "vlan50"]
    assert [v.id for v in cfg.vlans] == [20, 30, 50, 99]


def test_without_the_type_column_there_are_no_svis():
    rows = [port_row("br0"), port_row("vlan20", tag=20)]
    cfg = sw.parse_linux_ovs(ports_doc(*rows), interfaces_doc(["br0", "vlan20"]), "core1", kernel={})
    assert cfg.svis == () and cfg.access == (sw.AccessPort("vlan20", 20, ""),)


# --- each state ---------------------------------------------------------------------------------------


def test_merged_adds_the_svi_port_then_its_address_and_a_second_run_does_nothing():
    bridge = switch()
    ops, ip = converge(bridge, model(SERVERS), "merged")
    assert ops == [["add-port", "br0", "vlan20", "tag=20", "vlan_mode=access", 'external_ids:description="core1 in servers"'],
                   ["set", "interface", "vlan20", "type=internal"]]
    assert ip == [["addr", "replace", "172.31.20.250/24", "dev", "vlan20"], ["link", "set", "dev", "vlan20", "up"]]
    assert bridge.kernel["vlan20"] == {"up": True, "addresses": ["172.31.20.250/24"]}
    assert bridge.parse().svis == (SERVERS,)


def test_a_new_address_replaces_the_old_and_leaves_a_secondary_alone():
    # (Linux itself may drop a secondary of the same subnet with its primary: the stand-in does not)
    bridge = switch().svi(20, "172.31.20.9/24")
    bridge.kernel["vlan20"]["addresses"].append("172.31.20.77/24")  # a secondary someone added by hand
    ops, ip = converge(bridge, model(SERVERS), "replaced")
    assert ops == [["set", "port", "vlan20", 'external_ids:description="core1 in servers"']]
    assert ip == [["addr", "del", "172.31.20.9/24", "dev", "vlan20"], ["addr", "replace", "172.31.20.250/24", "dev", "vlan20"]]
    assert bridge.kernel["vlan20"]["addresses"] == ["172.31.20.77/24", "172.31.20.250/24"]


def test_an_svi_that_is_down_is_brought_up():
    bridge = switch().svi(20, "172.31.20.250/24", up=False, description="core1 in servers")
    assert converge(bridge, model(SERVERS), "merged") == ([], [["link", "set", "dev", "vlan20", "up"]])


def test_merged_keeps_a_description_the_model_does_not_give_and_replaced_removes_it():
    bare = replace(SERVERS, description="")
    assert converge(switch().svi(20, "172.31.20.250/24", description="by hand"), model(bare), "merged") == ([], [])
    ops, _ = converge(switch().svi(20, "172.31.20.250/24", description="by hand"), model(bare), "replaced")
    assert ops == [["remove", "port", "vlan20", "external_ids", "description"]]


def test_an_svi_port_moved_to_another_vlan_is_put_back():
    bridge = switch().svi(20, "172.31.20.250/24", description="core1 in servers")
    bridge.ports["vlan20"]["tag"] = 30  # someone moved it: it now reads as a plain port of VLAN 30
    assert bridge.parse().svis == ()
    ops, ip = converge(bridge, model(SERVERS), "merged")
    assert ops == [["set", "port", "vlan20", "tag=20"], ["set", "interface", "vlan20", "type=internal"]]
    assert ip == []  # the interface kept its address and link while it was in the wrong VLAN


def test_merged_does_not_turn_a_trunk_named_like_an_svi_into_one():
    bridge = switch()
    bridge.ports["vlan20"] = {**bridge._row(["vlan20"]), "trunks": [20, 30], "vlan_mode": "trunk"}
    with pytest.raises(sw.SwitchError) as info:
        sw.ovs_operations(bridge.parse(), model(SERVERS), "merged")
    assert info.value.path == "svis.vlan20" and "merged does not take VLANs off a trunk" in info.value.message
    ops, _ = converge(bridge, model(SERVERS), "replaced")
    assert ops[-1] == ["set", "interface", "vlan20", "type=internal"]


def test_overridden_removes_the_svis_the_model_does_not_name_only_when_it_names_one():
    bridge = switch().svi(20, "172.31.20.250/24", description="core1 in servers").svi(10, "172.31.10.21/24", description="management")
    # a model without SVIs does not manage them: the management SVI stays
    assert sw.ovs_operations(bridge.parse(), model(), "overridden") == []
    ops, ip = converge(bridge, model(SERVERS), "overridden")
    assert ["del-port", "br0", "vlan10"] in ops and ip == []
    assert "vlan10" not in bridge.kernel and "vlan10" not in bridge.ports


def test_deleted_removes_the_models_svis_and_their_addresses_go_with_them():
    bridge = switch().svi(20, "172.31.20.250/24").svi(10, "172.31.10.21/24")
    ops, ip = converge(bridge, model(SERVERS), "deleted")
    assert ops == [["set", "port", "ep1", "tag=1"], ["del-port", "br0", "vlan20"]] and ip == []
    assert "vlan20" not in bridge.kernel and bridge.kernel["vlan10"]["addresses"] == ["172.31.10.21/24"]


# --- the rollback ------------------------------------------------------------------------------------


def state_of(bridge: Bridge) -> tuple:
    ports = {n: {**copy.deepcopy(r), "interfaces": sorted(r["interfaces"])} for n, r in bridge.ports.items()}
    return ports, dict(bridge.types), copy.deepcopy(bridge.kernel)


@pytest.mark.parametrize(("start", "after", "state"), [
    (lambda: switch(), model(SERVERS), "merged"),                                                         # SVI created
    (lambda: switch().svi(20, "172.31.20.9/24", up=False), model(SERVERS), "replaced"),                  # address and link changed
    (lambda: switch().svi(20, "172.31.20.250/24").svi(10, "172.31.10.21/24", description="m"), model(SERVERS), "overridden"),
    (lambda: switch().svi(20, "172.31.20.250/24", description="x"), model(SERVERS), "deleted"),          # SVI removed
    (lambda: switch().svi(20, "172.31.20.250/24", up=False, description="core1 in servers"), model(SERVERS), "merged"),  # only up
])
def test_the_rollback_puts_ports_and_addresses_back(start, after, state):
    bridge = start()
    before = state_of(bridge)
    tables, kernel = bridge.tables(), copy.deepcopy(bridge.kernel)
    parsed = bridge.parse()
    ops = sw.ovs_operations(parsed, after, state)
    ip = sw.ovs_address_operations(parsed, after, state, kernel)
    restore = sw.ovs_restore_operations(*tables, ops)
    restore_ip = sw.ovs_restore_address_operations(tables[1], kernel, ops, ip)
    bridge.apply(ops).ip(ip)
    assert state_of(bridge) != before, "the change must change something"
    bridge.apply(restore).ip(restore_ip)
    assert state_of(bridge) == before


def test_the_rollback_leaves_the_addresses_of_svis_the_change_did_not_touch():
    bridge = switch().svi(20, "172.31.20.250/24", description="core1 in servers").svi(10, "172.31.10.21/24")
    tables, kernel = bridge.tables(), copy.deepcopy(bridge.kernel)
    ops = sw.ovs_operations(bridge.parse(), model(SERVERS, access={"ep1": 30}), "merged")
    assert ops and sw.ovs_restore_address_operations(tables[1], kernel, ops, []) == []


def test_rendered_svis_carry_their_addresses():
    cfg = model(SERVERS)
    assert sw.ovs_svi_addresses(cfg) == [("vlan20", "172.31.20.250/24")]
    assert ["--may-exist", "add-port", "br0", "vlan20", "--", "set", "interface", "vlan20", "type=internal",
            "--", "set", "port", "vlan20", "tag=20"] in sw.render_linux_ovs(cfg)
