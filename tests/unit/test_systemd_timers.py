"""twinsite.dc.systemd_timers: unit files written only when they differ, timers started only when
they are not, stale units of the module's own patterns removed, check mode touching nothing.
systemd is a fake that keeps each timer's enabled/active state and records every systemctl call."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.twinsite.dc.plugins.modules import systemd_timers


class FakeSystemd:
    def __init__(self, directory: Path):
        self.directory = directory
        self.enabled: set[str] = set()
        self.active: set[str] = set()
        self.calls: list[list[str]] = []

    def __call__(self, module, *argv):
        self.calls.append(list(argv))
        verb, units = argv[0], [a for a in argv[1:] if not a.startswith("-")]
        if verb == "show":
            return "\n\n".join(
                f"Id={u}\nUnitFileState={'enabled' if u in self.enabled else ('disabled' if (self.directory / u).exists() else '')}\n"
                f"ActiveState={'active' if u in self.active else 'inactive'}" for u in units) + "\n"
        if verb == "enable":
            self.enabled |= set(units)
            self.active |= set(units)
        elif verb == "disable":
            self.enabled -= set(units)
            self.active -= set(units)
        return ""

    def mutations(self):
        return [c for c in self.calls if c[0] != "show"]


@pytest.fixture
def systemd(tmp_path, monkeypatch):
    fake = FakeSystemd(tmp_path)
    monkeypatch.setattr(systemd_timers, "systemctl", fake)
    return fake


def unit(name: str, every: int = 60) -> dict:
    return {"name": name, "service": f"[Service]\nExecStart=/bin/true {name}\n", "timer": f"[Timer]\nOnUnitActiveSec={every}min\n"}


@pytest.fixture
def run(tmp_path, capsys):
    """Run the module on tmp_path's unit files; its JSON result."""
    def _run(units, prune=("twinsite-backup-*",), check=False, diff=False) -> dict:
        args = {"units": units, "prune": list(prune), "path": str(tmp_path), "_ansible_check_mode": check, "_ansible_diff": diff}
        with patch_module_args(args), pytest.raises(SystemExit):
            systemd_timers.main()
        return json.loads(capsys.readouterr().out)
    return _run


def test_first_run_installs_and_starts_then_a_second_run_does_nothing(run, tmp_path, systemd):
    units = [unit("twinsite-backup-dns"), unit("twinsite-backup-portal")]
    first = run(units)
    assert first["changed"] is True
    assert sorted(Path(p).name for p in first["written"]) == ["twinsite-backup-dns.service", "twinsite-backup-dns.timer",
                                                              "twinsite-backup-portal.service", "twinsite-backup-portal.timer"]
    assert (tmp_path / "twinsite-backup-dns.timer").read_text() == "[Timer]\nOnUnitActiveSec=60min\n"
    assert oct(os.stat(tmp_path / "twinsite-backup-dns.service").st_mode & 0o777) == "0o644"
    assert systemd.mutations() == [["daemon-reload"], ["enable", "--now", "--", "twinsite-backup-dns.timer", "twinsite-backup-portal.timer"]]
    assert first["started"] == ["twinsite-backup-dns.timer", "twinsite-backup-portal.timer"]

    systemd.calls.clear()
    second = run(units)
    assert second == {**second, "changed": False, "written": [], "started": [], "removed": []}
    assert systemd.mutations() == []


def test_a_changed_schedule_or_mode_is_rewritten_and_systemd_reloaded_without_restarting(run, tmp_path, systemd):
    run([unit("twinsite-backup-dns")])
    os.chmod(tmp_path / "twinsite-backup-dns.service", 0o600)
    systemd.calls.clear()
    again = run([unit("twinsite-backup-dns", every=30)], diff=True)
    assert again["changed"] is True
    assert sorted(Path(p).name for p in again["written"]) == ["twinsite-backup-dns.service", "twinsite-backup-dns.timer"]
    assert oct(os.stat(tmp_path / "twinsite-backup-dns.service").st_mode & 0o777) == "0o644"
    assert systemd.mutations() == [["daemon-reload"]]  # the running timer stays; systemd re-reads it
    timer = next(d for d in again["diff"] if d["after_header"].endswith(".timer"))
    assert timer["before"] == "[Timer]\nOnUnitActiveSec=60min\n" and timer["after"] == "[Timer]\nOnUnitActiveSec=30min\n"


def test_a_job_the_list_no_longer_has_is_stopped_and_removed_and_others_are_left_alone(run, tmp_path, systemd):
    run([unit("twinsite-backup-dns"), unit("twinsite-backup-old")])
    (tmp_path / "someone-else.timer").write_text("[Timer]\n")
    (tmp_path / "twinsite-verify-dns.timer").write_text("[Timer]\n")  # another side's unit: not in prune
    systemd.calls.clear()
    result = run([unit("twinsite-backup-dns")])
    assert result["changed"] is True and result["removed"] == ["twinsite-backup-old"] and result["written"] == []
    assert systemd.mutations() == [["disable", "--now", "--", "twinsite-backup-old.timer"], ["daemon-reload"]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["someone-else.timer", "twinsite-backup-dns.service",
                                                          "twinsite-backup-dns.timer", "twinsite-verify-dns.timer"]


def test_a_timer_enabled_but_stopped_is_started(run, tmp_path, systemd):
    run([unit("twinsite-backup-dns")])
    systemd.active.clear()
    systemd.calls.clear()
    result = run([unit("twinsite-backup-dns")])
    assert result["changed"] is True and result["started"] == ["twinsite-backup-dns.timer"] and result["written"] == []
    assert systemd.mutations() == [["enable", "--now", "--", "twinsite-backup-dns.timer"]]


def test_check_mode_reports_everything_and_touches_nothing(run, tmp_path, systemd):
    run([unit("twinsite-backup-old")])
    before = {p.name: p.read_text() for p in tmp_path.iterdir()}
    systemd.calls.clear()
    result = run([unit("twinsite-backup-dns")], check=True, diff=True)
    assert result["changed"] is True
    assert result["removed"] == ["twinsite-backup-old"] and result["started"] == ["twinsite-backup-dns.timer"]
    assert len(result["written"]) == 2 and len(result["diff"]) == 4  # two new files, two removed
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == before
    assert systemd.mutations() == []


@pytest.mark.parametrize(("units", "message"), [
    ([{"name": "backup.timer", "service": "", "timer": ""}], "'backup.timer' is not a unit name without suffix"),
    ([{"name": "../etc/x", "service": "", "timer": ""}], "'../etc/x' is not a unit name without suffix"),
    ([unit("twinsite-backup-a"), unit("twinsite-backup-a")], "'twinsite-backup-a' is listed twice"),
])
def test_bad_input_fails_naming_the_unit_and_writes_nothing(run, tmp_path, systemd, units, message):
    result = run(units)
    assert result["failed"] is True and message in result["msg"]
    assert list(tmp_path.iterdir()) == [] and systemd.calls == []
