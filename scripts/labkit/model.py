"""Read the lab's shape from the inventory (inventory/lab) and turn it into specs for each component.

The inventory is read through ``ansible-inventory --list`` so group_vars/host_vars merge exactly as
Ansible merges them. Only the keys the lab needs are checked here, each failure naming the file and
key to fix; the full site-model validation is ``playbooks/validate.yml``.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import sys
import urllib.parse
from pathlib import Path

from .errors import LabError

DEFAULT_INVENTORY = Path(__file__).resolve().parents[2] / "inventory" / "lab"
# The unit that gives a lab host its default route at every boot, as a server's installer would.
DEFAULT_ROUTE_UNIT = "twinsite-lab-route.service"


def validate_site(inventory: Path) -> None:
    """The whole site model, by the same validator as playbooks/validate.yml: every problem at once."""
    collections = Path(__file__).resolve().parents[2] / "collections"
    if str(collections) not in sys.path:
        sys.path.insert(0, str(collections))
    from ansible_collections.twinsite.dc.plugins.module_utils import _site_model

    findings = _site_model.validate(inventory)
    if findings:
        lines = "\n".join(f"  {f}" for f in findings)
        raise LabError("model", f"the site model has {len(findings)} problem(s):\n{lines}")


def ansible_inventory(inventory: Path) -> dict:
    exe = shutil.which("ansible-inventory", path=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    if exe is None:
        raise LabError("model", "ansible-inventory not found. Run `make setup` (it creates .venv with ansible-core).")
    proc = subprocess.run([exe, "-i", str(inventory), "--list"], capture_output=True, text=True, check=False)  # noqa: S603
    if proc.returncode != 0:
        raise LabError("model", f"ansible-inventory could not read {inventory}:\n{proc.stderr.strip()}")
    return json.loads(proc.stdout)


class _Where:
    """Say which file a host's or the site's key most likely came from, for error messages."""

    def __init__(self, inventory: Path):
        self.inventory = inventory

    def host(self, host: str) -> str:
        for ext in (".yml", ".yaml", ""):
            path = self.inventory / "host_vars" / f"{host}{ext}"
            if path.exists():
                return str(path.relative_to(self.inventory.parents[1]) if self.inventory.is_absolute() else path)
        return f"{self.inventory}/host_vars/{host}.yml"

    def key(self, key: str) -> str:
        base = self.inventory / "group_vars" / "all"
        for path in sorted(base.glob("*.y*ml")) if base.is_dir() else []:
            text = path.read_text()
            if text.startswith(f"{key}:") or f"\n{key}:" in text:
                return _rel(path)
        return _rel(base) + "/"


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _need(where: str, path: str, value, kind, expected: str):
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise LabError("model", f"{where}: {path}: expected {expected}, found {value!r}")
    return value


def load(inventory: Path = DEFAULT_INVENTORY) -> dict:
    """Return the lab model: {"networks", "containers", "vcsim", "fakepve", "s3", "fake_switches", ...}."""
    inventory = Path(inventory)
    if not inventory.is_dir():
        raise LabError("model", f"no inventory directory at {inventory}")
    validate_site(inventory)
    inv = ansible_inventory(inventory)
    hostvars = inv.get("_meta", {}).get("hostvars", {})
    where = _Where(inventory)
    if not hostvars:
        raise LabError("model", f"{_rel(inventory)} defines no hosts")
    allvars = next(iter(hostvars.values()))  # group_vars/all is the same on every host

    def groups_of(group: str) -> list[str]:
        """Hosts of a group, children included, in inventory order."""
        entry = inv.get(group)
        if entry is None:
            raise LabError("model", f"{_rel(inventory)}/hosts.yml: group {group!r} (named in lab.yml) does not exist")
        hosts = list(entry.get("hosts", []))
        for child in entry.get("children", []):
            hosts += [h for h in groups_of(child) if h not in hosts]
        return hosts

    prefix = _need(where.key("lab_prefix"), "lab_prefix", allvars.get("lab_prefix"), str, "a short name")
    ports = _need(where.key("lab_ports"), "lab_ports", allvars.get("lab_ports"), dict, "a mapping of port numbers")

    networks = []
    nets_file = where.key("dc_networks")
    for i, net in enumerate(_need(nets_file, "dc_networks", allvars.get("dc_networks"), list, "a list of networks")):
        path = f"dc_networks[{i}]"
        _need(nets_file, path, net, dict, "a mapping with name, vlan, subnet")
        name = _need(nets_file, f"{path}.name", net.get("name"), str, "a network name")
        try:
            subnet = ipaddress.ip_network(str(net.get("subnet")))
        except ValueError:
            raise LabError("model", f"{nets_file}: {path}.subnet: expected a CIDR such as 192.0.2.0/24, found {net.get('subnet')!r}") from None
        networks.append({"name": name, "podman_name": f"{prefix}-{name}", "subnet": str(subnet), "vlan": net.get("vlan"),
                         "gateway": str(net["gateway"]) if net.get("gateway") else None})
    by_net = {n["name"]: n for n in networks}
    routes_file = where.key("lab_default_routes")
    default_routes = _need(routes_file, "lab_default_routes", allvars.get("lab_default_routes") or {}, dict,
                           "a mapping of inventory group to the dc_networks network whose gateway is its hosts' default route")

    privileges = allvars.get("lab_container_privileges") or {}
    containers = []
    for group in _need(where.key("lab_container_groups"), "lab_container_groups", allvars.get("lab_container_groups"), list, "a list of inventory groups"):
        for host in groups_of(group):
            hv = hostvars[host]
            f = where.host(host)
            ifaces = [
                {"network": by_net[i["network"]]["podman_name"], "address": str(i["address"])}
                for i in _need(f, "host_interfaces", hv.get("host_interfaces"), list, "a list of {network, address}")
            ]
            if not ifaces:
                raise LabError("model", f"{f}: host_interfaces: host {host} needs at least one interface to be reachable")
            caps, devices, init_args, sysctls = [], [], [], []
            for pgroup, priv in privileges.items():
                if host in groups_of(pgroup):
                    caps += priv.get("caps", [])
                    devices += priv.get("devices", [])
                    init_args += priv.get("init_args", [])
                    sysctls += priv.get("sysctls", [])
            gateway = None
            for rgroup, net_name in default_routes.items():
                if host not in groups_of(rgroup):
                    continue
                net = by_net.get(net_name)
                if net is None or not net["gateway"]:
                    raise LabError("model", f"{routes_file}: lab_default_routes.{rgroup}: expected a dc_networks network "
                                            f"with a gateway, found {net_name!r}")
                if net["podman_name"] not in {i["network"] for i in ifaces}:
                    raise LabError("model", f"{routes_file}: lab_default_routes.{rgroup}: host {host} has no interface in "
                                            f"{net_name}, so its gateway {net['gateway']} is not on a link of the host")
                gateway = net["gateway"]
            containers.append({
                "host": host,
                "name": f"{prefix}-{host}",
                "interfaces": ifaces,
                "ssh_address": str(hv.get("ansible_host", ifaces[0]["address"])),
                "caps": sorted(set(caps)),
                "devices": sorted(set(devices)),
                "init_args": init_args + ([f"systemd.wants={DEFAULT_ROUTE_UNIT}"] if gateway else []),
                "sysctls": sorted(set(sysctls)),
                "default_gateway": gateway,
            })
    if len({c["name"] for c in containers}) != len(containers):
        raise LabError("model", "a host is listed twice in lab_container_groups' groups")

    return {
        "inventory": str(inventory),
        "prefix": prefix,
        "networks": networks,
        "containers": containers,
        "switch_endpoints": _switch_endpoints(allvars, prefix, {c["host"] for c in containers}, where),
        "switch_links": allvars.get("lab_switch_links") or [],
        "fake_switches": _fake_switches(hostvars, groups_of, where),
        "vcsim": _vcsim(allvars, ports, where),
        "fakepve": _fakepve(allvars, ports, where),
        "s3": _s3(allvars, ports, where),
        "uplink": _uplink(allvars, ports),
    }


def _switch_endpoints(allvars: dict, prefix: str, hosts: set[str], where: _Where) -> list[dict]:
    out = []
    f = where.key("lab_switch_endpoints")
    for i, ep in enumerate(allvars.get("lab_switch_endpoints") or []):
        if ep.get("switch") not in hosts:
            raise LabError("model", f"{f}: lab_switch_endpoints[{i}].switch: {ep.get('switch')!r} is not a lab container")
        out.append({**ep, "netns": f"{prefix}-{ep['switch']}-{ep['port']}", "container": f"{prefix}-{ep['switch']}"})
    return out


def _fake_switches(hostvars: dict, groups_of, where: _Where) -> list[dict]:
    out = []
    for host in groups_of("access_switches"):
        hv = hostvars[host]
        if hv.get("ansible_network_os") != "cisco.ios.ios":
            continue
        out.append({
            "name": host,
            "host": str(hv.get("ansible_host", "127.0.0.1")),
            "port": int(hv.get("ansible_port", 22)),
            "model": hv.get("switch_model", "cisco_2960_24TT_L"),
            "username": hv.get("ansible_user", "admin"),
            "password": hv.get("ansible_password", ""),
            "archive": hv.get("lab_switch_archive"),
        })
    return out


def _clusters(allvars: dict, kind: str) -> list[dict]:
    return [c for c in allvars.get("dc_clusters") or [] if isinstance(c, dict) and c.get("type") == kind]


def _vms_of(allvars: dict, cluster: str) -> tuple[list[dict], list[dict]]:
    templates = [t for t in allvars.get("dc_templates") or [] if t.get("cluster") == cluster]
    vms = [v for v in allvars.get("dc_vms") or [] if v.get("cluster") == cluster]
    return templates, vms


def _vcsim(allvars: dict, ports: dict, where: _Where) -> dict | None:
    clusters = _clusters(allvars, "vsphere")
    if not clusters:
        return None
    if len(clusters) > 1:
        raise LabError("model", f"{where.key('dc_clusters')}: the lab simulates one vSphere cluster; found {len(clusters)}")
    cl = clusters[0]
    templates, vms = _vms_of(allvars, cl["name"])
    nets = {n["name"]: n for n in allvars.get("dc_networks") or []}

    def vm(item: dict, template: bool) -> dict:
        return {
            "name": item["name"],
            "cluster": cl["cluster"],
            "folder": item.get("folder", "Templates" if template else "Servers"),
            "cpus": item.get("cpus", 1),
            "memory_mb": item.get("memory_mb", 1024),
            "disk_gb": item.get("disk_gb", 10),
            "networks": item.get("networks", []),
            "guest_id": item.get("guest_id") or _template_guest(templates, item.get("template")),
            "template": template,
            "power": "off" if template else str(item.get("power", "on")),
            "annotation": item.get("notes", ""),
        }

    all_vms = [vm(t, True) for t in templates] + [vm(v, False) for v in vms]
    return {
        "host": cl["api"]["host"],
        "port": int(ports.get("vcsim", cl["api"].get("port", 443))),
        "username": cl["api"]["username"],
        "password": cl["api"]["password"],
        "datacenter": cl["datacenter"],
        "clusters": [{"name": cl["cluster"], "hosts": cl.get("hosts", [])}],
        "portgroups": [{"name": n["name"], "vlan": n["vlan"]} for n in nets.values()],
        # The VM folders VMs are in, and those the model's desktop pools clone into.
        "folders": sorted({v["folder"] for v in all_vms}
                          | {p["folder"] for p in allvars.get("dc_vdi_pools") or [] if p.get("cluster") == cl["name"] and p.get("folder")}),
        "vms": all_vms,
        "extra_vms": int(allvars.get("lab_vcsim_extra_vms") or 0),
    }


def _template_guest(templates: list[dict], name) -> str:
    for t in templates:
        if t.get("name") == name:
            return t.get("guest_id", "otherGuest64")
    return "otherGuest64"


def _fakepve(allvars: dict, ports: dict, where: _Where) -> dict | None:
    clusters = _clusters(allvars, "proxmox")
    if not clusters:
        return None
    cl = clusters[0]
    templates, vms = _vms_of(allvars, cl["name"])
    nets = {n["name"]: n for n in allvars.get("dc_networks") or []}
    f = where.key("dc_vms")
    guests = []
    for item in templates + vms:
        template = item in templates
        if "vmid" not in item:
            raise LabError("model", f"{f}: VM {item.get('name')!r} on Proxmox cluster {cl['name']!r} needs a vmid")
        guests.append({
            "vmid": int(item["vmid"]),
            "name": item["name"],
            "node": item.get("node", cl["nodes"][0]),
            "type": "qemu",
            "template": template,
            "cpus": item.get("cpus", 1),
            "memory_mb": item.get("memory_mb", 1024),
            "disk_gb": item.get("disk_gb", 10),
            "networks": [{"bridge": "vmbr0", "vlan": nets[n]["vlan"]} for n in item.get("networks", []) if n in nets],
            "status": "running" if str(item.get("power", "off")) == "on" and not template else "stopped",
        })
    return {
        "host": cl["api"]["host"],
        "port": int(ports.get("fakepve", cl["api"].get("port", 8006))),
        "username": cl["api"]["username"],
        "password": cl["api"]["password"],
        "cluster": cl["name"],
        "nodes": cl["nodes"],
        "guests": guests,
        "latency": 0,
        "time_scale": 0,
    }


def _uplink(allvars: dict, ports: dict) -> dict | None:
    """dc_cloud.site_endpoint, when it is not loopback: the host forwards it to the S3 server."""
    site = urllib.parse.urlsplit(str((allvars.get("dc_cloud") or {}).get("site_endpoint") or ""))
    if not site.hostname or site.hostname in ("127.0.0.1", "localhost"):
        return None
    return {"listen_host": site.hostname, "listen_port": site.port or 443, "to_host": "127.0.0.1", "to_port": int(ports.get("s3", 8333))}


def _s3(allvars: dict, ports: dict, where: _Where) -> dict | None:
    cloud = allvars.get("dc_cloud")
    if not cloud:
        return None
    lock = cloud.get("object_lock") or {}
    return {
        "host": "127.0.0.1",
        "port": int(ports.get("s3", 8333)),
        # Names the certificate must also carry: the address the sites reach the cloud by.
        "extra_cert_hosts": [h for h in [urllib.parse.urlsplit(str(cloud.get("site_endpoint") or "")).hostname] if h],
        "region": cloud.get("region", "us-east-1"),
        "access_key": cloud["access_key"],
        "secret_key": cloud["secret_key"],
        "buckets": [{
            "name": cloud["bucket"],
            "object_lock": bool(lock),
            "mode": lock.get("mode", "COMPLIANCE"),
            "retention_days": int(lock.get("retention_days", 1)),
        }],
        "internal_ports": {
            "master": int(ports.get("s3_master", 19333)),
            "volume": int(ports.get("s3_volume", 18080)),
            "filer": int(ports.get("s3_filer", 18888)),
        },
    }
