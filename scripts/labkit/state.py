"""Where the lab keeps what it made: ``<repo>/.lab/`` (ignored by git).

Layout::

    .lab/ca/            lab CA (ca.pem, ca.key) and server certificates
    .lab/ssh/           the key pair Ansible uses to reach the lab hosts
    .lab/run/           one ``<component>.pid`` per background process, ``<component>.json`` facts
    .lab/logs/          one log per background process
    .lab/data/          simulator and S3 data
    .lab/bin/           binaries the lab builds (vcsim)

``lab down`` uses ``run/`` to remove exactly what ``lab up`` made.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class State:
    root: Path

    @classmethod
    def default(cls) -> State:
        return cls(Path(os.environ.get("TWINSITE_LAB_STATE", REPO / ".lab")))

    def dir(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def ca(self) -> Path:
        return self.dir("ca")

    @property
    def run(self) -> Path:
        return self.dir("run")

    @property
    def logs(self) -> Path:
        return self.dir("logs")

    @property
    def data(self) -> Path:
        return self.dir("data")

    @property
    def bin(self) -> Path:
        return self.dir("bin")

    @property
    def ssh(self) -> Path:
        return self.dir("ssh")

    def write_facts(self, component: str, facts: dict) -> None:
        """Record what a component made (names, ports, ids) so ``down`` and tests can find it."""
        (self.run / f"{component}.json").write_text(json.dumps(facts, indent=2, sort_keys=True) + "\n")

    def read_facts(self, component: str) -> dict:
        path = self.run / f"{component}.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def forget(self, component: str) -> None:
        for suffix in (".json", ".pid"):
            (self.run / f"{component}{suffix}").unlink(missing_ok=True)
