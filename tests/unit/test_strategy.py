"""ansible.cfg runs every play with twinsite.dc.mitogen_linear; without Mitogen installed it says how to fix it.

That the strategy runs plays correctly is what every integration test shows (they all go through it);
bench/strategy.py measures what it saves."""

from __future__ import annotations

import configparser
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "plugins" / "strategy" / "mitogen_linear.py"


# A fresh Python with the collection's plugin loader set up, as ansible-playbook has it.
LOADER = f"""from ansible.plugins.loader import init_plugin_loader
init_plugin_loader([{str(ROOT / 'collections')!r}])"""


def _assert_prints_ok(script: str) -> None:
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False, timeout=120,
                          env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")})
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout + proc.stderr


def _ansible_config(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(pathlib.Path(sys.executable).parent / "ansible-config"), *args], cwd=ROOT,
                          env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), **(env or {})},
                          capture_output=True, text=True, check=False, timeout=120)


def test_ansible_cfg_names_the_collections_mitogen_strategy():
    config = configparser.ConfigParser(interpolation=None)
    config.read(ROOT / "ansible.cfg")
    assert config["defaults"]["strategy"] == "twinsite.dc.mitogen_linear"
    dumped = _ansible_config("dump", "--only-changed")
    assert dumped.returncode == 0, dumped.stderr
    assert "DEFAULT_STRATEGY(" in dumped.stdout and "twinsite.dc.mitogen_linear" in dumped.stdout


@pytest.mark.parametrize(("name", "base", "other"), [("mitogen_linear", "linear", "free"), ("mitogen_free", "free", "linear")])
def test_each_strategy_is_ansibles_own_with_mitogens_mixin(name, base, other):
    # mitogen_free runs the DR tiers (playbooks/recover_tiers.yml): hosts running different roles at once.
    script = f"""
import sys
{LOADER}
from ansible.plugins.loader import strategy_loader
cls = strategy_loader.get('twinsite.dc.{name}', class_only=True)
names = [c.__module__ + '.' + c.__name__ for c in cls.__mro__]
assert any(n.startswith('ansible_mitogen.strategy.StrategyMixin') for n in names), names
assert any(n.endswith('.{base}.StrategyModule') for n in names), names
assert not any(n.endswith('.{other}.StrategyModule') for n in names), names
plugin = sys.modules[cls.__module__]
assert plugin._preload_for_workers.__module__.endswith('mitogen_linear')
print('ok')
"""
    _assert_prints_ok(script)


def test_without_mitogen_the_error_says_how_to_install_it():
    # A Python where `import ansible_mitogen` fails: the plugin must name the fix, not show an ImportError.
    script = f"""
import sys
sys.modules['ansible_mitogen'] = None
import importlib.util
from ansible.errors import AnsibleError
spec = importlib.util.spec_from_file_location('mitogen_linear', {str(PLUGIN)!r})
try:
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
except AnsibleError as exc:
    print(exc)
else:
    print('loaded without mitogen')
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "needs the Python package mitogen" in proc.stdout
    assert "make setup" in proc.stdout and "ANSIBLE_STRATEGY=linear" in proc.stdout


def test_the_workers_inherit_the_collection_list_and_the_collections_filters():
    # Ansible forks a worker per task and host. What the strategy's process loads before the fork, the
    # workers do not load again: Mitogen's list of collection directories (one scan of all 93
    # collections) and this collection's filter plugins with their module_utils.
    script = f"""
import sys
{LOADER}
from ansible.plugins.loader import strategy_loader, filter_loader
from ansible.collections.list import list_collection_dirs
import ansible_mitogen.planner
cls = strategy_loader.get('twinsite.dc.mitogen_linear', class_only=True)
plugin = sys.modules[cls.__module__]
before = ansible_mitogen.planner._load_collections
assert not any(m.startswith('ansible_collections.twinsite.dc.plugins.filter.') for m in sys.modules)
plugin._remember_collection_dirs()
plugin._preload_for_workers()
assert "ansible.module_utils._internal._json._profiles._module_legacy_m2c" in sys.modules
assert ansible_mitogen.planner._load_collections is not before

class Invocation:
    _extra_sys_paths = set()
ansible_mitogen.planner._load_collections(Invocation)
expected = {{p.decode() for p in list_collection_dirs()}}
assert Invocation._extra_sys_paths == expected and any(p.endswith('twinsite/dc') for p in expected), Invocation._extra_sys_paths

loaded = set(sys.modules)
for name in ('twinsite.dc.dr_translate', 'twinsite.dc.switch_findings', 'twinsite.dc.fw_nftables'):
    assert filter_loader.get(name) is not None, name
assert set(sys.modules) == loaded, sorted(set(sys.modules) - loaded)
print('ok')
"""
    _assert_prints_ok(script)


def test_the_strategy_leaves_cpu_placement_to_the_kernel():
    # Mitogen's own policy pins every worker to CPU 1 on a 2-core machine (its multiplexer alone on CPU 0).
    script = f"""
{LOADER}
import ansible_mitogen.affinity
assert isinstance(ansible_mitogen.affinity.policy, ansible_mitogen.affinity.LinuxPolicy)
from ansible.plugins.loader import strategy_loader
strategy_loader.get('twinsite.dc.mitogen_linear', class_only=True)
assert type(ansible_mitogen.affinity.policy) is ansible_mitogen.affinity.Policy, ansible_mitogen.affinity.policy
print('ok')
"""
    _assert_prints_ok(script)

