#!/usr/bin/python
# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: config_store
short_description: Keep device configurations in a git repository, one commit per backup
version_added: 0.5.0
description:
  - Writes each of O(files) under O(path) and commits them in one commit (the repository is created
    the first time). A file whose content did not change is not rewritten; when none changed there is
    no commit and C(changed) is false.
  - The history is the versioned store of every switch's config before every change
    (C(git log -p -- core1.json) in the store shows what changed when), and what a restore by hand reads.
  - Run it on the controller, once per batch (C(run_once), C(delegate_to=localhost)); two commits to
    one repository at once would collide on git's index lock.
options:
  path:
    description: The repository (a directory; created if missing).
    type: path
    required: true
  files:
    description: "Files to write, relative to O(path): C({name, content})."
    type: list
    elements: dict
    required: true
  message:
    description: The commit message.
    type: str
    required: true
attributes:
  check_mode:
    support: full
    description: Reports which files would change, writes nothing.
  diff_mode:
    support: none
requirements: [git on the controller]
author: twinsite engineers
"""

EXAMPLES = r"""
- name: Keep core1's config before the change
  twinsite.dc.config_store:
    path: backups/switches
    files: [{name: core1.json, content: "{{ plan.backup }}"}]
    message: "core1: before the change of {{ now(utc=true).isoformat() }}"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
commit:
  description: The commit made (or the current HEAD when nothing changed; empty in a new repository in check mode).
  returned: always
  type: str
written:
  description: The files that changed.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.twinsite.dc.plugins.module_utils._config_store import StoreError, changed_files, commit, head


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "files": {"type": "list", "elements": "dict", "required": True},
            "message": {"type": "str", "required": True},
        },
        supports_check_mode=True,
    )
    path, files, message = module.params["path"], module.params["files"], module.params["message"]
    module.get_bin_path("git", required=True)
    try:
        if module.check_mode:
            written = changed_files(path, files)
            module.exit_json(changed=bool(written), commit=head(path), written=written)
        commit_id, written = commit(path, files, message)
    except StoreError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=bool(written), commit=commit_id, written=written)


if __name__ == "__main__":
    main()
