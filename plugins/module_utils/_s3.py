# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one S3 client of twinsite (boto3): the cloud copy's bucket, its versioning and object lock."""

from __future__ import annotations

from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    HAS_BOTO3 = True
    BOTO3_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the module with missing_required_lib
    HAS_BOTO3 = False
    BOTO3_IMPORT_ERROR = exc


def argument_spec() -> dict:
    from ansible.module_utils.basic import env_fallback

    return {
        "endpoint": {"type": "str", "required": True, "fallback": (env_fallback, ["TWINSITE_S3_ENDPOINT"])},
        "region": {"type": "str", "default": "us-east-1"},
        "access_key": {"type": "str", "required": True, "no_log": True, "fallback": (env_fallback, ["TWINSITE_S3_ACCESS_KEY"])},
        "secret_key": {"type": "str", "required": True, "no_log": True, "fallback": (env_fallback, ["TWINSITE_S3_SECRET_KEY"])},
        "validate_certs": {"type": "bool", "default": True},
        "ca_bundle": {"type": "path", "fallback": (env_fallback, ["TWINSITE_S3_CA_BUNDLE"])},
    }


class S3Client:
    def __init__(self, endpoint, access_key, secret_key, region="us-east-1", validate_certs=True, ca_bundle=None):
        self.endpoint = endpoint
        verify = (ca_bundle or True) if validate_certs else False
        self.s3 = boto3.client(
            "s3", endpoint_url=endpoint, region_name=region, aws_access_key_id=access_key,
            aws_secret_access_key=secret_key, verify=verify,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3, "mode": "standard"}),
        )

    @classmethod
    def from_params(cls, params: dict) -> "S3Client":
        keys = ("endpoint", "access_key", "secret_key", "region", "validate_certs", "ca_bundle")
        return cls(**{k: params.get(k) for k in keys})

    def _call(self, action: str, obj: str, fn, **kwargs):
        try:
            return fn(**kwargs)
        except ClientError as exc:
            err = exc.response.get("Error", {})
            raise TwinsiteError(f"{err.get('Code')}: {err.get('Message')}", obj=obj, action=action) from None
        except BotoCoreError as exc:
            raise TwinsiteError(str(exc), obj=obj, action=action) from None

    def bucket_info(self, bucket: str) -> dict:
        obj = f"bucket {bucket} at {self.endpoint}"
        self._call("read", obj, self.s3.head_bucket, Bucket=bucket)
        versioning = self._call("read versioning", obj, self.s3.get_bucket_versioning, Bucket=bucket)
        try:
            lock = self.s3.get_object_lock_configuration(Bucket=bucket).get("ObjectLockConfiguration", {})
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ObjectLockConfigurationNotFoundError":
                raise TwinsiteError(str(exc), obj=obj, action="read object lock") from None
            lock = {}
        retention = (lock.get("Rule") or {}).get("DefaultRetention") or {}
        return {
            "name": bucket,
            "versioning": versioning.get("Status", "Disabled"),
            "object_lock": lock.get("ObjectLockEnabled") == "Enabled",
            "retention_mode": retention.get("Mode"),
            "retention_days": retention.get("Days"),
        }

    def immutability_test(self, bucket: str, prefix: str) -> dict:
        """Try to delete one locked object version under ``prefix`` for good (DeleteObject with its
        VersionId), with this client's credentials. Passed only if S3 refuses and the version is
        still there afterwards. The object tried is the oldest pack (data/) or, failing that, any."""
        obj = f"s3://{bucket}/{prefix}"
        out = {"bucket": bucket, "prefix": prefix, "passed": False}
        listing = self._call("list versions", obj, self.s3.list_object_versions, Bucket=bucket, Prefix=f"{prefix}data/")
        versions = listing.get("Versions") or []
        if not versions:
            listing = self._call("list versions", obj, self.s3.list_object_versions, Bucket=bucket, Prefix=prefix)
            versions = listing.get("Versions") or []
        if not versions:
            out["error"] = f"{obj} holds no object to try: nothing has been replicated there yet"
            return out
        victim = sorted(versions, key=lambda v: (v["LastModified"], v["Key"]))[0]
        key, version = victim["Key"], victim["VersionId"]
        out.update(key=key, version_id=version)
        try:
            retention = self.s3.get_object_retention(Bucket=bucket, Key=key, VersionId=version).get("Retention") or {}
            out.update(retention_mode=retention.get("Mode"), retain_until=str(retention.get("RetainUntilDate") or "") or None)
        except ClientError as exc:
            out["retention_error"] = exc.response.get("Error", {}).get("Code")
        try:
            self.s3.delete_object(Bucket=bucket, Key=key, VersionId=version)
            refused, code = False, None
        except ClientError as exc:
            refused, code = True, exc.response.get("Error", {}).get("Code")
        out["delete_refused"] = refused
        out["refusal"] = code
        still_there = True
        try:
            self.s3.head_object(Bucket=bucket, Key=key, VersionId=version)
        except ClientError:
            still_there = False
        out["version_kept"] = still_there
        out["passed"] = refused and still_there
        if not out["passed"]:
            out["error"] = (f"deleting version {version} of s3://{bucket}/{key} was "
                            f"{'refused but the version is gone' if refused else 'ACCEPTED: the bucket is not immutable'}")
        return out
