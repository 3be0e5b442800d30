"""twinsite.dc.vm when things go wrong: each failure is one message naming the object and the action,
never a traceback, never the password.

Proxmox faults come from our OWN fakepve (not the lab's): served in this process on a free port, with a
certificate from a throw-away lab CA (labkit.ca with a State under the test's tmp dir), and driven
through fakepve's fault API (config lock held, failing task, node offline, 5xx). vSphere faults use
the lab's vcsim: a wrong password, no CA, a missing folder. vSphere task faults and timeouts need a
vcsim started with fault flags: tests/integration/test_vm_faults_vsphere.py runs its own.
"""

from __future__ import annotations

import pytest
from fakepve.pytest_plugin import _Serving
from test_vm import live, run_module

from labkit import ca
from labkit.fakepve_server import build
from labkit.state import State

PASSWORD = "fault-test-pw"


def _qemu(vmid, name, node, cpus=1, memory_mb=512, template=False, vlan=None):
    kind = "base" if template else "vm"
    config = {"cores": cpus, "sockets": 1, "memory": memory_mb, "ostype": "l26", "scsihw": "virtio-scsi-single",
              "scsi0": f"local-lvm:{kind}-{vmid}-disk-0,size=20G", "boot": "order=scsi0"}
    if vlan:
        config["net0"] = f"virtio=BC:24:11:00:00:{vmid % 100:02d},bridge=vmbr0,tag={vlan}"
    if template:
        config["template"] = 1
    return {"vmid": vmid, "name": name, "node": node, "type": "qemu", "status": "stopped", "template": template, "config": config}


@pytest.fixture
def pve(tmp_path):
    """A fakepve of our own with a template (9000), t-victim (300, pve1) and t-far (301, pve2)."""
    state = State(tmp_path / "lab-state")
    cert, key = ca.server_cert(state, "fakepve-faults", ["127.0.0.1"])
    spec = {"cluster": "cl-faults", "nodes": ["pve1", "pve2"],
            "guests": [_qemu(9000, "tpl-debian12", "pve1", cpus=2, memory_mb=2048, template=True),
                       _qemu(300, "t-victim", "pve1", vlan=20), _qemu(301, "t-far", "pve2", vlan=20)]}
    serving = _Serving(build(spec, "root@pam", PASSWORD, "127.0.0.1", 0), str(cert), str(key))
    serving.pve.ca_pem = str(state.ca / "ca.pem")
    try:
        yield serving
    finally:
        serving.stop()


def pve_cluster(serving, **api) -> dict:
    pve = serving.pve
    return {"name": "cl-faults", "type": "proxmox", "nodes": ["pve1", "pve2"],
            "api": {"host": "127.0.0.1", "port": pve.port, "username": "root@pam", "password": PASSWORD, "ca_bundle": pve.ca_pem, **api}}


def pve_vm(serving, cluster: dict | None = None, env: dict | None = None, **args) -> dict:
    networks = [{"name": "servers", "vlan": 20}]
    result = run_module("vm", {"cluster": cluster or pve_cluster(serving), "networks_model": networks, **args},
                        inventory="localhost,", env=env)
    assert "Traceback" not in result["output"], result["output"]
    assert PASSWORD not in result["output"]
    return result


def test_locked_vm_names_vm_and_action(pve):
    # Another task (a backup, a migration) holds the VM's config lock.
    pve._call(pve.pve.hold_config_lock(300, None))
    result = pve_vm(pve, name="t-victim", cpus=2)
    assert result["rc"] != 0
    assert "reconfigure of VM 't-victim' failed: 500" in result["msg"] and "got timeout" in result["msg"], result["msg"]


def test_task_error_is_reported_with_the_tasks_exit_status(pve):
    pve.pve.fail("POST", "/nodes/pve1/qemu/300/status/start", error="qemu_exited_code")
    result = pve_vm(pve, name="t-victim", state="started")
    assert result["rc"] != 0
    assert result["msg"].startswith("cluster cl-faults: start of VM 't-victim' failed: "), result["msg"]
    assert "QEMU exited with code 1" in result["msg"]


def test_offline_node_is_named(pve):
    pve.pve.set_node_offline("pve2")
    result = pve_vm(pve, name="t-far", state="started")
    assert result["rc"] != 0
    assert "read of VM 't-far' failed: 595" in result["msg"] and "(is the node offline" in result["msg"], result["msg"]


def test_server_error_names_the_cluster_read(pve):
    pve.pve.fail("GET", "/cluster/resources", 503, "Service Unavailable")
    result = pve_vm(pve, name="t-victim", cpus=2)
    assert result["rc"] != 0
    assert "reading the VMs of cluster cl-faults failed: 503" in result["msg"], result["msg"]


def test_wrong_password_proxmox(pve):
    result = pve_vm(pve, cluster=pve_cluster(pve, password="not-the-password"), name="t-victim")
    assert result["rc"] != 0
    assert f"login of Proxmox VE 127.0.0.1:{pve.pve.port} failed: wrong user name or password" in result["msg"]
    assert "not-the-password" not in result["output"]


def test_tls_without_the_ca_proxmox(pve):
    api = pve_cluster(pve)["api"]
    del api["ca_bundle"]
    result = pve_vm(pve, cluster={**pve_cluster(pve), "api": api}, env={"REQUESTS_CA_BUNDLE": None}, name="t-victim")
    assert result["rc"] != 0
    assert "login of Proxmox VE" in result["msg"] and "TLS verification failed" in result["msg"], result["msg"]


def test_half_created_vm_converges_on_the_next_run(pve):
    # The clone works, the reconfiguration after it fails once: the VM is left, and the next run finishes it.
    pve.pve.fail("PUT", "/nodes/pve1/qemu/777/config", 500, "storage busy", times=1)
    args = {"name": "t-half", "template": "tpl-debian12", "vmid": 777, "memory_mb": 1024, "networks": ["servers"]}
    first = pve_vm(pve, **args)
    assert first["rc"] != 0
    assert "reconfigure of VM 't-half' failed: 500" in first["msg"] and "left as it is: run again" in first["msg"], first["msg"]
    assert 777 in {v.vmid for v in pve.pve.vms}
    second = pve_vm(pve, **args)
    assert second["rc"] == 0 and second["changed"], second["output"]
    assert second["actions"] == ["reconfigure memory_mb=1024, networks=['servers']"]
    assert second["vm"]["id"] == 777 and second["vm"]["memory_mb"] == 1024
    third = pve_vm(pve, **args)
    assert third["rc"] == 0 and not third["changed"]


# --- vSphere, on the lab's vcsim --------------------------------------------------------------


def vsphere_cluster(lab, **api) -> dict:
    spec = lab.model["vcsim"]
    return {"name": "cl-primary", "type": "vsphere", "datacenter": spec["datacenter"], "cluster": spec["clusters"][0]["name"],
            "api": {"host": spec["host"], "port": spec["port"], "username": spec["username"], "password": spec["password"],
                    "ca_bundle": str(lab.state.ca / "ca.pem"), **api}}


def vsphere_vm(lab, cluster: dict, **args) -> dict:
    result = run_module("vm", {"cluster": cluster, **args}, inventory="localhost,")
    assert "Traceback" not in result["output"], result["output"]
    assert lab.model["vcsim"]["password"] not in result["output"]
    return result


def test_wrong_password_vsphere(lab):
    result = vsphere_vm(lab, vsphere_cluster(lab, password="not-the-password"), name="t-x")
    assert result["rc"] != 0
    assert "login of vCenter 127.0.0.1:8989 failed: wrong user name or password" in result["msg"], result["msg"]


def test_tls_without_the_ca_vsphere(lab):
    cluster = vsphere_cluster(lab)
    del cluster["api"]["ca_bundle"]
    result = vsphere_vm(lab, cluster, name="t-x")
    assert result["rc"] != 0
    assert "login of vCenter" in result["msg"] and "TLS verification failed" in result["msg"], result["msg"]


def test_vsphere_missing_folder_names_clone_and_vm(lab, ca_pem):
    result = vsphere_vm(lab, vsphere_cluster(lab), name="t-nofolder", template="tpl-debian12", folder="No/Such")
    assert result["rc"] != 0
    assert result["msg"] == ("cluster cl-primary: clone of template 'tpl-debian12' to VM 't-nofolder' failed: "
                             f"folder '{lab.model['vcsim']['datacenter']}/vm/No/Such' does not exist"), result["msg"]
    assert live(lab, ca_pem, "vsphere", "t-nofolder") is None
