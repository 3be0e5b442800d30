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
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
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


def lab_pve_class():
    """FakePve with the lab's additions (stateful backup jobs); a class made at run time so that
    importing this module does not need fakepve."""
    from fakepve import FakePve

    return type("LabPve", (BackupJobs, FakePve), {})


def build(spec: dict, user: str, password: str, host: str, port: int):
    """A FakePve holding the spec's cluster name, nodes and guests (not started yet)."""
    pve = lab_pve_class()(user=user, password=password, host=host, port=port)
    pve.cluster_name = spec["cluster"]
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
