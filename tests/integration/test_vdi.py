"""twinsite.dc.vdi_pool on both simulators, through `ansible` (the real plumbing), with the file broker:
a pool of 50 desktops converges (check mode first: nothing made), a second run changes nothing, out
of hours only the spare desktops run, a refresh to another image runs in batches and leaves the desktops with sessions exactly as they were,
a shrink removes only desktops nobody has, and state absent clears the rest. Every step is checked by
reading the simulator directly. Test desktops are named t-vdi-<vendor>-NNN."""

from __future__ import annotations

import json

import pytest
from conftest import vcenter
from pyVmomi import vim
from test_vm import cluster_expr, pve_api, run_module

POOLS = {
    "vsphere": {"cluster": "cl-primary", "images": ("tpl-win11", "tpl-debian12"), "clone": "full", "folder": "Desktops"},
    # Proxmox links clones to templates natively; the lab's vmids for desktops start at 5000.
    "proxmox": {"cluster": "cl-secondary", "images": ("tpl-debian12", "tpl-win11"), "clone": "linked", "node": "pve2", "vmid_base": 5000},
}
SIZE = 50


def pool(kind: str, image: str, size: dict | None = None) -> dict:
    spec = POOLS[kind]
    out = {"name": f"t-{kind}", "template": image, "clone": spec["clone"], "naming": f"t-vdi-{kind[:3]}-{{n:03d}}",
           "size": size or {"min": SIZE, "max": 60, "spare": 2}, "network": "users", "cpus": 2, "memory_mb": 2048,
           "entitlements": ["town-staff", f"t-{kind}-admins"], "power": {"spare_on": True, "off_hours": "19:00-07:00"}}
    out.update({k: spec[k] for k in ("folder", "node", "vmid_base") if k in spec})
    return out


def converge(kind: str, the_pool: dict, broker_path, check: bool = False, **extra) -> dict:
    # The time of day is fixed (in hours unless a step says otherwise), so the power policy is what the test says.
    args = {"cluster": cluster_expr(POOLS[kind]["cluster"]), "networks_model": "{{ dc_networks }}", "pool": the_pool,
            "broker": {"type": "file", "path": str(broker_path)}, "now": "10:00", **extra}
    return run_module("vdi_pool", args, check=check)


def desktops(lab, ca_pem, kind: str) -> dict:
    """The pool's desktops as the simulator reports them: {name: {id, power, cpus, notes}}."""
    prefix = f"t-vdi-{kind[:3]}-"
    if kind == "vsphere":
        with vcenter(lab, ca_pem) as si:
            view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [vim.VirtualMachine], True)
            try:
                out = {}
                for v in view.view:
                    if v.name.startswith(prefix):
                        out[v.name] = {"id": v._moId,  # vcsim derives instanceUuid from the name: the moref tells VMs apart
                                        "power": "on" if v.runtime.powerState == "poweredOn" else "off",
                                       "cpus": v.config.hardware.numCPU, "notes": v.config.annotation or ""}
                return out
            finally:
                view.Destroy()
    api = pve_api(lab, ca_pem)
    rows = [r for r in api.cluster.resources.get(type="vm") if str(r.get("name", "")).startswith(prefix)]
    return {r["name"]: {"id": r["vmid"], "power": "on" if r["status"] == "running" else "off", "cpus": r["maxcpu"],
                        "notes": api.nodes(r["node"]).qemu(r["vmid"]).config.get().get("description") or ""} for r in rows}


def image(notes: str) -> str | None:
    return notes.split("image=", 1)[1].split()[0] if "image=" in notes else None


@pytest.fixture(params=["vsphere", "proxmox"])
def kind(request, lab, ca_pem, tmp_path):
    """One vendor's test pool; every desktop of it is removed at the end, whatever happened."""
    yield request.param
    broker = tmp_path / "cleanup-broker.json"
    gone = converge(request.param, pool(request.param, POOLS[request.param]["images"][0]), broker, state="absent")
    assert gone["rc"] == 0, gone["output"]
    assert desktops(lab, ca_pem, request.param) == {}


def write_broker(path, sessions: dict, assignments: dict | None = None) -> None:
    state = json.loads(path.read_text()) if path.exists() else {}
    state["sessions"] = [{"desktop": d, "user": u, "state": s} for d, (u, s) in sessions.items()]
    state["assignments"] = assignments or {}
    path.write_text(json.dumps(state))


def test_pool_converges_refreshes_around_sessions_and_shrinks(lab, ca_pem, kind, tmp_path):
    broker = tmp_path / "broker.json"
    old, new = POOLS[kind]["images"]
    name = pool(kind, old)["naming"].format

    # Check mode: 50 desktops would be made, none is.
    plan = converge(kind, pool(kind, old), broker, check=True)
    assert plan["rc"] == 0, plan["output"]
    assert plan["changed"] and len(plan["created"]) == SIZE
    assert plan["created"][0] == name(n=1) and plan["created"][-1] == name(n=SIZE)
    assert desktops(lab, ca_pem, kind) == {}

    # Apply: 50 desktops, running, with the pool's hardware and image; the entitlements on the broker.
    first = converge(kind, pool(kind, old), broker)
    assert first["rc"] == 0, first["output"]
    assert len(first["created"]) == SIZE
    live = desktops(lab, ca_pem, kind)
    assert sorted(live) == [name(n=n) for n in range(1, SIZE + 1)]
    assert {d["power"] for d in live.values()} == {"on"}
    assert {d["cpus"] for d in live.values()} == {2}
    assert {image(d["notes"]) for d in live.values()} == {old}
    assert json.loads(broker.read_text())["pools"][f"t-{kind}"]["entitlements"] == sorted(["town-staff", f"t-{kind}-admins"])

    # Second run: nothing to do.
    again = converge(kind, pool(kind, old), broker)
    assert again["rc"] == 0, again["output"]
    assert again["changed"] is False, again
    assert desktops(lab, ca_pem, kind) == live

    # Out of hours (22:00, in the pool's 19:00-07:00): the two spare desktops run, the other 48 are
    # powered off; back in hours every desktop runs again.
    night = converge(kind, pool(kind, old), broker, now="22:00")
    assert night["rc"] == 0, night["output"]
    assert len(night["powered_off"]) == SIZE - 2 and night["powered_on"] == []
    dark = desktops(lab, ca_pem, kind)
    assert sorted(n for n, d in dark.items() if d["power"] == "on") == [name(n=1), name(n=2)]
    morning = converge(kind, pool(kind, old), broker)
    assert morning["rc"] == 0, morning["output"]
    assert len(morning["powered_on"]) == SIZE - 2
    assert {d["power"] for d in desktops(lab, ca_pem, kind).values()} == {"on"}

    # Users on three desktops (one disconnected); then a new golden image, refreshed 10 at a time.
    in_session = {name(n=3): ("jdoe", "connected"), name(n=17): ("asmith", "disconnected"), name(n=48): ("bwong", "connected")}
    write_broker(broker, in_session)
    refresh = converge(kind, pool(kind, new), broker, refresh_batch=10)
    assert refresh["rc"] == 0, refresh["output"]
    assert sorted(refresh["refreshed"]) == sorted(set(live) - set(in_session))
    assert [len(b) for b in refresh["batches"]] == [10, 10, 10, 10, 7]
    assert {d["name"] for d in refresh["deferred"]} == set(in_session)
    after = desktops(lab, ca_pem, kind)
    for desktop in in_session:
        assert after[desktop] == live[desktop], f"{desktop} had a session and was touched"
    for desktop in set(live) - set(in_session):
        assert image(after[desktop]["notes"]) == new and after[desktop]["power"] == "on"
    if kind == "vsphere":  # a refreshed desktop is a new VM under the same name (Proxmox reuses the vmid)
        assert all(after[d]["id"] != live[d]["id"] for d in set(live) - set(in_session))

    # Shrink: two more desktops are assigned; the pool wants busy (5) + spare (2) = 7. Only free ones go.
    assigned = {name(n=5): "cdiaz", name(n=30): "efrank"}
    write_broker(broker, in_session, assigned)
    shrink = converge(kind, pool(kind, new, {"min": 0, "max": 60, "spare": 2}), broker)
    assert shrink["rc"] == 0, shrink["output"]
    assert shrink["target"] == 7
    kept = desktops(lab, ca_pem, kind)
    assert len(kept) == 7
    assert set(in_session) | set(assigned) <= set(kept)
    assert len(shrink["removed"]) == SIZE - 7
    assert not set(shrink["removed"]) & (set(in_session) | set(assigned))
    # The two free desktops that stayed are the lowest numbers, and the stale ones with sessions are still deferred.
    assert sorted(set(kept) - set(in_session) - set(assigned)) == [name(n=1), name(n=2)]
    assert {d["name"] for d in shrink["deferred"]} == set(in_session)

    # The users log off: the pool is 2 assigned + 2 spare now, and the three stale desktops are the
    # first free ones to go (removing them is cheaper than refreshing them).
    write_broker(broker, {}, assigned)
    late = converge(kind, pool(kind, new, {"min": 0, "max": 60, "spare": 2}), broker)
    assert late["rc"] == 0, late["output"]
    assert sorted(late["removed"]) == sorted(in_session)
    assert late["refreshed"] == []
    final = desktops(lab, ca_pem, kind)
    assert sorted(final) == sorted([name(n=1), name(n=2), *assigned])
    assert {image(d["notes"]) for d in final.values()} == {new}


def test_bad_pool_and_missing_image_are_named_and_change_nothing(lab, ca_pem, tmp_path):
    broker = tmp_path / "broker.json"
    bad = converge("vsphere", {**pool("vsphere", "tpl-win11"), "naming": "t-vdi-static"}, broker)
    assert bad["rc"] != 0
    assert "pool 't-vsphere' naming" in bad["msg"] and "exactly one {n} field" in bad["msg"], bad["output"]
    missing = converge("proxmox", pool("proxmox", "tpl-win12"), broker)
    assert missing["rc"] != 0
    assert "template 'tpl-win12'" in missing["msg"] and "cluster cl-secondary" in missing["msg"], missing["output"]
    assert "Traceback" not in missing["output"]
    assert desktops(lab, ca_pem, "vsphere") == {} and desktops(lab, ca_pem, "proxmox") == {}
