"""The built-in HTTP caller: what runs a task declared with ``Http`` instead of ``Function``.

It replaces the crontab ``wget`` line and the hosted cron pinger: one call, with an optional
Bearer secret, judged by its status and, optionally, a ``success`` flag in its JSON answer.

Where the target comes from
    The built-in Lambda is one function shared by every ``Http`` task, so the target cannot live
    in the function's environment. The dispatcher puts the task's validated ``Http`` properties
    in the execution envelope's payload under the reserved key ``"http"``
    (:data:`HTTP_PAYLOAD_KEY`); :func:`run_http_task` reads them from
    ``TaskContext.payload["http"]`` and validates them again as an :class:`HttpTarget`, so a
    stale or hand-made envelope is judged by the same rules as a deployed definition.

Refusing dangerous targets (server-side request forgery)
    A scheduled call runs with the stack's network position, so every hop (the first URL and
    each redirect) is checked twice: the URL itself (:func:`url_refusal`: scheme, literal
    addresses in every spelling, ``localhost``, credentials), then every address its host
    resolves to (:func:`classify_address`, which also reads the IPv4 address an IPv6 address
    carries: IPv4-mapped, NAT64, 6to4, Teredo...). One refused address refuses the hop.
    ``AllowPrivateNetwork`` lets private and loopback addresses through, never the credentials
    endpoints (the instance metadata service, ECS and EKS credentials) however they are
    written; the opt-ins belong to the target and apply to every hop alike, so a public URL
    that redirects into the private network is refused unless the task opted in. The
    connection is then made to the address that was checked (the URL's host is replaced by it,
    with ``Host`` and the TLS server name set to the real name, so certificates are still
    verified against the name): a second DNS answer cannot swap in another address between
    check and connect (DNS rebinding). Proxies from the environment are ignored for the same
    reason.

Redirects
    Followed by hand, at most :data:`MAX_REDIRECTS`, so each hop is checked. 301/302/303 turn a
    POST (or PUT, PATCH, DELETE) into a GET without body, as browsers do; 307/308 repeat the
    request. The Bearer secret goes only to the origin (scheme, host, port) of the first URL.
    A redirect status listed in ``ExpectedStatus`` is an answer, not followed.

Outcome (what the task wrapper records and whether the slot retries)
    - a status in ``ExpectedStatus`` (default 2xx) succeeds, unless ``SuccessField`` is set and
      the JSON answer does not carry ``true`` in it;
    - 5xx, 408, 429, timeouts, DNS and connection failures raise :class:`HttpCallFailed`
      (retryable): they describe a server or network that may recover. 408 and 429 are 4xx,
      but they say "later", not "never";
    - any other 4xx, an unexpected status, too many redirects and refusals raise
      :class:`HttpCallRejected` or :class:`HttpTargetRefused`, both :class:`NonRetryableError`:
      the same request will be refused again;
    - ``SuccessField`` not ``true`` (``{"success": false}``, a missing field, a body that is not
      JSON) raises :class:`HttpCallFailed`, like a 5xx: the seed APIs answer that way for
      transient trouble. When the status is 4xx (a 4xx listed in ``ExpectedStatus``) it is
      :class:`HttpCallRejected`, consistent with the status rule.

Secrets
    ``SecretArn`` is read through Powertools Parameters with caching and sent as
    ``Authorization: Bearer <secret>``. The value is redacted (as ``***``) from everything this
    module produces: log lines, error messages, the recorded result and its body preview, and
    the URLs it reports; in each encoding a server may echo it in (see
    :class:`SecretRedactor`). Errors from httpx are re-raised as our own without chaining, so a
    recorded traceback carries no request object, and any other exception leaving the call is
    re-raised redacted. Query values are redacted from reported URLs too, because tokens travel
    there (``?key=...``).

    A ``SecretArn`` that names nothing (``ParameterNotFound``, ``ResourceNotFoundException``)
    fails the run without retries (:class:`SecretNotFound`): the same name will be missing
    again. Any other failure to read it (throttling, 5xx, network) raises
    :class:`HttpCallFailed` and is retried. The local runtime answers the same reads, made by
    the same code, from a file of its own (README, "Secrets in the local runtime").

Modules: :mod:`.call` makes the call, :mod:`.redaction` keeps the secret out of what it records,
:mod:`.secret` reads the secret, :mod:`.outcomes` says how it ended, :mod:`.task` is the task.
"""

from cronfleet.http_task.call import BODY_PREVIEW_BYTES, MAX_REDIRECTS, call_http_target
from cronfleet.http_task.outcomes import (
    HttpCallFailed,
    HttpCallRejected,
    HttpCallResult,
    HttpCallTimedOut,
    HttpTargetRefused,
)
from cronfleet.http_task.redaction import REDACTED, SecretRedactor, display_url
from cronfleet.http_task.secret import SecretNotFound, read_secret
from cronfleet.http_task.task import HTTP_PAYLOAD_KEY, http_task_handler, run_http_task

__all__ = [
    "BODY_PREVIEW_BYTES",
    "HTTP_PAYLOAD_KEY",
    "MAX_REDIRECTS",
    "REDACTED",
    "HttpCallFailed",
    "HttpCallRejected",
    "HttpCallResult",
    "HttpCallTimedOut",
    "HttpTargetRefused",
    "SecretNotFound",
    "SecretRedactor",
    "call_http_target",
    "display_url",
    "http_task_handler",
    "read_secret",
    "run_http_task",
]
