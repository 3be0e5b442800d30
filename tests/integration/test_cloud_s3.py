"""The cloud: S3 over verified TLS; object lock really refuses deletion of a locked version."""

from __future__ import annotations

import hashlib
import uuid

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError


@pytest.fixture()
def s3(lab, ca_pem):
    spec = lab.model["s3"]
    return boto3.client("s3", endpoint_url=f"https://{spec['host']}:{spec['port']}", region_name=spec["region"],
                        aws_access_key_id=spec["access_key"], aws_secret_access_key=spec["secret_key"],
                        verify=str(ca_pem), config=Config(s3={"addressing_style": "path"}))


def test_put_get_roundtrip_and_locked_version_cannot_be_deleted(lab, s3):
    bucket = lab.model["s3"]["buckets"][0]["name"]
    key = f"tests/{uuid.uuid4()}.bin"
    body = uuid.uuid4().bytes * 1000
    version = s3.put_object(Bucket=bucket, Key=key, Body=body)["VersionId"]
    got = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(body).hexdigest()

    retention = s3.get_object_retention(Bucket=bucket, Key=key, VersionId=version)["Retention"]
    assert retention["Mode"] == lab.model["s3"]["buckets"][0]["mode"]

    with pytest.raises(ClientError) as refused:
        s3.delete_object(Bucket=bucket, Key=key, VersionId=version)
    assert refused.value.response["Error"]["Code"] in ("AccessDenied", "ObjectLocked", "InvalidRequest")
    # Still there, byte for byte.
    again = s3.get_object(Bucket=bucket, Key=key, VersionId=version)["Body"].read()
    assert again == body
