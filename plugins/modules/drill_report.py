#!/usr/bin/python
# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: drill_report
short_description: Write a DR drill's report (JSON, HTML for auditors, JUnit XML) and its line in the drill history
version_added: 0.3.0
description:
  - Takes the report a DR drill, failover or failback produced and writes C(report.json),
    C(report.html) and C(junit.xml) into O(dest), and the drill's summary into the JSON Lines
    history O(history).
  - "The report is checked first; a missing key or a wrong value fails the task with every problem
    named by its path (for example V(services[1].status: expected green or red, found 'blue')),
    and nothing is written. A report whose C(status) is C(green) while a service is red, production
    was touched or the cleanup failed is refused the same way."
  - C(report.html) is one self-contained page (no script, no external asset) mapping the evidence
    to ISO/IEC 27001:2022 A.5.30 and A.8.13, with per-service RTO and RPO against their targets,
    a timeline of the steps, the production, isolation and cleanup checks, and the trend over the
    last 20 drills.
  - C(junit.xml) has one testsuite C(twinsite.dr.<kind>) with a testcase per service (failing when
    the service is red, with its reason) and one each for preflight, production_untouched,
    isolation and cleanup, for CI to show.
  - Writing the same report again changes no file; a history line with the report's C(id) is
    replaced, not repeated.
  - Runs on the controller.
options:
  report:
    description:
      - The report as the drill produced it, with C(kind), C(id), C(site), C(started),
        C(finished), C(duration_s), C(status), C(preflight), C(services), C(production_untouched),
        C(isolation), C(cleanup) and C(standards); times are ISO 8601 UTC, durations seconds,
        unmeasured numbers null.
    type: dict
    required: true
  dest:
    description:
      - The report's directory, by convention C(reports/drills/<id>) (created if missing).
    type: path
    required: true
  history:
    description:
      - The JSON Lines drill history (one summary per drill, oldest first).
      - Defaults to C(history.jsonl) in the parent directory of O(dest).
    type: path
attributes:
  check_mode:
    support: full
    description: Validates and renders everything, reports which files would change; writes nothing.
  diff_mode:
    support: none
author: twinsite engineers
"""

EXAMPLES = r"""
- name: Write reports/drills/<id>/ and the drill history
  twinsite.dc.drill_report:
    report: "{{ __dr_drill_report }}"
    dest: "{{ playbook_dir }}/../reports/drills/{{ __dr_drill_report.id }}"

- name: Render a failover's report from its saved JSON into a separate history
  twinsite.dc.drill_report:
    report: "{{ lookup('ansible.builtin.file', 'reports/failovers/20261122T180501Z/report.json') | from_json }}"
    dest: reports/failovers/20261122T180501Z
    history: reports/failovers/history.jsonl
"""

RETURN = r"""
paths:
  description: The files written (or that would be written in check mode), by role.
  returned: always
  type: dict
  sample:
    json: reports/drills/20261122T180501Z/report.json
    html: reports/drills/20261122T180501Z/report.html
    junit: reports/drills/20261122T180501Z/junit.xml
    history: reports/drills/history.jsonl
status:
  description: The drill's overall status, C(green) or C(red), as the report states it.
  returned: always
  type: str
  sample: green
summary:
  description: The drill's line in the history.
  returned: always
  type: dict
  sample:
    id: "20261122T180501Z"
    kind: drill
    started: "2026-11-22T18:05:01Z"
    status: green
    duration_s: 123.4
    services:
      dns: {status: green, rto_s: 41.2, rpo_s: 900.0, rto_target_s: 1800, rpo_target_s: 3600}
changed_files:
  description: The paths whose content changed (in check mode, would change).
  returned: always
  type: list
  elements: str
  sample: [reports/drills/20261122T180501Z/report.html, reports/drills/history.jsonl]
problems:
  description: What is wrong with the report, each named by its path.
  returned: failure
  type: list
  elements: str
  sample: ["services[1].status: expected green or red, found 'blue'"]
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.twinsite.dc.plugins.module_utils._drill_report import changed_files, render_files, summarise, validate, write


def default_history(dest: str) -> str:
    return os.path.join(os.path.dirname(os.path.normpath(dest)), "history.jsonl")


def run(params: dict, check_mode: bool) -> dict:
    """The module's decision without AnsibleModule: validate, compare what would be written with
    the files on disk, write unless ``check_mode``. Raises ValueError for an invalid report or
    history, OSError when a file cannot be read or written."""
    report, dest = params["report"], params["dest"]
    history = params.get("history") or default_history(dest)
    problems = validate(report)
    if problems:
        error = ValueError(f"the drill report {report.get('id') or '(no id)'} has {len(problems)} problem(s): " + "; ".join(problems))
        error.problems = problems
        raise error
    files = render_files(dest, report, history)
    changed = changed_files(files)
    paths = {role: path for role, (path, _) in files.items()}
    if changed and not check_mode:
        paths = write(dest, report, history)
    return {"changed": bool(changed), "changed_files": changed, "paths": paths, "status": report["status"], "summary": summarise(report)}


def main():
    module = AnsibleModule(
        argument_spec={
            "report": {"type": "dict", "required": True},
            "dest": {"type": "path", "required": True},
            "history": {"type": "path"},
        },
        supports_check_mode=True,
    )
    p = module.params
    ident = (p["report"] or {}).get("id")
    if ident and os.path.basename(os.path.normpath(p["dest"])) != ident:
        module.warn(f"dest {p['dest']} is not named after the report's id {ident}; reports/drills/<id> keeps one directory per drill")
    try:
        result = run(p, module.check_mode)
    except ValueError as exc:
        module.fail_json(msg=str(exc), problems=getattr(exc, "problems", []))
    except OSError as exc:
        module.fail_json(msg=f"cannot write the drill report {ident} into {p['dest']}: {exc.strerror or exc} ({exc.filename}); "
                             "check the directory exists and is writable")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
