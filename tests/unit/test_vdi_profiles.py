"""Zero-client connection profiles of a VDI pool: the exact bytes of each format (Horizon URI and
INI, .rdp with CRLF, virt-viewer .vv), the protocol defaults, and the values that must be refused
because they would add lines or keys to a profile."""

from __future__ import annotations

import pytest

from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError
from ansible_collections.twinsite.dc.plugins.module_utils._vdi_profiles import horizon_uri, profiles

HORIZON = {"type": "horizon", "url": "https://horizon.town.example:443", "username": "svc-twinsite", "password": "x", "domain": "TOWN"}
DESKTOPS = ["vdi-staff-001", "vdi-staff-002"]


def test_horizon_pool_gets_a_uri_and_an_ini():
    pool = {"name": "staff", "display_name": "Staff desktops", "entitlements": ["town-staff"]}
    uri = "vmware-view://horizon.town.example/Staff%20desktops?action=start-session&desktopProtocol=BLAST"
    assert profiles(pool, HORIZON, DESKTOPS) == {
        "staff.horizon-uri": uri + "\n",
        "staff.ini": ("[pool]\n"
                      "broker = horizon.town.example\n"
                      "display_name = Staff desktops\n"
                      "name = staff\n"
                      "protocol = blast\n"
                      f"uri = {uri}\n"),
    }


@pytest.mark.parametrize(("protocol", "name"), [("blast", "BLAST"), ("pcoip", "PCOIP"), ("rdp", "RDP")])
def test_horizon_protocols(protocol, name):
    files = profiles({"name": "staff", "protocol": protocol}, HORIZON, DESKTOPS)
    assert files["staff.horizon-uri"] == f"vmware-view://horizon.town.example/staff?action=start-session&desktopProtocol={name}\n"
    assert f"protocol = {protocol}\n" in files["staff.ini"]


def test_horizon_uri_keeps_a_port_that_is_not_443_and_encodes_the_path():
    assert horizon_uri("https://cs1.town.example:8443/", "Büro 2/a", "pcoip") == (
        "vmware-view://cs1.town.example:8443/B%C3%BCro%202%2Fa?action=start-session&desktopProtocol=PCOIP")
    assert horizon_uri("cs1.town.example", "staff", "rdp") == "vmware-view://cs1.town.example/staff?action=start-session&desktopProtocol=RDP"


def test_rdp_profile_without_a_broker_has_crlf_and_sorted_settings():
    pool = {"name": "staff", "address": "rds.town.example"}
    for broker in (None, {"type": "none"}, {"type": "file", "path": "/var/lib/twinsite/vdi/broker.json"}):
        assert profiles(pool, broker, DESKTOPS) == {"staff.rdp": (
            "audiomode:i:0\r\n"
            "autoreconnection enabled:i:1\r\n"
            "full address:s:rds.town.example\r\n"
            "prompt for credentials:i:1\r\n"
            "redirectprinters:i:1\r\n"
            "screen mode id:i:2\r\n"
            "use multimon:i:1\r\n"
            "username:s:\r\n")}


def test_rdp_profile_through_a_gateway_on_a_port():
    pool = {"name": "staff", "protocol": "rdp", "address": "vdi-staff.town.example", "port": 3390, "gateway": "rdgw.town.example"}
    assert profiles(pool, None, DESKTOPS)["staff.rdp"] == (
        "audiomode:i:0\r\n"
        "autoreconnection enabled:i:1\r\n"
        "full address:s:vdi-staff.town.example:3390\r\n"
        "gatewayhostname:s:rdgw.town.example\r\n"
        "gatewayprofileusagemethod:i:1\r\n"
        "gatewayusagemethod:i:1\r\n"
        "prompt for credentials:i:1\r\n"
        "redirectprinters:i:1\r\n"
        "screen mode id:i:2\r\n"
        "use multimon:i:1\r\n"
        "username:s:\r\n")


def test_spice_profile_is_a_virt_viewer_file():
    pool = {"name": "lab", "protocol": "spice", "address": "spice.town.example", "port": 61000, "display_name": "Lab desktops"}
    assert profiles(pool, None, ["vdi-lab-001"]) == {"lab.vv": (
        "[virt-viewer]\n"
        "delete-this-file=0\n"
        "fullscreen=1\n"
        "host=spice.town.example\n"
        "port=61000\n"
        "title=Lab desktops\n"
        "type=spice\n")}
    with_tls = profiles({**pool, "port": None, "tls_port": 61001}, None, [])["lab.vv"]
    assert "port=5900\n" in with_tls and "tls-port=61001\n" in with_tls


def test_profiles_are_deterministic():
    pool = {"name": "staff", "display_name": "Staff", "protocol": "pcoip"}
    assert profiles(pool, HORIZON, DESKTOPS) == profiles(dict(reversed(list(pool.items()))), dict(HORIZON), list(reversed(DESKTOPS)))


@pytest.mark.parametrize(("pool", "broker", "message"), [
    ({"name": "staff", "display_name": "Staff\n[pool]"}, HORIZON, "display_name 'Staff\\n[pool]' holds a line break"),
    ({"name": "staff", "address": "rds.town.example\r\nalternate shell:s:cmd.exe"}, None, "address 'rds.town.example\\r\\nalternate shell"),
    ({"name": "staff", "address": "rds.town.example", "gateway": "gw\x00"}, None, "gateway 'gw\\x00' holds a line break or control character"),
    ({"name": "staff"}, None, "rdp needs the pool's address"),
    ({"name": "lab", "protocol": "spice"}, None, "spice needs the pool's address"),
    ({"name": "staff", "protocol": "blast", "address": "x"}, None, "blast needs a Horizon broker"),
    ({"name": "lab", "protocol": "spice"}, HORIZON, "Horizon does not broker spice"),
    ({"name": "staff", "protocol": "vnc"}, None, "unknown protocol 'vnc'"),
    ({"name": "staff", "address": "x", "port": "3389\n"}, None, "port '3389\\n' holds a line break"),
    ({"name": "staff", "address": "x", "port": 70000}, None, "port must be a TCP port (1-65535), found 70000"),
    ({"name": "staff"}, {**HORIZON, "url": "https://"}, "the broker url 'https://' names no host"),
])
def test_values_that_would_break_a_profile_are_refused(pool, broker, message):
    with pytest.raises(TwinsiteError) as err:
        profiles(pool, broker, DESKTOPS)
    assert str(err.value).startswith(f"rendering profiles of {pool['name']} failed: ")
    assert message in str(err.value)


@pytest.mark.parametrize("name", ["../staff", "staff\n", "", None, ".hidden", "staff pool"])
def test_the_pool_name_must_be_a_safe_file_name(name):
    with pytest.raises(TwinsiteError, match="^rendering profiles of VDI pool failed: a pool name must be"):
        profiles({"name": name, "address": "x"}, None, [])


def test_a_desktop_name_with_a_line_break_is_refused():
    with pytest.raises(TwinsiteError, match="desktop name 'vdi-1\\\\nx' holds a line break"):
        profiles({"name": "staff", "address": "x"}, None, ["vdi-1\nx"])
