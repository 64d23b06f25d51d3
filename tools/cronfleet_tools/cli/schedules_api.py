"""``cronfleet schedules create|list|update|delete``: a tenant's dynamic schedules, through the
stack's schedules API (:mod:`cronfleet.client`, every request signed with SigV4).

The API is the one ``--api-url URL`` names, a deployed stack's (``--stack NAME``: its
``ScheduleApiUrl`` output) or the local stack's (``--local``: the ``api_url`` in its
``stack.json``, signed with the local key). Without any of them, ``CRONFLEET_API_URL`` names
it, else the running local stack of the state directory is used if there is one.

Bad input exits 2 naming the option, before anything is sent; a request the API refuses exits 1
with ``Error: <field>: <message>``, as the API named them.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from cronfleet_tools.cli.common import (
    JsonOption,
    StackChoice,
    console,
    fail,
    internal_errors,
    on_a_stack,
    payload_option,
    plain,
    refuse,
)
from cronfleet_tools.tables import Column, FittedTable, Layout, shortened

if TYPE_CHECKING:
    import httpx
    from rich.table import Table

    from cronfleet.client import CronfleetClient, Schedule

# Where the CLI's requests go; tests point it at an httpx.MockTransport.
transport: httpx.BaseTransport | None = None
API_URL_OUTPUT = "ScheduleApiUrl"
API_URL_VARIABLE = "CRONFLEET_API_URL"  # the API when no option names one
REQUEST_TIMEOUT_SECONDS = 35.0  # past API Gateway's 29 s: its own 504 comes first
TENANT = re.compile(r"[A-Za-z0-9_-]{1,64}")
EXTERNAL_ID = re.compile(r"[A-Za-z0-9_.:@-]{1,128}")
LONGEST_WORD = 44  # a URL or a JSON word in a table is cut to this, so 80 columns hold it
MAX_LISTED = 1000
T = TypeVar("T")

ApiUrlOption = Annotated[
    str | None,
    typer.Option(
        "--api-url",
        metavar="URL",
        help=f"The schedules API's URL, its stage included (default: ${API_URL_VARIABLE}, "
        "unless --stack or --local).",
    ),
]
TenantOption = Annotated[
    str, typer.Option("--tenant", help="The tenant whose schedules these are.", show_default=False)
]
IdArgument = Annotated[str, typer.Argument(metavar="ID", help="The schedule's id (s-...).")]
TimezoneOption = Annotated[
    str | None, typer.Option("--tz", help="IANA timezone the schedule is read in (default UTC).")
]
FunctionOption = Annotated[
    str | None,
    typer.Option(
        "--function", metavar="NAME", help="Run this task function of the stack (logical id)."
    ),
]
HttpUrlOption = Annotated[
    str | None,
    typer.Option("--http-url", metavar="URL", help="Call this URL with the built-in HTTP caller."),
]
PayloadOption = Annotated[
    str | None, typer.Option("--payload", metavar="JSON", help="A JSON object each run is given.")
]
ExternalIdOption = Annotated[
    str | None,
    typer.Option("--external-id", metavar="ID", help="Your own id for it, to find it by."),
]
EnabledOption = Annotated[
    bool | None,
    typer.Option(
        "--enabled/--disabled", help="Whether it runs on its schedule.", show_default=False
    ),
]


# --- the commands ----------------------------------------------------------------------------


@on_a_stack
def create(
    on: StackChoice,
    tenant: TenantOption,
    schedule: Annotated[
        str,
        typer.Option(
            "--schedule",
            help="cron(...), rate(...), at(...) or a Unix cron expression.",
            show_default=False,
        ),
    ],
    timezone: TimezoneOption = None,
    function: FunctionOption = None,
    http_url: HttpUrlOption = None,
    payload: PayloadOption = None,
    external_id: ExternalIdOption = None,
    dedup_key: Annotated[
        str | None,
        typer.Option(
            "--dedup-key",
            metavar="KEY",
            help="Creating again with this key updates that schedule, never adds a second.",
        ),
    ] = None,
    enabled: EnabledOption = None,
    api_url: ApiUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a schedule for a tenant: what runs (--function or --http-url), and when."""
    _check_tenant(tenant)
    fields = _fields(schedule, timezone, function, http_url, payload, external_id, enabled)
    if "function" not in fields and "http" not in fields:
        refuse("--function", "say what runs: --function NAME or --http-url URL")
    if dedup_key is not None:
        _check_id("--dedup-key", dedup_key)
        fields["deduplicationKey"] = dedup_key
    with internal_errors("schedules create"), _connect(on, api_url) as api:
        made = _calling(lambda: api.create_schedule(tenant, **fields))
    if as_json:
        _print_json(_document(made))
        return
    if made.created is False:
        key = made.deduplication_key or dedup_key
        plain(f"Updated schedule {made.id}, which has deduplication key {key}: no second one.")
    else:
        plain(f"Created schedule {made.id} for tenant {tenant}.")
    console.print(schedule_page(made))


@on_a_stack
def list_schedules(
    on: StackChoice,
    tenant: TenantOption,
    external_id: ExternalIdOption = None,
    enabled: Annotated[
        bool | None,
        typer.Option("--enabled/--disabled", help="Only the enabled ones, or the disabled ones."),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=MAX_LISTED, help="Show at most this many.")
    ] = 100,
    api_url: ApiUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """A tenant's schedules, by external id (and id), page after page."""
    _check_tenant(tenant)
    if external_id is not None:
        _check_id("--external-id", external_id)
    with internal_errors("schedules list"), _connect(on, api_url) as api:
        found = api.iter_schedules(
            tenant, external_id=external_id, enabled=enabled, page_size=min(limit, 100)
        )
        listed = _calling(lambda: list(itertools.islice(found, limit + 1)))
    more = len(listed) > limit
    listed = listed[:limit]
    if as_json:
        _print_json([_document(item) for item in listed])
        return
    if not listed:
        plain(f"Tenant {tenant} has no schedules{' that match' if external_id else ''}.")
        return
    console.print(schedules_table(listed, f"Schedules of tenant {tenant}"))
    if more:
        plain(f"Showing the first {limit}; --limit shows more.", stderr=True)


@on_a_stack
def update(
    id: IdArgument,
    on: StackChoice,
    tenant: TenantOption,
    schedule: Annotated[str | None, typer.Option("--schedule", help="A new schedule.")] = None,
    timezone: TimezoneOption = None,
    function: FunctionOption = None,
    http_url: HttpUrlOption = None,
    payload: PayloadOption = None,
    external_id: ExternalIdOption = None,
    enabled: EnabledOption = None,
    api_url: ApiUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change the fields given; the others stay as they are."""
    _check_tenant(tenant)
    fields = _fields(schedule, timezone, function, http_url, payload, external_id, enabled)
    if not fields:
        raise typer.BadParameter(
            "nothing to change: give --schedule, --tz, --function, --http-url, --payload, "
            "--external-id, --enabled or --disabled",
            param_hint="update",
        )
    with internal_errors("schedules update"), _connect(on, api_url) as api:
        changed = _calling(lambda: api.update_schedule(tenant, id, **fields))
    if as_json:
        _print_json(_document(changed))
        return
    plain(f"Updated schedule {changed.id} of tenant {tenant}.")
    console.print(schedule_page(changed))


@on_a_stack
def delete(
    id: IdArgument,
    on: StackChoice,
    tenant: TenantOption,
    api_url: ApiUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete a schedule: it runs no more; its past runs are kept."""
    _check_tenant(tenant)
    with internal_errors("schedules delete"), _connect(on, api_url) as api:
        _calling(lambda: api.delete_schedule(tenant, id))
    if as_json:
        _print_json({"id": id, "tenant": tenant, "deleted": True})
        return
    plain(f"Deleted schedule {id} of tenant {tenant}.")


# --- input -----------------------------------------------------------------------------------


def _check_tenant(tenant: str) -> None:
    if not TENANT.fullmatch(tenant):
        refuse("--tenant", f"{tenant!r} is not a tenant: 1 to 64 of A-Z, a-z, 0-9, '_' and '-'")


def _check_id(option: str, value: str) -> None:
    if not EXTERNAL_ID.fullmatch(value):
        refuse(option, f"{value!r}: 1 to 128 of A-Z, a-z, 0-9 and _ . : @ -")


def _fields(
    schedule: str | None,
    timezone: str | None,
    function: str | None,
    http_url: str | None,
    payload: str | None,
    external_id: str | None,
    enabled: bool | None,
) -> dict[str, Any]:
    """The options given, as the API's fields; the ones not given are left out."""
    if function is not None and http_url is not None:
        refuse("--http-url", "choose one: --function NAME or --http-url URL")
    if http_url is not None and not re.match(r"https?://[^/\s]+", http_url):
        refuse("--http-url", f"{http_url!r} is not an http(s) URL")
    if external_id is not None:
        _check_id("--external-id", external_id)
    fields: dict[str, Any] = {
        "schedule": schedule,
        "timezone": timezone,
        "function": function,
        "http": None if http_url is None else {"url": http_url},
        "payload": payload_option(payload),
        "externalId": external_id,
        "enabled": enabled,
    }
    return {name: value for name, value in fields.items() if value is not None}


# --- the API ---------------------------------------------------------------------------------


def _connect(on: StackChoice, api_url: str | None) -> CronfleetClient:
    """A client of the API the options name (see the module); exit 2 if they name none."""
    import httpx

    from cronfleet.client import ClientUsageError, CronfleetClient

    if api_url is not None and (on.local or on.stack):
        refuse("--api-url", "choose one: --api-url URL, --stack NAME or --local")
    if on.local and on.stack:
        refuse("--stack", "choose one: --local or --stack NAME")
    if api_url is None and not (on.local or on.stack):
        api_url = os.environ.get(API_URL_VARIABLE) or None
    region, credentials = on.region, None
    if api_url is not None:
        url = api_url
    elif on.stack is not None:
        url, region = stack_api_url(on.stack, on.region)
    elif on.local or _local_stack_file(on.state_dir).is_file():
        url, region, credentials = _local_api(on.state_dir)
    else:
        refuse("--api-url", "say which API: --api-url URL, --stack NAME or --local")
    # The client's own httpx client unless a test put a transport in.
    http = None if transport is None else httpx.Client(transport=transport)
    try:
        return CronfleetClient(
            url,
            region=region,
            credentials=credentials,
            http=http,
            timeout=REQUEST_TIMEOUT_SECONDS,
        )
    except ClientUsageError as exc:
        if exc.kind == "credentials":
            fail(str(exc))
        refuse("--region" if exc.kind == "region" else "--api-url", str(exc))


def _calling(call: Callable[[], T]) -> T:
    """``call()``, with the API's refusals and silences as exit 1 (ids refused as exit 2)."""
    from cronfleet.client import ApiError, ApiUnreachable, ClientUsageError

    try:
        return call()
    except ApiError as exc:
        fail(f"{exc.field}: {exc.message}" if exc.field else exc.message)
    except ApiUnreachable as exc:
        fail(str(exc))
    except ClientUsageError as exc:
        refuse("ID", str(exc))


def stack_api_url(stack: str, region: str | None, cloudformation: Any = None) -> tuple[str, str]:
    """The ``ScheduleApiUrl`` output of a deployed stack, and the stack's region."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    if cloudformation is None:
        try:
            cloudformation = boto3.client("cloudformation", region_name=region)
        except BotoCoreError as exc:
            refuse("--region", f"{exc}: pass --region or set AWS_REGION")
    where = f" in {cloudformation.meta.region_name}"
    try:
        stacks = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as exc:
        message = exc.response["Error"].get("Message", "")
        if "does not exist" in message:
            refuse("--stack", f"no stack named {stack!r}{where}")
        refuse("--stack", f"cannot read stack {stack!r}{where}: {message}")
    except BotoCoreError as exc:
        refuse("--stack", f"cannot read stack {stack!r}{where}: {exc}")
    outputs = {item["OutputKey"]: item["OutputValue"] for item in stacks[0].get("Outputs", [])}
    if API_URL_OUTPUT not in outputs:
        refuse(
            "--stack",
            f"stack {stack!r}{where} has no {API_URL_OUTPUT} output: is it a cronfleet stack "
            "with the schedules API, fully deployed?",
        )
    return outputs[API_URL_OUTPUT], str(cloudformation.meta.region_name)


def _local_stack_file(state_dir: Path) -> Path:
    from cronfleet_tools.local import STACK_FILE

    return state_dir / STACK_FILE


def _local_api(state_dir: Path) -> tuple[str, str, Any]:
    """The local stack's API URL and region, and the local key it verifies signatures with.

    Only these keys of its ``stack.json`` are read (and its runner's pid, to know it runs).
    """
    from botocore.credentials import Credentials

    from cronfleet_tools.local.dynamodb_local import ACCESS_KEY, SECRET_KEY

    path = _local_stack_file(state_dir)
    try:
        info = json.loads(path.read_text())
        pid, region, url = int(info["pid"]), str(info["region"]), info.get("api_url")
    except FileNotFoundError:
        refuse(
            "--state-dir",
            f"no local stack is running in {state_dir}/: start one with `make run` "
            "(or `cronfleet run`), or pass --state-dir",
        )
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        refuse("--state-dir", f"{path}: not a cronfleet stack file ({exc!r})")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        refuse(
            "--state-dir",
            f"the local stack in {state_dir}/ is not running (its process {pid} is gone); "
            "start it with `make run`",
        )
    except PermissionError:
        pass  # someone else's process: it runs
    if not url:
        refuse(
            "--local",
            f"the local stack in {state_dir}/ serves no schedules API (its stack.json has no "
            "api_url): restart it with `make run`",
        )
    return str(url), region, Credentials(ACCESS_KEY, SECRET_KEY)


# --- output ----------------------------------------------------------------------------------


def _document(schedule: Schedule) -> dict[str, Any]:
    """A schedule as the API gave it: camelCase, the fields it left out still left out."""
    return schedule.model_dump(mode="json", by_alias=True, exclude_none=True)


def _print_json(document: Any) -> None:
    typer.echo(json.dumps(document, indent=2))


def _target(schedule: Schedule) -> str:
    if schedule.http is not None:
        return f"{schedule.http.method or 'HTTP'} {schedule.http.url}"
    return schedule.function or "-"


def _state(schedule: Schedule) -> str:
    return "paused" if schedule.paused else "enabled" if schedule.enabled else "disabled"


def _when(schedule: Schedule) -> str:
    moment = schedule.next_run
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%MZ")


def _cut(text: str) -> str:
    return shortened(text, LONGEST_WORD, limit=300)


def schedules_table(schedules: list[Schedule], title: str) -> FittedTable:
    """A schedule a line on a wide terminal; on a narrow one its facts under its id."""
    wide = Layout(
        [
            Column(name)
            for name in ("Id", "External id", "Schedule", "Timezone", "Target", "State", "Next run")
        ]
    )
    joined = Layout([Column(name) for name in ("Id", "Schedule", "Target", "State")])
    narrow = Layout([Column("Id"), Column("Details")])
    for item in schedules:
        ident = item.id if item.external_id is None else f"{item.id}\n{item.external_id}"
        target, state, when = _cut(_target(item)), _state(item), _when(item)
        wide.add_row(
            item.id, item.external_id or "-", item.schedule, item.timezone, target, state, when
        )
        joined.add_row(ident, f"{item.schedule}\n{item.timezone}", target, f"{state}\n{when}")
        narrow.add_row(ident, f"{item.schedule} ({item.timezone})\n{target}\n{state}, next {when}")
    return FittedTable(title, [wide, joined, narrow])


def schedule_page(schedule: Schedule) -> Table:
    """One schedule, a fact a line, as ``describe`` shows a task."""
    from rich.table import Table

    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold", no_wrap=True)
    facts.add_column(overflow="ellipsis")  # a word too long for the terminal is cut, not folded
    for name, value in (
        ("Id", schedule.id),
        ("Tenant", schedule.tenant),
        ("External id", schedule.external_id),
        ("Dedup key", schedule.deduplication_key),
        ("Schedule", f"{schedule.schedule} ({schedule.timezone})"),
        ("In words", schedule.described_as),
        ("About", schedule.description or None),
        ("Target", _target(schedule)),
        ("Payload", json.dumps(schedule.payload) if schedule.payload else None),
        ("State", _state(schedule)),
        ("Next run", _when(schedule)),
    ):
        if value is not None:
            facts.add_row(name, _cut(value))
    return facts
