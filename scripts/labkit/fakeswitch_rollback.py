"""IOS's Configuration Rollback Confirmed Change, taught to a fake-switches Cisco switch.

fake-switches 1.5 has neither ``archive`` nor ``configure replace``, so a change could only be
checked and undone from outside the switch. Real Catalyst IOS (12.2(33)SE and later, IOS XE) can
undo an unconfirmed change by itself, which is the only rollback that survives a change that cuts
the controller off. The lab's switches learn the part of it twinsite uses, after Cisco's
"Configuration Rollback Confirmed Change" and "Configuration Replace and Configuration Rollback"
guides:

- config mode ``archive`` with ``path <url>`` and ``maximum <n>`` (a prerequisite on IOS; shown in
  ``show running-config``);
- ``configure terminal revert timer <1-120>``: archive the running config, then enter config mode;
  unless ``configure confirm`` arrives within that many minutes, the switch puts the archived
  config back by itself;
- ``configure confirm``, ``configure revert now``, ``configure revert timer <minutes>``;
- ``show archive config rollback timer``: the pending timer, or that none is pending.

The archive is a deep copy of the switch's state (VLANs, ports, routes, VRFs) and the revert puts
it back whole, as ``configure replace`` would. The wording of the messages follows Cisco's guides
in spirit; it has never been compared with a device, and twinsite's module does not depend on it
beyond IOS's convention that a refused command prints a line starting with ``%``.

``minute_seconds`` shortens the simulated minute for tests (a lockout test that waits a real minute
per case would double the suite); the lab's own switches keep 60.
"""

from __future__ import annotations

import copy
import time

from fake_switches.cisco.command_processor.config import ConfigCommandProcessor
from fake_switches.cisco.command_processor.enabled import EnabledCommandProcessor
from fake_switches.command_processing.base_command_processor import BaseCommandProcessor

INVALID = "% Invalid input detected at '^' marker."


class ArchiveCommandProcessor(BaseCommandProcessor):
    """``(config-archive)#``: where the archive's path and size are set."""

    def get_prompt(self):
        return self.switch_configuration.name + "(config-archive)#"

    def do_path(self, *args):
        if len(args) != 1 or ":" not in args[0]:
            self.write_line(INVALID)
            return
        self.switch_configuration.archive_path = args[0]

    def do_no_path(self, *_):
        self.switch_configuration.archive_path = None

    def do_maximum(self, *args):
        if len(args) != 1 or not args[0].isdigit() or not 1 <= int(args[0]) <= 14:
            self.write_line(INVALID)
            return
        self.switch_configuration.archive_maximum = int(args[0])

    def do_exit(self):
        self.is_done = True


class Rollback:
    """One switch's archive and its pending revert timer (shared by every SSH session)."""

    def __init__(self, conf, minute_seconds: float, reactor):
        self.conf, self.minute_seconds, self.reactor = conf, minute_seconds, reactor
        self.call = None  # the pending revert (a Twisted DelayedCall), None when nothing is pending
        self.snapshot = None
        self.minutes = 0
        self.user = ""
        self.count = 0

    def _state(self):
        # One deepcopy for the four lists, so references between them (a port's VRF) stay consistent;
        # the memo keeps every back-reference to the switch pointing at the live switch.
        conf = self.conf
        return copy.deepcopy((conf.vlans, conf.ports, conf.static_routes, conf.vrfs), {id(conf): conf})

    def pending(self) -> bool:
        return self.call is not None and self.call.active()

    def start(self, minutes: int) -> str:
        self.snapshot = self._state()
        self.count += 1
        self.minutes = minutes
        self.call = self.reactor.callLater(minutes * self.minute_seconds, self.revert)
        stamp = time.strftime("%b-%d-%H-%M-%S", time.gmtime())
        return f"{self.conf.archive_path}-{stamp}-{self.count}"

    def reset(self, minutes: int) -> None:
        self.minutes = minutes
        self.call.reset(minutes * self.minute_seconds)

    def confirm(self) -> None:
        self.call.cancel()
        self.call, self.snapshot = None, None

    def revert(self) -> None:
        if self.call is not None and self.call.active():
            self.call.cancel()
        vlans, ports, routes, vrfs = copy.deepcopy(self.snapshot, {id(self.conf): self.conf})
        self.conf.vlans, self.conf.ports, self.conf.static_routes, self.conf.vrfs = vlans, ports, routes, vrfs
        self.call, self.snapshot = None, None


def teach(core, minute_seconds: float = 60.0, archive_path: str | None = None, reactor=None) -> None:
    """Give the switch behind ``core`` (a fake-switches Cisco core) the archive and the confirmed
    change. ``archive_path`` pre-sets ``archive`` / ``path`` (the lab's day-0 config)."""
    if reactor is None:
        from twisted.internet import reactor  # noqa: PLC0415 - the running reactor, only when serving
    conf = core.switch_configuration
    conf.archive_path, conf.archive_maximum = archive_path, None
    conf.rollback = Rollback(conf, minute_seconds, reactor)

    def do_archive(self, *_):
        self.move_to(ArchiveCommandProcessor())

    def do_no_archive(self, *_):
        self.switch_configuration.archive_path = self.switch_configuration.archive_maximum = None

    ConfigCommandProcessor.do_archive = do_archive
    ConfigCommandProcessor.do_no_archive = do_no_archive

    plain_configure = EnabledCommandProcessor.do_configure
    plain_show = EnabledCommandProcessor.do_show

    def do_configure(self, *args):
        words = [w.lower() for w in args]
        rollback = self.switch_configuration.rollback
        if words in ([], ["terminal"]) or (words and "terminal".startswith(words[0]) and len(words) == 1):
            return plain_configure(self)
        if len(words) == 4 and "terminal".startswith(words[0]) and words[1:3] == ["revert", "timer"]:
            minutes = _minutes(words[3])
            if minutes is None:
                return self.write_line(INVALID)
            if not self.switch_configuration.archive_path:
                return self.write_line("% Rollback Confirmed Change: configure an archive path first (archive / path)")
            if rollback.pending():
                return self.write_line("% Rollback Confirmed Change: a change is already waiting for its confirmation "
                                       "(configure confirm or configure revert now)")
            where = rollback.start(minutes)
            self.write_line(f"Rollback Confirmed Change: Backing up current running config to {where}")
            self.write_line("")
            return plain_configure(self)
        if words == ["confirm"]:
            if not rollback.pending():
                return self.write_line("% Rollback Confirmed Change: no change is waiting for its confirmation")
            rollback.confirm()
            return self.write_line("Rollback Confirmed Change: the change is confirmed")
        if words == ["revert", "now"]:
            if not rollback.pending():
                return self.write_line("% Rollback Confirmed Change: no change is waiting for its confirmation")
            rollback.revert()
            return self.write_line("Rollback Done")
        if len(words) == 3 and words[:2] == ["revert", "timer"]:
            minutes = _minutes(words[2])
            if minutes is None:
                return self.write_line(INVALID)
            if not rollback.pending():
                return self.write_line("% Rollback Confirmed Change: no change is waiting for its confirmation")
            return rollback.reset(minutes)
        return self.write_line(INVALID)

    def do_show(self, *args):
        words = [w.lower() for w in args]
        if words == ["archive", "config", "rollback", "timer"]:
            rollback = self.switch_configuration.rollback
            if not rollback.pending():
                return self.write_line("% No Rollback Confirmed Change pending")
            left = max(0, int(rollback.call.getTime() - rollback.reactor.seconds()))
            self.write_line("Timer type: Confirmed Commit")
            self.write_line(f"Timer value: {rollback.minutes} min")
            return self.write_line(f"Remaining time: {left // 60} min {left % 60} sec (in simulated minutes of "
                                   f"{rollback.minute_seconds:g} s)")
        if words == ["archive"]:
            conf = self.switch_configuration
            return self.write_line(f"Archive path: {conf.archive_path or 'not configured'}")
        return plain_show(self, *args)

    plain_show_run = EnabledCommandProcessor.show_run

    def show_run(self):
        """fake-switches' running-config, with the archive block before ``end``."""
        conf = self.switch_configuration
        if not conf.archive_path:
            return plain_show_run(self)
        block = ["archive", f" path {conf.archive_path}"] + ([f" maximum {conf.archive_maximum}"] if conf.archive_maximum else [])
        write_line = self.write_line
        lines: list[str] = []
        self.write_line = lines.append
        try:
            plain_show_run(self)
        finally:
            self.write_line = write_line
        body = lines[3:]  # "Building configuration...", "", "Current configuration : N bytes"
        at = len(body) - 1 - body[::-1].index("end")
        body[at:at] = [*block, "!"]
        self.write_line("Building configuration...")
        self.write_line("")
        size = len("\n".join(body)) + 1
        self.write_line(f"Current configuration : {size} bytes")
        for line in body:
            self.write_line(line)

    EnabledCommandProcessor.do_configure = do_configure
    EnabledCommandProcessor.do_show = do_show
    EnabledCommandProcessor.show_run = show_run


def _minutes(text: str) -> int | None:
    return int(text) if text.isdigit() and 1 <= int(text) <= 120 else None
