"""The strategy's fan-out (plugins/plugin_utils/fan_out.py): one run_once task's result, holding a
result per host, processed as each host's own. Ansible's own Task, Host and result objects; the
strategy is a stand-in with the attributes the fan-out touches. tests/integration/test_switch_fleet.py
runs it under ansible-playbook (a switch whose login fails is the one host that fails)."""

from __future__ import annotations

from types import SimpleNamespace

from ansible.executor.task_result import _RawTaskResult
from ansible.inventory.host import Host
from ansible.playbook.task import Task

from ansible_collections.twinsite.dc.plugins.plugin_utils import fan_out

FIELDS = {"name": "Apply the change to the CLI switches"}


def task(spec=None) -> Task:
    data = {"name": FIELDS["name"], "debug": {"msg": "x"}, "run_once": True}
    if spec is not None:
        data["vars"] = {"twinsite_fan_out": spec}
    return Task.load(data)


def strategy(*names: str) -> SimpleNamespace:
    hosts = {n: Host(n) for n in names}
    return SimpleNamespace(_inventory=SimpleNamespace(get_host=hosts.get), _queued_task_cache={}, _pending_results=0, hosts=hosts)


def fleet_result(strat, the_task, first="sw1", **extra) -> _RawTaskResult:
    data = {"changed": True, "failed_switches": ["sw2"], "_ansible_no_log": False, "_ansible_check_mode": True,
            "_ansible_delegated_vars": {"ansible_host": "localhost"},
            "switches": {"sw1": {"changed": True, "commands": ["vlan 10"], "before": {"big": 1}, "stored": "abc"},
                         "sw2": {"changed": False, "failed": True, "msg": "sw2 refused the login", "commands": []}},
            **extra}
    strat._queued_task_cache[(first, the_task._uuid)] = {"host": strat.hosts[first], "task": the_task, "task_vars": {"a": 1},
                                                         "play_context": None}
    return _RawTaskResult(strat.hosts[first], the_task, data, FIELDS)


def test_each_host_gets_its_own_result_which_fails_only_that_host():
    strat = strategy("sw1", "sw2", "sw3")
    the_task = task({"results": "switches", "keep": ["commands", "stored"], "show": True})
    parts = fan_out.split(strat, fleet_result(strat, the_task))
    assert [p.host.name for p in parts] == ["sw1", "sw2"]  # sw3 was not in the call: it gets nothing
    one, two = parts
    assert one.is_changed() and not one.is_failed()
    assert two.is_failed() and two._return_data["msg"] == "sw2 refused the login"
    assert "before" not in one._return_data and one._return_data["stored"] == "abc"  # keep: only what was asked
    for part in parts:
        assert part.task.run_once is False and part.task._uuid == the_task._uuid  # fails its own host, not the play's
        assert part._return_data["_ansible_verbose_always"] is True  # show: printed without -v
        assert part._return_data["_ansible_check_mode"] is True and part._return_data["_ansible_delegated_vars"]
        assert part.task_fields == FIELDS
    assert the_task.run_once is True  # the play's task is left as it was
    # Ansible's result processing looks every result's task up by host and task
    assert strat._queued_task_cache[("sw2", the_task._uuid)]["host"] is strat.hosts["sw2"]


def test_without_keep_a_host_keeps_its_whole_result_and_without_show_it_is_not_forced_out():
    strat = strategy("sw1", "sw2")
    parts = fan_out.split(strat, fleet_result(strat, task("switches")))
    assert parts[0]._return_data["before"] == {"big": 1}
    assert "_ansible_verbose_always" not in parts[0]._return_data


def test_the_host_that_ran_the_task_keeps_the_rest_when_the_results_do_not_name_it():
    strat = strategy("ovs1", "sw1", "sw2")
    parts = fan_out.split(strat, fleet_result(strat, task("switches"), first="ovs1"))
    assert [p.host.name for p in parts] == ["ovs1", "sw1", "sw2"]
    assert "switches" not in parts[0]._return_data and parts[0]._return_data["failed_switches"] == ["sw2"]


def test_a_result_without_the_hosts_goes_through_as_it_is():
    strat = strategy("sw1")
    the_task = task("switches")
    skipped = _RawTaskResult(strat.hosts["sw1"], the_task, {"skipped": True, "changed": False}, FIELDS)
    assert fan_out.split(strat, skipped) is None
    assert fan_out.split(strat, fleet_result(strat, task())) is None  # a task that did not ask
    assert fan_out.split(strat, fleet_result(strat, task({"keep": ["x"]}))) is None  # nor with no results key


def test_the_queue_hands_out_each_hosts_result_in_turn_and_expects_as_many():
    strat = strategy("sw1", "sw2")
    queue = fan_out.FanOutResults(strat)
    strat._pending_results = 2  # the fleet task, and another host's task queued after it
    other = _RawTaskResult(strat.hosts["sw1"], task(), {"changed": False}, FIELDS)
    queue.append(fleet_result(strat, task("switches")))
    queue.append(other)
    got = [queue.popleft() for _ in range(3)]
    assert [r.host.name for r in got[:2]] == ["sw1", "sw2"] and got[2] is other
    assert strat._pending_results == 3  # one more result than queued tasks: the fleet's second host
    assert not queue


def test_every_queued_task_is_told_the_fan_out_is_on():
    seen = {}

    class Base:
        def __init__(self):
            self._results_lock = __import__("threading").Condition()
            self._results = []

        def _queue_task(self, host, task, task_vars, play_context):
            seen.update(task_vars)

    class Strategy(fan_out.FanOutMixin, Base):
        pass

    strat = Strategy()
    assert isinstance(strat._results, fan_out.FanOutResults)
    strat._queue_task(Host("sw1"), task(), {"x": 1}, None)
    assert seen == {"x": 1, "twinsite_fan_out_active": True}
