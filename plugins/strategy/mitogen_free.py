# Copyright: twinsite contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The free strategy with Mitogen underneath, for the plays whose hosts do different work at once.

Under the linear strategy, hosts that include different task files or roles take turns: Ansible
runs one host's copy of the tasks while the others wait, then the next. A DR tier rebuilds DNS on
one host and PostgreSQL on another with their own roles; under linear they ran one after the other."""

from __future__ import annotations

DOCUMENTATION = r"""
name: mitogen_free
short_description: Free strategy, with each host's modules run by Mitogen
description:
  - Runs plays as the C(free) strategy does - each host goes through its tasks as fast as it can,
    without waiting for the others at every task - with Mitogen underneath, as
    C(twinsite.dc.mitogen_linear) does.
  - The end of the play is where the hosts wait for each other. twinsite's DR playbooks recover
    each tier in a play of its own with this strategy (C(playbooks/recover_tiers.yml)), so the
    services of a tier, each configured by its own role on its own host, recover at the same time,
    and a tier starts only once the one before has finished on every host.
  - "Set it per play (C(strategy: twinsite.dc.mitogen_free)); ansible.cfg keeps
    C(twinsite.dc.mitogen_linear) for the rest."
notes:
  - Like C(twinsite.dc.mitogen_linear), it pins no process to a CPU, and lists the collections and
    imports twinsite's filters once before the first worker is forked.
requirements:
  - mitogen (pinned in requirements.txt; C(make setup) installs it)
author: twinsite contributors
"""

import ansible_mitogen.loaders
import ansible_mitogen.strategy

# Importing the linear plugin also replaces Mitogen's CPU pinning, or says how to install Mitogen.
from ansible_collections.twinsite.dc.plugins.strategy.mitogen_linear import _preload_for_workers, _remember_collection_dirs

_Free = ansible_mitogen.loaders.strategy_loader.get("free", class_only=True)


class StrategyModule(ansible_mitogen.strategy.StrategyMixin, _Free):
    """free, with Mitogen's connection and action wrappers installed for the run."""

    def run(self, iterator, play_context):
        _remember_collection_dirs()
        _preload_for_workers()
        return super().run(iterator, play_context)
