# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Audit trail: one JSON line per changed task, so every change to the datacenter is traceable."""

from __future__ import annotations

DOCUMENTATION = r"""
name: audit_log
type: notification
short_description: Write one JSON line per changed task to an audit log
description:
  - For every task that changed something (or would have, in check mode), appends one JSON object
    to the audit log - time (UTC), the user who ran Ansible, playbook, play, host, task name,
    module, whether it was check mode, and a summary of the diff (which files or objects, how many
    lines added and removed).
  - Never writes task arguments, results or diff contents, so secrets cannot leak into the log;
    tasks with C(no_log) are recorded with their name replaced by C(<censored>).
requirements:
  - enable in ansible.cfg with C(callbacks_enabled = twinsite.dc.audit_log)
options:
  path:
    description: File the audit lines are appended to; its directory is created if missing.
    default: logs/audit.jsonl
    env:
      - name: TWINSITE_AUDIT_LOG
    ini:
      - section: twinsite_audit_log
        key: path
    type: path
"""

import datetime
import getpass
import json
import os
import uuid

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "twinsite.dc.audit_log"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.run_id = str(uuid.uuid4())
        self.playbook = None
        self.play = None
        self.user = os.environ.get("SUDO_USER") or _login()

    def set_options(self, task_keys=None, var_options=None, direct=None):
        super().set_options(task_keys=task_keys, var_options=var_options, direct=direct)
        self.path = self.get_option("path")

    def v2_playbook_on_start(self, playbook):
        self.playbook = os.path.basename(playbook._file_name)

    def v2_playbook_on_play_start(self, play):
        self.play = play.get_name()

    def v2_runner_on_ok(self, result):
        if result._result.get("changed"):
            self._record(result, "changed")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        # A failed task may have changed something halfway: the audit trail says it was attempted.
        if result._result.get("changed"):
            self._record(result, "failed")

    def v2_runner_item_on_ok(self, result):
        if result._result.get("changed"):
            self._record(result, "changed")

    def _record(self, result, outcome):
        task = result._task
        censored = bool(task.no_log) or bool(result._result.get("_ansible_no_log"))
        entry = {
            "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "run_id": self.run_id,
            "user": self.user,
            "playbook": self.playbook,
            "play": self.play,
            "host": result._host.get_name(),
            "task": "<censored>" if censored else task.get_name(),
            "module": task.action,
            "outcome": outcome,
            "check_mode": bool(task.check_mode) or bool(result._result.get("_ansible_check_mode")),
        }
        if not censored:
            summary = summarize_diff(result._result.get("diff"))
            if summary:
                entry["diff"] = summary
        directory = os.path.dirname(self.path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as log:
            log.write(json.dumps(entry, sort_keys=True) + "\n")


def _login():
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def summarize_diff(diff):
    """Which objects changed and how many lines: never the contents (they may hold secrets)."""
    if not diff:
        return None
    diffs = diff if isinstance(diff, list) else [diff]
    targets, added, removed = [], 0, 0
    for item in diffs:
        if not isinstance(item, dict):
            continue
        header = item.get("after_header") or item.get("before_header")
        if header and header not in targets:
            targets.append(str(header))
        before, after = item.get("before"), item.get("after")
        if isinstance(before, str) and isinstance(after, str):
            old, new = set(before.splitlines()), set(after.splitlines())
            added += len(new - old)
            removed += len(old - new)
        elif isinstance(before, dict) and isinstance(after, dict):
            keys = set(before) | set(after)
            changed = sorted(k for k in keys if before.get(k) != after.get(k))
            added += len(changed)
            targets.extend(f"key:{k}" for k in changed if f"key:{k}" not in targets)
    return {"targets": targets, "lines_added": added, "lines_removed": removed}
