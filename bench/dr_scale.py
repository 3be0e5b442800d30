"""DR drill scaling on the running lab: a plan of 20 services against a plan of 1 (issue #6's second
performance target: 20 services finish in <= 2x the time of 1, tiers recovering in parallel).

A drill is meant to recover the services of one tier in parallel across recovery hosts (Ansible
forks over hosts; services sharing a host recover one after another), so the measurement needs 20
recovery hosts with one service each. The bench adds, next to the running lab and without touching
its hosts:

  benchrec01..20   20 recovery hosts (containers tsl-benchrecNN, like rec1: mgmt 172.31.10.1NN,
                   backup 172.31.50.1NN, drill 172.31.70.1NN; a servers leg 172.31.20.1NN is
                   declared for the model, which wants every recovery host able to fail over, but
                   not attached)
  benchprod01..20  the bench services' production hosts: inventory hosts of group bench_production
                   (not a lab container group), all reached at one container, tsl-benchprod
                   (mgmt 172.31.10.121), which holds their 20 production addresses
                   172.31.20.121..140, each serving its service's page on port 8080. A drill probes
                   production before, during and after, and proves from each production host that
                   the rebuilt services cannot be reached: production must exist and answer SSH.
  bench-01..20     tier-1 services (no dependencies), policy bench-data (/srv/bench, secondary copy
                   only); recovery: restore_data on benchrecNN, no role, a post-restore step that
                   starts bench-http (python3 -m http.server on the drill address, serving the
                   restored /srv/bench) and waits until it listens; an http probe of the page, which
                   the drill compares byte for byte with production's.

Steps: an overlay inventory (a copy of inventory/lab plus the above) in a scratch directory,
checked by playbooks/validate.yml; the 21 containers (not by `scripts/lab up -i OVERLAY`: its hosts
step removes and recreates every lab container when one is missing); a prepare playbook (backup1's
secondary job list with the bench services, without timers; the bench recovery hosts staged as
backup.yml stages them; each bench service's data on its recovery host and one backup of it; the
production pages); then, R rounds, a drill of [bench-01] and one of all 20 side by side (order
alternating), both from the secondary copy, with forks >= hosts, own ledger and report directories,
and --limit localhost:bench_recovery:bench_production (the lab's own rec1..3 are not touched). Each drill must be
green (exit 0, report.json green), or the bench stops with the drill's reason. Reported per plan:
the wall clock, the drill's phases from report.json (before the first restore, the tier, after the
last probe turned green), each service's restore/configure/probe step times, the CPU seconds of
ansible-playbook and its workers, of the recovery hosts' containers and of the other lab containers
(their cgroups: at a site each recovery host spends its share on its own CPU, here all of it runs
on the controller's cores), how busy the machine's cores were, and (ansible.posix.profile_tasks)
where the time went task by task; then the ratio 20/1.

At the end, whatever happened: the 21 containers are removed, backup1's job list is converged back
from inventory/lab, and fs.inotify.max_user_instances (raised when 21 more systemd containers would
not fit under it) is put back. The bench services' repositories (/srv/restic/bench-NN on backup1)
stay; their passwords are fixed, so the next run reuses them. The overlay, the drills' reports and
their Ansible output stay in the scratch directory (/tmp/twinsite-bench-dr-scale-*).

    python bench/dr_scale.py [--rounds 2] [--services 20] [--data-kb 1024] [--no-profile]
    (the lab up and converged: make demo; ~8 min. Results: docs/benchmarks.md)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import resource
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml
from _common import REPO, VENV_BIN, ContainerCpu, scratch

from labkit import image  # _common puts scripts/ on the path

LAB_INVENTORY = REPO / "inventory" / "lab"
LAB_STATE = Path(os.environ.get("TWINSITE_LAB_STATE", REPO / ".lab"))
PREFIX = "tsl"                              # the lab's container prefix (lab.yml lab_prefix)
LABEL = "twinsite.lab"                      # labkit's label: `scripts/lab down` removes these too
BENCH_LABEL = "twinsite.bench=dr-scale"     # ours: a crashed run's leftovers are found by it
PROD_CONTAINER = f"{PREFIX}-benchprod"
PROD_MGMT = "172.31.10.121"
PORT = 8080
MAX_SERVICES = 20                           # the address plan below holds 20 (.101-.140)
# Every container's systemd, journald, logind... holds inotify instances (6 in the lab's image), all
# of them root's: the kernel's default of 128 per user stops the 14th or so container short of
# starting sshd ("Failed to create inotify object: Too many open files"). See inotify_room().
INOTIFY_LIMIT = Path("/proc/sys/fs/inotify/max_user_instances")
INOTIFY_PER_CONTAINER = 8


def rec_name(n: int) -> str:
    return f"benchrec{n:02d}"


def prod_name(n: int) -> str:
    return f"benchprod{n:02d}"


def service(n: int) -> str:
    return f"bench-{n:02d}"


def rec_addresses(n: int) -> dict[str, str]:
    return {"mgmt": f"172.31.10.{100 + n}", "backup": f"172.31.50.{100 + n}", "drill": f"172.31.70.{100 + n}",
            "servers": f"172.31.20.{100 + n}"}


def prod_address(n: int) -> str:
    return f"172.31.20.{120 + n}"


def drill_address(n: int) -> str:
    """Where the drill puts bench-NN (network_map servers -> drill keeps the host part)."""
    return f"172.31.70.{120 + n}"


def say(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["podman", *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise SystemExit(f"bench: podman {' '.join(args[:3])} ... failed: {done.stderr.strip()}")
    return done


def ansible_env(scratch_dir: Path, profile: bool = False) -> dict:
    env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}",
           # inventory/lab finds the lab's state relative to itself; the overlay lives elsewhere.
           "TWINSITE_LAB_STATE": str(LAB_STATE),
           # Facts of the bench hosts stay out of the project's cache.
           "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(scratch_dir / "facts")}
    if profile:
        env["ANSIBLE_CALLBACKS_ENABLED"] = "twinsite.dc.audit_log,twinsite.dc.plan_exit,ansible.posix.profile_tasks"
        env["PROFILE_TASKS_TASK_OUTPUT_LIMIT"] = "all"
    return env


def run(argv: list[str], env: dict, what: str) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(done.stdout[-4000:], done.stderr[-2000:], file=sys.stderr)
        raise SystemExit(f"bench: {what} failed (exit {done.returncode})")
    return done


# --- preflight -------------------------------------------------------------------------------


def check_lab() -> None:
    status = subprocess.run([str(REPO / "scripts" / "lab"), "status"], cwd=REPO, capture_output=True, text=True, check=False)
    if status.returncode != 0:
        print(status.stdout, status.stderr, file=sys.stderr)
        raise SystemExit("bench: the lab is not fully up (scripts/lab status); run make demo first")


def used_addresses() -> set[str]:
    """Every IPv4 address the lab model declares, and every one a container holds now."""
    used = set(re.findall(r"\b172\.31\.\d+\.\d+\b", "\n".join(p.read_text() for p in LAB_INVENTORY.rglob("*.yml"))))
    lab = set(podman("ps", "--filter", f"label={LABEL}={PREFIX}", "--format", "{{.Names}}").stdout.split())
    for name in podman("ps", "-a", "--format", "{{.Names}}").stdout.split():
        if name in lab:  # addresses a drill or failover added are not in podman's record
            done = podman("exec", name, "ip", "-o", "-4", "addr", "show", check=False)
            used |= set(re.findall(r"inet (\d+\.\d+\.\d+\.\d+)", done.stdout))
        inspected = podman("inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", name, check=False)
        used |= set(inspected.stdout.split())
    return used


def inotify_room(containers: int) -> int | None:
    """Raise fs.inotify.max_user_instances when the bench's containers would not fit under it;
    return the old value to put back at the end (None: unchanged)."""
    in_use = sum(1 for fd in Path("/proc").glob("[0-9]*/fd/*") if _is_inotify(fd))
    need = in_use + containers * INOTIFY_PER_CONTAINER + 32
    limit = int(INOTIFY_LIMIT.read_text())
    if limit >= need:
        return None
    try:
        INOTIFY_LIMIT.write_text(f"{need}\n")
    except OSError as exc:
        raise SystemExit(f"bench: {containers} more containers need fs.inotify.max_user_instances >= {need} ({in_use} in use, "
                         f"limit {limit}) and it cannot be raised here ({exc.strerror}); run `sysctl -w fs.inotify.max_user_instances={need}`") from exc
    say(f"fs.inotify.max_user_instances raised from {limit} to {need} for the bench ({in_use} in use); put back at the end")
    return limit


def _is_inotify(fd: Path) -> bool:
    try:
        return os.readlink(fd) == "anon_inode:inotify"
    except OSError:
        return False


def remove_ours() -> list[str]:
    names = podman("ps", "-a", "--filter", f"label={BENCH_LABEL}", "--format", "{{.Names}}").stdout.split()
    if names:
        podman("rm", "-f", "-t", "0", *names)
    return names


# --- the overlay inventory -------------------------------------------------------------------


def build_overlay(root: Path, count: int, known_hosts: Path, run_id: str) -> Path:
    inv = root / "inventory"
    shutil.copytree(LAB_INVENTORY, inv, symlinks=True)
    ssh_args = f"-o UserKnownHostsFile={known_hosts} -o StrictHostKeyChecking=yes"

    hosts = yaml.safe_load((inv / "hosts.yml").read_text())
    children = hosts["all"]["children"]
    recs = {rec_name(n): None for n in range(1, count + 1)}
    prods = {prod_name(n): None for n in range(1, count + 1)}
    children["recovery_hosts"]["hosts"].update(recs)
    children["site_secondary"]["hosts"].update(recs)
    children["site_primary"]["hosts"].update(prods)
    # Groups of our own; neither is in lab_container_groups.
    children["bench_recovery"] = {"hosts": dict(recs)}
    children["bench_production"] = {"hosts": dict(prods)}
    (inv / "hosts.yml").write_text("# bench/dr_scale.py overlay of inventory/lab\n" + yaml.safe_dump(hosts, sort_keys=False))

    for n in range(1, count + 1):
        a = rec_addresses(n)
        (inv / "host_vars" / f"{rec_name(n)}.yml").write_text(yaml.safe_dump({
            "host_site": "secondary",
            "ansible_host": a["mgmt"],
            "ansible_ssh_common_args": ssh_args,
            "host_interfaces": [{"network": "mgmt", "address": a["mgmt"]}, {"network": "backup", "address": a["backup"]},
                                {"network": "drill", "address": a["drill"]},
                                # declared (a recovery host must be able to fail over), not attached
                                {"network": "servers", "address": a["servers"]}],
            "bench_service": service(n),
            "bench_drill_address": drill_address(n),
        }, sort_keys=False))
        (inv / "host_vars" / f"{prod_name(n)}.yml").write_text(yaml.safe_dump({
            "host_site": "primary",
            "ansible_host": PROD_MGMT,
            "ansible_ssh_common_args": ssh_args,
            "host_interfaces": [{"network": "servers", "address": prod_address(n)}],
            "bench_service": service(n),
            "bench_address": prod_address(n),
        }, sort_keys=False))

    services_file = inv / "group_vars" / "all" / "services.yml"
    model = yaml.safe_load(services_file.read_text())
    for n in range(1, count + 1):
        model["dc_services"].append({
            "name": service(n),
            "tier": 1,
            "owner": "Benchmark (bench/dr_scale.py)",
            "hosts": [prod_name(n)],
            "depends_on": [],
            "probes": [{"type": "http", "url": f"http://{prod_address(n)}:{PORT}/", "expect_status": 200, "expect_text": service(n)}],
            "backup_policy": "bench-data",
            "rpo_minutes": 1440,
            "rto_minutes": 60,
            "recovery": {
                "method": "restore_data",
                "host": rec_name(n),
                "units": ["bench-http"],
                "post_restore": {"command": "/usr/local/sbin/bench-http-start"},
            },
        })
    services_file.write_text(yaml.safe_dump(model, sort_keys=False, width=200))

    backup_file = inv / "group_vars" / "all" / "backup.yml"
    model = yaml.safe_load(backup_file.read_text())
    model["dc_backup_policies"].append({"name": "bench-data", "interval_minutes": 60, "paths": ["/srv/bench"],
                                        "retention": {"keep_last": 3}, "copies": ["secondary"]})
    model["dc_backup_encryption_passwords"] = "{{ vault_backup_encryption_passwords | combine(bench_backup_passwords) }}"
    backup_file.write_text(yaml.safe_dump(model, sort_keys=False, width=200))

    # Fixed passwords: the repositories stay on backup1, and the next run opens them again.
    (inv / "group_vars" / "all" / "bench.yml").write_text(yaml.safe_dump({
        "bench_backup_passwords": {service(n): f"twinsite-bench-dr-scale-{service(n)}" for n in range(1, count + 1)},
        "bench_run": run_id,
    }, sort_keys=False))
    return inv


BACKUP1_PLAY = """\
# bench/dr_scale.py: what the bench services need before a drill. Run with -i OVERLAY.
- name: Bench - the secondary site's job list with the bench services (no timers, nothing run now)
  hosts: backup_repositories
  gather_facts: false
  tasks:
    - name: Converge the secondary site's jobs
      ansible.builtin.import_role:
        name: twinsite.dc.restic_jobs
        tasks_from: secondary
      vars:
        restic_jobs_run_now: false
        restic_jobs_timers: false
"""

PREPARE = BACKUP1_PLAY + """
- name: Bench - stage the recovery hosts, give each its service's data and service, back it up once
  hosts: bench_recovery
  gather_facts: false
  tasks:
    - name: Install what restores need (as backup.yml's play "Stage the recovery hosts" does)
      ansible.builtin.include_role:
        name: twinsite.dc.restic_jobs
        tasks_from: recovery
      vars:
        restic_jobs_recover: >-
          {{ dc_services | selectattr('recovery', 'defined') | selectattr('recovery.host', 'defined')
             | selectattr('recovery.host', 'eq', inventory_hostname) | map(attribute='name') | list }}

    - name: The service's data
      ansible.builtin.file:
        path: /srv/bench
        state: directory
        mode: '0755'

    - name: Its page (production serves the same bytes)
      ansible.builtin.copy:
        dest: /srv/bench/index.html
        content: "{{ bench_service }}: twinsite DR scale bench, run {{ bench_run }}\\n"
        mode: '0644'

    - name: Some data to restore with it
      ansible.builtin.shell: head -c {{ bench_data_kb }}K /dev/urandom > /srv/bench/data.bin
      changed_when: true

    - name: The service's unit (installed, not enabled; a drill's post-restore step starts it, its cleanup stops it)
      ansible.builtin.copy:
        dest: /etc/systemd/system/bench-http.service
        content: |
          [Unit]
          Description=bench/dr_scale.py service: the restored /srv/bench over HTTP on the drill address
          [Service]
          ExecStart=/usr/bin/python3 -m http.server {{ bench_port }} --bind {{ bench_drill_address }} --directory /srv/bench
        mode: '0644'

    - name: The post-restore step - start the service and wait until it listens
      ansible.builtin.copy:
        dest: /usr/local/sbin/bench-http-start
        content: |
          #!/usr/bin/python3
          import socket, subprocess, sys, time
          subprocess.run(["systemctl", "start", "bench-http"], check=True)
          deadline = time.monotonic() + 30
          while True:
              try:
                  socket.create_connection(("{{ bench_drill_address }}", {{ bench_port }}), timeout=1).close()
                  break
              except OSError:
                  if time.monotonic() > deadline:
                      sys.exit("bench-http does not listen on {{ bench_drill_address }}:{{ bench_port }} after 30 s")
                  time.sleep(0.05)
        mode: '0755'

    - name: Load the unit
      ansible.builtin.systemd_service:
        daemon_reload: true

    - name: Back the service up now (secondary copy)
      ansible.builtin.command: /usr/local/sbin/twinsite-backup --quiet backup {{ bench_service }}
      changed_when: true

- name: Bench - production, one container holding every bench service's production address
  hosts: benchprod01
  gather_facts: false
  vars:
    bench_prod: "{{ groups['bench_production'] | map('extract', hostvars) | list }}"
  tasks:
    - name: The production addresses
      ansible.builtin.shell:
        executable: /bin/bash
        cmd: |
          set -euo pipefail
          dev=$(ip -o -4 addr show to 172.31.20.0/24 | awk '{print $2; exit}')
          for a in {{ bench_prod | map(attribute='bench_address') | join(' ') }}; do ip addr replace "$a/24" dev "$dev"; done
      changed_when: true

    - name: Announce them (the machine may still hold the last run's container's MAC for them)
      twinsite.dc.gratuitous_arp:
        address: "{{ item }}"
      loop: "{{ bench_prod | map(attribute='bench_address') | list }}"

    - name: The pages' directories
      ansible.builtin.file:
        path: "/srv/{{ item.bench_service }}"
        state: directory
        mode: '0755'
      loop: "{{ bench_prod }}"
      loop_control:
        label: "{{ item.bench_service }}"

    - name: The pages
      ansible.builtin.copy:
        dest: "/srv/{{ item.bench_service }}/index.html"
        content: "{{ item.bench_service }}: twinsite DR scale bench, run {{ bench_run }}\\n"
        mode: '0644'
      loop: "{{ bench_prod }}"
      loop_control:
        label: "{{ item.bench_service }}"

    - name: One server for every address
      ansible.builtin.copy:
        dest: /usr/local/sbin/bench-prod-http
        content: |
          #!/usr/bin/python3
          import functools, http.server, sys, threading
          for spec in sys.argv[1:]:
              address, directory = spec.split("=", 1)
              handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=directory)
              server = http.server.ThreadingHTTPServer((address, {{ bench_port }}), handler)
              threading.Thread(target=server.serve_forever, daemon=True).start()
          threading.Event().wait()
        mode: '0755'

    - name: Its unit
      ansible.builtin.copy:
        dest: /etc/systemd/system/bench-prod-http.service
        content: |
          [Service]
          ExecStart=/usr/local/sbin/bench-prod-http {% for h in bench_prod %}{{ h.bench_address }}=/srv/{{ h.bench_service }} {% endfor %}
        mode: '0644'

    - name: Serve
      ansible.builtin.systemd_service:
        name: bench-prod-http
        state: restarted
        daemon_reload: true
"""


# --- containers ------------------------------------------------------------------------------


def make_hostkey(keydir: Path, host: str) -> str:
    keydir.mkdir(parents=True, exist_ok=True)
    key = keydir / "ssh_host_ed25519_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{host}", "-f", str(key)], check=True, capture_output=True)
    return " ".join(key.with_suffix(".pub").read_text().split()[:2])


def create_containers(root: Path, count: int, image: str, names: list[str]) -> None:
    """The bench's containers, made as labkit makes the lab's (scripts/labkit/hosts.py), with host
    keys and a known_hosts of their own in the scratch directory (the lab's are not written).
    ``names`` gets each container as soon as it exists, so the caller removes it whatever happens."""
    authorized = LAB_STATE / "ssh" / "id_ed25519.pub"
    specs = []
    for n in range(1, count + 1):
        a = rec_addresses(n)
        specs.append({"host": rec_name(n), "name": f"{PREFIX}-{rec_name(n)}", "ssh": a["mgmt"],
                      "networks": [("mgmt", a["mgmt"]), ("backup", a["backup"]), ("drill", a["drill"])], "extra": []})
    specs.append({"host": "benchprod", "name": PROD_CONTAINER, "ssh": PROD_MGMT,
                  "networks": [("mgmt", PROD_MGMT), ("servers", prod_address(1))],
                  "extra": [prod_address(n) for n in range(2, count + 1)]})
    lines = []
    for spec in specs:
        pub = make_hostkey(root / "hostkeys" / spec["host"], spec["host"])
        lines.append(f"{','.join([spec['ssh'], *(ip for _, ip in spec['networks']), *spec['extra']])} {pub}")
        args = ["create", "--name", spec["name"], "--hostname", spec["host"], "--label", f"{LABEL}={PREFIX}", "--label", BENCH_LABEL,
                "--systemd=always", "--stop-timeout", "2", "--cap-add", "NET_ADMIN"]
        for net, ip in spec["networks"]:
            args += ["--network", f"{PREFIX}-{net}:ip={ip}"]
        names.append(spec["name"])
        podman(*args, image, "/sbin/init")
        keydir = root / "hostkeys" / spec["host"]
        for src, dst in ((authorized, "/root/.ssh/authorized_keys"), (keydir / "ssh_host_ed25519_key", "/etc/ssh/ssh_host_ed25519_key"),
                         (keydir / "ssh_host_ed25519_key.pub", "/etc/ssh/ssh_host_ed25519_key.pub")):
            podman("cp", str(src), f"{spec['name']}:{dst}")
        podman("start", spec["name"])
    (root / "known_hosts").write_text("\n".join(lines) + "\n")
    for spec in specs:
        wait_ssh(spec["ssh"], spec["name"])


def wait_ssh(address: str, name: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, 22), timeout=1) as sock:
                if sock.recv(4).startswith(b"SSH"):
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"bench: sshd of {name} did not answer on {address}:22 within {timeout:.0f} s")


# --- backup1 ---------------------------------------------------------------------------------


def backup1_jobs() -> str:
    return podman("exec", f"{PREFIX}-backup1", "cat", "/etc/twinsite/backup/jobs.json").stdout


def restore_backup1(root: Path, original: str | None) -> None:
    """backup1's job list converged back from inventory/lab; the bench's secrets removed."""
    play = root / "backup1-lab.yml"
    play.write_text(BACKUP1_PLAY)
    done = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", str(LAB_INVENTORY), str(play)], cwd=REPO,
                          env=ansible_env(root), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(done.stdout[-3000:], file=sys.stderr)
        say("WARNING: converging backup1's job list back from inventory/lab failed; run playbooks/backup.yml to put it right")
        return
    podman("exec", f"{PREFIX}-backup1", "sh", "-c", "rm -f /etc/twinsite/backup/secrets/bench-[0-9][0-9]-*.env", check=False)
    if original is not None and backup1_jobs() != original:
        say("WARNING: backup1's jobs.json differs from before the bench (someone converged it meanwhile?)")


# --- the drills ------------------------------------------------------------------------------


def seconds(a: str | None, b: str | None) -> float | None:
    if not a or not b:
        return None
    parse = lambda t: dt.datetime.fromisoformat(t.replace("Z", "+00:00"))  # noqa: E731
    return (parse(b) - parse(a)).total_seconds()


def step(svc: dict, name: str) -> float | None:
    for st in svc["steps"]:
        if st["name"] == name:
            return seconds(st.get("started"), st.get("finished"))
    return None


def summarise(report: dict, wall: float) -> dict:
    services = report["services"]
    starts = [st["started"] for s in services for st in s["steps"] if st["name"] == "restore"]
    greens = [st["finished"] for s in services for st in s["steps"] if st["name"] == "probe"]
    out = {"wall": wall, "duration": report["duration_s"], "services": len(services),
           "before": seconds(report["started"], min(starts)), "tier": seconds(min(starts), max(greens)),
           "after": seconds(max(greens), report["finished"]), "rto_max": max(s["rto_s"] for s in services)}
    for kind in ("restore", "configure", "probe"):
        values = [step(s, kind) for s in services]
        out[f"{kind}_med"] = statistics.median(values)
        out[f"{kind}_max"] = max(values)
    return out


def cpu_now() -> tuple[float, int, int]:
    """CPU seconds of this process's finished children (ansible-playbook and its workers; not the SSH
    control masters, which outlive it), and the machine's idle and total jiffies (every process on
    the 2 cores: the lab's containers, the bench's, and anyone else's)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    jiffies = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return usage.ru_utime + usage.ru_stime, jiffies[3] + jiffies[4], sum(jiffies)


def drill(overlay: Path, root: Path, names: list[str], forks: int, tag: str, profile: bool) -> tuple[dict, list[tuple[str, float]]]:
    reports = root / "drills" / tag
    reports.mkdir(parents=True)
    extra = {"dr_drill_only": names, "dr_drill_copies": ["secondary"], "dr_drill_reports_dir": str(reports),
             "dr_drill_ledger": str(reports / "ledger.json")}
    argv = [str(VENV_BIN / "ansible-playbook"), "-i", str(overlay), "playbooks/dr_drill.yml", "-f", str(forks),
            "--limit", "localhost:bench_recovery:bench_production", "-e", json.dumps(extra)]
    lab = ContainerCpu()
    hosts0 = lab.read()
    cpu0, idle0, total0 = cpu_now()
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=REPO, env=ansible_env(root, profile), capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    cpu1, idle1, total1 = cpu_now()
    hosts = {name: used - hosts0.get(name, 0.0) for name, used in lab.read().items()}
    (reports / "ansible.log").write_text(done.stdout + done.stderr)
    found = sorted(reports.glob("2*/report.json"))
    report = json.loads(found[-1].read_text()) if found else None
    if done.returncode != 0 or report is None or report["status"] != "green":
        print(done.stdout[-5000:], done.stderr[-2000:], file=sys.stderr)
        why = re.findall(r"The drill is red: (.*?)\. Report:", done.stdout)
        raise SystemExit(f"bench: the drill of {len(names)} service(s) is not green (exit {done.returncode}): "
                         f"{why[-1] if why else 'no report; see ' + str(reports / 'ansible.log')}")
    tasks = [(m.group(1).strip(), float(m.group(2))) for m in re.finditer(r"^(.+?) -{3,} (\d+\.\d+)s$", done.stdout, re.M)]
    # The containers' CPU, by role: at a site each recovery host spends its share on its own CPU.
    recovery = sum(v for n, v in hosts.items() if n.startswith("tsl-benchrec"))
    return summarise(report, wall) | {"reports": str(reports), "load": os.getloadavg()[0], "ansible_cpu": cpu1 - cpu0,
                                      "busy": 1 - (idle1 - idle0) / max(1, total1 - total0), "recovery_cpu": recovery,
                                      "lab_cpu": sum(hosts.values()) - recovery}, tasks


def check_page(url: str, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=5) as answer:  # noqa: S310 - our own address
                if text.encode() in answer.read():
                    return
                raise SystemExit(f"bench: production page {url} does not name {text}")
        except OSError as exc:
            if time.monotonic() > deadline:
                raise SystemExit(f"bench: production page {url} does not answer: {exc}") from exc
            time.sleep(1)


# --- main ------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--services", type=int, default=20, help=f"services in the large plan (1-{MAX_SERVICES})")
    parser.add_argument("--data-kb", type=int, default=1024, help="random data per service, besides its page")
    parser.add_argument("--no-profile", action="store_true", help="without ansible.posix.profile_tasks (per-task times)")
    parser.add_argument("--keep-containers", action="store_true", help="leave the bench's containers up (to look at; rerun removes them)")
    args = parser.parse_args()
    count = args.services
    if not 1 <= count <= MAX_SERVICES:
        parser.error(f"--services takes 1-{MAX_SERVICES}")
    forks = count + 1  # every bench recovery host and the controller in one batch
    os.environ.setdefault("CONTAINERS_CONF", str(REPO / "scripts" / "labkit" / "containers.conf"))

    check_lab()
    others = subprocess.run(["pgrep", "-fc", "ansible-playbook|pytest|molecule"], capture_output=True, text=True, check=False).stdout.strip()
    if others not in ("", "0"):
        say(f"WARNING: {others} other Ansible/pytest/molecule process(es) run on this machine: the times below share its 2 cores with them")
    leftovers = remove_ours()
    if leftovers:
        say(f"removed the leftovers of an earlier run: {' '.join(leftovers)}")
    taken = used_addresses()
    mine = {PROD_MGMT} | {a for n in range(1, count + 1) for a in (*rec_addresses(n).values(), prod_address(n), drill_address(n))}
    if taken & mine:
        raise SystemExit(f"bench: addresses the bench needs are in use: {', '.join(sorted(taken & mine))}")
    ref = image.image_ref()
    if podman("image", "exists", ref, check=False).returncode != 0:
        raise SystemExit(f"bench: the lab's image {ref} is not built; run scripts/lab up (make demo) first")

    root = scratch("dr-scale")
    run_id = secrets.token_hex(4)
    say(f"scratch directory {root}")
    names: list[str] = []
    original_jobs = None
    backup1_touched = False
    inotify_before = None
    try:
        known_hosts = root / "known_hosts"
        overlay = build_overlay(root, count, known_hosts, run_id)
        env = ansible_env(root)
        run([str(VENV_BIN / "ansible-playbook"), "-i", str(overlay), "playbooks/validate.yml"], env, "validate.yml on the overlay")
        say(f"overlay {overlay} is valid; creating {count + 1} containers")
        inotify_before = inotify_room(count + 1)
        t0 = time.monotonic()
        create_containers(root, count, ref, names)
        say(f"containers up in {time.monotonic() - t0:.0f} s: {' '.join(names)}")

        original_jobs = backup1_jobs()
        backup1_touched = True
        (root / "prepare.yml").write_text(PREPARE)
        t0 = time.monotonic()
        run([str(VENV_BIN / "ansible-playbook"), "-i", str(overlay), str(root / "prepare.yml"), "-f", str(forks),
             "-e", json.dumps({"bench_data_kb": args.data_kb, "bench_port": PORT})], env, "the prepare playbook")
        say(f"prepared (backup1's job list, staging, data, one backup each, production) in {time.monotonic() - t0:.0f} s")
        for n in range(1, count + 1):
            check_page(f"http://{prod_address(n)}:{PORT}/", service(n))

        small, large = [service(1)], [service(n) for n in range(1, count + 1)]
        rows: dict[int, list[dict]] = {1: [], count: []}
        profiles: dict[int, list] = {}
        for round_no in range(1, args.rounds + 1):
            order = (small, large) if round_no % 2 else (large, small)
            for plan in order:
                say(f"round {round_no}: drill of {len(plan)} service(s)")
                row, tasks = drill(overlay, root, plan, forks, f"{len(plan)}-r{round_no}", not args.no_profile)
                rows[len(plan)].append(row)
                profiles[len(plan)] = tasks
                print(f"round {round_no}, {len(plan):>2} service(s): wall {row['wall']:.1f} s, drill {row['duration']:.0f} s "
                      f"(before recovery {row['before']:.0f}, tier {row['tier']:.0f}, after {row['after']:.0f}), "
                      f"restore {row['restore_med']:.0f}/{row['restore_max']:.0f} s, configure {row['configure_med']:.0f}/{row['configure_max']:.0f} s, "
                      f"probe {row['probe_med']:.0f}/{row['probe_max']:.0f} s (median/max), RTO max {row['rto_max']:.0f} s; "
                      f"Ansible's CPU {row['ansible_cpu']:.0f} s, the recovery hosts' {row['recovery_cpu']:.1f} s, the other lab hosts' "
                      f"{row['lab_cpu']:.1f} s, machine {row['busy']:.0%} busy, load average {row['load']:.1f}", flush=True)
        report_tables(rows, profiles, count, forks, args.rounds)
        return 0
    finally:
        if names and not args.keep_containers:
            say(f"removing {' '.join(names)}")
            podman("rm", "-f", "-t", "0", *names, check=False)
        if backup1_touched:
            restore_backup1(root, original_jobs)
        if inotify_before is not None and not args.keep_containers:
            INOTIFY_LIMIT.write_text(f"{inotify_before}\n")
            say(f"fs.inotify.max_user_instances put back to {inotify_before}")
        say(f"the overlay, the drills' reports and their Ansible logs stay in {root}")


def report_tables(rows: dict[int, list[dict]], profiles: dict[int, list], count: int, forks: int, rounds: int) -> None:
    med = {k: {key: statistics.median(r[key] for r in v) for key in v[0] if key != "reports"} for k, v in rows.items()}
    print(f"\nDR drill, 1 service against {count} (one tier, one recovery host each), -f {forks}, median of {rounds} round(s); "
          "step times are whole seconds from report.json (median/max over the plan's services)")
    print(f"{'plan':<12}{'wall s':>8}{'drill s':>9}{'before':>8}{'tier':>6}{'after':>7}{'restore':>10}{'configure':>11}{'probe':>8}{'RTO max':>9}"
          f"{'CPU s':>7}{'rec s':>7}{'lab s':>7}{'busy':>6}")
    for k in sorted(med):
        m = med[k]
        print(f"{f'{k} service(s)':<12}{m['wall']:>8.1f}{m['duration']:>9.0f}{m['before']:>8.0f}{m['tier']:>6.0f}{m['after']:>7.0f}"
              f"{m['restore_med']:>5.0f}/{m['restore_max']:<4.0f}{m['configure_med']:>6.0f}/{m['configure_max']:<4.0f}"
              f"{m['probe_med']:>4.0f}/{m['probe_max']:<3.0f}{m['rto_max']:>9.0f}{m['ansible_cpu']:>7.0f}{m['recovery_cpu']:>7.1f}"
              f"{m['lab_cpu']:>7.1f}{m['busy']:>6.0%}")
    print("(CPU s: ansible-playbook and its workers on the controller; rec s: the bench's recovery hosts' containers (cgroups), "
          "lab s: the other lab containers (backup1, production...); busy: the machine's 2 cores, every process on them)")
    ratios = [b["wall"] / a["wall"] for a, b in zip(rows[1], rows[count], strict=True)]
    ratio = med[count]["wall"] / med[1]["wall"]
    print(f"\n{count} / 1 (wall clock) = {ratio:.2f} (rounds: {', '.join(f'{r:.2f}' for r in ratios)}; target <= 2.00): "
          f"{'met' if ratio <= 2 else 'NOT met'}")
    for k in sorted(profiles):
        if not profiles[k]:
            continue
        # A task of the per-service recovery (recover_service.yml) names its service: "... for bench-07".
        per_service = [(n, t) for n, t in profiles[k] if re.search(r" for bench-\d+$", n)]
        print(f"\ndrill of {k} service(s), last round (ansible.posix.profile_tasks): {sum(t for _, t in profiles[k]):.1f} s in "
              f"{len(profiles[k])} tasks; the per-service recovery tasks ('... for bench-NN'): {len(per_service)} tasks, "
              f"{sum(t for _, t in per_service):.1f} s. Slowest:")
        for name, secs in sorted(profiles[k], key=lambda t: t[1], reverse=True)[:10]:
            print(f"  {secs:7.2f} s  {name[:110]}")


if __name__ == "__main__":
    sys.exit(main())
