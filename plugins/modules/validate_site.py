#!/usr/bin/python
# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# The work is done by the action plugin of the same name, on the controller.

from __future__ import annotations

DOCUMENTATION = r"""
module: validate_site
short_description: Validate the whole site model and report every problem at once
version_added: 0.1.0
description:
  - Reads the site model's files in the inventory directory (C(group_vars/all), C(host_vars), the
    YAML inventory) and checks them against the JSON schemas in C(schemas/), then against the
    cross-reference rules - VLAN ids unique per site, addresses inside their subnets, no
    overlapping subnets, every referenced network, host, VM, cluster, template, service, zone and
    backup policy exists, an acyclic service dependency graph, and RPOs the backup schedule can meet.
  - "Every problem names the file, the path to the value and what was expected, for example
    C(inventory/lab/group_vars/all/services.yml: dc_services[2].depends_on[0]: 'dnsx' is not a service (known: dns, portal))."
  - Fails when there is any problem; the list is in C(problems).
  - Values that are Jinja templates are only known at run time and are not judged.
options:
  inventory:
    description:
      - Inventory directory (or list of them) to validate. Defaults to every directory given with C(-i).
    type: raw
attributes:
  check_mode:
    support: full
    description: Reads only.
  diff_mode:
    support: none
  action:
    support: full
    description: Runs on the controller.
requirements: [jsonschema, PyYAML]
author: twinsite engineers
"""

EXAMPLES = r"""
- name: Validate the site model before changing anything
  twinsite.dc.validate_site:
"""

RETURN = r"""
problems:
  description: 'One line per problem (file: path: what is wrong), sorted by file and path.'
  returned: always
  type: list
  elements: str
  sample: ["inventory/lab/host_vars/dns1.yml: host_interfaces[1].address: 172.31.99.5 is outside network servers (172.31.20.0/24)"]
inventories:
  description: The inventory directories that were validated.
  returned: always
  type: list
  elements: str
  sample: [inventory/lab]
"""
