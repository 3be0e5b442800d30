# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The DR drill's ledger: a JSON file on the controller listing everything the drill created, so that
cleanup works after a failure midway or a killed run, and a second cleanup finds nothing to do.

Pure Python (no Ansible). Several hosts' tasks (delegate_to: localhost) write at the same time, so
each change is read-modify-write under an exclusive flock on ``<path>.lock`` and lands by
``os.replace`` of a temporary file: a reader sees the old ledger or the new one, never half of one.
The file is ``{"version": 1, "entries": [...]}``, entries in recording order.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import tempfile

from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError

VERSION = 1


class LedgerError(TwinsiteError):
    """A ledger that cannot be read or written, or entries that cannot be recorded."""


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def read(path: str) -> list:
    """The entries of the ledger at ``path``; none when the file does not exist (nothing recorded yet)."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise LedgerError(f"cannot read the drill ledger {path}: {exc.strerror}") from None
    if not text.strip():
        return []
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise _corrupt(path, f"it is not JSON ({exc})") from None
    entries = data.get("entries") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not all(isinstance(e, dict) and isinstance(e.get("id"), str) for e in entries):
        raise _corrupt(path, 'it is JSON but not a ledger ({"version": 1, "entries": [{"id": ...}, ...]})')
    return entries


def _corrupt(path: str, why: str) -> LedgerError:
    return LedgerError(f"the drill ledger {path} cannot be used: {why}. It is left as it is. Undo what it lists by hand "
                       f"(or from a copy), then move it aside (mv {path} {path}.corrupt) so the next run starts a new ledger")


@contextlib.contextmanager
def locked(path: str):
    """Exclusive lock on ``<path>.lock`` for one read-modify-write (the ledger itself is replaced,
    so it cannot carry the lock)."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
        fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise LedgerError(f"cannot lock the drill ledger {path}: {exc.strerror} ({exc.filename})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def write(path: str, entries: list) -> None:
    """Replace the ledger atomically: temp file in the same directory, fsync, os.replace."""
    directory = os.path.dirname(os.path.abspath(path))
    text = json.dumps({"version": VERSION, "entries": entries}, indent=2, sort_keys=True) + "\n"
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        raise LedgerError(f"cannot write the drill ledger {path}: {exc.strerror}") from None


def check_entries(entries: list) -> None:
    seen = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise LedgerError(f"entries[{index}] is a {type(entry).__name__}, not a dict with an id")
        entry_id = entry.get("id")
        if not isinstance(entry_id, str) or not entry_id:
            raise LedgerError(f"entries[{index}] needs an 'id' that is a non-empty string, e.g. 'vm:portal-drill'")
        if entry_id in seen:
            raise LedgerError(f"entries[{index}] has the id {entry_id!r} of entries[{seen[entry_id]}]; ids must be unique")
        seen[entry_id] = index


def _added(current: list, entries: list, drill: str | None, when: str) -> list:
    known = {e["id"] for e in current}
    new = []
    for entry in entries:
        if entry["id"] in known:
            continue  # recorded already (a re-run): what was recorded first stays
        stored = dict(entry)
        if drill and "drill" not in stored:
            stored["drill"] = drill
        stored["recorded"] = when
        new.append(stored)
    return new


def record(path: str, entries: list, drill: str | None = None, check_mode: bool = False) -> tuple[list, list]:
    """Add the entries whose ids are not in the ledger. Returns (ids added, ledger after)."""
    check_entries(entries)
    if check_mode:
        current = read(path)
        new = _added(current, entries, drill, now_iso())
        return [e["id"] for e in new], current + new
    with locked(path):
        current = read(path)
        new = _added(current, entries, drill, now_iso())
        if new:
            write(path, current + new)
    return [e["id"] for e in new], current + new


def remove(path: str, ids: list, check_mode: bool = False) -> tuple[list, list]:
    """Drop the entries with these ids; unknown ids are ignored. Returns (ids removed, ledger after)."""
    wanted = set(ids)
    if check_mode:
        current = read(path)
    else:
        with locked(path):
            current = read(path)
            kept = [e for e in current if e["id"] not in wanted]
            if len(kept) != len(current):
                write(path, kept)
    kept = [e for e in current if e["id"] not in wanted]
    return [e["id"] for e in current if e["id"] in wanted], kept
