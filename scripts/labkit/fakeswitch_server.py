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
