# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup posture: is every service 3-2-1-1-0, judged from evidence, never assumed.

Inputs are what the jobs recorded (``twinsite-backup status`` on the secondary site's host and on
each protected host) and what this run's immutability tests found. Every ``false`` carries the
reason a sysadmin can act on. Pure functions: the module writes the files, tests feed dicts.
"""

from __future__ import annotations

import datetime as dt
import html

# An RPO is "warn" once a copy's newest snapshot is this old relative to the target.
WARN_RATIO = 0.8


def parse(ts: str | None) -> dt.datetime | None:
    if not ts:
        return None
    try:
        return dt.datetime.fromisoformat(str(ts).replace("Z", "+00:00")).astimezone(dt.UTC)
    except ValueError:
        return None


def iso(moment: dt.datetime | None) -> str | None:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def rpo_state(newest: dt.datetime | None, now: dt.datetime, rpo_minutes: int | None, warn_ratio: float = WARN_RATIO) -> dict:
    if newest is None:
        return {"age_minutes": None, "state": "breach"}
    age = round((now - newest).total_seconds() / 60, 1)
    if rpo_minutes is None:
        return {"age_minutes": age, "state": "ok"}
    state = "breach" if age > rpo_minutes else "warn" if age > rpo_minutes * warn_ratio else "ok"
    return {"age_minutes": age, "state": state}


def copy_target(copy: str, policy: dict, rpo_minutes: int | None) -> int | None:
    """The freshness a copy must keep: the service's RPO at the secondary; at the cloud, the RPO or
    the replication interval plus one backup interval, whichever is larger (a cloud copy replicated
    every 4 h cannot be fresher than that, and the report should say so rather than cry wolf)."""
    if copy == "cloud" and rpo_minutes is not None:
        return max(rpo_minutes, policy.get("cloud_interval_minutes", 0) + policy.get("interval_minutes", 0))
    return rpo_minutes


def service_posture(service: dict, policy: dict, secondary: dict, clients: list[dict], lock_test: dict | None,
                    now: dt.datetime, warn_ratio: float = WARN_RATIO) -> dict:
    """One service's entry. ``secondary``: its entry in the secondary host's status; ``clients``:
    its entries in its hosts' status; ``lock_test``: the bucket test of its prefix (or None)."""
    name = service["name"]
    rpo = service.get("rpo_minutes")
    wanted = list(policy.get("copies") or ["secondary"])
    reasons: list[str] = []
    copies: dict[str, dict] = {}
    records = (secondary or {}).get("records") or {}
    seen = (secondary or {}).get("copies") or {}
    for copy in wanted:
        live = seen.get(copy) or {}
        verify = records.get(f"verify-{copy}") or {}
        newest = parse(live.get("newest"))
        target = copy_target(copy, policy, rpo)
        entry = {
            "reachable": bool(live.get("reachable")),
            "snapshots": live.get("snapshots", 0),
            "newest_snapshot": iso(newest),
            "rpo_target_minutes": target,
            **{f"rpo_{k}": v for k, v in rpo_state(newest, now, target, warn_ratio).items()},
            "check_ok": bool(verify.get("check_ok")),
            "restore_ok": bool(verify.get("restore_ok")),
            "last_restore_test": verify.get("finished"),
            "last_restorable_at": verify.get("last_restorable_at"),
            "files_checked": verify.get("files_checked"),
            "mismatches": verify.get("mismatches"),
        }
        entry["verified"] = entry["check_ok"] and entry["restore_ok"] and entry["snapshots"] > 0
        if not live:
            reasons.append(f"{copy} copy: no status from the secondary site's repository host")
        elif not entry["reachable"]:
            reasons.append(f"{copy} copy: unreachable ({live.get('error', 'no detail')})")
        elif entry["snapshots"] == 0:
            reasons.append(f"{copy} copy: holds no snapshot")
        if not verify:
            reasons.append(f"{copy} copy: never verified (no check or restore test recorded)")
        else:
            if not entry["check_ok"]:
                reasons.append(f"{copy} copy: restic check failed at {verify.get('finished')}: "
                               f"{verify.get('check_error') or verify.get('error') or 'no detail'}")
            if not entry["restore_ok"]:
                reasons.append(f"{copy} copy: restore test failed at {verify.get('finished')}: "
                               f"{verify.get('restore_error') or verify.get('error') or 'no detail'}")
        if entry["rpo_state"] == "breach":
            age = entry["rpo_age_minutes"]
            reasons.append(f"{copy} copy: RPO breached, newest snapshot "
                           + (f"{age:.0f} min old, target {target} min" if age is not None else "missing"))
        copies[copy] = entry

    backup = {}
    for client in clients:
        rec = (client.get("records") or {}).get("backup")
        if rec and (not backup or (rec.get("finished") or "") > (backup.get("finished") or "")):
            backup = rec
    if backup and not backup.get("ok"):
        reasons.append(f"last backup failed at {backup.get('finished')}: {backup.get('error')}")
    append_only = [(c.get("records") or {}).get("immutability-test") for c in clients]
    append_only = [r for r in append_only if r]
    append_only_verified = bool(append_only) and all(r.get("passed") for r in append_only)
    if "secondary" in wanted and not append_only_verified:
        reasons.append("secondary copy: append-only not proven: "
                       + ("; ".join(r.get("error") or "failed" for r in append_only if not r.get("passed")) or "no test recorded"))

    replicate = records.get("replicate") or {}
    if "cloud" in wanted and replicate and not replicate.get("ok"):
        reasons.append(f"cloud copy: last replication failed at {replicate.get('finished')} after "
                       f"{replicate.get('attempts')} attempt(s): {replicate.get('error')}")
    offsite = "cloud" in copies and copies["cloud"]["verified"]
    if "cloud" not in wanted:
        reasons.append("no off-site copy: the policy keeps no cloud copy")
    immutable = bool(lock_test and lock_test.get("passed")) and "cloud" in wanted
    if "cloud" in wanted and not immutable:
        reasons.append("cloud copy: immutability not proven: "
                       + ((lock_test or {}).get("error") or "the bucket's lock test did not run"))
    restore_verified = bool(copies) and all(c["restore_ok"] and c["mismatches"] == 0 for c in copies.values())
    # Production itself is one copy (the 3 of 3-2-1 counts it); each verified backup copy adds one.
    count = 1 + sum(1 for c in copies.values() if c["verified"])
    rpo_met = bool(copies) and all(c["rpo_state"] != "breach" for c in copies.values())
    tests = [c["last_restore_test"] for c in copies.values() if c["last_restore_test"]]
    entry = {
        "name": name,
        "policy": policy.get("name"),
        "rpo_minutes": rpo,
        "copies": count,
        "media": len({"disk" if c == "secondary" else "object-storage" for c, v in copies.items() if v["verified"]}),
        "offsite_verified": offsite,
        "immutable_verified": immutable,
        "append_only_verified": append_only_verified,
        "restore_verified": restore_verified,
        "rpo_met": rpo_met,
        "last_backup": backup.get("finished"),
        "last_restore_test": max(tests) if tests else None,
        "last_verified_restorable": max((c["last_restorable_at"] for c in copies.values() if c["last_restorable_at"]), default=None),
        "copy_detail": copies,
        "reasons": reasons,
    }
    entry["rule_3_2_1_1_0"] = count >= 3 and entry["media"] >= 2 and offsite and immutable and restore_verified
    return entry


def _unprotected_reason(svc: dict) -> str:
    """Why a service without a backup policy is not 3-2-1-1-0, naming what protects it otherwise."""
    recovery = svc.get("recovery") if isinstance(svc.get("recovery"), dict) else {}
    if recovery.get("method") == "replica_vm":
        return (f"no backup policy: only a VM replica ({recovery.get('replica')} on {recovery.get('cluster')}), "
                "which is not a backup")
    if recovery.get("method") == "vm_backup_restore":
        return (f"no backup policy: only vzdump backups of VM {recovery.get('source')} on storage {recovery.get('storage')} "
                f"of {recovery.get('cluster')} (one copy, not verified, not immutable)")
    return "no backup policy: the service is not backed up"


def posture(services: list[dict], policies: list[dict], secondary_status: dict, client_status: list[dict],
            lock_tests: list[dict], now: dt.datetime, warn_ratio: float = WARN_RATIO) -> dict:
    by_policy = {p["name"]: p for p in policies}
    sec_services = (secondary_status or {}).get("services") or {}
    locks = {str(t.get("prefix", "")).rstrip("/"): t for t in lock_tests or []}
    out = []
    for svc in sorted(services, key=lambda s: s["name"]):
        # Named as the backup_jobs filter reads it, so the report and the jobs agree on what is protected.
        policy = by_policy.get(svc.get("policy") or svc.get("backup_policy"))
        if policy is None:
            out.append({"name": svc["name"], "copies": 1, "offsite_verified": False, "immutable_verified": False,
                        "restore_verified": False, "rpo_met": False, "last_restore_test": None, "rule_3_2_1_1_0": False,
                        "reasons": [_unprotected_reason(svc)]})
            continue
        clients = [s["services"][svc["name"]] for s in client_status or [] if svc["name"] in (s.get("services") or {})]
        out.append(service_posture(svc, policy, sec_services.get(svc["name"]) or {}, clients,
                                   locks.get(svc["name"]), now, warn_ratio))
    return {
        "generated": iso(now),
        "secondary_host": (secondary_status or {}).get("host"),
        "summary": {
            "services": len(out),
            "compliant": sum(1 for s in out if s["rule_3_2_1_1_0"]),
            "rpo_breaches": sum(1 for s in out if not s["rpo_met"]),
        },
        "services": out,
    }


def render_html(report: dict) -> str:
    """A table an auditor can read without tools (ISO 27001 A.8.13 evidence)."""
    def cell(value) -> str:
        if value is True:
            return '<td class="ok">yes</td>'
        if value is False:
            return '<td class="bad">no</td>'
        return f"<td>{html.escape('' if value is None else str(value))}</td>"

    rows = []
    for s in report["services"]:
        reasons = "<br>".join(html.escape(r) for r in s.get("reasons", [])) or "&mdash;"
        rows.append("<tr>" + "".join([
            f"<td>{html.escape(s['name'])}</td>", cell(s.get("copies")), cell(s.get("offsite_verified")),
            cell(s.get("immutable_verified")), cell(s.get("restore_verified")), cell(s.get("rpo_met")),
            cell(s.get("last_restore_test")), cell(s.get("rule_3_2_1_1_0")), f"<td class=\"why\">{reasons}</td>",
        ]) + "</tr>")
    summary = report["summary"]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Backup posture {html.escape(report['generated'])}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }} table {{ border-collapse: collapse; }}
td, th {{ border: 1px solid #999; padding: .3em .6em; vertical-align: top; }} th {{ background: #eee; }}
.ok {{ background: #d8f5d8; }} .bad {{ background: #f8d0d0; font-weight: bold; }} .why {{ font-size: .9em; max-width: 40em; }}
</style></head><body>
<h1>Backup posture (3-2-1-1-0)</h1>
<p>Generated {html.escape(report['generated'])} from recorded job outcomes and this run's immutability tests.
{summary['compliant']} of {summary['services']} services meet 3-2-1-1-0; {summary['rpo_breaches']} breach their RPO.
Evidence for ISO/IEC 27001:2022 A.8.13 (information backup) and A.5.30 (ICT readiness for business continuity).</p>
<table>
<tr><th>Service</th><th>Verified copies</th><th>Off-site verified</th><th>Immutable verified</th><th>Restore verified</th>
<th>RPO met</th><th>Last restore test</th><th>3-2-1-1-0</th><th>Why not</th></tr>
{chr(10).join(rows)}
</table></body></html>
"""
