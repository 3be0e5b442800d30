"""Benchmark twinsite.dc.vsphere against a raw PropertyCollector retrieve and
community.vmware.vmware_vm_info, side by side on a vcsim of its own holding the lab's VMs plus
--vms more (2,000 by default).

    .venv/bin/python bench/inventory_vsphere.py [--vms 2000] [--repeat 5] [--port 18989]

The lab may stay up: this starts its own simulator (own port, own state directory under /tmp,
certificate from its own CA), and stops it, by PID, when done. Results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import ssl
import sys

from _common import VENV_BIN, init_ansible, median_of, parse_in_process, run_counted, scratch, table, timed

from labkit import model as lab_model
from labkit import vcsim
from labkit.context import Context
from labkit.state import State


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=2000, help="VMs on top of the lab model's (default 2000)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each fast measurement; the median is shown")
    parser.add_argument("--port", type=int, default=18989)
    args = parser.parse_args()

    init_ansible()  # first: labkit's model imports the collection too
    work = scratch("vsphere")
    spec = {**lab_model.load()["vcsim"], "port": args.port, "extra_vms": args.vms}
    ctx = Context(state=State(work / "state"), model={"vcsim": spec})
    try:
        vcsim.up(ctx)
        measure(ctx, work, args.repeat)
    finally:
        vcsim.down(ctx)  # stops the simulator by its PID
        shutil.rmtree(work, ignore_errors=True)
    return 0


def measure(ctx: Context, work, repeat: int) -> None:
    spec, ca = ctx.model["vcsim"], ctx.state.ca / "ca.pem"
    source = work / "bench.twinsite_vsphere.yml"
    # The lab's vcsim has no tagging service: with_tags off, as in inventory/lab-live.
    source.write_text(f"plugin: twinsite.dc.vsphere\nhostname: {spec['host']}\nport: {spec['port']}\n"
                      f"username: {spec['username']}\npassword: {spec['password']}\nca_bundle: {ca}\nwith_tags: false\n")
    import yaml
    from ansible.plugins.loader import inventory_loader
    from pyVim.connect import Disconnect, SmartConnect

    from ansible_collections.twinsite.dc.plugins.inventory.vsphere import _properties
    from ansible_collections.twinsite.dc.plugins.module_utils._vsphere import VsphereClient

    plugin = inventory_loader.get("twinsite.dc.vsphere")
    plugin.set_options(direct=yaml.safe_load(source.read_text()))

    def twinsite_fetch():
        """The plugin's own work without Ansible's inventory: log in, one retrieve, join, log out."""
        def run():
            client = VsphereClient(spec["host"], spec["username"], spec["password"], spec["port"], True, str(ca)).connect()
            try:
                return len(plugin.records(client.retrieve_many(_properties()), {}))
            finally:
                client.close()
        return timed(run)

    def plugin_cli():
        seconds, calls, by_call, _ = run_counted([str(VENV_BIN / "ansible-inventory"), "-i", str(source), "--list"])
        return seconds, (calls, by_call)

    def connect():
        return SmartConnect(host=spec["host"], port=spec["port"], user=spec["username"], pwd=spec["password"],
                            sslContext=ssl.create_default_context(cafile=str(ca)))

    si = connect()
    content = si.RetrieveContent()
    raw_retrieve = lambda: timed(lambda: retrieve(content, _properties()))  # noqa: E731

    def raw_with_login():
        def run():
            session = connect()
            try:
                return retrieve(session.RetrieveContent(), _properties())
            finally:
                Disconnect(session)
        return timed(run)

    # Interleaved, after one warm-up each, so no contender gets a warmer simulator than another.
    for warm in (plugin_cli, raw_retrieve, raw_with_login, twinsite_fetch, lambda: parse_in_process(source)):
        warm()
    t_cli, (cli_calls, cli_by_call) = median_of(repeat, plugin_cli)
    t_parse, hosts = median_of(repeat, lambda: parse_in_process(source))
    t_raw, (vms, pages) = median_of(repeat, raw_retrieve)
    t_raw_login, _ = median_of(repeat, raw_with_login)
    t_fetch, _ = median_of(repeat, twinsite_fetch)
    Disconnect(si)
    t_startup, _ = median_of(repeat, lambda: run_counted([str(VENV_BIN / "ansible-inventory"), "-i", "localhost,", "--list"])[:2])

    print(f"vcsim {spec['host']}:{spec['port']}: {vms} VMs (the lab model's {len(spec['vms'])} + {spec['extra_vms']}); "
          f"twinsite plugin found {hosts} hosts", flush=True)
    if hosts != vms:
        raise SystemExit(f"the plugin found {hosts} hosts, the raw retrieve {vms} VMs")
    print("  running community.vmware.vmware_vm_info (slow: one call per VM and property) ...", flush=True)
    # show_resource_pool=false: with it (the default) vmware_vm_info reads a template's resource pool,
    # which this vcsim answers with a panic ("index out of range") instead of an unset value. Off,
    # vmware_vm_info makes fewer calls per VM, so the comparison only flatters it.
    t_info, info_calls, info_by_call, info_out = run_counted(
        [str(VENV_BIN / "ansible"), "localhost", "-i", "localhost,", "-c", "local", "-m", "community.vmware.vmware_vm_info",
         "-a", "show_resource_pool=false", "-e", f"ansible_python_interpreter={sys.executable}"],
        env={"VMWARE_HOST": spec["host"], "VMWARE_PORT": str(spec["port"]), "VMWARE_USER": spec["username"],
             "VMWARE_PASSWORD": spec["password"], "VMWARE_VALIDATE_CERTS": "true",
             # community.vmware verifies with Python's default CA store, which honours SSL_CERT_FILE.
             "SSL_CERT_FILE": str(ca), "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_STDOUT_CALLBACK": "json"})
    info_vms = len(json.loads(info_out)["plays"][0]["tasks"][0]["hosts"]["localhost"]["virtual_machines"])
    if info_vms != vms:
        raise SystemExit(f"vmware_vm_info returned {info_vms} VMs, the raw retrieve {vms}")

    table(f"Inventory of {vms} VMs (median of {repeat}; vcsim on loopback)", [
        ("raw PropertyCollector retrieve, session open", t_raw, pages + 2, f"pyvmomi, same properties; {pages} page(s): vcsim ignores maxObjects"),
        ("raw retrieve incl. login + logout", t_raw_login, "", "the floor for any client that logs in"),
        ("twinsite.dc.vsphere, its fetch alone", t_fetch, cli_calls, "login, the retrieve, the join; no Ansible inventory"),
        ("twinsite.dc.vsphere, parse in-process", t_parse, cli_calls, "plugin + Ansible inventory, no process start"),
        ("twinsite.dc.vsphere via ansible-inventory --list", t_cli, cli_calls, "what a user waits for"),
        ("ansible-inventory -i localhost, --list (start-up alone)", t_startup, 0, "Python + Ansible import, no plugin"),
        ("community.vmware.vmware_vm_info via ansible", t_info, info_calls, "one run, show_resource_pool=false"),
    ])
    print(f"\n  twinsite fetch / raw retrieve incl. login: {t_fetch / t_raw_login:.2f}x")
    print(f"  twinsite plugin parse / raw retrieve incl. login: {t_parse / t_raw_login:.2f}x (target <= 1.5x)")
    print(f"  twinsite ansible-inventory / raw retrieve incl. login: {t_cli / t_raw_login:.2f}x")
    print(f"  vmware_vm_info / twinsite ansible-inventory: {t_info / t_cli:.1f}x faster (target >= 20x)")
    print(f"\n  twinsite's calls: {dict(sorted(cli_by_call.items()))}")
    print(f"  vmware_vm_info's calls (top 8): {dict(sorted(info_by_call.items(), key=lambda kv: -kv[1])[:8])}")


def retrieve(content, properties: dict) -> tuple[int, int]:
    """The floor: one PropertyCollector retrieve through a ContainerView, paged, nothing else.
    Returns (VMs, pages); its calls are CreateContainerView, the pages and DestroyView."""
    from pyVmomi import vim, vmodl

    collector_types = vmodl.query.PropertyCollector
    view = content.viewManager.CreateContainerView(content.rootFolder, list(properties), True)
    spec = collector_types.FilterSpec(
        objectSet=[collector_types.ObjectSpec(obj=view, skip=True, selectSet=[
            collector_types.TraversalSpec(name="view", path="view", skip=False, type=vim.view.ContainerView)])],
        propSet=[collector_types.PropertySpec(type=t, pathSet=paths) for t, paths in properties.items()])
    result = content.propertyCollector.RetrievePropertiesEx([spec], collector_types.RetrieveOptions(maxObjects=1000))
    vms = pages = 0
    while result:
        vms += sum(isinstance(o.obj, vim.VirtualMachine) for o in result.objects)
        pages += 1
        result = content.propertyCollector.ContinueRetrievePropertiesEx(result.token) if result.token else None
    view.Destroy()
    return vms, pages


if __name__ == "__main__":
    sys.exit(main())
