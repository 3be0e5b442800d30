# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin behind twinsite.dc.validate_site: runs on the controller, reads the inventory's files."""

from __future__ import annotations

import os

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.twinsite.dc.plugins.module_utils import _site_model


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        if not _site_model.HAS_JSONSCHEMA:
            return {**result, "failed": True, "msg": "validate_site needs the Python package jsonschema on the controller (make setup installs it)"}
        inventories = self._task.args.get("inventory")
        if inventories is None:
            inventories = [s for s in task_vars.get("ansible_inventory_sources", []) if os.path.isdir(s)]
        elif isinstance(inventories, str):
            inventories = [inventories]
        if not inventories:
            return {**result, "failed": True, "msg": "no inventory directory to validate: run with -i inventory/<site> or set the inventory option"}
        groups = {g: h for g, h in task_vars.get("groups", {}).items() if g not in ("all", "ungrouped")}
        problems = []
        for inventory in inventories:
            problems += [str(f) for f in _site_model.validate(inventory, groups=groups)]
        result["problems"] = problems
        result["inventories"] = inventories
        if problems:
            # One clean line per problem first; the task result below repeats them as data.
            for line in problems:
                Display().display(f"  {line}", color="red", stderr=True)
            result["failed"] = True
            result["msg"] = f"the site model has {len(problems)} problem(s), listed in 'problems' (file: path: what is wrong)"
        else:
            result["msg"] = f"the site model in {', '.join(inventories)} is valid"
        return result
