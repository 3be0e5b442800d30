"""The lab's Linux hosts: podman internal networks and one systemd container per inventory host.

Each container gets the lab's SSH key for root and a host key made once by the lab, so Ansible
reaches it over SSH with host-key checking on, as it would a real server.
"""

from __future__ import annotations

import socket
import subprocess
import time

from . import ca, image, model, podman
from .context import Context, Status
from .errors import LabError

SSH_TIMEOUT = 60


def ssh_keys(ctx: Context) -> None:
    """The automation key (root on every lab host) and one host key per host, made once."""
    key = ctx.state.ssh / "id_ed25519"
    if not key.exists():
        _keygen(key, "twinsite-lab-automation")
    for c in ctx.model["containers"]:
        hostkey = ctx.state.dir(f"ssh/hostkeys/{c['host']}") / "ssh_host_ed25519_key"
        if not hostkey.exists():
            _keygen(hostkey, f"root@{c['host']}")
    lines = []
    for c in ctx.model["containers"]:
        pub = (ctx.state.ssh / "hostkeys" / c["host"] / "ssh_host_ed25519_key.pub").read_text().split()
        names = sorted({c["ssh_address"], *(i["address"] for i in c["interfaces"])})
        lines.append(f"{','.join(names)} {pub[0]} {pub[1]}")
    (ctx.state.ssh / "known_hosts").write_text("\n".join(lines) + "\n")


def host_certs(ctx: Context) -> None:
    """A TLS certificate from the lab CA for every host (ca/host-<name>.pem), for services that
    serve TLS (the backup repository): the same CA clients already trust for the simulators."""
    for c in ctx.model["containers"]:
        ca.server_cert(ctx.state, f"host-{c['host']}", [c["host"], *(i["address"] for i in c["interfaces"])])


def _keygen(path, comment: str) -> None:
    try:
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True, capture_output=True)  # noqa: S603,S607
    except (OSError, subprocess.CalledProcessError) as exc:
        raise LabError("ssh", f"could not make the key {path}: {exc}. Is openssh-client installed?") from exc


def networks_up(ctx: Context) -> None:
    prefix = ctx.model["prefix"]
    for net in ctx.model["networks"]:
        name = net["podman_name"]
        if podman.exists("network", name):
            subnets = [s["subnet"] for s in podman.inspect(name, name).get("subnets", [])]
            if net["subnet"] not in subnets:
                raise LabError(name, f"a podman network {name} exists with subnet {subnets}, the model says {net['subnet']}. Run `scripts/lab down` first.")
            continue
        ctx.say(f"network {name} ({net['subnet']}, internal)")
        podman.run(name, "network", "create", "--internal", "--subnet", net["subnet"], "--label", f"{podman.LABEL}={prefix}", name)


def containers_up(ctx: Context) -> None:
    ref = image.ensure_image(ctx)
    prefix = ctx.model["prefix"]
    authorized = (ctx.state.ssh / "id_ed25519.pub").read_bytes()
    for c in ctx.model["containers"]:
        name = c["name"]
        if podman.exists("container", name):
            podman.run(name, "rm", "-f", "-t", "0", name)  # a leftover of an earlier run: start clean
        args = ["create", "--name", name, "--hostname", c["host"], "--label", f"{podman.LABEL}={prefix}",
                "--systemd=always", "--stop-timeout", "2"]
        for cap in c["caps"]:
            args += ["--cap-add", cap]
        for dev in c["devices"]:
            args += ["--device", dev]
        for sysctl in c.get("sysctls", []):
            args += ["--sysctl", sysctl]
        for iface in c["interfaces"]:
            args += ["--network", f"{iface['network']}:ip={iface['address']},mac={mac_of(iface['address'])}"]
        podman.run(name, *args, ref, "/sbin/init", *c["init_args"])
        _install_keys(ctx, c, authorized)
        if c.get("default_gateway"):
            _install_default_route(ctx, c)
        podman.run(name, "start", name)
        ctx.say(f"host {c['host']} started as container {name} ({c['ssh_address']})")
    for c in ctx.model["containers"]:
        _wait_ssh(c)


def _install_keys(ctx: Context, c: dict, authorized: bytes) -> None:
    """Copy root's authorized key and the host's fixed host key into the created container."""
    name = c["name"]
    keydir = ctx.state.ssh / "hostkeys" / c["host"]
    staging = ctx.state.dir(f"run/stage-{c['host']}")
    (staging / "authorized_keys").write_bytes(authorized)
    for src, dst in ((staging / "authorized_keys", "/root/.ssh/authorized_keys"),
                     (keydir / "ssh_host_ed25519_key", "/etc/ssh/ssh_host_ed25519_key"),
                     (keydir / "ssh_host_ed25519_key.pub", "/etc/ssh/ssh_host_ed25519_key.pub")):
        podman.run(name, "cp", str(src), f"{name}:{dst}")


def mac_of(address: str) -> str:
    """A fixed, locally administered MAC address per IPv4 address (02:00 and the address's four
    bytes), so a restarted container keeps its MAC as a rebooted server does: its neighbours' ARP
    caches stay right, instead of pointing at a MAC that no longer exists for several seconds."""
    return "02:00:" + ":".join(f"{int(b):02x}" for b in address.split("."))


def _install_default_route(ctx: Context, c: dict) -> None:
    """A unit that sets the host's default route at every boot (a restarted container keeps it),
    started by the kernel command line's systemd.wants (model.py), as a server's installer would
    configure its gateway. In the lab the gateways are the firewall pair's VIPs."""
    staging = ctx.state.dir(f"run/stage-{c['host']}")
    unit = staging / model.DEFAULT_ROUTE_UNIT
    unit.write_text(
        "[Unit]\n"
        "Description=Default route of the lab host, through its zone's gateway (the firewall pair's VIP)\n"
        "DefaultDependencies=no\n"
        "Before=network.target\n\n"
        "[Service]\n"
        "Type=oneshot\n"
        "RemainAfterExit=yes\n"
        f"ExecStart=/sbin/ip route replace default via {c['default_gateway']}\n")
    podman.run(c["name"], "cp", str(unit), f"{c['name']}:/etc/systemd/system/{model.DEFAULT_ROUTE_UNIT}")


def _wait_ssh(c: dict) -> None:
    deadline = time.monotonic() + SSH_TIMEOUT
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((c["ssh_address"], 22), timeout=1) as sock:
                if sock.recv(4).startswith(b"SSH"):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    logs = podman.run(c["name"], "logs", "--tail", "20", c["name"], check=False).stdout.decode(errors="replace")
    raise LabError(c["host"], f"sshd did not answer on {c['ssh_address']}:22 within {SSH_TIMEOUT}s. Container log:\n{logs}")


def down(ctx: Context) -> None:
    prefix = ctx.model["prefix"]
    names = podman.labelled("container", prefix)
    if names:
        ctx.say(f"removing containers {' '.join(names)}")
        podman.run(prefix, "rm", "-f", "-t", "0", *names)
    for net in podman.labelled("network", prefix):
        podman.run(net, "network", "rm", net)


def status(ctx: Context) -> list[Status]:
    running = set(podman.out("status", "ps", "--filter", f"label={podman.LABEL}={ctx.model['prefix']}", "--format", "{{.Names}}").split())
    out = []
    for c in ctx.model["containers"]:
        up = c["name"] in running and _ssh_answers(c["ssh_address"])
        out.append(Status(c["host"], f"ssh://{c['ssh_address']}", up, "container " + c["name"]))
    return out


def _ssh_answers(address: str) -> bool:
    try:
        with socket.create_connection((address, 22), timeout=1) as sock:
            return sock.recv(4).startswith(b"SSH")
    except OSError:
        return False
