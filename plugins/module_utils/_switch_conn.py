# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One connection wrapper per switch platform: where the device quirks live, so the switch module
only reads a config, sends commands and reads it again.

- ``IosCli``: Cisco IOS over SSH with netmiko (the lab's fake-switches instances, a real Catalyst).
  It knows that IOS reports a refused line in the middle of the echoed session rather than with an
  exit code, that ``enable`` may or may not be needed, that ``write memory`` saves, and how IOS's
  Configuration Rollback Confirmed Change is driven (``configure terminal revert timer``,
  ``configure confirm``, ``configure revert now``; it needs an ``archive`` ``path``).
- ``OvsCli``: Open vSwitch on the host the module runs on (``ovs-vsctl``). Every change is one
  ``ovs-vsctl`` invocation: one OVSDB transaction, all of it or nothing.

Each raises ``TwinsiteError(reason, obj=<switch>, action=<what>)`` so a failure reads
"<action> of <switch> failed: <reason>".
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import subprocess

from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError

try:
    from netmiko import ConnectHandler
    from netmiko.exceptions import NetmikoAuthenticationException, NetmikoTimeoutException

    HAS_NETMIKO = True
except ImportError:  # reported by the module with a clear message
    HAS_NETMIKO = False

# What IOS (and fake-switches) print for a refused line. IOS keeps going after a refused line and
# ends with a normal prompt, so the echo is the only place an error shows.
IOS_ERROR = re.compile(r"^\s*(%.*|Command rejected.*|No such command.*|Invalid input.*|Incomplete command.*|Ambiguous command.*)$",
                       re.MULTILINE)
NETMIKO_TYPES = {"cisco_ios": "cisco_ios", "arista_eos": "arista_eos"}
# IOS's archive block (``archive`` / `` path flash:name``): without a path, IOS refuses a revert timer.
ARCHIVE_PATH = re.compile(r"^archive[ \t]*\n(?:[ \t]+.*\n)*?[ \t]+path[ \t]+(\S+)", re.MULTILINE)
# ``show archive config rollback timer`` lists the timer (type, value, remaining time) while a
# confirmed change is pending, and a "no ... pending" line otherwise.
PENDING_TIMER = re.compile(r"^\s*Timer\s+(type|value)\b", re.MULTILINE | re.IGNORECASE)


def archive_path(running_config: str) -> str | None:
    """The ``archive`` ``path`` of an IOS running-config, or None: IOS's timed rollback needs one."""
    match = ARCHIVE_PATH.search(running_config.replace("\r\n", "\n") + "\n")
    return match.group(1) if match else None


class IosCli:
    """A CLI session to an IOS-like switch (``platform`` cisco_ios or arista_eos)."""

    def __init__(self, switch: str, platform: str, host: str, port: int, username: str, password: str,
                 secret: str | None = None, timeout: float = 30, login_gate=None):
        if not HAS_NETMIKO:
            raise TwinsiteError("the Python package netmiko is not installed on the controller (make setup)", obj=switch,
                                action="connect")
        self.switch, self.platform = switch, platform
        self.params = {"device_type": NETMIKO_TYPES[platform], "host": host, "port": port, "username": username,
                       "password": password, "secret": secret if secret is not None else password, "timeout": timeout,
                       "conn_timeout": timeout, "auth_timeout": timeout}
        self.conn = None
        # Held while logging in (SSH handshake, authentication, enable): a semaphore shared by the
        # switches of one fleet run caps the logins at once, which is what an AAA server counts.
        self.login_gate = login_gate if login_gate is not None else contextlib.nullcontext()

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc):
        self.close()

    def open(self) -> None:
        where = f"{self.params['host']}:{self.params['port']}"
        try:
            # The gate is held for what an AAA server sees: the SSH login (handshake, password, the
            # shell) and `enable`. netmiko's session preparation between the two (finding the prompt,
            # terminal width and length) is mostly its fixed waits, 0.17 s a session: held under a
            # cap of 10, they made 100 logins take 3 s where the switches were idle half the time.
            # (_modify_connection_params and _try_session_preparation are the two halves of netmiko's
            # own connect, BaseConnection._open, pinned with netmiko in requirements.txt.)
            conn = ConnectHandler(**self.params, auto_connect=False)
            with self.login_gate:
                conn._modify_connection_params()
                conn.establish_connection()
            try:
                conn._try_session_preparation()
                if not conn.check_enable_mode():
                    with self.login_gate:
                        conn.enable()
            except BaseException:
                with contextlib.suppress(Exception):  # a half-open session is closed, not left to the switch
                    conn.disconnect()
                raise
            self.conn = conn
        except NetmikoAuthenticationException:
            raise TwinsiteError(f"{where} refused the login of {self.params['username']!r} (check the switch's username and password)",
                                obj=self.switch, action="log in") from None
        except (NetmikoTimeoutException, OSError) as exc:
            raise TwinsiteError(f"{where} did not answer over SSH ({exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''})",
                                obj=self.switch, action="connect") from None

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):  # closing a dead session must not hide the real error
                self.conn.disconnect()
            self.conn = None

    def running_config(self) -> str:
        try:
            return self.conn.send_command("show running-config", read_timeout=60)
        except Exception as exc:  # noqa: BLE001 - netmiko raises several unrelated types
            raise TwinsiteError(f"show running-config failed: {exc}", obj=self.switch, action="read the config") from None

    def configure(self, commands: list[str], revert_minutes: int | None = None) -> str:
        """Send ``commands`` in config mode; raise naming the first line the switch refused. With
        ``revert_minutes``, config mode is entered with ``configure terminal revert timer N``: the
        switch archives its running config first and puts it back by itself unless
        ``confirm_change`` follows within N minutes."""
        if not commands:
            return ""
        entry = f"configure terminal revert timer {revert_minutes}" if revert_minutes else None
        if entry:
            # A refused entry leaves the session in exec mode, where netmiko would wait for a config
            # prompt that never comes: send it alone first, to read IOS's answer.
            self._exec_checked(entry, "arm the revert timer")
        try:
            output = self.conn.send_config_set(commands, read_timeout=120, cmd_verify=True, enter_config_mode=entry is None)
        except Exception as exc:  # noqa: BLE001
            raise TwinsiteError(f"the session broke while sending {len(commands)} lines: {exc}", obj=self.switch,
                                action="configure") from None
        refused = IOS_ERROR.search(output)
        if refused:
            raise TwinsiteError(f"the switch refused a line: {refused.group(1).strip()!r} (session: {output[-600:]!r})",
                                obj=self.switch, action="configure")
        return output

    def _exec(self, command: str, action: str) -> str:
        try:
            return self.conn.send_command(command, read_timeout=120, expect_string=r"[>#]\s*$")
        except Exception as exc:  # noqa: BLE001 - netmiko raises several unrelated types
            raise TwinsiteError(f"{command!r} failed: {exc}", obj=self.switch, action=action) from None

    def _exec_checked(self, command: str, action: str) -> None:
        """``_exec``, raising with IOS's answer when the switch refuses the command (a ``%`` line)."""
        refused = IOS_ERROR.search(self._exec(command, action))
        if refused:
            raise TwinsiteError(f"the switch refused {command!r}: {refused.group(1).strip()!r}", obj=self.switch, action=action)

    def revert_pending(self) -> bool:
        """True while a change made under a revert timer waits for ``configure confirm``."""
        return bool(PENDING_TIMER.search(self._exec("show archive config rollback timer", "read the revert timer")))

    def confirm_change(self) -> None:
        """``configure confirm``: the switch keeps the change and stops its revert timer."""
        self._exec_checked("configure confirm", "confirm the change")

    def revert_now(self) -> None:
        """``configure revert now``: the switch puts its archived config back at once."""
        self._exec_checked("configure revert now", "revert the change")

    def save(self) -> None:
        """netmiko's save_config: ``write mem`` on IOS, ``copy running-config startup-config`` on EOS,
        waiting for the prompt (a send_command_timing waited 2 s of silence on every switch)."""
        try:
            output = self.conn.save_config()
        except Exception as exc:  # noqa: BLE001
            raise TwinsiteError(f"saving failed: {exc}", obj=self.switch, action="save the config") from None
        refused = IOS_ERROR.search(output)
        if refused:
            raise TwinsiteError(f"{refused.group(1).strip()!r}", obj=self.switch, action="save the config")


class OvsCli:
    """``ovs-vsctl`` on this host, for the bridge ``bridge``. ``run`` is injectable for tests
    (argv -> (rc, stdout, stderr)); the module passes AnsibleModule.run_command."""

    PORT_COLUMNS = "name,tag,trunks,vlan_mode,interfaces,lacp,external_ids"

    def __init__(self, switch: str, bridge: str = "br0", vsctl: str = "ovs-vsctl", run=None, timeout: int = 10, ip: str = "ip"):
        self.switch, self.bridge, self.vsctl, self.timeout, self.ip = switch, bridge, vsctl, timeout, ip
        self.run = run or self._subprocess

    @staticmethod
    def _subprocess(argv: list[str]) -> tuple[int, str, str]:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603 - fixed binary, argv list
        return proc.returncode, proc.stdout, proc.stderr

    def _call(self, args: list[str], action: str) -> str:
        argv = [self.vsctl, f"--timeout={self.timeout}", *args]
        rc, out, err = self.run(argv)
        if rc != 0:
            raise TwinsiteError(f"`{shlex.join(argv)}` exited {rc}: {(err or out).strip()}", obj=self.switch, action=action)
        return out

    def read(self) -> tuple[dict, dict]:
        """The bridge's ports and the interfaces they reference, as OVSDB JSON documents."""
        bridges = self._call(["list-br"], "read the bridges").split()
        if self.bridge not in bridges:
            raise TwinsiteError(f"there is no bridge {self.bridge!r} (bridges: {', '.join(bridges) or 'none'})", obj=self.switch,
                                action="read the config")
        names = set(self._call(["list-ports", self.bridge], "read the ports").split())
        ports = json.loads(self._call(["--format=json", f"--columns={self.PORT_COLUMNS}", "list", "port"], "read the ports"))
        # Only this bridge's ports (a host may have several bridges).
        name_at = ports["headings"].index("name")
        ports["data"] = [row for row in ports["data"] if row[name_at] in names]
        interfaces = json.loads(self._call(["--format=json", "--columns=_uuid,name,type", "list", "interface"], "read the interfaces"))
        return ports, interfaces

    def addresses(self) -> list:
        """``ip -j addr show``: the kernel's side of the SVIs (their addresses, up or down)."""
        rc, out, err = self.run([self.ip, "-j", "addr", "show"])
        if rc != 0:
            raise TwinsiteError(f"`{self.ip} -j addr show` exited {rc}: {(err or out).strip()}", obj=self.switch, action="read the addresses")
        try:
            return json.loads(out)
        except ValueError as exc:
            raise TwinsiteError(f"`{self.ip} -j addr show` printed no JSON ({exc})", obj=self.switch, action="read the addresses") from None

    def ip_commands(self, operations: list[list[str]]) -> None:
        """Each ``ip`` command in turn (the kernel has no transaction); the first that fails stops."""
        for op in operations:
            argv = [self.ip, *op]
            rc, out, err = self.run(argv)
            if rc != 0:
                raise TwinsiteError(f"`{shlex.join(argv)}` exited {rc}: {(err or out).strip()}", obj=self.switch, action="set an SVI's address")

    def transaction(self, operations: list[list[str]]) -> None:
        """All ``operations`` as one ovs-vsctl call: OVSDB applies them together or not at all."""
        if operations:
            self._call(self.command_line(operations)[1:], "configure")

    @staticmethod
    def command_line(operations: list[list[str]], vsctl: str = "ovs-vsctl") -> list[str]:
        """The argv of the one call that applies ``operations`` (for a rollback timer)."""
        argv = [vsctl]
        for op in operations:
            argv += (["--"] if len(argv) > 1 else []) + op
        return argv
