"""What every lab component receives: where state lives, the lab model, and a way to report progress."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from .state import State


@dataclass
class Status:
    """One line of ``lab status``: a component, where it answers, whether it is up."""

    component: str
    address: str
    up: bool
    detail: str = ""


@dataclass
class Context:
    state: State
    # The lab model as plain data, built by model.py from inventory/lab (see model.py for its shape).
    model: dict = field(default_factory=dict)
    quiet: bool = False

    def say(self, message: str) -> None:
        """Progress for a person watching ``lab up`` (long steps say what they are doing)."""
        if not self.quiet:
            print(f"lab: {message}", file=sys.stderr, flush=True)
