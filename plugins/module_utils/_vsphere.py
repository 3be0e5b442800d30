# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one vSphere client of twinsite (pyvmomi). Every SDK call sits behind a small method that
tests patch. Reads are bulk: one PropertyCollector retrieve through a ContainerView."""

from __future__ import annotations

import ssl

from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError, connection_spec

try:
    from pyVim.connect import Disconnect, SmartConnect
    from pyVmomi import vim, vmodl

    HAS_PYVMOMI = True
    PYVMOMI_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the module with missing_required_lib
    HAS_PYVMOMI = False
    PYVMOMI_IMPORT_ERROR = exc


def argument_spec() -> dict:
    return connection_spec(443, "TWINSITE_VSPHERE")


class VsphereClient:
    def __init__(self, hostname, username, password, port=443, validate_certs=True, ca_bundle=None):
        self.endpoint = f"{hostname}:{port}"
        self._args = {"host": hostname, "port": port, "user": username, "pwd": password}
        self._ssl = _ssl_context(validate_certs, ca_bundle)
        self.si = None

    @classmethod
    def from_params(cls, params: dict) -> "VsphereClient":
        keys = ("hostname", "username", "password", "port", "validate_certs", "ca_bundle")
        return cls(**{k: params.get(k) for k in keys})

    def connect(self):
        try:
            self.si = SmartConnect(sslContext=self._ssl, **self._args)
        except vim.fault.InvalidLogin:
            raise TwinsiteError("wrong user name or password", obj=f"vCenter {self.endpoint}", action="login") from None
        except ssl.SSLError as exc:
            raise TwinsiteError(
                f"TLS verification failed ({exc.reason}); pass the CA that signed vCenter's certificate as ca_bundle",
                obj=f"vCenter {self.endpoint}", action="login") from None
        except (OSError, vmodl.MethodFault) as exc:
            raise TwinsiteError(str(getattr(exc, "msg", exc)), obj=f"vCenter {self.endpoint}", action="login") from None
        return self

    def close(self):
        if self.si is not None:
            Disconnect(self.si)
            self.si = None

    def about(self) -> dict:
        about = self.si.content.about
        return {"name": about.fullName, "version": about.version, "api_version": about.apiVersion}

    def retrieve(self, obj_type, properties: list[str], page_size: int = 1000) -> list[dict]:
        """All objects of ``obj_type`` with ``properties``, in one PropertyCollector retrieve (paged)."""
        content = self.si.content
        view = content.viewManager.CreateContainerView(content.rootFolder, [obj_type], True)
        try:
            spec = vmodl.query.PropertyCollector.FilterSpec(
                objectSet=[vmodl.query.PropertyCollector.ObjectSpec(
                    obj=view, skip=True,
                    selectSet=[vmodl.query.PropertyCollector.TraversalSpec(name="view", path="view", skip=False, type=vim.view.ContainerView)],
                )],
                propSet=[vmodl.query.PropertyCollector.PropertySpec(type=obj_type, pathSet=properties)],
            )
            collector = content.propertyCollector
            result = collector.RetrievePropertiesEx([spec], vmodl.query.PropertyCollector.RetrieveOptions(maxObjects=page_size))
            rows = []
            while result:
                rows += [{"_obj": o.obj, **{p.name: p.val for p in o.propSet}} for o in result.objects]
                result = collector.ContinueRetrievePropertiesEx(result.token) if result.token else None
            return rows
        finally:
            view.Destroy()


def _ssl_context(validate_certs: bool, ca_bundle: str | None) -> ssl.SSLContext:
    if not validate_certs:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    return ssl.create_default_context(cafile=ca_bundle) if ca_bundle else ssl.create_default_context()
