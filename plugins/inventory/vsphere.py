# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: vsphere
short_description: The VMs of a vCenter as hosts, read in one PropertyCollector retrieve
version_added: 0.1.0
description:
  - Makes every VM (and template) of a vCenter an inventory host, with its placement and size as
    host variables and groups by cluster, folder, tag, power state and template.
  - Reads in bulk whatever the number of VMs, a ContainerView and one paged PropertyCollector
    retrieve for VMs, hosts, clusters, folders, datastores and networks together, joined in memory.
    With O(with_tags), the tagging REST API adds one call per tag and per category and
    one for all associations.
  - "Host variables (all prefixed C(vsphere_)): C(name), C(moid) (the managed object id, unique in the vCenter),
    C(uuid) (BIOS UUID), C(power_state) (C(poweredOn), C(poweredOff), C(suspended)), C(template), C(guest_ip), C(cpus),
    C(memory_mb), C(guest_id), C(datacenter), C(cluster), C(host), C(folder) (path below the
    datacenter's VM folder, such as C(Servers/Linux), empty for that folder itself), C(datastores), C(networks), C(tags) (tag names)
    and C(tag_categories) (category to tag names)."
  - "C(ansible_host) is not set, so that a live inventory combined with the site model never overrides
    the model's addresses; to reach VMs at the address VMware Tools reports, set O(compose) to
    C({ansible_host: vsphere_guest_ip})."
  - "Groups (with O(group_prefix)): C(vsphere_cluster_<cluster>), C(vsphere_folder_<path>),
    C(vsphere_tag_<tag>), C(vsphere_power_on), C(vsphere_power_off), C(vsphere_power_suspended),
    C(vsphere_templates). Names are lower case with C(_) for any character other than a letter or
    digit: cluster C(Cluster-Primary) gives C(vsphere_cluster_cluster_primary)."
  - Two VMs of the same name (in two folders) become C(<name>) and C(<name>_<moid>), with a warning.
  - The configuration file name must end with C(.twinsite_vsphere.yml) or C(.twinsite_vsphere.yaml).
extends_documentation_fragment:
  - constructed
  - inventory_cache
  - twinsite.dc.hypervisor_api
options:
  plugin:
    description: Marks the file as this plugin's configuration.
    type: str
    required: true
    choices: [twinsite.dc.vsphere]
  # hostname, port, username, password, validate_certs and ca_bundle: twinsite.dc.hypervisor_api,
  # with what is vCenter's here: descriptions naming it, its default port, its environment variables.
  hostname:
    description: vCenter host name or address.
    env:
      - name: TWINSITE_VSPHERE_HOST
  port:
    default: 443
    env:
      - name: TWINSITE_VSPHERE_PORT
  username:
    description: vCenter user; read-only rights on the inventory are enough (tags need the tag read privilege).
    env:
      - name: TWINSITE_VSPHERE_USER
  password:
    env:
      - name: TWINSITE_VSPHERE_PASSWORD
  ca_bundle:
    env:
      - name: TWINSITE_VSPHERE_CA_BUNDLE
  with_tags:
    description:
      - Read vSphere tags (vCenter's vAPI tagging REST service) for the C(vsphere_tags) variables and
        C(vsphere_tag_*) groups.
      - Turn off for an endpoint without the tagging service (an ESXi host, a simulator without it),
        which otherwise fails with a message saying so.
    type: bool
    default: true
  page_size:
    description: VMs (and other objects) per page of the PropertyCollector retrieve; bigger pages mean fewer round trips.
    type: int
    default: 1000
  group_prefix:
    description: Prefix of every group this plugin makes.
    type: str
    default: vsphere_
requirements: [pyvmomi]
author: twinsite engineers
"""

EXAMPLES = r"""
# inventory/town/vcenter.twinsite_vsphere.yml
plugin: twinsite.dc.vsphere
hostname: vcenter.town.example
username: inventory-reader@vsphere.local
password: !vault |
  $ANSIBLE_VAULT;1.1;AES256
  ...
ca_bundle: ../../files/town-ca.pem

---
# Credentials from the environment (TWINSITE_VSPHERE_HOST, _USER, _PASSWORD, _CA_BUNDLE), VMs
# reached at the address VMware Tools reports, a group per guest OS, and one hour of cache.
plugin: twinsite.dc.vsphere
compose:
  ansible_host: vsphere_guest_ip
keyed_groups:
  - key: vsphere_guest_id
    prefix: os
groups:
  big_vms: vsphere_memory_mb >= 16384
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: .cache/inventory
cache_timeout: 3600
"""

from ansible.errors import AnsibleParserError

from ansible_collections.twinsite.dc.plugins.module_utils import _vsphere
from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError
from ansible_collections.twinsite.dc.plugins.plugin_utils._inventory import TwinsiteInventory

POWER = {"poweredOn": "on", "poweredOff": "off", "suspended": "suspended"}


def _properties() -> dict:
    """What one retrieve reads: the VMs' own properties, and the names of what they point at."""
    vim = _vsphere.vim
    return {
        vim.VirtualMachine: ["name", "config.uuid", "config.template", "config.hardware.numCPU",
                             "config.hardware.memoryMB", "config.guestId", "runtime.powerState", "runtime.host",
                             "guest.ipAddress", "datastore", "network", "parent"],
        vim.HostSystem: ["name", "parent"],
        vim.ClusterComputeResource: ["name"],
        vim.Datacenter: ["name"],
        vim.Folder: ["name", "parent"],
        vim.Datastore: ["name"],
        vim.Network: ["name"],
    }


class InventoryModule(TwinsiteInventory):
    NAME = "twinsite.dc.vsphere"
    SUFFIXES = (".twinsite_vsphere.yml", ".twinsite_vsphere.yaml")
    ENV_PREFIX = "TWINSITE_VSPHERE"

    def fetch(self) -> list[dict]:
        if not _vsphere.HAS_PYVMOMI:
            raise AnsibleParserError(f"{self.NAME} needs pyvmomi on the controller: pip install pyvmomi ({_vsphere.PYVMOMI_IMPORT_ERROR})")
        client = _vsphere.VsphereClient(**self.connection()).connect()
        try:
            objects = client.retrieve_many(_properties(), page_size=self.get_option("page_size"))
            tags = self.tags(client) if self.get_option("with_tags") else {}
        finally:
            client.close()
        return self.records(objects, tags)

    def tags(self, client) -> dict[str, list[dict]]:
        try:
            return client.tags()
        except TwinsiteError as exc:
            raise TwinsiteError(f"{exc}; set with_tags: false to build the inventory without tags") from None

    def records(self, objects: dict, tags: dict[str, list[dict]]) -> list[dict]:
        """Join VMs with their hosts, clusters, folders, datastores and networks by managed object id."""
        vim = _vsphere.vim
        by_id = {t: {row["_obj"]._moId: row for row in rows} for t, rows in objects.items()}
        names = {t: {moid: row.get("name") for moid, row in rows.items()} for t, rows in by_id.items()}
        folders = _FolderPaths(by_id[vim.Folder], names[vim.Datacenter])
        records = []
        for vm in objects[vim.VirtualMachine]:
            moid = vm["_obj"]._moId
            host = by_id[vim.HostSystem].get(_moid(vm.get("runtime.host"))) or {}
            folder, datacenter = folders.path(_moid(vm.get("parent")))
            vm_tags = tags.get(moid, [])
            categories: dict[str, list[str]] = {}
            for tag in vm_tags:
                categories.setdefault(tag["category"], []).append(tag["name"])
            hostvars = {
                "vsphere_name": vm["name"],
                "vsphere_moid": moid,
                "vsphere_uuid": vm.get("config.uuid"),
                # pyvmomi's enum values are str subclasses, which Ansible does not store: plain str.
                "vsphere_power_state": str(vm["runtime.powerState"]) if vm.get("runtime.powerState") else None,
                "vsphere_template": bool(vm.get("config.template")),
                "vsphere_guest_ip": vm.get("guest.ipAddress"),
                "vsphere_cpus": vm.get("config.hardware.numCPU"),
                "vsphere_memory_mb": vm.get("config.hardware.memoryMB"),
                "vsphere_guest_id": vm.get("config.guestId"),
                "vsphere_datacenter": datacenter,
                # A host's parent is its cluster, or a ComputeResource when it stands alone (no cluster).
                "vsphere_cluster": names[vim.ClusterComputeResource].get(_moid(host.get("parent"))),
                "vsphere_host": host.get("name"),
                "vsphere_folder": folder,
                "vsphere_datastores": sorted(names[vim.Datastore].get(d._moId, d._moId) for d in vm.get("datastore", [])),
                "vsphere_networks": sorted(names[vim.Network].get(n._moId, n._moId) for n in vm.get("network", [])),
                "vsphere_tags": sorted({tag["name"] for tag in vm_tags}),
                "vsphere_tag_categories": {c: sorted(n) for c, n in sorted(categories.items())},
            }
            power = hostvars["vsphere_power_state"]
            groups = [self.group("power", POWER.get(power, power))] if power else []
            groups += [self.group("cluster", hostvars["vsphere_cluster"])] if hostvars["vsphere_cluster"] else []
            groups += [self.group("folder", folder)] if folder else []
            groups += [self.group("templates")] if hostvars["vsphere_template"] else []
            groups += [self.group("tag", name) for name in hostvars["vsphere_tags"]]
            records.append({"name": vm["name"], "id": moid, "vars": hostvars, "groups": groups})
        return records


class _FolderPaths:
    """A VM folder's path below its datacenter's root VM folder ("Servers/Linux"), and the
    datacenter's name, walked up through the retrieved folders' parents (no API call)."""

    def __init__(self, folders: dict, datacenters: dict):
        self._folders, self._datacenters, self._known = folders, datacenters, {}

    def path(self, moid: str | None) -> tuple[str | None, str | None]:
        if moid not in self._folders:
            return None, None  # a VM in a vApp has no folder parent
        if moid not in self._known:
            folder = self._folders[moid]
            parent = _moid(folder.get("parent"))
            if parent in self._datacenters:  # the datacenter's own "vm" folder: the root, not in the path
                self._known[moid] = ("", self._datacenters[parent])
            else:
                above, datacenter = self.path(parent)
                self._known[moid] = ("/".join(p for p in (above, folder["name"]) if p), datacenter)
        return self._known[moid]


def _moid(ref) -> str | None:
    return ref._moId if ref is not None else None
