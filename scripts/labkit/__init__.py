"""twinsite's embedded lab: the simulators and containers that stand in for a town hall's datacenter.

Entry point: ``scripts/lab up|down|status``. Every component module (``vcsim``, ``fakepve``, ``s3``,
``hosts``, ``switches``) exposes ``up(ctx)``, ``down(ctx)`` and ``status(ctx)``; ``cli`` runs them in
order and undoes what was started when one fails.
"""
