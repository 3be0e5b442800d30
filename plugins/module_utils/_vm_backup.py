# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""vzdump backups of Proxmox VE VMs, and restoring one as a new VM (twinsite.dc.vm_backup and
twinsite.dc.vm_backup_restore, the hypervisor half of a DR drill's ``vm_backup_restore`` method).

Layered as ``_vm.py``: ``ProxmoxBackups`` reads and writes backups, each REST call behind a one-line
method (the seam unit tests patch); ``BackupService`` and ``RestoreService`` decide and are the only
code that knows check mode. VMs are read and written through ``_vm_proxmox.ProxmoxVms``, so a restored
VM reads back as twinsite.dc.vm and vm_info show it, and its networks map to VLANs the same way.

A backup is ``{"volid", "storage", "node", "vmid", "ctime", "time", "size", "format", "notes", "protected"}``:
``ctime`` is PVE's epoch (the node's clock), ``time`` the same in ISO 8601 UTC, and ``node`` the node
whose storage holds it when that storage is not shared (``local``: every node has its own) - such a
backup is listed and restored on that node only - else None.

A restored VM carries a restore mark as the last line of its notes (PVE's description):
``twinsite-restore: archive=<volid> backup_time=<ctime>``. A later run reads from it which backup the
VM came from (a drill's achieved RPO), and ``state: absent`` deletes only VMs that carry it.
"""

from __future__ import annotations

import datetime
import re
import time

from ansible_collections.twinsite.dc.plugins.module_utils._cluster import proxmox_vm
from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError
from ansible_collections.twinsite.dc.plugins.module_utils._proxmox import VMID_TAKEN
from ansible_collections.twinsite.dc.plugins.module_utils._vm import public, step

MARK = "twinsite-restore:"
MARK_LINE = re.compile(r"^twinsite-restore: archive=(\S+) backup_time=(\d+)[ \t]*$", re.M)
# A VM whose disks a failback replaced (replace=true) keeps its own notes and gets this line: which
# backup its disks came from, and the origin of that data - the backup the restored copy started from
# (or the backup itself, when it is one of this VM's own), so that a rerun with a newer backup of the
# same copy changes nothing. It is not a restore mark: state=absent still refuses the VM.
REPLACED = "twinsite-replaced:"
REPLACED_LINE = re.compile(r"^twinsite-replaced: archive=(\S+) backup_time=(\d+) origin=(\S+)[ \t]*$", re.M)
# A VM's backup volume: <storage>:backup/vzdump-qemu-<vmid>-<YYYY_MM_DD-HH_MM_SS>.vma[.zst] (pve-storage's
# archive_info), or on a Proxmox Backup Server storage <storage>:backup/vm/<vmid>/<ISO time>.
ARCHIVE = re.compile(r"^(?P<storage>[a-z][a-z0-9._-]*[a-z0-9]):backup/(?:vzdump-qemu-(?P<vmid>\d+)-\S+|vm/(?P<pbs_vmid>\d+)/\S+)$", re.I)
# The archive's extension after .vma for a `compress` value (vzdump's compressor_info).
COMPRESS_EXT = {"0": "", "gzip": ".gz", "lzo": ".lzo", "zstd": ".zst"}


def iso(epoch) -> str | None:
    """An epoch as ISO 8601 UTC ("2025-03-01T02:30:07Z"); None stays None."""
    if epoch is None:
        return None
    return datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_config(text: str) -> dict:
    """The guest config ``vzdump/extractconfig`` prints, as ``GET .../config`` returns one: "key: value"
    lines; "#" lines before them are the description, "#qmdump#" lines the archive's disk map, and a
    "[name]" line starts the snapshot sections, which a restore does not bring back."""
    config, notes = {}, []
    for line in (text or "").splitlines():
        if line.startswith("["):
            break
        if line.startswith(("#qmdump#", "#vzdump#")):
            continue
        if line.startswith("#"):
            notes.append(line[1:])
            continue
        key, sep, value = line.partition(":")
        if sep and key.strip():
            config[key.strip()] = value.strip()
    if notes:
        config["description"] = "\n".join(notes)
    return config


def restore_mark(notes) -> dict | None:
    """{"archive", "backup_time"} of the restore mark in a VM's notes, or None."""
    found = MARK_LINE.search(notes or "")
    return {"archive": found.group(1), "backup_time": int(found.group(2))} if found else None


def replaced_mark(notes) -> dict | None:
    """{"archive", "backup_time", "origin"} of the mark a replace leaves in a VM's notes, or None."""
    found = REPLACED_LINE.search(notes or "")
    return {"archive": found.group(1), "backup_time": int(found.group(2)), "origin": found.group(3)} if found else None


def data_origin(config: dict, backup: dict) -> str:
    """Where the data of ``backup`` (whose VM config is ``config``) started: the archive its VM was
    restored from (a failover's copy), or the backup itself when its VM was restored from none."""
    return (restore_mark(config.get("description")) or {}).get("archive") or backup["volid"]


def with_replaced_mark(notes, archive: str, ctime: int, origin: str) -> str:
    """A VM's own notes, without an older replace mark, then this replace's."""
    kept = REPLACED_LINE.sub("", notes or "").rstrip()
    return (kept + "\n" if kept else "") + f"{REPLACED} archive={archive} backup_time={int(ctime)} origin={origin}"


def with_mark(notes, archive: str, ctime: int) -> str:
    """The notes of a restored VM: the backed-up VM's, without an older mark, then this restore's."""
    kept = MARK_LINE.sub("", notes or "").rstrip()
    return (kept + "\n" if kept else "") + f"{MARK} archive={archive} backup_time={int(ctime)}"


class ProxmoxBackups:
    """The vzdump backups of one Proxmox VE cluster: list, make, read the config of, restore, delete."""

    def __init__(self, client, cluster: dict, timeout: float = 3600.0):
        self.client, self.cluster, self.timeout = client, cluster, timeout
        self._storage_rows_cache = None

    # --- REST calls, one line each: the seam tests patch. Task-starting calls return a UPID. -------

    def _storage_rows(self) -> list[dict]:
        return self.client.resources("storage")

    def _backup_list(self, node: str, storage: str, vmid: int) -> list[dict]:
        return self.client.get(f"nodes/{node}/storage/{storage}/content", content="backup", vmid=vmid)

    def _vzdump(self, node: str, **params) -> str:
        return self.client.post(f"nodes/{node}/vzdump", **params)

    def _extract_config(self, node: str, volid: str) -> str:
        return self.client.get(f"nodes/{node}/vzdump/extractconfig", volume=volid)

    def _restore(self, node: str, **params) -> str:
        return self.client.post(f"nodes/{node}/qemu", **params)

    def _delete_volume(self, node: str, storage: str, volid: str):
        # The volume id goes in the path as it is (storage:backup/...), as PVE's own web UI sends it.
        return self.client.delete(f"nodes/{node}/storage/{storage}/content/{volid}")

    def _task_log(self, node: str, upid: str) -> list[dict]:
        return self.client.get(f"nodes/{node}/tasks/{upid}/log", limit=1000)

    # --- reads -------------------------------------------------------------------------------------

    def storage(self, name: str) -> dict:
        """{"name", "shared", "nodes"}: a storage that holds backups and the nodes where it is available
        (from one /cluster/resources call per run)."""
        if self._storage_rows_cache is None:
            with step(f"cluster {self.cluster.get('name')}", "reading the storages"):
                self._storage_rows_cache = self._storage_rows()
        rows = [r for r in self._storage_rows_cache if r.get("storage") == name]
        obj = f"storage '{name}'"
        if not rows:
            known = sorted({r.get("storage") for r in self._storage_rows_cache if "backup" in _content(r)})
            raise TwinsiteError(f"no storage of that name on cluster {self.cluster.get('name')} "
                                f"(storages for backups: {', '.join(known) or 'none'})", obj=obj, action="lookup")
        if "backup" not in _content(rows[0]):
            raise TwinsiteError(f"it does not hold backups (content: {rows[0].get('content') or 'none'}); "
                                "name a storage with backup content", obj=obj, action="lookup")
        nodes = sorted(r["node"] for r in rows if r.get("status") == "available")
        if not nodes:
            raise TwinsiteError("it is not available on any node; check the nodes are online and the storage is enabled",
                                obj=obj, action="lookup")
        return {"name": name, "shared": bool(rows[0].get("shared")), "nodes": nodes}

    def list(self, vmid: int, storage: str, node: str | None = None) -> list[dict]:
        """The backups of VM ``vmid`` on ``storage``, newest first. A shared storage is asked once; one
        that is not shared is asked on every node where it is available (one call each), or on ``node``."""
        info = self.storage(storage)
        if node is not None and node not in info["nodes"]:
            raise TwinsiteError(f"it is not available on node {node} (available on: {', '.join(info['nodes'])})",
                                obj=f"storage '{storage}'", action="listing backups")
        nodes = [node or info["nodes"][0]] if info["shared"] else ([node] if node else info["nodes"])
        found = {}
        for where in nodes:
            with step(f"storage '{storage}' on node {where}", "listing backups"):
                items = self._backup_list(where, storage, vmid)
            for item in items or []:
                if item.get("content", "backup") != "backup" or str(item.get("vmid")) != str(vmid):
                    continue
                if item.get("subtype", "qemu") != "qemu":  # a container's backup: not a VM to restore
                    continue
                backup = _backup(item, storage, None if info["shared"] else where)
                found.setdefault((backup["node"], backup["volid"]), backup)
        return sorted(found.values(), key=lambda b: (b["ctime"], b["volid"]), reverse=True)

    def find(self, volid: str) -> tuple[dict | None, list[str]]:
        """(the backup of that volume id or None, the nodes looked on)."""
        storage, vmid = archive_parts(volid)
        info = self.storage(storage)
        found = [b for b in self.list(vmid, storage) if b["volid"] == volid]
        return (found[0] if found else None), (info["nodes"][:1] if info["shared"] else info["nodes"])

    def of_vm(self, vmid: int, storage: str, name: str) -> list[dict]:
        """The backups (newest first) of the VM that is called ``name`` now. A vmid is reused once
        its VM is deleted and vzdump names files by vmid only, so a backup counts only when the VM
        config inside it has the same name (one extractconfig call per backup, newest first, until
        the first one that does not match is older than one that does - usually one call)."""
        out = []
        for backup in self.list(vmid, storage):
            if self.config(backup).get("name") == name:
                out.append(backup)
            elif out:
                break  # older backups of the same vmid belong to an earlier VM too
        return out

    def config(self, backup: dict) -> dict:
        """The VM config inside a backup (one call; nothing is restored)."""
        node = backup["node"] or self.storage(backup["storage"])["nodes"][0]
        with step(f"backup '{backup['volid']}'", "reading the VM config in it"):
            return parse_config(self._extract_config(node, backup["volid"]))

    # --- writes ------------------------------------------------------------------------------------

    def backup_now(self, vm: dict, storage: str, options: dict, before: list[dict]) -> dict:
        """vzdump one VM to ``storage`` on the node it runs on, wait, and return the new backup.
        ``options``: mode, compress, notes (PVE's notes-template), protected. ``before``: the VM's
        backups listed before, to tell the new one apart without comparing clocks."""
        node, name = vm["node"], vm["name"]
        obj, action = f"VM '{name}'", f"backup to storage '{storage}'"
        params = {"vmid": vm["vmid"], "storage": storage, "mode": options["mode"], "compress": options["compress"]}
        if options.get("notes"):
            params["notes-template"] = options["notes"]
        if options.get("protected"):
            params["protected"] = 1
        with step(obj, action):
            upid = self._vzdump(node, **params)
        if not str(upid).startswith("UPID:"):
            # vzdump backs up the guests of the node it is sent to; for others it answers "OK" and does nothing.
            raise TwinsiteError(f"node {node} started no backup (it answered {upid!r}): the VM has moved to another node; "
                                "run again", obj=obj, action=action)
        self._wait(node, upid, obj, action)
        old = {(b["node"], b["volid"]) for b in before}
        after = self.list(vm["vmid"], storage, None if self.storage(storage)["shared"] else node)
        # A backup in the same second as an earlier one has its name, and replaces it: then the newest.
        made = [b for b in after if (b["node"], b["volid"]) not in old] or after
        if not made:
            raise TwinsiteError(f"vzdump ended OK but storage '{storage}' lists no backup of the VM", obj=obj, action=action)
        return made[0]

    def restore(self, backup: dict, node: str, vmid: int, overrides: dict, target_storage: str | None, unique: bool,
                force: bool = False) -> None:
        """Restore ``backup`` as the new VM ``vmid`` on ``node``, stopped. ``overrides``: config keys that
        replace the backup's (name, description, netN), as PVE merges them in a restore. ``force``: over
        the existing, stopped VM ``vmid`` (PVE deletes its disks first)."""
        obj, action = f"backup '{backup['volid']}' to VM '{overrides.get('name')}' (vmid {vmid}) on node {node}", "restore"
        params = {"vmid": vmid, "archive": backup["volid"], "unique": int(unique), **overrides, **({"force": 1} if force else {})}
        if target_storage:
            params["storage"] = target_storage
        with step(obj, action):
            upid = self._restore(node, **params)
        self._wait(node, upid, obj, action)

    def delete(self, backup: dict) -> None:
        node = backup["node"] or self.storage(backup["storage"])["nodes"][0]
        obj, action = f"backup '{backup['volid']}'", "removal"
        with step(obj, action):
            answer = self._delete_volume(node, backup["storage"], backup["volid"])
        if str(answer).startswith("UPID:"):
            self._wait(node, answer, obj, action)

    def _wait(self, node: str, upid: str, obj: str, action: str) -> None:
        """Wait for a task; on failure add the task log's ERROR lines to its exit status, which for a
        vzdump job is only "job errors"."""
        try:
            self.client.wait_task(node, upid, obj=obj, action=action, timeout=self.timeout)
        except TwinsiteError as exc:
            if exc.reason.startswith("still not done"):
                raise
            try:
                lines = [str(entry.get("t", "")) for entry in self._task_log(node, upid) or []]
            except TwinsiteError:
                lines = []
            detail = [re.sub(r"^ERROR: (Backup of VM \d+ failed - )?", "", line) for line in lines if line.startswith("ERROR:")]
            reason = exc.reason + (f" ({'; '.join(detail)})" if detail else "")
            raise TwinsiteError(reason, obj=obj, action=action) from None


def archive_parts(volid: str) -> tuple[str, int]:
    """(storage, vmid) of a VM backup's volume id; an error naming it when it is not one."""
    parsed = ARCHIVE.match(volid or "")
    if not parsed:
        raise TwinsiteError("it is not the volume id of a VM's backup (<storage>:backup/vzdump-qemu-<vmid>-<time>.vma[.zst], "
                            "or <storage>:backup/vm/<vmid>/<time> on a Proxmox Backup Server)",
                            obj=f"backup archive '{volid}'", action="lookup")
    return parsed.group("storage"), int(parsed.group("vmid") or parsed.group("pbs_vmid"))


def _content(row: dict) -> list[str]:
    return [c for c in str(row.get("content") or "").split(",") if c]


def _backup(item: dict, storage: str, node: str | None) -> dict:
    return {"volid": item["volid"], "storage": storage, "node": node, "vmid": int(item.get("vmid") or 0),
            "ctime": int(item.get("ctime") or 0), "time": iso(item.get("ctime") or 0), "size": int(item.get("size") or 0),
            "format": item.get("format"), "notes": item.get("notes") or "", "protected": bool(item.get("protected"))}


# --- twinsite.dc.vm_backup -----------------------------------------------------------------------------


class BackupService:
    """A backup of one VM no older than ``max_age_minutes`` on a storage (state present), or one backup
    volume gone (state absent). In check mode only reads are made."""

    def __init__(self, backups: ProxmoxBackups, check_mode: bool, now=None):
        self.backups, self.check_mode, self.now = backups, check_mode, now or time.time

    def converge(self, params: dict) -> dict:
        if params["state"] == "absent":
            return self._absent(params["archive"])
        vm = self._vm(params["vm"])
        storage = params["storage"]
        have = self.backups.of_vm(vm["vmid"], storage, vm["name"])
        max_age = params["max_age_minutes"]
        fresh = [b for b in have if max_age and self.now() - b["ctime"] <= max_age * 60]
        if fresh:
            return backup_result(False, fresh[0], vm, [])
        action = f"back up VM {vm['name']} (vmid {vm['vmid']}, node {vm['node']}) to storage '{storage}'"
        made = self._predicted(vm, storage, params) if self.check_mode else self.backups.backup_now(vm, storage, params, have)
        return backup_result(True, made, vm, [action])

    def _vm(self, name: str) -> dict:
        row = proxmox_vm(self.backups.client, name)
        return {"name": row["name"], "vmid": int(row["vmid"]), "node": row["node"]}

    def _predicted(self, vm: dict, storage: str, params: dict) -> dict:
        """The backup a run would make, named by this machine's clock (PVE names it by the node's)."""
        now = int(self.now())
        shared = self.backups.storage(storage)["shared"]
        notes = params.get("notes") or ""
        for key, value in (("guestname", vm["name"]), ("vmid", str(vm["vmid"])), ("node", vm["node"])):
            notes = notes.replace("{{" + key + "}}", value)
        name = f"vzdump-qemu-{vm['vmid']}-{time.strftime('%Y_%m_%d-%H_%M_%S', time.localtime(now))}.vma{COMPRESS_EXT[params['compress']]}"
        return {"volid": f"{storage}:backup/{name}", "storage": storage, "node": None if shared else vm["node"], "vmid": vm["vmid"],
                "ctime": now, "time": iso(now), "size": None, "format": "vma" + COMPRESS_EXT[params["compress"]],
                "notes": notes, "protected": bool(params.get("protected"))}

    def _absent(self, archive: str) -> dict:
        backup, _nodes = self.backups.find(archive)
        if backup is None:
            return {"changed": False, "archive": archive, "backup": {}, "backup_time": None, "backup_time_iso": None, "actions": []}
        if not self.check_mode:
            self.backups.delete(backup)
        return {"changed": True, "archive": archive, "backup": {}, "backup_time": backup["ctime"], "backup_time_iso": backup["time"],
                "actions": [f"delete backup {archive}" + (f" on node {backup['node']}" if backup["node"] else "")]}


def backup_result(changed: bool, backup: dict, vm: dict, actions: list[str]) -> dict:
    return {"changed": changed, "archive": backup["volid"], "backup_time": backup["ctime"], "backup_time_iso": backup["time"],
            "backup": backup, "vmid": vm["vmid"], "node": vm["node"], "actions": actions}


# --- twinsite.dc.vm_backup_restore ---------------------------------------------------------------------


class RestoreService:
    """The VM ``name`` restored from a backup (state present/started), or gone (absent). ``vms`` is a
    ``_vm_proxmox.ProxmoxVms`` on the same client. In check mode only reads are made: the result is
    the VM predicted from the config inside the backup."""

    def __init__(self, vms, backups: ProxmoxBackups, check_mode: bool):
        self.vms, self.backups, self.check_mode = vms, backups, check_mode

    def converge(self, params: dict) -> dict:
        current = self.vms.read(params["name"])
        if params["state"] == "absent":
            return self._absent(current)
        if current is not None and params.get("replace"):
            return self._replace(current, params)
        if current is not None:
            return self._existing(current, params["state"])
        return self._restore(params)

    # --- the VM is there ---

    def _existing(self, vm: dict, state: str, mark: dict | None = None) -> dict:
        """A VM of that name exists: it is not restored again. ``started`` powers it on."""
        actions = ["power on"] if state == "started" and vm.get("power") != "on" else []
        after = vm
        if actions:
            if self.check_mode:
                after = {**vm, "power": "on"}
            else:
                self.vms.power(vm, "on")
                after = self.vms.read_vmid(vm["vmid"]) or vm
        return restore_result(vm, after, actions, mark or restore_mark(vm.get("notes")))

    def _replace(self, vm: dict, params: dict) -> dict:
        """A failback: the backup's disks put under the existing VM (PVE's restore with force). The VM
        keeps its vmid, node, name, notes, NICs with their MACs and SMBIOS uuid: what the network and
        the guest know it by. Only a backup of this VM, or of a VM restored from a backup of it (the
        copy a failover ran), is taken; a second run with the same data's origin changes nothing."""
        label = f"VM '{vm['name']}' (vmid {vm['vmid']})"
        backup, _node = self._backup(params)
        config = self.backups.config(backup)
        origin = data_origin(config, backup)
        done = replaced_mark(vm.get("notes"))
        if done is not None and done["origin"] == origin:
            return self._existing(vm, params["state"], done)  # this copy's data is already in place
        if archive_parts(origin)[1] != int(vm["vmid"]):
            raise TwinsiteError(f"backup '{backup['volid']}' is of VM '{config.get('name')}' (vmid {archive_parts(backup['volid'])[1]}), "
                                "which is neither this VM nor restored from a backup of it: its disks do not go under this VM",
                                obj=label, action="replace")
        if backup["node"] and backup["node"] != vm["node"]:
            raise TwinsiteError(f"the backup is on node {backup['node']}'s storage '{backup['storage']}', which is not shared, and PVE "
                                f"restores over a VM on its own node only: migrate the VM to {backup['node']}, or keep backups on a "
                                "shared storage", obj=label, action=f"replace from backup '{backup['volid']}'")
        own = self.vms.client.vm_config(vm["node"], vm["vmid"])
        keep = {k: v for k, v in own.items() if k == "smbios1" or re.fullmatch(r"net\d+", k)}
        keep.update(name=vm["name"], description=with_replaced_mark(own.get("description"), backup["volid"], backup["ctime"], origin))
        # NICs the backup has beyond the VM's own are removed after the restore (a restore cannot delete keys).
        surplus = sorted(k for k in config if re.fullmatch(r"net\d+", k) and k not in keep)
        started = params["state"] == "started"
        actions = ((["power off"] if vm.get("power") == "on" else [])
                   + [f"replace the disks with backup {backup['volid']} of {backup['time']}"]
                   + ([f"remove NICs {', '.join(surplus)}"] if surplus else []) + (["power on"] if started else []))
        mark = {"archive": backup["volid"], "backup_time": backup["ctime"]}
        if self.check_mode:
            config_after = {k: v for k, v in {**config, **keep}.items() if k not in surplus}
            after = self.vms.view_config(vm["name"], vm["vmid"], vm["node"], config_after, power="on" if started else "off")
            return restore_result(vm, after, actions, mark)
        if vm.get("power") == "on":
            self.vms.power(vm, "off")
        try:
            self.backups.restore(backup, vm["node"], vm["vmid"], keep, params.get("target_storage"), unique=False, force=True)
        except TwinsiteError as exc:
            raise TwinsiteError(f"{exc.reason}; PVE deletes a VM's disks before it restores over it, so VM {vm['vmid']} may have none "
                                f"now: run again to replace them (the backup is still there)", obj=exc.obj, action=exc.action) from None
        if surplus:
            self.vms.delete_keys(vm, surplus, "removing the backup's extra NICs")
        if started:
            self.vms.power(self._read_restored(vm["vmid"], vm["name"]), "on")
        return restore_result(vm, self._read_restored(vm["vmid"], vm["name"]), actions, mark)

    def _absent(self, vm: dict | None) -> dict:
        if vm is None:
            return restore_result(None, None, [], None)
        mark = restore_mark(vm.get("notes"))
        if mark is None:
            # A mistyped name must not delete a production VM: only what a restore made is removed here.
            raise TwinsiteError("its notes carry no twinsite-restore mark, so it was not made by twinsite.dc.vm_backup_restore "
                                "and is not removed by it; use twinsite.dc.vm with state: absent if it must go",
                                obj=f"VM '{vm['name']}' (vmid {vm['vmid']})", action="removal")
        actions = (["power off"] if vm.get("power") == "on" else []) + ["delete"]
        if not self.check_mode:
            if vm.get("power") == "on":
                self.vms.power(vm, "off")
            self.vms.delete(vm)
        return restore_result(vm, None, actions, mark)

    # --- restore ---

    def _restore(self, params: dict) -> dict:
        name, networks = params["name"], params.get("networks")
        backup, source_node = self._backup(params)
        node = params.get("node") or backup["node"] or source_node or self.backups.storage(backup["storage"])["nodes"][0]
        if backup["node"] and node != backup["node"]:
            raise TwinsiteError(f"it is on node {backup['node']}'s storage '{backup['storage']}', which is not shared: restore it on "
                                f"node {backup['node']} (leave node unset), or keep backups on a shared storage",
                                obj=f"backup '{backup['volid']}'", action=f"restore on node {node}")
        config = self.backups.config(backup)
        if params.get("replace"):
            # A failback onto a primary whose VM is gone: the VM comes back as itself. It gets the vmid
            # it had (the origin of the copy's data) unless another VM holds it now, and a replace mark:
            # no restore mark, so state=absent refuses it as any production VM, and a rerun changes nothing.
            origin = data_origin(config, backup)
            had = archive_parts(origin)[1]
            # The vmid it had is of the module's choosing: another VM that takes it meanwhile makes it choose again.
            free = params.get("vmid") is None and self.vms.read_vmid(had) is None
            vmid = had if free else self._vmid(params.get("vmid"), name)
            notes = with_replaced_mark(MARK_LINE.sub("", config.get("description") or "").rstrip(), backup["volid"], backup["ctime"], origin)
        else:
            vmid = self._vmid(params.get("vmid"), name)
            notes = with_mark(config.get("description"), backup["volid"], backup["ctime"])
        overrides = {"name": name, "description": notes}
        restored = self.vms.view_config(name, vmid, node, {**config, **overrides})
        if networks is not None:
            # The NICs the backup has are put on the model's networks (new MACs unless unique is off) in the
            # restore itself, so the VM never starts on a production network.
            nics = self.vms.nic_config(restored, networks, action="restore", keep_macs=not params["unique"])
            nics.pop("delete", None)
            overrides.update(nics)
            restored = self.vms.view_config(name, vmid, node, {**config, **overrides})
        actions = [f"restore backup {backup['volid']} of {backup['time']} as VM {name} (vmid {vmid}) on node {node}"]
        # NICs beyond the networks asked for are removed after the restore (a restore cannot delete keys).
        extra = networks is not None and restored.get("networks") != list(networks)
        if extra:
            actions.append(f"reconfigure networks={list(networks)}")
        if params["state"] == "started":
            actions.append("power on")
        if self.check_mode:
            after = {**restored, **({"networks": list(networks)} if extra else {}),
                     "power": "on" if params["state"] == "started" else "off"}
            return restore_result(None, after, actions, {"archive": backup["volid"], "backup_time": backup["ctime"]})
        chosen = self._restore_to_a_free_vmid(backup, node, vmid, overrides, params)
        if chosen != vmid:
            actions[0] = actions[0].replace(f"(vmid {vmid})", f"(vmid {chosen})")
            vmid = chosen
        vm = self._read_restored(vmid, name)
        if extra and vm.get("networks") != list(networks):
            self.vms.reconfigure(vm, {"networks": list(networks)})
        if params["state"] == "started":
            self.vms.power(vm, "on")
        after = self._read_restored(vmid, name)
        return restore_result(None, after, actions, {"archive": backup["volid"], "backup_time": backup["ctime"]})

    def _backup(self, params: dict) -> tuple[dict, str | None]:
        """(the backup to restore, the node of the backed-up VM if it still exists)."""
        if params.get("archive"):
            backup, nodes = self.backups.find(params["archive"])
            if backup is None:
                where = f"node{'s' if len(nodes) > 1 else ''} {', '.join(nodes)}"
                raise TwinsiteError(f"no such backup on storage '{archive_parts(params['archive'])[0]}' (looked on {where}); "
                                    "list the backups with twinsite.dc.vm_backup, or leave archive unset for the newest",
                                    obj=f"backup archive '{params['archive']}'", action="restore")
            return backup, None
        if params.get("source"):
            row = proxmox_vm(self.backups.client, params["source"])
            vmid, label, node = int(row["vmid"]), f"VM '{params['source']}' (vmid {row['vmid']})", row["node"]
            # Only backups of this VM, not of an earlier VM that had the same vmid.
            backups = self.backups.of_vm(vmid, params["storage"], params["source"])
        else:
            vmid, label, node = int(params["source_vmid"]), f"VM {params['source_vmid']}", None
            backups = self.backups.list(vmid, params["storage"])
        if not backups:
            raise TwinsiteError(f"it has no backup on storage '{params['storage']}'; make one with twinsite.dc.vm_backup",
                                obj=label, action="restore")
        return backups[0], node

    def _vmid(self, wanted: int | None, name: str) -> int:
        if wanted is None:
            with step(f"cluster {self.backups.cluster.get('name')}", "finding a free vmid"):
                return self.backups.client.next_vmid()
        other = self.vms.read_vmid(wanted)
        if other is not None:
            raise TwinsiteError(f"vmid {wanted} is taken by {'template' if other.get('template') else 'VM'} '{other['name']}'; "
                                "give another vmid, or none for the next free one", obj=f"VM '{name}'", action="restore")
        return wanted

    def _restore_to_a_free_vmid(self, backup: dict, node: str, vmid: int, overrides: dict, params: dict) -> int:
        """Restore, and return the vmid restored to. When another VM took the vmid after it was chosen
        (VMID_TAKEN), a vmid of the module's choosing is chosen again (three tries in all); a vmid the
        caller gave is an error. Either way the VM that holds it is left alone."""
        for attempt in range(3):
            try:
                self._restore_or_clean(backup, node, vmid, overrides, params)
                return vmid
            except TwinsiteError as exc:
                if not VMID_TAKEN.search(exc.reason):
                    raise
                if params.get("vmid") is not None or attempt == 2:
                    raise TwinsiteError(f"{exc.reason}: another VM took vmid {vmid} after it was checked free; that VM was left "
                                        "alone, nothing was restored", obj=exc.obj, action=exc.action) from None
                vmid = self._vmid(None, overrides["name"])
        raise AssertionError("unreachable")

    def _restore_or_clean(self, backup: dict, node: str, vmid: int, overrides: dict, params: dict) -> None:
        """Restore; when it fails, remove what PVE leaves of the new VM (its config: "VM <vmid> state is
        NOT cleaned up"), so a failed run leaves nothing and the next one starts afresh. A vmid another
        VM took in the meantime (VMID_TAKEN) is that VM's: nothing is removed."""
        try:
            self.backups.restore(backup, node, vmid, overrides, params.get("target_storage"), params["unique"])
        except TwinsiteError as exc:
            if VMID_TAKEN.search(exc.reason):
                raise
            left = None
            try:
                # The vmid was free before the restore: whatever holds it now is what the restore left.
                left = self.vms.read_vmid(vmid)
                if left is not None:
                    self.vms.delete(left)
            except TwinsiteError as cleanup:
                raise TwinsiteError(f"{exc.reason}; VM {vmid}, which PVE leaves after a failed restore, could not be removed "
                                    f"({cleanup}): remove it by hand", obj=exc.obj, action=exc.action) from None
            reason = f"{exc.reason}; what PVE left of VM {vmid} was removed" if left is not None else exc.reason
            raise TwinsiteError(reason, obj=exc.obj, action=exc.action) from None

    def _read_restored(self, vmid: int, name: str) -> dict:
        vm = self.vms.read_vmid(vmid)
        if vm is None:
            raise TwinsiteError(f"the restore task ended but VM {vmid} is not in the cluster", obj=f"VM '{name}'", action="restore")
        return vm


def restore_result(before: dict | None, after: dict | None, actions: list[str], mark: dict | None) -> dict:
    """The module's result: the VM (as vm_info shows it), which backup it came from, what was done."""
    mark = mark or {}
    vm = after or before or {}
    return {"changed": bool(actions), "vm": public(after), "vmid": vm.get("vmid"), "node": vm.get("node"),
            "archive": mark.get("archive"), "backup_time": mark.get("backup_time"), "backup_time_iso": iso(mark.get("backup_time")),
            "actions": actions, "diff": {"before": public(before), "after": public(after)}}
