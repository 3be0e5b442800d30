"""twinsite-backup's manifest (checksums reused for unchanged files) and its repository creation on
first use, against local restic repositories when restic is installed."""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import os
import shutil
import subprocess
import types
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "roles" / "restic_jobs" / "files" / "twinsite-backup"


def load_tool(state: Path, config: Path | None = None) -> types.ModuleType:
    os.environ["TWINSITE_BACKUP_STATE"] = str(state)
    os.environ["TWINSITE_BACKUP_CONFIG"] = str(config or state / "jobs.json")
    loader = importlib.machinery.SourceFileLoader("twinsite_backup", str(TOOL))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("twinsite_backup", loader))
    loader.exec_module(module)
    return module


def tree(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("alpha\n")
    (root / "sub" / "b.bin").write_bytes(os.urandom(4096))
    (root / "link").symlink_to(root / "a.txt")
    (root / "dirlink").symlink_to(root / "sub")
    return root


def one_job(tmp_path: Path, paths: list[Path], repositories: dict[str, str], retention: dict | None = None):
    """twinsite-backup loaded with one job, service "svc", backing up paths to one repository per
    copy (secondary, cloud); the copies' env files are returned, to change a password."""
    assert shutil.which("restic"), "restic is not installed: run `make setup`"  # without it nothing is proven: fail
    state = tmp_path / "state"
    state.mkdir()
    envs = {copy: tmp_path / f"{copy}.env" for copy in repositories}
    for copy, location in repositories.items():
        envs[copy].write_text(f"RESTIC_REPOSITORY={location}\nRESTIC_PASSWORD=unit-test-pw\n")
    config = {"host": "unit", "jobs": [{"service": "svc", "paths": [str(p) for p in paths], "pre_backup": {}, "retention": retention or {},
                                        "copies": {copy: {"env_file": str(env)} for copy, env in envs.items()}}]}
    (state / "jobs.json").write_text(json.dumps(config))
    tool = load_tool(state)
    tool.QUIET = True
    return tool, envs


def test_manifest_reuses_unchanged_files_only(tmp_path):
    tool = load_tool(tmp_path / "state")
    data = tree(tmp_path / "data")
    first, hashed = tool.build_manifest([str(data)])
    assert sorted(first) == [str(data / "a.txt"), str(data / "sub" / "b.bin")]  # no symlink followed
    assert hashed == 2
    assert first[str(data / "a.txt")]["sha256"] == tool.sha256_file(data / "a.txt")

    again, hashed = tool.build_manifest([str(data)], first)
    assert (again, hashed) == (first, 0)

    # Same size, new content: mtime and ctime move, so the file is read again.
    (data / "a.txt").write_text("omega\n")
    changed, hashed = tool.build_manifest([str(data)], first)
    assert hashed == 1
    assert changed[str(data / "a.txt")]["sha256"] == tool.sha256_file(data / "a.txt") != first[str(data / "a.txt")]["sha256"]

    # Content put back with the old mtime: ctime still differs, so it is read again.
    st = os.stat(data / "a.txt")
    os.utime(data / "a.txt", ns=(st.st_atime_ns, first[str(data / "a.txt")]["mtime_ns"]))
    _, hashed = tool.build_manifest([str(data)], changed)
    assert hashed == 1

    # A single file as a path, and a missing path.
    one, hashed = tool.build_manifest([str(data / "a.txt")], {})
    assert list(one) == [str(data / "a.txt")] and hashed == 1
    with pytest.raises(tool.JobError, match="does not exist"):
        tool.build_manifest([str(tmp_path / "nope")])


def test_parallel_manifest_equals_a_serial_one(tmp_path):
    """Threads read the files; the manifest is the one a single reader makes, entry for entry and in order."""
    tool = load_tool(tmp_path / "state")
    data = tree(tmp_path / "data")
    for n in range(40):
        # Empty, small, exactly one block, and a few blocks plus a tail: every way readinto ends.
        size = [0, 1, 2047, 4096, 1 << 20, (3 << 20) + 17][n % 6]
        (data / "sub" / f"f{n:02d}.bin").write_bytes(os.urandom(size))
    serial, hashed_serial = tool.build_manifest([str(data), str(data / "a.txt")], workers=1)
    parallel, hashed_parallel = tool.build_manifest([str(data), str(data / "a.txt")], workers=4)
    assert hashed_serial == hashed_parallel == 43
    assert list(parallel.items()) == list(serial.items())
    for name, entry in serial.items():
        assert entry["sha256"] == hashlib.sha256(Path(name).read_bytes()).hexdigest()
    # Reuse works the same with threads: only the changed file is read again.
    (data / "sub" / "f07.bin").write_bytes(b"changed")
    again, hashed = tool.build_manifest([str(data)], parallel, workers=4)
    assert hashed == 1 and again[str(data / "sub" / "f07.bin")]["sha256"] == hashlib.sha256(b"changed").hexdigest()
    assert {k: v for k, v in again.items() if not k.endswith("f07.bin")} == {
        k: v for k, v in parallel.items() if k in again and not k.endswith("f07.bin")}


def test_a_file_that_vanishes_while_hashed_fails_the_manifest(tmp_path, monkeypatch):
    tool = load_tool(tmp_path / "state")
    data = tree(tmp_path / "data")
    real = tool.sha256_file

    def flaky(path):
        if path.name == "b.bin":
            raise FileNotFoundError(2, "No such file or directory", str(path))
        return real(path)

    monkeypatch.setattr(tool, "sha256_file", flaky)
    with pytest.raises(FileNotFoundError):
        tool.build_manifest([str(data)], workers=2)


def test_backup_creates_the_repository_once_and_the_restore_matches_the_manifest(tmp_path):
    state, data, repo = tmp_path / "state", tree(tmp_path / "data"), tmp_path / "repo"
    tool, envs = one_job(tmp_path, [data], {"secondary": repo}, retention={"keep_last": 3})
    env = envs["secondary"]

    def backup(*extra):
        result = tool.cmd_backup(tool.load_config(), tool.argparse.Namespace(service="svc", rehash="--rehash" in extra))
        assert result["ok"], result.get("error")
        return result

    first = backup()
    assert (repo / "config").is_file()
    assert first["manifest_hashed"] == 2 and first["manifest_changed"]
    # Nothing changed: the manifest is left as it was (restic then skips it too), "taken" included.
    manifest_file = state / "svc" / "manifest" / tool.MANIFEST_NAME
    before = (manifest_file.stat().st_mtime_ns, manifest_file.read_text())
    again = backup()
    assert again["manifest_hashed"] == 0 and not again["manifest_changed"]
    assert (manifest_file.stat().st_mtime_ns, manifest_file.read_text()) == before
    (data / "new.txt").write_text("new\n")
    changed = backup()
    assert changed["manifest_hashed"] == 1 and changed["manifest_changed"]
    assert str(data / "new.txt") in json.loads(manifest_file.read_text())["files"]
    assert backup("--rehash")["manifest_hashed"] == 3

    # The restore test's contract: the newest snapshot, restored, matches the manifest it holds.
    target = tmp_path / "restore"
    subprocess.run(["restic", "-r", str(repo), "restore", "latest", "--target", str(target)], check=True,
                   env={**os.environ, "RESTIC_PASSWORD": "unit-test-pw", "RESTIC_CACHE_DIR": str(tmp_path / "cache")},
                   capture_output=True)
    manifest = json.loads(next(target.rglob(tool.MANIFEST_NAME)).read_text())
    assert len(manifest["files"]) == 3
    assert tool.compare_manifest(manifest["files"], target) == []

    # A wrong password is reported as such, not taken for a missing repository.
    env.write_text(f"RESTIC_REPOSITORY={repo}\nRESTIC_PASSWORD=not-the-password\n")
    result = tool.cmd_backup(tool.load_config(), tool.argparse.Namespace(service="svc", rehash=False))
    assert not result["ok"] and "wrong password" in result["error"]


def test_prune_keeps_the_last_n_of_the_service_whichever_host_backed_it_up(tmp_path):
    """After a failover and failback the service's repository holds snapshots from its recovery host
    too: keep_last counts them with the production host's, not as a group of their own."""
    data, repo = tree(tmp_path / "data"), tmp_path / "repo"
    tool, _ = one_job(tmp_path, [data], {"secondary": repo}, retention={"keep_last": 2})
    config_file = tmp_path / "state" / "jobs.json"
    for host in ("unit", "unit", "rec1", "rec1", "unit"):
        config = json.loads(config_file.read_text())
        config_file.write_text(json.dumps({**config, "host": host}))
        (data / "a.txt").write_text(f"written on {host} {os.urandom(4).hex()}\n")
        assert tool.cmd_backup(tool.load_config(), tool.argparse.Namespace(service="svc", rehash=False))["ok"]
    pruned = tool.cmd_prune(tool.load_config(), tool.argparse.Namespace(service="svc"))
    assert pruned["ok"] and pruned["snapshots_removed"] == 3, pruned
    left = tool.Restic("secondary", str(repo), {"RESTIC_PASSWORD": "unit-test-pw"}).snapshots()
    assert sorted(s["hostname"] for s in left) == ["rec1", "unit"], left  # the newest two, of either host


def test_restore_puts_data_in_place_only_when_it_matches_the_manifest(tmp_path, monkeypatch):
    """`restore` (DR drills, failover): the newest snapshot goes in place under --target, files the
    backup does not have are removed; a snapshot whose files differ from its manifest puts nothing in
    place; an unreachable copy falls back to the next one at once (only the last copy is waited
    for), a corrupt one does not fall back."""
    assert shutil.which("rsync"), "rsync is not installed: run `make setup`"
    state, data, repo = tmp_path / "state", tree(tmp_path / "data"), tmp_path / "repo"
    tool, _ = one_job(tmp_path, [data], {"secondary": repo, "cloud": "rest:http://127.0.0.1:9/nothing"})
    assert tool.cmd_backup(tool.load_config(), tool.argparse.Namespace(service="svc", rehash=False))["ok"]

    def restore(*copies, target):
        return tool.cmd_restore(tool.load_config(), tool.argparse.Namespace(
            service="svc", copy=list(copies), snapshot=None, target=str(target), staging=str(tmp_path / "staging")))

    target = tmp_path / "recovered"
    stray = target / str(data).lstrip("/") / "stray.txt"
    stray.parent.mkdir(parents=True)
    stray.write_text("not in the backup\n")
    slept = []  # the reachability check's waits (1 s each); subprocess's own short polls are not counted
    real_sleep = tool.time.sleep
    monkeypatch.setattr(tool.time, "sleep", lambda seconds: (slept.append(seconds) if seconds >= 1 else None) or real_sleep(min(seconds, 0.01)))
    monkeypatch.setattr(tool, "REACH_GRACE_S", 0.3)
    # The cloud copy cannot be reached: the secondary one is used, without waiting for the cloud.
    result = restore("cloud", "secondary", target=target)
    assert result["ok"], result
    assert slept == [], "a copy with another one left to try was waited for"
    assert result["copy"] == "secondary" and len(result["snapshot_id"]) == 8 and result["files_checked"] == 2
    assert "cloud" in result["tried"][0]["copy"]
    restored = target / str(data).lstrip("/")
    assert (restored / "a.txt").read_text() == "alpha\n"
    assert hashlib.sha256((restored / "sub" / "b.bin").read_bytes()).digest() == hashlib.sha256((data / "sub" / "b.bin").read_bytes()).digest()
    assert not stray.exists()
    assert not any((tmp_path / "staging").iterdir())  # staging emptied
    assert "moved" not in result  # data was in place already: synced with rsync

    # A recovery host with nothing in place yet (or an empty directory): the checked tree is renamed
    # into place, not copied a second time.
    rsyncs = []
    real_run = subprocess.run
    monkeypatch.setattr(tool.subprocess, "run", lambda argv, *a, **kw: (rsyncs.append(argv) if argv[0] == "rsync" else None) or real_run(argv, *a, **kw))
    for fresh in (tmp_path / "fresh", tmp_path / "empty"):
        if fresh.name == "empty":
            (fresh / str(data).lstrip("/")).mkdir(parents=True)
        moved = restore("secondary", target=fresh)
        assert moved["ok"] and moved.get("moved") == 1, moved
        in_place = fresh / str(data).lstrip("/")
        assert (in_place / "a.txt").read_text() == "alpha\n" and (in_place / "sub" / "b.bin").read_bytes() == (data / "sub" / "b.bin").read_bytes()
        assert (in_place / "link").is_symlink() and os.readlink(in_place / "link") == str(data / "a.txt")
    assert rsyncs == []
    assert not any((tmp_path / "staging").iterdir())
    monkeypatch.setattr(tool.subprocess, "run", real_run)

    # The last copy to try gets the grace period (a repository server that is starting).
    alone = restore("cloud", target=tmp_path / "cloud-only")
    assert not alone["ok"] and "cannot reach the cloud repository" in alone["error"], alone
    assert slept, "the last copy was not given time to answer"

    # Data that no longer matches its manifest: nothing is put in place, and the next copy is not tried.
    (data / "a.txt").write_text("changed after the manifest\n")
    manifest_file = state / "svc" / "manifest" / tool.MANIFEST_NAME
    manifest = json.loads(manifest_file.read_text())
    subprocess.run(["restic", "-r", str(repo), "backup", str(data), str(manifest_file.parent)], check=True, capture_output=True,
                   env={**os.environ, "RESTIC_PASSWORD": "unit-test-pw", "RESTIC_CACHE_DIR": str(tmp_path / "cache")})
    assert json.loads(manifest_file.read_text()) == manifest
    target2 = tmp_path / "recovered2"
    result = restore("secondary", "cloud", target=target2)
    assert not result["ok"]
    assert "is corrupt" in result["error"] and "a.txt" in result["error"]
    assert [t["copy"] for t in result["tried"]] == ["secondary"]
    assert not target2.exists()


@pytest.mark.parametrize(("answer", "passed"), [(403, True), (200, False)])
def test_the_append_only_proof_sends_one_delete_with_the_clients_login(tmp_path, answer, passed):
    """The immutability test DELETEs a snapshot file once, as restic's REST backend would, with the
    client's own login: a 403 is the proof; a server that lets it through is NOT append-only."""
    import http.server
    import threading

    seen = []

    class Server(http.server.BaseHTTPRequestHandler):
        def do_DELETE(self):  # noqa: N802 - http.server's naming
            seen.append((self.path, self.headers.get("Authorization")))
            self.send_response(answer)
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Server)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        tool = load_tool(tmp_path)
        restic = tool.Restic("secondary", f"rest:http://dns:s%40cret@127.0.0.1:{httpd.server_port}/dns/", {"RESTIC_PASSWORD": "x"})
        snaps = [{"id": "a" * 64, "time": "2026-11-22T10:00:00Z"}]
        calls = []
        # Before the DELETE the snapshot is there; afterwards only if the server refused.
        restic.snapshots = lambda tag=None: calls.append(1) or (list(snaps) if len(calls) == 1 or answer == 403 else [])
        tool.repo = lambda config, job, copy: restic
        tool.record = lambda service, action, out: out
        result = tool.cmd_immutability_test({"jobs": [{"service": "dns"}]}, types.SimpleNamespace(service="dns"))
    finally:
        httpd.shutdown()
    assert seen == [(f"/dns/snapshots/{'a' * 64}", "Basic ZG5zOnNAY3JldA==")]  # dns:s@cret, percent-decoded
    assert result["passed"] is passed, result
    assert ("NOT append-only" in result.get("error", "")) is (not passed)


def test_status_opens_each_repository_once_and_tells_a_missing_one_from_a_wrong_password(tmp_path, monkeypatch):
    # restic opens a repository with a key derivation calibrated to about half a second, on every
    # process: a drill's preflight waits for `status`, so it asks each copy once.
    data = tree(tmp_path / "data")
    tool, envs = one_job(tmp_path, [data], {"secondary": tmp_path / "repo", "cloud": tmp_path / "not-created-yet"})
    backed_up = tool.cmd_backup(tool.load_config(), tool.argparse.Namespace(service="svc", rehash=False))
    assert backed_up["ok"], backed_up.get("error")  # to the secondary copy; the cloud copy is not created yet

    restic_runs: list[list[str]] = []
    real_run = subprocess.run

    def counting(argv, *args, **kwargs):
        if argv and argv[0] == "restic":
            restic_runs.append([a for a in argv[1:] if not a.startswith("-")][:1])
        return real_run(argv, *args, **kwargs)

    monkeypatch.setattr(tool.subprocess, "run", counting)
    status = tool.cmd_status(tool.load_config(), tool.argparse.Namespace(service=None))
    copies = status["services"]["svc"]["copies"]
    assert copies["secondary"]["reachable"] and copies["secondary"]["snapshots"] == 1
    assert backed_up["started"] <= copies["secondary"]["newest"] <= backed_up["finished"]
    assert copies["cloud"] == {"reachable": True, "snapshots": 0}
    # one listing per copy, and the question "does it exist?" only for the copy whose listing failed
    assert sorted(restic_runs) == [["cat"], ["snapshots"], ["snapshots"]]

    envs["secondary"].write_text(f"RESTIC_REPOSITORY={tmp_path / 'repo'}\nRESTIC_PASSWORD=not-the-password\n")
    status = tool.cmd_status(tool.load_config(), tool.argparse.Namespace(service=None))
    secondary = status["services"]["svc"]["copies"]["secondary"]
    assert not secondary["reachable"] and "wrong password" in secondary["error"], secondary


@pytest.mark.parametrize("in_place_already", [False, True])
def test_a_path_inside_another_is_restored_with_it_whichever_order_the_policy_lists_them(tmp_path, in_place_already):
    # The child listed first: renamed into place before its parent, the parent's rsync --delete
    # would remove it again. Parents go first, and take their children with them.
    data = tree(tmp_path / "data")
    tool, _ = one_job(tmp_path, [data / "sub", data], {"secondary": tmp_path / "repo"})
    assert tool.cmd_backup(tool.load_config(), tool.argparse.Namespace(service="svc", rehash=False))["ok"]
    target = tmp_path / "recovered"
    in_place = target / str(data).lstrip("/")
    if in_place_already:  # a failback: older data is there, and is synced over
        (in_place / "sub").mkdir(parents=True)
        (in_place / "sub" / "old.txt").write_text("gone after the restore\n")
    result = tool.cmd_restore(tool.load_config(), tool.argparse.Namespace(
        service="svc", copy=["secondary"], snapshot=None, target=str(target), staging=str(tmp_path / "staging")))
    assert result["ok"], result
    assert (in_place / "a.txt").read_text() == "alpha\n"
    assert (in_place / "sub" / "b.bin").read_bytes() == (data / "sub" / "b.bin").read_bytes()
    assert not (in_place / "sub" / "old.txt").exists()
    assert ("moved" in result) is not in_place_already
