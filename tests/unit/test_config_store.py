"""The config store's commits from many threads at once (switch_l2's fleet): every caller returns
only once its own file is committed, the files of callers that waited go in together, and a failed
commit fails every caller whose file it held."""

from __future__ import annotations

import subprocess
import threading
import time

import pytest

from ansible_collections.twinsite.dc.plugins.module_utils import _config_store
from ansible_collections.twinsite.dc.plugins.module_utils._config_store import GroupCommit, StoreError


def git(store, *args) -> str:
    return subprocess.run(["git", "-C", str(store), *args], capture_output=True, text=True, check=True).stdout


def commit_from_threads(group: GroupCommit, names: list[str]) -> dict:
    results, start = {}, threading.Barrier(len(names))

    def one(name):
        start.wait()
        try:
            results[name] = group.commit(name, {"name": f"{name}.cfg", "content": f"hostname {name}\n"})
        except StoreError as exc:
            results[name] = exc

    threads = [threading.Thread(target=one, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_twenty_threads_make_a_few_commits_and_each_returns_a_commit_that_holds_its_file(tmp_path, monkeypatch):
    real, runs = _config_store.commit, []

    def slow_commit(path, files, message):  # git takes a while: the others queue up behind it
        runs.append([f["name"] for f in files])
        time.sleep(0.05)
        return real(path, files, message)

    monkeypatch.setattr(_config_store, "commit", slow_commit)
    store = tmp_path / "store"
    group = GroupCommit(str(store), lambda switches: f"before merged: {','.join(sorted(switches))}")
    names = [f"sw{i:02d}" for i in range(1, 21)]
    results = commit_from_threads(group, names)
    for name in names:
        commit_id, written = results[name]
        assert f"{name}.cfg" in written
        # the commit it returned already holds its file (the switch's change goes out after this)
        assert git(store, "show", f"{commit_id}:{name}.cfg") == f"hostname {name}\n"
    assert sorted(n for run in runs for n in run) == sorted(f"{n}.cfg" for n in names)  # each file once
    assert len(runs) < len(names) / 2, runs
    log = git(store, "log", "--format=%s").splitlines()
    assert len(log) == len(runs) and any("," in line for line in log)


def test_a_commit_that_fails_fails_every_caller_whose_file_it_held(tmp_path, monkeypatch):
    def broken(path, files, message):
        time.sleep(0.05)
        raise StoreError(f"git commit in the config store {path} failed: disk full")

    monkeypatch.setattr(_config_store, "commit", broken)
    group = GroupCommit(str(tmp_path / "store"), lambda switches: "before merged")
    results = commit_from_threads(group, ["sw01", "sw02", "sw03", "sw04"])
    assert all(isinstance(r, StoreError) and "disk full" in str(r) for r in results.values()), results
    assert not group.results and not group.waiting  # nothing left behind for a later caller


def test_one_caller_alone_makes_one_commit_with_its_message(tmp_path):
    store = tmp_path / "store"
    group = GroupCommit(str(store), lambda switches: f"{switches[0]}: before merged")
    commit_id, written = group.commit("accsw1", {"name": "accsw1.cfg", "content": "hostname accsw1\n"})
    assert written == ["accsw1.cfg"] and git(store, "log", "--format=%H %s").split() == [commit_id, "accsw1:", "before", "merged"]
    with pytest.raises(StoreError, match="expected a relative file name"):
        group.commit("bad", {"name": "../x.cfg", "content": ""})
