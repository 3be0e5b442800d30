"""The lab's Proxmox VE: fakepve's API over TLS from the lab CA, holding the model's guests.

fakepve (PyPI, AGPL; a test tool only, nothing of it ships) answers as PVE 9 does: tickets, the
whole API schema, and stateful VMs whose clone/start/snapshot tasks return real UPIDs. ``up`` turns
the model's guests into fakepve's guests file, starts ``labkit.fakepve_server`` (see there why not
fakepve's own command) with a certificate from the lab CA, then logs in with proxmoxer, verifying
TLS against the lab CA as the playbooks do, and checks the cluster holds the model's nodes and
guests. State is in memory only: a restart gives the model's guests again and forgets what
playbooks did (clones, snapshots).

The model's ``fakepve`` entry (see ``model.py``)::

    {"host", "port", "username", "password", "cluster", "nodes": ["pve1", ...],
     "guests": [{"vmid", "name", "node", "type": "qemu"|"lxc", "template", "cpus", "memory_mb",
                 "disk_gb", "networks": [{"bridge", "vlan"}], "status": "running"|"stopped"}],
     "latency": 0, "time_scale": 0}

Each guest becomes a PVE config like a real one: ``cores``/``sockets``/``memory``, one disk on
``local-lvm`` (``scsi0`` for a VM, ``rootfs`` for a container; a template's disk is a ``base-``
volume, so a linked clone works as on PVE), one ``netN`` per network with ``bridge`` and ``tag``
and a MAC derived from the vmid, so it is the same at every start.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import socket
import sys
import time
from pathlib import Path

from . import ca, procs
from .context import Context, Status
from .errors import LabError

COMPONENT = "fakepve"
SCRIPTS = Path(__file__).resolve().parents[1]  # holds the labkit package, for ``python -m labkit...``
# Both exist in a fresh fakepve: "local" (dir: ISOs, backups) and "local-lvm" (lvmthin: disks), as
# on a PVE installed with defaults.
DISK_STORAGE = "local-lvm"
# Proxmox's own MAC prefix (what PVE gives new NICs).
MAC_PREFIX = "BC:24:11"
# PVE's checks: node names are host names, guest names DNS names, vmids 100..999999999.
NODE_NAME = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")
GUEST_NAME = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*$")
MODEL_FILE = "inventory/lab (dc_clusters / dc_vms)"


def up(ctx: Context) -> None:
    spec = _checked_spec(ctx.model.get("fakepve"))
    state, host, port = ctx.state, spec["host"], spec["port"]
    spec_hash = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
    pid = procs.pid_of(state, COMPONENT)
    if pid is not None:
        if state.read_facts(COMPONENT).get("spec_sha256") == spec_hash and _answers(host, port):
            ctx.say(f"fakepve: already running (pid {pid}) on https://{host}:{port}")
            return
        # The model changed (or the process is wedged). fakepve keeps everything in memory and has
        # no API to rename its cluster or drop a node, so start over; this forgets what playbooks
        # did in the running one (clones, snapshots).
        ctx.say(f"fakepve: restarting (pid {pid}) to apply the model")
        procs.stop(state, COMPONENT)
    if importlib.util.find_spec("fakepve") is None:
        raise LabError(COMPONENT, f"the fakepve package is not installed for {sys.executable}. Run `make setup`.")
    procs.require_free_port(COMPONENT, host, port)

    data = state.data / COMPONENT
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    guests_file = data / "guests.json"
    guests_file.write_text(json.dumps(_guests_file(spec), indent=2) + "\n")
    # The model's host may be another loopback address (127.0.0.2); the certificate must name it.
    cert, key = ca.server_cert(state, COMPONENT, list(dict.fromkeys([host, "127.0.0.1", "localhost"])))

    argv = [sys.executable, "-m", "labkit.fakepve_server", str(guests_file),
            "--host", host, "--port", str(port), "--cert", str(cert), "--key", str(key),
            "--time-scale", str(spec["time_scale"]), "--latency", str(spec["latency"])]
    ctx.say(f"fakepve: starting Proxmox VE API on https://{host}:{port} (cluster {spec['cluster']})")
    started = time.monotonic()
    # The login goes by environment (the variables fakepve reads), not argv, so `ps` does not show
    # the password. cwd is the data dir, never scripts/labkit, where labkit/fakepve.py (this file)
    # would shadow the fakepve package.
    env = {"PVE_USER": spec["username"], "PVE_PASS": spec["password"], "PYTHONPATH": _pythonpath()}
    pid = procs.start(state, COMPONENT, argv, env=env, cwd=data)
    try:
        procs.wait_port(state, COMPONENT, host, port)
        _check_cluster(ctx, spec)
    except BaseException:
        # Leave nothing half-made behind: the next `lab up` starts from a clean port.
        procs.stop(state, COMPONENT)
        raise
    ctx.say(f"fakepve: {len(spec['guests'])} guests on {len(spec['nodes'])} nodes ready in {time.monotonic() - started:.1f}s")
    state.write_facts(COMPONENT, {
        "pid": pid,
        "url": f"https://{host}:{port}",
        "host": host,
        "port": port,
        "username": spec["username"],
        "ca": str(state.ca / "ca.pem"),
        "cluster": spec["cluster"],
        "nodes": spec["nodes"],
        "guests": sorted(g["vmid"] for g in spec["guests"]),
        "guests_file": str(guests_file),
        "spec_sha256": spec_hash,
    })


def down(ctx: Context) -> None:
    if procs.stop(ctx.state, COMPONENT):
        ctx.say("fakepve: stopped")
    ctx.state.forget(COMPONENT)
    shutil.rmtree(ctx.state.root / "data" / COMPONENT, ignore_errors=True)


def status(ctx: Context) -> list[Status]:
    spec = ctx.model.get("fakepve") or ctx.state.read_facts(COMPONENT)
    if not spec:
        return []
    host, port = spec["host"], int(spec["port"])
    address = f"https://{host}:{port}"
    pid = procs.pid_of(ctx.state, COMPONENT)
    if pid is None:
        return [Status(COMPONENT, address, False, "not running")]
    if not _answers(host, port):
        return [Status(COMPONENT, address, False, f"pid {pid} runs but the port does not answer; "
                                                  f"see {ctx.state.logs / (COMPONENT + '.log')}")]
    facts = ctx.state.read_facts(COMPONENT)
    detail = f"pid {pid}"
    if facts:
        detail += f", cluster {facts.get('cluster')}, {len(facts.get('guests', []))} guests from the model"
    return [Status(COMPONENT, address, True, detail)]


def connect(ctx: Context):
    """A proxmoxer client logged in to the running fakepve, TLS verified against the lab CA."""
    from proxmoxer import ProxmoxAPI  # imported late: only this component needs it
    from proxmoxer.core import AuthenticationError
    from requests.exceptions import RequestException

    spec = ctx.model["fakepve"]
    ca_pem = ctx.state.ca / "ca.pem"
    try:
        # verify_ssl takes a CA file (requests' ``verify``). Pass it explicitly: with True, requests
        # would use REQUESTS_CA_BUNDLE from the environment, which does not hold the lab CA.
        return ProxmoxAPI(spec["host"], port=int(spec["port"]), user=spec["username"], password=spec["password"],
                          verify_ssl=str(ca_pem), timeout=10)
    except AuthenticationError as exc:
        raise LabError(COMPONENT, f"login as {spec['username']!r} was refused; check the Proxmox "
                                  f"username/password in {MODEL_FILE}") from exc
    except (RequestException, OSError) as exc:  # OSError: the lab CA file is missing
        raise LabError(COMPONENT, f"cannot reach https://{spec['host']}:{spec['port']}: {exc}") from exc


# --- checks ------------------------------------------------------------------------------------


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def _check_cluster(ctx: Context, spec: dict) -> None:
    """Read back nodes, cluster name and guests through the API, as a playbook would see them."""
    from proxmoxer.core import ResourceException
    from requests.exceptions import RequestException

    api = connect(ctx)
    try:
        nodes = [n["node"] for n in api.nodes.get()]
        cluster = [c.get("name") for c in api.cluster.status.get() if c.get("type") == "cluster"]
        guests = {g["vmid"]: g for g in api.cluster.resources.get(type="vm")}
    except (ResourceException, RequestException, OSError) as exc:
        raise LabError(COMPONENT, f"reading the cluster back failed: {exc}; see {ctx.state.logs / (COMPONENT + '.log')}") from exc
    if sorted(nodes) != sorted(spec["nodes"]) or cluster != [spec["cluster"]]:
        raise LabError(COMPONENT, f"the API shows cluster {cluster} with nodes {sorted(nodes)}, the model asked for "
                                  f"{spec['cluster']!r} with {sorted(spec['nodes'])}")
    for want in spec["guests"]:
        got = guests.get(want["vmid"])
        if got is None or (got["name"], got["node"], bool(got.get("template"))) != (want["name"], want["node"], want["template"]):
            raise LabError(COMPONENT, f"guest {want['vmid']} ({want['name']}) is missing or differs in "
                                      f"/cluster/resources: {got}")


# --- the guests file ---------------------------------------------------------------------------


def _guests_file(spec: dict) -> dict:
    """fakepve's guests file (``{"guests": [...]}``) plus the cluster name and nodes our launcher reads."""
    guests = []
    for g in spec["guests"]:
        config = _lxc_config(g) if g["type"] == "lxc" else _qemu_config(g)
        guests.append({"vmid": g["vmid"], "name": g["name"], "node": g["node"], "type": g["type"],
                       "status": g["status"], "template": g["template"], "config": config})
    return {"cluster": spec["cluster"], "nodes": spec["nodes"], "guests": guests}


def _mac(vmid: int, index: int) -> str:
    """A stable MAC per guest NIC: the same model gives the same MACs at every start."""
    digest = hashlib.sha256(f"{vmid}/{index}".encode()).digest()
    return ":".join([MAC_PREFIX] + [f"{b:02X}" for b in digest[:3]])


def _disk(g: dict) -> str:
    # A template's disks are base volumes on PVE: a linked clone (the default for a template)
    # refuses anything else.
    kind = "base" if g["template"] else "vm"
    return f"{DISK_STORAGE}:{kind}-{g['vmid']}-disk-0,size={g['disk_gb']}G"


def _qemu_config(g: dict) -> dict:
    config = {"cores": g["cpus"], "sockets": 1, "memory": g["memory_mb"], "ostype": "l26",
              "scsihw": "virtio-scsi-single", "cpu": "x86-64-v2-AES"}
    boot = []
    if g["disk_gb"]:
        config["scsi0"] = _disk(g) + ",iothread=1"
        boot.append("scsi0")
    for i, net in enumerate(g["networks"]):
        tag = f",tag={net['vlan']}" if net.get("vlan") else ""
        config[f"net{i}"] = f"virtio={_mac(g['vmid'], i)},bridge={net['bridge']}{tag}"
        boot.append(f"net{i}")
    if boot:
        config["boot"] = "order=" + ";".join(boot)
    if g["template"]:
        config["template"] = 1
    return config


def _lxc_config(g: dict) -> dict:
    config = {"hostname": g["name"], "cores": g["cpus"], "memory": g["memory_mb"], "swap": 512,
              "ostype": "debian", "unprivileged": 1}
    if g["disk_gb"]:
        config["rootfs"] = _disk(g)
    for i, net in enumerate(g["networks"]):
        tag = f",tag={net['vlan']}" if net.get("vlan") else ""
        config[f"net{i}"] = f"name=eth{i},bridge={net['bridge']},hwaddr={_mac(g['vmid'], i)},ip=dhcp{tag},type=veth"
    return config


def _pythonpath() -> str:
    rest = os.environ.get("PYTHONPATH")
    return str(SCRIPTS) + (f":{rest}" if rest else "")


# --- checking the model ------------------------------------------------------------------------


def _checked_spec(spec: dict | None) -> dict:
    """Check the model's fakepve entry before starting anything, so a typo costs no start.

    Returns a copy with defaults filled in (type qemu, 1 CPU, 512 MB, no disk, no NIC, stopped).
    """
    if not spec:
        raise LabError(COMPONENT, "the lab model has no Proxmox cluster (dc_clusters with type: proxmox); nothing to simulate")
    for key in ("host", "port", "username", "password", "cluster", "nodes"):
        if not spec.get(key):
            raise LabError(COMPONENT, f"the model's fakepve entry has no {key!r}; set it in {MODEL_FILE}")
    if "@" not in spec["username"]:
        raise LabError(COMPONENT, f"username {spec['username']!r} has no realm; PVE logins are user@realm, e.g. root@pam")
    spec = {**spec, "port": _int(spec["port"], "port", 1, 65535), "nodes": [str(n) for n in spec["nodes"]],
            "latency": _number(spec.get("latency") or 0, "latency"),
            "time_scale": _number(spec.get("time_scale") or 0, "time_scale")}
    for node in spec["nodes"]:
        if not NODE_NAME.match(node):
            raise LabError(COMPONENT, f"node name {node!r} is not a valid host name (letters, digits, '-')")
    if len(set(spec["nodes"])) != len(spec["nodes"]):
        raise LabError(COMPONENT, f"nodes {spec['nodes']} lists a node twice")

    guests, vmids = [], set()
    for item in spec.get("guests") or []:
        name = str(item.get("name") or "")
        what = f"guest {item.get('vmid')} ({name or 'no name'})"
        vmid = _int(item.get("vmid"), f"{what}: vmid", 100, 999999999)
        if vmid in vmids:
            raise LabError(COMPONENT, f"{what}: vmid {vmid} is used twice; vmids are unique in a PVE cluster")
        vmids.add(vmid)
        if not GUEST_NAME.match(name):
            raise LabError(COMPONENT, f"{what}: the name must be a valid DNS name (letters, digits, '-', '.'), as PVE requires")
        g = {"type": "qemu", "template": False, "cpus": 1, "memory_mb": 512, "disk_gb": 0, "status": "stopped",
             **{k: v for k, v in item.items() if v is not None}, "vmid": vmid, "name": name}
        if g.get("node") not in spec["nodes"]:
            raise LabError(COMPONENT, f"{what}: node {g.get('node')!r} is not one of the cluster's nodes {spec['nodes']}")
        if g["type"] not in ("qemu", "lxc"):
            raise LabError(COMPONENT, f"{what}: type {g['type']!r}; use qemu (a VM) or lxc (a container)")
        if g["status"] not in ("running", "stopped"):
            raise LabError(COMPONENT, f"{what}: status {g['status']!r}; use running or stopped")
        g["template"] = bool(g["template"])
        if g["template"] and g["status"] == "running":
            raise LabError(COMPONENT, f"{what} is a template and cannot run; set it stopped")
        g["cpus"] = _int(g["cpus"], f"{what}: cpus", 1, 512)
        g["memory_mb"] = _int(g["memory_mb"], f"{what}: memory_mb", 16, 4 * 1024 * 1024)
        g["disk_gb"] = _int(g["disk_gb"], f"{what}: disk_gb", 0, 1024 * 1024)
        nets = []
        for net in g.get("networks") or []:
            if not isinstance(net, dict) or not net.get("bridge"):
                raise LabError(COMPONENT, f"{what}: network {net!r} needs a bridge, e.g. {{bridge: vmbr0, vlan: 20}}")
            vlan = net.get("vlan")
            nets.append({"bridge": str(net["bridge"]),
                         "vlan": None if vlan in (None, 0) else _int(vlan, f"{what}: vlan", 1, 4094)})
        g["networks"] = nets
        guests.append(g)
    spec["guests"] = guests
    return spec


def _int(value, what: str, least: int, most: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) and not (isinstance(value, str) and value.isdigit()):
        raise LabError(COMPONENT, f"{what} is {value!r}; it must be a whole number from {least} to {most}")
    value = int(value)
    if not least <= value <= most:
        raise LabError(COMPONENT, f"{what} is {value}; it must be from {least} to {most}")
    return value


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise LabError(COMPONENT, f"{what} is {value!r}; it must be a number of seconds, 0 or more")
    return float(value)
