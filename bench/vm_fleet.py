"""Benchmark the vm_fleet role against a loop of the community modules doing the same, on a
simulator of its own per vendor: converge N VMs cloned from a template (2 CPUs, 1 GiB, powered on)
from nothing, then run again with nothing to change.

    .venv/bin/python bench/vm_fleet.py [--vms 200] [--quick] [--only vsphere|proxmox]
                                       [--vsphere-port 18990] [--proxmox-port 18007]

For each vendor, each contender starts from a fresh simulator holding only the template:
  - twinsite: a playbook applying twinsite.dc.vm_fleet to a model of N VMs;
  - vSphere peer: a loop of community.vmware.vmware_guest (template clone, hardware, poweredon);
  - Proxmox peer: loops of community.proxmox.proxmox_kvm: clone (newid), set cores/memory
    (update: true), start. proxmox_kvm cannot change the hardware in the clone call itself.
Each playbook then runs a second time: the idempotent re-run. API calls are counted in every
process by bench/callcount. A peer that fails is recorded with its message, not dropped.

The lab may stay up: the simulators here use their own ports, state directory under /tmp and CA,
and are stopped by PID when done. Results: docs/benchmarks.md ("VM fleet").
"""

from __future__ import annotations

import argparse
import shutil
import ssl
import sys
from pathlib import Path

import yaml
from _common import VENV_BIN, CountedRunError, run_counted, scratch

from labkit import fakepve, vcsim
from labkit.context import Context
from labkit.state import State

TEMPLATE = "tpl-bench"
TEMPLATE_VMID = 9000
FIRST_VMID = 1000
CPUS, MEMORY_MB = 2, 1024  # what each VM asks for; the template has 1 CPU and 512 MiB
VC = {"username": "administrator@vsphere.local", "password": "bench-vc-pw", "datacenter": "DC-Bench",
      "cluster": "Cluster-Bench", "hosts": ["esx01.bench.example", "esx02.bench.example"]}
PVE = {"username": "root@pam", "password": "bench-pve-pw", "cluster": "bench", "nodes": ["pve1", "pve2"]}


def vm_names(count: int) -> list[str]:
    return [f"fleet-{n:04d}" for n in range(1, count + 1)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=200, help="VMs to converge per vendor (default 200)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 20 VMs")
    parser.add_argument("--only", choices=["vsphere", "proxmox"], help="one vendor only")
    parser.add_argument("--vsphere-port", type=int, default=18990)
    parser.add_argument("--proxmox-port", type=int, default=18007)
    args = parser.parse_args()
    count = 20 if args.quick else args.vms

    results = {}
    for vendor, bench in (("vsphere", bench_vsphere), ("proxmox", bench_proxmox)):
        if args.only in (None, vendor):
            work = scratch(f"fleet-{vendor}")
            try:
                results[vendor] = bench(work, count, args.vsphere_port if vendor == "vsphere" else args.proxmox_port)
            finally:
                shutil.rmtree(work, ignore_errors=True)
    for vendor, rows in results.items():
        print_table(f"{vendor}: converge {count} VMs from a template, then re-run with nothing to change", rows)
    return 0


# --- running and counting ----------------------------------------------------------------------


class Run:
    """One playbook run: seconds, API calls (total and by call), and whether it failed and why."""

    def __init__(self, what: str, seconds: float, calls: int, by_call: dict, error: str = ""):
        self.what, self.seconds, self.calls, self.by_call, self.error = what, seconds, calls, by_call, error


def playbook(what: str, path: Path, work: Path, env: dict | None = None) -> Run:
    argv = [str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local",
            "-e", f"ansible_python_interpreter={sys.executable}", str(path)]
    # Both contenders pay the same callbacks (the project's audit log); it writes under /tmp here.
    env = {**(env or {}), "TWINSITE_AUDIT_LOG": str(work / "audit.jsonl")}
    print(f"  {what} ...", flush=True)
    try:
        seconds, calls, by_call, _ = run_counted(argv, env=env, keep_failure=True)
    except CountedRunError as exc:
        error = first_error(exc.stdout + "\n" + exc.stderr)
        print(f"    FAILED after {exc.seconds:.1f}s ({exc.calls} API calls): {error}", flush=True)
        return Run(what, exc.seconds, exc.calls, exc.by_call, error)
    print(f"    {seconds:.1f}s, {calls} API calls", flush=True)
    return Run(what, seconds, calls, by_call)


def first_error(output: str) -> str:
    """The first 'fatal'/'failed' message of a playbook's output, in one line."""
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(("fatal:", "failed:")) or "FAILED!" in line:
            block = " ".join(x.strip() for x in lines[i:i + 12])
            return block[:600]
    return " ".join(lines[-5:])[:600]


def write_yaml(path: Path, data) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False, width=200))
    return path


def twinsite_playbook(work: Path, model: dict) -> Path:
    write_yaml(work / "model.yml", model)
    return write_yaml(work / "fleet.yml", [{
        "name": "Converge the bench model's VMs", "hosts": "localhost", "gather_facts": False,
        "vars_files": [str(work / "model.yml")], "roles": ["twinsite.dc.vm_fleet"]}])


def measure(work: Path, restart, runs: list[tuple[str, Path, dict | None]], check,
            rerun: bool = True) -> list[tuple[Run, Run | None, str]]:
    """For each contender: a fresh simulator, the playbook, its re-run (None without ``rerun``), and
    a check of the result."""
    out = []
    for who, path, env in runs:
        restart()
        first = playbook(f"{who}: first converge", path, work, env)
        again = playbook(f"{who}: re-run", path, work, env) if rerun else None
        state = check()
        print(f"    after {who}: {state}", flush=True)
        out.append((first, again, state))
    return out


# --- vSphere -----------------------------------------------------------------------------------


def vsphere_sim(work: Path, port: int, **knobs) -> tuple[Context, Path, dict]:
    """vcsim's context (state under ``work``), its CA and the dc_clusters item naming it; ``knobs``
    are extra keys of labkit's vcsim spec (``slow_tasks``...)."""
    spec = {"host": "127.0.0.1", "port": port, "username": VC["username"], "password": VC["password"],
            "datacenter": VC["datacenter"], "clusters": [{"name": VC["cluster"], "hosts": VC["hosts"]}],
            "portgroups": [{"name": "servers", "vlan": 20}], "folders": [],
            "vms": [{"name": TEMPLATE, "cluster": VC["cluster"], "template": True, "power": "off", "cpus": 1,
                     "memory_mb": 512, "disk_gb": 1, "guest_id": "debian12_64Guest", "networks": ["servers"]}], **knobs}
    ctx = Context(state=State(work / "state"), model={"vcsim": spec}, quiet=True)
    ca = ctx.state.ca / "ca.pem"
    cluster = {"name": "cl-bench", "type": "vsphere", "site": "bench", "datacenter": VC["datacenter"], "cluster": VC["cluster"],
               "hosts": VC["hosts"], "api": {"host": "127.0.0.1", "port": port, "username": VC["username"],
                                             "password": VC["password"], "ca_bundle": str(ca)}}
    return ctx, ca, cluster


def vsphere_check(port: int, ca: Path, names: list[str]) -> str:
    """How many of ``names`` exist on vcsim, with CPUS and MEMORY_MB, powered on: read directly."""
    from pyVim.connect import Disconnect, SmartConnect
    from pyVmomi import vim

    si = SmartConnect(host="127.0.0.1", port=port, user=VC["username"], pwd=VC["password"],
                      sslContext=ssl.create_default_context(cafile=str(ca)))
    try:
        content = si.RetrieveContent()
        view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
        vms = [vm for vm in view.view if vm.name in set(names)]
        sized = sum(vm.config.hardware.numCPU == CPUS and vm.config.hardware.memoryMB == MEMORY_MB for vm in vms)
        running = sum(vm.runtime.powerState == "poweredOn" for vm in vms)
        view.Destroy()
    finally:
        Disconnect(si)
    return f"{len(vms)}/{len(names)} VMs exist, {sized} with {CPUS} CPUs and {MEMORY_MB} MiB, {running} powered on"


def bench_vsphere(work: Path, count: int, port: int):
    ctx, ca, cluster = vsphere_sim(work, port)
    names = vm_names(count)
    ours = twinsite_playbook(work, {
        "dc_clusters": [cluster],
        "dc_templates": [{"name": TEMPLATE, "cluster": "cl-bench", "cpus": 1, "memory_mb": 512, "disk_gb": 1}],
        "dc_vms": [{"name": n, "cluster": "cl-bench", "template": TEMPLATE, "cpus": CPUS, "memory_mb": MEMORY_MB,
                    "power": "on"} for n in names]})
    peer = write_yaml(work / "peer.yml", [{
        "name": "Converge the same VMs with community.vmware.vmware_guest", "hosts": "localhost", "gather_facts": False,
        "tasks": [{"name": "Clone each VM from the template and power it on", "community.vmware.vmware_guest": {
            "datacenter": VC["datacenter"], "cluster": VC["cluster"], "folder": f"/{VC['datacenter']}/vm",
            "name": "{{ item }}", "template": TEMPLATE, "state": "poweredon",
            "hardware": {"num_cpus": CPUS, "memory_mb": MEMORY_MB}}, "loop": names}]}])
    # community.vmware verifies TLS with Python's default CA store, which SSL_CERT_FILE names.
    peer_env = {"VMWARE_HOST": "127.0.0.1", "VMWARE_PORT": str(port), "VMWARE_USER": VC["username"],
                "VMWARE_PASSWORD": VC["password"], "VMWARE_VALIDATE_CERTS": "true", "SSL_CERT_FILE": str(ca)}

    def restart():
        vcsim.down(ctx)
        vcsim.up(ctx)

    def check() -> str:
        return vsphere_check(port, ca, names)

    print(f"vSphere: vcsim on 127.0.0.1:{port}, {count} VMs", flush=True)
    try:
        return measure(work, restart, [("twinsite.dc.vm_fleet", ours, None),
                                       ("community.vmware.vmware_guest loop", peer, peer_env)], check)
    finally:
        vcsim.down(ctx)  # stops the simulator by its PID


# --- Proxmox VE --------------------------------------------------------------------------------


def proxmox_sim(work: Path, port: int, **knobs) -> tuple[Context, Path, dict]:
    """fakepve's context (state under ``work``), its CA and the dc_clusters item naming it; ``knobs``
    are keys of labkit's fakepve spec to change (``time_scale``...)."""
    spec = {"host": "127.0.0.1", "port": port, "username": PVE["username"], "password": PVE["password"],
            "cluster": PVE["cluster"], "nodes": PVE["nodes"], "latency": 0, "time_scale": 0,
            "guests": [{"vmid": TEMPLATE_VMID, "name": TEMPLATE, "node": "pve1", "type": "qemu", "template": True,
                        "status": "stopped", "cpus": 1, "memory_mb": 512, "disk_gb": 1,
                        "networks": [{"bridge": "vmbr0", "vlan": 20}]}], **knobs}
    ctx = Context(state=State(work / "state"), model={"fakepve": spec}, quiet=True)
    ca = ctx.state.ca / "ca.pem"
    cluster = {"name": "cl-bench", "type": "proxmox", "site": "bench", "nodes": PVE["nodes"],
               "api": {"host": "127.0.0.1", "port": port, "username": PVE["username"], "password": PVE["password"],
                       "ca_bundle": str(ca)}}
    return ctx, ca, cluster


def proxmox_check(port: int, ca: Path, names: list[str]) -> str:
    """How many of ``names`` exist on fakepve, with CPUS and MEMORY_MB, running: read directly."""
    from proxmoxer import ProxmoxAPI

    api = ProxmoxAPI("127.0.0.1", port=port, user=PVE["username"], password=PVE["password"], verify_ssl=str(ca))
    found = [g for g in api.cluster.resources.get(type="vm") if g.get("name") in set(names)]
    sized = sum(g.get("maxcpu") == CPUS and g.get("maxmem") == MEMORY_MB * 1024 * 1024 for g in found)
    running = sum(g.get("status") == "running" for g in found)
    return f"{len(found)}/{len(names)} VMs exist, {sized} with {CPUS} CPUs and {MEMORY_MB} MiB, {running} running"


def bench_proxmox(work: Path, count: int, port: int):
    ctx, ca, cluster = proxmox_sim(work, port)
    names = vm_names(count)
    vms = [{"name": n, "cluster": "cl-bench", "template": TEMPLATE, "node": "pve1", "vmid": FIRST_VMID + i,
            "cpus": CPUS, "memory_mb": MEMORY_MB, "power": "on"} for i, n in enumerate(names)]
    ours = twinsite_playbook(work, {
        "dc_clusters": [cluster],
        "dc_templates": [{"name": TEMPLATE, "cluster": "cl-bench", "vmid": TEMPLATE_VMID, "cpus": 1, "memory_mb": 512}],
        "dc_vms": vms})
    login = {"api_host": "127.0.0.1", "api_port": port, "api_user": PVE["username"], "api_password": PVE["password"],
             "validate_certs": True, "node": "pve1"}
    loop = [{"name": vm["name"], "vmid": vm["vmid"]} for vm in vms]
    peer = write_yaml(work / "peer.yml", [{
        "name": "Converge the same VMs with community.proxmox.proxmox_kvm", "hosts": "localhost", "gather_facts": False,
        "module_defaults": {"community.proxmox.proxmox_kvm": login},
        "tasks": [
            {"name": "Clone each VM from the template", "community.proxmox.proxmox_kvm": {
                "clone": TEMPLATE, "vmid": TEMPLATE_VMID, "newid": "{{ item.vmid }}", "name": "{{ item.name }}",
                "full": True, "timeout": 600}, "loop": loop},
            {"name": "Set each VM's CPUs and memory", "community.proxmox.proxmox_kvm": {
                "vmid": "{{ item.vmid }}", "name": "{{ item.name }}", "update": True, "cores": CPUS,
                "memory": MEMORY_MB}, "loop": loop},
            {"name": "Start each VM", "community.proxmox.proxmox_kvm": {
                "vmid": "{{ item.vmid }}", "name": "{{ item.name }}", "state": "started"}, "loop": loop}]}])
    # community.proxmox hands requests verify=True, which then reads REQUESTS_CA_BUNDLE.
    peer_env = {"REQUESTS_CA_BUNDLE": str(ca)}

    def restart():
        fakepve.down(ctx)
        fakepve.up(ctx)

    def check() -> str:
        return proxmox_check(port, ca, names)

    print(f"Proxmox VE: fakepve on 127.0.0.1:{port}, {count} VMs", flush=True)
    try:
        return measure(work, restart, [("twinsite.dc.vm_fleet", ours, None),
                                       ("community.proxmox.proxmox_kvm loops", peer, peer_env)], check)
    finally:
        fakepve.down(ctx)  # stops the simulator by its PID


# --- the table ---------------------------------------------------------------------------------


def print_table(title: str, rows: list[tuple[Run, Run | None, str]]) -> None:
    """Wall time, API calls and the ratio to twinsite (the first row), for the converge and the re-run
    (dashes when there was none)."""
    base_first, base_again, _ = rows[0]
    print(f"\n{title}")
    print(f"  {'contender':40} {'converge s':>10} {'x':>6} {'calls':>7} {'x':>6} | {'re-run s':>8} {'x':>6} {'calls':>6} {'x':>6}")
    for first, again, state in rows:
        who = first.what.split(":")[0]
        if again is None or base_again is None:
            rerun = f"{'-':>8} {'-':>6} {'-':>6} {'-':>6}"
        else:
            rerun = (f"{again.seconds:8.1f} {ratio(again.seconds, base_again.seconds):>6} "
                     f"{again.calls:6d} {ratio(again.calls, base_again.calls):>6}")
        print(f"  {who:40} {first.seconds:10.1f} {ratio(first.seconds, base_first.seconds):>6} {first.calls:7d} "
              f"{ratio(first.calls, base_first.calls):>6} | {rerun}")
        print(f"  {'':40} result: {state}")
        for run in (first, again):
            if run and run.error:
                print(f"  {'':40} {run.what} FAILED: {run.error}")
        print(f"  {'':40} converge calls: {top(first.by_call)}")
        if again is not None:
            print(f"  {'':40} re-run calls: {top(again.by_call)}")


def ratio(value: float, base: float) -> str:
    return f"{value / base:.1f}" if base else "-"


def top(by_call: dict, n: int = 6) -> str:
    return ", ".join(f"{k} x{v}" for k, v in sorted(by_call.items(), key=lambda kv: -kv[1])[:n])


if __name__ == "__main__":
    sys.exit(main())
