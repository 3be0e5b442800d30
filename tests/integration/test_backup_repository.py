"""The secondary room's restic repository takes backups over verified TLS and refuses deletes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import uuid

import pytest
import requests
from test_site_playbook import run_playbook

API_V2 = "application/vnd.x.restic.rest.v2"


@pytest.fixture(scope="module")
def repository(lab, tmp_path_factory):
    converge = run_playbook("backup.yml", tmp_path_factory.mktemp("backup"), "-e", "twinsite_backup_run_now=false")
    assert converge.returncode == 0, converge.stdout[-3000:]
    backup1 = next(c for c in lab.model["containers"] if c["host"] == "backup1")
    address = next(i["address"] for i in backup1["interfaces"] if i["network"].endswith("-backup"))
    return f"rest:https://restic:lab-restic-rest-pw@{address}:8000/test-{uuid.uuid4().hex[:8]}"


def restic(lab, repo: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "RESTIC_REPOSITORY": repo, "RESTIC_PASSWORD": "test-repo-key", "RESTIC_CACHE_DIR": "/tmp/twinsite-test-restic-cache"}
    result = subprocess.run(["restic", "--cacert", str(lab.state.ca / "ca.pem"), *args], env=env, capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, f"restic {' '.join(args)}: {result.stderr}"
    return result


def test_backup_restores_identically_and_deletes_are_refused(lab, repository, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "notices.sql").write_bytes(os.urandom(200_000))
    (data / "zone").write_text("portal IN A 172.31.20.43\n")
    restic(lab, repository, "init")
    restic(lab, repository, "backup", str(data))
    snapshots = json.loads(restic(lab, repository, "snapshots", "--json").stdout)
    assert len(snapshots) == 1

    target = tmp_path / "restore"
    restic(lab, repository, "restore", "latest", "--target", str(target))
    for name in ("notices.sql", "zone"):
        original = hashlib.sha256((data / name).read_bytes()).hexdigest()
        restored = hashlib.sha256((target / str(data).lstrip("/") / name).read_bytes()).hexdigest()
        assert restored == original, name

    # Append-only: a client (or ransomware with its credentials) cannot delete what restic's
    # forget/prune would delete. Asked directly over the REST protocol, because restic itself
    # retries a 403 for about 45 s before giving up.
    base = repository.removeprefix("rest:").replace("restic:lab-restic-rest-pw@", "")
    auth = ("restic", "lab-restic-rest-pw")
    ca = str(lab.state.ca / "ca.pem")
    for kind in ("snapshots", "keys"):
        listed = requests.get(f"{base}/{kind}/", auth=auth, verify=ca, headers={"Accept": API_V2}, timeout=10)
        assert listed.status_code == 200 and listed.json(), kind
        name = listed.json()[0]["name"]
        refused = requests.delete(f"{base}/{kind}/{name}", auth=auth, verify=ca, timeout=10)
        assert refused.status_code == 403, f"DELETE {kind}/{name} answered {refused.status_code}"
    assert len(json.loads(restic(lab, repository, "snapshots", "--json").stdout)) == 1
    restic(lab, repository, "check")


def test_wrong_password_is_refused(lab, repository):
    wrong = repository.replace("lab-restic-rest-pw", "not-the-password")
    result = restic(lab, wrong, "snapshots", check=False)
    assert result.returncode != 0
    assert "401" in result.stderr or "Unauthorized" in result.stderr, result.stderr
