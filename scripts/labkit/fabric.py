"""The switch fabric's cabling: end hosts on core-switch ports and the links between switches.

This is layer 1 only. Each core switch gets its OVS bridge with every port in VLAN 1 (the factory
default); the core_switches role (not the lab) puts ports into their VLANs. The Cisco-CLI access
switches are fake-switches processes on loopback.
"""

from __future__ import annotations

import subprocess

from . import fakeswitch, ovs
from .context import Context, Status


def up(ctx: Context) -> None:
    switches = sorted({ep["container"] for ep in ctx.model["switch_endpoints"]}
                      | {f"{ctx.model['prefix']}-{link[end]}" for link in ctx.model["switch_links"] for end in ("a", "b")})
    for container in switches:
        ovs.make_bridge(container)
    for link in ctx.model["switch_links"]:
        a, b = (f"{ctx.model['prefix']}-{link[end]}" for end in ("a", "b"))
        ovs.link_switches(a, b, link["port"])
        ctx.say(f"cabled {link['a']}:{link['port']} <-> {link['b']}:{link['port']}")
    for ep in ctx.model["switch_endpoints"]:
        ovs.attach_host(ep["container"], ep["port"], ep["netns"], ep["address"])
    if ctx.model["switch_endpoints"]:
        ctx.say(f"plugged {len(ctx.model['switch_endpoints'])} end hosts into the core switches")
    for spec in ctx.model["fake_switches"]:
        fakeswitch.up(ctx, spec)
        ctx.say(f"access switch {spec['name']} (Cisco IOS CLI) on {spec['host']}:{spec['port']}")


def down(ctx: Context) -> None:
    for spec in ctx.model["fake_switches"]:
        fakeswitch.down(ctx, spec)
    for ep in ctx.model["switch_endpoints"]:
        ovs.remove_netns(ep["netns"])


def status(ctx: Context) -> list[Status]:
    out = []
    present = set(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout.split())  # noqa: S607
    for ep in ctx.model["switch_endpoints"]:
        out.append(Status(f"{ep['switch']}:{ep['port']}", f"netns {ep['netns']} {ep['address']}", ep["netns"] in present))
    for spec in ctx.model["fake_switches"]:
        out.append(fakeswitch.status(ctx, spec))
    return out
