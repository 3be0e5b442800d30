"""A fleet of access switches through playbooks/switches.yml as a site runs it: 20 fake-switches
Cisco IOS switches of this test's own (not the lab's accsw1), configured from one switch_l2 call on
the controller. With 20 switches on a machine with 2 cores or more, the module deals them out to
forked processes (under Ansible and Mitogen, as in production), the logins capped at 4 over them
all. Each switch ends up as the model says, the config store holds every switch's config from
before the change, and a second run sends nothing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from netmiko import ConnectHandler

from ansible_collections.twinsite.dc.plugins.module_utils._switching import parse_cisco_ios
from ansible_collections.twinsite.dc.plugins.modules.switch_l2 import fleet_processes
from labkit.fakeswitch import answers_ssh, free_ports

REPO = Path(__file__).resolve().parents[2]
LAB_VARS = REPO / "inventory" / "lab" / "group_vars" / "all"
LAUNCHER = REPO / "scripts" / "labkit" / "fakeswitch_server.py"
COUNT, CAP, USER, PASSWORD = 20, 4, "admin", "pw"
NAMES = [f"fsw{n:02d}" for n in range(1, COUNT + 1)]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """20 factory-default fake switches and an inventory of them: the lab's networks, and per switch
    accsw1's ports of the lab's model."""
    tmp = tmp_path_factory.mktemp("fleet")
    ports = dict(zip(NAMES, free_ports(COUNT, 2500), strict=True))
    env = {**os.environ, "TWINSITE_SWITCH_PASSWORD": PASSWORD}
    procs = []
    try:
        for name, port in ports.items():
            with (tmp / f"{name}.log").open("w") as log:
                procs.append(subprocess.Popen([sys.executable, str(LAUNCHER), "--model", "cisco_2960_24TT_L", "--hostname", name,  # noqa: S603
                                               "--username", USER, "--listen-port", str(port)],
                                              env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        deadline = time.monotonic() + 90
        waiting = set(NAMES)
        while waiting:
            waiting = {n for n in waiting if not answers_ssh("127.0.0.1", ports[n])}
            dead = [p.args[6] for p in procs if p.poll() is not None]
            assert not dead, f"fake switches {dead} exited; see {tmp}"
            assert time.monotonic() < deadline, f"fake switches {sorted(waiting)} do not answer SSH; see {tmp}"
            time.sleep(0.3)
        networks = yaml.safe_load((LAB_VARS / "networks.yml").read_text())["dc_networks"]
        template = [p for p in yaml.safe_load((LAB_VARS / "switching.yml").read_text())["dc_switch_ports"] if p["switch"] == "accsw1"]
        inv = tmp / "inventory"
        (inv / "group_vars" / "all").mkdir(parents=True)
        hosts = {name: {"ansible_host": "127.0.0.1", "ansible_port": port, "ansible_user": USER, "ansible_password": PASSWORD,
                        "ansible_connection": "ansible.netcommon.network_cli", "ansible_network_os": "cisco.ios.ios",
                        "switch_platform": "cisco_ios", "switch_model": "cisco_2960_24TT_L", "host_interfaces": [],
                        "host_site": "primary"} for name, port in ports.items()}
        (inv / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"core_switches": {"hosts": {}},
                                                                            "access_switches": {"hosts": hosts}}}}))
        (inv / "group_vars" / "all" / "model.yml").write_text(yaml.safe_dump(
            {"dc_networks": networks, "dc_switch_ports": [{**p, "switch": n} for n in NAMES for p in template], "dc_lags": []}))
        yield {"tmp": tmp, "inventory": inv, "ports": ports, "template": template, "vlans": {n["name"]: n["vlan"] for n in networks}}
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)


def run(fleet, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    tmp = fleet["tmp"]
    return subprocess.run(["ansible-playbook", "-i", str(fleet["inventory"]), "playbooks/switches.yml", "-f", str(COUNT),
                           "-e", f'{{"core_switches_store": "{tmp / "store"}", "core_switches_max_sessions": {CAP}}}', *extra],
                          cwd=REPO, env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
                                         "TWINSITE_AUDIT_LOG": str(tmp / "audit.jsonl"), **(env or {})},
                          capture_output=True, text=True, check=False, timeout=600)


def recap(output: str) -> dict[str, int]:
    return {host: int(changed) for host, changed in re.findall(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)", output, re.MULTILINE)}


def test_twenty_switches_are_configured_backed_up_and_left_alone_the_second_time(fleet):
    assert fleet_processes(COUNT) == min(2, len(os.sched_getaffinity(0))), "the module would not split this fleet"
    first = run(fleet)
    assert first.returncode == 0, first.stdout[-5000:] + first.stderr[-2000:]
    changed = recap(first.stdout)
    assert sorted(changed) == NAMES and all(changed[n] >= 1 for n in NAMES), first.stdout[-3000:]  # the first also ran the fleet task

    for name in (NAMES[0], NAMES[COUNT // 2 + 1], NAMES[-1]):  # switches of both processes read back as the model says
        conn = ConnectHandler(device_type="cisco_ios", host="127.0.0.1", port=fleet["ports"][name], username=USER,
                              password=PASSWORD, secret=PASSWORD)
        try:
            conn.enable()
            cfg = parse_cisco_ios(conn.send_command("show running-config"), name)
        finally:
            conn.disconnect()
        access = {p.name: p.vlan for p in cfg.access}
        trunks = {t.name: set(t.allowed) for t in cfg.trunks}
        for port in fleet["template"]:
            if port["mode"] == "access":
                assert access.get(port["port"]) == fleet["vlans"][port["network"]], f"{name} {port['port']}: {cfg}"
            else:
                assert trunks.get(port["port"]) == {fleet["vlans"][n] for n in port["networks"]}, f"{name} {port['port']}: {cfg}"

    store = fleet["tmp"] / "store"
    assert sorted(p.stem for p in store.glob("*.cfg")) == NAMES
    for name in NAMES:  # each switch's config as read before the change: factory default, nothing in VLAN 30
        before = (store / f"{name}.cfg").read_text()
        assert f"hostname {name}" in before and "switchport access vlan" not in before, before
    commits = subprocess.run(["git", "-C", str(store), "log", "--format=%s"], capture_output=True, text=True, check=True).stdout
    assert all(re.search(rf"\b{n}\b", commits) for n in NAMES), commits  # named in the commit that holds its backup

    second = run(fleet)
    assert second.returncode == 0, second.stdout[-5000:] + second.stderr[-2000:]
    assert recap(second.stdout) == dict.fromkeys(NAMES, 0), second.stdout[-3000:]


@pytest.fixture
def one_bad_password(fleet):
    """The fifth switch's inventory password is wrong for one test."""
    bad = NAMES[4]
    host_vars = fleet["inventory"] / "host_vars"
    host_vars.mkdir(exist_ok=True)
    (host_vars / f"{bad}.yml").write_text(yaml.safe_dump({"ansible_password": "not-the-password"}))
    yield bad
    (host_vars / f"{bad}.yml").unlink()


def test_a_switch_that_refuses_the_login_fails_alone_with_a_result_of_its_own(fleet, one_bad_password):
    """One switch_l2 call configures the 20 switches; twinsite's strategy gives each its own result:
    the switch whose login fails is the one host that fails (not all 20, as a failed run_once task
    would), with its reason on its own line, and the other 19 are ok and unchanged."""
    bad = one_bad_password
    result = run(fleet)
    out = result.stdout + result.stderr
    assert result.returncode != 0, out[-3000:]
    assert re.findall(r"^fatal: \[(\S+?)[\] ]", result.stdout, re.MULTILINE) == [bad], out[-3000:]
    assert re.search(rf"^fatal: \[{bad} -> localhost\]: FAILED! => \n.*\n    msg: 'log in of {bad} failed: \S+ refused the login of",
                     result.stdout, re.MULTILINE), out[-3000:]
    failed = dict(re.findall(r"^(\S+)\s+:\s+ok=\d+\s+changed=\d+\s+unreachable=\d+\s+failed=(\d+)", result.stdout, re.MULTILINE))
    assert failed == {n: ("1" if n == bad else "0") for n in NAMES}, out[-3000:]
    assert recap(result.stdout) == dict.fromkeys(NAMES, 0), out[-3000:]  # the 19 others were converged already


def test_under_a_strategy_without_the_fan_out_a_failed_switch_fails_the_play(fleet, one_bad_password):
    """ANSIBLE_STRATEGY=linear gives the call's result to its first host only: a switch's failure
    must not get lost in it, so the task fails (every host, as run_once does) naming the switch."""
    result = run(fleet, env={"ANSIBLE_STRATEGY": "linear"})
    out = result.stdout + result.stderr
    assert result.returncode != 0, out[-3000:]
    assert re.search(r"^fatal: \[fsw01 -> localhost\]: FAILED!", result.stdout, re.MULTILINE), out[-3000:]
    assert f"log in of {one_bad_password} failed" in result.stdout, out[-3000:]
    failed = dict(re.findall(r"^(\S+)\s+:\s+ok=\d+\s+changed=\d+\s+unreachable=\d+\s+failed=(\d+)", result.stdout, re.MULTILINE))
    assert failed["fsw01"] == "1", out[-3000:]


def test_a_model_list_of_the_wrong_type_stops_the_play_once_before_any_switch_is_read(fleet):
    """The model's lists are checked once per play (the role's entry point model), not on each of the
    20 switches, and a wrong one stops the play before the fleet task logs in anywhere."""
    store = fleet["tmp"] / "store"
    log = lambda: subprocess.run(["git", "-C", str(store), "log", "--format=%H"], capture_output=True, text=True, check=False).stdout  # noqa: E731
    before = log()
    bad = run(fleet, "-e", '{"core_switches_lags": "lag1", "core_switches_ports": [5]}')
    out = bad.stdout + bad.stderr
    assert bad.returncode != 0, out[-3000:]
    fatal = re.findall(r"^fatal: \[(\S+)", bad.stdout, re.MULTILINE)
    assert fatal == [NAMES[0]], out[-3000:]  # once, for the play: not one failure per switch
    assert "Check the types of the site model's lists once" in out, out[-3000:]
    for option in ("core_switches_lags", "core_switches_ports"):
        assert re.search(rf"option '{option}' is of type (str|int) and we were unable to convert to dict", out), out[-3000:]
    assert "Apply the change" not in bad.stdout and log() == before, out[-3000:]


@pytest.mark.parametrize(("extra", "host_var", "task", "message"), [
    (["-e", "core_switches_state=sideways"], None, "Check the role's arguments once for the play",
     r"value of core_switches_state must be one of: merged, replaced, overridden, deleted, got: sideways"),
    ([], {"switch_platform": "junos"}, "Check each switch's platform once for the play",
     r"must be one of linux_ovs, cisco_ios, arista_eos: fsw03: junos"),
])
def test_a_bad_role_argument_stops_the_play_once_naming_it(fleet, extra, host_var, task, message):
    """playbooks/switches.yml checks the role's arguments once for the play (tasks_from: play), not
    with Ansible's check on each of the 20 switches; a bad one stops the play before any login."""
    store = fleet["tmp"] / "store"
    before = subprocess.run(["git", "-C", str(store), "log", "--format=%H"], capture_output=True, text=True, check=False).stdout
    host_vars = fleet["inventory"] / "host_vars"
    host_vars.mkdir(exist_ok=True)
    if host_var:
        (host_vars / "fsw03.yml").write_text(yaml.safe_dump(host_var))
    try:
        bad = run(fleet, *extra)
    finally:
        (host_vars / "fsw03.yml").unlink(missing_ok=True)
    out = bad.stdout + bad.stderr
    assert bad.returncode != 0, out[-3000:]
    assert re.findall(r"^fatal: \[(\S+?)[\] ]", bad.stdout, re.MULTILINE) == [NAMES[0]], out[-3000:]  # once, for the play
    assert task in bad.stdout and re.search(message, " ".join(out.split())), out[-3000:]
    assert "Validating arguments against arg spec" not in bad.stdout, out[-3000:]  # not Ansible's check per switch
    assert "Apply the change" not in bad.stdout, out[-3000:]
    after = subprocess.run(["git", "-C", str(store), "log", "--format=%H"], capture_output=True, text=True, check=False).stdout
    assert after == before
