"""The IOS connection wrapper's reading of the archive and of the revert timer: what decides
whether a change goes in under the switch's own timed rollback."""

from __future__ import annotations

import pytest

from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError
from ansible_collections.twinsite.dc.plugins.module_utils._switch_conn import IosCli, OvsCli, archive_path

RUNNING = """Building configuration...

Current configuration : 120 bytes
version 15.2
!
hostname accsw1
!
interface Vlan10
 ip address 172.31.10.71 255.255.255.0
!
archive
 log config
  logging enable
 path flash:twinsite
 maximum 5
!
end
"""


def test_the_archive_path_is_read_from_the_archive_block_only():
    assert archive_path(RUNNING) == "flash:twinsite"
    assert archive_path(RUNNING.replace("\n", "\r\n")) == "flash:twinsite"
    assert archive_path(RUNNING.replace(" path flash:twinsite\n", "")) is None, "an archive without a path cannot revert"
    assert archive_path("hostname x\n!\nkron policy-list p\n path flash:elsewhere\n!\nend\n") is None
    assert archive_path("") is None


class FakeConn:
    """netmiko's session: answers per command, records what was sent."""

    def __init__(self, answers):
        self.answers, self.sent = answers, []

    def send_command(self, command, **_):
        self.sent.append(command)
        return self.answers.get(command, "")

    def send_config_set(self, commands, **kwargs):
        self.sent.append(("config", list(commands), kwargs.get("enter_config_mode", True)))
        return "accsw1(config)#end\naccsw1#"


def cli(answers) -> IosCli:
    c = IosCli.__new__(IosCli)
    c.switch, c.platform, c.conn = "accsw1", "cisco_ios", FakeConn(answers)
    return c


def test_the_revert_timer_is_armed_before_config_mode_and_a_refusal_sends_nothing():
    c = cli({"configure terminal revert timer 2": "Rollback Confirmed Change: Backing up ...\naccsw1(config)#"})
    c.configure(["vlan 30"], revert_minutes=2)
    assert c.conn.sent == ["configure terminal revert timer 2", ("config", ["vlan 30"], False)]

    refused = cli({"configure terminal revert timer 1": "% Rollback Confirmed Change: configure an archive path first\naccsw1#"})
    with pytest.raises(TwinsiteError, match="refused 'configure terminal revert timer 1'"):
        refused.configure(["vlan 30"], revert_minutes=1)
    assert refused.conn.sent == ["configure terminal revert timer 1"], "nothing may be sent after a refused timer"


def test_a_pending_timer_is_told_from_none_and_confirm_reports_a_refusal():
    pending = cli({"show archive config rollback timer": "Timer type: Confirmed Commit\nTimer value: 1 min\nRemaining time: 0 min 40 sec"})
    assert pending.revert_pending() is True
    assert cli({"show archive config rollback timer": "% No Rollback Confirmed Change pending"}).revert_pending() is False
    with pytest.raises(TwinsiteError, match="confirm the change of accsw1 failed"):
        cli({"configure confirm": "% Rollback Confirmed Change: no change is waiting"}).confirm_change()


def test_ovs_cli_reads_the_kernel_and_stops_at_the_first_ip_command_that_fails():
    calls = []

    def run(argv):
        calls.append(argv)
        if argv[1:3] == ["-j", "addr"]:
            return 0, '[{"ifname": "vlan20", "flags": ["UP"], "addr_info": []}]', ""
        return (2, "", "RTNETLINK answers: File exists") if argv[-1] == "vlan30" else (0, "", "")

    cli = OvsCli("core1", run=run, ip="/usr/sbin/ip")
    assert cli.addresses() == [{"ifname": "vlan20", "flags": ["UP"], "addr_info": []}]
    with pytest.raises(TwinsiteError) as info:
        cli.ip_commands([["link", "set", "dev", "vlan20", "up"], ["addr", "add", "10.0.0.1/24", "dev", "vlan30"], ["link", "set", "dev", "x", "up"]])
    assert str(info.value) == ("set an SVI's address of core1 failed: `/usr/sbin/ip addr add 10.0.0.1/24 dev vlan30` exited 2: "
                               "RTNETLINK answers: File exists")
    assert calls[-1] == ["/usr/sbin/ip", "addr", "add", "10.0.0.1/24", "dev", "vlan30"]  # the third never ran


def test_ovs_cli_says_when_ip_prints_no_json():
    cli = OvsCli("core1", run=lambda argv: (0, "not json", ""))
    with pytest.raises(TwinsiteError, match="read the addresses of core1 failed: `ip -j addr show` printed no JSON"):
        cli.addresses()
