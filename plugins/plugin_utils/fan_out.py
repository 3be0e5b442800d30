# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One task's result given back to each host it was about: the fan-out of twinsite's linear strategy.

A task that works on many hosts at once from the controller (``run_once``) returns one result for
all of them. The access switches are configured that way: one ``switch_l2`` call for every CLI
switch of the play. Ansible counts, prints and fails that result for the play's first host only.
Giving each switch its own line, changed count, failure and audit entry took one more task per
host, and a task costs Ansible 40-70 ms per host whatever it does: 3.5 s for 50 switches, where
the call that configured them took 4 s.

A task opts in with a task variable::

    vars:
      twinsite_fan_out:
        results: switches   # the key of its result that holds one result per host, by host name
        keep: [commands]    # what each host's result keeps besides CORE (optional: everything)
        show: true          # print each host's result without -v too, as a debug line (optional)

When such a task's result comes back holding that key, the strategy puts one result per host named
there in its place, as if the task had run on each of them: each is counted, printed, registered on
its own host and fails its own host (not every host, as a failed run_once task would). A host of the
inventory that the key does not name gets nothing; the host that ran the task keeps the rest of the
result when the key does not name it. A result without the key (the task skipped, or failed before
it tried any host) goes through as it is.

Every task the strategy queues also sees ``twinsite_fan_out_active: true``. Under another strategy,
where nothing is fanned out, a task can use that to fail as a whole instead of losing a host's
failure inside its one result.
"""

from __future__ import annotations

import collections

from ansible.executor.task_result import _RawTaskResult

SPEC_VAR = "twinsite_fan_out"
ACTIVE_VAR = "twinsite_fan_out_active"
# kept in every host's result: what Ansible reads to count, print and fail it (and the task's own
# _ansible_* keys: no_log, check mode, delegation)
CORE = ("changed", "failed", "msg", "diff", "skipped")


def spec_of(task) -> dict | None:
    """The task's ``twinsite_fan_out`` (its own ``vars``, as written), or None when it has none."""
    spec = (getattr(task, "vars", None) or {}).get(SPEC_VAR)
    if isinstance(spec, str):
        spec = {"results": spec}
    if not isinstance(spec, dict) or not isinstance(spec.get("results"), str):
        return None
    return spec


def split(strategy, result) -> list | None:
    """``result`` as one result per host, or None when it is not to be fanned out."""
    task = result.task
    spec = spec_of(task)
    if spec is None:
        return None
    data = result._return_data
    per_host = data.get(spec["results"]) if isinstance(data, dict) else None
    if not isinstance(per_host, dict) or not per_host:
        return None
    keep = None if spec.get("keep") is None else set(spec["keep"]) | set(CORE)
    # Each host's result is its own: the task copy is not run_once, so a failure fails that host
    # only and `register` sets the result on that host only.
    each = task.copy()
    each.run_once = False
    queued = strategy._queued_task_cache.get((result.host.name, task._uuid))
    out = []
    for name, own in per_host.items():
        host = strategy._inventory.get_host(name)
        if host is None or not isinstance(own, dict):
            continue
        own = {k: v for k, v in own.items() if keep is None or k in keep}
        for key in data:
            if key.startswith("_ansible_") and key not in own:
                own[key] = data[key]
        if spec.get("show"):
            own["_ansible_verbose_always"] = True
        out.append(_RawTaskResult(host, each, own, result.task_fields))
        if queued is not None and host.name != result.host.name:
            # Ansible's result processing (the task debugger's wrapper) looks each result's task up here
            strategy._queued_task_cache[(host.name, task._uuid)] = dict(queued, host=host)
    if result.host.name not in per_host:
        rest = {k: v for k, v in data.items() if k != spec["results"]}
        out.insert(0, _RawTaskResult(result.host, each, rest, result.task_fields))
    return out or None


class FanOutResults(collections.deque):
    """The strategy's queue of results waiting to be processed. The results thread appends what the
    workers send; the strategy takes them off with popleft, in its own thread and under its lock,
    and that is where a result to fan out is replaced by its hosts' results."""

    def __init__(self, strategy):
        super().__init__()
        self._strategy = strategy

    def popleft(self):
        result = super().popleft()
        parts = split(self._strategy, result)
        if not parts:
            return result
        first, *rest = parts
        self.extendleft(reversed(rest))
        # each result processed takes one off; the strategy expected one for this task
        self._strategy._pending_results += len(rest)
        return first


class FanOutMixin:
    """For a strategy class (before StrategyBase in its bases): fans out results as above."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        with self._results_lock:
            self._results = FanOutResults(self)

    def _queue_task(self, host, task, task_vars, play_context):
        task_vars[ACTIVE_VAR] = True
        return super()._queue_task(host, task, task_vars, play_context)
