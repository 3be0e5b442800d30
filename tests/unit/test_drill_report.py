"""The DR drill report without a drill: validation naming paths, the history line and its JSON Lines
file, JUnit XML a CI reads, the auditor's HTML page (escaped, self-contained), and twinsite.dc.drill_report
writing it all idempotently (check mode writes nothing)."""

from __future__ import annotations

import copy
import json
import re
import xml.etree.ElementTree as ET  # noqa: S405 - parses only what the renderer under test produced
from pathlib import Path

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.twinsite.dc.plugins.module_utils import _drill_report as dr
from ansible_collections.twinsite.dc.plugins.modules import drill_report as drill_report_module


def step(name: str, start: str, end: str, status: str = "ok", detail: str = "") -> dict:
    return {"name": name, "started": f"2026-11-22T18:{start}Z", "finished": f"2026-11-22T18:{end}Z", "status": status, "detail": detail}


def report(ident: str = "20261122T180501Z", started: str = "2026-11-22T18:05:01Z", **changes) -> dict:
    """A red drill: dns recovered in time, db red (restore failed)."""
    base = {
        "kind": "drill", "id": ident, "site": "demo-town", "started": started, "finished": "2026-11-22T18:07:04Z", "duration_s": 123.4,
        "status": "red",
        "preflight": {"status": "ok", "checks": [{"name": "recovery network free", "ok": True, "detail": "no tsl-rec VM"}]},
        "services": [
            {"name": "dns", "tier": 1, "method": "restore_data", "status": "green", "rto_s": 41.2, "rpo_s": 900.0,
             "rto_target_s": 1800, "rpo_target_s": 3600, "targets": {"host": "rec1", "addresses": {"172.31.20.41": "172.31.70.41"}},
             "restored_point": {"snapshot": "ab12cd34", "time": "2026-11-22T17:50:01Z", "copy": "secondary"}, "reason": None,
             "steps": [step("restore", "05:05", "05:30"), step("start", "05:30", "05:46")],
             "probes": [{"type": "dns", "target": "www.demo-town.example", "ok": True, "detail": "198.51.100.7"}]},
            {"name": "db", "tier": 2, "method": "restore_data", "status": "red", "rto_s": None, "rpo_s": 5400.0,
             "rto_target_s": 60, "rpo_target_s": 3600, "targets": {"host": "rec2", "addresses": {}},
             "restored_point": {"snapshot": "ef56ab78", "time": "2026-11-22T16:35:01Z", "copy": "cloud"},
             "reason": "restore failed: restic exit 1 (wrong password) & <no retry>",
             "steps": [step("restore", "05:50", "06:40", "failed", "exit 1"), {"name": "start", "started": None, "finished": None,
                                                                               "status": "skipped", "detail": ""}],
             "probes": [{"type": "sql", "target": "rec2:5432", "ok": False, "detail": "connection refused"}]},
        ],
        "production_untouched": {"status": True, "checks": [{"service": "dns", "probe": "dns", "phase": p, "ok": True, "detail": ""}
                                                            for p in ("before", "during", "after")]},
        "isolation": {"status": True, "checks": [{"from": "rec1", "to": "172.31.20.41", "blocked": True, "detail": "timeout"}]},
        "cleanup": {"status": "clean", "removed": ["rec1", "rec2"], "left": []},
        "standards": dict(dr.STANDARDS),
    }
    base.update(changes)
    return base


def green(ident: str = "20261122T180501Z", started: str = "2026-11-22T18:05:01Z", rto: float = 41.2) -> dict:
    rep = report(ident, started, status="green")
    rep["services"] = rep["services"][:1]
    rep["services"][0]["rto_s"] = rto
    return rep


def junit(rep: dict) -> ET.Element:
    return ET.fromstring(dr.render_junit(rep).encode())  # noqa: S314 - our own output


# --- validate ------------------------------------------------------------------------------------


def test_the_fixtures_are_valid():
    assert dr.validate(report()) == []
    assert dr.validate(green()) == []


def test_validate_names_the_path_of_a_bad_status():
    rep = report()
    rep["services"][1]["status"] = "blue"
    assert dr.validate(rep) == ["services[1].status: expected green or red, found 'blue'"]


@pytest.mark.parametrize(("change", "message"), [
    (lambda r: r.pop("site"), "site: expected a non-empty string, found nothing (key missing)"),
    (lambda r: r.update(kind="exercise"), "kind: expected drill, failover or failback, found 'exercise'"),
    (lambda r: r.update(id="../etc"), "id: expected a UTC timestamp such as 20261122T180501Z"),
    (lambda r: r.update(started="yesterday"), "started: expected an ISO 8601 UTC time such as 2026-11-22T18:05:01Z, found 'yesterday'"),
    (lambda r: r.update(duration_s=float("nan")), "duration_s: expected a number of seconds >= 0 or null, found nan"),
    (lambda r: r["services"][0].update(rto_s="41"), "services[0].rto_s: expected a number of seconds >= 0 or null, found '41'"),
    (lambda r: r["services"][0].update(tier=True), "services[0].tier: expected a whole number >= 0, found True"),
    (lambda r: r["services"][1]["steps"][0].update(status="done"), "services[1].steps[0].status: expected ok, failed or skipped, found 'done'"),
    (lambda r: r["services"][0]["restored_point"].update(copy=5), "services[0].restored_point.copy: expected"),
    (lambda r: r["services"][1].update(name="dns"), "services[1].name: 'dns' is already the name of services[0]"),
    (lambda r: r["production_untouched"]["checks"][2].update(phase="later"),
     "production_untouched.checks[2].phase: expected before, during or after, found 'later'"),
    (lambda r: r["isolation"].update(status="yes"), "isolation.status: expected true or false, found 'yes'"),
    (lambda r: r["cleanup"]["left"].append(3), "cleanup.left[0]: expected a string, found 3"),
    (lambda r: r.update(status="green"), "status: green, but services[1] (db) is red"),
])
def test_validate_catches(change, message):
    rep = report()
    change(rep)
    problems = dr.validate(rep)
    assert len(problems) == 1 and problems[0].startswith(message), problems


def test_validate_refuses_what_is_not_a_mapping():
    assert dr.validate([]) == ["report: expected a mapping, found list"]


# --- summary and history -------------------------------------------------------------------------


def test_summarise_keeps_the_numbers_per_service():
    assert dr.summarise(report()) == {
        "id": "20261122T180501Z", "kind": "drill", "started": "2026-11-22T18:05:01Z", "status": "red", "duration_s": 123.4,
        "services": {"dns": {"status": "green", "rto_s": 41.2, "rpo_s": 900.0, "rto_target_s": 1800, "rpo_target_s": 3600},
                     "db": {"status": "red", "rto_s": None, "rpo_s": 5400.0, "rto_target_s": 60, "rpo_target_s": 3600}}}


def test_history_append_replaces_the_same_id_and_keeps_order(tmp_path):
    path = tmp_path / "drills" / "history.jsonl"
    dr.append_history(str(path), green("20261120T100000Z", "2026-11-20T10:00:00Z"))
    dr.append_history(str(path), report("20261121T100000Z", "2026-11-21T10:00:00Z"))
    dr.append_history(str(path), green("20261122T100000Z", "2026-11-22T10:00:00Z"))
    # The middle drill again, now green: its line changes in place.
    entries = dr.append_history(str(path), green("20261121T100000Z", "2026-11-21T10:00:00Z", rto=99.0))
    assert [e["id"] for e in entries] == ["20261120T100000Z", "20261121T100000Z", "20261122T100000Z"]
    assert entries[1]["status"] == "green" and entries[1]["services"]["dns"]["rto_s"] == 99.0
    lines = path.read_text().splitlines()
    assert [json.loads(line) for line in lines] == entries
    # A drill recorded late still lands in time order (oldest first).
    entries = dr.append_history(str(path), green("20261119T100000Z", "2026-11-19T10:00:00Z"))
    assert [e["id"] for e in entries][:2] == ["20261119T100000Z", "20261120T100000Z"]
    assert not list(path.parent.glob(".*.tmp"))


def test_a_broken_history_line_is_named_not_dropped(tmp_path):
    path = tmp_path / "history.jsonl"
    path.write_text('{"id": "a"}\nnot json\n')
    with pytest.raises(ValueError, match=r"history.jsonl line 2 is not JSON"):
        dr.append_history(str(path), green())
    assert path.read_text() == '{"id": "a"}\nnot json\n'


# --- JUnit ---------------------------------------------------------------------------------------


def test_junit_fails_the_red_service_with_its_reason_and_counts_match():
    root = junit(report())
    suite = root.find("testsuite")
    assert suite.get("name") == "twinsite.dr.drill"
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert list(cases) == ["preflight", "dns", "db", "production_untouched", "isolation", "cleanup"]
    assert cases["db"].get("classname") == "tier2" and cases["dns"].get("classname") == "tier1"
    assert cases["dns"].get("time") == "41.200" and cases["dns"].find("failure") is None
    failure = cases["db"].find("failure")
    assert failure.get("message") == "restore failed: restic exit 1 (wrong password) & <no retry>"
    assert "probe sql rec2:5432: FAILED - connection refused" in failure.text
    for element in (root, suite):
        assert (element.get("tests"), element.get("failures"), element.get("errors")) == ("6", "1", "0")
    assert suite.get("timestamp") == "2026-11-22T18:05:01"


def test_junit_fails_production_isolation_and_cleanup_when_not_ok():
    rep = report(production_untouched={"status": False, "checks": [{"service": "dns", "probe": "dns", "phase": "during", "ok": False,
                                                                    "detail": "SERVFAIL"}]},
                 isolation={"status": False, "checks": [{"from": "rec1", "to": "172.31.20.41", "blocked": False, "detail": "answered"}]},
                 cleanup={"status": "failed", "removed": [], "left": ["rec2"]}, preflight={"status": "failed", "checks": []})
    suite = junit(rep).find("testsuite")
    failures = {c.get("name"): c.find("failure").get("message") for c in suite.findall("testcase") if c.find("failure") is not None}
    assert failures == {
        "preflight": "preflight failed: no failed check recorded",
        "db": "restore failed: restic exit 1 (wrong password) & <no retry>",
        "production_untouched": "production was touched: dns dns during: SERVFAIL",
        "isolation": "the recovery network is not isolated: rec1 reached 172.31.20.41",
        "cleanup": "cleanup failed, left: rec2",
    }
    assert suite.get("failures") == "5"


def test_junit_survives_control_characters():
    rep = report()
    rep["services"][1]["reason"] = "tar: \x1b[31mbroken\x00"
    assert junit(rep).find(".//failure").get("message") == "tar: \ufffd[31mbroken\ufffd"


# --- HTML ----------------------------------------------------------------------------------------


def test_html_names_every_service_marks_over_target_and_is_self_contained():
    page = dr.render_html(report(), [])
    for name in ("dns", "db", "demo-town", "20261122T180501Z", "A.5.30", "A.8.13", "ab12cd34", "rec1", "172.31.70.41"):
        assert name in page
    assert "5400 s (1h30m00s) / 3600 s (1h00m00s) <strong>over target</strong>" in page  # db's RPO
    assert "not measured / 60 s" in page  # db's RTO
    assert "<script" not in page.lower() and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "src=" not in page and "<link" not in page
    # The SVGs are well-formed XML (a browser would draw nothing otherwise).
    svgs = re.findall(r"<svg .*?</svg>", page, re.DOTALL)
    assert len(svgs) == 3  # the timeline and one sparkline per service
    for svg in svgs:
        ET.fromstring(svg)  # noqa: S314 - our own output


def test_html_escapes_a_hostile_service_name():
    rep = report()
    rep["services"][0]["name"] = "<script>alert(1)</script>"
    page = dr.render_html(rep, [])
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_html_timeline_draws_steps_and_the_rto_marker_when_it_fits():
    svg = dr.render_timeline(report())
    assert svg.count('class="step-ok"') == 2 and svg.count('class="step-failed"') == 1  # the skipped step has no times
    # dns: target 1800 s is beyond the 123 s drill, db: 60 s after its first step (49 s) fits.
    assert "RTO target at 1800 s" in svg and svg.count('class="rto"') == 1


def test_html_trend_shows_drills_up_to_this_one_only(tmp_path):
    history = [dr.summarise(green(f"202611{d}T100000Z", f"2026-11-{d}T10:00:00Z", rto=float(d))) for d in range(10, 30)]
    page = dr.render_html(report(), history)  # this drill is 2026-11-22
    assert "202611" + "21T100000Z" in page and "20261123T100000Z" not in page
    assert "14 drill(s): 14 green, 0 red" in page  # dns: 13 earlier drills (10th to 22nd, 10:00) and this one
    assert "1 drill(s): 0 green, 1 red" in page  # db: only this one


# --- write and the module ------------------------------------------------------------------------


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_write_is_idempotent(tmp_path):
    dest, history = tmp_path / "drills" / "20261122T180501Z", tmp_path / "drills" / "history.jsonl"
    paths = dr.write(str(dest), report(), str(history))
    assert paths == {"json": str(dest / "report.json"), "html": str(dest / "report.html"), "junit": str(dest / "junit.xml"),
                     "history": str(history)}
    assert json.loads((dest / "report.json").read_text()) == report()
    first = snapshot(tmp_path)
    assert dr.write(str(dest), report(), str(history)) == paths
    assert snapshot(tmp_path) == first
    assert len(history.read_text().splitlines()) == 1


def test_write_refuses_an_invalid_report_and_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match=r"services\[1\]\.status: expected green or red, found 'blue'"):
        rep = report()
        rep["services"][1]["status"] = "blue"
        dr.write(str(tmp_path / "x"), rep, str(tmp_path / "history.jsonl"))
    assert list(tmp_path.iterdir()) == []


def run_module(capsys, check: bool = False, **args) -> dict:
    with patch_module_args({**args, "_ansible_check_mode": check}), pytest.raises(SystemExit):
        drill_report_module.main()
    return json.loads(capsys.readouterr().out)


def test_module_check_mode_writes_nothing_then_apply_then_unchanged(capsys, tmp_path):
    dest = tmp_path / "drills" / "20261122T180501Z"
    checked = run_module(capsys, check=True, report=report(), dest=str(dest))
    assert checked["changed"] is True and not tmp_path.joinpath("drills").exists()
    assert checked["paths"]["history"] == str(tmp_path / "drills" / "history.jsonl")
    assert len(checked["changed_files"]) == 4 and checked["status"] == "red"
    applied = run_module(capsys, report=report(), dest=str(dest))
    assert applied["changed"] is True and applied["paths"] == checked["paths"]
    assert (dest / "report.html").is_file() and (dest / "junit.xml").is_file()
    again = run_module(capsys, report=report(), dest=str(dest))
    assert again["changed"] is False and again["changed_files"] == []
    assert run_module(capsys, check=True, report=report(), dest=str(dest))["changed"] is False


def test_module_fails_with_the_problems(capsys, tmp_path):
    rep = report()
    rep["services"][1]["status"] = "blue"
    result = run_module(capsys, report=rep, dest=str(tmp_path / "20261122T180501Z"))
    assert result["failed"] and result["problems"] == ["services[1].status: expected green or red, found 'blue'"]
    assert "services[1].status" in result["msg"] and list(tmp_path.iterdir()) == []


def test_module_run_without_ansible(tmp_path):
    rep = copy.deepcopy(green())
    params = {"report": rep, "dest": str(tmp_path / rep["id"]), "history": str(tmp_path / "h.jsonl")}
    assert drill_report_module.run(params, check_mode=True)["changed"] is True
    assert not (tmp_path / "h.jsonl").exists()
    assert drill_report_module.run(params, check_mode=False)["changed"] is True
    assert drill_report_module.run(params, check_mode=False)["changed"] is False


def test_sparkline_draws_the_target_only_near_the_measurements():
    points = [{"id": "a", "status": "green", "rto_s": 40.0, "rto_target_s": 60}, {"id": "b", "status": "red", "rto_s": None, "rto_target_s": 60}]
    near = dr.render_sparkline(points)
    assert 'class="rto"' in near and 'class="dot-green"' in near and 'class="dot-none"' in near
    far = dr.render_sparkline([{**p, "rto_target_s": 1800} for p in points])
    assert 'class="rto"' not in far
