#!/usr/bin/python
# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cluster_info
short_description: Reach a vSphere or Proxmox VE cluster and report what it holds
version_added: 0.1.0
description:
  - Logs in to a vCenter (pyvmomi) or a Proxmox VE cluster (proxmoxer), with TLS verified by
    default, and reports the API version, the hosts or nodes, and how many VMs and templates there
    are and how many run.
  - Reads in bulk, one PropertyCollector retrieve (vSphere) or one C(/cluster/resources) call
    (Proxmox), whatever the number of VMs.
options:
  backend:
    description: Which kind of cluster.
    type: str
    choices: [vsphere, proxmox]
    required: true
  hostname:
    description: API host. Falls back to C(TWINSITE_VSPHERE_HOST) / C(TWINSITE_PVE_HOST).
    type: str
    required: true
  port:
    description: API port (vSphere 443, Proxmox 8006 when not given).
    type: int
  username:
    description: API user. Falls back to C(TWINSITE_VSPHERE_USER) / C(TWINSITE_PVE_USER).
    type: str
    required: true
  password:
    description: API password. Falls back to C(TWINSITE_VSPHERE_PASSWORD) / C(TWINSITE_PVE_PASSWORD).
    type: str
    required: true
  validate_certs:
    description: Verify the API's TLS certificate. Leave it on; give C(ca_bundle) for a private CA.
    type: bool
    default: true
  ca_bundle:
    description: PEM file of the CA(s) that signed the API's certificate.
    type: path
attributes:
  check_mode:
    support: full
    description: Reads only; runs the same in check mode.
  diff_mode:
    support: none
requirements: [pyvmomi (vsphere), proxmoxer and requests (proxmox)]
author: twinsite engineers
"""

EXAMPLES = r"""
- name: Reach the primary vCenter
  twinsite.dc.cluster_info:
    backend: vsphere
    hostname: vcenter.town.example
    username: administrator@vsphere.local
    password: "{{ vault_vcenter_password }}"
    ca_bundle: /etc/twinsite/ca.pem
  register: primary

- name: Reach the secondary Proxmox VE cluster
  twinsite.dc.cluster_info:
    backend: proxmox
    hostname: 192.0.2.20
    username: root@pam
    password: "{{ vault_pve_password }}"
"""

RETURN = r"""
cluster:
  description: What the cluster reported.
  returned: success
  type: dict
  sample:
    backend: vsphere
    endpoint: vcenter.town.example:443
    product: VMware vCenter Server 6.5.0 build-5973321
    version: "6.5.0"
    hosts: [esx01.town.example, esx02.town.example]
    vms: 4
    templates: 2
    running: 4
    api_calls: 2
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.twinsite.dc.plugins.module_utils import _proxmox, _vsphere
from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError


def vsphere_summary(params: dict) -> dict:
    from pyVmomi import vim

    client = _vsphere.VsphereClient.from_params({**params, "port": params["port"] or 443}).connect()
    try:
        about = client.about()
        vms = client.retrieve(vim.VirtualMachine, ["name", "config.template", "runtime.powerState"])
        hosts = client.retrieve(vim.HostSystem, ["name"])
    finally:
        client.close()
    templates = [v for v in vms if v.get("config.template")]
    return {
        "backend": "vsphere",
        "endpoint": client.endpoint,
        "product": about["name"],
        "version": about["version"],
        "hosts": sorted(h["name"] for h in hosts),
        "vms": len(vms) - len(templates),
        "templates": len(templates),
        "running": sum(1 for v in vms if v.get("runtime.powerState") == "poweredOn"),
        "api_calls": 2,
    }


def proxmox_summary(params: dict) -> dict:
    client = _proxmox.ProxmoxClient.from_params({**params, "port": params["port"] or 8006}).connect()
    version = client.version()
    resources = client.resources()
    guests = [r for r in resources if r.get("type") in ("qemu", "lxc")]
    templates = [g for g in guests if g.get("template")]
    return {
        "backend": "proxmox",
        "endpoint": client.endpoint,
        "product": f"Proxmox VE {version.get('version', '?')}",
        "version": str(version.get("version", "")),
        "hosts": sorted(r["node"] for r in resources if r.get("type") == "node"),
        "vms": len(guests) - len(templates),
        "templates": len(templates),
        "running": sum(1 for g in guests if g.get("status") == "running"),
        "api_calls": 2,
    }


def main():
    spec = _vsphere.argument_spec()
    spec["port"] = {"type": "int"}
    spec["backend"] = {"type": "str", "required": True, "choices": ["vsphere", "proxmox"]}
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    backend = module.params["backend"]
    if backend == "vsphere" and not _vsphere.HAS_PYVMOMI:
        module.fail_json(msg=missing_required_lib("pyvmomi"), exception=str(_vsphere.PYVMOMI_IMPORT_ERROR))
    if backend == "proxmox" and not _proxmox.HAS_PROXMOXER:
        module.fail_json(msg=missing_required_lib("proxmoxer"), exception=str(_proxmox.PROXMOXER_IMPORT_ERROR))
    try:
        cluster = vsphere_summary(module.params) if backend == "vsphere" else proxmox_summary(module.params)
    except TwinsiteError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, cluster=cluster)


if __name__ == "__main__":
    main()
