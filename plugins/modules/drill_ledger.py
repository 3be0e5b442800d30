#!/usr/bin/python
# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: drill_ledger
short_description: Record what a DR drill created, so cleanup works after a failure and twice in a row
version_added: 0.3.0
description:
  - Keeps a JSON ledger on the controller of everything a drill created (a VM clone, a DNS record, a
    firewall rule...), each entry with a unique C(id) and whatever the cleanup needs (C(kind),
    C(host), C(undo)...). Record an entry right after creating the thing, remove it right after
    undoing it; a cleanup run after a failure or a killed run reads the ledger and undoes what is left.
  - "Run it on the controller (C(delegate_to: localhost)). Several hosts may write to one ledger at
    the same time; each change is made under a lock on C(<path>.lock) and replaces the file
    atomically."
  - A ledger that is not JSON is never overwritten; the task fails and says how to recover.
options:
  path:
    description: The ledger file (created with its directory on the first O(state=present)).
    type: path
    required: true
  state:
    description:
      - C(present) records O(entries) whose ids are not recorded yet (a recorded id is left as it was).
      - C(absent) removes the entries with O(ids); ids not in the ledger are ignored.
      - C(list) only reads.
    type: str
    choices: [present, absent, list]
    default: present
  entries:
    description: "Entries to record, each a dict with a unique C(id) string plus free-form keys."
    type: list
    elements: dict
  ids:
    description: Ids of the entries to remove.
    type: list
    elements: str
  drill:
    description: Id of the drill run, stored as C(drill) in each new entry (unless the entry has one).
    type: str
attributes:
  check_mode:
    support: full
    description: Returns the ledger as it would be and whether it would change; writes nothing.
  diff_mode:
    support: none
author: twinsite engineers
"""

EXAMPLES = r"""
- name: Record the drill's clone of the portal VM before anything else can fail
  twinsite.dc.drill_ledger:
    path: "{{ playbook_dir }}/../reports/drill/ledger.json"
    drill: "{{ drill_id }}"
    entries:
      - {id: "vm:portal-drill", kind: vm, host: "{{ inventory_hostname }}", undo: "delete VM portal-drill"}
  delegate_to: localhost

- name: Read what is left to clean up
  twinsite.dc.drill_ledger:
    path: "{{ playbook_dir }}/../reports/drill/ledger.json"
    state: list
  delegate_to: localhost
  run_once: true
  register: ledger

- name: Forget the clone once it is deleted
  twinsite.dc.drill_ledger:
    path: "{{ playbook_dir }}/../reports/drill/ledger.json"
    state: absent
    ids: ["vm:portal-drill"]
  delegate_to: localhost
"""

RETURN = r"""
entries:
  description: The ledger after the operation (as it would be, in check mode), in recording order.
  returned: always
  type: list
  elements: dict
  sample:
    - {id: "vm:portal-drill", kind: vm, host: pve-b1, undo: "delete VM portal-drill", drill: "drill-2026-11-22",
       recorded: "2026-11-22T15:40:00Z"}
added:
  description: Ids recorded by this task (state=present).
  returned: always
  type: list
  elements: str
removed:
  description: Ids removed by this task (state=absent).
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.twinsite.dc.plugins.module_utils import _ledger


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "state": {"type": "str", "choices": ["present", "absent", "list"], "default": "present"},
            "entries": {"type": "list", "elements": "dict"},
            "ids": {"type": "list", "elements": "str"},
            "drill": {"type": "str"},
        },
        required_if=[("state", "present", ["entries"]), ("state", "absent", ["ids"])],
        supports_check_mode=True,
    )
    p = module.params
    added, removed = [], []
    try:
        if p["state"] == "present":
            added, entries = _ledger.record(p["path"], p["entries"], p["drill"], module.check_mode)
        elif p["state"] == "absent":
            removed, entries = _ledger.remove(p["path"], p["ids"], module.check_mode)
        else:
            entries = _ledger.read(p["path"])
    except _ledger.LedgerError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=bool(added or removed), entries=entries, added=added, removed=removed)


if __name__ == "__main__":
    main()
