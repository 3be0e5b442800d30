# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one vSphere client of twinsite (pyvmomi). Every SDK call sits behind a small method that
tests patch. Reads are bulk: one PropertyCollector retrieve through a ContainerView."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request

from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError, check_ca_bundle, connection_spec, wait_until

try:
    from pyVim.connect import SmartConnect
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
        check_ca_bundle(ca_bundle if validate_certs else None, f"vCenter {self.endpoint}")
        self._ssl = _ssl_context(validate_certs, ca_bundle)
        self.si = self.content = None
        self._rest_session = None
        self._category_names: dict[str, str] = {}

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
                f"TLS verification failed ({getattr(exc, 'verify_message', None) or exc.reason}); "
                "pass the CA that signed vCenter's certificate as ca_bundle",
                obj=f"vCenter {self.endpoint}", action="login") from None
        except OSError as exc:
            raise TwinsiteError(f"cannot connect ({exc.strerror or exc}); check hostname and port, and that vCenter is up",
                                obj=f"vCenter {self.endpoint}", action="login") from None
        except vmodl.MethodFault as exc:
            raise TwinsiteError(str(exc.msg), obj=f"vCenter {self.endpoint}", action="login") from None
        # Read once and kept: every ``si.content`` would be another round trip to vCenter.
        self.content = self.si.RetrieveContent()
        return self

    def close(self):
        self.close_rest()
        if self.si is not None:
            try:
                self.content.sessionManager.Logout()
            except (OSError, vmodl.MethodFault):
                pass  # the session expires on its own; a failed logout must not hide the error before it
            finally:
                self.si = self.content = None

    def about(self) -> dict:
        about = self.content.about
        return {"name": about.fullName, "version": about.version, "api_version": about.apiVersion}

    def retrieve(self, obj_type, properties: list[str], page_size: int = 1000) -> list[dict]:
        """All objects of ``obj_type`` with ``properties``, in one PropertyCollector retrieve (paged)."""
        return self.retrieve_many({obj_type: properties}, page_size)[obj_type]

    def retrieve_many(self, properties: dict, page_size: int = 1000) -> dict:
        """Objects of several types, each with its own properties, in ONE PropertyCollector retrieve.

        ``properties`` maps a type (``vim.VirtualMachine``) to its property paths. One ContainerView
        holds every object of those types, so VMs and the hosts, networks and datastores they point
        at come back together and are joined in memory: no call per object. Pages of ``page_size``
        objects keep each answer bounded (RetrievePropertiesEx, then ContinueRetrievePropertiesEx).
        Returns ``{type: [{"_obj": moref, path: value, ...}]}``; a subtype (a DVS port group is a
        ``vim.Network``) lands under the first type it is an instance of.
        """
        try:
            return self._retrieve_many(properties, page_size)
        except vmodl.MethodFault as fault:  # NoPermission, a property this vCenter does not know...
            raise TwinsiteError(f"{type(fault).__name__.rsplit('.', 1)[-1]}: {fault.msg}",
                                obj=f"vCenter {self.endpoint}", action="reading the inventory") from None
        except OSError as exc:
            raise TwinsiteError(f"the connection broke ({exc})", obj=f"vCenter {self.endpoint}", action="reading the inventory") from None

    def retrieve_objects(self, objects: list, obj_type, properties: list[str]) -> list[dict]:
        """``properties`` of the given objects only (one RetrievePropertiesEx, no ContainerView): what
        a module reads once it knows which objects it wants, at a cost that does not grow with the
        vCenter. Rows as in retrieve_many, in no particular order; a deleted object is left out."""
        if not objects:
            return []
        try:
            spec = vmodl.query.PropertyCollector.FilterSpec(
                objectSet=[vmodl.query.PropertyCollector.ObjectSpec(obj=o, skip=False) for o in objects],
                propSet=[vmodl.query.PropertyCollector.PropertySpec(type=obj_type, pathSet=properties)])
            collector = self.content.propertyCollector
            result = collector.RetrievePropertiesEx([spec], vmodl.query.PropertyCollector.RetrieveOptions())
            rows = []
            while result:
                rows += [{"_obj": o.obj, **{p.name: p.val for p in o.propSet}} for o in result.objects]
                result = collector.ContinueRetrievePropertiesEx(result.token) if result.token else None
            return rows
        except vmodl.fault.ManagedObjectNotFound:
            return [row for o in objects if len(objects) > 1 for row in self.retrieve_objects([o], obj_type, properties)]
        except vmodl.MethodFault as fault:
            raise TwinsiteError(f"{type(fault).__name__.rsplit('.', 1)[-1]}: {fault.msg}",
                                obj=f"vCenter {self.endpoint}", action="reading the inventory") from None
        except OSError as exc:
            raise TwinsiteError(f"the connection broke ({exc})", obj=f"vCenter {self.endpoint}", action="reading the inventory") from None

    def _retrieve_many(self, properties: dict, page_size: int) -> dict:
        content = self.content
        view = content.viewManager.CreateContainerView(content.rootFolder, list(properties), True)
        try:
            spec = vmodl.query.PropertyCollector.FilterSpec(
                objectSet=[vmodl.query.PropertyCollector.ObjectSpec(
                    obj=view, skip=True,
                    selectSet=[vmodl.query.PropertyCollector.TraversalSpec(name="view", path="view", skip=False, type=vim.view.ContainerView)],
                )],
                propSet=[vmodl.query.PropertyCollector.PropertySpec(type=t, pathSet=paths) for t, paths in properties.items()],
            )
            collector = content.propertyCollector
            result = collector.RetrievePropertiesEx([spec], vmodl.query.PropertyCollector.RetrieveOptions(maxObjects=page_size))
            rows = {t: [] for t in properties}
            while result:
                for o in result.objects:
                    kind = next(t for t in properties if isinstance(o.obj, t))
                    rows[kind].append({"_obj": o.obj, **{p.name: p.val for p in o.propSet}})
                result = collector.ContinueRetrievePropertiesEx(result.token) if result.token else None
            return rows
        finally:
            view.Destroy()

    def tags(self) -> dict[str, list[dict]]:
        """vSphere tags by object id: ``{"vm-42": [{"category": "backup", "name": "daily"}]}``.

        Tags live in vCenter's vAPI tagging service (REST), not in the SOAP API. The calls grow with
        the number of tags and categories (one read each, to name them), never with the number of
        VMs: associations come in one ``list-attached-objects-on-tags`` call. Log-in is the same
        user and TLS settings as the SOAP session.
        """
        self._rest_session = self._rest("POST", "com/vmware/cis/session", basic_auth=True)
        try:
            tag_ids = self._rest("GET", "com/vmware/cis/tagging/tag") or []
            tags = {i: self._rest("GET", f"com/vmware/cis/tagging/tag/id:{urllib.parse.quote(i, safe='')}") for i in tag_ids}
            categories = {c: self._rest("GET", f"com/vmware/cis/tagging/category/id:{urllib.parse.quote(c, safe='')}")["name"]
                          for c in {t["category_id"] for t in tags.values()}}
            attached = self._rest("POST", "com/vmware/cis/tagging/tag-association?~action=list-attached-objects-on-tags",
                                  {"tag_ids": tag_ids}) if tag_ids else []
        finally:
            self._rest("DELETE", "com/vmware/cis/session")
            self._rest_session = None
        by_object: dict[str, list[dict]] = {}
        for item in attached or []:
            tag = tags[item["tag_id"]]
            for obj in item.get("object_ids") or []:
                by_object.setdefault(obj["id"], []).append({"category": categories[tag["category_id"]], "name": tag["name"]})
        return by_object

    # --- tags of one VM (twinsite.dc.vm): one REST session per module run, opened on first use ---

    def _tagging(self, method: str, path: str, body: dict | None = None, action: str = "tagging"):
        if self._rest_session is None:
            self._rest_session = self._rest("POST", "com/vmware/cis/session", basic_auth=True, action=action)
        return self._rest(method, f"com/vmware/cis/tagging/{path}", body, action=action)

    def close_rest(self) -> None:
        if self._rest_session is not None:
            try:
                self._rest("DELETE", "com/vmware/cis/session")
            except TwinsiteError:
                pass  # the session expires on its own
            finally:
                self._rest_session = None

    def attached_tags(self, moid: str, obj_type: str = "VirtualMachine") -> list[dict]:
        """The tags attached to one object: ``[{"id", "name", "category"}]`` (category by name)."""
        ids = self._tagging("POST", "tag-association?~action=list-attached-tags",
                            {"object_id": {"type": obj_type, "id": moid}}, action="reading tags") or []
        out = []
        for tag_id in ids:
            tag = self._tagging("GET", f"tag/id:{urllib.parse.quote(tag_id, safe='')}", action="reading tags")
            out.append({"id": tag_id, "name": tag["name"], "category": self._category_name(tag["category_id"])})
        return out

    def _category_name(self, category_id: str) -> str:
        cache = self._category_names
        if category_id not in cache:
            cache[category_id] = self._tagging("GET", f"category/id:{urllib.parse.quote(category_id, safe='')}", action="reading tags")["name"]
        return cache[category_id]

    def find_or_create_tag(self, category: str, name: str, obj_type: str = "VirtualMachine") -> str:
        """The id of tag ``name`` in ``category``, creating either when missing (category: many tags
        per object, for ``obj_type``)."""
        cat_id = next((c for c in self._tagging("GET", "category", action="reading tags") or [] if self._category_name(c) == category), None)
        if cat_id is None:
            cat_id = self._tagging("POST", "category", {"create_spec": {
                "name": category, "description": "made by twinsite.dc", "cardinality": "MULTIPLE", "associable_types": [obj_type]}},
                action=f"creating tag category '{category}'")
            self._category_names[cat_id] = category
        for tag_id in self._tagging("POST", f"tag/id:{urllib.parse.quote(cat_id, safe='')}?~action=list-tags-for-category",
                                    action="reading tags") or []:
            if self._tagging("GET", f"tag/id:{urllib.parse.quote(tag_id, safe='')}", action="reading tags")["name"] == name:
                return tag_id
        return self._tagging("POST", "tag", {"create_spec": {"name": name, "description": "made by twinsite.dc", "category_id": cat_id}},
                             action=f"creating tag '{category}:{name}'")

    def attach_tag(self, tag_id: str, moid: str, obj_type: str = "VirtualMachine") -> None:
        self._tagging("POST", f"tag-association/id:{urllib.parse.quote(tag_id, safe='')}?~action=attach",
                      {"object_id": {"type": obj_type, "id": moid}}, action="attaching a tag")

    def detach_tag(self, tag_id: str, moid: str, obj_type: str = "VirtualMachine") -> None:
        self._tagging("POST", f"tag-association/id:{urllib.parse.quote(tag_id, safe='')}?~action=detach",
                      {"object_id": {"type": obj_type, "id": moid}}, action="detaching a tag")

    def _rest(self, method: str, path: str, body: dict | None = None, basic_auth: bool = False, action: str = "reading tags"):
        """One call to vCenter's vAPI REST endpoint (``/rest/...``); returns its ``value``."""
        host, port = self._args["host"], self._args["port"]
        request = urllib.request.Request(f"https://{host}:{port}/rest/{path}", method=method,
                                         data=json.dumps(body).encode() if body is not None else None,
                                         headers={"Content-Type": "application/json", "Accept": "application/json"})
        if basic_auth:
            login = base64.b64encode(f"{self._args['user']}:{self._args['pwd']}".encode()).decode()
            request.add_header("Authorization", f"Basic {login}")
        elif self._rest_session:
            request.add_header("vmware-api-session-id", self._rest_session)
        obj = f"vCenter {self.endpoint} (/rest/{path.split('?')[0]})"
        try:
            with urllib.request.urlopen(request, context=self._ssl, timeout=60) as answer:  # noqa: S310 - https built above
                text = answer.read()
        except urllib.error.HTTPError as exc:
            hint = {401: "wrong user name or password", 403: "the user lacks the tagging privilege",
                    404: "no vAPI tagging service here (an ESXi host, or a simulator without it)"}
            raise TwinsiteError(f"HTTP {exc.code}, {hint.get(exc.code, exc.reason)}", obj=obj, action=action) from None
        except urllib.error.URLError as exc:
            raise TwinsiteError(f"cannot connect ({exc.reason})", obj=obj, action=action) from None
        return json.loads(text).get("value") if text.strip() else None

    def wait_task(self, task, obj: str, action: str, timeout: float = 600.0):
        """Wait for a vSphere task; return its result, or raise naming the object, action and fault."""

        def done():
            info = task.info
            if info.state == vim.TaskInfo.State.success:
                return info.result if info.result is not None else True
            if info.state == vim.TaskInfo.State.error:
                raise TwinsiteError(fault_message(info.error), obj=obj, action=action)
            return None

        result = wait_until(done, obj=obj, action=action, timeout=timeout)
        return None if result is True else result

    # --- VMs (twinsite.dc.vm) ---
    # One SDK call each: the seam the VM backend's tests patch. They return tasks for wait_task.

    def find_by_inventory_path(self, path: str):
        """The object at an inventory path ("DC-Town/vm/Servers", "DC-Town/host/Cluster-Primary"), or None."""
        return self.content.searchIndex.FindByInventoryPath(path)

    def clone_vm_task(self, template, folder, name: str, spec):
        return template.CloneVM_Task(folder=folder, name=name, spec=spec)

    def reconfigure_vm_task(self, vm, spec):
        return vm.ReconfigVM_Task(spec=spec)

    def power_vm_task(self, vm, action: str):
        """``action``: on, off or reset. Hard power operations: they need no VMware Tools in the guest."""
        return {"on": vm.PowerOnVM_Task, "off": vm.PowerOffVM_Task, "reset": vm.ResetVM_Task}[action]()

    def destroy_vm_task(self, vm):
        return vm.Destroy_Task()

    # --- snapshots, networks, cluster settings ---
    # One-line SDK calls: the seam the snapshot, network and cluster modules' unit tests patch.

    def create_snapshot(self, vm, name: str, description: str, memory: bool, quiesce: bool):
        return vm.CreateSnapshot_Task(name=name, description=description, memory=memory, quiesce=quiesce)

    def revert_snapshot(self, snapshot):
        return snapshot.RevertToSnapshot_Task()

    def remove_snapshot(self, snapshot):
        return snapshot.RemoveSnapshot_Task(removeChildren=False)

    def add_dv_portgroup(self, dvs, spec):
        return dvs.AddDVPortgroup_Task(spec=[spec])

    def reconfigure_dv_portgroup(self, portgroup, spec):
        return portgroup.ReconfigureDVPortgroup_Task(spec=spec)

    def destroy(self, managed_object):
        return managed_object.Destroy_Task()

    def host_portgroups(self, network_system) -> list:
        return network_system.networkInfo.portgroup

    def add_host_portgroup(self, network_system, spec):
        network_system.AddPortGroup(portgrp=spec)

    def update_host_portgroup(self, network_system, name: str, spec):
        network_system.UpdatePortGroup(pgName=name, portgrp=spec)

    def remove_host_portgroup(self, network_system, name: str):
        network_system.RemovePortGroup(pgName=name)

    def reconfigure_cluster(self, cluster, spec):
        return cluster.ReconfigureComputeResource_Task(spec=spec, modify=True)

    def add_host(self, cluster, spec):
        return cluster.AddHost_Task(spec=spec, asConnected=True)

    def wait_task_state(self, task, obj: str, action: str, timeout: float = 600.0) -> None:
        """Like wait_task, but reads only info.state and info.error: vcsim sets a snapshot as the
        entity of revert/remove tasks, which pyvmomi cannot read back as a TaskInfo."""

        def done():
            spec = vmodl.query.PropertyCollector.FilterSpec(
                objectSet=[vmodl.query.PropertyCollector.ObjectSpec(obj=task)],
                propSet=[vmodl.query.PropertyCollector.PropertySpec(type=vim.Task, pathSet=["info.state", "info.error"])])
            found = {p.name: p.val for o in self.content.propertyCollector.RetrieveContents([spec]) for p in o.propSet}
            if found.get("info.state") == vim.TaskInfo.State.success:
                return True
            if found.get("info.state") == vim.TaskInfo.State.error:
                raise TwinsiteError(fault_message(found.get("info.error")), obj=obj, action=action)
            return None

        wait_until(done, obj=obj, action=action, timeout=timeout)


def fault_message(fault) -> str:
    """A vSphere fault as a sentence: its message, else its type (e.g. "DuplicateName")."""
    if fault is None:
        return "unknown error"
    text = getattr(fault, "localizedMessage", None) or getattr(fault, "msg", None)
    kind = type(fault).__name__.split(".")[-1]
    return f"{kind}: {text}" if text else kind


def _ssl_context(validate_certs: bool, ca_bundle: str | None) -> ssl.SSLContext:
    if not validate_certs:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    return ssl.create_default_context(cafile=ca_bundle) if ca_bundle else ssl.create_default_context()
