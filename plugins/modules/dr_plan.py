#!/usr/bin/python
# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: dr_plan
short_description: Work out the DR recovery plan and its readiness from the site model
version_added: 0.3.0
description:
  - Orders the services that have a C(recovery) block into dependency tiers (a service comes one
    tier after the deepest service it depends on; services of one tier recover in parallel), adds
    the services a chosen service depends on, and says where each is rebuilt.
  - Maps every production address of the networks in C(dc_dr.drill.network_map) onto the isolated
    network with the same host part, and gives each service its mapped addresses and probes. An
    C(http) probe gets a C(compare_url), the primary's page it must equal.
  - With O(backup_status), judges each service's readiness, the age of the newest snapshot of each
    copy against the service's RPO target.
  - Changes nothing; runs on the controller.
options:
  services:
    description: C(dc_services).
    type: list
    elements: dict
    required: true
  policies:
    description: C(dc_backup_policies).
    type: list
    elements: dict
    default: []
  dr:
    description: C(dc_dr).
    type: dict
    required: true
  networks:
    description: C(dc_networks).
    type: list
    elements: dict
    required: true
  host_interfaces:
    description: Production host name to its C(host_interfaces).
    type: dict
    required: true
  only:
    description: Plan only these services (and what they depend on). Default every service with a C(recovery) block.
    type: list
    elements: str
    default: []
  dependencies:
    description:
      - Add what the services of O(only) depend on, transitively. V(false) plans O(only) alone (a failback of the
        services still at the secondary site, which must not move those already back again).
    type: bool
    default: true
  mode:
    description:
      - C(drill) maps production addresses onto the isolated network (C(dc_dr.drill.network_map)).
      - C(failover) keeps them, on the production networks the recovery hosts take over (C(dc_dr.failover.networks)).
    type: str
    choices: [drill, failover]
    default: drill
  backup_status:
    description: The JSON C(twinsite-backup status) of the secondary site's repository host.
    type: dict
  evaluate_at:
    description: Judge readiness as of this UTC time (ISO 8601) instead of now.
    type: str
  vms:
    description: The model's C(dc_vms), for the VM-level methods C(replica_vm) and C(vm_backup_restore) (the networks of the replica or source VM).
    type: list
    elements: dict
    default: []
  vm_points:
    description:
      - Per service of a VM-level method, what the hypervisor said - C(exists) (the replica), C(newest) (ISO time of the
        newest vzdump backup), C(error).
    type: dict
    default: {}
attributes:
  check_mode:
    support: full
    description: Reads only.
  diff_mode:
    support: none
author: twinsite engineers
"""

EXAMPLES = r"""
- name: Work out the plan of a drill of the portal (and what it depends on)
  twinsite.dc.dr_plan:
    services: "{{ dc_services }}"
    policies: "{{ dc_backup_policies }}"
    dr: "{{ dc_dr }}"
    networks: "{{ dc_networks }}"
    host_interfaces: {web1: [{network: servers, address: 192.0.2.43}]}
    only: [portal]
  register: plan
"""

RETURN = r"""
plan:
  description: The plan.
  returned: always
  type: dict
  sample:
    tiers: [[dns, portal-db], [portal]]
    address_map: [["172.31.20.0/24", "172.31.70.0/24"]]
    services:
      - {name: portal, tier: 2, method: restore_data, host: rec3, role: twinsite.dc.web_portal,
         addresses: {"172.31.20.43": "172.31.70.43/24"}, rto_target_s: 3600, rpo_target_s: 14400}
    not_covered: []
readiness:
  description: Per service, the newest snapshot of each copy and whether it meets the RPO target (with O(backup_status)).
  returned: always
  type: list
  elements: dict
  sample:
    - {name: dns, ready: true, reasons: [], copies: {secondary: {newest: "2026-11-22T18:00:00Z", age_s: 120, fresh: true}}}
ready:
  description: Every planned service is ready and every service is covered by the plan.
  returned: always
  type: bool
"""

import datetime as dt

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.twinsite.dc.plugins.module_utils import _dr


def main():
    module = AnsibleModule(
        argument_spec={
            "services": {"type": "list", "elements": "dict", "required": True},
            "policies": {"type": "list", "elements": "dict", "default": []},
            "dr": {"type": "dict", "required": True},
            "networks": {"type": "list", "elements": "dict", "required": True},
            "host_interfaces": {"type": "dict", "required": True},
            "only": {"type": "list", "elements": "str", "default": []},
            "dependencies": {"type": "bool", "default": True},
            "mode": {"type": "str", "choices": ["drill", "failover"], "default": "drill"},
            "backup_status": {"type": "dict"},
            "evaluate_at": {"type": "str"},
            "vms": {"type": "list", "elements": "dict", "default": []},
            "pools": {"type": "list", "elements": "dict", "default": []},
            "vm_points": {"type": "dict", "default": {}},
        },
        supports_check_mode=True,
    )
    p = module.params
    try:
        plan = _dr.plan(p["services"], p["policies"], p["dr"], p["networks"], p["host_interfaces"], p["only"] or None, p["mode"],
                        vms=p["vms"], pools=p["pools"], dependencies=p["dependencies"])
        when = _dr.parse_time(p["evaluate_at"]) if p["evaluate_at"] else dt.datetime.now(dt.timezone.utc)
    except _dr.PlanError as exc:
        module.fail_json(msg=str(exc))
    except ValueError as exc:
        module.fail_json(msg=f"evaluate_at {p['evaluate_at']!r}: {exc}")
    ready = _dr.readiness(plan, p["backup_status"], when, p["vm_points"])
    module.exit_json(changed=False, plan=plan, readiness=ready,
                     ready=all(r["ready"] for r in ready) and not plan["not_covered"])


if __name__ == "__main__":
    main()
