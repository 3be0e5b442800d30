# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Proxmox VE backend of twinsite.dc.vm (see ``_vm.py`` for the contract).

Networks: the model names networks, Proxmox tags NICs with VLANs. ``networks_model`` (the model's
``dc_networks``) maps each name to its VLAN; every NIC sits on one bridge (``vmbr0`` by default)
with that tag, as on a VLAN-aware bridge. Reading back maps the tag to the network's name.
"""

from __future__ import annotations

import re
import threading

from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError
from ansible_collections.twinsite.dc.plugins.module_utils._proxmox import VMID_TAKEN
from ansible_collections.twinsite.dc.plugins.module_utils._vm import step

DISK_KEYS = ("scsi0", "virtio0", "sata0", "ide0")
SIZE_UNITS = {"K": 1 / 1024**2, "M": 1 / 1024, "G": 1, "T": 1024}


def size_gb(drive: str) -> int | None:
    """GB of a drive string ("local-lvm:vm-110-disk-0,size=32G,iothread=1")."""
    found = re.search(r"(?:^|,)size=(\d+(?:\.\d+)?)([KMGT]?)", drive or "")
    if not found:
        return None
    return round(float(found.group(1)) * SIZE_UNITS[found.group(2) or "G"])


def nic_fields(value: str) -> dict:
    """ "virtio=BC:24:11:00:00:01,bridge=vmbr0,tag=20" -> {"virtio": "BC:...", "bridge": "vmbr0", "tag": "20"}"""
    return dict(part.split("=", 1) if "=" in part else (part, "") for part in value.split(","))


def split_tags(value) -> list[str]:
    """PVE's tag string ("prod;backup", older releases also "," or " ") as a sorted list."""
    return sorted({t for t in re.split(r"[;, ]+", str(value or "")) if t})


class ProxmoxVms:
    def __init__(self, client, cluster: dict, networks_model: list[dict] | None = None, bridge: str = "vmbr0",
                 timeout: float = 600.0):
        self.client, self.cluster, self.bridge, self.timeout = client, cluster, bridge, timeout
        self.vlans = {n["name"]: n.get("vlan") for n in networks_model or []}
        # vmids free_vmids handed out in this run: parallel clones (a VDI pool's) never get the same one twice.
        self._handed_out: set[int] = set()
        self._handing_out = threading.Lock()
        self.names = {}
        self._templates: dict[str, dict] = {}  # kept for the run: a pool clones one template many times
        for name, vlan in self.vlans.items():
            self.names.setdefault(str(vlan), name)  # a VLAN reused at another site: the first name wins

    # --- reads -------------------------------------------------------------------------------------

    def _guests(self) -> list[dict]:
        with step(f"cluster {self.cluster.get('name')}", "reading the VMs"):
            return [r for r in self.client.resources("vm") if r.get("type") == "qemu"]

    def list(self) -> list[dict]:
        """Every VM in bulk (one /cluster/resources call): no networks or notes, which need a call per VM."""
        return [self._view(row, None) for row in self._guests() if not row.get("template")]

    def read(self, name: str) -> dict | None:
        matches = [g for g in self._guests() if g.get("name") == name and not g.get("template")]
        if len(matches) > 1:
            raise TwinsiteError(f"{len(matches)} VMs have this name (vmids {', '.join(str(g['vmid']) for g in matches)}); "
                                "rename all but one", obj=f"VM '{name}'", action="read")
        return self._read_row(matches[0]) if matches else None

    def _read_row(self, row: dict) -> dict:
        with step(f"VM '{row.get('name')}'", "read"):
            config = self.client.vm_config(row["node"], row["vmid"])
        return self._view(row, config)

    def template(self, name: str) -> dict:
        if name in self._templates:
            return self._templates[name]
        found = [g for g in self._guests() if g.get("name") == name and g.get("template")]
        if not found:
            raise TwinsiteError(f"no template of that name on cluster {self.cluster.get('name')}",
                                obj=f"template '{name}'", action="lookup")
        self._templates[name] = self._read_row(found[0])
        return self._templates[name]

    def source(self, params: dict) -> dict:
        """The template, or with ``clone_from`` the ordinary VM (a replica), that a new VM is cloned from."""
        if not params.get("clone_from"):
            return self.template(params["template"])
        name = params["clone_from"]
        if params.get("clone") == "linked":
            # PVE links clones to a template's base volumes only ("Linked clone feature is not supported").
            raise TwinsiteError("Proxmox VE links clones to templates only; use clone: full to copy a VM",
                                obj=f"VM '{name}' to VM '{params['name']}'", action="clone")
        vm = self.read(name)
        if vm is None:
            raise TwinsiteError(f"no VM of that name on cluster {self.cluster.get('name')} to clone from",
                                obj=f"VM '{name}'", action="lookup")
        return vm

    def view_config(self, name: str, vmid: int | None, node: str, config: dict, power: str = "off") -> dict:
        """A VM in model terms from a config that is not (yet) a VM's: a backup's, for a prediction."""
        return self._view({"name": name, "vmid": vmid, "node": node, "status": "running" if power == "on" else "stopped"}, config)

    def _view(self, row: dict, config: dict | None) -> dict:
        vm = {"name": row.get("name"), "id": row["vmid"], "vmid": row["vmid"], "node": row.get("node"),
              "cluster": self.cluster.get("name"), "template": bool(row.get("template")),
              "cpus": row.get("maxcpu"), "memory_mb": int(row["maxmem"]) // 1024**2 if row.get("maxmem") else None,
              "disk_gb": round(int(row["maxdisk"]) / 1024**3) if row.get("maxdisk") else None,
              "power": "on" if row.get("status") == "running" else "off", "_row": row}
        if config is None:
            if "tags" in row:  # /cluster/resources carries tags on PVE 7.3 and later
                vm["tags"] = split_tags(row["tags"])
            return vm
        disk = next((k for k in DISK_KEYS if k in config), None)
        nics = {k: nic_fields(v) for k, v in config.items() if re.fullmatch(r"net\d+", k)}
        vm.update({
            "cpus": int(config.get("cores", 1)) * int(config.get("sockets", 1)),
            "memory_mb": int(str(config.get("memory", 512))),
            "disk_gb": size_gb(config.get(disk)) if disk else None,
            "networks": [self._network_name(nics[k]) for k in sorted(nics, key=lambda k: int(k[3:]))],
            "notes": config.get("description") or "",
            "tags": split_tags(config.get("tags")),
            "_disk": disk, "_nics": nics,
        })
        return vm

    def _network_name(self, nic: dict) -> str:
        tag = nic.get("tag")
        return self.names.get(tag, f"vlan{tag}") if tag else nic.get("bridge", "?")

    @staticmethod
    def normalize_tags(tags: list[str]) -> list[str]:
        """PVE stores tags in lower case: compare what it will store, or a "Prod" would never settle."""
        return sorted({t.lower() for t in tags})

    def predict_clone(self, params: dict, tpl: dict) -> dict:
        return {**tpl, "name": params["name"], "id": params.get("vmid"), "vmid": params.get("vmid"),
                "node": params.get("node") or tpl["node"], "template": False, "power": "off", "notes": ""}

    # --- writes ------------------------------------------------------------------------------------

    def clone(self, params: dict) -> dict:
        name, src = params["name"], self.source(params)
        # "clone of template 'tpl-debian12' to VM 'web2' failed: ...", "clone of VM 'dns1-replica' to VM 'dns1-drill' failed: ..."
        obj, action = f"{'template' if src['template'] else 'VM'} '{src['name']}' to VM '{name}'", "clone"
        # A vmid of our choosing that another VM takes before the clone starts (VMID_TAKEN) is chosen
        # again, three tries in all. A vmid the caller gave fails, unless it is only a hint
        # (``vmid_hint``: a VDI pool's ids, chosen up front): then the next free one no clone of
        # this run was given. PVE made nothing when it refused.
        vmid = params.get("vmid")
        for attempt in range(3):
            try:
                with step(obj, action):
                    vmid = vmid or self.client.next_vmid()
                    # A VM that is not a template is always copied in full (PVE's default for it too).
                    args = {"newid": vmid, "name": name, "full": 1 if params.get("clone") == "full" or not src["template"] else 0}
                    if params.get("node") and params["node"] != src["node"]:
                        args["target"] = params["node"]
                    upid = self.client.clone_vm(src["node"], src["vmid"], **args)
                self.client.wait_task(src["node"], upid, obj=obj, action=action, timeout=self.timeout)
                break
            except TwinsiteError as exc:
                given = params.get("vmid") and not params.get("vmid_hint")
                if given or attempt == 2 or not VMID_TAKEN.search(exc.reason):
                    raise
                vmid = self.free_vmids(1, start=int(vmid))[0] if params.get("vmid") else None
        new = self._by_vmid(vmid, name)
        if params.get("customization"):
            self._customize(new, params["customization"])
        return new

    def detail(self, vm: dict) -> dict:
        """A VM from list() read in full (notes, networks): one config call. list() leaves these out
        because they cost a call per VM; a caller that needs them for a few VMs asks here."""
        return self._read_row(vm["_row"])

    def free_vmids(self, count: int, start: int = 100) -> list[int]:
        """``count`` vmids no guest (VM or template) holds and no earlier call handed out, the lowest
        from ``start`` on: chosen up front by a caller that clones in parallel, where PVE's
        /cluster/nextid would give each the same id."""
        with step(f"cluster {self.cluster.get('name')}", "reading the VMs"):
            used = {int(g["vmid"]) for g in self.client.resources("vm")}  # containers hold vmids too
        with self._handing_out:
            free, vmid = [], start
            while len(free) < count:
                if vmid not in used and vmid not in self._handed_out:
                    free.append(vmid)
                vmid += 1
            self._handed_out.update(free)
        return free

    def read_vmid(self, vmid: int) -> dict | None:
        """The VM (or template) that holds ``vmid``, read in full, or None: how a VM made under a known
        vmid (a clone, a restore) is read back, never by a name another VM may share."""
        row = next((g for g in self._guests() if int(g["vmid"]) == int(vmid)), None)
        return self._read_row(row) if row else None

    def _by_vmid(self, vmid: int, name: str) -> dict:
        # Read the clone by its NEW vmid: the result must never be the template's (community.proxmox #404).
        row = next((g for g in self._guests() if int(g["vmid"]) == int(vmid)), None)
        if row is None:
            raise TwinsiteError(f"the clone task ended but VM {vmid} is not in the cluster", obj=f"VM '{name}'", action="clone")
        return self._read_row(row)

    def _customize(self, vm: dict, custom: dict) -> None:
        """cloud-init settings, read by the guest at its first boot. PVE's cloud-init names the guest
        after the VM, so ``hostname`` is not written (document: name the VM as the host)."""
        config = {}
        if custom.get("ip"):
            config["ipconfig0"] = f"ip={custom['ip']}/{custom.get('prefix') or 24}" + (f",gw={custom['gateway']}" if custom.get("gateway") else "")
        if custom.get("dns"):
            config["nameserver"] = " ".join(custom["dns"])
        if config:
            with step(f"VM '{vm['name']}'", "cloud-init customization"):
                self.client.update_vm_config(vm["node"], vm["vmid"], **config)

    def delete_keys(self, vm: dict, keys: list[str], action: str) -> None:
        """Remove config keys (``net1``...) from a VM: what a restore cannot do."""
        with step(f"VM '{vm['name']}'", action):
            self._maybe_wait(vm, self.client.update_vm_config(vm["node"], vm["vmid"], delete=",".join(keys)), action)

    def reconfigure(self, vm: dict, changes: dict) -> None:
        config = {}
        if "cpus" in changes:
            config.update(cores=changes["cpus"], sockets=1)
        if "memory_mb" in changes:
            config["memory"] = changes["memory_mb"]
        if "notes" in changes:
            config["description"] = changes["notes"]
        if "networks" in changes:
            config.update(self._nic_config(vm, changes["networks"]))
        if "tags" in changes:
            if changes["tags"]:
                config["tags"] = ";".join(sorted(set(changes["tags"])))
            else:
                config["delete"] = ",".join(filter(None, [config.get("delete"), "tags"]))
        obj = f"VM '{vm['name']}'"
        if config:
            with step(obj, "reconfigure"):
                self._maybe_wait(vm, self.client.update_vm_config(vm["node"], vm["vmid"], **config), "reconfigure")
        if "disk_gb" in changes:
            if not vm.get("_disk"):
                raise TwinsiteError("it has no disk to grow", obj=obj, action="resize")
            with step(obj, "resize"):
                answer = self.client.resize_vm_disk(vm["node"], vm["vmid"], vm["_disk"], f"{changes['disk_gb']}G")
            self._maybe_wait(vm, answer, "resize")

    def nic_config(self, vm: dict, networks: list[str], action: str = "reconfigure", keep_macs: bool = True) -> dict:
        """The ``netN`` values (and ``delete`` of surplus NICs) that put ``vm`` on ``networks``, one NIC each.
        ``keep_macs`` false leaves the MAC out, so PVE makes a new one (a restored copy of a VM)."""
        return self._nic_config(vm, networks, action, keep_macs)

    def _nic_config(self, vm: dict, networks: list[str], action: str = "reconfigure", keep_macs: bool = True) -> dict:
        config, nics = {}, vm.get("_nics") or {}
        for i, name in enumerate(networks):
            if self.vlans.get(name) is None:
                raise TwinsiteError(f"network '{name}' has no VLAN in networks_model (known: {', '.join(sorted(self.vlans)) or 'none'})",
                                    obj=f"VM '{vm['name']}'", action=action)
            old = nics.get(f"net{i}", {})
            # Keep the NIC's model and MAC: a new MAC looks like a new NIC to the guest (udev renames it).
            model = next(((k, v) for k, v in old.items() if k in ("virtio", "e1000", "vmxnet3", "rtl8139")), ("virtio", ""))
            mac = model[1] if keep_macs else ""
            config[f"net{i}"] = (f"{model[0]}={mac}" if mac else model[0]) + f",bridge={self.bridge},tag={self.vlans[name]}"
        surplus = sorted(k for k in nics if int(k[3:]) >= len(networks))
        if surplus:
            config["delete"] = ",".join(surplus)
        return config

    def _maybe_wait(self, vm: dict, answer, action: str) -> None:
        """PUT config and resize answer at once on some PVE versions and with a task (UPID) on others."""
        if isinstance(answer, str) and answer.startswith("UPID:"):
            self.client.wait_task(vm["node"], answer, obj=f"VM '{vm['name']}'", action=action, timeout=self.timeout)

    def power(self, vm: dict, action: str) -> None:
        verb = {"on": "start", "off": "stop", "reset": "reset"}[action]
        with step(f"VM '{vm['name']}'", verb):
            upid = self.client.vm_power(vm["node"], vm["vmid"], verb)
        self.client.wait_task(vm["node"], upid, obj=f"VM '{vm['name']}'", action=verb, timeout=self.timeout)

    def delete(self, vm: dict) -> None:
        with step(f"VM '{vm['name']}'", "delete"):
            upid = self.client.destroy_vm(vm["node"], vm["vmid"])
        self.client.wait_task(vm["node"], upid, obj=f"VM '{vm['name']}'", action="delete", timeout=self.timeout)
