"""A no-change site.yml on the lab under Ansible's own `linear` strategy against
`twinsite.dc.mitogen_linear` (ansible.cfg's default: Mitogen keeps one Python per host for the run).

The lab must be up and converged (`scripts/lab up`, then one `ansible-playbook playbooks/site.yml`):
the bench runs a warm-up site.yml first and refuses to measure if it changed anything, so both
strategies are timed doing the same work, reading every host and finding nothing to do.

R rounds, the two strategies in alternating order. Reported per run: wall clock, CPU seconds of
ansible-playbook and its workers (controller), CPU seconds inside the lab's containers (their
cgroups: the modules' Python on the hosts, sshd), how busy the machine's cores were, and the recap's
ok/changed counts (a run that changed something or failed does not count: the bench stops).

    python bench/strategy.py [--rounds 3] [--playbook site.yml]
    (the lab up; ~6 min for 3 rounds on 2 cores. Results: docs/benchmarks.md, "Ansible strategy")
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, VENV_BIN, ContainerCpu, scratch  # noqa: E402

STRATEGIES = {"linear": "linear", "mitogen": "twinsite.dc.mitogen_linear"}
# The lab's podman settings, as scripts/lab uses them (without them `podman ps` may not see the lab).
os.environ.setdefault("CONTAINERS_CONF", str(REPO / "scripts" / "labkit" / "containers.conf"))


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of all cores so far, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def recap(output: str) -> dict[str, int]:
    totals = {"ok": 0, "changed": 0, "failed": 0, "unreachable": 0}
    for counters in re.findall(r"^\S+\s+:\s+(ok=.*)$", output, re.MULTILINE):
        for key, value in re.findall(r"(\w+)=(\d+)", counters):
            if key in totals:
                totals[key] += int(value)
    return totals


def run(playbook: str, strategy: str, audit: Path) -> dict:
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_STRATEGY": strategy,
           "TWINSITE_AUDIT_LOG": str(audit), "PATH": f"{VENV_BIN}:{os.environ['PATH']}"}
    env.setdefault("ANSIBLE_VAULT_IDENTITY_LIST", f"lab@{REPO / 'inventory' / 'lab.vault-password'}")
    before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    lab = ContainerCpu()
    before_containers, (busy0, total0) = lab.total(), machine_busy()
    started = time.perf_counter()
    proc = subprocess.run(["ansible-playbook", f"playbooks/{playbook}"], cwd=REPO, env=env,
                          capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    containers, (busy1, total1) = lab.total() - before_containers, machine_busy()
    counts = recap(proc.stdout)
    if proc.returncode != 0 or counts["changed"] or counts["failed"] or counts["unreachable"] or not counts["ok"]:
        raise SystemExit(f"{playbook} under {strategy} did not run clean without changes "
                         f"(exit {proc.returncode}, {counts}):\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    controller = (after_children.ru_utime - before_children.ru_utime) + (after_children.ru_stime - before_children.ru_stime)
    return {"wall": wall, "controller": controller, "containers": containers,
            "busy": (busy1 - busy0) / max(total1 - total0, 1), "ok": counts["ok"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--playbook", default="site.yml")
    args = parser.parse_args()
    audit = scratch("strategy") / "audit.jsonl"  # the runs' audit log, not the project's
    print(f"warm-up: {args.playbook} once (must change nothing)", flush=True)
    run(args.playbook, STRATEGIES["mitogen"], audit)
    results: dict[str, list[dict]] = {name: [] for name in STRATEGIES}
    for round_no in range(args.rounds):
        order = list(STRATEGIES) if round_no % 2 == 0 else list(reversed(STRATEGIES))
        for name in order:
            result = run(args.playbook, STRATEGIES[name], audit)
            results[name].append(result)
            print(f"round {round_no + 1} {name:8} {result['wall']:6.1f} s wall  controller {result['controller']:5.1f} "
                  f"cpu-s  containers {result['containers']:5.1f} cpu-s  cores busy {result['busy']:4.0%}  "
                  f"ok={result['ok']}", flush=True)
    print(f"\nmedians over {args.rounds} rounds, {args.playbook} with nothing to change:")
    print(f"{'strategy':10} {'wall s':>8} {'controller cpu-s':>17} {'containers cpu-s':>17} {'cores busy':>11}")
    med = {}
    for name, runs in results.items():
        med[name] = {key: statistics.median(r[key] for r in runs) for key in ("wall", "controller", "containers", "busy")}
        m = med[name]
        print(f"{name:10} {m['wall']:8.1f} {m['controller']:17.1f} {m['containers']:17.1f} {m['busy']:11.0%}")
    print(f"\nmitogen / linear: wall {med['mitogen']['wall'] / med['linear']['wall']:.2f}, "
          f"controller CPU {med['mitogen']['controller'] / med['linear']['controller']:.2f}, "
          f"containers' CPU {med['mitogen']['containers'] / med['linear']['containers']:.2f}")


if __name__ == "__main__":
    main()
