# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""VDI desktop pools on the VM backends of ``_vm.py``: read the pool, decide, then write in parallel.

A pool is the site model's ``dc_vdi_pools`` item: desktops cloned from a golden image (``template``),
named by a pattern (``vdi-staff-{n:03d}``), sized by ``min``/``max``/``spare``. A desktop belongs to
the pool when its name matches the pattern; the image it was cloned from is written in its notes
(``twinsite-vdi pool=staff image=tpl-win11``), which both vendors keep with the VM.

``plan()`` is pure: from the pool, its desktops and the broker's sessions and assignments it decides
what to create, remove, refresh and power on or off. The rules, as a broker (Horizon) applies them:

- A desktop is *busy* when a user has a session on it (connected or disconnected) or it is assigned
  to a user; otherwise it is *free*. The pool holds ``busy + spare`` desktops, at least ``min`` and at
  most ``max``: new desktops take the lowest free numbers of the pattern.
- Only free desktops are removed (stale ones first, then the highest numbers): a shrink never takes
  a busy one.
- A desktop whose image, CPUs, memory or network differ from the pool is *stale* and is refreshed
  (deleted and cloned again under the same name, from the pool's image). A desktop with a session
  is never touched: it is *deferred* to a later run.
- Power (``power.off_hours``, e.g. ``19:00-07:00``): in hours every desktop runs. Out of hours the
  ``spare`` lowest-numbered free desktops run (none with ``spare_on: false``), the other desktops
  without a session are powered off, and a desktop with a session is left as it is.

``PoolService`` carries the plan out: removals and creations run ``parallel`` at a time; refreshes
run in batches of ``refresh_batch``, each batch finished (desktops back up) before the next starts,
and sessions are read again from the broker before every batch, so a user who logged in meanwhile
keeps the desktop. Check mode reads and plans only.

A failure leaves the pool in a state the next run converges from: a desktop cloned but not yet
configured has no image in its notes, so it is stale and refreshed; a refresh that deleted a desktop
and failed to clone it leaves a gap in the numbers, which the next run fills.
"""

from __future__ import annotations

import re
import string
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError
from ansible_collections.twinsite.dc.plugins.module_utils._vm import changes_between

NOTE_PREFIX = "twinsite-vdi"
NOTE_RE = re.compile(r"^twinsite-vdi pool=(?P<pool>\S+) image=(?P<image>\S+)")


def note(pool: str, image: str) -> str:
    """What a desktop's notes say: the pool and the image it was cloned from."""
    return f"{NOTE_PREFIX} pool={pool} image={image}"


def image_of(notes: str | None) -> str | None:
    found = NOTE_RE.match(notes or "")
    return found["image"] if found else None


# --- naming ------------------------------------------------------------------------------------


class Naming:
    """A naming pattern with one ``{n}`` field (``vdi-staff-{n:03d}``): number -> name and back."""

    def __init__(self, pattern: str, where: str = "naming"):
        self.pattern = pattern
        parts = list(string.Formatter().parse(pattern))
        fields = [p for p in parts if p[1] is not None]
        if len(fields) != 1 or fields[0][1] != "n" or fields[0][3]:
            raise TwinsiteError(f"{pattern!r} must hold exactly one {{n}} field, e.g. 'vdi-{{n:03d}}'", obj=where, action="read")
        try:
            pattern.format(n=1)
        except (ValueError, TypeError) as exc:
            raise TwinsiteError(f"{pattern!r} is not a pattern for a number: {exc}", obj=where, action="read") from None
        regex = "".join(re.escape(literal) + ("(\\d+)" if name == "n" else "") for literal, name, _, _ in parts)
        self._re = re.compile(f"^{regex}$")

    def name(self, n: int) -> str:
        return self.pattern.format(n=n)

    def number(self, name: str) -> int | None:
        """The desktop number of ``name``, or None when the name is not one the pattern makes."""
        found = self._re.match(name or "")
        if not found:
            return None
        n = int(found[1])
        return n if self.name(n) == name else None


# --- the pool's input ---------------------------------------------------------------------------


REQUIRED = ("name", "template", "naming", "size")


def checked_pool(pool: dict, state: str) -> dict:
    """The pool with its size as integers; a missing or malformed key is a TwinsiteError naming it."""
    name = pool.get("name") or "?"
    for key in REQUIRED:
        if not pool.get(key):
            raise TwinsiteError(f"pool.{key} is missing", obj=f"pool '{name}'", action="read")
    size = pool["size"]
    if not isinstance(size, dict) or any(not isinstance(size.get(k), int) or size[k] < 0 for k in ("min", "max", "spare")):
        raise TwinsiteError(f"pool.size must be {{min, max, spare}} as whole numbers >= 0, found {size!r}", obj=f"pool '{name}'", action="read")
    if size["min"] > size["max"]:
        raise TwinsiteError(f"pool.size.min {size['min']} is larger than max {size['max']}", obj=f"pool '{name}'", action="read")
    Naming(pool["naming"], where=f"pool '{name}' naming")
    window = (pool.get("power") or {}).get("off_hours")
    if window and not _valid_window(window):
        raise TwinsiteError(f"pool.power.off_hours must be HH:MM-HH:MM, found {window!r}", obj=f"pool '{name}'", action="read")
    if state == "absent":
        return {**pool, "size": {"min": 0, "max": 0, "spare": 0}, "entitlements": []}
    return pool


def _valid_window(window: str) -> bool:
    parts = str(window).split("-")
    return len(parts) == 2 and all(len(p) == 5 and p[2] == ":" and p[:2].isdigit() and p[3:].isdigit()
                                   and int(p[:2]) < 24 and int(p[3:]) < 60 for p in parts)


# --- the plan ----------------------------------------------------------------------------------


@dataclass
class Plan:
    target: int
    create: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    refresh: list[str] = field(default_factory=list)
    deferred: list[dict] = field(default_factory=list)  # [{name, user, state}]
    power_on: list[str] = field(default_factory=list)
    power_off: list[str] = field(default_factory=list)
    wanted_power: dict = field(default_factory=dict)  # name -> on|off, for every desktop kept or made
    busy: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.create or self.remove or self.refresh or self.power_on or self.power_off)


def spec_of(pool: dict) -> dict:
    """The fields a desktop must have, in ``_vm`` terms (None: as the image has it)."""
    want = {"notes": note(pool["name"], pool["template"])}
    for key in ("cpus", "memory_mb"):
        if pool.get(key) is not None:
            want[key] = pool[key]
    if pool.get("network"):
        want["networks"] = [pool["network"]]
    return want


def stale_reason(pool: dict, desktop: dict) -> str | None:
    """Why a desktop no longer matches the pool (another image, other hardware), or None."""
    image = image_of(desktop.get("notes"))
    if image != pool["template"]:
        return f"image {image or 'unknown'}, the pool's is {pool['template']}"
    changes = changes_between(desktop["name"], {k: v for k, v in spec_of(pool).items() if k != "notes"}, desktop)
    if changes:
        return ", ".join(f"{k} {desktop.get(k)} -> {v}" for k, v in sorted(changes.items()))
    return None


def out_of_hours(window: str | None, now: str) -> bool:
    """Whether ``now`` (HH:MM) falls in ``window`` ("19:00-07:00", which may cross midnight)."""
    if not window:
        return False
    start, end = window.split("-")
    if start <= end:
        return start <= now < end
    return now >= start or now < end


def plan(pool: dict, desktops: list[dict], sessions: dict, assignments: dict, now: str) -> Plan:
    """What to do to ``desktops`` (the pool's VMs, in model terms) to match ``pool``; pure."""
    naming = Naming(pool["naming"])
    size = pool["size"]
    by_number = {}
    for vm in desktops:
        n = naming.number(vm["name"])
        if n is not None:
            by_number[n] = vm
    busy = {n for n, vm in by_number.items() if vm["name"] in sessions or vm["name"] in assignments}
    target = min(size["max"], max(size["min"], len(busy) + size["spare"]))
    out = Plan(target=target, busy=sorted(by_number[n]["name"] for n in busy))

    numbers = sorted(by_number)
    if len(numbers) > target:
        # Free desktops go, stale ones first (they would be refreshed otherwise), then the highest numbers.
        free = sorted((n for n in numbers if n not in busy), key=lambda n: (stale_reason(pool, by_number[n]) is None, -n))
        surplus = len(numbers) - target
        gone = free[:surplus]
        if len(gone) < surplus:
            out.warnings.append(f"{len(numbers)} desktops, {target} wanted: {surplus - len(gone)} more are busy and stay")
        out.remove = [by_number[n].get("name") for n in sorted(gone)]
        numbers = [n for n in numbers if n not in gone]
    elif len(numbers) < target:
        new, n = [], 1
        while len(numbers) + len(new) < target:
            if n not in by_number:
                new.append(n)
            n += 1
        out.create = [naming.name(n) for n in new]
        numbers = sorted(numbers + new)
    if len(busy) > size["max"]:
        out.warnings.append(f"{len(busy)} desktops are busy, more than max {size['max']}")

    # Power: the state every kept or new desktop should be in.
    off_hours = out_of_hours((pool.get("power") or {}).get("off_hours"), now)
    spare_on = (pool.get("power") or {}).get("spare_on", True)
    free_kept = [n for n in numbers if n not in busy]
    keep_on = set(free_kept[: size["spare"]]) if spare_on else set()
    for n in numbers:
        name = by_number[n]["name"] if n in by_number else naming.name(n)
        if n in by_number and by_number[n]["name"] in sessions:
            out.wanted_power[name] = by_number[n].get("power", "on")  # a session's desktop is never touched
        else:
            out.wanted_power[name] = "on" if not off_hours or n in keep_on else "off"

    for n in numbers:
        vm = by_number.get(n)
        if vm is None:
            continue
        if stale_reason(pool, vm):
            if vm["name"] in sessions:
                session = sessions[vm["name"]]
                out.deferred.append({"name": vm["name"], "user": session.get("user"), "state": session.get("state"),
                                     "reason": stale_reason(pool, vm)})
            else:
                out.refresh.append(vm["name"])
            continue
        if vm["name"] in sessions:
            continue
        if vm.get("power") != out.wanted_power[vm["name"]]:
            (out.power_on if out.wanted_power[vm["name"]] == "on" else out.power_off).append(vm["name"])
    return out


def batches(names: list[str], size: int) -> list[list[str]]:
    return [names[i:i + size] for i in range(0, len(names), size)]


# --- carrying it out -----------------------------------------------------------------------------


class PoolService:
    """Converge one pool on one cluster's VM backend, with a broker for sessions (``_vdi_broker``)."""

    def __init__(self, backend, broker, check_mode: bool, parallel: int = 8, refresh_batch: int = 5):
        # Vendor task timeouts belong to the backend (open_backend's timeout), not to this service.
        self.backend, self.broker, self.check_mode = backend, broker, check_mode
        self.parallel, self.refresh_batch = max(1, parallel), max(1, refresh_batch)

    # reads

    def desktops(self, pool: dict) -> list[dict]:
        """The pool's VMs, with notes and networks (Proxmox: one config read per desktop, in parallel)."""
        naming = Naming(pool["naming"], where=f"pool '{pool['name']}' naming")
        self._all = self.backend.list()
        members = [vm for vm in self._all if naming.number(vm["name"]) is not None]
        if hasattr(self.backend, "detail"):
            members = self._each(members, self.backend.detail)
        return sorted(members, key=lambda vm: naming.number(vm["name"]))

    def sessions(self, pool: dict, names: set) -> tuple[dict, dict]:
        sessions = {k: v for k, v in self.broker.sessions(pool["name"]).items() if k in names}
        assignments = {k: v for k, v in self.broker.assignments(pool["name"]).items() if k in names}
        return sessions, assignments

    # the run

    def converge(self, pool: dict, now: str) -> dict:
        desktops = self.desktops(pool)
        names = {vm["name"] for vm in desktops} | {Naming(pool["naming"]).name(n) for n in range(1, pool["size"]["max"] + 1)}
        sessions, assignments = self.sessions(pool, names)
        the_plan = plan(pool, desktops, sessions, assignments, now)
        report = {"changed": the_plan.changed, "target": the_plan.target, "created": [], "removed": [], "refreshed": [],
                  "powered_on": [], "powered_off": [], "deferred": the_plan.deferred, "busy": the_plan.busy,
                  "warnings": the_plan.warnings, "batches": batches(the_plan.refresh, self.refresh_batch)}
        before = {vm["name"]: view(vm) for vm in desktops}
        if the_plan.create or the_plan.refresh:
            self.backend.template(pool["template"])  # a missing image fails here, once, before any desktop is touched (also in check mode)
        if self.check_mode:
            report.update(created=the_plan.create, removed=the_plan.remove, refreshed=the_plan.refresh,
                          powered_on=the_plan.power_on, powered_off=the_plan.power_off)
            report["diff"] = {"before": before, "after": predicted(before, the_plan, pool)}
            report["desktops"] = report["diff"]["after"]
            return report
        if not the_plan.changed:
            report["diff"] = {"before": before, "after": before}
            report["desktops"] = before
            return report
        by_name = {vm["name"]: vm for vm in desktops}
        errors: list[str] = []
        self._ids = self._free_ids(pool, len(the_plan.create))

        removed = self._each([by_name[n] for n in the_plan.remove], self._remove, errors)
        report["removed"] = [vm["name"] for vm in removed]
        made = self._each(list(zip(the_plan.create, self._ids, strict=False)) if self._ids else [(n, None) for n in the_plan.create],
                          lambda item: self._create(pool, item[0], item[1], the_plan.wanted_power[item[0]]), errors)
        report["created"] = [vm["name"] for vm in made]
        for batch in report["batches"]:
            if errors:
                break
            # A user who logged in since the plan keeps the desktop: read the sessions again.
            now_sessions, _ = self.sessions(pool, set(batch))
            for name in batch:
                if name in now_sessions:
                    report["deferred"].append({"name": name, "user": now_sessions[name].get("user"),
                                               "state": now_sessions[name].get("state"), "reason": "a session began during the refresh"})
            todo = [by_name[n] for n in batch if n not in now_sessions]
            done = self._each(todo, lambda vm: self._refresh(pool, vm, the_plan.wanted_power[vm["name"]]), errors)
            report["refreshed"] += [vm["name"] for vm in done]
        if not errors:
            for names_, action, key in ((the_plan.power_on, "on", "powered_on"), (the_plan.power_off, "off", "powered_off")):
                done = self._each([by_name[n] for n in names_], lambda vm, a=action: self._power(vm, a), errors)
                report[key] = [vm["name"] for vm in done]
        after = {vm["name"]: view(vm) for vm in self.desktops(pool)}
        report["diff"] = {"before": before, "after": after}
        report["desktops"] = after
        report["changed"] = any(report[k] for k in ("created", "removed", "refreshed", "powered_on", "powered_off"))
        if errors:
            raise PoolError(errors, report)
        return report

    # one desktop at a time; _each runs them ``parallel`` at once

    def _each(self, items: list, work, errors: list | None = None) -> list:
        """Run ``work(item)`` for every item, ``parallel`` at a time; returns the results of those that
        succeeded, in order. A TwinsiteError is collected into ``errors`` (raised when it is None)."""
        if not items:
            return []
        results: list = [None] * len(items)
        failed: list = [None] * len(items)

        def run(i):
            try:
                results[i] = work(items[i])
            except TwinsiteError as exc:
                failed[i] = str(exc)

        with ThreadPoolExecutor(max_workers=min(self.parallel, len(items))) as workers:
            list(workers.map(run, range(len(items))))
        problems = [f for f in failed if f]
        if problems and errors is None:
            raise TwinsiteError("; ".join(problems))
        if errors is not None:
            errors += problems
        return [r for r, f in zip(results, failed, strict=True) if f is None]

    def _free_ids(self, pool: dict, count: int) -> list | None:
        """Proxmox: vmids for the new desktops, chosen up front (parallel clones asking PVE for the
        next free id would all get the same one). vSphere names VMs by moref: None."""
        if not count or not hasattr(self.backend, "free_vmids"):
            return None
        return self.backend.free_vmids(count, start=pool.get("vmid_base") or 100)

    def _clone(self, pool: dict, name: str, vmid) -> dict:
        params = {"name": name, "template": pool["template"], "clone": pool.get("clone", "linked"),
                  "folder": pool.get("folder"), "node": pool.get("node"), "vmid": vmid,
                  # chosen up front (or the refreshed desktop's own): another VM that took it meanwhile makes the clone pick again
                  "vmid_hint": True}
        vm = self.backend.clone(params)
        changes = changes_between(name, spec_of(pool), vm)
        if changes:
            self.backend.reconfigure(vm, changes)
            vm = {**vm, **changes}
        return vm

    def _create(self, pool: dict, name: str, vmid, power: str) -> dict:
        vm = self._clone(pool, name, vmid)
        if power == "on":
            self.backend.power(vm, "on")
        return {**vm, "power": power}

    def _refresh(self, pool: dict, vm: dict, power: str) -> dict:
        if vm.get("power") == "on":
            self.backend.power(vm, "off")
        self.backend.delete(vm)
        return self._create(pool, vm["name"], vm.get("vmid"), power)

    def _remove(self, vm: dict) -> dict:
        if vm.get("power") == "on":
            self.backend.power(vm, "off")
        self.backend.delete(vm)
        return vm

    def _power(self, vm: dict, action: str) -> dict:
        self.backend.power(vm, action)
        return vm


def converge_pool(cluster: dict, pool: dict, broker_config: dict | None, networks_model: list | None, now: str, check_mode: bool,
                  parallel: int = 8, refresh_batch: int = 5, timeout: float = 600.0, entitlements: bool = True) -> dict:
    """Log in to the cluster and the broker, converge ``pool`` (a checked pool), set its entitlements
    on the broker when there is one; log out of both. What twinsite.dc.vdi_pool does, and in check
    mode what twinsite.dc.vdi_drift_info reports."""
    from ansible_collections.twinsite.dc.plugins.module_utils._vdi_broker import open_broker
    from ansible_collections.twinsite.dc.plugins.module_utils._vm import open_backend

    broker = open_broker(broker_config, timeout=min(timeout, 60))
    try:
        with open_backend(cluster, networks_model, timeout) as backend:
            service = PoolService(backend, broker, check_mode, parallel=parallel, refresh_batch=refresh_batch)
            report = service.converge(pool, now)
        if broker_config and entitlements:
            groups = sorted(set(pool.get("entitlements") or []))
            changed = broker.set_entitlements(pool["name"], groups, check_mode=check_mode)
            report["entitlements"] = {"groups": groups, "changed": changed, "before": broker.entitlements(pool["name"]) if check_mode else None}
            report["changed"] = report["changed"] or changed
        return report
    finally:
        broker.close()


def describe(pool: str, cluster: str, report: dict) -> list[str]:
    """A pool's plan as lines a person reads, in the shape of the VM plan (+ create, ~ change, - remove)."""
    lines = [f"  + {name}: missing, would be created" for name in report["created"]]
    lines += [f"  - {name}: surplus and free, would be removed" for name in report["removed"]]
    lines += [f"  ~ {name}: stale, would be refreshed (batch {i + 1})" for i, batch in enumerate(report["batches"]) for name in batch]
    lines += [f"  ~ {d['name']}: stale ({d['reason']}), deferred: {d['user']} has a {d['state']} session" for d in report["deferred"]]
    lines += [f"  ~ {name}: power off -> on" for name in report["powered_on"]]
    lines += [f"  ~ {name}: power on -> off (out of hours)" for name in report["powered_off"]]
    ent = report.get("entitlements") or {}
    if ent.get("changed"):
        lines.append(f"  ~ entitlements: {', '.join(ent.get('before') or []) or 'none'} -> {', '.join(ent['groups']) or 'none'}")
    header = f"pool {pool} on {cluster}: " + ("in sync with the model" if not lines else f"{len(lines)} difference(s)")
    return [header, *lines]


class PoolError(TwinsiteError):
    """Some desktops failed; ``report`` is what was done before and around them."""

    def __init__(self, errors: list[str], report: dict):
        shown = "; ".join(errors[:5]) + (f"; and {len(errors) - 5} more" if len(errors) > 5 else "")
        super().__init__(f"{len(errors)} desktop operation(s) failed: {shown}. What succeeded is kept; run again to converge the rest")
        self.report = report


def view(vm: dict) -> dict:
    """A desktop as the result and the diff show it."""
    return {"image": image_of(vm.get("notes")), "power": vm.get("power"), "cpus": vm.get("cpus"),
            "memory_mb": vm.get("memory_mb"), "networks": vm.get("networks")}


def predicted(before: dict, the_plan: Plan, pool: dict) -> dict:
    """The desktops after ``the_plan`` (check mode)."""
    after = {k: dict(v) for k, v in before.items() if k not in the_plan.remove}
    spec = spec_of(pool)
    for name in the_plan.create + the_plan.refresh:
        after[name] = {**after.get(name, {}), "image": pool["template"], "power": the_plan.wanted_power[name],
                       **{k: spec[k] for k in ("cpus", "memory_mb", "networks") if k in spec}}
    for name in the_plan.power_on:
        after[name]["power"] = "on"
    for name in the_plan.power_off:
        after[name]["power"] = "off"
    return dict(sorted(after.items()))
