"""Background processes of the lab (simulators, S3, switch CLIs): start, wait, stop by PID.

One process per component, its PID in ``.lab/run/<component>.pid`` and its output in
``.lab/logs/<component>.log``. ``stop`` kills only that PID (and its process group), so ``lab down``
never touches a process it did not start.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from .errors import LabError
from .state import State


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def require_free_port(component: str, host: str, port: int) -> None:
    if not port_free(host, port):
        raise LabError(
            component,
            f"port {host}:{port} is already in use. Find the owner with `ss -ltnp 'sport = :{port}'`, "
            f"stop it, or change the port in inventory/lab/group_vars/all/lab.yml.",
        )


def pid_of(state: State, component: str) -> int | None:
    path = state.run / f"{component}.pid"
    try:
        pid = int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if alive(pid) else None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as gone.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def start(state: State, component: str, argv: list[str], env: dict | None = None, cwd: Path | None = None) -> int:
    """Start ``argv`` detached in its own session; return its PID. Output goes to the component's log."""
    log = open(state.logs / f"{component}.log", "ab")  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen(  # noqa: S603 - argv is built by the lab, not from user text
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
    except OSError as exc:
        raise LabError(component, f"could not start {argv[0]}: {exc}. Run `make setup` to install it.") from exc
    finally:
        log.close()
    (state.run / f"{component}.pid").write_text(f"{proc.pid}\n")
    return proc.pid


def wait_port(state: State, component: str, host: str, port: int, timeout: float = 30.0) -> None:
    """Wait until ``host:port`` accepts TCP, or fail naming the component and its log."""
    deadline = time.monotonic() + timeout
    pid = pid_of(state, component)
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            pass
        if pid is not None and not alive(pid):
            break
        time.sleep(0.1)
    raise LabError(
        component,
        f"did not answer on {host}:{port} within {timeout:.0f}s. Last lines of its log "
        f"({state.logs / (component + '.log')}):\n{tail(state.logs / (component + '.log'))}",
    )


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def stop(state: State, component: str, timeout: float = 10.0) -> bool:
    """Stop the component's process group; return True if something was running."""
    pid = pid_of(state, component)
    (state.run / f"{component}.pid").unlink(missing_ok=True)
    if pid is None:
        return False
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not alive(pid):
                return True
            time.sleep(0.1)
    return True
