"""Task definitions: what one ``Custom::ScheduledTask`` resource declares, validated.

The models mirror the resource's CloudFormation properties (PascalCase aliases, snake_case
attributes). Two callers share them: the registry Lambda, on the properties CloudFormation
resolved at deploy time, and ``cronfleet validate``, on the template before any deploy. Both go
through :func:`parse_task_definition`, so a definition is judged the same way in both places.

CloudFormation hands every scalar property of a custom resource to its handler as a string
(``TimeoutSeconds: 60`` arrives as ``"60"``, ``Enabled: false`` as ``"false"``), so fields use
pydantic's lax mode, which turns such strings into numbers and booleans and still rejects
garbage. Validation is all-or-nothing: either a complete, valid :class:`TaskDefinition`, or
:class:`InvalidTaskDefinition` listing every problem of the resource at once, so a person fixes
a definition in one round trip rather than one deploy per mistake.

Some rules judge a definition at the moment it is admitted rather than its shape: a schedule
must still have a run after now (an ``at()`` in the past would never run), and what a run sends
and what the registry stores must fit Lambda's and DynamoDB's limits. :func:`parse_task_definition`
applies them, with the time of the check; a definition read back from the tasks table is not
judged again by them, so a task stored before a limit was added keeps loading.

Modules: :mod:`.checks` holds the field rules, :mod:`.models` the models, :mod:`.parsing` the
entry point, :mod:`.explain` turns a ValidationError into problem lines.
"""

from cronfleet.registry.definition.checks import (
    DEFINITION_LIMIT_BYTES,
    MAX_JSON_DEPTH,
    PAYLOAD_LIMIT_BYTES,
    TASK_ITEM_RUNTIME_MARGIN_BYTES,
    HttpMethod,
)
from cronfleet.registry.definition.explain import problems_from_validation_error
from cronfleet.registry.definition.models import (
    AlertPolicy,
    CatchupPolicy,
    HttpTarget,
    RetryPolicy,
    TaskDefinition,
    invoke_payload,
    largest_invoke_bytes,
    stored_definition_bytes,
)
from cronfleet.registry.definition.parsing import parse_task_definition

__all__ = [
    "DEFINITION_LIMIT_BYTES",
    "MAX_JSON_DEPTH",
    "PAYLOAD_LIMIT_BYTES",
    "TASK_ITEM_RUNTIME_MARGIN_BYTES",
    "AlertPolicy",
    "CatchupPolicy",
    "HttpMethod",
    "HttpTarget",
    "RetryPolicy",
    "TaskDefinition",
    "invoke_payload",
    "largest_invoke_bytes",
    "parse_task_definition",
    "problems_from_validation_error",
    "stored_definition_bytes",
]
