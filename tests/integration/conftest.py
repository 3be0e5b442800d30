"""Integration tests run against the embedded lab, which `make lab-up` brings up first.

If the lab is not up these tests fail, loudly, naming what is down: a component that cannot run is
a failure, never a skip.

`make integration` runs them in phases (``--lab-phase``, PHASES below), two of them side by side
where they cannot disturb each other. Plain `pytest tests/integration` runs every test, one after
the other, in the phases' order.
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

# Which test files may run beside which. `make integration` runs the phases in this order, the two
# groups of the middle one at the same time (scripts/steps, one pytest each):
#   alone         converge, plan or read the whole site: nothing else may change it meanwhile
#                 (site.yml's second run changes nothing, plan.yml's in-sync exit, every VM's power
#                 state in the live inventory). site.yml first: the rest expect a converged site.
#   hosts         everything on the lab's hosts and on the objects the DR drills use (the drill
#                 network, the recovery hosts, cl-secondary's vnets and vzdump jobs, the firewall
#                 pair, the backups). A file not named anywhere here runs in this group: a new test
#                 shares the lab with nothing until someone checks that it can.
#   own-objects   beside "hosts": tests that create, change and remove only objects of their own
#                 (VMs, pools, snapshots, tags named t-*) on the simulators, and the switches (the Open
#                 vSwitch core pair and fake-switches, on no host's path).
#   last          the lab's own lifecycle test, which takes the lab down and brings it up again.
# Within a phase, files run in the order listed (alone) or by name, and tests in pytest's order.
PHASES = {
    "alone": ["test_site_playbook.py", "test_cluster.py", "test_cluster_role.py", "test_inventory_plugins.py",
              "test_plan.py"],
    "own-objects": ["test_access_switch.py", "test_hypervisor_apis.py", "test_snapshot.py", "test_switch_fabric.py",
                    "test_switch_fleet.py", "test_switches.py", "test_vdi.py", "test_vm.py", "test_vm_faults.py",
                    "test_vm_faults_vsphere.py", "test_vm_fleet.py", "test_vm_linked_clone.py", "test_vm_tags.py"],
    "last": ["test_zz_lab_lifecycle.py"],
}
ORDER = ["alone", "hosts", "own-objects", "last"]


def pytest_addoption(parser):
    parser.addoption("--lab-phase", choices=ORDER,
                     help="run one phase of the integration tests (tests/integration/conftest.py, PHASES)")


def _phase(item) -> str:
    return next((phase for phase, files in PHASES.items() if item.path.name in files), "hosts")


def pytest_collection_modifyitems(config, items):
    # A name left here after its file was renamed would send the renamed file to "hosts", beside
    # own-objects, however much of the site it changes: say so instead.
    stale = sorted(f for files in PHASES.values() for f in files if not (Path(__file__).parent / f).is_file())
    if stale:
        raise pytest.UsageError(f"tests/integration/conftest.py: PHASES names files that do not exist: {', '.join(stale)}")
    wanted = config.getoption("--lab-phase")
    keep, drop = [], []
    for item in items:
        (keep if wanted in (None, _phase(item)) else drop).append(item)
    alone = PHASES["alone"]
    keep.sort(key=lambda i: (ORDER.index(_phase(i)), alone.index(i.path.name) if i.path.name in alone else 0))
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep


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
