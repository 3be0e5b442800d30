"""The audit callback writes one JSON line per changed task, and never a secret."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  vars:
    secret: s3cr3t-value-never-logged
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Write a file that holds a secret
      ansible.builtin.copy:
        content: "password={{ secret }}\\n"
        dest: "{{ out }}/app.conf"
        mode: '0600'
    - name: Read something (no change)
      ansible.builtin.stat:
        path: "{{ out }}/app.conf"
    - name: Hidden change
      ansible.builtin.copy:
        content: "{{ secret }}"
        dest: "{{ out }}/hidden"
        mode: '0600'
      no_log: true
"""


def run(tmp_path: Path, *extra: str) -> list[dict]:
    book = tmp_path / "play.yml"
    book.write_text(PLAYBOOK)
    log = tmp_path / "audit.jsonl"
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "TWINSITE_AUDIT_LOG": str(log)}
    result = subprocess.run(["ansible-playbook", "-i", "localhost,", "-c", "local", str(book), "-e", f"out={tmp_path}", *extra],
                            cwd=REPO, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    text = log.read_text() if log.exists() else ""
    assert "s3cr3t-value-never-logged" not in text
    return [json.loads(line) for line in text.splitlines()]


def test_one_line_per_changed_task_with_who_what_where(tmp_path):
    entries = run(tmp_path, "--diff")
    assert [e["task"] for e in entries] == ["Write a file that holds a secret", "<censored>"]
    first = entries[0]
    assert first["host"] == "localhost"
    assert first["module"] == "ansible.builtin.copy"
    assert first["playbook"] == "play.yml"
    assert first["user"]
    assert first["check_mode"] is False
    assert first["diff"]["lines_added"] == 1
    assert "diff" not in entries[1]
    assert entries[0]["run_id"] == entries[1]["run_id"]


def test_second_run_logs_nothing_and_check_mode_is_marked(tmp_path):
    run(tmp_path)
    assert len(run(tmp_path)) == 2  # unchanged: the log still holds only the first run's lines
    (tmp_path / "app.conf").unlink()
    entries = run(tmp_path, "--check")
    assert entries[-1]["check_mode"] is True
    assert entries[-1]["task"] == "Write a file that holds a secret"
