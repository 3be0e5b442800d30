"""Backups 3-2-1-1-0 on the lab: every service is backed up, replicated and restored; the copies
cannot be deleted with the credentials that made them; faults lose nothing.

One backup.yml run (the module fixture) produces the evidence; each fault test then breaks one
thing for real (the secondary's container, the cloud uplink, a pack file, a password), checks how
it is reported, and puts it back.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shlex
import subprocess
import sys
import time
import uuid

import pytest
import yaml
from conftest import REPO, podman
from test_site_playbook import recap, run_playbook

sys.path.insert(0, str(REPO / "collections"))
from ansible_collections.twinsite.dc.plugins.module_utils import _posture  # noqa: E402

TOOL = "/usr/local/sbin/twinsite-backup"


def host(lab, name: str) -> str:
    return next(c["ssh_address"] for c in lab.model["containers"] if c["host"] == name)


def sh(lab, name: str, command: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    argv = ["ssh", "-i", str(lab.state.ssh / "id_ed25519"), "-o", f"UserKnownHostsFile={lab.state.ssh / 'known_hosts'}",
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", f"root@{host(lab, name)}", command]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout)
    if check:
        assert done.returncode == 0, f"{name}: {command}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return done


def as_owner(command: str, env: str = "") -> str:
    """A twinsite-backup command as the secondary's repository owner, as its timers run it
    (``env``: VAR=value settings for it)."""
    return f"runuser -u restic-repo -- env {env} {TOOL} --quiet {command}" if env else f"runuser -u restic-repo -- {TOOL} --quiet {command}"


def env_file(lab, name: str, path: str) -> dict[str, str]:
    text = sh(lab, name, f"cat {path}").stdout
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))


def status(lab, name: str) -> dict:
    command = as_owner("status") if name == "backup1" else f"{TOOL} --quiet status"
    return json.loads(sh(lab, name, command).stdout)


@pytest.fixture(scope="module")
def backup_run(lab, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("backup")
    # The services must exist to be backed up (the database to dump, the portal's files): as in
    # production, backups run on a converged site.
    services = run_playbook("workloads.yml", tmp)
    assert services.returncode == 0, services.stdout[-3000:]
    run = run_playbook("backup.yml", tmp, "-e", f"twinsite_backup_report_dir={tmp / 'reports'}")
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-2000:]
    posture = json.loads((tmp / "reports" / "posture.json").read_text())
    return run, posture, tmp


def test_every_service_is_3_2_1_1_0_by_evidence(backup_run, lab):
    run, posture, tmp = backup_run
    model = yaml.safe_load((REPO / "inventory" / "lab" / "group_vars" / "all" / "services.yml").read_text())
    protected = sorted(s["name"] for s in model["dc_services"] if s.get("backup_policy"))
    services = {s["name"]: s for s in posture["services"]}
    assert sorted(services) == sorted(s["name"] for s in model["dc_services"])
    # The VM-level services (a replica, vzdump backups) are reported, and are not 3-2-1-1-0.
    unprotected = {name: services.pop(name) for name in sorted(set(services) - set(protected))}
    assert sorted(unprotected) == ["files", "intranet"]
    assert unprotected["files"]["reasons"] == ["no backup policy: only a VM replica (file1-replica on cl-secondary), which is not a backup"]
    assert unprotected["intranet"]["reasons"][0].startswith("no backup policy: only vzdump backups of VM intranet1 on storage local")
    assert not any(e["rule_3_2_1_1_0"] for e in unprotected.values())
    for name, entry in services.items():
        assert entry["reasons"] == [], (name, entry["reasons"])
        assert entry["copies"] == 3 and entry["media"] == 2, entry
        for key in ("offsite_verified", "immutable_verified", "append_only_verified", "restore_verified", "rpo_met", "rule_3_2_1_1_0"):
            assert entry[key] is True, (name, key)
        for copy in ("secondary", "cloud"):
            detail = entry["copy_detail"][copy]
            assert detail["files_checked"] > 0 and detail["mismatches"] == 0, (name, copy, detail)
            assert detail["rpo_state"] == "ok"
        assert entry["last_restore_test"] >= posture["generated"][:10]
    page = (tmp / "reports" / "posture.html").read_text()
    assert all(f"<td>{name}</td>" in page for name in protected)
    assert posture["summary"] == {"services": len(protected) + len(unprotected), "compliant": len(protected),
                                  "rpo_breaches": len(unprotected)}


def test_cloud_copy_restores_byte_identical_to_production(backup_run, lab, tmp_path):
    """Independent of twinsite-backup: restic on the controller restores dns's newest cloud snapshot
    and every zone file matches the live one on dns1."""
    secrets = env_file(lab, "backup1", "/etc/twinsite/backup/secrets/dns-cloud.env")
    s3 = lab.model["s3"]
    env = {**os.environ, "RESTIC_PASSWORD": secrets["RESTIC_PASSWORD"], "AWS_ACCESS_KEY_ID": secrets["AWS_ACCESS_KEY_ID"],
           "AWS_SECRET_ACCESS_KEY": secrets["AWS_SECRET_ACCESS_KEY"], "RESTIC_CACHE_DIR": str(tmp_path / "cache"),
           "RESTIC_REPOSITORY": f"s3:https://{s3['host']}:{s3['port']}/{s3['buckets'][0]['name']}/dns"}
    done = subprocess.run(["restic", "--cacert", str(lab.state.ca / "ca.pem"), "restore", "latest", "--target", str(tmp_path / "r")],
                          env=env, capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr
    live = dict(line.split()[::-1] for line in sh(lab, "dns1", "cd / && find etc/bind -type f -exec sha256sum {} +").stdout.splitlines())
    assert live, "no zone files on dns1"
    for path, digest in live.items():
        restored = tmp_path / "r" / path
        assert restored.is_file(), path
        assert hashlib.sha256(restored.read_bytes()).hexdigest() == digest, path


def test_secrets_stay_out_of_output_and_audit_log(backup_run, lab):
    run, _, tmp = backup_run
    secrets = set()
    for name in ("dns", "portal", "portal-db"):
        for copy in ("secondary", "cloud"):
            env = env_file(lab, "backup1", f"/etc/twinsite/backup/secrets/{name}-{copy}.env")
            secrets |= {v for k, v in env.items() if "PASS" in k or "SECRET" in k}
    rest = env_file(lab, "dns1", "/etc/twinsite/backup/secrets/dns-secondary.env")["RESTIC_REPOSITORY"]
    secrets.add(rest.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1])  # the REST login's password
    audit = (tmp / "audit.jsonl").read_text()
    for secret in secrets:
        assert secret not in run.stdout and secret not in run.stderr and secret not in audit
    modes = sh(lab, "dns1", "stat -c '%a %U' /etc/twinsite/backup/secrets/dns-secondary.env").stdout.split()
    assert modes == ["600", "root"]


def test_timers_are_installed_per_job(backup_run, lab):
    assert sh(lab, "dns1", "systemctl is-enabled twinsite-backup-dns.timer").stdout.strip() == "enabled"
    timers = sh(lab, "backup1", "systemctl list-timers --all --no-legend 'twinsite-*'").stdout
    for name in ("prune", "replicate", "verify"):
        for svc in ("dns", "portal", "portal-db"):
            assert f"twinsite-{name}-{svc}.timer" in timers, (name, svc)


def test_prune_runs_only_at_the_secondary_with_the_policy_retention(backup_run, lab):
    for _ in range(2):
        sh(lab, "dns1", f"{TOOL} --quiet backup dns")
    before = status(lab, "backup1")["services"]["dns"]["copies"]["secondary"]["snapshots"]
    assert before >= 3
    # The lab's policy keeps 24: a prune removes nothing yet. A stricter copy of the job shows
    # retention really applies (run against the same repository, as the timer would).
    sh(lab, "backup1", as_owner("prune dns"))
    assert status(lab, "backup1")["services"]["dns"]["copies"]["secondary"]["snapshots"] == before
    config = json.loads(sh(lab, "backup1", "cat /etc/twinsite/backup/jobs.json").stdout)
    for job in config["jobs"]:
        job["retention"] = {"keep_last": 2}
    sh(lab, "backup1", f"install -o restic-repo -m 0600 /dev/stdin /tmp/strict.json <<'EOF'\n{json.dumps(config)}\nEOF")
    sh(lab, "backup1", f"TWINSITE_BACKUP_CONFIG=/tmp/strict.json {as_owner('prune dns')}; rm -f /tmp/strict.json")
    assert status(lab, "backup1")["services"]["dns"]["copies"]["secondary"]["snapshots"] == 2


def test_wrong_password_fails_naming_the_service_and_repository(backup_run, lab, tmp_path):
    wrong = "not-the-dns-key-" + uuid.uuid4().hex[:6]
    extra = json.dumps({"dc_backup_encryption_passwords": {"dns": wrong, "portal": "x", "portal-db": "y"}})
    failed = run_playbook("backup.yml", tmp_path, "--limit", "dns1", "-e", extra)
    try:
        assert failed.returncode != 0
        assert recap(failed.stdout)["dns1"]["failed"] == 1
        said = " ".join((failed.stdout + failed.stderr).split())  # YAML output wraps long lines
        assert "backup dns: restic backup on the secondary repository rest:https://restic:***@172.31.10.31:8000/dns/ failed" in said
        assert "wrong password" in said
        assert wrong not in failed.stdout + failed.stderr + (tmp_path / "audit.jsonl").read_text()
    finally:
        # Converging with the vault's password puts the right key back (no need to run the jobs).
        fixed = run_playbook("backup.yml", tmp_path, "--limit", "dns1", "-e", "twinsite_backup_run_now=false")
        assert fixed.returncode == 0, fixed.stdout[-3000:]


def test_secondary_lost_mid_backup_then_next_run_completes_and_check_is_clean(backup_run, lab):
    """Stop the secondary's container while a backup uploads; bring it back; the next run
    completes and restic check on the repository is clean."""
    svc = f"fault-{uuid.uuid4().hex[:6]}"
    config = json.loads(sh(lab, "dns1", "cat /etc/twinsite/backup/jobs.json").stdout)
    job = {**config["jobs"][0], "service": svc, "paths": [f"/var/tmp/{svc}"], "pre_backup": {},
           "copies": {"secondary": {"env_file": f"/tmp/{svc}.env"}}}
    secrets = env_file(lab, "dns1", "/etc/twinsite/backup/secrets/dns-secondary.env")
    repo_url = secrets["RESTIC_REPOSITORY"].replace("/dns/", f"/{svc}/")
    setup = (f"mkdir -p /var/tmp/{svc} && head -c 400M /dev/urandom > /var/tmp/{svc}/blob && "
             f"printf 'RESTIC_REPOSITORY=%s\\nRESTIC_PASSWORD=%s\\n' {shlex.quote(repo_url)} {shlex.quote(secrets['RESTIC_PASSWORD'])}"
             f" > /tmp/{svc}.env && chmod 600 /tmp/{svc}.env && cat > /tmp/{svc}.json <<'EOF'\n"
             f"{json.dumps({**config, 'jobs': [job]})}\nEOF")
    sh(lab, "dns1", setup)
    run = f"TWINSITE_BACKUP_CONFIG=/tmp/{svc}.json TWINSITE_BACKUP_STATE=/var/tmp/{svc}-state {TOOL} --quiet backup {svc}"
    try:
        sh(lab, "dns1", f"nohup sh -c '{run}' > /tmp/{svc}.out 2>&1 &")
        deadline = time.monotonic() + 30
        while "restic" not in sh(lab, "dns1", "pgrep -a restic || true").stdout or \
                "backup" not in sh(lab, "dns1", "pgrep -a restic || true").stdout:
            assert time.monotonic() < deadline, "the backup did not start"
            time.sleep(0.2)
        time.sleep(1)
        assert podman("stop", "-t", "0", "tsl-backup1").returncode == 0
        mid = "backup" in sh(lab, "dns1", "pgrep -a restic || true").stdout
        assert mid, "the backup had already finished when the secondary went away: make the blob bigger"
        time.sleep(3)
        assert podman("start", "tsl-backup1").returncode == 0
        _wait_for_repository(lab)
        deadline = time.monotonic() + 600
        while "backup" in sh(lab, "dns1", "pgrep -a restic || true").stdout:
            assert time.monotonic() < deadline, "the interrupted backup hangs"
            time.sleep(2)
        second = sh(lab, "dns1", run, check=False)
        assert second.returncode == 0, second.stdout + second.stderr
        assert json.loads(second.stdout)["ok"] is True
        key = secrets["RESTIC_PASSWORD"]
        check = sh(lab, "backup1", f"RESTIC_PASSWORD={shlex.quote(key)} runuser -u restic-repo -- "
                                   f"restic -r /srv/restic/{svc} --cache-dir /tmp/{svc}-cache check --read-data", check=False)
        assert check.returncode == 0, check.stdout + check.stderr
        assert "no errors were found" in check.stdout
    finally:
        if podman("inspect", "-f", "{{.State.Running}}", "tsl-backup1").stdout.strip() != "true":
            podman("start", "tsl-backup1")
            _wait_for_repository(lab)
        sh(lab, "dns1", f"pkill -f 'backup {svc}' ; rm -rf /var/tmp/{svc} /var/tmp/{svc}-state /tmp/{svc}.*", check=False)
        sh(lab, "backup1", f"rm -rf /srv/restic/{svc} /tmp/{svc}-cache", check=False)


def _wait_for_repository(lab, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if sh(lab, "backup1", "systemctl is-active twinsite-backup-repository", check=False, timeout=10).stdout.strip() == "active":
                return
        except subprocess.TimeoutExpired:
            pass
        time.sleep(1)
    pytest.fail("the secondary's repository did not come back after its container restarted")


def test_cloud_unreachable_replication_retries_rpo_breach_shows_nothing_lost(backup_run, lab):
    sys.path.insert(0, str(REPO / "scripts"))
    from labkit import procs

    sh(lab, "dns1", f"{TOOL} --quiet backup dns")  # a snapshot the cloud does not have yet
    assert procs.stop(lab.state, "uplink"), "the lab's cloud uplink was not running"
    try:
        # An unreachable copy fails after the reach grace (10 s by default) per attempt; 1 s here.
        failed = sh(lab, "backup1", as_owner("replicate dns --attempts 2 --retry-delay 1", env="TWINSITE_BACKUP_REACH_GRACE=1"),
                    check=False, timeout=900)
        assert failed.returncode == 1
        record = json.loads(failed.stdout)
        assert record["attempts"] == 2 and record["ok"] is False
        assert "replication of dns to the cloud gave up after 2 attempts" in record["error"]
        assert "s3:https://" in record["error"] and "lab-s3-secret-key" not in failed.stdout + failed.stderr

        # The RPO monitor, on the recorded evidence, as of six hours from now with the cloud still down.
        secondary = status(lab, "backup1")
        assert secondary["services"]["dns"]["copies"]["cloud"]["reachable"] is False
        later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=6)
        policies = json.loads(sh(lab, "backup1", "cat /etc/twinsite/backup/jobs.json").stdout)["jobs"]
        policy = next(j for j in policies if j["service"] == "dns")
        report = _posture.service_posture({"name": "dns", "rpo_minutes": 60},
                                          {"name": "zone-files", "copies": ["secondary", "cloud"], "interval_minutes": 60,
                                           "cloud_interval_minutes": 240, "retention": policy["retention"]},
                                          secondary["services"]["dns"], [status(lab, "dns1")["services"]["dns"]],
                                          {"prefix": "dns/", "passed": True}, later)
        assert report["rpo_met"] is False
        assert report["copy_detail"]["cloud"]["rpo_state"] == "breach"
        assert any("last replication failed" in r for r in report["reasons"])
        assert any(r.startswith("cloud copy: unreachable") for r in report["reasons"])
    finally:
        up = subprocess.run([str(REPO / "scripts" / "lab"), "up", "-q"], capture_output=True, text=True, check=False)
        assert up.returncode == 0, up.stderr
    done = sh(lab, "backup1", as_owner("replicate dns --attempts 2 --retry-delay 1"), check=False, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    now = status(lab, "backup1")["services"]["dns"]["copies"]
    assert now["cloud"]["newest"] == now["secondary"]["newest"]
    assert now["cloud"]["snapshots"] >= now["secondary"]["snapshots"]


def test_corrupted_pack_at_the_secondary_is_reported_and_the_cloud_restores(backup_run, lab):
    svc = "portal-db"
    pack = sh(lab, "backup1", f"find /srv/restic/{svc}/data -type f -printf '%s %p\\n' | sort -n | tail -1").stdout.split()[1]
    sh(lab, "backup1", f"cp -p {pack} /root/pack.orig && "
                       f"printf 'twinsite-corruption' | dd of={pack} bs=1 seek=64 conv=notrunc status=none")
    try:
        bad = sh(lab, "backup1", as_owner(f"verify {svc} --copy secondary --read-data-subset 100%"), check=False)
        assert bad.returncode == 1
        record = json.loads(bad.stdout)
        assert record["check_ok"] is False and record["ok"] is False
        assert record["check_error"]
        cloud = sh(lab, "backup1", as_owner(f"verify {svc} --copy cloud --read-data-subset 100%"), check=False)
        assert cloud.returncode == 0, cloud.stdout
        record = json.loads(cloud.stdout)
        assert record["restore_ok"] is True and record["mismatches"] == 0 and record["files_checked"] >= 1

        secondary = status(lab, "backup1")["services"][svc]
        entry = _posture.service_posture({"name": svc, "rpo_minutes": 60},
                                         {"name": "portal-database", "copies": ["secondary", "cloud"], "interval_minutes": 60,
                                          "cloud_interval_minutes": 240},
                                         secondary, [status(lab, "db1")["services"][svc]], {"prefix": f"{svc}/", "passed": True},
                                         dt.datetime.now(dt.UTC))
        assert entry["copies"] == 2 and entry["rule_3_2_1_1_0"] is False
        assert entry["offsite_verified"] is True
        assert any(r.startswith("secondary copy: restic check failed") for r in entry["reasons"])
    finally:
        sh(lab, "backup1", f"cp -p /root/pack.orig {pack} && rm -f /root/pack.orig")
    healed = sh(lab, "backup1", as_owner(f"verify {svc} --copy secondary"), check=False)
    assert healed.returncode == 0, healed.stdout


def test_check_mode_on_the_converged_site_runs_nothing_and_changes_nothing(backup_run, lab, tmp_path):
    before = status(lab, "backup1")["services"]["dns"]["copies"]["secondary"]["snapshots"]
    run = run_playbook("backup.yml", tmp_path, "--check", "--diff")
    assert run.returncode == 0, run.stdout[-3000:]
    changed = {h: c["changed"] for h, c in recap(run.stdout).items() if c["changed"]}
    assert not changed, changed
    assert status(lab, "backup1")["services"]["dns"]["copies"]["secondary"]["snapshots"] == before


def test_a_second_converge_from_site_changes_nothing_in_the_backup_jobs(backup_run, tmp_path):
    run = run_playbook("backup.yml", tmp_path, "-e", "twinsite_backup_run_now=false")
    assert run.returncode == 0, run.stdout[-3000:]
    changed = {h: c["changed"] for h, c in recap(run.stdout).items() if c["changed"]}
    assert not changed, changed
