"""The Cisco-CLI access switch (fake-switches) keeps configuration pushed over SSH by netmiko."""

from __future__ import annotations

from netmiko import ConnectHandler


def _connect(spec):
    return ConnectHandler(device_type="cisco_ios", host=spec["host"], port=spec["port"],
                          username=spec["username"], password=spec["password"], secret=spec["password"],
                          fast_cli=False)


def test_vlan_pushed_in_one_session_is_seen_in_the_next(lab):
    spec = lab.model["fake_switches"][0]
    conn = _connect(spec)
    try:
        conn.enable()
        conn.send_config_set(["vlan 777", "name TWINSITE_TEST", "exit"], exit_config_mode=True)
    finally:
        conn.disconnect()
    conn = _connect(spec)
    try:
        conn.enable()
        assert "TWINSITE_TEST" in conn.send_command("show vlan brief")
        conn.send_config_set(["no vlan 777"], exit_config_mode=True)
        assert "TWINSITE_TEST" not in conn.send_command("show vlan brief")
    finally:
        conn.disconnect()
