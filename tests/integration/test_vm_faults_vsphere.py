"""twinsite.dc.vm when vCenter misbehaves: a task that fails and a task that takes long, each reported
as one message naming the VM and the action, never a traceback, never the password.

The faults come from our OWN vcsim (not the lab's): labkit's vcsim.up with a small model and a State
under the test's tmp dir, on a free port, started with main.go's fault knobs. Its CloneVm task fails
with "VM locked by backup", its PowerOn task stays "running" for POWER_ON_MS after the call, and its
PowerOffVM_Task SOAP call answers POWER_OFF_MS late.
"""

from __future__ import annotations

import socket
import ssl
import time

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim
from test_vm import run_module

from labkit import procs, vcsim
from labkit.context import Context
from labkit.state import State

PASSWORD = "vcsim-fault-pw"
LOCKED = "VM locked by backup"
POWER_ON_MS = 3000
POWER_OFF_MS = 1000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """A vcsim of our own with a template (tpl-debian12) and a stopped VM (t-slow) to power on."""
    ctx = Context(state=State(tmp_path_factory.mktemp("vcsim-faults") / "lab-state"), quiet=True, model={"vcsim": {
        "host": "127.0.0.1", "port": _free_port(), "username": "administrator@vsphere.local", "password": PASSWORD,
        "datacenter": "DC-Faults", "clusters": [{"name": "Cluster-Faults", "hosts": ["esx91.test.example"]}],
        "portgroups": [{"name": "servers", "vlan": 20}], "folders": ["Templates"],
        "vms": [{"name": "tpl-debian12", "cluster": "Cluster-Faults", "folder": "Templates", "disk_gb": 1,
                 "guest_id": "debian12_64Guest", "template": True},
                {"name": "t-slow", "cluster": "Cluster-Faults", "networks": ["servers"]}],
        "fail_tasks": {"CloneVm": LOCKED}, "slow_tasks": {"PowerOn": POWER_ON_MS},
        "method_delay": {"PowerOffVM_Task": POWER_OFF_MS}}})
    vcsim.up(ctx)
    try:
        yield ctx
    finally:
        # By the PID labkit recorded in OUR state: the lab's own vcsim is never touched.
        procs.stop(ctx.state, vcsim.COMPONENT)


def cluster(sim) -> dict:
    spec = sim.model["vcsim"]
    return {"name": "cl-faults", "type": "vsphere", "datacenter": spec["datacenter"], "cluster": "Cluster-Faults",
            "api": {"host": spec["host"], "port": spec["port"], "username": spec["username"], "password": PASSWORD,
                    "ca_bundle": str(sim.state.ca / "ca.pem")}}


def vsphere_vm(sim, **args) -> dict:
    result = run_module("vm", {"cluster": cluster(sim), **args}, inventory="localhost,")
    assert "Traceback" not in result["output"], result["output"]
    assert PASSWORD not in result["output"]
    return result


def live(sim, name: str) -> dict | None:
    """The VM as the simulator reports it: {power}, or None when there is no VM of that name."""
    spec = sim.model["vcsim"]
    si = SmartConnect(host=spec["host"], port=spec["port"], user=spec["username"], pwd=PASSWORD,
                      sslContext=ssl.create_default_context(cafile=str(sim.state.ca / "ca.pem")))
    try:
        view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [vim.VirtualMachine], True)
        found = [v for v in view.view if v.name == name]
        return {"power": "on" if found[0].runtime.powerState == "poweredOn" else "off"} if found else None
    finally:
        Disconnect(si)


def test_failed_clone_task_names_vm_and_action_and_leaves_no_vm(sim):
    args = {"name": "t-fail", "template": "tpl-debian12", "folder": "Templates"}
    result = vsphere_vm(sim, **args)
    assert result["rc"] != 0
    assert result["msg"] == f"cluster cl-faults: clone of template 'tpl-debian12' to VM 't-fail' failed: SystemError: {LOCKED}", result["msg"]
    # vCenter refused the clone before creating anything: nothing to clean up, and a re-run (once
    # the lock is gone) starts from scratch. Here the fault stays, so the re-run fails the same way.
    assert live(sim, "t-fail") is None
    again = vsphere_vm(sim, **args)
    assert again["rc"] != 0 and again["msg"] == result["msg"]
    assert live(sim, "t-fail") is None


def test_slow_task_times_out_with_a_message_then_converges(sim):
    # A 1s timeout on a power-on that takes 3s: the module gives up and says so.
    short = vsphere_vm(sim, name="t-slow", state="started", timeout=1)
    assert short["rc"] != 0
    assert short["msg"] == "cluster cl-faults: power on of VM 't-slow' failed: still not done after 1s", short["msg"]
    # The task went on without us (as on a vCenter): once it is over the VM runs, and the next run has nothing to do.
    time.sleep(POWER_ON_MS / 1000)
    assert live(sim, "t-slow") == {"power": "on"}
    settled = vsphere_vm(sim, name="t-slow", state="started")
    assert settled["rc"] == 0 and not settled["changed"], settled["output"]


def test_slow_task_within_the_timeout_is_waited_for(sim):
    # A late answer to the call itself (not a long task) is simply waited for.
    stopping_at = time.monotonic()
    stopped = vsphere_vm(sim, name="t-slow", state="stopped", timeout=1)
    assert stopped["rc"] == 0 and stopped["actions"] == ["power off"], stopped["output"]
    assert time.monotonic() - stopping_at >= POWER_OFF_MS / 1000
    started_at = time.monotonic()
    started = vsphere_vm(sim, name="t-slow", state="started", timeout=30)
    # It succeeded AND took the task's time: the module really polled a running task to its end.
    assert started["rc"] == 0 and started["changed"] and started["actions"] == ["power on"], started["output"]
    assert time.monotonic() - started_at >= POWER_ON_MS / 1000
    assert live(sim, "t-slow") == {"power": "on"}
