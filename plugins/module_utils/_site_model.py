# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validate a site model (inventory/<site>/) completely, and explain every problem at once.

Reads the inventory's YAML files itself (not Ansible's merged variables) so each problem names
the file it is in and the path to the value: ``inventory/lab/group_vars/all/services.yml:
dc_services[3].depends_on[0]: 'dnsx' is not a service (known: dns, portal)``.

Two passes: the JSON schemas in ``schemas/`` (types, required keys, ranges, typos in key names),
then the cross-reference rules below (subnets, references, cycles, RPO vs backup schedule).
Values that are Jinja templates (``{{ ... }}``) are only known when Ansible runs, so they are not
judged here. Runs on the controller only; needs PyYAML and jsonschema.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError
from ansible_collections.twinsite.dc.plugins.module_utils._vdi import Naming

try:
    import jsonschema

    HAS_JSONSCHEMA = True
except ImportError:  # pragma: no cover - reported by the action plugin
    HAS_JSONSCHEMA = False

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"
NAME_KEYS = ("dc_sites", "dc_networks", "dc_clusters", "dc_services", "dc_backup_policies", "dc_vdi_pools")


@dataclass(frozen=True, order=True)
class Finding:
    file: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.path}: {self.message}" if self.path else f"{self.file}: {self.message}"


class _Vault(str):
    """An Ansible Vault value: a secret string whose content the validator cannot (and need not) see."""


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!vault", lambda loader, node: _Vault("<vault>"))
_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def _h(value):
    """A value usable as a set member or dict key; garbage (lists, mappings) becomes its repr, so a
    rule compares it, finds it unknown and moves on - the schema pass has already named its type."""
    return value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)


def _templated(value) -> bool:
    return isinstance(value, str) and "{{" in value


@dataclass
class Model:
    """The site model as written: each variable with the file it was written in."""

    root: Path
    values: dict = field(default_factory=dict)  # group_vars/all key -> value
    origin: dict = field(default_factory=dict)  # group_vars/all key -> file
    hosts: dict = field(default_factory=dict)  # host -> {key: value}
    host_origin: dict = field(default_factory=dict)  # host -> file of its variables
    groups: dict = field(default_factory=dict)  # group -> set of hosts (children included)
    findings: list = field(default_factory=list)

    def rel(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(Path.cwd()))
        except ValueError:
            return str(path)

    def file_of(self, key: str) -> str:
        return self.origin.get(key, self.rel(self.root / "group_vars" / "all"))


def _load_yaml(model: Model, path: Path):
    try:
        text = path.read_text(encoding="utf-8")
        if text.startswith("$ANSIBLE_VAULT;"):
            # An Ansible Vault file holds secrets only; they are checked where they are used.
            return {}
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}" if mark else ""
        model.findings.append(Finding(model.rel(path), where, f"not valid YAML: {getattr(exc, 'problem', None) or exc}"))
    except OSError as exc:
        model.findings.append(Finding(model.rel(path), "", f"cannot be read: {exc.strerror}"))
    return None


def _var_files(base: Path) -> list[Path]:
    """group_vars/<x>.yml or every YAML file under group_vars/<x>/ (Ansible's two layouts)."""
    files = [base.with_suffix(s) for s in (".yml", ".yaml") if base.with_suffix(s).is_file()]
    if base.is_dir():
        files += sorted(p for p in base.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())
    return files


def load(root: Path) -> Model:
    """Read an inventory directory (YAML inventory files, group_vars/all, host_vars)."""
    root = Path(root)
    model = Model(root=root)
    if not root.is_dir():
        model.findings.append(Finding(str(root), "", "is not an inventory directory"))
        return model
    for path in _var_files(root / "group_vars" / "all"):
        data = _load_yaml(model, path)
        if data is None:
            continue
        if not isinstance(data, dict):
            model.findings.append(Finding(model.rel(path), "", f"expected a mapping of variables, found {type(data).__name__}"))
            continue
        for key, value in data.items():
            if key in model.origin and key.startswith("dc_"):
                model.findings.append(Finding(model.rel(path), key, f"is also defined in {model.origin[key]}; Ansible would keep only one of them"))
            model.values[key] = value
            model.origin[key] = model.rel(path)
    for path in sorted(root.glob("*.y*ml")):
        data = _load_yaml(model, path)
        if isinstance(data, dict):
            _walk_inventory(model, path, data, [])
    for host in model.hosts:
        for path in _var_files(root / "host_vars" / host):
            data = _load_yaml(model, path)
            if isinstance(data, dict):
                model.hosts[host].update(data)
                model.host_origin[host] = model.rel(path)
    return model


def _walk_inventory(model: Model, path: Path, tree: dict, parents: list[str]) -> None:
    for group, body in tree.items():
        body = body or {}
        if not isinstance(body, dict):
            model.findings.append(Finding(model.rel(path), group, f"expected a group mapping (hosts/children/vars), found {body!r}"))
            continue
        for host, hvars in (body.get("hosts") or {}).items():
            model.hosts.setdefault(host, {})
            if isinstance(hvars, dict):
                model.hosts[host].update(hvars)
            model.host_origin.setdefault(host, model.rel(path))
            for g in [*parents, group]:
                model.groups.setdefault(g, set()).add(host)
        _walk_inventory(model, path, body.get("children") or {}, [*parents, group])


# --- pass 1: schemas -----------------------------------------------------------------------------


def _schemas() -> list[dict]:
    return [yaml.safe_load(p.read_text()) for p in sorted(SCHEMA_DIR.glob("*.schema.yml"))]


def _path(parts) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _describe(error) -> str:
    """One line a sysadmin can act on, from a jsonschema error."""
    found = error.instance
    if error.validator == "required":
        missing = [m for m in error.validator_value if not isinstance(found, dict) or m not in found]
        return f"missing required key {missing[0]!r}" if missing else error.message
    if error.validator == "additionalProperties":
        extra = sorted(set(found) - set(error.schema.get("properties", {})))
        known = ", ".join(sorted(error.schema.get("properties", {})))
        return f"unknown key {extra[0]!r} (expected one of: {known})"
    if error.validator == "enum":
        hint = ' - write it quoted ("on"/"off"): YAML reads a bare on/off as true/false' if isinstance(found, bool) else ""
        return f"found {found!r}, expected one of {', '.join(map(repr, error.validator_value))}{hint}"
    if error.validator == "type":
        return f"found {found!r} ({type(found).__name__}), expected {error.validator_value}"
    if error.validator in ("minimum", "maximum"):
        return f"found {found!r}, expected {'at least' if error.validator == 'minimum' else 'at most'} {error.validator_value}"
    if error.validator == "pattern":
        return f"found {found!r}, which does not match {error.validator_value} {error.schema.get('description', '')}".rstrip()
    if error.validator == "minProperties":
        return f"needs at least {error.validator_value} key(s)"
    if error.validator == "minItems":
        return f"needs at least {error.validator_value} item(s)"
    if error.validator == "uniqueItems":
        return "lists an item twice"
    if error.validator == "not":
        return "has a key that does not belong with this mode"
    return error.message


def _schema_findings(model: Model) -> list[Finding]:
    out = []
    schemas = _schemas()
    known_keys = {k for s in schemas for k in s.get("properties", {})}
    for schema in schemas:
        scope = schema.pop("scope", "all")
        validator = jsonschema.Draft202012Validator(schema)
        targets = [(None, model.values)] if scope == "all" else list(model.hosts.items())
        for host, data in targets:
            for error in validator.iter_errors({k: v for k, v in data.items() if k in schema.get("properties", {}) or k in schema.get("required", [])}):
                if _templated(error.instance):
                    continue
                parts = list(error.absolute_path)
                if error.validator == "required" and not parts:
                    key = error.validator_value[0]
                    where = model.rel(model.root / "group_vars" / "all") + "/"
                    out.append(Finding(where, key, _describe(error)))
                    continue
                file = model.host_origin.get(host, "") if host else model.file_of(str(parts[0]) if parts else "")
                out.append(Finding(file, _path(parts), _describe(error)))
    for key in model.values:
        if key.startswith("dc_") and key not in known_keys:
            out.append(Finding(model.file_of(key), key, "is not a site-model key (typo?); see docs/site-model.md for the known keys"))
    return out


# --- pass 2: cross-reference rules ---------------------------------------------------------------


class _Rules:
    def __init__(self, model: Model):
        self.m = model
        self.out: list[Finding] = []
        v = model.values
        self.items = {k: [i for i in v.get(k) or [] if isinstance(i, dict)] if isinstance(v.get(k), list) else [] for k in (
            "dc_sites", "dc_networks", "dc_clusters", "dc_templates", "dc_vms", "dc_services", "dc_backup_policies",
            "dc_vdi_pools", "dc_switch_ports", "dc_lags", "dc_backup_jobs")}
        self.names = {k: {_h(i.get("name")) for i in self.items[k]} for k in self.items}

    def add(self, key: str, path: str, message: str, file: str | None = None) -> None:
        self.out.append(Finding(file or self.m.file_of(key), path, message))

    def ref(self, key: str, path: str, value, kind: str, known: set, what: str | None = None, file: str | None = None) -> None:
        """Report ``value`` at ``path`` when it is not one of ``known`` (templated values pass)."""
        value = _h(value)
        if value is None or _templated(value) or value in known:
            return
        listed = ", ".join(sorted(str(k) for k in known if k is not None)) or "none defined"
        self.add(key, path, f"{value!r} is not {what or 'a ' + kind} (known: {listed})", file)

    def run(self) -> list[Finding]:
        for rule in (self.unique_names, self.networks, self.host_interfaces, self.sites, self.clusters, self.vms,
                     self.services, self.service_cycles, self.backups, self.backup_jobs, self.dr, self.vdi, self.firewall, self.switching):
            try:
                rule()
            except (TypeError, AttributeError, KeyError, ValueError):
                # Input so malformed that a rule cannot read it; the schema pass has said why.
                # Say which rule could not run rather than failing or staying silent.
                self.add("", "", f"the {rule.__name__.replace('_', ' ')} checks could not run; fix the problems above first",
                         self.m.rel(self.m.root))
        return self.out

    def unique_names(self) -> None:
        for key in NAME_KEYS:
            seen = {}
            for i, item in enumerate(self.items[key]):
                name = _h(item.get("name"))
                if name in seen:
                    self.add(key, f"{key}[{i}].name", f"{name!r} is already used by {key}[{seen[name]}]")
                seen.setdefault(name, i)
        seen = {}
        for i, vm in enumerate(self.items["dc_vms"]):
            ident = (_h(vm.get("cluster")), _h(vm.get("name")))
            if ident in seen:
                self.add("dc_vms", f"dc_vms[{i}].name", f"{vm.get('name')!r} is already a VM of cluster {vm.get('cluster')!r} (dc_vms[{seen[ident]}])")
            seen.setdefault(ident, i)

    def networks(self) -> None:
        parsed = []
        by_site_vlan = {}
        for i, net in enumerate(self.items["dc_networks"]):
            path = f"dc_networks[{i}]"
            subnet = net.get("subnet")
            try:
                cidr = ipaddress.ip_network(str(subnet)) if not _templated(subnet) else None
            except ValueError:
                self.add("dc_networks", f"{path}.subnet", f"{subnet!r} is not a network in CIDR form (e.g. 192.0.2.0/24, host bits zero)")
                cidr = None
            gateway = net.get("gateway")
            if cidr is not None and gateway is not None and not _templated(gateway):
                try:
                    if ipaddress.ip_address(str(gateway)) not in cidr:
                        self.add("dc_networks", f"{path}.gateway", f"{gateway} is outside the network's subnet {cidr}")
                except ValueError:
                    self.add("dc_networks", f"{path}.gateway", f"{gateway!r} is not an IP address")
            for j, other in parsed:
                if cidr is not None and cidr.version == other.version and cidr.overlaps(other):
                    self.add("dc_networks", f"{path}.subnet", f"{cidr} overlaps dc_networks[{j}].subnet {other}")
            if cidr is not None:
                parsed.append((i, cidr))
            key = (_h(net.get("site")), _h(net.get("vlan")))
            if isinstance(net.get("vlan"), int) and key in by_site_vlan:
                self.add("dc_networks", f"{path}.vlan", f"VLAN {net['vlan']} is already used at site {net.get('site')!r} by dc_networks[{by_site_vlan[key]}]")
            by_site_vlan.setdefault(key, i)

    def _subnets(self) -> dict:
        out = {}
        for net in self.items["dc_networks"]:
            try:
                out[_h(net.get("name"))] = ipaddress.ip_network(str(net.get("subnet")))
            except ValueError:
                out[_h(net.get("name"))] = None
        return out

    def host_interfaces(self) -> None:
        subnets = self._subnets()
        owners = {}
        for host, hvars in sorted(self.m.hosts.items()):
            file = self.m.host_origin.get(host, "")
            ifaces = hvars.get("host_interfaces")
            if not isinstance(ifaces, list):
                continue
            for i, iface in enumerate(ifaces):
                if not isinstance(iface, dict):
                    continue
                path = f"host_interfaces[{i}]"
                net = _h(iface.get("network"))
                if net not in subnets and not _templated(net):
                    self.add("", f"{path}.network", f"{net!r} is not a network (known: {', '.join(sorted(map(str, subnets)))})", file)
                    continue
                address = iface.get("address")
                if _templated(address):
                    continue
                try:
                    ip = ipaddress.ip_address(str(address))
                except ValueError:
                    self.add("", f"{path}.address", f"{address!r} is not an IP address", file)
                    continue
                if subnets.get(net) is not None and ip not in subnets[net]:
                    self.add("", f"{path}.address", f"{ip} is outside network {net} ({subnets[net]})", file)
                if ip in owners:
                    self.add("", f"{path}.address", f"{ip} is also the address of {owners[ip]}", file)
                owners.setdefault(ip, host)

    def sites(self) -> None:
        sites = self.names["dc_sites"]
        for key in ("dc_networks", "dc_clusters", "dc_vdi_pools"):
            for i, item in enumerate(self.items[key]):
                self.ref(key, f"{key}[{i}].site", item.get("site"), "site", sites)
        for host, hvars in sorted(self.m.hosts.items()):
            if "host_site" in hvars:
                self.ref("", "host_site", hvars["host_site"], "site", sites, file=self.m.host_origin.get(host, ""))

    def clusters(self) -> None:
        clusters = self.names["dc_clusters"]
        for i, tpl in enumerate(self.items["dc_templates"]):
            self.ref("dc_templates", f"dc_templates[{i}].cluster", tpl.get("cluster"), "cluster", clusters)

    def vms(self) -> None:
        clusters = {_h(c.get("name")): c for c in self.items["dc_clusters"]}
        networks = self.names["dc_networks"]
        templates = {(_h(t.get("cluster")), _h(t.get("name"))) for t in self.items["dc_templates"]}
        vmids = {}
        for i, vm in enumerate(self.items["dc_vms"]):
            path = f"dc_vms[{i}]"
            cluster = clusters.get(_h(vm.get("cluster")))
            self.ref("dc_vms", f"{path}.cluster", vm.get("cluster"), "cluster", set(clusters))
            if "template" in vm and cluster is not None and (_h(vm.get("cluster")), _h(vm.get("template"))) not in templates:
                known = sorted(str(n) for c, n in templates if c == vm.get("cluster"))
                listed = ", ".join(known) or "none"
                self.add("dc_vms", f"{path}.template", f"{vm.get('template')!r} is not a template of cluster {vm.get('cluster')!r} (known: {listed})")
            for j, net in enumerate(vm.get("networks") or []):
                self.ref("dc_vms", f"{path}.networks[{j}]", net, "network", networks)
            if cluster is not None and cluster.get("type") == "proxmox":
                if "vmid" not in vm:
                    self.add("dc_vms", path, f"VM {vm.get('name')!r} is on Proxmox cluster {cluster.get('name')!r} and needs a vmid")
                if "node" in vm:
                    nodes = {_h(n) for n in cluster.get("nodes") or []} if isinstance(cluster.get("nodes"), list) else set()
                    self.ref("dc_vms", f"{path}.node", vm.get("node"), "node", nodes, f"a node of {cluster.get('name')}")
            if "vmid" in vm:
                ident = (_h(vm.get("cluster")), _h(vm.get("vmid")))
                if ident in vmids:
                    self.add("dc_vms", f"{path}.vmid", f"vmid {vm.get('vmid')} is already used by {vmids[ident]}")
                vmids.setdefault(ident, vm.get("name"))

    def services(self) -> None:
        services = self.names["dc_services"]
        vms = {_h(v.get("name")) for v in self.items["dc_vms"]}
        policies = self.names["dc_backup_policies"]
        for i, svc in enumerate(self.items["dc_services"]):
            path = f"dc_services[{i}]"
            for j, host in enumerate(svc.get("hosts") or []):
                self.ref("dc_services", f"{path}.hosts[{j}]", host, "host", set(self.m.hosts), "a host of the inventory")
            for j, vm in enumerate(svc.get("vms") or []):
                self.ref("dc_services", f"{path}.vms[{j}]", vm, "VM", vms, "a VM in dc_vms")
            for j, dep in enumerate(svc.get("depends_on") or []):
                self.ref("dc_services", f"{path}.depends_on[{j}]", dep, "service", services)
                if dep == svc.get("name"):
                    self.add("dc_services", f"{path}.depends_on[{j}]", "a service cannot depend on itself")
            self.ref("dc_services", f"{path}.backup_policy", svc.get("backup_policy"), "backup policy", policies)

    def service_cycles(self) -> None:
        graph = {
            _h(s.get("name")): [_h(d) for d in s.get("depends_on") or [] if _h(d) != _h(s.get("name"))]
            if isinstance(s.get("depends_on") or [], list) else []
            for s in self.items["dc_services"]
        }
        index = {_h(s.get("name")): i for i, s in enumerate(self.items["dc_services"])}
        state: dict = {}
        reported = set()

        def visit(node, trail):
            state[node] = "open"
            for dep in graph.get(node, []):
                if dep not in graph:
                    continue
                if state.get(dep) == "open":
                    cycle = trail[trail.index(dep):] + [dep]
                    if frozenset(cycle) not in reported:
                        reported.add(frozenset(cycle))
                        self.add("dc_services", f"dc_services[{index[dep]}].depends_on", f"dependency cycle: {' -> '.join(cycle)}")
                elif dep not in state:
                    visit(dep, [*trail, dep])
            state[node] = "done"

        for name in graph:
            if name not in state:
                visit(name, [name])

    def backups(self) -> None:
        policies = {_h(p.get("name")): p for p in self.items["dc_backup_policies"]}
        for i, svc in enumerate(self.items["dc_services"]):
            policy = policies.get(_h(svc.get("backup_policy")))
            rpo = svc.get("rpo_minutes")
            if policy is None or not isinstance(rpo, int):
                continue
            interval = policy.get("interval_minutes")
            if isinstance(interval, int) and interval > rpo:
                self.add("dc_services", f"dc_services[{i}].rpo_minutes",
                         f"RPO {rpo} min cannot be met: backup policy {policy.get('name')!r} runs every {interval} min")
        for i, policy in enumerate(self.items["dc_backup_policies"]):
            if "cloud" in (policy.get("copies") or []) and "dc_cloud" not in self.m.values:
                self.add("dc_backup_policies", f"dc_backup_policies[{i}].copies", "names a cloud copy but dc_cloud is not defined")
        repo = self.m.values.get("dc_backup_repository")
        if isinstance(repo, dict) and isinstance(repo.get("host"), str):
            holders = self.m.groups.get("backup_repositories", set())
            if repo["host"] not in holders:
                self.add("dc_backup_repository", "dc_backup_repository.host",
                         f"{repo['host']!r} is not in the inventory group backup_repositories (hosts there: {', '.join(sorted(holders)) or 'none'})")
        needs_repo = [p.get("name") for p in self.items["dc_backup_policies"] if "secondary" in (p.get("copies") or [])]
        if needs_repo and self.items["dc_services"] and "dc_backup_repository" not in self.m.values:
            self.add("dc_backup_policies", "dc_backup_policies",
                     f"policies {', '.join(map(str, needs_repo))} keep a secondary copy but dc_backup_repository is not defined")

    def backup_jobs(self) -> None:
        """Proxmox backup jobs: on a Proxmox cluster, of that cluster's VMs, saying what to back up and
        when, with a retention PVE accepts; ids unique per cluster."""
        key = "dc_backup_jobs"
        clusters = {_h(c.get("name")): c for c in self.items["dc_clusters"]}
        seen = {}
        for i, job in enumerate(self.items[key]):
            path = f"{key}[{i}]"
            name = _h(job.get("cluster"))
            cluster = clusters.get(name)
            self.ref(key, f"{path}.cluster", job.get("cluster"), "cluster", set(clusters))
            if cluster is not None and cluster.get("type") != "proxmox":
                self.add(key, f"{path}.cluster", f"{name!r} is a {cluster.get('type')} cluster; backup jobs are a Proxmox VE feature")
                cluster = None
            ident = (name, _h(job.get("id")))
            if ident in seen:
                self.add(key, f"{path}.id", f"{job.get('id')!r} is already a backup job of cluster {name!r} ({key}[{seen[ident]}])")
            seen.setdefault(ident, i)
            present = job.get("state", "present") != "absent"
            if present and "schedule" not in job:
                self.add(key, path, "a job that is present needs a schedule (e.g. \"02:30\" or \"sun 01:00\")")
            if "vms" in job and job.get("all"):
                self.add(key, f"{path}.all", "give vms or all: true, not both")
            elif present and not job.get("vms") and not job.get("all"):
                self.add(key, path, "a job that is present needs vms (the VMs to back up) or all: true")
            if cluster is not None:
                vms = {_h(v.get("name")): v for v in self.items["dc_vms"] if _h(v.get("cluster")) == name}
                for j, vm in enumerate(job.get("vms") or []):
                    self.ref(key, f"{path}.vms[{j}]", vm, "VM", set(vms), f"a VM of cluster {name} in dc_vms")
                    if present and _h(vm) in vms and vms[_h(vm)].get("state") == "absent":
                        self.add(key, f"{path}.vms[{j}]", f"VM {vm!r} is declared absent in dc_vms; a job cannot back it up")
                if "node" in job:
                    nodes = {_h(n) for n in cluster.get("nodes") or []} if isinstance(cluster.get("nodes"), list) else set()
                    self.ref(key, f"{path}.node", job.get("node"), "node", nodes, f"a node of {name}")
            retention = job.get("retention")
            if isinstance(retention, dict):
                counts = [k for k in retention if k != "keep_all"]
                if retention.get("keep_all") and counts:
                    counts = ", ".join(sorted(counts))
                    self.add(key, f"{path}.retention", f"keep_all: true keeps every backup; it cannot go with {counts}")
                elif not retention.get("keep_all") and not counts:
                    self.add(key, f"{path}.retention",
                             "is empty: give keep_last/keep_daily/... counts or keep_all: true, or leave retention out for the storage's own")

    def dr(self) -> None:
        """Recovery: every recovery host is in the recovery group; the drill maps production networks
        onto networks of the site that takes over; a recovered service needs its backups."""
        dr = self.m.values.get("dc_dr")
        recovering = [(i, s) for i, s in enumerate(self.items["dc_services"]) if isinstance(s.get("recovery"), dict)]
        if not isinstance(dr, dict):
            if recovering:
                self.add("dc_services", f"dc_services[{recovering[0][0]}].recovery", "services have a recovery block but dc_dr is not defined")
            return
        group = dr.get("recovery_group")
        holders = self.m.groups.get(group, set()) if isinstance(group, str) else set()
        if isinstance(group, str) and not _templated(group) and group not in self.m.groups:
            self.add("dc_dr", "dc_dr.recovery_group", f"{group!r} is not an inventory group")
        self.ref("dc_dr", "dc_dr.site", dr.get("site"), "site", self.names["dc_sites"])
        nets = {_h(n.get("name")): n for n in self.items["dc_networks"]}
        drill = dr.get("drill") if isinstance(dr.get("drill"), dict) else {}
        for src, dst in (drill.get("network_map") or {}).items():
            path = f"dc_dr.drill.network_map.{src}"
            self.ref("dc_dr", path, src, "network", set(nets))
            self.ref("dc_dr", path, dst, "network", set(nets))
            target = nets.get(_h(dst))
            if target is not None and target.get("site") != dr.get("site"):
                self.add("dc_dr", path, f"network {dst!r} is at site {target.get('site')!r}; a drill recovers at {dr.get('site')!r}")
            if target is not None and target.get("gateway"):
                self.add("dc_dr", path, f"network {dst!r} has a gateway ({target['gateway']}); a drill network must be isolated (no gateway)")
        if "cluster" in drill:
            self.ref("dc_dr", "dc_dr.drill.cluster", drill.get("cluster"), "cluster", self.names["dc_clusters"])
        failover = dr.get("failover") if isinstance(dr.get("failover"), dict) else {}
        for j, net in enumerate(failover.get("networks") or []):
            self.ref("dc_dr", f"dc_dr.failover.networks[{j}]", net, "network", set(nets))
            for host in sorted(holders):
                legs = {i.get("network") for i in (self.m.hosts.get(host) or {}).get("host_interfaces") or [] if isinstance(i, dict)}
                if net in nets and net not in legs:
                    self.add("dc_dr", f"dc_dr.failover.networks[{j}]",
                             f"recovery host {host} has no interface in {net!r}: it could not take over a service there")
        for i, svc in recovering:
            rec = svc["recovery"]
            path = f"dc_services[{i}].recovery"
            if rec.get("method") in ("replica_vm", "vm_backup_restore"):
                self._dr_vm_method(path, rec, dr)
                continue
            host = rec.get("host")
            if holders and not _templated(host) and host not in holders:
                self.add("dc_services", f"{path}.host",
                         f"{host!r} is not in the recovery group {group} (hosts there: {', '.join(sorted(holders))})")
            site = (self.m.hosts.get(host) or {}).get("host_site") if isinstance(host, str) else None
            if site is not None and site != dr.get("site"):
                self.add("dc_services", f"{path}.host", f"{host!r} is at site {site!r}; services are recovered at {dr.get('site')!r}")
            if rec.get("method") == "restore_data" and not svc.get("backup_policy"):
                self.add("dc_services", f"{path}.method", "restore_data needs the service's backup_policy (the data to restore)")

    def _dr_vm_method(self, path: str, rec: dict, dr: dict) -> None:
        """A VM-level recovery: the cluster is at the site that takes over, the VM is in dc_vms, and
        vzdump backups exist only on Proxmox VE."""
        clusters = {_h(c.get("name")): c for c in self.items["dc_clusters"]}
        cluster = rec.get("cluster")
        self.ref("dc_services", f"{path}.cluster", cluster, "cluster", set(clusters))
        found = clusters.get(_h(cluster))
        if found is not None and found.get("site") not in (None, dr.get("site")):
            self.add("dc_services", f"{path}.cluster", f"cluster {cluster!r} is at site {found.get('site')!r}; "
                     f"services are recovered at {dr.get('site')!r}")
        if rec.get("method") == "vm_backup_restore" and found is not None and found.get("type") not in (None, "proxmox"):
            self.add("dc_services", f"{path}.method", f"vm_backup_restore restores Proxmox vzdump backups; cluster {cluster!r} is {found.get('type')!r}")
        key = "replica" if rec.get("method") == "replica_vm" else "source"
        vms = {_h(v.get("name")): v for v in self.items["dc_vms"]}
        self.ref("dc_services", f"{path}.{key}", rec.get(key), "VM", set(vms), "a VM of dc_vms")
        vm = vms.get(_h(rec.get(key)))
        if key == "replica" and vm is not None and not _templated(cluster) and vm.get("cluster") != cluster:
            self.add("dc_services", f"{path}.replica", f"VM {rec.get(key)!r} is on cluster {vm.get('cluster')!r}, not {cluster!r}")

    def vdi(self) -> None:
        clusters = self.names["dc_clusters"]
        templates = {(_h(t.get("cluster")), _h(t.get("name"))) for t in self.items["dc_templates"]}
        for i, pool in enumerate(self.items["dc_vdi_pools"]):
            path = f"dc_vdi_pools[{i}]"
            self.ref("dc_vdi_pools", f"{path}.cluster", pool.get("cluster"), "cluster", clusters)
            if _h(pool.get("cluster")) in clusters and (_h(pool.get("cluster")), _h(pool.get("template"))) not in templates:
                self.add("dc_vdi_pools", f"{path}.template", f"{pool.get('template')!r} is not a template of cluster {pool.get('cluster')!r}")
            self.ref("dc_vdi_pools", f"{path}.network", pool.get("network"), "network", self.names["dc_networks"])
            size = pool.get("size") or {}
            if all(isinstance(size.get(k), int) for k in ("min", "max", "spare")):
                if size["min"] > size["max"]:
                    self.add("dc_vdi_pools", f"{path}.size", f"min {size['min']} is larger than max {size['max']}")
                if size["spare"] > size["max"]:
                    self.add("dc_vdi_pools", f"{path}.size.spare", f"spare {size['spare']} is larger than max {size['max']}")
            rec = pool.get("dr")
            if isinstance(rec, dict):
                self.ref("dc_vdi_pools", f"{path}.dr.cluster", rec.get("cluster"), "cluster", clusters)
                if _h(rec.get("cluster")) in clusters and (_h(rec.get("cluster")), _h(rec.get("template"))) not in templates:
                    self.add("dc_vdi_pools", f"{path}.dr.template",
                             f"{rec.get('template')!r} is not a template of cluster {rec.get('cluster')!r}: replicate the golden image there")
            if isinstance(pool.get("naming"), str):
                try:  # the rule the pool module applies, so the model and the module agree on what a pattern is
                    Naming(pool["naming"])
                except TwinsiteError as exc:
                    self.add("dc_vdi_pools", f"{path}.naming", exc.reason)
        broker = self.m.values.get("dc_vdi_broker")
        if isinstance(broker, dict):
            needs = {"file": ("path",), "horizon": ("url", "username", "password")}.get(broker.get("type"), ())
            for key in needs:
                if not broker.get(key):
                    self.add("dc_vdi_broker", f"dc_vdi_broker.{key}", f"a {broker.get('type')} broker needs {key}")

    def firewall(self) -> None:
        fw = self.m.values.get("dc_firewall")
        if not isinstance(fw, dict):
            return
        key = "dc_firewall"

        def named(section):
            return [i for i in fw.get(section) or [] if isinstance(i, dict)]

        zones = {_h(z.get("name")) for z in named("zones")}
        addresses = {_h(a.get("name")) for a in named("addresses")}
        services = {_h(s.get("name")) for s in named("services")}
        zone_of_network = {}
        for i, zone in enumerate(named("zones")):
            for j, net in enumerate(zone.get("networks") or []):
                self.ref(key, f"dc_firewall.zones[{i}].networks[{j}]", net, "network", self.names["dc_networks"])
                net = _h(net)
                if net in zone_of_network:
                    self.add(key, f"dc_firewall.zones[{i}].networks[{j}]", f"network {net!r} is already in zone {zone_of_network[net]!r}")
                zone_of_network.setdefault(net, zone.get("name"))
        for i, net in enumerate(self.items["dc_networks"]):
            if net.get("zone") is not None and zones and _h(net.get("zone")) not in zones:
                self.ref("dc_networks", f"dc_networks[{i}].zone", net.get("zone"), "zone", zones, "a zone of dc_firewall")
        for i, addr in enumerate(named("addresses")):
            try:
                ipaddress.ip_network(str(addr.get("cidr")))
            except ValueError:
                self.add(key, f"dc_firewall.addresses[{i}].cidr", f"{addr.get('cidr')!r} is not a network in CIDR form")
        for i, rule in enumerate(named("rules")):
            path = f"dc_firewall.rules[{i}]"
            for end in ("from", "to"):
                self.ref(key, f"{path}.{end}", rule.get(end), "zone", zones)
            for end in ("source", "destination"):
                self.ref(key, f"{path}.{end}", rule.get(end), "address", addresses, "an address object")
            for j, svc in enumerate(rule.get("services") or []):
                self.ref(key, f"{path}.services[{j}]", svc, "service", services, "a service object")
        for i, nat in enumerate(named("nat")):
            path = f"dc_firewall.nat[{i}]"
            for end in ("from", "to"):
                self.ref(key, f"{path}.{end}", nat.get(end), "zone", zones)
            self.ref(key, f"{path}.address", nat.get("address"), "address", addresses, "an address object")
            self.ref(key, f"{path}.service", nat.get("service"), "service", services, "a service object")
            if nat.get("type") == "destination" and not nat.get("address"):
                self.add(key, path, "a destination NAT needs the address it publishes")

    def switching(self) -> None:
        switches = self.m.groups.get("core_switches", set()) | self.m.groups.get("access_switches", set())
        networks = self.names["dc_networks"]
        ports = {}
        for i, port in enumerate(self.items["dc_switch_ports"]):
            path = f"dc_switch_ports[{i}]"
            self.ref("dc_switch_ports", f"{path}.switch", port.get("switch"), "switch", switches, "a host of core_switches or access_switches")
            ident = (_h(port.get("switch")), _h(port.get("port")))
            if ident in ports:
                first = f"dc_switch_ports[{ports[ident]}]"
                self.add("dc_switch_ports", f"{path}.port", f"port {port.get('port')!r} of {port.get('switch')} is already described by {first}")
            ports.setdefault(ident, i)
            self.ref("dc_switch_ports", f"{path}.network", port.get("network"), "network", networks)
            for j, net in enumerate(port.get("networks") or []):
                self.ref("dc_switch_ports", f"{path}.networks[{j}]", net, "network", networks)
        for i, lag in enumerate(self.items["dc_lags"]):
            path = f"dc_lags[{i}]"
            self.ref("dc_lags", f"{path}.switch", lag.get("switch"), "switch", switches, "a host of core_switches or access_switches")
            for j, member in enumerate(lag.get("members") or []):
                if (_h(lag.get("switch")), _h(member)) not in ports:
                    self.add("dc_lags", f"{path}.members[{j}]", f"port {member!r} of {lag.get('switch')} is not in dc_switch_ports")
            for j, net in enumerate(lag.get("networks") or []):
                self.ref("dc_lags", f"{path}.networks[{j}]", net, "network", networks)


def validate(root, groups: dict | None = None) -> list[Finding]:
    """Every problem of the site model in ``root``, sorted by file and path; empty when valid.

    ``groups`` (group -> hosts) overrides the groups read from YAML inventory files, for callers
    that have Ansible's own view (the action plugin).
    """
    model = load(Path(root))
    if groups is not None:
        model.groups = {g: set(h) for g, h in groups.items()}
        for host in set().union(*model.groups.values()) if model.groups else set():
            model.hosts.setdefault(host, {})
    return validate_model(model)


def validate_model(model: Model) -> list[Finding]:
    findings = list(model.findings)
    if any("not valid YAML" in f.message for f in findings):
        return sorted(set(findings))  # the rest would only repeat the syntax error
    findings += _schema_findings(model)
    findings += _Rules(model).run()
    return sorted(set(findings), key=lambda f: (f.file, _natural(f.path), f.message))


def _natural(path: str) -> list:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", path)]
