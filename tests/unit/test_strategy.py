"""ansible.cfg runs every play with twinsite.dc.mitogen_linear; without Mitogen installed it says how to fix it.

That the strategy runs plays correctly is what every integration test shows (they all go through it);
bench/strategy.py measures what it saves."""

from __future__ import annotations

import configparser
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "plugins" / "strategy" / "mitogen_linear.py"


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


def test_the_strategy_is_linear_with_mitogens_mixin():
    script = f"""
import importlib.util, sys
from ansible.plugins.loader import init_plugin_loader
init_plugin_loader([{str(ROOT / 'collections')!r}])
from ansible.plugins.loader import strategy_loader
cls = strategy_loader.get('twinsite.dc.mitogen_linear', class_only=True)
names = [c.__module__ + '.' + c.__name__ for c in cls.__mro__]
assert any(n.startswith('ansible_mitogen.strategy.StrategyMixin') for n in names), names
assert any(n.endswith('linear.StrategyModule') for n in names), names
print('ok')
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False, timeout=120,
                          env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")})
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout + proc.stderr


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
