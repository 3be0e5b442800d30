"""Every lab host answers over SSH as Ansible reaches it, with its host key checked."""

from __future__ import annotations

import subprocess

import pytest
from conftest import REPO, ssh


def test_every_container_host_answers_over_ssh_with_its_own_host_key(lab):
    for c in lab.model["containers"]:
        result = ssh(lab, c["ssh_address"], "hostname && systemctl is-system-running --wait || true", check=False)
        assert result.returncode == 0, f"{c['host']}: ssh failed: {result.stderr}"
        lines = result.stdout.split()
        assert lines[0] == c["host"], f"{c['ssh_address']} answered as {lines[0]}, expected {c['host']}"
        assert lines[1] in ("running", "degraded"), f"{c['host']}: systemd is {lines[1]}"


def test_a_wrong_host_key_is_refused(lab, tmp_path):
    """StrictHostKeyChecking is on: a known_hosts that does not match must stop the connection."""
    first, second = lab.model["containers"][:2]
    known = (lab.state.ssh / "known_hosts").read_text().splitlines()
    key_of_second = next(line for line in known if second["ssh_address"] in line.split()[0].split(","))
    forged = tmp_path / "known_hosts"
    forged.write_text(f"{first['ssh_address']} {' '.join(key_of_second.split()[1:])}\n")
    result = subprocess.run(
        ["ssh", "-i", str(lab.state.ssh / "id_ed25519"), "-o", f"UserKnownHostsFile={forged}", "-o", "StrictHostKeyChecking=yes",
         "-o", "BatchMode=yes", f"root@{first['ssh_address']}", "true"], capture_output=True, text=True, check=False, timeout=30)
    assert result.returncode != 0
    assert "HOST IDENTIFICATION HAS CHANGED" in result.stderr or "Host key verification failed" in result.stderr


@pytest.mark.parametrize("network", ["mgmt", "servers"])
def test_hosts_reach_each_other_on_a_shared_network(lab, network):
    # Recovery hosts are left out: their leg in the servers network is down except during a failover.
    members = [(c, i) for c in lab.model["containers"] for i in c["interfaces"]
               if i["network"].endswith(f"-{network}") and not c["host"].startswith("rec")]
    assert len(members) >= 2
    (src, _), (_, dst_iface) = members[0], members[-1]
    result = ssh(lab, src["ssh_address"], f"ping -c1 -W2 {dst_iface['address']}", check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_networks_are_internal_and_only_the_firewall_pair_routes_between_them(lab):
    """The lab's networks do not route into each other: a host reaches another zone only through its
    default route, its zone's gateway (the firewall pair's VIP, tests/integration/test_firewall.py).
    A host without one, such as a recovery host, has no route to another zone at all."""
    dns = next(c for c in lab.model["containers"] if c["host"] == "dns1")
    result = ssh(lab, dns["ssh_address"], "ip -4 route get 172.31.30.61", check=False)
    assert result.returncode == 0 and " via 172.31.20.254 " in result.stdout, result.stdout + result.stderr
    rec = next(c for c in lab.model["containers"] if c["host"] == "rec1")
    result = ssh(lab, rec["ssh_address"], "ping -c1 -W1 172.31.30.61", check=False)
    assert result.returncode == 2 and "unreachable" in (result.stdout + result.stderr).lower(), result.stdout + result.stderr


def test_gratuitous_arp_moves_an_address_in_its_neighbours_arp_cache(lab):
    """What a DR recovery does when it takes over an address: the neighbours learn the new holder
    from twinsite.dc.gratuitous_arp at once, without sending anything themselves."""
    hosts = {c["host"]: c for c in lab.model["containers"]}
    address = "172.31.20.199"
    old_mac = ssh(lab, hosts["dns1"]["ssh_address"], "cat /sys/class/net/$(ip -o -4 addr show to 172.31.20.0/24 | awk '{print $2}')/address").stdout.strip()
    new_mac = ssh(lab, hosts["db1"]["ssh_address"], "cat /sys/class/net/$(ip -o -4 addr show to 172.31.20.0/24 | awk '{print $2}')/address").stdout.strip()
    assert old_mac and new_mac and old_mac != new_mac
    add = f"ip addr add {address}/24 dev $(ip -o -4 addr show to 172.31.20.0/24 | awk '{{print $2; exit}}')"
    try:
        ssh(lab, hosts["dns1"]["ssh_address"], add)
        ssh(lab, hosts["web1"]["ssh_address"], f"ping -c1 -W2 {address}")
        assert old_mac in ssh(lab, hosts["web1"]["ssh_address"], f"ip neigh show {address}").stdout
        ssh(lab, hosts["dns1"]["ssh_address"], f"ip addr del {address}/24 dev $(ip -o -4 addr show to {address} | awk '{{print $2}}')")
        ssh(lab, hosts["db1"]["ssh_address"], add)
        run = subprocess.run(["ansible", "-i", "inventory/lab", "db1", "-m", "twinsite.dc.gratuitous_arp", "-a", f"address={address}", "-o"],
                             cwd=REPO, capture_output=True, text=True, check=False, timeout=120)
        assert run.returncode == 0 and "CHANGED" in run.stdout, run.stdout + run.stderr
        assert new_mac in ssh(lab, hosts["web1"]["ssh_address"], f"ip neigh show {address}").stdout
    finally:
        for host in ("dns1", "db1"):
            ssh(lab, hosts[host]["ssh_address"], f"ip -o -4 addr show to {address}/32 | awk '{{print $2}}' | "
                                                  f"xargs -r -I@ ip addr del {address}/24 dev @", check=False)
        ssh(lab, hosts["web1"]["ssh_address"], f"ip neigh flush to {address}", check=False)
