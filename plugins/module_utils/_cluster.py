# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""From one item of the model's ``dc_clusters`` to a connected client, and what the snapshot,
network and cluster modules share: the ``cluster`` option, their read-decide-write ``run``, diffs,
and the cluster settings logic."""

from __future__ import annotations

from ansible_collections.twinsite.dc.plugins.module_utils import _proxmox, _vsphere
from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError

# The option every hypervisor module takes: one dc_clusters item, as vm_drift_info takes it.
CLUSTER_OPTION = {"type": "dict", "required": True}


def prepare(module) -> dict:
    """Hide the cluster's password, check its type and the vendor library; return the cluster."""
    from ansible.module_utils.basic import missing_required_lib

    cluster = module.params["cluster"]
    # The cluster's api holds the password: keep it out of logs and the task result.
    if (cluster.get("api") or {}).get("password"):
        module.no_log_values.add(cluster["api"]["password"])
    kind = cluster.get("type")
    if kind not in ("vsphere", "proxmox"):
        module.fail_json(msg=f"cluster {cluster.get('name')!r}: type must be vsphere or proxmox, found {kind!r}")
    if kind == "vsphere" and not _vsphere.HAS_PYVMOMI:
        module.fail_json(msg=missing_required_lib("pyvmomi"))
    if kind == "proxmox" and not _proxmox.HAS_PROXMOXER:
        module.fail_json(msg=missing_required_lib("proxmoxer"))
    return cluster


def connect(cluster: dict):
    """A connected VsphereClient or ProxmoxClient for a dc_clusters item."""
    api = cluster.get("api") or {}
    params = {"hostname": api.get("host"), "port": api.get("port"), "username": api.get("username"),
              "password": api.get("password"), "validate_certs": api.get("validate_certs", True), "ca_bundle": api.get("ca_bundle")}
    if cluster["type"] == "vsphere":
        return _vsphere.VsphereClient.from_params({**params, "port": params["port"] or 443}).connect()
    return _proxmox.ProxmoxClient.from_params({**params, "port": params["port"] or 8006}).connect()


def close(client) -> None:
    if isinstance(client, _vsphere.VsphereClient):
        client.close()


def run(module, cluster: dict, key: str, *, backend, read, plan, write, reread=None, diff_key: str | None = None) -> dict:
    """The skeleton of the snapshot, network and cluster modules: connect, read, decide, write unless
    in check mode, read again, and the result with its diff. The backend-specific pieces:

    - ``backend(client)`` - the object that reads and writes, on the connected client;
    - ``read(obj)`` - the state before;
    - ``plan(before)`` - ``(change, after)``: what to do (falsy: nothing) and the predicted state;
    - ``write(obj, change, before, after)`` - do it (never called in check mode);
    - ``reread(client, obj)`` - the state after a write; default a fresh ``backend`` read.

    The result is ``{"changed", key: after}``, plus the diff in diff mode; ``diff_key`` wraps both
    sides of the diff as ``{diff_key: state}``.
    """
    client = connect(cluster)
    try:
        obj = backend(client)
        before = read(obj)
        change, after = plan(before)
        if change and not module.check_mode:
            write(obj, change, before, after)
            after = reread(client, obj) if reread else read(backend(client))
    finally:
        close(client)
    result = {"changed": bool(change), key: after}
    if change and module._diff:
        result["diff"] = diff({diff_key: before}, {diff_key: after}) if diff_key else diff(before, after)
    return result


def diff(before, after) -> dict:
    """A diff for Ansible: before/after with sorted keys, so the output is stable run to run."""
    return {"before": _sorted(before), "after": _sorted(after)}


def _sorted(value):
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def vsphere_cluster(client, cluster: dict):
    """The ClusterComputeResource of a vSphere dc_clusters item, with its hosts (one retrieve)."""
    from pyVmomi import vim

    want = cluster.get("cluster")
    rows = client.retrieve_many({vim.ClusterComputeResource: ["name", "host", "configurationEx"], vim.HostSystem: ["name", "config.network"]})
    found = [r for r in rows[vim.ClusterComputeResource] if r["name"] == want]
    if not found:
        names = sorted(r["name"] for r in rows[vim.ClusterComputeResource])
        raise TwinsiteError(f"no such cluster in vCenter (it has: {', '.join(names) or 'none'})", obj=f"cluster {want!r}", action="lookup")
    members = {h._moId for h in found[0].get("host") or []}
    hosts = [h for h in rows[vim.HostSystem] if h["_obj"]._moId in members]
    return found[0], hosts


def proxmox_vm(client, name: str) -> dict:
    """The /cluster/resources row of a Proxmox guest by name (node, vmid)."""
    rows = [r for r in client.resources("vm") if r.get("name") == name and not r.get("template")]
    if not rows:
        raise TwinsiteError("no such VM in the Proxmox cluster", obj=f"VM {name!r}", action="lookup")
    if len(rows) > 1:
        raise TwinsiteError(f"{len(rows)} guests have this name (vmids {', '.join(str(r['vmid']) for r in rows)})", obj=f"VM {name!r}", action="lookup")
    return rows[0]


# --- cluster settings: HA/DRS and hosts (vSphere), HA groups and resources (Proxmox) ---

DRS_AUTOMATION = ("manual", "partiallyAutomated", "fullyAutomated")


class VsphereSettings:
    """HA (das) and DRS switches of a vSphere cluster, and which hosts are in it."""

    def __init__(self, client, cluster: dict):
        self.client, self.obj = client, f"cluster {cluster.get('cluster')!r}"
        self.row, self.hosts = vsphere_cluster(client, cluster)

    def read(self) -> dict:
        config = self.row["configurationEx"]
        return {"ha": {"enabled": bool(config.dasConfig.enabled)},
                "drs": {"enabled": bool(config.drsConfig.enabled), "automation": str(config.drsConfig.defaultVmBehavior or "fullyAutomated")},
                "hosts": sorted(h["name"] for h in self.hosts)}

    def write(self, before: dict, after: dict, credentials: dict | None) -> None:
        from pyVmomi import vim

        if before["ha"] != after["ha"] or before["drs"] != after["drs"]:
            spec = vim.cluster.ConfigSpecEx(
                dasConfig=vim.cluster.DasConfigInfo(enabled=after["ha"]["enabled"]),
                drsConfig=vim.cluster.DrsConfigInfo(enabled=after["drs"]["enabled"], defaultVmBehavior=after["drs"]["automation"]))
            self.client.wait_task(self.client.reconfigure_cluster(self.row["_obj"], spec), obj=self.obj, action="HA/DRS reconfiguration")
        for host in sorted(set(after["hosts"]) - set(before["hosts"])):
            if not credentials:
                raise TwinsiteError("adding a host needs host_credentials (its root user name and password)", obj=self.obj,
                                    action=f"adding host {host!r}")
            spec = vim.host.ConnectSpec(hostName=host, userName=credentials["username"], password=credentials["password"], force=True)
            self.client.wait_task(self.client.add_host(self.row["_obj"], spec), obj=self.obj, action=f"adding host {host!r}")


class ProxmoxSettings:
    """HA groups and HA resources of a Proxmox VE cluster. Only the items given are managed;
    others are left alone (removal is a separate, explicit act in PVE too)."""

    def __init__(self, client, cluster: dict):
        self.client, self.obj = client, f"Proxmox cluster {cluster.get('name')!r}"

    def read(self) -> dict:
        groups = {g["group"]: {"nodes": _nodes(g.get("nodes")), "restricted": bool(g.get("restricted")), "nofailback": bool(g.get("nofailback"))}
                  for g in self.client.ha_groups() or []}
        resources = {r["sid"]: {"group": r.get("group"), "state": r.get("state", "started")} for r in self.client.ha_resources() or []}
        return {"ha_groups": groups, "ha_resources": resources}

    def write(self, before: dict, after: dict, credentials: dict | None) -> None:
        for name, group in sorted(after["ha_groups"].items()):
            if before["ha_groups"].get(name) == group:
                continue
            params = {"nodes": ",".join(group["nodes"]), "restricted": int(group["restricted"]), "nofailback": int(group["nofailback"])}
            self._write(f"HA group {name!r}", *(("post", "cluster/ha/groups", {"group": name, **params}) if name not in before["ha_groups"]
                                                 else ("put", f"cluster/ha/groups/{name}", params)))
        for sid, res in sorted(after["ha_resources"].items()):
            if before["ha_resources"].get(sid) == res:
                continue
            params = {k: v for k, v in res.items() if v is not None}
            self._write(f"HA resource {sid!r}", *(("post", "cluster/ha/resources", {"sid": sid, **params}) if sid not in before["ha_resources"]
                                                   else ("put", f"cluster/ha/resources/{sid}", params)))

    def _write(self, what: str, method: str, path: str, params: dict) -> None:
        try:
            getattr(self.client, method)(path, **params)
        except TwinsiteError as exc:
            raise TwinsiteError(exc.reason, obj=f"{what} of {self.obj}", action="creation" if method == "post" else "update") from None


def _nodes(value) -> list[str]:
    """PVE writes group nodes as "pve1:2,pve2" (with priorities); twinsite compares node names."""
    return sorted(n.split(":")[0] for n in str(value or "").split(",") if n)


def wanted_settings(before: dict, params: dict, kind: str) -> dict:
    """The settings after the task: the given options over what the cluster has."""
    after = {k: (dict(v) if isinstance(v, dict) else list(v)) for k, v in before.items()}
    if kind == "vsphere":
        for key in ("ha", "drs"):
            after[key].update({k: v for k, v in (params.get(key) or {}).items() if v is not None})
        after["hosts"] = sorted(set(before["hosts"]) | set(params.get("hosts") or []))
        return after
    for group in params.get("ha_groups") or []:
        after["ha_groups"][group["name"]] = {"nodes": sorted(group["nodes"]), "restricted": group["restricted"], "nofailback": group["nofailback"]}
    for res in params.get("ha_resources") or []:
        after["ha_resources"][res["sid"]] = {"group": res.get("group"), "state": res["state"]}
    return after


def settings_backend(cluster: dict, client):
    return (VsphereSettings if cluster["type"] == "vsphere" else ProxmoxSettings)(client, cluster)
