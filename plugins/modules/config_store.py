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
  - Run it on the controller, once per batch (C(run_once), C(delegate_to: localhost)): two commits to
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

import os
import re

from ansible.module_utils.basic import AnsibleModule

NAME = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")


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
    for i, item in enumerate(files):
        name = item.get("name")
        if not isinstance(name, str) or not NAME.match(name) or ".." in name.split("/"):
            module.fail_json(msg=f"files[{i}].name: expected a relative file name such as core1.json, found {name!r}")
        if not isinstance(item.get("content"), str):
            module.fail_json(msg=f"files[{i}].content: expected the file's text, found {type(item.get('content')).__name__}")
    git = module.get_bin_path("git", required=True)

    def call(*args, check=True):
        rc, out, err = module.run_command([git, "-C", path, "-c", "user.name=twinsite", "-c", "user.email=twinsite@localhost", *args])
        if check and rc != 0:
            module.fail_json(msg=f"git {args[0]} in the config store {path} failed: {(err or out).strip()}")
        return out.strip()

    written = []
    for item in files:
        target = os.path.join(path, item["name"])
        try:
            with open(target, encoding="utf-8") as handle:
                same = handle.read() == item["content"]
        except FileNotFoundError:
            same = False
        if not same:
            written.append(item["name"])
    is_repo = os.path.isdir(os.path.join(path, ".git"))
    head = call("rev-parse", "HEAD", check=False) if is_repo else ""
    if module.check_mode or not written:
        module.exit_json(changed=bool(written), commit=head, written=written)

    os.makedirs(path, exist_ok=True)
    if not is_repo:
        call("init", "-q")
    for item in files:
        if item["name"] in written:
            target = os.path.join(path, item["name"])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target + ".tmp", "w", encoding="utf-8") as handle:
                handle.write(item["content"])
            os.replace(target + ".tmp", target)
    call("add", "--", *written)
    call("commit", "-q", "-m", message, "--", *written)
    module.exit_json(changed=True, commit=call("rev-parse", "HEAD"), written=written)


if __name__ == "__main__":
    main()
