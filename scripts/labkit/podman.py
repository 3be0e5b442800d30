"""A thin wrapper around the podman CLI: every call in one place, errors as LabError."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from .errors import LabError

CONTAINERS_CONF = Path(__file__).with_name("containers.conf")
LABEL = "twinsite.lab"


def env() -> dict:
    return {**os.environ, "CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF", str(CONTAINERS_CONF))}


def run(component: str, *args: str, check: bool = True, input_bytes: bytes | None = None) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(["podman", *args], capture_output=True, env=env(), input=input_bytes, check=False)  # noqa: S603,S607
    except FileNotFoundError:
        raise LabError(component, "podman is not installed. Run `make setup` (apt-get install podman runc).") from None
    if check and proc.returncode != 0:
        raise LabError(component, f"`podman {' '.join(args[:3])} ...` failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc


def out(component: str, *args: str) -> str:
    return run(component, *args).stdout.decode().strip()


def exists(kind: str, name: str) -> bool:
    """kind: container|network|image."""
    return run(name, kind, "exists", name, check=False).returncode == 0


def labelled(kind: str, prefix: str) -> list[str]:
    """Names of the containers or networks the lab made (by label), so down removes only those."""
    fmt = "{{.Names}}" if kind == "container" else "{{.Name}}"
    args = ["ps", "-a"] if kind == "container" else ["network", "ls"]
    names = out(prefix, *args, "--filter", f"label={LABEL}={prefix}", "--format", fmt)
    return [n for n in names.splitlines() if n]


def inspect(component: str, name: str) -> dict:
    data = json.loads(out(component, "inspect", name))
    return data[0] if data else {}


def pid(name: str) -> int:
    return int(out(name, "inspect", "-f", "{{.State.Pid}}", name))
