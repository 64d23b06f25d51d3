"""Local stand-ins for SSM Parameter Store and Secrets Manager, serving a file of secrets.

An Http task's ``SecretArn`` names an SSM parameter or a Secrets Manager secret. On AWS the
HTTP caller reads it with Powertools Parameters; locally the same code makes the same calls,
through botocore, to this loopback endpoint (``AWS_ENDPOINT_URL_SSM`` and
``AWS_ENDPOINT_URL_SECRETS_MANAGER`` in every function process), which answers ``GetParameter``
and ``GetSecretValue`` in the services' own JSON wire format. Nothing in the runtime library
knows it is local.

The values come from ``secrets.json`` in the state directory (``.cronfleet/``, ignored by git):
one JSON object, keyed by the name a ``SecretArn`` carries, each value the secret's text::

    {
      "/cronfleet/cron-secret": "the token",      <- SSM: the parameter's name, with its "/"
      "cronfleet/partner-api": "another token"    <- Secrets Manager: the secret's name
    }

The file is read again on every request, so an edit applies to the next run without a restart.
A name the file lacks is answered as the service answers it (``ParameterNotFound``,
``ResourceNotFoundException``), with a message that says which key to add to which file; the
HTTP caller fails that run once, without retries. The values never reach a log: the endpoint
logs nothing.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cronfleet_tools.local.functions import PSEUDO_PARAMETERS
from cronfleet_tools.local.stack import LocalStackError

SECRETS_FILE = "secrets.json"

_SSM_TARGET = "AmazonSSM.GetParameter"
_SECRETS_MANAGER_TARGET = "secretsmanager.GetSecretValue"
# Secrets Manager appends six random characters to a secret's ARN ("cronfleet/api-AbCdEf"); a
# task may name the secret by its full ARN, so the name is found without them too.
_RANDOM_SUFFIX = re.compile(r"-[A-Za-z0-9]{6}$")


class InvalidSecretsFile(LocalStackError):
    """The local secrets file is not a JSON object of names to secret texts."""


def load_secrets(path: Path) -> dict[str, str]:
    """The secrets in ``path`` by name; none when the file does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidSecretsFile(f"{path}: cannot be read ({exc})") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidSecretsFile(
            f"{path}: not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); it must be "
            'one object of names to secrets, such as {"/cronfleet/cron-secret": "the token"}'
        ) from None
    if not isinstance(document, dict):
        raise InvalidSecretsFile(
            f"{path}: must be one JSON object of names to secrets, not {_kind(document)}"
        )
    secrets: dict[str, str] = {}
    for name, value in document.items():
        problem = _name_problem(name) or _value_problem(value)
        if problem:
            raise InvalidSecretsFile(f"{path}: {json.dumps(name)}: {problem}")
        secrets[name] = value
    return secrets


def _name_problem(name: str) -> str | None:
    if not name:
        return "a name must not be empty"
    if any(char.isspace() for char in name):
        return "a name must not contain whitespace"
    if name.startswith("arn:"):
        # The key is what the ARN names, so that one entry serves whichever region and account
        # the template's !Sub resolves to.
        resource = name.split(":", 5)[-1]
        if resource.startswith("parameter/"):
            hint = "/" + resource.removeprefix("parameter/")
        else:
            hint = _RANDOM_SUFFIX.sub("", resource.removeprefix("secret:"))
        return f"write the name the ARN ends with ({hint}), not the ARN"
    return None


def _value_problem(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"must be a string (the secret's text), not {_kind(value)}"
    if not value.strip():
        return "must not be empty: the HTTP caller refuses an empty secret"
    return None


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }.get(type(value), type(value).__name__)


# --- what a request names ------------------------------------------------------------------


def parameter_names(name: str) -> list[str]:
    """The keys an SSM ``Name`` (a name or the parameter's ARN) may be stored under."""
    if not name.startswith("arn:"):
        return [name]
    path = name.split(":", 5)[-1].removeprefix("parameter/")
    # The ARN drops the leading "/" of a hierarchical name: "parameter/cronfleet/x" is
    # "/cronfleet/x", which is what the imports and the README write.
    return [f"/{path}", path]


def secret_names(secret_id: str) -> list[str]:
    """The keys a Secrets Manager ``SecretId`` (a name or an ARN) may be stored under."""
    name = secret_id.split(":", 6)[-1] if secret_id.startswith("arn:") else secret_id
    bare = _RANDOM_SUFFIX.sub("", name)
    return [name] if bare == name else [name, bare]


def missing_message(service: str, wanted: str, path: Path, exists: bool) -> str:
    """What the endpoint answers for a name the file lacks: which key to add, and where."""
    where = str(path) if exists else f"{path} (it does not exist yet)"
    return f'no local value for the {service} {wanted}: add "{wanted}": "<the secret>" to {where}'


# --- the endpoint --------------------------------------------------------------------------


class LocalSecrets:
    """Serve GetParameter and GetSecretValue from ``path`` on a free loopback port."""

    def __init__(self, path: Path) -> None:
        self.path = path
        secrets = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                try:
                    request = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError:
                    request = None
                status, body = secrets.answer(self.headers.get("X-Amz-Target", ""), request)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # what is asked for is nobody's business; what is answered, less so

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> LocalSecrets:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, target: str, request: Any) -> tuple[int, dict[str, Any]]:
        """The status and JSON body the service would answer ``target`` with."""
        if target not in (_SSM_TARGET, _SECRETS_MANAGER_TARGET):
            return _error(
                "UnknownOperationException",
                f"{target or 'a request without X-Amz-Target'}: only SSM GetParameter and "
                "Secrets Manager GetSecretValue are served locally",
            )
        field = "Name" if target == _SSM_TARGET else "SecretId"
        if not isinstance(request, dict) or not isinstance(request.get(field), str):
            return _error("ValidationException", f"{field}: required, a string")
        try:
            stored = load_secrets(self.path)
        except InvalidSecretsFile as exc:
            # Not "not found": fixing the file helps, so the run may retry.
            return _error("InvalidLocalSecretsFile", str(exc))
        identifier = request[field]
        if target == _SSM_TARGET:
            return self._parameter(identifier, stored)
        return self._secret(identifier, stored)

    def _parameter(self, name: str, stored: dict[str, str]) -> tuple[int, dict[str, Any]]:
        candidates = parameter_names(name)
        found = next((key for key in candidates if key in stored), None)
        if found is None:
            message = missing_message("SSM parameter", candidates[0], self.path, self.path.exists())
            return _error("ParameterNotFound", message)
        arn = name
        if not name.startswith("arn:"):
            arn = _local_arn("ssm", f"parameter/{found.lstrip('/')}")
        return 200, {
            "Parameter": {
                "Name": found,
                "Type": "SecureString",
                "Value": stored[found],  # WithDecryption: as the caller always asks
                "Version": 1,
                "LastModifiedDate": time.time(),
                "ARN": arn,
                "DataType": "text",
            }
        }

    def _secret(self, secret_id: str, stored: dict[str, str]) -> tuple[int, dict[str, Any]]:
        candidates = secret_names(secret_id)
        found = next((key for key in candidates if key in stored), None)
        if found is None:
            message = missing_message(
                "Secrets Manager secret", candidates[-1], self.path, self.path.exists()
            )
            return _error("ResourceNotFoundException", message)
        arn = secret_id
        if not secret_id.startswith("arn:"):
            arn = _local_arn("secretsmanager", f"secret:{found}")
        return 200, {
            "ARN": arn,
            "Name": found,
            "VersionId": str(uuid.uuid4()),
            "SecretString": stored[found],
            "VersionStages": ["AWSCURRENT"],
            "CreatedDate": time.time(),
        }


def _local_arn(service: str, resource: str) -> str:
    """The ARN of a local resource, in the local stack's region and account."""
    partition, region, account = (
        PSEUDO_PARAMETERS[f"AWS::{name}"] for name in ("Partition", "Region", "AccountId")
    )
    return f"arn:{partition}:{service}:{region}:{account}:{resource}"


def _error(code: str, message: str) -> tuple[int, dict[str, Any]]:
    # The code goes in "__type" for both services; SSM writes "message", Secrets Manager
    # "Message", and botocore reads either.
    return 400, {"__type": code, "message": message, "Message": message}
