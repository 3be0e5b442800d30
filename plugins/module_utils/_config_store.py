# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The config store: device configurations in a git repository, one commit per backup. Used by the
config_store module and by switch_l2 for CLI switches (which run on the controller, many at once:
a lock file serialises the commits, which would otherwise collide on git's index lock)."""

from __future__ import annotations

import fcntl
import os
import re
import subprocess

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
