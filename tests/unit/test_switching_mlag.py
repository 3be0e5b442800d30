"""The Arista MLAG read back and diffed: ``parse_arista_eos`` reads ``mlag configuration`` from an
EOS running-config (three-space indents, settings the IR does not model around it), a rendered model
parses back to the same settings, ``diff_commands(..., platform="arista_eos")`` sends only the MLAG
lines that differ, after what they name and converging in one pass, ``deleted`` removes the MLAG
first, ``merged`` never removes anything, a model without the pair leaves the device's MLAG alone,
and IOS still refuses a pair. The model is test_switching_l3's pair of EOS switches sw1/sw2."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from test_switching_l3 import NETS, PAIR_LAGS, PAIR_PORTS, PAIRS, SVIS, pair

from ansible_collections.twinsite.dc.plugins.module_utils import _switching as sw

EXACT = ("replaced", "overridden")
SETTING_STATES = ("merged", "replaced", "overridden")

# sw1 as ``show running-config`` prints it on EOS: what the model says of sw1, plus what a real
# switch has besides (a management port, trunk groups, the MLAG's reload delays and heartbeat),
# none of which the IR models.
EOS_RUNNING = """\
! Command: show running-config
! device: sw1 (vEOS-lab, EOS-4.30.1F)
!
! boot system flash:/vEOS-lab.swi
!
no aaa root
!
username admin privilege 15 role network-admin secret sha512 $6$notarealhash$abc
!
transceiver qsfp default-mode 4x10G
!
hostname sw1
!
spanning-tree mode mstp
no spanning-tree vlan-id 4094
!
vlan 10
   name mgmt
!
vlan 20
   name servers
!
vlan 4094
   name peer
   trunk group mlag-peer
!
interface Port-Channel10
   description peer link
   switchport mode trunk
   switchport trunk allowed vlan 10,20,4094
   switchport trunk group mlag-peer
!
interface Ethernet1
   description esx01 vmnic0
   switchport mode access
   switchport access vlan 20
!
interface Ethernet2
!
interface Ethernet47
   channel-group 10 mode active
!
interface Ethernet48
   channel-group 10 mode active
!
interface Management1
   ip address 192.0.2.11/24
!
interface Vlan10
   description management
   ip address 172.31.10.2/24
!
interface Vlan4094
   description mlag peer
   no autostate
   ip address 10.255.255.1/30
!
ip routing
!
mlag configuration
   domain-id core
   local-interface Vlan4094
   peer-address 10.255.255.2
   peer-address heartbeat 192.0.2.12 vrf default
   peer-link Port-Channel10
   reload-delay mlag 300
   reload-delay non-mlag 330
!
management api http-commands
   no shutdown
!
end
"""

# What parse_arista_eos makes of EOS_RUNNING's MLAG: what the device holds, no model names.
PARSED_MLAG = sw.Mlag(domain_id=0, peer="", peer_link="Port-channel10", local_address="10.255.255.1", peer_address="10.255.255.2",
                      pair="core", path="", shutdown=False)
SW1_SETTINGS = {"domain-id": "core", "local-interface": "Vlan4094", "peer-address": "10.255.255.2", "peer-link": "Port-Channel10"}
MLAG_BLOCK = ["mlag configuration", " domain-id core", " local-interface Vlan4094", " peer-address 10.255.255.2", " peer-link Port-Channel10"]


def parse(text: str, switch: str = "sw1") -> sw.SwitchConfig:
    return sw.parse_arista_eos(text, switch)


def diff(before: sw.SwitchConfig, after: sw.SwitchConfig, state: str) -> list[str]:
    return sw.diff_commands(before, after, state, platform="arista_eos")


def as_device(cfg: sw.SwitchConfig, mlag: sw.Mlag | None) -> sw.SwitchConfig:
    """``cfg`` as a device reads it: LAGs named after their port-channel, the MLAG as parsed."""
    return replace(cfg, lags=tuple(replace(g, name=f"Port-channel{g.number}") for g in cfg.lags), mlag=mlag)


def _mlag_lines(commands: list[str]) -> list[str]:
    """The ``mlag configuration`` block of ``commands`` (head and its sub-commands), [] if none."""
    if "mlag configuration" not in commands:
        return []
    start = commands.index("mlag configuration")
    end = next((i for i in range(start + 1, len(commands)) if not commands[i].startswith(" ")), len(commands))
    return commands[start:end]


def _setting(line: str) -> str | None:
    """The single-valued setting a sub-command sets, so a new value replaces the old line."""
    words = line.split()
    words = words[1:] if words[:1] == ["no"] else words
    if words[:2] == ["ip", "address"]:
        return "ip address"
    if words and words[0] in ("description", *sw.EOS_MLAG_SETTINGS, "shutdown"):
        return words[0] if words[:2] != ["peer-address", "heartbeat"] else "peer-address heartbeat"
    return None


def _apply(running: str, commands: list[str]) -> str:
    """A crude EOS, enough to check the diff converges (not a simulator): blocks by head line
    (interface names without regard to case, as EOS reads them); a sub-command that sets a
    single-valued setting replaces its line, ``no <setting>`` removes it, others append;
    ``default interface`` empties a block, ``no interface|vlan|mlag configuration`` removes it."""
    blocks: dict[str, tuple[str, list[str]]] = {}
    for head, body in sw._blocks(running):
        blocks.setdefault(head.lower(), (head, []))[1].extend(body)
    current = None
    for cmd in commands:
        if cmd.startswith(" "):
            sub, key = cmd.strip(), _setting(cmd)
            body = blocks[current][1]
            if key is not None:
                body[:] = [line for line in body if _setting(line) != key]
            if not sub.startswith("no ") or key is None:
                body.append(sub)
        elif cmd.startswith("default interface "):
            blocks[f"interface {cmd.split()[-1]}".lower()] = (f"interface {cmd.split()[-1]}", [])
        elif cmd.startswith("no "):
            blocks.pop(cmd[3:].lower(), None)
        else:
            current = cmd.lower()
            blocks.setdefault(current, (cmd, []))
    return "".join(f"{head}\n" + "".join(f"   {line}\n" for line in body) for head, body in blocks.values())


# --- parse ---------------------------------------------------------------------------------------------


def test_parse_a_realistic_eos_running_config():
    cfg = parse(EOS_RUNNING)
    assert cfg.mlag == PARSED_MLAG
    assert sw.eos_mlag_settings(cfg) == SW1_SETTINGS
    # the rest is what parse_cisco_ios reads: the model's sw1, LAGs named after their port-channel
    assert cfg == as_device(pair("sw1"), PARSED_MLAG)
    assert sw.parse_cisco_ios(EOS_RUNNING, "sw1") == replace(cfg, mlag=None)  # IOS has no such block: not read there


def test_parse_reads_one_space_indents_too():
    """``render_arista_eos`` indents by one space, ``show running-config`` on EOS by three."""
    one_space = "\n".join(line[2:] if line.startswith("   ") else line for line in EOS_RUNNING.splitlines())
    assert parse(one_space) == parse(EOS_RUNNING)


def test_parse_without_mlag_is_none():
    text = EOS_RUNNING.split("mlag configuration")[0]
    assert parse(text).mlag is None
    assert parse("").mlag is None


@pytest.mark.parametrize(("lines", "expected"), [
    # a peer link that is not a port-channel of the config: the interface as written
    (["peer-link Ethernet49"], {"peer_link": "Ethernet49"}),
    (["peer-link Port-Channel99"], {"peer_link": "Port-Channel99"}),
    # a local interface without an address (or without an SVI): no local address
    (["local-interface Vlan20"], {"local_address": None}),
    (["local-interface Loopback0"], {"local_address": None}),
    (["shutdown"], {"shutdown": True}),
    (["shutdown", "no shutdown"], {"shutdown": False}),
    (["domain-id 7"], {"pair": "7", "domain_id": 0}),
    (["peer-address heartbeat 192.0.2.12 vrf mgmt"], {"peer_address": None}),
], ids=["ethernet-link", "unknown-channel", "vlan-without-svi", "not-a-vlan", "shutdown", "no-shutdown", "numeric-domain", "heartbeat"])
def test_parse_mlag_settings(lines, expected):
    head = EOS_RUNNING.split("mlag configuration")[0]
    text = head + "mlag configuration\n" + "".join(f"   {line}\n" for line in lines)
    base = sw.Mlag(domain_id=0, peer="", peer_link="", local_address=None, peer_address=None)
    assert parse(text).mlag == replace(base, **expected)


def test_parse_rejects_a_bad_peer_address():
    with pytest.raises(ValueError, match="'peer-address 10.0.0.300': not an IP address"):
        parse("mlag configuration\n   peer-address 10.0.0.300\n")


def test_to_dict_shows_the_mlag():
    assert parse(EOS_RUNNING).to_dict()["mlag"] == {"domain_id": 0, "peer": "", "peer_link": "Port-channel10", "local_address": "10.255.255.1",
                                                    "peer_address": "10.255.255.2", "pair": "core", "path": "", "shutdown": False}
    assert pair().to_dict()["mlag"]["shutdown"] is False
    json.dumps(parse(EOS_RUNNING).to_dict())  # plain data


# --- render -> parse -------------------------------------------------------------------------------------


@pytest.mark.parametrize("switch", ["sw1", "sw2"])
def test_round_trip_keeps_the_models_mlag(switch):
    cfg = pair(switch)
    parsed = parse(sw.render_arista_eos(cfg), switch)
    assert sw.eos_mlag_settings(parsed) == sw.eos_mlag_settings(cfg)
    m, p = cfg.mlag, parsed.mlag
    assert (p.pair, p.local_address, p.peer_address, p.shutdown) == (m.pair, m.local_address, m.peer_address, False)
    assert (p.peer, p.domain_id, p.path, p.peer_link) == ("", 0, "", "Port-channel10")  # what no device holds
    assert replace(parsed, mlag=None) == as_device(cfg, None)


def test_round_trip_with_a_trunk_as_peer_link():
    ports = PAIR_PORTS + [{"switch": s, "port": "Ethernet49", "mode": "trunk", "networks": ["mgmt", "servers", "peer"]} for s in ("sw1", "sw2")]
    cfg = pair(ports=ports, pairs=[dict(PAIRS[0], peer_link="Ethernet49")])
    parsed = parse(sw.render_arista_eos(cfg))
    assert parsed.mlag.peer_link == "Ethernet49"
    for state in SETTING_STATES:
        assert diff(parsed, cfg, state) == []


# --- diff ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("switch", ["sw1", "sw2"])
@pytest.mark.parametrize("state", SETTING_STATES)
def test_applied_by_reparse_the_diff_is_empty(state, switch):
    cfg = pair(switch)
    assert diff(parse(sw.render_arista_eos(cfg), switch), cfg, state) == []


@pytest.mark.parametrize("state", SETTING_STATES)
def test_realistic_config_that_is_the_model_needs_nothing(state):
    """The settings the IR does not model (reload-delay, heartbeat) are not touched."""
    assert diff(parse(EOS_RUNNING), pair(), state) == []


@pytest.mark.parametrize("state", SETTING_STATES)
def test_from_an_empty_switch_the_mlag_comes_last(state):
    commands = diff(parse(""), pair(), state)
    assert commands[-5:] == MLAG_BLOCK
    start = commands.index("mlag configuration")
    # after every VLAN, SVI and port-channel (and member port) it names
    for named in ("vlan 4094", "interface Vlan4094", "interface Port-channel10", "interface Ethernet47", "interface Ethernet48"):
        assert commands.index(named) < start, named


@pytest.mark.parametrize("state", sw.STATES)
def test_applying_the_commands_converges(state):
    for before in ("", EOS_RUNNING.replace("peer-address 10.255.255.2\n", "peer-address 10.255.255.6\n")):
        commands = diff(parse(before), pair(), state)
        assert commands or (state == "deleted" and not before)  # nothing to delete on an empty switch
        applied = parse(_apply(before, commands))
        assert diff(applied, pair(), state) == []


@pytest.mark.parametrize("state", SETTING_STATES)
def test_a_changed_peer_address_is_one_line(state):
    before = parse(EOS_RUNNING.replace("peer-address 10.255.255.2\n", "peer-address 10.255.255.6\n"))
    assert diff(before, pair(), state) == ["mlag configuration", " peer-address 10.255.255.2"]


@pytest.mark.parametrize("state", SETTING_STATES)
def test_each_differing_setting_is_its_line(state):
    text = (EOS_RUNNING.replace("domain-id core\n", "domain-id 1\n").replace("local-interface Vlan4094\n", "local-interface Vlan10\n")
            .replace("peer-link Port-Channel10\n", "peer-link Ethernet1\n"))
    assert diff(parse(text), pair(), state) == ["mlag configuration", " domain-id core", " local-interface Vlan4094", " peer-link Port-Channel10"]


def test_a_shut_mlag_stays_shut_with_merged_only():
    before = parse(EOS_RUNNING.replace("   reload-delay mlag 300\n", "   shutdown\n   reload-delay mlag 300\n"))
    assert before.mlag.shutdown
    assert diff(before, pair(), "merged") == []
    for state in EXACT:
        assert diff(before, pair(), state) == ["mlag configuration", " no shutdown"]
        assert diff(replace(before, mlag=replace(before.mlag, shutdown=False)), pair(), state) == []


def test_deleted_removes_the_mlag_first():
    commands = diff(parse(EOS_RUNNING), pair(), "deleted")
    assert commands[0] == "no mlag configuration"
    assert commands.count("no mlag configuration") == 1
    assert commands[1:] == sw.diff_commands(parse(EOS_RUNNING), pair(), "deleted")  # the rest as before
    # before the port-channel, SVI and VLAN it names go
    assert {"default interface Port-channel10", "no interface Vlan4094", "no vlan 4094"} <= set(commands[1:])
    assert "no mlag configuration" not in diff(parse(EOS_RUNNING.split("mlag configuration")[0]), pair(), "deleted")


def test_deleted_needs_no_peer_network_to_remove():
    cfg = pair(pairs=[dict(PAIRS[0], peer_network=None)])
    assert diff(parse(EOS_RUNNING), cfg, "deleted")[0] == "no mlag configuration"


@pytest.mark.parametrize("state", sw.STATES)
def test_a_model_without_the_pair_leaves_the_mlag_alone(state):
    """Not even overridden removes an MLAG the model does not name (a run without dc_switch_pairs
    would make both switches of a live pair primary)."""
    commands = diff(parse(EOS_RUNNING), pair(pairs=[]), state)
    assert not [c for c in commands if "mlag" in c or c.startswith((" domain-id", " peer-", " local-interface"))]


def test_merged_never_removes():
    """Against a target read from a device (the rollback's), a setting the target lacks goes with
    replaced/overridden only; a device MLAG goes with deleted only."""
    lacking = parse(EOS_RUNNING.replace("   peer-address 10.255.255.2\n", ""))
    assert lacking.mlag.peer_address is None
    assert diff(parse(EOS_RUNNING), lacking, "merged") == []
    for state in EXACT:
        assert diff(parse(EOS_RUNNING), lacking, state) == ["mlag configuration", " no peer-address"]
    for state in SETTING_STATES:
        assert not [c for c in diff(parse(EOS_RUNNING), pair(pairs=[]), state) if c.startswith("no mlag")]
    shut = replace(parse(EOS_RUNNING), mlag=replace(PARSED_MLAG, shutdown=True))
    assert diff(parse(EOS_RUNNING), shut, "merged") == ["mlag configuration", " shutdown"]


def test_a_rollback_target_restores_the_mlag_it_had():
    """What the IOS-style rollback does on EOS: overridden towards the config read before."""
    before = parse(EOS_RUNNING)
    changed_text = _apply(EOS_RUNNING, ["mlag configuration", " peer-address 10.255.255.6", " shutdown"])
    commands = diff(parse(changed_text), before, "overridden")
    assert _mlag_lines(commands) == ["mlag configuration", " peer-address 10.255.255.2", " no shutdown"]
    assert diff(parse(_apply(changed_text, commands)), before, "overridden") == []


def test_a_model_mlag_without_peer_network_is_refused_as_by_the_renderer():
    cfg = pair(pairs=[dict(PAIRS[0], peer_network=None)])
    with pytest.raises(sw.SwitchError) as info:
        diff(parse(""), cfg, "merged")
    assert info.value.path == "dc_switch_pairs[0].peer_network"
    with pytest.raises(sw.SwitchError) as rendered:
        sw.render_arista_eos(cfg)
    assert str(rendered.value) == str(info.value)


@pytest.mark.parametrize("state", sw.STATES)
def test_ios_still_refuses_a_pair(state):
    with pytest.raises(sw.SwitchError) as info:
        sw.diff_commands(parse(""), pair(), state, platform="cisco_ios")
    assert info.value.path == "dc_switch_pairs[0]"
    assert "Cisco IOS (Catalyst) has no MLAG" in info.value.message
    with pytest.raises(sw.SwitchError, match="has no MLAG"):
        sw.render_cisco_ios(pair())
    assert sw.diff_commands(parse(""), pair(pairs=[]), state, platform="cisco_ios") == sw.diff_commands(parse(""), pair(pairs=[]), state)


def test_without_a_platform_the_mlag_is_left_alone_as_before():
    assert "mlag configuration" not in sw.diff_commands(parse(""), pair(), "merged")
    assert sw.diff_commands(parse(EOS_RUNNING), pair(), "deleted")[0] != "no mlag configuration"
    with pytest.raises(ValueError, match="platform 'linux_ovs' is not cisco_ios or arista_eos"):
        sw.diff_commands(parse(""), pair(), "merged", platform="linux_ovs")


# --- the module ---------------------------------------------------------------------------------------


MODEL_ARGS = {"switch": "sw1", "platform": "arista_eos", "networks": NETS, "ports": PAIR_PORTS, "lags": PAIR_LAGS, "svis": SVIS,
              "pairs": PAIRS}


def _run_module(capsys, args: dict) -> dict:
    from ansible.module_utils.testing import patch_module_args

    from ansible_collections.twinsite.dc.plugins.modules import switch_l2

    with patch_module_args({**args, "_ansible_check_mode": args.pop("_check", False)}), pytest.raises(SystemExit):
        switch_l2.main()
    return json.loads(capsys.readouterr().out)


def test_module_parsed_and_rendered(capsys):
    result = _run_module(capsys, {**MODEL_ARGS, "state": "parsed", "running_config": EOS_RUNNING})
    assert result["parsed"]["mlag"]["peer_address"] == "10.255.255.2"
    assert result["parsed"]["mlag"]["peer"] == ""
    result = _run_module(capsys, {**MODEL_ARGS, "state": "rendered"})
    assert result["rendered"][-5:] == MLAG_BLOCK


def test_module_sends_the_one_line_and_reads_it_back(capsys, monkeypatch):
    from ansible_collections.twinsite.dc.plugins.modules import switch_l2

    device = {"text": EOS_RUNNING.replace("peer-address 10.255.255.2\n", "peer-address 10.255.255.6\n")}
    sent = []

    class FakeEos:
        def __init__(self, *args, **kwargs):
            self.conn = None

        def open(self):
            self.conn = object()

        def running_config(self):
            return device["text"]

        def configure(self, commands, *args):
            sent.append(list(commands))
            device["text"] = _apply(device["text"], commands)

        def save(self):
            sent.append(["write memory"])

        def close(self):
            self.conn = None

    monkeypatch.setattr(switch_l2, "IosCli", FakeEos)
    args = {**MODEL_ARGS, "state": "merged", "host": "192.0.2.11", "username": "admin", "password": "pw", "_ansible_diff": True}
    result = _run_module(capsys, args)
    assert result["changed"] and result["commands"] == ["mlag configuration", " peer-address 10.255.255.2"]
    assert sent == [result["commands"], ["write memory"]]
    assert result["before"]["mlag"]["peer_address"] == "10.255.255.6"
    assert result["after"]["mlag"]["peer_address"] == "10.255.255.2"
    assert ("mlag: domain-id core, local-interface Vlan4094, peer-address 10.255.255.2, peer-link Port-Channel10\n"
            in result["diff"]["after"])
    again = _run_module(capsys, {**args})
    assert again["changed"] is False and again["commands"] == []


def test_module_rollback_removes_an_mlag_the_change_made():
    from ansible_collections.twinsite.dc.plugins.modules import switch_l2

    device = switch_l2.IosSwitch.__new__(switch_l2.IosSwitch)
    device.platform = "arista_eos"
    no_mlag = parse(EOS_RUNNING.split("mlag configuration")[0])
    assert device._restore(parse(EOS_RUNNING), no_mlag) == ["no mlag configuration"]
    assert device._restore(no_mlag, no_mlag) == []
    assert device._restore(parse(EOS_RUNNING), parse(EOS_RUNNING)) == []
