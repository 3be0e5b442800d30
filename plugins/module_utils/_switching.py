"""The layer-2 configuration of the core switches, compiled once from the site model into a
vendor-neutral form, rendered per platform (Cisco IOS, Arista EOS, Open vSwitch), parsed back from a
Cisco IOS or Arista EOS running-config or an Open vSwitch bridge's OVSDB tables, and diffed into the
commands (IOS, EOS) or ``ovs-vsctl`` operations (OVS) of the resource-module states. Pure Python
(no Ansible, no network): a later module wraps it, sends the commands and reports ``before``,
``after`` and ``commands``.

``compile_switch`` resolves the network names of ``dc_switch_ports`` and ``dc_lags`` for one switch
and fails with a ``SwitchError`` naming the model path of the first thing it cannot resolve. What it
returns, a ``SwitchConfig``, is also what ``parse_cisco_ios`` returns, so the live state and the model
compare field by field (all but the MLAG, which compares as ``eos_mlag_settings``: a switch does not
know its twin's name in the model). Everything rendered is deterministic (same model, same bytes).

The diff is trunk-safe: ``merged`` never replaces a trunk's allowed list, it only adds the missing
VLANs (``switchport trunk allowed vlan add``). Overwriting the list is how cisco.ios issue #699 cut
production VLANs off a trunk during a "merge"; ``trunk_change`` is the one place that decides.

Beyond layer 2 proper, the IR holds what a core switch needs of layer 3 and of its twin: its SVIs
(``dc_switch_svis``: the routed VLAN interfaces, e.g. its management address) and, for a switch of a
redundant core pair (``dc_switch_pairs``), the MLAG that makes the two one logical switch. Both are
optional: a model without them compiles to what it always did (``svis=()``, ``mlag=None``). The MLAG
is Arista's: ``parse_arista_eos`` reads it back and ``diff_commands(..., platform="arista_eos")``
diffs it; IOS refuses it and OVS has none.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
from dataclasses import asdict, dataclass, replace

from ansible_collections.twinsite.dc.plugins.module_utils._common import ModelError, model_items, plain

MODES = ("access", "trunk")
LAG_MODES = ("lacp", "static")
STATES = ("merged", "replaced", "overridden", "deleted")
VLAN_MIN, VLAN_MAX = 1, 4094
# VLAN 1 is the default VLAN of every port: a switch cannot delete it, so no state ever tries.
DEFAULT_VLAN = 1
ALL_VLANS = tuple(range(VLAN_MIN, VLAN_MAX + 1))
# The channel-group numbers IOS and EOS accept on the smallest platforms we expect (IOS: 1-48 on
# Catalyst access switches, up to 4096 on some; EOS: 1-2000). The upper bound is the largest.
CHANNEL_MAX = 4096
_IOS_CHANNEL_MODE = {"lacp": "active", "static": "on"}
_OVS_LACP = {"lacp": "active", "static": "off"}


class SwitchError(ModelError):
    """The switch configuration cannot be compiled or rendered: ``path`` is where in the model (or
    in the renderer's arguments) the problem is, ``message`` what is wrong and what to try."""


# --- the intermediate representation ----------------------------------------------------------


@dataclass(frozen=True)
class Vlan:
    id: int
    name: str


@dataclass(frozen=True)
class AccessPort:
    name: str
    vlan: int
    description: str


@dataclass(frozen=True)
class Trunk:
    """``allowed`` is sorted; ``native`` None means the platform's default (VLAN 1, untouched)."""

    name: str
    allowed: tuple[int, ...]
    native: int | None
    description: str


@dataclass(frozen=True)
class Lag:
    """A link aggregation group, always a trunk. ``name`` is the model's name (the OVS bond's name);
    ``number`` is the channel-group number (``Port-channel<number>`` on IOS): a parsed LAG is named
    after its interface, so LAGs are matched between model and device by ``number``."""

    name: str
    number: int
    members: tuple[str, ...]
    mode: str
    allowed: tuple[int, ...]
    description: str
    native: int | None = None


@dataclass(frozen=True)
class Svi:
    """A routed VLAN interface (``interface Vlan<vlan>``): the switch's own address in a network.
    ``address`` is CIDR (``172.31.10.2/24``), its prefix the network's subnet's, so one value says
    what IOS needs two words for (address and mask) and what EOS and ``ip addr`` take as is."""

    vlan: int
    address: str
    description: str = ""


@dataclass(frozen=True)
class Mlag:
    """This switch's half of a redundant core pair (Arista MLAG): ``peer`` is the other switch,
    ``peer_link`` the model's name of the trunk or LAG between them (a LAG renders as its
    port-channel), ``local_address``/``peer_address`` the bare IPs of the two switches' SVIs in the
    pair's peer VLAN (None when the pair names no ``peer_network``). ``pair`` is the pair's name (the
    EOS ``domain-id``), ``path`` its model path, so a renderer that cannot do MLAG says where it is.
    ``shutdown`` is EOS's ``shutdown`` under ``mlag configuration``: a model's MLAG never is.

    Read from a device (``parse_arista_eos``) it holds what the device holds, and nothing it cannot
    know: ``peer`` and ``path`` are "" (no switch knows its twin's name in the model) and
    ``domain_id`` is 0 (EOS's ``domain-id`` is text, kept as written in ``pair``). A parsed MLAG and a
    model's therefore compare with ``eos_mlag_settings`` (the lines EOS holds), never with ``==``."""

    domain_id: int
    peer: str
    peer_link: str
    local_address: str | None
    peer_address: str | None
    pair: str = ""
    path: str = ""
    shutdown: bool = False


@dataclass(frozen=True)
class SwitchConfig:
    """One switch's layer-2 config; every tuple sorted (VLANs by id, interfaces by name, naturally).
    ``svis`` (sorted by VLAN) and ``mlag`` default to none, so a config built without them, or by a
    caller that predates them, is what it always was."""

    switch: str
    vlans: tuple[Vlan, ...]
    access: tuple[AccessPort, ...]
    trunks: tuple[Trunk, ...]
    lags: tuple[Lag, ...]
    svis: tuple[Svi, ...] = ()
    mlag: Mlag | None = None

    def to_dict(self) -> dict:
        """Plain data (lists, dicts, str, int), for Ansible."""
        return plain(asdict(self))


def port_key(name: str) -> tuple:
    """Natural order of interface names: GigabitEthernet0/2 before GigabitEthernet0/10, ep2 before ep10."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part.lower()) for part in re.split(r"(\d+)", name) if part)


def _sorted_config(switch: str, vlans, access, trunks, lags, svis=(), mlag: Mlag | None = None) -> SwitchConfig:
    """The one way a SwitchConfig is built, so compiled and parsed configs compare equal."""
    return SwitchConfig(
        switch=switch,
        vlans=tuple(sorted(vlans, key=lambda v: v.id)),
        access=tuple(sorted(access, key=lambda p: port_key(p.name))),
        trunks=tuple(sorted(trunks, key=lambda p: port_key(p.name))),
        lags=tuple(sorted(lags, key=lambda g: g.number)),
        svis=tuple(sorted(svis, key=lambda v: v.vlan)),
        mlag=mlag,
    )


# --- VLAN lists ---------------------------------------------------------------------------------


def compress_vlans(vlans) -> str:
    """``10,20-22,30`` from [10, 20, 21, 22, 30]. Like IOS prints it: a run of three or more is a
    range, two neighbours stay a comma pair (``10,11``). Empty is ``none`` (the IOS keyword)."""
    ids = sorted(set(vlans))
    if not ids:
        return "none"
    parts, start, prev = [], ids[0], ids[0]
    for vid in ids[1:] + [None]:
        if vid is not None and vid == prev + 1:
            prev = vid
            continue
        if prev - start >= 2:
            parts.append(f"{start}-{prev}")
        else:
            parts.extend(str(v) for v in range(start, prev + 1))
        if vid is not None:
            start = prev = vid
    return ",".join(parts)


def expand_vlans(text: str) -> tuple[int, ...]:
    """[10, 20, 21, 22] from ``10,20-22``; ``all`` and ``none`` are the IOS keywords. Raises
    ValueError on anything else, so a parser never guesses."""
    text = text.strip().lower()
    if text == "all":
        return ALL_VLANS
    if text in ("none", ""):
        return ()
    out: set[int] = set()
    for part in text.split(","):
        low, _, high = part.strip().partition("-")
        first, last = int(low), int(high or low)
        if not VLAN_MIN <= first <= last <= VLAN_MAX:
            raise ValueError(f"{part!r} is not a VLAN id or range ({VLAN_MIN}-{VLAN_MAX})")
        out.update(range(first, last + 1))
    return tuple(sorted(out))


# --- compile ------------------------------------------------------------------------------------


def _items(section, path: str) -> list[dict]:
    return model_items(section, path, SwitchError)


def _networks(networks) -> dict[str, tuple[int | None, str]]:
    """network name -> (VLAN id, model path of the network). Checks every network's VLAN, used here
    or not: two networks on one VLAN id would be one broadcast domain, whichever switch carries it."""
    out: dict[str, tuple[int | None, str]] = {}
    owner: dict[int, tuple[str, str]] = {}
    for k, net in enumerate(_items(networks, "dc_networks")):
        path = f"dc_networks[{k}]"
        name = net.get("name")
        if not isinstance(name, str) or not name:
            raise SwitchError(f"{path}.name", f"{name!r} is not a network name")
        vlan = net.get("vlan")
        if vlan is not None:
            if isinstance(vlan, bool) or not isinstance(vlan, int) or not VLAN_MIN <= vlan <= VLAN_MAX:
                raise SwitchError(f"{path}.vlan", f"{vlan!r} is not a VLAN id ({VLAN_MIN}-{VLAN_MAX})")
            if vlan in owner:
                other, other_path = owner[vlan]
                raise SwitchError(f"{path}.vlan", f"VLAN {vlan} is already the VLAN of network {other!r} ({other_path}.vlan): "
                                  "one VLAN id, one network")
            owner[vlan] = (name, path)
        out.setdefault(name, (vlan, path))
    return out


def _vlan_of(name, path: str, known: dict[str, tuple[int | None, str]]) -> int:
    if not isinstance(name, str) or name not in known:
        raise SwitchError(path, f"{name!r} is not a network (known: {', '.join(sorted(known)) or 'none'})")
    vlan, net_path = known[name]
    if vlan is None:
        raise SwitchError(path, f"network {name!r} has no VLAN ({net_path}.vlan): give it one to carry it on a switch")
    return vlan


def _vlan_list(names, path: str, known, what: str) -> tuple[int, ...]:
    if not isinstance(names, list) or not names:
        raise SwitchError(path, f"{what} needs a non-empty list of networks (the VLANs it carries)")
    return tuple(sorted({_vlan_of(n, f"{path}[{j}]", known) for j, n in enumerate(names)}))


def _channel_number(name: str, position: int) -> int:
    """The channel-group number of a LAG: the digits of its name (``po3`` -> 3, ``bond-12`` -> 12),
    else its position among the switch's LAGs, plus one."""
    digits = re.findall(r"\d+", name)
    return int(digits[-1]) if digits else position + 1


def _subnets(networks) -> dict[str, tuple[ipaddress.IPv4Network | None, str, str | None]]:
    """network name -> (subnet, model path of the network, gateway). Read only where an SVI needs
    it: a network without an SVI may have any subnet (or none), that is another module's business."""
    out: dict[str, tuple[ipaddress.IPv4Network | None, str, str | None]] = {}
    for k, net in enumerate(_items(networks, "dc_networks")):
        name, subnet, gateway = net.get("name"), net.get("subnet"), net.get("gateway")
        parsed = None
        if subnet is not None:
            try:
                parsed = ipaddress.ip_network(str(subnet), strict=True)
            except ValueError as exc:
                raise SwitchError(f"dc_networks[{k}].subnet", f"{subnet!r} is not a subnet in CIDR form (172.31.10.0/24): {exc}") from None
            if parsed.version != 4:
                raise SwitchError(f"dc_networks[{k}].subnet", f"{subnet!r} is IPv6; an SVI here takes an IPv4 subnet")
        out.setdefault(name, (parsed, f"dc_networks[{k}]", str(gateway) if gateway is not None else None))
    return out


def _compile_svis(switch: str, networks, svis, known) -> list[tuple[Svi, str]]:
    """``switch``'s SVIs of ``dc_switch_svis`` as (Svi, model path). The address is a bare IPv4
    address of the network's subnet (the prefix is the subnet's, so the two cannot disagree); it may
    not be the subnet's own address, its broadcast or the network's gateway (the firewall pair's
    virtual address: the same IP twice in one VLAN is an outage that no device reports)."""
    subnets = _subnets(networks) if svis else {}
    out: list[tuple[Svi, str]] = []
    by_vlan: dict[int, str] = {}
    by_address: dict[str, str] = {}
    for i, item in enumerate(_items(svis, "dc_switch_svis")):
        if item.get("switch") != switch:
            continue
        path = f"dc_switch_svis[{i}]"
        name = item.get("network")
        vlan = _vlan_of(name, f"{path}.network", known)
        subnet, net_path, gateway = subnets[name]
        if subnet is None:
            raise SwitchError(f"{path}.network", f"network {name!r} has no subnet ({net_path}.subnet): an SVI takes its address "
                              "and prefix from it")
        if vlan in by_vlan:
            raise SwitchError(f"{path}.network", f"VLAN {vlan} ({name}) already has an SVI on {switch} ({by_vlan[vlan]}): "
                              "one SVI per VLAN")
        raw = item.get("address")
        if isinstance(raw, str) and "/" in raw:
            raise SwitchError(f"{path}.address", f"{raw!r}: give the address without a prefix, the prefix is the subnet's "
                              f"({subnet}, {net_path}.subnet)")
        try:
            address = ipaddress.ip_address(str(raw)) if isinstance(raw, str) else None
        except ValueError:
            address = None
        if address is None or address.version != 4:
            raise SwitchError(f"{path}.address", f"{raw!r} is not an IPv4 address")
        if address not in subnet:
            raise SwitchError(f"{path}.address", f"{address} is not in network {name!r}'s subnet {subnet} ({net_path}.subnet)")
        if subnet.prefixlen < 31 and address in (subnet.network_address, subnet.broadcast_address):
            what = "own address" if address == subnet.network_address else "broadcast address"
            raise SwitchError(f"{path}.address", f"{address} is the {what} of subnet {subnet}: pick a host address")
        if gateway is not None and str(address) == gateway:
            raise SwitchError(f"{path}.address", f"{address} is network {name!r}'s gateway ({net_path}.gateway): pick another address")
        if str(address) in by_address:
            raise SwitchError(f"{path}.address", f"{address} is already an address of {switch} ({by_address[str(address)]}.address): "
                              "one address, one SVI")
        by_vlan[vlan] = path
        by_address[str(address)] = path
        out.append((Svi(vlan=vlan, address=f"{address}/{subnet.prefixlen}", description=str(item.get("description") or "")), path))
    return out


def _domain_id(item: dict, position: int) -> int:
    """The pair's ``domain_id``, else its position in ``dc_switch_pairs`` plus one (stable as long
    as pairs are only appended, like the channel numbers of LAGs without digits)."""
    domain = item.get("domain_id")
    return position + 1 if domain is None else domain


def _pair_index(pairs) -> dict[str, tuple[int, dict]]:
    """switch -> (position, item) of ``dc_switch_pairs``, after checking every pair's shape, used by
    the compiled switch or not: a switch in two pairs is a conflict between pairs, not within one."""
    out: dict[str, tuple[int, dict]] = {}
    for k, item in enumerate(_items(pairs, "dc_switch_pairs")):
        path = f"dc_switch_pairs[{k}]"
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise SwitchError(f"{path}.name", f"{name!r} is not a pair name")
        members = item.get("switches")
        if (not isinstance(members, list) or len(members) != 2 or not all(isinstance(m, str) and m for m in members)
                or members[0] == members[1]):
            raise SwitchError(f"{path}.switches", f"a redundant pair is exactly two distinct switches, found {members!r}")
        link = item.get("peer_link")
        if not isinstance(link, str) or not link:
            raise SwitchError(f"{path}.peer_link", f"{link!r} is not a port or LAG name (the link between {members[0]} and {members[1]})")
        domain = _domain_id(item, k)
        if isinstance(domain, bool) or not isinstance(domain, int) or not 1 <= domain <= 4094:
            raise SwitchError(f"{path}.domain_id", f"{domain!r} is not a domain id (1-4094)")
        for j, member in enumerate(members):
            if member in out:
                raise SwitchError(f"{path}.switches[{j}]", f"{member} is already in pair dc_switch_pairs[{out[member][0]}] "
                                  f"({out[member][1]['name']}): a switch has one twin")
            out[member] = (k, item)
    return out


def _link_kind(switch: str, name: str, ports, lags) -> tuple[str | None, str]:
    """What ``name`` is on ``switch`` in the model, read from its raw entries (so the other switch of
    a pair need not compile for this one to): ("lag"|"trunk"|"access"|"member"|None, model path)."""
    for j, item in enumerate(_items(lags, "dc_lags")):
        if item.get("switch") == switch and item.get("name") == name:
            return "lag", f"dc_lags[{j}]"
    for i, item in enumerate(_items(ports, "dc_switch_ports")):
        if item.get("switch") == switch and item.get("port") == name:
            if item.get("lag") is not None:
                return "member", f"dc_switch_ports[{i}].lag"
            return (item.get("mode") if item.get("mode") in MODES else None), f"dc_switch_ports[{i}]"
    for j, item in enumerate(_items(lags, "dc_lags")):
        if item.get("switch") == switch and isinstance(item.get("members"), list) and name in item["members"]:
            return "member", f"dc_lags[{j}].members[{item['members'].index(name)}]"
    return None, ""


def _compile_mlag(switch: str, networks, ports, lags, svis, pairs, known) -> Mlag | None:
    """``switch``'s half of its pair, None when it is in none. The peer VLAN needs no entry of its
    own: both switches have an SVI in it, which makes it a used VLAN."""
    index = _pair_index(pairs)
    if switch not in index:
        return None
    k, item = index[switch]
    path = f"dc_switch_pairs[{k}]"
    members, link = item["switches"], item["peer_link"]
    peer = members[1] if members[0] == switch else members[0]
    for side in members:
        kind, where = _link_kind(side, link, ports, lags)
        if kind is None:
            raise SwitchError(f"{path}.peer_link", f"{link!r} is not a port or LAG of {side}: the peer link must exist on both "
                              f"switches of pair {item['name']!r} (in dc_switch_ports or dc_lags)")
        if kind == "access":
            raise SwitchError(f"{path}.peer_link", f"{link!r} is an access port of {side} ({where}): a peer link carries the "
                              "pair's VLANs, make it a trunk or a LAG")
        if kind == "member":
            raise SwitchError(f"{path}.peer_link", f"{link!r} is a member of a LAG on {side} ({where}): name the LAG as the peer link")
    local = remote = None
    network = item.get("peer_network")
    if network is not None:
        vlan = _vlan_of(network, f"{path}.peer_network", known)
        for side in members:
            found = [svi for svi, _ in _compile_svis(side, networks, svis, known) if svi.vlan == vlan]
            if not found:
                raise SwitchError(f"{path}.peer_network", f"{side} has no SVI in network {network!r} (dc_switch_svis): the two "
                                  "switches of the pair talk over their SVIs in the peer VLAN, give each one")
            if side == switch:
                local = found[0].address.split("/")[0]
            else:
                remote = found[0].address.split("/")[0]
    return Mlag(domain_id=_domain_id(item, k), peer=peer, peer_link=link, local_address=local, peer_address=remote,
                pair=item["name"], path=path)


def compile_switch(switch: str, networks: list[dict], ports: list[dict], lags: list[dict], svis=None, pairs=None) -> SwitchConfig:
    """``switch``'s part of ``dc_switch_ports`` and ``dc_lags`` resolved into a ``SwitchConfig``:
    its access ports, trunks and LAGs, and the VLANs they use (named after their networks). Raises
    ``SwitchError`` with the model path of the first problem (e.g. ``dc_switch_ports[3].network``).

    ``svis`` is the whole ``dc_switch_svis`` and ``pairs`` the whole ``dc_switch_pairs`` (this
    function picks ``switch``'s entries): a switch's MLAG needs its twin's SVI for the peer address,
    and a switch in two pairs is only seen with every pair. The VLAN of an SVI is a used VLAN. None
    (the default) is no SVIs and no pair, as for a model that predates them."""
    known = _networks(networks)

    # LAGs first: a port's entry is checked against the LAG it belongs to.
    lag_rows: dict[str, dict] = {}
    member_of: dict[str, tuple[str, str]] = {}  # port -> (LAG name, model path of the membership)
    numbers: dict[int, str] = {}
    for j, item in enumerate(_items(lags, "dc_lags")):
        if item.get("switch") != switch:
            continue
        path = f"dc_lags[{j}]"
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise SwitchError(f"{path}.name", f"{name!r} is not a LAG name")
        if name in lag_rows:
            raise SwitchError(f"{path}.name", f"LAG {name!r} is already defined for {switch} at {lag_rows[name]['path']}")
        mode = item.get("mode", "lacp")
        if mode not in LAG_MODES:
            raise SwitchError(f"{path}.mode", f"found {mode!r}, expected one of {', '.join(LAG_MODES)}")
        number = _channel_number(name, len(lag_rows))
        if not 1 <= number <= CHANNEL_MAX:
            raise SwitchError(f"{path}.name", f"channel-group {number} (from the name) is out of range 1-{CHANNEL_MAX}: rename the LAG")
        if number in numbers:
            raise SwitchError(f"{path}.name", f"channel-group {number} is already LAG {numbers[number]!r}: give the LAGs distinct numbers")
        numbers[number] = name
        allowed = _vlan_list(item.get("networks"), f"{path}.networks", known, "a LAG (a trunk)")
        members = item.get("members") or []
        if not isinstance(members, list):
            raise SwitchError(f"{path}.members", f"expected a list of port names, found {members!r}")
        for m, port in enumerate(members):
            mpath = f"{path}.members[{m}]"
            if not isinstance(port, str) or not port:
                raise SwitchError(mpath, f"{port!r} is not a port name")
            if port in member_of:
                raise SwitchError(mpath, f"port {port!r} is already a member of LAG {member_of[port][0]!r} ({member_of[port][1]})")
            member_of[port] = (name, mpath)
        lag_rows[name] = {"path": path, "number": number, "mode": mode, "allowed": allowed, "members": set(members),
                          "description": str(item.get("description") or "")}

    access, trunks, seen = [], [], {}
    for i, item in enumerate(_items(ports, "dc_switch_ports")):
        if item.get("switch") != switch:
            continue
        path = f"dc_switch_ports[{i}]"
        port = item.get("port")
        if not isinstance(port, str) or not port:
            raise SwitchError(f"{path}.port", f"{port!r} is not a port name")
        if port in seen:
            raise SwitchError(f"{path}.port", f"port {port!r} of {switch} is already declared at {seen[port]}: one entry per port")
        seen[port] = path
        mode = item.get("mode")
        description = str(item.get("description") or "")
        lag = item.get("lag")
        if lag is not None:
            if lag not in lag_rows:
                raise SwitchError(f"{path}.lag", f"{lag!r} is not a LAG of {switch} (known: {', '.join(sorted(lag_rows)) or 'none'})")
            if port in member_of and member_of[port][0] != lag:
                raise SwitchError(f"{path}.lag", f"port {port!r} says LAG {lag!r}, but {member_of[port][1]} puts it in LAG "
                                  f"{member_of[port][0]!r}: make the two agree")
            # The port's own ``lag:`` is a membership too: members of a LAG = its list + these.
            member_of[port] = (lag, f"{path}.lag")
            lag_rows[lag]["members"].add(port)
        if port in member_of:
            lag_name, lag_path = member_of[port]
            row = lag_rows[lag_name]
            if mode == "access":
                raise SwitchError(f"{path}.mode", f"port {port!r} is a member of LAG {lag_name!r} ({lag_path}), so it is a trunk "
                                  "with the LAG's VLANs; it cannot be an access port")
            if mode == "trunk" and item.get("networks") is not None:
                own = _vlan_list(item.get("networks"), f"{path}.networks", known, "a trunk")
                if own != row["allowed"]:
                    raise SwitchError(f"{path}.networks", f"port {port!r} is a member of LAG {lag_name!r} ({lag_path}) which carries "
                                      f"VLANs {compress_vlans(row['allowed'])}, but lists {compress_vlans(own)}: drop the port's "
                                      "networks (the LAG's apply) or make them agree")
            if mode not in (None, "trunk"):
                raise SwitchError(f"{path}.mode", f"found {mode!r}, expected one of {', '.join(MODES)}")
            continue  # a member's settings are its LAG's
        if mode == "access":
            if item.get("network") is None:
                raise SwitchError(f"{path}.network", f"access port {port!r} needs the network it is in")
            access.append(AccessPort(name=port, vlan=_vlan_of(item["network"], f"{path}.network", known), description=description))
        elif mode == "trunk":
            allowed = _vlan_list(item.get("networks"), f"{path}.networks", known, f"trunk port {port!r}")
            trunks.append(Trunk(name=port, allowed=allowed, native=None, description=description))
        else:
            raise SwitchError(f"{path}.mode", f"found {mode!r}, expected one of {', '.join(MODES)}")

    out_lags = []
    for name, row in lag_rows.items():
        if not row["members"]:
            raise SwitchError(f"{row['path']}.members", f"LAG {name!r} has no member ports: list them (or set lag: {name} on ports)")
        if name in seen:
            raise SwitchError(f"{row['path']}.name", f"{name!r} is also a port of {switch} ({seen[name]}): a LAG and a port need distinct names")
        out_lags.append(Lag(name=name, number=row["number"], members=tuple(sorted(row["members"], key=port_key)), mode=row["mode"],
                            allowed=row["allowed"], description=row["description"]))

    out_svis = [svi for svi, _ in _compile_svis(switch, networks, svis, known)]
    mlag = _compile_mlag(switch, networks, ports, lags, svis, pairs, known) if pairs is not None else None
    names = {vlan: (net, path) for net, (vlan, path) in known.items() if vlan is not None}
    used = {p.vlan for p in access} | {v for t in trunks for v in t.allowed} | {v for g in out_lags for v in g.allowed}
    used |= {svi.vlan for svi in out_svis}
    vlans = [Vlan(id=v, name=names[v][0]) for v in used]
    return _sorted_config(switch, vlans, access, trunks, out_lags, out_svis, mlag)


# --- Cisco IOS and Arista EOS ---------------------------------------------------------------------


def _ios_address(cidr: str) -> str:
    """``172.31.10.2 255.255.255.0`` from ``172.31.10.2/24``: IOS's ``ip address`` takes a mask."""
    iface = ipaddress.ip_interface(cidr)
    return f"{iface.ip} {iface.netmask}"


def _svi_lines(svi: Svi, cidr_address: bool) -> list[str]:
    address = svi.address if cidr_address else _ios_address(svi.address)
    return [f"interface Vlan{svi.vlan}"] + ([f" description {svi.description}"] if svi.description else []) + [f" ip address {address}"]


def _render_ios_like(cfg: SwitchConfig, port_channel: str, cidr_address: bool = False) -> str:
    """The text both IOS and EOS accept: VLANs, SVIs (after their VLAN exists), port-channels
    (before their members, so a member joins a channel that already has its trunk settings), then
    the physical ports in natural order. ``cidr_address``: ``ip address A/P`` (EOS) rather than
    IOS's ``ip address A M``. The MLAG is the caller's: only EOS has it."""
    lines: list[str] = []
    for vlan in cfg.vlans:
        lines += [f"vlan {vlan.id}", f" name {vlan.name}"]
    for svi in cfg.svis:
        lines += _svi_lines(svi, cidr_address)

    def trunk(name, description, allowed, native):
        out = [f"interface {name}"] + ([f" description {description}"] if description else [])
        out += [" switchport mode trunk", f" switchport trunk allowed vlan {compress_vlans(allowed)}"]
        return out + ([f" switchport trunk native vlan {native}"] if native is not None else [])

    for lag in cfg.lags:
        lines += trunk(f"{port_channel}{lag.number}", lag.description, lag.allowed, lag.native)
    physical: list[tuple[str, list[str]]] = []
    for port in cfg.access:
        block = [f"interface {port.name}"] + ([f" description {port.description}"] if port.description else [])
        physical.append((port.name, block + [" switchport mode access", f" switchport access vlan {port.vlan}"]))
    for port in cfg.trunks:
        physical.append((port.name, trunk(port.name, port.description, port.allowed, port.native)))
    for lag in cfg.lags:
        for member in lag.members:
            physical.append((member, [f"interface {member}", f" channel-group {lag.number} mode {_IOS_CHANNEL_MODE[lag.mode]}"]))
    for _, block in sorted(physical, key=lambda nb: port_key(nb[0])):
        lines += block
    return "\n".join(lines) + "\n"


def render_cisco_ios(cfg: SwitchConfig) -> str:
    """Cisco IOS configuration lines (what ``show running-config`` prints for them, minus the ``!``).
    A switch of a redundant pair is refused: Catalyst IOS has no MLAG, two IOS switches are made one
    by stacking or VSS, and that is one switch in the model, not a pair."""
    _refuse_ios_mlag(cfg)
    return _render_ios_like(cfg, "Port-channel")


def _refuse_ios_mlag(cfg: SwitchConfig) -> None:
    """The one refusal of a pair on IOS, for the renderer and the diff alike."""
    if cfg.mlag is not None:
        raise SwitchError(cfg.mlag.path or "mlag", f"{cfg.switch} is in redundant pair {cfg.mlag.pair or cfg.mlag.peer!r}, but Cisco IOS "
                          "(Catalyst) has no MLAG: a redundant IOS core is a stack or VSS, model it as one switch (no pair)")


def render_arista_eos(cfg: SwitchConfig) -> str:
    """Arista EOS configuration lines: IOS syntax, but the LAG interface is ``Port-Channel<N>``, an
    SVI's address is CIDR, and a switch of a pair ends with its ``mlag configuration`` (after the
    interfaces it names: the peer VLAN's SVI and the peer link)."""
    text = _render_ios_like(cfg, "Port-Channel", cidr_address=True)
    if cfg.mlag is None:
        return text
    return text + "\n".join(_eos_mlag_lines(cfg)) + "\n"


# The settings under ``mlag configuration`` that the IR holds, in the order EOS prints them.
EOS_MLAG_SETTINGS = ("domain-id", "local-interface", "peer-address", "peer-link")


def eos_mlag_settings(cfg: SwitchConfig) -> dict[str, str | None]:
    """What EOS holds of ``cfg``'s MLAG: each of ``EOS_MLAG_SETTINGS`` -> the words after it under
    ``mlag configuration`` (None: not set). One function for a model's MLAG and a parsed one, so
    the two compare as the device would print them, whatever names the IR uses:

    - ``domain-id``: ``pair`` (a model's pair name; a parsed domain-id as written), else a model's
      numeric ``domain_id``. ``compile_switch`` always names the pair, so on EOS the domain is the
      pair's name: ``domain_id: 7`` in the model does not make ``domain-id 7``.
    - ``local-interface``: ``Vlan<N>`` of the SVI of ``cfg`` whose address is ``local_address``.
    - ``peer-address``: as is.
    - ``peer-link``: ``Port-Channel<N>`` when ``peer_link`` names a LAG of ``cfg`` (the model's
      ``po10``, a parsed ``Port-channel10``: LAGs match by number), else the interface as named."""
    mlag = cfg.mlag
    if mlag is None:
        return dict.fromkeys(EOS_MLAG_SETTINGS)
    local = next((svi for svi in cfg.svis if mlag.local_address is not None and svi.address.split("/")[0] == mlag.local_address), None)
    lag = next((g for g in cfg.lags if g.name == mlag.peer_link), None)
    return {
        "domain-id": mlag.pair or (str(mlag.domain_id) if mlag.domain_id else None),
        "local-interface": f"Vlan{local.vlan}" if local is not None else None,
        "peer-address": mlag.peer_address,
        "peer-link": f"Port-Channel{lag.number}" if lag is not None else (mlag.peer_link or None),
    }


def _check_model_mlag(cfg: SwitchConfig) -> dict[str, str]:
    """The settings of a model's MLAG, all of them: EOS's MLAG needs the local SVI it talks from
    (``local-interface``), the peer's address in that VLAN and the peer link, so a pair without
    ``peer_network`` is refused rather than rendered (or pushed) into a domain that never forms."""
    mlag = cfg.mlag
    settings = eos_mlag_settings(cfg)
    if None in settings.values():
        raise SwitchError(f"{mlag.path or 'mlag'}.peer_network", f"an Arista MLAG needs a peer VLAN: give pair {mlag.pair or mlag.peer!r} a "
                          f"peer_network, with an SVI of {cfg.switch} and of {mlag.peer} in it (dc_switch_svis)")
    return settings


def _eos_mlag_lines(cfg: SwitchConfig) -> list[str]:
    """``mlag configuration`` and its settings, for ``render_arista_eos``."""
    settings = _check_model_mlag(cfg)
    return ["mlag configuration"] + [f" {key} {settings[key]}" for key in EOS_MLAG_SETTINGS]


# --- Open vSwitch ---------------------------------------------------------------------------------


def render_linux_ovs(cfg: SwitchConfig, bridge: str = "br0") -> list[list[str]]:
    """One ``ovs-vsctl`` argument list per port or bond. The settings go in ``-- set port`` rather
    than on ``add-port``/``add-bond``: with ``--may-exist`` those ignore their column arguments when
    the port exists, and the second run must still correct a drifted tag.

    An SVI is an internal port ``vlan<N>`` tagged N (the host's interface in that VLAN), after the
    ports; its address is not an OVSDB column: ``ovs_svi_addresses`` says what to give ``ip addr``.
    A pair renders nothing: on OVS the two switches are two bridges joined by the peer-link trunk."""
    out: list[list[str]] = []
    for lag in cfg.lags:
        if not lag.allowed:
            raise SwitchError(f"lags.{lag.name}.allowed", "an empty trunks list means every VLAN to OVS: give the LAG its networks")
        out.append(["--may-exist", "add-bond", bridge, lag.name, *lag.members, "--", "set", "port", lag.name,
                    f"lacp={_OVS_LACP[lag.mode]}", *_ovs_trunk(lag.allowed, lag.native)])
    ports: list[tuple[str, list[str]]] = []
    for port in cfg.access:
        ports.append((port.name, [f"tag={port.vlan}", "vlan_mode=access"]))
    for port in cfg.trunks:
        if not port.allowed:
            raise SwitchError(f"trunks.{port.name}.allowed", "an empty trunks list means every VLAN to OVS: give the trunk its networks")
        ports.append((port.name, _ovs_trunk(port.allowed, port.native)))
    for name, settings in sorted(ports, key=lambda ns: port_key(ns[0])):
        out.append(["--may-exist", "add-port", bridge, name, "--", "set", "port", name, *settings])
    for svi in cfg.svis:
        name = _ovs_svi_port(svi.vlan)
        out.append(["--may-exist", "add-port", bridge, name, "--", "set", "interface", name, "type=internal",
                    "--", "set", "port", name, f"tag={svi.vlan}"])
    return out


def _ovs_svi_port(vlan: int) -> str:
    return f"vlan{vlan}"


def ovs_svi_addresses(cfg: SwitchConfig) -> list[tuple[str, str]]:
    """(internal port, CIDR) of each SVI, e.g. ``("vlan10", "172.31.10.2/24")``, for the caller to
    apply with ``ip addr replace <CIDR> dev <port>`` (and ``ip link set <port> up``): the address of
    an OVS internal port lives in the kernel, not in OVSDB, so ovs-vsctl cannot set it."""
    return [(_ovs_svi_port(svi.vlan), svi.address) for svi in cfg.svis]


def _ovs_trunk(allowed: tuple[int, ...], native: int | None) -> list[str]:
    trunks = "trunks=" + ",".join(str(v) for v in allowed)
    if native is None:
        return [trunks, "vlan_mode=trunk"]
    return [f"tag={native}", trunks, "vlan_mode=native-untagged"]


# --- parse a Cisco IOS or Arista EOS running-config ----------------------------------------------

_PORT_CHANNEL = re.compile(r"^port-channel(\d+)$", re.IGNORECASE)
_VLAN_BLOCK = re.compile(r"^vlan (\d[\d,-]*)$")
_INTERFACE = re.compile(r"^interface (\S+)$")
_SVI = re.compile(r"^vlan(\d+)$", re.IGNORECASE)


def _blocks(text: str) -> list[tuple[str, list[str]]]:
    """(top-level line, its indented lines), skipping ``!``, ``end`` and the banner lines of
    ``show running-config`` (``Building configuration...``, ``Current configuration : N bytes``)."""
    out: list[tuple[str, list[str]]] = []
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip() or line.lstrip().startswith("!"):
            continue
        if line[0].isspace():
            if out:
                out[-1][1].append(line.strip())
            continue
        out.append((line, []))
    return out


# Running-config lines that hold a secret, and the word after which the secret starts: enable
# secret/password, local users, SNMP communities, TACACS+/RADIUS keys (global, or indented in a
# server block), key-strings, PPP and line passwords. A type digit (0, 5, 7, 8, 9) stays shown. An
# indented "key 1" (a key chain's key number, digits only) is not a secret.
SECRET_LINE = re.compile(
    r"^(?P<keep>(?:enable (?:secret|password)|username \S+(?: privilege \d+)? (?:secret|password)|snmp-server community"
    r"|(?:tacacs-server|radius-server) key|\s+key-string|\s+key|\s+password|ppp \S+ password)(?: [0-9])?)"
    r" (?P<secret>(?!\d+$)\S+)(?P<rest>.*)$",
    re.MULTILINE)


def mask_secrets(running_config: str) -> str:
    """The running-config with every secret replaced by ``<hidden>``: what a task result may show
    (``-v`` prints it, logs keep it). The config store keeps the config as it was read."""
    def hide(match: re.Match) -> str:
        rest = match["rest"]
        if match["keep"].lstrip().startswith("snmp-server community"):
            return f"{match['keep']} <hidden>{rest}"  # RO/RW and the ACL stay readable
        return f"{match['keep']} <hidden>"
    return SECRET_LINE.sub(hide, running_config)


def parse_cisco_ios(running_config: str, switch: str) -> SwitchConfig:
    """The layer-2 part of a Cisco IOS ``show running-config`` as a ``SwitchConfig``: VLANs (a VLAN
    without a name gets IOS's ``VLAN0020``), access ports (no access VLAN: VLAN 1), trunks (no allowed
    line: all VLANs; ``add``/``remove``/``except`` lines applied in order), port-channels and their
    members. An interface without ``switchport mode access|trunk`` or ``channel-group`` is not
    layer-2 managed here and is left out; ``channel-group N mode passive`` reads as lacp.

    ``interface Vlan<N>`` with a primary ``ip address`` (IOS's ``A M`` or EOS's ``A/P``) is an
    ``Svi``; one without a static address (none, ``dhcp``) is left out, and ``shutdown`` and
    secondary addresses are not modelled. EOS text parses too (same syntax, sub-commands indented by
    three spaces rather than one); its ``mlag configuration`` is read by ``parse_arista_eos``, not
    here: IOS has no such block, so ``mlag`` is always None."""
    vlans: dict[int, str] = {}
    interfaces: dict[str, dict] = {}
    for head, body in _blocks(running_config):
        match = _VLAN_BLOCK.match(head)
        if match:
            ids = expand_vlans(match.group(1))
            name = next((line[5:].strip() for line in body if line.startswith("name ")), None)
            for vid in ids:
                vlans[vid] = name if name and len(ids) == 1 else f"VLAN{vid:04d}"
            continue
        match = _INTERFACE.match(head)
        if match:
            interfaces[match.group(1)] = _parse_interface(body)

    access, trunks, channels = [], [], {}
    for name, st in interfaces.items():
        if st["channel"] is not None:
            number, mode = st["channel"]
            channels.setdefault(number, {"members": [], "modes": set()})
            channels[number]["members"].append(name)
            channels[number]["modes"].add(mode)
        elif _PORT_CHANNEL.match(name) and st["mode"] == "trunk":
            channels.setdefault(int(_PORT_CHANNEL.match(name).group(1)), {"members": [], "modes": set()})
        elif st["mode"] == "access":
            access.append(AccessPort(name=name, vlan=st["vlan"] or DEFAULT_VLAN, description=st["description"]))
        elif st["mode"] == "trunk":
            trunks.append(Trunk(name=name, allowed=st["allowed"], native=st["native"], description=st["description"]))
    svis = []
    for name, st in interfaces.items():
        match = _SVI.match(name)
        if match and st["address"] is not None and VLAN_MIN <= int(match.group(1)) <= VLAN_MAX:
            svis.append(Svi(vlan=int(match.group(1)), address=st["address"], description=st["description"]))

    lags = []
    for number, ch in channels.items():
        name = f"Port-channel{number}"
        st = next((s for n, s in interfaces.items() if _PORT_CHANNEL.match(n) and int(_PORT_CHANNEL.match(n).group(1)) == number), None)
        trunk = st is not None and st["mode"] == "trunk"
        lags.append(Lag(name=name, number=number, members=tuple(sorted(ch["members"], key=port_key)),
                        mode="static" if ch["modes"] == {"on"} else "lacp", allowed=st["allowed"] if trunk else (),
                        description=st["description"] if st else "", native=st["native"] if trunk else None))
    return _sorted_config(switch, [Vlan(id=v, name=n) for v, n in vlans.items()], access, trunks, lags, svis)


def parse_arista_eos(running_config: str, switch: str) -> SwitchConfig:
    """An Arista EOS ``show running-config`` as a ``SwitchConfig``: what ``parse_cisco_ios`` reads
    (EOS has IOS's syntax for VLANs, interfaces and SVIs), plus the ``mlag configuration`` block as
    ``mlag`` (None when there is none). See ``_parse_eos_mlag`` for what the parsed ``Mlag`` holds."""
    cfg = parse_cisco_ios(running_config, switch)
    blocks = [body for head, body in _blocks(running_config) if head == "mlag configuration"]
    if not blocks:
        return cfg
    return replace(cfg, mlag=_parse_eos_mlag([line for body in blocks for line in body], cfg))


def _parse_eos_mlag(body: list[str], cfg: SwitchConfig) -> Mlag:
    """The lines of ``mlag configuration`` (sub-commands, stripped) as an ``Mlag``, read against the
    rest of the config ``cfg``, with only what the device holds (``Mlag`` says why):

    - ``domain-id X`` -> ``pair`` X as written; ``domain_id`` 0, ``peer`` "" and ``path`` "";
    - ``local-interface VlanN`` -> ``local_address``, the address of SVI N in ``cfg`` (None when
      VLAN N has no SVI with an address: an MLAG that cannot talk from there, whatever the line says);
    - ``peer-address A`` -> ``peer_address`` (``peer-address heartbeat ...``, the dual-primary
      detection, is another setting and is not read);
    - ``peer-link Port-ChannelN`` -> the name of LAG N of ``cfg`` (``Port-channelN``, as parsed) when
      it has one, else, like ``peer-link EthernetX``, the interface as written;
    - ``shutdown``/``no shutdown`` -> ``shutdown``.

    Other settings (``reload-delay``, ``heartbeat-interval``, ``dual-primary ...``) are not modelled:
    they are not read, and no state changes them. A line read twice keeps the last, as EOS would."""
    domain, local, peer_address, link, shutdown = "", None, None, "", False
    for line in body:
        words = line.split()
        if words[0] == "domain-id" and len(words) > 1:
            domain = line[len("domain-id"):].strip()
        elif words[0] == "local-interface" and len(words) == 2:
            match = _SVI.match(words[1])
            svi = next((v for v in cfg.svis if match and v.vlan == int(match.group(1))), None)
            local = svi.address.split("/")[0] if svi is not None else None
        elif words[0] == "peer-address" and len(words) == 2:
            try:
                peer_address = str(ipaddress.ip_address(words[1]))
            except ValueError:
                raise ValueError(f"{line!r}: not an IP address") from None
        elif words[0] == "peer-link" and len(words) == 2:
            match = _PORT_CHANNEL.match(words[1])
            lag = next((g for g in cfg.lags if match and g.number == int(match.group(1))), None)
            link = lag.name if lag is not None else words[1]
        elif words == ["shutdown"]:
            shutdown = True
        elif words == ["no", "shutdown"]:
            shutdown = False
    return Mlag(domain_id=0, peer="", peer_link=link, local_address=local, peer_address=peer_address, pair=domain, shutdown=shutdown)


def _parse_interface(body: list[str]) -> dict:
    st: dict = {"description": "", "mode": None, "vlan": None, "allowed": ALL_VLANS, "native": None, "channel": None, "address": None}
    allowed = None  # a trunk carries every VLAN until a line says otherwise (not built per port: 28 ports, 2 reads, N switches)
    for line in body:
        words = line.split()
        if words[0] == "description":
            st["description"] = line[len("description"):].strip()
        elif words[:2] == ["switchport", "mode"] and len(words) == 3 and words[2] in MODES:
            st["mode"] = words[2]
        elif words[:3] == ["switchport", "access", "vlan"] and len(words) == 4 and words[3].isdigit():
            st["vlan"] = int(words[3])
        elif words[:4] == ["switchport", "trunk", "allowed", "vlan"] and len(words) in (5, 6):
            verb = words[4]
            if verb in ("add", "remove", "except") and len(words) != 6:
                raise ValueError(f"{line!r}: {verb} without a VLAN list")
            if verb == "add":
                allowed = (set(ALL_VLANS) if allowed is None else allowed) | set(expand_vlans(words[5]))
            elif verb == "remove":
                allowed = (set(ALL_VLANS) if allowed is None else allowed) - set(expand_vlans(words[5]))
            elif verb == "except":
                allowed = set(ALL_VLANS) - set(expand_vlans(words[5]))
            else:
                allowed = set(expand_vlans(verb))
        elif words[:4] == ["switchport", "trunk", "native", "vlan"] and len(words) == 5:
            st["native"] = int(words[4])
        elif words[0] == "channel-group" and len(words) == 4 and words[2] == "mode":
            st["channel"] = (int(words[1]), words[3])
        elif words == ["no", "switchport"]:
            st["mode"] = None  # a routed port: nothing of layer 2 to manage
        elif words[:2] == ["ip", "address"] and (len(words) == 4 or (len(words) == 3 and "/" in words[2])):
            # IOS ``ip address A M``, EOS ``ip address A/P``; ``A M secondary`` and ``dhcp`` are not an SVI's address here
            try:
                st["address"] = ipaddress.ip_interface("/".join(words[2:])).with_prefixlen
            except ValueError:
                raise ValueError(f"{line!r}: not an address and mask") from None
        elif words[:3] == ["no", "ip", "address"]:
            st["address"] = None
    st["allowed"] = ALL_VLANS if allowed is None else tuple(sorted(allowed))
    return st


# --- diff: the commands of the resource-module states (Cisco IOS, Arista EOS) --------------------


@dataclass(frozen=True)
class _Port:
    """What one IOS interface looks like to the diff: the IR flattened per interface name."""

    mode: str | None
    vlan: int | None = None
    allowed: tuple[int, ...] | None = None
    native: int | None = None
    description: str = ""
    channel: tuple[int, str] | None = None


def _ports(cfg: SwitchConfig) -> dict[str, _Port]:
    out: dict[str, _Port] = {}
    for p in cfg.access:
        out[p.name] = _Port(mode="access", vlan=p.vlan, description=p.description)
    for t in cfg.trunks:
        out[t.name] = _Port(mode="trunk", allowed=t.allowed, native=t.native, description=t.description)
    for g in cfg.lags:
        out[f"Port-channel{g.number}"] = _Port(mode="trunk", allowed=g.allowed, native=g.native, description=g.description)
        for m in g.members:
            out[m] = _Port(mode=None, channel=(g.number, _IOS_CHANNEL_MODE[g.mode]))
    return out


def _interface_order(name: str) -> tuple:
    """Port-channels before physical ports, as rendered: a member joins a configured channel."""
    return (0 if _PORT_CHANNEL.match(name) else 1, port_key(name))


def trunk_change(before_allowed, after_allowed, state: str) -> list[str]:
    """The allowed-VLAN lines that take a trunk from ``before_allowed`` (None: the port is not a
    trunk yet, nothing tagged crosses it) to ``after_allowed``.

    ``merged`` only ever adds (``switchport trunk allowed vlan add``): the overwrite form on a live
    trunk drops every VLAN the model does not list, which is the cisco.ios #699 outage. A port that
    is not yet a trunk gets its list set, as there is nothing on it to lose.

    ``replaced``/``overridden`` make the list exact. ``add`` then ``remove`` (never a moment with a
    needed VLAN missing) when that names no more VLANs than the overwrite form would, else one
    overwrite (``switchport trunk allowed vlan 10,20``): e.g. a default all-VLAN trunk cut down to
    two VLANs is one short line rather than a remove of 4092."""
    if state not in ("merged", "replaced", "overridden"):
        raise ValueError(f"trunk_change: state {state!r} has no trunk list to compute (expected merged, replaced or overridden; "
                         "deleted resets the port)")
    after = set(after_allowed)
    if before_allowed is None:
        return [f" switchport trunk allowed vlan {compress_vlans(after)}"]
    before = set(before_allowed)
    added, removed = sorted(after - before), sorted(before - after)
    if state == "merged":
        return [f" switchport trunk allowed vlan add {compress_vlans(added)}"] if added else []
    if not added and not removed:
        return []
    if len(added) + len(removed) <= len(after):
        out = [f" switchport trunk allowed vlan add {compress_vlans(added)}"] if added else []
        return out + ([f" switchport trunk allowed vlan remove {compress_vlans(removed)}"] if removed else [])
    return [f" switchport trunk allowed vlan {compress_vlans(after)}"]


def _port_commands(before: _Port | None, after: _Port, state: str) -> list[str]:
    """The sub-commands (indented) that take one interface from ``before`` to ``after``."""
    b = before or _Port(mode=None)
    exact = state != "merged"
    out: list[str] = []
    if after.description and after.description != b.description:
        out.append(f" description {after.description}")
    elif exact and not after.description and b.description:
        out.append(" no description")
    if after.channel is not None:
        # A member: the channel-group line puts it in the LAG; the trunk settings are the channel's.
        if after.channel != b.channel:
            out.append(f" channel-group {after.channel[0]} mode {after.channel[1]}")
        return out
    if exact and b.channel is not None:
        out.append(" no channel-group")
    if after.mode == "access":
        if b.mode != "access":
            out.append(" switchport mode access")
        if b.mode != "access" or b.vlan != after.vlan:
            out.append(f" switchport access vlan {after.vlan}")
        return out
    if b.mode != "trunk":
        out.append(" switchport mode trunk")
    out += trunk_change(b.allowed if b.mode == "trunk" else None, after.allowed or (), state)
    if after.native is not None and after.native != b.native:
        out.append(f" switchport trunk native vlan {after.native}")
    elif exact and after.native is None and b.native is not None:
        out.append(" no switchport trunk native vlan")
    return out


def _svi_commands(before: Svi | None, after: Svi, state: str) -> list[str]:
    """The sub-commands (indented) that take one SVI from ``before`` (None: none yet) to ``after``;
    like a port's, a description the model does not give is kept by ``merged`` only."""
    out: list[str] = []
    b_description = before.description if before is not None else ""
    if after.description and after.description != b_description:
        out.append(f" description {after.description}")
    elif state != "merged" and not after.description and b_description:
        out.append(" no description")
    if before is None or before.address != after.address:
        out.append(f" ip address {_ios_address(after.address)}")
    return out


def _eos_mlag_commands(before: SwitchConfig, after: SwitchConfig, state: str) -> tuple[list[str], list[str]]:
    """The MLAG's part of ``diff_commands`` on EOS, as (what goes first, what goes last): its removal
    goes before the ports, SVIs and VLANs it names are reset or removed, its settings after they
    exist. See ``diff_commands`` for what each state does."""
    if after.mlag is None:
        return [], []  # a model that names no pair for this switch does not manage its MLAG
    if state == "deleted":
        return (["no mlag configuration"] if before.mlag is not None else []), []
    # A model's MLAG (it has a peer) must be complete; a target read from a device (the IOS-style
    # rollback's) is taken as it is, a setting it lacks being one to remove.
    want = _check_model_mlag(after) if after.mlag.peer else eos_mlag_settings(after)
    have = eos_mlag_settings(before)
    exact = state != "merged"
    was_shut = before.mlag is not None and before.mlag.shutdown
    lines = [" shutdown"] if after.mlag.shutdown and not was_shut else []
    for key in EOS_MLAG_SETTINGS:
        if want[key] is not None and want[key] != have[key]:
            lines.append(f" {key} {want[key]}")
        elif exact and want[key] is None and have[key] is not None:
            lines.append(f" no {key}")
    if exact and was_shut and not after.mlag.shutdown:
        lines.append(" no shutdown")  # last: the domain starts with every setting in place
    return [], (["mlag configuration"] + lines if lines else [])


def diff_commands(before: SwitchConfig, after: SwitchConfig, state: str, platform: str | None = None) -> list[str]:
    """Cisco IOS (or Arista EOS) config-mode commands that take the switch from ``before`` (parsed
    from the device) to what ``state`` asks of ``after`` (the model):

    - ``merged``: add the missing VLANs and settings, change what differs, remove nothing (trunk
      lists only grow, see ``trunk_change``); ports the model does not name are not touched.
    - ``replaced``: the ports the model names get exactly its settings; others are not touched.
    - ``overridden``: ``replaced``, plus ``default interface`` on every port of ``before`` the model
      does not name and ``no vlan`` for every VLAN it does not carry (never VLAN 1).
    - ``deleted``: ``default interface`` on the model's ports that have config, ``no vlan`` for the
      model's VLANs that exist (never VLAN 1).

    SVIs (``interface Vlan<N>``) follow the same states: ``merged`` sets the model's address and
    description, ``replaced`` makes the model's SVIs exact (``no description``), ``overridden`` also
    removes (``no interface Vlan<N>``) the SVIs the model does not name, and ``deleted`` removes the
    model's. ``overridden`` removes SVIs only when the model names at least one for the switch: a model
    without SVIs (all of them before SVIs were modelled) does not manage them, and removing the
    management SVI the automation reaches the switch through would cut it off.

    The MLAG depends on ``platform``. With ``arista_eos`` it is diffed as EOS holds it (the lines of
    ``eos_mlag_settings``; ``before`` from ``parse_arista_eos``), when the model names a pair for the
    switch (``after.mlag``):

    - ``merged``, ``replaced``, ``overridden``: ``mlag configuration`` and only the settings that
      differ (a new peer address is one line). ``replaced``/``overridden`` also start an MLAG the
      device has shut (``no shutdown``); ``merged`` keeps it shut, as it keeps a description the
      model does not give: someone shut it (to service one switch of the pair, say) and the model
      has no word for that. Against a target read from a device (a rollback), they also remove a
      setting the target lacks (``no peer-address``). Settings the IR does not model
      (``reload-delay``, heartbeat) are never touched.
    - ``deleted``: ``no mlag configuration`` when the device has one.

    A model that names no pair for the switch does not manage its MLAG: no state removes one, not
    even ``overridden``. As for SVIs, a run without ``dc_switch_pairs`` (a role or playbook that
    does not pass them, a model that predates them) must not turn a live pair into two primaries,
    which cuts every host dual-homed to it; an MLAG goes with ``deleted`` of a model that names the
    pair, or by hand. A model's MLAG without a peer VLAN is refused, as by ``render_arista_eos``.
    ``cisco_ios`` refuses a pair (``render_cisco_ios``'s error). None, the default (callers that
    predate the MLAG diff), leaves the MLAG alone.

    Order: VLANs are created first and removed last, so no port is ever in a VLAN that does not
    exist; an SVI is set after the VLANs are created (before the ports) and removed before them; the
    MLAG is set after the VLANs, SVIs and port-channels it names (after every port, before what
    ``overridden`` removes) and removed first. [] when the device already is what the state asks
    (run twice, change once)."""
    if state not in STATES:
        raise ValueError(f"state {state!r} is not one of {', '.join(STATES)}")
    if platform not in (None, "cisco_ios", "arista_eos"):
        raise ValueError(f"platform {platform!r} is not cisco_ios or arista_eos (the OVS diff is ovs_operations)")
    if platform == "cisco_ios":
        _refuse_ios_mlag(after)
    mlag_first, mlag_last = _eos_mlag_commands(before, after, state) if platform == "arista_eos" else ([], [])
    old, new = _ports(before), _ports(after)
    old_vlans = {v.id: v.name for v in before.vlans}
    old_svis, new_svis = {v.vlan: v for v in before.svis}, {v.vlan: v for v in after.svis}
    out: list[str] = list(mlag_first)
    if state == "deleted":
        for name in sorted(set(new) & set(old), key=_interface_order):
            out.append(f"default interface {name}")
        out += [f"no interface Vlan{v}" for v in sorted(set(new_svis) & set(old_svis))]
        return out + [f"no vlan {v.id}" for v in after.vlans if v.id in old_vlans and v.id != DEFAULT_VLAN]

    for vlan in after.vlans:
        if old_vlans.get(vlan.id) != vlan.name:
            out += [f"vlan {vlan.id}", f" name {vlan.name}"]
    for vid in sorted(new_svis):
        lines = _svi_commands(old_svis.get(vid), new_svis[vid], state)
        out += ([f"interface Vlan{vid}"] + lines) if lines else []
    for name in sorted(new, key=_interface_order):
        was, reset = old.get(name), []
        if state != "merged" and new[name].channel is not None and was is not None and was.channel is None:
            # A port joining a LAG takes the channel's settings: its own access/trunk lines would
            # make IOS suspend it as incompatible, so replaced/overridden clear them first.
            was, reset = None, [f"default interface {name}"]
        lines = _port_commands(was, new[name], state)
        out += reset + ([f"interface {name}"] + lines if lines else [])
    out += mlag_last
    if state == "overridden":
        out += [f"default interface {name}" for name in sorted(set(old) - set(new), key=_interface_order)]
        if new_svis:
            out += [f"no interface Vlan{v}" for v in sorted(set(old_svis) - set(new_svis))]
        wanted = {v.id for v in after.vlans}
        out += [f"no vlan {v}" for v in sorted(old_vlans) if v not in wanted and v != DEFAULT_VLAN]
    return out


# --- cross-checks -----------------------------------------------------------------------------------


def check_model(networks: list[dict], ports: list[dict], lags: list[dict], hypervisor_networks=(), firewall_networks=(),
                switches=None, svis=None, pairs=None) -> list[str]:
    """Findings (``"<path>: <what is wrong>"``, model order), [] when all is well: every switch
    compiles, and every network that the hypervisors or the firewall need is carried by every trunk
    port and LAG of every switch (``switches``: those switches only), since a core trunk that lacks one
    partitions that network between the two rooms. ``hypervisor_networks``/``firewall_networks`` are
    lists of network names; their paths in findings are ``hypervisor_networks[i]`` and
    ``firewall_networks[i]``.

    With ``svis`` (``dc_switch_svis``) and ``pairs`` (``dc_switch_pairs``) the switches compile with
    them, and after the findings above come those of each pair (of ``switches``, when given): a pair
    that is not one; the two ends of its peer link carrying different VLANs; and a VLAN that a switch
    of the pair uses but its end of the peer link does not carry, i.e. a network split between the
    rooms, reachable in one only."""
    findings: list[str] = []
    try:
        known = _networks(networks)
    except SwitchError as exc:
        return [str(exc)]
    late: list[str] = []
    if pairs is not None:
        try:
            _pair_index(pairs)
        except SwitchError as exc:
            late.append(str(exc))
            pairs = None
    needs: list[tuple[str, int]] = []
    for label, names in (("hypervisor_networks", hypervisor_networks), ("firewall_networks", firewall_networks)):
        for i, name in enumerate(names or ()):
            path = f"{label}[{i}]"
            try:
                needs.append((path, _vlan_of(name, path, known)))
            except SwitchError as exc:
                findings.append(str(exc))
    try:
        extra = {v.get("switch") for v in _items(svis, "dc_switch_svis")} | set(_pair_index(pairs))
    except SwitchError as exc:  # dc_switch_svis is not a list: said once, not once per switch
        late.append(str(exc))
        svis, extra = None, set(_pair_index(pairs))
    names = sorted({p.get("switch") for p in _items(ports, "dc_switch_ports")} | {g.get("switch") for g in _items(lags, "dc_lags")} | extra,
                   key=str) if switches is None else list(switches)
    compiled: dict[str, SwitchConfig] = {}
    for switch in names:
        try:
            cfg = compile_switch(switch, networks, ports, lags, svis=svis, pairs=pairs)
        except SwitchError as exc:
            if str(exc) not in findings:  # a twin's SVI stops both switches of a pair: said once
                findings.append(str(exc))
            continue
        compiled[switch] = cfg
        allowed = {t.name: t.allowed for t in cfg.trunks}
        carriers = [(f"dc_switch_ports[{i}].networks", f"trunk {item['port']!r}", allowed[item["port"]])
                    for i, item in enumerate(ports or []) if item.get("switch") == switch and item.get("port") in allowed]
        lag_allowed = {g.name: g.allowed for g in cfg.lags}
        carriers += [(f"dc_lags[{j}].networks", f"LAG {item['name']!r}", lag_allowed[item["name"]])
                     for j, item in enumerate(lags or []) if item.get("switch") == switch]
        for path, what, carried in carriers:
            for need_path, vlan in needs:
                if vlan not in carried:
                    findings.append(f"{path}: {what} of {switch} does not carry VLAN {vlan} ({need_path}); add the network to it")
    return findings + late + _pair_findings(networks, ports, lags, svis, pairs, names if switches is not None else None, compiled,
                                            findings + late)


def _pair_findings(networks, ports, lags, svis, pairs, only, compiled: dict, reported: list[str]) -> list[str]:
    """The pair findings of ``check_model``: per pair (of the switches ``only``, None: all), the two
    ends of the peer link carry the same VLANs, and every VLAN a switch of the pair uses crosses it."""
    out: list[str] = []
    for k, item in enumerate(_items(pairs, "dc_switch_pairs")):
        members, link, name = item["switches"], item["peer_link"], item["name"]
        if only is not None and not set(members) & set(only):
            continue
        ends = []
        for side in members:
            if side not in compiled:
                try:
                    compiled[side] = compile_switch(side, networks, ports, lags, svis=svis, pairs=pairs)
                except SwitchError as exc:
                    if str(exc) not in reported + out:
                        out.append(str(exc))
                    continue
            cfg = compiled[side]
            kind, where = _link_kind(side, link, ports, lags)
            carriers = cfg.lags if kind == "lag" else cfg.trunks
            carried = next(c.allowed for c in carriers if c.name == link)
            ends.append((side, cfg, f"{where}.networks", carried))
        if len(ends) != 2:
            continue  # a switch of the pair does not compile: reported above
        (a, _, a_path, a_carried), (b, _, b_path, b_carried) = ends
        if a_carried != b_carried:
            out.append(f"{a_path}: peer link {link!r} of pair {name!r} (dc_switch_pairs[{k}]) carries VLANs {compress_vlans(a_carried)} on {a}"
                       f" but {compress_vlans(b_carried)} on {b} ({b_path}); make its two ends carry the same networks")
        for side, cfg, path, carried in ends:
            for vlan in cfg.vlans:
                if vlan.id not in carried:
                    out.append(f"dc_switch_pairs[{k}].peer_link: VLAN {vlan.id} ({vlan.name}) is used on {side} but its end of peer link "
                               f"{link!r} ({path}) does not carry it, so the network is split between the rooms; add it to the peer link")
    return out


# --- Open vSwitch: the bridge read back, and the ovs-vsctl operations of the states ----------------
#
# OVS has no VLAN objects and no description column: a port's VLANs are its ``tag``/``trunks``/
# ``vlan_mode`` columns and the module keeps the description in ``external_ids:description``. The
# module reads the bridge with ``ovs-vsctl --format=json --columns=... list port`` (and ``list
# interface`` for the interface names) and applies what ``ovs_operations`` returns as ONE ovs-vsctl
# transaction (the operations joined with ``--``): a bond and its members change together or not at all.

#
# An SVI is an internal port ``vlan<N>`` tagged N: the switch host's own interface in VLAN N. Its
# address is in the kernel, not in OVSDB, so the module also reads ``ip -j addr show``
# (``ovs_kernel_view``) and changes addresses with ``ip`` after the transaction
# (``ovs_address_operations``).

OVS_PORT_COLUMNS = ("name", "tag", "trunks", "vlan_mode", "interfaces", "lacp", "external_ids")
# Required. The module also lists ``type`` (internal, system, ...), which tells an SVI's internal port
# from a cable; a table without it (a config stored before SVIs were read) has no SVIs.
OVS_INTERFACE_COLUMNS = ("_uuid", "name")
_OVS_VLAN_MODES = ("access", "trunk", "native-tagged", "native-untagged")
_OVS_NATIVE_MODES = ("native-tagged", "native-untagged")
# OVS's tag column takes 0-4095; 0 is "no VLAN" (what an access port without a tag is in), 4095 is
# reserved by 802.1Q. Neither is a VLAN a model can name.
_OVS_NO_VLAN = 0


def _ovs_table(doc, table: str, columns: tuple[str, ...]) -> list[dict]:
    """The rows of ``ovs-vsctl --format=json list <table>`` as {heading: raw OVSDB value}."""
    path = f"ovs.{table}"
    if not isinstance(doc, dict) or not isinstance(doc.get("headings"), list) or not isinstance(doc.get("data"), list):
        raise SwitchError(path, f"expected the output of ovs-vsctl --format=json list {table} (an object with 'headings' and 'data' "
                          f"lists), found {type(doc).__name__}")
    headings = doc["headings"]
    missing = [c for c in columns if c not in headings]
    if missing:
        raise SwitchError(f"{path}.headings", f"no column {', '.join(missing)} (found {', '.join(map(str, headings)) or 'none'}): "
                          f"list the table with --columns={','.join(columns)}")
    rows = []
    for i, row in enumerate(doc["data"]):
        if not isinstance(row, list) or len(row) != len(headings):
            raise SwitchError(f"{path}[{i}]", f"expected a list of {len(headings)} values (one per heading), found {row!r}")
        rows.append(dict(zip(headings, row, strict=True)))
    return rows


def _ovs_set(value, path: str) -> list:
    """An OVSDB set as a list: ``["set", [...]]``, or the bare element of a one-element set (which
    is how ovs-vsctl prints those: ``20``, ``"active"``, ``["uuid", "..."]``)."""
    if isinstance(value, list) and len(value) == 2 and value[0] == "set":
        if not isinstance(value[1], list):
            raise SwitchError(path, f"expected [\"set\", [elements]], found {value!r}")
        return value[1]
    if isinstance(value, list) and len(value) == 2 and value[0] == "map":
        raise SwitchError(path, f"expected a set or a single value, found a map {value!r}")
    return [value]


def _ovs_optional(value, path: str, what: str, valid) -> object:
    """A column of at most one value (``tag``, ``vlan_mode``, ``lacp``): None when empty."""
    items = _ovs_set(value, path)
    if len(items) > 1 or (items and not valid(items[0])):
        raise SwitchError(path, f"expected {what} or an empty set, found {value!r}")
    return items[0] if items else None


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _ovs_uuid(value, path: str) -> str:
    if not (isinstance(value, list) and len(value) == 2 and value[0] == "uuid" and isinstance(value[1], str)):
        raise SwitchError(path, f"expected a reference [\"uuid\", \"...\"], found {value!r}")
    return value[1]


def _ovs_map(value, path: str) -> dict:
    if not (isinstance(value, list) and len(value) == 2 and value[0] == "map" and isinstance(value[1], list)
            and all(isinstance(kv, list) and len(kv) == 2 for kv in value[1])):
        raise SwitchError(path, f"expected a map [\"map\", [[key, value], ...]], found {value!r}")
    return dict(value[1])


def ovs_kernel_view(doc, path: str = "ip.addr") -> dict[str, dict]:
    """``ip -j addr show`` (parsed) as {interface: {"up": administratively up, "addresses": its IPv4
    addresses as CIDR, in the kernel's order (the first is the primary)}}. Raises ``SwitchError`` with
    the path of the first entry it cannot read."""
    if not isinstance(doc, list):
        raise SwitchError(path, f"expected the output of ip -j addr show (a list), found {type(doc).__name__}")
    view: dict[str, dict] = {}
    for i, link in enumerate(doc):
        if not isinstance(link, dict) or not link:
            continue  # older iproute2 prints {} for a link a filter left out
        name, flags, infos = link.get("ifname"), link.get("flags", []), link.get("addr_info", [])
        if not isinstance(name, str) or not isinstance(flags, list) or not isinstance(infos, list):
            raise SwitchError(f"{path}[{i}]", f"expected ifname, flags and addr_info, found {link!r}")
        addresses = []
        for j, info in enumerate(infos):
            if not isinstance(info, dict) or info.get("family") != "inet":
                continue
            try:
                addresses.append(str(ipaddress.IPv4Interface(f"{info['local']}/{info['prefixlen']}")))
            except (KeyError, ValueError) as exc:
                raise SwitchError(f"{path}[{i}].addr_info[{j}]", f"expected local and prefixlen of an IPv4 address, found {info!r}") from exc
        view[name] = {"up": "UP" in flags, "addresses": addresses}
    return view


def ovs_internal_interfaces(interfaces: dict) -> set[str]:
    """The names of the internal interfaces in ``ovs-vsctl --format=json list interface`` (parsed):
    SVIs' ports and the bridge's own. None without the ``type`` column."""
    return {row["name"] for row in _ovs_table(interfaces, "interface", OVS_INTERFACE_COLUMNS) if row.get("type") == "internal"}


def _ovs_svi_vlan(name: str) -> int | None:
    """N of an SVI port's name ``vlan<N>`` (as ``render_linux_ovs`` names them), else None."""
    match = re.fullmatch(r"vlan([1-9]\d{0,3})", name)
    return int(match.group(1)) if match and VLAN_MIN <= int(match.group(1)) <= VLAN_MAX else None


def parse_linux_ovs(ports: dict, interfaces: dict, switch: str, bridge: str = "br0", kernel: dict | None = None) -> SwitchConfig:
    """The layer-2 config of an OVS bridge as a ``SwitchConfig``, from the JSON of ``ovs-vsctl
    --format=json --columns=name,tag,trunks,vlan_mode,interfaces,lacp,external_ids list port`` and
    ``... --columns=_uuid,name list interface`` (parsed, i.e. dicts). Reads the columns the way
    ovs-vswitchd does (``bridge.c``), so the IR says what the bridge forwards:

    - the bridge's own internal port (named like the bridge) is not a switch port and is left out;
    - a port of two interfaces or more is a bond: a ``Lag`` named after the port (OVS bonds carry the
      model's LAG name, so model and bridge match LAGs by name), members sorted naturally, ``lacp``
      active/passive reads as lacp, off/unset as static; no ``trunks`` is every VLAN;
    - no ``vlan_mode`` means access when a ``tag`` is set (OVS then ignores ``trunks``), else trunk;
      access reads as ``AccessPort(vlan=tag)`` (no tag: VLAN 0, OVS's "no VLAN", which no model
      names, so the diff always sets one); a bond in access mode reads as a LAG carrying nothing
      (``allowed=()``), as ``parse_cisco_ios`` reads a port-channel that is not a trunk;
    - trunk reads as ``Trunk(allowed=trunks or ALL_VLANS, native=None)`` (OVS ignores the tag of a
      trunk port); native-tagged/native-untagged as a trunk whose ``native`` is the tag;
    - the description is ``external_ids:description``;
    - the VLANs (OVS has none of its own) are those the ports use, except the implicit every-VLAN
      list of a trunk without ``trunks``, each named like IOS names an unnamed VLAN (``VLAN0020``).

    - an SVI is a port ``vlan<N>`` of one interface of type ``internal`` (the interface table lists
      ``type``) in access VLAN N: an ``Svi`` whose address is the interface's first IPv4 address in
      ``kernel`` (``ovs_kernel_view``; "" when it has none or no kernel view was given) and whose
      description is the port's. Such a port in another VLAN is not an SVI but the plain port it is.

    Raises ``SwitchError`` with the path of the first value it cannot read (``ovs.port[3].tag``)."""
    names_by_uuid: dict[str, str] = {}
    internal: set[str] = set()
    for j, row in enumerate(_ovs_table(interfaces, "interface", OVS_INTERFACE_COLUMNS)):
        uuid = _ovs_uuid(row["_uuid"], f"ovs.interface[{j}]._uuid")
        if not isinstance(row["name"], str) or not row["name"]:
            raise SwitchError(f"ovs.interface[{j}].name", f"expected an interface name, found {row['name']!r}")
        names_by_uuid[uuid] = row["name"]
        if row.get("type") == "internal":
            internal.add(row["name"])
    kernel = kernel or {}

    access, trunks, bonds, svis = [], [], [], []
    for i, row in enumerate(_ovs_table(ports, "port", OVS_PORT_COLUMNS)):
        path = f"ovs.port[{i}]"
        name = row["name"]
        if not isinstance(name, str) or not name:
            raise SwitchError(f"{path}.name", f"expected a port name, found {name!r}")
        if name == bridge:
            continue
        members = []
        for ref in _ovs_set(row["interfaces"], f"{path}.interfaces"):
            uuid = _ovs_uuid(ref, f"{path}.interfaces")
            if uuid not in names_by_uuid:
                raise SwitchError(f"{path}.interfaces", f"interface {uuid} of port {name!r} is not in the interface table: "
                                  "read both tables in one go (the bridge changed in between?)")
            members.append(names_by_uuid[uuid])
        if not members:
            raise SwitchError(f"{path}.interfaces", f"port {name!r} has no interface (OVSDB requires one): is this a port table?")
        tag = _ovs_optional(row["tag"], f"{path}.tag", f"a VLAN id ({_OVS_NO_VLAN}-{VLAN_MAX})",
                            lambda v: _is_int(v) and _OVS_NO_VLAN <= v <= VLAN_MAX)
        allowed_raw = _ovs_set(row["trunks"], f"{path}.trunks")
        for vid in allowed_raw:
            if not _is_int(vid) or not VLAN_MIN <= vid <= VLAN_MAX:
                raise SwitchError(f"{path}.trunks", f"expected VLAN ids ({VLAN_MIN}-{VLAN_MAX}), found {vid!r} in {row['trunks']!r}")
        vlan_mode = _ovs_optional(row["vlan_mode"], f"{path}.vlan_mode", f"one of {', '.join(_OVS_VLAN_MODES)}",
                                  lambda v: v in _OVS_VLAN_MODES)
        lacp = _ovs_optional(row["lacp"], f"{path}.lacp", "one of active, passive, off", lambda v: v in ("active", "passive", "off"))
        external_ids = _ovs_map(row["external_ids"], f"{path}.external_ids")
        description = external_ids.get("description", "")
        if not isinstance(description, str):
            raise SwitchError(f"{path}.external_ids", f"expected a string description, found {description!r}")

        mode = vlan_mode or ("access" if tag is not None else "trunk")
        allowed = tuple(sorted(set(allowed_raw))) or ALL_VLANS
        native = (tag or None) if mode in _OVS_NATIVE_MODES else None  # tag 0: untagged frames in no VLAN, as trunk
        svi_vlan = _ovs_svi_vlan(name)
        if svi_vlan is not None and members == [name] and name in internal and tag == svi_vlan and mode == "access":
            addresses = kernel.get(name, {}).get("addresses") or [""]
            svis.append(Svi(vlan=svi_vlan, address=addresses[0], description=description))
        elif len(members) > 1:
            bonds.append(dict(name=name, members=tuple(sorted(members, key=port_key)), mode="lacp" if lacp in ("active", "passive") else "static",
                              allowed=() if mode == "access" else allowed, native=native, description=description))
        elif mode == "access":
            access.append(AccessPort(name=name, vlan=_OVS_NO_VLAN if tag is None else tag, description=description))
        else:
            trunks.append(Trunk(name=name, allowed=allowed, native=native, description=description))

    # Numbered like compile_switch numbers LAGs, by position when the name has no digits; OVSDB's row
    # order is arbitrary, so the position is in the natural order of the names (deterministic).
    bonds.sort(key=lambda b: port_key(b["name"]))
    lags = [Lag(number=_channel_number(b["name"], k), **b) for k, b in enumerate(bonds)]
    used = {p.vlan for p in access if p.vlan != _OVS_NO_VLAN} | {v.vlan for v in svis}
    for item in (*trunks, *lags):
        used |= set(item.allowed) if item.allowed != ALL_VLANS else set()
        used |= {item.native} if item.native is not None else set()
    return _sorted_config(switch, [Vlan(id=v, name=f"VLAN{v:04d}") for v in used], access, trunks, lags, svis)


@dataclass(frozen=True)
class _OvsColumns:
    """The columns of one OVS port that the operations manage, as they are written: ``trunks`` ()
    is the empty column (every VLAN), ``lacp`` is None on a plain port."""

    tag: int | None
    trunks: tuple[int, ...]
    vlan_mode: str | None
    description: str = ""
    lacp: str | None = None


# What ``add-port``/``add-bond`` create: no tag, no trunks, no vlan_mode, i.e. OVS's own default, a
# trunk carrying every VLAN. Never a target: it is the starting point of a port the operations add.
_OVS_NEW_PORT = _OvsColumns(tag=None, trunks=(), vlan_mode=None)
# The factory default we define for OVS, as the lab's physical switches ship: access port in VLAN 1.
_OVS_FACTORY = _OvsColumns(tag=DEFAULT_VLAN, trunks=(), vlan_mode="access")


def _ovs_columns(item) -> _OvsColumns:
    """An IR port, trunk or LAG as the columns that say the same to OVS."""
    lacp = _OVS_LACP[item.mode] if isinstance(item, Lag) else None
    if isinstance(item, AccessPort) or (isinstance(item, Lag) and not item.allowed):
        # An access bond (parsed, allowed=()) has lost its tag in the IR; a target never is one.
        return _OvsColumns(tag=getattr(item, "vlan", None), trunks=(), vlan_mode="access", description=item.description, lacp=lacp)
    trunks = () if item.allowed == ALL_VLANS else tuple(item.allowed)
    return _OvsColumns(tag=item.native, trunks=trunks, vlan_mode="trunk" if item.native is None else "native-untagged",
                       description=item.description, lacp=lacp)


def _ovs_target(was, want, state: str, path: str):
    """What ``state`` makes of port ``was`` (IR, None: new) given the model's ``want``. ``merged`` is
    trunk-safe like ``trunk_change``: a trunk that stays a trunk keeps every VLAN it carries (its
    list becomes the union; one without ``trunks`` carries every VLAN and stays so), a native VLAN
    or description the model does not give is kept. The other states take ``want`` as it is."""
    if not isinstance(want, AccessPort) and not want.allowed:
        raise SwitchError(f"{path}.allowed", "an empty trunks list means every VLAN to OVS: give it its networks")
    if state != "merged" or was is None:
        return want
    description = want.description or was.description
    if isinstance(want, AccessPort) or isinstance(was, AccessPort) or not was.allowed:
        return replace(want, description=description)
    allowed = tuple(sorted(set(was.allowed) | set(want.allowed)))
    return replace(want, allowed=allowed, native=want.native if want.native is not None else was.native, description=description)


def _ovsdb_string(text: str) -> str:
    """``text`` as an OVSDB string atom for ovs-vsctl: double-quoted, ``"`` and ``\\`` (and control
    characters) backslash-escaped, which ovs-vsctl unescapes like JSON."""
    return json.dumps(text, ensure_ascii=False)


def _ovs_port_operations(name: str, was: _OvsColumns, want: _OvsColumns) -> list[list[str]]:
    """ONE ``set port`` with every column that differs, then the ``clear``/``remove`` of the columns
    that must become empty. [] when nothing differs."""
    sets: list[str] = []
    if want.lacp is not None and want.lacp != was.lacp:
        sets.append(f"lacp={want.lacp}")
    if want.tag is not None and want.tag != was.tag:
        sets.append(f"tag={want.tag}")
    if want.trunks and want.trunks != was.trunks:
        sets.append("trunks=" + ",".join(str(v) for v in want.trunks))
    if want.vlan_mode is not None and want.vlan_mode != was.vlan_mode:
        sets.append(f"vlan_mode={want.vlan_mode}")
    if want.description and want.description != was.description:
        sets.append(f"external_ids:description={_ovsdb_string(want.description)}")
    out = [["set", "port", name, *sets]] if sets else []
    if want.tag is None and was.tag is not None:
        out.append(["clear", "port", name, "tag"])
    if not want.trunks and was.trunks:
        out.append(["clear", "port", name, "trunks"])
    if want.vlan_mode is None and was.vlan_mode is not None:
        out.append(["clear", "port", name, "vlan_mode"])
    if not want.description and was.description:
        out.append(["remove", "port", name, "external_ids", "description"])
    return out


def ovs_operations(before: SwitchConfig, after: SwitchConfig, state: str, bridge: str = "br0") -> list[list[str]]:
    """The ``ovs-vsctl`` operations (argument lists without ``ovs-vsctl`` and without the ``--``
    that joins them into one transaction) that take the bridge from ``before`` (``parse_linux_ovs``)
    to what ``state`` asks of ``after`` (the model), with the semantics of ``diff_commands``:

    - ``merged``: the model's ports and bonds get its settings, a trunk's list only grows (the union,
      see ``_ovs_target``), a bond only gains members; ports the model does not name are not touched.
    - ``replaced``: the model's ports and bonds get exactly its settings (exact list, description
      removed when the model has none, members the model does not list leave the bond).
    - ``overridden``: ``replaced``, plus every other port reset to the factory default and every bond
      the model does not name removed, its interfaces back as factory-default ports.
    - ``deleted``: the model's ports that exist reset to the factory default, its bonds that exist
      removed, their interfaces back as factory-default ports.

    The factory default is access VLAN 1 (``tag=1 vlan_mode=access``, no trunks, no description),
    never OVS's own default, which would make an unused port a trunk carrying every VLAN.

    A port is changed with one ``set port`` of the columns that differ (plus ``clear``/``remove`` of
    those that must become empty); bonds come first (the ones that go, then the model's), then the
    ports in natural order; [] when the bridge already is what the state asks (run twice, change
    once). A model port that is not on the bridge is a ``SwitchError`` (ports are cables: this does
    not invent them); a model bond that is not is created from its interfaces (``add-bond``, after
    ``del-port`` of those that are plain ports).

    SVIs follow ``diff_commands``: each SVI of ``after`` is an internal port ``vlan<N>`` in access VLAN
    N, added when missing (after the ports), its tag or description corrected (``merged`` keeps a
    description the model does not give); ``overridden`` removes the SVIs ``after`` does not name when
    it names at least one (a model without SVIs does not manage them: one of them may be how the
    automation reaches the switch); ``deleted`` removes ``after``'s SVIs. Their addresses are
    ``ovs_address_operations``'s. The MLAG of ``after`` has no OVS form and is ignored."""
    if state not in STATES:
        raise ValueError(f"state {state!r} is not one of {', '.join(STATES)}")
    where = f"bridge {bridge} on {before.switch}"
    svi_ports = {_ovs_svi_port(svi.vlan) for svi in after.svis}
    old: dict = {p.name: p for p in (*before.access, *before.trunks)}
    new: dict = {p.name: p for p in (*after.access, *after.trunks)}
    old_bonds, new_bonds = {g.name: g for g in before.lags}, {g.name: g for g in after.lags}
    bond_of = {m: g.name for g in before.lags for m in g.members}
    exact = state in ("replaced", "overridden")
    if state == "deleted":
        new_bonds = {n: g for n, g in new_bonds.items() if n in old_bonds}
        gone = sorted(new_bonds, key=port_key)
    else:
        gone = sorted((n for n in old_bonds if n not in new_bonds), key=port_key) if state == "overridden" else []
    claimed = {m for g in new_bonds.values() for m in g.members} if state != "deleted" else set()

    out: list[list[str]] = []
    done: set[str] = set()  # plain ports already dealt with in the bond section

    def back_as_port(member: str) -> None:
        """An interface leaves a bond: back on the bridge as a port, set as the model says (or the
        factory default), from what add-port gives it."""
        out.append(["add-port", bridge, member])
        target = _ovs_columns(new[member]) if member in new and state != "deleted" else _OVS_FACTORY
        out.extend(_ovs_port_operations(member, _OVS_NEW_PORT, target))
        done.add(member)

    for name in gone:
        out.append(["del-port", bridge, name])
        for member in old_bonds[name].members:
            if member not in claimed:
                back_as_port(member)
    if state != "deleted":
        for name in sorted(new_bonds, key=port_key):
            out += _ovs_bond_operations(old_bonds.get(name), new_bonds[name], state, bridge, where, old, bond_of, gone, done)
            if exact and name in old_bonds:
                for member in old_bonds[name].members:
                    if member not in new_bonds[name].members and member not in claimed:
                        out.append(["del-bond-iface", name, member])
                        back_as_port(member)

    old_svis, new_svis = {v.vlan: v for v in before.svis}, {v.vlan: v for v in after.svis}
    if state == "deleted":
        for name in sorted(set(new) & set(old), key=port_key):
            out += _ovs_port_operations(name, _ovs_columns(old[name]), _OVS_FACTORY)
        return out + [["del-port", bridge, _ovs_svi_port(v)] for v in sorted(set(new_svis) & set(old_svis))]
    for name in sorted(new, key=port_key):
        if name in done:
            continue
        if name not in old:
            if name in bond_of:
                raise SwitchError(f"ports.{name}", f"{name} is a member of bond {bond_of[name]} on {where}, not a port of its own: take "
                                  f"it out of the bond (ovs-vsctl del-bond-iface {bond_of[name]} {name}; overridden does when the model "
                                  "has no such bond) or fix the model")
            what = f"a bond on {where}, not a plain port" if name in old_bonds else f"not a port of {where}"
            raise SwitchError(f"ports.{name}", f"{name} is {what}: plug it in (ovs-vsctl add-port) or fix the model")
        out += _ovs_port_operations(name, _ovs_columns(old[name]), _ovs_columns(_ovs_target(old[name], new[name], state, f"ports.{name}")))
    for vlan in sorted(new_svis):
        out += _ovs_svi_operations(old_svis.get(vlan), old.get(_ovs_svi_port(vlan)), new_svis[vlan], state, bridge)
    if state == "overridden":
        for name in sorted(set(old) - set(new) - done - svi_ports, key=port_key):
            out += _ovs_port_operations(name, _ovs_columns(old[name]), _OVS_FACTORY)
        if new_svis:
            out += [["del-port", bridge, _ovs_svi_port(v)] for v in sorted(set(old_svis) - set(new_svis))]
    return out


def _ovs_svi_operations(was: Svi | None, plain, want: Svi, state: str, bridge: str) -> list[list[str]]:
    """Make SVI ``want`` of the bridge: add its internal port (``was`` and ``plain`` None), make a
    plain port of that name (``plain``, e.g. an internal port someone moved to another VLAN) the
    SVI's, or correct the SVI's description."""
    name = _ovs_svi_port(want.vlan)
    description = want.description or (was.description if was is not None and state == "merged" else "")
    target = _OvsColumns(tag=want.vlan, trunks=(), vlan_mode="access", description=description)
    if was is not None:
        return _ovs_port_operations(name, _OvsColumns(tag=want.vlan, trunks=(), vlan_mode="access", description=was.description), target)
    if plain is not None:
        if isinstance(plain, Trunk) and state == "merged":
            raise SwitchError(f"svis.{name}", f"{name} is a trunk port, not the internal port of SVI {want.vlan}; merged does not "
                              "take VLANs off a trunk: delete the port (ovs-vsctl del-port) or use replaced")
        return (_ovs_port_operations(name, _ovs_columns(plain), target)
                + [["set", "interface", name, "type=internal"]])
    sets = [f"tag={want.vlan}", "vlan_mode=access"] + ([f"external_ids:description={_ovsdb_string(description)}"] if description else [])
    return [["add-port", bridge, name, *sets], ["set", "interface", name, "type=internal"]]


def ovs_address_operations(before: SwitchConfig, after: SwitchConfig, state: str, kernel: dict) -> list[list[str]]:
    """The ``ip`` commands (argument lists without ``ip``) that give the SVIs of ``after`` their
    addresses, after ``ovs_operations`` ran. An SVI is as the model asks when the model's address is
    one of its interface's and the interface is up; else its old address (the first) is deleted and
    the model's added, and the interface set up. ``kernel`` is ``ovs_kernel_view`` of the host before the change; an SVI
    ``ovs_operations`` adds is not in it yet (down, no address). Other addresses of the interface (a
    secondary added by hand) are left alone, as IOS's ``ip address`` leaves its secondaries. [] for
    ``deleted`` (a removed port takes its addresses with it) and when every SVI is as the model asks."""
    if state == "deleted":
        return []
    old_svis = {v.vlan: v for v in before.svis}
    out: list[list[str]] = []
    for svi in after.svis:
        name = _ovs_svi_port(svi.vlan)
        link = kernel.get(name, {"up": False, "addresses": []})
        current = old_svis[svi.vlan].address if svi.vlan in old_svis else ""
        if svi.address not in link["addresses"]:
            if current:
                out.append(["addr", "del", current, "dev", name])
            out.append(["addr", "replace", svi.address, "dev", name])
        if not link["up"]:
            out.append(["link", "set", "dev", name, "up"])
    return out


def _ovs_bond_operations(was: Lag | None, want: Lag, state: str, bridge: str, where: str, old: dict, bond_of: dict, gone: list,
                         done: set) -> list[list[str]]:
    """Create bond ``want`` (``was`` None) or add the members it lacks, then set its columns."""
    path = f"lags.{want.name}"
    if len(want.members) < 2:
        raise SwitchError(f"{path}.members", f"OVS makes a bond of two interfaces or more, LAG {want.name!r} has "
                          f"{', '.join(want.members) or 'none'}: add a member or make it a plain trunk port")
    if want.name in old:
        raise SwitchError(path, f"{want.name} is a plain port on {where}, not a bond: delete it (ovs-vsctl del-port) or rename the LAG")
    out: list[list[str]] = []
    joining = [m for m in want.members if was is None or m not in was.members]
    for member in joining:
        if member in old:
            out.append(["--if-exists", "del-port", bridge, member])
            done.add(member)
        elif member in bond_of and bond_of[member] not in gone:
            raise SwitchError(f"{path}.members", f"{member} is a member of bond {bond_of[member]} on {where}: take it out of that bond "
                              "first (replaced or overridden with the model that no longer lists it there)")
    if was is None:
        out.append(["--may-exist", "add-bond", bridge, want.name, *want.members])
    else:
        out += [["--may-exist", "add-bond-iface", want.name, m] for m in joining]
    target = _ovs_target(was, want, state, path)
    return out + _ovs_port_operations(want.name, _ovs_columns(was) if was is not None else _OVS_NEW_PORT, _ovs_columns(target))


def ovs_commands_text(operations: list[list[str]]) -> list[str]:
    """Each operation as the shell line a person would type (``ovs-vsctl set port ep1 tag=20 ...``),
    quoted for a POSIX shell: the module's ``commands`` return value."""
    return [shlex.join(["ovs-vsctl", *op]) for op in operations]


def ovs_restore_operations(ports: dict, interfaces: dict, operations: list[list[str]], bridge: str = "br0") -> list[list[str]]:
    """The operations that put the bridge back exactly as ``ports``/``interfaces`` (the JSON read
    before the change) describe it, after ``operations`` ran: the rollback a timer on the switch
    runs when a change is not confirmed. Computed before the change is sent, so the timer can be
    armed first; it needs only the rows read and the operations, not the state after.

    Structure first, then columns: bonds the change created are removed; bonds it changed (removed,
    or members added or taken out) are removed and rebuilt with their old members; single-interface
    ports the change added are removed and the ones it took away are plugged back in. Then every port
    of ``ports`` gets its old columns back: ``clear`` of tag, trunks, vlan_mode, lacp and
    external_ids, and one ``set`` of the values it had."""
    rows = _ovs_table(ports, "port", OVS_PORT_COLUMNS)
    names, internal = {}, ovs_internal_interfaces(interfaces)
    for i, item in enumerate(_ovs_table(interfaces, "interface", OVS_INTERFACE_COLUMNS)):
        names[_ovs_uuid(item["_uuid"], f"ovs.interface[{i}]._uuid")] = item["name"]
    members: dict[str, list[str]] = {}
    for i, row in enumerate(rows):
        refs = _ovs_set(row["interfaces"], f"ovs.port[{i}].interfaces")
        members[row["name"]] = [names.get(_ovs_uuid(ref, f"ovs.port[{i}].interfaces"), "") for ref in refs]
    bonds = {name for name, ifaces in members.items() if len(ifaces) > 1}

    created_bonds, touched_bonds, added_ports = [], set(), []
    for op in operations:
        args = [a for a in op if not a.startswith("--")]
        if not args:
            continue
        cmd = args[0]
        if cmd == "add-bond" and args[2] not in members:
            created_bonds.append(args[2])
        elif cmd in ("add-bond-iface", "del-bond-iface") and args[1] in bonds:
            touched_bonds.add(args[1])
        elif cmd == "del-port":
            if args[2] in bonds:
                touched_bonds.add(args[2])
        elif cmd == "add-port" and args[2] not in members:
            added_ports.append(args[2])

    out: list[list[str]] = []
    out += [["--if-exists", "del-port", bridge, name] for name in created_bonds]
    out += [["--if-exists", "del-port", bridge, name] for name in sorted(touched_bonds, key=port_key)]
    out += [["--if-exists", "del-port", bridge, name] for name in added_ports]
    old_members = {m for bond in touched_bonds for m in members[bond]}
    out += [["--if-exists", "del-port", bridge, m] for m in sorted(old_members, key=port_key)]
    for name in sorted(members, key=port_key):
        if name == bridge:
            continue
        if name in touched_bonds:
            out.append(["--may-exist", "add-bond", bridge, name, *members[name]])
        elif name not in bonds:
            # every interface is free again here: a no-op for a port still plugged in
            out.append(["--may-exist", "add-port", bridge, name])
            if name in internal:  # an SVI's port the change removed comes back as the internal port it was
                out.append(["set", "interface", name, "type=internal"])
    for i, row in enumerate(rows):
        name = row["name"]
        if name == bridge:
            continue
        path = f"ovs.port[{i}]"
        out.append(["clear", "port", name, "tag", "trunks", "vlan_mode", "lacp", "external_ids"])
        settings = []
        tag = _ovs_set(row["tag"], f"{path}.tag")
        if tag:
            settings.append(f"tag={tag[0]}")
        trunks = _ovs_set(row["trunks"], f"{path}.trunks")
        if trunks:
            settings.append("trunks=" + ",".join(str(v) for v in sorted(trunks)))
        for column in ("vlan_mode", "lacp"):
            value = _ovs_set(row[column], f"{path}.{column}")
            if value:
                settings.append(f"{column}={value[0]}")
        for key, value in sorted(_ovs_map(row["external_ids"], f"{path}.external_ids").items()):
            settings.append(f"external_ids:{key}={_ovsdb_string(str(value))}")
        if settings:
            out.append(["set", "port", name, *settings])
    return out


def ovs_restore_address_operations(interfaces: dict, kernel: dict, operations: list[list[str]],
                                   address_operations: list[list[str]]) -> list[list[str]]:
    """The ``ip`` commands (without ``ip``) that put back, after ``ovs_restore_operations``, the
    addresses and link state ``kernel`` (``ovs_kernel_view`` before the change) held for each
    internal port the change touched: one whose address or link state it changed, or one it removed (the restore
    brings the port back without its address). A port the change added goes with the restore's
    ``del-port``."""
    internal = ovs_internal_interfaces(interfaces)
    touched = {op[-1] for op in address_operations if op[:2] in (["addr", "del"], ["addr", "replace"])}
    touched |= {op[3] for op in address_operations if op[:3] == ["link", "set", "dev"]}
    touched |= {op[-1] for op in operations if [a for a in op if not a.startswith("--")][:1] == ["del-port"]}
    out: list[list[str]] = []
    for name in sorted(touched & internal & set(kernel), key=port_key):
        out.append(["-4", "addr", "flush", "dev", name])
        out += [["addr", "add", address, "dev", name] for address in kernel[name]["addresses"]]
        out.append(["link", "set", "dev", name, "up" if kernel[name]["up"] else "down"])
    return out
