# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Proxmox VE backup jobs (vzdump jobs, ``/cluster/backup``) in the model's terms.

A job is shown as a plain dict in the module's option names (the *view*)::

    {id, schedule, storage, vms: [names], vmids: [ints], all, mode, compress, enabled,
     retention: {keep_last, ...}, notes_template, mailto: [..], mailnotification, comment, node, repeat_missed}

``view`` turns PVE's job (``vmid`` a comma list, ``prune-backups`` a property string, booleans as
0/1, absent keys meaning PVE's defaults) into that; ``plan`` decides from the options what the job
becomes; ``api_changes`` turns a before/after pair back into the POST/PUT parameters (``delete``
for what the options clear). Only the options given (not None) are managed: a job's other settings
(bandwidth limit, exclusions, pool...) are left as they are.
"""

from __future__ import annotations

from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError

# PVE's prune-backups keys, in PVE's order; the model writes them with underscores.
RETENTION_KEYS = ("keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly")
# option name -> PVE parameter, for the plain string options.
STRINGS = {"schedule": "schedule", "storage": "storage", "mode": "mode", "compress": "compress",
           "notes_template": "notes-template", "mailnotification": "mailnotification", "comment": "comment", "node": "node"}
BOOLS = {"enabled": "enabled", "repeat_missed": "repeat-missed"}
# What PVE assumes when a job does not say (PVE::VZDump's defaults).
DEFAULTS = {"mode": "snapshot", "compress": "0", "enabled": True, "repeat_missed": False, "mailnotification": "always"}
MANAGED = (*STRINGS, *BOOLS, "vms", "all", "retention", "mailto")


# --- retention <-> prune-backups --------------------------------------------------------------


def prune_string(retention: dict | None) -> str | None:
    """{keep_last: 3, keep_daily: 7} -> "keep-last=3,keep-daily=7" (PVE's key order); {keep_all: true}
    -> "keep-all=1"; None or {} -> None (the job has no retention of its own: the storage's applies)."""
    if not retention:
        return None
    unknown = sorted(set(retention) - {*RETENTION_KEYS, "keep_all"})
    if unknown:
        raise TwinsiteError(f"unknown retention key {unknown[0]!r} (known: keep_all, {', '.join(RETENTION_KEYS)})", obj="retention")
    if retention.get("keep_all"):
        if any(retention.get(k) for k in RETENTION_KEYS):
            raise TwinsiteError("keep_all cannot be combined with keep_* counts", obj="retention")
        return "keep-all=1"
    parts = []
    for key in RETENTION_KEYS:
        value = retention.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise TwinsiteError(f"{key} must be a whole number of at least 1, found {value!r}", obj="retention")
        parts.append(f"{key.replace('_', '-')}={value}")
    return ",".join(parts) or None


def parse_prune(text) -> dict:
    """PVE's prune-backups string (or the hash older PVE returns) -> the model's retention dict."""
    if not text:
        return {}
    pairs = (part.partition("=")[::2] for part in str(text).split(",") if part.strip())
    items = text.items() if isinstance(text, dict) else pairs
    out = {}
    for key, value in items:
        key = str(key).strip().replace("-", "_")
        if key == "keep_all":
            if str(value).strip() not in ("0", ""):
                out["keep_all"] = True
        elif key in RETENTION_KEYS and str(value).strip().isdigit() and int(value) > 0:
            out[key] = int(value)
    return out


# --- PVE job <-> view --------------------------------------------------------------------------


def vmid_list(text) -> list[int]:
    """PVE's vmid list ("110,201", also with spaces or semicolons) as sorted ints."""
    return sorted({int(v) for v in str(text or "").replace(";", ",").replace(" ", ",").split(",") if v.strip()})


def _bool(value, default: bool) -> bool:
    if value is None or value == "":
        return default
    return str(value).lower() in ("1", "true", "yes", "on")


def view(job: dict | None, names: dict) -> dict | None:
    """A PVE job as the module shows it; ``names`` maps vmid -> VM name (a vmid no guest has stays a
    number in ``vmids`` and shows as "vmid N" in ``vms``)."""
    if job is None:
        return None
    vmids = vmid_list(job.get("vmid"))
    out = {"id": job["id"], "vmids": vmids, "vms": sorted(names.get(v, f"vmid {v}") for v in vmids),
           "all": _bool(job.get("all"), False), "retention": parse_prune(job.get("prune-backups")),
           "mailto": sorted(m for m in str(job.get("mailto") or "").replace(";", ",").replace(" ", ",").split(",") if m)}
    for option, key in STRINGS.items():
        value = job.get(key)
        out[option] = str(value) if value not in (None, "") else DEFAULTS.get(option)
    for option, key in BOOLS.items():
        out[option] = _bool(job.get(key), DEFAULTS[option])
    return out


def plan(before: dict | None, params: dict, vmids: dict) -> tuple[bool, dict | None]:
    """Whether the task changes the job, and the job it leaves (the view; None when absent).

    ``vmids`` maps each VM name of ``params['vms']`` to its vmid (resolved by the caller)."""
    job_id = params["id"]
    if params["state"] == "absent":
        return before is not None, None
    if before is None:
        if not params.get("schedule"):
            raise TwinsiteError("a new job needs a schedule", obj=f"backup job {job_id!r}", action="creation")
        if params.get("vms") is None and not params.get("all"):
            raise TwinsiteError("a new job needs vms (the VMs to back up) or all: true", obj=f"backup job {job_id!r}", action="creation")
        base = view({"id": job_id}, {})
    else:
        base = before
    after = {**base, "retention": dict(base["retention"]), "mailto": list(base["mailto"])}
    for option in STRINGS:
        if params.get(option) is not None:
            after[option] = params[option] or DEFAULTS.get(option)  # "" clears it
    for option in BOOLS:
        if params.get(option) is not None:
            after[option] = bool(params[option])
    if params.get("vms") is not None:
        after["vmids"] = sorted(vmids[name] for name in params["vms"])
        after["vms"] = sorted(params["vms"])
        after["all"] = False
    elif params.get("all") is not None:
        after["all"] = bool(params["all"])
        if after["all"]:
            after["vmids"], after["vms"] = [], []
        elif not after["vmids"]:
            raise TwinsiteError("all: false needs vms (the job would back up nothing)", obj=f"backup job {job_id!r}", action="update")
    if params.get("retention") is not None:
        try:
            after["retention"] = parse_prune(prune_string(params["retention"]))
        except TwinsiteError as exc:
            raise TwinsiteError(f"retention: {exc.reason}", obj=f"backup job {job_id!r}", action="check") from None
    if params.get("mailto") is not None:
        after["mailto"] = sorted(params["mailto"])
    return after != before, after


def _api_value(option: str, job: dict):
    """The PVE parameter value of one option of a view; None means "not set" (delete it)."""
    if option in STRINGS:
        return job[option]
    if option in BOOLS:
        return int(job[option])
    if option == "vms":
        return ",".join(str(v) for v in job["vmids"]) or None
    if option == "all":
        return 1 if job["all"] else None
    if option == "retention":
        return prune_string(job["retention"])
    if option == "mailto":
        return ",".join(job["mailto"]) or None
    raise KeyError(option)


def api_changes(before: dict | None, after: dict) -> dict:
    """The POST (before None) or PUT parameters that turn ``before`` into ``after``."""
    params, delete = {}, []
    for option in MANAGED:
        value = _api_value(option, after)
        if before is not None and value == _api_value(option, before):
            continue
        key = {**STRINGS, **BOOLS}.get(option) or {"vms": "vmid", "retention": "prune-backups"}.get(option, option)
        if value is None:
            if before is not None:
                delete.append(key)
        elif before is None and option in DEFAULTS and value == _api_value(option, view({"id": ""}, {})):
            continue  # PVE's default on a new job: leave it unsaid, as the web UI does
        else:
            params[key] = value
    if before is not None and "vmid" in params:
        delete = [d for d in delete if d != "all"]  # PVE drops `all` itself when vmid is given
    if "notes-template" in params and "storage" not in params and after.get("storage"):
        params["storage"] = after["storage"]  # PVE's schema: notes-template "requires" storage in the same call
    if delete:
        params["delete"] = ",".join(sorted(delete))
    return params


# --- the API -----------------------------------------------------------------------------------


class ProxmoxBackupJobs:
    """/cluster/backup of one Proxmox VE cluster; errors name the job and the action."""

    def __init__(self, client):
        self.client = client
        self._names = None

    def guests(self) -> dict:
        """VM name -> vmid of the cluster's guests (templates excluded), from one /cluster/resources read."""
        if self._names is None:
            try:
                rows = self.client.resources("vm")
            except TwinsiteError as exc:
                raise TwinsiteError(exc.reason, obj="the Proxmox cluster's guests", action="read") from None
            self._names = {}
            for row in rows or []:
                if not row.get("template") and row.get("name"):
                    self._names.setdefault(row["name"], []).append(int(row["vmid"]))
        return self._names

    def resolve(self, job_id: str, vms: list[str] | None) -> dict:
        """VM name -> vmid for the names of a job; a name no guest (or several) has is an error."""
        out = {}
        guests = self.guests()
        for name in vms or []:
            found = guests.get(name, [])
            if len(found) != 1:
                why = (f"no VM named {name!r} in the Proxmox cluster" if not found
                       else f"{len(found)} guests are named {name!r} (vmids {', '.join(map(str, found))})")
                raise TwinsiteError(why, obj=f"backup job {job_id!r}", action="lookup of the VMs")
            out[name] = found[0]
        return out

    def names(self) -> dict:
        """vmid -> VM name."""
        return {ids[0]: name for name, ids in self.guests().items() if len(ids) == 1}

    def list(self) -> list[dict]:
        return self._call("read", "the backup jobs", "get", "cluster/backup")

    def read(self, job_id: str) -> dict | None:
        """The job, or None when the cluster has no job with this id (one list call: a GET of a missing
        id is a 400 that cannot be told from a bad request)."""
        return next((j for j in self.list() or [] if j.get("id") == job_id), None)

    def create(self, job_id: str, params: dict) -> None:
        self._call("creation", f"backup job {job_id!r}", "post", "cluster/backup", id=job_id, **params)

    def update(self, job_id: str, params: dict) -> None:
        self._call("update", f"backup job {job_id!r}", "put", f"cluster/backup/{job_id}", **params)

    def remove(self, job_id: str) -> None:
        self._call("removal", f"backup job {job_id!r}", "delete", f"cluster/backup/{job_id}")

    def _call(self, action: str, obj: str, method: str, path: str, **params):
        try:
            return getattr(self.client, method)(path, **params)
        except TwinsiteError as exc:
            raise TwinsiteError(exc.reason, obj=obj, action=action) from None
