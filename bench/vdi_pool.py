"""Benchmark twinsite.dc.vdi_pool against a serial loop of clone calls, on a simulator of its own per
vendor: provision N VDI desktops from a template (2 CPUs, 1 GiB, network servers, powered on), then
run again with nothing to change (issue #9).

    .venv/bin/python bench/vdi_pool.py [--desktops 200] [--quick] [--only vsphere|proxmox]
                                       [--task-seconds 1.0] [--slow-desktops N]
                                       [--vsphere-port 18991] [--proxmox-port 18008]

For each vendor, each contender starts from a fresh simulator holding only the template:
  1. twinsite.dc.vdi_pool, parallel 8 (the default): one module call for the whole pool;
  2. twinsite.dc.vdi_pool, parallel 1: the same module cloning one desktop at a time;
  3. an Ansible loop of twinsite.dc.vm over the desktops' names: one module run per desktop, as a
     sysadmin would write it without the pool module.
All three make full clones (Proxmox: vmids from 1000 on node pve1, as the pool's vmid_base does).

Each vendor runs twice. (a) With the simulators' instant tasks, as bench/vm_fleet.py does, each
playbook then runs a second time: the re-run with nothing to change. (b) With a clone task that
takes --task-seconds (0 skips this variant), on --slow-desktops desktops (default --desktops): a
real cluster copies disks for seconds, which instant tasks hide. vcsim: labkit's ``slow_tasks``
knob holds the CloneVm task "running" that long. fakepve: a QEMU clone takes 0 PVE seconds there
(only an RBD-backed one waits, on its Ceph scenario), so time_scale alone cannot slow it; fakepve
is started by labkit with ``time_scale`` = task-seconds / CLONE_PVE_SECONDS and a hook on its
PYTHONPATH (``sitecustomize``, as bench/callcount does for the measured processes) that makes
every qmclone task take CLONE_PVE_SECONDS PVE seconds first. Variant (b) has no re-run: a run with
nothing to clone is the same with slow clones.

The lab may stay up: the simulators use their own ports, state directory under /tmp and CA, and
are stopped by PID when done. Results: docs/benchmarks.md ("VDI pools").
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from _common import scratch
from vm_fleet import (
    CPUS,
    FIRST_VMID,
    MEMORY_MB,
    TEMPLATE,
    Run,
    measure,
    print_table,
    proxmox_check,
    proxmox_sim,
    vsphere_check,
    vsphere_sim,
    write_yaml,
)

from labkit import fakepve, vcsim

NAMING = "desk-{n:04d}"
NETWORKS_MODEL = [{"name": "servers", "vlan": 20}]  # the template's NIC is on VLAN 20 (vm_fleet's simulators)
# PVE seconds a QEMU clone takes in variant (b): a small full clone on local storage, order of magnitude.
CLONE_PVE_SECONDS = 10.0
PROXMOX_NODE = "pve1"

# Loaded by fakepve's server process only (PYTHONPATH given to labkit's fakepve.up): every qmclone
# task first waits CLONE_PVE_SECONDS PVE seconds, which time_scale turns into real ones.
CLONE_HOOK = '''"""Written by bench/vdi_pool.py: fakepve's QEMU clone tasks take {secs} PVE seconds."""
from fakepve.model import Model

_task = Model.task


async def _slow_clone_task(self, node, ttype, tid, user, body, vm=None, lock=True, log=()):
    if ttype == "qmclone":
        inner = body

        async def body():
            await self.pause({secs})
            return await inner()
    return await _task(self, node, ttype, tid, user, body, vm=vm, lock=lock, log=log)


Model.task = _slow_clone_task
'''


def desktop_names(count: int) -> list[str]:
    return [NAMING.format(n=n) for n in range(1, count + 1)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--desktops", type=int, default=200, help="desktops to provision per vendor (default 200)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 20 desktops")
    parser.add_argument("--only", choices=["vsphere", "proxmox"], help="one vendor only")
    parser.add_argument("--task-seconds", type=float, default=1.0,
                        help="how long a clone task takes in variant (b); 0 skips variant (b)")
    parser.add_argument("--slow-desktops", type=int, help="desktops in variant (b) (default: as --desktops)")
    parser.add_argument("--vsphere-port", type=int, default=18991)
    parser.add_argument("--proxmox-port", type=int, default=18008)
    args = parser.parse_args()
    count = 20 if args.quick else args.desktops
    slow_count = min(count, args.slow_desktops) if args.slow_desktops else count

    variants = [("instant tasks", count, 0.0)]
    if args.task_seconds > 0:
        variants.append((f"clone task {args.task_seconds:g} s", slow_count, args.task_seconds))
    tables = []
    for vendor, bench in (("vsphere", bench_vsphere), ("proxmox", bench_proxmox)):
        if args.only not in (None, vendor):
            continue
        port = args.vsphere_port if vendor == "vsphere" else args.proxmox_port
        for label, n, task_seconds in variants:
            work = scratch(f"vdi-{vendor}")
            try:
                rows = bench(work, n, port, task_seconds)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            rerun = ", then re-run with nothing to change" if not task_seconds else ""
            tables.append((f"{vendor}, {label}: provision {n} desktops from a template{rerun}", rows))
    for title, rows in tables:
        print_table(title, rows)
    return 0


# --- the contenders' playbooks ------------------------------------------------------------------


def pool_playbook(work: Path, cluster: dict, parallel: int, extra: dict) -> Path:
    pool = {"name": "bench", "template": TEMPLATE, "clone": "full", "naming": NAMING, "network": "servers",
            "cpus": CPUS, "memory_mb": MEMORY_MB, **extra}
    return write_yaml(work / f"pool-{parallel}.yml", [{
        "name": "Provision the bench desktops with twinsite.dc.vdi_pool", "hosts": "localhost", "gather_facts": False,
        "tasks": [{"name": "Converge the desktop pool", "twinsite.dc.vdi_pool": {
            "cluster": cluster, "networks_model": NETWORKS_MODEL, "pool": pool, "now": "10:00", "parallel": parallel}}]}])


def loop_playbook(work: Path, cluster: dict, items: list[dict], extra: dict) -> Path:
    return write_yaml(work / "loop.yml", [{
        "name": "Provision the same desktops with a loop of twinsite.dc.vm", "hosts": "localhost", "gather_facts": False,
        "tasks": [{"name": "Clone each desktop from the template and start it", "twinsite.dc.vm": {
            "cluster": cluster, "networks_model": NETWORKS_MODEL, "name": "{{ item.name }}", "template": TEMPLATE,
            "clone": "full", "cpus": CPUS, "memory_mb": MEMORY_MB, "networks": ["servers"], "state": "started", **extra},
            "loop": items}]}])


def contenders(work: Path, cluster: dict, count: int, pool_extra: dict, loop_items: list[dict], loop_extra: dict):
    # min = max = the bench's count, spare 0: 200 desktops in the pool, 20 with --quick.
    pool_extra = {**pool_extra, "size": {"min": count, "max": count, "spare": 0}}
    return [("twinsite.dc.vdi_pool, parallel 8", pool_playbook(work, cluster, 8, pool_extra), None),
            ("twinsite.dc.vdi_pool, parallel 1", pool_playbook(work, cluster, 1, pool_extra), None),
            ("loop of twinsite.dc.vm", loop_playbook(work, cluster, loop_items, loop_extra), None)]


# --- vSphere -----------------------------------------------------------------------------------


def bench_vsphere(work: Path, count: int, port: int, task_seconds: float) -> list[tuple[Run, Run | None, str]]:
    knobs = {"slow_tasks": {"CloneVm": round(task_seconds * 1000)}} if task_seconds else {}
    ctx, ca, cluster = vsphere_sim(work, port, **knobs)
    names = desktop_names(count)
    runs = contenders(work, cluster, count, {}, [{"name": n} for n in names], {})

    def restart():
        vcsim.down(ctx)
        vcsim.up(ctx)

    print(f"vSphere: vcsim on 127.0.0.1:{port}, {count} desktops, "
          f"{f'CloneVm task {task_seconds:g} s' if task_seconds else 'instant tasks'}", flush=True)
    try:
        return measure(work, restart, runs, lambda: vsphere_check(port, ca, names), rerun=not task_seconds)
    finally:
        vcsim.down(ctx)  # stops the simulator by its PID


# --- Proxmox VE --------------------------------------------------------------------------------


def bench_proxmox(work: Path, count: int, port: int, task_seconds: float) -> list[tuple[Run, Run | None, str]]:
    knobs = {"time_scale": task_seconds / CLONE_PVE_SECONDS} if task_seconds else {}
    ctx, ca, cluster = proxmox_sim(work, port, **knobs)
    names = desktop_names(count)
    items = [{"name": n, "vmid": FIRST_VMID + i} for i, n in enumerate(names)]
    runs = contenders(work, cluster, count, {"vmid_base": FIRST_VMID, "node": PROXMOX_NODE}, items,
                      {"vmid": "{{ item.vmid }}", "node": PROXMOX_NODE})
    hook = work / "fakepve-hook"
    if task_seconds:
        hook.mkdir()
        (hook / "sitecustomize.py").write_text(CLONE_HOOK.format(secs=CLONE_PVE_SECONDS))

    def restart():
        fakepve.down(ctx)
        if not task_seconds:
            fakepve.up(ctx)
            return
        # labkit puts the PYTHONPATH it finds after its own: the server process then loads the hook.
        saved = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = str(hook)
        try:
            fakepve.up(ctx)
        finally:
            if saved is None:
                del os.environ["PYTHONPATH"]
            else:
                os.environ["PYTHONPATH"] = saved

    tasks = f"qmclone {CLONE_PVE_SECONDS:g} PVE s at time_scale {task_seconds / CLONE_PVE_SECONDS:g}" if task_seconds else "instant tasks"
    print(f"Proxmox VE: fakepve on 127.0.0.1:{port}, {count} desktops, {tasks}", flush=True)
    try:
        return measure(work, restart, runs, lambda: proxmox_check(port, ca, names), rerun=not task_seconds)
    finally:
        fakepve.down(ctx)  # stops the simulator by its PID


if __name__ == "__main__":
    sys.exit(main())
