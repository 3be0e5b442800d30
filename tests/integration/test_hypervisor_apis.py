"""The simulated hypervisor APIs answer over verified TLS and hold the model's VMs."""

from __future__ import annotations

import ssl

import pytest
from proxmoxer import ProxmoxAPI
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim, vmodl


def _vcenter(lab, ca_pem, **overrides):
    spec = lab.model["vcsim"]
    args = {"host": spec["host"], "port": spec["port"], "user": spec["username"], "pwd": spec["password"],
            "sslContext": ssl.create_default_context(cafile=str(ca_pem))}
    return SmartConnect(**{**args, **overrides})


def _retrieve(si, obj_type, paths):
    """One raw PropertyCollector retrieve (reading properties object by object trips over a stale
    VM that govmomi 0.24's simulator can leave in container views after a destroy)."""
    content = si.content
    view = content.viewManager.CreateContainerView(content.rootFolder, [obj_type], True)
    pc = vmodl.query.PropertyCollector
    spec = pc.FilterSpec(
        objectSet=[pc.ObjectSpec(obj=view, skip=True, selectSet=[pc.TraversalSpec(name="v", path="view", skip=False, type=vim.view.ContainerView)])],
        propSet=[pc.PropertySpec(type=obj_type, pathSet=paths)],
    )
    try:
        return [{p.name: p.val for p in o.propSet} for o in content.propertyCollector.RetrieveContents([spec])]
    finally:
        view.Destroy()


def test_vcenter_login_verifies_tls_and_lists_the_models_vms(lab, ca_pem):
    spec = lab.model["vcsim"]
    si = _vcenter(lab, ca_pem)
    try:
        rows = _retrieve(si, vim.VirtualMachine, ["name", "config.template", "config.hardware.numCPU",
                                                   "config.hardware.memoryMB", "runtime.powerState"])
        vms = {r["name"]: r for r in rows if "name" in r}
        expected = {v["name"]: v for v in spec["vms"]}
        assert set(vms) >= set(expected), f"missing in vCenter: {set(expected) - set(vms)}"
        for name, want in expected.items():
            vm = vms[name]
            assert vm["config.template"] == want["template"], name
            assert vm["config.hardware.numCPU"] == want["cpus"], name
            assert vm["config.hardware.memoryMB"] == want["memory_mb"], name
            power = "poweredOn" if want["power"] == "on" else "poweredOff"
            assert vm["runtime.powerState"] == power, name
        clusters = [r["name"] for r in _retrieve(si, vim.ClusterComputeResource, ["name"])]
        assert clusters == [spec["clusters"][0]["name"]]
    finally:
        Disconnect(si)


def test_vcenter_refuses_a_client_that_does_not_trust_the_lab_ca(lab, ca_pem):
    # A context that verifies but trusts no CA at all: the handshake must fail, which proves the
    # lab's TLS is checked rather than switched off.
    untrusting = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    with pytest.raises(ssl.SSLCertVerificationError):
        _vcenter(lab, ca_pem, sslContext=untrusting)


def test_proxmox_lists_the_models_guests_over_verified_tls(lab, ca_pem):
    spec = lab.model["fakepve"]
    api = ProxmoxAPI(spec["host"], port=spec["port"], user=spec["username"], password=spec["password"], verify_ssl=str(ca_pem))
    guests = {g["vmid"]: g for g in api.cluster.resources.get(type="vm")}
    for want in spec["guests"]:
        got = guests.get(want["vmid"])
        assert got is not None, f"guest {want['vmid']} ({want['name']}) missing"
        assert got["name"] == want["name"]
        assert got["node"] == want["node"]
        assert bool(got.get("template")) == want["template"]
    nodes = sorted(n["node"] for n in api.nodes.get())
    assert nodes == sorted(spec["nodes"])
