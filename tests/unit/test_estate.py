"""The comparison behind plan.yml, in the model's terms."""

from __future__ import annotations

from ansible_collections.twinsite.dc.plugins.module_utils import _estate

TEMPLATES = [{"name": "tpl", "cluster": "c", "cpus": 2, "memory_mb": 2048}]
VMS = [
    {"name": "web", "cluster": "c", "cpus": 2, "memory_mb": 4096, "disk_gb": 40, "networks": ["servers", "dmz"], "power": "on"},
    {"name": "db", "cluster": "c", "cpus": 4, "memory_mb": 8192, "power": "on"},
    {"name": "old", "cluster": "c", "cpus": 1, "memory_mb": 512, "state": "absent"},
]


def live(**overrides):
    state = {
        "tpl": {"template": True, "cpus": 2, "memory_mb": 2048},
        "web": {"template": False, "cpus": 2, "memory_mb": 4096, "disk_gb": 40, "networks": ["dmz", "servers"], "power": "on"},
        "db": {"template": False, "cpus": 4, "memory_mb": 8192, "disk_gb": 100, "networks": ["servers"], "power": "on"},
    }
    for name, change in overrides.items():
        if change is None:
            state.pop(name)
        else:
            state[name] = {**state.get(name, {}), **change}
    return state


def plan(**overrides):
    return _estate.diff(_estate.wanted(VMS, TEMPLATES), live(**overrides))


def test_in_sync_when_live_matches_and_unmanaged_fields_are_ignored():
    # db's disk and networks are not in the model: they are not compared.
    assert plan() == {"missing": [], "different": [], "extra": [], "to_remove": []}


def test_each_kind_of_difference_is_named():
    result = plan(db={"cpus": 8, "power": "off"}, web=None, stray={"template": False, "cpus": 1}, old={"cpus": 1})
    assert result["missing"] == ["web"]
    assert result["different"] == [{"name": "db", "changes": {"cpus": {"model": 4, "live": 8}, "power": {"model": "on", "live": "off"}}}]
    assert result["extra"] == ["stray"]
    assert result["to_remove"] == ["old"]
    lines = _estate.describe("c", result)
    assert lines[0] == "c: 4 difference(s)"
    assert "  ~ db: cpus 8 -> 4, power off -> on" in lines
    assert "  ? stray: exists but is not in the model (left alone)" in lines


def test_network_order_does_not_matter_but_membership_does():
    assert plan(web={"networks": ["servers", "dmz"]})["different"] == []
    changed = plan(web={"networks": ["servers"]})["different"]
    assert changed == [{"name": "web", "changes": {"networks": {"model": ["dmz", "servers"], "live": ["servers"]}}}]


def test_a_vm_that_became_a_template_is_drift():
    assert plan(db={"template": True})["different"][0]["changes"] == {"template": {"model": False, "live": True}}
