# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The vSphere backend of twinsite.dc.vm (see ``_vm.py`` for the contract).

list() is ONE PropertyCollector retrieve of the VMs with the port groups, switches and hosts they
point at, joined in memory. read(name) retrieves every VM's name only, then that one VM's
properties, so its cost barely grows with the vCenter. Networks are distributed port groups named after the model's
networks. VMs are found by name in the whole vCenter, as the plan (``vm_drift_info``) does.
"""

from __future__ import annotations

import ipaddress

from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError
from ansible_collections.twinsite.dc.plugins.module_utils._vsphere import fault_message

try:
    from pyVmomi import vim, vmodl
except ImportError:  # pragma: no cover - the module reports missing pyvmomi first
    vim = vmodl = None


VM_PROPERTIES = ["name", "config.template", "config.instanceUuid", "config.hardware.numCPU", "config.hardware.memoryMB",
                 "config.hardware.device", "runtime.powerState", "config.annotation", "runtime.host"]
NAME_PROPERTIES = ["name", "config.template"]
# The vAPI tag category of a tag the model names without one ("prod"); "backup:daily" names its own.
DEFAULT_TAG_CATEGORY = "twinsite"


class VsphereVms:
    def __init__(self, client, cluster: dict, timeout: float = 600.0, tags: bool = False):
        self.client, self.cluster, self.timeout = client, cluster, timeout
        # vAPI tags cost a REST session and calls per VM: read only when asked (the tags option, vm_info).
        self.with_tags = tags
        self._portgroups = None
        self._templates: dict[str, dict | None] = {}
        self._sources: dict[str, dict | None] = {}  # ordinary VMs cloned from (clone_from)
        self._paths: dict = {}  # inventory path -> folder or cluster (clone targets)

    # --- reads -------------------------------------------------------------------------------------

    def _inventory(self, vm_properties: list[str] = VM_PROPERTIES) -> dict:
        """One retrieve of every VM (with ``vm_properties``) and of the port groups, switches and
        hosts a VM points at; the latter are kept for the life of this backend (one module run)."""
        rows = self.client.retrieve_many({
            vim.VirtualMachine: vm_properties,
            # Before vim.Network: a port group is a Network too and lands under the first type listed.
            vim.dvs.DistributedVirtualPortgroup: ["name", "key", "config.distributedVirtualSwitch"],
            vim.Network: ["name"],
            vim.DistributedVirtualSwitch: ["uuid"],
            vim.HostSystem: ["name"],
        })
        self._portgroups = {r["name"]: r for r in rows[vim.dvs.DistributedVirtualPortgroup]}
        self._pg_by_key = {r["key"]: r["name"] for r in rows[vim.dvs.DistributedVirtualPortgroup]}
        self._switch_uuid = {str(r["_obj"]._moId): r.get("uuid") for r in rows[vim.DistributedVirtualSwitch]}
        self._hosts = {str(r["_obj"]._moId): r.get("name") for r in rows[vim.HostSystem]}
        return rows

    def _names(self) -> list[dict]:
        """Every VM's name and template flag only: finding one VM by name costs a few bytes per VM
        of the vCenter, not its device list (the full rows made creating N VMs O(N^2))."""
        if self._portgroups is None:  # the first read of this run also brings the networks and hosts
            return self._inventory(NAME_PROPERTIES)[vim.VirtualMachine]
        return self.client.retrieve(vim.VirtualMachine, NAME_PROPERTIES)

    def _by_object(self, obj, extra: tuple = ()) -> dict | None:
        """The full row of one VM, by its moref (one retrieve of that object alone); None if it is gone."""
        if self._portgroups is None:
            self._inventory(NAME_PROPERTIES)
        rows = self.client.retrieve_objects([obj], vim.VirtualMachine, VM_PROPERTIES + list(extra))
        return rows[0] if rows else None

    def list(self) -> list[dict]:
        vms = [self._view(r) for r in self._inventory()[vim.VirtualMachine] if not r.get("config.template")]
        if self.with_tags:  # calls per tag and category, one for all attachments: never one per VM
            by_object = self.client.tags()
            for vm in vms:
                vm["tags"] = sorted(tag_label(t["category"], t["name"]) for t in by_object.get(vm["moid"], []))
        return vms

    def read(self, name: str, template: bool = False, snapshot: bool = False) -> dict | None:
        found = [r for r in self._names() if r.get("name") == name and bool(r.get("config.template")) == template]
        if len(found) > 1:
            raise TwinsiteError(f"{len(found)} {'templates' if template else 'VMs'} have this name; rename all but one",
                                obj=f"VM '{name}'", action="read")
        # A template's (or a cloned VM's) snapshot is for linked clones. Read in the retrieve, never as
        # ``vm.snapshot``: a Fetch of an unset property is an error on some servers (govmomi 0.24's vcsim panics).
        snapshot = template or snapshot
        row = self._by_object(found[0]["_obj"], ("snapshot",) if snapshot else ()) if found else None
        if row is None:
            return None
        vm = self._with_tags(self._view(row))
        if snapshot:
            vm["_snapshot"] = row.get("snapshot")
        return vm

    def template(self, name: str) -> dict:
        # Kept for the run: creating a VM looks the template up twice (to predict or check, then to clone).
        tpl = self._templates.get(name) or self.read(name, template=True)
        self._templates[name] = tpl
        if tpl is None:
            raise TwinsiteError(f"no template of that name in vCenter {self.client.endpoint}", obj=f"template '{name}'", action="lookup")
        return tpl

    def source(self, params: dict) -> dict:
        """The template, or with ``clone_from`` the ordinary VM (a replica), that a new VM is cloned from."""
        if not params.get("clone_from"):
            return self.template(params["template"])
        name = params["clone_from"]
        # Kept for the run, as templates are: creating looks it up twice.
        vm = self._sources.get(name) or self.read(name, snapshot=params.get("clone") == "linked")
        self._sources[name] = vm
        if vm is None:
            raise TwinsiteError(f"no VM of that name in vCenter {self.client.endpoint} to clone from", obj=f"VM '{name}'", action="lookup")
        return vm

    def _view(self, row: dict) -> dict:
        devices = row.get("config.hardware.device") or []
        disks = [d for d in devices if isinstance(d, vim.vm.device.VirtualDisk)]
        nics = sorted((d for d in devices if isinstance(d, vim.vm.device.VirtualEthernetCard)), key=lambda d: d.key)
        host = row.get("runtime.host")
        return {
            "name": row["name"], "id": row.get("config.instanceUuid"), "moid": str(row["_obj"]._moId),
            "cluster": self.cluster.get("name"), "host": self._hosts.get(str(host._moId)) if host else None,
            "template": bool(row.get("config.template")),
            "cpus": row.get("config.hardware.numCPU"), "memory_mb": row.get("config.hardware.memoryMB"),
            "disk_gb": round(disks[0].capacityInKB / 1024**2) if disks else None,
            "networks": [self._nic_network(n) for n in nics],
            "power": "on" if row.get("runtime.powerState") == "poweredOn" else "off",
            "notes": row.get("config.annotation") or "",
            "_obj": row["_obj"], "_disks": disks, "_nics": nics,
        }

    def _with_tags(self, vm: dict) -> dict:
        """Add ``tags`` (vAPI tagging, one REST session per run) when this backend reads tags."""
        if self.with_tags and vm.get("moid"):
            attached = self.client.attached_tags(vm["moid"])
            vm["_tags"] = {tag_label(t["category"], t["name"]): t["id"] for t in attached}
            vm["tags"] = sorted(vm["_tags"])
        return vm

    def _nic_network(self, nic) -> str:
        backing = nic.backing
        if isinstance(backing, vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo):
            return self._pg_by_key.get(backing.port.portgroupKey, backing.port.portgroupKey)
        return getattr(backing, "deviceName", None) or "?"

    def predict_clone(self, params: dict, tpl: dict) -> dict:
        # vAPI tags belong to an object: a clone starts with none.
        return {**tpl, "name": params["name"], "id": None, "moid": None, "template": False, "power": "off", "notes": "",
                **({"tags": []} if self.with_tags else {})}

    # --- writes ------------------------------------------------------------------------------------

    def _run(self, call, obj: str, action: str):
        """Start a task and wait for it; a fault raised at once (MethodDisabled, NoPermission) is named too."""
        try:
            task = call()
        except vmodl.MethodFault as fault:
            raise TwinsiteError(fault_message(fault), obj=obj, action=action) from None
        except OSError as exc:
            raise TwinsiteError(f"the connection to vCenter {self.client.endpoint} broke ({exc})", obj=obj, action=action) from None
        return self.client.wait_task(task, obj=obj, action=action, timeout=self.timeout)

    def _find(self, path: str, what: str, obj: str):
        """The folder or cluster at ``path``, looked up once per run (a pool clones into one folder many times)."""
        found = self._paths.get(path) or self.client.find_by_inventory_path(path)
        if found is None:
            raise TwinsiteError(f"{what} '{path}' does not exist", obj=obj, action="clone")
        self._paths[path] = found
        return found

    def clone(self, params: dict) -> dict:
        name, tpl = params["name"], self.source(params)
        # "clone of template 'tpl-debian12' to VM 'web2' failed: ...", "clone of VM 'dns1-replica' to VM 'dns1-drill' failed: ..."
        kind = "template" if tpl["template"] else "VM"
        obj, action = f"{kind} '{tpl['name']}' to VM '{name}'", "clone"
        dc = self.cluster.get("datacenter")
        folder = self._find(f"{dc}/vm/{params['folder']}" if params.get("folder") else f"{dc}/vm", "folder", obj)
        compute = self._find(f"{dc}/host/{self.cluster.get('cluster')}", "cluster", obj)
        spec = vim.vm.CloneSpec(location=vim.vm.RelocateSpec(pool=compute.resourcePool), powerOn=False, template=False)
        if params.get("clone") == "linked":
            snapshot = tpl.get("_snapshot")
            if snapshot is None or snapshot.currentSnapshot is None:
                raise TwinsiteError(f"a linked clone needs a snapshot of {kind} '{tpl['name']}'; take one, or use clone: full",
                                    obj=obj, action=action)
            spec.snapshot = snapshot.currentSnapshot
            spec.location.diskMoveType = "createNewChildDiskBacking"
        if params.get("customization"):
            spec.customization = customization_spec(name, params["customization"])
        moref = self._run(lambda: self.client.clone_vm_task(tpl["_obj"], folder, name, spec), obj, action)
        # Read the clone by its own moref: the result must be the NEW VM, never the template.
        new = self._by_object(moref)
        if new is None:
            raise TwinsiteError("the clone task succeeded but the new VM is not in the inventory", obj=obj, action=action)
        return self._with_tags(self._view(new))

    def reconfigure(self, vm: dict, changes: dict) -> None:
        spec = vim.vm.ConfigSpec()
        if "cpus" in changes:
            spec.numCPUs = changes["cpus"]
        if "memory_mb" in changes:
            spec.memoryMB = changes["memory_mb"]
        if "notes" in changes:
            spec.annotation = changes["notes"]
        devices = []
        if "disk_gb" in changes:
            if not vm["_disks"]:
                raise TwinsiteError("it has no disk to grow", obj=f"VM '{vm['name']}'", action="resize")
            disk = vm["_disks"][0]
            disk.capacityInKB = changes["disk_gb"] * 1024**2
            devices.append(vim.vm.device.VirtualDeviceSpec(operation="edit", device=disk))
        if "networks" in changes:
            devices += self._nic_changes(vm, changes["networks"])
        spec.deviceChange = devices
        if devices or set(changes) & {"cpus", "memory_mb", "notes"}:
            self._run(lambda: self.client.reconfigure_vm_task(vm["_obj"], spec), f"VM '{vm['name']}'", "reconfigure")
        if "tags" in changes:
            self._set_tags(vm, changes["tags"])

    def _set_tags(self, vm: dict, labels: list[str]) -> None:
        """Attach the missing tags (creating category and tag when vCenter has none of that name) and
        detach the others: the VM ends with exactly ``labels``."""
        have = vm.get("_tags")
        if have is None:
            have = {tag_label(t["category"], t["name"]): t["id"] for t in self.client.attached_tags(vm["moid"])}
        try:
            for label in sorted(set(labels) - set(have)):
                self.client.attach_tag(self.client.find_or_create_tag(*split_tag(label)), vm["moid"])
            for label in sorted(set(have) - set(labels)):
                self.client.detach_tag(have[label], vm["moid"])
        except TwinsiteError as exc:
            raise TwinsiteError(f"{exc.action}: {exc.reason}", obj=f"VM '{vm['name']}'", action="tagging") from None

    def _nic_changes(self, vm: dict, networks: list[str]) -> list:
        changes, nics = [], vm["_nics"]
        for i, name in enumerate(networks):
            pg = self._portgroups.get(name)
            if pg is None:
                raise TwinsiteError(f"no distributed port group named '{name}' (known: {', '.join(sorted(self._portgroups)) or 'none'})",
                                    obj=f"VM '{vm['name']}'", action="reconfigure")
            switch = pg.get("config.distributedVirtualSwitch")
            backing = vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo(
                port=vim.dvs.PortConnection(portgroupKey=pg["key"], switchUuid=self._switch_uuid.get(str(switch._moId)) if switch else None))
            if i < len(nics):
                # Edit the NIC in place: its MAC stays, so the guest sees the same interface.
                nics[i].backing = backing
                changes.append(vim.vm.device.VirtualDeviceSpec(operation="edit", device=nics[i]))
            else:
                nic = vim.vm.device.VirtualVmxnet3(key=-(i + 1), backing=backing,
                                                   connectable=vim.vm.device.VirtualDevice.ConnectInfo(startConnected=True, allowGuestControl=True))
                changes.append(vim.vm.device.VirtualDeviceSpec(operation="add", device=nic))
        changes += [vim.vm.device.VirtualDeviceSpec(operation="remove", device=n) for n in nics[len(networks):]]
        return changes

    def power(self, vm: dict, action: str) -> None:
        verb = {"on": "power on", "off": "power off", "reset": "reset"}[action]
        self._run(lambda: self.client.power_vm_task(vm["_obj"], action), f"VM '{vm['name']}'", verb)

    def delete(self, vm: dict) -> None:
        self._run(lambda: self.client.destroy_vm_task(vm["_obj"]), f"VM '{vm['name']}'", "delete")


def tag_label(category: str, name: str) -> str:
    """How a vSphere tag reads in the model: its name alone in the default category, else "category:name"."""
    return name if category == DEFAULT_TAG_CATEGORY else f"{category}:{name}"


def split_tag(label: str) -> tuple[str, str]:
    category, _, name = label.partition(":") if ":" in label else ("", "", label)
    return category or DEFAULT_TAG_CATEGORY, name


def customization_spec(name: str, custom: dict):
    """A Linux guest customization (hostname, one fixed address, DNS), applied by VMware Tools at first boot.
    Windows templates need a Sysprep identity, which this does not build."""
    hostname, _, domain = (custom.get("hostname") or name).partition(".")
    adapter = vim.vm.customization.IPSettings(ip=vim.vm.customization.DhcpIpGenerator())
    if custom.get("ip"):
        prefix = custom.get("prefix") or 24
        adapter = vim.vm.customization.IPSettings(
            ip=vim.vm.customization.FixedIp(ipAddress=custom["ip"]),
            subnetMask=str(ipaddress.ip_network(f"0.0.0.0/{prefix}").netmask),
            gateway=[custom["gateway"]] if custom.get("gateway") else [])
    return vim.vm.customization.Specification(
        identity=vim.vm.customization.LinuxPrep(hostName=vim.vm.customization.FixedName(name=hostname), domain=domain or "local"),
        globalIPSettings=vim.vm.customization.GlobalIPSettings(dnsServerList=list(custom.get("dns") or [])),
        nicSettingMap=[vim.vm.customization.AdapterMapping(adapter=adapter)])
