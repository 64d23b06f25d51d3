"""A typed client of the schedules API, every request signed with SigV4 for ``execute-api``.

    with CronfleetClient("https://abc123.execute-api.eu-west-1.amazonaws.com/v1") as api:
        made = api.create_schedule(
            "acme", schedule="cron(0 9 * * ? *)", function="ExampleTaskFunction",
            deduplication_key="p42-daily",
        )
        for schedule in api.iter_schedules("acme", external_id="project-42"):
            print(schedule.id, schedule.next_run)

Fields are given in snake_case or in the API's camelCase (``external_id`` or ``externalId``);
inside ``http``, ``retry``, ``alerts`` and ``catchup`` too, never inside ``payload`` or
``http.headers``, which are the caller's own data.

Signing: the request httpx will send is built first, and botocore's ``SigV4Auth`` signs its
method, URL (query string included), ``host`` and ``content-type`` headers and body bytes; the
query string is encoded the way SigV4 canonicalises it, so what is signed is what is sent.
Credentials and region come from the default botocore session unless given; the region is read
from an ``<id>.execute-api.<region>.amazonaws.com`` URL first.

Retries: requests that are safe to repeat (GET, PATCH, DELETE, and a create that carries a
``deduplicationKey``) are retried on 429, 5xx and connection errors, with exponential backoff
and jitter (or the server's ``Retry-After``); every attempt is signed anew. A delete whose
retry is answered 404 is done. Pause, resume, trigger and a create without a key are sent once.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from pydantic import BaseModel, ValidationError
from pydantic.alias_generators import to_camel

from cronfleet.client_models import (
    AlertPolicy,
    Attempt,
    Execution,
    HttpTarget,
    ItemT,
    Page,
    RetryPolicy,
    Schedule,
    Stats,
    TriggeredRun,
)
from cronfleet.errors import CronfleetError

__all__ = [
    "AlertPolicy",
    "ApiError",
    "ApiUnreachable",
    "Attempt",
    "ClientUsageError",
    "CronfleetClient",
    "Execution",
    "HttpTarget",
    "Page",
    "RetryPolicy",
    "Schedule",
    "Stats",
    "TriggeredRun",
    "UnexpectedResponse",
]

if TYPE_CHECKING:
    import boto3
    import botocore.session
    from botocore.credentials import ReadOnlyCredentials

SERVICE = "execute-api"
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_DELAY_SECONDS = 20.0
_EXECUTE_API_HOST = re.compile(
    r"^[a-z0-9-]+\.execute-api\.([a-z]{2}(?:-[a-z]+)+-\d+)\.amazonaws\.com(?:\.cn)?$"
)
# Objects whose keys are the API's own (converted from snake_case); any other value is sent as
# it is given: payload, http.headers and http.body belong to the caller.
_NESTED_FIELDS = frozenset({"http", "retry", "alerts", "catchup"})
_ATTEMPTS = "cronfleet.attempts"  # in a response's extensions: how many sends it took


# --- errors ------------------------------------------------------------------------------------


class ApiError(CronfleetError, RuntimeError):
    """The API refused a request: its status, error code, message and the field at fault."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(f"{f'{field}: ' if field else ''}{message} ({status} {code})")
        self.status = status
        self.code = code
        self.message = message
        self.field = field


class UnexpectedResponse(ApiError):
    """The answer is not one the API gives: not JSON, or JSON of another shape (a proxy's
    page, a wrong URL)."""


class ApiUnreachable(CronfleetError, ConnectionError):
    """No answer came: the connection failed or timed out (after the retries allowed)."""


class ClientUsageError(CronfleetError, ValueError):
    """The client cannot make the request; ``kind`` says what it lacks: ``url``,
    ``credentials``, ``region``, or an ``id`` it can send (not empty, not ``.`` or ``..``)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


# --- the client --------------------------------------------------------------------------------


class CronfleetClient:
    """One method per route of the schedules API; see the module for signing and retries."""

    def __init__(
        self,
        base_url: str,
        *,
        region: str | None = None,
        credentials: Credentials | ReadOnlyCredentials | None = None,
        session: botocore.session.Session | boto3.session.Session | None = None,
        http: httpx.Client | None = None,
        timeout: float | httpx.Timeout = 30.0,
        retries: int = 3,
        backoff_seconds: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ClientUsageError("url", f"{base_url!r} is not an http(s) URL of the API")
        self.base_url = base_url.rstrip("/")
        if credentials is None or region is None:
            if session is None:
                import botocore.session

                session = botocore.session.get_session()
            credentials = credentials or session.get_credentials()
            region = region or _region_of(parts.hostname) or _session_region(session)
        if credentials is None:
            raise ClientUsageError(
                "credentials",
                "no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or pass credentials",
            )
        if not region:
            raise ClientUsageError(
                "region", f"no region for {parts.hostname}: set AWS_REGION, or pass region"
            )
        self.region = region
        self._credentials = credentials
        self._owns_http = http is None
        self._http = http if http is not None else httpx.Client(timeout=timeout)
        self._retries = retries
        self._backoff = backoff_seconds
        self._sleep = sleep

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> CronfleetClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- the routes ----------------------------------------------------------------------------

    def create_schedule(self, tenant: str, **fields: Any) -> Schedule:
        """Create a schedule. With a ``deduplication_key`` the tenant already has, that
        schedule is written with these fields instead (``created`` False), never a second: so
        such a create is retried."""
        body = _api_fields(fields)
        response = self._call(
            "POST",
            ("tenants", tenant, "schedules"),
            body=body,
            retry=body.get("deduplicationKey") is not None,
        )
        document = self._document(response, 200, 201)
        if isinstance(document, dict):
            document.setdefault("created", response.status_code == 201)
        return self._parse(Schedule, document, response)

    def list_schedules(
        self,
        tenant: str,
        *,
        external_id: str | None = None,
        enabled: bool | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[Schedule]:
        query = {"externalId": external_id, "enabled": enabled, "limit": limit, "cursor": cursor}
        response = self._call("GET", ("tenants", tenant, "schedules"), query=query)
        return self._page(Schedule, response)

    def iter_schedules(
        self,
        tenant: str,
        *,
        external_id: str | None = None,
        enabled: bool | None = None,
        page_size: int | None = None,
    ) -> Iterator[Schedule]:
        """Every schedule that matches, page after page, following ``nextCursor``."""
        return self._follow(
            lambda cursor: self.list_schedules(
                tenant, external_id=external_id, enabled=enabled, limit=page_size, cursor=cursor
            )
        )

    def get_schedule(self, tenant: str, id: str, *, next: int | None = None) -> Schedule:
        """The schedule, with its schedule in words and its ``next`` (default 5) next runs."""
        response = self._call("GET", ("tenants", tenant, "schedules", id), query={"next": next})
        return self._parse(Schedule, self._document(response, 200), response)

    def update_schedule(self, tenant: str, id: str, **fields: Any) -> Schedule:
        """Replace the fields given; the others are kept."""
        path = ("tenants", tenant, "schedules", id)
        response = self._call("PATCH", path, body=_api_fields(fields), retry=True)
        return self._parse(Schedule, self._document(response, 200), response)

    def delete_schedule(self, tenant: str, id: str) -> None:
        """Delete it. A retry answered 404 is a success: an attempt whose answer was lost (a
        5xx, a dropped connection) deleted it, or it was never there; either way it is gone."""
        response = self._call("DELETE", ("tenants", tenant, "schedules", id), retry=True)
        if response.status_code == 404 and response.extensions.get(_ATTEMPTS, 1) > 1:
            return
        self._document(response, 204)

    def pause_schedule(self, tenant: str, id: str) -> Schedule:
        return self._action(tenant, id, "pause")

    def resume_schedule(self, tenant: str, id: str) -> Schedule:
        return self._action(tenant, id, "resume")

    def trigger_schedule(
        self, tenant: str, id: str, payload: Mapping[str, Any] | None = None
    ) -> TriggeredRun:
        """Start a run now (sent once: a retry could start a second run)."""
        body = None if payload is None else {"payload": dict(payload)}
        response = self._call("POST", ("tenants", tenant, "schedules", id, "trigger"), body=body)
        return self._parse(TriggeredRun, self._document(response, 202, 200), response)

    def list_executions(
        self, tenant: str, id: str, *, limit: int | None = None, cursor: str | None = None
    ) -> Page[Execution]:
        path = ("tenants", tenant, "schedules", id, "executions")
        response = self._call("GET", path, query={"limit": limit, "cursor": cursor})
        return self._page(Execution, response)

    def iter_executions(
        self, tenant: str, id: str, *, page_size: int | None = None
    ) -> Iterator[Execution]:
        return self._follow(
            lambda cursor: self.list_executions(tenant, id, limit=page_size, cursor=cursor)
        )

    def get_stats(self, tenant: str, id: str) -> Stats:
        response = self._call("GET", ("tenants", tenant, "schedules", id, "stats"))
        return self._parse(Stats, self._document(response, 200), response)

    def openapi(self) -> dict[str, Any]:
        """The API's OpenAPI document."""
        response = self._call("GET", ("openapi.json",))
        document = self._document(response, 200)
        if not isinstance(document, dict):
            raise _unexpected(response, "an OpenAPI document is a JSON object")
        return document

    # --- requests ------------------------------------------------------------------------------

    def _action(self, tenant: str, id: str, action: str) -> Schedule:
        response = self._call("POST", ("tenants", tenant, "schedules", id, action))
        return self._parse(Schedule, self._document(response, 200), response)

    def _call(
        self,
        method: str,
        segments: tuple[str, ...],
        *,
        query: Mapping[str, str | int | bool | None] | None = None,
        body: Mapping[str, Any] | None = None,
        retry: bool | None = None,
    ) -> httpx.Response:
        url = self.base_url + _path(segments) + _query(query or {})
        content = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        retry = method in ("GET", "PATCH", "PUT", "DELETE") if retry is None else retry
        attempt = 0
        while True:
            request = self._signed(method, url, content)  # anew each time: X-Amz-Date moves on
            try:
                response = self._http.send(request)
            except httpx.TransportError as exc:
                if not retry or attempt >= self._retries:
                    raise ApiUnreachable(
                        f"{method} {url}: no answer ({type(exc).__name__}: {exc})"
                    ) from exc
                delay = self._delay(attempt, None)
            else:
                response.extensions[_ATTEMPTS] = attempt + 1
                if not retry or attempt >= self._retries:
                    return response
                if response.status_code not in RETRYABLE_STATUSES:
                    return response
                delay = self._delay(attempt, response.headers.get("retry-after"))
            self._sleep(delay)
            attempt += 1

    def _signed(self, method: str, url: str, content: bytes) -> httpx.Request:
        headers = {"content-type": "application/json"} if content else {}
        request = self._http.build_request(method, url, content=content or None, headers=headers)
        signing = AWSRequest(
            method=method,
            url=str(request.url),
            data=content,
            headers={"host": request.headers["host"], **headers},
        )
        credentials = self._credentials
        if isinstance(credentials, Credentials):
            # Read once per request: refreshing credentials must not change between fields.
            credentials = credentials.get_frozen_credentials()
        SigV4Auth(credentials, SERVICE, self.region).add_auth(signing)
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
            if name in signing.headers:
                request.headers[name] = signing.headers[name]
        return request

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after is not None and retry_after.strip().isdigit():
            return min(float(retry_after), MAX_RETRY_DELAY_SECONDS)
        ceiling = min(self._backoff * 2.0**attempt, MAX_RETRY_DELAY_SECONDS)
        return ceiling / 2 + random.uniform(0, ceiling / 2)  # jitter, not secrecy

    # --- answers -------------------------------------------------------------------------------

    def _document(self, response: httpx.Response, *expected: int) -> Any:
        """The JSON of an expected answer (None for an empty one), else the API's error."""
        if response.status_code not in expected:
            raise _error(response)
        if not response.content:
            return None
        return _json(response)

    def _parse(self, model: type[ItemT], document: Any, response: httpx.Response) -> ItemT:
        try:
            return model.model_validate(document)
        except ValidationError as exc:
            raise _unexpected(response, f"not a {model.__name__}: {exc}") from None

    def _page(self, model: type[ItemT], response: httpx.Response) -> Page[ItemT]:
        document = self._document(response, 200)
        if not isinstance(document, dict) or not isinstance(document.get("items"), list):
            raise _unexpected(response, "a page is an object with an items list")
        cursor = document.get("nextCursor")
        items = [self._parse(model, item, response) for item in document["items"]]
        return Page(items, cursor if isinstance(cursor, str) and cursor else None)

    @staticmethod
    def _follow(fetch: Callable[[str | None], Page[ItemT]]) -> Iterator[ItemT]:
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            page = fetch(cursor)
            yield from page.items
            if page.next_cursor is None:
                return
            if page.next_cursor in seen:  # a server answering in a loop would never end
                raise UnexpectedResponse(200, "cursor_loop", "the API gave a cursor twice")
            seen.add(page.next_cursor)
            cursor = page.next_cursor


# --- helpers -----------------------------------------------------------------------------------


def _region_of(host: str) -> str | None:
    match = _EXECUTE_API_HOST.match(host.lower())
    return match.group(1) if match else None


def _session_region(session: botocore.session.Session | boto3.session.Session) -> str | None:
    region = getattr(session, "region_name", None)  # a boto3 session
    if region is None and hasattr(session, "get_config_variable"):
        region = session.get_config_variable("region")
    return str(region) if region else None


def _path(segments: tuple[str, ...]) -> str:
    for segment in segments:
        if segment in ("", ".", ".."):
            raise ClientUsageError("id", f"{segment!r} cannot be a tenant or a schedule id")
    return "".join("/" + quote(segment, safe="") for segment in segments)


def _query(params: Mapping[str, str | int | bool | None]) -> str:
    """``?a=b&c=d`` encoded as SigV4 canonicalises it (RFC 3986, space as %20), so the query
    signed and the query sent are the same text."""
    pairs = []
    for name, value in params.items():
        if value is None:
            continue
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        pairs.append(f"{quote(name, safe='-_.~')}={quote(text, safe='-_.~')}")
    return "?" + "&".join(pairs) if pairs else ""


def _camel(name: str) -> str:
    return to_camel(name) if "_" in name else name


def _api_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword fields as the API names them (see the module)."""
    body: dict[str, Any] = {}
    for name, value in fields.items():
        key = _camel(name)
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json", by_alias=True, exclude_none=True)
        elif key in _NESTED_FIELDS and isinstance(value, Mapping):
            value = {_camel(inner): item for inner, item in value.items()}
        body[key] = value
    return body


def _json(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content)
    except (json.JSONDecodeError, UnicodeDecodeError):
        kind = response.headers.get("content-type") or "no content type"
        snippet = response.content[:120].decode("utf-8", "replace")
        raise _unexpected(response, f"not JSON ({kind}): {snippet!r}") from None


def _unexpected(response: httpx.Response, what: str) -> UnexpectedResponse:
    request = response.request
    return UnexpectedResponse(
        response.status_code,
        "unexpected_response",
        f"{request.method} {request.url} answered {response.status_code}, {what}",
    )


def _error(response: httpx.Response) -> ApiError:
    """The API's error body (``{"error": {code, message, field}}``), or API Gateway's own
    (``{"message": ...}``, its type in ``x-amzn-ErrorType``: a bad signature, throttling)."""
    document = _json(response) if response.content else {}
    error = document.get("error") if isinstance(document, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        field = error.get("field")
        return ApiError(
            response.status_code,
            str(error.get("code") or f"http_{response.status_code}"),
            error["message"],
            field if isinstance(field, str) and field else None,
        )
    if isinstance(document, dict) and isinstance(document.get("message"), str):
        kind = response.headers.get("x-amzn-errortype", "").split(":")[0]
        return ApiError(
            response.status_code, kind or f"http_{response.status_code}", document["message"]
        )
    if not response.content:
        return ApiError(
            response.status_code, f"http_{response.status_code}", response.reason_phrase
        )
    return _unexpected(response, "not an error the API gives")
