# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The DR drill report: what a drill (or a failover, or a failback) proved, written for an auditor
(HTML), for CI (JUnit XML) and for the next drill (one line of JSON in the history).

The drill hands over one dict; nothing here measures or judges again, it only checks the dict is
whole (``validate``) and renders it. Every output is a pure function of the report and the history
up to this drill, so writing the same report twice gives the same bytes. Pure stdlib: the module
writes through ``write``, tests feed dicts.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
import os
import re
import xml.etree.ElementTree as ET  # noqa: S405 - builds XML from our own data, parses nothing

KINDS = ("drill", "failover", "failback")
STANDARDS = {"A.5.30": "ICT readiness for business continuity", "A.8.13": "Information backup"}
# Trend charts and the table of past drills show this many drills, this one included.
TREND_LENGTH = 20

_MISSING = object()
# Characters XML 1.0 cannot carry at all, even escaped (a probe's detail may hold raw bytes).
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


# --- time ----------------------------------------------------------------------------------------


def parse(ts) -> dt.datetime | None:
    """An ISO 8601 time with a zone (``...Z``) as an aware UTC datetime; None for anything else."""
    if not isinstance(ts, str) or not ts:
        return None
    try:
        moment = dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(dt.UTC) if moment.tzinfo else None


def _offset(origin: dt.datetime | None, ts) -> float | None:
    """Seconds from the drill's start to ``ts``."""
    moment = parse(ts)
    return (moment - origin).total_seconds() if origin and moment else None


# --- validation ----------------------------------------------------------------------------------


class _Checker:
    """Collects "<path>: expected ..., found ..." problems while walking the report."""

    def __init__(self):
        self.problems: list[str] = []

    def bad(self, path: str, expected: str, value) -> None:
        found = "nothing (key missing)" if value is _MISSING else repr(value)
        self.problems.append(f"{path}: expected {expected}, found {found}")

    def get(self, obj: dict, key: str, path: str, kind: str, required: bool = True, nullable: bool = False, choices=None):
        """``obj[key]`` if it is of ``kind`` (str, int, number, bool, dict, list, time), else None
        after recording the problem."""
        where = f"{path}.{key}" if path else key
        value = obj.get(key, _MISSING)
        if value is _MISSING and not required:
            return None
        if value is None and nullable:
            return None
        if choices is not None:
            if value not in choices:
                self.bad(where, " or ".join(", ".join(choices).rsplit(", ", 1)), value)
                return None
            return value
        ok = {
            "str": lambda v: isinstance(v, str) and v != "",
            "text": lambda v: isinstance(v, str),
            "int": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
            "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v >= 0,
            "bool": lambda v: isinstance(v, bool),
            "dict": lambda v: isinstance(v, dict),
            "list": lambda v: isinstance(v, list),
            "time": lambda v: parse(v) is not None,
        }[kind](value)
        if not ok:
            self.bad(where, {
                "str": "a non-empty string", "text": "a string", "int": "a whole number >= 0",
                "number": "a number of seconds >= 0", "bool": "true or false", "dict": "a mapping",
                "list": "a list", "time": "an ISO 8601 UTC time such as 2026-11-22T18:05:01Z",
            }[kind] + (" or null" if nullable else ""), value)
            return None
        return value

    def items(self, obj: dict, key: str, path: str, required: bool = True):
        """(path, item) for each mapping in the list ``obj[key]``."""
        where = f"{path}.{key}" if path else key
        value = self.get(obj, key, path, "list", required=required)
        for index, item in enumerate(value or []):
            if isinstance(item, dict):
                yield f"{where}[{index}]", item
            else:
                self.bad(f"{where}[{index}]", "a mapping", item)


def validate(report) -> list[str]:
    """Every problem that keeps ``report`` from being rendered or trusted, each naming its path
    ("services[1].status: expected green or red, found 'blue'"). Empty when the report is whole."""
    c = _Checker()
    if not isinstance(report, dict):
        return [f"report: expected a mapping, found {type(report).__name__}"]
    c.get(report, "kind", "", "str", choices=KINDS)
    ident = c.get(report, "id", "", "str")
    # The id is also the report's directory name: keep it one plain path segment.
    if ident is not None and not re.fullmatch(r"[0-9A-Za-z][0-9A-Za-z._-]*", ident):
        c.bad("id", "a UTC timestamp such as 20261122T180501Z (letters, digits, '.', '_', '-')", ident)
    c.get(report, "site", "", "str")
    started = c.get(report, "started", "", "time")
    finished = c.get(report, "finished", "", "time")
    if started and finished and parse(finished) < parse(started):
        c.problems.append(f"finished: {finished} is before started {started}")
    c.get(report, "duration_s", "", "number", nullable=True)
    status = c.get(report, "status", "", "str", choices=("green", "red"))

    preflight = c.get(report, "preflight", "", "dict")
    if preflight is not None:
        c.get(preflight, "status", "preflight", "str", choices=("ok", "failed"))
        for path, check in c.items(preflight, "checks", "preflight"):
            c.get(check, "name", path, "str")
            c.get(check, "ok", path, "bool")
            c.get(check, "detail", path, "text", required=False, nullable=True)

    names: dict[str, str] = {}
    red: list[str] = []
    for path, svc in c.items(report, "services", ""):
        name = c.get(svc, "name", path, "str")
        if name is not None:
            if name in names:
                c.problems.append(f"{path}.name: {name!r} is already the name of {names[name]}")
            names.setdefault(name, path)
        c.get(svc, "tier", path, "int")
        c.get(svc, "method", path, "str")
        if c.get(svc, "status", path, "str", choices=("green", "red")) == "red":
            red.append(f"{path} ({name})")
        for key in ("rto_s", "rpo_s", "rto_target_s", "rpo_target_s"):
            c.get(svc, key, path, "number", nullable=True)
        targets = c.get(svc, "targets", path, "dict", required=False, nullable=True)
        if targets is not None:
            c.get(targets, "host", f"{path}.targets", "str", required=False, nullable=True)
            addresses = c.get(targets, "addresses", f"{path}.targets", "dict", required=False, nullable=True)
            for prod, rec in (addresses or {}).items():
                if not isinstance(rec, str):
                    c.bad(f"{path}.targets.addresses[{prod!r}]", "a string (the recovery address)", rec)
        point = c.get(svc, "restored_point", path, "dict", required=False, nullable=True)
        if point is not None:
            c.get(point, "snapshot", f"{path}.restored_point", "str")
            # A replica's point in time is its last replication, which only the replication tool knows.
            c.get(point, "time", f"{path}.restored_point", "time", nullable=True)
            # secondary or cloud (restic copies), replica (replica_vm), "vzdump <storage>" (vm_backup_restore)
            c.get(point, "copy", f"{path}.restored_point", "str")
        c.get(svc, "reason", path, "text", required=False, nullable=True)
        for step_path, step in c.items(svc, "steps", path):
            c.get(step, "name", step_path, "str")
            # A skipped step may never have started.
            c.get(step, "started", step_path, "time", required=False, nullable=True)
            c.get(step, "finished", step_path, "time", required=False, nullable=True)
            c.get(step, "status", step_path, "str", choices=("ok", "failed", "skipped"))
            c.get(step, "detail", step_path, "text", required=False, nullable=True)
        for probe_path, probe in c.items(svc, "probes", path, required=False):
            c.get(probe, "type", probe_path, "str")
            c.get(probe, "target", probe_path, "str")
            c.get(probe, "ok", probe_path, "bool")
            c.get(probe, "detail", probe_path, "text", required=False, nullable=True)

    # A drill must prove production untouched and clean up after itself; a failover or failback
    # moves production, and has plan steps (firewall, DNS) checked before and after instead.
    drill = report.get("kind") == "drill"
    for path, step in c.items(report, "plan_steps", "", required=False):
        c.get(step, "name", path, "str")
        c.get(step, "status", path, "str", choices=("ok", "failed", "skipped"))
        c.get(step, "detail", path, "text", required=False, nullable=True)
    untouched = c.get(report, "production_untouched", "", "dict", required=drill)
    if untouched is not None:
        c.get(untouched, "status", "production_untouched", "bool")
        for path, check in c.items(untouched, "checks", "production_untouched"):
            c.get(check, "service", path, "str")
            c.get(check, "probe", path, "str")
            c.get(check, "phase", path, "str", choices=("before", "during", "after"))
            c.get(check, "ok", path, "bool")
            c.get(check, "detail", path, "text", required=False, nullable=True)
    isolation = c.get(report, "isolation", "", "dict", required=drill)
    if isolation is not None:
        c.get(isolation, "status", "isolation", "bool")
        for path, check in c.items(isolation, "checks", "isolation"):
            c.get(check, "from", path, "str")
            c.get(check, "to", path, "str")
            c.get(check, "blocked", path, "bool")
            c.get(check, "detail", path, "text", required=False, nullable=True)
    cleanup = c.get(report, "cleanup", "", "dict", required=drill)
    if cleanup is not None:
        c.get(cleanup, "status", "cleanup", "str", choices=("clean", "failed", "not_needed"))
        for key in ("removed", "left"):
            for index, item in enumerate(c.get(cleanup, key, "cleanup", "list", required=False) or []):
                if not isinstance(item, str):
                    c.bad(f"cleanup.{key}[{index}]", "a string", item)
    standards = c.get(report, "standards", "", "dict", required=False)
    for code, title in (standards or {}).items():
        if not isinstance(title, str):
            c.bad(f"standards[{code!r}]", "a string (the control's title)", title)

    # A green report with a red part would be evidence of something that did not happen.
    if status == "green":
        red_parts = list(red)
        if untouched is not None and untouched.get("status") is False:
            red_parts.append("production_untouched.status is false")
        if cleanup is not None and cleanup.get("status") == "failed":
            red_parts.append("cleanup.status is failed")
        if red_parts:
            c.problems.append("status: green, but " + "; ".join(f"{p} is red" if p.startswith("services") else p for p in red_parts))
    return c.problems


# --- history -------------------------------------------------------------------------------------


def summarise(report: dict) -> dict:
    """This drill's line in the history."""
    return {
        "id": report["id"],
        "kind": report["kind"],
        "started": report["started"],
        "status": report["status"],
        "duration_s": report.get("duration_s"),
        "services": {
            s["name"]: {k: s.get(k) for k in ("status", "rto_s", "rpo_s", "rto_target_s", "rpo_target_s")}
            for s in report.get("services") or []
        },
    }


def _order(entry: dict) -> tuple:
    return (parse(entry.get("started")) or dt.datetime.min.replace(tzinfo=dt.UTC), str(entry.get("id")))


def read_history(history_path: str) -> list[dict]:
    """The history's entries as stored; none when the file does not exist yet."""
    try:
        with open(history_path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        return []
    entries = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError as exc:
            raise ValueError(f"{history_path} line {number} is not JSON ({exc}); fix or remove that line, "
                             "the other drills' lines are kept as they are") from None
        if not isinstance(entry, dict) or "id" not in entry:
            raise ValueError(f"{history_path} line {number} is not a drill summary (no id); fix or remove that line")
        entries.append(entry)
    return entries


def merge_history(entries: list[dict], summary: dict) -> list[dict]:
    """``entries`` with ``summary`` in place of the line of the same id (or added), oldest first."""
    merged = [summary if e.get("id") == summary["id"] else e for e in entries]
    if not any(e.get("id") == summary["id"] for e in entries):
        merged.append(summary)
    return sorted(merged, key=_order)  # stable: entries of equal start keep the order they had


def dump_history(entries: list[dict]) -> str:
    return "".join(json.dumps(e, sort_keys=True) + "\n" for e in entries)


def _write_text(path: str, text: str) -> bool:
    """Write ``text`` to ``path`` through a temporary file and a rename, so a reader never sees half
    a file; leave an identical file alone. True when the file changed."""
    try:
        with open(path, encoding="utf-8") as handle:
            if handle.read() == text:
                return False
    except FileNotFoundError:
        pass
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return True


def append_history(history_path: str, report: dict) -> list[dict]:
    """Add this drill's summary to the JSON Lines history (replacing the line of the same id, so
    writing a report again changes nothing) and return every entry, oldest first."""
    entries = merge_history(read_history(history_path), summarise(report))
    _write_text(history_path, dump_history(entries))
    return entries


# --- JUnit ---------------------------------------------------------------------------------------


def _xml(value) -> str:
    return _XML_INVALID.sub("\N{REPLACEMENT CHARACTER}", "" if value is None else str(value))


def _seconds(value) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) and not isinstance(value, bool) else "0"


def _testcase(suite: ET.Element, name: str, classname: str, time, failure: str | None, body: list[str]) -> None:
    case = ET.SubElement(suite, "testcase", {"name": _xml(name), "classname": _xml(classname), "time": _seconds(time)})
    if failure is not None:
        ET.SubElement(case, "failure", {"message": _xml(failure), "type": "drill"}).text = _xml("\n".join(body))
    elif body:
        ET.SubElement(case, "system-out").text = _xml("\n".join(body))


def _service_lines(svc: dict) -> list[str]:
    lines = [f"tier {svc.get('tier')}, {svc.get('method')}: RTO {_fmt_s(svc.get('rto_s'))} against a target of {_fmt_s(svc.get('rto_target_s'))}, "
             f"RPO {_fmt_s(svc.get('rpo_s'))} against a target of {_fmt_s(svc.get('rpo_target_s'))}"]
    point = svc.get("restored_point")
    if point:
        lines.append(f"restored snapshot {point.get('snapshot')} of {point.get('time') or 'an unknown time'} from the {point.get('copy')} copy")
    lines += [f"step {s.get('name')}: {s.get('status')}" + (f" - {s['detail']}" if s.get("detail") else "") for s in svc.get("steps") or []]
    lines += [f"probe {p.get('type')} {p.get('target')}: {'ok' if p.get('ok') else 'FAILED'}" + (f" - {p['detail']}" if p.get("detail") else "")
              for p in svc.get("probes") or []]
    return lines


def render_junit(report: dict) -> str:
    """One testsuite ``twinsite.dr.<kind>``: a testcase per service (class ``tier<N>``, time = RTO)
    and one each for preflight, production_untouched, isolation and cleanup, failing when not OK."""
    kind = report.get("kind", "drill")
    started = parse(report.get("started"))
    # The Ant JUnit schema's timestamp has no zone; it is UTC.
    suite = ET.Element("testsuite", {"name": f"twinsite.dr.{kind}", "timestamp": started.strftime("%Y-%m-%dT%H:%M:%S") if started else "",
                                     "hostname": _xml(report.get("site")), "time": _seconds(report.get("duration_s"))})
    props = ET.SubElement(suite, "properties")
    for key in ("id", "site", "kind", "status", "started", "finished"):
        ET.SubElement(props, "property", {"name": key, "value": _xml(report.get(key))})

    preflight = report.get("preflight") or {}
    failed_checks = [c for c in preflight.get("checks") or [] if not c.get("ok")]
    _testcase(suite, "preflight", "twinsite.dr", None,
              None if preflight.get("status") == "ok" else f"preflight {preflight.get('status')}: "
              + (", ".join(str(c.get("name")) for c in failed_checks) or "no failed check recorded"),
              [f"{c.get('name')}: {'ok' if c.get('ok') else 'FAILED'}" + (f" - {c['detail']}" if c.get("detail") else "")
               for c in preflight.get("checks") or []])
    for svc in report.get("services") or []:
        _testcase(suite, svc.get("name"), f"tier{svc.get('tier')}", svc.get("rto_s"),
                  None if svc.get("status") == "green" else (svc.get("reason") or "red (no reason recorded)"), _service_lines(svc))

    for step in report.get("plan_steps") or []:
        _testcase(suite, f"step {step.get('name')}", "twinsite.dr", None,
                  f"{step.get('name')}: {step.get('detail') or 'failed'}" if step.get("status") == "failed" else None,
                  [f"{step.get('status')}: {step.get('detail') or ''}"])
    untouched = report.get("production_untouched") or {}
    bad = [c for c in untouched.get("checks") or [] if not c.get("ok")]
    if "production_untouched" in report:
        _testcase(suite, "production_untouched", "twinsite.dr", None,
                  None if untouched.get("status") is True else "production was touched: "
                  + ("; ".join(f"{c.get('service')} {c.get('probe')} {c.get('phase')}: {c.get('detail') or 'failed'}" for c in bad) or "status false"),
                  [f"{c.get('phase')} {c.get('service')} {c.get('probe')}: {'ok' if c.get('ok') else 'FAILED'}" for c in untouched.get("checks") or []])
    isolation = report.get("isolation") or {}
    leaks = [c for c in isolation.get("checks") or [] if not c.get("blocked")]
    if "isolation" in report or report.get("kind", "drill") == "drill":
        _testcase(suite, "isolation", "twinsite.dr", None,
                  None if isolation.get("status") is True else "the recovery network is not isolated: "
                  + ("; ".join(f"{c.get('from')} reached {c.get('to')}" for c in leaks) or "status false"),
                  [f"{c.get('from')} -> {c.get('to')}: {'blocked' if c.get('blocked') else 'REACHABLE'}" for c in isolation.get("checks") or []])
    cleanup = report.get("cleanup") or {}
    if "cleanup" in report:
        _testcase(suite, "cleanup", "twinsite.dr", None,
                  None if cleanup.get("status") in ("clean", "not_needed") else f"cleanup {cleanup.get('status')}, left: "
                  + (", ".join(cleanup.get("left") or []) or "nothing listed"),
                  [f"removed {r}" for r in cleanup.get("removed") or []] + [f"left {r}" for r in cleanup.get("left") or []])

    cases = suite.findall("testcase")
    failures = sum(1 for case in cases if case.find("failure") is not None)
    suite.attrib.update({"tests": str(len(cases)), "failures": str(failures), "errors": "0", "skipped": "0"})
    root = ET.Element("testsuites", {"name": "twinsite.dr", "tests": str(len(cases)), "failures": str(failures), "errors": "0",
                                     "time": suite.get("time")})
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# --- HTML ----------------------------------------------------------------------------------------


def _esc(value) -> str:
    return html.escape("" if value is None else str(value))


def _fmt_s(value) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "not measured"
    if value < 120:
        return f"{value:.1f}".removesuffix(".0") + " s"
    minutes, seconds = divmod(round(value), 60)
    return f"{value:.0f} s ({minutes // 60}h{minutes % 60:02d}m{seconds:02d}s)" if minutes >= 60 else f"{value:.0f} s ({minutes}m{seconds:02d}s)"


def _over(value, target) -> bool:
    return isinstance(value, int | float) and isinstance(target, int | float) and value > target


def _within(value, target) -> bool:
    """Measured, and not over the target (no target: nothing to be over)."""
    return isinstance(value, int | float) and not _over(value, target)


def _measured_cell(value, target) -> str:
    text = f"{_esc(_fmt_s(value))} / {_esc(_fmt_s(target)) if target is not None else 'no target'}"
    if _over(value, target):
        return f'<td class="bad">{text} <strong>over target</strong></td>'
    if value is None and target is not None:
        return f'<td class="bad">{text}</td>'
    return f'<td class="ok">{text}</td>' if value is not None else f"<td>{text}</td>"


def _badge(ok: bool, text: str) -> str:
    return f'<span class="{"ok" if ok else "bad"} badge">{_esc(text)}</span>'


def _n(value: float) -> str:
    """An SVG coordinate, short and the same on every run."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _tick_step(span: float) -> float:
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800):
        if span / step <= 10:
            return step
    return 86400


def render_timeline(report: dict) -> str:
    """Inline SVG: a row per service, a bar per step from its start to its finish (seconds since the
    drill started), and a dashed line at the RTO target counted from the drill's start."""
    services = report.get("services") or []
    origin = parse(report.get("started"))
    rows = []
    span = float(report.get("duration_s") or 0)
    for svc in services:
        bars = []
        for step in svc.get("steps") or []:
            start, end = _offset(origin, step.get("started")), _offset(origin, step.get("finished"))
            if start is not None:
                # A clock a little behind the controller's must not draw left of the axis.
                start = max(0.0, start)
                end = start if end is None or end < start else end
                bars.append((start, end, step))
                span = max(span, end)
        rows.append((svc, bars))
    if not any(bars for _, bars in rows):
        return '<p class="note">No step recorded a start and finish time: no timeline to draw.</p>'
    span = max(span, 1.0)
    label_w, chart_w, row_h, top = 170, 640, 26, 8
    width, height = label_w + chart_w + 150, top + row_h * len(rows) + 34
    scale = chart_w / span
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="Timeline of the drill\'s steps per service">']
    axis_y = top + row_h * len(rows) + 4
    step = _tick_step(span)
    tick = 0.0
    while tick <= span + 1e-9:
        x = label_w + tick * scale
        out.append(f'<line x1="{_n(x)}" y1="{top}" x2="{_n(x)}" y2="{axis_y}" class="grid"/>'
                   f'<text x="{_n(x)}" y="{axis_y + 14}" class="tick">{tick:g}</text>')
        tick += step
    out.append(f'<line x1="{label_w}" y1="{axis_y}" x2="{label_w + chart_w}" y2="{axis_y}" class="axis"/>'
               f'<text x="{label_w + chart_w + 12}" y="{axis_y + 14}" class="aside">seconds</text>')
    for index, (svc, bars) in enumerate(rows):
        y = top + index * row_h
        name = str(svc.get("name"))
        out.append(f'<text x="{label_w - 6}" y="{y + row_h * 0.65:.0f}" class="label">{_esc(name if len(name) <= 24 else name[:23] + "…")}'
                   f'<title>{_esc(name)}</title></text>')
        for start, end, st in bars:
            title = f"{st.get('name')}: {st.get('status')}, {start:.1f} s to {end:.1f} s" + (f" - {st['detail']}" if st.get("detail") else "")
            out.append(f'<rect x="{_n(label_w + start * scale)}" y="{y + 5}" width="{_n(max(2.0, (end - start) * scale))}" height="{row_h - 10}" '
                       f'class="step-{_esc(st.get("status"))}"><title>{_esc(title)}</title></rect>')
        target = svc.get("rto_target_s")
        if isinstance(target, int | float) and bars:
            # RTO counts from the drill's start (x = 0), as the drill measures it.
            if target <= span:
                x = label_w + target * scale
                out.append(f'<line x1="{_n(x)}" y1="{y + 2}" x2="{_n(x)}" y2="{y + row_h - 2}" class="rto">'
                           f'<title>RTO target {_esc(_fmt_s(target))}</title></line>')
            else:
                out.append(f'<text x="{label_w + chart_w + 6}" y="{y + row_h * 0.65:.0f}" class="aside">RTO target at {target:g} s ›</text>')
    out.append("</svg>")
    return "".join(out)


def render_sparkline(points: list[dict]) -> str:
    """Inline SVG of one service's RTO over past drills: a dot per drill coloured by status (a grey
    ring when not measured) and a dashed line at the latest RTO target when it is near enough to the
    measurements to draw without flattening them (a 30 s restore against 30 min would be a line on
    the floor)."""
    width, height, pad = 12 * TREND_LENGTH + 8, 44, 5
    values = [p["rto_s"] for p in points if isinstance(p.get("rto_s"), int | float)]
    targets = [p["rto_target_s"] for p in points if isinstance(p.get("rto_target_s"), int | float)][-1:]
    top = max(values + [1.0]) * 1.15
    if targets and targets[0] <= 2 * top:
        top = max(top, targets[0] * 1.1)
    else:
        targets = []

    def y(value: float) -> float:
        return height - pad - (height - 2 * pad) * value / top

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
           'aria-label="RTO over past drills">']
    if targets:
        out.append(f'<line x1="0" y1="{_n(y(targets[0]))}" x2="{width}" y2="{_n(y(targets[0]))}" class="rto">'
                   f'<title>RTO target {_esc(_fmt_s(targets[0]))}</title></line>')
    line = [(pad + 12 * i, y(p["rto_s"])) for i, p in enumerate(points) if isinstance(p.get("rto_s"), int | float)]
    if len(line) > 1:
        out.append('<polyline class="trend" points="' + " ".join(f"{_n(x)},{_n(v)}" for x, v in line) + '"/>')
    for i, p in enumerate(points):
        title = f"{p['id']}: {p.get('status')}, RTO {_fmt_s(p.get('rto_s'))}"
        if isinstance(p.get("rto_s"), int | float):
            out.append(f'<circle cx="{pad + 12 * i}" cy="{_n(y(p["rto_s"]))}" r="3" class="dot-{"green" if p.get("status") == "green" else "red"}">'
                       f"<title>{_esc(title)}</title></circle>")
        else:
            out.append(f'<circle cx="{pad + 12 * i}" cy="{height - pad}" r="3" class="dot-none"><title>{_esc(title)}</title></circle>')
    out.append("</svg>")
    return "".join(out)


def _standards_paragraph(report: dict) -> str:
    services = report.get("services") or []
    titles = {**STANDARDS, **(report.get("standards") or {})}
    total = len(services)
    green = sum(1 for s in services if s.get("status") == "green")
    in_rto = [s for s in services if s.get("status") == "green" and _within(s.get("rto_s"), s.get("rto_target_s"))]
    restored = [s for s in services if s.get("restored_point")]
    in_rpo = [s for s in restored if _within(s.get("rpo_s"), s.get("rpo_target_s"))]
    copies = sorted({str(s["restored_point"].get("copy")) for s in restored})
    untouched = (report.get("production_untouched") or {}).get("status") is True
    isolated = (report.get("isolation") or {}).get("status") is True
    extra = "".join(f"<li><strong>{_esc(code)}</strong> ({_esc(title)}).</li>" for code, title in sorted(titles.items())
                    if code not in ("A.5.30", "A.8.13"))
    return (f"<p>Evidence for ISO/IEC 27001:2022. This {_esc(report.get('kind'))} ran at the recovery site, isolated from production.</p><ul>"
            f"<li><strong>A.5.30</strong> ({_esc(titles['A.5.30'])}): {green} of {total} services were recovered and passed their probes; "
            f"{len(in_rto)} of {total} within their RTO target. Production was {'checked untouched' if untouched else '<strong>not</strong> proven untouched'}"
            f" before, during and after the {_esc(report.get('kind'))}; the recovery network was "
            f"{'proven isolated' if isolated else '<strong>not</strong> proven isolated'}.</li>"
            f"<li><strong>A.8.13</strong> ({_esc(titles['A.8.13'])}): {len(restored)} of {total} services were restored from backup"
            + (f" (from the {_esc(' and '.join(copies))} copy)" if copies else "")
            + f"; the achieved RPO (age of the restored point at the drill's start) was within target for {len(in_rpo)} of {len(restored)}.</li>"
            f"{extra}</ul>")


def _checks_table(headers: list[str], rows: list[list[str]], empty: str) -> str:
    if not rows:
        return f'<p class="note">{_esc(empty)}</p>'
    return ("<table><tr>" + "".join(f"<th>{_esc(h)}</th>" for h in headers) + "</tr>"
            + "".join("<tr>" + "".join(r) + "</tr>" for r in rows) + "</table>")


def _okcell(ok: bool, yes: str = "ok", no: str = "FAILED") -> str:
    return f'<td class="ok">{yes}</td>' if ok else f'<td class="bad">{no}</td>'


def _td(value, css: str = "") -> str:
    return f'<td class="{css}">{_esc(value)}</td>' if css else f"<td>{_esc(value)}</td>"


def _lines(values: list) -> str:
    return "<br>".join(_esc(v) for v in values) or "&mdash;"


def render_html(report: dict, history: list[dict]) -> str:
    """One self-contained page for an auditor: no script, no external asset, every value escaped.
    ``history`` is the drill history; only drills up to this one are shown, so re-rendering an old
    report gives the same page."""
    services = report.get("services") or []
    kind, site, ident, status = report.get("kind"), report.get("site"), report.get("id"), report.get("status")
    mine = _order(summarise(report))
    past = [e for e in merge_history(history or [], summarise(report)) if _order(e) <= mine][-TREND_LENGTH:]
    preflight = report.get("preflight") or {}
    untouched = report.get("production_untouched") or {}
    isolation = report.get("isolation") or {}
    cleanup = report.get("cleanup") or {}
    untouched_ok, isolated_ok = untouched.get("status") is True, isolation.get("status") is True
    cleanup_ok = cleanup.get("status") in ("clean", "not_needed")

    rows = []
    for svc in services:
        point = svc.get("restored_point")
        point_text = (f"{_esc(point.get('snapshot'))} of {_esc(point.get('time') or 'an unknown time')} ({_esc(point.get('copy'))} copy)"
                      if point else "&mdash;")
        targets = svc.get("targets") or {}
        addresses = "".join(f"<br>{_esc(a)} &rarr; {_esc(b)}" for a, b in sorted((targets.get("addresses") or {}).items()))
        rows.append([_td(svc.get("name")), _td(svc.get("tier")), _td(svc.get("method")), _okcell(svc.get("status") == "green", "green", "red"),
                     _measured_cell(svc.get("rto_s"), svc.get("rto_target_s")), _measured_cell(svc.get("rpo_s"), svc.get("rpo_target_s")),
                     f"<td>{point_text}</td>", f"<td>{_esc(targets.get('host') or '')}{addresses}</td>",
                     f'<td class="why">{_esc(svc.get("reason")) or "&mdash;"}</td>'])
    services_table = _checks_table(["Service", "Tier", "Method", "Status", "RTO measured / target", "RPO achieved / target", "Restored point",
                                    "Target host", "Reason"], rows, "No service was part of this drill.")

    details = []
    for svc in services:
        steps = [[_td(s.get("name")), _td(s.get("status"), {"ok": "ok", "failed": "bad"}.get(s.get("status"), "")), _td(s.get("started") or ""),
                  _td(s.get("finished") or ""), _td(s.get("detail") or "")] for s in svc.get("steps") or []]
        probes = [[_td(p.get("type")), _td(p.get("target")), _okcell(bool(p.get("ok"))), _td(p.get("detail") or "")] for p in svc.get("probes") or []]
        details.append(f"<h3>{_esc(svc.get('name'))}</h3>\n"
                       + _checks_table(["Step", "Status", "Started", "Finished", "Detail"], steps, "No step recorded.") + "\n"
                       + _checks_table(["Probe", "Target", "Result", "Detail"], probes, "No probe recorded."))

    preflight_table = _checks_table(["Check", "Result", "Detail"], [[_td(c.get("name")), _okcell(bool(c.get("ok"))), _td(c.get("detail") or "")]
                                                                    for c in preflight.get("checks") or []], "No preflight check recorded.")
    untouched_table = _checks_table(["Service", "Probe", "Phase", "Result", "Detail"],
                                    [[_td(c.get("service")), _td(c.get("probe")), _td(c.get("phase")), _okcell(bool(c.get("ok"))),
                                      _td(c.get("detail") or "")] for c in untouched.get("checks") or []], "No production check recorded.")
    isolation_table = _checks_table(["From", "To", "Result", "Detail"],
                                    [[_td(c.get("from")), _td(c.get("to")), _okcell(bool(c.get("blocked")), "blocked", "REACHABLE"),
                                      _td(c.get("detail") or "")] for c in isolation.get("checks") or []], "No isolation check recorded.")
    left = cleanup.get("left") or []
    cleanup_table = _checks_table(["Removed", "Left behind"], [[f"<td>{_lines(cleanup.get('removed') or [])}</td>",
                                                                f'<td class="{"bad" if left else "ok"}">{_lines(left)}</td>']], "")

    trends = []
    for svc in services:
        name = svc.get("name")
        points = [{"id": e.get("id"), **(e.get("services") or {})[name]} for e in past if name in (e.get("services") or {})]
        reds = sum(1 for p in points if p.get("status") != "green")
        measured = [p["rto_s"] for p in points if isinstance(p.get("rto_s"), int | float)]
        trends.append([_td(name), f"<td>{render_sparkline(points)}</td>",
                       _td(f"{len(points)} drill(s): {len(points) - reds} green, {reds} red; RTO best {_fmt_s(min(measured) if measured else None)}, "
                           f"worst {_fmt_s(max(measured) if measured else None)}, target {_fmt_s(svc.get('rto_target_s'))}")])
    trend_table = _checks_table(["Service", "RTO", "Summary"], trends, "No service to show.")
    drills = [[_td(e.get("id")), _td(e.get("kind")), _okcell(e.get("status") == "green", "green", "red"), _td(_fmt_s(e.get("duration_s"))),
               _td(sum(1 for s in (e.get("services") or {}).values() if s.get("status") != "green"))] for e in reversed(past)]
    drills_table = _checks_table(["Id", "Kind", "Status", "Duration", "Red services"], drills, "No drill recorded.")

    def yes_no(ok: bool) -> str:
        return _badge(ok, "yes" if ok else "no")

    steps = report.get("plan_steps") or []
    steps_table = _checks_table(["Step", "Status", "Detail"], [[_td(st.get("name")), _td(st.get("status"), {"ok": "ok", "failed": "bad"}.get(
        st.get("status"), "")), _td(st.get("detail") or "")] for st in steps], "No plan step recorded.")
    if kind == "drill":
        summary = (f"Preflight {_badge(preflight.get('status') == 'ok', str(preflight.get('status')))}, production untouched "
                   f"{yes_no(untouched_ok)}, recovery network isolated {yes_no(isolated_ok)}, cleanup "
                   f"{_badge(cleanup_ok, str(cleanup.get('status')))}.")
        checks = (f"<h2>Production untouched: {yes_no(untouched_ok)}</h2>\n{untouched_table}\n"
                  f"<h2>Isolation of the recovery network: {yes_no(isolated_ok)}</h2>\n{isolation_table}\n"
                  f"<h2>Cleanup: {_badge(cleanup_ok, str(cleanup.get('status')))}</h2>\n{cleanup_table}")
        if steps:
            checks += f"\n<h2>Plan steps</h2>\n{steps_table}"
    else:
        summary = f"Preflight {_badge(preflight.get('status') == 'ok', str(preflight.get('status')))}; production moved, by design."
        checks = f"<h2>Plan steps (checked before and after)</h2>\n{steps_table}"

    title = f"DR {kind} {ident} at {site}: {status}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{_esc(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 80em; }} table {{ border-collapse: collapse; margin: .5em 0 1em; }}
td, th {{ border: 1px solid #999; padding: .3em .6em; vertical-align: top; text-align: left; }} th {{ background: #eee; }}
.ok {{ background: #d8f5d8; }} .bad {{ background: #f8d0d0; font-weight: bold; }} .why {{ font-size: .9em; max-width: 30em; }}
.badge {{ padding: .1em .5em; border-radius: .3em; }} .note {{ color: #555; font-style: italic; }}
svg text {{ font-family: sans-serif; font-size: 11px; }} .label {{ text-anchor: end; }} .tick {{ fill: #555; text-anchor: middle; }} .aside {{ fill: #555; }}
.grid {{ stroke: #ddd; }} .axis {{ stroke: #333; }} .rto {{ stroke: #333; stroke-width: 1.5; stroke-dasharray: 4 3; }}
.step-ok {{ fill: #4caf50; }} .step-failed {{ fill: #d32f2f; }} .step-skipped {{ fill: #bbb; }}
.trend {{ fill: none; stroke: #777; }} .dot-green {{ fill: #4caf50; }} .dot-red {{ fill: #d32f2f; }} .dot-none {{ fill: none; stroke: #999; }}
</style></head><body>
<h1>DR {_esc(kind)}: {_esc(site)}</h1>
<p>{_esc(str(kind).capitalize())} {_esc(ident)}: {_badge(status == "green", str(status))}. Started {_esc(report.get("started"))},
finished {_esc(report.get("finished"))}, took {_esc(_fmt_s(report.get("duration_s")))}.
{summary}</p>
{_standards_paragraph(report)}
<h2>Services</h2>
{services_table}
<h2>Timeline</h2>
<p class="note">Seconds since the {_esc(kind)} started; a bar per step (green ok, red failed, grey skipped); the dashed line is the
service's RTO target, counted from the drill's start.</p>
{render_timeline(report)}
{chr(10).join(details)}
<h2>Preflight</h2>
{preflight_table}
{checks}
<h2>Trend</h2>
<p class="note">RTO per service over the last {len(past)} drill(s) up to this one, oldest on the left: green and red dots are the
service's status in that drill, grey rings were not measured, the dashed line is the RTO target (left out when it is far above every
measurement).</p>
{trend_table}
<h3>Last drills, newest first</h3>
{drills_table}
</body></html>
"""


# --- files ---------------------------------------------------------------------------------------


def render_files(report_dir: str, report: dict, history_path: str) -> dict[str, tuple[str, str]]:
    """What ``write`` would put where: {role: (path, text)} for json, html, junit and history.
    Reads the history, writes nothing."""
    history = merge_history(read_history(history_path), summarise(report))
    return {
        "json": (os.path.join(report_dir, "report.json"), json.dumps(report, sort_keys=True, indent=2) + "\n"),
        "html": (os.path.join(report_dir, "report.html"), render_html(report, history)),
        "junit": (os.path.join(report_dir, "junit.xml"), render_junit(report)),
        "history": (history_path, dump_history(history)),
    }


def changed_files(files: dict[str, tuple[str, str]]) -> list[str]:
    """The paths whose content on disk differs from what would be written."""
    changed = []
    for path, text in files.values():
        try:
            with open(path, encoding="utf-8") as handle:
                same = handle.read() == text
        except FileNotFoundError:
            same = False
        if not same:
            changed.append(path)
    return changed


def write(report_dir: str, report: dict, history_path: str) -> dict:
    """Validate, then write report.json, report.html and junit.xml into ``report_dir`` and this
    drill's line into the history. Files already holding the same content are left alone, so
    writing the same report again changes nothing. Returns {role: path}."""
    problems = validate(report)
    if problems:
        ident = report.get("id") if isinstance(report, dict) else None
        raise ValueError(f"drill report {ident or '(no id)'} is not valid ({len(problems)} problem(s)): " + "; ".join(problems))
    files = render_files(report_dir, report, history_path)
    os.makedirs(report_dir, exist_ok=True)
    # The history last: a report directory without its history line can be written again; the
    # reverse would leave a line pointing at no report.
    for role in ("json", "html", "junit", "history"):
        _write_text(*files[role])
    return {role: path for role, (path, _) in files.items()}
