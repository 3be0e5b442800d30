# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every vendor client shares: the error type modules turn into a clean failure."""

from __future__ import annotations

import os
import random
import time


class TwinsiteError(Exception):
    """A vendor or input problem with a message for a person.

    ``obj`` is the object concerned (a VM, a cluster, a bucket) and ``action`` what was being done,
    so the message reads "<action> of <obj> failed: <reason>".
    """

    def __init__(self, reason: str, obj: str | None = None, action: str | None = None):
        self.reason, self.obj, self.action = reason, obj, action
        prefix = f"{action} of {obj} failed: " if action and obj else (f"{obj}: " if obj else "")
        super().__init__(prefix + reason)


class ModelError(Exception):
    """A site model (or a renderer's arguments) that cannot be compiled: ``path`` is where the
    problem is (e.g. ``dc_firewall.rules[2].services[0]``), ``message`` what is wrong and what to try."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


def read_text(path: str) -> str | None:
    """A text file's content, or None when it does not exist."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def model_items(section, path: str, error: type[ModelError] = ModelError) -> list[dict]:
    """A model section that must be a list of mappings (None: empty), else ``error`` at its path."""
    if section is None:
        return []
    if not isinstance(section, list):
        raise error(path, f"expected a list, found {type(section).__name__}")
    for i, item in enumerate(section):
        if not isinstance(item, dict):
            raise error(f"{path}[{i}]", f"expected a mapping, found {item!r}")
    return section


def plain(value):
    """Tuples to lists, recursively: plain data for Ansible and JSON."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def connection_spec(default_port: int, env_prefix: str) -> dict:
    """Argument spec for an API endpoint, with environment fallbacks (``<env_prefix>_HOST`` ...)."""
    from ansible.module_utils.basic import env_fallback

    return {
        "hostname": {"type": "str", "required": True, "fallback": (env_fallback, [f"{env_prefix}_HOST"])},
        "port": {"type": "int", "default": default_port, "fallback": (env_fallback, [f"{env_prefix}_PORT"])},
        "username": {"type": "str", "required": True, "fallback": (env_fallback, [f"{env_prefix}_USER"])},
        "password": {"type": "str", "required": True, "no_log": True, "fallback": (env_fallback, [f"{env_prefix}_PASSWORD"])},
        "validate_certs": {"type": "bool", "default": True},
        "ca_bundle": {"type": "path", "fallback": (env_fallback, [f"{env_prefix}_CA_BUNDLE"])},
    }


def check_ca_bundle(ca_bundle: str | None, obj: str) -> None:
    """A missing CA file is the user's to fix: say which file, not "[Errno 2]"."""
    if ca_bundle and not os.path.isfile(ca_bundle):
        raise TwinsiteError(f"the CA bundle {ca_bundle} does not exist; give ca_bundle the PEM file of the CA that signed the API's certificate",
                            obj=obj, action="login")


def wait_until(check, obj: str, action: str, timeout: float = 600.0, first: float = 0.2, longest: float = 5.0):
    """Poll ``check()`` until it returns a value that is not None, with a deadline, exponential
    backoff and jitter (many modules polling one vCenter must not do so in lock-step).

    ``check`` raises TwinsiteError to stop with a failure. Returns what ``check`` returned.
    """
    deadline = time.monotonic() + timeout
    interval = first
    while True:
        result = check()
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            raise TwinsiteError(f"still not done after {timeout:.0f}s", obj=obj, action=action)
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())) * random.uniform(0.8, 1.2))  # noqa: S311 - jitter
        interval = min(interval * 2, longest)


SECRET_KEY_WORDS = ("password", "secret", "token")


def _secret_values(value, found: set) -> set:
    """Every string under a key that names a secret, at any depth of dicts and lists."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, str) and item and any(w in str(key).lower() for w in SECRET_KEY_WORDS):
                found.add(item)
            else:
                _secret_values(item, found)
    elif isinstance(value, list):
        for item in value:
            _secret_values(item, found)
    return found


def secret_aware_module():
    """AnsibleModule that hides nested secrets (a dc_clusters item's api.password) from the very
    start: before argument validation, whose errors echo every argument at -vvv."""
    from ansible.module_utils.basic import AnsibleModule

    class TwinsiteModule(AnsibleModule):
        def _load_params(self):
            super()._load_params()
            self.no_log_values.update(_secret_values(self.params, set()))

    return TwinsiteModule
