"""The inventory plugins, with the vendor client patched at its seam: what they read (how many
calls), how they join and group it, the cache, and the messages a person sees when it goes wrong."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import pytest
import yaml
from ansible.errors import AnsibleParserError
from ansible.inventory.data import InventoryData
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import inventory_loader
from pyVmomi import vim

from ansible_collections.twinsite.dc.plugins.module_utils import _proxmox, _vsphere
from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError

REPO = Path(__file__).resolve().parents[2]


def load(name: str):
    inventory_loader.add_directory(str(REPO / "plugins" / "inventory"))
    plugin = inventory_loader.get(name)
    # Loaded from the directory the plugin knows itself by its short name; config files name the FQCN.
    plugin._redirected_names = [plugin.NAME]
    return plugin


def parse(tmp_path: Path, name: str, config: dict, cache: bool = True):
    path = tmp_path / f"site.twinsite_{name}.yml"
    path.write_text(yaml.safe_dump({"plugin": f"twinsite.dc.{name}", **config}))
    plugin, inventory = load(name), InventoryData()
    plugin.parse(inventory, DataLoader(), str(path), cache=cache)
    if config.get("cache"):
        plugin.update_cache_if_changed()  # what ansible-inventory does after a parse: write the cache
    return inventory


def hosts_of(inventory, group: str) -> set[str]:
    return {h.name for h in inventory.groups[group].get_hosts()}


# --- vSphere --------------------------------------------------------------------------------------

VCENTER = {"hostname": "vcenter.town.example", "username": "reader@vsphere.local", "password": "pw"}


def vsphere_objects() -> dict:
    """What one retrieve returns for a small site: a datacenter, a cluster of one host, a stand-alone
    host, nested folders, a DVS port group, and two VMs named alike in two folders."""
    def row(obj, **props):
        return {"_obj": obj, **props}

    dc, root = vim.Datacenter("datacenter-1"), vim.Folder("group-v1")
    servers, linux = vim.Folder("group-v2"), vim.Folder("group-v3")
    cluster = vim.ClusterComputeResource("domain-c1")
    esx1, esx9 = vim.HostSystem("host-1"), vim.HostSystem("host-9")
    ds, pg = vim.Datastore("datastore-1"), vim.dvs.DistributedVirtualPortgroup("dvportgroup-1")
    return {
        vim.VirtualMachine: [
            row(vim.VirtualMachine("vm-1"), **{
                "name": "db1", "config.uuid": "u-1", "config.template": False,
                "config.hardware.numCPU": 4, "config.hardware.memoryMB": 8192, "config.guestId": "debian12_64Guest",
                "runtime.powerState": vim.VirtualMachine.PowerState.poweredOn, "runtime.host": esx1,
                "guest.ipAddress": "192.0.2.42", "datastore": [ds], "network": [pg], "parent": linux}),
            row(vim.VirtualMachine("vm-2"), **{
                "name": "db1", "config.template": True, "config.hardware.numCPU": 1, "config.hardware.memoryMB": 512,
                "runtime.powerState": vim.VirtualMachine.PowerState.poweredOff, "runtime.host": esx9,
                "datastore": [], "network": [], "parent": root}),
        ],
        vim.HostSystem: [row(esx1, name="esx01", parent=cluster),
                         row(esx9, name="esx09", parent=vim.ComputeResource("domain-s9"))],
        vim.ClusterComputeResource: [row(cluster, name="Cluster-Primary")],
        vim.Datacenter: [row(dc, name="DC-Town")],
        vim.Folder: [row(root, name="vm", parent=dc), row(servers, name="Servers", parent=root),
                     row(linux, name="Linux", parent=servers)],
        vim.Datastore: [row(ds, name="datastore1")],
        vim.Network: [row(pg, name="servers")],
    }


class FakeVcenter:
    """Stands in for _vsphere.VsphereClient and counts what the plugin asks of it."""

    calls: list[str] = []
    error: TwinsiteError | None = None

    def __init__(self, **params):
        self.params = params

    def connect(self):
        FakeVcenter.calls.append("connect")
        if FakeVcenter.error:
            raise FakeVcenter.error
        return self

    def retrieve_many(self, properties, page_size=1000):
        FakeVcenter.calls.append("retrieve_many")
        FakeVcenter.params = self.params
        assert set(properties) == set(vsphere_objects())
        return vsphere_objects()

    def tags(self):
        FakeVcenter.calls.append("tags")
        return {"vm-1": [{"category": "backup", "name": "daily"}, {"category": "owner", "name": "IT-Dept"}]}

    def close(self):
        FakeVcenter.calls.append("close")


@pytest.fixture
def vcenter(monkeypatch):
    FakeVcenter.calls, FakeVcenter.error = [], None
    monkeypatch.setattr(_vsphere, "VsphereClient", FakeVcenter)
    return FakeVcenter


def test_vsphere_reads_everything_in_one_retrieve_and_joins_in_memory(tmp_path, vcenter):
    inventory = parse(tmp_path, "vsphere", VCENTER)
    assert vcenter.calls == ["connect", "retrieve_many", "tags", "close"]
    db1 = inventory.get_host("db1").vars
    assert {k: v for k, v in db1.items() if k not in ("inventory_file", "inventory_dir")} == {
        "vsphere_name": "db1", "vsphere_moid": "vm-1", "vsphere_uuid": "u-1",
        "vsphere_power_state": "poweredOn", "vsphere_template": False, "vsphere_guest_ip": "192.0.2.42",
        "vsphere_cpus": 4, "vsphere_memory_mb": 8192, "vsphere_guest_id": "debian12_64Guest",
        "vsphere_datacenter": "DC-Town", "vsphere_cluster": "Cluster-Primary", "vsphere_host": "esx01",
        "vsphere_folder": "Servers/Linux", "vsphere_datastores": ["datastore1"], "vsphere_networks": ["servers"],
        "vsphere_tags": ["IT-Dept", "daily"], "vsphere_tag_categories": {"backup": ["daily"], "owner": ["IT-Dept"]},
    }
    # The enum value arrives as a plain str: Ansible refuses to store pyvmomi's str subclass.
    assert type(db1["vsphere_power_state"]) is str


def test_vsphere_groups_and_a_second_vm_of_the_same_name(tmp_path, vcenter):
    inventory = parse(tmp_path, "vsphere", VCENTER)
    twin = inventory.get_host("db1_vm-2").vars
    # A stand-alone host has no cluster; a VM in the datacenter's root VM folder has the empty path.
    assert (twin["vsphere_cluster"], twin["vsphere_host"], twin["vsphere_folder"]) == (None, "esx09", "")
    assert hosts_of(inventory, "vsphere_power_on") == {"db1"}
    assert hosts_of(inventory, "vsphere_power_off") == {"db1_vm-2"}
    assert hosts_of(inventory, "vsphere_cluster_cluster_primary") == {"db1"}
    assert hosts_of(inventory, "vsphere_folder_servers_linux") == {"db1"}
    assert hosts_of(inventory, "vsphere_templates") == {"db1_vm-2"}
    assert hosts_of(inventory, "vsphere_tag_daily") == hosts_of(inventory, "vsphere_tag_it_dept") == {"db1"}


def test_vsphere_constructed_options_and_no_tags_when_told(tmp_path, vcenter):
    config = {**VCENTER, "with_tags": False, "group_prefix": "vc_",
              "compose": {"ansible_host": "vsphere_guest_ip", "fqdn": "vsphere_name + '.town.example'"},
              "groups": {"big": "vsphere_memory_mb >= 4096"},
              "keyed_groups": [{"key": "vsphere_guest_id", "prefix": "os"}]}
    inventory = parse(tmp_path, "vsphere", config)
    assert "tags" not in vcenter.calls
    assert inventory.get_host("db1").vars["ansible_host"] == "192.0.2.42"
    assert inventory.get_host("db1").vars["fqdn"] == "db1.town.example"
    assert hosts_of(inventory, "big") == {"db1"}
    assert hosts_of(inventory, "os_debian12_64Guest") == {"db1"}
    assert hosts_of(inventory, "vc_power_on") == {"db1"}
    assert "vsphere_power_on" not in inventory.groups


def test_vsphere_cache_answers_without_calling_vcenter(tmp_path, vcenter):
    config = {**VCENTER, "cache": True, "cache_plugin": "jsonfile", "cache_connection": str(tmp_path / "cache")}
    first = parse(tmp_path, "vsphere", config)
    vcenter.calls.clear()
    again = parse(tmp_path, "vsphere", config)
    assert vcenter.calls == []
    assert again.get_host("db1").vars["vsphere_folder"] == first.get_host("db1").vars["vsphere_folder"] == "Servers/Linux"
    parse(tmp_path, "vsphere", config, cache=False)  # --flush-cache
    assert vcenter.calls.count("retrieve_many") == 1


def test_vsphere_relative_ca_bundle_is_relative_to_the_config_file(tmp_path, vcenter, monkeypatch):
    monkeypatch.chdir("/")
    parse(tmp_path, "vsphere", {**VCENTER, "ca_bundle": "files/ca.pem"})
    assert vcenter.params["ca_bundle"] == str(tmp_path / "files" / "ca.pem")
    assert vcenter.params["validate_certs"] is True  # the default


def test_vsphere_credentials_from_the_environment(tmp_path, vcenter, monkeypatch):
    monkeypatch.setenv("TWINSITE_VSPHERE_HOST", "vc.example")
    monkeypatch.setenv("TWINSITE_VSPHERE_USER", "env-user")
    monkeypatch.setenv("TWINSITE_VSPHERE_PASSWORD", "env-pw")
    monkeypatch.setenv("TWINSITE_VSPHERE_CA_BUNDLE", "/etc/ca.pem")
    parse(tmp_path, "vsphere", {})
    assert {k: vcenter.params[k] for k in ("hostname", "username", "password", "ca_bundle", "port")} == {
        "hostname": "vc.example", "username": "env-user", "password": "env-pw", "ca_bundle": "/etc/ca.pem", "port": 443}
    parse(tmp_path, "vsphere", {"username": "file-user"})  # the config file wins over the environment
    assert vcenter.params["username"] == "file-user"


def test_vsphere_errors_name_the_source_and_the_fix(tmp_path, vcenter):
    vcenter.error = TwinsiteError("wrong user name or password", obj="vCenter vcenter.town.example:443", action="login")
    with pytest.raises(AnsibleParserError) as failed:
        parse(tmp_path, "vsphere", VCENTER)
    assert str(failed.value).startswith("twinsite.dc.vsphere (")
    assert "site.twinsite_vsphere.yml): login of vCenter vcenter.town.example:443 failed: wrong user name or password" in str(failed.value)
    with pytest.raises(AnsibleParserError, match=r"set username \(or TWINSITE_VSPHERE_USER\), password \(or TWINSITE_VSPHERE_PASSWORD\)"):
        parse(tmp_path, "vsphere", {"hostname": "vc.example"})


def test_vsphere_tags_unavailable_says_how_to_do_without(tmp_path, vcenter, monkeypatch):
    def no_tagging(self):
        raise TwinsiteError("HTTP 404, no vAPI tagging service here", obj="vCenter x", action="reading tags")

    monkeypatch.setattr(FakeVcenter, "tags", no_tagging)
    with pytest.raises(AnsibleParserError, match="set with_tags: false"):
        parse(tmp_path, "vsphere", VCENTER)
    assert vcenter.calls[-1] == "close"  # the session is closed even so


def test_verify_file_takes_only_its_own_suffix(tmp_path):
    for name, good in (("vsphere", "a.twinsite_vsphere.yaml"), ("proxmox", "b.twinsite_proxmox.yml")):
        for file in (good, "hosts.yml", "c.twinsite_other.yml"):
            (tmp_path / file).write_text("plugin: x\n")
            assert load(name).verify_file(str(tmp_path / file)) is (file == good), (name, file)


def test_vsphere_client_pages_through_one_retrieve(monkeypatch):
    # vcsim answers everything in one page (it ignores maxObjects), so the paging is checked here.
    def page(token, *moids):
        return SimpleNamespace(token=token, objects=[
            SimpleNamespace(obj=obj, propSet=[SimpleNamespace(name="name", val=f"n-{obj._moId}")])
            for obj in (vim.Network(m) if m.startswith("net") else vim.VirtualMachine(m) for m in moids)])

    view, destroyed = vim.view.ContainerView("session[1]view-1"), []
    monkeypatch.setattr(type(view), "Destroy", lambda self: destroyed.append(self._moId))
    collector = mock.Mock()
    collector.RetrievePropertiesEx.return_value = page("t1", "vm-1", "vm-2")
    collector.ContinueRetrievePropertiesEx.side_effect = [page("t2", "vm-3", "network-1"), page(None, "vm-4")]
    client = _vsphere.VsphereClient("vc", "reader", "pw")
    client.content = SimpleNamespace(rootFolder=vim.Folder("group-d1"), propertyCollector=collector,
                                     viewManager=mock.Mock(**{"CreateContainerView.return_value": view}))
    rows = client.retrieve_many({vim.VirtualMachine: ["name"], vim.Network: ["name"]}, page_size=2)
    assert [r["name"] for r in rows[vim.VirtualMachine]] == ["n-vm-1", "n-vm-2", "n-vm-3", "n-vm-4"]
    assert [r["_obj"]._moId for r in rows[vim.Network]] == ["network-1"]
    assert collector.RetrievePropertiesEx.call_count == 1
    assert collector.RetrievePropertiesEx.call_args.args[1].maxObjects == 2
    assert [c.args for c in collector.ContinueRetrievePropertiesEx.call_args_list] == [("t1",), ("t2",)]
    assert destroyed == ["session[1]view-1"]


def test_vsphere_client_turns_a_fault_into_a_message_and_still_drops_the_view(monkeypatch):
    view, destroyed = vim.view.ContainerView("session[1]view-2"), []
    monkeypatch.setattr(type(view), "Destroy", lambda self: destroyed.append(self._moId))
    collector = mock.Mock(**{"RetrievePropertiesEx.side_effect": vim.fault.NoPermission(msg="Permission to perform this operation was denied.")})
    client = _vsphere.VsphereClient("vc.example", "reader", "pw")
    client.content = SimpleNamespace(rootFolder=vim.Folder("group-d1"), propertyCollector=collector,
                                     viewManager=mock.Mock(**{"CreateContainerView.return_value": view}))
    with pytest.raises(TwinsiteError, match=r"^reading the inventory of vCenter vc.example:443 failed: NoPermission: Permission to"):
        client.retrieve(vim.VirtualMachine, ["name"])
    assert destroyed == ["session[1]view-2"]


# --- Proxmox VE -----------------------------------------------------------------------------------

PVE = {"hostname": "pve1.town.example", "username": "inventory@pve", "password": "pw"}
GIB = 1024**3


class FakePve:
    """Stands in for _proxmox.ProxmoxClient: counts calls and the config reads running at once."""

    calls: list[str] = []
    guests: list[dict] = []
    running = most = 0
    lock = threading.Lock()

    def __init__(self, **params):
        self.params = params

    def connect(self):
        FakePve.calls.append("connect")
        return self

    def resources(self, type_=None):
        FakePve.calls.append(f"resources {type_}")
        return FakePve.guests

    def cluster_status(self):
        FakePve.calls.append("cluster_status")
        return [{"type": "cluster", "name": "cl-secondary"},
                {"type": "node", "name": "pve1", "online": 1}, {"type": "node", "name": "pve2", "online": 0}]

    def guest_config(self, node, kind, vmid):
        with FakePve.lock:
            FakePve.calls.append("guest_config")
            FakePve.running += 1
            FakePve.most = max(FakePve.most, FakePve.running)
        time.sleep(0.01)
        with FakePve.lock:
            FakePve.running -= 1
        if vmid == 666:
            raise TwinsiteError("500 Internal Server Error: Configuration file does not exist", obj="x", action="GET")
        return {"cores": 2, "node_asked": node, "kind_asked": kind}


def guest(vmid, name, node="pve1", type_="qemu", status="running", **extra):
    return {"id": f"{type_}/{vmid}", "vmid": vmid, "name": name, "node": node, "type": type_, "status": status,
            "template": 0, "maxcpu": 2, "maxmem": 4 * GIB, "maxdisk": 32 * GIB, **extra}


@pytest.fixture
def pve(monkeypatch):
    FakePve.calls, FakePve.running, FakePve.most = [], 0, 0
    FakePve.guests = [
        guest(110, "backup-proxy", pool="Backup", tags="prod;backup"),
        guest(201, "dns1-replica", node="pve2", status="unknown"),
        guest(9000, "tpl-debian12", status="stopped", template=1),
        guest(300, "ct-proxy", type_="lxc", tags="prod, web"),
    ]
    monkeypatch.setattr(_proxmox, "ProxmoxClient", FakePve)
    return FakePve


def test_proxmox_three_calls_hostvars_and_groups(tmp_path, pve):
    inventory = parse(tmp_path, "proxmox", PVE)
    assert pve.calls == ["connect", "resources vm", "cluster_status"]
    proxy = inventory.get_host("backup-proxy").vars
    assert {k: v for k, v in proxy.items() if k.startswith("pve_")} == {
        "pve_vmid": 110, "pve_name": "backup-proxy", "pve_node": "pve1", "pve_type": "qemu", "pve_status": "running",
        "pve_template": False, "pve_cpus": 2, "pve_memory_mb": 4096, "pve_disk_gb": 32.0, "pve_pool": "Backup",
        "pve_tags": ["backup", "prod"], "pve_cluster": "cl-secondary", "pve_node_online": True}
    assert inventory.get_host("dns1-replica").vars["pve_node_online"] is False
    assert hosts_of(inventory, "pve_node_pve1") == {"backup-proxy", "tpl-debian12", "ct-proxy"}
    assert hosts_of(inventory, "pve_status_unknown") == {"dns1-replica"}
    assert hosts_of(inventory, "pve_qemu") == {"backup-proxy", "dns1-replica", "tpl-debian12"}
    assert hosts_of(inventory, "pve_lxc") == {"ct-proxy"}
    assert hosts_of(inventory, "pve_templates") == {"tpl-debian12"}
    assert hosts_of(inventory, "pve_pool_backup") == {"backup-proxy"}
    assert hosts_of(inventory, "pve_tag_prod") == {"backup-proxy", "ct-proxy"}
    assert hosts_of(inventory, "pve_tag_web") == {"ct-proxy"}
    assert "pve_config" not in proxy


def test_proxmox_want_config_reads_each_guest_a_few_at_a_time(tmp_path, pve):
    pve.guests = [guest(1000 + n, f"vm{n}") for n in range(20)] + [guest(666, "gone")]
    inventory = parse(tmp_path, "proxmox", {**PVE, "want_config": True, "config_workers": 3})
    assert pve.calls.count("guest_config") == 21
    assert pve.most == 3  # bounded, and actually concurrent
    assert inventory.get_host("vm7").vars["pve_config"] == {"cores": 2, "node_asked": "pve1", "kind_asked": "qemu"}
    # A guest deleted between the two calls keeps its place in the inventory, without a config.
    assert inventory.get_host("gone").vars["pve_config"] is None


def test_proxmox_a_single_node_has_no_cluster_name_and_duplicates_get_their_vmid(tmp_path, pve, monkeypatch):
    monkeypatch.setattr(FakePve, "cluster_status", lambda self: [{"type": "node", "name": "pve1", "online": 1}])
    pve.guests = [guest(100, "web"), guest(101, "web"), {**guest(102, ""), "name": None}]
    inventory = parse(tmp_path, "proxmox", PVE)
    assert inventory.get_host("web").vars["pve_vmid"] == 100
    assert inventory.get_host("web_101").vars["pve_vmid"] == 101
    assert inventory.get_host("102").vars["pve_cluster"] is None
