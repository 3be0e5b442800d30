"""Serve fakepve's Proxmox VE API with the lab's guests, nodes and cluster name until SIGTERM.

Started by ``fakepve.up`` as ``python -m labkit.fakepve_server GUESTS.json ...``; not meant to be
imported. Run it with ``-m``, never as ``python scripts/labkit/fakepve_server.py``: a script's own
directory goes first on ``sys.path``, where ``labkit/fakepve.py`` would shadow the ``fakepve``
package this file imports.

Why not fakepve's own ``fakepve`` command? It takes our certificate (``--cert``/``--key``), but it
only reads ``guests`` from the file: the cluster is always called ``fakecluster`` and a node exists
only if a guest lives on it, so a node of the model with no VM yet (``pve2``) would be missing and a
clone targeting it would fail with "no such cluster node". This launcher builds the same FakePve
through fakepve's public Python API and adds the two missing pieces.

The guests file is fakepve's own format, ``{"guests": [{"vmid", "name", "node", "type", "status",
"template", "config": {...}}]}``, plus two top-level keys fakepve's command ignores: ``cluster``
(the name /cluster/status reports) and ``nodes`` (every node, in order). The login comes from the
environment (``PVE_USER``/``PVE_PASS``, the variables fakepve's command reads), not argv, so the
password does not show in ``ps``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys


def build(spec: dict, user: str, password: str, host: str, port: int):
    """A FakePve holding the spec's cluster name, nodes and guests (not started yet)."""
    from fakepve import FakePve

    pve = FakePve(user=user, password=password, host=host, port=port)
    pve.cluster_name = spec["cluster"]
    # FakePve starts with a node "pve1"; the model's node list replaces it, in the model's order.
    pve.nodes = {}
    for node in spec["nodes"]:
        pve.add_node(node)
    for guest in spec["guests"]:
        common = {"node": guest["node"], "status": guest["status"], "config": guest["config"], "template": guest["template"]}
        if guest["type"] == "lxc":
            pve.add_ct(guest["vmid"], guest["name"], **common)
        else:
            pve.add_vm(guest["vmid"], guest["name"], **common)
    return pve


async def serve(args: argparse.Namespace) -> None:
    with open(args.guests, encoding="utf-8") as handle:
        spec = json.load(handle)
    pve = build(spec, os.environ.get("PVE_USER", "root@pam"), os.environ["PVE_PASS"], args.host, args.port)
    # 0: every task (clone, start, snapshot) has finished when the request returns.
    pve.time_scale = args.time_scale
    if args.latency:
        pve.slow_network(args.latency)
    await pve.start(args.cert, args.key)
    print(f"fakepve listening on {pve.url} (cluster {pve.cluster_name}, nodes {', '.join(pve.nodes)}, "
          f"{len(spec['guests'])} guests)", flush=True)
    await asyncio.Event().wait()  # until SIGTERM, whose default action ends the process


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("guests", help="guests file (fakepve's format plus 'cluster' and 'nodes')")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8006)
    parser.add_argument("--cert", required=True, help="PEM certificate chain (leaf first)")
    parser.add_argument("--key", required=True, help="PEM key of --cert")
    parser.add_argument("--time-scale", type=float, default=0.0, help="real seconds per PVE second")
    parser.add_argument("--latency", type=float, default=0.0, help="PVE seconds added to every response")
    args = parser.parse_args()
    if not os.environ.get("PVE_PASS"):
        print("fakepve_server: PVE_PASS is not set; refusing to serve with fakepve's public default password",
              file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        # A missing certificate or a port taken since `up` checked it: one line in the log,
        # which `lab up` shows, rather than a traceback.
        print(f"fakepve_server: cannot serve on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
