"""The execution environment (execution-environment.yml) renders, offline, into a build context that
installs this checkout's collection with the versions CI tests, and the collection tarball in it
holds what a drill needs and nothing the repository keeps out of git: the lab's keys, caches, the
switches' config store, the inventory's vault password. (Building the image itself needs the
Fedora base image from quay.io, which this machine cannot reach: docs/dr-scheduling.md.)"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
GALAXY = yaml.safe_load((REPO / "galaxy.yml").read_text())
# Files a working checkout has besides git's, none of which may reach the image.
LEFT_OUT = [".lab/ssh/id_ed25519", ".lab/ca/ca.key", ".ansible/collections/ansible_collections/twinsite/dc/galaxy.yml",
            "backups/switches/accsw1.cfg", ".pytest_cache/v/cache/nodeids", ".hypothesis/constants/x",
            "plugins/module_utils/__pycache__/_switching.cpython-311.pyc", "reports/drills/history.jsonl",
            "logs/audit.jsonl", ".venv/bin/python"]
NEEDED = ["playbooks/dr_drill.yml", "playbooks/awx.yml", "roles/dr_drill/tasks/recover.yml", "roles/restic_jobs/files/twinsite-backup",
          "plugins/modules/drill_ledger.py", "plugins/strategy/mitogen_linear.py", "meta/runtime.yml", "ansible.cfg"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The checkout's git files plus the usual untracked ones, its collection tarball, and the EE's
    build context rendered from them."""
    tmp = tmp_path_factory.mktemp("ee")
    checkout = tmp / "checkout"
    tracked = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, text=True, check=True).stdout
    for name in filter(None, tracked.split("\0")):
        source = REPO / name
        if source.is_file() and not source.is_symlink():
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, checkout / name)
    for name in LEFT_OUT:
        (checkout / name).parent.mkdir(parents=True, exist_ok=True)
        (checkout / name).write_text("must not be in the image\n")
    cache = checkout / ".cache" / "ee"
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", "--force", "--output-path", str(cache), str(checkout)],
                   capture_output=True, text=True, check=True)
    tarballs = list(cache.glob("twinsite-dc-*.tar.gz"))
    assert len(tarballs) == 1, tarballs
    context = tmp / "context"
    done = subprocess.run([str(BIN / "ansible-builder"), "create", "-f", str(checkout / "execution-environment.yml"),
                           "--context", str(context)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    with tarfile.open(tarballs[0]) as tar:
        members = set(tar.getnames())
        manifest = json.load(tar.extractfile("MANIFEST.json"))
    return {"members": members, "manifest": manifest, "context": context, "tarball": tarballs[0]}


def test_the_collection_in_the_image_holds_what_a_drill_runs(built):
    info = built["manifest"]["collection_info"]
    assert (info["namespace"], info["name"], info["version"]) == (GALAXY["namespace"], GALAXY["name"], GALAXY["version"])
    missing = [name for name in NEEDED if name not in built["members"]]
    assert not missing, missing


def test_the_collection_in_the_image_leaves_out_keys_caches_configs_and_the_vault_password(built):
    top = tuple(f"{name.split('/')[0]}/" for name in LEFT_OUT if not name.startswith("plugins/"))  # whole directories
    leaked = sorted(m for m in built["members"] if m in LEFT_OUT or f"{m}/".startswith(top))
    leaked += sorted(m for m in built["members"] if m.endswith((".vault-password", ".pyc")) or "__pycache__" in m)
    assert not leaked, leaked
    assert "inventory/lab/group_vars/all/vault.yml" in built["members"]  # the encrypted model stays; its key does not


def test_the_build_context_installs_this_collection_with_the_versions_ci_tests(built):
    context = built["context"]
    containerfile = (context / "Containerfile").read_text()
    for package in ("ansible-core", "ansible-runner"):  # the EE runs what CI ran
        assert f"{package}=={importlib.metadata.version(package)}" in containerfile, package
    assert (context / "_build" / "collection" / built["tarball"].name).read_bytes() == built["tarball"].read_bytes()
    assert "ansible-galaxy collection install --offline" in containerfile and "twinsite-dc-*.tar.gz" in containerfile
    # pip inside the image is held to the versions of constraints.txt, the file CI installs from
    assert (context / "_build" / "configs" / "constraints.txt").read_text() == (REPO / "constraints.txt").read_text()
    assert "ENV PIP_CONSTRAINT=/tmp/twinsite-constraints.txt" in containerfile
    assert (context / "_build" / "requirements.txt").read_text() == (REPO / "requirements.txt").read_text()
