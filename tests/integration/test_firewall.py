"""The lab's own HA firewall pair (fw1 primary room, fw2 secondary room), converged from the site
model by playbooks/firewall.yml and proven by traffic between the lab's zones: every flow of the
policy's flow matrix passes or is blocked as the model says, every VIP sits on one node, and a hard
stop of that node moves them to the other while an established connection keeps working."""

from __future__ import annotations

import json
import re
import socket
import subprocess

import pytest
from conftest import podman
from test_site_playbook import REPO, run_playbook

# What a source host runs: one TCP connection per flow, all at once, each with its own verdict.
# A flow passes when the connection is accepted, and is blocked when it times out or has no route.
# A refused connection means the packet got through to a host that does not listen: that is an
# error of the test bench (the service is not running), not a verdict on the firewall.
TRY_FLOWS = r"""
import json, socket, sys, threading
flows, out = json.loads(sys.argv[1]), {}
def one(i, f):
    s = socket.socket(); s.settimeout(3)
    try:
        s.bind((f["source"], 0)); s.connect((f["destination"], f["port"])); out[i] = "pass"
    except (TimeoutError, socket.timeout): out[i] = "blocked"
    except OSError as e: out[i] = "blocked" if e.errno in (101, 113) else "error: " + (e.strerror or str(e))
    finally: s.close()
threads = [threading.Thread(target=one, args=(i, f)) for i, f in enumerate(flows)]
[t.start() for t in threads]; [t.join() for t in threads]
print(json.dumps([out[i] for i in range(len(flows))]))
"""


def container(lab, host: str) -> dict:
    return next(c for c in lab.model["containers"] if c["host"] == host)


def held_vips(name: str) -> set[str]:
    out = podman("exec", name, "ip", "-4", "-o", "addr", "show").stdout
    return {m for m in re.findall(r"inet (\S+)/\d+", out) if m.endswith(".254")}


def evaluate(expression: str, host: str = "fw1"):
    """What the inventory says, as Ansible computes it (group_vars, filters) for host."""
    run = subprocess.run(["ansible", "-i", "inventory/lab", host, "-m", "ansible.builtin.debug", "-a", f"msg={{{{ {expression} }}}}", "-o"],
                         cwd=REPO, capture_output=True, text=True, check=False, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads(run.stdout.split("=>", 1)[1])["msg"]


@pytest.fixture(scope="module")
def pair(lab, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("firewall")
    # The flows end at the lab's real services (the portal, DNS, the backup repository).
    listening = all(_connects(addr, port) for addr, port in (("172.31.20.43", 80), ("172.31.20.41", 53), ("172.31.50.31", 8000)))
    if not listening:
        services = run_playbook("workloads.yml", tmp)
        assert services.returncode == 0, services.stdout[-3000:]
        repository = run_playbook("backup.yml", tmp, "-e", "twinsite_backup_run_now=false")
        assert repository.returncode == 0, repository.stdout[-3000:]
    run = run_playbook("firewall.yml", tmp)
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-2000:]
    return run, tmp


def _connects(address: str, port: int) -> bool:
    try:
        socket.create_connection((address, port), timeout=2).close()
        return True
    except OSError:
        return False


def test_every_vip_is_on_the_preferred_master_and_none_on_the_other(pair, lab):
    vips = {n["gateway"] for n in lab.model["networks"] if n["gateway"]}
    assert len(vips) == 6
    assert held_vips("tsl-fw1") == vips
    assert held_vips("tsl-fw2") == set()


def test_each_zone_host_routes_to_other_zones_only_through_the_pair(pair, lab):
    for host, gateway in (("client1", "172.31.30.254"), ("dns1", "172.31.20.254"), ("backup1", "172.31.50.254")):
        route = podman("exec", container(lab, host)["name"], "ip", "-4", "route", "show", "default").stdout
        assert route.startswith(f"default via {gateway} "), f"{host}: {route!r}"
    # a recovery host has none: a drill's rebuilt services have no way to production
    route = podman("exec", "tsl-rec1", "ip", "-4", "route", "show", "default")
    assert route.returncode == 0 and route.stdout.strip() == ""


def test_the_flow_matrix_passes_and_blocks_as_the_model_says(pair, lab):
    flows = evaluate("firewall_pair_required_flows")
    matrix = [f for f in _matrix() if f["protocol"] == "tcp"]
    assert any(f["expect"] == "pass" for f in matrix) and any(f["expect"] == "blocked" for f in matrix)
    # the role checks all of these after every load, except the one the failover test proves
    assert {(f["source_host"], f["destination"], f["port"]) for f in flows} == {
        (f["source_host"], f["destination"], f["port"]) for f in matrix if f["rule"] != "users-apps"}
    checked = [f for f in matrix if f["rule"] != "users-apps"]
    got = {}
    for source in sorted({f["source_host"] for f in checked}):
        mine = [f for f in checked if f["source_host"] == source]
        run = podman("exec", container(lab, source)["name"], "python3", "-c", TRY_FLOWS, json.dumps(mine))
        assert run.returncode == 0, run.stderr
        got.update({(f["rule"], source, f["destination"], f["port"]): v for f, v in zip(mine, json.loads(run.stdout), strict=True)})
    wrong = {k: v for k, v in got.items() if v != next(f["expect"] for f in checked if (f["rule"], f["source_host"], f["destination"], f["port"]) == k)}
    assert not wrong, f"flows not as the model says (rule, from, to, port -> got): {wrong}"
    assert len(got) == len(checked)
    # every accept rule between the lab's zone hosts, and a denied probe between every other pair of zones
    assert {k[0] for k, v in got.items() if v == "pass"} == {"users-to-portal", "users-dns", "servers-to-backup"}
    assert sum(1 for k in got if k[0] == "default-deny") == 4


def test_dns_over_udp_from_the_users_zone_is_answered_through_the_pair(pair, lab):
    udp = [f for f in _matrix() if f["protocol"] == "udp"]
    assert udp and all(f["expect"] == "pass" for f in udp)
    for flow in udp:
        run = podman("exec", container(lab, flow["source_host"])["name"], "dig", "+short", "+notcp", "+time=2", "+tries=1",
                     "-b", flow["source"], f"@{flow['destination']}", "portal.town.example")
        assert run.stdout.strip() == "172.31.20.43", run.stdout + run.stderr


def test_hard_stop_of_fw1_moves_every_vip_to_fw2_and_an_established_connection_survives(pair, lab):
    _, tmp = pair
    run = run_playbook("firewall_failover_test.yml", tmp, "-e", "firewall_failover_client=client1",
                       "-e", "firewall_failover_server=web1", "-e", "firewall_failover_port=8080", "-e", "firewall_failover_outage=5")
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-2000:]
    moved = re.search(r"Hard stop of fw1: every VIP on fw2 after ([\d.]+) s", run.stdout)
    assert moved, run.stdout[-3000:]
    assert float(moved.group(1)) <= 3.0
    assert "-> 172.31.20.43:8080 survived" in run.stdout
    assert "fw1 came back" in run.stdout and "took the VIPs back" in run.stdout
    vips = {n["gateway"] for n in lab.model["networks"] if n["gateway"]}
    assert held_vips("tsl-fw1") == vips and held_vips("tsl-fw2") == set()


def test_plan_shows_the_rule_diff_of_a_model_change_and_loads_nothing(pair, lab, tmp_path):
    policy = evaluate("dc_firewall")
    policy["rules"].append({"name": "users-ssh-portal", "from": "users", "to": "servers", "destination": "portal",
                            "services": ["ssh"], "action": "accept", "log": True})
    changed = tmp_path / "policy.json"
    changed.write_text(json.dumps({"dc_firewall": policy}))
    before = podman("exec", "tsl-fw1", "nft", "-s", "list", "ruleset").stdout
    run = subprocess.run(["ansible-playbook", "-i", "inventory/lab", "playbooks/plan.yml", "-e", f"@{changed}"], cwd=REPO,
                         capture_output=True, text=True, check=False, timeout=300)
    assert run.returncode == 2, run.stdout[-4000:] + run.stderr[-2000:]
    assert "plan: drift found (exit 2)" in run.stderr
    text = " ".join(run.stdout.split())  # the YAML callback wraps long lines
    for node in ("fw1", "fw2"):
        assert f"{node}: the ruleset rendered from the model differs from the one applied last: +2 -0 lines" in text
    assert r"+\t\t# dc_firewall.rules[6] users-ssh-portal: users -> servers:portal, ssh (tcp/22), accept" in text, text[-4000:]
    assert podman("exec", "tsl-fw1", "nft", "-s", "list", "ruleset").stdout == before


def test_a_ruleset_that_breaks_a_required_flow_is_rolled_back_by_the_node(pair, lab, tmp_path):
    """A policy that drops the portal for the users zone, with that flow pinned as required: the new
    ruleset goes in on fw1, the flow that passed before the load fails after it, nothing is
    confirmed, fw1 loads the previous ruleset by itself when the window ends, and fw2 is not touched."""
    policy = evaluate("dc_firewall")
    portal = next(r for r in policy["rules"] if r["name"] == "users-to-portal")
    portal["action"] = "drop"
    pinned = [{"source_host": "client1", "destination": "172.31.20.43", "port": 80, "expect": "pass", "protocol": "tcp",
               "rule": "users-to-portal"}]
    extra = tmp_path / "bad.json"
    extra.write_text(json.dumps({"dc_firewall": policy, "firewall_pair_required_flows": pinned, "firewall_pair_confirm_window": 12}))
    before = {fw: podman("exec", fw, "nft", "-s", "list", "ruleset").stdout for fw in ("tsl-fw1", "tsl-fw2")}
    _, tmp = pair
    run = run_playbook("firewall.yml", tmp, "-e", f"@{extra}")
    assert run.returncode != 0, run.stdout[-3000:]
    text = " ".join(run.stdout.split())
    assert "The new ruleset broke required flows: users-to-portal client1 -> 172.31.20.43:80" in text, text[-3000:]
    assert "fw1 restored the previous ruleset by itself after" in text and "nothing was confirmed" in text
    assert {fw: podman("exec", fw, "nft", "-s", "list", "ruleset").stdout for fw in ("tsl-fw1", "tsl-fw2")} == before
    back = podman("exec", "tsl-client1", "python3", "-c", TRY_FLOWS, json.dumps(pinned[:1] and [{**pinned[0], "source": "172.31.30.61"}]))
    assert json.loads(back.stdout) == ["pass"], back.stdout + back.stderr  # through the pair again


def _matrix() -> list[dict]:
    return evaluate("dc_firewall | twinsite.dc.fw_flow_matrix(dc_networks, lab_firewall_endpoints)")
