"""The secondary room's uplink to the cloud: a TCP forwarder from the host's address on a lab
network to the S3 server on loopback.

Lab containers live on internal networks: they reach each other and the host's ``.1`` address on
each network, nothing else. The S3 server listens on loopback only, so the secondary site's
repository host reaches "the cloud" through this forwarder (``dc_cloud.site_endpoint``, e.g.
``https://172.31.50.1:8333``). Stopping the forwarder is a WAN outage: the cloud is unreachable
from the site while its data stays intact (tests call ``procs.stop(state, "uplink")``; ``scripts/lab up``
starts it again).

The model's ``uplink`` entry (see ``model.py``): ``{"listen_host", "listen_port", "to_host", "to_port"}``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from . import procs
from .context import Context, Status

COMPONENT = "uplink"


def up(ctx: Context) -> None:
    spec = ctx.model["uplink"]
    if procs.pid_of(ctx.state, COMPONENT) is not None:
        ctx.say(f"uplink: already forwarding {spec['listen_host']}:{spec['listen_port']}")
        return
    procs.require_free_port(COMPONENT, spec["listen_host"], spec["listen_port"])
    argv = [sys.executable, "-m", "labkit.forward", f"{spec['listen_host']}:{spec['listen_port']}",
            f"{spec['to_host']}:{spec['to_port']}"]
    procs.start(ctx.state, COMPONENT, argv, env={"PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    procs.wait_port(ctx.state, COMPONENT, spec["listen_host"], spec["listen_port"], timeout=10)
    ctx.say(f"uplink: {spec['listen_host']}:{spec['listen_port']} -> {spec['to_host']}:{spec['to_port']} (the cloud, from the sites)")


def down(ctx: Context) -> None:
    if procs.stop(ctx.state, COMPONENT):
        ctx.say("uplink: stopped (the cloud is unreachable from the sites)")


def status(ctx: Context) -> list[Status]:
    spec = ctx.model.get("uplink")
    if not spec:
        return []
    pid = procs.pid_of(ctx.state, COMPONENT)
    where = f"{spec['listen_host']}:{spec['listen_port']}"
    return [Status("uplink", where, pid is not None, f"pid {pid} -> {spec['to_host']}:{spec['to_port']}" if pid else "not running")]
