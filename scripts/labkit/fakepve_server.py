"""Serve fakepve's Proxmox VE API with the lab's guests, nodes and cluster name until SIGTERM.

Started by ``fakepve.up`` as ``python -m labkit.fakepve_server GUESTS.json ...``; not meant to be
imported. Run it with ``-m``, never as ``python scripts/labkit/fakepve_server.py``: a script's own
directory goes first on ``sys.path``, where ``labkit/fakepve.py`` would shadow the ``fakepve``
package this file imports.

Why not fakepve's own ``fakepve`` command? It takes our certificate (``--cert``/``--key``), but it
only reads ``guests`` from the file: the cluster is always called ``fakecluster`` and a node exists
only if a guest lives on it, so a node of the model with no VM yet (``pve2``) would be missing and a
clone targeting it would fail with "no such cluster node". This launcher builds the same FakePve
through fakepve's public Python API and adds the two missing pieces.

The guests file is fakepve's own format, ``{"guests": [{"vmid", "name", "node", "type", "status",
"template", "config": {...}}]}``, plus two top-level keys fakepve's command ignores: ``cluster``
(the name /cluster/status reports) and ``nodes`` (every node, in order). The login comes from the
environment (``PVE_USER``/``PVE_PASS``, the variables fakepve's command reads), not argv, so the
password does not show in ``ps``.

fakepve answers ``/cluster/backup`` (vzdump backup jobs) from the API schema and stores nothing, so
``LabPve`` adds stateful routes for it, through fakepve's own mechanism (``_routes_<area>`` methods
of the FakePve class, registered in front of the schema's catch-all after the schema's parameter
and permission checks): jobs are kept in memory with PVE's shapes and errors (see ``BackupJobs``).
Likewise fakepve's ``POST /nodes/{node}/vzdump`` makes no backup and its VM create refuses an
``archive``: ``VzdumpBackups`` makes backup volumes that storage content lists, and restores them
as new VMs (DR drills restore VMs from their backups). ``SdnVnets`` keeps SDN vnets (a DR drill's
isolated network on Proxmox), where fakepve answers them from the schema and keeps nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
import uuid

# --- vzdump backup jobs (/cluster/backup), as pve-manager's PVE/API2/Backup.pm keeps them ----------

# What a PUT's `delete` may name: the optional job options (PVE::VZDump's option_exists).
BACKUP_OPTIONS = ("all", "bwlimit", "comment", "compress", "dow", "dumpdir", "enabled", "exclude", "exclude-path", "fleecing",
                  "ionice", "lockwait", "mailnotification", "mailto", "mode", "node", "notes-template", "notification-mode",
                  "pbs-change-detection-mode", "performance", "pigz", "pool", "protected", "prune-backups", "quiet", "remove",
                  "repeat-missed", "schedule", "script", "starttime", "stdexcludes", "stop", "stopwait", "storage", "tmpdir",
                  "vmid", "zstd")
ALL_DAYS = "mon,tue,wed,thu,fri,sat,sun"


class BackupJobs:
    """Mixin of FakePve: vzdump jobs under /cluster/backup, kept in ``self.backup_jobs`` (id -> job, in
    creation order, as jobs.cfg keeps them). The schema's checks (types, formats, enums) run first;
    the handlers add PVE's own: one of vmid/all/pool, schedule or starttime, the id taken or missing.
    Jobs never run: there is no `next-run` and no backup is ever made."""

    def _routes_backup_jobs(self):
        return [("GET", "/cluster/backup", self._backup_index), ("POST", "/cluster/backup", self._backup_create),
                ("GET", "/cluster/backup/{id}", self._backup_read), ("PUT", "/cluster/backup/{id}", self._backup_update),
                ("DELETE", "/cluster/backup/{id}", self._backup_delete)]

    @property
    def backup_jobs(self) -> dict:
        return self.__dict__.setdefault("_backup_jobs", {})

    async def _backup_index(self, values, user):
        return [dict(job) for job in self.backup_jobs.values()]

    async def _backup_read(self, values, user):
        return dict(self._backup_job(values["id"]))

    async def _backup_create(self, values, user):
        from fakepve.routing import die

        job = {k: v for k, v in values.items() if v is not None}
        job_id = job.pop("id", None) or f"backup-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:4]}"
        if job_id in self.backup_jobs:
            raise die(f"Job '{job_id}' already exists")
        job.setdefault("enabled", 1)
        _backup_schedule(job)
        _backup_selection(job)
        _backup_prune(job)
        self.backup_jobs[job_id] = {"id": job_id, "type": "vzdump", **job}

    async def _backup_update(self, values, user):
        from fakepve.routing import die, param_error, split_list

        job_id = values.pop("id")
        if job_id not in self.backup_jobs:
            raise die("no such vzdump job")
        delete = split_list(values.pop("delete", None))
        values = {k: v for k, v in values.items() if v is not None}
        if not values and not delete:
            raise die("no options specified")
        job = dict(self.backup_jobs[job_id])
        for key in delete:
            if key not in BACKUP_OPTIONS:
                raise param_error(delete=f"unknown option '{key}'")
            job.pop(key, None)
        job.update(values)
        if "starttime" in values:
            job.pop("schedule", None)
        _backup_schedule(job)
        # The selection given wins over the one the job had (Backup.pm's update_job).
        if "vmid" in values:
            for key in ("all", "exclude", "pool"):
                job.pop(key, None)
        elif values.get("all"):
            job.pop("vmid", None)
            job.pop("pool", None)
        elif "pool" in values:
            for key in ("vmid", "all", "exclude"):
                job.pop(key, None)
        _backup_selection(job)
        _backup_prune(job)
        self.backup_jobs[job_id] = job

    async def _backup_delete(self, values, user):
        self._backup_job(values["id"])
        del self.backup_jobs[values["id"]]

    def _backup_job(self, job_id: str) -> dict:
        from fakepve.routing import param_error

        if job_id not in self.backup_jobs:
            raise param_error(id=f"No such job '{job_id}'")
        return self.backup_jobs[job_id]


def _backup_schedule(job: dict) -> None:
    """PVE 7+ keeps a calendar event: starttime/dow become `schedule` (Backup.pm's convert_to_schedule)."""
    from fakepve.routing import param_error

    if job.get("starttime") and job.get("schedule"):
        raise param_error(starttime="'starttime' and 'schedule' cannot both be set")
    if job.get("starttime"):
        dow = job.pop("dow", None)
        start = job.pop("starttime")
        job["schedule"] = start if not dow or dow == ALL_DAYS else f"{dow} {start}"
    if not job.get("schedule"):
        raise param_error(schedule="neither 'starttime' nor 'schedule' were set")


PRUNE_KEYS = ("keep-all", "keep-last", "keep-hourly", "keep-daily", "keep-weekly", "keep-monthly", "keep-yearly")


def _backup_prune(job: dict) -> None:
    """The `prune-backups` property string (PVE::JSONSchema's prune-backups format, which the
    schema data of fakepve does not check): known keys, non-negative integers, keep-all alone."""
    from fakepve.routing import param_error

    text = job.get("prune-backups")
    if text is None:
        return
    seen = {}
    for part in (p for p in str(text).split(",") if p.strip()):
        key, eq, value = part.partition("=")
        if not eq or key not in PRUNE_KEYS:
            raise param_error(**{"prune-backups": f"invalid format - invalid key in comma-separated list property: {key}"})
        if not value.isdigit():
            raise param_error(**{f"prune-backups.{key}": f"type check ('integer') failed - got '{value}'"})
        seen[key] = int(value)
    if seen.get("keep-all") and len(seen) > 1:
        raise param_error(**{"prune-backups": "keep-all cannot be set together with other options."})


def _backup_selection(job: dict) -> None:
    """PVE::VZDump::verify_vzdump_parameters: which guests, said one way only."""
    from fakepve.routing import param_error

    if job.get("vmid"):
        for key in ("all", "exclude", "pool"):
            if job.get(key):
                raise param_error(**{key: "option conflicts with option 'vmid'"})
    elif not job.get("all") and not job.get("pool"):
        raise param_error(vmid="property is missing")


# --- vzdump backups and their restores, as PVE makes, lists and restores them -------------------------
# pve-manager PVE/API2/VZDump.pm + PVE/VZDump.pm (the backup), pve-storage Plugin.pm (the listing),
# qemu-server PVE/API2/Qemu.pm create_vm with `archive` + QemuServer.pm restore_* (the restore).

# vzdump options only root@pam may set.
VZDUMP_ROOT_ONLY = ("maxfiles", "prune-backups", "tmpdir", "dumpdir", "script", "bwlimit", "ionice")
# The archive's extension after .vma per `compress` (PVE::VZDump::compressor_info; 1 is lzo).
VZDUMP_COMPRESS = {"0": "", "1": ".lzo", "gzip": ".gz", "lzo": ".lzo", "zstd": ".zst"}
# Config keys a backup leaves out, or a restore drops (restore_update_config_line), besides unusedN.
RESTORE_DROP = ("lock", "parent", "snapshots", "snaptime", "snapstate", "vmstate", "runningcpu", "runningmachine")
# A drive key of a QEMU config (fakepve's qemu.DRIVE_KEY).
DRIVE = re.compile(r"^(ide[0-3]|sata[0-5]|scsi(?:[0-9]|[12][0-9]|30)|virtio(?:[0-9]|1[0-5])|efidisk0|tpmstate0)$")


class VzdumpBackups:
    """Mixin of FakePve: vzdump of QEMU guests to a storage with ``backup`` content, and restores.

    A backup is a volume ``backup/vzdump-qemu-<vmid>-<local time>.vma[.zst|.gz|.lzo]`` in the
    storage's ``volumes``, so fakepve's storage content routes list, show and delete it; it also
    keeps the guest's config as it was (``config``, what ``vzdump/extractconfig`` prints and a
    restore rebuilds) and the node that wrote it (``node``): on a storage that is not ``shared``
    (``local``) every node has its own copy of the directory, so another node neither lists nor
    restores it, as on PVE. Its size is a stand-in: a tenth of the guest's disks.

    Not modelled: pruning after a backup (``remove`` with ``prune-backups``), the node-wide vzdump
    lock, container backups, PBS and ``dumpdir``. Tasks are fakepve's: at ``time_scale`` 0 they have
    ended when the POST answers, otherwise a backup takes a PVE second per GiB of disk."""

    def _routes_vzdump(self):
        return [("POST", "/nodes/{node}/vzdump", self._vzdump),
                ("GET", "/nodes/{node}/vzdump/extractconfig", self._vzdump_extractconfig)]

    # --- backup ------------------------------------------------------------------------------------

    async def _vzdump(self, values, user):
        from fakepve.routing import param_error

        v = {k: x for k, x in values.items() if x is not None}
        node = v["node"]
        if v.get("stdout"):
            raise param_error(stdout="option is only allowed on the command line interface.")
        for key in VZDUMP_ROOT_ONLY:
            if key in v and user != "root@pam":
                raise param_error(**{key: "Only root may set this option."})
        _backup_prune(v)
        # verify_vzdump_parameters: the guests are said one way only; exclude without pool means all.
        for key in ("all", "exclude", "pool"):
            if v.get(key) and v.get("vmid"):
                raise param_error(**{key: "option conflicts with option 'vmid'"})
        if v.get("exclude") and not v.get("pool"):
            v["all"] = 1
        if not (v.get("all") or v.get("stop") or v.get("pool") or v.get("vmid")):
            raise param_error(vmid="property is missing")
        local, skipped = self._vzdump_guests(v, node)
        # Guests on other nodes are for a vzdump there: this one ends at once, with no task.
        if not local and not v.get("all"):
            return "OK"
        storage = v.get("storage") or (None if v.get("dumpdir") else "local")
        if storage:
            self.require(user, "/storage/" + storage, "Datastore.AllocateSpace")
        options = " ".join(f"--{k} {x}" for k, x in sorted(v.items()) if k not in ("node", "vmid", "all", "pool"))
        guests = str(v["vmid"]).replace(",", " ") if v.get("vmid") else ("--pool " + v["pool"] if v.get("pool") else "--all 1")
        first = f"INFO: starting new backup job: vzdump {guests} {options}".rstrip()

        async def body(log):
            if skipped:
                log.append("INFO: skip external VMs: " + ", ".join(map(str, sorted(skipped))))
            self._vzdump_target(v, storage, node)
            errors = 0
            for vmid in local:
                # exec_backup: without VM.Backup a guest is skipped when backing up all, else the job dies.
                if self.guest(vmid) is not None and not self.allowed(user, f"/vms/{vmid}", "VM.Backup"):
                    if v.get("all"):
                        continue
                    raise _task_error(f"Permission check failed (/vms/{vmid}, VM.Backup)")
                try:
                    volid = await self._vzdump_guest(vmid, v, storage, node, log)
                except _GuestBackupError as exc:
                    errors += 1
                    log.append(f"ERROR: Backup of VM {vmid} failed - {exc}")
                else:
                    log.append(f"INFO: Finished Backup of VM {vmid}: {volid}")
            if errors:
                log.append("INFO: Backup job finished with errors")
                raise _task_error("job errors")
            return "INFO: Backup job finished successfully"

        # The task's id is the guest's when there is one guest (VZDump.pm's fork_worker).
        return await self._logged_task(node, "vzdump", local[0] if len(local) == 1 else "", user, body, first)

    async def _logged_task(self, node, ttype, tid, user, body, first_line):
        """fakepve's task(), with ``body(log)`` appending lines to the task's own log as it goes. The
        body finds its record by the identity of the first log line, which task() copies as is."""

        async def run():
            record = next(r for r in reversed(self.tasklog) if r["log"] and r["log"][0] is first_line)
            return await body(record["log"])

        return await self.task(node, ttype, tid, user, run, lock=False, log=[first_line])

    def _vzdump_guests(self, v, node):
        """(guests to back up here, guests skipped because they live on another node), by vmid.
        Ids of no guest are kept here: the job fails on them visibly, as PVE's does."""
        from fakepve.routing import split_list

        if v.get("vmid"):
            wanted = sorted({int(x) for x in split_list(v["vmid"])})
        elif v.get("pool"):
            wanted = sorted(self.pools.get(v["pool"], set()))
        else:
            excluded = {int(x) for x in split_list(v.get("exclude"))}
            wanted = sorted(g.vmid for g in self._guests() if g.vmid not in excluded)
        local, skipped = [], []
        for vmid in wanted:
            guest = self.guest(vmid)
            (skipped if guest is not None and guest.node != node else local).append(vmid)
        return local, skipped

    def _vzdump_target(self, v, storage, node):
        """PVE::VZDump->new's checks of where the backup goes (they fail the task, not the request)."""
        from fakepve.model import PveError

        if storage and v.get("dumpdir"):
            raise _task_error("cannot use options 'storage' and 'dumpdir' at the same time")
        if not storage:
            raise _task_error(f"dumpdir '{v['dumpdir']}' does not exist")
        try:
            self._active_store(storage, node)
        except PveError as exc:  # "storage 'x' does not exist", "... is not available on node 'y'"
            raise _task_error(f"could not activate storage '{storage}': {getattr(exc, 'message', exc)}") from None
        if "backup" not in self.storages[storage].get("content", "").split(","):
            raise _task_error(f"could not get storage information for '{storage}': "
                              f"can't use storage '{storage}' for backups - wrong content type")

    async def _vzdump_guest(self, vmid, v, storage, node, log):
        """One guest's backup (VZDump.pm's exec_backup_task): returns the new volume's id."""
        vm = self.vm(vmid)
        if vm is None:
            if self.guest(vmid) is not None:
                raise _GuestBackupError("the lab's fakepve backs up QEMU guests only")
            raise _GuestBackupError(f"unable to find VM '{vmid}'")
        if v.get("mode") == "stop" and vm.ha_state == "started":
            raise _GuestBackupError("Cannot execute a backup with stop mode on a HA managed and enabled Service. "
                                    "Use snapshot mode or disable the Service.")
        if vm.lock:
            raise _GuestBackupError(f"VM is locked ({vm.lock})")
        log.append(f"INFO: Starting Backup of VM {vmid} (qemu)")
        config = {k: x for k, x in vm.config.items() if k not in RESTORE_DROP and not k.startswith("unused")}
        disks = sum(self._drive_bytes(value) for key, value in config.items() if DRIVE.match(key))
        now = time.time()
        ext = ".vma" + VZDUMP_COMPRESS[str(v.get("compress", "0"))]
        volname = f"backup/vzdump-qemu-{vmid}-{time.strftime('%Y_%m_%d-%H_%M_%S', time.localtime(now))}{ext}"
        size = 1024 + disks // 10
        store = self.storages[storage]
        vm.lock = "backup"
        vm.config["lock"] = "backup"
        try:
            await self.pause(max(1, disks // 1024**3))
        finally:
            vm.lock = None
            vm.config.pop("lock", None)
        if "avail" in store:
            if size > store["avail"]:
                raise _GuestBackupError("vma_queue_write: write error - No space left on device")
            store["avail"] -= size
        old = store.setdefault("volumes", {}).get(volname)
        if old and "avail" in store:  # the same second as an earlier backup: the file is written over
            store["avail"] += int(old.get("size") or 0)
        vol = {"content": "backup", "format": ext[1:], "subtype": "qemu", "size": size, "vmid": vmid,
               "ctime": int(now), "node": node, "config": config}
        if v.get("notes-template"):
            vol["notes"] = self._vzdump_notes(v["notes-template"], vm)
        if v.get("protected"):
            vol["protected"] = True
        store["volumes"][volname] = vol
        log.append(f"INFO: creating vzdump archive '{self._volume_path(storage, volname, 'backup')}'")
        return f"{storage}:{volname}"

    def _vzdump_notes(self, template, vm):
        """The notes-template with its variables ({{guestname}} ...) filled in; \\n is a new line."""
        values = {"guestname": vm.name, "vmid": str(vm.vmid), "node": vm.node, "cluster": self.cluster_name}
        text = re.sub(r"\{\{(cluster|guestname|node|vmid)\}\}", lambda m: values[m.group(1)], template)
        return text.replace("\\n", "\n").replace("\\\\", "\\")

    @staticmethod
    def _drive_bytes(value):
        found = re.search(r"(?:^|,)size=(\d+(?:\.\d+)?)([KMGT]?)", str(value))
        if not found or "media=cdrom" in str(value):
            return 0
        return int(float(found.group(1)) * {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}[found.group(2)])

    # --- the backups on a storage ----------------------------------------------------------------

    def _backup_on(self, sid, volname, node):
        """The backup volume as ``node`` sees it, or None (none, or on another node's local storage)."""
        store = self.storages.get(sid) or {}
        vol = store.get("volumes", {}).get(volname)
        if vol is None or vol.get("content") != "backup":
            return None
        if not store.get("shared") and vol.get("node") not in (None, node):
            return None
        return vol

    def _item(self, name, volname, vol):
        item = super()._item(name, volname, vol)
        if vol.get("content") == "backup":
            item["subtype"] = vol.get("subtype", "unknown")
        return item

    async def _content_list(self, v, user):
        items = await super()._content_list(v, user)
        out = []
        for item in items:
            sid, _, volname = item["volid"].partition(":")
            if item["content"] != "backup" or self._backup_on(sid, volname, v["node"]) is not None:
                out.append(item)
        return out

    async def _content_info(self, v, user):
        from fakepve.routing import die

        sid, volname = self._foreign_backup(v)
        if sid is not None:
            raise die(f"volume_size_info on '{sid}:{volname}' failed - no format")
        return await super()._content_info(v, user)

    async def _content_delete(self, v, user):
        sid, volname = self._foreign_backup(v)
        if sid is None:
            return await super()._content_delete(v, user)
        # Another node's backup: this node has no such file, which PVE "removes" without complaint.
        self.require(user, "/storage/" + sid, "Datastore.AllocateSpace")

        async def body():
            return f"Removed volume '{sid}:{volname}'"

        return await self.task(v["node"], "imgdel", f"{sid}:{volname}", user, body, lock=False)

    def _foreign_backup(self, v):
        """(storage, volname) when the request names a backup that another node wrote to a storage
        that is not shared, which this node does not have; (None, None) otherwise."""
        volume = v["volume"]
        sid, volname = volume.split(":", 1) if ":" in volume else (v.get("storage"), volume)
        vol = (self.storages.get(sid) or {}).get("volumes", {}).get(volname)
        if vol is None or vol.get("content") != "backup" or self._backup_on(sid, volname, v["node"]) is not None:
            return None, None
        return sid, volname

    async def _vzdump_extractconfig(self, values, user):
        """The guest config inside the archive, as `vma config` prints it (with its #qmdump#map lines)."""
        from fakepve.routing import die

        volid = values["volume"]
        sid, volname, vol = self._archive(volid, user, values["node"])
        if vol is None:
            path = self._volume_path(sid, volname, "backup")
            raise die(f"Failed to extract config from VMA archive: zstd: {path}: No such file or directory (os error 2)")
        return _config_text(vol["config"])

    def _archive(self, volid, user, node):
        """(storage, volname, backup volume or None) of an archive id, after PVE's checks of it
        (check_volume_access with content type 'backup')."""
        from fakepve.routing import die

        if ":" not in volid:
            if user != "root@pam":
                raise die("Only root can pass arbitrary filesystem paths.")
            raise die(f"can't find file '{volid}'")
        sid, volname = volid.split(":", 1)
        store = self._store(sid)
        vtype, owner, _fmt = self._parse_volname(store, volname)
        if vtype != "backup":
            raise die(f"unable to use volume {volid} - content type needs to be 'backup'")
        self._check_access(user, sid, vtype, owner, volid)
        return sid, volname, self._backup_on(sid, volname, node)

    # --- restore: POST /nodes/{node}/qemu with archive ----------------------------------------------

    async def _qm_create(self, v, user):
        if not v.get("archive"):
            return await super()._qm_create(v, user)
        return await self._qm_restore(v, user)

    async def _qm_restore(self, v, user):
        from fakepve.model import FakeVm, PveError, TaskError
        from fakepve.qemu import CREATE_ONLY, with_mac
        from fakepve.routing import die, param_error

        node, vmid, archive = v["node"], int(v["vmid"]), v["archive"]
        pool, storage, force = v.get("pool"), v.get("storage"), v.get("force")
        self.need_quorum()
        self._qm_check_pool(pool)
        if storage:
            self.require(user, "/storage/" + storage, "Datastore.AllocateSpace")
        if v.get("ha-managed"):
            self.require(user, "/", "Sys.Console")
        if v.get("start"):
            self._qm_perm(user, vmid, pool, "VM.PowerMgmt")
        existing = self.guest(vmid)
        if not (self.allowed(user, f"/vms/{vmid}", "VM.Allocate") or (pool and self.allowed(user, "/pool/" + pool, "VM.Allocate"))
                or (force and existing is not None and self.allowed(user, f"/vms/{vmid}", "VM.Backup"))):
            raise PveError(403, "Permission check failed")
        params = {k: x for k, x in v.items() if k not in CREATE_ONLY and x is not None}
        for key in sorted(params):
            if DRIVE.match(key):
                raise param_error(**{key: "option conflicts with option 'archive'"})
        if archive == "-":
            raise die("pipe requires cli environment")
        sid, volname, vol = self._archive(archive, user, node)
        if vol is None:
            raise die(f"can't find file '{archive}'")
        for key in params:
            if re.fullmatch(r"net\d+", key):
                params[key] = with_mac(params[key])
        emsg = f"unable to restore VM {vmid} -"
        if existing is not None:
            kind = "VM" if self.vm(vmid) is not None else "CT"
            if not force or kind == "CT" or existing.node != node:
                raise PveError(500, f"{emsg} {kind} {vmid} already exists on node '{existing.node}'")
            if existing.lock:
                raise PveError(500, f"{emsg} VM is locked ({existing.lock})")
            vm = existing
        else:
            vm = FakeVm(vmid, f"VM {vmid}", node=node)
            vm.config = {}
            self.vms.append(vm)
        self._qm_lock(vm, "create")
        made = []

        async def body(log):
            try:
                if v.get("live-restore"):
                    raise _task_error("live-restore is only compatible with backup images from a Proxmox Backup Server")
                if existing is not None:
                    self._qm_check_protection(vm, emsg)
                    if vm.status == "running":
                        raise _task_error(f"{emsg} vm is running")
                    for _key, volume in self._restore_drives(vm.config):
                        self._qm_free(volume)
                    vm.config, vm.snapshots, vm.pending, vm.template = {"lock": "create"}, {}, {}, False
                conf = self._restored_config(vol["config"], vmid, storage, v.get("unique"), made)
                conf.update(params)
                await self.pause(max(1, sum(self._drive_bytes(x) for k, x in conf.items() if DRIVE.match(k)) // 1024**3))
            except (PveError, TaskError) as exc:
                # PVE frees the disks it made and leaves the VM's config, unlocked: "error before or
                # during data restore, some or all disks were not completely restored. VM <id> state is
                # NOT cleaned up."
                for volid in made:
                    self._qm_free(volid)
                self._qm_lock(vm, None)
                log.append(f"error before or during data restore, some or all disks were not completely restored. "
                           f"VM {vmid} state is NOT cleaned up.")
                raise _task_error(getattr(exc, "message", None) or str(exc)) from None
            vm.config = conf
            vm.name = conf.get("name") or f"VM {vmid}"
            if conf.get("template"):  # a template's backup comes back as a template
                vm.template = True
                for key, volume in self._restore_drives(conf):
                    conf[key] = conf[key].replace(volume, self._qm_rename_volume(volume), 1)
            self._qm_lock(vm, None)
            if pool:
                self._pool_join(pool, vmid)
            if v.get("ha-managed"):
                vm.ha_state = "started" if v.get("start") else "stopped"
            if v.get("start") and not vm.template:
                vm.status = vm.qmpstatus = "running"
                vm.started_at = time.time()
            return None

        first = f"restore vma archive: {self._volume_path(sid, volname, 'backup')}"
        return await self._logged_task(node, "qmrestore", vmid, user, body, first)

    def _restored_config(self, backup, vmid, storage, unique, made):
        """The config a restore writes: the backup's, each disk on a new volume of ``storage`` (or of the
        storage it was on), without lock/snapshot/unused lines; new MACs and SMBIOS uuid if ``unique``,
        always a new vmgenid (restore_update_config_line)."""
        from fakepve.lxc import format_size, split_props
        from fakepve.qemu import join_drive, split_drive, volume_ref, with_mac

        conf = {}
        for key in sorted(backup):
            value = backup[key]
            if key in RESTORE_DROP or key.startswith("unused"):
                continue
            if DRIVE.match(key):
                volume, props = split_drive(value)
                sid = volume_ref(volume)[0]
                if sid is None or props.get("media") == "cdrom" or volume.endswith(":cloudinit"):
                    conf[key] = value
                    continue
                if props.get("backup") == "0":  # not in the archive: the line stays commented out
                    continue
                dest = storage or sid
                store = self._store(dest)
                if "images" not in store.get("content", "").split(","):
                    raise _task_error(f"Content type 'images' is not available on storage '{dest}'")
                size = self._drive_bytes(value)
                volid, _fmt = self._qm_alloc(dest, vmid, None, size)
                made.append(volid)
                props.pop("format", None)
                if size:
                    props["size"] = format_size(size)
                conf[key] = join_drive(volid, props)
            elif re.fullmatch(r"net\d+", key) and unique:
                conf[key] = with_mac(value, fresh=True)
            elif key == "vmgenid" and value != "0":
                conf[key] = str(uuid.uuid4())
            elif key == "smbios1" and unique:
                props = split_props("x," + str(value))[1]
                props["uuid"] = str(uuid.uuid4())
                conf[key] = ",".join(f"{k}={props[k]}" for k in sorted(props))
            else:
                conf[key] = value
        return conf

    @staticmethod
    def _restore_drives(config):
        """(key, volume id) of the disks of a config that live on a storage."""
        from fakepve.qemu import drives_of, is_cdrom, volume_ref

        return [(key, volume) for key, volume, props in drives_of(config)
                if volume_ref(volume)[0] is not None and not is_cdrom(volume, props)]


class SdnVnets:
    """Mixin of FakePve: SDN vnets under /cluster/sdn/vnets, kept as pve-network keeps them. The
    config (``self.sdn_vnets``) is what a create, update or delete edits; ``PUT /cluster/sdn``
    commits it to the running config (``self.sdn_running``), in a ``reloadnetworkall`` task. A list
    shows the config, ``running=1`` the running one, ``pending=1`` the difference (``state`` new,
    changed or deleted, and the changed keys under ``pending``), as PVE::Network::SDN::pending_config.
    Errors are PVE's: an id already defined, a vnet that does not exist, a VLAN tag missing, above
    4096 or already used in the zone. Zones are not kept: every zone named is taken as an existing
    VLAN zone. Subnets, IPAM and the lock token are not modelled."""

    def _routes_sdn_vnets(self):
        return [("GET", "/cluster/sdn/vnets", self._sdn_index), ("POST", "/cluster/sdn/vnets", self._sdn_create),
                ("GET", "/cluster/sdn/vnets/{vnet}", self._sdn_read), ("PUT", "/cluster/sdn/vnets/{vnet}", self._sdn_update),
                ("DELETE", "/cluster/sdn/vnets/{vnet}", self._sdn_delete), ("PUT", "/cluster/sdn", self._sdn_reload)]

    @property
    def sdn_vnets(self) -> dict:
        return self.__dict__.setdefault("_sdn_vnets", {})

    @property
    def sdn_running(self) -> dict:
        return self.__dict__.setdefault("_sdn_running", {})

    def _sdn_digest(self, vnets: dict) -> str:
        from fakepve.routing import sha1

        return sha1(json.dumps(vnets, sort_keys=True))

    def _sdn_row(self, vnets: dict, vnet: str) -> dict:
        return {"vnet": vnet, **vnets[vnet], "digest": self._sdn_digest(vnets)}

    async def _sdn_index(self, values, user):
        if values.get("pending"):
            return self._sdn_pending()
        vnets = self.sdn_running if values.get("running") else self.sdn_vnets
        return [self._sdn_row(vnets, vnet) for vnet in sorted(vnets)]

    def _sdn_pending(self) -> list[dict]:
        rows = {}
        for vnet, running in self.sdn_running.items():
            now = self.sdn_vnets.get(vnet)
            row = rows.setdefault(vnet, {"vnet": vnet, **running})
            if now is None:
                row["state"] = "deleted"
            elif any(now.get(k) != x for k, x in running.items()):
                row["state"] = "changed"
                row["pending"] = {k: now.get(k, "deleted") for k, x in running.items() if now.get(k) != x}
        for vnet, now in self.sdn_vnets.items():
            running = self.sdn_running.get(vnet)
            row = rows.setdefault(vnet, {"vnet": vnet})
            if running is None:
                row.update(state="new", type=now["type"], pending={k: x for k, x in now.items() if k != "type"})
            else:
                added = {k: x for k, x in now.items() if k not in running}
                if added:
                    row["state"] = "changed"
                    row.setdefault("pending", {}).update(added)
        return [rows[vnet] for vnet in sorted(rows)]

    async def _sdn_read(self, values, user):
        return self._sdn_row(self.sdn_vnets, self._sdn_vnet(values["vnet"]))

    def _sdn_vnet(self, vnet: str) -> str:
        from fakepve.routing import die

        if vnet not in self.sdn_vnets:
            raise die(f"sdn vnet '{vnet}' does not exist")
        return vnet

    def _sdn_check_tag(self, vnet: str, config: dict) -> None:
        """The VLAN zone's vnet_update_hook."""
        from fakepve.routing import param_error

        tag = config.get("tag")
        if tag is None:
            raise param_error(tag="missing vlan tag")
        if int(tag) > 4096:
            raise param_error(tag="vlan tag max value is 4096")
        for other, cfg in self.sdn_vnets.items():
            if other != vnet and cfg.get("zone") == config.get("zone") and cfg.get("tag") is not None and int(cfg["tag"]) == int(tag):
                raise param_error(tag=f"tag {tag} already exist in vnet {other}")

    async def _sdn_create(self, values, user):
        from fakepve.routing import die

        v = {k: x for k, x in values.items() if x is not None and k != "lock-token"}
        vnet = v.pop("vnet")
        self.require(user, f"/sdn/zones/{v['zone']}", "SDN.Allocate")
        if vnet in self.sdn_vnets:
            raise die(f"create sdn vnet object failed: sdn vnet object ID '{vnet}' already defined")
        config = {"type": v.pop("type", None) or "vnet", **v}
        self._sdn_check_tag(vnet, config)
        self.sdn_vnets[vnet] = config

    async def _sdn_update(self, values, user):
        from fakepve.routing import check_digest, param_error, split_list

        v = {k: x for k, x in values.items() if x is not None and k != "lock-token"}
        vnet = self._sdn_vnet(v.pop("vnet"))
        self.require(user, f"/sdn/zones/{self.sdn_vnets[vnet]['zone']}/{vnet}", "SDN.Allocate")
        check_digest(self._sdn_digest(self.sdn_vnets), v.pop("digest", None))
        config = dict(self.sdn_vnets[vnet])
        for key in split_list(v.pop("delete", "") or ""):
            config.pop(key, None)
        config.update(v)
        if not config.get("zone"):
            raise param_error(zone="cannot delete zone")
        self._sdn_check_tag(vnet, config)
        self.sdn_vnets[vnet] = config

    async def _sdn_delete(self, values, user):
        from fakepve.routing import die

        vnet = values["vnet"]
        if vnet not in self.sdn_vnets:
            raise die(f"delete sdn vnet object failed: sdn vnet '{vnet}' does not exist")
        self.require(user, f"/sdn/zones/{self.sdn_vnets[vnet]['zone']}/{vnet}", "SDN.Allocate")
        del self.sdn_vnets[vnet]

    async def _sdn_reload(self, values, user):
        self.require(user, "/sdn", "SDN.Allocate")
        node = next(iter(self.nodes))

        async def body(log):
            self.__dict__["_sdn_running"] = {vnet: dict(cfg) for vnet, cfg in self.sdn_vnets.items()}

        return await self._logged_task(node, "reloadnetworkall", "", user, body, "reload network: apply the SDN configuration")


class _GuestBackupError(Exception):
    """One guest of a vzdump job failed; the job goes on with the next and ends with "job errors"."""


def _task_error(message):
    from fakepve.model import TaskError

    return TaskError(message)


def _config_text(config: dict) -> str:
    """A QEMU config as the archive holds it: `#qmdump#map` lines for the disks, then `key: value`."""
    lines = []
    for key in sorted(config, key=lambda k: (re.sub(r"\d+$", "", k), int(re.search(r"\d*$", k).group() or 0))):
        if DRIVE.match(key) and ":" in str(config[key]).split(",")[0] and "media=cdrom" not in str(config[key]):
            sid = str(config[key]).split(":", 1)[0]
            lines.append(f"#qmdump#map:{key}:drive-{key}:{sid}:raw:")
    description = config.get("description")
    if description:
        lines += ["#" + line for line in str(description).splitlines()]
    lines += [f"{key}: {config[key]}" for key in sorted(config) if key != "description"]
    return "\n".join(lines) + "\n"


def lab_pve_class():
    """FakePve with the lab's additions (stateful backup jobs, vzdump backups and restores, SDN vnets); a class
    made at run time so that importing this module does not need fakepve."""
    from fakepve import FakePve

    return type("LabPve", (BackupJobs, VzdumpBackups, SdnVnets, FakePve), {})


LOCAL_STORAGE_BYTES = 2 * 1024**4


def build(spec: dict, user: str, password: str, host: str, port: int):
    """A FakePve holding the spec's cluster name, nodes and guests (not started yet)."""
    pve = lab_pve_class()(user=user, password=password, host=host, port=port)
    pve.cluster_name = spec["cluster"]
    # fakepve's "local" storage has 50 GiB free, and a vzdump backup is sized a tenth of the VM's
    # disks: 15 backups of the lab's 32 GB intranet VM fill it. A node's local storage holds far more,
    # and a DR failover and failback of it add two (the planned handover's, the failback's).
    pve.storages["local"]["avail"] = LOCAL_STORAGE_BYTES
    # FakePve starts with a node "pve1"; the model's node list replaces it, in the model's order.
    pve.nodes = {}
    for node in spec["nodes"]:
        pve.add_node(node)
    for guest in spec["guests"]:
        common = {"node": guest["node"], "status": guest["status"], "config": guest["config"], "template": guest["template"]}
        if guest["type"] == "lxc":
            pve.add_ct(guest["vmid"], guest["name"], **common)
        else:
            pve.add_vm(guest["vmid"], guest["name"], **common)
    return pve


async def serve(args: argparse.Namespace) -> None:
    with open(args.guests, encoding="utf-8") as handle:
        spec = json.load(handle)
    pve = build(spec, os.environ.get("PVE_USER", "root@pam"), os.environ["PVE_PASS"], args.host, args.port)
    # 0: every task (clone, start, snapshot) has finished when the request returns.
    pve.time_scale = args.time_scale
    if args.latency:
        pve.slow_network(args.latency)
    await pve.start(args.cert, args.key)
    print(f"fakepve listening on {pve.url} (cluster {pve.cluster_name}, nodes {', '.join(pve.nodes)}, "
          f"{len(spec['guests'])} guests)", flush=True)
    await asyncio.Event().wait()  # until SIGTERM, whose default action ends the process


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("guests", help="guests file (fakepve's format plus 'cluster' and 'nodes')")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8006)
    parser.add_argument("--cert", required=True, help="PEM certificate chain (leaf first)")
    parser.add_argument("--key", required=True, help="PEM key of --cert")
    parser.add_argument("--time-scale", type=float, default=0.0, help="real seconds per PVE second")
    parser.add_argument("--latency", type=float, default=0.0, help="PVE seconds added to every response")
    args = parser.parse_args()
    if not os.environ.get("PVE_PASS"):
        print("fakepve_server: PVE_PASS is not set; refusing to serve with fakepve's public default password",
              file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        # A missing certificate or a port taken since `up` checked it: one line in the log,
        # which `lab up` shows, rather than a traceback.
        print(f"fakepve_server: cannot serve on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
