"""A change pushed to 50 Cisco IOS access switches against the same change pushed to 1 (issue #8's
performance target: 50 switches in <= 1.5x the time of one, with a configurable cap on concurrent
sessions, because AAA servers refuse logins above ~10 at once).

The bench starts N fake-switches Cisco IOS switches of its own (scripts/labkit/fakeswitch_server.py,
cisco_2960_24TT_L, one process each, on free loopback ports from 2300 up; not the lab's accsw1) and
writes a scratch inventory (/tmp/twinsite-bench-switches-*): group access_switches holding
sw01..swNN (network_cli, cisco.ios.ios, switch_platform cisco_ios), an empty core_switches group,
the lab's dc_networks, and per switch the three ports of the lab's accsw1 (FastEthernet0/1 and 0/2
access in users, GigabitEthernet0/1 a trunk of mgmt and users), dc_lags: []. It runs
playbooks/switches.yml as a site would (the role's checks once for the play, then one switch_l2 call
on the controller for all the switches of the run, each switch read, its config committed to the
config store, the change sent, checked over a second SSH session and saved with `write memory`; the
strategy then gives each switch its own result), with forks >= N, the role's own config store in the
scratch directory and the audit log there too.

R rounds (order alternating), each with three runs side by side:

  1         --limit sw01
  N, cap    all N switches, core_switches_max_sessions=CAP (logins at once; default 10)
  N, no cap all N switches, core_switches_max_sessions=N

Every measured run pushes a real change: the switches it touches are restarted first (a restarted
fake switch is factory default: VLAN 1 only, every port unconfigured), outside the timed window.
A run counts only when ansible-playbook exits 0 and the audit log holds a changed apply task
("Apply the change ...") for every switch of the run. Reported per run: the wall clock of
ansible-playbook, the CPU seconds of ansible-playbook and its workers, of the fake switches, how busy
the machine's cores were, and the most established SSH sessions at once on the switches' side
(`ss -Htn state established`, sampled every 0.1 s: over all switches, and on any one switch; one
switch_l2 call holds 1 session, 2 while its rollback check reads the switch back over a new one), and
how many sessions the samples saw in all (a session shorter than 0.1 s may be missed).
With profiling on (default; off with --no-profile), the first round's runs carry
ansible.posix.profile_tasks and the bench prints where each run's time went, task by task.

With --module-only, Ansible is left out: the same change goes to 1 and to N switches through
switch_l2's fleet function (run_fleet) called in this process, the config store in the scratch
directory, to tell the module's own scaling from Ansible's per-host work.

    python bench/switch_push.py [--switches 50] [--rounds 2] [--cap 10] [--no-profile] [--module-only]
    (no lab needed; ~6 min for 50 switches and 2 rounds on 2 cores. Results: docs/benchmarks.md)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import yaml
from _common import REPO, VENV_BIN, init_ansible, scratch

from labkit.errors import LabError
from labkit.fakeswitch import answers_ssh, free_ports

LAB_VARS = REPO / "inventory" / "lab" / "group_vars" / "all"
LAUNCHER = REPO / "scripts" / "labkit" / "fakeswitch_server.py"
MODEL = "cisco_2960_24TT_L"
USER, PASSWORD = "admin", "pw"
FIRST_PORT = 2300
TEMPLATE_SWITCH = "accsw1"  # its ports in the lab's dc_switch_ports are each bench switch's ports
APPLY_TASK = "Apply the change"


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def name_of(n: int) -> str:
    return f"sw{n:02d}"


# --- the fake switches ------------------------------------------------------------------------------


class Switches:
    """N fake switches, one process each; restarted to give factory-default switches."""

    def __init__(self, root: Path, ports: list[int]):
        self.root, self.ports = root, ports
        self.names = [name_of(n + 1) for n in range(len(ports))]
        self.procs: dict[str, subprocess.Popen] = {}
        (root / "logs").mkdir(exist_ok=True)

    def port(self, name: str) -> int:
        return self.ports[self.names.index(name)]

    def start(self, names: list[str]) -> None:
        env = {**os.environ, "TWINSITE_SWITCH_PASSWORD": PASSWORD}
        for name in names:
            log = (self.root / "logs" / f"{name}.log").open("a")
            self.procs[name] = subprocess.Popen(  # noqa: S603 - our own launcher
                [sys.executable, str(LAUNCHER), "--model", MODEL, "--hostname", name, "--username", USER,
                 "--listen-port", str(self.port(name))],
                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            log.close()
        deadline = time.monotonic() + 60 + 2 * len(names)
        waiting = list(names)
        while waiting:
            for name in list(waiting):
                if self.procs[name].poll() is not None:
                    raise SystemExit(f"bench: fake switch {name} exited ({self.procs[name].returncode}); "
                                     f"see {self.root / 'logs' / (name + '.log')}")
                if answers_ssh("127.0.0.1", self.port(name)):
                    waiting.remove(name)
            if waiting and time.monotonic() > deadline:
                raise SystemExit(f"bench: fake switches {', '.join(waiting)} do not answer SSH")
            if waiting:
                time.sleep(0.2)

    def stop(self, names: list[str] | None = None) -> None:
        names = [n for n in (names or list(self.procs)) if n in self.procs]
        for name in names:
            if self.procs[name].poll() is None:
                self.procs[name].terminate()
        for name in names:
            try:
                self.procs[name].wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.procs[name].kill()
                self.procs[name].wait()
            del self.procs[name]

    def restart(self, names: list[str]) -> None:
        self.stop(names)
        self.start(names)

    def cpu_seconds(self) -> float:
        tick = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for proc in self.procs.values():
            try:
                fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        return total


class SessionSampler(threading.Thread):
    """The most established TCP connections at once whose local port is a switch's (the server side)."""

    def __init__(self, ports: list[int], interval: float = 0.1):
        super().__init__(daemon=True)
        self.ports, self.interval = set(ports), interval
        self.stopping = threading.Event()
        self.most = 0
        self.most_one = 0
        self.samples = 0
        self.seen: set[tuple[str, str]] = set()  # (switch side, client side): sessions seen, short ones may be missed

    def run(self) -> None:
        while not self.stopping.is_set():
            out = subprocess.run(["ss", "-Htn", "state", "established"], capture_output=True, text=True, check=False).stdout
            per: dict[int, int] = {}
            for line in out.splitlines():
                fields = line.split()
                if len(fields) < 4:
                    continue
                port = int(fields[2].rsplit(":", 1)[1])  # Recv-Q Send-Q Local Peer (the state column is left out)
                if port in self.ports:
                    per[port] = per.get(port, 0) + 1
                    self.seen.add((fields[2], fields[3]))
            self.most = max(self.most, sum(per.values()))
            self.most_one = max(self.most_one, max(per.values(), default=0))
            self.samples += 1
            self.stopping.wait(self.interval)

    def finish(self) -> None:
        self.stopping.set()
        self.join()


# --- the inventory ------------------------------------------------------------------------------------


def bench_model(names: list[str]) -> tuple[list[dict], list[dict]]:
    """The lab's dc_networks, and accsw1's ports of the lab's dc_switch_ports copied to each of ``names``."""
    networks = yaml.safe_load((LAB_VARS / "networks.yml").read_text())["dc_networks"]
    lab_ports = yaml.safe_load((LAB_VARS / "switching.yml").read_text())["dc_switch_ports"]
    template = [p for p in lab_ports if p["switch"] == TEMPLATE_SWITCH]
    if not template:
        raise SystemExit(f"bench: the lab's dc_switch_ports has no port of {TEMPLATE_SWITCH} to copy")
    return networks, [{**p, "switch": name} for name in names for p in template]


def write_inventory(root: Path, switches: Switches) -> Path:
    inv = root / "inventory"
    (inv / "group_vars" / "all").mkdir(parents=True)
    hosts = {name: {"ansible_host": "127.0.0.1", "ansible_port": switches.port(name), "ansible_user": USER,
                    "ansible_password": PASSWORD, "ansible_connection": "ansible.netcommon.network_cli",
                    "ansible_network_os": "cisco.ios.ios", "ansible_host_key_checking": False,
                    "switch_platform": "cisco_ios", "switch_model": MODEL, "host_interfaces": [], "host_site": "primary"}
             for name in switches.names}
    (inv / "hosts.yml").write_text(yaml.safe_dump(
        {"all": {"children": {"core_switches": {"hosts": {}}, "access_switches": {"hosts": hosts}}}}, sort_keys=False))
    networks, ports = bench_model(switches.names)
    (inv / "group_vars" / "all" / "model.yml").write_text(yaml.safe_dump(
        {"dc_networks": networks, "dc_switch_ports": ports, "dc_lags": []}, sort_keys=False))
    return inv


# --- one measured run ----------------------------------------------------------------------------------


def cpu_now() -> tuple[float, int, int]:
    """CPU seconds of this process's reaped children (ansible-playbook and its workers), and the
    machine's idle and total jiffies (every process on the machine: the fake switches, anyone else's)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    jiffies = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return usage.ru_utime + usage.ru_stime, jiffies[3] + jiffies[4], sum(jiffies)


def push(root: Path, inv: Path, switches: Switches, variant: str, names: list[str], cap: int, forks: int,
         tag: str, profile: bool) -> dict:
    """Reset the switches of the run, run the playbook, check every switch was changed."""
    switches.restart(names)  # factory default; not timed
    time.sleep(1)
    run_dir = root / "runs" / tag
    run_dir.mkdir(parents=True)
    audit = run_dir / "audit.jsonl"
    env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}", "ANSIBLE_NOCOLOR": "1",
           "TWINSITE_AUDIT_LOG": str(audit), "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(root / "facts"),
           "ANSIBLE_PERSISTENT_CONTROL_PATH_DIR": str(root / "pc")}
    if profile:
        env["ANSIBLE_CALLBACKS_ENABLED"] = "twinsite.dc.audit_log,twinsite.dc.plan_exit,ansible.posix.profile_tasks"
        env["PROFILE_TASKS_TASK_OUTPUT_LIMIT"] = "10"
    argv = [str(VENV_BIN / "ansible-playbook"), "-i", str(inv), "playbooks/switches.yml", "-f", str(forks),
            "-e", json.dumps({"core_switches_store": str(root / "store"), "core_switches_max_sessions": cap})]
    if variant == "1":
        argv += ["--limit", names[0]]
    sampler = SessionSampler(switches.ports)
    switch_cpu0 = switches.cpu_seconds()
    cpu0, idle0, total0 = cpu_now()
    sampler.start()
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    wall = time.perf_counter() - started
    sampler.finish()
    cpu1, idle1, total1 = cpu_now()
    switch_cpu = switches.cpu_seconds() - switch_cpu0
    (run_dir / "ansible.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        print(done.stdout[-5000:], done.stderr[-2000:], file=sys.stderr)
        raise SystemExit(f"bench: run {tag} failed (exit {done.returncode}); see {run_dir / 'ansible.log'}")
    recap = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)", done.stdout, re.M)}
    applied = set()
    if audit.exists():
        for line in audit.read_text().splitlines():
            entry = json.loads(line)
            if APPLY_TASK in str(entry.get("task", "")):
                applied.add(entry.get("host"))
    missing = [n for n in names if recap.get(n, 0) < 1 or n not in applied]
    if missing:
        raise SystemExit(f"bench: run {tag}: {len(missing)} switch(es) not changed by the apply task ({', '.join(missing[:5])}); "
                         f"see {run_dir / 'ansible.log'} and {audit}")
    tasks = [(m.group(1).strip(), float(m.group(2))) for m in re.finditer(r"^(.+?) -{2,} (\d+\.\d+)s$", done.stdout, re.M)]
    return {"wall": wall, "ansible_cpu": cpu1 - cpu0, "switch_cpu": switch_cpu,
            "busy": 1 - (idle1 - idle0) / max(1, total1 - total0), "sessions": sampler.most,
            "sessions_one": sampler.most_one, "seen": len(sampler.seen), "samples": sampler.samples, "tasks": tasks, "log": str(run_dir / "ansible.log")}


def push_module(root: Path, switches: Switches, names: list[str], cap: int, tag: str) -> dict:
    """The change to ``names`` through switch_l2's run_fleet in this process (no Ansible)."""
    from ansible_collections.twinsite.dc.plugins.modules import switch_l2

    switches.restart(names)  # factory default; not timed
    time.sleep(1)
    networks, ports = bench_model(names)
    params = {"switch": None, "platform": "cisco_ios", "state": "merged", "networks": networks,
              "ports": ports, "lags": [], "svis": [], "pairs": [],
              "bridge": "br0", "running_config": None, "confirm": False, "rollback_seconds": 60,
              "store": str(root / "runs" / tag / "store"), "leave_armed": False, "save": True, "max_logins": cap,
              "host": None, "port": 22, "username": None, "password": None, "secret": None, "timeout": 30, "state_dir": "/nonexistent",
              "fleet": [{"switch": n, "platform": None, "host": "127.0.0.1", "port": switches.port(n), "username": USER,
                         "password": PASSWORD, "secret": None} for n in names]}
    module = SimpleNamespace(params=params, check_mode=False, _diff=False)
    sampler = SessionSampler(switches.ports)
    switch_cpu0 = switches.cpu_seconds()
    own0, idle0, total0 = _own_cpu(), *cpu_now()[1:]
    sampler.start()
    started = time.perf_counter()
    out = switch_l2.run_fleet(module)
    wall = time.perf_counter() - started
    sampler.finish()
    own1, idle1, total1 = _own_cpu(), *cpu_now()[1:]
    bad = [n for n in names if out["switches"][n].get("failed") or not out["switches"][n].get("changed")]
    if bad:
        raise SystemExit(f"bench: run {tag}: {len(bad)} switch(es) failed or unchanged: "
                         + "; ".join(f"{n}: {out['switches'][n].get('msg', 'unchanged')}" for n in bad[:3]))
    return {"wall": wall, "ansible_cpu": own1 - own0, "switch_cpu": switches.cpu_seconds() - switch_cpu0,
            "busy": 1 - (idle1 - idle0) / max(1, total1 - total0), "sessions": sampler.most, "sessions_one": sampler.most_one,
            "seen": len(sampler.seen), "samples": sampler.samples, "tasks": []}


def _own_cpu() -> float:
    """CPU seconds of this process and of its reaped children: the fleet's forked processes (the
    switches are not reaped during a run)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


# --- main ----------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--switches", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--cap", type=int, default=10, help="core_switches_max_sessions of the capped run")
    parser.add_argument("--first-port", type=int, default=FIRST_PORT)
    parser.add_argument("--no-profile", action="store_true", help="without ansible.posix.profile_tasks in the first round")
    parser.add_argument("--module-only", action="store_true", help="switch_l2's run_fleet in this process, without Ansible")
    args = parser.parse_args()
    if args.module_only:
        args.no_profile = True
        init_ansible()
        from ansible_collections.twinsite.dc.plugins.modules.switch_l2 import fleet_processes
    if args.switches < 2 or args.rounds < 1 or args.cap < 1:
        parser.error("--switches >= 2, --rounds >= 1, --cap >= 1")
    count = args.switches
    forks = max(count, 10)
    variants = [("1", "1 switch"), ("cap", f"{count} switches, cap {args.cap}"), ("nocap", f"{count} switches, cap {count} (none)")]

    # Ctrl-C raises KeyboardInterrupt; SIGTERM the same, so the switches are stopped either way.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    root = scratch("switches")
    try:
        ports = free_ports(count, args.first_port)
    except LabError as exc:
        raise SystemExit(f"bench: {exc}") from None
    switches = Switches(root, ports)
    results: dict[str, list[dict]] = {key: [] for key, _ in variants}
    what = "module" if args.module_only else "Ansible"
    try:
        say(f"scratch directory {root}; {count} fake switches on 127.0.0.1:{switches.ports[0]}-{switches.ports[-1]}; "
            f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
        started = time.perf_counter()
        switches.start(switches.names)
        say(f"{count} switches answer SSH after {time.perf_counter() - started:.1f} s")
        inv = write_inventory(root, switches)
        for rnd in range(args.rounds):
            order = variants if rnd % 2 == 0 else list(reversed(variants))
            for key, label in order:
                names = switches.names[:1] if key == "1" else switches.names
                cap = args.cap if key == "cap" else count
                if args.module_only:
                    result = push_module(root, switches, names, cap, f"r{rnd + 1}-{key}")
                else:
                    result = push(root, inv, switches, key, names, cap, forks, f"r{rnd + 1}-{key}",
                                  profile=rnd == 0 and not args.no_profile)
                results[key].append(result)
                say(f"round {rnd + 1}: {label}: {result['wall']:.1f} s, {what} CPU {result['ansible_cpu']:.1f} s, "
                    f"switches' CPU {result['switch_cpu']:.1f} s, cores busy {result['busy']:.0%}, "
                    f"sessions at once {result['sessions']} (one switch: {result['sessions_one']}), sessions seen {result['seen']}, "
                    f"load {os.getloadavg()[0]:.2f}")
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    finally:
        switches.stop()
        shutil.rmtree(root / "pc", ignore_errors=True)

    one = statistics.median(r["wall"] for r in results["1"])
    how = "switch_l2's run_fleet in this process" if args.module_only else "playbooks/switches.yml"
    print(f"\nA change pushed to {count} switches against 1 ({how}, median of {args.rounds} round(s), "
          f"{os.cpu_count()} cores; scratch {root})")
    print(f"  {'run':28} {'wall s':>8} {'x 1':>6} {'rounds':>16} {what + ' CPU s':>14} {'switch CPU s':>13} {'busy':>5} "
          f"{'sessions':>9} {'per switch':>11} {'seen':>5}")
    for key, label in variants:
        rows = results[key]
        wall = statistics.median(r["wall"] for r in rows)
        each = " / ".join(f"{r['wall']:.1f}" for r in rows)
        print(f"  {label:28} {wall:8.1f} {wall / one:6.2f} {each:>16} "
              f"{statistics.median(r['ansible_cpu'] for r in rows):14.1f} {statistics.median(r['switch_cpu'] for r in rows):13.1f} "
              f"{statistics.median(r['busy'] for r in rows):5.0%} {max(r['sessions'] for r in rows):9d} "
              f"{max(r['sessions_one'] for r in rows):11d} {max(r['seen'] for r in rows):5d}")
    capped = statistics.median(r["wall"] for r in results["cap"])
    if args.module_only:
        print(f"\n  the module alone: {count} switches = {capped / one:.2f} x 1 switch, with the cap of {args.cap} "
              f"({fleet_processes(count)} process(es) for {count} switches on this machine)")
        return 0
    print(f"\n  target: {count} switches <= 1.5 x 1 switch, with the cap: {capped / one:.2f} x "
          f"({'met' if capped / one <= 1.5 else 'NOT met'}); sessions at once with cap {args.cap}: "
          f"{max(r['sessions'] for r in results['cap'])} (sampled every 0.1 s)")
    if not args.no_profile:
        for key, label in variants:
            tasks = results[key][0]["tasks"]
            print(f"\n  {label}, round 1 (ansible.posix.profile_tasks, the 10 slowest tasks):")
            for name, secs in tasks:
                print(f"    {secs:7.2f} s  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
