"""Benchmark twinsite.dc.proxmox against per-guest config calls in series and the
community.proxmox.proxmox inventory plugin, side by side on a fakepve of its own with 500 guests
that answers every request 20 ms late (--latency 0.02, --time-scale 1), as a LAN-distant cluster would.

    .venv/bin/python bench/inventory_proxmox.py [--guests 500] [--latency 0.02] [--repeat 5] [--port 18006]

The lab may stay up: this starts its own simulator (own port, own state directory under /tmp,
certificate from its own CA), and stops it, by PID, when done. Results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys

from _common import VENV_BIN, init_ansible, median_of, parse_in_process, run_counted, scratch, table, timed

from labkit import fakepve
from labkit.context import Context
from labkit.state import State

NODES = ["pve1", "pve2", "pve3"]


def guests(count: int) -> list[dict]:
    """A cluster's mix: mostly VMs, one in ten a container, a few templates; half of them running."""
    out = []
    for n in range(count):
        kind = "lxc" if n % 10 == 9 else "qemu"
        template = kind == "qemu" and n % 50 == 0
        out.append({"vmid": 1000 + n, "name": f"guest-{n:04d}", "node": NODES[n % len(NODES)], "type": kind,
                    "template": template, "status": "running" if n % 2 and not template else "stopped",
                    "cpus": 1 + n % 4, "memory_mb": 1024, "disk_gb": 16, "networks": [{"bridge": "vmbr0", "vlan": 20}]})
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--guests", type=int, default=500)
    parser.add_argument("--latency", type=float, default=0.02, help="seconds added to every answer")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each fast measurement; the median is shown")
    parser.add_argument("--port", type=int, default=18006)
    args = parser.parse_args()

    init_ansible()
    work = scratch("proxmox")
    spec = {"host": "127.0.0.1", "port": args.port, "username": "root@pam", "password": "bench-pve-pw",
            "cluster": "bench", "nodes": NODES, "guests": guests(args.guests), "latency": args.latency, "time_scale": 1}
    ctx = Context(state=State(work / "state"), model={"fakepve": spec})
    try:
        fakepve.up(ctx)
        measure(ctx, work, args.repeat)
    finally:
        fakepve.down(ctx)  # stops the simulator by its PID
        shutil.rmtree(work, ignore_errors=True)
    return 0


def measure(ctx: Context, work, repeat: int) -> None:
    spec, ca = ctx.model["fakepve"], ctx.state.ca / "ca.pem"
    login = f"username: {spec['username']}\npassword: {spec['password']}\n"
    ours = work / "bench.twinsite_proxmox.yml"
    ours.write_text(f"plugin: twinsite.dc.proxmox\nhostname: {spec['host']}\nport: {spec['port']}\n{login}ca_bundle: {ca}\n")
    ours_config = work / "config.twinsite_proxmox.yml"
    ours_config.write_text(ours.read_text() + "want_config: true\n")
    # community.proxmox takes verify=True from requests, which then reads REQUESTS_CA_BUNDLE.
    peer_env = {"REQUESTS_CA_BUNDLE": str(ca)}
    peer = work / "bench.proxmox.yml"
    peer.write_text(f"plugin: community.proxmox.proxmox\nurl: https://{spec['host']}:{spec['port']}\nuser: {spec['username']}\n"
                    f"password: {spec['password']}\nvalidate_certs: true\nexclude_nodes: true\nwant_facts: false\n")
    peer_facts = work / "facts.proxmox.yml"
    peer_facts.write_text(peer.read_text().replace("want_facts: false", "want_facts: true"))

    def cli(source, env=None):
        def run():
            seconds, calls, by_call, out = run_counted([str(VENV_BIN / "ansible-inventory"), "-i", str(source), "--list"], env=env)
            return seconds, (calls, by_call, len(json.loads(out)["_meta"]["hostvars"]))
        return run

    for warm in (cli(ours), cli(peer, peer_env), lambda: parse_in_process(ours)):
        warm()
    t_ours, (calls_ours, by_call_ours, hosts) = median_of(repeat, cli(ours))
    t_parse, _ = median_of(repeat, lambda: parse_in_process(ours))
    t_config, (calls_config, _, hosts_config) = median_of(repeat, cli(ours_config))
    t_startup, _ = median_of(repeat, lambda: run_counted([str(VENV_BIN / "ansible-inventory"), "-i", "localhost,", "--list"])[:2])
    t_peer, (calls_peer, _, hosts_peer) = median_of(repeat, cli(peer, peer_env))
    print(f"fakepve {spec['host']}:{spec['port']}: {len(spec['guests'])} guests, {spec['latency'] * 1000:.0f} ms per answer; "
          f"twinsite found {hosts}, community.proxmox {hosts_peer} (it leaves templates out)", flush=True)
    print("  per-guest configs in series, then community.proxmox with want_facts (slow) ...", flush=True)
    t_series, series_calls = timed(lambda: configs_in_series(spec, ca))
    t_facts, (calls_facts, _, hosts_facts) = cli(peer_facts, peer_env)()
    # community.proxmox leaves templates out of its inventory; twinsite lists them (group pve_templates).
    templates = sum(g["template"] for g in spec["guests"])
    if not (hosts == hosts_config == len(spec["guests"]) and hosts_peer == hosts_facts == len(spec["guests"]) - templates):
        raise SystemExit(f"host counts differ: twinsite {hosts}/{hosts_config}, community.proxmox {hosts_peer}/{hosts_facts}")

    table(f"Inventory of {len(spec['guests'])} guests, {spec['latency'] * 1000:.0f} ms per API answer (median of {repeat})", [
        ("twinsite.dc.proxmox via ansible-inventory --list", t_ours, calls_ours, "what a user waits for"),
        ("twinsite.dc.proxmox, parse in-process", t_parse, calls_ours, "plugin + Ansible inventory, no process start"),
        ("ansible-inventory -i localhost, --list (start-up alone)", t_startup, 0, "Python + Ansible import, no plugin"),
        ("twinsite.dc.proxmox want_config (4 at a time)", t_config, calls_config, "one config call per guest"),
        ("login + resources + one config per guest, in series", t_series, series_calls, "proxmoxer, the naive loop"),
        ("community.proxmox.proxmox, want_facts: false", t_peer, calls_peer, ""),
        ("community.proxmox.proxmox, want_facts: true", t_facts, calls_facts, "one run"),
    ])
    print(f"\n  twinsite's calls: {dict(sorted(by_call_ours.items()))} (target: at most 3 whatever the guest count)")
    print(f"  configs in series / twinsite want_config: {t_series / t_config:.1f}x")
    print(f"  community.proxmox want_facts: true / twinsite want_config: {t_facts / t_config:.1f}x")
    print(f"  community.proxmox want_facts: false / twinsite: {t_peer / t_ours:.1f}x")


def configs_in_series(spec: dict, ca) -> int:
    """The naive way to a full inventory: log in, list the guests, read each config one after another."""
    from proxmoxer import ProxmoxAPI

    api = ProxmoxAPI(spec["host"], port=spec["port"], user=spec["username"], password=spec["password"], verify_ssl=str(ca))
    resources = api.cluster.resources.get(type="vm")
    for guest in resources:
        api(f"nodes/{guest['node']}/{guest['type']}/{guest['vmid']}/config").get()
    return 2 + len(resources)


if __name__ == "__main__":
    sys.exit(main())
