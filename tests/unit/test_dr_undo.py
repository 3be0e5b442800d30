"""The drill's cleanup script (the dr_undo_script filter, _dr.undo_script), rendered as cleanup.yml renders
it and run with bash against a scratch directory: restored paths are out of place when the script
prints "undone", their data is deleted in the background, and trash an interrupted deletion left
behind goes with the next run."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.twinsite.dc.plugins.filter.dr import dr_undo_script


def render(entries: list[dict]) -> str:
    """The script as the cleanup's task renders it (the filter twinsite.dc.dr_undo_script)."""
    return dr_undo_script(entries)


def run(script: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True, timeout=30)


def wait_gone(paths: list[Path], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while any(p.exists() for p in paths):
        assert time.monotonic() < deadline, f"still there after {seconds} s: {[p for p in paths if p.exists()]}"
        time.sleep(0.05)


def trash_in(directory: Path) -> list[Path]:
    return sorted(directory.glob(".twinsite-trash.*"))


def test_restored_paths_are_out_of_place_at_once_and_deleted_in_the_background(tmp_path):
    data = tmp_path / "srv" / "portal"
    (data / "media").mkdir(parents=True)
    for n in range(50):
        (data / "media" / f"f{n}.bin").write_bytes(b"x" * 4096)
    single = tmp_path / "etc" / "portal.conf"
    single.parent.mkdir()
    single.write_text("listen 80\n")
    missing = tmp_path / "never-restored"
    entry = {"id": "paths:rec3:portal", "kind": "paths", "paths": [f"{data}/", str(single), str(missing)]}

    out = run(render([entry])).stdout
    assert out == "undone paths:rec3:portal\n"
    assert not data.exists() and not single.exists() and not missing.exists()
    wait_gone(trash_in(data.parent) + trash_in(single.parent))
    assert trash_in(data.parent) == [] and trash_in(single.parent) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["etc", "srv"]  # nothing else touched

    assert run(render([entry])).stdout == "undone paths:rec3:portal\n"  # a second cleanup is a no-op


def test_trash_left_by_an_interrupted_deletion_goes_with_the_next_cleanup(tmp_path):
    left = tmp_path / ".twinsite-trash.bind.4242.17"  # a reboot stopped an earlier deletion
    (left / "zones").mkdir(parents=True)
    (left / "zones" / "db.town").write_text("zone\n")
    keep = tmp_path / ".twinsite-trash-lookalike"  # not the cleanup's
    keep.write_text("mine\n")
    entry = {"id": "paths:rec1:dns", "kind": "paths", "paths": [str(tmp_path / "bind")]}

    assert run(render([entry])).stdout == "undone paths:rec1:dns\n"
    wait_gone([left])
    assert keep.read_text() == "mine\n"


def test_a_path_that_cannot_be_moved_stays_in_the_ledger(tmp_path):
    (tmp_path / "data").mkdir()
    broken = tmp_path / "bin"
    broken.mkdir()
    (broken / "mv").write_text("#!/bin/sh\necho 'mv: cannot move: Read-only file system' >&2\nexit 1\n")
    (broken / "mv").chmod(0o755)
    entry = {"id": "paths:rec2:db", "kind": "paths", "paths": [str(tmp_path / "data")]}
    out = run(f"PATH={broken}:$PATH\n" + render([entry])).stdout
    assert out == "failed paths:rec2:db: mv: cannot move: Read-only file system\n"
    assert (tmp_path / "data").is_dir()  # not undone: the entry stays in the ledger, the next cleanup tries again


def test_a_cleanup_command_runs_as_its_user_with_its_quotes_intact_and_an_unknown_kind_fails_alone(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "systemctl").write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path}/systemctl.log\n")
    (fake / "runuser").write_text(f"#!/bin/sh\necho \"$2\" >> {tmp_path}/user\nshift 3\nexec \"$@\"\n")  # -u USER -- CMD...
    for tool in fake.iterdir():
        tool.chmod(0o755)
    command = f"printf '%s\\n' \"it's done\" > {tmp_path}/out"
    entries = [{"id": "command1:rec2:db", "kind": "command", "command": command, "user": "postgres", "units": ["postgresql"]},
               {"id": "mystery:rec2:db", "kind": "mystery"},
               {"id": "command2:rec2:db", "kind": "command", "command": "exit 3", "user": "root", "units": []}]

    out = run(f"PATH={fake}:$PATH\n" + render(entries)).stdout.splitlines()
    assert out == ["undone command1:rec2:db", "failed mystery:rec2:db: unknown ledger entry kind mystery", "failed command2:rec2:db: "]
    assert (tmp_path / "out").read_text() == "it's done\n"
    assert (tmp_path / "user").read_text() == "postgres\nroot\n"
    assert (tmp_path / "systemctl.log").read_text() == "start postgresql\n"  # its service up for the command, once


def test_an_entry_without_its_list_is_a_clear_error():
    with pytest.raises(AnsibleFilterError, match="dr_undo_script expects ledger entries .*'units'"):
        render([{"id": "units:rec1:dns", "kind": "units"}])


def test_the_async_results_of_earlier_undos_go_and_nothing_else(tmp_path):
    """The undo runs as an Ansible async job whose result file Ansible never removes. Each undo
    removes earlier undos' results (a minute old or more); its own (no result yet), a fresh one and
    other jobs' results stay."""
    jobs = tmp_path / ".ansible_async"
    jobs.mkdir()
    script = render([{"id": "address:rec1:drill", "kind": "address", "host": "rec1", "addresses": []}])
    earlier = jobs / "j111.1"
    earlier.write_text(json.dumps({"cmd": script, "stdout": "undone address:rec1:drill", "finished": 1}))  # as Ansible writes it
    fresh = jobs / "j222.2"
    fresh.write_text(earlier.read_text())
    own = jobs / "j333.3"
    own.write_text(json.dumps({"started": 1, "finished": 0, "ansible_job_id": "j333.3"}))
    other = jobs / "j444.4"
    other.write_text(json.dumps({"cmd": "apt-get upgrade", "finished": 1}))
    old = time.time() - 600
    for path in (earlier, own, other):
        os.utime(path, (old, old))
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True, timeout=30,
                          env={**os.environ, "HOME": str(tmp_path)})
    assert "undone address:rec1:drill" in done.stdout
    assert sorted(p.name for p in jobs.iterdir()) == ["j222.2", "j333.3", "j444.4"]
