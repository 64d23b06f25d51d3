"""What an import produces: the translated tasks, the secrets they name, and the caveats."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import get_args

from cronfleet.errors import CronfleetError
from cronfleet.lifecycle.states import LAMBDA_MAX_TIMEOUT_SECONDS
from cronfleet.registry.definition import HttpMethod, HttpTarget
from cronfleet_tools.template import (
    PLACEHOLDER_ACCOUNT_ID,
    PLACEHOLDER_REGION,
)

# HttpTaskFunction's IAM policy reads parameter/cronfleet/* and secret:cronfleet/* only.
SECRET_PREFIX = "cronfleet/"
# Vercel sends `Authorization: Bearer $CRON_SECRET` with every cron request.
VERCEL_SECRET_VARIABLE = "CRON_SECRET"
# The CloudFormation wait for the registry's answer, as on the template's own tasks.
SERVICE_TIMEOUT_SECONDS = 60
DEFAULT_HTTP_TIMEOUT_SECONDS: int = HttpTarget.model_fields["timeout_seconds"].default
MAX_HTTP_TIMEOUT_SECONDS = LAMBDA_MAX_TIMEOUT_SECONDS
HTTP_METHODS: tuple[str, ...] = get_args(HttpMethod)
# Task ids default to the logical id and may be 64 characters long; 60 leave room for "Task".
MAX_ID_STEM = 60


class ImportInputError(CronfleetError, ValueError):
    """The input cannot be imported at all (exit 2): not JSON, no crons array, a bad option."""

    def __init__(self, message: str, *, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option


@dataclass(frozen=True)
class SecretReference:
    """An SSM SecureString parameter under /cronfleet/ that holds a token the old job sent."""

    name: str  # "cron-secret" is the parameter /cronfleet/cron-secret
    holds: str  # what to store in it, in words; never the token itself

    @property
    def parameter_name(self) -> str:
        return f"/{SECRET_PREFIX}{self.name}"

    @property
    def arn_template(self) -> str:
        """The ARN as a !Sub string: resolved per account and region at deploy time."""
        return (
            "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:"
            f"parameter/{SECRET_PREFIX}{self.name}"
        )

    @property
    def arn_offline(self) -> str:
        """What `cronfleet validate` resolves :attr:`arn_template` to."""
        return (
            f"arn:aws:ssm:{PLACEHOLDER_REGION}:{PLACEHOLDER_ACCOUNT_ID}:"
            f"parameter/{SECRET_PREFIX}{self.name}"
        )


@dataclass(frozen=True)
class ImportedTask:
    """One job, translated: the properties of its Custom::ScheduledTask resource."""

    logical_id: str
    source: str  # "crontab line 4", "vercel.json crons[2]"
    schedule: str
    timezone: str
    url: str
    method: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None  # JSON text
    secret: SecretReference | None = None
    timeout_seconds: int | None = None


@dataclass(frozen=True)
class ImportCaveat:
    """Something not translated, or translated with a change the user must know about."""

    position: int  # line number or entry index, for ordering
    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass(frozen=True)
class ImportResult:
    source: str
    tasks: list[ImportedTask]
    warnings: list[ImportCaveat]
    notes: list[str]

    @property
    def ok(self) -> bool:
        """True when every job was translated as it was."""
        return not self.warnings


class Untranslatable(CronfleetError):
    """A line or entry that cannot be carried over; the message says why.

    ``secrets`` are values the line carries that no output may quote (a URL's token), for the
    importer to mask wherever else they appear.
    """

    def __init__(self, message: str, *, secrets: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.secrets = tuple(secrets)


@dataclass(frozen=True)
class Assignment:
    line: int
    value: str
