# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the firewall pair: the site model's vendor-neutral policy, compiled and rendered for
Linux (nftables, keepalived, conntrackd), and the flows a test of the live firewall tries."""

from __future__ import annotations

DOCUMENTATION = r"""
name: fw_nftables
short_description: The nftables ruleset of one firewall node, from the site model's policy
version_added: 0.4.0
description:
  - Compiles C(dc_firewall) with C(dc_networks) and renders one file for C(nft -f) that atomically
    replaces the tables C(inet twinsite) and C(ip twinsite_nat), and no other table.
  - A rule or NAT entry that needs a zone with no interface on this node is rendered as a commented no-op.
  - SSH from the management zone to the node is always accepted, so an apply never locks management out.
  - A name that does not resolve fails with the model path, e.g. C(dc_firewall.rules[2].services[0]).
  - "The other filters of this file: C(fw_policy) (the compiled policy as plain data), C(fw_keepalived),
    C(fw_conntrackd), C(fw_conntrackd_notify), C(fw_flow_matrix) and C(fw_rule_diff); their options are
    those of the functions of the same name in C(plugins/module_utils/_firewall.py)."
positional: networks, interfaces
options:
  _input:
    description: C(dc_firewall).
    type: dict
    required: true
  networks:
    description: C(dc_networks).
    type: list
    elements: dict
    required: true
  interfaces:
    description: Network name -> this node's interface in it.
    type: dict
    required: true
  table:
    description: Name of the filter table; the NAT table is C(<table>_nat).
    type: str
    default: twinsite
  management:
    description: "C({zone, ports}) whose SSH to the node is accepted."
    type: dict
    default: {zone: mgmt, ports: [22]}
  sync_interface:
    description: Interface on which conntrackd's state sync (UDP 3780) arrives.
    type: str
"""

EXAMPLES = r"""
- name: The ruleset of this firewall node
  ansible.builtin.copy:
    content: "{{ dc_firewall | twinsite.dc.fw_nftables(dc_networks, {'mgmt': 'eth0', 'servers': 'eth1'}, sync_interface='eth1') }}"
    dest: /etc/nftables.d/twinsite.nft
    mode: '0600'

- name: The flows to try, with what the policy expects of each
  ansible.builtin.debug:
    msg: "{{ dc_firewall | twinsite.dc.fw_flow_matrix(dc_networks, {'servers': [{'name': 'web1', 'address': '192.0.2.43'}]}) }}"
"""

RETURN = r"""
_value:
  description: The ruleset, the text of one file for C(nft -f).
  type: str
"""

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.twinsite.dc.plugins.module_utils import _firewall


def _compile(name, firewall, networks):
    try:
        return _firewall.compile_policy(firewall, networks)
    except _firewall.PolicyError as exc:
        raise AnsibleFilterError(f"{name}: {exc}") from exc


def _call(name, func, *args, **kw):
    try:
        return func(*args, **kw)
    except _firewall.PolicyError as exc:
        raise AnsibleFilterError(f"{name}: {exc}") from exc
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"{name}: {exc}") from exc


def fw_policy(firewall, networks):
    """The compiled policy as plain data: zones (networks, subnets, VIPs), objects, resolved rules, NAT."""
    return _compile("fw_policy", firewall, networks).to_dict()


def fw_nftables(firewall, networks, interfaces, table="twinsite", management=None, sync_interface=None):
    """The nftables ruleset of one node (see _firewall.render_nftables)."""
    policy = _compile("fw_nftables", firewall, networks)
    return _call("fw_nftables", _firewall.render_nftables, policy, dict(interfaces or {}), table=table, management=management,
                 sync_interface=sync_interface or None)


def fw_keepalived(firewall, networks, node, interfaces, priority, peers=None, advert_int=0.5, preempt=True, router_id_base=50,
                  notify=None, addresses=None):
    """keepalived.conf of one node (see _firewall.render_keepalived)."""
    policy = _compile("fw_keepalived", firewall, networks)
    try:
        priority, advert_int, router_id_base = int(priority), float(advert_int), int(router_id_base)
        preempt = boolean(preempt, strict=True)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"fw_keepalived: priority, advert_int and router_id_base are numbers, preempt a boolean: {exc}") from exc
    return _call("fw_keepalived", _firewall.render_keepalived, policy, node, interfaces=dict(interfaces or {}), priority=priority,
                 peers=list(peers) if peers is not None else None, advert_int=advert_int, preempt=preempt,
                 router_id_base=router_id_base, notify=notify or None, addresses=dict(addresses or {}))


def fw_conntrackd(firewall, networks, node, sync_interface, local_address, peer_address, ignore_addresses=None):
    """conntrackd.conf of one node (see _firewall.render_conntrackd)."""
    policy = _compile("fw_conntrackd", firewall, networks)
    return _call("fw_conntrackd", _firewall.render_conntrackd, policy, node, sync_interface=sync_interface,
                 local_address=local_address, peer_address=peer_address, ignore_addresses=list(ignore_addresses or []))


def fw_conntrackd_notify(config="/etc/conntrackd/conntrackd.conf", lock="/var/lock/conntrackd.lock"):
    """The keepalived notify script that moves the connection states with the VIPs; the input is
    the path of conntrackd.conf."""
    return _firewall.render_conntrackd_notify(config=config, lock=lock)


def fw_flow_matrix(firewall, networks, hosts):
    """The expected-flow matrix (see _firewall.flow_matrix); ``hosts``: zone -> [{name, address}]."""
    policy = _compile("fw_flow_matrix", firewall, networks)
    return _call("fw_flow_matrix", _firewall.flow_matrix, policy, dict(hosts or {}))


def fw_rule_diff(before, after):
    """Unified diff of the live ruleset (input) and the rendered one; empty when equal."""
    return _firewall.rule_diff(str(before or ""), str(after or ""))


class FilterModule:
    def filters(self):
        return {"fw_policy": fw_policy, "fw_nftables": fw_nftables, "fw_keepalived": fw_keepalived, "fw_conntrackd": fw_conntrackd,
                "fw_conntrackd_notify": fw_conntrackd_notify, "fw_flow_matrix": fw_flow_matrix, "fw_rule_diff": fw_rule_diff}
