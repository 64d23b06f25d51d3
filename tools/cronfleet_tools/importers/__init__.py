"""Importing existing cron jobs: a ``vercel.json`` ``crons`` array, or a crontab of URL calls.

``cronfleet import FILE`` turns each job into a ``Custom::ScheduledTask`` with an ``Http``
target, printed as YAML to paste under ``Resources:`` in template.yaml. It translates only what
it can carry over faithfully. Everything else (a local script, @reboot, a plain-HTTP or private
URL, basic auth, a form body, an environment variable no task uses...) becomes a caveat that
names the line or entry and the reason, and is left out of the output: nothing is dropped
silently, and nothing is guessed.

Secrets
    A token never reaches the output, nor a caveat. A token the job sent in a header moves to
    the task's secret; one it sent in the URL (user info, a query value, a webhook path) cannot
    move, as the endpoint reads it there, so the job is refused with the token masked (see
    :mod:`.tokens`). Every URL in the input is read for tokens before anything is quoted, and
    no task may carry a value the file uses as a token. Each task names, in ``SecretArn``, an
    SSM SecureString parameter under ``/cronfleet/`` (the only parameters ``HttpTaskFunction``
    may read), written with ``!Sub`` so the template stays free of account ids and regions. SSM
    rather than Secrets Manager because a parameter's ARN is exact: a secret's ARN ends in a
    random suffix that exists only once the secret does, and the partial ARN is ambiguous for a
    name such as ``cron-secret``, whose last six letters look like that suffix.

Validation
    Every resource is rendered, then checked as text by ``validate_template``, the checks
    ``cronfleet validate`` and a deploy apply. A task that would fail them is reported and left
    out, so a paste can only fail for reasons outside the output (a logical id the template
    already uses).

Modules: :mod:`.files` picks the format; :mod:`.vercel` and :mod:`.crontab` read it, the latter
with :mod:`.shell` and :mod:`.curl`; :mod:`.importer` and :mod:`.tokens` are shared by both;
:mod:`.render` prints the result.
"""

from cronfleet_tools.importers.crontab import import_crontab
from cronfleet_tools.importers.files import import_file
from cronfleet_tools.importers.model import (
    ImportCaveat,
    ImportedTask,
    ImportInputError,
    ImportResult,
    SecretReference,
)
from cronfleet_tools.importers.render import render_resources, report_lines
from cronfleet_tools.importers.vercel import import_vercel

__all__ = [
    "ImportCaveat",
    "ImportInputError",
    "ImportResult",
    "ImportedTask",
    "SecretReference",
    "import_crontab",
    "import_file",
    "import_vercel",
    "render_resources",
    "report_lines",
]
