"""``scripts/lab up|down|status``: bring the embedded lab up, take it down, show what runs.

``up`` starts the components in order; when one fails it takes down what this run started and
exits 1 with a message naming the component. ``down`` removes exactly what ``up`` made (containers
and networks by label, processes by PID, namespaces by name) and nothing else.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import ca, fabric, fakepve, hosts, model, s3, uplink, vcsim
from .context import Context
from .errors import LabError
from .state import State


class _Step:
    def __init__(self, name, up, down, status=None):
        self.name, self.up, self.down, self.status = name, up, down, status


def _steps(ctx: Context) -> list[_Step]:
    steps = [_Step("ca", lambda c: ca.ensure_ca(c.state), lambda c: None),
             _Step("keys", lambda c: (hosts.ssh_keys(c), hosts.host_certs(c)), lambda c: None)]
    if ctx.model.get("s3"):
        steps.append(_Step("s3", s3.up, s3.down, s3.status))
    if ctx.model.get("vcsim"):
        steps.append(_Step("vcsim", vcsim.up, vcsim.down, vcsim.status))
    if ctx.model.get("fakepve"):
        steps.append(_Step("fakepve", fakepve.up, fakepve.down, fakepve.status))
    steps += [
        _Step("networks", hosts.networks_up, lambda c: None),
        _Step("hosts", hosts.containers_up, hosts.down, hosts.status),
    ]
    if ctx.model.get("uplink"):
        steps.append(_Step("uplink", uplink.up, uplink.down, uplink.status))
    steps += [
        _Step("fabric", fabric.up, fabric.down, fabric.status),
    ]
    return steps


def up(ctx: Context) -> int:
    started: list[_Step] = []
    begin = time.monotonic()
    for step in _steps(ctx):
        if step.status and all(s.up for s in step.status(ctx)) and step.name != "fabric":
            ctx.say(f"{step.name}: already up")
            continue
        t0 = time.monotonic()
        started.append(step)
        try:
            step.up(ctx)
        except (LabError, KeyboardInterrupt) as exc:
            print(f"lab: {exc}" if isinstance(exc, LabError) else "lab: interrupted", file=sys.stderr)
            print("lab: taking down what this run started ...", file=sys.stderr)
            for done in reversed(started):
                try:
                    done.down(ctx)
                except LabError as undo_exc:
                    print(f"lab: while undoing {done.name}: {undo_exc}", file=sys.stderr)
            return 1
        ctx.say(f"{step.name}: up ({time.monotonic() - t0:.1f}s)")
    ctx.say(f"lab is up in {time.monotonic() - begin:.1f}s; `scripts/lab status` lists it")
    return 0


def down(ctx: Context) -> int:
    failed = False
    for step in reversed(_steps(ctx)):
        try:
            step.down(ctx)
        except LabError as exc:
            print(f"lab: {exc}", file=sys.stderr)
            failed = True
    ctx.say("lab is down" if not failed else "lab is down, with the errors above")
    return 1 if failed else 0


def status(ctx: Context) -> int:
    rows = []
    for step in _steps(ctx):
        if step.status:
            rows += step.status(ctx)
    width = max(len(r.component) for r in rows)
    addr_width = max(len(r.address) for r in rows)
    for r in rows:
        print(f"{r.component:<{width}}  {'up' if r.up else 'DOWN':<4}  {r.address:<{addr_width}}  {r.detail}".rstrip())
    return 0 if all(r.up for r in rows) else 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/lab", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("-i", "--inventory", type=Path, default=model.DEFAULT_INVENTORY,
                        help="inventory directory that describes the lab (default: inventory/lab)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    try:
        ctx = Context(state=State.default(), model=model.load(args.inventory), quiet=args.quiet)
        return {"up": up, "down": down, "status": status}[args.action](ctx)
    except LabError as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
