# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that turn the site model's services and backup policies into backup jobs."""

from __future__ import annotations

import urllib.parse

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: backup_jobs
short_description: The backup jobs of the site model (one per service with a backup policy)
version_added: 0.2.0
description:
  - Joins C(dc_services) with C(dc_backup_policies) into one job per protected service, with its
    paths, pre-backup hook, retention, schedule, RPO target and the copies it keeps.
  - With O(host), only the services that run on that host (the jobs its timers run).
positional: services, policies
options:
  _input:
    description: C(dc_services).
    type: list
    elements: dict
    required: true
  policies:
    description: C(dc_backup_policies).
    type: list
    elements: dict
    required: true
  host:
    description: Only the services whose C(hosts) include this inventory host.
    type: str
"""

EXAMPLES = r"""
- name: This host's backup jobs
  ansible.builtin.debug:
    msg: "{{ dc_services | twinsite.dc.backup_jobs(dc_backup_policies, host=inventory_hostname) }}"
"""

RETURN = r"""
_value:
  description: One job per service, sorted by service name.
  type: list
  elements: dict
  contains:
    service: {description: Service name., type: str}
    policy: {description: Policy name., type: str}
    hosts: {description: Hosts the service runs on., type: list, elements: str}
    paths: {description: What to protect., type: list, elements: str}
    pre_backup: {description: "Hook run before the backup: {command, output, user}.", type: dict}
    retention: {description: keep_* counts., type: dict}
    interval_minutes: {description: Backup schedule., type: int}
    cloud_interval_minutes: {description: Replication schedule., type: int}
    copies: {description: Copies beyond production (secondary, cloud)., type: list, elements: str}
    rpo_minutes: {description: The service's RPO target., type: int}
"""


def backup_jobs(services, policies, host=None):
    if not isinstance(services, list) or not isinstance(policies, list):
        raise AnsibleFilterError("backup_jobs expects dc_services | twinsite.dc.backup_jobs(dc_backup_policies): two lists")
    by_name = {p.get("name"): p for p in policies if isinstance(p, dict)}
    jobs = []
    for svc in services:
        name = svc.get("policy") or svc.get("backup_policy")
        if not name:
            continue
        if host is not None and host not in (svc.get("hosts") or []):
            continue
        policy = by_name.get(name)
        if policy is None:
            raise AnsibleFilterError(f"service {svc.get('name')!r} names backup policy {name!r}, which dc_backup_policies does not define")
        jobs.append({
            "service": svc["name"],
            "policy": name,
            "hosts": list(svc.get("hosts") or []),
            "paths": list(policy["paths"]),
            "pre_backup": policy.get("pre_backup") or {},
            "retention": policy.get("retention") or {},
            "interval_minutes": policy["interval_minutes"],
            "cloud_interval_minutes": policy.get("cloud_interval_minutes", policy["interval_minutes"]),
            "copies": list(policy.get("copies") or ["secondary"]),
            "rpo_minutes": svc.get("rpo_minutes"),
        })
    return sorted(jobs, key=lambda j: j["service"])


def backup_job_config(jobs, copies, secrets_dir):
    """What twinsite-backup reads for each job: the job plus, per copy it keeps among ``copies``,
    the environment file holding that repository's location and secrets."""
    out = []
    for job in jobs:
        kept = [c for c in copies if c in job["copies"]]
        entry = {k: job[k] for k in ("service", "policy", "paths", "pre_backup", "retention", "rpo_minutes")}
        entry["copies"] = {c: {"env_file": f"{secrets_dir}/{job['service']}-{c}.env"} for c in kept}
        out.append(entry)
    return out


def backup_job_units(job, side, prune_calendar="daily", verify_calendar="daily", attempts=4, retry_delay=15):
    """The systemd units that run a job on one side: ``client`` (the backup) or ``secondary``
    (prune, replicate, verify). Each: {name, description, commands, interval_minutes | calendar}."""
    svc = job["service"]
    if side == "client":
        return [{"name": f"twinsite-backup-{svc}", "description": f"Back up service {svc} to the secondary site",
                 "commands": [f"backup {svc}"], "interval_minutes": job["interval_minutes"]}]
    if side != "secondary":
        raise AnsibleFilterError(f"backup_job_units: side is 'client' or 'secondary', not {side!r}")
    units = [{"name": f"twinsite-prune-{svc}", "description": f"Apply the retention of service {svc} at the secondary site",
              "commands": [f"prune {svc}"], "calendar": prune_calendar}]
    verify = [f"verify {svc} --copy secondary"]
    if "cloud" in job["copies"]:
        units.append({"name": f"twinsite-replicate-{svc}", "description": f"Replicate service {svc}'s backups to the cloud",
                      "commands": [f"replicate {svc} --attempts {attempts} --retry-delay {retry_delay}"],
                      "interval_minutes": job["cloud_interval_minutes"]})
        verify.append(f"verify {svc} --copy cloud")
    units.append({"name": f"twinsite-verify-{svc}", "description": f"Check and restore-test service {svc}'s backups",
                  "commands": verify, "calendar": verify_calendar})
    return units


def restic_rest_url(repository, service):
    """rest:https://user:password@host:port/<service>/ from dc_backup_repository (restic 0.14 reads
    the REST login only from the URL; user and password are percent-encoded)."""
    parts = urllib.parse.urlsplit(str(repository.get("url", "")))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise AnsibleFilterError(f"dc_backup_repository.url {repository.get('url')!r} is not an http(s) URL")
    user = urllib.parse.quote(str(repository.get("user", "")), safe="")
    password = urllib.parse.quote(str(repository.get("password", "")), safe="")
    path = parts.path.rstrip("/")
    return f"rest:{parts.scheme}://{user}:{password}@{parts.netloc}{path}/{service}/"


class FilterModule:
    def filters(self):
        return {"backup_jobs": backup_jobs, "backup_job_config": backup_job_config, "backup_job_units": backup_job_units,
                "restic_rest_url": restic_rest_url}
