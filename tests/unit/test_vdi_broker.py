"""VDI broker adapters: the file broker's format, errors and locked atomic writes; the Horizon
adapter against a local HTTP server that replays recorded Horizon Server REST answers
(fixtures/horizon/*.json, shapes of the Horizon 2111 OpenAPI document) and records every request,
so the tests assert what was sent: login then a bearer token, the pool found by name, one POST and
one DELETE for an entitlement change, nothing written in check mode, paging, errors that name the
pool and the action."""

from __future__ import annotations

import json
import os
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ansible_collections.twinsite.dc.plugins.module_utils import _vdi_broker
from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError
from ansible_collections.twinsite.dc.plugins.module_utils._vdi_broker import FileBroker, HorizonBroker, NoBroker, open_broker

FIXTURES = Path(__file__).parent / "fixtures" / "horizon"
PASSWORD = "Vdi-Br0ker-pw"
STAFF_ID = "855ea6c5-720a-41e1-96f4-958c90e6e424"
DOM = "S-1-5-21-1111111111-2222222222-3333333333"
SID = {"jdoe": f"{DOM}-1104", "asmith": f"{DOM}-1105", "town-staff": f"{DOM}-2201", "town-it": f"{DOM}-2202", "old-staff": f"{DOM}-2203"}
ENTITLEMENTS = "/rest/entitlements/v1/desktop-pools"


def fixture(name: str):
    return json.loads((FIXTURES / f"{name}.json").read_text())


# --- a Horizon Connection Server that replays the fixtures --------------------------------


def _matches(item: dict, flt: dict) -> bool:
    kind = flt["type"]
    if kind == "And":
        return all(_matches(item, f) for f in flt["filters"])
    if kind == "Or":
        return any(_matches(item, f) for f in flt["filters"])
    if kind == "Equals":
        return item.get(flt["name"]) == flt["value"]
    raise AssertionError(f"filter type {kind} not expected from the broker")


class FakeHorizon:
    """Answers like a Connection Server: login/refresh/logout, bearer tokens checked on every
    other call, server-side filters and page/size paging with the HAS_MORE_RECORDS header."""

    def __init__(self):
        self.requests: list[dict] = []
        self.overrides: dict[tuple[str, str], tuple[int, object]] = {}  # (method, path) -> (status, body)
        self.valid_tokens = {fixture("login")["access_token"]}
        self.expire_after_login = False
        self.entitled = {STAFF_ID: set(fixture("entitlements_staff")["ad_user_or_group_ids"])}

    def writes(self) -> list[dict]:
        return [r for r in self.requests if r["method"] in ("POST", "DELETE") and r["path"] == ENTITLEMENTS]

    def answer(self, method: str, path: str, query: dict, body, auth: str | None):
        if (method, path) in self.overrides:
            return self.overrides[(method, path)] + ({},)
        if path == "/rest/login":
            if body != {"domain": "TOWN", "username": "svc-twinsite", "password": PASSWORD}:
                return 401, fixture("error_401"), {}
            if self.expire_after_login:
                self.valid_tokens.clear()
            return 200, fixture("login"), {}
        if path == "/rest/refresh":
            token = fixture("refresh")["access_token"]
            self.valid_tokens.add(token)
            return 200, fixture("refresh"), {}
        if path == "/rest/logout":
            return 200, None, {}
        if auth is None or auth.removeprefix("Bearer ") not in self.valid_tokens:
            return 401, fixture("error_401"), {}
        if path == "/rest/inventory/v1/desktop-pools":
            return 200, fixture("desktop_pools"), {}
        lists = {"/rest/inventory/v1/machines": "machines", "/rest/inventory/v1/sessions": "sessions",
                 "/rest/external/v1/ad-users-or-groups": "ad_users_or_groups"}
        if path in lists:
            items = fixture(lists[path])
            if "filter" in query:
                items = [i for i in items if _matches(i, query["filter"])]
            headers = {}
            if "page" in query:
                page, size = int(query["page"]), int(query["size"])
                items, more = items[(page - 1) * size:page * size], len(items) > page * size
                if more:
                    headers["HAS_MORE_RECORDS"] = "TRUE"
            return 200, items, headers
        if path.startswith(ENTITLEMENTS + "/") and method == "GET":
            pool_id = path.rsplit("/", 1)[1]
            if pool_id not in self.entitled:
                return 404, fixture("error_404"), {}
            return 200, {"id": pool_id, "ad_user_or_group_ids": sorted(self.entitled[pool_id])}, {}
        if path == ENTITLEMENTS and method in ("POST", "DELETE"):
            for spec in body:
                change = set(spec["ad_user_or_group_ids"])
                self.entitled[spec["id"]] = self.entitled[spec["id"]] | change if method == "POST" else self.entitled[spec["id"]] - change
            return 200, fixture("bulk_entitlements_ok"), {}
        return 404, fixture("error_404"), {}


class Handler(BaseHTTPRequestHandler):
    def _handle(self):
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        if "filter" in query:
            query["filter"] = json.loads(query["filter"])
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        fake: FakeHorizon = self.server.fake
        auth = self.headers.get("Authorization")
        fake.requests.append({"method": self.command, "path": url.path, "query": query, "body": body, "auth": auth})
        status, answer, headers = fake.answer(self.command, url.path, query, body, auth)
        data = json.dumps(answer).encode() if answer is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = _handle  # noqa: N815 - http.server's names

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture()
def horizon(server):
    """A fresh Connection Server state (and request record) for each test."""
    server.fake = FakeHorizon()
    server.fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    return server.fake


def connect(fake: FakeHorizon, password: str = PASSWORD, **kwargs) -> HorizonBroker:
    return open_broker({"type": "horizon", "url": fake.url, "username": "svc-twinsite", "password": password, "domain": "TOWN", **kwargs},
                       timeout=5)


# --- Horizon -------------------------------------------------------------------------------


def test_login_first_then_the_bearer_token_on_every_call(horizon):
    broker = connect(horizon)
    broker.sessions("staff")
    first, rest = horizon.requests[0], horizon.requests[1:]
    assert (first["method"], first["path"], first["auth"]) == ("POST", "/rest/login", None)
    assert first["body"] == {"domain": "TOWN", "username": "svc-twinsite", "password": PASSWORD}
    assert rest and all(r["auth"] == "Bearer " + fixture("login")["access_token"] for r in rest)
    assert [r["path"] for r in horizon.requests].count("/rest/login") == 1


def test_domain_may_be_written_in_the_username(horizon):
    broker = open_broker({"type": "horizon", "url": horizon.url, "username": "TOWN\\svc-twinsite", "password": PASSWORD})
    assert broker.entitlements("staff") == ["old-staff", "town-it"]


def test_the_pool_is_found_by_name_and_its_id_filters_machines_and_sessions(horizon):
    broker = connect(horizon)
    broker.sessions("staff")
    broker.assignments("staff")
    gets = [r for r in horizon.requests if r["method"] == "GET"]
    assert [r["path"] for r in gets].count("/rest/inventory/v1/desktop-pools") == 1  # cached
    for r in gets:
        if r["path"] in ("/rest/inventory/v1/machines", "/rest/inventory/v1/sessions"):
            assert r["query"]["filter"] == {"type": "And", "filters": [{"type": "Equals", "name": "desktop_pool_id", "value": STAFF_ID}]}


def test_a_pool_horizon_does_not_have(horizon):
    with pytest.raises(TwinsiteError) as err:
        connect(horizon).sessions("staf")
    assert err.value.obj == "staf"
    assert "Horizon has no desktop pool 'staf'" in str(err.value)
    assert "library, staff" in str(err.value)


def test_sessions_are_keyed_by_desktop_name_with_user_names(horizon):
    broker = connect(horizon)
    assert broker.sessions("staff") == {
        "vdi-staff-001": {"user": "town.example\\jdoe", "state": "connected"},
        "vdi-staff-002": {"user": "town.example\\asmith", "state": "disconnected"},
    }
    lookups = [r for r in horizon.requests if r["path"] == "/rest/external/v1/ad-users-or-groups"]
    assert len(lookups) == 1  # both SIDs in one Or filter
    assert lookups[0]["query"]["filter"] == {"type": "Or", "filters": [{"type": "Equals", "name": "id", "value": SID["jdoe"]},
                                                                         {"type": "Equals", "name": "id", "value": SID["asmith"]}]}


def test_assignments_of_a_dedicated_pool(horizon):
    broker = connect(horizon)
    assert broker.assignments("staff") == {"vdi-staff-001": "town.example\\jdoe", "vdi-staff-002": "town.example\\asmith"}
    assert broker.assignments("library") == {}  # floating: no machine has a user


def test_lists_are_read_page_by_page_until_has_more_records_stops(horizon):
    broker = HorizonBroker(horizon.url, "svc-twinsite", PASSWORD, domain="TOWN", page_size=2)
    sessions = broker.sessions("staff")
    pages = [(r["query"]["page"], r["query"]["size"]) for r in horizon.requests if r["path"] == "/rest/inventory/v1/machines"]
    assert pages == [("1", "2"), ("2", "2")]
    assert "vdi-staff-002" in sessions  # its machine is on the second page


def test_a_server_that_ignores_paging_is_read_once(horizon):
    every_machine = fixture("machines")  # 4 machines, more than a page, and no HAS_MORE_RECORDS header
    horizon.overrides[("GET", "/rest/inventory/v1/machines")] = (200, every_machine)
    broker = HorizonBroker(horizon.url, "svc-twinsite", PASSWORD, domain="TOWN", page_size=2)
    assert set(broker.assignments("staff")) == {"vdi-staff-001", "vdi-staff-002"}
    assert [r["query"]["page"] for r in horizon.requests if r["path"] == "/rest/inventory/v1/machines"] == ["1", "2"]


def test_entitlements_are_read_as_login_names(horizon):
    assert connect(horizon).entitlements("staff") == ["old-staff", "town-it"]


def test_set_entitlements_sends_one_post_and_one_delete(horizon):
    broker = connect(horizon)
    assert broker.set_entitlements("staff", ["town-staff", "TOWN\\town-it"]) is True
    writes = horizon.writes()
    assert [(w["method"], w["body"]) for w in writes] == [
        ("POST", [{"id": STAFF_ID, "ad_user_or_group_ids": [SID["town-staff"]]}]),
        ("DELETE", [{"id": STAFF_ID, "ad_user_or_group_ids": [SID["old-staff"]]}]),
    ]
    lookup = [r for r in horizon.requests if r["path"] == "/rest/external/v1/ad-users-or-groups"][0]
    assert lookup["query"]["filter"]["filters"][0]["name"] == "login_name"
    assert broker.entitlements("staff") == ["town-it", "town-staff"]
    assert broker.set_entitlements("staff", ["town-it", "town-staff@town.example"]) is False
    assert len(horizon.writes()) == 2  # the second run wrote nothing


def test_set_entitlements_in_check_mode_writes_nothing(horizon):
    broker = connect(horizon)
    assert broker.set_entitlements("staff", ["town-staff"], check_mode=True) is True
    assert broker.set_entitlements("staff", ["old-staff", "town-it"], check_mode=True) is False
    assert horizon.writes() == []
    assert horizon.entitled[STAFF_ID] == {SID["town-it"], SID["old-staff"]}


def test_a_group_horizon_does_not_know(horizon):
    with pytest.raises(TwinsiteError) as err:
        connect(horizon).set_entitlements("staff", ["town-staf"])
    assert str(err.value).startswith("changing entitlements of staff failed: Horizon knows no AD user or group 'town-staf'")
    assert horizon.writes() == []


def test_a_per_group_refusal_inside_a_200_is_an_error(horizon):
    horizon.overrides[("POST", ENTITLEMENTS)] = (200, fixture("bulk_entitlements_refused"))
    with pytest.raises(TwinsiteError) as err:
        connect(horizon).set_entitlements("staff", ["town-staff", "town-it", "old-staff"])
    assert str(err.value) == ("adding entitlements of staff failed: Horizon refused: Entitlement could not be created.; "
                              "town.example\\town-staff: Entity does not exists.")


def test_login_refused_names_the_server_and_never_the_password(horizon):
    broker = connect(horizon, password="wrong-" + PASSWORD)
    with pytest.raises(TwinsiteError) as err:
        broker.sessions("staff")
    message = str(err.value)
    assert message == (f"login of Horizon {horizon.url.split('//')[1]} failed: POST /rest/login: HTTP 401, "
                       "login refused: check username, password and domain: User is not authenticated")
    assert PASSWORD not in message


def test_404_names_the_pool_the_action_and_horizons_words(horizon):
    horizon.overrides[("GET", "/rest/inventory/v1/machines")] = (404, fixture("error_404"))
    with pytest.raises(TwinsiteError) as err:
        connect(horizon).assignments("staff")
    assert str(err.value) == ("reading assignments of staff failed: GET /rest/inventory/v1/machines: HTTP 404, not found: Desktop pool not found.")


def test_500_names_the_pool_the_action_and_horizons_words(horizon):
    horizon.overrides[("GET", "/rest/inventory/v1/sessions")] = (500, fixture("error_500"))
    with pytest.raises(TwinsiteError) as err:
        connect(horizon).sessions("staff")
    assert err.value.obj == "staff"
    assert str(err.value) == ("reading sessions of staff failed: GET /rest/inventory/v1/sessions: HTTP 500, Horizon internal error: "
                              "Internal server error. Please check the Connection Server logs.")


def test_an_expired_token_is_renewed_once_with_the_refresh_token(horizon):
    horizon.expire_after_login = True
    assert connect(horizon).entitlements("staff") == ["old-staff", "town-it"]
    paths = [r["path"] for r in horizon.requests]
    assert paths[:4] == ["/rest/login", "/rest/inventory/v1/desktop-pools", "/rest/refresh", "/rest/inventory/v1/desktop-pools"]
    assert horizon.requests[2]["body"] == {"refresh_token": fixture("login")["refresh_token"]}
    assert horizon.requests[-1]["auth"] == "Bearer " + fixture("refresh")["access_token"]


def test_close_logs_out_with_the_refresh_token(horizon):
    with connect(horizon) as broker:
        broker.entitlements("staff")
    last = horizon.requests[-1]
    assert (last["method"], last["path"], last["body"], last["auth"]) == ("POST", "/rest/logout", {"refresh_token": fixture("login")["refresh_token"]}, None)


def test_close_before_any_call_sends_nothing(horizon):
    connect(horizon).close()
    assert horizon.requests == []


def test_a_missing_ca_file_is_named(tmp_path):
    broker = HorizonBroker("https://horizon.town.example", "svc", "pw", domain="TOWN", ca_path=str(tmp_path / "ca.pem"))
    with pytest.raises(TwinsiteError, match=r"^login of Horizon horizon.town.example failed: the CA file .*ca.pem does not exist"):
        broker.entitlements("staff")


def test_an_unreachable_server():
    broker = HorizonBroker("http://127.0.0.1:9", "svc", "pw", domain="TOWN", timeout=2)
    with pytest.raises(TwinsiteError, match=r"^login of Horizon 127.0.0.1:9 failed: cannot reach 127.0.0.1:9"):
        broker.sessions("staff")


# --- open_broker, none ---------------------------------------------------------------------


def test_open_broker_picks_the_adapter(tmp_path):
    assert isinstance(open_broker(None), NoBroker)
    assert isinstance(open_broker({"type": "none"}), NoBroker)
    assert isinstance(open_broker({"type": "file", "path": str(tmp_path / "b.json")}), FileBroker)
    assert open_broker({"type": "file"}).path == _vdi_broker.DEFAULT_FILE_PATH
    with pytest.raises(TwinsiteError, match="needs password"):
        open_broker({"type": "horizon", "url": "https://horizon.example", "username": "u"})
    with pytest.raises(TwinsiteError, match="unknown broker type 'citrix'; use none, file or horizon"):
        open_broker({"type": "citrix"})


def test_no_broker_knows_nothing_and_changes_nothing():
    broker = open_broker(None)
    assert (broker.sessions("staff"), broker.assignments("staff"), broker.entitlements("staff")) == ({}, {}, [])
    assert broker.set_entitlements("staff", ["town-staff"]) is False


# --- file ----------------------------------------------------------------------------------

SAMPLE = {
    "pools": {"staff": {"entitlements": ["town-staff"]}, "library": {"entitlements": ["library-staff"]}},
    "sessions": [{"desktop": "vdi-staff-001", "user": "jdoe", "state": "connected"},
                 {"desktop": "vdi-lib-001", "user": "TOWN\\kiosk", "state": "disconnected"},
                 {"desktop": "vdi-staff-002", "user": "asmith", "state": "disconnected"},
                 {"desktop": "vdi-staff-002", "user": "asmith", "state": "connected"}],
    "assignments": {"vdi-staff-002": "asmith"},
    "comment": "written by the desktops' login scripts",
}


def write(path: Path, data) -> Path:
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_a_missing_file_means_nothing_yet(tmp_path):
    broker = FileBroker(str(tmp_path / "none.json"))
    assert (broker.sessions("staff"), broker.assignments("staff"), broker.entitlements("staff")) == ({}, {}, [])


def test_file_sessions_are_all_of_the_site_keyed_by_desktop(tmp_path):
    broker = FileBroker(str(write(tmp_path / "broker.json", SAMPLE)))
    assert broker.sessions("staff") == {"vdi-staff-001": {"user": "jdoe", "state": "connected"},
                                        "vdi-lib-001": {"user": "TOWN\\kiosk", "state": "disconnected"},
                                        "vdi-staff-002": {"user": "asmith", "state": "connected"}}
    assert broker.assignments("staff") == {"vdi-staff-002": "asmith"}
    assert broker.entitlements("staff") == ["town-staff"]
    assert broker.entitlements("lab") == []


def test_set_entitlements_creates_the_directory_and_the_file(tmp_path):
    path = tmp_path / "vdi" / "broker.json"
    broker = FileBroker(str(path))
    assert broker.set_entitlements("staff", ["town-staff"], check_mode=True) is True
    assert not path.parent.exists()  # check mode: nothing made
    assert broker.set_entitlements("staff", ["town-staff", "town-it", "town-staff"]) is True
    assert json.loads(path.read_text()) == {"pools": {"staff": {"entitlements": ["town-it", "town-staff"]}}}
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert broker.set_entitlements("staff", ["town-it", "town-staff"]) is False
    assert sorted(os.listdir(path.parent)) == ["broker.json", "broker.json.lock"]  # no temporary file left


def test_set_entitlements_keeps_everything_else(tmp_path):
    path = write(tmp_path / "broker.json", SAMPLE)
    path.chmod(0o640)
    assert FileBroker(str(path)).set_entitlements("staff", []) is True
    data = json.loads(path.read_text())
    assert data == {**SAMPLE, "pools": {"staff": {"entitlements": []}, "library": {"entitlements": ["library-staff"]}}}
    assert oct(path.stat().st_mode & 0o777) == "0o640"


def test_concurrent_writers_lose_nothing(tmp_path):
    path = str(tmp_path / "broker.json")
    pools = [f"pool{i}" for i in range(4)]

    def converge(pool):
        for n in range(5):
            FileBroker(path).set_entitlements(pool, [f"{pool}-group-{n}"])

    threads = [threading.Thread(target=converge, args=(p,)) for p in pools]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    broker = FileBroker(path)
    assert {p: broker.entitlements(p) for p in pools} == {p: [f"{p}-group-4"] for p in pools}


def test_a_file_that_is_not_json(tmp_path):
    path = write(tmp_path / "broker.json", '{"sessions": [}')
    with pytest.raises(TwinsiteError, match=rf"^read of broker file {path} failed: not valid JSON: Expecting value: line 1 column 15"):
        FileBroker(str(path)).sessions("staff")


@pytest.mark.parametrize(("data", "problem"), [
    ({"sessions": [SAMPLE["sessions"][0], SAMPLE["sessions"][1], {"desktop": "vdi-staff-003", "user": "bkim", "state": "idle"}]},
     'sessions[2].state: expected "connected" or "disconnected", found "idle"'),
    ({"sessions": [{"desktop": "vdi-staff-003", "state": "connected"}]}, "sessions[0].user: expected a non-empty string, found null"),
    ({"sessions": {"vdi-staff-001": "jdoe"}}, 'sessions: expected a list of {"desktop", "user", "state"}, found {"vdi-staff-001": "jdoe"}'),
    ({"pools": {"staff": {"entitlements": "town-staff"}}}, 'pools.staff.entitlements: expected a list of group or user names, found "town-staff"'),
    ({"pools": {"staff": {"entitlements": ["town-staff", 7]}}}, "pools.staff.entitlements[1]: expected a group or user name, found 7"),
    ({"pools": ["staff"]}, 'pools: expected an object of pool name -> {"entitlements": [...]}, found ["staff"]'),
    ({"assignments": {"vdi-staff-002": ["asmith"]}}, 'assignments.vdi-staff-002: expected a user name, found ["asmith"]'),
    ([], "(top level): expected an object with pools, sessions and assignments, found []"),
])
def test_a_file_of_the_wrong_shape_says_where(tmp_path, data, problem):
    path = write(tmp_path / "broker.json", data)
    with pytest.raises(TwinsiteError) as err:
        FileBroker(str(path)).entitlements("staff")
    assert str(err.value) == f"read of broker file {path} failed: {problem}"


def test_a_bad_file_is_not_overwritten(tmp_path):
    path = write(tmp_path / "broker.json", {"sessions": "oops"})
    with pytest.raises(TwinsiteError):
        FileBroker(str(path)).set_entitlements("staff", ["town-staff"])
    assert json.loads(path.read_text()) == {"sessions": "oops"}


def test_entitlements_must_be_names(tmp_path):
    with pytest.raises(TwinsiteError, match="^changing entitlements of staff failed: entitlements must be a list"):
        FileBroker(str(tmp_path / "b.json")).set_entitlements("staff", "town-staff")
