"""switch_l2's fleet mode: many CLI switches from one process, one thread each, at most
``max_logins`` logging in at once, and a switch that fails leaves the others' results whole.
netmiko's ConnectHandler is replaced by a stand-in whose login takes a while and counts how many
logins run at once; everything above it (IosCli, the module's run) is the real code."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from types import SimpleNamespace

import pytest
from test_switching import NETWORKS, PORTS

from ansible_collections.twinsite.dc.plugins.module_utils import _switch_conn
from ansible_collections.twinsite.dc.plugins.modules import switch_l2

FACTORY = "Building configuration...\n!\nhostname {name}\n!\ninterface FastEthernet0/1\n!\ninterface FastEthernet0/2\n!\n" \
          "interface GigabitEthernet0/1\n!\nend\n"


class Logins:
    """Shared with the fleet's forked processes: logins and `enable`s at once (what an AAA server
    sees), the most at once, logins in all; session preparations at once and the most at once."""

    def __init__(self):
        ctx = multiprocessing.get_context("fork")
        self.lock = ctx.Lock()
        self.counts = ctx.Array("i", 5, lock=False)  # now, peak, total, preparing now, preparing peak

    now = property(lambda self: self.counts[0])
    peak = property(lambda self: self.counts[1])
    total = property(lambda self: self.counts[2])
    preparing_peak = property(lambda self: self.counts[4])

    def enter(self, now: int, peak: int, total: int | None = None) -> None:
        with self.lock:
            self.counts[now] += 1
            if total is not None:
                self.counts[total] += 1
            self.counts[peak] = max(self.counts[peak], self.counts[now])

    def leave(self, now: int) -> None:
        with self.lock:
            self.counts[now] -= 1


def fake_netmiko(monkeypatch, logins: Logins, refuse: set[str] = frozenset(), crash: str | None = None, pids=None):
    class Conn:
        def __init__(self, **params):
            assert params.get("auto_connect") is False  # IosCli logs in step by step, the login alone under the cap
            self.name = params["host"]

        def _modify_connection_params(self):
            pass

        def establish_connection(self):
            if self.name == crash:
                os._exit(3)  # the process dies mid-login, as a segfault or the OOM killer would end it
            if pids is not None:
                (pids / str(os.getpid())).touch()
            logins.enter(0, 1, total=2)
            try:
                time.sleep(0.05)  # the handshake and authentication
                if self.name in refuse:
                    raise _switch_conn.NetmikoAuthenticationException("denied")
            finally:
                logins.leave(0)

        def _try_session_preparation(self):
            logins.enter(3, 4)
            try:
                time.sleep(0.1)  # netmiko finding the prompt, terminal width and length: not a login
            finally:
                logins.leave(3)

        def check_enable_mode(self):
            return False

        def enable(self):
            logins.enter(0, 1)  # enable's password is checked by the AAA server too
            try:
                time.sleep(0.01)
            finally:
                logins.leave(0)

        def send_command(self, command, **_):
            assert command == "show running-config"
            time.sleep(0.1)  # a session's work: it must not hold a login slot
            return FACTORY.format(name=self.name)

        def disconnect(self):
            pass

    monkeypatch.setattr(_switch_conn, "ConnectHandler", Conn)
    monkeypatch.setattr(_switch_conn, "HAS_NETMIKO", True)


def module(fleet, max_logins=3) -> SimpleNamespace:
    params = {"switch": None, "fleet": fleet, "max_logins": max_logins, "platform": "cisco_ios", "state": "merged",
              "networks": NETWORKS, "ports": [dict(p, switch=s["switch"]) for s in fleet for p in PORTS if p["switch"] == "accsw1"],
              "lags": [], "svis": [], "pairs": [], "running_config": None, "host": None, "port": 22, "username": "admin",
              "password": "pw", "secret": None, "timeout": 5, "bridge": "br0", "save": True, "rollback_seconds": 0,
              "confirm": False, "leave_armed": False, "store": None, "state_dir": "/nonexistent"}
    return SimpleNamespace(params=params, check_mode=True, _diff=False)


def members(n):
    return [{"switch": f"sw{i:02d}", "platform": None, "host": f"sw{i:02d}", "port": 22, "username": None, "password": None, "secret": None}
            for i in range(1, n + 1)]


def test_twenty_switches_log_in_three_at_a_time_and_all_report_their_commands(monkeypatch):
    logins = Logins()
    fake_netmiko(monkeypatch, logins)
    started = time.monotonic()
    result = switch_l2.run_fleet(module(members(20), max_logins=3))
    took = time.monotonic() - started
    assert result["failed_switches"] == [] and result["changed"] is True
    assert sorted(result["switches"]) == [f"sw{i:02d}" for i in range(1, 21)]
    for name, one in result["switches"].items():
        assert "interface FastEthernet0/1" in one["commands"] and " switchport access vlan 30" in one["commands"], name
    assert logins.total == 20 and logins.peak == 3
    # netmiko's session preparation does not hold a login slot: more than 3 prepare at once
    assert logins.preparing_peak > 3
    # 20 logins of 0.05 s, 3 at a time, is 0.35 s at least; the rest (0.2 s each) overlaps the logins
    assert took < 20 * (0.05 + 0.2) / 2, f"{took:.2f} s: the switches did not run in parallel"


def test_fleet_keys_leaves_each_switch_only_what_was_asked(monkeypatch):
    fake_netmiko(monkeypatch, Logins(), refuse={"sw02"})
    full = switch_l2.run_fleet(module(members(2)))
    assert {"before", "backup", "commands"} <= set(full["switches"]["sw01"])  # by default, the whole result
    mod = module(members(2))
    mod.params["fleet_keys"] = ["commands"]
    lean = switch_l2.run_fleet(mod)
    assert set(lean["switches"]["sw01"]) == {"changed", "commands"}
    assert lean["switches"]["sw01"]["commands"] == full["switches"]["sw01"]["commands"]
    assert lean["switches"]["sw02"]["failed"] and "refused the login" in lean["switches"]["sw02"]["msg"]  # failures whole
    assert lean["failed_switches"] == ["sw02"]


def test_a_switch_that_refuses_the_login_fails_alone(monkeypatch):
    logins = Logins()
    fake_netmiko(monkeypatch, logins, refuse={"sw02"})
    result = switch_l2.run_fleet(module(members(4)))
    assert result["failed_switches"] == ["sw02"]
    assert result["switches"]["sw02"]["failed"] and "refused the login of 'admin'" in result["switches"]["sw02"]["msg"]
    assert all(result["switches"][n]["commands"] for n in ("sw01", "sw03", "sw04"))


@pytest.mark.parametrize(("change", "message"), [
    (lambda m: m.params.update(max_logins=0), "expected 1 or more logins at once"),
    (lambda m: m.params["fleet"].append(dict(m.params["fleet"][0])), "a switch appears twice: ['sw01']"),
    (lambda m: m.params.update(platform="linux_ovs"), "a fleet is for CLI switches"),
])
def test_a_bad_fleet_is_refused_before_any_login(monkeypatch, change, message):
    logins = Logins()
    fake_netmiko(monkeypatch, logins)
    mod = module(members(2))
    change(mod)
    with pytest.raises(switch_l2.SwitchError, match=message.replace("[", r"\[").replace("]", r"\]")):
        switch_l2.run_fleet(mod)
    assert logins.total == 0


def test_forty_switches_are_dealt_out_to_processes_under_one_login_cap(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1, 2}, raising=False)  # 3 cores: 3 processes for 40
    assert switch_l2.fleet_processes(40) == 3 and switch_l2.fleet_processes(19) == 1 and switch_l2.fleet_processes(1) == 1
    logins = Logins()
    fake_netmiko(monkeypatch, logins, refuse={"sw05"}, pids=tmp_path)
    result = switch_l2.run_fleet(module(members(40), max_logins=4))
    assert list(result["switches"]) == [f"sw{i:02d}" for i in range(1, 41)]  # the play's order, whatever process ran it
    assert result["failed_switches"] == ["sw05"] and "refused the login" in result["switches"]["sw05"]["msg"]
    assert all(" switchport access vlan 30" in r["commands"] for n, r in result["switches"].items() if n != "sw05")
    assert logins.total == 40 and logins.peak == 4  # the cap holds over all the processes together
    workers = {int(p.name) for p in tmp_path.iterdir()}
    assert len(workers) == 3 and os.getpid() not in workers


def test_a_process_that_dies_fails_its_switches_and_no_other(monkeypatch):
    """sw07's process dies holding the only login slot: the other process gets it back and goes on."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)
    fake_netmiko(monkeypatch, Logins(), crash="sw07")
    done = {}
    runner = threading.Thread(target=lambda: done.update(result=switch_l2.run_fleet(module(members(20), max_logins=1))), daemon=True)
    runner.start()
    runner.join(timeout=30)
    assert "result" in done, "the fleet waits for ever for the login slot the dead process held"
    result = done["result"]
    dead = [f"sw{i:02d}" for i in range(1, 21, 2)]  # sw07 is 7th: dealt to the first of 2 processes with sw01, sw03...
    assert result["failed_switches"] == dead
    assert "exited (code 3) before it reported: the switch may have been changed" in result["switches"]["sw01"]["msg"]
    assert all(result["switches"][f"sw{i:02d}"]["commands"] for i in range(2, 21, 2))
