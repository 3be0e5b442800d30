"""Integration tests run against the embedded lab, which `make lab-up` brings up first.

If the lab is not up these tests fail, loudly, naming what is down: a component that cannot run is
a failure, never a skip.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyVim.connect import Disconnect, SmartConnect

from labkit import model as lab_model
from labkit.context import Context
from labkit.state import State

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def lab() -> Context:
    ctx = Context(state=State.default(), model=lab_model.load(REPO / "inventory" / "lab"), quiet=True)
    status = subprocess.run([str(REPO / "scripts" / "lab"), "status"], capture_output=True, text=True, check=False)
    if status.returncode != 0:
        pytest.fail(f"the lab is not (fully) up - run `make lab-up`.\n{status.stdout}{status.stderr}")
    return ctx


@pytest.fixture(scope="session")
def ca_pem(lab) -> Path:
    return lab.state.ca / "ca.pem"


@contextlib.contextmanager
def vcenter(lab: Context, ca_pem: Path) -> Iterator:
    """A pyvmomi session on the lab's vcsim (its certificate checked against the lab CA), to read or
    change the simulator directly, behind twinsite's back; logged out on exit."""
    spec = lab.model["vcsim"]
    si = SmartConnect(host=spec["host"], port=spec["port"], user=spec["username"], pwd=spec["password"],
                      sslContext=ssl.create_default_context(cafile=str(ca_pem)))
    try:
        yield si
    finally:
        Disconnect(si)


def ssh(lab: Context, address: str, command: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command on a lab host the way Ansible does: root, the lab key, host key checked."""
    argv = ["ssh", "-i", str(lab.state.ssh / "id_ed25519"), "-o", f"UserKnownHostsFile={lab.state.ssh / 'known_hosts'}",
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", f"root@{address}", command]
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=60)


def netns(ns: str, *argv: str, timeout: float = 10) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, check=False, timeout=timeout)


def podman(*argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CONTAINERS_CONF": str(REPO / "scripts" / "labkit" / "containers.conf")}
    return subprocess.run(["podman", *argv], capture_output=True, text=True, check=False, env=env)
