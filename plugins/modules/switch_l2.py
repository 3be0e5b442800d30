#!/usr/bin/python
# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: switch_l2
short_description: VLANs, access ports, trunks and LAGs of one switch, from the site model, with the resource-module states
version_added: 0.5.0
description:
  - Compiles the switch's part of the site model (O(networks), O(ports), O(lags)) into one
    vendor-neutral form, reads the switch, and sends what O(state) asks. Returns C(before),
    C(after) and C(commands) like the network resource modules.
  - Trunk-safe. With C(merged) a trunk's allowed VLAN list only grows (C(switchport trunk allowed vlan
    add), or a larger C(trunks) set on Open vSwitch); it is made exact only with C(replaced) or
    C(overridden). A merge that overwrote the list is how cisco.ios issue 699 cut VLANs off a trunk.
  - C(cisco_ios) and C(arista_eos) are reached over SSH with netmiko from where the module runs
    (run it on the controller, delegated to C(localhost)). C(linux_ovs) runs on the switch host and
    applies every change as one C(ovs-vsctl) transaction.
  - Safe apply (O(rollback_seconds)). On C(linux_ovs) a timer on the switch puts the previous port
    settings back after O(rollback_seconds) unless a later run with O(confirm=true), over a new
    connection, cancels it; so a change that cuts management undoes itself.
  - On C(cisco_ios) and C(arista_eos) the module checks the change over a second, new SSH session within
    O(rollback_seconds). When the running-config has an C(archive) with a C(path), the change goes in
    under IOS's own timer (C(configure terminal revert timer), whole minutes, at least 1). The check
    passing sends C(configure confirm), failing sends C(configure revert now); and a change that cuts
    every session off is put back by the switch itself when the timer ends. Without an archive, a failed
    check sends the commands that restore the previous config over the first session, which a change
    that kills every session cannot do. Result C(rollback.mode) says which (C(device) or C(session)).
  - Check mode sends nothing and returns the commands. C(--diff) shows the layer-2 config before
    and after.
  - Many CLI switches at once (O(fleet)) - one module process, one thread per switch, at most
    O(max_logins) logins at once. Each switch goes through the same steps as alone; one that fails
    does not stop the others (RV(switches) says per switch, RV(failed_switches) names the failed).
    From 20 switches on, the switches are dealt out to forked processes, one per CPU core and at
    least 10 switches each (a session costs netmiko and paramiko about 50 ms of CPU, and the
    threads of one process share one core); the cap on logins holds over them all.
options:
  switch:
    description:
      - The switch's name in the model (C(dc_switch_ports[].switch), C(dc_lags[].switch)).
      - One of O(switch) and O(fleet) is required.
    type: str
  fleet:
    description:
      - CLI switches (C(cisco_ios), C(arista_eos)) to converge from this one process, each with its own connection;
        every other option is shared. The result is per switch, in RV(switches).
    type: list
    elements: dict
    suboptions:
      switch: {description: The switch's name in the model., type: str, required: true}
      platform: {description: Its platform (default O(platform))., type: str, choices: [cisco_ios, arista_eos]}
      host: {description: Address of its SSH service., type: str, required: true}
      port: {description: Its SSH port., type: int, default: 22}
      username: {description: Its login (default O(username))., type: str}
      password: {description: Its password (default O(password))., type: str}
      secret: {description: Its enable secret (default O(secret))., type: str}
  fleet_keys:
    description:
      - With O(fleet), what each switch's entry in RV(switches) keeps besides C(changed), C(failed), C(msg) and
        C(diff), for example C([commands, rollback, stored]). Default, all of it. Each switch's config before and
        after (and its running-config) is large, and Ansible carries every byte of a result through its processes.
    type: list
    elements: str
  max_logins:
    description:
      - With O(fleet), how many switches may be logging in at once. A login holds the cap for what an AAA server
        (TACACS+, RADIUS) sees, the SSH login (handshake, password, shell) and C(enable), not for netmiko's
        preparation of the session in between (prompt, terminal width and length). AAA servers refuse logins above
        about ten at once; an established session does not count, so a switch's rollback check logs in under the
        same cap.
    type: int
    default: 10
  platform:
    description: How the switch is configured.
    type: str
    choices: [cisco_ios, arista_eos, linux_ovs]
    required: true
  state:
    description:
      - C(merged) adds and changes what the model says, removes nothing.
      - C(replaced) gives the ports the model names exactly the model's settings.
      - C(overridden) is C(replaced) plus a reset of every other port and removal of VLANs the model does not use.
      - C(deleted) resets the model's ports and removes its VLANs.
      - C(gathered) reads the switch; C(rendered) renders the model offline; C(parsed) parses O(running_config) offline.
    type: str
    choices: [merged, replaced, overridden, deleted, gathered, rendered, parsed]
    default: merged
  networks:
    description: The model's C(dc_networks) (name, vlan).
    type: list
    elements: dict
    default: []
  ports:
    description: The model's C(dc_switch_ports).
    type: list
    elements: dict
    default: []
  lags:
    description: The model's C(dc_lags).
    type: list
    elements: dict
    default: []
  svis:
    description:
      - The model's C(dc_switch_svis) (routed VLAN interfaces, e.g. the switch's management address).
      - On C(linux_ovs) an SVI is an internal port C(vlan<N>) in access VLAN N, its address set with C(ip) after the
        C(ovs-vsctl) transaction (RV(commands) lists both).
    type: list
    elements: dict
    default: []
  pairs:
    description:
      - The model's C(dc_switch_pairs) (the redundant core, two switches and their peer link).
      - On C(arista_eos) the switch's pair is its MLAG (C(mlag configuration)), rendered, read back (C(before), C(after),
        C(gathered), C(parsed) show it as C(mlag)) and diffed like the rest. C(merged), C(replaced) and C(overridden)
        send only the MLAG settings that differ; C(deleted) removes it (C(no mlag configuration)). A model that names
        no pair for the switch leaves its MLAG alone, even with C(overridden); C(merged) leaves a shut MLAG shut.
      - The device does not know the pair's name in the model, so a read-back MLAG has C(peer) empty and C(domain_id) 0,
        its C(domain-id) (the model's pair name) in C(pair).
      - An error for C(cisco_ios), which has no MLAG.
    type: list
    elements: dict
    default: []
  running_config:
    description:
      - >-
        For O(state=parsed). IOS/EOS C(show running-config) text, or for C(linux_ovs) a JSON object
        C({"ports": ..., "interfaces": ..., "addresses": ...}) of C(ovs-vsctl --format=json list port) and C(list interface)
        (with its C(type) column), and optionally C(ip -j addr show) for the SVIs' addresses (as the config store keeps it).
    type: str
  host:
    description: Address of the switch's SSH service (C(cisco_ios), C(arista_eos)).
    type: str
  port:
    description: SSH port.
    type: int
    default: 22
  username:
    description: Login name.
    type: str
  password:
    description: Login password (also the enable secret unless O(secret) is given).
    type: str
  secret:
    description: Enable secret.
    type: str
  timeout:
    description: Seconds to wait for the switch to answer.
    type: int
    default: 30
  bridge:
    description: The Open vSwitch bridge (C(linux_ovs)).
    type: str
    default: br0
  save:
    description: Save the running config (C(write memory)) after a change that passed its check (C(cisco_ios), C(arista_eos)).
    type: bool
    default: true
  rollback_seconds:
    description: Safe apply, see the description. 0 applies without a rollback.
    type: int
    default: 0
  confirm:
    description:
      - Do not apply. Check that the switch holds what O(state) asks of the model and cancel the
        rollback timer a previous run armed (C(linux_ovs); on IOS C(configure confirm), then C(write memory)
        when O(save)). Fails, leaving the timer to fire, when it does not.
    type: bool
    default: false
  leave_armed:
    description:
      - IOS with an C(archive) C(path) only. Apply under the revert timer, check over a new session, and
        leave the timer running instead of confirming (nor saving), for a later run with O(confirm=true)
        after checks of your own. Unconfirmed, the switch undoes the change by itself.
    type: bool
    default: false
  armed_hint:
    description:
      - With O(leave_armed), how to confirm, added to the message that says a switch undoes its change by itself
        unless confirmed.
    type: str
    default: "run this module again with confirm=true"
  store:
    description:
      - C(cisco_ios), C(arista_eos). The config store (a git repository on the controller, see
        M(twinsite.dc.config_store)). Before a change is sent, the running-config is committed there
        as C(<switch>.cfg). Switches configured at once take turns at the commit (a lock file).
    type: path
  state_dir:
    description: Where the rollback's restore script is kept on the switch host (C(linux_ovs)); the timer runs it.
    type: path
    default: /var/lib/twinsite/switch
attributes:
  check_mode:
    support: full
    description: Reads the switch, sends nothing, returns the commands.
  diff_mode:
    support: full
    description: The layer-2 config before and after, one line per VLAN and port.
requirements: [netmiko (cisco_ios, arista_eos), ovs-vsctl on the switch host (linux_ovs)]
author: twinsite engineers
"""

EXAMPLES = r"""
- name: Converge the access switch's VLANs and ports
  twinsite.dc.switch_l2:
    switch: "{{ inventory_hostname }}"
    platform: cisco_ios
    state: merged
    networks: "{{ dc_networks }}"
    ports: "{{ dc_switch_ports }}"
    lags: "{{ dc_lags }}"
    host: "{{ ansible_host }}"
    port: "{{ ansible_port }}"
    username: "{{ ansible_user }}"
    password: "{{ ansible_password }}"
  delegate_to: localhost

- name: Converge every access switch from one process, at most 10 logins at once
  twinsite.dc.switch_l2:
    fleet:
      - {switch: accsw1, host: 10.0.10.71, username: netops, password: "{{ vault_switch_password }}"}
      - {switch: accsw2, host: 10.0.10.72, username: netops, password: "{{ vault_switch_password }}"}
    max_logins: 10
    platform: cisco_ios
    networks: "{{ dc_networks }}"
    ports: "{{ dc_switch_ports }}"
    rollback_seconds: 60
  delegate_to: localhost
  run_once: true

- name: Change an Open vSwitch core switch, undone in 60 s unless confirmed
  twinsite.dc.switch_l2:
    switch: core1
    platform: linux_ovs
    state: replaced
    networks: "{{ dc_networks }}"
    ports: "{{ dc_switch_ports }}"
    rollback_seconds: 60
"""

RETURN = r"""
switches:
  description: With O(fleet), each switch's result (the keys below, or C(failed) and C(msg)), by switch name.
  returned: with O(fleet)
  type: dict
failed_switches:
  description: With O(fleet), the switches that failed (the module then fails, after every switch was tried).
  returned: with O(fleet)
  type: list
before:
  description: The switch's layer-2 config before the run (VLANs, access ports, trunks, LAGs, SVIs, and on C(arista_eos) the MLAG).
  returned: when the switch was read
  type: dict
after:
  description: The config read back after the change (the predicted one in check mode).
  returned: when the switch was read
  type: dict
commands:
  description: What was sent (or would be, in check mode). IOS config lines, or one ovs-vsctl command line per operation, then the ip commands of the SVIs.
  returned: always
  type: list
  elements: str
rendered:
  description: The model rendered for the platform (O(state=rendered)).
  returned: state is rendered
  type: list
  elements: str
gathered:
  description: The switch's config (O(state=gathered)).
  returned: state is gathered
  type: dict
parsed:
  description: O(running_config) parsed (O(state=parsed)).
  returned: state is parsed
  type: dict
backup:
  description:
    - The switch's config as read before the run, in its own syntax (running-config text, or the OVSDB JSON), for the config store.
    - A running-config's secrets (enable secret and password, user passwords, SNMP communities, TACACS+/RADIUS keys, key-strings,
      line passwords) are shown as C(<hidden>); the commit of O(store) holds them as read.
  returned: when the switch was read
  type: str
stored:
  description: The config store's commit holding the config before the change (O(store)).
  returned: when O(store) is set and the switch changed
  type: str
rollback:
  description:
    - The rollback armed or run by this call. C(linux_ovs) names the systemd unit; IOS says C(mode) (C(device),
      IOS's revert timer, or C(session), the check from outside), C(minutes) of the device timer and whether it was
      C(confirmed) or is still C(pending).
  returned: when O(rollback_seconds) > 0 or O(confirm=true)
  type: dict
  sample: {armed: true, unit: twinsite-switch-rollback-br0, seconds: 60}
"""

import concurrent.futures
import json
import multiprocessing
import multiprocessing.connection
import os
import shlex
import threading
import time
from dataclasses import dataclass

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError
from ansible_collections.twinsite.dc.plugins.module_utils._config_store import GroupCommit, StoreError
from ansible_collections.twinsite.dc.plugins.module_utils._config_store import commit as store_commit
from ansible_collections.twinsite.dc.plugins.module_utils._switch_conn import IosCli, OvsCli, archive_path
from ansible_collections.twinsite.dc.plugins.module_utils._switching import (
    ALL_VLANS,
    SwitchConfig,
    SwitchError,
    compile_switch,
    compress_vlans,
    diff_commands,
    eos_mlag_settings,
    mask_secrets,
    ovs_address_operations,
    ovs_commands_text,
    ovs_internal_interfaces,
    ovs_kernel_view,
    ovs_operations,
    ovs_restore_address_operations,
    ovs_restore_operations,
    ovs_svi_addresses,
    parse_arista_eos,
    parse_cisco_ios,
    parse_linux_ovs,
    render_arista_eos,
    render_cisco_ios,
    render_linux_ovs,
)

CHANGE_STATES = ("merged", "replaced", "overridden", "deleted")


def describe(cfg: SwitchConfig) -> str:
    """One line per VLAN and port: the neutral text ``--diff`` shows, whatever the platform."""
    lines = [f"vlan {v.id} {v.name}" for v in cfg.vlans]
    for p in cfg.access:
        lines.append(f"{p.name}: access vlan {p.vlan}" + (f"  # {p.description}" if p.description else ""))
    for t in cfg.trunks:
        carried = "all" if t.allowed == ALL_VLANS else compress_vlans(t.allowed)
        native = f" native {t.native}" if t.native is not None else ""
        lines.append(f"{t.name}: trunk vlans {carried}{native}" + (f"  # {t.description}" if t.description else ""))
    for g in cfg.lags:
        carried = "all" if g.allowed == ALL_VLANS else compress_vlans(g.allowed)
        lines.append(f"{g.name}: lag {g.number} {g.mode} members {','.join(g.members)} trunk vlans {carried}"
                     + (f"  # {g.description}" if g.description else ""))
    for v in cfg.svis:
        lines.append(f"Vlan{v.vlan}: address {v.address}" + (f"  # {v.description}" if v.description else ""))
    if cfg.mlag is not None:
        # as EOS holds it, the same words for the model's MLAG and one read back (which has no peer name)
        held = [f"{key} {value}" for key, value in eos_mlag_settings(cfg).items() if value is not None]
        lines.append("mlag: " + ", ".join(held + (["shutdown"] if cfg.mlag.shutdown else [])))
    return "\n".join(lines) + "\n"


# --- the platforms ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OvsChange:
    """A change of an OVS switch: the ovs-vsctl operations (one transaction), then the ``ip``
    commands of the SVIs' addresses, which are the kernel's and not in OVSDB."""

    vsctl: list
    ip: list

    def __len__(self) -> int:
        return len(self.vsctl) + len(self.ip)


class OvsSwitch:
    """The module's view of an Open vSwitch bridge on this host."""

    def __init__(self, module: AnsibleModule, switch: str):
        self.module = module
        p = module.params
        self.bridge, self.state_dir = p["bridge"], p["state_dir"]
        self.unit = f"twinsite-switch-rollback-{self.bridge}"
        vsctl = module.get_bin_path("ovs-vsctl")
        if vsctl is None:
            raise TwinsiteError("ovs-vsctl is not installed on this host (is it an Open vSwitch switch?)", obj=switch, action="read the config")
        ip = module.get_bin_path("ip")
        if ip is None:
            raise TwinsiteError("ip (iproute2) is not installed on this host: it reads and sets the SVIs' addresses", obj=switch,
                                action="read the config")
        self.cli = OvsCli(switch, self.bridge, vsctl, run=lambda argv: module.run_command(argv), ip=ip)
        self.switch = switch
        self.raw = None
        self.kernel = {}

    def read(self) -> SwitchConfig:
        self.raw = self.cli.read()
        try:
            self.kernel = ovs_kernel_view(self.cli.addresses())
            return parse_linux_ovs(*self.raw, switch=self.switch, bridge=self.bridge, kernel=self.kernel)
        except SwitchError as exc:
            raise TwinsiteError(f"cannot read what ovs-vsctl or ip printed: {exc}", obj=self.switch, action="read the config") from None

    def backup_text(self) -> str:
        # the addresses of the internal ports only: the SVIs', not the host's own management interface
        internal = ovs_internal_interfaces(self.raw[1])
        addresses = {name: link for name, link in self.kernel.items() if name in internal}
        return json.dumps({"ports": self.raw[0], "interfaces": self.raw[1], "addresses": addresses}, indent=1, sort_keys=True) + "\n"

    def operations(self, before, target, state):
        return OvsChange(ovs_operations(before, target, state, bridge=self.bridge),
                         ovs_address_operations(before, target, state, self.kernel))

    def _systemctl(self, *args, check=True):
        rc, out, err = self.module.run_command(["systemctl", *args])
        if check and rc != 0:
            raise TwinsiteError(f"systemctl {' '.join(args)}: {(err or out).strip()}", obj=self.switch, action="manage the rollback timer")
        return rc, out

    def rollback_pending(self) -> bool:
        rc, _ = self._systemctl("is-active", "--quiet", f"{self.unit}.timer", check=False)
        return rc == 0

    def arm(self, operations, seconds: int) -> dict:
        """Start the timer that restores the ports as read, before anything is sent."""
        if self.rollback_pending():
            raise TwinsiteError(f"a rollback from an earlier change is still pending ({self.unit}.timer): confirm it "
                                "(confirm: true) or let it fire, then run again", obj=self.switch, action="arm the rollback")
        script = self.restore_script(operations)
        os.makedirs(self.state_dir, mode=0o750, exist_ok=True)
        path = os.path.join(self.state_dir, f"rollback-{self.bridge}.sh")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(script)
        self._systemctl("reset-failed", f"{self.unit}.service", f"{self.unit}.timer", check=False)
        systemd_run = self.module.get_bin_path("systemd-run", required=True)
        rc, out, err = self.module.run_command([systemd_run, f"--unit={self.unit}", f"--on-active={seconds}s",
                                                "--timer-property=AccuracySec=100ms",
                                                f"--description=twinsite: undo the unconfirmed change of {self.bridge}", "/bin/sh", path])
        if rc != 0:
            raise TwinsiteError(f"systemd-run: {(err or out).strip()}", obj=self.switch, action="arm the rollback")
        return {"armed": True, "unit": self.unit, "seconds": seconds, "script": path,
                "restore": [line for line in script.splitlines() if line and not line.startswith(("#", "rc=", "exit"))]}

    def restore_script(self, change: OvsChange) -> str:
        """The shell script the timer runs: the bridge back as read (one ovs-vsctl transaction),
        then the addresses of the SVIs the change touched. Each command runs even if one before it
        failed, so as much as possible comes back; the script exits 1 if any failed."""
        restore = OvsCli.command_line(ovs_restore_operations(*self.raw, change.vsctl, bridge=self.bridge), self.cli.vsctl)
        addresses = ovs_restore_address_operations(self.raw[1], self.kernel, change.vsctl, change.ip)
        lines = [f"# Restores {self.bridge} as it was before the change of {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}", "rc=0",
                 shlex.join(restore) + " || rc=1"] + [shlex.join([self.cli.ip, *op]) + " || rc=1" for op in addresses]
        return "\n".join([*lines, "exit $rc"]) + "\n"

    def disarm(self) -> bool:
        if not self.rollback_pending():
            return False
        self._systemctl("stop", f"{self.unit}.timer")
        return True

    def roll_back_now(self) -> None:
        """Fire the restore at once (the post-change check failed), then drop the timer."""
        self._systemctl("start", f"{self.unit}.service")
        self._systemctl("stop", f"{self.unit}.timer", check=False)

    def apply(self, change: OvsChange) -> None:
        self.cli.transaction(change.vsctl)
        self.cli.ip_commands(change.ip)

    @staticmethod
    def commands(change: OvsChange) -> list[str]:
        return ovs_commands_text(change.vsctl) + [shlex.join(["ip", *op]) for op in change.ip]


class IosSwitch:
    """The module's view of an IOS-like switch reached over SSH."""

    def __init__(self, module: AnsibleModule, switch: str):
        p = module.params
        missing = [k for k in ("host", "username", "password") if not p[k]]
        if missing:
            raise TwinsiteError(f"platform {p['platform']} needs {', '.join(missing)}", obj=switch, action="connect")
        self.switch, self.platform = switch, p["platform"]
        self.args = (switch, p["platform"], p["host"], p["port"], p["username"], p["password"], p["secret"], p["timeout"])
        self.gate = getattr(module, "login_gate", None)
        self.cli = IosCli(*self.args, login_gate=self.gate)
        self.text = None

    def read(self) -> SwitchConfig:
        if self.cli.conn is None:
            self.cli.open()
        self.text = self.cli.running_config()
        return self._parse(self.text)

    def _parse(self, text):
        try:
            return parse_running_config(self.platform, text, self.switch)
        except ValueError as exc:
            raise TwinsiteError(f"cannot parse its running-config: {exc}", obj=self.switch, action="read the config") from None

    def backup_text(self) -> str:
        return self.text

    def operations(self, before, target, state):
        return diff_commands(before, target, state, platform=self.platform)

    @staticmethod
    def commands(operations) -> list[str]:
        return list(operations)

    def apply(self, operations, revert_minutes: int | None = None) -> None:
        self.cli.configure(operations, revert_minutes)

    def archive(self) -> str | None:
        """The switch's archive path: with one, IOS can undo an unconfirmed change by itself."""
        return archive_path(self.text or "")

    def revert_now(self, before: SwitchConfig, minutes: int) -> str:
        """``configure revert now`` over the first session; say whether the switch reads back as
        before (it puts its whole archived config back, not only the layer-2 part modelled here)."""
        try:
            self.cli.revert_now()
            left = diff_commands(self.read(), before, "overridden", platform=self.platform)
        except TwinsiteError as exc:
            return (f"'configure revert now' over the first session failed ({exc}): the switch puts its archived config back "
                    f"by itself when its revert timer ends (at most {minutes} min)")
        if left:
            return f"the switch reverted to its archived config, but still differs from the config read before ({left[:5]})"
        return "'configure revert now' put the archived config back: the switch reads back as before the change"

    def check_from_new_session(self, target, state, deadline: float) -> tuple[str | None, SwitchConfig | None]:
        """(None, the config read) when a new login works and the switch reads back as ``state``
        asks; else (why not, None)."""
        remaining = max(1, int(deadline - time.monotonic()))
        try:
            with IosCli(*self.args[:-1], timeout=min(self.args[-1], remaining), login_gate=self.gate) as second:
                now = self._parse(second.running_config())
        except TwinsiteError as exc:
            return f"a new session could not read the switch back ({exc})", None
        if time.monotonic() > deadline:
            return "the check did not finish within rollback_seconds", None
        left = diff_commands(now, target, state, platform=self.platform)
        return (f"the switch reads back different from the model: {left[:5]} still to do", None) if left else (None, now)

    def roll_back(self, before: SwitchConfig) -> str:
        """Put the layer-2 config back as ``before`` over the session that made the change, and
        say whether the switch reads back as it was."""
        try:
            commands = self._restore(self.read(), before)
            self.apply(commands)
            left = self._restore(self.read(), before)
        except TwinsiteError as exc:
            return f"the rollback over the first session failed too ({exc}): restore the config by hand from the config store"
        if left:
            return (f"sent {len(commands)} lines to restore the previous config, but the switch still differs from it "
                    f"({left[:5]}): restore it by hand from the config store")
        return f"rolled back with {len(commands)} lines over the first session; the switch reads back as before the change"

    def _restore(self, now: SwitchConfig, before: SwitchConfig) -> list[str]:
        """The commands that make ``now`` what ``before`` was. ``overridden`` leaves an MLAG the
        target does not name alone (see diff_commands); here the target is the config read before
        the change, and an MLAG it did not have is one this change made: it goes first."""
        commands = diff_commands(now, before, "overridden", platform=self.platform)
        if before.mlag is None and now.mlag is not None:
            commands = ["no mlag configuration"] + commands
        return commands

    def save(self):
        self.cli.save()

    def close(self):
        self.cli.close()


def parse_offline(platform: str, text: str, switch: str, bridge: str) -> SwitchConfig:
    if platform == "linux_ovs":
        try:
            doc = json.loads(text)
            kernel = doc.get("addresses") or {}
            if isinstance(kernel, list):  # ip -j addr show as printed
                kernel = ovs_kernel_view(kernel, "running_config.addresses")
            return parse_linux_ovs(doc["ports"], doc["interfaces"], switch=switch, bridge=bridge, kernel=kernel)
        except (ValueError, KeyError, TypeError) as exc:
            raise SwitchError("running_config", f"expected a JSON object with ports and interfaces (ovs-vsctl --format=json), "
                              f"could not read it: {exc}") from None
    try:
        return parse_running_config(platform, text, switch)
    except ValueError as exc:
        raise SwitchError("running_config", f"cannot parse it as {platform} running-config: {exc}") from None


def parse_running_config(platform: str, text: str, switch: str) -> SwitchConfig:
    """An IOS or EOS running-config; only EOS has an MLAG (``mlag configuration``) to read."""
    return parse_arista_eos(text, switch) if platform == "arista_eos" else parse_cisco_ios(text, switch)


def render(platform: str, cfg: SwitchConfig, bridge: str) -> list[str]:
    if platform == "linux_ovs":
        return ([shlex.join(["ovs-vsctl", *argv]) for argv in render_linux_ovs(cfg, bridge)]
                + [line for port, cidr in ovs_svi_addresses(cfg) for line in (f"ip addr replace {cidr} dev {port}", f"ip link set dev {port} up")])
    text = render_cisco_ios(cfg) if platform == "cisco_ios" else render_arista_eos(cfg)
    return text.splitlines()


def run(module: AnsibleModule) -> dict:
    p = module.params
    switch, platform, state = p["switch"], p["platform"], p["state"]
    target = None
    if state not in ("gathered", "parsed"):
        target = compile_switch(switch, p["networks"], p["ports"], p["lags"], svis=p["svis"], pairs=p["pairs"])
    if state == "rendered":
        return {"changed": False, "rendered": render(platform, target, p["bridge"]), "commands": []}
    if state == "parsed":
        if p["running_config"] is None:
            raise SwitchError("running_config", "state parsed needs running_config (the text to parse)")
        return {"changed": False, "parsed": parse_offline(platform, p["running_config"], switch, p["bridge"]).to_dict(), "commands": []}

    device = OvsSwitch(module, switch) if platform == "linux_ovs" else IosSwitch(module, switch)
    try:
        before = device.read()
        backup = device.backup_text()
        # A running-config holds secrets (enable secret, SNMP communities, keys): the result shows them
        # masked, since -v prints it and logs keep it; the config store (O(store)) gets the config as read.
        result = {"changed": False, "commands": [], "before": before.to_dict(),
                  "backup": backup if platform == "linux_ovs" else mask_secrets(backup)}
        if state == "gathered":
            result["gathered"] = result["before"]
            return result
        operations = device.operations(before, target, state)

        if p["confirm"]:
            if operations:
                raise TwinsiteError(f"the switch does not hold what the model asks ({len(operations)} operations still to do): not "
                                    "confirming, the rollback timer will restore the previous config", obj=switch, action="confirm")
            if platform == "linux_ovs":
                cancelled = device.disarm() if not module.check_mode else device.rollback_pending()
                result.update(changed=cancelled, rollback={"confirmed": cancelled, "unit": device.unit})
                return result
            pending = device.cli.revert_pending()
            if pending and not module.check_mode:
                device.cli.confirm_change()
                if p["save"]:
                    device.save()
            result.update(changed=pending, after=result["before"], rollback={"mode": "device", "confirmed": pending, "pending": False})
            return result

        result["commands"] = device.commands(operations)
        if not operations:
            result["after"] = result["before"]
            return result
        result["changed"] = True
        if module.check_mode:
            if module._diff:
                # Nothing was sent, so there is no "after" to read: the diff is what would be sent.
                result["diff"] = {"prepared": f"{switch} ({platform}, {state}) would get:\n" + "\n".join(result["commands"]) + "\n"}
            return result
        if module._diff:
            result["diff"] = {"before": describe(before), "before_header": f"{switch} (read)"}

        seconds = p["rollback_seconds"]
        if platform == "linux_ovs":
            if seconds > 0:
                result["rollback"] = device.arm(operations, seconds)
            try:
                device.apply(operations)
            except TwinsiteError as exc:
                # the transaction went in but an address did not: put everything back now, not at the timer's end
                if seconds > 0 and operations.vsctl:
                    device.roll_back_now()
                    raise TwinsiteError(f"{exc.reason}; the previous config was restored", obj=switch,
                                        action=exc.action or "apply the change") from None
                raise
            after = device.read()
            left = device.operations(after, target, state)
            if left:
                if seconds > 0:
                    device.roll_back_now()
                raise TwinsiteError(f"the switch reads back different from the model after the change ({device.commands(left)[:3]} "
                                    f"still to do){'; the previous config was restored' if seconds > 0 else ''}",
                                    obj=switch, action="check the change")
        else:
            if p["store"]:
                file = {"name": f"{switch}.cfg", "content": backup}
                group = getattr(module, "store_group", None)  # a fleet's switches share their commits
                try:
                    if group is not None:
                        result["stored"], _ = group.commit(switch, file)
                    else:
                        result["stored"], _ = store_commit(p["store"], [file], store_message([switch], state))
                except StoreError as exc:
                    raise TwinsiteError(f"{exc}; nothing was sent", obj=switch, action="back up the config") from None
            # IOS's own timer when the switch has an archive: it survives a change that cuts every session.
            minutes = -(-seconds // 60) if seconds > 0 and device.archive() else None
            if p["leave_armed"] and minutes is None:
                raise TwinsiteError("leave_armed needs rollback_seconds > 0 and an 'archive' with a 'path' in the switch's "
                                    "running-config (IOS's revert timer): nothing was sent", obj=switch, action="arm the revert timer")
            if minutes and device.cli.revert_pending():
                raise TwinsiteError("an earlier change still waits for its confirmation ('show archive config rollback timer'): confirm "
                                    "it (confirm: true) or let the switch revert it, then run again; nothing was sent", obj=switch,
                                    action="arm the revert timer")
            deadline = time.monotonic() + seconds
            device.apply(operations, minutes)
            pending = False
            if seconds > 0:
                problem, after = device.check_from_new_session(target, state, deadline)
                if problem:
                    undone = device.revert_now(before, minutes) if minutes else device.roll_back(before)
                    raise TwinsiteError(f"{problem}; {undone}", obj=switch, action="check the change")
                pending = bool(minutes) and p["leave_armed"]
                if minutes and not pending:
                    device.cli.confirm_change()
                result["rollback"] = {"mode": "device" if minutes else "session", "armed": pending, "checked": True, "seconds": seconds,
                                      "minutes": minutes, "confirmed": bool(minutes) and not pending, "pending": pending}
                if pending:
                    result["msg"] = (f"{switch} undoes this change by itself in {minutes} min unless confirmed: check what you need to, "
                                     f"then {p['armed_hint']}.")
            else:
                after = device.read()
            if p["save"] and not pending:
                device.save()
        result["after"] = after.to_dict()
        if "diff" in result:
            result["diff"].update(after=describe(after), after_header=f"{switch} (after)")
        return result
    finally:
        if isinstance(device, IosSwitch):
            device.close()


def store_message(switches: list[str], state: str) -> str:
    """The config store's commit message for the backups of ``switches`` taken before a change."""
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if len(switches) == 1:
        return f"{switches[0]}: before {state}, {when}"
    return f"before {state}: {len(switches)} switches ({', '.join(sorted(switches))}), {when}"


@dataclass
class FleetMember:
    """One switch of a fleet run, as ``run`` sees a module: its own params (the shared ones plus its
    connection), the run's check and diff modes, the fleet's login gate and its config-store commits."""

    params: dict
    check_mode: bool
    _diff: bool
    login_gate: object
    store_group: GroupCommit | None


def failure(switch: str | None, exc: Exception) -> dict:
    """The message (and model path) of a model that cannot be applied or of a switch that failed."""
    if isinstance(exc, SwitchError):
        return {"msg": f"{switch or 'fleet'}: the model cannot be applied: {exc}", "path": exc.path}
    return {"msg": str(exc)}


# A fleet is CPU-bound in one Python process: netmiko and paramiko cost about 50 ms of CPU per session,
# and threads share one core. Past this many switches per process, the fleet is split over forked
# processes, one per core the controller gives this process.
FLEET_PER_PROCESS = 10


def fleet_processes(count: int) -> int:
    """How many processes configure ``count`` switches: one per core, at least FLEET_PER_PROCESS switches each."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, count // FLEET_PER_PROCESS))


def run_threads(members: list[dict], check_mode: bool, diff: bool, gate, store: str | None, state: str) -> dict:
    """``run`` for each of ``members`` in this process, one thread each: {switch: result}."""
    group = GroupCommit(store, lambda switches: store_message(switches, state)) if store else None

    def one(params: dict) -> dict:
        try:
            return run(FleetMember(params, check_mode, diff, gate, group))
        except (SwitchError, TwinsiteError) as exc:
            return {"failed": True, "changed": False, **failure(params["switch"], exc)}
        except Exception as exc:  # noqa: BLE001 - one switch's bug must not lose the others' results
            return {"failed": True, "changed": False, "msg": f"{params['switch']}: unexpected {exc.__class__.__name__}: {exc}"}

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(len(members), 64))) as pool:
        return dict(zip([m["switch"] for m in members], pool.map(one, members), strict=True))


class SharedLoginGate:
    """The cap on logins at once over forked processes: a semaphore, and per process how many of its
    slots that process holds, so that the slots of a process that died holding them are given back
    (else the other processes would wait for them for ever). A process that dies between taking a
    slot and counting it loses that one slot for the rest of the run: the cap errs low, never high."""

    def __init__(self, ctx, slots: int, processes: int):
        self.slots = ctx.BoundedSemaphore(slots)
        self.held = ctx.Array("i", processes)
        self.index = None  # which process this is: set in each one after the fork

    def __enter__(self):
        self.slots.acquire()
        with self.held.get_lock():
            self.held[self.index] += 1

    def __exit__(self, *exc):
        with self.held.get_lock():
            self.held[self.index] -= 1
        self.slots.release()

    def give_back(self, index: int) -> None:
        """The slots process ``index`` held when it died."""
        with self.held.get_lock():
            for _ in range(self.held[index]):
                self.slots.release()
            self.held[index] = 0


def run_processes(members: list[dict], processes: int, check_mode: bool, diff: bool, max_logins: int, store: str | None,
                  state: str) -> dict:
    """``run_threads`` in ``processes`` forked processes, the switches dealt out in turn, one login
    gate for them all. A process that dies before it reports fails its switches (which it may have
    changed) and gives back the login slots it held."""
    ctx = multiprocessing.get_context("fork")  # the target and its arguments are inherited, not pickled
    gate = SharedLoginGate(ctx, max_logins, processes)
    pending = {}
    for index in range(processes):
        chunk = members[index::processes]
        reader, writer = ctx.Pipe(duplex=False)

        def work(index=index, chunk=chunk, writer=writer):
            gate.index = index
            writer.send(run_threads(chunk, check_mode, diff, gate, store, state))
            writer.close()

        proc = ctx.Process(target=work, daemon=True)
        proc.start()
        writer.close()  # the child's copy is the only one: its death is our EOF
        pending[reader] = (index, proc, chunk)
    results = {}
    while pending:  # whichever reports (or dies) first: a dead one's slots may be what the others wait for
        for reader in multiprocessing.connection.wait(list(pending)):
            index, proc, chunk = pending.pop(reader)
            try:
                results.update(reader.recv())
            except EOFError:
                proc.join()
                gate.give_back(index)
                for m in chunk:
                    results[m["switch"]] = {"failed": True, "changed": False, "msg": (
                        f"{m['switch']}: the process that configured it and {len(chunk) - 1} other switch(es) exited (code "
                        f"{proc.exitcode}) before it reported: the switch may have been changed; run again to see where it stands")}
            proc.join()
    return {m["switch"]: results[m["switch"]] for m in members}


def run_fleet(module: AnsibleModule) -> dict:
    """Every switch of O(fleet) from this module, one thread per switch (in one process per core
    past FLEET_PER_PROCESS switches each), at most O(max_logins) logins at once over them all (a
    session, once logged in, does not count). A switch that fails does not stop the others: its
    entry in ``switches`` says why, and the module fails at the end naming them."""
    p = module.params
    if any((item["platform"] or p["platform"]) == "linux_ovs" for item in p["fleet"]):
        raise SwitchError("fleet", "a fleet is for CLI switches (cisco_ios, arista_eos): on linux_ovs the module runs on each switch")
    if p["max_logins"] < 1:
        raise SwitchError("max_logins", f"expected 1 or more logins at once, found {p['max_logins']}")
    # each switch: the shared options, its own connection (a connection option it does not give is the shared one)
    members = [{**p, "fleet": None, **{k: v for k, v in item.items() if v is not None}} for item in p["fleet"]]
    names = [m["switch"] for m in members]
    if len(set(names)) != len(names):
        raise SwitchError("fleet", f"a switch appears twice: {sorted({n for n in names if names.count(n) > 1})}")
    processes = fleet_processes(len(members))
    if processes > 1:
        results = run_processes(members, processes, module.check_mode, module._diff, p["max_logins"], p["store"], p["state"])
    else:
        results = run_threads(members, module.check_mode, module._diff, threading.BoundedSemaphore(p["max_logins"]), p["store"], p["state"])
    if p.get("fleet_keys") is not None:
        keep = set(p["fleet_keys"]) | {"changed", "failed", "msg", "diff"}
        results = {name: {k: v for k, v in r.items() if k in keep} for name, r in results.items()}
    out = {"changed": any(r.get("changed") for r in results.values()), "switches": results,
           "failed_switches": [n for n, r in results.items() if r.get("failed")]}
    diffs = [r["diff"] for r in results.values() if "diff" in r]
    if diffs:
        out["diff"] = diffs
    return out


def main():
    module = AnsibleModule(
        argument_spec={
            "switch": {"type": "str"},
            "fleet": {"type": "list", "elements": "dict", "options": {
                "switch": {"type": "str", "required": True},
                "platform": {"type": "str", "choices": ["cisco_ios", "arista_eos"]},
                "host": {"type": "str", "required": True},
                "port": {"type": "int", "default": 22},
                "username": {"type": "str"},
                "password": {"type": "str", "no_log": True},
                "secret": {"type": "str", "no_log": True},
            }},
            "max_logins": {"type": "int", "default": 10},
            "fleet_keys": {"type": "list", "elements": "str"},
            "platform": {"type": "str", "required": True, "choices": ["cisco_ios", "arista_eos", "linux_ovs"]},
            "state": {"type": "str", "default": "merged",
                      "choices": ["merged", "replaced", "overridden", "deleted", "gathered", "rendered", "parsed"]},
            "networks": {"type": "list", "elements": "dict", "default": []},
            "ports": {"type": "list", "elements": "dict", "default": []},
            "lags": {"type": "list", "elements": "dict", "default": []},
            "svis": {"type": "list", "elements": "dict", "default": []},
            "pairs": {"type": "list", "elements": "dict", "default": []},
            "running_config": {"type": "str"},
            "host": {"type": "str"},
            "port": {"type": "int", "default": 22},
            "username": {"type": "str"},
            "password": {"type": "str", "no_log": True},
            "secret": {"type": "str", "no_log": True},
            "timeout": {"type": "int", "default": 30},
            "bridge": {"type": "str", "default": "br0"},
            "save": {"type": "bool", "default": True},
            "rollback_seconds": {"type": "int", "default": 0},
            "confirm": {"type": "bool", "default": False},
            "leave_armed": {"type": "bool", "default": False},
            "armed_hint": {"type": "str", "default": "run this module again with confirm=true"},
            "store": {"type": "path"},
            "state_dir": {"type": "path", "default": "/var/lib/twinsite/switch"},
        },
        required_one_of=[("switch", "fleet")],
        mutually_exclusive=[("switch", "fleet")],
        supports_check_mode=True,
    )
    if module.params["store"] and module.params["platform"] == "linux_ovs":
        module.fail_json(msg="store: the config store is on the controller; for linux_ovs (the module runs on the switch) the "
                             "core_switches role commits the backup from the controller (twinsite.dc.config_store)")
    if module.params["rollback_seconds"] < 0:
        module.fail_json(msg=f"rollback_seconds: expected 0 (no rollback) or more seconds, found {module.params['rollback_seconds']}")
    try:
        if module.params["fleet"] is not None:
            result = run_fleet(module)
            if result["failed_switches"]:
                module.fail_json(msg=f"{len(result['failed_switches'])} of {len(result['switches'])} switches failed: "
                                     + "; ".join(result["switches"][n]["msg"] for n in result["failed_switches"]), **result)
            module.exit_json(**result)
        module.exit_json(**run(module))
    except (SwitchError, TwinsiteError) as exc:
        module.fail_json(**failure(module.params["switch"], exc))


if __name__ == "__main__":
    main()
