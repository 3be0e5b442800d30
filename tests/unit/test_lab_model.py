"""A broken lab model is reported with the file, the key and what was expected - never a traceback."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from labkit import model
from labkit.errors import LabError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def inventory(tmp_path) -> Path:
    copy = tmp_path / "inventory" / "lab"
    shutil.copytree(REPO / "inventory" / "lab", copy)
    return copy


def edit(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_the_shipped_lab_model_loads(inventory):
    lab = model.load(inventory)
    assert {c["host"] for c in lab["containers"]} == {"fw1", "fw2", "core1", "core2", "backup1", "dns1", "db1", "web1", "rec1", "rec2", "rec3",
                                                      "client1"}
    by_host = {c["host"]: c for c in lab["containers"]}
    # the firewall's kernel settings at creation; each zone host's default route through its zone's VIP
    assert "net.ipv4.ip_forward=1" in by_host["fw1"]["sysctls"] and by_host["fw1"]["default_gateway"] is None
    assert (by_host["client1"]["default_gateway"], by_host["dns1"]["default_gateway"]) == ("172.31.30.254", "172.31.20.254")
    assert by_host["rec1"]["default_gateway"] is None  # a drill's rebuilt services must not reach production
    assert f"systemd.wants={model.DEFAULT_ROUTE_UNIT}" in by_host["backup1"]["init_args"]
    assert lab["vcsim"]["datacenter"] == "DC-Town"
    assert {g["name"] for g in lab["fakepve"]["guests"]} >= {"tpl-debian12", "backup-proxy"}
    assert lab["s3"]["buckets"][0]["object_lock"] is True


@pytest.mark.parametrize(
    ("file", "change", "expected"),
    [
        ("host_vars/dns1.yml", lambda d: d["host_interfaces"][1].update(address="172.31.99.5"),
         "host_vars/dns1.yml: host_interfaces[1].address: 172.31.99.5 is outside network servers (172.31.20.0/24)"),
        ("host_vars/dns1.yml", lambda d: d["host_interfaces"][0].update(network="nope"),
         "host_vars/dns1.yml: host_interfaces[0].network: 'nope' is not a network"),
        ("host_vars/db1.yml", lambda d: d["host_interfaces"][0].update(address="not-an-ip"),
         "host_vars/db1.yml: host_interfaces[0].address: 'not-an-ip' is not an IP address"),
        ("group_vars/all/networks.yml", lambda d: d["dc_networks"][2].update(subnet="172.31.30.0/33"),
         "networks.yml: dc_networks[2].subnet: '172.31.30.0/33' is not a network in CIDR form"),
        ("host_vars/web1.yml", lambda d: d.update(host_interfaces="eth0"),
         "host_vars/web1.yml: host_interfaces: found 'eth0' (str), expected array"),
    ],
)
def test_errors_name_file_key_and_expectation(inventory, file, change, expected):
    edit(inventory / file, change)
    with pytest.raises(LabError) as err:
        model.load(inventory)
    assert expected in str(err.value)


def test_yaml_syntax_error_names_the_file(inventory):
    (inventory / "host_vars" / "fw1.yml").write_text("host_site: primary\n  bad: [indent\n")
    with pytest.raises(LabError) as err:
        model.load(inventory)
    assert "host_vars/fw1.yml: line 2 column 6: not valid YAML" in str(err.value)


def test_cli_prints_the_error_without_a_traceback(inventory):
    edit(inventory / "host_vars" / "dns1.yml", lambda d: d["host_interfaces"][1].update(address="10.9.9.9"))
    result = subprocess.run([str(REPO / "scripts" / "lab"), "status", "-i", str(inventory)], capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert "lab: model:" in result.stderr and "10.9.9.9 is outside network servers" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_default_route_through_a_network_the_host_is_not_in_is_refused(inventory):
    edit(inventory / "group_vars" / "all" / "lab.yml", lambda d: d["lab_default_routes"].update(clients="servers"))
    with pytest.raises(LabError, match=r"lab_default_routes.clients: host client1 has no interface in servers"):
        model.load(inventory)


def test_the_firewall_endpoints_are_the_hosts_routed_through_the_pair(inventory):
    """lab_firewall_endpoints is written out; it must name every host of lab_default_routes' groups
    with its address in that network, under that network's zone."""
    lab = model.load(inventory)
    allvars = yaml.safe_load((inventory / "group_vars" / "all" / "lab.yml").read_text())
    networks = yaml.safe_load((inventory / "group_vars" / "all" / "networks.yml").read_text())["dc_networks"]
    zone_of = {n["name"]: n["zone"] for n in networks}
    gateway_of = {n["gateway"]: n["name"] for n in networks if n.get("gateway")}
    expected: dict[str, set] = {}
    for c in lab["containers"]:
        if c["default_gateway"]:
            network = gateway_of[c["default_gateway"]]
            address = next(i["address"] for i in c["interfaces"] if i["network"].endswith(f"-{network}"))
            expected.setdefault(zone_of[network], set()).add((c["host"], address))
    got = {zone: {(e["name"], e["address"]) for e in entries} for zone, entries in allvars["lab_firewall_endpoints"].items()}
    assert got == expected
