# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What twinsite's inventory plugins share: reading the config, the cache, group names, and turning
host records into inventory.

A plugin subclasses ``TwinsiteInventory`` and implements ``fetch()``, which asks the vendor API and
returns plain records ``[{"name", "id", "vars": {...}, "groups": [...]}]``. Records are JSON, so
the cache stores exactly what ``fetch()`` returned and a cached run makes no API call at all.
"""

from __future__ import annotations

import os
import re
import time

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable

from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError

CONNECTION_KEYS = ("hostname", "port", "username", "password", "validate_certs", "ca_bundle")


class TwinsiteInventory(BaseInventoryPlugin, Constructable, Cacheable):
    # Set by each plugin: config file suffixes it accepts and its credentials' environment prefix.
    SUFFIXES: tuple[str, ...] = ()
    ENV_PREFIX = ""

    def verify_file(self, path: str) -> bool:
        return super().verify_file(path) and path.endswith(self.SUFFIXES)

    def fetch(self) -> list[dict]:
        raise NotImplementedError

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._config = self._read_config_data(path)
        self._config_path = path
        key = self.get_cache_key(path)
        use_cache = self.get_option("cache")
        # cache=False comes from --flush-cache and meta: refresh_inventory: read the API, then store.
        records = self._cache.get(key) if use_cache and cache else None
        if records is None:
            started = time.monotonic()
            try:
                records = _unique_names(self.fetch(), self.display)
            except TwinsiteError as exc:
                raise AnsibleParserError(f"{self.NAME} ({path}): {exc}") from None
            self.display.vv(f"{self.NAME}: {len(records)} hosts from {path} in {time.monotonic() - started:.2f}s")
            if use_cache:
                self._cache[key] = records
        self._populate(records)

    def connection(self) -> dict:
        """The client's keyword arguments from the options. Values written in the config file may be
        templates (``{{ lookup('ansible.builtin.env', 'X') }}``); a relative ``ca_bundle`` written
        there is relative to that file, so the config works from any working directory."""
        params = {key: self._templated(self.get_option(key)) for key in CONNECTION_KEYS}
        missing = [key for key in ("hostname", "username", "password") if not params[key]]
        if missing:
            env = {"hostname": "HOST", "username": "USER", "password": "PASSWORD"}
            where = ", ".join(f"{key} (or {self.ENV_PREFIX}_{env[key]})" for key in missing)
            raise AnsibleParserError(f"{self.NAME} ({self._config_path}): set {where}")
        if params["ca_bundle"]:
            ca_bundle = os.path.expanduser(params["ca_bundle"])
            if "ca_bundle" in self._config and not os.path.isabs(ca_bundle):
                ca_bundle = os.path.join(os.path.dirname(os.path.abspath(self._config_path)), ca_bundle)
            params["ca_bundle"] = ca_bundle
        return params

    def _templated(self, value):
        # Only the config file's strings are trusted as templates (ansible-core 2.19); a value from
        # the environment comes back as it is.
        return self.templar.template(value) if isinstance(value, str) else value

    def group(self, *parts) -> str:
        """A valid group name from the prefix and parts: ``vsphere_`` + ``cluster``, ``Cluster-A`` ->
        ``vsphere_cluster_cluster_a`` (letters, digits and ``_`` only, lower case)."""
        return self.get_option("group_prefix") + "_".join(re.sub(r"[^a-z0-9_]", "_", str(p).lower()) for p in parts)

    def _populate(self, records: list[dict]) -> None:
        strict = self.get_option("strict")
        for record in records:
            host = self.inventory.add_host(record["name"])
            for key, value in record["vars"].items():
                self.inventory.set_variable(host, key, value)
            for group in record["groups"]:
                self.inventory.add_child(self.inventory.add_group(group), host)
            self._set_composite_vars(self.get_option("compose"), record["vars"], host, strict=strict)
            self._add_host_to_composed_groups(self.get_option("groups"), record["vars"], host, strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), record["vars"], host, strict=strict)


def _unique_names(records: list[dict], display) -> list[dict]:
    """Inventory host names must be unique, VM names need not be (two folders, two PVE guests):
    the second of a name becomes ``<name>_<id>``, with a warning, rather than silently merging."""
    seen: set[str] = set()
    for record in records:
        if record["name"] in seen:
            renamed = f"{record['name']}_{record['id']}"
            display.warning(f"two VMs are named {record['name']!r}; the one with id {record['id']} is host {renamed!r}")
            record["name"] = renamed
        seen.add(record["name"])
    return records
