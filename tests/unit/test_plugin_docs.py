"""Every plugin's DOCUMENTATION, EXAMPLES and RETURN is YAML that ansible-doc can read.

ansible-doc and ansible-lint only print an error for a plugin whose DOCUMENTATION does not parse
(a plain scalar holding ": " is the usual cause), and the module still runs, so nothing else fails.
This reads the blocks the way ansible-doc does (the module is not imported) and names the line."""

from __future__ import annotations

import ast
import pathlib

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
PLUGINS = sorted(p for p in (ROOT / "plugins").rglob("*.py") if "module_utils" not in p.parts and p.name != "__init__.py")
BLOCKS = ("DOCUMENTATION", "EXAMPLES", "RETURN")


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads a tag it does not know (``!vault`` in an example) as its plain value."""


_Loader.add_multi_constructor("!", lambda loader, suffix, node: loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode) else None)


def _blocks(path: pathlib.Path) -> dict[str, str]:
    found = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id in BLOCKS and isinstance(node.value, ast.Constant)):
            found[node.targets[0].id] = node.value.value
    return found


def test_the_plugins_are_found():
    assert len(PLUGINS) > 30, [p.name for p in PLUGINS]


@pytest.mark.parametrize("path", PLUGINS, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_documentation_blocks_are_yaml(path):
    blocks = _blocks(path)
    if path.parent.name in ("modules", "inventory", "filter", "lookup", "callback"):
        assert "DOCUMENTATION" in blocks, f"{path.name} has no DOCUMENTATION"
    for name, text in blocks.items():
        try:
            # EXAMPLES may be several YAML documents (an inventory plugin's example files)
            docs = list(yaml.load_all(text, Loader=_Loader)) if name == "EXAMPLES" else [yaml.load(text, Loader=_Loader)]  # noqa: S506
        except yaml.YAMLError as exc:
            pytest.fail(f"{path.relative_to(ROOT)} {name} is not YAML: {exc}")
        if name == "DOCUMENTATION":
            assert isinstance(docs[0], dict) and docs[0].get("short_description"), f"{path.name}: no short_description"
