"""The site-model validator: every bad model gets the exact file, path and message; a valid model
passes; random corruptions never raise."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.twinsite.dc.plugins.module_utils import _site_model

REPO = Path(__file__).resolve().parents[2]
CASES = yaml.safe_load((Path(__file__).parent / "fixtures" / "bad_models.yml").read_text())


def _parts(path: str) -> list:
    return [int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", path)]


def _apply(inventory: Path, case: dict) -> None:
    for op in ("set", "delete"):
        if op not in case:
            continue
        spec = case[op]
        target = inventory / spec["file"]
        data = yaml.safe_load(target.read_text()) or {}
        *parents, last = _parts(spec["path"])
        node = data
        for part in parents:
            node = node[part]
        if op == "set":
            if isinstance(node, list) and last == len(node):
                node.append(spec["value"])
            else:
                node[last] = spec["value"]
        else:
            del node[last]
        target.write_text(yaml.safe_dump(data, sort_keys=False))
    if "append" in case:
        target = inventory / case["append"]["file"]
        target.write_text(target.read_text() + case["append"]["text"])


@pytest.fixture()
def inventory(tmp_path) -> Path:
    copy_ = tmp_path / "inventory" / "lab"
    shutil.copytree(REPO / "inventory" / "lab", copy_)
    return copy_


def test_the_lab_model_is_valid():
    assert _site_model.validate(REPO / "inventory" / "lab") == []


def test_the_corpus_is_large_and_distinct():
    assert len(CASES) >= 30
    assert len({c["name"] for c in CASES}) == len(CASES)
    assert len({c["expect"] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_bad_model_is_reported_with_file_path_and_message(inventory, case):
    _apply(inventory, case)
    findings = [str(f) for f in _site_model.validate(inventory)]
    assert findings, "the validator found nothing wrong"
    assert any(case["expect"] in f for f in findings), "\n".join(findings)
    # The message names the copy's file, not some other place.
    assert all(f.startswith(str(inventory)) or f.startswith(str(inventory.relative_to(inventory.anchor))) or "inventory" in f for f in findings)


def test_all_problems_are_reported_at_once(inventory):
    for case in CASES[:8]:
        if "append" not in case:
            _apply(inventory, case)
    findings = [str(f) for f in _site_model.validate(inventory)]
    assert len(findings) >= 6


def test_playbook_fails_and_lists_every_problem_without_a_traceback(inventory):
    _apply(inventory, CASES[0])
    _apply(inventory, next(c for c in CASES if c["name"] == "VLAN out of range"))
    result = subprocess.run(["ansible-playbook", "-i", str(inventory), "playbooks/validate.yml"], cwd=REPO,
                            capture_output=True, text=True, check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "dc_services[2].depends_on[0]: 'dnsx' is not a service" in output
    assert "dc_networks[0].vlan: found 4095, expected at most 4094" in output
    assert "Traceback" not in output


# --- random corruption never raises ---------------------------------------------------------------

_LAB = _site_model.load(REPO / "inventory" / "lab")
_JUNK = st.one_of(st.none(), st.booleans(), st.integers(-10, 70000), st.text(max_size=12),
                  st.lists(st.integers(0, 5), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))


def _leaves(node, path=()):
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _leaves(value, (*path, index))


_PATHS = [p for p in _leaves(_LAB.values) if p] + [("host", h, *p) for h, hv in _LAB.hosts.items() for p in _leaves(hv) if p]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits=st.lists(st.tuples(st.sampled_from(_PATHS), _JUNK, st.booleans()), min_size=1, max_size=4))
def test_random_corruptions_never_raise(edits):
    model = copy.deepcopy(_LAB)
    model.findings = []
    for path, junk, delete in edits:
        root = model.values
        if path[0] == "host":
            root, path = model.hosts, path[1:]
        node = root
        try:
            for part in path[:-1]:
                node = node[part]
            if delete:
                del node[path[-1]]
            else:
                node[path[-1]] = junk
        except (KeyError, IndexError, TypeError):
            continue
    findings = _site_model.validate_model(model)
    assert all(isinstance(f, _site_model.Finding) for f in findings)
