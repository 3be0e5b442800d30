# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the switches: the model's cross-checks, before anything is sent to a switch."""

from __future__ import annotations

DOCUMENTATION = r"""
name: switch_findings
short_description: 'What is wrong with the switch part of the site model, as a list of "<model path>: <problem>"'
version_added: 0.5.0
description:
  - Every switch of O(switches) must compile (its ports, trunks and LAGs resolve to VLANs), and every
    trunk port and LAG of those switches must carry the VLAN of every network in O(hypervisor_networks)
    (the hypervisors' port groups, on both rooms' hosts) and O(firewall_networks) (the firewall pair's
    zones; a zone whose VLAN does not reach both nodes splits VRRP, both become master).
  - An empty list means all is well.
positional: networks, lags
options:
  _input:
    description: C(dc_switch_ports).
    type: list
    elements: dict
    required: true
  networks:
    description: C(dc_networks).
    type: list
    elements: dict
    required: true
  lags:
    description: C(dc_lags).
    type: list
    elements: dict
    default: []
  hypervisor_networks:
    description: Names of the networks the hypervisors' VMs use.
    type: list
    elements: str
    default: []
  firewall_networks:
    description: Names of the networks of the firewall's zones.
    type: list
    elements: str
    default: []
  switches:
    description: The switches whose trunks must carry those networks (default every switch of the model).
    type: list
    elements: str
  svis:
    description: C(dc_switch_svis).
    type: list
    elements: dict
  pairs:
    description: C(dc_switch_pairs); each pair's peer link must carry the same VLANs at both ends, and every VLAN either switch uses.
    type: list
    elements: dict
"""

EXAMPLES = r"""
- name: Check the switch part of the model
  ansible.builtin.assert:
    that: findings | length == 0
    fail_msg: "{{ findings | join('; ') }}"
  vars:
    findings: "{{ dc_switch_ports | twinsite.dc.switch_findings(dc_networks, dc_lags, switches=groups['core_switches']) }}"
"""

RETURN = r"""
_value:
  description: The findings, model order; empty when the model is consistent.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.twinsite.dc.plugins.module_utils._switching import check_model


def switch_findings(ports, networks, lags=None, hypervisor_networks=None, firewall_networks=None, switches=None, svis=None,
                    pairs=None):
    for name, value in (("_input (dc_switch_ports)", ports), ("networks", networks), ("lags", lags), ("svis", svis), ("pairs", pairs)):
        if value is not None and not isinstance(value, list):
            raise AnsibleFilterError(f"switch_findings: {name} must be a list, found {type(value).__name__}")
    return check_model(networks or [], ports or [], lags or [], hypervisor_networks=list(hypervisor_networks or []),
                       firewall_networks=list(firewall_networks or []), switches=list(switches) if switches is not None else None,
                       svis=svis or [], pairs=pairs or [])


def store_file(pair):
    """``[switch, backup text]`` -> ``{name, content}`` for config_store: ``<switch>.json`` for the OVS
    tables (JSON), ``<switch>.cfg`` for a running-config."""
    if not isinstance(pair, (list, tuple)) or len(pair) != 2 or not isinstance(pair[1], str):
        raise AnsibleFilterError(f"store_file: expected [switch, config text], found {pair!r}")
    switch, text = pair
    return {"name": f"{switch}.json" if text.lstrip().startswith("{") else f"{switch}.cfg", "content": text}


class FilterModule:
    def filters(self):
        return {"switch_findings": switch_findings, "store_file": store_file}
