# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One VM contract over vSphere and Proxmox VE: read -> compare -> write unless check mode.

The service here decides; a backend (``_vm_vsphere.VsphereVms``, ``_vm_proxmox.ProxmoxVms``) reads
and writes one vendor. Backends speak the site model's terms (``cpus``, ``memory_mb``, ``disk_gb``,
``networks``, ``notes``, ``tags``, ``power``) and implement:

    read(name) -> vm | None          the VM (never a template) in model terms
    template(name) -> vm             the template to clone from; raises if there is none
    source(params) -> vm             what a new VM is cloned from: the ``template``, or the ordinary
                                     VM ``clone_from`` (a replica); raises if there is none
    clone(params) -> vm              clone the source, return the NEW VM read back (powered off)
    predict_clone(params, src) -> vm what clone() would return, without a write (check mode)
    reconfigure(vm, changes)         apply {field: new value}
    power(vm, action)                on | off | reset
    delete(vm)                       remove a powered-off VM and its disks
    list() -> [vm]                   every VM of the cluster, one bulk read

A VM dict may carry backend handles under keys starting with ``_``; ``public()`` strips them.
Check mode is handled here once, so no backend can forget it: in check mode only read(),
template(), source() and predict_clone() are called.
"""

from __future__ import annotations

import contextlib

from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError

# Fields the user states and the service compares, in the module's option names.
FIELDS = ("cpus", "memory_mb", "disk_gb", "networks", "notes", "tags")
# Changes a running VM cannot take on both vendors without hot-add: they need a power-off.
COLD_FIELDS = ("cpus", "memory_mb")
TARGET_POWER = {"started": "on", "stopped": "off", "restarted": "on"}


def public(vm: dict | None) -> dict:
    """The VM as the module returns it: sorted, without the backend's private handles."""
    return {k: vm[k] for k in sorted(vm) if not k.startswith("_")} if vm else {}


def wanted(params: dict) -> dict:
    """The fields the user stated (None means "leave as it is")."""
    want = {k: params[k] for k in FIELDS if params.get(k) is not None}
    if "networks" in want:
        want["networks"] = list(want["networks"])
    if "tags" in want:
        want["tags"] = sorted(set(want["tags"]))
    return want


def changes_between(name: str, want: dict, have: dict) -> dict:
    """{field: wanted value} for every stated field that differs. Disks only grow."""
    changes = {}
    for field, value in want.items():
        current = have.get(field)
        if field in ("networks", "tags"):
            # Compared as sets, as the plan does: NIC order is not something the model states.
            if sorted(set(value)) != sorted(set(current or [])):
                changes[field] = value
            continue
        if field == "notes" and (current or "") == value:
            continue
        if current != value:
            changes[field] = value
    if "disk_gb" in changes and have.get("disk_gb") is not None and changes["disk_gb"] < have["disk_gb"]:
        raise TwinsiteError(f"disks only grow: it has {have['disk_gb']} GB, disk_gb asks for {changes['disk_gb']} GB; "
                            "shrinking would destroy data, so build a new VM instead", obj=f"VM '{name}'", action="resize")
    return changes


def plan_steps(name: str, vm: dict, changes: dict, state: str, allow_restart: bool) -> list[tuple]:
    """The ordered writes that take ``vm`` to the wanted state: ("power", action) / ("reconfigure", changes)."""
    was_on = vm.get("power") == "on"
    target = TARGET_POWER.get(state, vm.get("power"))
    cold = sorted(f for f in changes if f in COLD_FIELDS)
    steps, power = [], vm.get("power")
    if was_on and (target == "off" or cold):
        if target == "on" and not allow_restart:
            raise TwinsiteError(f"{', '.join(cold)} cannot change while it runs; set allow_restart: true to let the module "
                                "power it off and on again, or state: stopped", obj=f"VM '{name}'", action="reconfigure")
        steps.append(("power", "off"))
        power = "off"
    if changes:
        steps.append(("reconfigure", changes))
    if target == "on" and power == "off":
        steps.append(("power", "on"))
    elif state == "restarted" and was_on:
        steps.append(("power", "reset"))
    return steps


def describe(step: tuple) -> str:
    kind, arg = step
    if kind == "power":
        return {"on": "power on", "off": "power off", "reset": "restart (reset)"}[arg]
    return "reconfigure " + ", ".join(f"{k}={v}" for k, v in sorted(arg.items()))


class VmService:
    def __init__(self, backend, check_mode: bool):
        self.backend, self.check_mode = backend, check_mode

    def converge(self, params: dict) -> dict:
        """Make one VM match ``params``; returns {changed, vm, diff, actions}."""
        current = self.backend.read(params["name"])
        if params["state"] == "absent":
            return self._absent(current)
        actions = []
        if current is None:
            vm = self._create(params)
            actions.append(f"clone from {source_label(params)} ({params['clone']})")
        else:
            vm = current
        want = wanted(params)
        if "tags" in want and hasattr(self.backend, "normalize_tags"):
            want["tags"] = self.backend.normalize_tags(want["tags"])
        changes = changes_between(params["name"], want, vm)
        steps = plan_steps(params["name"], vm, changes, params["state"], params.get("allow_restart", False))
        actions += [describe(s) for s in steps]
        after = self._apply(vm, steps, created=current is None) if not self.check_mode else predict(vm, steps)
        return result(current, after, actions)

    def _create(self, params: dict) -> dict:
        name = params["name"]
        if not params.get("template") and not params.get("clone_from"):
            raise TwinsiteError("it does not exist and neither template nor clone_from is given to clone it from",
                                obj=f"VM '{name}'", action="create")
        src = self.backend.source(params)
        if self.check_mode:
            return self.backend.predict_clone(params, src)
        return self.backend.clone(params)

    def _apply(self, vm: dict, steps: list, created: bool) -> dict:
        try:
            for kind, arg in steps:
                if kind == "power":
                    self.backend.power(vm, arg)
                else:
                    self.backend.reconfigure(vm, arg)
        except TwinsiteError as exc:
            if created:
                # A half-made VM is left in place on purpose: deleting is for state=absent only, and
                # the next run finds it by name and converges it (read -> compare -> write).
                raise TwinsiteError(f"{exc.reason}; the VM was cloned and is left as it is: run again to finish it, "
                                    "or set state: absent to remove it", obj=exc.obj, action=exc.action) from None
            raise
        return self.backend.read(vm["name"]) if steps else vm

    def _absent(self, current: dict | None) -> dict:
        if current is None:
            return result(None, None, [])
        actions = (["power off"] if current.get("power") == "on" else []) + ["delete"]
        if not self.check_mode:
            if current.get("power") == "on":
                self.backend.power(current, "off")
            self.backend.delete(current)
        return result(current, None, actions)


def source_label(params: dict) -> str:
    """What a new VM is cloned from, as actions and errors name it: "template tpl-debian12", "VM dns1-replica"."""
    return f"VM {params['clone_from']}" if params.get("clone_from") else f"template {params['template']}"


def predict(vm: dict, steps: list) -> dict:
    """What ``vm`` becomes after ``steps``, without doing them (check mode)."""
    out = dict(vm)
    for kind, arg in steps:
        if kind == "power":
            out["power"] = "off" if arg == "off" else "on"
        else:
            out.update(arg)
    return out


def result(before: dict | None, after: dict | None, actions: list[str]) -> dict:
    return {"changed": bool(actions), "vm": public(after), "actions": actions,
            "diff": {"before": public(before), "after": public(after)}}


@contextlib.contextmanager
def step(obj: str, action: str):
    """Name the VM and the action on a vendor error ("start of VM 't-web' failed: 595 No route to host"),
    instead of the REST path or SDK method the client saw."""
    try:
        yield
    except TwinsiteError as exc:
        if (exc.obj, exc.action) == (obj, action):
            raise
        reason = exc.reason
        if reason.startswith("595"):
            reason += " (is the node offline, or cut off from the cluster?)"
        raise TwinsiteError(reason, obj=obj, action=action) from None


@contextlib.contextmanager
def open_backend(cluster: dict, networks_model: list | None = None, timeout: float = 600.0, tags: bool = False):
    """Log in to the cluster and yield its VM backend; log out at the end (vSphere sessions are a
    limited resource on a vCenter). ``tags``: read vSphere tags too (vAPI REST calls; Proxmox
    tags come with the config at no cost)."""
    from ansible_collections.twinsite.dc.plugins.module_utils import _cluster

    client = _cluster.connect(cluster)
    try:
        if cluster.get("type") == "vsphere":
            from ansible_collections.twinsite.dc.plugins.module_utils._vm_vsphere import VsphereVms

            yield VsphereVms(client, cluster, timeout=timeout, tags=tags)
        else:
            from ansible_collections.twinsite.dc.plugins.module_utils._vm_proxmox import ProxmoxVms

            yield ProxmoxVms(client, cluster, networks_model, timeout=timeout)
    finally:
        _cluster.close(client)


