"""The DR plan from the site model: tiers, dependencies pulled in, address mapping, readiness."""

import datetime as dt
import ipaddress

import pytest

from ansible_collections.twinsite.dc.plugins.module_utils import _dr

NETWORKS = [
    {"name": "servers", "subnet": "192.0.2.0/24"},
    {"name": "drill", "subnet": "198.51.100.0/24"},
    {"name": "wide", "subnet": "203.0.113.0/25"},
]
DR = {"site": "secondary", "recovery_group": "recovery_hosts", "drill": {"network_map": {"servers": "drill"}}}
HOSTS = {"dns1": [{"network": "servers", "address": "192.0.2.41"}], "db1": [{"network": "servers", "address": "192.0.2.42"}],
         "web1": [{"network": "servers", "address": "192.0.2.43"}, {"network": "mgmt", "address": "10.0.0.43"}]}


def svc(name, deps=(), host="rec1", hosts=(), probes=(), rpo=60, rto=30, recovery=True):
    out = {"name": name, "tier": 1, "depends_on": list(deps), "hosts": list(hosts), "probes": list(probes),
           "backup_policy": "p", "rpo_minutes": rpo, "rto_minutes": rto}
    if recovery:
        out["recovery"] = {"method": "restore_data", "host": host, "role": "twinsite.dc.web_portal", "units": ["u"]}
    return out


SERVICES = [
    svc("portal", deps=["dns", "db"], host="rec3", hosts=["web1"],
        probes=[{"type": "http", "url": "http://192.0.2.43/"}, {"type": "dns", "server": "192.0.2.41", "query": "x", "expect": "192.0.2.43"}]),
    svc("dns", hosts=["dns1"], probes=[{"type": "dns", "server": "192.0.2.41", "query": "portal", "expect": "192.0.2.43"}]),
    svc("db", hosts=["db1"], host="rec2", probes=[{"type": "sql", "host": "192.0.2.42", "database": "d", "user": "u", "password": "pw", "query": "q"}]),
    svc("files", recovery=False),
]


def plan(**kw):
    return _dr.plan(SERVICES, [{"name": "p", "paths": ["/srv"], "copies": ["secondary", "cloud"]}], DR, NETWORKS, HOSTS, **kw)


def test_tiers_follow_dependencies_not_declared_tiers():
    p = plan()
    assert p["tiers"] == [["db", "dns"], ["portal"]]
    assert p["not_covered"] == []  # files has no recovery block and nobody asked for it


def test_only_pulls_in_what_a_service_depends_on():
    p = plan(only=["portal"])
    assert [s["name"] for s in p["services"]] == ["db", "dns", "portal"]
    assert {s["name"] for s in p["services"] if s["added_as_dependency"]} == {"db", "dns"}


def test_a_failback_plans_only_what_is_still_away_without_its_dependencies():
    """dns and db are home already: failing back the portal must not move them again."""
    p = _dr.plan(SERVICES, [{"name": "p", "paths": ["/srv"], "copies": ["secondary"]}], {**DR, "failover": {"networks": ["servers"]}},
                 NETWORKS, HOSTS, only=["portal"], mode="failover", dependencies=False)
    assert [s["name"] for s in p["services"]] == ["portal"] and p["tiers"] == [["portal"]]
    assert not p["services"][0]["added_as_dependency"]


def test_asking_for_a_service_without_recovery_says_it_is_not_covered():
    p = plan(only=["files"])
    assert p["services"] == [] and p["not_covered"] == ["files"]


def test_unknown_service_is_a_clear_error():
    with pytest.raises(_dr.PlanError, match="no service named nope"):
        plan(only=["nope"])


def test_addresses_probes_and_compare_url_are_mapped():
    portal = next(s for s in plan()["services"] if s["name"] == "portal")
    assert portal["addresses"] == {"192.0.2.43": "198.51.100.43/24"}  # the mgmt address is not mapped
    http, dns = portal["probes"]
    assert http["url"] == "http://198.51.100.43/" and http["compare_url"] == "http://192.0.2.43/"
    assert dns == {"type": "dns", "server": "198.51.100.41", "query": "x", "expect": "198.51.100.43"}
    assert portal["production_probes"][0]["url"] == "http://192.0.2.43/"
    assert portal["rto_target_s"] == 1800 and portal["rpo_target_s"] == 3600


def test_isolation_endpoints_cover_ssh_and_probe_ports():
    iso = plan()["isolation"]
    assert {(e["host"], e["port"]) for e in iso["production_endpoints"]} == {
        (a, p) for a in ("192.0.2.41", "192.0.2.42", "192.0.2.43") for p in (22, 53, 80, 5432)}
    assert all(e["expect"] == "blocked" for e in iso["drill_endpoints"])
    assert {e["host"] for e in iso["drill_endpoints"]} == {"198.51.100.41", "198.51.100.42", "198.51.100.43"}


def test_translate_rewrites_addresses_networks_and_urls_only_in_mapped_subnets():
    pairs = [(ipaddress.ip_network("192.0.2.0/24"), ipaddress.ip_network("198.51.100.0/24"))]
    value = {"a": "192.0.2.42", "b": ["192.0.2.0/24", "http://192.0.2.43:8080/x"], "c": "10.1.2.3", "d": 5,
             "e": "host=192.0.2.42 port=5432", "f": "1192.0.2.42", "g": "192.0.2.420"}
    assert _dr.translate(value, pairs) == {"a": "198.51.100.42", "b": ["198.51.100.0/24", "http://198.51.100.43:8080/x"],
                                           "c": "10.1.2.3", "d": 5, "e": "host=198.51.100.42 port=5432",
                                           "f": "1192.0.2.42", "g": "192.0.2.420"}


def test_networks_of_different_size_cannot_be_mapped():
    with pytest.raises(_dr.PlanError, match="differ in size"):
        _dr.address_map(NETWORKS, {"servers": "wide"})


def test_cycle_is_reported():
    services = [svc("a", deps=["b"]), svc("b", deps=["a"])]
    with pytest.raises(_dr.PlanError, match="cycle"):
        _dr.plan(services, [], DR, NETWORKS, {})


def test_readiness_judges_the_secondary_copy_against_the_rpo():
    now = dt.datetime(2026, 11, 22, 18, 0, tzinfo=dt.UTC)
    status = {"services": {
        "dns": {"copies": {"secondary": {"reachable": True, "newest": "2026-11-22T17:30:00Z"}}},
        "db": {"copies": {"secondary": {"reachable": True, "newest": "2026-11-22T16:30:00Z"}}},
        "portal": {"copies": {"secondary": {"reachable": False, "error": "cannot reach"}}},
    }}
    ready = {r["name"]: r for r in _dr.readiness(plan(), status, now)}
    assert ready["dns"]["ready"] and ready["dns"]["copies"]["secondary"]["age_s"] == 1800
    assert not ready["db"]["ready"] and "5400 s old, RPO target 3600 s" in ready["db"]["reasons"][0]
    assert not ready["portal"]["ready"] and "unreachable" in ready["portal"]["reasons"][0]
    assert all(not r["ready"] for r in _dr.readiness(plan(), None, now))


def test_failover_keeps_production_addresses_on_the_failover_networks():
    dr = {**DR, "failover": {"networks": ["servers"]}}
    p = _dr.plan(SERVICES, [], dr, NETWORKS, HOSTS, mode="failover")
    portal = next(s for s in p["services"] if s["name"] == "portal")
    assert p["mode"] == "failover" and p["network_map"] == {"servers": "servers"}
    assert portal["addresses"] == {"192.0.2.43": "192.0.2.43/24"} and portal["subnet"] == "192.0.2.0/24"
    assert portal["probes"] == portal["production_probes"]  # nothing mapped, nothing to compare against
    with pytest.raises(_dr.PlanError, match="dc_dr.failover.networks is not set"):
        _dr.plan(SERVICES, [], DR, NETWORKS, HOSTS, mode="failover")


def test_a_failover_report_has_plan_steps_and_no_drill_checks():
    from ansible_collections.twinsite.dc.plugins.module_utils import _drill_report

    p = _dr.plan(SERVICES, [], {**DR, "failover": {"networks": ["servers"]}}, NETWORKS, HOSTS, mode="failover")
    results = [_dr.service_result(s, s["host"], "2026-11-22T18:00:00Z", "2026-11-22T18:01:00Z",
                                  {"ok": True, "snapshot_id": "abcd1234", "snapshot_time": "2026-11-22T17:59:00Z", "copy": "cloud"},
                                  [{"type": "tcp", "target": "t", "ok": True, "detail": "connected", "passed_at": "2026-11-22T18:00:40Z"}],
                                  None, {"start": "2026-11-22T18:00:01Z", "restored": "2026-11-22T18:00:10Z",
                                         "configured": "2026-11-22T18:00:30Z"}) for s in p["services"]]
    steps = [{"name": "dns", "status": "ok", "detail": "unchanged"}, {"name": "firewall", "status": "skipped", "detail": "#7"}]
    rep = _dr.report(p, kind="failover", drill_id="20261122T180000Z", site="t", trigger="manual", started="2026-11-22T18:00:00Z",
                     finished="2026-11-22T18:01:00Z", results=results, preflight=[], plan_steps=steps)
    assert rep["status"] == "green" and "production_untouched" not in rep and "cleanup" not in rep
    assert all(s["rto_s"] == 40 and s["rpo_s"] == 60 for s in rep["services"])
    assert _drill_report.validate(rep) == []
    assert "Plan steps" in _drill_report.render_html(rep, []) and "Production untouched" not in _drill_report.render_html(rep, [])
    assert 'name="step dns"' in _drill_report.render_junit(rep)
    failed = _dr.report(p, kind="failover", drill_id="x", site="t", trigger="manual", started="2026-11-22T18:00:00Z",
                        finished="2026-11-22T18:01:00Z", results=results, preflight=[],
                        plan_steps=[{"name": "dns", "status": "failed", "detail": "no answer"}])
    assert failed["status"] == "red" and "step dns failed" in _dr.red_summary(failed)


def test_a_probe_step_starts_when_the_probes_began_not_when_the_background_job_ended():
    """A VM-level service's job ends in the background; the controller gets to its probes later. The
    time between belongs to no step of the service (a bench counts it as the drill's own)."""
    svc = _dr.plan(SERVICES, [], DR, NETWORKS, HOSTS)["services"][0]
    probe = [{"type": "vm", "target": "VM x", "ok": True, "detail": "running", "passed_at": "2026-11-22T18:00:20Z"}]
    times = {"start": "2026-11-22T18:00:01Z", "restored": "2026-11-22T18:00:03Z", "configured": "2026-11-22T18:00:03Z"}
    result = _dr.service_result(svc, "localhost", "2026-11-22T18:00:00Z", "2026-11-22T18:00:30Z", {"ok": True, "copy": "replica"},
                                probe, None, {**times, "probing": "2026-11-22T18:00:19Z"})
    assert [(s["name"], s["started"][-3:], s["finished"][-3:]) for s in result["steps"]] == [
        ("restore", "01Z", "03Z"), ("configure", "03Z", "03Z"), ("probe", "19Z", "20Z")]
    assert result["rto_s"] == 20
    without = _dr.service_result(svc, "localhost", "2026-11-22T18:00:00Z", "2026-11-22T18:00:30Z", {"ok": True, "copy": "replica"},
                                 probe, None, times)
    assert without["steps"][2]["started"] == "2026-11-22T18:00:03Z"


def test_the_ledger_lists_everything_a_drill_may_create_with_cleanup_commands_last_first():
    services = [dict(s) for s in SERVICES]
    services[2] = {**services[2], "recovery": {**services[2]["recovery"],
                                               "cleanup": [{"command": "dropdb d", "user": "postgres"}, {"command": "dropuser u"}]}}
    the_plan = _dr.plan(services, [{"name": "p", "paths": ["/srv"], "copies": ["secondary"]}], DR, NETWORKS, HOSTS)
    entries = _dr.ledger_entries(the_plan)
    ids = [e["id"] for e in entries]
    assert len(ids) == len(set(ids))
    db = [e for e in entries if e["service"] == "db"]
    assert [e["kind"] for e in db] == ["address", "units", "paths", "command", "command"]
    assert db[0] == {"id": "address:rec2:db", "kind": "address", "host": "rec2", "service": "db", "addresses": ["198.51.100.42/24"]}
    assert db[2]["paths"] == ["/srv", "/var/lib/twinsite/restore"]
    # Cleanup undoes the ledger from its end: dropdb (written first in the model) must run first.
    assert [e["command"] for e in reversed(db) if e["kind"] == "command"] == ["dropdb d", "dropuser u"]
    assert [e["user"] for e in db if e["kind"] == "command"] == ["root", "postgres"]
    assert {e["host"] for e in entries} == {"rec1", "rec2", "rec3"}


VMS = [{"name": "file1", "cluster": "cl-a", "networks": ["servers"]},
       {"name": "file1-replica", "cluster": "cl-b", "networks": ["servers", "wide"]},
       {"name": "wiki1", "cluster": "cl-b", "networks": ["servers"]}]
VM_SERVICES = [
    {"name": "files", "tier": 1, "vms": ["file1"], "rpo_minutes": 60, "rto_minutes": 30,
     "recovery": {"method": "replica_vm", "cluster": "cl-b", "replica": "file1-replica"}},
    {"name": "wiki", "tier": 1, "vms": ["wiki1"], "rpo_minutes": 60, "rto_minutes": 30,
     "recovery": {"method": "vm_backup_restore", "cluster": "cl-b", "source": "wiki1", "storage": "local"}},
]


def test_vm_methods_run_on_the_controller_on_mapped_networks_and_never_touch_the_replica_in_a_drill():
    drill = {s["name"]: s for s in _dr.plan(VM_SERVICES, [], DR, NETWORKS, {}, vms=VMS)["services"]}
    files, wiki = drill["files"], drill["wiki"]
    assert files["host"] == wiki["host"] == "localhost"
    # The replica's unmapped network (wide) is not joined: a drill VM sees the isolated network only.
    assert files["vm_name"] == "file1-replica-drill" and files["vm_networks"] == ["drill"] and files["vm_created"]
    assert files["production_vm"] == "file1" and files["production_cluster"] == "cl-a"
    assert wiki["vm_name"] == "wiki1-drill" and wiki["vm_storage"] == "local"
    entries = _dr.ledger_entries({"services": list(drill.values())})
    assert entries == [{"id": "vm:cl-b:file1-replica-drill", "kind": "vm", "cluster": "cl-b", "name": "file1-replica-drill", "service": "files"},
                       {"id": "vm:cl-b:wiki1-drill", "kind": "vm", "cluster": "cl-b", "name": "wiki1-drill", "service": "wiki"}]
    dr = {**DR, "failover": {"networks": ["servers"]}}
    failover = {s["name"]: s for s in _dr.plan(VM_SERVICES, [], dr, NETWORKS, {}, mode="failover", vms=VMS)["services"]}
    assert failover["files"]["vm_name"] == "file1-replica" and not failover["files"]["vm_created"]
    assert failover["wiki"]["vm_name"] == "wiki1-dr" and failover["wiki"]["vm_networks"] == ["servers"]


def test_a_vm_level_result_names_the_vm_and_its_cluster_not_only_the_controller():
    """active-site.json and a failover's summary say where each service runs: for a VM-level service
    the controller recovered it, but it runs as a VM on the secondary cluster."""
    dr = {**DR, "failover": {"networks": ["servers"]}}
    the_plan = _dr.plan(VM_SERVICES + SERVICES[:3], [], dr, NETWORKS, HOSTS, mode="failover", vms=VMS)  # not SERVICES' own "files"
    probe = [{"type": "vm", "target": "VM x", "ok": True, "detail": "running", "passed_at": "2026-11-22T18:00:20Z"}]
    times = {"start": "2026-11-22T18:00:01Z", "restored": "2026-11-22T18:00:03Z", "configured": "2026-11-22T18:00:03Z"}
    where = {s["name"]: _dr.service_result(s, s["host"], "2026-11-22T18:00:00Z", "2026-11-22T18:00:30Z", {"ok": True, "copy": "c"},
                                           probe, None, times)["targets"] for s in the_plan["services"]}
    assert where["files"] == {"host": "localhost", "addresses": {}, "vm": "file1-replica", "cluster": "cl-b",
                              "where": "VM file1-replica on cl-b"}
    assert where["wiki"]["where"] == "VM wiki1-dr on cl-b"
    assert where["portal"]["where"] == where["portal"]["host"] == "rec3" and "vm" not in where["portal"]
    missed = _dr.report(the_plan, kind="failover", drill_id="x", site="t", trigger="manual", started="2026-11-22T18:00:00Z",
                        finished="2026-11-22T18:01:00Z", results=[], preflight=[], plan_steps=[])
    assert {s["name"]: s["targets"]["where"] for s in missed["services"]}["files"] == "VM file1-replica on cl-b"


def test_vm_readiness_is_the_replica_and_the_age_of_the_newest_vzdump_backup():
    the_plan = _dr.plan(VM_SERVICES, [], DR, NETWORKS, {}, vms=VMS)
    now = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
    ready = {r["name"]: r for r in _dr.readiness(the_plan, None, now, {"files": {"exists": True}, "wiki": {"newest": "2026-11-22T11:30:00Z"}})}
    assert ready["files"]["ready"] and ready["wiki"]["ready"] and ready["wiki"]["copies"]["vzdump local"]["age_s"] == 1800
    stale = {r["name"]: r for r in _dr.readiness(the_plan, None, now, {"files": {"exists": False}, "wiki": {"newest": "2026-11-22T10:00:00Z"}})}
    assert stale["files"]["reasons"] == ["replica VM file1-replica does not exist on cl-b"]
    assert stale["wiki"]["reasons"] == ["newest vzdump backup is 7200 s old, RPO target 3600 s"]
    none = {r["name"]: r for r in _dr.readiness(the_plan, None, now, {"wiki": {"error": "storage local: no such storage"}})}
    assert none["files"]["reasons"] == ["the hypervisor was not asked"] and none["wiki"]["reasons"] == ["storage local: no such storage"]


def test_a_failover_routes_through_the_production_gateway_and_a_drill_has_none():
    networks = [{**NETWORKS[0], "gateway": "192.0.2.254"}, *NETWORKS[1:]]
    dr = {**DR, "failover": {"networks": ["servers"]}}
    failover = _dr.plan(SERVICES, [], dr, networks, HOSTS, mode="failover")
    assert {s["name"]: s["gateway"] for s in failover["services"]} == {"dns": "192.0.2.254", "db": "192.0.2.254", "portal": "192.0.2.254"}
    drill = _dr.plan(SERVICES, [], dr, networks, HOSTS)
    assert {s["gateway"] for s in drill["services"]} == {None}


FW = {"zones": [{"name": "servers", "networks": ["servers"]}, {"name": "users", "networks": ["users"]}],
      "addresses": [], "services": [{"name": "http", "protocol": "tcp", "ports": [80]}],
      "rules": [{"name": "users-web", "from": "users", "to": "servers", "services": ["http"], "action": "accept"}]}
FW_NETS = [{"name": "servers", "subnet": "192.0.2.0/24", "gateway": "192.0.2.254"},
           {"name": "users", "subnet": "198.51.100.0/24", "gateway": "198.51.100.254"}]
ADDR_FW1 = "2: eth0    inet 192.0.2.2/24 brd 192.0.2.255 scope global eth0\n2: eth0    inet 192.0.2.254/24 scope global secondary eth0\n" \
           "3: eth1    inet 198.51.100.254/24 scope global eth1\n"


def node(name, stdout="", rc=0, unreachable=False):
    return {"item": name, "unreachable": True, "msg": "ssh: timeout"} if unreachable else {"item": name, "rc": rc, "stdout": stdout}


def flows(*results):
    return {"results": [{"item": [src, []], "flows": fl} for src, fl in results]}


def test_firewall_step_ok_when_one_node_holds_every_vip_and_the_flows_pass():
    step = _dr.firewall_step({"results": [node("fw1", "2: eth0 inet 192.0.2.2/24\n"), node("fw2", ADDR_FW1)]},
                             flows(("client1", [{"host": "192.0.2.43", "port": 80, "got": "open", "expect": "open", "ok": True}])), FW, FW_NETS)
    assert step["status"] == "ok", step
    assert "fw2 holds every VIP (192.0.2.254, 198.51.100.254)" in step["detail"]
    assert "client1 -> 192.0.2.43:80 open" in step["detail"]


def test_firewall_step_fails_on_split_vips_a_blocked_flow_or_names_an_unreachable_node():
    half = "3: eth1    inet 198.51.100.254/24 scope global eth1\n"
    split = _dr.firewall_step({"results": [node("fw1", "inet 192.0.2.254/24 x\n"), node("fw2", half)]}, {"results": []}, FW, FW_NETS)
    assert split["status"] == "failed" and "fw1 holds 192.0.2.254; fw2 holds 198.51.100.254" in split["detail"]
    blocked = _dr.firewall_step({"results": [node("fw1", unreachable=True), node("fw2", ADDR_FW1)]},
                                flows(("client1", [{"host": "192.0.2.43", "port": 80, "got": "blocked", "expect": "open", "ok": False}])),
                                FW, FW_NETS)
    assert blocked["status"] == "failed"
    assert "fw2 holds every VIP" in blocked["detail"] and "unreachable: fw1" in blocked["detail"]
    assert "client1 -> 192.0.2.43:80 blocked (expected open)" in blocked["detail"]
    assert _dr.firewall_step({"results": []}, {}, FW, FW_NETS)["status"] == "skipped"
    # A node whose management port did not answer is not asked (its item is skipped): unreachable.
    silent = _dr.firewall_step({"results": [{"item": "fw1", "skipped": True}, node("fw2", ADDR_FW1)]}, {"results": []}, FW, FW_NETS)
    assert silent["status"] == "ok" and "unreachable: fw1" in silent["detail"], silent
    assert _dr.firewall_step({"results": [node("fw1", ADDR_FW1)]}, {}, {}, FW_NETS)["status"] == "skipped"


POOL = {"name": "staff", "cluster": "cl-primary", "template": "tpl-win11", "clone": "full", "naming": "vdi-staff-{n:03d}",
        "size": {"min": 4, "max": 40, "spare": 2}, "network": "users", "cpus": 2, "memory_mb": 4096, "entitlements": ["town-staff"],
        "power": {"off_hours": "19:00-07:00"}, "site": "primary",
        "dr": {"cluster": "cl-secondary", "template": "tpl-win11-replica", "desktops": 3, "node": "pve2", "vmid_base": 6000, "rto_minutes": 30}}
DR_VNET = {**DR, "drill": {**DR["drill"], "vnet": "drill"}, "failover": {"networks": ["servers"]}}


def pool_plan(mode="drill", pools=(POOL,), **kw):
    return _dr.plan(SERVICES, [{"name": "p", "paths": ["/srv"], "copies": ["secondary"]}], DR_VNET, NETWORKS, HOSTS, mode=mode,
                    pools=list(pools), **kw)


def test_a_drill_recreates_each_pool_after_every_service_on_the_isolated_network_under_drill_names():
    p = pool_plan()
    assert p["tiers"] == [["db", "dns"], ["portal"], ["vdi-staff"]]
    entry = p["services"][-1]
    assert entry["method"] == "vdi_pool" and entry["host"] == "localhost" and entry["cluster"] == "cl-secondary"
    assert entry["pool"] == {"name": "staff-drill", "naming": "vdi-staff-{n:03d}-drill", "size": {"min": 3, "max": 3, "spare": 0},
                             "network": "drill", "entitlements": [], "template": "tpl-win11-replica", "clone": "full",
                             "cpus": 2, "memory_mb": 4096, "node": "pve2", "vmid_base": 6000}
    assert entry["rto_target_s"] == 1800 and entry["desktops"] == 3
    assert entry["production_pool"]["name"] == "staff" and "dr" not in entry["production_pool"]
    # Drill desktops join no production network and are entitled to nobody.
    assert "users" not in entry["vm_networks"]


def test_a_failover_recreates_the_pool_itself_with_its_names_size_power_and_entitlements():
    entry = pool_plan(mode="failover", pools=[POOL])["services"][-1]
    assert entry["pool"]["name"] == "staff" and entry["pool"]["naming"] == "vdi-staff-{n:03d}"
    assert entry["pool"]["size"] == {"min": 4, "max": 40, "spare": 2}
    assert entry["pool"]["network"] == "users" and entry["pool"]["entitlements"] == ["town-staff"]
    assert entry["pool"]["power"] == {"off_hours": "19:00-07:00"} and entry["pool"]["template"] == "tpl-win11-replica"


def test_a_pool_without_a_dr_block_is_not_covered_and_only_can_name_a_pool():
    bare = {k: v for k, v in POOL.items() if k != "dr"}
    p = pool_plan(pools=[bare, {**POOL, "name": "lab"}])
    assert p["not_covered"] == ["vdi-staff"]
    assert [s["name"] for s in p["services"] if s["method"] == "vdi_pool"] == ["vdi-lab"]
    only = pool_plan(only=["vdi-staff"])
    assert [s["name"] for s in only["services"]] == ["vdi-staff"] and only["tiers"] == [["vdi-staff"]]


def test_the_ledger_lists_the_drill_pool_and_readiness_is_the_golden_image_at_the_recovery_cluster():
    p = pool_plan()
    entries = [e for e in _dr.ledger_entries(p) if e["kind"] == "vdi_pool"]
    assert entries == [{"id": "vdi_pool:cl-secondary:staff-drill", "kind": "vdi_pool", "cluster": "cl-secondary", "name": "staff-drill",
                        "pool": p["services"][-1]["pool"], "service": "vdi-staff"}]
    now = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
    ready = {r["name"]: r for r in _dr.readiness(p, None, now, {"vdi-staff": {"exists": True}})}
    assert ready["vdi-staff"]["ready"] and "golden image" in ready["vdi-staff"]["copies"]
    missing = {r["name"]: r for r in _dr.readiness(p, None, now, {"vdi-staff": {"error": "lookup of template 'x' failed: no template"}})}
    assert not missing["vdi-staff"]["ready"] and missing["vdi-staff"]["reasons"] == ["lookup of template 'x' failed: no template"]
