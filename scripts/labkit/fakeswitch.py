"""Cisco IOS switches simulated by fake-switches, one background process per switch.

A switch is described by a spec dict from the lab model::

    {"name": "accsw1", "host": "127.0.0.1", "port": 2201, "model": "cisco_2960_24TT_L",
     "username": "admin", "password": "lab-switch-pw", "archive": "flash:twinsite"}

It answers SSH on ``host:port`` with a stateful IOS CLI (VLANs, switchports, trunks) that netmiko's
``cisco_ios`` driver and Ansible's ``cisco.ios`` modules can configure. The ``enable`` secret is the
same as the login password. Configuration lives in the process's memory: it persists across SSH
sessions, and ``down`` + ``up`` gives a factory-default switch again (with ``archive``, if the spec
names one: the day-0 setting IOS's timed rollback needs, see ``fakeswitch_rollback``).

The process is named by the switch's name (``.lab/run/<name>.pid``, ``.lab/logs/<name>.log``).
"""

from __future__ import annotations

import importlib.util
import socket
import sys
from pathlib import Path

from . import procs
from .context import Context, Status
from .errors import LabError

# The launcher runs as a script with the lab's own Python (the venv that has fake-switches).
LAUNCHER = Path(__file__).with_name("fakeswitch_server.py")
PASSWORD_ENV = "TWINSITE_SWITCH_PASSWORD"  # noqa: S105 - a variable name; keep in step with fakeswitch_server.py

REQUIRED = ("name", "port", "model", "username", "password")


def _check(spec: dict) -> tuple[str, str, int]:
    """Validate a spec; return (name, host, port). Mistakes in the model become LabErrors."""
    name = str(spec.get("name") or "switch")
    missing = [key for key in REQUIRED if not spec.get(key)]
    if missing:
        raise LabError(
            name,
            f"switch spec lacks {', '.join(missing)}. Add it to the switch's entry in inventory/lab/group_vars/all/lab.yml.",
        )
    try:
        port = int(spec["port"])
    except (TypeError, ValueError):
        raise LabError(name, f"port {spec['port']!r} is not a number. Fix it in the lab model.") from None
    if not 1 <= port <= 65535:
        raise LabError(name, f"port {port} is out of range. Fix it in the lab model.")
    return name, str(spec.get("host") or "127.0.0.1"), port


def _check_model(name: str, model: str) -> None:
    if importlib.util.find_spec("fake_switches") is None:
        raise LabError(name, f"fake-switches is not installed for {sys.executable}. Run `make setup`.")
    from fake_switches import switch_factory  # slowish import (Twisted), so only when needed

    if model not in switch_factory.DEFAULT_MAPPING:
        known = ", ".join(sorted(switch_factory.DEFAULT_MAPPING))
        raise LabError(name, f"unknown switch model {model!r}. Use one of: {known}.")


def answers_ssh(host: str, port: int) -> bool:
    """True if something on host:port speaks SSH (reads the server's version banner)."""
    try:
        with socket.create_connection((host, port), timeout=2) as sock:
            sock.settimeout(2)
            return sock.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def free_ports(count: int, first: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` TCP ports on ``host`` from ``first`` up that nothing listens on now (for switches of a
    bench or a test of their own, next to the lab's)."""
    ports, port = [], first
    while len(ports) < count:
        if port > 65535:
            raise LabError("ports", f"fewer than {count} free TCP ports on {host} from {first} up")
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
                ports.append(port)
            except OSError:
                pass
        port += 1
    return ports


def up(ctx: Context, spec: dict) -> None:
    name, host, port = _check(spec)
    _check_model(name, spec["model"])  # before touching a running switch
    pid = procs.pid_of(ctx.state, name)
    if pid is not None:
        facts = ctx.state.read_facts(name)
        same = (facts.get("host"), facts.get("port"), facts.get("model"), facts.get("archive")) == (host, port, spec["model"], spec.get("archive"))
        if same and answers_ssh(host, port):
            ctx.say(f"{name}: switch already running (pid {pid}) on {host}:{port}")
            return
        # The spec changed, or the process is wedged: restart rather than guess. (A changed
        # password is not detected: it is not recorded anywhere; `lab down` first to apply one.)
        procs.stop(ctx.state, name)
    procs.require_free_port(name, host, port)
    ctx.say(f"{name}: starting fake {spec['model']} switch on {host}:{port}")
    argv = [
        sys.executable,
        str(LAUNCHER),
        "--model", spec["model"],
        "--hostname", name,
        "--username", str(spec["username"]),
        "--listen-host", host,
        "--listen-port", str(port),
        *(["--archive-path", str(spec["archive"])] if spec.get("archive") else []),
    ]  # fmt: skip
    pid = procs.start(ctx.state, name, argv, env={PASSWORD_ENV: str(spec["password"])})
    try:
        procs.wait_port(ctx.state, name, host, port, timeout=30)
    except LabError:
        procs.stop(ctx.state, name)
        raise
    ctx.state.write_facts(name, {"kind": "fakeswitch", "pid": pid, "host": host, "port": port, "model": spec["model"],
                                 "archive": spec.get("archive")})


def down(ctx: Context, spec: dict) -> None:
    name = str(spec.get("name") or "switch")
    if procs.stop(ctx.state, name):
        ctx.say(f"{name}: switch stopped")
    ctx.state.forget(name)


def status(ctx: Context, spec: dict) -> Status:
    name, host, port = _check(spec)
    address = f"ssh://{host}:{port}"
    pid = procs.pid_of(ctx.state, name)
    if pid is None:
        return Status(name, address, False, "not running")
    if not answers_ssh(host, port):
        return Status(name, address, False, f"pid {pid} runs but {host}:{port} does not answer SSH; see {ctx.state.logs / (name + '.log')}")
    return Status(name, address, True, f"{spec['model']}, pid {pid}")
