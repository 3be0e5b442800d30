# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every vendor client shares: the error type modules turn into a clean failure."""

from __future__ import annotations


class TwinsiteError(Exception):
    """A vendor or input problem with a message for a person.

    ``obj`` is the object concerned (a VM, a cluster, a bucket) and ``action`` what was being done,
    so the message reads "<action> of <obj> failed: <reason>".
    """

    def __init__(self, reason: str, obj: str | None = None, action: str | None = None):
        self.reason, self.obj, self.action = reason, obj, action
        prefix = f"{action} of {obj} failed: " if action and obj else (f"{obj}: " if obj else "")
        super().__init__(prefix + reason)


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
