"""Failover and failback on the lab: the primary room is lost, the secondary site takes the
services over on their production addresses (from the cloud copy, since the secondary copy cannot
be reached either), data written there comes back to the primary with the failback. The VM-level
services come up on the secondary Proxmox cluster: the file server's replica is started, the
intranet's newest vzdump backup is restored as intranet1-dr, with intranet1's MAC; the failback
powers the replica off and removes intranet1-dr after one last backup of it, which brings intranet1
back as itself (its vmid and MAC) after the lost room took it. The staff desktop pool is re-created on the
secondary cluster from its replicated golden image, and removed by the failback.
"""

from __future__ import annotations

import calendar
import json
import socket
import time
import uuid

import dns.resolver
import pytest
from conftest import podman
from test_backups import TOOL, as_owner, sh, status
from test_site_playbook import run_playbook
from test_vm import live, pve_api

PRIMARY = {"dns": "dns1", "portal-db": "db1", "portal": "web1"}
RECOVERY = {"dns": "rec1", "portal-db": "rec2", "portal": "rec3"}
ADDRESS = {"dns": "172.31.20.41", "portal-db": "172.31.20.42", "portal": "172.31.20.43"}
VM_SERVICES = {"files": "file1-replica", "intranet": "intranet1-dr"}


def pve_vms(lab) -> dict[str, dict]:
    """name -> {vmid, status, config} of every VM on the lab's Proxmox cluster."""
    api = pve_api(lab, lab.state.ca / "ca.pem")
    rows = api.cluster.resources.get(type="vm")
    return {r["name"]: {"vmid": int(r["vmid"]), "status": r.get("status"), "config": api.nodes(r["node"]).qemu(r["vmid"]).config.get()}
            for r in rows}


def mac(net0: str) -> str:
    """The MAC of a Proxmox NIC's value ("virtio=BC:24:11:..,bridge=vmbr0,tag=20")."""
    return net0.split(",")[0].partition("=")[2].upper()


def lose_vm(lab, name: str) -> dict:
    """Stop and destroy a VM on the lab's Proxmox cluster, as a lost room would; what it was."""
    was = pve_vms(lab)[name]
    api = pve_api(lab, lab.state.ca / "ca.pem")
    row = next(r for r in api.cluster.resources.get(type="vm") if r["name"] == name)
    vm = api.nodes(row["node"]).qemu(row["vmid"])
    if row.get("status") == "running":
        wait_pve_task(api, row["node"], vm.status.stop.post())
    wait_pve_task(api, row["node"], vm.delete())
    assert name not in pve_vms(lab)
    return was


def wait_pve_task(api, node: str, upid: str) -> None:
    for _ in range(100):
        task = api.nodes(node).tasks(upid).status.get()
        if task.get("status") == "stopped":
            assert task.get("exitstatus") == "OK", task
            return
        time.sleep(0.1)
    raise AssertionError(f"PVE task {upid} did not finish")


def servers_dev(lab, host: str, address: str) -> str:
    out = sh(lab, host, f"ip -o -4 addr show to {address}/24").stdout.split()
    assert out, f"{host} has no interface in {address}/24"
    return out[1]


def holds(lab, host: str, address: str) -> bool:
    """The host has the address and the interface that holds it is up."""
    out = sh(lab, host, "ip -o -4 addr; ip -o link").stdout
    dev = next((line.split()[1] for line in out.splitlines() if f" {address}/" in line), None)
    return dev is not None and any(line.split()[1].rstrip(":").split("@")[0] == dev and ",UP" in line
                                   for line in out.splitlines() if line[0].isdigit() and "link/" in line)


def fw_links(name: str, state: str) -> None:
    """Every link of a firewall container up or down at once (a node that lost power and network)."""
    run = podman("exec", name, "sh", "-c", f"for d in $(ls /sys/class/net | grep -v '^lo$'); do ip link set dev $d {state}; done")
    assert run.returncode == 0, run.stderr


def vips_on(name: str) -> list[str]:
    out = podman("exec", name, "ip", "-4", "-o", "addr", "show").stdout
    return sorted(a for a in (w.split("/")[0] for w in out.split()) if a.endswith(".254"))


def page() -> str:
    with socket.create_connection((ADDRESS["portal"], 80), timeout=5) as conn:
        conn.sendall(b"GET / HTTP/1.0\r\nHost: portal\r\n\r\n")
        return b"".join(iter(lambda: conn.recv(65536), b"")).decode()


def resolve(name: str) -> list[str]:
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [ADDRESS["dns"]]
    resolver.lifetime = 5
    return [r.to_text() for r in resolver.resolve(name, "A")]


@pytest.fixture(scope="module")
def failed_over(lab, tmp_path_factory):
    """Fresh backups replicated to the cloud; then the primary room loses its network and the
    secondary copy cannot be reached (its REST server stopped): an unplanned failover."""
    tmp = tmp_path_factory.mktemp("failover")
    if sh(lab, "db1", f"test -x {TOOL}", check=False).returncode != 0:
        for playbook in ("workloads.yml", "backup.yml"):
            run = run_playbook(playbook, tmp, "-e", f"twinsite_backup_report_dir={tmp / 'reports'}")
            assert run.returncode == 0, run.stdout[-4000:]
    # The cloud copy must be within every RPO target (an hour): after test_backups.py it is; run
    # alone, this file backs up and replicates first.
    cloud = {svc: status(lab, "backup1")["services"][svc]["copies"]["cloud"].get("newest") for svc in PRIMARY}
    for svc, host in PRIMARY.items():
        newest = cloud[svc]
        if newest is None or time.time() - calendar.timegm(time.strptime(newest, "%Y-%m-%dT%H:%M:%SZ")) > 1800:
            sh(lab, host, f"{TOOL} --quiet backup {svc}")
            sh(lab, "backup1", as_owner(f"replicate {svc}"))
    # The firewall pair is part of the site: its primary node goes down with the room.
    if not vips_on("tsl-fw1") and not vips_on("tsl-fw2"):
        run = run_playbook("firewall.yml", tmp)
        assert run.returncode == 0, run.stdout[-4000:]
    devs = {svc: servers_dev(lab, host, ADDRESS[svc]) for svc, host in PRIMARY.items()}
    for svc, host in PRIMARY.items():
        sh(lab, host, f"ip link set dev {devs[svc]} down")  # the primary room is gone
    fw_links("tsl-fw1", "down")  # with its firewall node
    sh(lab, "backup1", "systemctl stop twinsite-backup-repository")  # and the secondary copy is out of reach
    try:
        run = run_playbook("failover.yml", tmp, "-e", f"dr_drill_reports_dir={tmp / 'drills'}")
    finally:
        sh(lab, "backup1", "systemctl start twinsite-backup-repository")
        fw_links("tsl-fw1", "up")  # back for the failback; it takes the VIPs back (preemption)
    report = json.loads(sorted((tmp / "drills").glob("2*/report.json"))[-1].read_text())
    return run, report, tmp


def test_an_unplanned_failover_refuses_while_the_primary_answers(lab, tmp_path):
    run = run_playbook("failover.yml", tmp_path, "-e", f"dr_drill_reports_dir={tmp_path / 'drills'}")
    assert run.returncode != 0
    assert "The primary still answers at" in run.stdout
    assert not any(holds(lab, host, ADDRESS[svc]) for svc, host in RECOVERY.items())


def test_the_secondary_site_runs_every_service_on_its_production_address(failed_over, lab):
    run, report, _ = failed_over
    assert run.returncode == 0, run.stdout[-5000:]
    assert report["kind"] == "failover" and report["status"] == "green", report
    assert sorted(s["name"] for s in report["services"]) == sorted([*RECOVERY, *VM_SERVICES, "vdi-staff"])
    vms = pve_vms(lab)
    # The staff desktops: the pool itself re-created on the secondary cluster from the replicated
    # golden image, under its production names, on the users network (VLAN 30).
    pool = next(s for s in report["services"] if s["name"] == "vdi-staff")
    assert pool["status"] == "green", pool["reason"]
    desktops = {n: vm for n, vm in vms.items() if n.startswith("vdi-staff-")}
    assert sorted(desktops) == [f"vdi-staff-{n:03d}" for n in range(1, 5)]
    assert all("tag=30" in vm["config"]["net0"] and "image=tpl-win11" in vm["config"].get("description", "") for vm in desktops.values())
    assert any(vm["status"] == "running" for vm in desktops.values())
    for name, vm in VM_SERVICES.items():
        svc = next(s for s in report["services"] if s["name"] == name)
        assert svc["status"] == "green", (name, svc["reason"])
        assert vms[vm]["status"] == "running", (vm, vms.get(vm))
        assert "tag=20" in vms[vm]["config"]["net0"], "not on the production servers network (VLAN 20)"
    assert next(s for s in report["services"] if s["name"] == "intranet")["restored_point"]["copy"] == "vzdump local"
    # The restored intranet VM took the service over with intranet1's MAC (DHCP reservations, port security).
    kept = mac(vms["intranet1"]["config"]["net0"])
    assert kept and mac(vms["intranet1-dr"]["config"]["net0"]) == kept, (vms["intranet1-dr"], vms["intranet1"])
    for svc in report["services"]:
        if svc["name"] in VM_SERVICES or svc["name"] == "vdi-staff":
            continue
        assert svc["status"] == "green", (svc["name"], svc["reason"])
        assert svc["targets"]["host"] == RECOVERY[svc["name"]]
        # The secondary copy was out of reach: the cloud copy was used.
        assert svc["restored_point"]["copy"] == "cloud", svc["restored_point"]
        assert holds(lab, RECOVERY[svc["name"]], ADDRESS[svc["name"]])
    assert resolve("portal.town.example") == [ADDRESS["portal"]]
    assert "Town Hall citizen portal" in page()
    steps = {s["name"]: s for s in report["plan_steps"]}
    assert steps["dns"]["status"] == "ok"
    # fw1 went down with the primary room: fw2 (secondary room) holds every VIP, and the policy's
    # flows from the users zone reach the recovered services through it.
    assert steps["firewall"]["status"] == "ok", steps["firewall"]
    assert "fw2 holds every VIP" in steps["firewall"]["detail"] and "unreachable: fw1" in steps["firewall"]["detail"]
    assert "client1 -> 172.31.20.43:80 open" in steps["firewall"]["detail"]
    assert "client1 -> 172.31.20.41:53 open" in steps["firewall"]["detail"]


def test_failback_brings_the_services_and_what_changed_home(failed_over, lab):
    _, _, tmp = failed_over
    marker = f"written during the failover {uuid.uuid4().hex[:8]}"
    insert = f"INSERT INTO notices (published, title, body) VALUES (now(), 'failover', '{marker}')"  # noqa: S608 - our own marker
    sh(lab, "rec2", f"runuser -u postgres -- psql -d portal -c \"{insert}\"")
    assert marker in page()
    # The primary room took intranet1 with it: the failback brings it back as itself from
    # intranet1-dr's last backup (its vmid, its MAC), not as a new VM.
    intranet_lost = lose_vm(lab, "intranet1")
    run = run_playbook("failback.yml", tmp, "-e", f"dr_drill_reports_dir={tmp / 'drills'}")
    assert run.returncode == 0, run.stdout[-5000:]
    report = json.loads(sorted((tmp / "drills").glob("2*/report.json"))[-1].read_text())
    assert report["kind"] == "failback" and report["status"] == "green", report
    fw_step = next(s for s in report["plan_steps"] if s["name"] == "firewall")
    assert fw_step["status"] == "ok" and "fw1 holds every VIP" in fw_step["detail"], fw_step
    assert "client1 -> 172.31.20.43:80 open" in fw_step["detail"]
    for svc, host in PRIMARY.items():
        assert holds(lab, host, ADDRESS[svc]), f"{host} does not serve {svc} again"
        assert not holds(lab, RECOVERY[svc], ADDRESS[svc]), f"{RECOVERY[svc]} still holds {ADDRESS[svc]}"
    assert marker in page()  # the replication ran the other way
    vms = pve_vms(lab)
    assert vms["file1-replica"]["status"] == "stopped", "the replica still runs after the failback"
    assert "intranet1-dr" not in vms, "the restored intranet VM was not removed"
    assert not [n for n in vms if n.startswith("vdi-staff-")], "the recovered desktop pool was not removed"
    handed = next(s for s in report["services"] if s["name"] == "intranet")["restored_point"]
    assert handed["copy"] == "vzdump local" and "vzdump-qemu-" in handed["snapshot"], handed  # its last backup
    back = vms["intranet1"]
    assert back["status"] == "running" and back["vmid"] == intranet_lost["vmid"], (back, intranet_lost)
    assert mac(intranet_lost["config"]["net0"]) and mac(back["config"]["net0"]) == mac(intranet_lost["config"]["net0"]), back["config"]
    assert "tag=20" in back["config"]["net0"], back["config"]
    assert f"twinsite-replaced: archive={handed['snapshot']} " in back["config"].get("description", ""), back["config"]
    assert resolve("portal.town.example") == [ADDRESS["portal"]]
    assert json.loads((tmp / "drills" / "active-site.json").read_text())["site"] == "primary"
    sh(lab, "db1", f"runuser -u postgres -- psql -d portal -c \"DELETE FROM notices WHERE body = '{marker}'\"")  # noqa: S608


# What a failover puts on each recovery host: the service's restored data, its unit, and on rec2 the database.
LEFT = {"rec1": ("/etc/bind/zones", "named"), "rec2": ("/var/backups/twinsite", "postgresql"),
        "rec3": ("/usr/local/lib/twinsite-portal", "twinsite-portal")}


def left_on(lab, host: str) -> dict[str, bool]:
    path, unit = LEFT[host]
    out = sh(lab, host, f"test -e {path} && echo DATA; systemctl is-active --quiet {unit} && echo RUNNING", check=False).stdout
    found = {"data": "DATA" in out, "running": "RUNNING" in out}
    if host == "rec2":
        listing = "systemctl start postgresql && runuser -u postgres -- psql -Atc 'SELECT datname FROM pg_database'"
        databases = sh(lab, host, listing if found["running"] else f"{listing}; systemctl stop postgresql").stdout.split()
        found["database"] = "portal" in databases
    return found


def sql(lab, host: str, query: str) -> str:
    return sh(lab, host, f"runuser -u postgres -- psql -Atd portal -c \"{query}\"").stdout


def test_a_planned_failover_of_the_whole_site_loses_no_write_and_fails_back_in_two_steps(lab, tmp_path, ca_pem):
    """A planned failover of every service (maintenance of the primary room): the primary's hosts
    take a last backup and are stopped and fenced, the production VMs are stopped (intranet1 after a
    last vzdump backup), and the secondary site runs everything on the production addresses. The
    failback then comes in two runs: the portal's database alone (-e dr_drill_only), then the rest.
    The second run does not move the database again (a row written at home after the first run
    stays), and brings intranet1-dr's data back under intranet1 itself (its vmid and MAC kept)."""
    drills = ["-e", f"dr_drill_reports_dir={tmp_path / 'drills'}"]
    record = tmp_path / "drills" / "active-site.json"
    marks = {k: f"{k} {uuid.uuid4().hex[:8]}" for k in ("before", "during", "home")}
    notice = "INSERT INTO notices (published, title, body) VALUES (now(), 'planned', '{}')"  # noqa: S608 - our own markers
    rows = "SELECT body FROM notices WHERE title = 'planned'"
    intranet_before = pve_vms(lab)["intranet1"]["config"]
    sql(lab, "db1", notice.format(marks["before"]))

    run = run_playbook("failover.yml", tmp_path, "-e", "dr_drill_planned=true", *drills)
    assert run.returncode == 0, run.stdout[-5000:]
    report = json.loads(sorted((tmp_path / "drills").glob("2*/report.json"))[-1].read_text())
    assert report["kind"] == "failover" and report["status"] == "green", report
    every = sorted([*RECOVERY, *VM_SERVICES, "vdi-staff"])
    assert sorted(s["name"] for s in report["services"]) == every
    checks = {c["name"]: c["ok"] for c in report["preflight"]["checks"]}
    assert checks["primary answers tcp 172.31.20.42:5432"] and checks["primary answers sql portal@172.31.20.42/portal"], checks
    for svc, host in RECOVERY.items():
        got = next(s for s in report["services"] if s["name"] == svc)
        assert got["status"] == "green" and got["targets"]["host"] == host, got
        assert got["restored_point"]["copy"] == "secondary" and got["rpo_s"] < 60, got  # the handover's own backup
        assert holds(lab, host, ADDRESS[svc]) and not holds(lab, PRIMARY[svc], ADDRESS[svc]), svc
    assert sh(lab, "db1", "systemctl is-active postgresql", check=False).stdout.strip() != "active"
    assert marks["before"] in sql(lab, "rec2", rows)
    # The production VMs are off, so that no two VMs share an address; intranet1's last backup,
    # taken after it stopped, is the one restored.
    vms = pve_vms(lab)
    assert vms["intranet1"]["status"] == "stopped" and vms["intranet1-dr"]["status"] == "running"
    assert live(lab, ca_pem, "vsphere", "file1")["power"] == "off" and vms["file1-replica"]["status"] == "running"
    intranet = next(s for s in report["services"] if s["name"] == "intranet")
    assert intranet["status"] == "green" and intranet["rpo_s"] < 60, intranet
    active = json.loads(record.read_text())
    assert active["at_secondary"] == every
    # Where each runs now: a recovery host, or for a VM-level service its VM on the secondary cluster.
    assert active["services"] == {**RECOVERY, "files": "VM file1-replica on cl-secondary", "intranet": "VM intranet1-dr on cl-secondary",
                                  "vdi-staff": "pool staff on cl-secondary"}, active
    sql(lab, "rec2", notice.format(marks["during"]))

    # Failback, first run: the database alone.
    back = run_playbook("failback.yml", tmp_path, *drills, "-e", '{"dr_drill_only": ["portal-db"]}')
    assert back.returncode == 0, back.stdout[-5000:]
    report = json.loads(sorted((tmp_path / "drills").glob("2*/report.json"))[-1].read_text())
    assert report["kind"] == "failback" and report["status"] == "green", report
    assert [s["name"] for s in report["services"]] == ["portal-db"]  # not what it depends on
    assert holds(lab, "db1", ADDRESS["portal-db"]) and not holds(lab, "rec2", ADDRESS["portal-db"])
    assert holds(lab, "rec3", ADDRESS["portal"]), "the portal moved with its database"
    assert marks["before"] in sql(lab, "db1", rows) and marks["during"] in sql(lab, "db1", rows)
    active = json.loads(record.read_text())
    assert active["site"] != "primary" and active["at_secondary"] == [n for n in every if n != "portal-db"], active
    # rec2 keeps no copy of the database that went home (failback_clear.yml); rec3 still runs the portal.
    assert left_on(lab, "rec2") == {"database": False, "data": False, "running": False}, left_on(lab, "rec2")
    assert left_on(lab, "rec3") == {"data": True, "running": True}
    sql(lab, "db1", notice.format(marks["home"]))

    # Second run: the rest; the database stays where it is, with the row written at home.
    rest = run_playbook("failback.yml", tmp_path, *drills)
    assert rest.returncode == 0, rest.stdout[-5000:]
    report = json.loads(sorted((tmp_path / "drills").glob("2*/report.json"))[-1].read_text())
    assert report["status"] == "green" and sorted(s["name"] for s in report["services"]) == [n for n in every if n != "portal-db"]
    assert all(marks[k] in sql(lab, "db1", rows) for k in marks), "the database was moved again"
    for svc, host in PRIMARY.items():
        assert holds(lab, host, ADDRESS[svc]) and not holds(lab, RECOVERY[svc], ADDRESS[svc]), svc
    vms = pve_vms(lab)
    assert "intranet1-dr" not in vms and vms["intranet1"]["status"] == "running"
    handed = next(s for s in report["services"] if s["name"] == "intranet")["restored_point"]["snapshot"]
    notes = vms["intranet1"]["config"].get("description", "")
    assert f"twinsite-replaced: archive={handed} " in notes, notes  # intranet1-dr's last backup is under intranet1
    assert vms["intranet1"]["config"]["net0"] == intranet_before["net0"], "intranet1 lost its MAC"
    assert vms["file1-replica"]["status"] == "stopped" and live(lab, ca_pem, "vsphere", "file1")["power"] == "on"
    for host in ("rec1", "rec3"):  # the standby hosts are empty again, ready for the next failover or drill
        assert not any(left_on(lab, host).values()), (host, left_on(lab, host))
    assert json.loads(record.read_text()) | {"since": None, "services": None} == {
        "site": "primary", "at_secondary": [], "since": None, "services": None}

    again = run_playbook("failback.yml", tmp_path, *drills)
    assert again.returncode != 0 and "Nothing to fail back: every service runs at site primary" in again.stdout
    sql(lab, "db1", "DELETE FROM notices WHERE title = 'planned'")
