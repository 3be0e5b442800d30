"""Where a DR drill's wall clock goes, on the running lab: recovery work against orchestration.

Runs playbooks/dr_drill.yml (reports in a scratch directory, the lab's own ledger untouched) and
splits its wall clock with the drill's own step times (report.json, whole seconds):

  restore    the tier's slowest `twinsite-backup restore`, summed over tiers (tiers run one after
             the other, the services of a tier in parallel)
  configure  the same for the service's role (install, configure, start)
  probe      the same for the wait until the probes are green
  the rest   orchestration: planning, ledger, preflight, production probes, isolated network,
             isolation checks, cleanup, report, and Ansible's own scheduling between steps

The issue's target is orchestration <= 10% of the wall clock.

    python bench/dr_drill.py [--rounds 2]      (the lab must be up and converged: make demo)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import time

from _common import REPO, VENV_BIN, scratch


def seconds(a: str, b: str) -> float:
    parse = lambda t: dt.datetime.fromisoformat(t.replace("Z", "+00:00"))  # noqa: E731
    return (parse(b) - parse(a)).total_seconds()


def split(report: dict) -> dict[str, float]:
    """Critical path of each kind of step, summed over tiers."""
    out = {"restore": 0.0, "configure": 0.0, "probe": 0.0}
    for tier in sorted({s["tier"] for s in report["services"]}):
        services = [s for s in report["services"] if s["tier"] == tier]
        for kind in out:
            out[kind] += max((seconds(st["started"], st["finished"]) for s in services for st in s["steps"]
                              if st["name"] == kind and st.get("started") and st.get("finished")), default=0.0)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    # A backup of each service now, so the rebuilt services equal production (the drill compares them).
    for host, service in (("dns1", "dns"), ("db1", "portal-db"), ("web1", "portal")):
        subprocess.run([str(VENV_BIN / "ansible"), "-i", "inventory/lab", host, "-m", "ansible.builtin.command",
                        "-a", f"/usr/local/sbin/twinsite-backup --quiet backup {service}"], cwd=REPO, check=True, capture_output=True)
    rows = []
    for round_no in range(1, args.rounds + 1):
        reports = scratch("dr-drill")
        started = time.perf_counter()
        run = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", "inventory/lab", "playbooks/dr_drill.yml",
                              "-e", f"dr_drill_reports_dir={reports}", "-e", f"dr_drill_ledger={reports}/ledger.json"],
                             cwd=REPO, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        if run.returncode != 0:
            print(run.stdout[-3000:], run.stderr[-2000:], file=sys.stderr)
            print(f"bench: the drill failed in round {round_no}; is the lab up, converged and backed up (make demo)?", file=sys.stderr)
            return 1
        report = json.loads(next(reports.glob("2*/report.json")).read_text())
        parts = split(report)
        parts["wall"] = wall
        parts["orchestration"] = wall - parts["restore"] - parts["configure"] - parts["probe"]
        rows.append(parts)
        print(f"round {round_no}: wall {wall:.1f} s, restore {parts['restore']:.0f} s, configure {parts['configure']:.0f} s, "
              f"probe {parts['probe']:.0f} s, orchestration {parts['orchestration']:.1f} s", flush=True)
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    print(f"\nDR drill on the lab, {len(report['services'])} services in {len(report['plan']['tiers'])} tiers, "
          f"median of {len(rows)} round(s):")
    print(f"{'part':<14}{'seconds':>9}{'share':>8}")
    for key in ("restore", "configure", "probe", "orchestration", "wall"):
        print(f"{key:<14}{med[key]:>9.1f}{med[key] / med['wall']:>8.0%}")
    print(f"\norchestration / wall = {med['orchestration'] / med['wall']:.0%} (target <= 10%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
