# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The linear strategy with Mitogen underneath: each host's modules run in one long-lived Python.

Mitogen ships this plugin itself, but only as a file inside its package, reachable through a
`strategy_plugins` path that depends on where the virtualenv is. Shipping the same four lines in the
collection lets ansible.cfg name it as `twinsite.dc.mitogen_linear` from any checkout."""

from __future__ import annotations

DOCUMENTATION = r"""
name: mitogen_linear
short_description: Linear strategy, with each host's modules run by Mitogen
description:
  - Runs plays exactly as the C(linear) strategy does (task by task, every host, C(serial) honoured).
  - Underneath, Mitogen keeps one Python interpreter per host for the whole run over the connection
    Ansible would have used (ssh, local, podman), instead of starting a new interpreter and
    re-reading every module_utils file for each task. On the lab a no-change C(site.yml) takes 39 s
    instead of 63 s.
  - Connections Mitogen does not handle (C(network_cli) for the Cisco CLI switches, C(httpapi)) run
    as they always do.
  - To run without it for one run, set C(ANSIBLE_STRATEGY=linear).
notes:
  - Name the hosts' Python (C(interpreter_python) in ansible.cfg, as twinsite does). Under Mitogen,
    interpreter discovery on an unreachable host retries for about 25 s, where one failed connect
    takes 4 s.
  - An async task on the controller (localhost) can hang under Mitogen. Molecule's podman driver
    starts containers that way, so twinsite's scenarios set this strategy per play. twinsite's roles
    run async tasks on remote hosts only.
  - ansible-core prints one deprecation warning per run for any strategy plugin outside
    ansible.builtin. The warning gives no removal version.
requirements:
  - mitogen (pinned in requirements.txt; C(make setup) installs it)
author: twinsite contributors
"""

try:
    import ansible_mitogen.loaders
    import ansible_mitogen.strategy
except ImportError as exc:  # pragma: no cover - depends on the installation
    from ansible.errors import AnsibleError

    raise AnsibleError(
        "the strategy twinsite.dc.mitogen_linear needs the Python package mitogen in the Python that runs "
        "ansible-playbook: run `make setup`, or `pip install mitogen==0.3.54`; or run with ANSIBLE_STRATEGY=linear"
    ) from exc

_Linear = ansible_mitogen.loaders.strategy_loader.get("linear", class_only=True)


class StrategyModule(ansible_mitogen.strategy.StrategyMixin, _Linear):
    """linear, with Mitogen's connection and action wrappers installed for the run."""
