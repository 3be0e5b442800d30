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

The lab's services hold a few MB, so restores take seconds. With --data-mb N, the portal's
application directory on web1 (in its backup policy, portal-app) first gets N MB of incompressible
data in 64 MB files (like documents and media, which are compressed already; the same bytes on
every run, so the append-only repository stores them once), is backed up with it, and the data is
removed from web1 again; the drill then restores and checks N MB more, as a site with real data
would, and the rest of the drill does not change. At the end the portal is backed up again without
the data. The secondary's repository keeps the bigger snapshot (it is append-only), and replicating
it (backup.yml, the replication timer) fills the lab's small cloud bucket: restart the lab after
such a run (scripts/lab down; make lab-up site backup).

The lab's Proxmox simulator finishes every task at once, so a VM-level recovery (a vzdump backup
restored as a VM) takes no time in the drill. With --pve-time-scale S the bench restarts the lab's
fakepve with its tasks at S real seconds per PVE second (fakepve's model: a vzdump backup or restore
takes one PVE second per GiB of disk, 32 s for the lab's intranet1 at S=1), backs the Proxmox VMs
up again (a restart forgets them: the vzdump jobs of backup.yml, run now), and at the end restarts
it as the lab runs it and backs them up once more. A restart also forgets what playbooks made on
the cluster since `lab up`; the model's VMs and templates are there again.

Each round starts once the disk has written back what the backups wrote (a site's drill runs hours
after its backup), and keeps ansible-playbook's output in its scratch directory, printed with the
round, for a look at where the time went (ANSIBLE_CALLBACKS_ENABLED=...,ansible.posix.profile_tasks).

    python bench/dr_drill.py [--rounds 2] [--data-mb N] [--pve-time-scale S]     (the lab up and converged: make demo)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

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


DATA_HOST, DATA_DIR = "web1", "/usr/local/lib/twinsite-portal/bench-data"  # in portal-app's paths
# The portal's recovery host, and the policy path that holds the data: the restore renames the
# checked tree into place only when nothing is there (else it syncs, with room for a third copy).
RECOVERY_HOST, RECOVERY_PATH = "rec3", "/usr/local/lib/twinsite-portal"


def on_lab(host: str, module: str, arguments: str) -> str:
    """An ad hoc Ansible module run on a lab host; its output. Exits the bench when it fails."""
    done = subprocess.run([str(VENV_BIN / "ansible"), "-i", "inventory/lab", host, "-m", module, "-a", arguments],
                          cwd=REPO, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"bench: {module} {arguments!r} on {host} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done.stdout


def backup(host: str, service: str) -> float:
    started = time.perf_counter()
    on_lab(host, "ansible.builtin.command", f"/usr/local/sbin/twinsite-backup --quiet backup {service}")
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--data-mb", type=int, default=0, help="MB of incompressible data the portal's backup holds more (removed from web1 once backed up)")
    parser.add_argument("--pve-time-scale", type=float, default=0.0,
                        help="real seconds per PVE second for the lab's fakepve during the bench (1: a vzdump restore takes 1 s per GiB)")
    args = parser.parse_args()
    if args.data_mb:
        # A portal's data already on the recovery host (left by a failover before failbacks cleared
        # the recovery hosts) would make the restore sync the data over it instead of renaming it
        # into place: a third copy.
        held = on_lab(RECOVERY_HOST, "ansible.builtin.shell", f"test -e {RECOVERY_PATH} && echo HELD || echo FREE")
        if "HELD" in held:
            sys.exit(f"bench: {RECOVERY_HOST} already holds {RECOVERY_PATH} (a failover's?): the drill "
                     f"would sync {args.data_mb} MB over it, a third copy on this disk. Remove it first: "
                     f"ansible -i inventory/lab {RECOVERY_HOST} -m file -a 'path={RECOVERY_PATH} state=absent'")
        # The data lives twice on this machine's disk at once: on web1 and in the repository while it
        # is backed up; in the repository and on the recovery host while the drill restores it (the
        # restore renames its checked staging tree into place). Refuse up front rather than fill the disk.
        free_mb = int(on_lab(DATA_HOST, "ansible.builtin.command", "df --output=avail -BM /").split()[-1].rstrip("M"))
        if free_mb < 2 * args.data_mb + 5000:
            sys.exit(f"bench: --data-mb {args.data_mb} needs about {2 * args.data_mb + 5000} MB free on the lab's disk "
                     f"(2 copies and 5 GB to spare), {DATA_HOST} sees {free_mb} MB; a smaller size, or 'scripts/lab down' "
                     "and up again to empty the repositories")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a killed bench still removes its data (finally)
    ledgers: list[Path] = []  # each round's drill ledger, for the cleanup of a drill that did not finish
    try:
        if args.pve_time_scale:
            pve_speed(args.pve_time_scale)
        return measure(args, ledgers)
    finally:
        for ledger in ledgers:  # a drill stopped midway: undo what its ledger lists, as a site would
            if ledger.exists() and json.loads(ledger.read_text()).get("entries"):
                print(f"cleaning up after the drill of {ledger}", flush=True)
                subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", "inventory/lab", "playbooks/dr_cleanup.yml",
                                "-e", f"dr_drill_ledger={ledger}"], cwd=REPO, capture_output=True, check=False)
        if args.pve_time_scale:
            pve_speed(None)
        if args.data_mb:
            print(f"removing the bench's data from {DATA_HOST} and backing up the portal without it", flush=True)
            on_lab(DATA_HOST, "ansible.builtin.file", f"path={DATA_DIR} state=absent")
            backup(DATA_HOST, "portal")
            print(f"the secondary's repository keeps the snapshot with the {args.data_mb} MB (it is append-only), and "
                  "replicating it would fill the lab's cloud bucket (about 1.3 GB): before the tests or a demo, empty "
                  "the lab with 'scripts/lab down' and 'make lab-up site backup'", flush=True)


def pve_speed(scale: float | None) -> None:
    """Restart the lab's fakepve with its tasks at ``scale`` real seconds per PVE second (None: as the
    lab's model runs it), then back the Proxmox VMs up again: a restart forgets the backups."""
    from labkit import fakepve
    from labkit import model as lab_model
    from labkit.context import Context
    from labkit.state import State

    ctx = Context(state=State.default(), model=lab_model.load(REPO / "inventory" / "lab"), quiet=False)
    if scale is not None:
        ctx.model["fakepve"]["time_scale"] = scale
    print(f"restarting the lab's fakepve with time scale {ctx.model['fakepve']['time_scale']}", flush=True)
    fakepve.up(ctx)  # a changed spec restarts it
    started = time.perf_counter()
    run = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", "inventory/lab", "playbooks/backup.yml", "--limit", "automation"],
                         cwd=REPO, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        print(run.stdout[-3000:], run.stderr[-2000:], file=sys.stderr)
        sys.exit("bench: backing up the Proxmox VMs after the restart failed")
    print(f"the Proxmox VMs backed up again in {time.perf_counter() - started:.0f} s", flush=True)


def measure(args, ledgers: list[Path]) -> int:
    if args.data_mb:
        # Incompressible like /dev/urandom, but the same bytes on every run (AES-CTR of zeros): the
        # secondary's repository is append-only, and restic stores data it already holds only once,
        # so running the bench again does not fill the disk with another copy. Each file's counter
        # starts at its number times 2^64: with IVs 1, 2, 3... every file would be the one before
        # shifted by 16 bytes, and restic would store the 20 GB as one file's worth of chunks.
        files, last = divmod(args.data_mb, 64)
        blob = ("openssl enc -aes-128-ctr -nosalt -K 74776696e7369746562656e6368646174 -iv $(printf %016x%016x {n} 0) "
                "-in /dev/zero 2>/dev/null | head -c {mb}M > " + DATA_DIR + "/blob-{n}.bin; ")
        started = time.perf_counter()
        on_lab(DATA_HOST, "ansible.builtin.shell",
               f"set -e; rm -rf {DATA_DIR}; mkdir -p {DATA_DIR}; "
               f"for n in $(seq 1 {files}); do {blob.format(n='$n', mb=64)}done; "
               + (blob.format(n=files + 1, mb=last) if last else "") + "sync")
        print(f"{args.data_mb} MB of incompressible data in {DATA_HOST}:{DATA_DIR} ({time.perf_counter() - started:.0f} s)", flush=True)
    # A backup of each service now, so the rebuilt services equal production (the drill compares them).
    for host, service in (("dns1", "dns"), ("db1", "portal-db"), ("web1", "portal")):
        took = backup(host, service)
        if args.data_mb and service == "portal":
            print(f"the portal's backup with the data: {took:.0f} s", flush=True)
    if args.data_mb:
        # The snapshot holds the data now; the drill restores it from there. Removed from web1, it
        # is not a third copy on this disk while the drill restores (the repository's and the one
        # put in place on the recovery host).
        on_lab(DATA_HOST, "ansible.builtin.file", f"path={DATA_DIR} state=absent")
    rows = []
    for round_no in range(1, args.rounds + 1):
        # The backup just written (16 GB with --data-mb 16384) is still being written back to disk;
        # a site's drill runs hours after its backup, so each round starts with that done.
        os.sync()
        reports = scratch("dr-drill")
        ledgers.append(reports / "ledger.json")
        started = time.perf_counter()
        run = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", "inventory/lab", "playbooks/dr_drill.yml",
                              "-e", f"dr_drill_reports_dir={reports}", "-e", f"dr_drill_ledger={reports}/ledger.json"],
                             cwd=REPO, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        (reports / "ansible-playbook.log").write_text(run.stdout + run.stderr)  # for a look at where the time went
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
              f"probe {parts['probe']:.0f} s, orchestration {parts['orchestration']:.1f} s ({reports})", flush=True)
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    print(f"\nDR drill on the lab, {len(report['services'])} services in {len(report['plan']['tiers'])} tiers, "
          f"median of {len(rows)} round(s):")
    print(f"{'part':<14}{'seconds':>9}{'share':>8}")
    for key in ("restore", "configure", "probe", "orchestration", "wall"):
        print(f"{key:<14}{med[key]:>9.1f}{med[key] / med['wall']:>8.0%}")
    print(f"\norchestration / wall = {med['orchestration'] / med['wall']:.0%} (target <= 10%)")
    rto = {s["name"]: [] for s in report["services"]}
    for reports in (ledger.parent for ledger in ledgers):
        for svc in json.loads(next(reports.glob("2*/report.json")).read_text())["services"]:
            rto[svc["name"]].append(svc["rto_s"])
    print("RTO per service (s, by round): " + ", ".join(f"{name} {' / '.join(f'{x:.0f}' for x in xs)}" for name, xs in rto.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
