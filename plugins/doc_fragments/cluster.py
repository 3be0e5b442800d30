# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The option every hypervisor module takes (_cluster.CLUSTER_OPTION): one dc_clusters item.
    DOCUMENTATION = r"""
options:
  cluster:
    description:
      - One item of the model's C(dc_clusters) - C(name), C(type) (vsphere or proxmox), C(api)
        (C(host), C(port), C(username), C(password), C(ca_bundle), C(validate_certs)), and
        C(datacenter) + C(cluster) for vSphere. The password is kept out of logs.
    type: dict
    required: true
"""
