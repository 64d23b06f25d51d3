"""A SigV4 check of a request as API Gateway receives it, for tests of signing clients.

The signature is recomputed with botocore from the request as it arrived (method, raw URL,
the headers its Authorization names as signed, body bytes) and compared; the query string is
also canonicalised the way AWS does it, from the decoded parameters, so a query sent in an
encoding other than SigV4's (``+`` for a space, a ``/`` left as it is) fails here as it would
on AWS.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, SignedHeaders=(?P<headers>[a-z0-9;-]+), "
    r"Signature=(?P<signature>[0-9a-f]{64})"
)


def aws_canonical_query(raw_query: str) -> str:
    """The canonical query string API Gateway computes: decoded, re-encoded, sorted."""
    pairs = parse_qsl(raw_query, keep_blank_values=True)
    return "&".join(
        f"{quote(name, safe='-_.~')}={quote(value, safe='-_.~')}" for name, value in sorted(pairs)
    )


def verify_signature(
    request: httpx.Request, credentials: ReadOnlyCredentials, region: str
) -> dict[str, str]:
    """Assert the request is signed right for execute-api; return its Authorization's parts."""
    match = AUTHORIZATION.fullmatch(request.headers["authorization"])
    assert match, request.headers["authorization"]
    signed = match["headers"].split(";")
    received = AWSRequest(
        method=request.method,
        url=str(request.url),
        data=request.content,
        headers={name: request.headers[name] for name in signed},
    )
    received.context["timestamp"] = request.headers["x-amz-date"]
    signer = SigV4Auth(credentials, "execute-api", region)
    canonical = signer.canonical_request(received)
    # AWS canonicalises the query from its decoded parameters: it must read the same
    assert signer.canonical_query_string(received) == aws_canonical_query(
        request.url.query.decode()
    )
    expected = signer.signature(signer.string_to_sign(received, canonical), received)
    assert match["signature"] == expected, "the signature does not cover the request as sent"
    return match.groupdict()
