# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the DR drill: map production addresses onto the isolated network."""

from __future__ import annotations

DOCUMENTATION = r"""
name: dr_translate
short_description: Map every production address in a value onto the drill's isolated network
version_added: 0.3.0
description:
  - Walks strings, lists and dicts and rewrites every IPv4 address (or CIDR network) of a mapped
    production network to the address with the same host part in the isolated network.
  - Used to configure a service rebuilt by a DR drill with its role's settings from production.
positional: address_map
options:
  _input:
    description: Any value.
    type: raw
    required: true
  address_map:
    description: The C(address_map) of M(twinsite.dc.dr_plan), pairs of [production subnet, isolated subnet].
    type: list
    elements: list
    required: true
"""

EXAMPLES = r"""
- name: The portal's settings, pointed at the rebuilt database
  ansible.builtin.debug:
    msg: "{{ {'web_portal_db_host': '192.0.2.42'} | twinsite.dc.dr_translate([['192.0.2.0/24', '198.51.100.0/24']]) }}"
"""

RETURN = r"""
_value:
  description: The value with mapped addresses.
  type: raw
"""

import ipaddress

from ansible.errors import AnsibleFilterError

from ansible_collections.twinsite.dc.plugins.module_utils import _dr


def dr_translate(value, address_map):
    try:
        pairs = [(ipaddress.ip_network(a), ipaddress.ip_network(b)) for a, b in address_map]
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"dr_translate expects the plan's address_map, [[production subnet, isolated subnet]]: {exc}") from exc
    return _dr.translate(value, pairs)


def dr_seconds(start, end):
    """Seconds from ``start`` to ``end``, two ISO 8601 UTC times (RTO, achieved RPO)."""
    try:
        a, b = _dr.parse_time(str(start)), _dr.parse_time(str(end))
    except ValueError as exc:
        raise AnsibleFilterError(f"dr_seconds expects two ISO 8601 times, got {start!r} and {end!r}") from exc
    if a is None or b is None:
        raise AnsibleFilterError(f"dr_seconds expects two ISO 8601 times, got {start!r} and {end!r}")
    return round((b - a).total_seconds(), 1)


def dr_service_result(svc, host, drill_started, now, restored, probes, failure, times):
    """One service's line of the drill report (see _dr.service_result)."""
    return _dr.service_result(svc, host, drill_started, now, restored, probes, failure or None, times or {})


def dr_report(plan, **kw):
    """The drill's report.json from the plan and what each phase gathered (see _dr.report)."""
    if "production_phases" in kw:
        kw["production"] = _dr.production_checks(plan, kw.pop("production_phases"))
    if "isolation_from_drill" in kw:
        kw["isolation"] = _dr.isolation_checks(kw.pop("isolation_from_drill"), kw.pop("isolation_from_production", []))
    return _dr.report(plan, **kw)


def dr_ledger_entries(plan):
    """What a drill of the plan may create, as ledger entries (see _dr.ledger_entries)."""
    return _dr.ledger_entries(plan)


def dr_undo_script(entries):
    """The bash script that undoes one host's ledger entries, in the order given (see _dr.undo_script)."""
    try:
        return _dr.undo_script(list(entries))
    except (KeyError, TypeError) as exc:
        raise AnsibleFilterError(f"dr_undo_script expects ledger entries (id, kind and the kind's list): {exc!r}") from exc


def dr_red_summary(report):
    """Why a drill report is red, in one line."""
    return _dr.red_summary(report)


def dr_fw_flow(flow):
    """A firewall_pair required flow as a twinsite.dc.flow_check item."""
    return {"name": f"{flow.get('rule', 'flow')} {flow.get('source_host')} -> {flow['destination']}:{flow['port']}",
            "host": flow["destination"], "port": int(flow["port"]),
            "expect": "open" if flow.get("expect", "pass") == "pass" else "blocked"}


def dr_firewall_step(addresses, flows, firewall, networks):
    """The firewall step of a failover/failback report (see _dr.firewall_step)."""
    try:
        return _dr.firewall_step(addresses, flows, firewall, networks)
    except Exception as exc:  # a policy the compiler refuses: name it in the report, do not crash the run
        return {"name": "firewall", "status": "failed", "detail": f"cannot read the firewall policy: {exc}"}


class FilterModule:
    def filters(self):
        return {"dr_translate": dr_translate, "dr_seconds": dr_seconds, "dr_service_result": dr_service_result,
                "dr_report": dr_report, "dr_red_summary": dr_red_summary,
                "dr_ledger_entries": dr_ledger_entries, "dr_undo_script": dr_undo_script,
                "dr_fw_flow": dr_fw_flow, "dr_firewall_step": dr_firewall_step}
