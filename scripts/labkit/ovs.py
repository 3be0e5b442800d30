"""The lab's switch fabric: Open vSwitch (userspace datapath) in switch containers, wired with veths.

The kernel here has no 802.1Q and no OVS datapath, so a lab switch is a container of the lab host
image running OVS with ``datapath_type=netdev``: OVS itself tags, untags and forwards frames, and
VLANs work end to end. Start a switch container with::

    podman run -d --systemd=always --cap-add NET_ADMIN --cap-add NET_RAW --device /dev/net/tun \\
        --network none IMAGE /sbin/init systemd.wants=openvswitch-switch.service

(``systemd.wants=`` on PID 1's command line starts OVS, which the image leaves disabled, and
``/dev/net/tun`` is where the userspace bridge gets its own interface.)

The helpers here then build the fabric, each safe to run again and each undone by its pair:

* ``make_bridge``  - the switch's bridge (``br0``); removed with the container.
* ``attach_host``  - a network namespace on the host standing in for a PC on an access port
  (factory default: VLAN 1); ``remove_netns`` undoes it (the veth pair goes with the netns).
* ``link_switches`` - a trunk (all VLANs, tagged) between two switch containers; ``remove_port``.
* ``set_access_vlan`` / ``set_trunk`` - what a switchport's IOS configuration becomes in OVS.

Veths are created directly in their target namespaces (``ip link add ... netns``), so their names
never meet in the host's namespace and two switches can both have a port called ``Fa0_1``.
Interface names are at most 15 characters (a Linux limit): ``FastEthernet0/1`` will not fit.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

from .errors import LabError

NETNS_DIR = Path("/run/netns")
HOST_IFACE = "eth0"  # the interface of a netns host, as on a real PC
IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
NETNS_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
SWITCH_RUN_HINT = (
    "start the switch container with `--device /dev/net/tun --cap-add NET_ADMIN --cap-add NET_RAW` and `/sbin/init systemd.wants=openvswitch-switch.service`"
)


# --- plumbing ------------------------------------------------------------------------------------


def _run(component: str, argv: list[str], fix: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run a command; on failure raise a LabError naming the command, its stderr and ``fix``."""
    if shutil.which(argv[0]) is None:
        raise LabError(component, f"`{argv[0]}` is not installed. Run `make setup`.")
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)  # noqa: S603
    except subprocess.TimeoutExpired:
        raise LabError(component, f"`{' '.join(argv)}` did not finish in {timeout:.0f}s; {fix}.") from None
    if check and proc.returncode != 0:
        err = (proc.stderr or proc.stdout).strip().rstrip(".")
        raise LabError(component, f"`{' '.join(argv)}` failed: {err}. Likely fix: {fix}.")
    return proc


def _name(component: str, what: str, name: str) -> str:
    if not IFNAME.match(name):
        raise LabError(
            component,
            f"{what} {name!r} is not a usable interface name (1-15 letters, digits, '_', '.', '-'). "
            f"Shorten it in the lab model (e.g. Fa0_1 for FastEthernet0/1).",
        )
    return name


def container_pid(container: str) -> int:
    """The host PID of the container's init: the handle on its network namespace."""
    proc = _run(
        container,
        ["podman", "inspect", "--type", "container", "-f", "{{.State.Pid}}", container],
        fix="create the switch container first (`scripts/lab up`)",
        check=False,
    )
    pid = proc.stdout.strip()
    if proc.returncode != 0 or not pid.isdigit() or pid == "0":
        raise LabError(container, f"container {container} is not running. Start the lab with `scripts/lab up`.")
    return int(pid)


def _in_container(container: str, argv: list[str], fix: str, check: bool = True) -> subprocess.CompletedProcess:
    return _run(container, ["podman", "exec", container, *argv], fix=fix, check=check)


def _in_netns_of(pid: int, component: str, argv: list[str], fix: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run a host binary (``ip``) in the network namespace of process ``pid``."""
    return _run(component, ["nsenter", "-t", str(pid), "-n", *argv], fix=fix, check=check)


def _link_exists_pid(pid: int, ifname: str) -> bool:
    return _run("ovs", ["nsenter", "-t", str(pid), "-n", "ip", "link", "show", "dev", ifname], fix="", check=False).returncode == 0


def _link_exists_netns(netns: str, ifname: str) -> bool:
    return _run("ovs", ["ip", "-n", netns, "link", "show", "dev", ifname], fix="", check=False).returncode == 0


def _vsctl(container: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    # --timeout: ovs-vsctl otherwise waits forever for a vswitchd that is not running.
    return _in_container(container, ["ovs-vsctl", "--timeout=10", *args], fix=SWITCH_RUN_HINT, check=check)


def _on_bridge(container: str, port: str) -> str | None:
    proc = _vsctl(container, "port-to-br", port, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


# --- the switch ----------------------------------------------------------------------------------


def wait_ready(container: str, timeout: float = 60) -> float:
    """Wait until ovs-vswitchd answers and has its database; return the seconds waited."""
    start = time.monotonic()
    container_pid(container)  # fail fast, with a clear message, if the container is not there
    probe = ["sh", "-c", "ovs-appctl -t ovs-vswitchd version >/dev/null && ovs-vsctl --timeout=2 show >/dev/null"]
    while time.monotonic() - start < timeout:
        if _in_container(container, probe, fix="", check=False).returncode == 0:
            return time.monotonic() - start
        time.sleep(0.2)
    status = _in_container(container, ["systemctl", "status", "--no-pager", "--lines=8", "ovs-vswitchd", "ovsdb-server"], fix="", check=False)
    raise LabError(
        container,
        f"Open vSwitch did not come up within {timeout:.0f}s. Likely fix: {SWITCH_RUN_HINT}.\n{status.stdout.strip()}",
    )


def make_bridge(container: str, bridge: str = "br0") -> None:
    """Create the switch's bridge with the userspace datapath (once OVS is ready)."""
    _name(container, "bridge", bridge)
    wait_ready(container)
    _vsctl(container, "--may-exist", "add-br", bridge, "--", "set", "bridge", bridge, "datapath_type=netdev")
    # A userspace bridge's own port is a tap device; without /dev/net/tun OVS records an error
    # on the interface instead of failing the command.
    error = _vsctl(container, "get", "interface", bridge, "error", check=False).stdout.strip().strip('"')
    if error and error != "[]":
        raise LabError(container, f"bridge {bridge} has an error: {error}. Likely fix: {SWITCH_RUN_HINT}.")


def set_access_vlan(container: str, port: str, vlan: int) -> None:
    """Make ``port`` an access port in ``vlan`` (IOS: switchport mode access / access vlan N)."""
    _vsctl(container, "set", "port", port, f"tag={int(vlan)}", "vlan_mode=access", "trunks=[]")


def set_trunk(container: str, port: str, vlans: list[int] | None = None) -> None:
    """Make ``port`` a trunk carrying ``vlans`` (all when None), every VLAN tagged."""
    trunks = "[]" if not vlans else ",".join(str(int(v)) for v in vlans)
    _vsctl(container, "set", "port", port, "tag=[]", "vlan_mode=trunk", f"trunks={trunks}")


def remove_port(container: str, port: str, bridge: str = "br0") -> None:
    """Take ``port`` off the bridge and delete its veth (its peer goes with it). Idempotent."""
    pid = container_pid(container)
    _vsctl(container, "--if-exists", "del-port", bridge, port)
    if _link_exists_pid(pid, port):
        _in_netns_of(pid, container, ["ip", "link", "del", "dev", port], fix=f"check `podman exec {container} ip link`")


def _add_port(container: str, pid: int, port: str, bridge: str, vlan: int | None) -> None:
    """Put an existing interface of the container on the bridge; a new port gets ``vlan`` (None: trunk)."""
    _in_netns_of(pid, container, ["ip", "link", "set", "dev", port, "up"], fix=SWITCH_RUN_HINT)
    if _on_bridge(container, port) == bridge:
        return  # keep whatever VLAN configuration it has by now
    args = ["--may-exist", "add-port", bridge, port]
    if vlan is not None:
        args += ["--", "set", "port", port, f"tag={vlan}", "vlan_mode=access"]
    _vsctl(container, *args)


# --- hosts and links -----------------------------------------------------------------------------


def attach_host(container: str, port: str, netns: str, address_cidr: str, bridge: str = "br0") -> None:
    """A PC on an access port: netns ``netns`` with ``eth0`` at ``address_cidr``, wired to ``port``.

    A new port joins VLAN 1 (a factory-default switchport); a port already on the bridge keeps its
    VLAN, so running this again never undoes ``set_access_vlan``.
    """
    _name(container, "port", port)
    if not NETNS_NAME.match(netns):
        raise LabError(netns, f"netns name {netns!r} is not usable (letters, digits, '_', '.', '-'). Fix the lab model.")
    pid = container_pid(container)
    if not (NETNS_DIR / netns).exists():
        _run(netns, ["ip", "netns", "add", netns], fix="run the lab as root")
    have_port, have_eth = _link_exists_pid(pid, port), _link_exists_netns(netns, HOST_IFACE)
    if have_port != have_eth:
        # Half of a pair (an interrupted run, or a port name reused): start this link afresh.
        if have_port:
            remove_port(container, port, bridge)
        else:
            _run(netns, ["ip", "-n", netns, "link", "del", "dev", HOST_IFACE], fix="delete it by hand")
    if not (have_port and have_eth):
        _run(
            container,
            ["ip", "link", "add", "name", port, "netns", str(pid), "type", "veth", "peer", "name", HOST_IFACE, "netns", netns],
            fix=f"check that {port} is not already used in {container} (`podman exec {container} ip link`)",
        )
    _run(netns, ["ip", "-n", netns, "link", "set", "dev", "lo", "up"], fix="run the lab as root")
    _run(netns, ["ip", "-n", netns, "addr", "replace", address_cidr, "dev", HOST_IFACE], fix="use an address like 10.0.10.11/24")
    _run(netns, ["ip", "-n", netns, "link", "set", "dev", HOST_IFACE, "up"], fix="run the lab as root")
    # OVS's userspace datapath forwards frames as they are, so a veth's offloaded (not yet
    # computed) TCP/UDP checksums arrive broken: ping works, TCP does not. Compute them in the
    # sender. ethtool is taken from the switch container's filesystem (the image has it; the host
    # may not), while acting on the netns's network namespace.
    _run(
        netns,
        ["nsenter", f"--net={NETNS_DIR / netns}", f"--mount=/proc/{pid}/ns/mnt", "ethtool", "-K", HOST_IFACE, "tx", "off"],
        fix="the lab host image should contain ethtool; rebuild it (`podman rmi` the twinsite-lab-host image)",
    )
    _add_port(container, pid, port, bridge, vlan=1)


def link_switches(container_a: str, container_b: str, port: str, bridge: str = "br0") -> None:
    """A trunk cable between two switches: a veth whose ends are both ``port``, one per container."""
    _name(container_a, "port", port)
    pid_a, pid_b = container_pid(container_a), container_pid(container_b)
    have_a, have_b = _link_exists_pid(pid_a, port), _link_exists_pid(pid_b, port)
    if have_a != have_b:
        remove_port(container_a if have_a else container_b, port, bridge)
    if not (have_a and have_b):
        _run(
            container_a,
            ["ip", "link", "add", "name", port, "netns", str(pid_a), "type", "veth", "peer", "name", port, "netns", str(pid_b)],
            fix=f"check that {port} is not already used in {container_a} or {container_b}",
        )
    _add_port(container_a, pid_a, port, bridge, vlan=None)
    _add_port(container_b, pid_b, port, bridge, vlan=None)


def remove_netns(netns: str) -> None:
    """Delete a netns host (its veth pair goes with it; the switch keeps a dead port until
    ``remove_port`` or the container goes). Idempotent."""
    if (NETNS_DIR / netns).exists():
        _run(netns, ["ip", "netns", "del", netns], fix="stop processes still running in it (`ip netns pids " + netns + "`)")
