# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one Proxmox VE client of twinsite (proxmoxer). Bulk reads: one /cluster/resources call."""

from __future__ import annotations

import re

from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError, check_ca_bundle, connection_spec, wait_until

# PVE's answer when a new VM's vmid (a clone's, a restore's) is held by another VM. /cluster/nextid
# reserves nothing, so a VM made by someone else between choosing a vmid and using it holds it.
VMID_TAKEN = re.compile(r"VM \d+ already exists|config file already exists")

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
        check_ca_bundle(ca_bundle if validate_certs else None, f"Proxmox VE {self.endpoint}")
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
        return self._call("GET", path, params)

    def post(self, path: str, **params):
        return self._call("POST", path, params)

    def put(self, path: str, **params):
        return self._call("PUT", path, params)

    def delete(self, path: str, **params):
        return self._call("DELETE", path, params)

    def _call(self, method: str, path: str, params: dict):
        try:
            return getattr(self.api(path), method.lower())(**params)
        except ResourceException as exc:
            raise TwinsiteError(f"{exc.status_code} {exc.status_message}: {exc.content}".rstrip(": ") + _field_errors(exc), obj=path, action=method) from None
        except requests.exceptions.RequestException as exc:
            raise TwinsiteError(_reason(exc), obj=path, action=method) from None

    def wait_task(self, node: str, upid: str, obj: str, action: str, timeout: float = 600.0) -> dict:
        """Wait for a Proxmox task (UPID) to stop; raise with its exit status unless it is OK
        (e.g. "clone of VM 9000 to 'vdi-017' failed: TASK ERROR: VM is locked (backup)")."""

        def done():
            status = self.get(f"nodes/{node}/tasks/{upid}/status")
            if status.get("status") != "stopped":
                return None
            if status.get("exitstatus") != "OK":
                raise TwinsiteError(str(status.get("exitstatus") or "task failed"), obj=obj, action=action)
            return status

        return wait_until(done, obj=obj, action=action, timeout=timeout)

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

    # --- VMs (twinsite.dc.vm) ---
    # One API call each: the seam the VM backend's tests patch. Task-starting calls return a UPID.

    def next_vmid(self) -> int:
        return int(self.get("cluster/nextid"))

    def vm_config(self, node: str, vmid: int) -> dict:
        return self.get(f"nodes/{node}/qemu/{vmid}/config")

    def clone_vm(self, node: str, vmid: int, **params) -> str:
        return self.post(f"nodes/{node}/qemu/{vmid}/clone", **params)

    def update_vm_config(self, node: str, vmid: int, **params):
        return self.put(f"nodes/{node}/qemu/{vmid}/config", **params)

    def resize_vm_disk(self, node: str, vmid: int, disk: str, size: str):
        return self.put(f"nodes/{node}/qemu/{vmid}/resize", disk=disk, size=size)

    def vm_power(self, node: str, vmid: int, action: str) -> str:
        return self.post(f"nodes/{node}/qemu/{vmid}/status/{action}")

    def destroy_vm(self, node: str, vmid: int) -> str:
        return self.delete(f"nodes/{node}/qemu/{vmid}", purge=1)

    # --- snapshots, networks, cluster settings ---
    # Proxmox's REST paths are the seam here: the modules call get/post/put/delete through these
    # names so unit tests patch one method per feature.

    def snapshots(self, node: str, vmid: int) -> list[dict]:
        return self.get(f"nodes/{node}/qemu/{vmid}/snapshot")

    def sdn_vnets(self) -> list[dict]:
        return self.get("cluster/sdn/vnets")

    def sdn_apply(self):
        """SDN changes are pending until applied cluster-wide (PUT /cluster/sdn), as in the web UI."""
        return self.put("cluster/sdn")

    def ha_groups(self) -> list[dict]:
        return self.get("cluster/ha/groups")

    def ha_resources(self) -> list[dict]:
        return self.get("cluster/ha/resources")


def _reason(exc: Exception) -> str:
    """The useful end of a requests error ("Connection refused", "self-signed certificate in
    certificate chain") instead of urllib3's whole retry story; the full text when there is none."""
    text = str(exc)
    found = re.search(r"certificate verify failed: ([^(')]+)", text) or re.search(r"\[Errno -?\d+\] ([^('\")]+)", text)
    return found.group(1).strip() if found else text


def _field_errors(exc) -> str:
    """PVE's per-parameter reasons of a 400 ("schedule: neither 'starttime' nor 'schedule' were set"),
    which "Parameter verification failed." alone does not say."""
    errors = getattr(exc, "errors", None)
    if not isinstance(errors, dict) or not errors:
        return ""
    return " (" + "; ".join(f"{k}: {str(v).strip()}" for k, v in sorted(errors.items())) + ")"
