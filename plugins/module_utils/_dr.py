"""The DR recovery plan, worked out from the site model: which services, in which order, where, and
with which addresses. Pure Python (no Ansible), so the plan is tested on its own and the same code
serves ``plan_dr.yml``, the drill and failover.

A drill rebuilds services in an isolated network of the site that takes over. ``network_map`` says
which production network becomes which isolated one, and every address of a mapped network keeps its
host part: with ``{servers: drill}`` and servers = 172.31.20.0/24, drill = 172.31.70.0/24, the
address 172.31.20.43 becomes 172.31.70.43 wherever it is written (a role's settings, a DNS record, a
probe's URL). The rebuilt services then talk to each other and never to production.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import shlex
import urllib.parse

_IPV4 = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(/\d{1,2})?(?![\d.])")


class PlanError(Exception):
    """The model cannot give a plan; the message says what to fix."""


# --- addresses -------------------------------------------------------------------------------


def address_map(networks: list[dict], network_map: dict) -> list[tuple]:
    """[(production subnet, isolated subnet)] for every mapped network, checked to be the same size."""
    by_name = {n.get("name"): n for n in networks if isinstance(n, dict)}
    pairs = []
    for src, dst in sorted((network_map or {}).items()):
        for name in (src, dst):
            if name not in by_name:
                raise PlanError(f"dc_dr.drill.network_map.{src}: {name!r} is not a network of dc_networks")
        a = ipaddress.ip_network(by_name[src]["subnet"])
        b = ipaddress.ip_network(by_name[dst]["subnet"])
        if a.prefixlen != b.prefixlen:
            raise PlanError(f"dc_dr.drill.network_map.{src}: {a} and {b} differ in size; addresses keep their host part, "
                            "so the two networks need the same prefix length")
        pairs.append((a, b))
    return pairs


def translate_address(text: str, pairs: list[tuple]) -> str:
    """Every IPv4 address (or network in CIDR form) of a mapped subnet in ``text``, mapped."""

    def one(match: re.Match) -> str:
        try:
            addr = ipaddress.ip_address(match.group(1))
        except ValueError:
            return match.group(0)
        for src, dst in pairs:
            if addr in src:
                new = dst.network_address + (int(addr) - int(src.network_address))
                return f"{new}{match.group(2) or ''}"
        return match.group(0)

    return _IPV4.sub(one, text)


def translate(value, pairs: list[tuple]):
    """``value`` (any YAML-shaped data) with every mapped address translated; other values as they are."""
    if isinstance(value, str):
        return translate_address(value, pairs)
    if isinstance(value, dict):
        return {k: translate(v, pairs) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [translate(v, pairs) for v in value]
    return value


# --- the plan --------------------------------------------------------------------------------


def _levels(services: dict[str, dict]) -> dict[str, int]:
    """Dependency level of each service: 1 for those that depend on nothing in the plan, else one
    more than their deepest dependency. Services of one level recover in parallel."""
    level: dict[str, int] = {}

    def visit(name: str, trail: tuple) -> int:
        if name in level:
            return level[name]
        if name in trail:
            raise PlanError(f"dc_services: dependency cycle {' -> '.join((*trail, name))}")
        deps = [d for d in services[name].get("depends_on") or [] if d in services]
        level[name] = 1 + max((visit(d, (*trail, name)) for d in deps), default=0)
        return level[name]

    for name in services:
        visit(name, ())
    return level


def _role_prefix(role: str) -> str:
    return role.rsplit(".", 1)[-1] + "_"


VM_METHODS = ("replica_vm", "vm_backup_restore")


def plan(services: list[dict], policies: list[dict], dr: dict, networks: list[dict], host_interfaces: dict,
         only: list[str] | None = None, mode: str = "drill", vms: list[dict] | None = None, pools: list[dict] | None = None,
         dependencies: bool = True) -> dict:
    """The recovery plan of a drill, or of a failover (``mode="failover"``: the services keep their
    production addresses on the networks of ``dc_dr.failover.networks``, which the recovery hosts
    only join for a failover). ``host_interfaces``: production host -> its host_interfaces.
    ``vms``: dc_vms, for the VM-level methods (replica_vm, vm_backup_restore), which the controller
    drives through the hypervisor API (their ``host`` is ``localhost``). ``pools``: dc_vdi_pools; each
    pool with a ``dr`` block is re-created at the recovery cluster from its replicated golden image,
    in a tier after every service (``vdi_pool``, also from the controller); a pool without one is
    listed as not covered. ``dependencies`` false plans ``only`` alone, without what it depends on
    (a failback: the services already back at the primary are not moved again)."""
    vm_of = {v.get("name"): v for v in vms or [] if isinstance(v, dict)}
    if not isinstance(dr, dict) or not dr.get("drill"):
        raise PlanError("dc_dr is not defined: the model does not say where services are recovered (see docs/dr.md)")
    if mode == "failover":
        failover_networks = (dr.get("failover") or {}).get("networks") or []
        if not failover_networks:
            raise PlanError("dc_dr.failover.networks is not set: the model does not say which production networks "
                            "the recovery hosts take over in a failover (see docs/dr.md)")
        network_map = {n: n for n in failover_networks}
    else:
        network_map = dr["drill"].get("network_map") or {}
    pairs = address_map(networks, network_map)
    subnets = [src for src, _dst in pairs]
    gateway_of = {}
    for net in networks:
        try:
            gateway_of[str(ipaddress.ip_network(str(net.get("subnet"))))] = net.get("gateway")
        except ValueError:
            continue
    by_name = {s["name"]: s for s in services if isinstance(s, dict) and "name" in s}
    policy_of = {p.get("name"): p for p in policies if isinstance(p, dict)}
    pool_names = {pool_entry_name(p): p for p in pools or [] if isinstance(p, dict) and p.get("name")}
    unknown = sorted(set(only or []) - set(by_name) - set(pool_names))
    if unknown:
        raise PlanError(f"no service named {', '.join(unknown)} in dc_services (known: {', '.join(sorted(by_name))})")
    recoverable = {n: s for n, s in by_name.items() if isinstance(s.get("recovery"), dict)}
    wanted = set(only or recoverable) - set(pool_names)
    # A service recovers with what it depends on: add those, transitively.
    added = set()
    todo = list(wanted) if dependencies else []
    while todo:
        for dep in by_name.get(todo.pop(), {}).get("depends_on") or []:
            if dep not in wanted:
                wanted.add(dep)
                added.add(dep)
                todo.append(dep)
    not_covered = sorted(n for n in wanted if n not in recoverable)
    chosen = {n: by_name[n] for n in sorted(wanted) if n in recoverable}
    levels = _levels(chosen)
    out_services = []
    for name, svc in sorted(chosen.items(), key=lambda kv: (levels[kv[0]], kv[0])):
        rec = svc["recovery"]
        addresses = {}
        subnet = None
        for host in svc.get("hosts") or []:
            for iface in host_interfaces.get(host) or []:
                addr = ipaddress.ip_address(str(iface.get("address")))
                for src in subnets:
                    if addr in src:
                        addresses[str(addr)] = translate_address(str(addr), pairs) + f"/{src.prefixlen}"
                        subnet = str(dict(pairs)[src])
        policy = policy_of.get(svc.get("backup_policy")) or {}
        probes = []
        for probe in svc.get("probes") or []:
            mapped = translate(probe, pairs)
            if probe.get("type") == "http" and mapped.get("url") != probe.get("url"):
                # The rebuilt page must be the primary's, byte for byte.
                mapped["compare_url"] = probe["url"]
            probes.append(mapped)
        vm_fields = {}
        if rec.get("method") in VM_METHODS:
            vm_fields = _vm_recovery({**rec, "_service_vms": svc.get("vms")}, vm_of, network_map, mode)
        out_services.append({
            "name": name,
            "tier": levels[name],
            "declared_tier": svc.get("tier"),
            "depends_on": [d for d in svc.get("depends_on") or [] if d in chosen],
            "method": rec.get("method"),
            "host": "localhost" if vm_fields else rec.get("host"),
            "role": rec.get("role"),
            "role_prefix": _role_prefix(rec["role"]) if rec.get("role") else None,
            "units": list(rec.get("units") or []),
            "post_restore": rec.get("post_restore"),
            "cleanup": list(rec.get("cleanup") or []),
            "production_hosts": list(svc.get("hosts") or []),
            "source_host": (svc.get("hosts") or [None])[0],
            "addresses": addresses,
            "subnet": subnet,
            # A failover's services keep production's addresses, and reach the other zones through
            # that network's gateway (the firewall pair). A drill's isolated network has none.
            "gateway": gateway_of.get(subnet) if mode == "failover" and subnet else None,
            "paths": list(policy.get("paths") or []),
            "policy": svc.get("backup_policy"),
            "copies": list(policy.get("copies") or []),
            "probes": probes,
            "production_probes": list(svc.get("probes") or []),
            "rpo_target_s": 60 * svc["rpo_minutes"] if svc.get("rpo_minutes") else None,
            "rto_target_s": 60 * svc["rto_minutes"] if svc.get("rto_minutes") else None,
            "added_as_dependency": name in added,
            **vm_fields,
        })
    last_tier = max((s["tier"] for s in out_services), default=0)
    for entry_name, pool in sorted(pool_names.items()):
        if only and entry_name not in only:
            continue
        if not isinstance(pool.get("dr"), dict):
            not_covered.append(entry_name)
            continue
        out_services.append(_pool_recovery(entry_name, pool, dr, network_map, mode, last_tier + 1))
    # Isolation is proven by traffic: from the rebuilt services to production's addresses, and from
    # production to the rebuilt ones, on SSH and every port a probe uses. All must be blocked.
    ports = sorted({22} | {p for s in out_services for p in _probe_ports(s["production_probes"])})
    production = sorted({a for s in out_services for a in s["addresses"]}, key=ipaddress.ip_address)
    isolated = sorted({v.split("/")[0] for s in out_services for v in s["addresses"].values()}, key=ipaddress.ip_address)
    isolation = {
        "production_endpoints": [{"host": a, "port": p, "expect": "blocked"} for a in production for p in ports],
        "drill_endpoints": [{"host": a, "port": p, "expect": "blocked"} for a in isolated for p in ports],
    }
    tiers = sorted({s["tier"] for s in out_services})
    hosts = sorted({s["host"] for s in out_services})
    shared = {h: [s["name"] for s in out_services if s["host"] == h] for h in hosts}
    return {
        "site": dr.get("site"),
        "mode": mode,
        "network_map": dict(network_map),
        "address_map": [[str(a), str(b)] for a, b in pairs],
        "tiers": [[s["name"] for s in out_services if s["tier"] == t] for t in tiers],
        "services": out_services,
        "recovery_hosts": hosts,
        "shared_hosts": {h: names for h, names in shared.items() if len(names) > 1},
        "not_covered": not_covered,
        "isolation": isolation,
    }


def _vm_recovery(rec: dict, vm_of: dict, network_map: dict, mode: str) -> dict:
    """Where a VM-level recovery puts its VM. A drill never touches the replica or the source: it
    brings up ``<vm>-drill`` with the production networks mapped onto the isolated ones. A failover
    powers the replica itself on, or restores the backup as ``<source>-dr``, on production networks."""
    method = rec["method"]
    source = rec.get("replica") if method == "replica_vm" else rec.get("source")
    production = list((vm_of.get(source) or {}).get("networks") or [])
    if mode == "drill":
        name = f"{source}-drill"
        # A production network with no drill counterpart must not be joined by a drill VM.
        networks = [network_map[n] for n in production if n in network_map]
    else:
        name = source if method == "replica_vm" else f"{source}-dr"
        networks = production
    primary_vm = ((rec.get("_service_vms") or [None])[0])
    return {"cluster": rec.get("cluster"), "vm_source": source, "vm_name": name, "vm_networks": networks,
            "production_vm": primary_vm, "production_cluster": (vm_of.get(primary_vm) or {}).get("cluster"),
            "vm_node": rec.get("node"), "vm_storage": rec.get("storage"),
            # In a failover the replica is the service: it stays up; everything else is the drill's own VM.
            "vm_created": not (mode != "drill" and method == "replica_vm")}


def pool_entry_name(pool: dict) -> str:
    """A desktop pool's name in the plan, the report and ``--limit``-like ``only`` lists."""
    return f"vdi-{pool['name']}"


def _pool_recovery(entry_name: str, pool: dict, dr: dict, network_map: dict, mode: str, tier: int) -> dict:
    """A desktop pool re-created at the recovery cluster from its replicated golden image. A drill
    makes ``dr.desktops`` (2) desktops named ``<naming>-drill`` on the isolated network, all
    powered on, entitled to nobody; a failover makes the pool itself, at its size, with its names,
    network, power policy and entitlements."""
    rec = pool["dr"]
    if mode == "drill":
        count = int(rec.get("desktops", 2))
        the_pool = {"name": f"{pool['name']}-drill", "naming": f"{pool['naming']}-drill",
                    "size": {"min": count, "max": count, "spare": 0},
                    "network": network_map.get(pool.get("network")) or (dr.get("drill") or {}).get("vnet"),
                    "entitlements": []}
    else:
        the_pool = {"name": pool["name"], "naming": pool["naming"], "size": dict(pool["size"]), "network": pool.get("network"),
                    "entitlements": list(pool.get("entitlements") or []), **({"power": pool["power"]} if pool.get("power") else {})}
    the_pool.update({"template": rec.get("template"), "clone": rec.get("clone") or pool.get("clone") or "linked"})
    the_pool.update({k: pool[k] for k in ("cpus", "memory_mb") if pool.get(k) is not None})
    the_pool.update({k: rec[k] for k in ("node", "vmid_base", "folder") if rec.get(k) is not None})
    return {
        "name": entry_name, "tier": tier, "declared_tier": None, "depends_on": [], "method": "vdi_pool", "host": "localhost",
        "role": None, "role_prefix": None, "units": [], "post_restore": None, "cleanup": [], "production_hosts": [],
        "source_host": None, "addresses": {}, "subnet": None, "gateway": None, "paths": [], "policy": None, "copies": [],
        "probes": [], "production_probes": [], "rpo_target_s": None,
        "rto_target_s": 60 * rec["rto_minutes"] if rec.get("rto_minutes") else None, "added_as_dependency": False,
        "cluster": rec.get("cluster"), "vm_source": rec.get("template"), "vm_name": the_pool["name"],
        "vm_networks": [the_pool["network"]], "production_vm": None, "production_cluster": pool.get("cluster"),
        "vm_node": rec.get("node"), "vm_storage": None, "vm_created": True,
        "pool": the_pool, "desktops": the_pool["size"]["min"],
        # A failback re-converges the pool at the primary before the recovered one goes.
        "production_pool": {k: v for k, v in pool.items() if k not in ("dr", "site")},
    }


def _probe_ports(probes: list[dict]) -> set[int]:
    ports = set()
    for probe in probes:
        kind = probe.get("type")
        if kind == "dns":
            ports.add(int(probe.get("port", 53)))
        elif kind in ("tcp", "sql"):
            ports.add(int(probe.get("port", 5432 if kind == "sql" else 0)) or 0)
        elif kind == "http":
            url = urllib.parse.urlsplit(probe.get("url", ""))
            ports.add(url.port or (443 if url.scheme == "https" else 80))
    return {p for p in ports if p}


# --- the ledger ------------------------------------------------------------------------------


def ledger_entries(the_plan: dict) -> list[dict]:
    """Everything a drill of this plan may create, as ledger entries, written before anything is
    created: per service its addresses, units and restored paths on its recovery host, then its
    cleanup commands (recorded last first, since cleanup undoes the ledger from its end). Undoing an
    entry that was never created is harmless (an absent address, a stopped unit, a missing path), so
    a drill killed at any point leaves a ledger the next cleanup can fully undo."""
    out = []
    for svc in the_plan["services"]:
        host, name = svc["host"], svc["name"]
        if svc["method"] == "vdi_pool":
            out.append({"id": f"vdi_pool:{svc['cluster']}:{svc['vm_name']}", "kind": "vdi_pool", "cluster": svc["cluster"],
                        "name": svc["vm_name"], "pool": svc["pool"], "service": name})
            continue
        if svc["method"] in VM_METHODS:
            out.append({"id": f"vm:{svc['cluster']}:{svc['vm_name']}", "kind": "vm", "cluster": svc["cluster"],
                        "name": svc["vm_name"], "service": name})
            continue
        key = f"{host}:{name}"
        out += [
            {"id": f"address:{key}", "kind": "address", "host": host, "service": name, "addresses": list(svc["addresses"].values())},
            {"id": f"units:{key}", "kind": "units", "host": host, "service": name, "units": list(svc["units"])},
            {"id": f"paths:{key}", "kind": "paths", "host": host, "service": name,
             "paths": list(svc["paths"]) + ["/var/lib/twinsite/restore"]},
        ]
        for index, step in enumerate(reversed(svc.get("cleanup") or []), start=1):
            out.append({"id": f"command{index}:{key}", "kind": "command", "host": host, "service": name,
                        "command": step["command"], "user": step.get("user") or "root", "units": list(svc["units"])})
    return out


# The script a recovery host runs to undo its part of the ledger, in one round trip, last created
# first. Each entry runs in its own subshell; the script prints "undone ID" or "failed ID: why" per
# entry and goes on after a failure, so one stuck entry does not keep the others in the ledger. The
# subshell is the condition of an `if`, where bash ignores `set -e`: a failing step says `|| exit 1`.
# Built here rather than with lookup('template'): that lookup deep-copies every variable of the task
# for each host it renders for, 0.25 s per recovery host in a drill of 20 (docs/benchmarks.md).

# kind: (the entry's list, the step; {words} is the list, quoted)
_UNDO_STEPS = {
    "address": ("addresses", """\
  for a in {words}; do
    dev=$(ip -o -4 addr show | awk -v a="$a" '$4 == a {{print $2; exit}}')
    if [ -n "$dev" ]; then ip addr del "$a" dev "$dev" || exit 1; fi
  done
"""),
    "units": ("units", """\
  for u in {words}; do
    systemctl disable --now "$u" >/dev/null 2>&1 || true
    if systemctl is-active --quiet "$u"; then echo "$u is still running"; exit 1; fi
  done
"""),
    # Each path is renamed aside in its own directory (the same filesystem: a rename, at once) and
    # deleted in the background. Deleting a restore of many GB took seconds that the drill's report
    # waited for, and the path is out of place once renamed. A mount point cannot be renamed and is
    # emptied here. Trash that an interrupted deletion left (a reboot) goes with the next cleanup.
    "paths": ("paths", """\
  trash=()
  for p in {words}; do
    p=${{p%/}}; dir=$(dirname -- "$p"); base=$(basename -- "$p")
    for old in "$dir"/.twinsite-trash."$base".*; do
      if [ -e "$old" ]; then trash+=("$old"); fi
    done
    if [ ! -e "$p" ] && [ ! -L "$p" ]; then continue; fi
    if [ -d "$p" ] && [ ! -L "$p" ] && [ "$(stat -c %d -- "$p")" != "$(stat -c %d -- "$dir")" ]; then
      find "$p" -mindepth 1 -delete || exit 1  # a mount point: emptied, not moved
      continue
    fi
    aside="$dir/.twinsite-trash.$base.$$.$RANDOM"
    mv -T -- "$p" "$aside" || exit 1
    trash+=("$aside")
  done
  if [ -n "${{trash[*]:-}}" ]; then
    setsid nohup rm -rf -- "${{trash[@]}}" </dev/null >/dev/null 2>&1 &
  fi
"""),
}


def _words(values) -> str:
    return " ".join(shlex.quote(str(v)) for v in values)


# The drill's cleanup runs the undo as an Ansible async job (cleanup.yml): its result stays in the
# async directory of the recovery host, since Ansible removes none. Each undo removes the results of
# earlier ones (the script they ran, in the result, carries this mark) once a minute old; its own has
# no result yet while it runs. Other jobs' results are left alone.
UNDO_MARK = "twinsite-drill-undo"
_EARLIER_RESULTS = (f"# {UNDO_MARK}: earlier undos' async results go\n"
                    'find "${ANSIBLE_ASYNC_DIR:-${HOME:-}/.ansible_async}" -maxdepth 1 -type f -mmin +1 '
                    f"-exec grep -lF {UNDO_MARK} {{}} + 2>/dev/null | xargs -r rm -f -- 2>/dev/null\n")


def undo_script(entries: list[dict]) -> str:
    """The bash script that undoes ``entries`` (ledger entries of one host, in the order to undo them)."""
    out = ["set -u\n", _EARLIER_RESULTS]
    for entry in entries:
        kind = entry.get("kind")
        if kind == "command":
            start = f"  systemctl start {_words(entry['units'])}\n" if entry.get("units") else ""
            step = (start + f"  runuser -u {shlex.quote(str(entry['user']))} -- /bin/sh -c {shlex.quote(str(entry['command']))}\n")
        elif kind in _UNDO_STEPS:
            key, template = _UNDO_STEPS[kind]
            step = template.format(words=_words(entry[key]))
        else:
            step = f"  echo {shlex.quote('unknown ledger entry kind ' + str(kind))}; exit 1\n"
        ident = shlex.quote(str(entry["id"]))
        out.append(f"if why=$( (\n  set -e\n{step}) 2>&1 ); then\n  printf 'undone %s\\n' {ident}\nelse\n"
                   f"  printf 'failed %s: %s\\n' {ident} \"$(printf '%s' \"$why\" | tr '\\n' ' ')\"\nfi\n")
    return "".join(out)


# --- readiness -------------------------------------------------------------------------------


def parse_time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def readiness(the_plan: dict, backup_status: dict | None, now: dt.datetime, vm_points: dict | None = None) -> list[dict]:
    """Per planned service: the newest restorable point of each copy, its age against the RPO
    target, and whether a drill can expect to meet it. ``backup_status``: ``twinsite-backup status``
    of the repository host (its ``services`` map). ``vm_points``: service -> what the hypervisor
    said of a VM-level recovery ({exists, newest, error}): the replica VM, or the newest vzdump backup."""
    status = (backup_status or {}).get("services") or {}
    out = []
    for svc in the_plan["services"]:
        entry = {"name": svc["name"], "copies": {}, "ready": False, "reasons": []}
        if svc["method"] == "vdi_pool":
            out.append(_pool_readiness(svc, entry, (vm_points or {}).get(svc["name"])))
            continue
        if svc["method"] in VM_METHODS:
            out.append(_vm_readiness(svc, entry, (vm_points or {}).get(svc["name"]), now))
            continue
        known = status.get(svc["name"])
        if known is None:
            entry["reasons"].append("the repository host has no backup job for it" if backup_status else "backup status not read")
        for copy, info in ((known or {}).get("copies") or {}).items():
            newest = parse_time(info.get("newest"))
            age = (now - newest).total_seconds() if newest else None
            fresh = age is not None and svc["rpo_target_s"] is not None and age <= svc["rpo_target_s"]
            entry["copies"][copy] = {"reachable": bool(info.get("reachable")), "newest": info.get("newest"),
                                     "age_s": round(age) if age is not None else None, "fresh": fresh,
                                     "error": info.get("error")}
        primary = entry["copies"].get("secondary")
        if known is not None:
            if primary is None:
                entry["reasons"].append("no secondary copy")
            elif not primary["reachable"]:
                entry["reasons"].append(f"secondary copy unreachable: {primary.get('error') or 'no answer'}")
            elif primary["newest"] is None:
                entry["reasons"].append("no snapshot in the secondary copy")
            elif not primary["fresh"]:
                entry["reasons"].append(f"newest snapshot is {primary['age_s']} s old, RPO target {svc['rpo_target_s']} s")
        entry["ready"] = not entry["reasons"]
        out.append(entry)
    return out


def _pool_readiness(svc: dict, entry: dict, point: dict | None) -> dict:
    """A pool is ready when its golden image is at the recovery cluster (``point``: {exists} or {error},
    from a check-mode run of twinsite.dc.vdi_pool there)."""
    if point is None:
        entry["reasons"].append("the hypervisor was not asked")
    elif point.get("error"):
        entry["reasons"].append(point["error"])
    else:
        entry["copies"]["golden image"] = {"reachable": True, "newest": None, "age_s": None, "fresh": None, "error": None}
    entry["ready"] = not entry["reasons"]
    return entry


def _vm_readiness(svc: dict, entry: dict, point: dict | None, now: dt.datetime) -> dict:
    copy = "replica" if svc["method"] == "replica_vm" else f"vzdump {svc.get('vm_storage')}"
    if point is None:
        entry["reasons"].append("the hypervisor was not asked")
    elif point.get("error"):
        entry["reasons"].append(point["error"])
    elif svc["method"] == "replica_vm":
        entry["copies"][copy] = {"reachable": True, "newest": point.get("newest"), "age_s": None, "fresh": None, "error": None}
        if not point.get("exists"):
            entry["reasons"].append(f"replica VM {svc['vm_source']} does not exist on {svc['cluster']}")
    else:
        newest = parse_time(point.get("newest"))
        age = (now - newest).total_seconds() if newest else None
        fresh = age is not None and svc["rpo_target_s"] is not None and age <= svc["rpo_target_s"]
        entry["copies"][copy] = {"reachable": True, "newest": point.get("newest"), "age_s": round(age) if age is not None else None,
                                 "fresh": fresh, "error": None}
        if newest is None:
            entry["reasons"].append(f"no vzdump backup of {svc['vm_source']} in {svc.get('vm_storage')}")
        elif not fresh:
            entry["reasons"].append(f"newest vzdump backup is {round(age)} s old, RPO target {svc['rpo_target_s']} s")
    entry["ready"] = not entry["reasons"]
    return entry


# --- results and the report ------------------------------------------------------------------


def seconds(start: str | None, end: str | None) -> float | None:
    a, b = parse_time(start), parse_time(end)
    return round((b - a).total_seconds(), 1) if a and b else None


def targets_of(svc: dict, host: str) -> dict:
    """Where a recovered service runs. ``host`` is who recovered it; for a VM-level service that is
    the controller, so the VM (or desktop pool) and its cluster are named too. ``where`` says it in
    words (active-site.json, the failover's summary)."""
    out = {"host": host, "addresses": svc.get("addresses") or {}, "where": host}
    if svc.get("vm_name") and svc.get("cluster"):
        kind = "pool" if svc.get("method") == "vdi_pool" else "VM"
        out.update(vm=svc["vm_name"], cluster=svc["cluster"], where=f"{kind} {svc['vm_name']} on {svc['cluster']}")
    return out


def service_result(svc: dict, host: str, drill_started: str, now: str, restored: dict | None, probes: list[dict] | None,
                   failure: str | None, times: dict) -> dict:
    """One service's line of the report. RTO = drill start -> the last of its probes green;
    achieved RPO = drill start - the time of the restored snapshot. Red with every reason that
    applies: the step that failed, an RPO or RTO over its target, a probe that never answered."""
    restored = restored or {}
    probes = probes or []
    green_at = max((p["passed_at"] for p in probes if p.get("passed_at")), default=None) if probes and all(p.get("ok") for p in probes) else None
    rto = seconds(drill_started, green_at)
    rpo = seconds(restored.get("snapshot_time"), drill_started)
    if rpo is not None:
        rpo = max(0.0, rpo)  # a failback's last backup is taken after it started: nothing was lost
    reasons = [failure] if failure else []
    if rpo is not None and svc.get("rpo_target_s") and rpo > svc["rpo_target_s"]:
        reasons.append(f"achieved RPO {rpo:g} s exceeds the target {svc['rpo_target_s']} s (restored point {restored['snapshot_time']})")
    if rto is not None and svc.get("rto_target_s") and rto > svc["rto_target_s"]:
        reasons.append(f"RTO {rto:g} s exceeds the target {svc['rto_target_s']} s")
    if green_at is None and not reasons:
        reasons.append("no probe answered")
    steps = [{"name": "restore", "started": times.get("start"), "finished": times.get("restored") or now,
              "status": "ok" if restored.get("ok") else "failed",
              "detail": restored.get("error") or f"snapshot {restored.get('snapshot_id', '?')} from the {restored.get('copy', '?')} copy"}]
    if restored.get("ok"):
        steps.append({"name": "configure", "started": times.get("restored"), "finished": times.get("configured") or now,
                      "status": "ok" if times.get("configured") else "failed", "detail": svc.get("role") or "none"})
    if times.get("configured"):
        # "probing": when the probes began, if not right after the configure step (a VM-level service
        # waited for in the background: the time between is the drill's, not the service's).
        steps.append({"name": "probe", "started": times.get("probing") or times["configured"], "finished": green_at or now,
                      "status": "ok" if green_at else "failed", "detail": ", ".join(p.get("target", "?") for p in probes)})
    return {
        "name": svc["name"], "tier": svc["tier"], "method": svc["method"],
        "status": "red" if reasons else "green", "reason": "; ".join(reasons) or None,
        "rto_s": rto, "rpo_s": rpo, "rto_target_s": svc.get("rto_target_s"), "rpo_target_s": svc.get("rpo_target_s"),
        "targets": targets_of(svc, host),
        "restored_point": ({"snapshot": restored["snapshot_id"], "time": restored.get("snapshot_time"), "copy": restored.get("copy")}
                           if restored.get("snapshot_id") else None),
        "probes": [{k: p.get(k) for k in ("type", "target", "ok", "detail")} for p in probes],
        "steps": steps,
    }


def production_checks(the_plan: dict, phases: dict[str, list[dict]]) -> list[dict]:
    """Production probed before, during and after: each probe must pass every time, and a page
    must be byte-identical to the one before the drill."""
    names = [s["name"] for s in the_plan["services"] for _ in s["production_probes"]]
    before = phases.get("before") or []
    out = []
    for phase in ("before", "during", "after"):
        for i, probe in enumerate(phases.get(phase) or []):
            same = i < len(before) and probe.get("sha256") == before[i].get("sha256")
            out.append({"service": names[i] if i < len(names) else "?", "probe": probe.get("target"), "phase": phase,
                        "ok": bool(probe.get("ok")) and same,
                        "detail": (probe.get("detail") or "") + ("" if same else "; the answer differs from before the drill")})
    return out


def isolation_checks(from_drill: list[dict], from_production: list[dict]) -> list[dict]:
    """Traffic both ways between the isolated network and production; every flow must be blocked.
    ``from_production``: flow_check results per production host (``item`` = the host)."""
    out = list(from_drill)
    for result in from_production:
        if "flows" not in result:
            out.append({"from": result.get("item"), "to": "isolated network", "blocked": False,
                        "detail": f"could not check: {result.get('msg') or 'no answer'}"})
        for flow in result.get("flows") or []:
            out.append({"from": result.get("item"), "to": f"{flow['host']}:{flow['port']}", "blocked": flow["got"] == "blocked",
                        "detail": flow.get("reason")})
    return out


def report(the_plan: dict, *, kind: str, drill_id: str, site: str, trigger: str, started: str, finished: str,
           results: list[dict], preflight: list[dict], production: list[dict] | None = None,
           isolation: list[dict] | None = None, cleanup: dict | None = None, leftovers: list[str] = (),
           plan_steps: list[dict] | None = None) -> dict:
    """The report.json of a drill (production, isolation and cleanup checked) or of a failover or
    failback (plan steps checked). Services the recovery never reached are red, saying so."""
    done = {r["name"] for r in results}
    services = list(results)
    for svc in the_plan["services"]:
        if svc["name"] not in done:
            services.append({"name": svc["name"], "tier": svc["tier"], "method": svc["method"], "status": "red",
                             "rto_s": None, "rpo_s": None, "rto_target_s": svc.get("rto_target_s"), "rpo_target_s": svc.get("rpo_target_s"),
                             "restored_point": None, "steps": [], "probes": [],
                             "targets": targets_of(svc, svc["host"]),
                             "reason": f"recovery host {svc['host']} did not run the recovery (unreachable, or failed before it began)"})
    services.sort(key=lambda s: (s["tier"], s["name"]))
    preflight_ok = all(c.get("ok") for c in preflight)
    green = all(s["status"] == "green" for s in services) and all(st["status"] != "failed" for st in plan_steps or [])
    out = {
        "kind": kind, "id": drill_id, "site": site, "trigger": trigger, "started": started, "finished": finished,
        "duration_s": seconds(started, finished),
        "plan": {"tiers": the_plan["tiers"], "network_map": the_plan["network_map"], "not_covered": the_plan["not_covered"]},
        "preflight": {"status": "ok" if preflight_ok else "failed", "checks": preflight},
        "services": services,
        "standards": {"A.5.30": "ICT readiness for business continuity", "A.8.13": "Information backup"},
    }
    if kind == "drill":
        untouched = bool(production) and all(c["ok"] for c in production)
        isolated = bool(isolation) and all(c["blocked"] for c in isolation)
        cleanup = cleanup or {"status": "failed", "removed": [], "left": ["no cleanup ran"]}
        green = green and untouched and isolated and preflight_ok and cleanup.get("status") in ("clean", "not_needed")
        out.update(leftovers_removed=list(leftovers), production_untouched={"status": untouched, "checks": production or []},
                   isolation={"status": isolated, "checks": isolation or []}, cleanup=cleanup)
        if plan_steps:  # e.g. the firewall pair's failover test, when the drill runs it
            out["plan_steps"] = list(plan_steps)
    else:
        out["plan_steps"] = list(plan_steps or [])
    out["status"] = "green" if green else "red"
    return out


def red_summary(rep: dict) -> str:
    """Why a report is red, in one line."""
    parts = [f"{s['name']} red ({s.get('reason')})" for s in rep["services"] if s["status"] != "green"]
    parts += [f"step {st['name']} failed ({st.get('detail')})" for st in rep.get("plan_steps") or [] if st["status"] == "failed"]
    if rep.get("production_untouched") and not rep["production_untouched"]["status"]:
        parts.append("production changed or stopped answering during the drill")
    if rep.get("isolation") and not rep["isolation"]["status"]:
        parts.append("the isolated network is not isolated")
    if rep["preflight"]["status"] != "ok":
        parts.append("preflight failed: " + ", ".join(c["name"] for c in rep["preflight"]["checks"] if not c.get("ok")))
    if rep.get("cleanup") and rep["cleanup"].get("status") not in ("clean", "not_needed"):
        parts.append("cleanup left: " + ", ".join(rep["cleanup"].get("left") or []))
    return "; ".join(parts)


def firewall_step(addresses: dict, flows: dict, firewall: dict, networks: list[dict]) -> dict:
    """The firewall step of a failover or failback report: which node of the pair holds the VIPs,
    and whether the pair's required flows to the recovered services passed.

    ``addresses``: the registered loop of ``ip -4 -o addr show`` on each node (item = node);
    ``flows``: the registered loop of twinsite.dc.flow_check, one item per source host (item =
    [source_host, [flows]]). ok: one reachable node holds every VIP and every flow passed."""
    from ansible_collections.twinsite.dc.plugins.module_utils import _firewall

    nodes = [r for r in (addresses or {}).get("results") or [] if isinstance(r, dict)]
    if not firewall or not nodes:
        return {"name": "firewall", "status": "skipped", "detail": "no firewall pair in the inventory (dr_drill_firewall_group)"}
    vips = sorted(n.gateway for z in _firewall.compile_policy(firewall, networks).zones for n in z.vips)
    held, down = {}, []
    for r in nodes:
        # skipped: its management port did not answer, so it was not asked (failover_finish.yml)
        if r.get("unreachable") or r.get("skipped") or r.get("rc", 1) != 0:
            down.append(str(r.get("item")))
            continue
        mine = set(re.findall(r"(?:^|\s)inet (\d+\.\d+\.\d+\.\d+)/", r.get("stdout") or "", re.MULTILINE))
        held[str(r.get("item"))] = sorted(v for v in vips if v in mine)
    holders = [n for n, h in held.items() if h == vips]
    parts, ok = [], True
    if len(holders) == 1 and all(not h for n, h in held.items() if n != holders[0]):
        parts.append(f"{holders[0]} holds every VIP ({', '.join(vips)})")
    else:
        ok = False
        split = "; ".join(f"{n} holds {', '.join(h) or 'none'}" for n, h in held.items())
        parts.append(f"the VIPs are not on one node: {split or 'no node answered'}")
    if down:
        parts.append(f"unreachable: {', '.join(down)}")
    tried = []
    for r in (flows or {}).get("results") or []:
        if not isinstance(r, dict) or r.get("skipped"):
            continue
        source = (r.get("item") or ["?"])[0]
        if r.get("unreachable") or "flows" not in r:
            ok = False
            tried.append(f"from {source}: could not run ({(r.get('msg') or 'unreachable').strip()})")
            continue
        for f in r["flows"]:
            ok = ok and bool(f.get("ok"))
            tried.append(f"{source} -> {f.get('host')}:{f.get('port')} {f.get('got')}{'' if f.get('ok') else ' (expected ' + str(f.get('expect')) + ')'}")
    parts.append("flows to the recovered services: " + ("; ".join(tried) if tried else "none of the pair's required flows ends at them"))
    return {"name": "firewall", "status": "ok" if ok else "failed", "detail": ". ".join(parts) + "."}
