# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The connection options of the vsphere and proxmox inventory plugins (CONNECTION_KEYS in
    # plugin_utils/_inventory.py). Each plugin adds what differs: the descriptions naming its API,
    # its default port and its TWINSITE_VSPHERE_* / TWINSITE_PVE_* environment variables (a plugin's
    # keys win over the fragment's, option by option).
    DOCUMENTATION = r"""
options:
  hostname:
    description: The API's host name or address.
    type: str
  port:
    description: The API's HTTPS port.
    type: int
  username:
    description: The API user.
    type: str
  password:
    description: The user's password. In a configuration file, encrypt it with C(ansible-vault encrypt_string).
    type: str
  validate_certs:
    description: Verify the API's TLS certificate. Leave it on; give O(ca_bundle) for a private CA.
    type: bool
    default: true
  ca_bundle:
    description:
      - PEM file of the CA(s) that signed the API's certificate. Without it, the system's CAs.
      - A relative path written in the configuration file is relative to that file.
    type: str
"""
