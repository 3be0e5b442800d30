"""`lab down` removes exactly what `lab up` made; a failing `lab up` leaves nothing half-started.

Runs last (file name): it takes the lab down and brings it back up.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from conftest import podman

REPO = Path(__file__).resolve().parents[2]
LAB = str(REPO / "scripts" / "lab")


def leftovers(lab) -> list[str]:
    prefix = lab.model["prefix"]
    found = []
    found += [f"container {n}" for n in podman("ps", "-a", "--format", "{{.Names}}").stdout.split() if n.startswith(f"{prefix}-")]
    found += [f"network {n}" for n in podman("network", "ls", "--format", "{{.Name}}").stdout.split() if n.startswith(f"{prefix}-")]
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout.split()
    found += [f"netns {n}" for n in netns if n.startswith(f"{prefix}-")]
    for pidfile in (lab.state.root / "run").glob("*.pid"):
        found.append(f"pidfile {pidfile.name}")
    ports = [lab.model["vcsim"]["port"], lab.model["fakepve"]["port"], lab.model["s3"]["port"]]
    ports += [s["port"] for s in lab.model["fake_switches"]]
    for port in ports:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                found.append(f"listener on 127.0.0.1:{port}")
    return found


def test_down_removes_everything_and_a_failed_up_leaves_nothing_behind(lab):
    # An unrelated container with a similar name must survive `lab down`.
    bystander = "twinsite-bystander"
    podman("rm", "-f", "-t", "0", bystander)
    image = podman("images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", "reference=localhost/twinsite-lab-host").stdout.split()[0]
    assert podman("run", "-d", "--init", "--name", bystander, image, "sleep", "infinity").returncode == 0
    try:
        down = subprocess.run([LAB, "down"], capture_output=True, text=True, check=False)
        assert down.returncode == 0, down.stderr
        assert leftovers(lab) == []
        assert podman("container", "exists", bystander).returncode == 0, "lab down removed a container it did not make"

        # Occupy vCenter's port: `lab up` must fail naming vcsim and the port, and undo what it started.
        blocker = socket.socket()
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", lab.model["vcsim"]["port"]))
        blocker.listen()
        try:
            failed = subprocess.run([LAB, "up"], capture_output=True, text=True, check=False)
        finally:
            blocker.close()
        assert failed.returncode == 1
        assert "vcsim" in failed.stderr and str(lab.model["vcsim"]["port"]) in failed.stderr, failed.stderr
        assert "Traceback" not in failed.stderr
        assert leftovers(lab) == []
    finally:
        podman("rm", "-f", "-t", "0", bystander)
        up = subprocess.run([LAB, "up"], capture_output=True, text=True, check=False)
    assert up.returncode == 0, up.stderr[-3000:]
    status = subprocess.run([LAB, "status"], capture_output=True, text=True, check=False)
    assert status.returncode == 0, status.stdout
