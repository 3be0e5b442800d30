# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Exit codes for plans, like ``terraform plan -detailed-exitcode``: 0 in sync, 2 drift, 1 error."""

from __future__ import annotations

DOCUMENTATION = r"""
name: plan_exit
type: aggregate
short_description: Exit 0 when the plan found no drift, 2 when it did, 1 on any error
description:
  - Acts only on plays that set the play variable C(twinsite_plan_exit=true), as C(playbooks/plan.yml)
    does, and only on their C(twinsite.dc.*_drift_info) tasks. Every other run - including a
    converge run whose roles read drift to decide what to fix - keeps Ansible's own exit codes.
  - At the end of such a run, exits 1 if any task failed or any host was unreachable (the plan is
    incomplete, so it cannot say "no drift"), else 2 if any task reported drift, else 0 - so a
    scheduled plan can tell "all is well", "someone changed something" and "the plan is broken" apart.
requirements:
  - enable in ansible.cfg with C(callbacks_enabled = twinsite.dc.plan_exit)
"""

import sys

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "twinsite.dc.plan_exit"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.plan_seen = False
        self.in_plan_play = False
        self.in_plan_task = False
        self.drift = False

    def _note(self, result):
        if not self.in_plan_task:
            return
        plan = result._result.get("twinsite_plan")
        if isinstance(plan, dict):
            self.plan_seen = True
            self.drift = self.drift or bool(plan.get("drift"))
        for item in result._result.get("results", []) if isinstance(result._result.get("results"), list) else []:
            plan = item.get("twinsite_plan") if isinstance(item, dict) else None
            if isinstance(plan, dict):
                self.plan_seen = True
                self.drift = self.drift or bool(plan.get("drift"))

    def v2_playbook_on_play_start(self, play):
        self.in_plan_play = play.vars.get("twinsite_plan_exit") is True

    def v2_playbook_on_task_start(self, task, is_conditional):
        # Known from the task itself, so a plan whose every API call failed still exits 1.
        self.in_plan_task = self.in_plan_play and task.action.startswith("twinsite.dc.") and task.action.endswith("_drift_info")
        self.plan_seen = self.plan_seen or self.in_plan_task

    def v2_runner_on_ok(self, result):
        self._note(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._note(result)

    def v2_playbook_on_stats(self, stats):
        if not self.plan_seen:
            return
        broken = any(stats.failures.get(h) or stats.dark.get(h) for h in stats.processed)
        code = 1 if broken else (2 if self.drift else 0)
        verdict = {0: "no drift", 1: "error: the plan is incomplete", 2: "drift found"}[code]
        self._display.display(f"plan: {verdict} (exit {code})", stderr=True)
        # The stdout callback has already printed the recap (it always runs first). SystemExit
        # passes Ansible's callback error handling and the executor's cleanup (a finally block).
        sys.exit(code)
