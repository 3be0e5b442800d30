"""Run one fake-switches Cisco IOS switch on an SSH port until SIGTERM.

Started by ``fakeswitch.up`` as a background process (``procs.start``); not meant to be imported.
We use our own launcher rather than fake-switches' ``fake-switches`` command because that command
(1.5.0) passes the password to the switch as bytes, so the ``enable`` password never matches and
every netmiko ``enable()`` fails; it also logs at DEBUG, which writes every typed line, passwords
included, to the log.

The password comes from the environment (``TWINSITE_SWITCH_PASSWORD``), not argv, so it does not
show in ``ps``. The switch's configuration lives in this process's memory: it survives SSH sessions
but not a restart of the process (a restarted switch is a factory-default switch, VLAN 1 only).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

PASSWORD_ENV = "TWINSITE_SWITCH_PASSWORD"  # noqa: S105 - the name of the variable, not a password


def _teach_end() -> None:
    """Make ``end`` leave configuration mode from any depth, as on a real IOS switch.

    fake-switches 1.5.0 knows only ``exit`` (one level up), but netmiko's ``send_config_set`` and
    Ansible's ``cisco.ios`` modules finish every change with ``end``; without this they fail with
    "Failed to exit configuration mode". ``(config)#`` is one processor; interface/VLAN modes are its
    sub-processor, so ``end`` there drops the sub-processor and finishes the config processor too.
    """
    from fake_switches.cisco.command_processor.config import ConfigCommandProcessor

    delegate = ConfigCommandProcessor.delegate_to_sub_processor

    def delegate_to_sub_processor(self, line):
        if line.strip() == "end":
            self.sub_processor = None
            self.is_done = True
            return True
        return delegate(self, line)

    def do_end(self):
        self.is_done = True

    ConfigCommandProcessor.delegate_to_sub_processor = delegate_to_sub_processor
    ConfigCommandProcessor.do_end = do_end


class _CoalescedOutput:
    """A switch session's output, sent as one SSH data message per turn of the reactor.

    fake-switches writes every echoed character, and every line of a command's output, to the SSH
    channel on its own, and Twisted sends each write as an SSH message of its own: a 16-line change
    came back as 329 messages, a ``show running-config`` as 99, each encrypted and MACed by the
    switch and checked by the client. A real switch's terminal line buffers its output and sends
    what it has per read of the input, and the CPU those messages cost both sides (the switches run
    on the controller's cores in the lab) made the lab's switches slower than the controller talking
    to them. The bytes and their order are unchanged; only how they are split into messages is."""

    def __init__(self, transport, reactor):
        self._transport, self._reactor = transport, reactor
        self._pending: list[bytes] = []
        self._call = None

    def write(self, data: bytes) -> None:
        self._pending.append(data)
        if self._call is None:
            self._call = self._reactor.callLater(0, self.flush)

    def writeSequence(self, seq) -> None:  # noqa: N802 - Twisted's ITransport name
        for data in seq:
            self.write(data)

    def flush(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        if self._pending:
            data, self._pending = b"".join(self._pending), []
            self._transport.write(data)

    def loseConnection(self) -> None:  # noqa: N802 - Twisted's ITransport name
        self.flush()
        self._transport.loseConnection()

    def __getattr__(self, name):
        return getattr(self._transport, name)


def _coalesce_output(reactor) -> None:
    """Give every SSH shell of this switch a ``_CoalescedOutput`` (fake-switches' own openShell,
    with the terminal's transport wrapped)."""
    from fake_switches.terminal.ssh import SwitchSSHShell
    from fake_switches.transports import ssh_service
    from twisted.conch.insults import insults
    from twisted.conch.ssh import session

    def open_shell(self, protocol):
        server_protocol = insults.ServerProtocol(SwitchSSHShell, self, switch_core=self.switch_core)
        server_protocol.makeConnection(_CoalescedOutput(protocol, reactor))
        protocol.makeConnection(session.wrapProtocol(server_protocol))

    ssh_service.SSHDemoAvatar.openShell = open_shell


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--hostname", required=True)
    parser.add_argument("--username", required=True)
    parser.add_argument("--listen-host", default="127.0.0.1")
    parser.add_argument("--listen-port", type=int, required=True)
    parser.add_argument("--archive-path", help="start with IOS `archive` / `path` set (day-0 config), e.g. flash:twinsite")
    parser.add_argument("--minute-seconds", type=float, default=60.0,
                        help="length of a simulated minute for `configure terminal revert timer` (tests shorten it)")
    args = parser.parse_args()

    password = os.environ.get(PASSWORD_ENV)
    if not password:
        print(f"fakeswitch: {PASSWORD_ENV} is not set", file=sys.stderr)
        return 2

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    # Imported here so a missing package gives one clear line, not an import traceback at the top.
    try:
        from fake_switches import switch_factory
        from fake_switches.transports.ssh_service import SwitchSshService
        from twisted.internet import reactor
    except ImportError as exc:
        print(f"fakeswitch: cannot import fake-switches ({exc}); run `make setup`", file=sys.stderr)
        return 2

    _teach_end()
    _coalesce_output(reactor)
    try:
        # The enable password must be str: the CLI compares typed lines (str) against it.
        core = switch_factory.SwitchFactory().get(args.model, args.hostname, password)
    except switch_factory.InvalidSwitchModel:
        known = ", ".join(sorted(switch_factory.DEFAULT_MAPPING))
        print(f"fakeswitch: unknown model {args.model!r}; known models: {known}", file=sys.stderr)
        return 2

    from fakeswitch_rollback import teach  # this script's directory is on sys.path

    teach(core, minute_seconds=args.minute_seconds, archive_path=args.archive_path, reactor=reactor)

    # Twisted's in-memory checker compares the SSH password as bytes.
    service = SwitchSshService(
        ip=args.listen_host,
        port=args.listen_port,
        switch_core=core,
        users={args.username: password.encode()},
    )
    service.hook_to_reactor(reactor)  # raises CannotListenError if the port is taken
    reactor.run()  # Twisted stops the reactor on SIGTERM/SIGINT
    return 0


if __name__ == "__main__":
    sys.exit(main())
