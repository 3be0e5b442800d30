#!/usr/bin/python
# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_job_info
short_description: List the backup jobs (vzdump jobs) of a Proxmox VE cluster
version_added: 0.3.0
description:
  - Reads C(/cluster/backup) once and the guests' names from one C(/cluster/resources) call, and returns every
    backup job in the option names of M(twinsite.dc.backup_job). Changes nothing.
options:
  cluster:
    description: One item of the model's C(dc_clusters), of type C(proxmox) (name, type, api).
    type: dict
    required: true
attributes:
  check_mode:
    support: full
    description: Reads only; the same in check mode.
requirements: [proxmoxer]
author: twinsite engineers
"""

EXAMPLES = r"""
- name: Read the backup jobs of the secondary room's cluster
  twinsite.dc.backup_job_info:
    cluster: "{{ dc_clusters | selectattr('name', 'eq', 'cl-secondary') | first }}"
  register: jobs
"""

RETURN = r"""
jobs:
  description: The cluster's backup jobs, sorted by id, each as M(twinsite.dc.backup_job) returns C(job).
  returned: success
  type: list
  elements: dict
  sample: [{id: secondary-nightly, schedule: "02:30", storage: local, vms: [backup-proxy], vmids: [110], all: false}]
"""


from ansible_collections.twinsite.dc.plugins.module_utils import _backup_job, _cluster
from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError, secret_aware_module


def main():
    module = secret_aware_module()(argument_spec={"cluster": {"type": "dict", "required": True}}, supports_check_mode=True)
    cluster = _cluster.prepare(module)
    if cluster.get("type") != "proxmox":
        module.fail_json(msg=f"cluster {cluster.get('name')}: backup jobs are a Proxmox VE feature; this cluster is of type {cluster.get('type')!r}")
    try:
        jobs = _backup_job.ProxmoxBackupJobs(_cluster.connect(cluster))
        names = jobs.names()
        found = [_backup_job.view(j, names) for j in jobs.list() or [] if j.get("type", "vzdump") == "vzdump"]
    except TwinsiteError as exc:
        module.fail_json(msg=f"cluster {cluster.get('name')}: {exc}")
    module.exit_json(changed=False, jobs=sorted(found, key=lambda j: j["id"]))


if __name__ == "__main__":
    main()
