"""The switches from the model, by playbooks/switches.yml (role core_switches, module switch_l2):
the Open vSwitch core pair proven by traffic between end hosts, the fake-switches Cisco access
switch by its running-config, a second run that sends nothing, trunk safety on a live trunk, the
config store, and the rollbacks that undo a change nobody confirmed (management cut): the Open
vSwitch timer, and IOS's own revert timer on a fake switch whose minutes are seconds."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import netns, podman
from netmiko import ConnectHandler

from ansible_collections.twinsite.dc.plugins.module_utils._switching import parse_cisco_ios

REPO = Path(__file__).resolve().parents[2]
MODEL = yaml.safe_load((REPO / "inventory" / "lab" / "group_vars" / "all" / "switching.yml").read_text())


def run_switches(tmp: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "TWINSITE_AUDIT_LOG": str(tmp / "audit.jsonl")}
    return subprocess.run(["ansible-playbook", "-i", "inventory/lab", "playbooks/switches.yml",
                           "-e", f"core_switches_store={tmp / 'store'}", *extra],
                          cwd=REPO, env=env, capture_output=True, text=True, check=False, timeout=600)


def recap(output: str) -> dict[str, dict[str, int]]:
    return {host: {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counters)}
            for host, counters in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", output, re.MULTILINE)}


def endpoints(lab) -> dict[str, dict]:
    return {f"{ep['switch']}:{ep['port']}": ep for ep in lab.model["switch_endpoints"]}


def reaches(src: dict, dst: dict) -> bool:
    """A ping answered (True) or not (False); a ping that could not run fails the test."""
    result = netns(src["netns"], "ping", "-c1", "-W1", dst["address"].split("/")[0])
    assert result.returncode in (0, 1), f"ping from {src['netns']} did not run: {result.stderr.strip()}"
    return result.returncode == 0


def port_tag(lab, switch: str, port: str) -> str:
    result = podman("exec", f"{lab.model['prefix']}-{switch}", "ovs-vsctl", "get", "port", port, "tag")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def bridge_rows(lab, switch: str) -> list:
    result = podman("exec", f"{lab.model['prefix']}-{switch}", "ovs-vsctl", "--format=json",
                    "--columns=name,tag,trunks,vlan_mode,lacp,external_ids", "list", "port")
    assert result.returncode == 0, result.stderr
    return sorted(json.loads(result.stdout)["data"], key=lambda row: row[0])


def access_switch(lab):
    spec = next(s for s in lab.model["fake_switches"] if s["name"] == "accsw1")
    conn = ConnectHandler(device_type="cisco_ios", host=spec["host"], port=spec["port"], username=spec["username"],
                          password=spec["password"], secret=spec["password"])
    conn.enable()
    return conn


def running_config(lab) -> str:
    conn = access_switch(lab)
    try:
        return conn.send_command("show running-config")
    finally:
        conn.disconnect()


def interface_block(config: str, name: str) -> list[str]:
    match = re.search(rf"^interface {re.escape(name)}\n((?: .*\n)*)", config, re.MULTILINE)
    assert match, f"no interface {name} in the running-config"
    return [line.strip() for line in match.group(1).splitlines()]


def with_ports(tmp: Path, change) -> str:
    """An extra-vars file holding the lab's dc_switch_ports with ``change`` applied to a copy."""
    ports = [dict(p) for p in MODEL["dc_switch_ports"]]
    change(ports)
    path = tmp / "ports.yml"
    path.write_text(yaml.safe_dump({"dc_switch_ports": ports}))
    return f"@{path}"


@pytest.fixture(scope="module")
def converged(lab, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("switches")
    # A factory-default start (site.yml may have converged them already): every end host in VLAN 1
    # (the lab's cabling), accsw1's model ports reset and its VLANs removed.
    for ep in lab.model["switch_endpoints"]:
        podman("exec", ep["container"], "ovs-vsctl", "set", "port", ep["port"], "tag=1")
    conn = access_switch(lab)
    try:
        conn.send_config_set([f"default interface {p['port']}" for p in MODEL["dc_switch_ports"] if p["switch"] == "accsw1"]
                             + ["no interface Vlan10", "no vlan 10", "no vlan 30"])
    finally:
        conn.disconnect()
    first = run_switches(tmp)
    assert first.returncode == 0, first.stdout[-5000:] + first.stderr[-2000:]
    # A colleague adds VLAN 50 to the access switch's uplink by hand: the second run (merged) must
    # send nothing, and leave it there (trunk safety, test below).
    conn = access_switch(lab)
    try:
        conn.send_config_set(["vlan 50", "interface GigabitEthernet0/1", " switchport trunk allowed vlan add 50"])
    finally:
        conn.disconnect()
    second = run_switches(tmp, "-v")
    assert second.returncode == 0, second.stdout[-5000:] + second.stderr[-2000:]
    return first, second, tmp


def test_the_core_pair_carries_each_network_only_to_its_ports(converged, lab):
    eps = endpoints(lab)
    assert reaches(eps["core1:ep1"], eps["core1:ep2"]), "ep1 and ep2 of core1 are both in servers"
    assert not reaches(eps["core1:ep1"], eps["core1:ep3"]), "ep3 is in users, ep1 in servers"
    assert reaches(eps["core1:ep1"], eps["core2:ep1"]), "servers must cross the peer trunk to core2"
    assert not reaches(eps["core1:ep1"], eps["core2:ep2"]), "core2's ep2 is in backup"
    assert port_tag(lab, "core1", "ep3") == "30"


def pings(src: dict, address: str) -> bool:
    result = netns(src["netns"], "ping", "-c1", "-W1", address)
    assert result.returncode in (0, 1), f"ping from {src['netns']} did not run: {result.stderr.strip()}"
    return result.returncode == 0


def svi_addresses(lab, switch: str, port: str) -> tuple[bool, list[str]]:
    """(up, IPv4 addresses) of an internal port, as the switch's kernel holds them."""
    result = podman("exec", f"{lab.model['prefix']}-{switch}", "ip", "-j", "addr", "show", "dev", port)
    assert result.returncode == 0, result.stderr
    link = json.loads(result.stdout)[0]
    return "UP" in link["flags"], [f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", []) if a["family"] == "inet"]


@contextlib.contextmanager
def second_addresses(eps: dict, addresses: dict[str, str]):
    """Give end hosts an extra address for one test (theirs share 172.31.200.0/24 on purpose)."""
    try:
        for name, cidr in addresses.items():
            added = netns(eps[name]["netns"], "ip", "addr", "add", cidr, "dev", "eth0")
            assert added.returncode == 0, added.stderr
        yield
    finally:
        for name, cidr in addresses.items():
            netns(eps[name]["netns"], "ip", "addr", "del", cidr, "dev", "eth0")


def test_core1s_svi_answers_the_hosts_in_servers_only(converged, lab):
    """core1's SVI (the model's 172.31.20.250 in servers) is an internal port in VLAN 20 with its
    address: hosts in servers reach it, on core1 and across the peer trunk from core2; a host in
    users, even with an address in the same subnet, does not."""
    assert svi_addresses(lab, "core1", "vlan20") == (True, ["172.31.20.250/24"])
    assert port_tag(lab, "core1", "vlan20") == "20"
    eps = endpoints(lab)
    with second_addresses(eps, {"core1:ep1": "172.31.20.111/24", "core2:ep1": "172.31.20.121/24", "core1:ep3": "172.31.20.113/24"}):
        assert pings(eps["core1:ep1"], "172.31.20.250"), "ep1 of core1 is in servers, with the SVI"
        assert pings(eps["core2:ep1"], "172.31.20.250"), "servers crosses the peer trunk to core1's SVI"
        assert not pings(eps["core1:ep3"], "172.31.20.250"), "ep3 is in users: the SVI of servers must not answer it"


def test_the_access_switch_runs_the_model(converged, lab):
    config = running_config(lab)
    assert re.search(r"^vlan 30\n name users$", config, re.MULTILINE)
    desk = interface_block(config, "FastEthernet0/1")
    assert "switchport mode access" in desk and "switchport access vlan 30" in desk and "description zero client desk 1" in desk
    uplink = interface_block(config, "GigabitEthernet0/1")
    assert "switchport mode trunk" in uplink and "description uplink to core1" in uplink
    assert interface_block(config, "Vlan10") == ["description management", "ip address 172.31.10.71 255.255.255.0"]


def test_a_second_run_changes_nothing_and_sends_no_command(converged):
    first, second, _ = converged
    assert recap(first.stdout)["accsw1"]["changed"] >= 1
    totals = recap(second.stdout)
    assert totals and not {h: c["changed"] for h, c in totals.items() if c["changed"]}, second.stdout[-3000:]
    # -v prints each result: every switch_l2 call reported an empty command list
    assert '"commands": []' in second.stdout or "commands: []" in second.stdout
    assert not re.search(r"commands:\n\s+- ", second.stdout)


def test_the_config_store_kept_every_switch_before_its_first_change(converged, lab):
    _, _, tmp = converged
    store = tmp / "store"
    log = subprocess.run(["git", "-C", str(store), "log", "--format=%s"], capture_output=True, text=True, check=True).stdout
    assert log.count("before merged") >= 2, log  # core pair (one commit each, serial), then accsw1
    core1 = json.loads((store / "core1.json").read_text())
    name_at = core1["ports"]["headings"].index("name")
    assert {row[name_at] for row in core1["ports"]["data"]} >= {"ep1", "ep2", "ep3", "peer1"}
    assert "interface FastEthernet0/1" in (store / "accsw1.cfg").read_text()


def test_merged_never_takes_a_vlan_off_a_trunk_and_replaced_does(converged, lab, tmp_path):
    # The fixture added VLAN 50 to the uplink by hand before its second run (merged), which sent nothing.
    assert "switchport trunk allowed vlan 10,30,50" in interface_block(running_config(lab), "GigabitEthernet0/1")
    replaced = run_switches(tmp_path, "--limit", "accsw1", "-e", "core_switches_state=replaced")
    assert replaced.returncode == 0, replaced.stdout[-3000:]
    assert "switchport trunk allowed vlan remove 50" in replaced.stdout
    assert "switchport trunk allowed vlan 10,30" in interface_block(running_config(lab), "GigabitEthernet0/1")


def test_moving_a_port_in_the_model_moves_it_in_traffic(converged, lab, tmp_path):
    eps = endpoints(lab)

    def move(ports):
        next(p for p in ports if p["switch"] == "core1" and p["port"] == "ep2")["network"] = "users"

    moved = run_switches(tmp_path, "--limit", "core1", "-e", with_ports(tmp_path, move))
    try:
        assert moved.returncode == 0, moved.stdout[-4000:]
        assert reaches(eps["core1:ep2"], eps["core1:ep3"]) and not reaches(eps["core1:ep2"], eps["core1:ep1"])
    finally:
        back = run_switches(tmp_path, "--limit", "core1")
        assert back.returncode == 0, back.stdout[-4000:]
    assert reaches(eps["core1:ep2"], eps["core1:ep1"])


def test_a_change_nobody_confirms_because_management_is_cut_undoes_itself(converged, lab, tmp_path):
    """The lockout test: the change (a port moved, the SVI's address changed) goes in with the
    rollback armed and is left for a manual confirmation; then core1's management link goes down, so
    the confirmation cannot arrive. The switch restores the previous port settings and the SVI's
    address by itself when the window ends."""
    eps = endpoints(lab)
    container = f"{lab.model['prefix']}-core1"

    def move(ports):
        next(p for p in ports if p["switch"] == "core1" and p["port"] == "ep1")["network"] = "users"

    svis = tmp_path / "svis.yml"
    svis.write_text(yaml.safe_dump({"dc_switch_svis": [{**s, "address": "172.31.20.251"} if s["switch"] == "core1" else s
                                                       for s in MODEL["dc_switch_svis"]]}))
    window = 10
    before = bridge_rows(lab, "core1")
    assert svi_addresses(lab, "core1", "vlan20") == (True, ["172.31.20.250/24"])
    extra = ("--limit", "core1", "-e", f"core_switches_rollback_seconds={window}", "-e", "core_switches_check_timeout=3")
    applied = run_switches(tmp_path, *extra, "-e", "core_switches_confirm=manual", "-e", with_ports(tmp_path, move), "-e", f"@{svis}")
    applied_at = time.monotonic()
    assert applied.returncode == 0, applied.stdout[-4000:]
    assert "unless confirmed" in applied.stdout
    assert port_tag(lab, "core1", "ep1") == "30", "the change is in, waiting for its confirmation"
    assert svi_addresses(lab, "core1", "vlan20") == (True, ["172.31.20.251/24"])
    assert reaches(eps["core1:ep1"], eps["core1:ep3"])

    assert podman("exec", container, "ip", "link", "set", "eth0", "down").returncode == 0
    try:
        confirm = run_switches(tmp_path, *extra, "-e", "core_switches_confirm_only=true", "-e", with_ports(tmp_path, move), "-e", f"@{svis}")
        assert confirm.returncode != 0, "management is down: the confirmation must not get through"
        assert "did not answer a new connection" in confirm.stdout, confirm.stdout[-3000:]
        time.sleep(max(0.0, window + 2 - (time.monotonic() - applied_at)))
        assert port_tag(lab, "core1", "ep1") == "20", "the switch should have restored ep1 to servers by itself"
    finally:
        podman("exec", container, "ip", "link", "set", "eth0", "up")
    assert reaches(eps["core1:ep1"], eps["core1:ep2"]) and not reaches(eps["core1:ep1"], eps["core1:ep3"])
    ran = podman("exec", container, "journalctl", "-q", "--no-pager", "-u", "twinsite-switch-rollback-br0.service")
    assert "Started" in ran.stdout or "Finished" in ran.stdout or "Deactivated" in ran.stdout, ran.stdout
    # every port exactly as before the change (columns and descriptions), the SVI's address too
    assert bridge_rows(lab, "core1") == before
    assert svi_addresses(lab, "core1", "vlan20") == (True, ["172.31.20.250/24"])


def test_an_ios_change_the_switch_does_not_read_back_is_rolled_back(converged, lab, tmp_path):
    """The CLI's safe apply: after the change, a second, new SSH session reads the switch back; when it
    is not what the model asks, the first session restores the previous config. fake-switches 1.5
    takes a port-channel's switchport lines without keeping them (as a switch that silently drops a
    line would), so a LAG on accsw1 never reads back as the model says."""
    before = running_config(lab)
    lags = tmp_path / "lags.yml"
    lags.write_text(yaml.safe_dump({"dc_lags": [{"switch": "accsw1", "name": "po2", "members": ["FastEthernet0/7", "FastEthernet0/8"],
                                                 "mode": "lacp", "networks": ["mgmt", "users"]}]}))
    run = run_switches(tmp_path, "--limit", "accsw1", "-e", f"@{lags}", "-e", "core_switches_rollback_seconds=20")
    assert run.returncode != 0, "the change does not read back: the run must fail"
    text = " ".join(run.stdout.split())
    assert "reads back different from the model" in text and "the switch reads back as before the change" in text, run.stdout[-3000:]
    # accsw1 has an archive (lab_switch_archive), so the switch itself put its archived config back
    assert "configure revert now" in text, run.stdout[-3000:]
    assert not rollback_pending(lab)
    after = running_config(lab)
    assert parse_cisco_ios(after, "accsw1") == parse_cisco_ios(before, "accsw1")
    assert "channel-group" not in "\n".join(interface_block(after, "FastEthernet0/7"))


def rollback_pending(lab, port: int | None = None) -> bool:
    """True while the switch holds a change under IOS's revert timer (``show archive config rollback timer``)."""
    spec = next(s for s in lab.model["fake_switches"] if s["name"] == "accsw1")
    conn = ConnectHandler(device_type="cisco_ios", host=spec["host"], port=port or spec["port"], username=spec["username"],
                          password=spec["password"], secret=spec["password"])
    try:
        conn.enable()
        return "Timer value" in conn.send_command("show archive config rollback timer")
    finally:
        conn.disconnect()


def test_the_access_switch_took_the_change_under_its_own_revert_timer_and_confirmed_it(converged, lab):
    first, _, _ = converged
    assert re.search(r"^archive\n path flash:twinsite$", running_config(lab), re.MULTILINE)
    assert not rollback_pending(lab), "the run confirmed its change: no revert timer may be left running"


@pytest.fixture
def minute_switch(lab, tmp_path):
    """A fake IOS switch of its own (accsw1's model and login), with an archive and a simulated minute
    of MINUTE seconds, so a revert timer can be watched firing. Yields its SSH port."""
    spec = next(s for s in lab.model["fake_switches"] if s["name"] == "accsw1")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = (tmp_path / "minute-switch.log").open("w")
    proc = subprocess.Popen([sys.executable, str(REPO / "scripts" / "labkit" / "fakeswitch_server.py"), "--model", spec["model"],
                             "--hostname", "accsw1", "--username", spec["username"], "--listen-port", str(port),
                             "--archive-path", "flash:twinsite", "--minute-seconds", str(MINUTE)],
                            env={**os.environ, "TWINSITE_SWITCH_PASSWORD": spec["password"]}, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if sock.recv(8).startswith(b"SSH-"):
                    break
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "minute-switch.log").read_text()
            time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


MINUTE = 8  # seconds in the minute_switch's minute: a run ends (and the test looks) well inside one


def minute_switch_config(lab, port: int) -> str:
    spec = next(s for s in lab.model["fake_switches"] if s["name"] == "accsw1")
    conn = ConnectHandler(device_type="cisco_ios", host="127.0.0.1", port=port, username=spec["username"],
                          password=spec["password"], secret=spec["password"])
    try:
        conn.enable()
        return conn.send_command("show running-config")
    finally:
        conn.disconnect()


def test_an_ios_change_nobody_confirms_is_undone_by_the_switch_itself(lab, minute_switch, tmp_path):
    """The IOS lockout test: the change goes in under the switch's revert timer and is left for a
    manual confirmation, which cannot get through (the switch's management address is unreachable
    from the controller). The switch puts its archived config back by itself when the timer ends;
    nothing on the controller is involved."""
    before = parse_cisco_ios(minute_switch_config(lab, minute_switch), "accsw1")
    extra = ("--limit", "accsw1", "-e", f"ansible_port={minute_switch}", "-e", "core_switches_rollback_seconds=60")
    applied = run_switches(tmp_path, *extra, "-e", "core_switches_confirm=manual")
    applied_at = time.monotonic()
    assert applied.returncode == 0, applied.stdout[-4000:]
    assert "undoes this change by itself in 1 min unless confirmed" in " ".join(applied.stdout.split()), applied.stdout[-3000:]
    assert rollback_pending(lab, minute_switch), "the change must wait under the switch's revert timer"
    held = parse_cisco_ios(minute_switch_config(lab, minute_switch), "accsw1")
    assert held != before and 30 in {v.id for v in held.vlans}, "the change is in, waiting for its confirmation"

    # Management cut: the confirmation is addressed to a port nobody listens on.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    confirm = run_switches(tmp_path, "--limit", "accsw1", "-e", f"ansible_port={dead}", "-e", "core_switches_check_timeout=2",
                           "-e", "core_switches_confirm_only=true")
    assert confirm.returncode != 0 and "did not answer a new connection" in confirm.stdout, confirm.stdout[-3000:]

    time.sleep(max(0.0, MINUTE + 1 - (time.monotonic() - applied_at)))
    assert not rollback_pending(lab, minute_switch)
    assert parse_cisco_ios(minute_switch_config(lab, minute_switch), "accsw1") == before, "the switch should have reverted by itself"


def test_an_ios_change_confirmed_by_a_later_run_stays(lab, minute_switch, tmp_path):
    """core_switches_confirm=manual, then a run with core_switches_confirm_only=true: the switch is
    read back against the model, 'configure confirm' stops its revert timer, and the config is saved."""
    extra = ("--limit", "accsw1", "-e", f"ansible_port={minute_switch}", "-e", "core_switches_rollback_seconds=60")
    applied = run_switches(tmp_path, *extra, "-e", "core_switches_confirm=manual")
    assert applied.returncode == 0, applied.stdout[-4000:]
    assert rollback_pending(lab, minute_switch)
    confirm = run_switches(tmp_path, *extra, "-e", "core_switches_confirm_only=true")
    assert confirm.returncode == 0, confirm.stdout[-4000:]
    assert recap(confirm.stdout)["accsw1"]["changed"] == 1, confirm.stdout[-3000:]
    assert not rollback_pending(lab, minute_switch), "the confirmation must stop the revert timer"
    assert 30 in {v.id for v in parse_cisco_ios(minute_switch_config(lab, minute_switch), "accsw1").vlans}
    again = run_switches(tmp_path, *extra, "-e", "core_switches_confirm_only=true")
    assert again.returncode == 0 and recap(again.stdout)["accsw1"]["changed"] == 0, "nothing left to confirm"
