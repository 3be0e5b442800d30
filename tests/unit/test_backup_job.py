"""twinsite.dc.backup_job without a cluster: the retention <-> prune-backups mapping, PVE's job shape
read as the module's view, the decision and its diff, and the parameters each change sends (patched
at the client seam: check mode writes nothing)."""

from __future__ import annotations

import json
from unittest import mock

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.twinsite.dc.plugins.module_utils import _backup_job, _cluster
from ansible_collections.twinsite.dc.plugins.module_utils._common import TwinsiteError
from ansible_collections.twinsite.dc.plugins.modules import backup_job as backup_job_module

PROXMOX = {"name": "cl-secondary", "type": "proxmox", "api": {"host": "192.0.2.11", "username": "u", "password": "s3cret"}}
GUESTS = [{"vmid": 110, "name": "backup-proxy", "node": "pve1"}, {"vmid": 201, "name": "dns1-replica", "node": "pve2"},
          {"vmid": 9000, "name": "tpl-debian12", "node": "pve1", "template": 1}]
NIGHTLY_PVE = {"id": "nightly", "type": "vzdump", "schedule": "02:30", "storage": "local", "vmid": "201,110", "compress": "zstd",
               "prune-backups": "keep-last=3,keep-daily=14", "enabled": 1}


@pytest.mark.parametrize(("retention", "text"), [
    ({"keep_last": 3, "keep_daily": 14}, "keep-last=3,keep-daily=14"),
    ({"keep_yearly": 2, "keep_hourly": 24, "keep_weekly": 8, "keep_monthly": 6}, "keep-hourly=24,keep-weekly=8,keep-monthly=6,keep-yearly=2"),
    ({"keep_all": True}, "keep-all=1"),
    ({"keep_all": False, "keep_last": 1}, "keep-last=1"),
    ({}, None),
    (None, None),
])
def test_retention_to_prune_backups_and_back(retention, text):
    assert _backup_job.prune_string(retention) == text
    assert _backup_job.parse_prune(text) == {k: v for k, v in (retention or {}).items() if v}


@pytest.mark.parametrize(("retention", "message"), [
    ({"keep_daly": 3}, "unknown retention key 'keep_daly'"),
    ({"keep_all": True, "keep_last": 3}, "keep_all cannot be combined"),
    ({"keep_last": 0}, "keep_last must be a whole number of at least 1, found 0"),
    ({"keep_last": "3"}, "keep_last must be a whole number of at least 1, found '3'"),
    ({"keep_last": True}, "found True"),
])
def test_bad_retention_is_refused(retention, message):
    with pytest.raises(TwinsiteError, match=message):
        _backup_job.prune_string(retention)


def test_parse_prune_reads_pve_variants():
    # Older PVE returns the property string parsed; zero counts and keep-all=0 mean "not set".
    assert _backup_job.parse_prune({"keep-last": "3", "keep-daily": 7}) == {"keep_last": 3, "keep_daily": 7}
    assert _backup_job.parse_prune("keep-all=0,keep-last=0, keep-weekly=2") == {"keep_weekly": 2}


def test_view_of_a_pve_job_fills_pve_defaults():
    view = _backup_job.view(NIGHTLY_PVE, {110: "backup-proxy"})
    assert view["vmids"] == [110, 201] and view["vms"] == ["backup-proxy", "vmid 201"]
    assert view["retention"] == {"keep_last": 3, "keep_daily": 14}
    assert (view["mode"], view["enabled"], view["all"], view["mailto"], view["notes_template"]) == ("snapshot", True, False, [], None)
    assert _backup_job.view({"id": "x", "vmid": "101 102;103", "enabled": "0", "all": "1"}, {})["vmids"] == [101, 102, 103]
    assert _backup_job.view(None, {}) is None


def params(**kw):
    base = {"id": "nightly", "state": "present", "schedule": "02:30", "storage": "local", "vms": ["dns1-replica", "backup-proxy"],
            "all": None, "mode": "snapshot", "compress": "zstd", "enabled": True, "retention": {"keep_last": 3, "keep_daily": 14},
            "notes_template": None, "mailto": None, "mailnotification": None, "comment": None, "node": None, "repeat_missed": None}
    return {**base, **kw}


VMIDS = {"backup-proxy": 110, "dns1-replica": 201}
NAMES = {110: "backup-proxy", 201: "dns1-replica"}


def test_plan_same_job_is_unchanged():
    before = _backup_job.view(NIGHTLY_PVE, NAMES)
    changed, after = _backup_job.plan(before, params(), VMIDS)
    assert not changed and after == before


def test_plan_create_sends_only_what_pve_does_not_assume():
    changed, after = _backup_job.plan(None, params(), VMIDS)
    assert changed and after["vmids"] == [110, 201] and after["vms"] == ["backup-proxy", "dns1-replica"]
    assert _backup_job.api_changes(None, after) == {"schedule": "02:30", "storage": "local", "compress": "zstd", "vmid": "110,201",
                                                    "prune-backups": "keep-last=3,keep-daily=14"}


def test_plan_update_sets_and_deletes():
    before = _backup_job.view({**NIGHTLY_PVE, "notes-template": "{{guestname}}", "mailto": "ops@town.example"}, NAMES)
    changed, after = _backup_job.plan(before, params(all=True, vms=None, notes_template="", mailto=[], retention={}, enabled=False), VMIDS)
    assert changed
    assert _backup_job.api_changes(before, after) == {"all": 1, "enabled": 0, "delete": "mailto,notes-template,prune-backups,vmid"}
    diff = _cluster.diff(before, after)
    assert diff["before"]["vms"] == ["backup-proxy", "dns1-replica"] and diff["after"]["vms"] == [] and diff["after"]["all"] is True
    assert list(diff["after"]) == sorted(diff["after"])


def test_plan_vms_replace_all_and_notes_carry_storage():
    before = _backup_job.view({"id": "nightly", "schedule": "02:30", "storage": "local", "all": 1}, NAMES)
    changed, after = _backup_job.plan(before, params(vms=["backup-proxy"], retention=None, compress=None, mode=None, enabled=None,
                                                     notes_template="{{guestname}}"), VMIDS)
    # PVE drops `all` itself when vmid is given; notes-template "requires" storage in the same call.
    assert changed and _backup_job.api_changes(before, after) == {"vmid": "110", "notes-template": "{{guestname}}", "storage": "local"}


def test_plan_absent_and_incomplete_new_jobs():
    before = _backup_job.view(NIGHTLY_PVE, NAMES)
    assert _backup_job.plan(before, params(state="absent"), {}) == (True, None)
    assert _backup_job.plan(None, params(state="absent"), {}) == (False, None)
    with pytest.raises(TwinsiteError, match="creation of backup job 'nightly' failed: a new job needs a schedule"):
        _backup_job.plan(None, params(schedule=None), VMIDS)
    with pytest.raises(TwinsiteError, match="needs vms"):
        _backup_job.plan(None, params(vms=None), VMIDS)
    with pytest.raises(TwinsiteError, match="check of backup job 'nightly' failed: retention: unknown retention key 'keep_dayly'"):
        _backup_job.plan(before, params(retention={"keep_dayly": 1}), VMIDS)


def test_resolve_names_vm_errors():
    client = mock.MagicMock()
    client.resources.return_value = [*GUESTS, {"vmid": 300, "name": "twin"}, {"vmid": 301, "name": "twin"}]
    jobs = _backup_job.ProxmoxBackupJobs(client)
    assert jobs.resolve("j", ["backup-proxy"]) == {"backup-proxy": 110}
    with pytest.raises(TwinsiteError, match="lookup of the VMs of backup job 'j' failed: no VM named 'tpl-debian12'"):
        jobs.resolve("j", ["tpl-debian12"])  # a template is not a VM to back up by name
    with pytest.raises(TwinsiteError, match=r"2 guests are named 'twin' \(vmids 300, 301\)"):
        jobs.resolve("j", ["twin"])
    assert client.resources.call_count == 1  # one bulk read


# --- the module, patched at the client seam -------------------------------------------------------


class FakeClient:
    def __init__(self, jobs):
        self.jobs = [dict(j) for j in jobs]
        self.writes = []

    def resources(self, type_=None):
        return GUESTS

    def get(self, path, **params):
        assert path == "cluster/backup"
        return [dict(j) for j in self.jobs]

    def post(self, path, **params):
        self.writes.append(("post", path, params))
        self.jobs.append({"type": "vzdump", "enabled": 1, **params})

    def put(self, path, **params):
        self.writes.append(("put", path, params))
        job = next(j for j in self.jobs if j["id"] == path.rsplit("/", 1)[1])
        for key in (params.pop("delete", "") or "").split(","):
            job.pop(key, None)
        job.update(params)

    def delete(self, path, **params):
        self.writes.append(("delete", path, params))
        self.jobs = [j for j in self.jobs if j["id"] != path.rsplit("/", 1)[1]]


def run(capsys, client, check=False, diff=False, **args):
    module_args = {"cluster": PROXMOX, "id": "nightly", "schedule": "02:30", "storage": "local", "vms": ["backup-proxy", "dns1-replica"],
                   "retention": {"keep_last": 3, "keep_daily": 14}, **args}
    with mock.patch.object(_cluster, "connect", return_value=client), \
         patch_module_args({**module_args, "_ansible_check_mode": check, "_ansible_diff": diff}), pytest.raises(SystemExit):
        backup_job_module.main()
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(("jobs", "args", "changed", "method"), [
    ([], {}, True, "post"),
    ([NIGHTLY_PVE], {}, False, None),
    ([NIGHTLY_PVE], {"schedule": "sun 01:00"}, True, "put"),
    ([NIGHTLY_PVE], {"state": "absent"}, True, "delete"),
    ([], {"state": "absent"}, False, None),
])
def test_module_decisions_and_check_mode(capsys, jobs, args, changed, method):
    checked_client = FakeClient(jobs)
    checked = run(capsys, checked_client, check=True, diff=True, **args)
    assert checked["changed"] is changed and checked_client.writes == []
    client = FakeClient(jobs)
    result = run(capsys, client, diff=True, **args)
    assert result["changed"] is changed
    assert [w[0] for w in client.writes] == ([method] if method else [])
    assert result["job"] == checked["job"]  # check mode predicted what the cluster then held
    if changed:
        assert set(result["diff"]) == {"before", "after"}
    assert "s3cret" not in json.dumps(result)


def test_module_vms_and_all_together_fail_without_the_password(capsys):
    result = run(capsys, FakeClient([]), all=True)
    assert result["failed"] and result["msg"] == "cluster cl-secondary: backup job 'nightly': give vms or all, not both"
    assert "s3cret" not in json.dumps(result)


def test_module_refuses_a_vsphere_cluster(capsys):
    result = run(capsys, FakeClient([]), cluster={**PROXMOX, "type": "vsphere"})
    assert result["failed"] and "backup jobs are a Proxmox VE feature" in result["msg"]
