"""Signature Version 4 checks for the local API, as API Gateway makes them on an AWS_IAM method.

A request to such a method must carry ``Authorization: AWS4-HMAC-SHA256 Credential=...,
SignedHeaders=..., Signature=...``. :class:`SignatureCheck` recomputes the signature from what
arrived (the canonical request of the SigV4 specification: the path encoded once more, the
query re-encoded and sorted, the signed headers, the body's SHA-256) with the secret of the
access key the credential names, and compares. Each refusal is the one API Gateway answers
with: its ``x-amzn-ErrorType`` and message, mismatches with the canonical request and the
string to sign that were expected, as API Gateway's own message gives them.

Locally the only key is the local runtime's (``cronfleetlocal``/``cronfleetlocal``, the one
every local function process gets), in the local stack's region. Only the signature is
checked: what the caller's IAM policies allow (``execute-api:Invoke`` on a route) is not
evaluated locally. Signatures in the query string (presigned URLs) are not served.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote

from botocore.utils import normalize_url_path

from cronfleet.errors import CronfleetError

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "execute-api"
TERMINATOR = "aws4_request"
AMZ_DATE = "%Y%m%dT%H%M%SZ"
CLOCK_SKEW = timedelta(minutes=5)  # how far the signing time may be from now, either way


class SignatureRejected(CronfleetError):
    """A refusal as API Gateway answers it: 403 with this error type and message."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


@dataclass(frozen=True)
class SignedRequest:
    """What arrived, as it arrived: the path still percent-encoded, the headers in order."""

    method: str
    raw_path: str  # the whole path sent, the stage included
    raw_query: str
    headers: Sequence[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.header_values(name)
        return ",".join(values) if values else None

    def header_values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]


@dataclass(frozen=True)
class Credential:
    access_key: str
    date: str
    region: str
    service: str
    terminator: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/{self.terminator}"


class SignatureCheck:
    """Verify SigV4 signatures made with ``keys`` (access key -> secret) for ``region``."""

    def __init__(
        self,
        keys: Mapping[str, str],
        region: str,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.keys = dict(keys)
        self.region = region
        # The real clock, not a replay's: clients sign with the time of the machine they run on.
        self.now = now

    def verify(self, request: SignedRequest) -> str:
        """The access key that signed ``request``; SignatureRejected if it is not signed right.

        An unsigned request is refused as "Missing Authentication Token", as API Gateway
        refuses it.
        """
        authorization = request.header("Authorization")
        if authorization is None:
            raise SignatureRejected(
                "MissingAuthenticationTokenException", "Missing Authentication Token"
            )
        fields = _authorization_fields(authorization)
        signed_at = _signing_time(request)
        missing = [
            f"Authorization header requires '{name}' parameter."
            for name in ("Credential", "Signature", "SignedHeaders")
            if not fields.get(name)
        ]
        if signed_at is None:
            missing.append(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' "
                "header."
            )
        if not authorization.startswith(f"{ALGORITHM} ") or missing:
            missing = missing or [f"Unsupported Authorization Type: {authorization.split()[0]}"]
            raise SignatureRejected(
                "IncompleteSignatureException",
                " ".join(missing) + f" Authorization={authorization}",
            )
        assert signed_at is not None
        credential = self._credential(fields["Credential"], signed_at)
        signed_headers = fields["SignedHeaders"].split(";")
        if "host" not in signed_headers:
            raise SignatureRejected(
                "IncompleteSignatureException",
                "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
            )
        self._check_time(signed_at)
        secret = self.keys.get(credential.access_key)
        if secret is None:
            raise SignatureRejected(
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )
        canonical = canonical_request(request, signed_headers)
        to_sign = string_to_sign(signed_at.strftime(AMZ_DATE), credential.scope, canonical)
        expected = signature(secret, credential, to_sign)
        if not hmac.compare_digest(expected, fields["Signature"]):
            raise SignatureRejected(
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided. "
                "Check your AWS Secret Access Key and signing method. Consult the service "
                "documentation for details.\n\nThe Canonical String for this request should have "
                f"been\n'{canonical}'\n\nThe String-to-Sign should have been\n'{to_sign}'\n",
            )
        return credential.access_key

    def _credential(self, value: str, signed_at: datetime) -> Credential:
        parts = value.split("/")
        if len(parts) != 5:
            raise SignatureRejected(
                "IncompleteSignatureException",
                f"Credential should be scoped to a valid region, not '{_part(parts, 2)}'. ",
            )
        credential = Credential(*parts)
        if credential.terminator != TERMINATOR:
            raise SignatureRejected(
                "InvalidSignatureException",
                f"Credential should be scoped with a valid terminator: '{TERMINATOR}', not "
                f"'{credential.terminator}'. ",
            )
        if credential.region != self.region:
            raise SignatureRejected(
                "InvalidSignatureException",
                f"Credential should be scoped to a valid region, not '{credential.region}'. ",
            )
        if credential.service != SERVICE:
            raise SignatureRejected(
                "InvalidSignatureException",
                f"Credential should be scoped to correct service: '{SERVICE}'. ",
            )
        stamp = signed_at.strftime(AMZ_DATE)
        if credential.date != stamp[:8]:
            raise SignatureRejected(
                "InvalidSignatureException",
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
                f"from HTTP: '{credential.date}' != '{stamp[:8]}', from '{stamp}'.",
            )
        return credential

    def _check_time(self, signed_at: datetime) -> None:
        now = self.now().astimezone(UTC).replace(microsecond=0)
        if signed_at < now - CLOCK_SKEW:
            raise SignatureRejected(
                "InvalidSignatureException",
                f"Signature expired: {signed_at:{AMZ_DATE}} is now earlier than "
                f"{now - CLOCK_SKEW:{AMZ_DATE}} ({now:{AMZ_DATE}} - 5 min.)",
            )
        if signed_at > now + CLOCK_SKEW:
            raise SignatureRejected(
                "InvalidSignatureException",
                f"Signature not yet current: {signed_at:{AMZ_DATE}} is still later than "
                f"{now + CLOCK_SKEW:{AMZ_DATE}} ({now:{AMZ_DATE}} + 5 min.)",
            )


# --- the SigV4 specification ---------------------------------------------------------------


def canonical_request(request: SignedRequest, signed_headers: Sequence[str]) -> str:
    # Services other than S3 encode each path segment twice: the path as sent, once more.
    path = quote(normalize_url_path(request.raw_path or "/"), safe="/~")
    headers = "".join(
        f"{name}:{_header_value(request.header_values(name))}\n" for name in signed_headers
    )
    return "\n".join(
        [
            request.method.upper(),
            path,
            canonical_query(request.raw_query),
            headers,
            ";".join(signed_headers),
            hashlib.sha256(request.body).hexdigest(),
        ]
    )


def canonical_query(raw_query: str) -> str:
    pairs = []
    for item in raw_query.split("&") if raw_query else ():
        key, _, value = item.partition("=")
        pairs.append((_encode(unquote(key)), _encode(unquote(value))))
    return "&".join(f"{key}={value}" for key, value in sorted(pairs))


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return "\n".join([ALGORITHM, amz_date, scope, digest])


def signature(secret: str, credential: Credential, to_sign: str) -> str:
    key = f"AWS4{secret}".encode()
    for part in (credential.date, credential.region, credential.service, credential.terminator):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def _encode(text: str) -> str:
    return quote(text, safe="-_.~")


def _header_value(values: Sequence[str]) -> str:
    # Each occurrence trimmed, its runs of spaces made one; occurrences joined by commas.
    return ",".join(" ".join(value.split()) for value in values)


def _authorization_fields(authorization: str) -> dict[str, str]:
    _, _, rest = authorization.partition(" ")
    fields = {}
    for item in rest.split(","):
        name, equals, value = item.strip().partition("=")
        if equals:
            fields[name] = value.strip()
    return fields


def _signing_time(request: SignedRequest) -> datetime | None:
    amz_date = request.header("X-Amz-Date")
    if amz_date is not None:
        try:
            return datetime.strptime(amz_date.strip(), AMZ_DATE).replace(tzinfo=UTC)
        except ValueError:
            return None
    date = request.header("Date")
    if date is not None:
        try:
            return parsedate_to_datetime(date).astimezone(UTC)
        except (TypeError, ValueError):
            return None
    return None


def _part(parts: Sequence[str], index: int) -> str:
    return parts[index] if len(parts) > index else ""
