"""cronfleet: a serverless cron orchestrator for AWS, shipped as a SAM stack.

The package lives in the Lambda layer and is also installable locally (``pip install -e .``),
which puts the ``cronfleet`` command on the PATH. Task functions use::

    from cronfleet import TaskContext, scheduled_task
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from cronfleet.lifecycle.wrapper import NonRetryableError, TaskContext, scheduled_task

__all__ = ["NonRetryableError", "TaskContext", "scheduled_task"]


def __getattr__(name: str) -> Any:
    # Imported on first use: the CLI and the schedule engine should not pay for the wrapper.
    if name in __all__:
        from cronfleet.lifecycle import wrapper as task

        return getattr(task, name)
    raise AttributeError(f"module 'cronfleet' has no attribute {name!r}")
