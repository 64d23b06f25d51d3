"""The built-in HTTP task: the target comes in the execution payload."""

from __future__ import annotations

from pydantic import JsonValue, ValidationError

from cronfleet.http_task.call import call_http_target
from cronfleet.lifecycle.wrapper import NonRetryableError, TaskContext, scheduled_task
from cronfleet.registry.definition import HttpTarget

HTTP_PAYLOAD_KEY = "http"


def run_http_task(task: TaskContext) -> dict[str, JsonValue]:
    """The built-in HTTP task: call the target the dispatcher put in ``payload["http"]``."""
    raw = task.payload.get(HTTP_PAYLOAD_KEY)
    if not isinstance(raw, dict):
        raise NonRetryableError(
            f"the execution payload has no {HTTP_PAYLOAD_KEY!r} object; "
            "the built-in HTTP caller runs only tasks declared with Http"
        )
    try:
        target = HttpTarget.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc'])) or 'Http'}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False)
        )
        raise NonRetryableError(f"the payload's Http target is invalid: {problems}") from None
    # Finish before the attempt's deadline, so the outcome is recorded rather than cut off.
    left = max(task.remaining_time().total_seconds(), 1.0)
    return call_http_target(target, timeout_seconds=left).as_record()


http_task_handler = scheduled_task(run_http_task)
