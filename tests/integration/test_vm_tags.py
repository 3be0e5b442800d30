"""twinsite.dc.vm `tags` on both simulators, through `ansible` (the real plumbing): check mode ->
apply -> apply again -> change -> remove, each step checked by reading the simulator directly, and
vm_info returning the tags. vSphere tags are vAPI tags: the lab's vcsim serves govmomi's vAPI
simulator next to /sdk (scripts/labkit/vcsim/main.go). Test VMs are named t-tags-...; the model's
VMs are never touched."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.parse
import urllib.request

import pytest
import test_vm
from proxmoxer import ProxmoxAPI
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim


def lab_cluster(lab, kind: str) -> dict:
    """The dc_clusters item of the lab's vcsim or fakepve, built from the lab model."""
    ca = str(lab.state.ca / "ca.pem")
    if kind == "vsphere":
        spec = lab.model["vcsim"]
        return {"name": "cl-primary", "type": "vsphere", "datacenter": spec["datacenter"], "cluster": spec["clusters"][0]["name"],
                "api": {"host": spec["host"], "port": spec["port"], "username": spec["username"], "password": spec["password"],
                        "ca_bundle": ca}}
    spec = lab.model["fakepve"]
    return {"name": "cl-secondary", "type": "proxmox", "nodes": spec["nodes"],
            "api": {"host": spec["host"], "port": spec["port"], "username": spec["username"], "password": spec["password"],
                    "ca_bundle": ca}}


def run_module(module: str, args: dict, check: bool = False) -> dict:
    """One module through `ansible localhost -m` (test_vm's helper; no site model needed), and no traceback."""
    done = test_vm.run_module(module, args, check=check, inventory="localhost,")
    assert "Traceback" not in done["output"], done["output"]
    return done


# --- the tags as the simulators themselves hold them ---------------------------------------------


def _rest(lab, method: str, path: str, body=None, session: str | None = None):
    spec = lab.model["vcsim"]
    request = urllib.request.Request(f"https://{spec['host']}:{spec['port']}/rest/{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json"})
    if session:
        request.add_header("vmware-api-session-id", session)
    else:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{spec['username']}:{spec['password']}".encode()).decode())
    with urllib.request.urlopen(request, context=ssl.create_default_context(cafile=str(lab.state.ca / "ca.pem"))) as answer:  # noqa: S310
        text = answer.read()
    return json.loads(text).get("value") if text.strip() else None


def _moid(lab, name: str) -> str | None:
    spec = lab.model["vcsim"]
    si = SmartConnect(host=spec["host"], port=spec["port"], user=spec["username"], pwd=spec["password"],
                      sslContext=ssl.create_default_context(cafile=str(lab.state.ca / "ca.pem")))
    try:
        view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [vim.VirtualMachine], True)
        return next((v._moId for v in view.view if v.name == name), None)
    finally:
        Disconnect(si)


def live_tags(lab, kind: str, name: str) -> list[str] | None:
    """The VM's tags as the simulator reports them ("category:name" on vSphere), or None without a VM."""
    if kind == "vsphere":
        moid = _moid(lab, name)
        if moid is None:
            return None
        session = _rest(lab, "POST", "com/vmware/cis/session")
        try:
            ids = _rest(lab, "POST", "com/vmware/cis/tagging/tag-association?~action=list-attached-tags",
                        {"object_id": {"type": "VirtualMachine", "id": moid}}, session) or []
            out = []
            for tag_id in ids:
                tag = _rest(lab, "GET", f"com/vmware/cis/tagging/tag/id:{urllib.parse.quote(tag_id, safe='')}", session=session)
                category = _rest(lab, "GET", f"com/vmware/cis/tagging/category/id:{urllib.parse.quote(tag['category_id'], safe='')}",
                                 session=session)
                out.append(f"{category['name']}:{tag['name']}")
            return sorted(out)
        finally:
            _rest(lab, "DELETE", "com/vmware/cis/session", session=session)
    spec = lab.model["fakepve"]
    api = ProxmoxAPI(spec["host"], port=spec["port"], user=spec["username"], password=spec["password"],
                     verify_ssl=str(lab.state.ca / "ca.pem"))
    row = next((r for r in api.cluster.resources.get(type="vm") if r.get("name") == name), None)
    if row is None:
        return None
    config = api.nodes(row["node"]).qemu(row["vmid"]).config.get()
    return sorted(t for t in str(config.get("tags") or "").split(";") if t)


# --- the cycle ------------------------------------------------------------------------------------

# (tags asked, tags the module returns, tags the simulator holds) per step and vendor. vSphere names
# a tag "category:name", and a bare name is in category "twinsite"; PVE stores tags in lower case.
STEPS = {
    "vsphere": {"set": (["prod", "backup:daily"], ["backup:daily", "prod"], ["backup:daily", "twinsite:prod"]),
                "change": (["prod", "web", "backup:weekly"], ["backup:weekly", "prod", "web"],
                           ["backup:weekly", "twinsite:prod", "twinsite:web"])},
    "proxmox": {"set": (["prod", "backup-daily"], ["backup-daily", "prod"], ["backup-daily", "prod"]),
                "change": (["Prod", "web"], ["prod", "web"], ["prod", "web"])},
}


@pytest.fixture(params=["vsphere", "proxmox"])
def kind(request, lab):
    name = f"t-tags-{request.param}"
    cluster = lab_cluster(lab, request.param)
    run_module("vm", {"cluster": cluster, "name": name, "state": "absent"})
    yield request.param
    run_module("vm", {"cluster": cluster, "name": name, "state": "absent"})


def test_vm_tags_cycle(kind, lab):
    name, cluster = f"t-tags-{kind}", lab_cluster(lab, kind)

    def vm(check: bool = False, **args) -> dict:
        return run_module("vm", {"cluster": cluster, "name": name, **args}, check=check)

    created = vm(template="tpl-debian12")
    assert created["rc"] == 0 and created["changed"], created["output"]
    assert live_tags(lab, kind, name) == []

    asked, returned, held = STEPS[kind]["set"]
    check = vm(check=True, tags=asked)
    assert check["rc"] == 0 and check["changed"], check["output"]
    assert check["vm"]["tags"] == returned
    assert check["diff"]["before"]["tags"] == [] and check["diff"]["after"]["tags"] == returned
    assert check["actions"] == [f"reconfigure tags={returned}"]
    assert live_tags(lab, kind, name) == [], "check mode wrote"

    applied = vm(tags=asked)
    assert applied["rc"] == 0 and applied["changed"] and applied["vm"]["tags"] == returned, applied["output"]
    assert live_tags(lab, kind, name) == held

    again = vm(tags=list(reversed(asked)))
    assert again["rc"] == 0 and not again["changed"] and again["actions"] == [], again["output"]
    assert live_tags(lab, kind, name) == held

    asked, returned, held = STEPS[kind]["change"]
    changed = vm(tags=asked)
    assert changed["rc"] == 0 and changed["changed"] and changed["vm"]["tags"] == returned, changed["output"]
    assert changed["diff"]["before"]["tags"] == STEPS[kind]["set"][1] and changed["diff"]["after"]["tags"] == returned
    assert live_tags(lab, kind, name) == held
    assert not vm(tags=asked)["changed"]

    info = run_module("vm_info", {"cluster": cluster, "name": name})
    assert info["rc"] == 0 and info["vms"][0]["tags"] == returned, info["output"]
    listed = run_module("vm_info", {"cluster": cluster})
    assert next(v for v in listed["vms"] if v["name"] == name)["tags"] == returned

    # Without the option, tags are left as they are.
    assert not vm(cpus=created["vm"]["cpus"])["changed"]
    assert live_tags(lab, kind, name) == held

    removed = vm(tags=[])
    assert removed["rc"] == 0 and removed["changed"] and removed["vm"]["tags"] == [], removed["output"]
    assert live_tags(lab, kind, name) == []
    assert not vm(tags=[])["changed"]
