"""The simulated hypervisor APIs answer over verified TLS and hold the model's VMs."""

from __future__ import annotations

import ssl

import pytest
from proxmoxer import ProxmoxAPI
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim


def _vcenter(lab, ca_pem, **overrides):
    spec = lab.model["vcsim"]
    args = {"host": spec["host"], "port": spec["port"], "user": spec["username"], "pwd": spec["password"],
            "sslContext": ssl.create_default_context(cafile=str(ca_pem))}
    return SmartConnect(**{**args, **overrides})


def test_vcenter_login_verifies_tls_and_lists_the_models_vms(lab, ca_pem):
    spec = lab.model["vcsim"]
    si = _vcenter(lab, ca_pem)
    try:
        content = si.content
        view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
        vms = {vm.name: vm for vm in view.view}
        view.Destroy()
        expected = {v["name"]: v for v in spec["vms"]}
        assert set(vms) >= set(expected), f"missing in vCenter: {set(expected) - set(vms)}"
        for name, want in expected.items():
            vm = vms[name]
            assert vm.config.template == want["template"], name
            assert vm.config.hardware.numCPU == want["cpus"], name
            assert vm.config.hardware.memoryMB == want["memory_mb"], name
            power = "poweredOn" if want["power"] == "on" else "poweredOff"
            assert vm.runtime.powerState == power, name
        clusters = [c.name for c in content.viewManager.CreateContainerView(content.rootFolder, [vim.ClusterComputeResource], True).view]
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
