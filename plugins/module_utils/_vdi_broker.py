# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The broker side of VDI desktop pools: who is logged in on which desktop, who a desktop is
assigned to, and who is entitled to a pool, behind one interface with three adapters.

A pool converges safely only if it knows which desktops hold a user (a disconnected session
still holds one), so the pool module asks the broker before it removes or rebuilds a desktop,
and it declares the pool's entitlements here. Adapters: ``none`` (no broker: no sessions),
``file`` (one JSON file that the desktops' login/logoff scripts write, for small sites) and
``horizon`` (the Horizon Server REST API of a Connection Server). See docs/vdi-brokers.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import urllib.error
import urllib.parse

from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows; controllers are POSIX
    fcntl = None

DEFAULT_FILE_PATH = "/var/lib/twinsite/vdi/broker.json"
SESSION_STATES = ("connected", "disconnected")


def open_broker(config: dict | None, timeout: float = 30.0) -> Broker:
    """The adapter ``config`` asks for. ``None`` or ``{"type": "none"}``: no broker."""
    config = dict(config or {})
    kind = config.get("type") or "none"
    if kind == "none":
        return NoBroker()
    if kind == "file":
        return FileBroker(config.get("path") or DEFAULT_FILE_PATH)
    if kind == "horizon":
        missing = [k for k in ("url", "username", "password") if not config.get(k)]
        if not config.get("domain") and "\\" not in str(config.get("username") or ""):
            missing.append("domain")  # /rest/login requires it (AuthLogin); DOMAIN\\user in username also does
        if missing:
            raise TwinsiteError(f"the horizon broker needs {', '.join(missing)} in its configuration", obj="VDI broker", action="configuration")
        return HorizonBroker(config["url"], config["username"], config["password"], domain=config.get("domain"),
                             validate_certs=config.get("validate_certs") is not False, ca_path=config.get("ca_path"), timeout=timeout)
    raise TwinsiteError(f"unknown broker type {kind!r}; use none, file or horizon", obj="VDI broker", action="configuration")


class Broker:
    """What a pool asks of its broker. ``pool`` is the pool's name; desktops are VM names, unique in a site."""

    def sessions(self, pool: str) -> dict[str, dict]:
        """Desktop name -> ``{"user": ..., "state": "connected" | "disconnected"}``. Both states
        hold a logged-in user: the caller counts either as an active session."""
        raise NotImplementedError

    def assignments(self, pool: str) -> dict[str, str]:
        """Desktop name -> the user it is assigned to (dedicated pools); ``{}`` for floating pools."""
        raise NotImplementedError

    def entitlements(self, pool: str) -> list[str]:
        """The groups/users entitled to the pool now, sorted."""
        raise NotImplementedError

    def set_entitlements(self, pool: str, groups: list[str], check_mode: bool = False) -> bool:
        """Make the pool's entitlements exactly ``groups``; True when they were (or, in check mode, would be) changed."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class NoBroker(Broker):
    """No broker product: nothing is known about sessions, so nothing holds a desktop."""

    def sessions(self, pool: str) -> dict[str, dict]:
        return {}

    def assignments(self, pool: str) -> dict[str, str]:
        return {}

    def entitlements(self, pool: str) -> list[str]:
        return []

    def set_entitlements(self, pool: str, groups: list[str], check_mode: bool = False) -> bool:
        return False


def _groups(groups, pool: str) -> list[str]:
    if not isinstance(groups, (list, tuple)) or not all(isinstance(g, str) and g.strip() for g in groups):
        raise TwinsiteError(f"entitlements must be a list of group or user names, found {groups!r}", obj=pool, action="changing entitlements")
    return sorted({g.strip() for g in groups})


# --- file -----------------------------------------------------------------------------------


class FileBroker(Broker):
    """One JSON file per site (format in docs/vdi-brokers.md). Read on every call, so a session
    written by a desktop's login script a second ago counts. Written atomically (a temporary file
    in the same directory, then os.replace) under an exclusive lock on ``<path>.lock``: two pools
    converging at once, or a login script, never lose each other's writes. Readers take no lock,
    as os.replace never shows them half a file."""

    def __init__(self, path: str):
        self.path = path
        self.obj = f"broker file {path}"

    def sessions(self, pool: str) -> dict[str, dict]:
        """Every session in the file, whatever its pool: sessions are keyed by desktop name, which
        is unique in a site, and the caller keeps those of its own desktops. When a desktop has two
        entries (a logoff that was never written), the connected one wins."""
        out: dict[str, dict] = {}
        for item in self._read().get("sessions", []):
            known = out.get(item["desktop"])
            if known is None or (known["state"] != "connected" and item["state"] == "connected"):
                out[item["desktop"]] = {"user": item["user"], "state": item["state"]}
        return out

    def assignments(self, pool: str) -> dict[str, str]:
        """Every assignment in the file (keyed by desktop name, like sessions)."""
        return dict(self._read().get("assignments", {}))

    def entitlements(self, pool: str) -> list[str]:
        return sorted(set(self._read().get("pools", {}).get(pool, {}).get("entitlements", [])))

    def set_entitlements(self, pool: str, groups: list[str], check_mode: bool = False) -> bool:
        wanted = _groups(groups, pool)
        if check_mode:
            return self.entitlements(pool) != wanted
        with self._locked():
            data = self._read()
            if sorted(set(data.get("pools", {}).get(pool, {}).get("entitlements", []))) == wanted:
                return False
            data.setdefault("pools", {}).setdefault(pool, {})["entitlements"] = wanted
            self._write(data)
        return True

    def _read(self) -> dict:
        try:
            with open(self.path, encoding="utf-8") as handle:
                text = handle.read()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise TwinsiteError(f"cannot read it: {exc.strerror}", obj=self.obj, action="read") from None
        try:
            data = json.loads(text) if text.strip() else {}
        except ValueError as exc:
            raise TwinsiteError(f"not valid JSON: {exc}", obj=self.obj, action="read") from None
        problem = _file_shape_problem(data)
        if problem:
            raise TwinsiteError(problem, obj=self.obj, action="read")
        return data

    @contextlib.contextmanager
    def _locked(self):
        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            os.makedirs(directory, exist_ok=True)
            lock = open(f"{self.path}.lock", "a")  # noqa: SIM115 - held for the whole block
        except OSError as exc:
            raise TwinsiteError(f"cannot create {exc.filename or directory}: {exc.strerror}", obj=self.obj, action="write") from None
        try:
            if fcntl is not None:
                fcntl.flock(lock, fcntl.LOCK_EX)
            yield
        finally:
            lock.close()  # closing releases the lock

    def _write(self, data: dict) -> None:
        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            mode = os.stat(self.path).st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o644
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(self.path)}.", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=2, sort_keys=True)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, mode)
            os.replace(tmp, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise TwinsiteError(f"cannot write it: {exc.strerror}", obj=self.obj, action="write") from None


def _file_shape_problem(data) -> str | None:
    """The first value of the broker file that is not of the documented shape, as
    ``<JSON path>: expected ..., found ...``; None when the file is right."""

    def found(value) -> str:
        return json.dumps(value)

    if not isinstance(data, dict):
        return f"(top level): expected an object with pools, sessions and assignments, found {found(data)}"
    pools = data.get("pools", {})
    if not isinstance(pools, dict):
        return f"pools: expected an object of pool name -> {{\"entitlements\": [...]}}, found {found(pools)}"
    for name, pool in pools.items():
        if not isinstance(pool, dict):
            return f"pools.{name}: expected an object, found {found(pool)}"
        entitled = pool.get("entitlements", [])
        if not isinstance(entitled, list):
            return f"pools.{name}.entitlements: expected a list of group or user names, found {found(entitled)}"
        for i, group in enumerate(entitled):
            if not isinstance(group, str) or not group:
                return f"pools.{name}.entitlements[{i}]: expected a group or user name, found {found(group)}"
    sessions = data.get("sessions", [])
    if not isinstance(sessions, list):
        return f"sessions: expected a list of {{\"desktop\", \"user\", \"state\"}}, found {found(sessions)}"
    for i, session in enumerate(sessions):
        if not isinstance(session, dict):
            return f"sessions[{i}]: expected an object with desktop, user and state, found {found(session)}"
        for key in ("desktop", "user"):
            if not isinstance(session.get(key), str) or not session.get(key):
                return f"sessions[{i}].{key}: expected a non-empty string, found {found(session.get(key))}"
        if session.get("state") not in SESSION_STATES:
            return f"sessions[{i}].state: expected \"connected\" or \"disconnected\", found {found(session.get('state'))}"
    assignments = data.get("assignments", {})
    if not isinstance(assignments, dict):
        return f"assignments: expected an object of desktop name -> user, found {found(assignments)}"
    for desktop, user in assignments.items():
        if not isinstance(user, str) or not user:
            return f"assignments.{desktop}: expected a user name, found {found(user)}"
    return None


# --- Horizon --------------------------------------------------------------------------------
#
# Horizon Server REST API (Horizon 8, 2xxx), read from its OpenAPI document (version 2111, as
# shipped in github.com/umich-vci/gohorizon api/openapi.yaml; the same operations are listed at
# developer.omnissa.com/horizon-apis/horizon-server and developer.broadcom.com/xapis/vmware-horizon-server-api):
#   POST /rest/login   AuthLogin {domain, username, password} -> AuthTokens {access_token, refresh_token}
#   POST /rest/refresh RefreshToken {refresh_token} -> AccessToken {access_token}
#   POST /rest/logout  RefreshToken {refresh_token}
#   GET  /rest/inventory/v1/desktop-pools            -> [DesktopPoolInfo {id, name, display_name, ...}] (no paging, no filter)
#   GET  /rest/inventory/v1/machines?filter=         -> [MachineInfo {id, name, desktop_pool_id, state, user_ids}]
#   GET  /rest/inventory/v1/sessions?filter=         -> [SessionInfo {id, machine_id, user_id, desktop_pool_id, session_state}]
#   GET  /rest/external/v1/ad-users-or-groups?filter= -> [ADUserOrGroupSummary {id (SID), login_name, domain, display_name, group}]
#   GET  /rest/entitlements/v1/desktop-pools/{id}    -> EntitlementInfo {id, ad_user_or_group_ids}
#   POST / DELETE /rest/entitlements/v1/desktop-pools  [EntitlementSpec {id, ad_user_or_group_ids}]
#        -> 200 [BulkEntitlementResponseInfo {id, status_code, error_messages, details[]}]: per-item failures come back in a 200
# Paging and filters, from "Horizon Server REST Pagination and Filter Guide" (developer.omnissa.com
# HorizonServerRESTPaginationAndFilterGuideV2): page and size together (size <= 1000), an optional
# HAS_MORE_RECORDS response header when more pages exist; filter is a JSON object in the query
# ({"type": "And", "filters": [{"type": "Equals", "name": ..., "value": ...}]}); ad-users-or-groups
# takes an "Or" chain of "Equals" on id to look several SIDs up at once.

MAX_PAGE_SIZE = 1000
SID_BATCH = 50  # SIDs per ad-users-or-groups lookup: keeps the query string short


def _equals(name: str, value: str) -> dict:
    return {"type": "And", "filters": [{"type": "Equals", "name": name, "value": value}]}


def _any_id(sids: list[str]) -> dict:
    if len(sids) == 1:
        return _equals("id", sids[0])
    return {"type": "Or", "filters": [{"type": "Equals", "name": "id", "value": sid} for sid in sids]}


class HorizonBroker(Broker):
    """A Horizon Connection Server through its REST API: bearer token from /rest/login, one list
    read per kind of object (machines and sessions filtered by pool on the server), SIDs turned
    into names with batched lookups that are cached for the broker's life."""

    def __init__(self, url: str, username: str, password: str, domain: str | None = None, validate_certs: bool = True,
                 ca_path: str | None = None, timeout: float = 30.0, page_size: int = MAX_PAGE_SIZE):
        parsed = urllib.parse.urlsplit(url if "://" in url else f"https://{url}")
        self.host = parsed.netloc
        base = f"{parsed.scheme}://{parsed.netloc}{parsed.path.rstrip('/')}"
        self.base = base if base.endswith("/rest") else f"{base}/rest"
        if not domain and "\\" in username:
            domain, username = username.split("\\", 1)
        self._credentials = {"domain": domain or "", "username": username, "password": password}
        self.validate_certs, self.ca_path, self.timeout = validate_certs, ca_path, timeout
        self.page_size = max(1, min(int(page_size), MAX_PAGE_SIZE))
        self._access = self._refresh = self._request = None
        self._pool_ids: dict[str, str] = {}
        self._principals: dict[str, dict | None] = {}  # SID -> ADUserOrGroupSummary (None: Horizon does not know it)
        self._by_name: dict[str, str] = {}  # name as written -> SID

    # --- the interface

    def sessions(self, pool: str) -> dict[str, dict]:
        pool_id = self._pool_id(pool)
        machines = {m["id"]: m["name"] for m in self._machines(pool, pool_id, "reading sessions")}
        raw = self._list("/inventory/v1/sessions", _equals("desktop_pool_id", pool_id), obj=pool, action="reading sessions")
        users = self._names([s.get("user_id") for s in raw if s.get("user_id")], pool, "reading sessions")
        out: dict[str, dict] = {}
        for session in raw:
            desktop = machines.get(session.get("machine_id"))
            if desktop is None:  # an RDS or console session: no desktop of this pool
                continue
            # PENDING: a connection in progress; the desktop is about to be used, so it is held.
            state = "disconnected" if session.get("session_state") == "DISCONNECTED" else "connected"
            if desktop in out and out[desktop]["state"] == "connected":
                continue
            user_id = session.get("user_id")
            out[desktop] = {"user": _user_label(users.get(user_id), user_id), "state": state}
        return out

    def assignments(self, pool: str) -> dict[str, str]:
        pool_id = self._pool_id(pool)
        machines = [m for m in self._machines(pool, pool_id, "reading assignments") if m.get("user_ids")]
        users = self._names([sid for m in machines for sid in m["user_ids"]], pool, "reading assignments")
        # A machine of a pool with allow_multiple_user_assignments may have several users: joined by ", ".
        return {m["name"]: ", ".join(sorted(_user_label(users.get(sid), sid) for sid in m["user_ids"])) for m in machines}

    def entitlements(self, pool: str) -> list[str]:
        sids = self._entitled_sids(pool, self._pool_id(pool), "reading entitlements")
        return self._entitlement_names(sids, pool, "reading entitlements")

    def set_entitlements(self, pool: str, groups: list[str], check_mode: bool = False) -> bool:
        wanted = _groups(groups, pool)
        action = "changing entitlements"
        pool_id = self._pool_id(pool)
        want = {self._sid_of(name, pool, action) for name in wanted}
        have = set(self._entitled_sids(pool, pool_id, action))
        add, remove = sorted(want - have), sorted(have - want)
        if check_mode or not (add or remove):
            return bool(add or remove)
        if add:
            answer = self._call("POST", "/entitlements/v1/desktop-pools", [{"id": pool_id, "ad_user_or_group_ids": add}], obj=pool, action=action)[2]
            self._check_bulk(answer, pool, "adding entitlements")
        if remove:
            answer = self._call("DELETE", "/entitlements/v1/desktop-pools", [{"id": pool_id, "ad_user_or_group_ids": remove}], obj=pool, action=action)[2]
            self._check_bulk(answer, pool, "removing entitlements")
        return True

    def close(self) -> None:
        """Log out (the refresh token is revoked). A failed logout is not worth failing a run for:
        the work is done and the tokens expire on their own."""
        if self._refresh:
            with contextlib.suppress(TwinsiteError):
                self._call("POST", "/logout", {"refresh_token": self._refresh}, obj=f"Horizon {self.host}", action="logout", auth=False)
        self._access = self._refresh = None

    # --- reads

    def _pool_id(self, pool: str) -> str:
        if pool not in self._pool_ids:
            pools = self._call("GET", "/inventory/v1/desktop-pools", obj=pool, action="lookup")[2] or []
            match = [p for p in pools if p.get("name") == pool] or [p for p in pools if str(p.get("name", "")).lower() == pool.lower()]
            if len(match) != 1:
                names = ", ".join(sorted(str(p.get("name")) for p in pools)) or "none"
                raise TwinsiteError(f"Horizon has no desktop pool '{pool}' (pools on {self.host}: {names})", obj=pool, action="lookup")
            self._pool_ids[pool] = match[0]["id"]
        return self._pool_ids[pool]

    def _machines(self, pool: str, pool_id: str, action: str) -> list[dict]:
        machines = self._list("/inventory/v1/machines", _equals("desktop_pool_id", pool_id), obj=pool, action=action)
        return [m for m in machines if m.get("desktop_pool_id", pool_id) == pool_id]  # filtered by the server; checked again here

    def _entitled_sids(self, pool: str, pool_id: str, action: str) -> list[str]:
        # 404 here, after the pool itself was found: a pool nobody is entitled to (not verified on a live server).
        status, _, answer = self._call("GET", f"/entitlements/v1/desktop-pools/{urllib.parse.quote(pool_id, safe='')}", obj=pool, action=action,
                                       missing_ok=True)
        return sorted(set((answer or {}).get("ad_user_or_group_ids") or [])) if status != 404 else []

    def _names(self, sids: list[str], pool: str, action: str) -> dict[str, dict | None]:
        """SID -> ADUserOrGroupSummary (None when Horizon does not know it), looked up in batches."""
        todo = sorted({s for s in sids if s not in self._principals})
        for start in range(0, len(todo), SID_BATCH):
            batch = todo[start:start + SID_BATCH]
            found = {p.get("id"): p for p in self._list("/external/v1/ad-users-or-groups", _any_id(batch), obj=pool, action=action)}
            for sid in batch:
                self._principals[sid] = found.get(sid)
        return {s: self._principals.get(s) for s in sids}

    def _entitlement_names(self, sids: list[str], pool: str, action: str) -> list[str]:
        """Entitled SIDs by login name (``town-staff``), as the model writes them; by display name
        (``town.example\\town-staff``) where two domains share a login name; the SID when unknown."""
        principals = self._names(sids, pool, action)
        short = [(p or {}).get("login_name") for p in principals.values()]
        names = []
        for sid, principal in principals.items():
            login = (principal or {}).get("login_name")
            if not login:
                names.append(sid)
            elif short.count(login) > 1:
                names.append(principal.get("display_name") or f"{principal.get('domain')}\\{login}")
            else:
                names.append(login)
        return sorted(names)

    def _sid_of(self, name: str, pool: str, action: str) -> str:
        """The SID of an AD user or group written as ``name``, ``DOMAIN\\name`` or ``name@domain``
        (or a SID, taken as is). The domain is compared with the DNS domain Horizon reports, or with
        its first label (the usual NetBIOS name)."""
        if name.upper().startswith("S-1-"):
            return name
        if name in self._by_name:
            return self._by_name[name]
        domain, login = name.split("\\", 1) if "\\" in name else (None, name)
        if domain is None and "@" in login:
            login, domain = login.rsplit("@", 1)
        found = self._list("/external/v1/ad-users-or-groups", _equals("login_name", login), obj=pool, action=action)
        found = [p for p in found if str(p.get("login_name", "")).lower() == login.lower()]
        if domain:
            wanted = domain.lower()
            found = [p for p in found if wanted in (str(p.get("domain", "")).lower(), str(p.get("domain", "")).lower().split(".")[0])]
        if not found:
            raise TwinsiteError(f"Horizon knows no AD user or group '{name}'; check the spelling and that its domain is one Horizon reads",
                                obj=pool, action=action)
        if len(found) > 1:
            where = ", ".join(sorted(str(p.get("display_name") or p.get("domain")) for p in found))
            raise TwinsiteError(f"'{name}' is in several domains ({where}); write it as DOMAIN\\{login}", obj=pool, action=action)
        self._principals[found[0]["id"]] = found[0]
        self._by_name[name] = found[0]["id"]
        return found[0]["id"]

    def _check_bulk(self, answer, pool: str, action: str) -> None:
        """Bulk entitlement calls answer 200 with a status per pool and per SID: raise on any failure."""
        def failed(part: dict) -> str | None:
            said = "; ".join(str(m) for m in part.get("error_messages") or [])
            return said or (f"HTTP {part['status_code']}" if (part.get("status_code") or 200) >= 400 else None)

        problems = []
        for item in answer if isinstance(answer, list) else []:
            if failed(item):
                problems.append(failed(item))
            for detail in item.get("details") or []:
                if failed(detail):
                    sid = detail.get("ad_user_or_group_id")
                    problems.append(f"{_user_label(self._principals.get(sid), sid)}: {failed(detail)}")
        if problems:
            raise TwinsiteError("Horizon refused: " + "; ".join(problems), obj=pool, action=action)

    # --- HTTP

    def _list(self, path: str, filter_: dict | None, obj: str, action: str) -> list[dict]:
        """Every item of a paged list endpoint: pages of ``page_size`` until HAS_MORE_RECORDS is no
        longer sent (or, from a server that never sends it, until a page comes back short)."""
        items: list = []
        seen: set = set()
        page = 1
        while True:
            query = {"page": page, "size": self.page_size}
            if filter_ is not None:
                query["filter"] = json.dumps(filter_, separators=(",", ":"))
            _, headers, answer = self._call("GET", path, query=query, obj=obj, action=action)
            batch = answer if isinstance(answer, list) else []
            keys = {json.dumps(i, sort_keys=True) if not isinstance(i, dict) or "id" not in i else i["id"] for i in batch}
            if not batch or keys <= seen:  # an empty page, or a server that ignores page: done
                return items
            seen |= keys
            items += batch
            more = headers.get("HAS_MORE_RECORDS")
            if (more is not None and more.strip().lower() in ("false", "0", "no")) or (more is None and len(batch) < self.page_size):
                return items
            page += 1

    def _login(self) -> None:
        obj = f"Horizon {self.host}"
        answer = self._call("POST", "/login", self._credentials, obj=obj, action="login", auth=False)[2] or {}
        if not answer.get("access_token"):
            raise TwinsiteError("the answer holds no access_token", obj=obj, action="login")
        self._access, self._refresh = answer["access_token"], answer.get("refresh_token")

    def _renew(self) -> bool:
        """A new access token from the refresh token (they last 30 minutes; a long run outlives one)."""
        if not self._refresh:
            return False
        try:
            answer = self._call("POST", "/refresh", {"refresh_token": self._refresh}, obj=f"Horizon {self.host}", action="login", auth=False)[2] or {}
        except TwinsiteError:
            return False
        self._access = answer.get("access_token") or None
        return bool(self._access)

    def _http(self, obj: str, action: str):
        """One ansible Request for the broker's life: its TLS context (CA bundle loaded once) is reused by every call."""
        if self._request is None:
            from ansible.module_utils.urls import Request, make_context

            if self.validate_certs and self.ca_path and not os.path.isfile(self.ca_path):
                raise TwinsiteError(f"the CA file {self.ca_path} does not exist; give ca_path the PEM file of the CA that signed the "
                                    "Connection Server's certificate", obj=obj, action=action)
            context = make_context(cafile=self.ca_path if self.validate_certs else None, validate_certs=self.validate_certs)
            self._request = Request(timeout=self.timeout, http_agent="twinsite.dc vdi broker", use_netrc=False, follow_redirects="none",
                                    context=context)
        return self._request

    def _call(self, method: str, path: str, body=None, query: dict | None = None, obj: str = "", action: str = "", auth: bool = True,
              missing_ok: bool = False, retry: bool = True):
        """One request; returns (status, headers, parsed JSON or None). Errors name ``obj`` and ``action``."""
        if auth and not self._access:
            self._login()
        url = self.base + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if auth:
            headers["Authorization"] = f"Bearer {self._access}"
        data = json.dumps(body).encode() if body is not None else None
        where = f"{method} /rest{path}"
        try:
            with self._http(obj, action).open(method, url, data=data, headers=headers) as response:
                status, answer_headers, text = response.status, response.headers, response.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 404 and missing_ok:
                return 404, exc.headers, None
            if exc.code == 401 and auth and retry and self._renew():
                return self._call(method, path, body, query, obj, action, auth, missing_ok, retry=False)
            raise TwinsiteError(f"{where}: {_http_reason(exc, login=path == '/login')}", obj=obj, action=action) from None
        except urllib.error.URLError as exc:
            raise TwinsiteError(f"cannot reach {self.host} ({_url_reason(exc)}); check the url and that the Connection Server is up"
                                + ("; give ca_path the CA that signed its certificate" if "CERTIFICATE" in str(exc.reason).upper() else ""),
                                obj=obj, action=action) from None
        except (OSError, ValueError) as exc:  # timeouts, resets, bad URLs
            raise TwinsiteError(f"{where}: {exc}", obj=obj, action=action) from None
        try:
            return status, answer_headers, json.loads(text) if text.strip() else None
        except ValueError:
            raise TwinsiteError(f"{where}: the answer is not JSON ({text[:80]!r})", obj=obj, action=action) from None


def _user_label(principal: dict | None, sid: str | None) -> str:
    """``town.example\\jdoe`` (Horizon's display_name, "login name with domain"); the SID when unknown."""
    if not principal:
        return str(sid) if sid else "(unknown user)"
    return principal.get("display_name") or principal.get("login_name") or str(sid)


HINTS = {400: "bad request", 401: "not logged in or the session expired",
         403: "the Horizon user lacks the privilege for this (POOL_VIEW, MACHINE_VIEW or POOL_ENTITLE on the pool's access group)",
         404: "not found", 409: "conflict", 500: "Horizon internal error", 503: "Horizon is not available"}


def _http_reason(exc: urllib.error.HTTPError, login: bool) -> str:
    """``HTTP <code>, <what it means>: <Horizon's own words>``. Horizon's error bodies carry
    ``error_message`` (and sometimes ``errors: [{error_key, error_message}]``); the request body,
    and so the password, is never part of the message."""
    try:
        body = json.loads(exc.read() or b"null")
    except (ValueError, OSError):
        body = None
    said = []
    if isinstance(body, dict):
        said += [str(body["error_message"])] if body.get("error_message") else []
        said += [str(m) for m in body.get("error_messages") or []]
        said += [str(e.get("error_message")) for e in body.get("errors") or [] if isinstance(e, dict) and e.get("error_message")]
    hint = "login refused: check username, password and domain" if login and exc.code in (400, 401) else HINTS.get(exc.code, exc.reason)
    return f"HTTP {exc.code}, {hint}" + (f": {'; '.join(said)}" if said else "")


def _url_reason(exc: urllib.error.URLError) -> str:
    reason = exc.reason
    return getattr(reason, "strerror", None) or getattr(reason, "reason", None) or str(reason)
