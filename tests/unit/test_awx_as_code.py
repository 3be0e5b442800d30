"""AWX as code (playbooks/awx.yml) and the systemd timer (role dr_schedule) schedule the same DR drill:
the rrule is the first Sunday of each month at 03:00 UTC in a form AWX accepts, the job template runs
playbooks/dr_drill.yml, and the timer's OnCalendar elapses at exactly the rrule's instants."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from dateutil import rrule

REPO = Path(__file__).resolve().parents[2]
PLAY = yaml.safe_load((REPO / "playbooks" / "awx.yml").read_text())[0]
ROLE_DEFAULTS = yaml.safe_load((REPO / "roles" / "dr_schedule" / "defaults" / "main.yml").read_text())
# A fixed base so the expected instants never change: 2025-01-15 is after January's first Sunday.
BASE = datetime(2025, 1, 15, tzinfo=UTC)
EXPECTED_NEXT_3 = [datetime(2025, 2, 2, 3, tzinfo=UTC), datetime(2025, 3, 2, 3, tzinfo=UTC), datetime(2025, 4, 6, 3, tzinfo=UTC)]


def _resolve(value):
    """The play's `{{ name }}` references to its own vars, resolved (the only templating awx.yml uses there)."""
    match = re.fullmatch(r"\{\{\s*(\w+)\s*\}\}", value) if isinstance(value, str) else None
    return _resolve(PLAY["vars"][match.group(1)]) if match else value


def _task(module: str) -> dict:
    tasks = [task[module] for task in PLAY["tasks"] if module in task]
    assert len(tasks) == 1, f"playbooks/awx.yml should have exactly one {module} task, has {len(tasks)}"
    return {key: _resolve(value) for key, value in tasks[0].items()}


def _rrule_text() -> str:
    return _task("awx.awx.schedule")["rrule"]


def _awx_next(count: int, after: datetime) -> list[datetime]:
    rule = rrule.rrulestr(_rrule_text())
    found, moment = [], after
    for _ in range(count):
        moment = rule.after(moment)
        found.append(moment)
    return found


def test_rrule_is_the_first_sunday_of_each_month_at_0300_utc():
    rule = rrule.rrulestr(_rrule_text())
    runs = list(rule.between(datetime(2025, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)))
    assert len(runs) == 24, f"expected one run a month for two years, got {len(runs)}"
    for run in runs:
        assert run.utcoffset().total_seconds() == 0, f"{run} is not in UTC"
        assert run.weekday() == 6 and run.day <= 7, f"{run:%Y-%m-%d} is not the first Sunday of its month"
        assert (run.hour, run.minute, run.second) == (3, 0, 0), f"{run} is not at 03:00:00"
    assert [(run.year, run.month) for run in runs] == [(year, month) for year in (2025, 2026) for month in range(1, 13)]


def test_rrule_passes_awx_own_rrule_checks():
    # awx/api/serializers.py (SchedulePreviewSerializer.validate_rrule): one DTSTART, INTERVAL in every
    # RRULE, and no numeric BYDAY prefix such as BYDAY=1SU.
    text = _rrule_text()
    assert len(re.findall(r"DTSTART[;:]", text)) == 1
    rules = re.findall(r"RRULE:\S+", text)
    assert rules, "no RRULE in the schedule"
    for rule in rules:
        assert "INTERVAL=" in rule, f"AWX requires INTERVAL: {rule}"
        assert not re.match(r".*?BYDAY[:=][0-9]+[a-zA-Z]{2}", rule), f"AWX refuses a numeric BYDAY prefix: {rule}"


def test_job_template_runs_the_dr_drill_in_the_execution_environment():
    template = _task("awx.awx.job_template")
    assert template["playbook"] == "playbooks/dr_drill.yml"
    assert (REPO / template["playbook"]).is_file(), f"{template['playbook']} does not exist in the project"
    assert template["execution_environment"] == _task("awx.awx.execution_environment")["name"]
    assert template["extra_vars"]["twinsite_dr_trigger"] == "awx"
    assert template["allow_simultaneous"] is False
    assert _task("awx.awx.schedule")["unified_job_template"] == template["name"]


def test_vault_password_is_never_logged():
    task = next(task for task in PLAY["tasks"] if "awx.awx.credential" in task)
    assert task.get("no_log") is True
    assert "twinsite_awx_vault_password" not in PLAY["vars"], "a secret must have no default"


def test_module_defaults_use_the_action_group_awx_awx_defines():
    spec = importlib.util.find_spec("ansible_collections.awx.awx")
    assert spec is not None, "awx.awx is not installed (it comes with the `ansible` package)"
    runtime = yaml.safe_load((Path(next(iter(spec.submodule_search_locations))) / "meta" / "runtime.yml").read_text())
    (group,) = PLAY["module_defaults"]
    assert group.startswith("group/awx.awx.")
    assert group.removeprefix("group/awx.awx.") in runtime["action_groups"]
    modules = {module.removeprefix("awx.awx.") for task in PLAY["tasks"] for module in task if module.startswith("awx.awx.")}
    assert modules <= set(runtime["action_groups"]["controller"]), "a module outside the group gets no connection settings"


def test_timer_and_awx_schedule_start_the_drill_at_the_same_instants():
    calendar = ROLE_DEFAULTS["dr_schedule_on_calendar"]
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail(
            f"systemd-analyze is not installed: it is the only authority on what OnCalendar '{calendar}' means. "
            "Install systemd (apt-get install systemd) on the machine running the unit tests."
        )
    result = subprocess.run(
        [analyze, "calendar", "--iterations=3", f"--base-time={BASE:%Y-%m-%d %H:%M:%S} UTC", calendar],
        capture_output=True,
        text=True,
        env={**os.environ, "TZ": "UTC"},
        check=False,
    )
    assert result.returncode == 0, f"systemd-analyze calendar '{calendar}' failed: {result.stderr}"
    timer = [
        datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        for stamp in re.findall(r"(?:Next elapse|Iter\. #\d+): \w+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", result.stdout)
    ]
    assert timer == EXPECTED_NEXT_3, f"OnCalendar '{calendar}' elapses at {timer}:\n{result.stdout}"
    assert _awx_next(3, BASE) == EXPECTED_NEXT_3, f"the AWX rrule runs at {_awx_next(3, BASE)}"
