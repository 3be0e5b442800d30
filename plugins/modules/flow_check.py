#!/usr/bin/python
# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: flow_check
short_description: Test which TCP flows a host can open, by real connections from that host
version_added: 0.3.0
description:
  - Runs on the managed host (python3 standard library only) and opens a TCP connection for each
    flow, all at once in threads, so twenty denied flows cost one O(timeout), not twenty.
  - A flow is C(open) when the connection is accepted and C(blocked) when it times out, is refused
    or has no route. The C(reason) tells them apart, and it matters. C(refused) means the packet
    reached the host (or a firewall that rejects rather than drops), so a port that ought to be
    filtered by a firewall between sites is in fact reachable at the network level.
  - Compare the result with what the site model says (C(expect)); a mismatch does not fail the task
    unless O(fail_on_mismatch=true).
options:
  flows:
    description: The flows to try.
    type: list
    elements: dict
    required: true
    suboptions:
      host:
        description: Address or name to connect to.
        type: str
        required: true
      port:
        description: TCP port.
        type: int
        required: true
      expect:
        description: What the firewall policy says.
        type: str
        choices: [open, blocked]
        required: true
      name:
        description: A label for the report, default C(host:port).
        type: str
  source:
    description:
      - Local address to connect from, so a host with several interfaces tests from the one the
        policy is about. It must be an address of this host.
    type: str
  timeout:
    description: Seconds to wait for each connection.
    type: float
    default: 2
  fail_on_mismatch:
    description: Fail the task when a flow is not as expected (the results are still returned).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Only opens and closes connections; runs in check mode too.
  diff_mode:
    support: none
author: twinsite engineers
"""

EXAMPLES = r"""
- name: The secondary site's DB host reaches the primary's database, and nothing else of the portal
  twinsite.dc.flow_check:
    source: 198.51.100.42
    timeout: 1.5
    flows:
      - {name: replication, host: 192.0.2.42, port: 5432, expect: open}
      - {name: portal ssh, host: 192.0.2.43, port: 22, expect: blocked}
  register: flows

- name: Show the flows that are not as the policy says
  ansible.builtin.debug:
    msg: "{{ flows.flows | rejectattr('ok') | list }}"
"""

RETURN = r"""
flows:
  description: One result per flow, in the flows' order.
  returned: always
  type: list
  elements: dict
  sample:
    - {name: replication, host: 192.0.2.42, port: 5432, expect: open, got: open, reason: connected, ok: true,
       seconds: 0.002, detail: "connected from 198.51.100.42"}
    - {name: portal ssh, host: 192.0.2.43, port: 22, expect: blocked, got: blocked, reason: refused, ok: true,
       seconds: 0.001, detail: "connection refused: the packet reached 192.0.2.43 (or a rejecting firewall)"}
ok:
  description: Every flow is as expected.
  returned: always
  type: bool
"""

import errno
import socket
import time
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule

UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN}
# got for each reason; ``error`` (a name that does not resolve, a bad source) never equals expect.
GOT = {"connected": "open", "refused": "blocked", "timeout": "blocked", "unreachable": "blocked", "unresolved": "error", "error": "error"}


class SourceError(Exception):
    """``source`` cannot be bound: the whole check is meaningless, not one flow."""


def connect(host, port, source=None, timeout=2.0):
    """Try one TCP connection. Returns (reason, detail)."""
    try:
        family = None
        if source:
            family = socket.AF_INET6 if ":" in source else socket.AF_INET
        infos = socket.getaddrinfo(host, port, family or socket.AF_UNSPEC, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return "unresolved", "cannot resolve %s: %s" % (host, exc.strerror or exc)
    af, kind, proto, _, address = infos[0]
    sock = socket.socket(af, kind, proto)
    try:
        if source:
            try:
                sock.bind((source, 0))
            except OSError as exc:
                raise SourceError("cannot connect from source %s: %s; give an address of this host" % (source, exc.strerror or exc)) from None
        sock.settimeout(timeout)
        try:
            sock.connect(address)
        except socket.timeout:
            return "timeout", "no answer within %gs: dropped on the way or by %s" % (timeout, host)
        except ConnectionRefusedError:
            return "refused", "connection refused: the packet reached %s (or a rejecting firewall)" % host
        except OSError as exc:
            if exc.errno in UNREACHABLE:
                return "unreachable", "%s: no route (ICMP unreachable or no local route)" % (exc.strerror or exc)
            return "error", exc.strerror or str(exc)
        local = sock.getsockname()[0]
        return "connected", "connected from %s" % local
    finally:
        sock.close()


def check_flow(flow, source=None, timeout=2.0):
    """One result dict for one flow dict ({host, port, expect, name?})."""
    started = time.monotonic()
    reason, detail = connect(flow["host"], int(flow["port"]), source, timeout)
    got = GOT[reason]
    return {
        "name": flow.get("name") or "%s:%s" % (flow["host"], flow["port"]),
        "host": flow["host"],
        "port": int(flow["port"]),
        "expect": flow["expect"],
        "got": got,
        "reason": reason,
        "ok": got == flow["expect"],
        "seconds": round(time.monotonic() - started, 3),
        "detail": detail,
    }


def check_flows(flows, source=None, timeout=2.0, workers=64):
    """All flows side by side; results in the flows' order. Raises SourceError for a bad source."""
    if not flows:
        return []
    with ThreadPoolExecutor(max_workers=min(workers, len(flows))) as pool:
        return list(pool.map(lambda f: check_flow(f, source, timeout), flows))


def main():
    module = AnsibleModule(
        argument_spec={
            "flows": {"type": "list", "elements": "dict", "required": True, "options": {
                "host": {"type": "str", "required": True},
                "port": {"type": "int", "required": True},
                "expect": {"type": "str", "required": True, "choices": ["open", "blocked"]},
                "name": {"type": "str"},
            }},
            "source": {"type": "str"},
            "timeout": {"type": "float", "default": 2.0},
            "fail_on_mismatch": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    p = module.params
    if p["timeout"] <= 0:
        module.fail_json(msg="timeout must be above 0, got %s" % p["timeout"])
    try:
        results = check_flows(p["flows"], p["source"], p["timeout"])
    except SourceError as exc:
        module.fail_json(msg=str(exc))
    ok = all(r["ok"] for r in results)
    if p["fail_on_mismatch"] and not ok:
        wrong = [r for r in results if not r["ok"]]
        module.fail_json(msg="%d of %d flows not as expected: %s" % (len(wrong), len(results), "; ".join(
            "%s expected %s, got %s (%s)" % (r["name"], r["expect"], r["got"], r["reason"]) for r in wrong)), flows=results, ok=False, changed=False)
    module.exit_json(changed=False, flows=results, ok=ok)


if __name__ == "__main__":
    main()
