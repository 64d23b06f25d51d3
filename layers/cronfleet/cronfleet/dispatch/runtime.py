"""The dispatcher and its workers as their functions build them, from the environment."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cronfleet.alerts.alerter import Alerter
from cronfleet.dispatch.service import Dispatcher, OutOfTime
from cronfleet.dispatch.shards import ShardHandOff
from cronfleet.invoker import LambdaInvoker
from cronfleet.lifecycle.attempts import Attempts
from cronfleet.store import Store
from cronfleet.tracing import TraceSampling

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from cronfleet.environment import CronfleetEnvironment

# No claim starts in an invocation's last seconds: a claim under way still has to commit and its
# runs be invoked, and a continuation be handed on, before Lambda ends the invocation.
CLAIMING_STOPS_BEFORE_END_SECONDS = 10


def dispatcher_from_environment(environment: CronfleetEnvironment) -> Dispatcher:
    """The dispatcher of a function's environment: its tables, alerts, and dispatch worker."""
    store = Store.from_environment(environment)
    invoker = LambdaInvoker()
    attempts = Attempts(
        store,
        invoker,
        alerter=Alerter.from_environment(store, environment),
        http_function=environment.http_function_name,
        tracing=TraceSampling(environment.trace_sample_rate),
    )
    worker = environment.dispatch_worker_function
    return Dispatcher(attempts, hand_off=ShardHandOff(invoker, worker) if worker else None)


def ending(context: LambdaContext) -> OutOfTime:
    """True once the invocation is in its last seconds."""
    limit_ms = CLAIMING_STOPS_BEFORE_END_SECONDS * 1000
    return lambda: context.get_remaining_time_in_millis() < limit_ms
