"""What the inventory benchmarks share: paths, timing, counting API calls, printing a table.

Calls are counted by the ``callcount/sitecustomize.py`` shim in every process measured (see there).
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
sys.path.insert(0, str(REPO / "scripts"))  # labkit, to start simulators of our own
# The in-process measurements import Ansible: it must read the project's ansible.cfg.
os.environ["ANSIBLE_CONFIG"] = str(REPO / "ansible.cfg")
os.environ.setdefault("ANSIBLE_VAULT_IDENTITY_LIST", f"lab@{REPO / 'inventory' / 'lab.vault-password'}")


def init_ansible() -> None:
    """Let this process import the collection (twinsite.dc) through Ansible's own loader, as
    ansible-inventory does. Call it before anything imports from ansible_collections (labkit's
    model does), or that import binds the collection as a plain package Ansible cannot use."""
    from ansible.plugins.loader import init_plugin_loader

    init_plugin_loader([str(REPO / "collections")])


def scratch(name: str) -> Path:
    """A fresh directory for one benchmark's simulator state and config files, never the lab's."""
    return Path(tempfile.mkdtemp(prefix=f"twinsite-bench-{name}-"))


class CountedRunError(Exception):
    """A command run by ``run_counted(..., keep_failure=True)`` failed: what it cost and what it said."""

    def __init__(self, seconds: float, calls: int, by_call: dict, stdout: str, stderr: str):
        super().__init__(f"failed after {seconds:.1f}s")
        self.seconds, self.calls, self.by_call, self.stdout, self.stderr = seconds, calls, by_call, stdout, stderr


def run_counted(argv: list[str], env: dict | None = None, cwd: Path = REPO,
                keep_failure: bool = False) -> tuple[float, int, dict, str]:
    """Run a command; return (seconds, HTTP requests made by all its Python processes, the same by
    call, its stdout). A failure ends the benchmark, or with ``keep_failure`` raises CountedRunError,
    for a benchmark that records a peer's failure instead."""
    with tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False) as handle:
        count_file = Path(handle.name)
    full_env = {**os.environ, **(env or {}), "PYTHONPATH": str(REPO / "bench" / "callcount"),
                "TWINSITE_CALLCOUNT_FILE": str(count_file), "PATH": f"{VENV_BIN}:{os.environ['PATH']}"}
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=full_env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    by_call: dict[str, int] = {}
    for line in count_file.read_text().splitlines():
        for call, n in json.loads(line)["by_call"].items():
            by_call[call] = by_call.get(call, 0) + n
    count_file.unlink()
    if proc.returncode != 0:
        if keep_failure:
            raise CountedRunError(elapsed, sum(by_call.values()), by_call, proc.stdout, proc.stderr)
        raise SystemExit(f"{' '.join(argv[:3])} ... failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return elapsed, sum(by_call.values()), by_call, proc.stdout


def median_of(repeat: int, measure) -> tuple[float, object]:
    """Run ``measure()`` (returning (seconds, extra)) ``repeat`` times; the median time and the last extra."""
    times, extra = [], None
    for _ in range(repeat):
        seconds, extra = measure()
        times.append(seconds)
    return statistics.median(times), extra


def timed(function) -> tuple[float, object]:
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def parse_in_process(source: Path) -> tuple[float, int]:
    """The plugin's own time: build the inventory inside this process (after ``init_ansible``),
    without ansible-inventory's interpreter start-up and CLI. Returns (seconds, host count)."""
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader

    started = time.perf_counter()
    inventory = InventoryManager(loader=DataLoader(), sources=[str(source)])
    elapsed = time.perf_counter() - started
    hosts = len(inventory.hosts)
    if not hosts:
        raise SystemExit(f"the in-process parse of {source} found no host; run ansible-inventory -i {source} --list to see why")
    return elapsed, hosts


def table(title: str, rows: list[tuple[str, float, object, str]]) -> None:
    """rows: (what, seconds, API calls, note). Ratios are against the first row."""
    base = rows[0][1]
    print(f"\n{title}")
    print(f"{'':2}{'measurement':58} {'seconds':>9} {'x first':>8} {'API calls':>10}  note")
    for what, seconds, calls, note in rows:
        print(f"{'':2}{what:58} {seconds:9.3f} {seconds / base:8.2f} {calls!s:>10}  {note}")


class ContainerCpu:
    """CPU seconds used so far by the running lab containers (``tsl-*``), per container, from their
    cgroups (v1 cpuacct or v2 cpu.stat). The cgroup paths are looked up once (podman inspect), so a
    reading is a file read per container and can sit right around a timed run."""

    def __init__(self):
        names = subprocess.run(["podman", "ps", "--filter", "name=^tsl-", "--format", "{{.Names}}"],
                               capture_output=True, text=True, check=True).stdout.split()
        if not names:
            raise SystemExit("no lab containers (tsl-*) are running: `scripts/lab up` first")
        self.files: dict[str, Path] = {}
        for name in names:
            path = subprocess.run(["podman", "inspect", name, "--format", "{{.State.CgroupPath}}"],
                                  capture_output=True, text=True, check=True).stdout.strip()
            v1 = Path("/sys/fs/cgroup/cpuacct") / path.lstrip("/") / "cpuacct.usage"
            v2 = Path("/sys/fs/cgroup") / path.lstrip("/") / "cpu.stat"
            if not (v1.exists() or v2.exists()):
                raise SystemExit(f"cannot read the CPU use of container {name} (looked at {v1} and {v2})")
            self.files[name] = v1 if v1.exists() else v2

    def read(self) -> dict[str, float]:
        out = {}
        for name, path in self.files.items():
            text = path.read_text()
            out[name] = int(text) / 1e9 if path.name == "cpuacct.usage" else int(re.search(r"usage_usec (\d+)", text).group(1)) / 1e6
        return out

    def total(self) -> float:
        return sum(self.read().values())
