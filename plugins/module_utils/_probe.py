# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Service probes for the DR drill, run from the controller: does the failed-over service answer?

Pure Python (no Ansible): ``validate()`` turns user input into probe dicts or raises ProbeError
naming the probe's index and key; ``run_all()`` runs them, each retried until it passes, and returns
one result dict per probe. A red probe is a result, never an exception: the caller decides.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import socket
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

try:
    import dns.exception
    import dns.message
    import dns.query
    import dns.rcode
    import dns.rdatatype

    HAS_DNSPYTHON = True
    DNSPYTHON_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - depends on the venv
    HAS_DNSPYTHON = False
    DNSPYTHON_IMPORT_ERROR = exc

try:
    import psycopg2

    HAS_PSYCOPG2 = True
    PSYCOPG2_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - depends on the venv
    HAS_PSYCOPG2 = False
    PSYCOPG2_IMPORT_ERROR = exc

# Per type: required keys, and optional keys with their defaults. ``name`` is allowed everywhere.
TYPES = {
    "dns": ({"server", "query", "expect"}, {"port": 53, "rrtype": "A"}),
    "tcp": ({"host", "port"}, {}),
    "http": ({"url"}, {"expect_status": 200, "expect_text": None, "compare_url": None}),
    "sql": ({"host", "database", "user", "password", "query"}, {"port": 5432, "expect": None, "expect_rows_min": None}),
}
COMMON = {"type", "name"}
# Keys whose values are converted to int (they may arrive as strings from a template).
INT_KEYS = {"port", "expect_status", "expect_rows_min"}
# A body hash is shown in full in ``sha256``; details show this many characters.
SHORT = 12
MASK = "********"


class ProbeError(ValueError):
    """A probe definition that cannot run; the message names the probe's index and key."""


def validate(probes: list) -> list:
    """Checked copies of ``probes`` with defaults filled in. Keys whose value is None count as absent
    (Ansible's suboption spec fills every unset key with None)."""
    checked = []
    for index, raw in enumerate(probes or []):
        where = f"probes[{index}]"
        if not isinstance(raw, dict):
            raise ProbeError(f"{where} is a {type(raw).__name__}, not a dict with a type key")
        given = {k: v for k, v in raw.items() if v is not None}
        kind = given.get("type")
        if kind == "command":
            raise ProbeError(f"{where}: type 'command' runs a command on {given.get('host') or 'a host'}, which service_probe (run on the "
                             "controller) does not do; run it with ansible.builtin.command on that host (delegate_to) and check rc/stdout there")
        if kind not in TYPES:
            raise ProbeError(f"{where}: key 'type' is {kind!r}; use one of {', '.join(sorted(TYPES))}")
        required, optional = TYPES[kind]
        for key in sorted(required):
            if key not in given or given[key] == "":
                raise ProbeError(f"{where}: key '{key}' is required for a {kind} probe")
        for key in sorted(given):
            if key not in required and key not in optional and key not in COMMON:
                raise ProbeError(f"{where}: key '{key}' does not apply to a {kind} probe (it takes {', '.join(sorted(required | set(optional)))})")
        probe = {**optional, **given}
        for key in INT_KEYS:
            if probe.get(key) is not None:
                try:
                    probe[key] = int(probe[key])
                except (TypeError, ValueError):
                    raise ProbeError(f"{where}: key '{key}' must be an integer, not {probe[key]!r}") from None
        for key in ("expect", "rrtype"):
            if probe.get(key) is not None:
                probe[key] = str(probe[key])
        checked.append(probe)
    return checked


def target(probe: dict) -> str:
    """The probe in words, e.g. "dns 172.31.70.41 portal.town.example A"."""
    kind = probe["type"]
    if kind == "dns":
        server = probe["server"] if probe["port"] == 53 else f"{probe['server']}:{probe['port']}"
        return f"dns {server} {probe['query']} {probe['rrtype']}"
    if kind == "tcp":
        return f"tcp {probe['host']}:{probe['port']}"
    if kind == "http":
        return f"http {probe['url']}"
    host = probe["host"] if probe["port"] == 5432 else f"{probe['host']}:{probe['port']}"
    return f"sql {probe['user']}@{host}/{probe['database']}"


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def one_line(exc: Exception) -> str:
    """libpq's messages span lines with indented hints; a result detail reads better as one line."""
    return " ".join(str(exc).split())


def scrub(text: str, secret: str | None) -> str:
    return text.replace(secret, MASK) if secret else text


# --- one attempt per type: each returns (ok, detail, extra result keys) -------------------------

def check_dns(probe: dict, timeout: float):
    rrtype = dns.rdatatype.from_text(probe["rrtype"])
    query = dns.message.make_query(probe["query"], rrtype)
    try:
        # Straight to the server given: the system resolver (and its cache) is not asked.
        response, _ = dns.query.udp_with_fallback(query, probe["server"], timeout=timeout, port=probe["port"])
    except dns.exception.Timeout:
        return False, f"no answer from {probe['server']} within {timeout:g}s", {}
    except (OSError, dns.exception.DNSException) as exc:
        return False, f"cannot ask {probe['server']}: {exc}", {}
    rcode = dns.rcode.to_text(response.rcode())
    answers, chain = answered(response, query.question[0].name, rrtype)
    via = f" via CNAME {' -> '.join(chain)}" if chain else ""
    if not answers:
        return False, f"{rcode}, no {probe['rrtype']} record for {probe['query']}{via}", {}
    wanted = probe["expect"].rstrip(".").lower()
    ok = wanted in {a.rstrip(".").lower() for a in answers}
    verdict = "" if ok else f", expected {probe['expect']}"
    return ok, f"answered {probe['rrtype']} {', '.join(answers)}{via}{verdict}", {}


def answered(response, name, rrtype) -> tuple[list, list]:
    """The records of ``rrtype`` for ``name`` in the answer section, following CNAMEs within it.
    Returns (values as text, the CNAME targets followed)."""
    chain = []
    for _ in range(16):  # a loop of CNAMEs in a hostile answer must not hang the probe
        for rrset in response.answer:
            if rrset.name == name and rrset.rdtype == rrtype:
                return sorted(r.to_text() for r in rrset), chain
        cname = next((r for r in response.answer if r.name == name and r.rdtype == dns.rdatatype.CNAME), None)
        if cname is None or rrtype == dns.rdatatype.CNAME:
            return [], chain
        name = next(iter(cname)).target
        chain.append(name.to_text().rstrip("."))
    return [], chain


def check_tcp(probe: dict, timeout: float):
    try:
        with socket.create_connection((probe["host"], probe["port"]), timeout=timeout):
            return True, "connected", {}
    except TimeoutError:
        return False, f"timeout after {timeout:g}s", {}
    except ConnectionRefusedError:
        return False, "refused (the host answered, nothing listens on the port)", {}
    except OSError as exc:
        return False, exc.strerror or str(exc), {}


def _opener():
    # No proxy: a drill probes the site's own addresses, which a corporate proxy cannot reach.
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_get(url: str, timeout: float) -> tuple[int, bytes]:
    try:
        with _opener().open(urllib.request.Request(url, headers={"User-Agent": "twinsite-service-probe"}), timeout=timeout) as response:  # noqa: S310 - urls are the operator's
            return response.status, response.read()
    except urllib.error.HTTPError as exc:  # a 404 or 503 is an answer, with a body to hash
        return exc.code, exc.read()


def check_http(probe: dict, timeout: float):
    try:
        status, body = http_get(probe["url"], timeout)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        return False, f"GET {probe['url']} failed: {reason}", {"sha256": None, "status": None}
    digest = hashlib.sha256(body).hexdigest()
    extra = {"sha256": digest, "status": status}
    problems = []
    if status != probe["expect_status"]:
        problems.append(f"status {status}, expected {probe['expect_status']}")
    if probe["expect_text"] is not None and probe["expect_text"] not in body.decode("utf-8", errors="replace"):
        problems.append(f"body does not contain {probe['expect_text']!r}")
    detail = f"status {status}, {len(body)} bytes, sha256 {digest[:SHORT]}"
    if probe["compare_url"]:
        try:
            other_status, other = http_get(probe["compare_url"], timeout)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            return False, f"{detail}; GET {probe['compare_url']} failed: {reason}", extra
        other_digest = hashlib.sha256(other).hexdigest()
        extra["compare_sha256"] = other_digest
        same = "==" if other_digest == digest else "!="
        detail += f"; sha256 {digest[:SHORT]} {same} {other_digest[:SHORT]} ({probe['compare_url']}, status {other_status})"
        if other_digest != digest:
            problems.append("bodies differ")
    if problems:
        detail += "; " + "; ".join(problems)
    return not problems, detail, extra


def check_sql(probe: dict, timeout: float):
    password = probe["password"]
    try:
        conn = psycopg2.connect(host=probe["host"], port=probe["port"], dbname=probe["database"], user=probe["user"], password=password,
                                connect_timeout=max(1, round(timeout)),
                                options=f"-c statement_timeout={int(timeout * 1000)}", application_name="twinsite-service-probe")
    except psycopg2.Error as exc:
        return False, scrub(f"cannot connect: {one_line(exc)}", password), {}
    try:
        with conn.cursor() as cur:
            cur.execute(probe["query"])
            rows = cur.fetchall() if cur.description else []
    except psycopg2.Error as exc:
        return False, scrub(f"query failed: {one_line(exc)}", password), {}
    finally:
        conn.close()
    first = None if not rows or rows[0][0] is None else str(rows[0][0])
    problems = []
    if probe["expect"] is not None and first != probe["expect"]:
        problems.append(f"expected {probe['expect']!r}")
    if probe["expect_rows_min"] is not None and len(rows) < probe["expect_rows_min"]:
        problems.append(f"expected at least {probe['expect_rows_min']} rows")
    detail = scrub(f"{len(rows)} rows, first value {first!r}" + "".join(f"; {p}" for p in problems), password)
    return not problems, detail, {}


CHECKS = {"dns": check_dns, "tcp": check_tcp, "http": check_http, "sql": check_sql}


def run(probe: dict, timeout: float = 5.0, retries: int = 0, delay: float = 2.0) -> dict:
    """Run one validated probe up to ``retries + 1`` times, until it passes."""
    result = {"type": probe["type"], "target": target(probe)}
    if probe.get("name"):
        result["name"] = probe["name"]
    attempts = 0
    while True:
        attempts += 1
        started = time.monotonic()
        try:
            ok, detail, extra = CHECKS[probe["type"]](probe, timeout)
        except Exception as exc:  # a probe that crashes is red, with the reason
            ok, detail, extra = False, scrub(f"{type(exc).__name__}: {exc}", probe.get("password")), {}
        seconds = round(time.monotonic() - started, 3)
        if ok or attempts > retries:
            break
        time.sleep(delay)
    result.update(ok=ok, detail=detail, attempts=attempts, seconds=seconds, passed_at=now_iso() if ok else None)
    if probe["type"] == "http":
        result["sha256"] = extra.get("sha256")
        result["status"] = extra.get("status")
        if "compare_sha256" in extra:
            result["compare_sha256"] = extra["compare_sha256"]
    return result


def missing_libraries(probes: list) -> list:
    """(package, import error) for each library the validated ``probes`` need and lack."""
    kinds = {p["type"] for p in probes}
    missing = []
    if "dns" in kinds and not HAS_DNSPYTHON:
        missing.append(("dnspython", DNSPYTHON_IMPORT_ERROR))
    if "sql" in kinds and not HAS_PSYCOPG2:
        missing.append(("psycopg2-binary", PSYCOPG2_IMPORT_ERROR))
    return missing


def run_all(probes: list, timeout: float = 5.0, retries: int = 0, delay: float = 2.0) -> list:
    """Run validated probes side by side (a red one waits out its retries without holding up the
    rest); results come back in the probes' order."""
    if not probes:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(probes))) as pool:
        return list(pool.map(lambda p: run(p, timeout, retries, delay), probes))
