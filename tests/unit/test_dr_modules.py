"""The DR drill's modules against real local servers: service_probe's logic (HTTP, TCP, DNS, SQL,
retries), flow_check's connections (open, refused, a blackhole in parallel) and drill_ledger's file
(idempotence, several processes at once, a corrupt file left alone)."""

from __future__ import annotations

import json
import multiprocessing
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dns.message
import dns.rdatatype
import dns.rrset
import pytest

from ansible_collections.twinsite.dc.plugins.module_utils import _ledger, _probe
from ansible_collections.twinsite.dc.plugins.modules import flow_check

PASSWORD = "Dr1ll-S3cret-pw"
BODIES = {"/a": b"portal page v1\n", "/b": b"portal page v1\n", "/c": b"portal page v2\n"}


def free_port() -> int:
    """A port nothing listens on (bound and released; the kernel hands out a fresh one next)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def probe(**kwargs) -> dict:
    return _probe.validate([kwargs])[0]


# --- fixtures: real servers on 127.0.0.1 ----------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        body = BODIES.get(self.path)
        self.send_response(200 if body is not None else 404)
        body = body if body is not None else b"not here\n"
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def web():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def dns_server():
    """A tiny authoritative server: portal.example A 192.0.2.43, www.example CNAME portal.example."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                wire, peer = sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            query = dns.message.from_wire(wire)
            response = dns.message.make_response(query)
            question = query.question[0]
            name = question.name.to_text()
            if name in ("portal.example.", "www.example."):
                if name == "www.example.":
                    response.answer.append(dns.rrset.from_text("www.example.", 300, "IN", "CNAME", "portal.example."))
                if question.rdtype == dns.rdatatype.A:
                    response.answer.append(dns.rrset.from_text("portal.example.", 300, "IN", "A", "192.0.2.43"))
            else:
                response.set_rcode(dns.rcode.NXDOMAIN)
            sock.sendto(response.to_wire(), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    stop.set()
    thread.join(2)
    sock.close()


# --- service_probe: http ------------------------------------------------------------------------

def test_http_compare_equal_bodies_is_ok(web):
    result = _probe.run(probe(type="http", url=f"{web}/a", compare_url=f"{web}/b"), timeout=2)
    assert result["ok"] is True
    assert result["status"] == 200
    assert len(result["sha256"]) == 64
    assert result["passed_at"].endswith("Z")
    assert result["target"] == f"http {web}/a"
    assert result["attempts"] == 1


def test_http_compare_different_bodies_is_red_with_both_hashes(web):
    result = _probe.run(probe(type="http", url=f"{web}/a", compare_url=f"{web}/c"), timeout=2)
    assert result["ok"] is False
    assert result["passed_at"] is None
    assert result["sha256"][:12] in result["detail"]
    assert result["compare_sha256"][:12] in result["detail"]
    assert result["sha256"] != result["compare_sha256"]


def test_http_status_mismatch_and_expected_404(web):
    red = _probe.run(probe(type="http", url=f"{web}/missing"), timeout=2)
    assert red["ok"] is False and red["status"] == 404 and "expected 200" in red["detail"]
    green = _probe.run(probe(type="http", url=f"{web}/missing", expect_status=404), timeout=2)
    assert green["ok"] is True


def test_http_expect_text(web):
    assert _probe.run(probe(type="http", url=f"{web}/a", expect_text="page v1"), timeout=2)["ok"] is True
    red = _probe.run(probe(type="http", url=f"{web}/a", expect_text="page v2"), timeout=2)
    assert red["ok"] is False and "page v2" in red["detail"]


def test_http_nothing_listening_is_red():
    result = _probe.run(probe(type="http", url=f"http://127.0.0.1:{free_port()}/"), timeout=1)
    assert result["ok"] is False and result["sha256"] is None


# --- tcp, retries -------------------------------------------------------------------------------

def test_tcp_open_and_closed_port():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        result = _probe.run(probe(type="tcp", host="127.0.0.1", port=port), timeout=1)
    assert result["ok"] is True and result["target"] == f"tcp 127.0.0.1:{port}"
    closed = _probe.run(probe(type="tcp", host="127.0.0.1", port=free_port()), timeout=1)
    assert closed["ok"] is False and "refused" in closed["detail"] and closed["passed_at"] is None


def test_retries_until_the_port_listens():
    port = free_port()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)

    def listen_later():
        time.sleep(1.0)
        listener.bind(("127.0.0.1", port))
        listener.listen()

    thread = threading.Thread(target=listen_later, daemon=True)
    thread.start()
    try:
        result = _probe.run(probe(type="tcp", host="127.0.0.1", port=port), timeout=0.5, retries=10, delay=0.3)
    finally:
        thread.join()
        listener.close()
    assert result["ok"] is True
    assert result["attempts"] > 1


def test_run_all_keeps_order_and_reports_retries_exhausted():
    port = free_port()
    results = _probe.run_all([probe(type="tcp", host="127.0.0.1", port=port, name="first"),
                              probe(type="tcp", host="127.0.0.1", port=port, name="second")], timeout=0.5, retries=2, delay=0.05)
    assert [r["name"] for r in results] == ["first", "second"]
    assert all(r["attempts"] == 3 and not r["ok"] for r in results)


# --- dns ----------------------------------------------------------------------------------------

def test_dns_expected_address_is_ok(dns_server):
    result = _probe.run(probe(type="dns", server="127.0.0.1", port=dns_server, query="portal.example", expect="192.0.2.43"), timeout=2)
    assert result["ok"] is True, result
    assert "192.0.2.43" in result["detail"]
    assert result["target"] == f"dns 127.0.0.1:{dns_server} portal.example A"


def test_dns_other_address_is_red(dns_server):
    result = _probe.run(probe(type="dns", server="127.0.0.1", port=dns_server, query="portal.example", expect="198.51.100.43"), timeout=2)
    assert result["ok"] is False
    assert "192.0.2.43" in result["detail"]  # says what was answered


def test_dns_follows_cname_in_the_answer(dns_server):
    result = _probe.run(probe(type="dns", server="127.0.0.1", port=dns_server, query="www.example", expect="192.0.2.43"), timeout=2)
    assert result["ok"] is True and "portal.example" in result["detail"]


def test_dns_nxdomain_and_no_server(dns_server):
    nx = _probe.run(probe(type="dns", server="127.0.0.1", port=dns_server, query="nope.example", expect="192.0.2.43"), timeout=2)
    assert nx["ok"] is False and "NXDOMAIN" in nx["detail"]
    silent = _probe.run(probe(type="dns", server="127.0.0.1", port=free_port(), query="portal.example", expect="192.0.2.43"), timeout=0.5)
    assert silent["ok"] is False


# --- sql ----------------------------------------------------------------------------------------

def test_sql_unreachable_is_red_and_never_shows_the_password():
    port = free_port()
    result = _probe.run(probe(type="sql", host="127.0.0.1", port=port, database="portal", user="portal", password=PASSWORD,
                              query="SELECT 1", expect="1"), timeout=2)
    assert result["ok"] is False
    assert result["target"] == f"sql portal@127.0.0.1:{port}/portal"
    assert PASSWORD not in json.dumps(result)


def test_scrub_hides_the_password_in_error_text():
    assert _probe.scrub(f"FATAL: password={PASSWORD} rejected", PASSWORD) == "FATAL: password=******** rejected"
    assert _probe.scrub("no secret", None) == "no secret"


# --- validation ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("probes", "words"), [
    ([{"type": "tcp", "host": "h", "port": 1}, {"type": "dns", "server": "s", "query": "q"}], ["probes[1]", "'expect'"]),
    ([{"type": "gopher", "host": "h"}], ["probes[0]", "'type'", "gopher"]),
    ([{"type": "tcp", "host": "h", "port": 1, "url": "http://x/"}], ["probes[0]", "'url'"]),
    ([{"type": "tcp", "host": "h", "port": "eighty"}], ["probes[0]", "'port'"]),
    ([{"type": "command", "host": "db1", "command": "pg_isready"}], ["probes[0]", "ansible.builtin.command"]),
])
def test_validation_names_index_and_key(probes, words):
    with pytest.raises(_probe.ProbeError) as info:
        _probe.validate(probes)
    for word in words:
        assert word in str(info.value)


def test_validation_fills_defaults_and_ignores_unset_keys():
    dns_probe, sql_probe = _probe.validate([{"type": "dns", "server": "s", "query": "q", "expect": "x", "url": None},
                                            {"type": "sql", "host": "h", "database": "d", "user": "u", "password": "p", "query": "SELECT 1", "expect": 1}])
    assert dns_probe["port"] == 53 and dns_probe["rrtype"] == "A"
    assert sql_probe["port"] == 5432 and sql_probe["expect"] == "1"


# --- flow_check ---------------------------------------------------------------------------------

def test_flow_open_listener_is_open():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        result = flow_check.check_flow({"host": "127.0.0.1", "port": port, "expect": "open"}, timeout=1)
    assert result["got"] == "open" and result["reason"] == "connected" and result["ok"] is True
    assert result["name"] == f"127.0.0.1:{port}"


def test_flow_closed_port_is_blocked_refused():
    result = flow_check.check_flow({"host": "127.0.0.1", "port": free_port(), "expect": "open", "name": "db"}, timeout=1)
    assert result["got"] == "blocked" and result["reason"] == "refused"
    assert result["ok"] is False and result["name"] == "db"


def test_flow_from_source_address():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        result = flow_check.check_flow({"host": "127.0.0.1", "port": port, "expect": "open"}, source="127.0.0.1", timeout=1)
    assert result["ok"] is True and "127.0.0.1" in result["detail"]
    with pytest.raises(flow_check.SourceError, match="192.0.2.77"):
        flow_check.check_flow({"host": "127.0.0.1", "port": port, "expect": "open"}, source="192.0.2.77", timeout=1)


def test_blackholed_flows_time_out_in_parallel():
    flows = [{"host": "192.0.2.1", "port": 10000 + i, "expect": "blocked"} for i in range(10)]
    started = time.monotonic()
    results = flow_check.check_flows(flows, timeout=0.5)
    elapsed = time.monotonic() - started
    assert elapsed < 2.5, f"10 flows took {elapsed:.1f}s: not in parallel"
    assert [r["port"] for r in results] == [f["port"] for f in flows]
    # Where 192.0.2.1 is a real gateway (as on some CI machines) it refuses rather than drops.
    assert all(r["got"] == "blocked" and r["ok"] for r in results)


@pytest.fixture
def full_backlog():
    """A local port that drops SYNs: a listener that never accepts, its backlog filled."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(8):
        filler = socket.socket()
        filler.settimeout(0.2)
        fillers.append(filler)
        try:
            filler.connect(("127.0.0.1", port))
        except TimeoutError:
            break
    else:
        pytest.fail("the kernel accepted every connection to a full backlog: this test cannot make a port that drops SYNs here")
    yield port
    for sock in [*fillers, listener]:
        sock.close()


def test_dropped_flows_time_out_in_parallel(full_backlog):
    flows = [{"host": "127.0.0.1", "port": full_backlog, "expect": "blocked", "name": f"f{i}"} for i in range(10)]
    started = time.monotonic()
    results = flow_check.check_flows(flows, timeout=0.5)
    elapsed = time.monotonic() - started
    assert elapsed < 2.0, f"10 dropped flows took {elapsed:.1f}s: not in parallel"
    assert all(r["reason"] == "timeout" and r["got"] == "blocked" and r["ok"] for r in results)
    assert all(0.4 < r["seconds"] < 1.5 for r in results)


# --- drill_ledger -------------------------------------------------------------------------------

def test_ledger_present_absent_list(tmp_path):
    path = str(tmp_path / "drill" / "ledger.json")
    assert _ledger.read(path) == []
    added, entries = _ledger.record(path, [{"id": "vm:a", "kind": "vm"}, {"id": "dns:b", "kind": "dns"}], drill="d1")
    assert added == ["vm:a", "dns:b"]
    assert [e["id"] for e in entries] == ["vm:a", "dns:b"]
    assert entries[0]["drill"] == "d1" and entries[0]["recorded"].endswith("Z")
    assert _ledger.read(path) == entries

    added, again = _ledger.record(path, [{"id": "vm:a", "kind": "changed"}, {"id": "fw:c"}], drill="d1")
    assert added == ["fw:c"] and again[0]["kind"] == "vm"  # the first record of an id stays

    removed, left = _ledger.remove(path, ["vm:a", "never-recorded"])
    assert removed == ["vm:a"] and [e["id"] for e in left] == ["dns:b", "fw:c"]
    assert _ledger.read(path) == left


def test_ledger_is_idempotent(tmp_path):
    path = str(tmp_path / "ledger.json")
    assert _ledger.record(path, [{"id": "x"}])[0] == ["x"]
    before = (tmp_path / "ledger.json").read_text()
    assert _ledger.record(path, [{"id": "x"}])[0] == []
    assert (tmp_path / "ledger.json").read_text() == before
    assert _ledger.remove(path, ["x"])[0] == ["x"]
    assert _ledger.remove(path, ["x"])[0] == []
    assert _ledger.remove(str(tmp_path / "none.json"), ["x"]) == ([], [])


def test_ledger_check_mode_writes_nothing(tmp_path):
    path = tmp_path / "ledger.json"
    added, entries = _ledger.record(str(path), [{"id": "x"}], check_mode=True)
    assert added == ["x"] and entries[0]["id"] == "x"
    assert not path.exists() and not (tmp_path / "ledger.json.lock").exists()
    _ledger.record(str(path), [{"id": "x"}])
    before = path.read_text()
    assert _ledger.remove(str(path), ["x"], check_mode=True) == (["x"], [])
    assert path.read_text() == before


def test_ledger_rejects_bad_entries(tmp_path):
    with pytest.raises(_ledger.LedgerError, match=r"entries\[1\].*'id'"):
        _ledger.record(str(tmp_path / "l.json"), [{"id": "a"}, {"kind": "vm"}])
    with pytest.raises(_ledger.LedgerError, match=r"entries\[1\].*unique"):
        _ledger.record(str(tmp_path / "l.json"), [{"id": "a"}, {"id": "a"}])


def _add_twenty(path: str, worker: int) -> None:
    for i in range(20):
        _ledger.record(path, [{"id": f"w{worker}-{i}", "host": f"h{worker}"}], drill="concurrent")


def test_ledger_concurrent_writers(tmp_path):
    path = str(tmp_path / "ledger.json")
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_add_twenty, args=(path, w)) for w in range(8)]
    for proc in workers:
        proc.start()
    for proc in workers:
        proc.join(60)
    assert all(proc.exitcode == 0 for proc in workers)
    data = json.loads((tmp_path / "ledger.json").read_text())
    ids = [e["id"] for e in data["entries"]]
    assert len(ids) == 160 and len(set(ids)) == 160
    for w in range(8):  # each writer's entries stay in its own order
        mine = [i for i in ids if i.startswith(f"w{w}-")]
        assert mine == [f"w{w}-{i}" for i in range(20)]
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("content", ["{not json", '["a list"]'])
def test_ledger_corrupt_file_is_left_untouched(tmp_path, content):
    path = tmp_path / "ledger.json"
    path.write_text(content)
    for action in (lambda: _ledger.read(str(path)),
                   lambda: _ledger.record(str(path), [{"id": "x"}]),
                   lambda: _ledger.remove(str(path), ["x"])):
        with pytest.raises(_ledger.LedgerError) as info:
            action()
        message = str(info.value)
        assert str(path) in message and "move it aside" in message
    assert path.read_text() == content
