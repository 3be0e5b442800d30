"""DR drills on the lab: the DNS zone, the portal database and the web portal are rebuilt at the
secondary site in the isolated drill network from their backups, probed for real, measured, and
removed again, while production keeps answering unchanged. Two VM-level services come up on the
secondary Proxmox cluster (fakepve) in the drill network: the file server from a copy of its
replica (replica_vm), the intranet from its newest vzdump backup (vm_backup_restore).

Three drills: a green one run under ansible-runner from the project directory (as AWX and the
systemd timer run it), one with a corrupt and a stale backup, and one killed midway whose leftovers
the next cleanup removes from the ledger.
"""

from __future__ import annotations

import calendar
import datetime
import json
import os
import re
import signal
import subprocess
import time
import uuid
import xml.etree.ElementTree as ET  # noqa: S405 - our own report
from pathlib import Path

import pytest
import yaml
from conftest import REPO, podman
from test_backups import TOOL, sh, status
from test_network import vnets
from test_site_playbook import recap, run_playbook
from test_vm import pve_api

SERVICES = ("dns", "portal-db", "portal")
VM_SERVICES = {"files": ("replica_vm", "file1-replica-drill"), "intranet": ("vm_backup_restore", "intranet1-drill")}
RECOVERY = {"dns": "rec1", "portal-db": "rec2", "portal": "rec3"}
DRILL_ADDRESSES = {"rec1": "172.31.70.41", "rec2": "172.31.70.42", "rec3": "172.31.70.43"}
UNITS = {"rec1": "named", "rec2": "postgresql", "rec3": "twinsite-portal"}
PATHS = {"rec1": "/etc/bind", "rec2": "/var/backups/twinsite", "rec3": "/etc/twinsite-portal"}


def env() -> dict:
    return {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}


def drill(tmp: Path, *extra: str) -> tuple[subprocess.CompletedProcess, dict, Path]:
    """Run playbooks/dr_drill.yml with its reports under tmp; return the run, report.json, its dir."""
    reports = tmp / "drills"
    run = run_playbook("dr_drill.yml", tmp, "-e", f"dr_drill_reports_dir={reports}", *extra)
    dirs = sorted(p for p in reports.iterdir() if p.is_dir()) if reports.is_dir() else []
    assert dirs, f"the drill wrote no report:\n{run.stdout[-4000:]}\n{run.stderr[-2000:]}"
    return run, json.loads((dirs[-1] / "report.json").read_text()), dirs[-1]


def assert_nothing_left(lab) -> None:
    """What a drill creates on the recovery hosts is gone: addresses, running services, data."""
    for name, address in DRILL_ADDRESSES.items():
        done = sh(lab, name, f"ip -o -4 addr; systemctl is-active {UNITS[name]}; test -e {PATHS[name]} && echo DATA-LEFT", check=False)
        assert f" {address}/" not in done.stdout, f"{name} still holds {address}:\n{done.stdout}"
        assert "\nactive" not in "\n" + done.stdout, f"{name}: {UNITS[name]} still runs"
        assert "DATA-LEFT" not in done.stdout, f"{name}: {PATHS[name]} is still there"
    # The cleanup renames restored data aside and deletes it in the background (_dr.undo_script).
    deadline = time.monotonic() + 60
    for name, path in PATHS.items():
        parent, base = path.rsplit("/", 1)
        while (trash := sh(lab, name, f"ls -d {parent}/.twinsite-trash.{base}.* 2>/dev/null", check=False).stdout.strip()):
            assert time.monotonic() < deadline, f"{name}: the restored data is still being deleted a minute later: {trash}"
            time.sleep(0.5)
    databases = sh(lab, "rec2", "systemctl start postgresql && runuser -u postgres -- psql -Atc 'SELECT datname FROM pg_database'"
                                "; systemctl stop postgresql").stdout.split()
    assert "portal" not in databases
    assert drill_vnet(lab) == {"config": None, "running": None}, "the drill's vnet is still on cl-secondary"


def drill_vnet(lab) -> dict:
    """The drill network's SDN vnet on the secondary Proxmox cluster: in its config and in its
    running (applied) config, or None where it is not."""
    return {key: vnets(lab, ca_pem_of(lab), running=running).get("drill") for key, running in (("config", False), ("running", True))}


def ca_pem_of(lab) -> Path:
    return lab.state.ca / "ca.pem"


def ledger(tmp: Path) -> list[dict]:
    path = tmp / "drills" / "ledger.json"
    return json.loads(path.read_text())["entries"] if path.exists() and path.read_text().strip() else []


@pytest.fixture(scope="module")
def backed_up(lab, tmp_path_factory):
    """A converged primary whose services are backed up to the secondary, as production is. After
    test_backups.py (the full suite) that is already so; run alone, this file converges and backs up."""
    tmp = tmp_path_factory.mktemp("dr-setup")
    if sh(lab, "db1", f"test -x {TOOL}", check=False).returncode != 0:
        services = run_playbook("workloads.yml", tmp)
        assert services.returncode == 0, services.stdout[-3000:]
        run = run_playbook("backup.yml", tmp, "-e", f"twinsite_backup_report_dir={tmp / 'reports'}")
        assert run.returncode == 0, run.stdout[-4000:]
    return tmp


@pytest.fixture(scope="module")
def green_drill(lab, backed_up, tmp_path_factory):
    # A notice written just before the last backup: the rebuilt portal must show it, byte for byte.
    marker = f"DR drill marker {uuid.uuid4().hex[:8]}"
    insert = f"INSERT INTO notices (published, title, body) VALUES (now(), 'drill', '{marker}')"  # noqa: S608 - our own marker
    sh(lab, "db1", f"runuser -u postgres -- psql -d portal -c \"{insert}\"")
    # The portal's files did not change: its last backup stands (and stays old enough for the
    # stale-backup test below to need no wait).
    for svc, node in (("dns", "dns1"), ("portal-db", "db1")):
        sh(lab, node, f"{TOOL} --quiet backup {svc}")
    newest = {svc: status(lab, "backup1")["services"][svc]["copies"]["secondary"]["newest"] for svc in SERVICES}
    # The intranet VM's backup, made now through the API as its nightly vzdump job would.
    made = subprocess.run(["ansible", "-i", "inventory/lab", "localhost", "-m", "twinsite.dc.vm_backup", "-a",
                           '{"cluster": "{{ dc_clusters | selectattr(\'name\', \'eq\', \'cl-secondary\') | first }}", '
                           '"vm": "intranet1", "max_age_minutes": 0}', "-o"],
                          cwd=REPO, env=env(), capture_output=True, text=True, check=False, timeout=120)
    assert made.returncode == 0, made.stdout + made.stderr
    newest["intranet"] = json.loads(made.stdout.split("=>", 1)[1])["archive"]

    tmp = tmp_path_factory.mktemp("dr-green")
    # The drill also fails the firewall pair over and back (opt-in): the pair must be converged.
    if "172.31.20.254" not in podman("exec", "tsl-fw1", "ip", "-4", "-o", "addr").stdout + \
            podman("exec", "tsl-fw2", "ip", "-4", "-o", "addr").stdout:
        pair = run_playbook("firewall.yml", tmp)
        assert pair.returncode == 0, pair.stdout[-4000:]
    private = tmp / "runner"
    (private / "env").mkdir(parents=True)
    (private / "env" / "envvars").write_text(yaml.safe_dump(
        {"ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_VAULT_IDENTITY_LIST": os.environ["ANSIBLE_VAULT_IDENTITY_LIST"]}))
    reports = tmp / "drills"
    run = subprocess.run(["ansible-runner", "run", str(private), "--project-dir", str(REPO), "-p", "playbooks/dr_drill.yml",
                          "--inventory", str(REPO / "inventory" / "lab"), "--cmdline",
                          f"-e dr_drill_reports_dir={reports} -e twinsite_dr_trigger=ci -e dr_drill_firewall_failover_test=true "
                          "-e dr_drill_firewall_failover_outage=5"],
                         cwd=REPO, env=env(), capture_output=True, text=True, check=False, timeout=900)
    artifacts = sorted((private / "artifacts").iterdir(), key=lambda p: p.stat().st_mtime)[-1]
    dirs = sorted(p for p in reports.iterdir() if p.is_dir())
    report = json.loads((dirs[-1] / "report.json").read_text())
    sh(lab, "db1", f"runuser -u postgres -- psql -d portal -c \"DELETE FROM notices WHERE body = '{marker}'\"")  # noqa: S608 - our own marker
    return run, report, dirs[-1], artifacts, newest, tmp


def test_the_drill_runs_under_ansible_runner_and_is_green(green_drill):
    run, report, _, artifacts, _, _ = green_drill
    assert run.returncode == 0, run.stdout[-5000:]
    assert (artifacts / "rc").read_text().strip() == "0"
    assert (artifacts / "status").read_text().strip() == "successful"
    assert report["status"] == "green", json.dumps(report, indent=1)[:4000]
    assert report["trigger"] == "ci"
    # The staff desktop pool comes last: desktops need the servers.
    assert report["plan"]["tiers"] == [["dns", "files", "intranet", "portal-db"], ["portal"], ["vdi-staff"]]


def test_the_drill_failed_the_firewall_pair_over_and_back(green_drill):
    _, report, _, _, _, _ = green_drill
    step = next(s for s in report["plan_steps"] if s["name"] == "firewall failover")
    assert step["status"] == "ok", step
    moved = re.search(r"Hard stop of fw1: every VIP on fw2 after ([\d.]+) s", step["detail"])
    assert moved and float(moved.group(1)) <= 3.0, step["detail"]
    assert "the connection client1 -> web1 survived" in step["detail"]


def test_every_service_is_rebuilt_from_its_newest_backup_and_answers_like_production(green_drill):
    _, report, _, _, newest, _ = green_drill
    services = {s["name"]: s for s in report["services"]}
    assert sorted(services) == sorted([*SERVICES, *VM_SERVICES, "vdi-staff"])
    # The desktop pool: re-created from the golden image replicated to the secondary cluster, on the
    # isolated network, and read back from the hypervisor with every desktop running.
    pool = services.pop("vdi-staff")
    assert pool["status"] == "green" and pool["method"] == "vdi_pool", pool["reason"]
    assert pool["restored_point"] == {"snapshot": "tpl-win11", "time": None, "copy": "golden image"}
    assert pool["probes"][0]["type"] == "desktops" and pool["probes"][0]["ok"], pool["probes"]
    assert pool["probes"][0]["target"] == "pool staff-drill on cl-secondary"
    assert pool["probes"][0]["detail"].startswith("2 of 2 desktops running, 2 wanted, on drill"), pool["probes"][0]["detail"]
    assert 0 < pool["rto_s"] <= pool["rto_target_s"]
    for name, (method, vm) in VM_SERVICES.items():
        svc = services.pop(name)
        assert svc["status"] == "green" and svc["method"] == method, (name, svc["reason"])
        assert svc["probes"][0]["type"] == "vm" and svc["probes"][0]["ok"], svc["probes"]
        assert svc["probes"][0]["target"] == f"VM {vm} on cl-secondary"
        assert "running on drill" in svc["probes"][0]["detail"], "the VM is not on the isolated network only"
    assert services_vm_points(report)["files"] == {"snapshot": "file1-replica", "time": None, "copy": "replica"}
    intranet = services_vm_points(report)["intranet"]
    assert intranet["snapshot"] == newest["intranet"] and intranet["copy"] == "vzdump local", "not the newest vzdump backup"
    for name, svc in services.items():
        assert svc["status"] == "green", (name, svc["reason"])
        assert svc["targets"]["host"] == RECOVERY[name]
        assert svc["restored_point"]["copy"] == "secondary"
        assert svc["restored_point"]["time"] == newest[name], "not the newest snapshot"
        assert 0 < svc["rto_s"] <= svc["rto_target_s"] and 0 <= svc["rpo_s"] <= svc["rpo_target_s"]
        assert svc["probes"] and all(p["ok"] for p in svc["probes"])
        assert all(p["target"].split()[1].startswith(("172.31.70.", "portal@172.31.70.", "http://172.31.70."))
                   for p in svc["probes"]), "a probe reached outside the isolated network"
    # The rebuilt portal's page (from the restored database) equals the primary's, marker included.
    page = services["portal"]["probes"][0]
    left, _, right = page["detail"].rpartition("==")
    assert left.split()[-1] == right.split()[0], page["detail"]
    # Tier 2 starts after tier 1 is green: the portal's recovery begins after both of its dependencies answered.
    tier1_green = max(s["rto_s"] for s in services.values() if s["tier"] == 1)
    assert services["portal"]["rto_s"] > tier1_green


def test_services_of_one_tier_configured_by_different_roles_recover_at_the_same_time(green_drill):
    # dns (its role dns_server, on rec1) and portal-db (postgresql_server, on rec2) are both in tier 1.
    # Under the linear strategy, hosts running different roles take turns: every dns_server task had
    # ended before the first postgresql_server task began. ansible-runner's events say when each ran.
    _, _, _, artifacts, _, _ = green_drill
    spans: dict[tuple[str, str], list[float]] = {}
    for path in (artifacts / "job_events").glob("*.json"):
        event = json.loads(path.read_text())
        data = event.get("event_data") or {}
        role = (data.get("role") or "").rsplit(".", 1)[-1]
        if event.get("event") in ("runner_on_start", "runner_on_ok", "runner_on_failed", "runner_on_skipped") and \
                (data.get("host"), role) in (("rec1", "dns_server"), ("rec2", "postgresql_server")):
            spans.setdefault((data["host"], role), []).append(datetime.datetime.fromisoformat(event["created"]).timestamp())
    dns, database = spans.get(("rec1", "dns_server")), spans.get(("rec2", "postgresql_server"))
    assert dns and database, f"no events of the two roles in {artifacts / 'job_events'}: {sorted(spans)}"
    assert min(dns) < max(database) and min(database) < max(dns), (
        f"dns_server ran {min(dns):.1f}-{max(dns):.1f}, postgresql_server {min(database):.1f}-{max(database):.1f}: one after the other")


def services_vm_points(report: dict) -> dict:
    return {s["name"]: s["restored_point"] for s in report["services"] if s["name"] in VM_SERVICES}


def test_production_answered_unchanged_and_the_drill_network_is_isolated(green_drill):
    _, report, _, _, _, _ = green_drill
    untouched = report["production_untouched"]
    assert untouched["status"] is True
    assert {c["phase"] for c in untouched["checks"]} == {"before", "during", "after"}
    assert all(c["ok"] for c in untouched["checks"])
    isolation = report["isolation"]
    assert isolation["status"] is True
    froms = {c["from"].split()[0] for c in isolation["checks"]}
    assert froms >= {"rec1", "rec2", "rec3", "dns1", "db1", "web1"}  # both directions were tried
    assert all(c["blocked"] for c in isolation["checks"])


def test_nothing_is_left_after_the_cleanup(green_drill, lab):
    _, report, _, _, _, tmp = green_drill
    assert report["cleanup"]["status"] == "clean" and report["cleanup"]["left"] == []
    assert any(e.startswith("network:") for e in report["cleanup"]["removed"])
    assert {e for e in report["cleanup"]["removed"] if e.startswith("vm:")} == {f"vm:cl-secondary:{vm}" for _, vm in VM_SERVICES.values()}
    assert "vdi_pool:cl-secondary:staff-drill" in report["cleanup"]["removed"]
    assert ledger(tmp) == []
    assert_nothing_left(lab)
    names = [r["name"] for r in pve_api(lab, ca_pem_of(lab)).cluster.resources.get(type="vm")]
    assert not [n for n in names if n.endswith("-drill")], names  # the drill's VMs and desktops (vdi-staff-001-drill)
    assert {"file1-replica", "intranet1"} <= set(names), "the drill touched the replica or the backed-up VM"


def test_the_background_jobs_leave_no_files_on_the_controller(green_drill):
    """The tier's VM-level recoveries run as Ansible async jobs on the controller; each job's file
    in ~/.ansible_async is removed once its service's result is kept (recover_vm.yml)."""
    _, report, *_ = green_drill
    started, finished = (calendar.timegm(time.strptime(report[k], "%Y-%m-%dT%H:%M:%SZ")) for k in ("started", "finished"))
    jobs = Path.home() / ".ansible_async"
    left = [p.name for p in (jobs.iterdir() if jobs.is_dir() else []) if started - 1 <= p.stat().st_mtime <= finished + 1]
    assert left == [], f"job files written during the drill are still in {jobs}: {left}"


def test_report_html_junit_and_history(green_drill):
    _, report, folder, _, _, tmp = green_drill
    html = (folder / "report.html").read_text()
    for needle in ("A.5.30", "A.8.13", "<svg", *SERVICES):
        assert needle in html
    suite = ET.parse(folder / "junit.xml").getroot()  # noqa: S314
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    assert int(suite.get("failures")) == 0 and int(suite.get("tests")) >= len(SERVICES)
    history = [json.loads(line) for line in (tmp / "drills" / "history.jsonl").read_text().splitlines()]
    assert [h["id"] for h in history] == [report["id"]]


def test_plan_dr_shows_the_plan_and_its_readiness_in_check_mode_and_changes_nothing(lab, backed_up, tmp_path):
    """plan_dr.yml reads the restorable points on backup1 in the background (plan.yml): in check
    mode too, with the job collected and its file removed from backup1 afterwards."""
    jobs_before = sh(lab, "backup1", "ls ~/.ansible_async 2>/dev/null | sort", check=False).stdout.split()
    run = run_playbook("plan_dr.yml", tmp_path, "--check")
    assert run.returncode == 0, run.stdout[-4000:]
    shown = " ".join(run.stdout.split())  # the debug output wraps long lines
    for tier, name in ((1, "dns"), (1, "portal-db"), (2, "portal"), (1, "files"), (1, "intranet")):
        assert re.search(rf"tier {tier} {name}: [a-z_]+ on [^']* - ready'", shown), f"{name} not ready in tier {tier}:\n{run.stdout[-4000:]}"
    assert "READY: every service can be recovered within its RPO target." in run.stdout
    assert recap(run.stdout)["localhost"]["changed"] == 0
    assert sh(lab, "backup1", "ls ~/.ansible_async 2>/dev/null | sort", check=False).stdout.split() == jobs_before


def test_a_corrupt_and_a_stale_backup_make_only_those_services_red(lab, backed_up, tmp_path):
    """dns: every pack of its backups corrupted at the secondary. portal: an RPO target of one minute
    that its newest backup misses. intranet: its backups looked for on a storage that does not exist.
    The database and the file server still recover, cleanup runs, exit non-zero."""
    # The database as production has it now (the green drill's marker row is gone from production
    # but not from the backup it made): the rebuilt portal's page must equal production's, so the
    # portal is red for its RPO alone, not for a page that differs.
    sh(lab, "db1", f"{TOOL} --quiet backup portal-db")
    newest = status(lab, "backup1")["services"]["portal"]["copies"]["secondary"]["newest"]
    age = time.time() - calendar.timegm(time.strptime(newest, "%Y-%m-%dT%H:%M:%SZ"))
    if age < 75:
        time.sleep(75 - age)  # older than the 1-minute target below, whatever ran just before
    model = yaml.safe_load((REPO / "inventory" / "lab" / "group_vars" / "all" / "services.yml").read_text())
    for svc in model["dc_services"]:
        if svc["name"] == "portal":
            svc["rpo_minutes"] = 1
        if svc["name"] == "intranet":  # its vzdump restore, started in the background, fails
            svc["recovery"]["storage"] = "nfs-gone"
    extra = tmp_path / "stale.yml"
    extra.write_text(yaml.safe_dump({"dc_services": model["dc_services"]}))
    packs = sh(lab, "backup1", "find /srv/restic/dns/data -type f").stdout.split()
    assert packs
    sh(lab, "backup1", "tar -C / -cpf /root/dns-packs.tar srv/restic/dns/data && for p in " + " ".join(packs)
       + "; do printf 'twinsite-corruption' | dd of=$p bs=1 seek=40 conv=notrunc status=none; done")
    # rec2 as if the model had given it portal-db after the last backup.yml: the drill stages it itself.
    sh(lab, "rec2", "mv /etc/twinsite/backup/jobs.json /root/jobs.json.saved")
    try:
        run, report, folder = drill(tmp_path, "-e", f"@{extra}")
    finally:
        sh(lab, "backup1", "tar -C / -xpf /root/dns-packs.tar && rm -f /root/dns-packs.tar")
        sh(lab, "rec2", "mv /root/jobs.json.saved /etc/twinsite/backup/jobs.json")
    assert run.returncode != 0
    assert "The drill is red" in run.stdout
    services = {s["name"]: s for s in report["services"]}
    assert services["dns"]["status"] == "red" and "restore" in services["dns"]["reason"].lower()
    assert services["dns"]["rto_s"] is None
    assert services["portal"]["status"] == "red" and "achieved RPO" in services["portal"]["reason"]
    assert services["portal"]["rpo_s"] > 60
    probe = next(step for step in services["portal"]["steps"] if step["name"] == "probe")
    assert probe["status"] == "ok", probe  # it answers like production: red for the stale backup only
    assert services["portal-db"]["status"] == "green", services["portal-db"]["reason"]
    # A VM-level recovery that fails in the background is red with the hypervisor's reason; the
    # other VM-level service of its tier still comes up.
    assert services["intranet"]["status"] == "red" and "storage 'nfs-gone'" in services["intranet"]["reason"], services["intranet"]
    assert services["files"]["status"] == "green", services["files"]["reason"]
    assert report["cleanup"]["status"] == "clean"
    assert report["preflight"]["status"] == "failed"  # the portal's backup was already too old before the drill
    checks = {c["name"]: c for c in report["preflight"]["checks"]}
    assert checks["rec2 staged for restores"]["detail"].startswith("not staged (portal-db): installed by the drill"), checks
    assert checks["rec1 staged for restores"]["detail"] == "staged", checks
    assert checks["rec1 free space"]["ok"] and " MB free in /var/lib" in checks["rec1 free space"]["detail"], checks
    assert report["production_untouched"]["status"] is True
    cases = ET.parse(folder / "junit.xml").getroot().iter("testcase")  # noqa: S314
    failures = {case.get("name") for case in cases if case.find("failure") is not None}
    assert {"dns", "portal", "intranet"} <= failures and "portal-db" not in failures
    assert_nothing_left(lab)


def test_a_drill_killed_midway_is_cleaned_up_from_its_ledger(lab, backed_up, tmp_path):
    reports = tmp_path / "drills"
    proc = subprocess.Popen(["ansible-playbook", "-i", "inventory/lab", "playbooks/dr_drill.yml", "-e", f"dr_drill_reports_dir={reports}"],
                            cwd=REPO, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        # Kill it in the middle of tier 1: once rec2 has recorded the database's cleanup steps and
        # rec1 really holds the DNS server's address in the isolated network.
        while not any(e["id"].startswith("command1:rec2") for e in ledger(tmp_path)):
            assert proc.poll() is None, "the drill ended before it could be killed"
            assert time.monotonic() < deadline, "tier 1 never started"
            time.sleep(0.5)
        while " 172.31.70.41/" not in sh(lab, "rec1", "ip -o -4 addr").stdout:
            assert proc.poll() is None, "the drill ended before it could be killed"
            assert time.monotonic() < deadline, "rec1 never got its address"
            time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        # Mitogen's connection processes run in sessions of their own: the group kill misses them and
        # they would outlive the test (a systemd unit's stop kills its whole cgroup; here the test must).
        subprocess.run(["pkill", "-KILL", "-f", f"dr_drill_reports_dir={reports}"], check=False)
    left = ledger(tmp_path)
    assert {e["kind"] for e in left} >= {"network", "address", "units", "paths", "command"}
    assert " 172.31.70.41/" in sh(lab, "rec1", "ip -o -4 addr").stdout  # the drill really left things behind
    made = {"tag": 70, "zone": "vlanzone", "alias": "drill"}
    assert drill_vnet(lab) == {"config": made, "running": made}, "the isolated network was not created (and applied) on cl-secondary"

    cleanup = run_playbook("dr_cleanup.yml", tmp_path, "-e", f"dr_drill_reports_dir={reports}")
    assert cleanup.returncode == 0, cleanup.stdout[-4000:]
    assert ledger(tmp_path) == []
    assert_nothing_left(lab)
    again = run_playbook("dr_cleanup.yml", tmp_path, "-e", f"dr_drill_reports_dir={reports}")
    assert again.returncode == 0 and "Nothing to clean up" in again.stdout
    assert recap(again.stdout)["localhost"]["changed"] == 0


def test_a_broken_recovery_block_stops_the_drill_before_anything_changes(lab, tmp_path):
    """The drill checks the model first: a recovery host that is not a recovery host stops the run
    with the file and the path, and no ledger (nothing created) exists afterwards."""
    import shutil

    inventory = tmp_path / "inventory"
    shutil.copytree(REPO / "inventory" / "lab", inventory, symlinks=True)
    services = inventory / "group_vars" / "all" / "services.yml"
    text = services.read_text()
    assert "      host: rec1\n" in text
    services.write_text(text.replace("      host: rec1\n", "      host: web1\n", 1))
    reports = tmp_path / "drills"
    run = subprocess.run(["ansible-playbook", "-i", str(inventory), "playbooks/dr_drill.yml", "-e", f"dr_drill_reports_dir={reports}"],
                         cwd=REPO, env={**env(), "TWINSITE_LAB_STATE": str(REPO / ".lab")},
                         capture_output=True, text=True, check=False, timeout=300)
    out = run.stdout + run.stderr
    assert run.returncode != 0, out[-3000:]
    assert "services.yml" in out and "dc_services[0].recovery.host" in out, out[-3000:]
    assert "Check the site model before planning" in out
    assert not (reports / "ledger.json").exists(), "the drill created something although the model is wrong"
    assert "Create the isolated network" not in out


def test_a_plan_with_more_tiers_than_recover_tiers_has_plays_stops_before_anything_changes(lab, tmp_path):
    """playbooks/recover_tiers.yml has one play per tier, dr_drill_max_tiers of them. The lab's plan
    has 3 tiers: with a maximum of 2 the drill stops at the plan, says why, and creates nothing."""
    reports = tmp_path / "drills"
    run = run_playbook("dr_drill.yml", tmp_path, "-e", f"dr_drill_reports_dir={reports}", "-e", "dr_drill_max_tiers=2")
    out = run.stdout + run.stderr
    assert run.returncode != 0, out[-3000:]
    assert "The plan has 3 tiers" in out and "recovers at most 2" in out, out[-3000:]
    assert not (reports / "ledger.json").exists(), "the drill created something although its plan cannot be run"
    assert "Create the isolated network" not in out
