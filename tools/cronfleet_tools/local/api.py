"""The template's REST API on a loopback port, as ``sam local start-api`` serves it.

The routes are the ``Api`` events of the template's functions (Globals merged), on the API
their ``RestApiId`` names. Each request is matched the way API Gateway walks its resource tree
(a literal segment before ``{param}``, ``{param+}`` last), turned into the REST API's Lambda
proxy event (payload version 1.0), run with :meth:`LocalLambda.run`: synchronously, in a
process of its own, held to the function's role. The proxy response the function returns is
written back as API Gateway writes it.

As on AWS:

- The URL carries the stage: ``http://127.0.0.1:<port>/<StageName>/...``, as the stage's invoke
  URL does; another first segment is 403 ``Forbidden``.
- A path or a method the API does not have is 403 ``Missing Authentication Token``.
- A method with ``AWS_IAM`` auth (the API's ``DefaultAuthorizer``, unless the event's
  ``Auth.Authorizer`` is ``NONE``) needs a SigV4 ``Authorization`` header, and its signature is
  verified (:mod:`cronfleet_tools.local.signatures`): unsigned is 403 ``Missing Authentication
  Token``, a bad signature 403 with API Gateway's message. The caller's IAM policies are not
  evaluated locally: a good signature by the local key is allowed every route.
- ``path`` and ``pathParameters`` keep the percent-encoding they came with; query values are
  decoded. ``requestContext.path`` has the stage, ``path`` does not.
- A function error, or a response that is not a proxy response, is 502 ``Internal server
  error``; a function still running after 29 seconds is 504 ``Endpoint request timed out``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from cronfleet_tools.local.dynamodb_local import ACCESS_KEY, REGION, SECRET_KEY
from cronfleet_tools.local.functions import PSEUDO_PARAMETERS, environment_resolver
from cronfleet_tools.local.lambda_process import Invocation, LocalLambda
from cronfleet_tools.local.signatures import SignatureCheck, SignatureRejected, SignedRequest
from cronfleet_tools.local.stack import LocalStackError
from cronfleet_tools.template import with_globals

logger = logging.getLogger(__name__)

ACCOUNT_ID = PSEUDO_PARAMETERS["AWS::AccountId"]
LOCAL_API_ID = "1234567890"  # as `sam local start-api` names its API
# Who signed with the local key, as requestContext.identity names a caller.
LOCAL_CALLER_ID = "AIDACRONFLEETLOCAL"
LOCAL_CALLER_ARN = f"arn:aws:iam::{ACCOUNT_ID}:user/cronfleet-local"
INTEGRATION_TIMEOUT_SECONDS = 29.0  # API Gateway's limit on a Lambda integration
IMPLICIT_API = "ServerlessRestApi"  # the API SAM makes for Api events without a RestApiId
MISSING_TOKEN = "MissingAuthenticationTokenException"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class Route:
    function: str  # logical id
    method: str  # upper case, or ANY
    resource: str  # the template's path, e.g. /tenants/{tenant}/schedules
    iam: bool  # AWS_IAM auth on this method

    @property
    def segments(self) -> list[str]:
        return _segments(self.resource)


@dataclass(frozen=True)
class LocalApiDefinition:
    """One REST API of the template: its stage and routes."""

    name: str  # the Api resource's logical id
    stage: str
    routes: tuple[Route, ...]
    stage_variables: dict[str, str] | None = None
    binary_media_types: tuple[str, ...] = ()

    def match(self, path: str) -> tuple[str, dict[str, str]] | None:
        """The resource ``path`` (without the stage) falls on, and its path parameters."""
        segments = _segments(path)
        best: tuple[tuple[int, ...], str, dict[str, str]] | None = None
        for resource in dict.fromkeys(route.resource for route in self.routes):
            matched = _match(_segments(resource), segments)
            if matched is not None and (best is None or matched[0] > best[0]):
                best = (matched[0], resource, matched[1])
        return None if best is None else (best[1], best[2])

    def route(self, resource: str, method: str) -> Route | None:
        on_resource = [route for route in self.routes if route.resource == resource]
        for wanted in (method, "ANY"):
            for route in on_resource:
                if route.method == wanted:
                    return route
        return None


def load_api(template: Mapping[str, Any]) -> LocalApiDefinition | None:
    """The template's REST API, or None when no function has an ``Api`` event."""
    merged = with_globals(template)
    resources = merged.get("Resources", {})
    value_of = environment_resolver(template, {})
    by_api: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event in (resource.get("Properties", {}).get("Events") or {}).values():
            if event.get("Type") != "Api":
                continue
            properties = event.get("Properties", {})
            api_id = properties.get("RestApiId", IMPLICIT_API)
            api_name = str(api_id.get("Ref", "")) if isinstance(api_id, dict) else str(api_id)
            by_api.setdefault(api_name, []).append((logical_id, properties))
    if not by_api:
        return None
    if len(by_api) > 1:
        raise LocalStackError(
            f"the local stack serves one REST API, and the template's functions have events "
            f"on {len(by_api)}: {', '.join(sorted(by_api))}"
        )
    ((name, events),) = by_api.items()
    if name == IMPLICIT_API:
        api: dict[str, Any] = {"StageName": "Prod", **template.get("Globals", {}).get("Api", {})}
    else:
        api = resources.get(name, {}).get("Properties", {})
    default_auth = (api.get("Auth") or {}).get("DefaultAuthorizer")
    routes = []
    for function, properties in events:
        path, method = properties.get("Path"), properties.get("Method")
        if not isinstance(path, str) or not isinstance(method, str):
            raise LocalStackError(f"{function}: an Api event needs a Path and a Method")
        authorizer = (properties.get("Auth") or {}).get("Authorizer", default_auth)
        method = method.upper()
        if method == "X-AMAZON-APIGATEWAY-ANY-METHOD":
            method = "ANY"
        routes.append(Route(function, method, path, authorizer == "AWS_IAM"))
    variables = api.get("Variables")
    return LocalApiDefinition(
        name=name,
        stage=value_of(api.get("StageName", "Prod")),
        routes=tuple(routes),
        stage_variables={k: value_of(v) for k, v in variables.items()} if variables else None,
        binary_media_types=tuple(
            str(media).replace("~1", "/") for media in api.get("BinaryMediaTypes") or ()
        ),
    )


@dataclass(frozen=True)
class ApiRequest:
    """A request as it came in: the path as sent, stage and all, and the headers in order."""

    method: str
    raw_path: str
    raw_query: str
    headers: Sequence[tuple[str, str]]
    body: bytes
    source_ip: str
    port: int

    def header(self, name: str) -> str | None:
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        return values[-1] if values else None


@dataclass
class ApiResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


def proxy_event(
    definition: LocalApiDefinition,
    route: Route,
    request: ApiRequest,
    path_parameters: dict[str, str],
    *,
    request_id: str,
    now: datetime,
    caller: str | None,
) -> dict[str, Any]:
    """The Lambda proxy event (1.0) API Gateway sends a REST API's integration."""
    path = request.raw_path[len(definition.stage) + 1 :] or "/"
    headers = _forwarded_headers(request)
    multi_headers: dict[str, list[str]] = {}
    for name, value in headers:
        multi_headers.setdefault(name, []).append(value)
    multi_query: dict[str, list[str]] = {}
    for item in request.raw_query.split("&") if request.raw_query else ():
        key, _, value = item.partition("=")
        multi_query.setdefault(unquote(key), []).append(unquote(value))
    binary = _is_binary(request.header("Content-Type"), definition.binary_media_types)
    body: str | None = None
    if request.body:
        body = (
            base64.b64encode(request.body).decode()
            if binary
            else request.body.decode(errors="replace")
        )
    moment = now.astimezone(UTC)
    return {
        "resource": route.resource,
        "path": path,
        "httpMethod": request.method,
        "headers": {name: values[-1] for name, values in multi_headers.items()},
        "multiValueHeaders": multi_headers,
        "queryStringParameters": (
            {key: values[-1] for key, values in multi_query.items()} if multi_query else None
        ),
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": path_parameters or None,
        "stageVariables": definition.stage_variables,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": LOCAL_API_ID,
            "domainName": request.header("Host") or f"127.0.0.1:{request.port}",
            "domainPrefix": (request.header("Host") or "127").split(".")[0],
            "extendedRequestId": _extended_id(request_id),
            "httpMethod": request.method,
            "identity": _identity(request, caller),
            "path": f"/{definition.stage}{path}",
            "protocol": "HTTP/1.1",
            "requestId": request_id,
            "requestTime": f"{moment:%d}/{_MONTHS[moment.month - 1]}/{moment:%Y:%H:%M:%S} +0000",
            "requestTimeEpoch": int(moment.timestamp() * 1000),
            "resourceId": hashlib.sha256(route.resource.encode()).hexdigest()[:6],
            "resourcePath": route.resource,
            "stage": definition.stage,
        },
        "body": body,
        "isBase64Encoded": bool(body is not None and binary),
    }


def proxy_response(invocation: Invocation, request_id: str) -> ApiResponse:
    """What API Gateway answers for a finished invocation: the function's proxy response, or
    502 for an error or a response that is not one."""
    result = invocation.result
    if invocation.failed or not isinstance(result, dict):
        return _internal_error(request_id)
    try:
        status = int(result["statusCode"])
        body_text = result.get("body")
        if body_text is not None and not isinstance(body_text, str):
            raise TypeError("body: not a string")
        body = (body_text or "").encode()
        if result.get("isBase64Encoded"):
            body = base64.b64decode(body, validate=True)
        single = dict(result.get("headers") or {})
        multi = dict(result.get("multiValueHeaders") or {})
    except (KeyError, TypeError, ValueError):
        return _internal_error(request_id)
    # Both maps merged; a name in both takes multiValueHeaders' values, as API Gateway does.
    headers = [(str(name), str(value)) for name, value in single.items() if name not in multi]
    headers += [(str(name), str(value)) for name, values in multi.items() for value in values or ()]
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))
    headers += _gateway_headers(request_id)
    return ApiResponse(status, headers, b"" if status in (204, 304) else body)


def _internal_error(request_id: str) -> ApiResponse:
    return gateway_error(502, "InternalServerErrorException", "Internal server error", request_id)


def gateway_error(status: int, error_type: str, message: str, request_id: str) -> ApiResponse:
    """An answer of API Gateway's own (a gateway response), in its shape."""
    headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", error_type)]
    body = json.dumps({"message": message}).encode()
    return ApiResponse(status, headers + _gateway_headers(request_id), body)


# --- the server ----------------------------------------------------------------------------


class LocalApi:
    """Serve ``definition`` on a free loopback port; requests run on ``start``'s LocalLambda.

    The port is taken at once, so the URL can go into stack.json before the stack's functions
    are ready; requests are answered once started.
    """

    def __init__(
        self,
        definition: LocalApiDefinition,
        *,
        signatures: SignatureCheck | None = None,
        integration_timeout: float = INTEGRATION_TIMEOUT_SECONDS,
    ) -> None:
        self.definition = definition
        self.signatures = signatures or SignatureCheck({ACCESS_KEY: SECRET_KEY}, REGION)
        self.integration_timeout = integration_timeout
        self._lambdas: LocalLambda | None = None
        self._stopped = False
        self._clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                raw_path, _, raw_query = self.path.partition("?")
                request = ApiRequest(
                    method=self.command,
                    raw_path=raw_path,
                    raw_query=raw_query,
                    headers=list(self.headers.items()),
                    body=self._body(),
                    source_ip=self.client_address[0],
                    port=api.port,
                )
                try:
                    response = api.answer(request)
                except Exception:
                    logger.exception("The local API could not answer %s %s", self.command, raw_path)
                    response = gateway_error(
                        500, "InternalServerErrorException", "Internal server error", ""
                    )
                self.send_response(response.status)
                for name, value in response.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(response.body)

            def _body(self) -> bytes:
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    chunks = []
                    while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    while self.rfile.readline().strip():
                        pass  # trailers
                    return b"".join(chunks)
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def log_message(self, format: str, *args: Any) -> None:
                pass  # each run is in the runner's window and the function's log

        for method in METHODS:
            setattr(Handler, f"do_{method}", Handler._serve)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The stage's invoke URL: what ``ScheduleApiUrl`` is on AWS."""
        return f"http://127.0.0.1:{self.port}/{self.definition.stage}"

    def start(self, lambdas: LocalLambda) -> LocalApi:
        self._lambdas, self._clock = lambdas, lambdas.clock
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop answering; harmless when not started, or stopped already."""
        if self._stopped:
            return
        self._stopped = True
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def answer(self, request: ApiRequest) -> ApiResponse:
        request_id = str(uuid.uuid4())
        definition = self.definition
        prefix = f"/{definition.stage}"
        if request.raw_path != prefix and not request.raw_path.startswith(prefix + "/"):
            return gateway_error(403, "ForbiddenException", "Forbidden", request_id)
        matched = definition.match(request.raw_path[len(prefix) :])
        route = definition.route(matched[0], request.method) if matched else None
        if matched is None or route is None:
            return gateway_error(403, MISSING_TOKEN, "Missing Authentication Token", request_id)
        caller = None
        if route.iam:
            try:
                caller = self.signatures.verify(
                    SignedRequest(
                        request.method,
                        request.raw_path,
                        request.raw_query,
                        request.headers,
                        request.body,
                    )
                )
            except SignatureRejected as rejected:
                return gateway_error(403, rejected.error_type, rejected.message, request_id)
        event = proxy_event(
            definition,
            route,
            request,
            matched[1],
            request_id=request_id,
            now=self._clock(),
            caller=caller,
        )
        invocation = self._invoke(route.function, event)
        if invocation is None:
            return gateway_error(
                504, "IntegrationTimeout", "Endpoint request timed out", request_id
            )
        return proxy_response(invocation, request_id)

    def _invoke(self, function: str, event: dict[str, Any]) -> Invocation | None:
        """The invocation, or None if it is still running at the integration timeout."""
        lambdas = self._lambdas
        if lambdas is None:
            raise LocalStackError("the local API is not started")
        done: queue.Queue[Invocation] = queue.Queue(maxsize=1)
        threading.Thread(
            target=lambda: done.put(lambdas.run(function, event)), name="api", daemon=True
        ).start()
        try:
            return done.get(timeout=self.integration_timeout)
        except queue.Empty:
            return None


# --- helpers -------------------------------------------------------------------------------


def _segments(path: str) -> list[str]:
    trimmed = path.strip("/")
    return trimmed.split("/") if trimmed else []


def _match(
    pattern: list[str], segments: list[str]
) -> tuple[tuple[int, ...], dict[str, str]] | None:
    """Path parameters if ``segments`` fall on ``pattern``, and how specific it is (a literal
    segment beats a parameter, which beats a greedy one)."""
    parameters: dict[str, str] = {}
    rank: list[int] = []
    for index, part in enumerate(pattern):
        if part.startswith("{") and part.endswith("+}"):
            rest = segments[index:]
            if index != len(pattern) - 1 or not rest:
                return None
            parameters[part[1:-2]] = "/".join(rest)
            return (*rank, 0), parameters
        if index >= len(segments):
            return None
        if part.startswith("{") and part.endswith("}"):
            if not segments[index]:
                return None
            parameters[part[1:-1]] = segments[index]
            rank.append(1)
        elif part == segments[index]:
            rank.append(2)
        else:
            return None
    if len(segments) != len(pattern):
        return None
    return tuple(rank), parameters


def _forwarded_headers(request: ApiRequest) -> list[tuple[str, str]]:
    """The request's headers with those API Gateway adds on its way to the integration."""
    headers = [(n, v) for n, v in request.headers if n.lower() != "x-forwarded-for"]
    forwarded = request.header("X-Forwarded-For")
    headers.append(
        ("X-Forwarded-For", f"{forwarded}, {request.source_ip}" if forwarded else request.source_ip)
    )
    headers.append(("X-Forwarded-Port", str(request.port)))
    headers.append(("X-Forwarded-Proto", "http"))
    if request.header("X-Amzn-Trace-Id") is None:
        trace = f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"
        headers.append(("X-Amzn-Trace-Id", trace))
    return headers


def _identity(request: ApiRequest, caller: str | None) -> dict[str, Any]:
    signed = caller is not None
    return {
        "accessKey": caller,
        "accountId": ACCOUNT_ID if signed else None,
        "caller": LOCAL_CALLER_ID if signed else None,
        "cognitoAuthenticationProvider": None,
        "cognitoAuthenticationType": None,
        "cognitoIdentityId": None,
        "cognitoIdentityPoolId": None,
        "principalOrgId": None,
        "sourceIp": request.source_ip,
        "user": LOCAL_CALLER_ID if signed else None,
        "userAgent": request.header("User-Agent"),
        "userArn": LOCAL_CALLER_ARN if signed else None,
    }


def _is_binary(content_type: str | None, binary_media_types: Sequence[str]) -> bool:
    if not content_type or not binary_media_types:
        return False
    media = content_type.split(";")[0].strip().lower()
    for pattern in binary_media_types:
        wanted = pattern.lower()
        if wanted in ("*/*", media) or (wanted.endswith("/*") and media.startswith(wanted[:-1])):
            return True
    return False


def _extended_id(request_id: str) -> str:
    return base64.b64encode(hashlib.sha256(request_id.encode()).digest()[:12]).decode()


def _gateway_headers(request_id: str) -> list[tuple[str, str]]:
    return [("x-amzn-RequestId", request_id), ("x-amz-apigw-id", _extended_id(request_id))]
