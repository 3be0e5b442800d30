# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The connection options of every S3 module (_s3.argument_spec).
    DOCUMENTATION = r"""
options:
  endpoint:
    description: S3 endpoint URL. Falls back to C(TWINSITE_S3_ENDPOINT).
    type: str
    required: true
  region:
    description: Region name the endpoint expects.
    type: str
    default: us-east-1
  access_key:
    description: Access key. Falls back to C(TWINSITE_S3_ACCESS_KEY).
    type: str
    required: true
  secret_key:
    description: Secret key. Falls back to C(TWINSITE_S3_SECRET_KEY).
    type: str
    required: true
  validate_certs:
    description: Verify the endpoint's TLS certificate.
    type: bool
    default: true
  ca_bundle:
    description: PEM file of the CA(s) that signed the endpoint's certificate. Falls back to C(TWINSITE_S3_CA_BUNDLE).
    type: path
"""
