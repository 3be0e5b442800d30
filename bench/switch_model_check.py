"""What the core_switches role costs before it touches the first switch, as the site model grows:
50 Cisco IOS access switches with 3 ports each against the same 50 with 24 ports each (a full
access switch), and a site of 200 VMs (the hypervisor networks the core must carry come from them).

Every run is `ansible-playbook playbooks/switches.yml --tags always` on a scratch site (no switch is
contacted: connection local, and only the always-tagged tasks run): Ansible's check of the role's
arguments on every switch, and the role's own once-per-play check of the model's lists. The role
used to declare the model's lists among its per-switch arguments, so Ansible templated the whole
site's ports once per switch. With --against REV the same sites also run on that commit (a
temporary git worktree), side by side in one run.

    python bench/switch_model_check.py [--switches 50] [--ports 3 24] [--vms 200] [--rounds 3] [--against REV]
    (no lab needed; ~1 min. Results: docs/benchmarks.md)
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml
from _common import REPO, VENV_BIN, scratch

LAB_VARS = REPO / "inventory" / "lab" / "group_vars" / "all"


def write_site(where: Path, switches: int, ports: int, vms: int) -> Path:
    """A site of ``switches`` access switches, each ``ports`` access ports in users and a trunk."""
    networks = yaml.safe_load((LAB_VARS / "networks.yml").read_text())["dc_networks"]
    names = [f"sw{n:02d}" for n in range(1, switches + 1)]
    model = [{"switch": name, "port": f"FastEthernet0/{p}", "mode": "access", "network": "users", "description": f"desk {p}"}
             for name in names for p in range(1, ports + 1)]
    model += [{"switch": name, "port": "GigabitEthernet0/1", "mode": "trunk", "networks": ["mgmt", "users"],
               "description": "uplink"} for name in names]
    (where / "group_vars" / "all").mkdir(parents=True)
    hosts = dict.fromkeys(names, {"ansible_connection": "local", "switch_platform": "cisco_ios"})
    (where / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"core_switches": {"hosts": {}},
                                                                          "access_switches": {"hosts": hosts}}}}))
    (where / "group_vars" / "all" / "model.yml").write_text(yaml.safe_dump({
        "dc_networks": networks, "dc_switch_ports": model, "dc_lags": [],
        "dc_vms": [{"name": f"vm{n:03d}", "networks": ["servers"]} for n in range(vms)]}))
    return where


def run(checkout: Path, site: Path, forks: int) -> float:
    env = {**os.environ, "ANSIBLE_CONFIG": str(checkout / "ansible.cfg")}
    started = time.perf_counter()
    done = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", str(site / "hosts.yml"), "playbooks/switches.yml",
                           "--tags", "always", "-f", str(forks)], cwd=checkout, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"bench: the run on {checkout} with {site.name} failed:\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
    return wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--switches", type=int, default=50)
    parser.add_argument("--ports", type=int, nargs="+", default=[3, 24], help="access ports per switch, one site each")
    parser.add_argument("--vms", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--against", help="a commit to measure side by side (a temporary git worktree)")
    args = parser.parse_args()
    work = scratch("switch-model-check")
    sites = {ports: write_site(work / f"ports{ports}", args.switches, ports, args.vms) for ports in args.ports}
    checkouts = {"this checkout": REPO}
    try:
        if args.against:
            old = work / "against"
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(old), args.against],
                           check=True, capture_output=True)
            checkouts[args.against] = old
        times: dict[tuple[str, int], list[float]] = {}
        for round_no in range(args.rounds):  # alternate who goes first
            order = list(checkouts.items())[:: 1 if round_no % 2 == 0 else -1]
            for label, checkout in order:
                for ports, site in sites.items():
                    times.setdefault((label, ports), []).append(run(checkout, site, args.switches))
            print(f"round {round_no + 1} done", flush=True)
    finally:
        if args.against:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(work / "against")], check=False)
        shutil.rmtree(work, ignore_errors=True)
    med = {key: statistics.median(values) for key, values in times.items()}
    print(f"\nswitches.yml --tags always, {args.switches} switches, {args.vms} VMs, median of {args.rounds} rounds (seconds):")
    first, last = args.ports[0], args.ports[-1]
    print(f"{'checkout':<16}" + "".join(f"{f'{p} ports':>12}" for p in args.ports) + f"{f'{last}/{first}':>10}   rounds")
    for label in checkouts:
        rounds = "; ".join(" ".join(f"{t:.1f}" for t in times[(label, p)]) for p in args.ports)
        print(f"{label:<16}" + "".join(f"{med[(label, p)]:>12.2f}" for p in args.ports)
              + f"{med[(label, last)] / med[(label, first)]:>10.2f}   {rounds}")
    if args.against:
        for p in args.ports:
            print(f"{p} ports: {args.against} / this checkout = {med[(args.against, p)] / med[('this checkout', p)]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
