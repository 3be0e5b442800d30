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
  - A task whose variables set C(twinsite_fan_out) (C(results), the key of its result that holds one result per
    host by name; optional C(keep) and C(show)) has that result split into one result per host, each counted,
    printed, registered and failed as the host's own. The access switches' one C(switch_l2) call gives each switch
    its own result that way (C(plugins/plugin_utils/fan_out.py)). Every task sees C(twinsite_fan_out_active=true).
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
  - Unlike Mitogen's own strategies, it pins no process to a CPU (Mitogen's pinning put all of
    Ansible's workers on one core of a 2-core machine).
  - Before the first worker is forked it lists the installed collections for Mitogen's planner, and
    imports twinsite's filter plugins and ansible-core's module-result JSON profile, so the workers
    (one per task and host) inherit them instead of loading them again each time.
requirements:
  - mitogen (pinned in requirements.txt; C(make setup) installs it)
author: twinsite contributors
"""

import importlib
import pkgutil

from ansible.collections.list import list_collection_dirs
from ansible.module_utils.common.json import Direction, get_module_decoder, get_module_encoder
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.loader import filter_loader, test_loader

try:
    import ansible_mitogen.affinity
    import ansible_mitogen.loaders
    import ansible_mitogen.planner
    import ansible_mitogen.strategy
except ImportError as exc:  # pragma: no cover - depends on the installation
    from ansible.errors import AnsibleError

    raise AnsibleError(
        "the strategy twinsite.dc.mitogen_linear needs the Python package mitogen in the Python that runs "
        "ansible-playbook: run `make setup`, or `pip install mitogen==0.3.54`; or run with ANSIBLE_STRATEGY=linear"
    ) from exc

# After the check above: without Mitogen, the error that says how to install it comes first.
from ansible_collections.twinsite.dc.plugins.plugin_utils.fan_out import FanOutMixin  # noqa: E402

_Linear = ansible_mitogen.loaders.strategy_loader.get("linear", class_only=True)

# Mitogen pins processes to CPUs (ansible_mitogen.affinity): its connection multiplexer alone on CPU 0,
# and on a machine with fewer than 4 CPUs the top-level process, every worker and their local
# children (the controller's own modules) all on CPU 1. On two cores, all of Ansible's own work then
# shares one: a change pushed to 50 switches kept the machine 53% busy and took 46 s, against 30 s
# and 82% under the linear strategy, which pins nothing. Placement is left to the kernel's scheduler.
if hasattr(ansible_mitogen.affinity, "Policy"):
    ansible_mitogen.affinity.policy = ansible_mitogen.affinity.Policy()


class StrategyModule(FanOutMixin, ansible_mitogen.strategy.StrategyMixin, _Linear):
    """linear, with Mitogen's connection and action wrappers installed for the run, and a task's
    result fanned out to the hosts it names (plugin_utils/fan_out.py)."""

    def run(self, iterator, play_context):
        # Both run in this process before it forks the play's first worker; the workers inherit them.
        _remember_collection_dirs()
        _preload_for_workers()
        return super().run(iterator, play_context)


# Mitogen's planner, before it runs a module from a collection for the first time in a process, adds
# every installed collection's directory to the target's import path (planner._load_collections).
# It finds them with ansible-core's list_collection_dirs(), which imports each collection's package:
# 93 of them with the `ansible` package. Ansible forks a new worker process for every task and host,
# so that cache is always empty and every collection module call, on every host, scans them all
# again. In a DR drill of 20 services that scan was 30% of the workers' time (py-spy). The
# directories do not change during a run: they are listed once, in the strategy's process, before the
# first worker is forked, and the workers inherit the list.
_COLLECTION_DIRS: list[str] | None = None


def _load_collections(invocation) -> None:
    """ansible_mitogen.planner._load_collections, from the list the run started with."""
    invocation._extra_sys_paths.update(_COLLECTION_DIRS or ())


def _remember_collection_dirs() -> None:
    global _COLLECTION_DIRS  # noqa: PLW0603 - one list per process, inherited by the forked workers
    if _COLLECTION_DIRS is None and hasattr(ansible_mitogen.planner, "_load_collections"):
        _COLLECTION_DIRS = [to_text(path) for path in list_collection_dirs()]
        ansible_mitogen.planner._load_collections = _load_collections


# What every worker would otherwise import again, because the strategy's process never needs it itself:
# - this collection's filters. Ansible looks one up (twinsite.dc.dr_translate) by importing every file
#   of the collection's filter plugins, and with them the module_utils they use (_switching,
#   _firewall, _dr...): 60 ms of CPU in a quiet process. In the 20-service drill, each task with such a
#   filter cost 20 x 60 ms on two cores.
# - the JSON profile that decodes a module's result (building its type maps on import).
# Imported here once, they are in sys.modules before the first fork, where ansible-core's plugin loader
# and importlib look first.
_PRELOADED = False


def _preload_for_workers() -> None:
    global _PRELOADED  # noqa: PLW0603 - once per process, inherited by the forked workers
    if _PRELOADED:
        return
    _PRELOADED = True
    for direction in Direction:
        get_module_encoder("legacy", direction)
        get_module_decoder("legacy", direction)
    collection = ".".join(__name__.split(".")[1:3])  # ansible_collections.twinsite.dc.plugins... -> twinsite.dc
    for loader, kind, method in ((filter_loader, "filter", "filters"), (test_loader, "test", "tests")):
        try:
            package = importlib.import_module(f"ansible_collections.{collection}.plugins.{kind}")
        except ImportError:
            continue
        for info in pkgutil.iter_modules(package.__path__):
            try:
                module = importlib.import_module(f"{package.__name__}.{info.name}")
                names = list(getattr(getattr(module, f"{kind.title()}Module")(), method)())
                if names:
                    loader.get(f"{collection}.{names[0]}")
            except Exception:  # noqa: BLE001, S112 - a broken plugin fails, with its own error, where a task uses it
                continue
