"""The main job against the lab: it reaches every component, the services answer, and a second run
changes nothing."""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.request
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def run_playbook(playbook: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    """Run a playbook against the lab; its whole output is also appended to tmp_path/<playbook>.log
    (a failing assertion shows only the tail)."""
    env = {**os.environ, "TWINSITE_AUDIT_LOG": str(tmp_path / "audit.jsonl"), "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}
    run = subprocess.run(["ansible-playbook", "-i", "inventory/lab", f"playbooks/{playbook}", *extra],
                         cwd=REPO, env=env, capture_output=True, text=True, check=False, timeout=900)
    with (tmp_path / f"{playbook}.log").open("a") as log:
        log.write(f"$ ansible-playbook playbooks/{playbook} {' '.join(extra)}  (exit {run.returncode})\n{run.stdout}\n{run.stderr}\n")
    return run


def recap(output: str) -> dict[str, dict[str, int]]:
    hosts = {}
    for host, counters in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", output, re.MULTILINE):
        hosts[host] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counters)}
    return hosts


@pytest.fixture(scope="module")
def site_runs(lab, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("site")
    first = run_playbook("site.yml", tmp)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
    second = run_playbook("site.yml", tmp)
    assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-2000:]
    return first, second, tmp


def test_second_run_changes_nothing(site_runs):
    _, second, _ = site_runs
    totals = recap(second.stdout)
    assert totals, "no PLAY RECAP in the output"
    changed = {h: c["changed"] for h, c in totals.items() if c["changed"]}
    assert not changed, f"second run changed something: {changed}"
    assert all(c["failed"] == 0 and c["unreachable"] == 0 for c in totals.values())


def test_summary_lists_every_host_reached_and_every_api(site_runs, lab):
    summary = json.loads((REPO / "reports" / "site" / "summary.json").read_text())
    hosts = {h["name"]: h for h in summary["hosts"]}
    expected = {c["host"] for c in lab.model["containers"]} | {s["name"] for s in lab.model["fake_switches"]}
    assert set(hosts) == expected
    assert all(h["reached"] for h in hosts.values()), [h for h in hosts.values() if not h["reached"]]
    clusters = {c["name"]: c for c in summary["clusters"]}
    # The model's VMs and the desktops of its VDI pools there (no sessions in the lab: max(min, spare) each).
    pools = yaml.safe_load((REPO / "inventory" / "lab" / "group_vars" / "all" / "vdi.yml").read_text())["dc_vdi_pools"]
    desktops = sum(max(p["size"]["min"], p["size"]["spare"]) for p in pools if p["cluster"] == "cl-primary")
    assert desktops > 0
    assert clusters["cl-primary"]["vms"] == sum(1 for v in lab.model["vcsim"]["vms"] if not v["template"]) + desktops
    assert clusters["cl-secondary"]["templates"] == sum(1 for g in lab.model["fakepve"]["guests"] if g["template"])
    assert summary["cloud"]["object_lock"] is True
    assert "Hosts (" in site_runs[1].stdout


def test_portal_serves_the_seeded_notices_from_the_database(site_runs):
    with urllib.request.urlopen("http://172.31.20.43/", timeout=5) as page:  # noqa: S310 - lab address
        body = page.read().decode()
    assert "Town Hall citizen portal" in body
    assert "Council meeting" in body and "Road works" in body


def test_dns_answers_for_the_zone(site_runs, lab):
    from conftest import ssh

    web = next(c for c in lab.model["containers"] if c["host"] == "web1")
    result = ssh(lab, web["ssh_address"], "dig +short @172.31.20.41 portal.town.example")
    assert result.stdout.strip() == "172.31.20.43"
    result = ssh(lab, web["ssh_address"], "dig +short @172.31.20.41 www.town.example")
    assert "172.31.20.43" in result.stdout


def test_drift_is_repaired_and_audited_without_leaking_secrets(site_runs, lab, tmp_path):
    """Someone edits the portal's config by hand: the next run puts it back, and the audit log says
    which host and task changed it without writing the database password it holds."""
    from conftest import ssh

    web = next(c for c in lab.model["containers"] if c["host"] == "web1")
    ssh(lab, web["ssh_address"], "echo 'title = hacked' >> /etc/twinsite-portal/portal.ini")
    result = run_playbook("workloads.yml", tmp_path, "--limit", "web1")
    assert result.returncode == 0, result.stdout[-3000:]
    assert recap(result.stdout)["web1"]["changed"] >= 1
    config = ssh(lab, web["ssh_address"], "cat /etc/twinsite-portal/portal.ini").stdout
    assert "hacked" not in config

    lines = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert lines, "the repair was not audited"
    entry = next(e for e in lines if e["host"] == "web1" and e["module"] == "ansible.builtin.template")
    assert entry["task"] == "<censored>"  # the task is no_log: its name is not written either
    assert {"time", "user", "playbook", "play", "run_id", "check_mode"} <= set(entry)
    assert "lab-portal-db-pw" not in (tmp_path / "audit.jsonl").read_text()
