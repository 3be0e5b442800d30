"""The firewall policy compiler and its Linux renderers: the lab's policy compiles, a bad name is
reported with its model path, and what is rendered is valid for the real tools: every nftables
ruleset is checked (and the lab's loaded) by the kernel's nft in a throw-away network namespace."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.twinsite.dc.plugins.filter import firewall as fw_filters
from ansible_collections.twinsite.dc.plugins.module_utils import _firewall as fw

REPO = Path(__file__).resolve().parents[2]
LAB = REPO / "inventory" / "lab"
NOTIFY = "/usr/local/sbin/twinsite-conntrackd-notify"


def _yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


FIREWALL = _yaml(LAB / "group_vars" / "all" / "firewall.yml")["dc_firewall"]
NETWORKS = _yaml(LAB / "group_vars" / "all" / "networks.yml")["dc_networks"]
HOST_VARS = {p.stem: _yaml(p) for p in sorted((LAB / "host_vars").glob("*.yml"))}


def lab_interfaces(node: str) -> dict[str, str]:
    """network -> interface of a lab firewall node: eth0, eth1, ... in host_interfaces order."""
    return {i["network"]: f"eth{n}" for n, i in enumerate(HOST_VARS[node]["host_interfaces"])}


def lab_addresses(node: str) -> dict[str, str]:
    return {i["network"]: i["address"] for i in HOST_VARS[node]["host_interfaces"]}


def lab_hosts() -> dict[str, list[dict]]:
    """zone -> end points: every non-firewall host of the lab model, plus a DMZ host (the lab has none yet)."""
    zone_of = {n["name"]: n["zone"] for n in NETWORKS}
    hosts: dict[str, list[dict]] = {"dmz": [{"name": "pub1", "address": "172.31.40.10"}]}
    for name, hv in HOST_VARS.items():
        if name.startswith("fw"):
            continue
        for iface in hv.get("host_interfaces") or []:
            hosts.setdefault(zone_of[iface["network"]], []).append({"name": name, "address": iface["address"]})
    return hosts


@pytest.fixture(scope="module")
def policy() -> fw.Policy:
    return fw.compile_policy(FIREWALL, NETWORKS)


@pytest.fixture(scope="module")
def lab_ruleset(policy) -> str:
    return fw.render_nftables(policy, lab_interfaces("fw1"), sync_interface=lab_interfaces("fw1")["intersite"])


# --- running nft for real ---------------------------------------------------------------------------


def _tool(name: str) -> str:
    found = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/sbin/{name}") if os.access(p, os.X_OK)), None)
    if not found:
        pytest.fail(f"{name} is not installed: the rendered rulesets are checked by the kernel's nft in a throw-away network "
                    "namespace; install nftables and util-linux (scripts/setup does)")
    return found


def in_netns(script: str, *args: str) -> subprocess.CompletedProcess:
    """Run ``sh -c script`` in a new, empty network namespace (never the host's firewall)."""
    unshare = _tool("unshare")
    nft = _tool("nft")
    argv = [unshare, "--net"] + ([] if os.geteuid() == 0 else ["--map-root-user"])
    env = dict(os.environ, PATH=f"{Path(nft).parent}:{os.environ.get('PATH', '')}")
    result = subprocess.run([*argv, "sh", "-c", script, "sh", *args], capture_output=True, text=True, timeout=120, env=env)
    if "unshare failed" in result.stderr or "Operation not permitted" in result.stderr:
        pytest.fail(f"cannot make a throw-away network namespace to check the ruleset: {result.stderr.strip()}")
    return result


def nft_check(tmp_path: Path, text: str) -> None:
    path = tmp_path / "ruleset.nft"
    path.write_text(text)
    result = in_netns('nft -c -f "$1"', str(path))
    assert result.returncode == 0, f"nft -c rejected the ruleset:\n{result.stderr}"


def rule_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


# --- compile ---------------------------------------------------------------------------------------


def test_the_lab_policy_compiles_into_zones_objects_rules_and_nat(policy):
    assert [z.name for z in policy.zones] == ["mgmt", "servers", "users", "dmz", "backup", "transit", "drill", "internet"]
    servers = policy.zone("servers")
    assert servers.subnets == ("172.31.20.0/24",)
    assert [(n.name, n.vlan, n.gateway, n.prefixlen) for n in servers.vips] == [("servers", 20, "172.31.20.254", 24)]
    assert policy.zone("internet").networks == ()
    assert policy.zone("drill").vips == ()  # isolated: no gateway, so no VIP
    assert policy.zone_of_network("intersite").name == "transit"
    dns = policy.rules[1]
    assert (dns.name, dns.from_zone, dns.to_zone) == ("users-dns", "users", "servers")
    assert (dns.destination, dns.destinations, dns.sources) == ("dns1", ("172.31.20.41/32",), ())
    assert [(s.protocol, s.ports) for s in dns.services] == [("udp", (53,)), ("tcp", (53,))]
    assert [(r.name, r.action, r.log) for r in policy.rules][-2:] == [("dmz-to-servers", "drop", True), ("users-apps", "accept", False)]
    publish = policy.nat[1]
    assert (publish.type, publish.from_zone, publish.address_cidr, publish.service.ports) == ("destination", "internet", "172.31.20.43/32", (80,))


def test_the_policy_as_plain_data_is_json_and_carries_vips(policy):
    data = policy.to_dict()
    json.dumps(data)  # plain lists, dicts, str, int: what Ansible can pass around
    servers = next(z for z in data["zones"] if z["name"] == "servers")
    assert servers["vips"] == [{"network": "servers", "address": "172.31.20.254", "prefixlen": 24}]
    assert servers["subnets"] == ["172.31.20.0/24"]
    assert data["rules"][0]["services"][0] == {"name": "http", "protocol": "tcp", "ports": [80]}


def _broken(path: str, value):
    model = copy.deepcopy(FIREWALL)
    *parents, last = [int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", path)]
    node = model
    for part in parents:
        node = node[part]
    node[last] = value
    return model


@pytest.mark.parametrize(("path", "value", "words"), [
    ("rules[2].services[0]", "restik", "'restik' is not a service object"),
    ("rules[0].from", "staff", "'staff' is not a zone"),
    ("rules[1].destination", "dns9", "'dns9' is not an address object"),
    ("rules[3].source", "admins", "'admins' is not an address object"),
    ("nat[1].address", "webmail", "'webmail' is not an address object"),
    ("nat[0].to", "wan", "'wan' is not a zone"),
    ("zones[2].networks[0]", "staff", "'staff' is not a network of dc_networks"),
    ("rules[0].action", "allow", "found 'allow', expected one of accept, drop, reject"),
    ("addresses[0].cidr", "172.31.20.43/24", "is not a network in CIDR form"),
])
def test_an_unknown_reference_names_its_model_path(path, value, words):
    with pytest.raises(fw.PolicyError) as err:
        fw.compile_policy(_broken(path, value), NETWORKS)
    assert err.value.path == f"dc_firewall.{path}"
    assert words in str(err.value) and str(err.value).startswith(f"dc_firewall.{path}: ")


def test_unknown_service_lists_the_known_ones():
    with pytest.raises(fw.PolicyError, match=r"known services: apps, dns, dns-tcp, http, restic, ssh"):
        fw.compile_policy(_broken("rules[2].services[0]", "restik"), NETWORKS)


def test_a_rule_name_used_twice_and_a_nat_to_a_network_are_refused():
    with pytest.raises(fw.PolicyError, match=r"^dc_firewall.rules\[1\].name: 'users-to-portal' is already defined at "):
        fw.compile_policy(_broken("rules[1].name", "users-to-portal"), NETWORKS)
    model = copy.deepcopy(FIREWALL)
    model["addresses"].append({"name": "lan", "cidr": "172.31.20.0/24"})
    model["nat"][1]["address"] = "lan"
    with pytest.raises(fw.PolicyError, match=r"^dc_firewall.nat\[1\].address: .*one host address"):
        fw.compile_policy(model, NETWORKS)


def test_a_network_whose_zone_disagrees_with_the_zones_list_is_refused():
    networks = copy.deepcopy(NETWORKS)
    networks[1]["zone"] = "dmz"
    with pytest.raises(fw.PolicyError, match=r"^dc_networks\[1\].zone: network 'servers' says zone 'dmz'"):
        fw.compile_policy(FIREWALL, networks)
    with pytest.raises(fw.PolicyError, match=r"^dc_firewall: is not defined"):
        fw.compile_policy(None, NETWORKS)


# --- nftables --------------------------------------------------------------------------------------


def test_the_lab_ruleset_replaces_only_our_tables(lab_ruleset):
    lines = lab_ruleset.splitlines()
    assert "flush ruleset" not in lab_ruleset
    for family, name in (("inet", "twinsite"), ("ip", "twinsite_nat")):
        start = lines.index(f"table {family} {name} {{}}")
        assert lines[start + 1] == f"delete table {family} {name}"
        assert lines[start + 2] == f"table {family} {name} {{"
    assert lines[1].startswith("# Generated by twinsite.dc from the site model")


def test_the_lab_ruleset_input_keeps_management_vrrp_and_sync_open(lab_ruleset):
    rules = rule_lines(lab_ruleset)
    assert "type filter hook input priority filter; policy drop;" in rules
    assert 'iifname "lo" accept' in rules
    assert "ct state established,related accept" in rules
    assert 'iifname @zone_mgmt tcp dport 22 counter accept comment "management from zone mgmt"' in rules
    assert 'iifname "eth5" udp dport 3780 counter accept comment "conntrackd state sync"' in rules
    vrrp = next(r for r in rules if "ip protocol 112" in r)
    assert all(f'"eth{n}"' in vrrp for n in range(6))
    assert 'set zone_servers { type ifname; elements = { "eth1" } }' in rules


def test_the_lab_ruleset_forward_has_one_rule_per_model_rule_in_model_order(lab_ruleset, policy):
    forward = lab_ruleset.split("chain forward {")[1].split("\t}")[0]
    commented = [re.search(r'comment "([^"]+)"$', line).group(1) for line in rule_lines(forward) if " comment " in line]
    assert commented == [r.name for r in policy.rules] + ["default-deny"]
    assert ('iifname @zone_users oifname @zone_servers ip daddr 172.31.20.41 meta l4proto . th dport { tcp . 53, udp . 53 } counter accept '
            'comment "users-dns"') in forward
    assert 'log prefix "twinsite servers-to-backup " accept comment "servers-to-backup"' in forward
    assert 'meta l4proto tcp th dport 80 counter log prefix "twinsite dmz-to-servers " drop comment "dmz-to-servers"' in forward
    assert "type filter hook forward priority filter; policy drop;" in forward


def test_a_zone_without_networks_is_a_commented_no_op(lab_ruleset, tmp_path):
    # The lab's internet zone has no network: its NAT entries are no-ops, never an undefined set.
    assert "@zone_internet" not in "\n".join(rule_lines(lab_ruleset))
    assert "# no-op (dc_firewall.nat[0]): zone 'internet' has no interface on this node" in lab_ruleset
    assert "# no-op (dc_firewall.nat[1]): zone 'internet' has no interface on this node" in lab_ruleset
    model = copy.deepcopy(FIREWALL)
    model["rules"].append({"name": "servers-out", "from": "servers", "to": "internet", "services": ["http"], "action": "accept"})
    text = fw.render_nftables(fw.compile_policy(model, NETWORKS), lab_interfaces("fw1"))
    assert "# no-op (dc_firewall.rules[6]): zone 'internet' has no interface on this node" in text
    nft_check(tmp_path, text)


def test_nat_renders_masquerade_and_dnat_when_the_zones_have_interfaces(policy, tmp_path):
    networks = [*NETWORKS, {"name": "uplink", "vlan": 99, "subnet": "192.0.2.0/24", "gateway": "192.0.2.254", "zone": "internet"}]
    model = copy.deepcopy(FIREWALL)
    model["zones"][-1]["networks"] = ["uplink"]
    text = fw.render_nftables(fw.compile_policy(model, networks), {**lab_interfaces("fw1"), "uplink": "eth9"})
    assert 'iifname @zone_servers oifname @zone_internet counter masquerade comment "outbound"' in text
    assert 'iifname @zone_internet meta l4proto tcp th dport 80 counter dnat to 172.31.20.43 comment "publish-portal"' in text
    assert ('iifname @zone_internet ct status dnat ip daddr 172.31.20.43 meta l4proto tcp th dport 80 counter accept '
            'comment "nat publish-portal"') in text
    nft_check(tmp_path, text)


def test_the_lab_ruleset_passes_nft_check(lab_ruleset, tmp_path):
    nft_check(tmp_path, lab_ruleset)


def test_the_lab_ruleset_loads_twice_and_leaves_other_tables_alone(lab_ruleset, tmp_path):
    path = tmp_path / "twinsite.nft"
    path.write_text(lab_ruleset)
    script = ('nft add table inet someone_else && nft add chain inet someone_else c && '
              'nft -f "$1" && nft -f "$1" && nft list tables && nft list table inet twinsite')
    result = in_netns(script, str(path))
    assert result.returncode == 0, f"loading the lab ruleset failed:\n{result.stderr}"
    tables = [line for line in result.stdout.splitlines() if line.startswith("table ")]
    assert tables[:3] == ["table inet someone_else", "table inet twinsite", "table ip twinsite_nat"]
    assert 'comment "users-to-portal"' in result.stdout
    assert "policy drop;" in result.stdout


def test_management_lockout_is_refused(policy):
    interfaces = {k: v for k, v in lab_interfaces("fw1").items() if k != "mgmt"}
    with pytest.raises(fw.PolicyError, match=r"^management.zone: zone 'mgmt' has no interface on this node: .* lock SSH out"):
        fw.render_nftables(policy, interfaces)
    with pytest.raises(fw.PolicyError, match=r"^interfaces.nowhere: network 'nowhere' is in no zone"):
        fw.render_nftables(policy, {**lab_interfaces("fw1"), "nowhere": "eth9"})
    with pytest.raises(fw.PolicyError, match=r"^interfaces.servers: 'eth 1' is not an interface name"):
        fw.render_nftables(policy, {**lab_interfaces("fw1"), "servers": "eth 1"})
    text = fw.render_nftables(policy, lab_interfaces("fw1"), management={"zone": "transit", "ports": [2222, 22]})
    assert 'iifname @zone_transit tcp dport { 22, 2222 } counter accept comment "management from zone transit"' in text


def test_the_ruleset_is_deterministic(policy):
    interfaces = lab_interfaces("fw1")
    backwards = dict(reversed(list(interfaces.items())))
    first = fw.render_nftables(policy, interfaces, sync_interface="eth5")
    assert first == fw.render_nftables(fw.compile_policy(copy.deepcopy(FIREWALL), NETWORKS), backwards, sync_interface="eth5")


def test_mixed_port_and_portless_services_render_valid_rules(tmp_path):
    model = copy.deepcopy(FIREWALL)
    model["services"] += [{"name": "ping", "protocol": "icmp", "ports": []}, {"name": "any-udp", "protocol": "udp", "ports": []}]
    model["rules"] += [
        {"name": "mgmt-ping", "from": "mgmt", "to": "servers", "services": ["ping", "ssh", "dns"], "action": "reject", "log": True},
        {"name": "mgmt-udp", "from": "mgmt", "to": "backup", "source": "dns1", "services": ["any-udp", "dns"], "action": "accept"},
        {"name": "mgmt-all", "from": "mgmt", "to": "transit", "services": [], "action": "accept"},
    ]
    text = fw.render_nftables(fw.compile_policy(model, NETWORKS), lab_interfaces("fw1"))
    assert ('meta l4proto . th dport { tcp . 22, udp . 53 } counter log prefix "twinsite mgmt-ping " '
            'reject with icmpx type admin-prohibited comment "mgmt-ping"') in text
    assert 'meta l4proto icmp counter log prefix "twinsite mgmt-ping " reject with icmpx type admin-prohibited comment "mgmt-ping"' in text
    assert 'iifname @zone_mgmt oifname @zone_backup ip saddr 172.31.20.41 meta l4proto udp counter accept comment "mgmt-udp"' in text
    assert 'iifname @zone_mgmt oifname @zone_transit counter accept comment "mgmt-all"' in text
    nft_check(tmp_path, text)


def big_policy(rules: int = 500) -> tuple[dict, list[dict], dict[str, str]]:
    """A site of 20 zones (one without networks) and ``rules`` rules of every shape."""
    networks = [{"name": f"net{i}", "vlan": 100 + i, "subnet": f"10.{i}.0.0/24", "gateway": f"10.{i}.0.254", "zone": f"zone{i}"}
                for i in range(19)]
    zones = [{"name": f"zone{i}", "networks": [f"net{i}"]} for i in range(19)] + [{"name": "internet", "networks": []}]
    zones[0]["name"] = "mgmt"
    networks[0]["zone"] = "mgmt"
    addresses = [{"name": f"host{i}", "cidr": f"10.{i % 19}.0.{10 + i % 200}/32"} for i in range(60)]
    services = [{"name": f"tcp{p}", "protocol": "tcp", "ports": [p, p + 1000]} for p in range(8000, 8040)]
    services += [{"name": f"udp{p}", "protocol": "udp", "ports": [p]} for p in range(5000, 5010)]
    names = [z["name"] for z in zones]
    out = []
    for i in range(rules):
        rule = {"name": f"r-{i:03d}", "from": names[i % 20], "to": names[(i * 7 + 3) % 20],
                "services": [services[i % 40]["name"]] + ([services[40 + i % 10]["name"]] if i % 3 == 0 else []),
                "action": ("accept", "drop", "reject")[i % 3], "log": i % 5 == 0}
        if i % 2:
            rule["destination"] = addresses[i % 60]["name"]
        if i % 4 == 0:
            rule["source"] = addresses[(i + 1) % 60]["name"]
        out.append(rule)
    firewall = {"zones": zones, "addresses": addresses, "services": services, "rules": out,
                "nat": [{"name": "out", "type": "source", "from": "zone1", "to": "zone2"}]}
    return firewall, networks, {f"net{i}": f"eth{i}" for i in range(19)}


def test_a_500_rule_policy_renders_into_one_file_that_nft_accepts(tmp_path):
    firewall, networks, interfaces = big_policy(500)
    policy = fw.compile_policy(firewall, networks)
    text = fw.render_nftables(policy, interfaces)
    definitions = [line for line in text.splitlines() if line.startswith("table inet twinsite ") and line != "table inet twinsite {}"]
    assert definitions == ["table inet twinsite {"]
    rendered = {m for m in re.findall(r'comment "(r-\d{3})"', text)}
    noop = {r.name for r in policy.rules if "internet" in (r.from_zone, r.to_zone)}
    assert noop and rendered == {r.name for r in policy.rules} - noop
    assert text == fw.render_nftables(fw.compile_policy(firewall, networks), interfaces)
    nft_check(tmp_path, text)


# --- keepalived ------------------------------------------------------------------------------------


def keepalived(policy, node="fw1", **kw) -> str:
    peer = "fw2" if node == "fw1" else "fw1"
    args = {"interfaces": lab_interfaces(node), "priority": 150 if node == "fw1" else 100,
            "peers": list(lab_addresses(peer).values()), "addresses": lab_addresses(node), "notify": NOTIFY}
    args.update(kw)
    return fw.render_keepalived(policy, node, **args)


def blocks(text: str, kind: str) -> dict[str, str]:
    """name -> body of each top-level ``kind name { ... }`` block."""
    out, name, depth, body = {}, None, 0, []
    for line in text.splitlines():
        if name is None:
            m = re.match(rf"^{kind} (\S+) {{$", line)
            if m:
                name, depth, body = m.group(1), 1, []
            continue
        depth += line.count("{") - line.count("}")
        if depth == 0:
            out[name] = "\n".join(body)
            name = None
        else:
            body.append(line.strip())
    return out


def test_one_sync_group_holds_one_instance_per_vip(policy):
    text = keepalived(policy)
    assert text.count("{") == text.count("}")
    instances = blocks(text, "vrrp_instance")
    vip_zones = [z for z in policy.zones if z.vips]
    assert list(instances) == [f"twinsite_{z.name}" for z in vip_zones] and len(instances) == 6
    group = blocks(text, "vrrp_sync_group")["twinsite"]
    assert group.split("\n")[1:7] == list(instances)
    assert f'notify_master "{NOTIFY} primary"' in group and f'notify_fault "{NOTIFY} fault"' in group
    ifaces = lab_interfaces("fw1")
    for zone in vip_zones:
        body = instances[f"twinsite_{zone.name}"].split("\n")
        net = zone.vips[0]
        assert f"{net.gateway}/24 dev {ifaces[net.name]}" in body
        assert f"interface {ifaces[net.name]}" in body
        assert "state BACKUP" in body and "priority 150" in body and "advert_int 0.5" in body
    vrids = [re.search(r"virtual_router_id (\d+)", body).group(1) for body in instances.values()]
    assert vrids == [str(50 + n) for n in range(6)]
    assert "vrrp_version 3" in text and "auth_type" not in text and "authentication" not in text
    assert "drill" not in instances and "internet" not in "".join(instances)


def test_unicast_peers_are_the_peer_addresses_in_each_network(policy):
    instances = blocks(keepalived(policy), "vrrp_instance")
    assert "unicast_src_ip 172.31.20.2" in instances["twinsite_servers"]
    assert "unicast_peer {\n172.31.20.3\n}" in instances["twinsite_servers"]
    assert "unicast_peer {\n172.31.60.3\n}" in instances["twinsite_transit"]
    multicast = keepalived(policy, peers=None)
    assert "unicast" not in multicast
    with pytest.raises(fw.PolicyError, match=r"^peers: no peer address in 172.31.20.0/24 \(network servers, zone servers\)"):
        keepalived(policy, peers=["172.31.10.12"])


def test_both_nodes_start_as_backup_and_priority_or_nopreempt_decides(policy):
    one, two = keepalived(policy, "fw1"), keepalived(policy, "fw2", preempt=False, advert_int=1)
    assert "state MASTER" not in one + two
    assert one.count("priority 150") == 6 and two.count("priority 100") == 6
    assert "nopreempt" not in one and two.count("nopreempt") == 6
    assert "advert_int 1\n" in two
    assert keepalived(policy) == one  # deterministic
    assert keepalived(policy, notify=None).count("notify") == 0


@pytest.mark.parametrize(("kw", "path"), [
    ({"advert_int": 0.005}, "advert_int"), ({"advert_int": 41}, "advert_int"), ({"priority": 255}, "priority"),
    ({"router_id_base": 252}, "router_id_base"), ({"peers": []}, "peers"), ({"interfaces": {"mgmt": "eth0"}}, "interfaces.servers"),
])
def test_keepalived_arguments_are_checked(policy, kw, path):
    with pytest.raises(fw.PolicyError) as err:
        keepalived(policy, **kw)
    assert err.value.path == path


def test_keepalived_accepts_the_config_when_it_is_installed(policy, tmp_path):
    """keepalived is not on the controller (the role checks its config with ``keepalived -t`` on
    the node); where it is, check the lab's config for real."""
    binary = shutil.which("keepalived") or next((p for p in ("/usr/sbin/keepalived", "/sbin/keepalived") if os.access(p, os.X_OK)), None)
    text = keepalived(policy, notify=None)
    assert re.search(r"^global_defs \{$", text, re.M) and re.search(r"^vrrp_sync_group twinsite \{$", text, re.M)
    if binary is None:
        return
    conf = tmp_path / "keepalived.conf"
    conf.write_text(text)
    links = " && ".join(f"ip link add {i} type veth peer name p{i}" for i in sorted(set(lab_interfaces("fw1").values())))
    result = in_netns(f'{links} && "{binary}" -t -f "$1"', str(conf))
    assert result.returncode == 0, result.stderr


# --- conntrackd ------------------------------------------------------------------------------------


def test_conntrackd_syncs_ftfw_over_udp_unicast_and_ignores_the_firewalls_own_addresses(policy):
    text = fw.render_conntrackd(policy, "fw1", sync_interface="eth5", local_address="172.31.60.2", peer_address="172.31.60.3",
                                ignore_addresses=list(lab_addresses("fw1").values()))
    assert text.count("{") == text.count("}")
    lines = [line.strip() for line in text.splitlines()]
    sync = blocks(text, "Sync")
    assert sync == {} and "Sync {" in lines  # a top-level block with no name
    udp = text.split("UDP {")[1].split("}")[0].split()
    assert udp[:8] == ["IPv4_address", "172.31.60.2", "IPv4_Destination_Address", "172.31.60.3", "Port", "3780", "Interface", "eth5"]
    assert "Mode FTFW {" in lines and "Checksum on" in lines and "Multicast" not in text
    assert "Filter From Userspace {" in lines
    ignored = text.split("Address Ignore {")[1].split("}")[0].split()
    assert ignored[::2] == ["IPv4_address"] * (len(ignored) // 2)
    assert {"127.0.0.1", "172.31.20.254", "172.31.60.254", "172.31.10.11", "172.31.60.3"} <= set(ignored[1::2])
    assert text == fw.render_conntrackd(policy, "fw1", sync_interface="eth5", local_address="172.31.60.2", peer_address="172.31.60.3",
                                        ignore_addresses=list(reversed(lab_addresses("fw1").values())))
    v6 = fw.render_conntrackd(policy, "fw1", sync_interface="eth5", local_address="172.31.60.2", peer_address="172.31.60.3",
                              ignore_addresses=["2001:db8::1", "172.31.20.0/24"])
    entries = v6.split("Address Ignore {")[1].split("}")[0].split()
    assert entries[-2:] == ["IPv6_address", "2001:db8::1"] and "172.31.20.0/24" in entries  # IPv4 first, a network keeps its prefix
    with pytest.raises(fw.PolicyError, match="^peer_address: "):
        fw.render_conntrackd(policy, "fw1", sync_interface="eth5", local_address="172.31.60.2", peer_address="172.31.60.2")


@pytest.mark.parametrize(("args", "calls"), [
    (["primary"], ["-c", "-f", "-R", "-B"]),
    (["GROUP", "twinsite", "MASTER", "150"], ["-c", "-f", "-R", "-B"]),
    (["backup"], ["-s", "-t", "-n"]),
    (["fault"], ["-t"]),
])
def test_the_notify_script_runs_the_upstream_steps(tmp_path, args, calls):
    script = tmp_path / "notify.sh"
    script.write_text(fw.render_conntrackd_notify(config="/etc/conntrackd/conntrackd.conf"))
    assert subprocess.run(["sh", "-n", str(script)], capture_output=True).returncode == 0
    log = tmp_path / "calls"
    fake = tmp_path / "conntrackd"
    fake.write_text(f'#!/bin/sh\necho "$*" >> {log}\n')
    fake.chmod(0o755)
    result = subprocess.run(["sh", str(script), *args], capture_output=True, text=True, env={**os.environ, "CONNTRACKD_BIN": str(fake)})
    assert result.returncode == 0, result.stderr
    assert log.read_text().splitlines() == [f"-C /etc/conntrackd/conntrackd.conf {c}" for c in calls]


def test_the_notify_script_refuses_an_unknown_state(tmp_path):
    script = tmp_path / "notify.sh"
    script.write_text(fw.render_conntrackd_notify())
    result = subprocess.run(["sh", str(script), "sideways"], capture_output=True, text=True,
                            env={**os.environ, "CONNTRACKD_BIN": "/bin/true"})
    assert result.returncode == 1 and "usage" in result.stderr


# --- flows -----------------------------------------------------------------------------------------


def test_the_lab_flow_matrix(policy):
    flows = fw.flow_matrix(policy, lab_hosts())
    for flow in flows:
        assert set(flow) >= {"from_zone", "to_zone", "source", "destination", "protocol", "port", "expect", "rule"}

    def find(**kw):
        return [f for f in flows if all(f[k] == v for k, v in kw.items())]

    portal = find(from_zone="users", to_zone="servers", destination="172.31.20.43")
    assert [(f["port"], f["expect"], f["rule"], f["destination_host"]) for f in portal] == [
        (80, "pass", "users-to-portal", "web1"), (8080, "pass", "users-apps", "web1")]
    assert portal[0]["source"] == "172.31.30.61"  # client1
    assert [(f["protocol"], f["port"], f["expect"]) for f in find(rule="users-dns")] == [("udp", 53, "pass"), ("tcp", 53, "pass")]
    dmz = find(from_zone="dmz", to_zone="servers", protocol="tcp", port=80)
    assert [(f["expect"], f["rule"]) for f in dmz] == [("blocked", "dmz-to-servers")]
    deny = find(rule="default-deny")
    assert deny and all(f["expect"] == "blocked" and f["protocol"] == "tcp" for f in deny)
    assert find(from_zone="users", to_zone="dmz", rule="default-deny", port=22)
    assert find(from_zone="dmz", to_zone="servers", rule="default-deny", port=22)  # the drop rule is http only
    assert not find(from_zone="users", to_zone="servers", rule="default-deny")  # linked by an accept rule
    assert not find(from_zone="drill", to_zone="drill")
    assert fw.flow_matrix(policy, {z: list(reversed(h)) for z, h in reversed(list(lab_hosts().items()))}) == flows


def test_an_earlier_rule_that_shadows_a_later_one_shows_in_the_matrix():
    model = copy.deepcopy(FIREWALL)
    model["rules"].insert(0, {"name": "users-anything", "from": "users", "to": "servers", "services": ["ssh", "http"], "action": "accept"})
    model["rules"].append({"name": "no-portal-ssh", "from": "users", "to": "servers", "destination": "portal", "services": ["ssh"],
                           "action": "drop"})
    flows = fw.flow_matrix(fw.compile_policy(model, NETWORKS), lab_hosts())
    ssh = [f for f in flows if f["destination"] == "172.31.20.43" and f["port"] == 22]
    assert [(f["expect"], f["rule"]) for f in ssh] == [("pass", "users-anything")]


# --- plan ------------------------------------------------------------------------------------------


def test_rule_diff(lab_ruleset, policy):
    assert fw.rule_diff(lab_ruleset, lab_ruleset) == ""
    model = copy.deepcopy(FIREWALL)
    model["rules"][0]["services"] = ["ssh"]
    after = fw.render_nftables(fw.compile_policy(model, NETWORKS), lab_interfaces("fw1"), sync_interface="eth5")
    diff = fw.rule_diff(lab_ruleset, after)
    assert diff.startswith("--- live\n+++ site model\n")
    changed = [line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("---", "+++")]
    assert len(changed) == 4 and any("th dport 22 counter accept" in line for line in changed if line.startswith("+"))


# --- the filters -----------------------------------------------------------------------------------


def test_the_filters_wrap_the_compiler_and_name_the_path():
    filters = fw_filters.FilterModule().filters()
    assert set(filters) >= {"fw_policy", "fw_nftables", "fw_keepalived", "fw_conntrackd", "fw_flow_matrix"}
    assert filters["fw_policy"](FIREWALL, NETWORKS)["rules"][0]["name"] == "users-to-portal"
    with pytest.raises(AnsibleFilterError, match=r"fw_nftables: dc_firewall.rules\[2\].services\[0\]: 'restik' is not a service object"):
        filters["fw_nftables"](_broken("rules[2].services[0]", "restik"), NETWORKS, lab_interfaces("fw1"))
    with pytest.raises(AnsibleFilterError, match=r"fw_nftables: management.zone: "):
        filters["fw_nftables"](FIREWALL, NETWORKS, {"servers": "eth1"})
    text = filters["fw_keepalived"](FIREWALL, NETWORKS, "fw2", lab_interfaces("fw2"), "100", preempt="no", advert_int="0.25")
    assert "priority 100" in text and "nopreempt" in text and "advert_int 0.25" in text
    assert filters["fw_nftables"](FIREWALL, NETWORKS, lab_interfaces("fw1")) == fw.render_nftables(fw.compile_policy(FIREWALL, NETWORKS),
                                                                                                    lab_interfaces("fw1"))
    assert "IPv4_Destination_Address 172.31.60.2" in filters["fw_conntrackd"](FIREWALL, NETWORKS, "fw2", "eth5", "172.31.60.3",
                                                                              "172.31.60.2")
    assert filters["fw_flow_matrix"](FIREWALL, NETWORKS, lab_hosts())[0]["rule"] == "users-to-portal"
    assert filters["fw_conntrackd_notify"]().startswith("#!/bin/sh\n")


def test_the_nft_check_is_not_vacuous(tmp_path):
    path = tmp_path / "broken.nft"
    path.write_text("table inet twinsite {\n\tchain forward {\n\t\tiifname @zone_nowhere accept\n\t}\n}\n")
    result = in_netns('nft -c -f "$1"', str(path))
    assert result.returncode != 0 and "zone_nowhere" in result.stderr
