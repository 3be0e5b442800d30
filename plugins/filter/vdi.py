# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the VDI pools: the zero clients' connection profiles, rendered on the controller."""

from __future__ import annotations

DOCUMENTATION = r"""
name: vdi_profiles
short_description: The connection profiles of VDI pools, as files to write
version_added: 0.6.0
description:
  - For each pool of the input, the files a zero or thin client is given to start the pool's desktop
    (see docs/vdi-brokers.md) - with a Horizon broker a C(vmware-view://) URI and an INI for thin-client
    managers; without one an C(.rdp) file (protocol rdp) or a virt-viewer C(.vv) file (protocol spice).
  - Deterministic, so a pool that did not change gives the same bytes and writing them changes nothing.
positional: broker
options:
  _input:
    description: C(dc_vdi_pools) items.
    type: list
    elements: dict
    required: true
  broker:
    description: C(dc_vdi_broker), or none.
    type: dict
"""

EXAMPLES = r"""
- name: Write the profiles
  ansible.builtin.copy:
    dest: "/srv/thin-clients/{{ item.pool }}/{{ item.file }}"
    content: "{{ item.content }}"
    mode: "0644"
  loop: "{{ dc_vdi_pools | twinsite.dc.vdi_profiles(dc_vdi_broker) }}"
"""

RETURN = r"""
_value:
  description: One item per file - C(pool), C(file) (its name), C(content).
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError
from ansible_collections.twinsite.dc.plugins.module_utils._vdi_profiles import profiles


def vdi_profiles(pools, broker=None):
    if not isinstance(pools, list):
        raise AnsibleFilterError(f"vdi_profiles: the input must be a list of pools, found {type(pools).__name__}")
    out = []
    for pool in pools:
        try:
            files = profiles(pool, broker if isinstance(broker, dict) else None, [])
        except TwinsiteError as exc:
            raise AnsibleFilterError(f"vdi_profiles: {exc}") from None
        out += [{"pool": pool["name"], "file": name, "content": content} for name, content in sorted(files.items())]
    return out


class FilterModule:
    def filters(self):
        return {"vdi_profiles": vdi_profiles}
