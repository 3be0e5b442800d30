# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one Proxmox VE client of twinsite (proxmoxer). Bulk reads: one /cluster/resources call."""

from __future__ import annotations

import re

from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError, connection_spec

try:
    import requests
    from proxmoxer import AuthenticationError, ProxmoxAPI
    from proxmoxer.core import ResourceException

    HAS_PROXMOXER = True
    PROXMOXER_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the module with missing_required_lib
    HAS_PROXMOXER = False
    PROXMOXER_IMPORT_ERROR = exc


def argument_spec() -> dict:
    return connection_spec(8006, "TWINSITE_PVE")


class ProxmoxClient:
    def __init__(self, hostname, username, password, port=8006, validate_certs=True, ca_bundle=None):
        self.endpoint = f"{hostname}:{port}"
        # requests reads REQUESTS_CA_BUNDLE from the environment even where verify=False is set:
        # pass the CA explicitly so what the user asked for is what happens.
        verify = (ca_bundle or True) if validate_certs else False
        self._args = {"host": hostname, "port": port, "user": username, "password": password, "verify_ssl": verify}
        self.api = None

    @classmethod
    def from_params(cls, params: dict) -> "ProxmoxClient":
        keys = ("hostname", "username", "password", "port", "validate_certs", "ca_bundle")
        return cls(**{k: params.get(k) for k in keys})

    def connect(self):
        obj = f"Proxmox VE {self.endpoint}"
        try:
            self.api = ProxmoxAPI(**self._args)
        except AuthenticationError:
            raise TwinsiteError("wrong user name or password", obj=obj, action="login") from None
        except requests.exceptions.SSLError as exc:
            raise TwinsiteError(
                f"TLS verification failed ({_reason(exc)}); pass the CA that signed the cluster's certificate as ca_bundle",
                obj=obj, action="login") from None
        except requests.exceptions.ConnectionError as exc:
            raise TwinsiteError(f"cannot connect ({_reason(exc)}); check hostname and port, and that the API is up",
                                obj=obj, action="login") from None
        except (requests.exceptions.RequestException, ResourceException) as exc:
            raise TwinsiteError(str(exc), obj=obj, action="login") from None
        return self

    def get(self, path: str, **params):
        try:
            return self.api(path).get(**params)
        except ResourceException as exc:
            raise TwinsiteError(f"{exc.status_code} {exc.status_message}: {exc.content}", obj=path, action="GET") from None
        except requests.exceptions.RequestException as exc:
            raise TwinsiteError(str(exc), obj=path, action="GET") from None

    def version(self) -> dict:
        return self.get("version")

    def resources(self, type_: str | None = None) -> list[dict]:
        return self.get("cluster/resources", **({"type": type_} if type_ else {}))

    def cluster_status(self) -> list[dict]:
        return self.get("cluster/status")

    def guest_config(self, node: str, kind: str, vmid: int) -> dict:
        """The config of one guest; ``kind`` is ``qemu`` or ``lxc``. One call per guest: never in a loop
        over a whole cluster without bounding it (see the inventory plugin's ``want_config``)."""
        return self.get(f"nodes/{node}/{kind}/{vmid}/config")


def _reason(exc: Exception) -> str:
    """The useful end of a requests error ("Connection refused", "self-signed certificate in
    certificate chain") instead of urllib3's whole retry story; the full text when there is none."""
    text = str(exc)
    found = re.search(r"certificate verify failed: ([^(')]+)", text) or re.search(r"\[Errno -?\d+\] ([^('\")]+)", text)
    return found.group(1).strip() if found else text
