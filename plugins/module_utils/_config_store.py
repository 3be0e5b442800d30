# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The config store: device configurations in a git repository, one commit per backup. Used by the
config_store module and by switch_l2 for CLI switches (which run on the controller, many at once:
a lock file serialises the commits, which would otherwise collide on git's index lock; within one
process, GroupCommit puts the files of the threads waiting on each other into one commit)."""

from __future__ import annotations

import fcntl
import os
import re
import subprocess
import threading

NAME = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")


class StoreError(Exception):
    pass


def _git(path: str, *args: str) -> str:
    proc = subprocess.run(["git", "-C", path, "-c", "user.name=twinsite", "-c", "user.email=twinsite@localhost", *args],  # noqa: S603,S607
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise StoreError(f"git {args[0]} in the config store {path} failed: {(proc.stderr or proc.stdout).strip()}")
    return proc.stdout.strip()


def changed_files(path: str, files: list[dict]) -> list[str]:
    """The names of ``files`` ({name, content}) whose content differs from the store's."""
    out = []
    for i, item in enumerate(files):
        name = item.get("name")
        if not isinstance(name, str) or not NAME.match(name) or ".." in name.split("/"):
            raise StoreError(f"files[{i}].name: expected a relative file name such as core1.json, found {name!r}")
        if not isinstance(item.get("content"), str):
            raise StoreError(f"files[{i}].content: expected the file's text, found {type(item.get('content')).__name__}")
        try:
            with open(os.path.join(path, name), encoding="utf-8") as handle:
                if handle.read() == item["content"]:
                    continue
        except FileNotFoundError:
            pass
        out.append(name)
    return out


def head(path: str) -> str:
    if not os.path.isdir(os.path.join(path, ".git")):
        return ""
    try:
        return _git(path, "rev-parse", "HEAD")
    except StoreError:
        return ""  # a repository without a commit yet


def commit(path: str, files: list[dict], message: str) -> tuple[str, list[str]]:
    """Write the files that changed and commit them; (commit id or HEAD, names written)."""
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, ".twinsite-store.lock"), "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        written = changed_files(path, files)
        if not written:
            return head(path), []
        if not os.path.isdir(os.path.join(path, ".git")):
            _git(path, "init", "-q")
            with open(os.path.join(path, ".git", "info", "exclude"), "a", encoding="utf-8") as exclude:
                exclude.write(".twinsite-store.lock\n")
        for item in files:
            if item["name"] in written:
                target = os.path.join(path, item["name"])
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target + ".tmp", "w", encoding="utf-8") as handle:
                    handle.write(item["content"])
                os.replace(target + ".tmp", target)
        _git(path, "add", "--", *written)
        _git(path, "commit", "-q", "-m", message, "--", *written)
        return _git(path, "rev-parse", "HEAD"), written


class GroupCommit:
    """``commit`` for many threads of one process (switch_l2's fleet): a thread whose files wait
    while another thread's commit runs is committed with every other file waiting then, in one
    commit. Each caller returns only once its own file is in the store, as with ``commit``; 50
    switches backed up at once make a few commits, not 50 one after another (3 git runs each)."""

    def __init__(self, path: str, describe):
        self.path = path
        self.describe = describe  # [switch names of a commit] -> its message
        self.running = threading.Lock()  # held while git runs
        self.waiting: list[tuple[object, str, dict]] = []  # (ticket, switch, file)
        self.results: dict[object, tuple] = {}  # ticket -> (commit id, names written) or the StoreError
        self.guard = threading.Lock()  # for waiting and results

    def commit(self, switch: str, file: dict) -> tuple[str, list[str]]:
        ticket = object()
        with self.guard:
            self.waiting.append((ticket, switch, file))
        with self.running:
            with self.guard:
                if ticket not in self.results:  # not yet committed by the thread before: commit all that wait
                    batch, self.waiting = self.waiting, []
                else:
                    batch = []
            if batch:
                try:
                    outcome = commit(self.path, [f for _, _, f in batch], self.describe([s for _, s, _ in batch]))
                except StoreError as exc:
                    outcome = exc
                with self.guard:
                    self.results.update((t, outcome) for t, _, _ in batch)
        with self.guard:
            outcome = self.results.pop(ticket)
        if isinstance(outcome, StoreError):
            raise outcome
        return outcome
