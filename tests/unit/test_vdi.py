"""VDI pool decisions (``_vdi.plan``) and their execution (``PoolService``) over an in-memory VM backend
and broker: sizes, shrinking only free desktops, refresh in batches that skip sessions (also sessions
that begin during the refresh), power out of hours, check mode writing nothing, failures converging."""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.twinsite.dc.plugins.module_utils import _vdi
from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError

POOL = {"name": "staff", "template": "tpl-win11", "clone": "linked", "naming": "vdi-staff-{n:03d}",
        "size": {"min": 2, "max": 10, "spare": 2}, "network": "users", "cpus": 2, "memory_mb": 4096,
        "power": {"spare_on": True, "off_hours": "19:00-07:00"}}


def desktop(n: int, image: str = "tpl-win11", power: str = "on", **over) -> dict:
    return {"name": f"vdi-staff-{n:03d}", "notes": _vdi.note("staff", image), "power": power, "cpus": 2, "memory_mb": 4096,
            "networks": ["users"], **over}


# --- naming --------------------------------------------------------------------------------------


def test_naming_round_trip_and_strangers():
    naming = _vdi.Naming("vdi-staff-{n:03d}")
    assert naming.name(7) == "vdi-staff-007"
    assert naming.number("vdi-staff-007") == 7
    assert naming.number("vdi-staff-1234") == 1234
    assert naming.number("vdi-staff-7") is None  # not a name the pattern makes
    assert naming.number("vdi-staff-007-old") is None
    assert naming.number("web1") is None


@pytest.mark.parametrize("pattern", ["vdi-static", "vdi-{n}-{n}", "vdi-{x:03d}", "vdi-{n!r}", "vdi-{n:q}"])
def test_naming_rejects_patterns_without_one_number(pattern):
    with pytest.raises(TwinsiteError, match="naming"):
        _vdi.Naming(pattern)


# --- plan ----------------------------------------------------------------------------------------


def test_empty_pool_gets_min_or_spare_desktops_lowest_numbers_first():
    p = _vdi.plan(POOL, [], {}, {}, "10:00")
    assert p.target == 2
    assert p.create == ["vdi-staff-001", "vdi-staff-002"]
    assert p.wanted_power == {"vdi-staff-001": "on", "vdi-staff-002": "on"}


def test_busy_desktops_grow_the_pool_by_spare_and_gaps_are_filled():
    have = [desktop(1), desktop(2), desktop(5)]
    p = _vdi.plan(POOL, have, {"vdi-staff-001": {"user": "jdoe", "state": "connected"}}, {"vdi-staff-002": "asmith"}, "10:00")
    assert p.target == 4  # 2 busy + 2 spare
    assert p.create == ["vdi-staff-003"]
    assert p.remove == [] and p.refresh == []


def test_second_plan_of_a_converged_pool_is_empty():
    have = [desktop(1), desktop(2)]
    p = _vdi.plan(POOL, have, {}, {}, "10:00")
    assert not p.changed


def test_shrink_removes_only_free_desktops_stale_first_then_highest():
    have = [desktop(n) for n in range(1, 7)] + [desktop(7, image="tpl-win11-old")]
    sessions = {"vdi-staff-006": {"user": "jdoe", "state": "disconnected"}}
    p = _vdi.plan({**POOL, "size": {"min": 0, "max": 3, "spare": 0}}, have, sessions, {"vdi-staff-005": "asmith"}, "10:00")
    assert p.target == 2  # two busy, spare 0
    assert sorted(p.remove) == ["vdi-staff-001", "vdi-staff-002", "vdi-staff-003", "vdi-staff-004", "vdi-staff-007"]
    assert "vdi-staff-005" not in p.remove and "vdi-staff-006" not in p.remove


def test_busy_above_max_stays_with_a_warning():
    have = [desktop(n) for n in range(1, 5)]
    sessions = {d["name"]: {"user": f"u{i}", "state": "connected"} for i, d in enumerate(have)}
    p = _vdi.plan({**POOL, "size": {"min": 0, "max": 2, "spare": 0}}, have, sessions, {}, "10:00")
    assert p.remove == []
    assert any("busy" in w for w in p.warnings)


def test_stale_desktops_are_refreshed_but_never_one_with_a_session():
    have = [desktop(1, image="old"), desktop(2, image="old"), desktop(3, cpus=4), desktop(4, notes="")]
    sessions = {"vdi-staff-002": {"user": "jdoe", "state": "connected"}}
    p = _vdi.plan({**POOL, "size": {"min": 4, "max": 10, "spare": 0}}, have, sessions, {}, "10:00")
    assert p.refresh == ["vdi-staff-001", "vdi-staff-003", "vdi-staff-004"]
    assert [d["name"] for d in p.deferred] == ["vdi-staff-002"]
    assert p.deferred[0]["user"] == "jdoe" and "image old" in p.deferred[0]["reason"]


def test_out_of_hours_keeps_spare_free_desktops_on_and_leaves_sessions_alone():
    have = [desktop(n) for n in range(1, 6)] + [desktop(6, power="off")]
    sessions = {"vdi-staff-001": {"user": "jdoe", "state": "connected"}}
    p = _vdi.plan({**POOL, "size": {"min": 6, "max": 10, "spare": 2}}, have, sessions, {"vdi-staff-003": "asmith"}, "22:30")
    # free: 2, 4, 5, 6 -> 2 and 4 stay on, 5 goes off, 6 stays off; 3 is assigned without a session -> off; 1 untouched.
    assert p.power_off == ["vdi-staff-003", "vdi-staff-005"]
    assert p.power_on == []
    day = _vdi.plan({**POOL, "size": {"min": 6, "max": 10, "spare": 2}}, have, sessions, {}, "09:00")
    assert day.power_on == ["vdi-staff-006"] and day.power_off == []


@pytest.mark.parametrize(("window", "now", "off"), [("19:00-07:00", "19:00", True), ("19:00-07:00", "06:59", True),
                                                    ("19:00-07:00", "07:00", False), ("12:00-13:00", "12:30", True),
                                                    ("12:00-13:00", "13:00", False), (None, "03:00", False)])
def test_off_hours_window(window, now, off):
    assert _vdi.out_of_hours(window, now) is off


@settings(max_examples=300, deadline=None)
@given(numbers=st.sets(st.integers(1, 30), max_size=20), data=st.data(),
       size=st.tuples(st.integers(0, 12), st.integers(0, 25), st.integers(0, 6)), now=st.sampled_from(["03:00", "12:00"]))
def test_plan_invariants(numbers, data, size, now):
    lo, extra, spare = size
    pool = {**POOL, "size": {"min": lo, "max": lo + extra, "spare": spare}}
    have = [desktop(n, image=data.draw(st.sampled_from(["tpl-win11", "old"])), power=data.draw(st.sampled_from(["on", "off"])))
            for n in sorted(numbers)]
    names = [d["name"] for d in have]
    in_session = set(data.draw(st.lists(st.sampled_from(names), unique=True))) if names else set()
    assigned = set(data.draw(st.lists(st.sampled_from(names), unique=True))) if names else set()
    sessions = {n: {"user": "u", "state": "connected"} for n in in_session}
    p = _vdi.plan(pool, have, sessions, dict.fromkeys(assigned, "u"), now)
    busy = in_session | assigned
    # Busy desktops are never removed; desktops with a session are never refreshed nor powered.
    assert not busy & set(p.remove)
    assert not in_session & (set(p.refresh) | set(p.power_on) | set(p.power_off))
    # New names are new, and the pool ends at its target unless busy desktops hold it above.
    assert not set(p.create) & set(names)
    final = len(have) - len(p.remove) + len(p.create)
    assert final == max(p.target, len(busy & set(names)))
    assert p.target <= pool["size"]["max"]
    # Applying the plan and planning again: nothing more to do, except deferred refreshes.
    after = [d for d in have if d["name"] not in p.remove and d["name"] not in p.refresh]
    after += [desktop(_vdi.Naming(pool["naming"]).number(n), power=p.wanted_power[n]) for n in p.create + p.refresh]
    after = [{**d, "power": p.wanted_power[d["name"]]} if d["name"] in p.power_on + p.power_off else d for d in after]
    again = _vdi.plan(pool, after, sessions, dict.fromkeys(assigned, "u"), now)
    assert not again.create and not again.remove and not again.power_on and not again.power_off
    assert again.refresh == [] and {d["name"] for d in again.deferred} == {d["name"] for d in p.deferred}


# --- the service, over an in-memory backend --------------------------------------------------------


class MemoryBackend:
    """The ``_vm`` backend contract over a dict; every write is recorded (thread-safe)."""

    def __init__(self, vms=(), fail_clone: set | None = None):
        self.vms = {vm["name"]: dict(vm) for vm in vms}
        self.templates = {"tpl-win11": {"name": "tpl-win11", "cpus": 4, "memory_mb": 8192, "networks": ["servers"], "notes": ""}}
        self.writes, self.lock = [], threading.Lock()
        self.fail_clone = fail_clone or set()
        self.active = self.peak = 0

    def _w(self, *entry):
        with self.lock:
            self.writes.append(entry)

    def list(self):
        return [dict(vm) for vm in self.vms.values()]

    def template(self, name):
        if name not in self.templates:
            raise TwinsiteError("no template of that name", obj=f"template '{name}'", action="lookup")
        return self.templates[name]

    def clone(self, params):
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            self._w("clone", params["name"], params["template"], params["clone"])
            time.sleep(0.01)  # a vendor task takes a while: long enough for clones to overlap
            if params["name"] in self.fail_clone:
                raise TwinsiteError("InsufficientResourcesFault", obj=f"template 'tpl-win11' to VM '{params['name']}'", action="clone")
            tpl = self.template(params["template"])
            vm = {**tpl, "name": params["name"], "power": "off"}
            with self.lock:
                self.vms[vm["name"]] = vm
            return dict(vm)
        finally:
            with self.lock:
                self.active -= 1

    def reconfigure(self, vm, changes):
        self._w("reconfigure", vm["name"], tuple(sorted(changes)))
        self.vms[vm["name"]].update(changes)

    def power(self, vm, action):
        self._w("power", vm["name"], action)
        self.vms[vm["name"]]["power"] = action

    def delete(self, vm):
        self._w("delete", vm["name"])
        with self.lock:
            del self.vms[vm["name"]]


class MemoryBroker:
    def __init__(self, sessions=None, assignments=None):
        self.session_map, self.assignment_map = dict(sessions or {}), dict(assignments or {})
        self.reads = 0
        self.on_read = None

    def sessions(self, pool):
        self.reads += 1
        if self.on_read:
            self.on_read(self)
        return dict(self.session_map)

    def assignments(self, pool):
        return dict(self.assignment_map)


def test_service_creates_in_parallel_then_second_run_writes_nothing():
    backend = MemoryBackend()
    pool = {**POOL, "size": {"min": 20, "max": 30, "spare": 2}}
    first = _vdi.PoolService(backend, MemoryBroker(), check_mode=False, parallel=4).converge(pool, "10:00")
    assert first["changed"] and len(first["created"]) == 20
    assert 1 < backend.peak <= 4
    vm = backend.vms["vdi-staff-001"]
    assert vm["power"] == "on" and vm["cpus"] == 2 and vm["memory_mb"] == 4096 and vm["networks"] == ["users"]
    assert _vdi.image_of(vm["notes"]) == "tpl-win11"
    backend.writes.clear()
    second = _vdi.PoolService(backend, MemoryBroker(), check_mode=False).converge(pool, "10:00")
    assert not second["changed"] and backend.writes == []


def test_check_mode_writes_nothing_and_predicts():
    backend = MemoryBackend([desktop(1, image="old")])
    out = _vdi.PoolService(backend, MemoryBroker(), check_mode=True).converge(POOL, "10:00")
    assert backend.writes == []
    assert out["created"] == ["vdi-staff-002"] and out["refreshed"] == ["vdi-staff-001"]
    assert out["diff"]["before"]["vdi-staff-001"]["image"] == "old"
    assert out["diff"]["after"]["vdi-staff-001"]["image"] == "tpl-win11"
    assert out["diff"]["after"]["vdi-staff-002"] == {"image": "tpl-win11", "power": "on", "cpus": 2, "memory_mb": 4096, "networks": ["users"]}


def test_refresh_runs_in_batches_and_skips_a_session_that_began_meanwhile():
    have = [desktop(n, image="old") for n in range(1, 8)]
    backend = MemoryBackend(have)
    broker = MemoryBroker(sessions={"vdi-staff-002": {"user": "jdoe", "state": "connected"}})

    def login_during_refresh(b):
        # After the plan and the first batch's re-read, a user logs in to desktop 6 (in batch 2).
        if b.reads == 2:
            b.session_map["vdi-staff-006"] = {"user": "asmith", "state": "connected"}

    broker.on_read = login_during_refresh
    pool = {**POOL, "size": {"min": 7, "max": 10, "spare": 0}}
    out = _vdi.PoolService(backend, broker, check_mode=False, refresh_batch=3).converge(pool, "10:00")
    assert out["batches"] == [["vdi-staff-001", "vdi-staff-003", "vdi-staff-004"], ["vdi-staff-005", "vdi-staff-006", "vdi-staff-007"]]
    assert out["refreshed"] == ["vdi-staff-001", "vdi-staff-003", "vdi-staff-004", "vdi-staff-005", "vdi-staff-007"]
    assert {d["name"] for d in out["deferred"]} == {"vdi-staff-002", "vdi-staff-006"}
    # Batch 1 was finished (every desktop cloned and powered on) before batch 2 began.
    order = [w for w in backend.writes if w[0] in ("delete", "power") and w[-1] != "off"]
    first_batch_done = max(i for i, w in enumerate(order) if w[1] in out["batches"][0])
    second_batch_start = min(i for i, w in enumerate(order) if w[1] in out["batches"][1])
    assert first_batch_done < second_batch_start
    assert _vdi.image_of(backend.vms["vdi-staff-002"]["notes"]) == "old"
    assert _vdi.image_of(backend.vms["vdi-staff-006"]["notes"]) == "old"
    assert not any(w[1] in ("vdi-staff-002", "vdi-staff-006") for w in backend.writes)


def test_a_failed_clone_keeps_the_rest_and_the_next_run_converges():
    backend = MemoryBackend(fail_clone={"vdi-staff-003"})
    pool = {**POOL, "size": {"min": 5, "max": 10, "spare": 0}}
    with pytest.raises(_vdi.PoolError, match="vdi-staff-003") as failed:
        _vdi.PoolService(backend, MemoryBroker(), check_mode=False).converge(pool, "10:00")
    assert sorted(failed.value.report["created"]) == ["vdi-staff-001", "vdi-staff-002", "vdi-staff-004", "vdi-staff-005"]
    backend.fail_clone.clear()
    out = _vdi.PoolService(backend, MemoryBroker(), check_mode=False).converge(pool, "10:00")
    assert out["created"] == ["vdi-staff-003"]
    assert sorted(backend.vms) == [f"vdi-staff-{n:03d}" for n in range(1, 6)]


def test_a_missing_image_fails_before_any_desktop_is_touched():
    backend = MemoryBackend([desktop(1, image="old")])
    with pytest.raises(TwinsiteError, match="template 'tpl-win12'"):
        _vdi.PoolService(backend, MemoryBroker(), check_mode=False).converge({**POOL, "template": "tpl-win12"}, "10:00")
    assert backend.writes == []


def test_absent_removes_free_desktops_and_keeps_busy_ones():
    backend = MemoryBackend([desktop(n) for n in range(1, 5)])
    pool = _vdi.checked_pool(POOL, "absent")
    out = _vdi.PoolService(backend, MemoryBroker(assignments={"vdi-staff-002": "jdoe"}), check_mode=False).converge(pool, "10:00")
    assert sorted(out["removed"]) == ["vdi-staff-001", "vdi-staff-003", "vdi-staff-004"]
    assert sorted(backend.vms) == ["vdi-staff-002"]


@pytest.mark.parametrize(("change", "message"), [
    ({"size": {"min": 5, "max": 2, "spare": 0}}, "min 5 is larger than max 2"),
    ({"size": {"min": 1, "max": "ten", "spare": 0}}, "pool.size must be"),
    ({"naming": "vdi-static"}, "exactly one {n} field"),
    ({"power": {"off_hours": "7pm-7am"}}, "HH:MM-HH:MM"),
    ({"template": None}, "pool.template is missing"),
])
def test_bad_pool_input_is_named(change, message):
    with pytest.raises(TwinsiteError, match=message.replace("{", r"\{").replace("}", r"\}")) as bad:
        _vdi.checked_pool({**POOL, **change}, "present")
    assert "pool 'staff'" in str(bad.value)


def test_profiles_filter_gives_one_item_per_file_and_names_a_bad_pool():
    from ansible.errors import AnsibleFilterError

    from ansible_collections.twinsite.dc.plugins.filter.vdi import vdi_profiles

    files = vdi_profiles([{**POOL, "protocol": "rdp", "address": "vdi.town.example"}], {"type": "file", "path": "/tmp/b.json"})
    assert [(f["pool"], f["file"]) for f in files] == [("staff", "staff.rdp")]
    assert "full address:s:vdi.town.example\r\n" in files[0]["content"]
    with pytest.raises(AnsibleFilterError, match="vdi_profiles: .*needs the pool's address"):
        vdi_profiles([{**POOL, "protocol": "rdp"}], None)
