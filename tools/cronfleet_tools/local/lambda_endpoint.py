"""A local stand-in for the Lambda API's ``Invoke``, for the functions that invoke others.

The schedules API's function starts a manual run the way the dispatcher does, with
``lambda:InvokeFunction`` (``InvocationType=Event``) through botocore. Locally its process is
pointed here (``AWS_ENDPOINT_URL_LAMBDA``), as ``sam local start-lambda`` serves functions to
code that calls them: an ``Event`` invoke is queued on the runner's
:class:`~cronfleet_tools.local.lambda_process.LocalLambda` (retries and the on-failure
destination as Lambda's), a ``RequestResponse`` one runs and answers with the function's result.
The caller's role was checked in its own process before the call left it
(:mod:`cronfleet_tools.local.iam`); this endpoint does not check signatures.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from cronfleet.invoker import InvokeError
from cronfleet_tools.local.lambda_process import LocalLambda

_INVOKE = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations$")


class LocalLambdaEndpoint:
    """Serve ``Invoke`` on a free loopback port for ``start``'s LocalLambda.

    The port is taken at once, so the URL can go into the functions' environment before the
    LocalLambda that answers exists.
    """

    def __init__(self) -> None:
        self._lambdas: LocalLambda | None = None
        self._stopped = False
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                payload = self.rfile.read(length)
                path = self.path.partition("?")[0]
                status, headers, body = endpoint.answer(
                    path, self.headers.get("X-Amz-Invocation-Type") or "RequestResponse", payload
                )
                self.send_response(status)
                for name, value in {
                    "Content-Type": "application/json",
                    "x-amzn-RequestId": str(uuid.uuid4()),
                    **headers,
                }.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # each run is in the runner's window and journal

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{int(self._server.server_address[1])}"

    def start(self, lambdas: LocalLambda) -> LocalLambdaEndpoint:
        self._lambdas = lambdas
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

    def answer(
        self, path: str, invocation_type: str, payload: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """Status, headers and body of the Lambda API's answer to an ``Invoke``."""
        matched = _INVOKE.match(path)
        if matched is None or self._lambdas is None:
            return _error(404, "UnknownOperationException", f"{path}: only Invoke is served")
        name = unquote(matched["name"])
        try:
            event = json.loads(payload or b"{}")
        except json.JSONDecodeError:
            return _error(400, "InvalidRequestContentException", "Could not parse request body")
        lambdas = self._lambdas
        try:
            function = lambdas.function(name)
        except InvokeError:
            return _error(
                404,
                "ResourceNotFoundException",
                f"Function not found: {lambdas.function_arn(name.rsplit(':', 1)[-1])}",
            )
        if invocation_type == "DryRun":
            return 204, {}, b""
        if invocation_type == "Event":
            lambdas.invoke(function.logical_id, event)
            return 202, {}, b""
        invocation = lambdas.run(function.logical_id, event)
        headers = {"X-Amz-Executed-Version": "$LATEST"}
        if invocation.failed:
            headers["X-Amz-Function-Error"] = "Unhandled"
            error = {"errorMessage": invocation.error_message, "errorType": invocation.error_type}
            return 200, headers, json.dumps(error).encode()
        return 200, headers, json.dumps(invocation.result).encode()


def _error(status: int, code: str, message: str) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps({"Type": "User", "Message": message, "message": message}).encode()
    return status, {"x-amzn-ErrorType": code}, body
