#!/usr/bin/python
# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: s3_immutability_test
short_description: Prove a bucket's object lock by trying to delete a locked object version
version_added: 0.2.0
description:
  - For each prefix (one restic repository per service), picks the oldest object version and asks
    S3 to delete that version for good, with the credentials given (use the automation's own; the
    point is that they cannot destroy the copy).
  - A prefix passes only if S3 refuses and the version is still readable afterwards. A bucket that
    accepts the delete fails the test, and that version is gone; this is what the test exists to find.
  - Settings (versioning, default retention) are read by M(twinsite.dc.s3_bucket_info); this module
    proves they are enforced.
extends_documentation_fragment: [twinsite.dc.s3]
options:
  bucket:
    description: Bucket name.
    type: str
    required: true
  prefixes:
    description: Key prefixes to test, e.g. C(dns/) for the dns service's repository.
    type: list
    elements: str
    required: true
attributes:
  check_mode:
    support: none
    description: The test is an attempted delete; in check mode Ansible skips the task.
  diff_mode:
    support: none
requirements: [boto3]
author: twinsite engineers
"""

EXAMPLES = r"""
- name: Try to delete a locked version in each service's cloud repository
  twinsite.dc.s3_immutability_test:
    endpoint: "{{ dc_cloud.endpoint }}"
    bucket: "{{ dc_cloud.bucket }}"
    prefixes: [dns/, portal-db/]
    access_key: "{{ dc_cloud.access_key }}"
    secret_key: "{{ dc_cloud.secret_key }}"
    ca_bundle: "{{ dc_cloud.ca_bundle }}"
  register: lock_test
"""

RETURN = r"""
results:
  description: One entry per prefix.
  returned: always
  type: list
  elements: dict
  sample:
    - {prefix: dns/, passed: true, delete_refused: true, refusal: AccessDenied, version_kept: true,
       key: dns/data/3f/3f0c..., retention_mode: COMPLIANCE, retain_until: "2026-11-23 15:31:49+00:00"}
passed:
  description: Every prefix passed.
  returned: always
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.twinsite.dc.plugins.module_utils import _s3
from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError


def main():
    spec = _s3.argument_spec()
    spec["bucket"] = {"type": "str", "required": True}
    spec["prefixes"] = {"type": "list", "elements": "str", "required": True}
    module = AnsibleModule(argument_spec=spec, supports_check_mode=False)
    if not _s3.HAS_BOTO3:
        module.fail_json(msg=missing_required_lib("boto3"), exception=str(_s3.BOTO3_IMPORT_ERROR))
    client = _s3.S3Client.from_params(module.params)
    results = []
    try:
        for prefix in module.params["prefixes"]:
            results.append(client.immutability_test(module.params["bucket"], prefix))
    except TwinsiteError as exc:
        module.fail_json(msg=str(exc), results=results)
    # An attempted delete changes nothing when the bucket is immutable; if it was not, a version is gone.
    module.exit_json(changed=any(r.get("delete_refused") is False for r in results), results=results,
                     passed=bool(results) and all(r["passed"] for r in results))


if __name__ == "__main__":
    main()
