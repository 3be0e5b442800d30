# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: proxmox
short_description: The guests of a Proxmox VE cluster as hosts, in three API calls
version_added: 0.1.0
description:
  - Makes every guest (QEMU VM, LXC container, template) of a Proxmox VE cluster an inventory host,
    with groups by node, status, type, template, pool and tag.
  - Three API calls whatever the number of guests, the login, C(/cluster/resources?type=vm) and
    C(/cluster/status). Each guest's configuration costs one more call, so it is read only with
    O(want_config), a few at a time (O(config_workers)).
  - "Host variables (all prefixed C(pve_)): C(vmid), C(name), C(node), C(type) (C(qemu) or C(lxc)),
    C(status) (C(running), C(stopped), or C(unknown) on an offline node), C(template), C(cpus),
    C(memory_mb), C(disk_gb), C(pool) (or null), C(tags) (a list), C(cluster) (the cluster's name, null
    for a single node), C(node_online); with O(want_config) also C(config), the guest's configuration as PVE returns it."
  - "Groups (with O(group_prefix)): C(pve_node_<node>), C(pve_status_<status>), C(pve_qemu), C(pve_lxc),
    C(pve_templates), C(pve_pool_<pool>), C(pve_tag_<tag>). Names are lower case with C(_) for any
    character other than a letter or digit."
  - Two guests of the same name become C(<name>) and C(<name>_<vmid>), with a warning.
  - The configuration file name must end with C(.twinsite_proxmox.yml) or C(.twinsite_proxmox.yaml).
extends_documentation_fragment:
  - constructed
  - inventory_cache
  - twinsite.dc.hypervisor_api
options:
  plugin:
    description: Marks the file as this plugin's configuration.
    type: str
    required: true
    choices: [twinsite.dc.proxmox]
  # hostname, port, username, password, validate_certs and ca_bundle: twinsite.dc.hypervisor_api,
  # with what is Proxmox VE's here: descriptions naming it, its default port, its environment variables.
  hostname:
    description: Address of any node of the cluster.
    env:
      - name: TWINSITE_PVE_HOST
  port:
    default: 8006
    env:
      - name: TWINSITE_PVE_PORT
  username:
    description: API user with its realm, such as C(inventory@pve); the C(PVEAuditor) role is enough.
    env:
      - name: TWINSITE_PVE_USER
  password:
    env:
      - name: TWINSITE_PVE_PASSWORD
  ca_bundle:
    description:
      - PEM file of the CA(s) that signed the nodes' certificates (on PVE, C(/etc/pve/pve-root-ca.pem)).
        Without it, the system's CAs.
      - A relative path written in the configuration file is relative to that file.
    env:
      - name: TWINSITE_PVE_CA_BUNDLE
  want_config:
    description: Read each guest's configuration into C(pve_config); one API call per guest.
    type: bool
    default: false
  config_workers:
    description: How many configuration reads run at once with O(want_config); small, to spare the cluster.
    type: int
    default: 4
  group_prefix:
    description: Prefix of every group this plugin makes.
    type: str
    default: pve_
requirements: [proxmoxer, requests]
author: twinsite engineers
"""

EXAMPLES = r"""
# inventory/town/pve.twinsite_proxmox.yml
plugin: twinsite.dc.proxmox
hostname: pve1.town.example
username: inventory@pve
password: !vault |
  $ANSIBLE_VAULT;1.1;AES256
  ...
ca_bundle: ../../files/pve-root-ca.pem

---
# Credentials from the environment (TWINSITE_PVE_HOST, _USER, _PASSWORD, _CA_BUNDLE); configs read
# eight at a time, a group per OS type, running guests only in "up".
plugin: twinsite.dc.proxmox
want_config: true
config_workers: 8
keyed_groups:
  - key: pve_config.ostype | default('unknown')
    prefix: os
groups:
  up: pve_status == 'running'
"""

import re
from concurrent.futures import ThreadPoolExecutor

from ansible.errors import AnsibleParserError

from ansible_collections.twinsite.dc.plugins.module_utils import _proxmox
from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError
from ansible_collections.twinsite.dc.plugins.plugin_utils._inventory import TwinsiteInventory

MIB = 1024**2
GIB = 1024**3


class InventoryModule(TwinsiteInventory):
    NAME = "twinsite.dc.proxmox"
    SUFFIXES = (".twinsite_proxmox.yml", ".twinsite_proxmox.yaml")
    ENV_PREFIX = "TWINSITE_PVE"

    def fetch(self) -> list[dict]:
        if not _proxmox.HAS_PROXMOXER:
            raise AnsibleParserError(f"{self.NAME} needs proxmoxer and requests on the controller: "
                                     f"pip install proxmoxer requests ({_proxmox.PROXMOXER_IMPORT_ERROR})")
        client = _proxmox.ProxmoxClient(**self.connection()).connect()
        guests = client.resources("vm")
        status = client.cluster_status()
        configs = self.configs(client, guests) if self.get_option("want_config") else None
        return self.records(guests, status, configs)

    def configs(self, client, guests: list[dict]) -> dict[int, dict]:
        """Each guest's config, ``config_workers`` calls at a time. A guest whose config cannot be
        read (deleted since the resource list, node gone) is warned about and keeps no config."""
        def read(guest):
            try:
                return guest["vmid"], client.guest_config(guest["node"], guest["type"], guest["vmid"])
            except TwinsiteError as exc:
                self.display.warning(f"{self.NAME}: config of guest {guest['vmid']} ({guest.get('name')}) not read: {exc}")
                return guest["vmid"], None

        with ThreadPoolExecutor(max_workers=max(1, self.get_option("config_workers"))) as pool:
            return dict(pool.map(read, guests))

    def records(self, guests: list[dict], status: list[dict], configs: dict[int, dict] | None) -> list[dict]:
        cluster = next((item.get("name") for item in status if item.get("type") == "cluster"), None)
        online = {item["name"]: bool(item.get("online")) for item in status if item.get("type") == "node"}
        records = []
        for guest in sorted(guests, key=lambda g: g["vmid"]):
            # PVE writes tags separated by ";" (older releases also "," or spaces).
            tags = sorted({t for t in re.split(r"[;, ]+", guest.get("tags") or "") if t})
            hostvars = {
                "pve_vmid": guest["vmid"],
                "pve_name": guest.get("name"),
                "pve_node": guest["node"],
                "pve_type": guest["type"],
                "pve_status": guest.get("status"),
                "pve_template": bool(guest.get("template")),
                "pve_cpus": guest.get("maxcpu"),
                "pve_memory_mb": (guest.get("maxmem") or 0) // MIB,
                "pve_disk_gb": round((guest.get("maxdisk") or 0) / GIB, 1),
                "pve_pool": guest.get("pool"),
                "pve_tags": tags,
                "pve_cluster": cluster,
                "pve_node_online": online.get(guest["node"]),
            }
            if configs is not None:
                hostvars["pve_config"] = configs.get(guest["vmid"])
            groups = [self.group("node", guest["node"]), self.group(guest["type"])]
            groups += [self.group("status", hostvars["pve_status"])] if hostvars["pve_status"] else []
            groups += [self.group("templates")] if hostvars["pve_template"] else []
            groups += [self.group("pool", hostvars["pve_pool"])] if hostvars["pve_pool"] else []
            groups += [self.group("tag", tag) for tag in tags]
            # A guest has no name until PVE gives it one (a VM created without): call it by its vmid.
            records.append({"name": guest.get("name") or str(guest["vmid"]), "id": guest["vmid"], "vars": hostvars, "groups": groups})
        return records
