"""The inventory plugins against the simulators: `ansible-inventory` lists what the lab model put
there, in the calls we claim, and a wrong password is one clear line, not a traceback.

Tags, pools and containers are checked on simulators of this test's own (other ports, other state
directory), never by changing the shared lab: the lab's fakepve guests have no tags or pools, and
tags made on the lab's vcsim would show in every other test's inventory.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml
from proxmoxer import ProxmoxAPI

from labkit import fakepve, vcsim
from labkit.context import Context
from labkit.state import State

REPO = Path(__file__).resolve().parents[2]
LIVE = REPO / "inventory" / "lab-live"
ANSIBLE_INVENTORY = str(Path(sys.executable).parent / "ansible-inventory")


def run_inventory(source: Path, count_file: Path | None = None) -> subprocess.CompletedProcess:
    # A source that fails to parse is an error here, not a warning and an empty inventory.
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "true"}
    if count_file:
        env.update(PYTHONPATH=str(REPO / "bench" / "callcount"), TWINSITE_CALLCOUNT_FILE=str(count_file))
    return subprocess.run([ANSIBLE_INVENTORY, "-i", str(source), "--list"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def inventory(source: Path, count_file: Path | None = None) -> dict:
    proc = run_inventory(source, count_file)
    assert proc.returncode == 0, proc.stderr
    return plain(json.loads(proc.stdout))


def plain(data):
    """--list marks every string from a plugin as unsafe ({"__ansible_unsafe": "x"}); the value is "x"."""
    if isinstance(data, dict):
        return data["__ansible_unsafe"] if set(data) == {"__ansible_unsafe"} else {k: plain(v) for k, v in data.items()}
    return [plain(v) for v in data] if isinstance(data, list) else data


def members(inv: dict, group: str) -> set[str]:
    return set(inv.get(group, {}).get("hosts", []))


def group(prefix: str, *parts: str) -> str:
    return prefix + "_".join(re.sub(r"[^a-z0-9_]", "_", p.lower()) for p in parts)


def calls(count_file: Path) -> dict[str, int]:
    total: dict[str, int] = {}
    for line in count_file.read_text().splitlines():
        for call, n in json.loads(line)["by_call"].items():
            total[call] = total.get(call, 0) + n
    return total


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_config(path: Path, plugin: str, api: dict, ca: Path, **options) -> Path:
    config = {"plugin": plugin, "hostname": api["host"], "port": api["port"], "username": api["username"],
              "password": api["password"], "ca_bundle": str(ca), **options}
    path.write_text(yaml.safe_dump(config))
    return path


# --- the lab ------------------------------------------------------------------------------------


def test_vsphere_plugin_lists_the_models_vms(lab, tmp_path):
    spec = lab.model["vcsim"]
    cluster = spec["clusters"][0]
    count_file = tmp_path / "calls.jsonl"
    inv = inventory(LIVE / "vcenter.twinsite_vsphere.yml", count_file)
    hostvars = inv["_meta"]["hostvars"]
    for vm in spec["vms"]:
        got = hostvars.get(vm["name"])
        assert got is not None, f"VM {vm['name']} of the model is not in the inventory"
        power = "poweredOn" if vm["power"] == "on" else "poweredOff"
        assert {k: got[k] for k in ("vsphere_name", "vsphere_cpus", "vsphere_memory_mb", "vsphere_template", "vsphere_power_state",
                                    "vsphere_datacenter", "vsphere_cluster", "vsphere_folder", "vsphere_networks",
                                    "vsphere_datastores", "vsphere_guest_id")} == {
            "vsphere_name": vm["name"], "vsphere_cpus": vm["cpus"], "vsphere_memory_mb": vm["memory_mb"],
            "vsphere_template": vm["template"], "vsphere_power_state": power, "vsphere_datacenter": spec["datacenter"],
            "vsphere_cluster": cluster["name"], "vsphere_folder": vm["folder"], "vsphere_networks": sorted(vm["networks"]),
            "vsphere_datastores": [vcsim.DATASTORE], "vsphere_guest_id": vm["guest_id"]}, vm["name"]
        assert got["vsphere_host"] in cluster["hosts"]
        assert re.fullmatch(r"[0-9a-f-]{36}", got["vsphere_uuid"]) and got["vsphere_moid"].startswith("vm-")
        assert vm["name"] in members(inv, group("vsphere_", "power", vm["power"]))
        assert vm["name"] in members(inv, group("vsphere_", "cluster", cluster["name"]))
        assert vm["name"] in members(inv, group("vsphere_", "folder", vm["folder"]))
        assert (vm["name"] in members(inv, "vsphere_templates")) is vm["template"]
    # One retrieve for every VM, host, folder, datastore and network; the rest is log-in and out.
    made = calls(count_file)
    assert made.get("POST /sdk RetrievePropertiesEx") == 1
    assert sum(made.values()) <= 8, made


def test_proxmox_plugin_lists_the_models_guests_in_three_calls(lab, tmp_path):
    spec = lab.model["fakepve"]
    count_file = tmp_path / "calls.jsonl"
    inv = inventory(LIVE / "pve.twinsite_proxmox.yml", count_file)
    hostvars = inv["_meta"]["hostvars"]
    for g in spec["guests"]:
        got = hostvars.get(g["name"])
        assert got is not None, f"guest {g['vmid']} ({g['name']}) of the model is not in the inventory"
        assert {k: got[k] for k in ("pve_vmid", "pve_name", "pve_node", "pve_type", "pve_status", "pve_template", "pve_cpus",
                                    "pve_memory_mb", "pve_disk_gb", "pve_cluster", "pve_node_online")} == {
            "pve_vmid": g["vmid"], "pve_name": g["name"], "pve_node": g["node"], "pve_type": "qemu", "pve_status": g["status"],
            "pve_template": g["template"], "pve_cpus": g["cpus"], "pve_memory_mb": g["memory_mb"], "pve_disk_gb": float(g["disk_gb"]),
            "pve_cluster": spec["cluster"], "pve_node_online": True}, g["name"]
        assert g["name"] in members(inv, group("pve_", "node", g["node"]))
        assert g["name"] in members(inv, group("pve_", "status", g["status"]))
        assert g["name"] in members(inv, "pve_qemu")
        assert (g["name"] in members(inv, "pve_templates")) is g["template"]
    assert calls(count_file) == {"POST /api2/json/access/ticket": 1, "GET /api2/json/cluster/resources": 1,
                                 "GET /api2/json/cluster/status": 1}


@pytest.mark.parametrize(("plugin", "component", "expected"), [
    ("twinsite.dc.vsphere", "vcsim", "login of vCenter 127.0.0.1:{port} failed: wrong user name or password"),
    ("twinsite.dc.proxmox", "fakepve", "login of Proxmox VE 127.0.0.1:{port} failed: wrong user name or password"),
])
def test_a_wrong_password_is_one_clear_message_without_a_traceback(lab, ca_pem, tmp_path, plugin, component, expected):
    api = {**lab.model[component], "password": "not-the-password"}
    suffix = plugin.replace("twinsite.dc.", "twinsite_")
    source = write_config(tmp_path / f"wrong.{suffix}.yml", plugin, api, ca_pem, **({"with_tags": False} if component == "vcsim" else {}))
    proc = run_inventory(source)
    assert proc.returncode != 0
    assert f"{plugin} ({source}): " + expected.format(port=api["port"]) in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "not-the-password" not in proc.stdout + proc.stderr


# --- simulators of this test's own ------------------------------------------------------------


@pytest.fixture(scope="module")
def tagging_vcenter(lab, tmp_path_factory):
    """The lab's vcsim (which serves govmomi's vAPI simulator, so tags) started on a port of its own,
    so the tags made here never reach the lab's inventory. It reuses the lab's binary when that was
    built from the same main.go."""
    state = State(tmp_path_factory.mktemp("vcsim-vapi") / "state")
    for name in ("vcsim", "vcsim.sha256"):
        if (lab.state.bin / name).exists():
            shutil.copy2(lab.state.bin / name, state.bin / name)
    spec = {**copy.deepcopy(lab.model["vcsim"]), "port": free_port()}
    ctx = Context(state=state, model={"vcsim": spec}, quiet=True)
    try:
        vcsim.up(ctx)
        yield ctx
    finally:
        vcsim.down(ctx)


def _rest(ctx: Context, method: str, path: str, body=None, session: str | None = None):
    spec = ctx.model["vcsim"]
    request = urllib.request.Request(f"https://{spec['host']}:{spec['port']}/rest/{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json"})
    if session:
        request.add_header("vmware-api-session-id", session)
    else:
        login = base64.b64encode(f"{spec['username']}:{spec['password']}".encode()).decode()
        request.add_header("Authorization", f"Basic {login}")
    tls = ssl.create_default_context(cafile=str(ctx.state.ca / "ca.pem"))
    with urllib.request.urlopen(request, context=tls) as answer:  # noqa: S310 - https to our own simulator
        text = answer.read()
    return json.loads(text).get("value") if text.strip() else None


def test_vsphere_tags_become_groups_and_variables(tagging_vcenter, tmp_path):
    ctx = tagging_vcenter
    session = _rest(ctx, "POST", "com/vmware/cis/session")
    moids = {row["name"]: row["_obj"]._moId for row in _vm_names(ctx)}
    tagged = {"daily": ["dns1", "db1"], "weekly": ["file1"]}
    category = _rest(ctx, "POST", "com/vmware/cis/tagging/category", {"create_spec": {
        "name": "backup", "description": "", "cardinality": "SINGLE", "associable_types": []}}, session)
    for tag, vms in tagged.items():
        tag_id = _rest(ctx, "POST", "com/vmware/cis/tagging/tag", {"create_spec": {"name": tag, "description": "", "category_id": category}}, session)
        _rest(ctx, "POST", f"com/vmware/cis/tagging/tag-association/id:{urllib.parse.quote(tag_id, safe='')}?~action=attach-tag-to-multiple-objects",
              {"object_ids": [{"type": "VirtualMachine", "id": moids[vm]} for vm in vms]}, session)

    source = write_config(tmp_path / "tags.twinsite_vsphere.yml", "twinsite.dc.vsphere", ctx.model["vcsim"], ctx.state.ca / "ca.pem")
    count_file = tmp_path / "calls.jsonl"
    inv = inventory(source, count_file)
    assert members(inv, "vsphere_tag_daily") == {"dns1", "db1"}
    assert members(inv, "vsphere_tag_weekly") == {"file1"}
    assert inv["_meta"]["hostvars"]["dns1"]["vsphere_tag_categories"] == {"backup": ["daily"]}
    assert inv["_meta"]["hostvars"]["web1"]["vsphere_tags"] == []
    # Tags cost a call per tag and per category plus one for every association, not one per VM.
    rest = {k: v for k, v in calls(count_file).items() if "/rest/" in k}
    assert sum(rest.values()) == 4 + len(tagged) + 1, rest


def _vm_names(ctx: Context) -> list[dict]:
    from ansible_collections.twinsite.dc.plugins.module_utils._vsphere import VsphereClient, vim

    spec = ctx.model["vcsim"]
    client = VsphereClient(spec["host"], spec["username"], spec["password"], spec["port"], True, str(ctx.state.ca / "ca.pem")).connect()
    try:
        return client.retrieve(vim.VirtualMachine, ["name"])
    finally:
        client.close()


@pytest.fixture(scope="module")
def pve_with_pools(lab, tmp_path_factory):
    """The lab's guests plus a container, on a fakepve of this test's own; pools and tags set over the API."""
    spec = copy.deepcopy(lab.model["fakepve"])
    spec["port"] = free_port()
    spec["guests"].append({"vmid": 300, "name": "ct-proxy", "node": spec["nodes"][-1], "type": "lxc", "status": "running",
                           "template": False, "cpus": 1, "memory_mb": 512, "disk_gb": 8, "networks": [{"bridge": "vmbr0", "vlan": 40}]})
    ctx = Context(state=State(tmp_path_factory.mktemp("fakepve-pools")), model={"fakepve": spec}, quiet=True)
    try:
        fakepve.up(ctx)
        api = ProxmoxAPI(spec["host"], port=spec["port"], user=spec["username"], password=spec["password"],
                         verify_ssl=str(ctx.state.ca / "ca.pem"))
        first = spec["guests"][1]  # a VM (the first guest is the template)
        api.nodes(first["node"]).qemu(first["vmid"]).config.put(tags="prod;backup")
        api.nodes(spec["nodes"][-1]).lxc(300).config.put(tags="prod")
        api.pools.post(poolid="Backup")
        api.pools("Backup").put(vms=str(first["vmid"]))
        yield ctx
    finally:
        fakepve.down(ctx)


def test_proxmox_pools_tags_containers_and_configs(pve_with_pools, tmp_path):
    ctx = pve_with_pools
    spec = ctx.model["fakepve"]
    first = spec["guests"][1]
    source = write_config(tmp_path / "pools.twinsite_proxmox.yml", "twinsite.dc.proxmox", spec, ctx.state.ca / "ca.pem",
                          want_config=True, config_workers=2)
    count_file = tmp_path / "calls.jsonl"
    inv = inventory(source, count_file)
    hostvars = inv["_meta"]["hostvars"]
    assert members(inv, "pve_pool_backup") == {first["name"]}
    assert members(inv, "pve_tag_prod") == {first["name"], "ct-proxy"}
    assert members(inv, "pve_tag_backup") == {first["name"]}
    assert members(inv, "pve_lxc") == {"ct-proxy"}
    assert hostvars[first["name"]]["pve_pool"] == "Backup"
    assert hostvars["ct-proxy"]["pve_config"]["hostname"] == "ct-proxy"
    assert hostvars[first["name"]]["pve_config"]["cores"] == first["cpus"]
    # want_config: the three calls, then exactly one config read per guest.
    made = calls(count_file)
    assert sum(n for call, n in made.items() if call.endswith("/config")) == len(spec["guests"])
    assert {call: n for call, n in made.items() if not call.endswith("/config")} == {
        "POST /api2/json/access/ticket": 1, "GET /api2/json/cluster/resources": 1, "GET /api2/json/cluster/status": 1}
