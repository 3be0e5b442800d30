"""The backup chain without restic or a lab: twinsite-backup's pure helpers (restic's timestamps,
the checksum manifest, secret scrubbing, the lock-wait loop), the backup_jobs filters that turn the
model into jobs and units, and the 3-2-1-1-0 posture judged from recorded outcomes."""

from __future__ import annotations

import datetime as dt
import importlib.machinery
import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.twinsite.dc.plugins.filter import backup_jobs as filters
from ansible_collections.twinsite.dc.plugins.module_utils import _posture

TOOL = Path(__file__).resolve().parents[2] / "roles" / "restic_jobs" / "files" / "twinsite-backup"

REST_PASSWORD = "p@ss/w:rd%"
REPO_KEY = "repo-key-Secret-42"


@pytest.fixture(scope="module")
def tool():
    """The tool (no .py extension) as a module, loaded under a name of its own."""
    loader = importlib.machinery.SourceFileLoader("twinsite_backup_under_test", str(TOOL))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(module)
    return module


def rest_url(password: str = REST_PASSWORD) -> str:
    return filters.restic_rest_url({"url": "https://172.31.10.31:8000", "user": "restic", "password": password}, "dns")


# --- twinsite-backup: time, manifest, secrets --------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-22T10:11:12.123456789+01:00", dt.datetime(2026, 11, 22, 9, 11, 12, 123456, tzinfo=dt.UTC)),
    ("2026-11-22T10:11:12.123456789Z", dt.datetime(2026, 11, 22, 10, 11, 12, 123456, tzinfo=dt.UTC)),
    ("2026-11-22T10:11:12.5-05:00", dt.datetime(2026, 11, 22, 15, 11, 12, 500000, tzinfo=dt.UTC)),
    ("2026-11-22T23:59:59.999999999+00:00", dt.datetime(2026, 11, 22, 23, 59, 59, 999999, tzinfo=dt.UTC)),
    ("2026-11-22T10:11:12+02:00", dt.datetime(2026, 11, 22, 8, 11, 12, tzinfo=dt.UTC)),
    (" 2026-03-29T01:30:00.000000001+05:30\n", dt.datetime(2026, 3, 28, 20, 0, 0, tzinfo=dt.UTC)),
])
def test_parse_time_reads_restic_nanoseconds_and_offsets(tool, text, expected):
    got = tool.parse_time(text)
    assert got == expected
    assert got.utcoffset() == dt.timedelta(0)


def _manifest(tool, paths):
    built = tool.build_manifest(paths)
    return built[0] if isinstance(built, tuple) else built  # (files, how many were read)


def _restore_copy(src: Path, scratch: Path) -> Path:
    """What a restore to --target scratch produces: the absolute paths below scratch."""
    dest = scratch / str(src).lstrip("/")
    shutil.copytree(src, dest)
    return dest


def test_manifest_matches_an_identical_restore(tool, tmp_path):
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "a.txt").write_text("alpha\n")
    (data / "sub" / "b.bin").write_bytes(bytes(range(256)) * 8)
    files = _manifest(tool, [str(data)])
    assert sorted(files) == [str(data / "a.txt"), str(data / "sub" / "b.bin")]
    assert files[str(data / "sub" / "b.bin")]["size"] == 2048
    _restore_copy(data, tmp_path / "scratch")
    assert tool.compare_manifest(files, tmp_path / "scratch") == []


def test_manifest_names_a_changed_byte_and_a_missing_file(tool, tmp_path):
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "a.txt").write_text("alpha\n")
    (data / "sub" / "b.bin").write_bytes(bytes(range(256)) * 8)
    (data / "c.txt").write_text("gamma\n")
    files = _manifest(tool, [str(data)])
    restored = _restore_copy(data, tmp_path / "scratch")
    blob = bytearray((restored / "sub" / "b.bin").read_bytes())
    blob[1000] ^= 0x01
    (restored / "sub" / "b.bin").write_bytes(bytes(blob))  # same size, one bit flipped
    (restored / "c.txt").unlink()
    problems = tool.compare_manifest(files, tmp_path / "scratch")
    assert problems == [f"{data / 'c.txt'}: missing from the restore", f"{data / 'sub' / 'b.bin'}: checksum differs from the manifest"]


def test_manifest_of_a_path_that_does_not_exist_names_it(tool, tmp_path):
    with pytest.raises(tool.JobError, match=f"path {tmp_path / 'nope'} does not exist"):
        tool.build_manifest([str(tmp_path / "nope")])


def test_url_password_is_found_encoded_and_decoded(tool):
    url = rest_url()
    assert url == "rest:https://restic:p%40ss%2Fw%3Ard%25@172.31.10.31:8000/dns/"
    assert set(tool._url_password(url)) == {"p%40ss%2Fw%3Ard%25", REST_PASSWORD}
    assert tool._url_password("rest:https://172.31.10.31:8000/dns/") == []
    assert tool._url_password("/srv/restic/dns") == []


def test_an_empty_url_password_does_not_garble_messages(tool):
    restic = tool.Restic("secondary", "rest:https://restic:@172.31.10.31:8000/dns/", {"RESTIC_PASSWORD": ""})
    assert restic.scrub("Fatal: wrong password") == "Fatal: wrong password"


def test_scrub_hides_every_form_of_every_secret(tool):
    url = rest_url()
    env = {"RESTIC_PASSWORD": REPO_KEY, "AWS_SECRET_ACCESS_KEY": "s3-Secret", "AWS_ACCESS_KEY_ID": "AKIDPUBLIC"}
    restic = tool.Restic("secondary", url, env)
    text = restic.scrub(f"Head {url}config: 401; key {REPO_KEY}; raw {REST_PASSWORD}; s3 s3-Secret; id AKIDPUBLIC")
    for secret in (REST_PASSWORD, "p%40ss%2Fw%3Ard%25", "p%40ss", REPO_KEY, "s3-Secret"):
        assert secret not in text
    assert "AKIDPUBLIC" in text  # an access key id is not a secret
    assert restic.describe() == "rest:https://restic:***@172.31.10.31:8000/dns/"


def test_scrub_hides_a_secret_that_contains_another(tool):
    restic = tool.Restic("cloud", "s3:https://s3.example/bucket/dns", {"RESTIC_PASSWORD": "abc", "AWS_SECRET_ACCESS_KEY": "abcdef"})
    assert restic.scrub("x abcdef y abc z") == "x *** y *** z"


class FakeRestic:
    """Stands in for subprocess.run: answers from a script, records argv and env."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = []

    def __call__(self, argv, env=None, **kwargs):
        self.calls.append({"argv": list(argv), "env": dict(env or {}), **kwargs})
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        code, stdout, stderr = answer
        return subprocess.CompletedProcess(argv, code, stdout, stderr)


LOCKED = (1, "", "unable to create lock in backend: repository is already locked by PID 77 on backup1 by restic-repo\n")


class _Socket:
    def close(self):
        pass


@pytest.fixture
def fast_locks(tool, monkeypatch):
    monkeypatch.setattr(tool, "LOCK_POLL_S", 0)
    monkeypatch.setattr(tool, "QUIET", True)
    # The repository server answers: these tests are about restic's answers, not the network.
    monkeypatch.setattr(tool.socket, "create_connection", lambda where, timeout: _Socket())


def test_an_unreachable_repository_fails_after_the_grace_period_without_running_restic(tool, monkeypatch, fast_locks):
    tried = []

    def refuse(where, timeout):
        tried.append(where)
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(tool.socket, "create_connection", refuse)
    monkeypatch.setattr(tool, "REACH_GRACE_S", 0)
    fake = FakeRestic([])
    monkeypatch.setattr(tool.subprocess, "run", fake)
    restic = tool.Restic("secondary", rest_url(), {"RESTIC_PASSWORD": REPO_KEY})
    with pytest.raises(tool.JobError) as err:
        restic.run(["snapshots"])
    assert fake.calls == []
    assert tried and tried[-1][1] == 8000
    message = str(err.value)
    assert "cannot reach the secondary repository" in message and "connection refused" in message
    assert REPO_KEY not in message and REST_PASSWORD not in message


def test_a_server_that_starts_within_the_grace_period_is_used(tool, monkeypatch, fast_locks):
    answers = [ConnectionRefusedError(111, "Connection refused"), _Socket()]

    def starting(where, timeout):
        answer = answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    monkeypatch.setattr(tool.socket, "create_connection", starting)
    monkeypatch.setattr(tool.time, "sleep", lambda s: None)
    fake = FakeRestic([(0, "[]", "")])
    monkeypatch.setattr(tool.subprocess, "run", fake)
    assert tool.Restic("secondary", rest_url(), {"RESTIC_PASSWORD": REPO_KEY}).run(["snapshots"]).returncode == 0
    assert answers == [] and len(fake.calls) == 1


def test_run_waits_for_another_jobs_lock_then_succeeds(tool, monkeypatch, fast_locks):
    fake = FakeRestic([LOCKED, LOCKED, (0, "no errors were found\n", "")])
    monkeypatch.setattr(tool.subprocess, "run", fake)
    restic = tool.Restic("secondary", rest_url(), {"RESTIC_PASSWORD": REPO_KEY}, cacert="/etc/twinsite/backup/ca.pem")
    done = restic.run(["check", "--read-data-subset=10%"], timeout=60)
    assert done.returncode == 0
    assert len(fake.calls) == 3
    for call in fake.calls:  # secrets travel in the environment, never in argv
        assert call["argv"] == ["restic", "--cacert", "/etc/twinsite/backup/ca.pem", "check", "--read-data-subset=10%"]
        assert not any(REPO_KEY in a or "p%40ss" in a for a in call["argv"])
        assert call["env"]["RESTIC_PASSWORD"] == REPO_KEY
        assert call["env"]["RESTIC_REPOSITORY"] == rest_url()
        assert call["timeout"] == 60
        # a cache of this user's own: root's runs never leave files the repository owner cannot write
        assert call["env"]["RESTIC_CACHE_DIR"] == str(tool.STATE / f".cache-{os.geteuid()}")


def test_run_gives_up_on_a_lock_after_the_wait_and_scrubs_the_error(tool, monkeypatch, fast_locks):
    monkeypatch.setattr(tool, "LOCK_WAIT_S", -1)
    fake = FakeRestic([(1, "", f"Fatal: {rest_url()}: repository is already locked exclusively, key {REPO_KEY}\n")])
    monkeypatch.setattr(tool.subprocess, "run", fake)
    restic = tool.Restic("secondary", rest_url(), {"RESTIC_PASSWORD": REPO_KEY})
    with pytest.raises(tool.JobError) as err:
        restic.run(["prune"])
    assert len(fake.calls) == 1
    message = str(err.value)
    assert "restic prune on the secondary repository" in message and "already locked" in message
    assert REPO_KEY not in message and "p%40ss" not in message and REST_PASSWORD not in message


def test_run_does_not_retry_other_failures(tool, monkeypatch, fast_locks):
    fake = FakeRestic([(1, "", "Fatal: wrong password or no key found\n")])
    monkeypatch.setattr(tool.subprocess, "run", fake)
    done = tool.Restic("secondary", "/srv/restic/dns", {"RESTIC_PASSWORD": REPO_KEY}).run(["snapshots"], check=False, lock=False)
    assert done.returncode == 1 and len(fake.calls) == 1
    assert fake.calls[0]["argv"][:2] == ["restic", "--no-lock"]


def test_messages_on_timeout_and_refused_credentials_hold_no_secret(tool, monkeypatch, fast_locks):
    url = rest_url()
    fake = FakeRestic([subprocess.TimeoutExpired(["restic"], 5),
                       (1, "", f"Fatal: unable to open config file: Head \"{url[5:]}config\": 401 Unauthorized ({REPO_KEY})\n")])
    monkeypatch.setattr(tool.subprocess, "run", fake)
    restic = tool.Restic("secondary", url, {"RESTIC_PASSWORD": REPO_KEY})
    with pytest.raises(tool.JobError) as slow:
        restic.run(["backup", "/etc/bind"], timeout=5)
    with pytest.raises(tool.JobError) as refused:
        restic.exists()
    assert "did not finish in 5s" in str(slow.value)
    assert "refused the credentials" in str(refused.value)
    for message in (str(slow.value), str(refused.value)):
        assert REPO_KEY not in message and "p%40ss" not in message and REST_PASSWORD not in message
        assert "restic:***@172.31.10.31:8000" in message


# --- the backup_jobs filters ---------------------------------------------------------------------

POLICIES = [
    {"name": "zone-files", "interval_minutes": 60, "paths": ["/etc/bind"], "retention": {"keep_last": 24},
     "copies": ["secondary", "cloud"], "cloud_interval_minutes": 240},
    {"name": "share", "interval_minutes": 120, "paths": ["/srv/share"], "copies": ["secondary"],
     "pre_backup": {"command": "tar -cf /var/backups/share.tar /srv/share", "output": "/var/backups/share.tar"}},
]
SERVICES = [
    {"name": "dns", "hosts": ["dns1"], "backup_policy": "zone-files", "rpo_minutes": 60},
    {"name": "files", "hosts": ["file1"], "backup_policy": "share", "rpo_minutes": 240},
    {"name": "kiosk", "hosts": ["dns1"], "rpo_minutes": 1440},
]


def test_backup_jobs_join_services_and_policies():
    jobs = filters.backup_jobs(SERVICES, POLICIES)
    assert [j["service"] for j in jobs] == ["dns", "files"]  # kiosk has no policy: no job
    dns, files = jobs
    assert dns["copies"] == ["secondary", "cloud"] and dns["cloud_interval_minutes"] == 240 and dns["rpo_minutes"] == 60
    assert files["cloud_interval_minutes"] == 120 and files["retention"] == {} and files["pre_backup"]["output"] == "/var/backups/share.tar"
    assert [j["service"] for j in filters.backup_jobs(SERVICES, POLICIES, host="file1")] == ["files"]
    assert filters.backup_jobs(SERVICES, POLICIES, host="web1") == []


def test_backup_jobs_name_an_unknown_policy():
    with pytest.raises(AnsibleFilterError, match="service 'dns' names backup policy 'zone-file'"):
        filters.backup_jobs([{"name": "dns", "backup_policy": "zone-file"}], POLICIES)


def test_rest_url_percent_encodes_the_login():
    url = filters.restic_rest_url({"url": "https://backup1.example:8000/repos/", "user": "re@stic", "password": "a@b/c"}, "files")
    assert url == "rest:https://re%40stic:a%40b%2Fc@backup1.example:8000/repos/files/"
    with pytest.raises(AnsibleFilterError, match="is not an http"):
        filters.restic_rest_url({"url": "sftp://backup1/srv/restic"}, "files")


def test_units_for_a_policy_with_a_cloud_copy():
    dns = filters.backup_jobs(SERVICES, POLICIES)[0]
    assert filters.backup_job_units(dns, "client") == [{
        "name": "twinsite-backup-dns", "description": "Back up service dns to the secondary site",
        "commands": ["backup dns"], "interval_minutes": 60}]
    units = filters.backup_job_units(dns, "secondary", "*-*-* 03:30:00", "*-*-* 05:00:00", 5, 30)
    assert [u["name"] for u in units] == ["twinsite-prune-dns", "twinsite-replicate-dns", "twinsite-verify-dns"]
    prune, replicate, verify = units
    assert prune["commands"] == ["prune dns"] and prune["calendar"] == "*-*-* 03:30:00"
    assert replicate["commands"] == ["replicate dns --attempts 5 --retry-delay 30"] and replicate["interval_minutes"] == 240
    assert verify["commands"] == ["verify dns --copy secondary", "verify dns --copy cloud"] and verify["calendar"] == "*-*-* 05:00:00"


def test_units_for_a_policy_without_a_cloud_copy():
    files = filters.backup_jobs(SERVICES, POLICIES)[1]
    units = filters.backup_job_units(files, "secondary")
    assert [u["name"] for u in units] == ["twinsite-prune-files", "twinsite-verify-files"]
    assert units[1]["commands"] == ["verify files --copy secondary"]
    assert not any("replicate" in c or "cloud" in c for u in units for c in u["commands"])
    with pytest.raises(AnsibleFilterError, match="side is 'client' or 'secondary'"):
        filters.backup_job_units(files, "cloud")


def test_job_config_points_each_kept_copy_at_its_env_file():
    jobs = filters.backup_jobs(SERVICES, POLICIES)
    client = filters.backup_job_config(jobs, ["secondary"], "/etc/twinsite/backup/secrets")
    assert client[0]["copies"] == {"secondary": {"env_file": "/etc/twinsite/backup/secrets/dns-secondary.env"}}
    secondary = filters.backup_job_config(jobs, ["secondary", "cloud"], "/etc/twinsite/backup/secrets")
    assert sorted(secondary[0]["copies"]) == ["cloud", "secondary"]
    assert sorted(secondary[1]["copies"]) == ["secondary"]  # files keeps no cloud copy
    assert set(secondary[0]) == {"service", "policy", "paths", "pre_backup", "retention", "rpo_minutes", "copies"}


# --- the posture ---------------------------------------------------------------------------------

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)


def ago(minutes: float) -> str:
    return _posture.iso(NOW - dt.timedelta(minutes=minutes))


def verified(copy: str, **over) -> dict:
    return {"action": "verify", "copy": copy, "check_ok": True, "restore_ok": True, "ok": True, "files_checked": 12,
            "mismatches": 0, "finished": ago(30), "restorable_at": ago(30), "last_restorable_at": ago(30), **over}


def estate(secondary_age=20, cloud_age=90, verify_cloud=None, backup=None, lock_tests=None, immutability=None):
    """A healthy dns service (secondary and cloud copies, all verified), with one thing changed."""
    secondary = {"host": "backup1", "time": _posture.iso(NOW), "services": {"dns": {
        "copies": {"secondary": {"reachable": True, "snapshots": 30, "newest": ago(secondary_age)},
                   "cloud": {"reachable": True, "snapshots": 28, "newest": ago(cloud_age)}},
        "records": {"verify-secondary": verified("secondary"), "verify-cloud": verify_cloud or verified("cloud"),
                    "replicate": {"ok": True, "attempts": 1, "finished": ago(90)}}}}}
    client = {"host": "dns1", "services": {"dns": {"copies": {}, "records": {
        "backup": backup or {"ok": True, "finished": ago(secondary_age), "snapshot_id": "0123abcd"},
        "immutability-test": immutability or {"passed": True, "detail": "forget --prune refused"}}}}}
    locks = [{"prefix": "dns/", "passed": True, "delete_refused": True}] if lock_tests is None else lock_tests
    return {"services": [SERVICES[0]], "policies": POLICIES, "secondary_status": secondary, "client_status": [client], "lock_tests": locks}


def judge(**changes) -> dict:
    report = _posture.posture(now=NOW, **estate(**changes))
    assert len(report["services"]) == 1
    return report["services"][0]


def test_a_fully_verified_service_is_3_2_1_1_0():
    dns = judge()
    assert dns["reasons"] == []
    assert dns["copies"] == 3 and dns["media"] == 2
    assert dns["offsite_verified"] and dns["immutable_verified"] and dns["append_only_verified"] and dns["restore_verified"]
    assert dns["rpo_met"] and dns["rule_3_2_1_1_0"]
    assert dns["copy_detail"]["secondary"]["rpo_state"] == "ok"
    assert dns["copy_detail"]["cloud"]["rpo_target_minutes"] == 300  # cloud: replication 240 + backup 60
    assert dns["last_verified_restorable"] == ago(30)


def test_no_bucket_lock_test_means_immutability_is_not_verified():
    dns = judge(lock_tests=[])
    assert not dns["immutable_verified"] and not dns["rule_3_2_1_1_0"]
    assert dns["copies"] == 3  # the copies exist; only their immutability is unproven
    assert any("cloud copy: immutability not proven" in r and "lock test did not run" in r for r in dns["reasons"])
    failed = judge(lock_tests=[{"prefix": "dns/", "passed": False, "error": "DeleteObject succeeded: the bucket has no object lock"}])
    assert not failed["immutable_verified"]
    assert any("no object lock" in r for r in failed["reasons"])


def test_a_failed_cloud_verification_is_not_offsite():
    dns = judge(verify_cloud=verified("cloud", check_ok=False, restore_ok=False, ok=False, mismatches=None,
                                      check_error="Fatal: pack 3f2a... damaged", error="restore failed"))
    assert not dns["offsite_verified"] and not dns["restore_verified"] and not dns["rule_3_2_1_1_0"]
    assert dns["copies"] == 2 and dns["media"] == 1
    assert any(r.startswith("cloud copy: restic check failed") and "damaged" in r for r in dns["reasons"])
    assert any(r.startswith("cloud copy: restore test failed") for r in dns["reasons"])


def test_a_stale_secondary_copy_breaches_the_rpo():
    dns = judge(secondary_age=75)
    assert not dns["rpo_met"]
    assert dns["copy_detail"]["secondary"]["rpo_state"] == "breach"
    assert dns["copy_detail"]["secondary"]["rpo_age_minutes"] == 75.0
    assert any("secondary copy: RPO breached, newest snapshot 75 min old, target 60 min" in r for r in dns["reasons"])
    report = _posture.posture(now=NOW, **estate(secondary_age=75))
    assert report["summary"] == {"services": 1, "compliant": 1, "rpo_breaches": 1}


@pytest.mark.parametrize(("age", "state"), [(47.9, "ok"), (48.5, "warn"), (60, "warn"), (60.5, "breach")])
def test_the_rpo_warns_from_80_percent_of_the_target(age, state):
    dns = judge(secondary_age=age)
    assert dns["copy_detail"]["secondary"]["rpo_state"] == state
    assert dns["rpo_met"] is (state != "breach")


def test_a_copy_without_snapshots_breaches_its_rpo():
    assert _posture.rpo_state(None, NOW, 60) == {"age_minutes": None, "state": "breach"}
    assert _posture.rpo_state(NOW - dt.timedelta(days=9), NOW, None)["state"] == "ok"  # no target, nothing to breach


def test_a_failed_last_backup_is_a_reason():
    dns = judge(backup={"ok": False, "finished": ago(5), "error": "the pre-backup hook of dns failed (exit 2): rndc: connect failed"})
    assert any(r == f"last backup failed at {ago(5)}: the pre-backup hook of dns failed (exit 2): rndc: connect failed"
               for r in dns["reasons"])
    assert dns["last_backup"] == ago(5)


def test_a_failed_append_only_test_is_a_reason():
    dns = judge(immutability={"passed": False, "error": "the repository let a client's credentials remove a snapshot"})
    assert not dns["append_only_verified"]
    assert any(r.startswith("secondary copy: append-only not proven") and "remove a snapshot" in r for r in dns["reasons"])


def test_a_service_without_a_policy_is_one_copy_and_says_why():
    model = estate()
    model["services"] = [SERVICES[0], SERVICES[2]]
    report = _posture.posture(now=NOW, **model)
    kiosk = next(s for s in report["services"] if s["name"] == "kiosk")
    assert kiosk["copies"] == 1 and not kiosk["rule_3_2_1_1_0"] and not kiosk["rpo_met"]
    assert kiosk["reasons"] == ["no backup policy: the service is not backed up"]
    assert report["summary"] == {"services": 2, "compliant": 1, "rpo_breaches": 1}
    assert "kiosk" in _posture.render_html(report)


def test_posture_reads_the_policy_key_the_filter_reads():
    model = estate()
    model["services"] = [{"name": "dns", "hosts": ["dns1"], "policy": "zone-files", "rpo_minutes": 60}]
    assert filters.backup_jobs(model["services"], POLICIES)[0]["policy"] == "zone-files"
    assert _posture.posture(now=NOW, **model)["services"][0]["rule_3_2_1_1_0"]
