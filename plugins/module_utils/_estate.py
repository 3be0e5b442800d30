# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The live estate in the site model's own terms, and how it differs from the model.

Each backend's VMs are read in bulk (one PropertyCollector retrieve for vSphere, one
/cluster/resources call for Proxmox) into the same shape the model uses (``cpus``, ``memory_mb``,
``disk_gb``, ``power``, ``networks``), so one comparison serves both.
"""

from __future__ import annotations

# Fields compared per VM, in the model's names. Proxmox networks need a config call per VM, so
# they are compared on vSphere only (the bulk read of Proxmox does not carry them).
FIELDS = ("template", "cpus", "memory_mb", "disk_gb", "power", "networks")


def vsphere_vms(client, datacenter: str | None = None) -> dict[str, dict]:
    """name -> VM state, for every VM and template the vCenter holds (one retrieve)."""
    from pyVmomi import vim

    found = client.retrieve_many({
        vim.VirtualMachine: ["name", "config.template", "config.hardware.numCPU", "config.hardware.memoryMB",
                             "config.hardware.device", "runtime.powerState", "network"],
        vim.Network: ["name"],
    })
    network_names = {str(n["_obj"]._moId): n.get("name") for n in found[vim.Network]}
    vms = {}
    for row in found[vim.VirtualMachine]:
        disks = [d for d in row.get("config.hardware.device") or [] if isinstance(d, vim.vm.device.VirtualDisk)]
        vms[row["name"]] = {
            "name": row["name"],
            "template": bool(row.get("config.template")),
            "cpus": row.get("config.hardware.numCPU"),
            "memory_mb": row.get("config.hardware.memoryMB"),
            "disk_gb": round(disks[0].capacityInKB / 1024 / 1024) if disks else None,
            "power": "on" if row.get("runtime.powerState") == "poweredOn" else "off",
            "networks": sorted(network_names.get(str(n._moId), str(n._moId)) for n in row.get("network") or []),
        }
    return vms


def proxmox_vms(client) -> dict[str, dict]:
    """name -> VM state, for every qemu guest of the cluster (one /cluster/resources call)."""
    vms = {}
    for row in client.resources("vm"):
        if row.get("type") != "qemu":
            continue
        vms[row.get("name") or str(row.get("vmid"))] = {
            "name": row.get("name"),
            "vmid": row.get("vmid"),
            "node": row.get("node"),
            "template": bool(row.get("template")),
            "cpus": row.get("maxcpu"),
            "memory_mb": int(row["maxmem"]) // (1024 * 1024) if row.get("maxmem") is not None else None,
            "disk_gb": round(int(row["maxdisk"]) / 1024**3) if row.get("maxdisk") else None,
            "power": "on" if row.get("status") == "running" else "off",
        }
    return vms


def wanted(model_vms: list[dict], model_templates: list[dict]) -> dict[str, dict]:
    """name -> desired state, from the model's VMs and templates of one cluster."""
    out = {}
    for tpl in model_templates:
        out[tpl["name"]] = {"template": True, **{k: tpl[k] for k in ("cpus", "memory_mb", "disk_gb") if k in tpl}}
    for vm in model_vms:
        want = {"template": False, **{k: vm[k] for k in ("cpus", "memory_mb", "disk_gb") if k in vm}}
        want["power"] = str(vm.get("power", "on"))
        if "networks" in vm:
            want["networks"] = sorted(vm["networks"])
        if vm.get("state") == "absent":
            want = {"absent": True}
        out[vm["name"]] = want
    return out


def diff(want: dict[str, dict], live: dict[str, dict]) -> dict:
    """What would change to make ``live`` match ``want``: missing, extra, different, to_remove."""
    missing, different, to_remove = [], [], []
    for name, desired in sorted(want.items()):
        have = live.get(name)
        if desired.get("absent"):
            if have is not None:
                to_remove.append(name)
            continue
        if have is None:
            missing.append(name)
            continue
        have = {**have, "networks": sorted(have["networks"])} if isinstance(have.get("networks"), list) else have
        changes = {
            field: {"model": desired[field], "live": have.get(field)}
            for field in FIELDS
            if field in desired and field in have and have.get(field) is not None and desired[field] != have[field]
        }
        if changes:
            different.append({"name": name, "changes": changes})
    extra = sorted(name for name in live if name not in want)
    return {"missing": missing, "different": different, "extra": extra, "to_remove": to_remove}


def describe(cluster: str, result: dict) -> list[str]:
    """The plan as lines a person reads: + create, ~ change, - remove, ? not in the model."""
    lines = []
    for name in result["missing"]:
        lines.append(f"  + {name}: missing, would be created")
    for item in result["different"]:
        changes = ", ".join(f"{field} {c['live']} -> {c['model']}" for field, c in sorted(item["changes"].items()))
        lines.append(f"  ~ {item['name']}: {changes}")
    for name in result["to_remove"]:
        lines.append(f"  - {name}: declared absent in the model, would be removed")
    for name in result["extra"]:
        lines.append(f"  ? {name}: exists but is not in the model (left alone)")
    header = f"{cluster}: " + ("in sync with the model" if not lines else f"{len(lines)} difference(s)")
    return [header, *lines]
