# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A VLAN-backed network with one contract over vSphere and Proxmox VE.

Each backend reads the network as ``{name, vlan, ...}`` (or None when it does not exist) and
creates, updates or deletes it. The module decides; backends only do.
"""

from __future__ import annotations

from ansible_collections.twinsite.dc.plugins.module_utils._cluster import vsphere_cluster
from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError


class VsphereDistributed:
    """A distributed port group with a VLAN ID on a DVS of the cluster."""

    def __init__(self, client, cluster: dict, params: dict):
        from pyVmomi import vim

        self.client, self.name, self.obj = client, params["name"], f"port group {params['name']!r}"
        rows = client.retrieve_many({vim.dvs.DistributedVirtualPortgroup: ["name", "config"],
                                     vim.DistributedVirtualSwitch: ["name", "summary.hostMember"]})
        self.dvs = self._pick_dvs(rows[vim.DistributedVirtualSwitch], client, cluster, params.get("switch"))
        self.pg = next((r for r in rows[vim.dvs.DistributedVirtualPortgroup]
                        if r["name"] == self.name and r["config"].distributedVirtualSwitch == self.dvs["_obj"]), None)

    @staticmethod
    def _pick_dvs(switches: list[dict], client, cluster: dict, wanted: str | None) -> dict:
        if wanted:
            found = [s for s in switches if s["name"] == wanted]
            if not found:
                raise TwinsiteError(f"no such distributed switch (vCenter has: {', '.join(sorted(s['name'] for s in switches)) or 'none'})",
                                    obj=f"DVS {wanted!r}", action="lookup")
            return found[0]
        # Default: the one DVS the cluster's hosts are members of.
        _, hosts = vsphere_cluster(client, cluster)
        members = {h["_obj"]._moId for h in hosts}
        found = [s for s in switches if members & {h._moId for h in s.get("summary.hostMember") or []}] or switches
        if len(found) != 1:
            raise TwinsiteError(f"{len(found)} distributed switches ({', '.join(sorted(s['name'] for s in found))}); name one with switch",
                                obj=f"cluster {cluster.get('cluster')!r}", action="choosing a distributed switch")
        return found[0]

    def read(self) -> dict | None:
        if self.pg is None:
            return None
        vlan = getattr(self.pg["config"].defaultPortConfig, "vlan", None)
        return {"name": self.name, "vlan": getattr(vlan, "vlanId", None), "switch": self.dvs["name"], "switch_type": "distributed"}

    def _spec(self, vlan: int, config=None):
        from pyVmomi import vim

        port = vim.dvs.VmwareDistributedVirtualSwitch.VmwarePortConfigPolicy(
            vlan=vim.dvs.VmwareDistributedVirtualSwitch.VlanIdSpec(vlanId=vlan, inherited=False))
        spec = vim.dvs.DistributedVirtualPortgroup.ConfigSpec(name=self.name, type="earlyBinding", numPorts=8, autoExpand=True,
                                                              defaultPortConfig=port)
        if config is not None:
            # A reconfigure must carry the version it read (and vcsim replaces every field: send them all).
            spec.configVersion, spec.numPorts, spec.description = config.configVersion, config.numPorts, config.description
        return spec

    def create(self, want: dict) -> None:
        task = self.client.add_dv_portgroup(self.dvs["_obj"], self._spec(want["vlan"]))
        self.client.wait_task(task, obj=self.obj, action=f"creation on DVS {self.dvs['name']!r}")

    def update(self, want: dict) -> None:
        task = self.client.reconfigure_dv_portgroup(self.pg["_obj"], self._spec(want["vlan"], self.pg["config"]))
        self.client.wait_task(task, obj=self.obj, action=f"VLAN change to {want['vlan']}")

    def delete(self) -> None:
        self.client.wait_task(self.client.destroy(self.pg["_obj"]), obj=self.obj, action="removal")


class VsphereStandard:
    """A standard port group with the same name and VLAN on every host of the cluster."""

    def __init__(self, client, cluster: dict, params: dict):
        self.client, self.name, self.obj = client, params["name"], f"port group {params['name']!r}"
        self.vswitch = params.get("switch") or "vSwitch0"
        _, self.hosts = vsphere_cluster(client, cluster)

    def _on(self, host: dict):
        # The network system's own view (one read per host): vcsim does not mirror port groups added
        # through it into the host's config.network, and on vCenter both are the same.
        if "_portgroups" not in host:
            host["_portgroups"] = self.client.host_portgroups(host["_obj"].configManager.networkSystem)
        return next((p.spec for p in host["_portgroups"] or [] if p.spec.name == self.name), None)

    def read(self) -> dict | None:
        found = {h["name"]: self._on(h) for h in self.hosts}
        if not any(found.values()):
            return None
        # A host without it, or with another VLAN, shows as vlan None: the next apply fixes it.
        vlans = {s.vlanId if s else None for s in found.values()}
        return {"name": self.name, "vlan": vlans.pop() if len(vlans) == 1 else None, "switch": self.vswitch, "switch_type": "standard",
                "hosts": sorted(h for h, s in found.items() if s)}

    def _spec(self, vlan: int):
        from pyVmomi import vim

        return vim.host.PortGroup.Specification(name=self.name, vlanId=vlan, vswitchName=self.vswitch, policy=vim.host.NetworkPolicy())

    def _each_host(self, action: str, call) -> None:
        from pyVmomi import vmodl

        for host in self.hosts:
            try:
                call(host)
            except vmodl.MethodFault as fault:
                raise TwinsiteError(f"{type(fault).__name__.rsplit('.', 1)[-1]}: {fault.msg}", obj=f"{self.obj} on host {host['name']!r}",
                                    action=action) from None

    def create(self, want: dict) -> None:
        self.update(want)

    def update(self, want: dict) -> None:
        def one(host):
            ns = host["_obj"].configManager.networkSystem
            if self._on(host) is None:
                self.client.add_host_portgroup(ns, self._spec(want["vlan"]))
            elif self._on(host).vlanId != want["vlan"]:
                self.client.update_host_portgroup(ns, self.name, self._spec(want["vlan"]))

        self._each_host("creation or VLAN change", one)

    def delete(self) -> None:
        def one(host):
            if self._on(host) is not None:
                self.client.remove_host_portgroup(host["_obj"].configManager.networkSystem, self.name)

        self._each_host("removal", one)


class ProxmoxVnet:
    """An SDN vnet with a VLAN tag in a zone; the dc_networks name goes in its alias, because a
    vnet id is at most 8 lower-case letters and digits."""

    def __init__(self, client, cluster: dict, params: dict):
        self.client, self.name = client, params["name"]
        self.vnet = params.get("vnet") or params["name"]
        self.zone = params.get("zone") or cluster.get("sdn_zone")
        self.obj = f"SDN vnet {self.vnet!r}"
        if not self.zone:
            raise TwinsiteError("no SDN zone: set zone, or sdn_zone on the cluster in the model", obj=self.obj, action="lookup")
        self.row = next((v for v in client.sdn_vnets() if v.get("vnet") == self.vnet), None)

    def read(self) -> dict | None:
        if self.row is None:
            return None
        return {"name": self.row.get("alias") or self.vnet, "vlan": self.row.get("tag"), "vnet": self.vnet, "zone": self.row.get("zone")}

    def create(self, want: dict) -> None:
        self._write("creation", self.client.post, "cluster/sdn/vnets", vnet=self.vnet, zone=self.zone, tag=want["vlan"], alias=self.name)

    def update(self, want: dict) -> None:
        self._write(f"VLAN change to {want['vlan']}", self.client.put, f"cluster/sdn/vnets/{self.vnet}", tag=want["vlan"], alias=self.name)

    def delete(self) -> None:
        self._write("removal", self.client.delete, f"cluster/sdn/vnets/{self.vnet}")

    def _write(self, action: str, call, path: str, **params) -> None:
        try:
            call(path, **params)
            self.client.sdn_apply()
        except TwinsiteError as exc:
            raise TwinsiteError(exc.reason, obj=self.obj, action=action) from None


def backend(cluster: dict, client, params: dict):
    if cluster["type"] == "proxmox":
        return ProxmoxVnet(client, cluster, params)
    return (VsphereStandard if params["switch_type"] == "standard" else VsphereDistributed)(client, cluster, params)
