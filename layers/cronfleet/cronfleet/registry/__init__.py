"""Task registry: what a scheduled task is, and whether a declaration of one is valid.

Two entry points share one set of rules:

- :func:`parse_task_definition`, for one resource's properties; the registry Lambda calls it
  on what CloudFormation sends at deploy time;
- :func:`validate_template`, for a whole template before any deploy (``cronfleet validate``),
  which adds the checks only a template can answer (target functions, timeouts, unique ids).

Every problem reads ``<LogicalId>.<Field>: <reason>``.
"""

from cronfleet.registry.definition import (
    PAYLOAD_LIMIT_BYTES,
    AlertPolicy,
    CatchupPolicy,
    HttpTarget,
    RetryPolicy,
    TaskDefinition,
    parse_task_definition,
)
from cronfleet.registry.problems import (
    DefinitionProblems,
    InvalidTaskDefinition,
    InvalidTemplate,
    Problem,
)
from cronfleet.registry.template import (
    TASK_RESOURCE_TYPE,
    TaskDeclaration,
    TemplateValidation,
    load_template,
    parse_template,
    validate_template,
)

__all__ = [
    "PAYLOAD_LIMIT_BYTES",
    "TASK_RESOURCE_TYPE",
    "AlertPolicy",
    "CatchupPolicy",
    "DefinitionProblems",
    "HttpTarget",
    "InvalidTaskDefinition",
    "InvalidTemplate",
    "Problem",
    "RetryPolicy",
    "TaskDeclaration",
    "TaskDefinition",
    "TemplateValidation",
    "load_template",
    "parse_task_definition",
    "parse_template",
    "validate_template",
]
