#!/usr/bin/python
# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: systemd_timers
short_description: Install a set of systemd service/timer pairs, start the timers, remove the ones no longer listed
version_added: 0.7.0
description:
  - Writes each unit's C(.service) and C(.timer) file (root, 0644, atomically), reloads systemd when
    a file changed, and enables and starts every timer that is not enabled and running yet.
  - Timers whose names match O(prune) but are not in O(units) are stopped, disabled and their two
    files removed, so a job the model no longer has stops running.
  - The whole set in one module call per host. With the template, file and systemd modules in a
    loop, a host with nine jobs took about 11 s for a run that changed nothing; this takes one round trip.
  - Runs on the host whose units they are, as root.
options:
  units:
    description: The service/timer pairs this host should have.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The unit name without suffix (C(twinsite-backup-dns) gives C(twinsite-backup-dns.service) and C(.timer)).
        type: str
        required: true
      service:
        description: The content of the C(.service) file.
        type: str
        required: true
      timer:
        description: The content of the C(.timer) file.
        type: str
        required: true
  prune:
    description:
      - Shell-style patterns of unit names this module owns (C(twinsite-backup-*)). A C(.timer) file
        in O(path) whose name matches one and is not in O(units) is stopped, disabled and removed,
        with its C(.service) file.
      - Empty (the default) removes nothing.
    type: list
    elements: str
    default: []
  path:
    description: Where the unit files live.
    type: path
    default: /etc/systemd/system
attributes:
  check_mode:
    support: full
    description: Reports what would be written, started and removed; changes nothing.
  diff_mode:
    support: full
    description: Each file written or removed, before and after.
author: twinsite engineers
"""

EXAMPLES = r"""
- name: Install the backup job's units and start its timer
  twinsite.dc.systemd_timers:
    units:
      - name: twinsite-backup-dns
        service: "{{ lookup('ansible.builtin.template', 'job.service.j2') }}"
        timer: "{{ lookup('ansible.builtin.template', 'job.timer.j2') }}"
    prune: [twinsite-backup-*]
"""

RETURN = r"""
written:
  description: Unit files written (new, or their content, mode or owner was not as asked).
  returned: always
  type: list
  elements: str
  sample: [/etc/systemd/system/twinsite-backup-dns.timer]
started:
  description: Timers that were enabled or started because they were not both already.
  returned: always
  type: list
  elements: str
  sample: [twinsite-backup-dns.timer]
removed:
  description: Units of O(prune) no longer in O(units), stopped, disabled and removed (names without suffix).
  returned: always
  type: list
  elements: str
"""

import fnmatch
import os
import re
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.twinsite.dc.plugins.module_utils._common import read_text as read

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:_.@-]*$")
MODE = 0o644


def systemctl(module: AnsibleModule, *argv: str) -> str:
    """Run systemctl; a failure fails the module naming the command and systemd's answer."""
    rc, out, err = module.run_command(["systemctl", *argv])
    if rc != 0:
        module.fail_json(msg=f"systemctl {' '.join(argv)} failed (rc {rc}): {(err or out).strip()}")
    return out


def timer_states(module: AnsibleModule, timers: list[str]) -> dict[str, tuple[str, str]]:
    """{timer: (UnitFileState, ActiveState)} in one call; a timer systemd does not know is ('', 'inactive')."""
    states = {}
    if not timers:
        return states
    out = systemctl(module, "show", "--property=Id,UnitFileState,ActiveState", "--", *timers)
    for block in out.strip().split("\n\n"):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if props.get("Id"):
            states[props["Id"]] = (props.get("UnitFileState", ""), props.get("ActiveState", ""))
    return states


def needs_write(path: str, current: str | None, content: str) -> bool:
    if current != content:
        return True
    st = os.stat(path)
    return (st.st_mode & 0o7777) != MODE or st.st_uid != 0 or st.st_gid != 0


def write(module: AnsibleModule, path: str, content: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".twinsite-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
        module.atomic_move(tmp, path)  # keeps an existing file's mode and owner: set ours after
        os.chmod(path, MODE)
        os.chown(path, 0, 0)
    except OSError as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        module.fail_json(msg=f"writing {path} failed: {exc.strerror}")


def main():
    module = AnsibleModule(
        argument_spec={
            "units": {"type": "list", "elements": "dict", "required": True, "options": {
                "name": {"type": "str", "required": True},
                "service": {"type": "str", "required": True},
                "timer": {"type": "str", "required": True},
            }},
            "prune": {"type": "list", "elements": "str", "default": []},
            "path": {"type": "path", "default": "/etc/systemd/system"},
        },
        supports_check_mode=True,
    )
    units, directory = module.params["units"], module.params["path"]
    names = [u["name"] for u in units]
    bad = [n for n in names if not NAME.match(n) or n.endswith((".service", ".timer"))]
    if bad:
        module.fail_json(msg=f"units: {bad[0]!r} is not a unit name without suffix (letters, digits, ':_.@-')")
    if len(set(names)) != len(names):
        module.fail_json(msg=f"units: {sorted({n for n in names if names.count(n) > 1})[0]!r} is listed twice")
    if not os.path.isdir(directory):
        module.fail_json(msg=f"path {directory} is not a directory")

    # What to write: every file whose content, mode or owner differs.
    files = [(os.path.join(directory, f"{u['name']}.{kind}"), u[kind]) for u in units for kind in ("service", "timer")]
    current = {path: read(path) for path, _ in files}
    writes = [(path, content) for path, content in files if needs_write(path, current[path], content)]
    # What to remove: timers this module owns (by pattern) that the list no longer has.
    present = sorted(f[:-len(".timer")] for f in os.listdir(directory) if f.endswith(".timer"))
    stale = [n for n in present if n not in names and any(fnmatch.fnmatchcase(n, p) for p in module.params["prune"])]

    diff = [{"before_header": path, "after_header": path, "before": current[path] or "", "after": content} for path, content in writes]
    for name in stale:
        for kind in ("timer", "service"):
            path = os.path.join(directory, f"{name}.{kind}")
            if os.path.exists(path):
                diff.append({"before_header": path, "after_header": f"{path} (removed)", "before": read(path) or "", "after": ""})

    if not module.check_mode:
        if stale:
            systemctl(module, "disable", "--now", "--", *(f"{n}.timer" for n in stale))
            for name in stale:
                for kind in ("timer", "service"):
                    path = os.path.join(directory, f"{name}.{kind}")
                    if os.path.exists(path):
                        os.unlink(path)
        for path, content in writes:
            write(module, path, content)
        if writes or stale:
            systemctl(module, "daemon-reload")

    # A timer written for the first time is unknown to systemd in check mode: it would be started.
    states = timer_states(module, [f"{n}.timer" for n in names])
    started = [f"{n}.timer" for n in names if states.get(f"{n}.timer") != ("enabled", "active")]
    if started and not module.check_mode:
        systemctl(module, "enable", "--now", "--", *started)

    result = {"changed": bool(writes or stale or started), "written": [p for p, _ in writes], "started": started, "removed": stale}
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
