#!/usr/bin/python
# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_posture
short_description: Judge every service against 3-2-1-1-0 from recorded evidence and write the report
version_added: 0.2.0
description:
  - Reads what the backup jobs recorded (C(twinsite-backup status) on the secondary site's
    repository host and on each protected host) and this run's immutability tests, and writes
    C(posture.json) and C(posture.html) into O(dest).
  - One entry per service with C(name), C(copies) (production plus each verified backup copy),
    C(offsite_verified), C(immutable_verified), C(restore_verified), C(rpo_met),
    C(last_restore_test) and, for anything false, the reasons.
  - A copy counts only when its last C(restic check) passed and its last restore test matched the
    backup-time manifest; the cloud copy counts as immutable only after a delete of a locked version
    was refused in this run.
  - Runs on the controller.
options:
  services:
    description: C(dc_services).
    type: list
    elements: dict
    required: true
  policies:
    description: C(dc_backup_policies).
    type: list
    elements: dict
    required: true
  secondary_status:
    description: The JSON C(twinsite-backup status) printed on the secondary site's repository host.
    type: dict
    required: true
  client_status:
    description: The JSON C(twinsite-backup status) of each protected host.
    type: list
    elements: dict
    default: []
  lock_tests:
    description: The C(results) of M(twinsite.dc.s3_immutability_test), prefixes named after services.
    type: list
    elements: dict
    default: []
  dest:
    description: Directory for C(posture.json) and C(posture.html) (created if missing).
    type: path
    required: true
  warn_ratio:
    description: A copy's RPO state is C(warn) once its newest snapshot's age passes this share of the target.
    type: float
    default: 0.8
  evaluate_at:
    description:
      - Judge RPOs as of this UTC time (ISO 8601) instead of now, to ask "what breaches if nothing
        new arrives by then?" (for example while the cloud is unreachable).
    type: str
attributes:
  check_mode:
    support: full
    description: Computes and returns the posture; writes no file.
  diff_mode:
    support: none
author: twinsite engineers
"""

EXAMPLES = r"""
- name: Write reports/backup/posture.json and posture.html
  twinsite.dc.backup_posture:
    services: "{{ dc_services }}"
    policies: "{{ dc_backup_policies }}"
    secondary_status: "{{ secondary.stdout | from_json }}"
    client_status: "{{ clients.results | map(attribute='stdout') | map('from_json') }}"
    lock_tests: "{{ lock_test.results }}"
    dest: "{{ playbook_dir }}/../reports/backup"
"""

RETURN = r"""
posture:
  description: The report as written to posture.json.
  returned: always
  type: dict
  sample:
    generated: "2026-11-22T15:40:00Z"
    summary: {services: 3, compliant: 3, rpo_breaches: 0}
    services:
      - {name: dns, copies: 3, offsite_verified: true, immutable_verified: true, restore_verified: true,
         rpo_met: true, last_restore_test: "2026-11-22T15:31:53Z", rule_3_2_1_1_0: true, reasons: []}
files:
  description: Paths written.
  returned: unless check mode
  type: list
  elements: str
"""

import datetime as dt
import json
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.twinsite.dc.plugins.module_utils import _posture


def main():
    module = AnsibleModule(
        argument_spec={
            "services": {"type": "list", "elements": "dict", "required": True},
            "policies": {"type": "list", "elements": "dict", "required": True},
            "secondary_status": {"type": "dict", "required": True},
            "client_status": {"type": "list", "elements": "dict", "default": []},
            "lock_tests": {"type": "list", "elements": "dict", "default": []},
            "dest": {"type": "path", "required": True},
            "warn_ratio": {"type": "float", "default": _posture.WARN_RATIO},
            "evaluate_at": {"type": "str"},
        },
        supports_check_mode=True,
    )
    p = module.params
    when = dt.datetime.now(dt.UTC)
    if p["evaluate_at"]:
        when = _posture.parse(p["evaluate_at"])
        if when is None:
            module.fail_json(msg=f"evaluate_at {p['evaluate_at']!r} is not an ISO 8601 time, e.g. 2026-11-22T18:00:00Z")
    report = _posture.posture(p["services"], p["policies"], p["secondary_status"], p["client_status"],
                              p["lock_tests"], when, p["warn_ratio"])
    if module.check_mode:
        module.exit_json(changed=False, posture=report)
    try:
        os.makedirs(p["dest"], exist_ok=True)
        files = []
        for name, text in (("posture.json", json.dumps(report, indent=2, sort_keys=True) + "\n"),
                           ("posture.html", _posture.render_html(report))):
            path = os.path.join(p["dest"], name)
            tmp = f"{path}.tmp"
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(tmp, path)
            files.append(path)
    except OSError as exc:
        module.fail_json(msg=f"cannot write the backup posture report into {p['dest']}: {exc.strerror}", posture=report)
    module.exit_json(changed=True, posture=report, files=files)


if __name__ == "__main__":
    main()
