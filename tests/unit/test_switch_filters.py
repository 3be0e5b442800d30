"""The switch filters the role uses: the model's cross-checks and the config store's file names."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from test_switching import LAGS, NETWORKS, PORTS

from ansible_collections.twinsite.dc.plugins.filter.switching import store_file, switch_findings


def test_the_lab_core_is_clean_and_a_missing_zone_vlan_is_named():
    assert switch_findings(PORTS, NETWORKS, LAGS, firewall_networks=["drill"], switches=["core1", "core2"]) == []
    ports = [dict(p, networks=["mgmt"]) if p["port"] == "peer1" else p for p in PORTS]
    findings = switch_findings(ports, NETWORKS, LAGS, firewall_networks=["servers"], switches=["core1"])
    assert findings == ["dc_switch_ports[5].networks: trunk 'peer1' of core1 does not carry VLAN 20 (firewall_networks[0]); "
                        "add the network to it"]


def test_a_section_that_is_not_a_list_is_a_clear_error():
    with pytest.raises(AnsibleFilterError, match="networks must be a list, found dict"):
        switch_findings(PORTS, {"name": "mgmt"})


def test_store_file_names_the_file_by_what_it_holds():
    assert store_file(["core1", '{"ports": {}}']) == {"name": "core1.json", "content": '{"ports": {}}'}
    assert store_file(["accsw1", "version 12.1\n"]) == {"name": "accsw1.cfg", "content": "version 12.1\n"}
    with pytest.raises(AnsibleFilterError, match="expected \\[switch, config text\\]"):
        store_file(["accsw1"])
