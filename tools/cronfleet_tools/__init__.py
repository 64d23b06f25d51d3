"""cronfleet's tooling: what runs on a developer's machine or in CI, never in Lambda.

The ``cronfleet`` command (``cli``), the local runtime (``local``), the importers of Vercel and
crontab schedules (``migration``), the ledger audit and its views, and the offline validation
of a template (``template``). It is installed with the project (``pip install -e .``) and left
out of the Lambda layer, which ships only the runtime package, ``cronfleet``.
"""
