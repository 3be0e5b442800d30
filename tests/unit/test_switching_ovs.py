"""The Open vSwitch side of the switch layer: an OVS bridge's OVSDB tables parse into the IR the way
ovs-vswitchd reads them, and ``ovs_operations`` takes the bridge to what each state asks, trunk-safe
(merged never shrinks a trunk) and idempotent. "Applied" here is a small pure-Python ovs-vsctl (the
``Bridge`` below): it re-emits the JSON that ``ovs-vsctl --format=json list`` prints, which is parsed
again, so every test of the operations also proves they reach the target and a second run is []."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_switching import lab, small  # the lab's core switches and the small model with a LAG

from ansible_collections.twinsite.dc.plugins.module_utils import _switching as sw

# --- OVSDB JSON, as ovs-vsctl --format=json prints it ------------------------------------------------


_NAMES: dict[str, str] = {}  # uuid -> interface name, of every interface a row was built with


def _uuid(name: str) -> str:
    """A stable uuid per interface name (OVSDB's are random; stable ones make failures readable)."""
    value = str(uuid.uuid5(uuid.NAMESPACE_DNS, name))
    _NAMES[value] = name
    return value


def ovs_set(values) -> object:
    """A set column: a one-element set is printed bare, any other as ["set", [...]]."""
    values = list(values)
    return values[0] if len(values) == 1 else ["set", values]


def port_row(name, interfaces=None, tag=None, trunks=(), vlan_mode=None, lacp=None, description=None, external_ids=None) -> list:
    ids = dict(external_ids or {})
    if description is not None:
        ids["description"] = description
    return [
        name,
        ovs_set([] if tag is None else [tag]),
        ovs_set(trunks),
        ovs_set([] if vlan_mode is None else [vlan_mode]),
        ovs_set([["uuid", _uuid(i)] for i in (interfaces or [name])]),
        ovs_set([] if lacp is None else [lacp]),
        ["map", sorted([k, v] for k, v in ids.items())],
    ]


def ports_doc(*rows) -> dict:
    return {"headings": list(sw.OVS_PORT_COLUMNS), "data": [list(r) for r in rows]}


def interfaces_doc(names, types=None) -> dict:
    # ovs-vsctl lists the columns in the order --columns gave them; name first here on purpose.
    if types is None:
        return {"headings": ["name", "_uuid"], "data": [[n, ["uuid", _uuid(n)]] for n in names]}
    return {"headings": ["name", "_uuid", "type"], "data": [[n, ["uuid", _uuid(n)], types.get(n, "")] for n in names]}


def parse(rows, switch="core1", bridge="br0") -> sw.SwitchConfig:
    """Parse port rows, with an interface table of exactly their interfaces."""
    names = [_NAMES[ref[1]] for row in rows for ref in (row[4][1] if row[4][0] == "set" else [row[4]])]
    return sw.parse_linux_ovs(ports_doc(*rows), interfaces_doc(names), switch, bridge)


# --- a tiny ovs-vsctl ---------------------------------------------------------------------------------


class Bridge:
    """The port table of one bridge, and the ovs-vsctl commands the operations use. Strict like
    ovs-vsctl: a command on a port that does not exist, or an interface that is already in a port,
    fails (AssertionError), so the tests catch operations ovs-vsctl would reject.

    The kernel's side of the internal ports (``kernel``: {name: {"up", "addresses"}}, as
    ``ovs_kernel_view`` reads it) follows the OVSDB side: an interface set to ``type=internal`` gets a
    link (down, no address), a port deleted takes its link away; ``ip()`` runs the ``ip`` commands,
    as strictly (an address added twice or deleted when absent fails)."""

    def __init__(self, name="br0", ports=None):
        self.name = name
        self.ports: dict[str, dict] = {name: self._row([name])}
        self.types: dict[str, str] = {name: "internal"}
        self.kernel: dict[str, dict] = {name: {"up": False, "addresses": []}}
        for port, row in (ports or {}).items():
            self.ports[port] = {**self._row([port]), **row}

    def svi(self, vlan: int, address: str | None = None, up: bool = True, description: str | None = None) -> Bridge:
        """Add an SVI as a switch would have it: internal port vlan<N> in access VLAN N, its address."""
        name = f"vlan{vlan}"
        self.ports[name] = {**self._row([name]), "tag": vlan, "vlan_mode": "access",
                            "external_ids": {"description": description} if description else {}}
        self.types[name] = "internal"
        self.kernel[name] = {"up": up, "addresses": [address] if address else []}
        return self

    def _set_port(self, port: str, settings, op) -> None:
        row = self.ports[port]
        for setting in settings:
            column, _, value = setting.partition("=")
            if column.startswith("external_ids:"):
                row["external_ids"][column.split(":", 1)[1]] = json.loads(value)
            elif column == "tag":
                row["tag"] = int(value)
            elif column == "trunks":
                row["trunks"] = [int(v) for v in value.split(",")]
            else:
                assert column in ("vlan_mode", "lacp"), op
                row[column] = value

    def ip(self, operations) -> Bridge:
        for op in operations:
            args = [a for a in op if a != "-4"]
            if args[:3] == ["link", "set", "dev"]:
                assert args[3] in self.kernel and args[4] in ("up", "down"), op
                self.kernel[args[3]]["up"] = args[4] == "up"
                continue
            assert args[0] == "addr" and args[-2] == "dev" and args[-1] in self.kernel, op
            addresses = self.kernel[args[-1]]["addresses"]
            if args[1] == "flush":
                addresses.clear()
            elif args[1] == "add":
                assert args[2] not in addresses, op
                addresses.append(args[2])
            elif args[1] == "replace":
                if args[2] not in addresses:
                    addresses.append(args[2])
            else:
                assert args[1] == "del" and args[2] in addresses, op
                addresses.remove(args[2])
        return self

    @staticmethod
    def _row(interfaces) -> dict:
        return {"interfaces": list(interfaces), "tag": None, "trunks": [], "vlan_mode": None, "lacp": None, "external_ids": {}}

    def _owner(self, iface):
        return next((p for p, row in self.ports.items() if iface in row["interfaces"]), None)

    def apply(self, operations) -> Bridge:
        for op in operations:
            op = list(op)
            flags = set()
            while op[0].startswith("--"):
                flags.add(op.pop(0))
            cmd, args = op[0], op[1:]
            if cmd in ("add-port", "add-bond"):
                bridge, port = args[0], args[1]
                columns = [a for a in args[2:] if "=" in a]
                ifaces = [a for a in args[2:] if "=" not in a] or [port]
                assert bridge == self.name
                assert cmd == "add-port" or len(ifaces) >= 2, op
                if port in self.ports:
                    assert "--may-exist" in flags and self.ports[port]["interfaces"] == ifaces, op
                    continue
                assert all(self._owner(i) is None for i in ifaces), op
                self.ports[port] = self._row(ifaces)
                self._set_port(port, columns, op)
            elif cmd == "del-port":
                assert args[0] == self.name
                assert args[1] in self.ports or "--if-exists" in flags, op
                for iface in self.ports.pop(args[1], {"interfaces": []})["interfaces"]:
                    self.types.pop(iface, None)
                    self.kernel.pop(iface, None)
            elif cmd == "set" and args[0] == "interface":
                assert self._owner(args[1]) is not None and args[2:] == ["type=internal"], op
                self.types[args[1]] = "internal"
                self.kernel.setdefault(args[1], {"up": False, "addresses": []})
            elif cmd == "add-bond-iface":
                assert self._owner(args[1]) is None, op
                self.ports[args[0]]["interfaces"].append(args[1])
            elif cmd == "del-bond-iface":
                ifaces = self.ports[args[0]]["interfaces"]
                assert args[1] in ifaces and len(ifaces) > 1, op
                ifaces.remove(args[1])
            elif cmd == "set":
                assert args[0] == "port" and args[1] in self.ports, op
                self._set_port(args[1], args[2:], op)
            elif cmd == "clear":
                assert args[0] == "port" and args[1] in self.ports and args[2:], op
                for column in args[2:]:
                    assert column in ("tag", "trunks", "vlan_mode", "lacp", "external_ids"), op
                    self.ports[args[1]][column] = {"trunks": [], "external_ids": {}}.get(column)
            elif cmd == "remove":
                assert args[:1] == ["port"] and args[2] == "external_ids", op
                self.ports[args[1]]["external_ids"].pop(args[3], None)
            else:
                raise AssertionError(f"unexpected operation {op}")
        return self

    def tables(self) -> tuple[dict, dict]:
        """The two JSON documents the module reads, rows in reverse order (OVSDB's order is arbitrary)."""
        rows = [port_row(p, r["interfaces"], r["tag"], r["trunks"], r["vlan_mode"], r["lacp"], external_ids=r["external_ids"])
                for p, r in reversed(self.ports.items())]
        return ports_doc(*rows), interfaces_doc([i for r in self.ports.values() for i in r["interfaces"]], self.types)

    def parse(self, switch="core1") -> sw.SwitchConfig:
        return sw.parse_linux_ovs(*self.tables(), switch, self.name, kernel=self.kernel)


def fresh(*names, bridge="br0") -> Bridge:
    """A bridge whose ports were just plugged in (``add-port``): OVS's default, trunks of every VLAN."""
    return Bridge(bridge, {n: {} for n in names})


def factory(*names) -> Bridge:
    """A bridge whose ports are at our factory default: access VLAN 1."""
    return Bridge("br0", {n: {"tag": 1, "vlan_mode": "access"} for n in names})


def ovs_names(cfg: sw.SwitchConfig) -> sw.SwitchConfig:
    """``cfg`` as the bridge can say it: OVS has no VLAN names, so they read as IOS's ``VLAN0020``."""
    return replace(cfg, vlans=tuple(sw.Vlan(v.id, f"VLAN{v.id:04d}") for v in cfg.vlans))


def converge(bridge: Bridge, after: sw.SwitchConfig, state: str) -> list[list[str]]:
    """Apply the operations of ``state`` and check a second run has nothing to do."""
    ops = sw.ovs_operations(bridge.parse(after.switch), after, state, bridge.name)
    bridge.apply(ops)
    assert sw.ovs_operations(bridge.parse(after.switch), after, state, bridge.name) == []
    return ops


def config(access=(), trunks=(), lags=(), switch="core1") -> sw.SwitchConfig:
    """A hand-built SwitchConfig (vlans: as the bridge reads them): access {port: vlan}, trunks {port: [ids]}."""
    access = [sw.AccessPort(p, v, "") for p, v in dict(access).items()]
    trunks = [sw.Trunk(p, tuple(sorted(set(a))), None, "") for p, a in dict(trunks).items()]
    used = {p.vlan for p in access} | {v for t in trunks for v in t.allowed} | {v for g in lags for v in g.allowed}
    return sw._sorted_config(switch, [sw.Vlan(v, f"VLAN{v:04d}") for v in used], access, trunks, list(lags))


# --- parse ------------------------------------------------------------------------------------------

LIVE_PORTS = ports_doc(
    port_row("br0"),
    port_row("ep1", tag=20, description="esx01 vmnic0"),                                      # implicit access
    port_row("ep2", tag=30, vlan_mode="access"),
    port_row("ep10"),                                                                          # just plugged in
    port_row("peer1", trunks=[10, 20, 30], vlan_mode="trunk", description='peer "link" \\ core2'),
    port_row("ep3", trunks=[40]),                                                              # bare int trunks
    port_row("up1", tag=10, trunks=[10, 20], vlan_mode="native-untagged"),
    port_row("bond1", ["eth10", "eth9"], trunks=[10, 30], vlan_mode="trunk", lacp="active", description="to core2",
             external_ids={"owner": "ansible"}),
    port_row("ep4", vlan_mode="access"),                                                       # access without a tag
)
LIVE_INTERFACES = interfaces_doc(["br0", "ep1", "ep2", "ep10", "peer1", "ep3", "up1", "eth9", "eth10", "ep4"])


def test_parse_live_bridge():
    cfg = sw.parse_linux_ovs(LIVE_PORTS, LIVE_INTERFACES, "core1")
    assert cfg.switch == "core1"
    assert cfg.access == (sw.AccessPort("ep1", 20, "esx01 vmnic0"), sw.AccessPort("ep2", 30, ""), sw.AccessPort("ep4", 0, ""))
    assert cfg.trunks == (
        sw.Trunk("ep3", (40,), None, ""),
        sw.Trunk("ep10", sw.ALL_VLANS, None, ""),
        sw.Trunk("peer1", (10, 20, 30), None, 'peer "link" \\ core2'),
        sw.Trunk("up1", (10, 20), 10, ""),
    )
    assert cfg.lags == (sw.Lag("bond1", 1, ("eth9", "eth10"), "lacp", (10, 30), "to core2"),)
    # VLAN 0 (no VLAN) and the every-VLAN list of ep10 are not VLANs of the switch.
    assert cfg.vlans == tuple(sw.Vlan(v, f"VLAN{v:04d}") for v in (10, 20, 30, 40))


def test_parse_follows_ovs_reading_of_the_columns():
    cfg = parse([
        port_row("a", tag=20, trunks=[10, 20]),                       # a tag without vlan_mode: access, trunks ignored (bridge.c)
        port_row("b", tag=20, trunks=[10], vlan_mode="trunk"),        # trunk mode ignores the tag
        port_row("c", tag=10, vlan_mode="native-tagged"),             # native without trunks: every VLAN
        port_row("d", ["d1", "d2"], lacp="passive"),                  # bond without trunks: every VLAN, passive is lacp
        port_row("e", ["e1", "e2"], tag=20, lacp="off"),              # access bond: a LAG carrying nothing
    ])
    assert cfg.access == (sw.AccessPort("a", 20, ""),)
    assert cfg.trunks == (sw.Trunk("b", (10,), None, ""), sw.Trunk("c", sw.ALL_VLANS, 10, ""))
    assert cfg.lags == (sw.Lag("d", 1, ("d1", "d2"), "lacp", sw.ALL_VLANS, ""), sw.Lag("e", 2, ("e1", "e2"), "static", (), ""))


def test_parse_bond_numbers_digits_else_natural_position():
    cfg = parse([port_row("uplink", ["p1", "p2"]), port_row("bond7", ["a", "b"]), port_row("backup", ["c", "d"])])
    assert [(g.name, g.number) for g in cfg.lags] == [("backup", 1), ("uplink", 3), ("bond7", 7)]


def _parse_error(ports, interfaces=None) -> sw.SwitchError:
    with pytest.raises(sw.SwitchError) as info:
        sw.parse_linux_ovs(ports, LIVE_INTERFACES if interfaces is None else interfaces, "core1")
    assert str(info.value) == f"{info.value.path}: {info.value.message}"
    return info.value


def test_parse_error_missing_heading():
    doc = {"headings": ["name", "tag"], "data": [["ep1", 20]]}
    err = _parse_error(doc)
    assert err.path == "ovs.port.headings"
    assert "no column trunks, vlan_mode, interfaces, lacp, external_ids" in err.message
    assert "--columns=name,tag,trunks,vlan_mode,interfaces,lacp,external_ids" in err.message
    assert _parse_error(LIVE_PORTS, {"headings": ["name"], "data": []}).path == "ovs.interface.headings"


def test_parse_error_unknown_uuid():
    doc = ports_doc(port_row("br0"), port_row("ghost"))
    err = _parse_error(doc)
    assert err.path == "ovs.port[1].interfaces"
    assert f"interface {_uuid('ghost')} of port 'ghost' is not in the interface table" in err.message


@pytest.mark.parametrize(("column", "value", "expected"), [
    ("tag", "20", "expected a VLAN id (0-4094) or an empty set, found '20'"),
    ("tag", True, "expected a VLAN id (0-4094) or an empty set, found True"),
    ("tag", 4095, "expected a VLAN id (0-4094) or an empty set, found 4095"),
    ("tag", ["set", [10, 20]], "expected a VLAN id (0-4094) or an empty set, found ['set', [10, 20]]"),
    ("trunks", ["set", [10, "x"]], "expected VLAN ids (1-4094), found 'x' in ['set', [10, 'x']]"),
    ("vlan_mode", "dot1q-tunnel", "expected one of access, trunk, native-tagged, native-untagged or an empty set, found 'dot1q-tunnel'"),
    ("lacp", "on", "expected one of active, passive, off or an empty set, found 'on'"),
    ("external_ids", {"description": "x"}, "expected a map [\"map\", [[key, value], ...]], found {'description': 'x'}"),
    ("interfaces", "ep2", "expected a reference [\"uuid\", \"...\"], found 'ep2'"),
])
def test_parse_error_names_the_column(column, value, expected):
    rows = [list(r) for r in LIVE_PORTS["data"]]
    rows[3][sw.OVS_PORT_COLUMNS.index(column)] = value
    err = _parse_error(ports_doc(*rows))
    assert (err.path, err.message) == (f"ovs.port[3].{column}", expected)


def test_parse_error_not_a_table_and_short_row():
    assert _parse_error([]).message.startswith("expected the output of ovs-vsctl --format=json list port")
    doc = ports_doc(port_row("br0"), ["ep1", 20])
    assert _parse_error(doc).path == "ovs.port[1]"


# --- operations: each state -------------------------------------------------------------------------


def live() -> Bridge:
    """core1 as found: ep1 in the wrong VLAN, ep2 still VLAN 1, peer1 short of VLAN 30 and with an
    extra VLAN 99, ep9 not in the model."""
    return Bridge("br0", {
        "ep1": {"tag": 30, "vlan_mode": "access"},
        "ep2": {"tag": 1, "vlan_mode": "access"},
        "ep3": {"tag": 30, "vlan_mode": "access", "external_ids": {"description": "zero-client uplink"}},
        "peer1": {"trunks": [10, 20, 40, 50, 60, 99], "vlan_mode": "trunk", "external_ids": {"description": "old"}},
        "ep9": {"trunks": [10, 20], "vlan_mode": "trunk", "external_ids": {"description": "lab laptop"}},
    })


def test_merged_operations():
    bridge = live()
    assert converge(bridge, lab("core1"), "merged") == [
        ["set", "port", "ep1", "tag=20", 'external_ids:description="esx01 vmnic0"'],
        ["set", "port", "ep2", "tag=20", 'external_ids:description="esx02 vmnic0"'],
        ["set", "port", "peer1", "trunks=10,20,30,40,50,60,70,99", 'external_ids:description="peer link to core2"'],
    ]
    cfg = bridge.parse()
    assert {t.name: t.allowed for t in cfg.trunks} == {"peer1": (10, 20, 30, 40, 50, 60, 70, 99), "ep9": (10, 20)}  # ep9 untouched


def test_replaced_operations():
    bridge = live()
    lab1 = lab("core1")
    after = replace(lab1, trunks=(replace(lab1.trunks[0], description=""),))
    assert converge(bridge, after, "replaced") == [
        ["set", "port", "ep1", "tag=20", 'external_ids:description="esx01 vmnic0"'],
        ["set", "port", "ep2", "tag=20", 'external_ids:description="esx02 vmnic0"'],
        ["set", "port", "peer1", "trunks=10,20,30,40,50,60,70"],
        ["remove", "port", "peer1", "external_ids", "description"],
    ]
    assert bridge.ports["ep9"]["trunks"] == [10, 20]  # not named: not touched


def test_overridden_resets_unnamed_ports_to_vlan1_access():
    bridge = live()
    ops = converge(bridge, lab("core1"), "overridden")
    assert ops[-3:] == [
        ["set", "port", "ep9", "tag=1", "vlan_mode=access"],
        ["clear", "port", "ep9", "trunks"],
        ["remove", "port", "ep9", "external_ids", "description"],
    ]
    assert bridge.parse() == with_spare(ovs_names(lab("core1")), "ep9")


def test_overridden_resets_a_just_plugged_port_not_to_ovs_default():
    bridge = fresh("ep1", "ep2", "ep3", "peer1", "ep7")
    ops = converge(bridge, lab("core1"), "overridden")
    assert ["set", "port", "ep7", "tag=1", "vlan_mode=access"] in ops
    # No tag, no vlan_mode is already a trunk to OVS: only the list and the description change.
    assert ["set", "port", "peer1", "trunks=10,20,30,40,50,60,70", 'external_ids:description="peer link to core2"'] in ops


def test_deleted_operations():
    bridge = live()
    ops = converge(bridge, lab("core1"), "deleted")
    assert ops == [
        ["set", "port", "ep1", "tag=1"],
        ["set", "port", "ep3", "tag=1"],
        ["remove", "port", "ep3", "external_ids", "description"],
        ["set", "port", "peer1", "tag=1", "vlan_mode=access"],
        ["clear", "port", "peer1", "trunks"],
        ["remove", "port", "peer1", "external_ids", "description"],
    ]
    assert bridge.ports["ep9"]["trunks"] == [10, 20]  # not the model's: not touched


def test_deleted_skips_model_ports_not_on_the_bridge():
    assert sw.ovs_operations(factory("ep1").parse(), lab("core1"), "deleted") == []


def test_invalid_state():
    with pytest.raises(ValueError, match="merged, replaced, overridden, deleted"):
        sw.ovs_operations(config(), config(), "gathered")


# --- idempotence and round trip -----------------------------------------------------------------------


def with_spare(cfg: sw.SwitchConfig, spare: str = "ep99") -> sw.SwitchConfig:
    """``cfg`` as parsed from a bridge that also has ``spare`` at the factory default (access VLAN 1)."""
    return sw._sorted_config(cfg.switch, (*cfg.vlans, sw.Vlan(1, "VLAN0001")), (*cfg.access, sw.AccessPort(spare, 1, "")), cfg.trunks, cfg.lags)


@pytest.mark.parametrize("state", ["merged", "replaced", "overridden"])
@pytest.mark.parametrize("name", ["core1", "core2", "small"])
def test_round_trip_compile_apply_parse(state, name):
    """From a bridge at the factory default (every port, bond members included, access VLAN 1),
    each state reaches the model; parsing the bridge gives back the compiled IR (VLAN names aside)
    and no state but deleted has anything left to do."""
    after = small() if name == "small" else lab(name)
    plugged = [p.name for p in (*after.access, *after.trunks)] + [m for g in after.lags for m in g.members]
    bridge = factory(*plugged, "ep99")
    converge(bridge, after, state)
    parsed = bridge.parse(after.switch)
    assert parsed == with_spare(ovs_names(after))
    for again in ("merged", "replaced", "overridden"):
        assert sw.ovs_operations(parsed, after, again) == []


def test_merged_leaves_a_just_plugged_port_carrying_every_vlan():
    """``add-port`` makes a trunk of every VLAN (OVS's default): merged never shrinks a trunk, so it
    stays so; replaced cuts it down to the model's list."""
    bridge = fresh("peer1")
    model = replace(config(trunks={"peer1": [10, 20]}), trunks=(sw.Trunk("peer1", (10, 20), None, "peer link"),))
    assert converge(bridge, model, "merged") == [["set", "port", "peer1", 'external_ids:description="peer link"']]
    assert bridge.parse().trunks[0].allowed == sw.ALL_VLANS
    assert converge(bridge, config(trunks={"peer1": [10]}), "replaced") == [
        ["set", "port", "peer1", "trunks=10"], ["remove", "port", "peer1", "external_ids", "description"],
    ]


@pytest.mark.parametrize("state", ["merged", "replaced", "overridden"])
def test_idempotent_when_before_equals_after(state):
    for cfg in (lab("core1"), lab("core2"), small()):
        assert sw.ovs_operations(cfg, cfg, state) == []


def test_deleted_twice_is_no_change():
    bridge = Bridge("br0", {"ep1": {"tag": 20}, "po1x": {}})
    converge(bridge, lab("core1"), "deleted")
    assert bridge.parse().access == (sw.AccessPort("ep1", 1, ""),)
    assert bridge.parse().trunks == (sw.Trunk("po1x", sw.ALL_VLANS, None, ""),)  # not the model's: left as it is


# --- merged is trunk-safe ---------------------------------------------------------------------------

VLAN_IDS = st.integers(min_value=1, max_value=4094)


@settings(max_examples=150, deadline=None)
@given(before=st.one_of(st.just(None), st.lists(VLAN_IDS, min_size=1, max_size=12)),
       after=st.lists(VLAN_IDS, min_size=1, max_size=12), native=st.one_of(st.none(), VLAN_IDS))
def test_merged_never_shrinks_a_trunk(before, after, native):
    """Whatever the trunk carries (None: no trunks column, every VLAN) and whatever the model
    lists, merged leaves it carrying both: the union, never a VLAN less, never a cleared list."""
    bridge = Bridge("br0", {"peer1": {"trunks": [] if before is None else before, "vlan_mode": "trunk"}})
    target = replace(config(trunks={"peer1": after}), trunks=(sw.Trunk("peer1", tuple(sorted(set(after))), native, ""),))
    ops = converge(bridge, target, "merged")
    assert ["clear", "port", "peer1", "trunks"] not in ops
    carried = bridge.parse().trunks[0].allowed
    assert carried == (sw.ALL_VLANS if before is None else tuple(sorted(set(before) | set(after))))
    if before is None:
        assert not [op for op in ops if any(a.startswith("trunks=") for a in op)]


@settings(max_examples=100, deadline=None)
@given(before=st.lists(VLAN_IDS, min_size=1, max_size=12), after=st.lists(VLAN_IDS, min_size=1, max_size=12),
       state=st.sampled_from(["replaced", "overridden"]))
def test_replaced_makes_the_list_exact(before, after, state):
    bridge = Bridge("br0", {"peer1": {"trunks": before, "vlan_mode": "trunk"}})
    converge(bridge, config(trunks={"peer1": after}), state)
    assert bridge.parse().trunks[0].allowed == tuple(sorted(set(after)))


def test_merged_keeps_native_and_description_the_model_does_not_give():
    bridge = Bridge("br0", {"up1": {"tag": 10, "trunks": [10, 20], "vlan_mode": "native-untagged",
                                    "external_ids": {"description": "uplink"}}})
    assert converge(bridge, config(trunks={"up1": [30]}), "merged") == [["set", "port", "up1", "trunks=10,20,30"]]
    assert bridge.parse().trunks == (sw.Trunk("up1", (10, 20, 30), 10, "uplink"),)
    assert converge(bridge, config(trunks={"up1": [30]}), "replaced") == [
        ["set", "port", "up1", "trunks=30", "vlan_mode=trunk"],
        ["clear", "port", "up1", "tag"],
        ["remove", "port", "up1", "external_ids", "description"],
    ]


def test_access_port_becomes_trunk_and_back():
    bridge = factory("ep1")
    assert converge(bridge, config(trunks={"ep1": [10, 20]}), "merged") == [
        ["set", "port", "ep1", "trunks=10,20", "vlan_mode=trunk"], ["clear", "port", "ep1", "tag"],
    ]
    assert converge(bridge, config(access={"ep1": 20}), "merged") == [
        ["set", "port", "ep1", "tag=20", "vlan_mode=access"], ["clear", "port", "ep1", "trunks"],
    ]


def test_native_vlan_is_native_untagged():
    target = replace(config(trunks={"up1": [10, 20]}), trunks=(sw.Trunk("up1", (10, 20), 10, ""),))
    assert converge(factory("up1"), target, "replaced") == [
        ["set", "port", "up1", "tag=10", "trunks=10,20", "vlan_mode=native-untagged"],
    ]


# --- bonds --------------------------------------------------------------------------------------------


def test_bond_created_from_plain_ports():
    bridge = factory("GigabitEthernet0/1", "GigabitEthernet0/2", "GigabitEthernet0/3", "GigabitEthernet0/4")
    ops = converge(bridge, small(), "replaced")
    assert ops[:4] == [
        ["--if-exists", "del-port", "br0", "GigabitEthernet0/3"],
        ["--if-exists", "del-port", "br0", "GigabitEthernet0/4"],
        ["--may-exist", "add-bond", "br0", "po1", "GigabitEthernet0/3", "GigabitEthernet0/4"],
        ["set", "port", "po1", "lacp=active", "trunks=10,30", "vlan_mode=trunk", 'external_ids:description="to core"'],
    ]
    assert bridge.ports["po1"]["interfaces"] == ["GigabitEthernet0/3", "GigabitEthernet0/4"]
    assert "GigabitEthernet0/3" not in bridge.ports


def test_bond_created_from_new_interfaces():
    lag = sw.Lag("bond0", 0, ("eth1", "eth2"), "static", (10,), "")
    assert converge(Bridge(), config(lags=[lag]), "merged") == [
        ["--may-exist", "add-bond", "br0", "bond0", "eth1", "eth2"],
        ["set", "port", "bond0", "lacp=off", "trunks=10", "vlan_mode=trunk"],
    ]


def test_bond_removed_by_overridden_and_deleted():
    lag = sw.Lag("bond0", 0, ("eth1", "eth2"), "lacp", (10, 20), "x")
    for state, after in (("overridden", config(access={"eth2": 20})), ("deleted", config(lags=[lag]))):
        bridge = Bridge()
        converge(bridge, config(lags=[lag]), "merged")
        ops = converge(bridge, after, state)
        assert ops[:3] == [["del-port", "br0", "bond0"], ["add-port", "br0", "eth1"], ["set", "port", "eth1", "tag=1", "vlan_mode=access"]]
        assert ops[3:] == [["add-port", "br0", "eth2"], ["set", "port", "eth2", "tag=20" if state == "overridden" else "tag=1", "vlan_mode=access"]]
        assert bridge.parse().lags == ()


def test_bond_members_grow_in_merged_and_are_exact_in_replaced():
    two = sw.Lag("bond0", 0, ("eth1", "eth2"), "lacp", (10,), "")
    bridge = Bridge("br0", {"eth3": {"tag": 5, "vlan_mode": "access"}})
    converge(bridge, config(lags=[replace(two, members=("eth1", "eth2", "eth9"))]), "merged")
    assert converge(bridge, config(lags=[replace(two, members=("eth1", "eth2", "eth3"))]), "merged") == [
        ["--if-exists", "del-port", "br0", "eth3"], ["--may-exist", "add-bond-iface", "bond0", "eth3"],
    ]
    assert bridge.parse().lags[0].members == ("eth1", "eth2", "eth3", "eth9")
    assert converge(bridge, config(lags=[two]), "replaced") == [
        ["del-bond-iface", "bond0", "eth3"], ["add-port", "br0", "eth3"], ["set", "port", "eth3", "tag=1", "vlan_mode=access"],
        ["del-bond-iface", "bond0", "eth9"], ["add-port", "br0", "eth9"], ["set", "port", "eth9", "tag=1", "vlan_mode=access"],
    ]


def test_bond_lacp_mode_change():
    lag = sw.Lag("bond0", 0, ("eth1", "eth2"), "lacp", (10,), "")
    bridge = Bridge()
    converge(bridge, config(lags=[lag]), "merged")
    assert converge(bridge, config(lags=[replace(lag, mode="static")]), "merged") == [["set", "port", "bond0", "lacp=off"]]


# --- errors ---------------------------------------------------------------------------------------------


def _ops_error(before, after, state="merged") -> sw.SwitchError:
    with pytest.raises(sw.SwitchError) as info:
        sw.ovs_operations(before, after, state)
    return info.value


def test_model_port_not_on_the_bridge():
    err = _ops_error(factory("ep1").parse(), config(access={"ep1": 20, "ep5": 20}))
    assert str(err) == "ports.ep5: ep5 is not a port of bridge br0 on core1: plug it in (ovs-vsctl add-port) or fix the model"


def test_model_port_inside_a_bond():
    before = config(lags=[sw.Lag("bond0", 0, ("eth1", "eth2"), "lacp", (10,), "")])
    err = _ops_error(before, config(access={"eth1": 20}), "replaced")
    assert err.path == "ports.eth1"
    assert "eth1 is a member of bond bond0 on bridge br0 on core1" in err.message
    # overridden removes the bond (the model has none), so the interface comes back as the port.
    bridge = Bridge()
    bridge.apply([["add-bond", "br0", "bond0", "eth1", "eth2"]])
    converge(bridge, config(access={"eth1": 20}), "overridden")
    assert bridge.parse().access == (sw.AccessPort("eth1", 20, ""), sw.AccessPort("eth2", 1, ""))


def test_lag_errors():
    one = sw.Lag("bond0", 0, ("eth1",), "lacp", (10,), "")
    assert _ops_error(config(), config(lags=[one])).path == "lags.bond0.members"
    assert _ops_error(config(), config(lags=[replace(one, members=("a", "b"), allowed=())])).path == "lags.bond0.allowed"
    assert "is a plain port on bridge br0" in _ops_error(config(access={"bond0": 1}), config(lags=[replace(one, members=("a", "b"))])).message
    other = sw.Lag("bond1", 1, ("eth1", "eth3"), "lacp", (10,), "")
    err = _ops_error(config(lags=[other]), config(lags=[replace(one, members=("eth1", "eth2"))]))
    assert (err.path, err.message.split(":")[0]) == ("lags.bond0.members", "eth1 is a member of bond bond1 on bridge br0 on core1")


def test_empty_trunk_refused():
    assert _ops_error(factory("t1").parse(), config(trunks={"t1": []})).path == "ports.t1.allowed"


# --- quoting and the commands text ------------------------------------------------------------------


def test_description_quoting_round_trips():
    text = 'rack "A" \\ row 3, {x=1}; ünï'
    bridge = factory("ep1")
    ops = converge(bridge, replace(config(access={"ep1": 20}), access=(sw.AccessPort("ep1", 20, text),)), "merged")
    assert ops == [["set", "port", "ep1", "tag=20", 'external_ids:description="rack \\"A\\" \\\\ row 3, {x=1}; ünï"']]
    assert bridge.parse().access[0].description == text


def test_ovs_commands_text():
    ops = [["set", "port", "ep1", "tag=20", 'external_ids:description="esx01 vmnic0"'], ["--may-exist", "add-bond", "br0", "b", "x", "y"]]
    assert sw.ovs_commands_text(ops) == [
        """ovs-vsctl set port ep1 tag=20 'external_ids:description="esx01 vmnic0"'""",
        "ovs-vsctl --may-exist add-bond br0 b x y",
    ]
    assert sw.ovs_commands_text([]) == []

