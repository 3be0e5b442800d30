#!/usr/bin/python
# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cluster
short_description: HA/DRS and hosts of a vSphere cluster, HA groups and resources of a Proxmox VE cluster
version_added: 0.2.0
description:
  - The backend is chosen by O(cluster), one item of the model's C(dc_clusters).
  - vSphere - switches HA (O(ha)) and DRS (O(drs)) on or off, sets DRS automation, and adds the
    hosts in O(hosts) that the cluster lacks (hosts not listed are left in the cluster).
  - Proxmox VE - creates or updates the HA groups in O(ha_groups) and HA resources in
    O(ha_resources); groups and resources not listed are left alone.
  - Options not given are not managed. Unknown to the other backend's options are ignored with
    a warning.
extends_documentation_fragment: [twinsite.dc.cluster]
options:
  ha:
    description: vSphere HA.
    type: dict
    suboptions:
      enabled: {description: HA on or off., type: bool}
  drs:
    description: vSphere DRS.
    type: dict
    suboptions:
      enabled: {description: DRS on or off., type: bool}
      automation: {description: DRS automation level., type: str, choices: [manual, partiallyAutomated, fullyAutomated]}
  hosts:
    description: vSphere ESXi hosts (names) that must be in the cluster.
    type: list
    elements: str
  host_credentials:
    description: vSphere; the root login of hosts to add.
    type: dict
    suboptions:
      username: {description: User name., type: str, required: true}
      password: {description: Password., type: str, required: true, no_log: true}
  ha_groups:
    description: Proxmox HA groups.
    type: list
    elements: dict
    suboptions:
      name: {description: Group id., type: str, required: true}
      nodes: {description: Node names., type: list, elements: str, required: true}
      restricted: {description: Resources may run on these nodes only., type: bool, default: false}
      nofailback: {description: Do not move resources back when a better node returns., type: bool, default: false}
  ha_resources:
    description: Proxmox HA resources.
    type: list
    elements: dict
    suboptions:
      sid: {description: "Resource id, for example C(vm:110).", type: str, required: true}
      group: {description: HA group., type: str}
      state: {description: Requested state., type: str, choices: [started, stopped, disabled, ignored], default: started}
attributes:
  check_mode:
    support: full
    description: Returns the predicted settings and changed=True, and calls nothing that writes.
  diff_mode:
    support: full
requirements: [pyvmomi (vsphere), proxmoxer (proxmox)]
author: twinsite engineers
"""

EXAMPLES = r"""
- name: HA on and DRS fully automated on the primary cluster
  twinsite.dc.cluster:
    cluster: "{{ dc_clusters | selectattr('name', 'eq', 'cl-primary') | first }}"
    ha: {enabled: true}
    drs: {enabled: true, automation: fullyAutomated}

- name: Keep the backup proxy highly available in the secondary room
  twinsite.dc.cluster:
    cluster: "{{ dc_clusters | selectattr('name', 'eq', 'cl-secondary') | first }}"
    ha_groups: [{name: secondary, nodes: [pve1, pve2]}]
    ha_resources: [{sid: "vm:110", group: secondary, state: started}]
"""

RETURN = r"""
settings:
  description: The settings after the task (predicted in check mode).
  returned: success
  type: dict
  sample:
    ha: {enabled: true}
    drs: {enabled: true, automation: fullyAutomated}
    hosts: [esx01.town.example, esx02.town.example]
diff:
  description: Before and after settings (with --diff).
  returned: changed and diff mode
  type: dict
  sample: {before: {ha: {enabled: false}}, after: {ha: {enabled: true}}}
"""


from ansible_collections.twinsite.dc.plugins.module_utils import _cluster
from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError, secret_aware_module

VSPHERE_ONLY = ("ha", "drs", "hosts", "host_credentials")
PROXMOX_ONLY = ("ha_groups", "ha_resources")


def predict(before: dict, params: dict, kind: str) -> tuple[bool, dict]:
    """Whether the task changes anything, and the settings it leaves."""
    after = _cluster.wanted_settings(before, params, kind)
    return before != after, after


def run(module, cluster: dict) -> dict:
    params = module.params
    return _cluster.run(module, cluster, "settings",
                        backend=lambda client: _cluster.settings_backend(cluster, client),
                        read=lambda settings: settings.read(),
                        plan=lambda before: predict(before, params, cluster["type"]),
                        write=lambda settings, _change, before, after: settings.write(before, after, params.get("host_credentials")))


def main():
    module = secret_aware_module()(
        argument_spec={
            "cluster": _cluster.CLUSTER_OPTION,
            "ha": {"type": "dict", "options": {"enabled": {"type": "bool"}}},
            "drs": {"type": "dict", "options": {"enabled": {"type": "bool"},
                                                "automation": {"type": "str", "choices": list(_cluster.DRS_AUTOMATION)}}},
            "hosts": {"type": "list", "elements": "str"},
            "host_credentials": {"type": "dict", "no_log": False, "options": {
                "username": {"type": "str", "required": True}, "password": {"type": "str", "required": True, "no_log": True}}},
            "ha_groups": {"type": "list", "elements": "dict", "options": {
                "name": {"type": "str", "required": True}, "nodes": {"type": "list", "elements": "str", "required": True},
                "restricted": {"type": "bool", "default": False}, "nofailback": {"type": "bool", "default": False}}},
            "ha_resources": {"type": "list", "elements": "dict", "options": {
                "sid": {"type": "str", "required": True}, "group": {"type": "str"},
                "state": {"type": "str", "choices": ["started", "stopped", "disabled", "ignored"], "default": "started"}}},
        },
        supports_check_mode=True,
    )
    cluster = _cluster.prepare(module)
    ignored = PROXMOX_ONLY if cluster["type"] == "vsphere" else VSPHERE_ONLY
    for option in ignored:
        if module.params.get(option):
            module.warn(f"{option} does not apply to a {cluster['type']} cluster; ignored")
    try:
        module.exit_json(**run(module, cluster))
    except TwinsiteError as exc:
        module.fail_json(msg=f"cluster {cluster.get('name')}: {exc}")


if __name__ == "__main__":
    main()
