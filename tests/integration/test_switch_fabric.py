"""The core switches are real 802.1Q switches (Open vSwitch): VLANs separate end hosts, the
trunk between the two rooms carries them, and moving a port changes who it reaches."""

from __future__ import annotations

import contextlib
import subprocess

import pytest
from conftest import netns, podman


def _endpoints(lab):
    return {f"{ep['switch']}:{ep['port']}": ep for ep in lab.model["switch_endpoints"]}


def _tag(container: str, port: str, vlan: int) -> None:
    result = podman("exec", container, "ovs-vsctl", "set", "port", port, f"tag={vlan}")
    assert result.returncode == 0, result.stderr


def _reaches(src: dict, dst: dict) -> bool:
    """True if a ping gets an answer, False if it gets none; anything else (no ping binary, no
    namespace) fails the test, so "unreachable" can never be a broken probe in disguise."""
    ip = dst["address"].split("/")[0]
    result = netns(src["netns"], "ping", "-c1", "-W1", ip)
    assert result.returncode in (0, 1), f"ping from {src['netns']} did not run: {result.stderr.strip()}"
    return result.returncode == 0


@contextlib.contextmanager
def vlans(lab, plan: dict[str, int]):
    """Put endpoints into VLANs for one test, then back to VLAN 1 (the lab's factory default)."""
    eps = _endpoints(lab)
    try:
        for name, vlan in plan.items():
            _tag(eps[name]["container"], eps[name]["port"], vlan)
        yield eps
    finally:
        for name in plan:
            _tag(eps[name]["container"], eps[name]["port"], 1)


def test_same_vlan_reaches_other_vlan_does_not(lab):
    with vlans(lab, {"core1:ep1": 100, "core1:ep2": 100, "core1:ep3": 200}) as eps:
        assert _reaches(eps["core1:ep1"], eps["core1:ep2"])
        assert not _reaches(eps["core1:ep1"], eps["core1:ep3"])
        assert not _reaches(eps["core1:ep2"], eps["core1:ep3"])


def test_trunk_carries_vlans_between_the_rooms(lab):
    with vlans(lab, {"core1:ep1": 100, "core2:ep1": 100, "core1:ep2": 200, "core2:ep2": 300}) as eps:
        assert _reaches(eps["core1:ep1"], eps["core2:ep1"]), "VLAN 100 should cross the trunk"
        assert not _reaches(eps["core1:ep2"], eps["core2:ep2"]), "VLAN 200 and 300 must stay apart"


def test_moving_a_port_changes_reachability(lab):
    with vlans(lab, {"core1:ep1": 100, "core1:ep2": 100, "core1:ep3": 200}) as eps:
        assert not _reaches(eps["core1:ep3"], eps["core1:ep1"])
        _tag(eps["core1:ep3"]["container"], "ep3", 100)
        assert _reaches(eps["core1:ep3"], eps["core1:ep1"])


def test_tcp_passes_within_a_vlan(lab):
    """TCP, not only ping (checksum offload on veth breaks TCP unless the lab turns it off)."""
    with vlans(lab, {"core1:ep1": 100, "core2:ep1": 100}) as eps:
        server, client = eps["core1:ep1"], eps["core2:ep1"]
        proc = subprocess.Popen(["ip", "netns", "exec", server["netns"], "python3", "-c",
                                 "import socket;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
                                 "s.bind(('0.0.0.0',8099));s.listen();c,_=s.accept();c.sendall(b'twinsite-ok');c.close()"])
        try:
            ip = server["address"].split("/")[0]
            got = None
            for _ in range(20):
                result = netns(client["netns"], "python3", "-c",
                               f"import socket;s=socket.create_connection(('{ip}',8099),timeout=2);print(s.recv(64).decode())")
                if result.returncode == 0:
                    got = result.stdout.strip()
                    break
            assert got == "twinsite-ok"
        finally:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("switch", ["core1", "core2"])
def test_switch_bridge_uses_the_userspace_datapath(lab, switch):
    result = podman("exec", f"{lab.model['prefix']}-{switch}", "ovs-vsctl", "get", "bridge", "br0", "datapath_type")
    assert result.stdout.strip().strip('"') == "netdev"
