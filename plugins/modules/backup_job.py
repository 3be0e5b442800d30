#!/usr/bin/python
# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_job
short_description: Create, update or remove a Proxmox VE backup job (vzdump job)
version_added: 0.3.0
description:
  - A cluster-wide scheduled backup job of Proxmox VE (Datacenter > Backup in the web UI; C(/cluster/backup)
    in the API), declared by its O(id). Creates the job when it is missing, updates the settings that differ,
    removes it with O(state=absent). community.proxmox can only edit jobs that already exist.
  - Only the options given are managed; a job's other settings (bandwidth limit, exclusions, a pool
    selection...) are left as they are. An empty string (or an empty list or mapping) clears a setting.
  - VMs are named as in the model; their vmids are read from one C(/cluster/resources) call.
options:
  cluster:
    description: One item of the model's C(dc_clusters), of type C(proxmox) (name, type, api).
    type: dict
    required: true
  id:
    description: The job's id (PVE's C(pve-configid) - a letter, then letters, digits, C(-) and C(_); at most 50).
    type: str
    required: true
  state:
    description: Whether the job exists.
    type: str
    choices: [present, absent]
    default: present
  schedule:
    description: When the job runs, as a systemd-like calendar event (C(02:30), C(sun 01:00), C(mon..fri 21:00)). Required to create.
    type: str
  storage:
    description: The storage the backups are written to.
    type: str
  vms:
    description: Names of the VMs to back up. Mutually exclusive with O(all). Required to create unless O(all).
    type: list
    elements: str
  all:
    description: Back up every guest of the cluster. Mutually exclusive with O(vms).
    type: bool
  mode:
    description: How the guest is held while it is read.
    type: str
    choices: [snapshot, suspend, stop]
    default: snapshot
  compress:
    description: Compression of the archives (C("0") none).
    type: str
    choices: ["0", "1", gzip, lzo, zstd]
    default: zstd
  enabled:
    description: Whether the job runs on its schedule.
    type: bool
    default: true
  retention:
    description:
      - How many backups to keep (the job's C(prune-backups)); without it, the storage's retention applies.
      - Keys C(keep_last), C(keep_hourly), C(keep_daily), C(keep_weekly), C(keep_monthly), C(keep_yearly) (whole numbers
        of at least 1), or C(keep_all=true) alone. C({}) removes the job's own retention.
    type: dict
  notes_template:
    description: Notes added to each backup (C({{guestname}}), C({{vmid}}), C({{node}}), C({{cluster}}) are expanded by PVE).
    type: str
  mailto:
    description: Addresses (or PVE user names) told about each run. C([]) removes them.
    type: list
    elements: str
  mailnotification:
    description: When to send that mail.
    type: str
    choices: [always, failure]
  comment:
    description: The job's comment (shown in the web UI).
    type: str
  node:
    description: Run the job only on this node (by default every node backs up its own guests).
    type: str
  repeat_missed:
    description: Run a missed job as soon as possible after the node comes back.
    type: bool
attributes:
  check_mode:
    support: full
    description: Returns the predicted job and changed=True, and sends no write.
  diff_mode:
    support: full
    description: The job before and after, in the options' names.
requirements: [proxmoxer]
author: twinsite engineers
"""

EXAMPLES = r"""
- name: Back up the secondary room's VMs every night, keep two weeks and three months
  twinsite.dc.backup_job:
    cluster: "{{ dc_clusters | selectattr('name', 'eq', 'cl-secondary') | first }}"
    id: secondary-nightly
    schedule: "02:30"
    storage: local
    vms: [backup-proxy, dns1-replica]
    retention: {keep_daily: 14, keep_monthly: 3}
    notes_template: "{{ '{{guestname}}' }} nightly"

- name: Remove a job
  twinsite.dc.backup_job:
    cluster: "{{ dc_clusters | selectattr('name', 'eq', 'cl-secondary') | first }}"
    id: old-weekly
    state: absent
"""

RETURN = r"""
job:
  description: The job after the task (predicted in check mode), in the options' names; null when absent.
  returned: success
  type: dict
  sample:
    id: secondary-nightly
    schedule: "02:30"
    storage: local
    vms: [backup-proxy, dns1-replica]
    vmids: [110, 201]
    all: false
    mode: snapshot
    compress: zstd
    enabled: true
    retention: {keep_daily: 14, keep_monthly: 3}
    notes_template: "{{guestname}} nightly"
    mailto: []
    mailnotification: always
    comment: null
    node: null
    repeat_missed: false
api_params:
  description: The parameters sent (or, in check mode, that would be sent) to create or update the job.
  returned: changed and state=present
  type: dict
  sample: {vmid: "110,201", schedule: "02:30", prune-backups: "keep-daily=14,keep-monthly=3"}
diff:
  description: The job before and after (with --diff).
  returned: changed and diff mode
  type: dict
"""


from ansible_collections.twinsite.dc.plugins.module_utils import _backup_job, _cluster
from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError, secret_aware_module


def run(module, cluster: dict) -> dict:
    params = module.params
    job_id = params["id"]
    client = _cluster.connect(cluster)
    jobs = _backup_job.ProxmoxBackupJobs(client)
    vmids = jobs.resolve(job_id, params["vms"]) if params["state"] == "present" else {}
    before = _backup_job.view(jobs.read(job_id), jobs.names())
    changed, after = _backup_job.plan(before, params, vmids)
    api_params = _backup_job.api_changes(before, after) if changed and after is not None else {}
    if changed and not module.check_mode:
        if after is None:
            jobs.remove(job_id)
        elif before is None:
            jobs.create(job_id, api_params)
        else:
            jobs.update(job_id, api_params)
        after = _backup_job.view(jobs.read(job_id), jobs.names())
        if params["state"] == "present" and after is None:
            raise TwinsiteError("the cluster accepted the job but does not list it", obj=f"backup job {job_id!r}", action="creation")
    result = {"changed": changed, "job": after}
    if api_params:
        result["api_params"] = api_params
    if changed and module._diff:
        result["diff"] = _cluster.diff(before or {}, after or {})
    return result


def main():
    module = secret_aware_module()(
        argument_spec={
            "cluster": {"type": "dict", "required": True},
            "id": {"type": "str", "required": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "schedule": {"type": "str"},
            "storage": {"type": "str"},
            "vms": {"type": "list", "elements": "str"},
            "all": {"type": "bool"},
            "mode": {"type": "str", "choices": ["snapshot", "suspend", "stop"], "default": "snapshot"},
            "compress": {"type": "str", "choices": ["0", "1", "gzip", "lzo", "zstd"], "default": "zstd"},
            "enabled": {"type": "bool", "default": True},
            "retention": {"type": "dict"},
            "notes_template": {"type": "str"},
            "mailto": {"type": "list", "elements": "str"},
            "mailnotification": {"type": "str", "choices": ["always", "failure"]},
            "comment": {"type": "str"},
            "node": {"type": "str"},
            "repeat_missed": {"type": "bool"},
        },
        supports_check_mode=True,
    )
    # After prepare, not as the spec's mutually_exclusive: a failure inside secret_aware_module()() prints the
    # module's arguments, the cluster's password with them.
    cluster = _cluster.prepare(module)
    if module.params["vms"] is not None and module.params["all"] is not None:
        module.fail_json(msg=f"cluster {cluster.get('name')}: backup job {module.params['id']!r}: give vms or all, not both")
    if cluster.get("type") != "proxmox":
        module.fail_json(msg=f"cluster {cluster.get('name')}: backup jobs are a Proxmox VE feature; this cluster is of type {cluster.get('type')!r}")
    try:
        module.exit_json(**run(module, cluster))
    except TwinsiteError as exc:
        module.fail_json(msg=f"cluster {cluster.get('name')}: {exc}")


if __name__ == "__main__":
    main()
