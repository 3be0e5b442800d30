# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection profiles of a VDI pool for zero and thin clients: the files a client (or its
management tool) is given so that it starts the pool's desktop with no question asked.

Pure rendering, deterministic (sorted keys, no timestamps), so a pool that did not change gives
byte-identical files and the task that writes them reports no change. Every value is checked for
line breaks and control characters: a name with a newline would otherwise add keys to the file.
Formats and their sources are in docs/vdi-brokers.md.
"""

from __future__ import annotations

import re
import urllib.parse

from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError

PROTOCOLS = ("rdp", "spice", "blast", "pcoip")
HORIZON_PROTOCOLS = {"blast": "BLAST", "pcoip": "PCOIP", "rdp": "RDP"}
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def profiles(pool: dict, broker: dict | None, desktops: list[str]) -> dict[str, str]:
    """File name -> content of the pool's connection profiles.

    ``pool``: ``{"name", "protocol", "display_name", "address", "port", "gateway", "tls_port"}``
    (only ``name`` is always needed); ``broker``: the broker configuration of open_broker (None:
    no broker). ``desktops`` are the pool's desktop names; no profile lists them (a client
    connects to the one broker or gateway address, which picks the desktop) but they are checked
    like every other value.

    - Horizon broker: ``<pool>.horizon-uri`` (a vmware-view URI) and ``<pool>.ini``.
    - no broker or the file broker: ``<pool>.rdp`` (protocol rdp) or ``<pool>.vv`` (protocol spice).
    """
    name = pool.get("name") if isinstance(pool, dict) else None
    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name):
        raise TwinsiteError(f"a pool name must be letters, digits, '.', '_' and '-' (it names the profile files), found {name!r}",
                            obj="VDI pool", action="rendering profiles")
    kind = (broker or {}).get("type") or "none"
    protocol = pool.get("protocol") or ("blast" if kind == "horizon" else "rdp")
    if protocol not in PROTOCOLS:
        raise TwinsiteError(f"unknown protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}", obj=name, action="rendering profiles")
    for key, value in sorted(pool.items()):
        if isinstance(value, str):
            _check(value, f"{key}", name)
    for desktop in desktops or []:
        _check(desktop, "desktop name", name)
    for key in ("port", "tls_port"):
        value = pool.get(key)
        if value is not None and (isinstance(value, bool) or not str(value).isdigit() or not 0 < int(value) < 65536):
            raise TwinsiteError(f"{key} must be a TCP port (1-65535), found {value!r}", obj=name, action="rendering profiles")
    if kind == "horizon":
        if protocol not in HORIZON_PROTOCOLS:
            raise TwinsiteError(f"Horizon does not broker {protocol}; use blast, pcoip or rdp", obj=name, action="rendering profiles")
        return _horizon(pool, name, protocol, broker)
    if protocol in ("blast", "pcoip"):
        raise TwinsiteError(f"{protocol} needs a Horizon broker; without one use rdp or spice", obj=name, action="rendering profiles")
    address = pool.get("address")
    if not address:
        raise TwinsiteError(f"{protocol} needs the pool's address: the one host name clients connect to (the RDP host or gateway, the SPICE proxy)",
                            obj=name, action="rendering profiles")
    if protocol == "rdp":
        return {f"{name}.rdp": _rdp(pool, address)}
    return {f"{name}.vv": _spice(pool, name, address)}


def _check(value: str, what: str, pool: str) -> None:
    if CONTROL.search(value):
        raise TwinsiteError(f"{what} {value!r} holds a line break or control character, which would add lines to the profile",
                            obj=pool, action="rendering profiles")


def horizon_uri(broker_url: str, target: str, protocol: str) -> str:
    """``vmware-view://<server>[:port]/<display name>?action=start-session&desktopProtocol=<RDP|PCOIP|BLAST>``.

    Syntax of the Horizon Client "Using URIs to configure Horizon Client" chapter: the path part is
    the pool's display name, percent-encoded (a space is %20); the authority is the Connection
    Server, with the port only when it is not the default 443."""
    parsed = urllib.parse.urlsplit(broker_url if "://" in broker_url else f"https://{broker_url}")
    try:
        host, port = parsed.hostname or "", parsed.port
    except ValueError:
        host = ""
    if not host:
        raise TwinsiteError(f"the broker url {broker_url!r} names no host", obj=target, action="rendering profiles")
    authority = host if port in (None, 443) else f"{host}:{port}"
    return (f"vmware-view://{authority}/{urllib.parse.quote(target, safe='')}"
            f"?action=start-session&desktopProtocol={HORIZON_PROTOCOLS[protocol]}")


def _horizon(pool: dict, name: str, protocol: str, broker: dict) -> dict[str, str]:
    url = broker.get("url") or ""
    _check(url, "broker url", name)
    uri = horizon_uri(url, pool.get("display_name") or name, protocol)
    server = uri.split("/")[2]
    ini = {"broker": server, "name": name, "protocol": protocol, "uri": uri}
    if pool.get("display_name"):
        ini["display_name"] = pool["display_name"]
    return {f"{name}.horizon-uri": uri + "\n", f"{name}.ini": _ini("pool", ini)}


def _ini(section: str, values: dict) -> str:
    return f"[{section}]\n" + "".join(f"{k} = {v}\n" for k, v in sorted(values.items()))


def _rdp(pool: dict, address: str) -> str:
    """A .rdp file (Microsoft "Supported RDP properties"): full screen on every monitor, local
    printers and sound, reconnects, and the user types their own credentials (username empty)."""
    port = pool.get("port")
    settings = {
        "full address:s": f"{address}:{port}" if port else address,
        "username:s": "",
        "screen mode id:i": 2,
        "use multimon:i": 1,
        "redirectprinters:i": 1,
        "audiomode:i": 0,
        "autoreconnection enabled:i": 1,
        "prompt for credentials:i": 1,
    }
    if pool.get("gateway"):
        # 1 = always through the RD Gateway; profile usage 1 = these explicit settings, not the client's defaults.
        settings.update({"gatewayhostname:s": pool["gateway"], "gatewayusagemethod:i": 1, "gatewayprofileusagemethod:i": 1})
    return "".join(f"{key}:{value}\r\n" for key, value in sorted(settings.items()))


def _spice(pool: dict, name: str, address: str) -> str:
    """A virt-viewer connection file (remote-viewer(1), CONNECTION FILE): kept after use
    (delete-this-file=0) because a zero client opens the same file at every boot."""
    values = {"type": "spice", "host": address, "port": pool.get("port") or 5900, "title": pool.get("display_name") or name,
              "fullscreen": 1, "delete-this-file": 0}
    if pool.get("tls_port"):
        values["tls-port"] = pool["tls_port"]
    return "[virt-viewer]\n" + "".join(f"{k}={v}\n" for k, v in sorted(values.items()))
