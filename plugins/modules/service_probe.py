#!/usr/bin/python
# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: service_probe
short_description: Ask failed-over services from the controller whether they answer (DNS, TCP, HTTP, SQL)
version_added: 0.3.0
description:
  - Runs on the controller. Each probe is retried until it passes or O(retries) is used up; every
    result says how many attempts it took and when it passed, for the drill's timeline.
  - C(dns) asks O(probes[].server) directly (the system resolver is not used) and passes when the
    answer holds O(probes[].expect), following CNAMEs within the answer.
  - C(tcp) passes when a TCP connection opens.
  - C(http) GETs the URL without any proxy, records the status and the body's SHA-256; with
    O(probes[].compare_url) it passes only when both bodies are the same (for example the portal at
    the secondary site against the primary's).
  - C(sql) connects to PostgreSQL, runs O(probes[].query) and checks the first value or the row count.
    The password never appears in the results.
  - Probes that run on a host (C(command)) are rejected; use M(ansible.builtin.command) on that host.
  - A red probe does not fail the task unless O(fail_on_red=true); the play decides what red means.
options:
  probes:
    description: The probes, run side by side.
    type: list
    elements: dict
    required: true
    suboptions:
      type:
        description: C(dns), C(tcp), C(http) or C(sql); every probe needs one.
        type: str
      name:
        description: A label copied into the result.
        type: str
      server:
        description: "dns: the DNS server's address."
        type: str
      query:
        description: "dns: the name to look up. sql: the SQL to run."
        type: str
      expect:
        description:
          - "dns: a value the answer must contain (an address for A/AAAA, a name for CNAME/NS...)."
          - "sql: the first column of the first row, as text."
        type: raw
      rrtype:
        description: "dns: record type, default C(A)."
        type: str
      host:
        description: "tcp, sql: the host to connect to."
        type: str
      port:
        description: "dns: default 53; tcp: required; sql: default 5432."
        type: int
      url:
        description: "http: the URL to GET."
        type: str
      expect_status:
        description: "http: the status that passes, default 200."
        type: int
      expect_text:
        description: "http: text the body must contain."
        type: str
      compare_url:
        description: "http: a second URL whose body must hash the same."
        type: str
      database:
        description: "sql: database name."
        type: str
      user:
        description: "sql: role to log in as."
        type: str
      password:
        description: "sql: the role's password (never returned)."
        type: str
      expect_rows_min:
        description: "sql: the query must return at least this many rows."
        type: int
      command:
        description: Not supported; present only so that a C(command) probe gets a clear error.
        type: raw
      expect_rc:
        description: Not supported; see O(probes[].command).
        type: int
  timeout:
    description: Seconds each attempt may take (connect, DNS answer, HTTP response, SQL connect and statement).
    type: float
    default: 5
  retries:
    description: Attempts after the first, for probes that are red.
    type: int
    default: 0
  delay:
    description: Seconds between attempts.
    type: float
    default: 2
  fail_on_red:
    description: Fail the task when a probe is red (the results are still returned).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Probes only read; they run in check mode too.
  diff_mode:
    support: none
requirements: [dnspython (dns probes), psycopg2 (sql probes)]
author: twinsite engineers
"""

EXAMPLES = r"""
- name: Wait for the portal to answer from the secondary site
  twinsite.dc.service_probe:
    retries: 30
    delay: 5
    probes:
      - {type: dns, server: 192.0.2.41, query: portal.town.example, expect: 198.51.100.43}
      - {type: tcp, host: 198.51.100.42, port: 5432}
      - type: http
        url: http://198.51.100.43/
        compare_url: http://192.0.2.43/
      - type: sql
        host: 198.51.100.42
        database: portal
        user: portal
        password: "{{ vault_portal_db_password }}"
        query: SELECT count(*) FROM pages
        expect_rows_min: 1
  register: drill_probes

- name: Stop the drill when a service is red
  ansible.builtin.assert:
    that: drill_probes.ok
    fail_msg: "{{ drill_probes.probes | rejectattr('ok') | map(attribute='target') | join(', ') }} did not answer"
"""

RETURN = r"""
probes:
  description: One result per probe, in the probes' order.
  returned: always
  type: list
  elements: dict
  sample:
    - {type: dns, target: "dns 192.0.2.41 portal.town.example A", ok: true, detail: "answered A 198.51.100.43",
       attempts: 3, seconds: 0.004, passed_at: "2026-11-22T15:41:07Z"}
    - {type: http, target: "http http://198.51.100.43/", ok: true, status: 200, sha256: 9f86d081884c7d65...,
       compare_sha256: 9f86d081884c7d65..., attempts: 1, seconds: 0.03, passed_at: "2026-11-22T15:41:02Z",
       detail: "status 200, 5120 bytes, sha256 9f86d081884c; sha256 9f86d081884c == 9f86d081884c (http://192.0.2.43/, status 200)"}
    - {type: sql, target: "sql portal@198.51.100.42/portal", ok: false, attempts: 31, seconds: 5.0, passed_at: null,
       detail: "cannot connect: connection to server at \"198.51.100.42\", port 5432 failed: Connection refused"}
ok:
  description: Every probe passed.
  returned: always
  type: bool
"""

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.twinsite.dc.plugins.module_utils import _probe
from ansible_collections.twinsite.dc.plugins.module_utils._common import secret_aware_module

PROBE_OPTIONS = {
    "type": {"type": "str"},  # required per probe, checked by _probe.validate to name the index
    "name": {"type": "str"},
    "server": {"type": "str"},
    "query": {"type": "str"},
    "expect": {"type": "raw"},
    "rrtype": {"type": "str"},
    "host": {"type": "str"},
    "port": {"type": "int"},
    "url": {"type": "str"},
    "expect_status": {"type": "int"},
    "expect_text": {"type": "str"},
    "compare_url": {"type": "str"},
    "database": {"type": "str"},
    "user": {"type": "str"},
    "password": {"type": "str", "no_log": True},
    "expect_rows_min": {"type": "int"},
    "command": {"type": "raw"},
    "expect_rc": {"type": "int"},
}


def main():
    module = secret_aware_module()(
        argument_spec={
            "probes": {"type": "list", "elements": "dict", "required": True, "options": PROBE_OPTIONS},
            "timeout": {"type": "float", "default": 5.0},
            "retries": {"type": "int", "default": 0},
            "delay": {"type": "float", "default": 2.0},
            "fail_on_red": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    p = module.params
    try:
        probes = _probe.validate(p["probes"])
    except _probe.ProbeError as exc:
        module.fail_json(msg=str(exc))
    for package, error in _probe.missing_libraries(probes):
        module.fail_json(msg=missing_required_lib(package), exception=str(error))
    if p["timeout"] <= 0 or p["retries"] < 0 or p["delay"] < 0:
        module.fail_json(msg=f"timeout must be above 0, retries and delay 0 or more (got timeout={p['timeout']}, retries={p['retries']}, delay={p['delay']})")
    results = _probe.run_all(probes, p["timeout"], p["retries"], p["delay"])
    ok = all(r["ok"] for r in results)
    if p["fail_on_red"] and not ok:
        red = [r for r in results if not r["ok"]]
        module.fail_json(msg=f"{len(red)} of {len(results)} probes red: " + "; ".join(f"{r['target']}: {r['detail']}" for r in red),
                         probes=results, ok=False, changed=False)
    module.exit_json(changed=False, probes=results, ok=ok)


if __name__ == "__main__":
    main()
