"""cronfleet: a serverless cron orchestrator for AWS, shipped as a SAM stack.

The package lives in the Lambda layer and is also installable locally (``pip install -e .``),
which puts the ``cronfleet`` command on the PATH.
"""

__version__ = "0.1.0"
