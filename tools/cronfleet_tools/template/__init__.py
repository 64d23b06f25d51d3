"""Task definitions read from template.yaml, before any deploy.

``cronfleet validate`` runs here. It reads the SAM template the way CloudFormation does
(:mod:`.reading`), resolves what it can of each value offline (:mod:`.intrinsics`), finds every
``Custom::ScheduledTask`` (and every other custom resource whose ServiceToken is the registry,
which a deploy registers too), and judges each one with the same ``parse_task_definition`` the
registry Lambda runs at deploy time, on the same input (:mod:`.validation`).

Values that exist only once the stack deploys cannot be judged offline. Such fields are listed
in ``TemplateValidation.deferred``, and the registry validates them at deploy time.
"""

from cronfleet_tools.template.intrinsics import PLACEHOLDER_ACCOUNT_ID, PLACEHOLDER_REGION
from cronfleet_tools.template.reading import load_template, parse_template, with_globals
from cronfleet_tools.template.validation import (
    TaskDeclaration,
    TemplateValidation,
    validate_template,
)

__all__ = [
    "PLACEHOLDER_ACCOUNT_ID",
    "PLACEHOLDER_REGION",
    "TaskDeclaration",
    "TemplateValidation",
    "load_template",
    "parse_template",
    "validate_template",
    "with_globals",
]
