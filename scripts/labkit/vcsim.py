"""The lab's vCenter: govmomi's simulator (``vcsim/main.go``) over TLS, filled from the lab model.

``up`` builds the simulator once, starts it with a certificate from the lab CA and the model's
login, then creates the inventory through the vSphere API with pyvmomi (TLS verified against the
lab CA, as the playbooks do): one datacenter, its VM folders, clusters and hosts, one local
datastore shared by the hosts, a distributed switch ``dvs-core`` with one VLAN port group per lab
network, then the VMs. The simulator keeps its inventory in memory only, so every start fills it
again. ``extra_vms`` adds that many small powered-on VMs (``extra-vm-0001``...) for benchmarks.

The model's ``vcsim`` entry (see ``model.py``)::

    {"host", "port", "username", "password", "datacenter",
     "clusters": [{"name", "hosts": [...]}], "portgroups": [{"name", "vlan"}], "folders": [...],
     "vms": [{"name", "cluster", "folder", "cpus", "memory_mb", "disk_gb", "networks": [...],
              "guest_id", "template", "power": "on"|"off", "annotation"}],
     "extra_vms": 0,
     "method_delay": {"CloneVM_Task": 2000}, "fail_tasks": {"CloneVm": "VM locked"}, "slow_tasks": {"PowerOn": 3000}}

The last three are optional and only for fault tests (the lab model sets none): a SOAP method that
answers late, tasks that fail with a message, tasks that stay running for a while. ``main.go``
explains the names.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

from . import ca, procs
from .context import Context, Status
from .errors import LabError

COMPONENT = "vcsim"
SOURCE = Path(__file__).resolve().parent / "vcsim" / "main.go"
# Debian's golang-github-vmware-govmomi-dev puts govmomi here; there is no module proxy to fetch it.
GOPATH = "/usr/share/gocode"
GO_FIX = "likely fix: apt-get install golang-go golang-github-vmware-govmomi-dev"
DVS = "dvs-core"
DATASTORE = "datastore1"
EXTRA_VM_PREFIX = "extra-vm-"


def build(ctx: Context) -> Path:
    """Compile main.go into ``.lab/bin/vcsim``, only when the binary is missing or main.go changed."""
    binary = ctx.state.bin / "vcsim"
    stamp = ctx.state.bin / "vcsim.sha256"  # hash of the main.go the binary was built from
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()
    if binary.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return binary
    go = shutil.which("go")
    if go is None:
        raise LabError(COMPONENT, f"cannot build the vCenter simulator: `go` is not on PATH. {GO_FIX}")
    ctx.say("vcsim: building the vCenter simulator (first time takes ~20s)")
    tmp = binary.with_name("vcsim.new")  # never leave a half-written binary behind
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": GOPATH}
    try:
        result = subprocess.run(  # noqa: S603 - fixed argv
            [go, "build", "-o", str(tmp), SOURCE.name], cwd=SOURCE.parent, env=env, capture_output=True, text=True
        )
    except OSError as exc:
        raise LabError(COMPONENT, f"could not run {go}: {exc}. {GO_FIX}") from exc
    if result.returncode != 0:
        output = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise LabError(COMPONENT, f"building {SOURCE} failed:\n{output}\n{GO_FIX}")
    tmp.replace(binary)
    stamp.write_text(digest + "\n")
    return binary


def up(ctx: Context) -> None:
    spec = _checked_spec(ctx.model.get("vcsim"))
    state, host, port = ctx.state, spec["host"], spec["port"]
    spec_hash = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
    pid = procs.pid_of(state, COMPONENT)
    if pid is not None:
        if state.read_facts(COMPONENT).get("spec_sha256") == spec_hash and _answers(host, port):
            ctx.say(f"vcsim: already running (pid {pid}) on https://{host}:{port}/sdk")
            return
        # The model changed (or the simulator is wedged): its inventory cannot be edited in place
        # from here, so start over. This drops whatever playbooks changed in the running one.
        ctx.say(f"vcsim: restarting (pid {pid}) to apply the model")
        procs.stop(state, COMPONENT)
    binary = build(ctx)
    procs.require_free_port(COMPONENT, host, port)
    cert, key = ca.server_cert(state, COMPONENT, ["127.0.0.1", "localhost"])
    # The simulator forgets its VMs when it stops but their files stay on the datastore; a VM
    # file left from the last run would make CreateVM fail with FileAlreadyExists.
    datastore_dir = state.data / "vcsim"
    shutil.rmtree(datastore_dir, ignore_errors=True)
    datastore_dir.mkdir(parents=True)
    argv = [str(binary), "-listen", f"{host}:{port}", "-cert", str(cert), "-key", str(key), "-username", spec["username"]]
    argv += _knob_flags(spec)
    ctx.say(f"vcsim: starting on https://{host}:{port}/sdk")
    started = time.monotonic()
    # The password goes by environment, not argv, so `ps` does not show it.
    pid = procs.start(state, COMPONENT, argv, env={"VCSIM_PASSWORD": spec["password"]})
    try:
        procs.wait_port(state, COMPONENT, host, port)
        si = connect(ctx)
        vm_count = _populate(ctx, si, spec, datastore_dir)
        si.content.sessionManager.Logout()
    except BaseException:
        # Leave nothing half-made behind: the next `lab up` starts from a clean port.
        procs.stop(state, COMPONENT)
        raise
    ctx.say(f"vcsim: {vm_count} VMs ready in {time.monotonic() - started:.1f}s")
    state.write_facts(COMPONENT, {
        "pid": pid,
        "url": f"https://{host}:{port}/sdk",
        "host": host,
        "port": port,
        "username": spec["username"],
        "ca": str(state.ca / "ca.pem"),
        "datacenter": spec["datacenter"],
        "datastore": DATASTORE,
        "dvs": DVS,
        "vm_count": vm_count,
        "extra_vms": spec["extra_vms"],
        "spec_sha256": spec_hash,
    })


def down(ctx: Context) -> None:
    procs.stop(ctx.state, COMPONENT)
    ctx.state.forget(COMPONENT)
    shutil.rmtree(ctx.state.root / "data" / "vcsim", ignore_errors=True)


def status(ctx: Context) -> list[Status]:
    spec = ctx.model.get("vcsim") or ctx.state.read_facts(COMPONENT)
    if not spec:
        return []
    host, port = spec["host"], int(spec["port"])
    address = f"https://{host}:{port}/sdk"
    pid = procs.pid_of(ctx.state, COMPONENT)
    if pid is None:
        return [Status(COMPONENT, address, False, "not running")]
    if not _answers(host, port):
        return [Status(COMPONENT, address, False, f"pid {pid} runs but the port does not answer")]
    vms = ctx.state.read_facts(COMPONENT).get("vm_count")
    return [Status(COMPONENT, address, True, f"pid {pid}" + (f", {vms} VMs" if vms is not None else ""))]


def _answers(host: str, port: int) -> bool:
    """A TCP connect is enough to tell the simulator listens (its log then shows a harmless
    "TLS handshake error ... EOF", since we hang up without speaking TLS)."""
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def connect(ctx: Context):
    """Log in to the running simulator, verifying its certificate against the lab CA."""
    from pyVim.connect import SmartConnect  # imported late: only vcsim needs pyvmomi
    from pyVmomi import vim

    spec = ctx.model["vcsim"]
    # pyvmomi ignores REQUESTS_CA_BUNDLE/SSL_CERT_FILE; without this context it would check the
    # system CAs (and fail) or, worse, tempt someone to disable verification.
    tls = ssl.create_default_context(cafile=str(ctx.state.ca / "ca.pem"))
    try:
        return SmartConnect(host=spec["host"], port=int(spec["port"]), user=spec["username"],
                            pwd=spec["password"], sslContext=tls)
    except vim.fault.InvalidLogin as exc:
        raise LabError(COMPONENT, f"login as {spec['username']!r} was refused; check the vCenter "
                                  f"username/password in the inventory") from exc
    except (OSError, ssl.SSLError) as exc:
        raise LabError(COMPONENT, f"cannot reach https://{spec['host']}:{spec['port']}/sdk: {exc}") from exc


# --- the inventory -----------------------------------------------------------------------------


def _populate(ctx: Context, si, spec: dict, datastore_dir: Path) -> int:
    from pyVmomi import vim

    content = si.RetrieveContent()
    dc = _call(f"create datacenter {spec['datacenter']!r}", content.rootFolder.CreateDatacenter, name=spec["datacenter"])
    # Read once: every attribute read on a pyvmomi managed object is a round trip to the server.
    root_folder = dc.vmFolder
    folders = {name: _call(f"create VM folder {name!r}", root_folder.CreateFolder, name=name) for name in spec["folders"]}

    clusters, hosts = {}, []
    for cl in spec["clusters"]:
        clusters[cl["name"]] = _call(f"create cluster {cl['name']!r}", dc.hostFolder.CreateClusterEx,
                                     name=cl["name"], spec=vim.cluster.ConfigSpecEx())
        for name in cl["hosts"]:
            what = f"add host {name!r} to cluster {cl['name']!r}"
            task = _call(what, clusters[cl["name"]].AddHost_Task, spec=vim.host.ConnectSpec(hostName=name, force=True), asConnected=True)
            hosts += _wait(content, [(what, task)])
    ctx.say(f"vcsim: datacenter {spec['datacenter']}, {len(clusters)} cluster(s), {len(hosts)} host(s)")

    # One datastore mounted on every host, so any host of a cluster can run any VM.
    for host in hosts:
        _call(f"mount datastore {DATASTORE!r} on host {host.name!r}",
              host.configManager.datastoreSystem.CreateLocalDatastore, name=DATASTORE, path=str(datastore_dir))

    switch_uuid, portgroup_keys = _network(content, dc, spec["portgroups"], hosts)
    vms = [_vm_config(vm, switch_uuid, portgroup_keys) for vm in spec["vms"]]
    vms += _extra_vms(spec, switch_uuid, portgroup_keys)
    ctx.say(f"vcsim: creating {len(vms)} VMs")

    pool = {name: cl.resourcePool for name, cl in clusters.items()}
    # Send every request first, then collect all the task results in one query (see _wait).
    tasks = []
    for item, config in vms:
        what = f"create VM {item['name']!r} in cluster {item['cluster']!r}"
        folder = folders.get(item["folder"], root_folder)
        tasks.append((what, _call(what, folder.CreateVM_Task, config=config, pool=pool[item["cluster"]])))
    created = _wait(content, tasks)
    tasks = []
    for (item, _), vm in zip(vms, created, strict=True):
        if item["power"] == "on":
            what = f"power on VM {item['name']!r}"
            tasks.append((what, _call(what, vm.PowerOnVM_Task)))
    _wait(content, tasks)
    for (item, _), vm in zip(vms, created, strict=True):
        if item["template"]:
            _call(f"mark VM {item['name']!r} as a template", vm.MarkAsTemplate)
    return len(created)


def _network(content, dc, portgroups: list[dict], hosts: list) -> tuple[str, dict[str, str]]:
    """A distributed switch with every host as a member and one port group per lab VLAN.

    Returns the switch's uuid and each port group's key, what a VM NIC's backing names, read once.
    """
    from pyVmomi import vim

    what = f"create distributed switch {DVS!r}"
    create = vim.DistributedVirtualSwitch.CreateSpec(configSpec=vim.dvs.VmwareDistributedVirtualSwitch.ConfigSpec(name=DVS))
    [dvs] = _wait(content, [(what, _call(what, dc.networkFolder.CreateDVS_Task, spec=create))])
    specs = [
        vim.dvs.DistributedVirtualPortgroup.ConfigSpec(
            name=pg["name"], type="earlyBinding", numPorts=128,
            defaultPortConfig=vim.dvs.VmwareDistributedVirtualSwitch.VmwarePortConfigPolicy(
                vlan=vim.dvs.VmwareDistributedVirtualSwitch.VlanIdSpec(vlanId=int(pg["vlan"]), inherited=False)))
        for pg in portgroups
    ]
    if specs:
        what = f"add port groups {[pg['name'] for pg in portgroups]} to {DVS!r}"
        _wait(content, [(what, _call(what, dvs.AddDVPortgroup_Task, spec=specs))])
    # The simulator refuses a VM NIC on a port group unless the VM's host is a member of the switch.
    members = [vim.dvs.HostMember.ConfigSpec(operation="add", host=host) for host in hosts]
    config = vim.dvs.VmwareDistributedVirtualSwitch.ConfigSpec(configVersion=dvs.config.configVersion, host=members)
    what = f"add the hosts to {DVS!r}"
    _wait(content, [(what, _call(what, dvs.ReconfigureDvs_Task, spec=config))])
    return dvs.uuid, {pg.name: pg.key for pg in dvs.portgroup}


def _vm_config(item: dict, switch_uuid: str, portgroup_keys: dict[str, str]) -> tuple[dict, object]:
    """The CreateVM spec for one model VM: CPUs, memory, one thin disk, one vmxnet3 NIC per network."""
    from pyVmomi import vim

    add = vim.vm.device.VirtualDeviceSpec.Operation.add
    # Negative keys are placeholders the server replaces; the disk refers to the new controller by it.
    scsi = vim.vm.device.ParaVirtualSCSIController(key=-100, busNumber=0, sharedBus="noSharing")
    devices = [vim.vm.device.VirtualDeviceSpec(operation=add, device=scsi)]
    if item["disk_gb"]:
        disk = vim.vm.device.VirtualDisk(
            key=-101, controllerKey=-100, unitNumber=0, capacityInKB=int(item["disk_gb"]) * 1024 * 1024,
            backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(diskMode="persistent", thinProvisioned=True, fileName=""))
        devices.append(vim.vm.device.VirtualDeviceSpec(operation=add, fileOperation="create", device=disk))
    for i, net in enumerate(item["networks"]):
        port = vim.dvs.PortConnection(switchUuid=switch_uuid, portgroupKey=portgroup_keys[net])
        nic = vim.vm.device.VirtualVmxnet3(
            key=-200 - i, backing=vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo(port=port),
            connectable=vim.vm.device.VirtualDevice.ConnectInfo(startConnected=True, allowGuestControl=True))
        devices.append(vim.vm.device.VirtualDeviceSpec(operation=add, device=nic))
    config = vim.vm.ConfigSpec(
        name=item["name"], numCPUs=int(item["cpus"]), memoryMB=int(item["memory_mb"]), guestId=item["guest_id"],
        annotation=item["annotation"], files=vim.vm.FileInfo(vmPathName=f"[{DATASTORE}]"), deviceChange=devices)
    return item, config


def _extra_vms(spec: dict, switch_uuid: str, portgroup_keys: dict[str, str]) -> list[tuple[dict, object]]:
    """``extra_vms`` small VMs on the first cluster and port group, to give benchmarks a big inventory."""
    base = {"cluster": spec["clusters"][0]["name"], "folder": None, "cpus": 1, "memory_mb": 512, "disk_gb": 1,
            "networks": [pg["name"] for pg in spec["portgroups"][:1]], "guest_id": "otherGuest64",
            "template": False, "power": "on", "annotation": "twinsite lab: generated for benchmarks"}
    return [_vm_config({**base, "name": f"{EXTRA_VM_PREFIX}{n:04d}"}, switch_uuid, portgroup_keys)
            for n in range(1, spec["extra_vms"] + 1)]


def _knob_flags(spec: dict) -> list[str]:
    """The fault-test flags of main.go (``-fail-task CloneVm=VM locked``...); none for the lab."""
    flags = []
    for key, flag in (("method_delay", "-method-delay"), ("fail_tasks", "-fail-task"), ("slow_tasks", "-slow-task")):
        if spec.get(key):
            flags += [flag, ",".join(f"{name}={value}" for name, value in spec[key].items())]
    return flags


def _call(what: str, method, **kwargs):
    """Call a vSphere method; a fault becomes a LabError saying what the lab was doing."""
    from pyVmomi import vmodl

    try:
        return method(**kwargs)
    except vmodl.MethodFault as fault:
        raise LabError(COMPONENT, f"{what} failed: {_describe(fault)}") from fault


def _wait(content, tasks: list[tuple[str, object]], timeout: float = 600.0) -> list:
    """Wait for many tasks with one PropertyCollector query per round; return their results in order.

    Asking each task one by one would double the round trips for 2,000 VMs. The first failed task
    becomes a LabError naming what it was doing (``create VM 'dns1'``...).
    """
    from pyVmomi import vim, vmodl

    if not tasks:
        return []
    pc = content.propertyCollector
    spec = vmodl.query.PropertyCollector.FilterSpec(
        objectSet=[vmodl.query.PropertyCollector.ObjectSpec(obj=task) for _, task in tasks],
        propSet=[vmodl.query.PropertyCollector.PropertySpec(type=vim.Task, pathSet=["info.state", "info.error", "info.result"])])
    deadline = time.monotonic() + timeout
    while True:
        info = {}
        for obj in pc.RetrieveContents([spec]):
            info[obj.obj._moId] = {p.name: p.val for p in obj.propSet}
        states = [info[task._moId].get("info.state") for _, task in tasks]
        if all(s in ("success", "error") for s in states):
            break
        if time.monotonic() > deadline:
            raise LabError(COMPONENT, f"{tasks[0][0]} (and {len(tasks) - 1} more) did not finish in {timeout:.0f}s")
        time.sleep(0.2)
    for what, task in tasks:
        if info[task._moId]["info.state"] == "error":
            raise LabError(COMPONENT, f"{what} failed: {_describe(info[task._moId]['info.error'])}")
    return [info[task._moId].get("info.result") for _, task in tasks]


def _describe(fault) -> str:
    """A fault in one line: its type and whatever detail it carries (msg, invalidProperty, name)."""
    detail = getattr(fault, "msg", "") or ""
    if detail.startswith("*types."):  # vcsim fills msg with the Go type name: no news
        detail = ""
    for attr in ("invalidProperty", "name", "file"):
        if getattr(fault, attr, None):
            detail += f" {attr}={getattr(fault, attr)}"
    return f"{type(fault).__name__.rsplit('.', 1)[-1]}{': ' + detail.strip() if detail.strip() else ''}"


# --- checking the model ------------------------------------------------------------------------


def _checked_spec(spec: dict | None) -> dict:
    """Check the model's vcsim entry before starting anything, so a typo costs no simulator start.

    Returns a copy with defaults filled in and ``power`` as "on"/"off" (YAML reads a bare ``on``
    as true).
    """
    if not spec:
        raise LabError(COMPONENT, "the lab model has no vSphere cluster (dc_clusters with type: vsphere); nothing to simulate")
    for key in ("host", "port", "username", "password", "datacenter", "clusters"):
        if not spec.get(key):
            raise LabError(COMPONENT, f"the model's vcsim entry has no {key!r}")
    spec = {**spec, "port": int(spec["port"]), "portgroups": list(spec.get("portgroups") or []),
            "folders": list(spec.get("folders") or []), "extra_vms": int(spec.get("extra_vms") or 0)}
    clusters = {cl["name"] for cl in spec["clusters"]}
    portgroups = {pg["name"] for pg in spec["portgroups"]}
    all_hosts = [h for cl in spec["clusters"] for h in cl.get("hosts") or []]
    for cl in spec["clusters"]:
        if not cl.get("hosts"):
            raise LabError(COMPONENT, f"cluster {cl['name']!r} has no hosts; VMs need a host to run on")
    twice = sorted({h for h in all_hosts if all_hosts.count(h) > 1})
    if twice:
        raise LabError(COMPONENT, f"hosts {twice} are listed twice (a host belongs to one cluster)")
    for pg in spec["portgroups"]:
        if not 0 <= int(pg["vlan"]) <= 4094:
            raise LabError(COMPONENT, f"port group {pg['name']!r} has VLAN {pg['vlan']}; VLAN ids are 0-4094")
    for key in ("fail_tasks", "slow_tasks", "method_delay"):
        for name, value in (spec.get(key) or {}).items():
            # main.go reads "Name=value,Name=value": a comma or "=" inside would split wrongly.
            if not name or any(c in f"{name}{value}" for c in ",=") or (key != "fail_tasks" and not isinstance(value, int)):
                raise LabError(COMPONENT, f"{key} {name!r}: {value!r} does not fit; use a name without ',' or '=' "
                                          f"and {'a message without them' if key == 'fail_tasks' else 'whole milliseconds'}")
    if spec["extra_vms"] and not spec["portgroups"]:
        raise LabError(COMPONENT, "extra_vms needs at least one port group for their NIC")

    vms, seen = [], set()
    for item in spec.get("vms") or []:
        name = item.get("name")
        if not name:
            raise LabError(COMPONENT, f"a VM in the model has no name: {item}")
        if name in seen or name.startswith(EXTRA_VM_PREFIX):
            raise LabError(COMPONENT, f"VM {name!r}: the name is used twice (or clashes with the generated {EXTRA_VM_PREFIX}NNNN)")
        seen.add(name)
        if item.get("cluster") not in clusters:
            raise LabError(COMPONENT, f"VM {name!r} names cluster {item.get('cluster')!r}, "
                                      f"which is not in the model's clusters {sorted(clusters)}")
        if item.get("folder") and item["folder"] not in spec["folders"]:
            raise LabError(COMPONENT, f"VM {name!r} names folder {item['folder']!r}, "
                                      f"which is not in the model's folders {spec['folders']}")
        for net in item.get("networks") or []:
            if net not in portgroups:
                raise LabError(COMPONENT, f"VM {name!r} names network {net!r}, "
                                          f"which is not a port group of the model {sorted(portgroups)}")
        power = {"on": "on", "true": "on", "poweredon": "on", "off": "off", "false": "off", "poweredoff": "off"}.get(
            str(item.get("power", "off")).lower())
        if power is None:
            raise LabError(COMPONENT, f"VM {name!r} has power {item.get('power')!r}; use on or off")
        if item.get("guest_id") and item["guest_id"] not in _guest_ids():
            # The simulator would take any id; a real vCenter refuses one it does not know.
            raise LabError(COMPONENT, f"VM {name!r} has guest_id {item['guest_id']!r}, which vSphere does not know "
                                      f"(e.g. debian12_64Guest, windows11_64Guest, otherGuest64)")
        if item.get("template") and power == "on":
            raise LabError(COMPONENT, f"VM {name!r} is a template and cannot be powered on; set power: off")
        vm = {"folder": None, "cpus": 1, "memory_mb": 1024, "disk_gb": 0, "guest_id": "otherGuest64", "annotation": "",
              **{k: v for k, v in item.items() if v is not None},
              "networks": list(item.get("networks") or []), "template": bool(item.get("template")), "power": power}
        for key, least in (("cpus", 1), ("memory_mb", 4), ("disk_gb", 0)):
            if not isinstance(vm[key], int) or vm[key] < least:
                raise LabError(COMPONENT, f"VM {name!r} has {key}: {vm[key]!r}; it must be a whole number of at least {least}")
        vms.append(vm)
    spec["vms"] = vms
    return spec


def _guest_ids() -> set[str]:
    """The guest OS ids of the vSphere API version pyvmomi speaks (vCenter 8's list)."""
    from pyVmomi import vim

    return set(vim.vm.GuestOsDescriptor.GuestOsIdentifier.values)
