"""Definition-time checks on the URLs of HTTP tasks.

A scheduled HTTP call runs inside the stack's network with the stack's permissions, so a URL
pointing back at the cloud's own plumbing (the instance metadata service, a VPC-internal admin
endpoint, localhost) turns the scheduler into a server-side request forgery tool. These checks
look only at what the URL itself says; the HTTP caller checks again after DNS resolution and on
every redirect, because a public name can resolve to a private address.

``address_refusal`` is shared with the HTTP caller so both places refuse the same addresses
with the same words.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv6Address, IPv6Network, ip_address
from urllib.parse import urlsplit

URL_MAX_LENGTH = 2048

METADATA_REASON = "the cloud instance metadata service"

# Cloud metadata endpoints hand out the execution role's credentials. They are refused even
# when a task opts in to private networks: no scheduled task has a reason to call them.
METADATA_ADDRESSES = frozenset(
    {
        ip_address("169.254.169.254"),  # EC2 instance metadata (IMDS), IPv4
        ip_address("fd00:ec2::254"),  # EC2 instance metadata (IMDS), IPv6
        ip_address("169.254.170.2"),  # ECS task metadata and credentials
    }
)

# NAT64 (RFC 6052) carries an IPv4 address in its last 32 bits; a gateway forwards it there.
_NAT64 = IPv6Network("64:ff9b::/96")

# RFC 6761 reserves "localhost" and everything under it for the loopback interface.
_LOCAL_NAMES = re.compile(r"^(?:.+\.)?localhost$|^localhost\.localdomain$")

# WHATWG URL parsing (what browsers and most HTTP clients follow) reads a host whose last label
# is a number as IPv4 in decimal, octal or hex, so "2130706433" and "0x7f.1" are 127.0.0.1.
_NUMERIC_LABEL = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")


def address_refusal(address: IPv4Address | IPv6Address) -> str | None:
    """Say why a task may not call this address by default, or None if it is public."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        reason = address_refusal(embedded)
        return f"{reason} (embedded in {_display(address)})" if reason else None
    if address in METADATA_ADDRESSES:
        return METADATA_REASON
    if address.is_loopback:
        return "a loopback address"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_private:
        return "a private address"
    if address.is_reserved or not address.is_global:
        return "not a public address"
    return None


def _display(address: IPv4Address | IPv6Address) -> str:
    """Write an IPv4-mapped address the same way on every Python (3.13 changed its str())."""
    mapped = address.ipv4_mapped if isinstance(address, IPv6Address) else None
    return f"::ffff:{mapped}" if mapped is not None else str(address)


def url_refusal(url: str, *, allow_insecure_http: bool, allow_private_network: bool) -> str | None:
    """Say what is wrong with a task URL, or None if it may be called."""
    if len(url) > URL_MAX_LENGTH:
        return f"must be at most {URL_MAX_LENGTH} characters, got {len(url)}"
    if any(char.isspace() or ord(char) < 0x20 for char in url):
        return "must not contain whitespace or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - urlsplit checks the port only when it is read
    except ValueError as exc:
        return f"is not a valid URL: {exc}"
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        return f"must be an https:// URL, got {f'{scheme}://' if scheme else 'no scheme'}"
    if scheme == "http" and not allow_insecure_http:
        return "must use https://; set AllowInsecureHttp: true to call a plain-HTTP endpoint"
    if "@" in parts.netloc:
        return "must not contain credentials (user:password@); put the secret in SecretArn"
    host = (parts.hostname or "").rstrip(".")
    if not host:
        return "must name a host"
    try:
        refusal = _host_refusal(host)
    except ValueError as exc:
        return str(exc)
    if refusal is None:
        return None
    if refusal.startswith(METADATA_REASON):
        return f"refused: {host} is {refusal}, never a task's target"
    if allow_private_network:
        return None
    return f"refused: {host} is {refusal}; set AllowPrivateNetwork: true to call it on purpose"


def _host_refusal(host: str) -> str | None:
    """Classify a literal host; raises ValueError for a host that is not a valid address."""
    if _LOCAL_NAMES.match(host):
        return "the local machine"
    address: IPv4Address | IPv6Address
    if ":" in host:
        try:
            address = IPv6Address(host)
        except ValueError:
            raise ValueError(f"host {host!r} is not a valid IPv6 address") from None
    else:
        labels = host.split(".")
        if not _NUMERIC_LABEL.match(labels[-1]):
            return None  # a DNS name; the HTTP caller checks what it resolves to
        try:
            address = _parse_ipv4(labels)
        except ValueError:
            raise ValueError(f"host {host!r} is not a valid IPv4 address") from None
    return address_refusal(address)


def _parse_ipv4(labels: list[str]) -> IPv4Address:
    """Parse an IPv4 host the way WHATWG URL parsers do (1 to 4 parts, any base)."""
    if not 1 <= len(labels) <= 4 or not all(_NUMERIC_LABEL.match(label) for label in labels):
        raise ValueError("not an IPv4 address")
    numbers = [_parse_ipv4_number(label) for label in labels]
    *leading, last = numbers
    if any(number > 255 for number in leading) or last >= 256 ** (5 - len(numbers)):
        raise ValueError("IPv4 part out of range")
    value = last
    for index, number in enumerate(leading):
        value += number << (8 * (3 - index))
    return IPv4Address(value)


def _parse_ipv4_number(label: str) -> int:
    if label.startswith("0x"):
        return int(label[2:] or "0", 16)
    if len(label) > 1 and label.startswith("0"):
        return int(label, 8)  # raises ValueError for digits 8 and 9, as parsers do
    return int(label)


def _embedded_ipv4(address: IPv4Address | IPv6Address) -> IPv4Address | None:
    if isinstance(address, IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return None
