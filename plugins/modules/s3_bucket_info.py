#!/usr/bin/python
# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: s3_bucket_info
short_description: Report an S3 bucket's versioning and object-lock settings
version_added: 0.1.0
description:
  - Reaches the cloud copy's S3 endpoint (TLS verified by default) and reports whether the bucket
    exists, whether versioning is on, and its default object-lock retention (mode and days).
  - It reports configuration only. Whether deleting a locked version is really refused is proven by
    the backup role's immutability test, not assumed from this.
extends_documentation_fragment: [twinsite.dc.s3]
options:
  bucket:
    description: Bucket name.
    type: str
    required: true
attributes:
  check_mode:
    support: full
    description: Reads only; runs the same in check mode.
  diff_mode:
    support: none
requirements: [boto3]
author: twinsite engineers
"""

EXAMPLES = r"""
- name: Read the off-site bucket's lock settings
  twinsite.dc.s3_bucket_info:
    endpoint: https://s3.example.net
    bucket: town-offsite
    access_key: "{{ vault_s3_access_key }}"
    secret_key: "{{ vault_s3_secret_key }}"
  register: offsite
"""

RETURN = r"""
bucket:
  description: The bucket's settings.
  returned: success
  type: dict
  sample: {name: town-offsite, versioning: Enabled, object_lock: true, retention_mode: COMPLIANCE, retention_days: 30}
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.twinsite.dc.plugins.module_utils import _s3
from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError


def main():
    spec = _s3.argument_spec()
    spec["bucket"] = {"type": "str", "required": True}
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    if not _s3.HAS_BOTO3:
        module.fail_json(msg=missing_required_lib("boto3"), exception=str(_s3.BOTO3_IMPORT_ERROR))
    try:
        bucket = _s3.S3Client.from_params(module.params).bucket_info(module.params["bucket"])
    except TwinsiteError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, bucket=bucket)


if __name__ == "__main__":
    main()
