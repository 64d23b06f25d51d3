"""Definition-time checks on the URLs of HTTP tasks.

A scheduled HTTP call runs inside the stack's network with the stack's permissions, so a URL
pointing back at the cloud's own plumbing (the instance metadata service, a VPC-internal admin
endpoint, localhost) turns the scheduler into a server-side request forgery tool. These checks
look only at what the URL itself says; the HTTP caller checks again after DNS resolution and on
every redirect, because a public name can resolve to a private address.

An address is judged by what a connection to it reaches, not by how it is spelled: an IPv6
address that carries an IPv4 address (IPv4-mapped, IPv4-compatible, SIIT, NAT64, 6to4, Teredo,
ISATAP) is judged by that IPv4 address too, and a host is read the way WHATWG URL parsers read
it (IDNA-mapped, percent-decoded, IPv4 in any base and with 1 to 4 parts, trailing dot
dropped), so ``https://0xa9fea9fe/`` and ``https://[::a9fe:a9fe]/`` are the metadata service.

``classify_address`` is shared with the HTTP caller so both places refuse the same addresses
with the same words; ``address_refusal`` is its one-phrase form.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv6Address, IPv6Network, ip_address
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

__all__ = [
    "METADATA_REASON",
    "URL_MAX_LENGTH",
    "AddressRefusal",
    "address_refusal",
    "classify_address",
    "display_address",
    "url_refusal",
]

URL_MAX_LENGTH = 2048

METADATA_REASON = "the cloud instance metadata service"

# These endpoints hand out the execution role's (or the task's, or the pod's) credentials. They
# are refused even when a task opts in to private networks: no scheduled task has a reason to
# call them, and a redirect to one would leak the credentials into the run's ledger entry.
CREDENTIAL_ENDPOINTS: dict[IPv4Address | IPv6Address, str] = {
    ip_address("169.254.169.254"): METADATA_REASON,  # EC2 IMDS (also GCP, Azure, OCI), IPv4
    ip_address("fd00:ec2::254"): METADATA_REASON,  # EC2 IMDS on Nitro, IPv6
    ip_address("169.254.170.2"): "the ECS task metadata service",  # task role credentials
    ip_address("169.254.170.23"): "the EKS Pod Identity credentials service",
    ip_address("fd00:ec2::23"): "the EKS Pod Identity credentials service",
}
_CREDENTIAL_IPV4 = {int(a): r for a, r in CREDENTIAL_ENDPOINTS.items() if a.version == 4}

# IPv6 ranges that carry an IPv4 address, to which a host, gateway or relay delivers the packet.
_IPV4_MAPPED = IPv6Network("::ffff:0:0/96")  # RFC 4291: a dual-stack socket connects over IPv4
_IPV4_TRANSLATED = IPv6Network("::ffff:0:0:0/96")  # RFC 2765 (SIIT)
_IPV4_COMPATIBLE = IPv6Network("::/96")  # RFC 4291, deprecated, still routed by some stacks
_NAT64_WELL_KNOWN = IPv6Network("64:ff9b::/96")  # RFC 6052: a NAT64 gateway forwards it there
_NAT64_LOCAL_USE = IPv6Network("64:ff9b:1::/48")  # RFC 8215: any RFC 6052 prefix length inside
_6TO4 = IPv6Network("2002::/16")  # RFC 3056: bits 16-47
_TEREDO = IPv6Network("2001::/32")  # RFC 4380: server in bits 32-63, client inverted in 96-127
# RFC 5214 (ISATAP): an interface identifier of [02]00:5efe (or with the group bit, [03]00:5efe)
# followed by the IPv4 address, under any prefix.
_ISATAP_MARKERS = frozenset({0x00005EFE, 0x01005EFE, 0x02005EFE, 0x03005EFE})
_MAPPED, _TRANSLATED = "as IPv4-mapped", "as IPv4-translated"
_NAT64, _SIX_TO_FOUR = "by NAT64", "by 6to4"
# These embeddings only re-spell an IPv4 address: when it is public, so is the IPv6 address.
_IPV4_SPELLINGS = frozenset({_MAPPED, _TRANSLATED, _NAT64, _SIX_TO_FOUR})

# RFC 6761 reserves "localhost" and everything under it for the loopback interface.
_LOCAL_NAMES = re.compile(r"^(?:.+\.)?localhost$|^localhost\.localdomain$")

# WHATWG URL parsing (what browsers and most HTTP clients follow) reads a host whose last label
# is a number as IPv4 in decimal, octal or hex, so "2130706433" and "0x7f.1" are 127.0.0.1.
_NUMERIC_LABEL = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")
# What no host may contain once decoded (WHATWG's forbidden host code points); a decoded "%2F"
# or "%3A" would make the host something else to each parser.
_FORBIDDEN_IN_HOST = re.compile(r"[\x00-\x20\x7f#%/:<>?@\[\\\]^|]")


class AddressRefusal(NamedTuple):
    """Why an address may not be called, and whether ``AllowPrivateNetwork`` can lift that."""

    what: str  # "a private address", "the cloud instance metadata service"
    always: bool  # a credentials endpoint: refused even with AllowPrivateNetwork
    # When the refused address is an IPv4 address an IPv6 address carries: which, and how.
    carried: IPv4Address | None = None
    carrier: str = ""  # "by NAT64", "as the Teredo client"...
    address: str = ""  # the IPv6 address that carries it

    @property
    def reason(self) -> str:
        return f"{self.what} (embedded in {self.address})" if self.carried else self.what

    @property
    def detail(self) -> str:
        """How the refused address hides in the one written: " (10.0.0.1 embedded by NAT64)"."""
        return f" ({self.carried} embedded {self.carrier})" if self.carried else ""

    def explained(self) -> str:
        """What follows the address in a sentence: "is a private address (... embedded ...)"."""
        return f"is {self.what}{self.detail}"


def address_refusal(address: IPv4Address | IPv6Address) -> str | None:
    """Say why a task may not call this address by default, or None if it is public."""
    refusal = classify_address(address)
    return refusal.reason if refusal else None


def classify_address(address: IPv4Address | IPv6Address) -> AddressRefusal | None:
    """Judge an address by everything a connection to it may reach; None if it is public."""
    address = _without_scope(address)
    if isinstance(address, IPv4Address):
        return _classify_ipv4(address)
    embedded = _embedded_ipv4(address)
    # A network-specific NAT64 prefix (RFC 6052) may be any /96, so the last 32 bits are read
    # as IPv4 under every prefix, for the credentials endpoints only: no real host ends in one.
    low = IPv4Address(int(address) & 0xFFFFFFFF)
    suspects = [*embedded, ("in the last 32 bits", low)]
    carried = [(how, ipv4, _classify_ipv4(ipv4)) for how, ipv4 in suspects]
    # A credentials endpoint in any embedding wins over every other finding.
    for how, ipv4, found in carried:
        if found and found.always:
            return found._replace(carried=ipv4, carrier=how, address=display_address(address))
    if address in CREDENTIAL_ENDPOINTS:
        return AddressRefusal(CREDENTIAL_ENDPOINTS[address], always=True)
    for how, ipv4, found in carried[: len(embedded)]:
        if found:
            return found._replace(carried=ipv4, carrier=how, address=display_address(address))
    if embedded and all(how in _IPV4_SPELLINGS for how, _ in embedded):
        return None  # the connection reaches that public IPv4 address
    return _classify_plain(address)


def _classify_ipv4(address: IPv4Address) -> AddressRefusal | None:
    if int(address) in _CREDENTIAL_IPV4:
        return AddressRefusal(_CREDENTIAL_IPV4[int(address)], always=True)
    return _classify_plain(address)


def _classify_plain(address: IPv4Address | IPv6Address) -> AddressRefusal | None:
    what = None
    if address.is_loopback:
        what = "a loopback address"
    elif address.is_unspecified:
        what = "the unspecified address"
    elif address.is_link_local:
        what = "a link-local address"
    elif address.is_multicast:
        what = "a multicast address"
    elif address.is_private:
        what = "a private address"
    elif address.is_reserved or not address.is_global:
        what = "not a public address"
    return AddressRefusal(what, always=False) if what else None


def _without_scope(address: IPv4Address | IPv6Address) -> IPv4Address | IPv6Address:
    # fe80::1%eth0 and fe80::1 are the same address on the wire, but they compare unequal.
    if isinstance(address, IPv6Address) and address.scope_id is not None:
        return IPv6Address(int(address))
    return address


def display_address(address: IPv4Address | IPv6Address) -> str:
    """Write an IPv4-mapped address the same way on every Python (3.13 changed its str())."""
    mapped = address.ipv4_mapped if isinstance(address, IPv6Address) else None
    return f"::ffff:{mapped}" if mapped is not None else str(address)


def _embedded_ipv4(address: IPv6Address) -> list[tuple[str, IPv4Address]]:
    """Every IPv4 address this IPv6 address may carry, with the embedding that carries it."""
    value = int(address)
    low = IPv4Address(value & 0xFFFFFFFF)
    found: list[tuple[str, IPv4Address]] = []
    if address in _IPV4_MAPPED:
        found.append((_MAPPED, low))
    elif address in _IPV4_TRANSLATED:
        found.append((_TRANSLATED, low))
    elif address in _IPV4_COMPATIBLE and value > 1:  # :: and ::1 are IPv6's own
        found.append(("as IPv4-compatible", low))
    elif address in _NAT64_WELL_KNOWN:
        found.append((_NAT64, low))
    elif address in _NAT64_LOCAL_USE:
        found += [("by local-use NAT64", ipv4) for ipv4 in _rfc6052_candidates(value)]
    elif address in _6TO4:
        found.append((_SIX_TO_FOUR, IPv4Address((value >> 80) & 0xFFFFFFFF)))
    elif address in _TEREDO:
        # The client's address is stored inverted, so that NATs rewriting IPv4 addresses in
        # payloads leave it alone.
        found.append(("as the Teredo client", IPv4Address(~value & 0xFFFFFFFF)))
        found.append(("as the Teredo server", IPv4Address((value >> 64) & 0xFFFFFFFF)))
    if ((value >> 32) & 0xFFFFFFFF) in _ISATAP_MARKERS:
        found.append(("by ISATAP", low))
    return found


def _rfc6052_candidates(value: int) -> list[IPv4Address]:
    """The IPv4 address under each RFC 6052 prefix length that fits in a /48, /96 first."""
    candidates = [IPv4Address(value & 0xFFFFFFFF)]  # /96, the layout gateways default to
    for prefix in (48, 56, 64):
        # Bits 64-71 (the "u" octet) never carry the address: it continues after them.
        before = 64 - prefix  # address bits placed before the u octet
        after = 32 - before
        high = (value >> 64) & ((1 << before) - 1)
        low = (value >> (56 - after)) & ((1 << after) - 1)
        candidates.append(IPv4Address((high << after) | low))
    return candidates


def url_refusal(url: str, *, allow_insecure_http: bool, allow_private_network: bool) -> str | None:
    """Say what is wrong with a task URL, or None if it may be called."""
    if len(url) > URL_MAX_LENGTH:
        return f"must be at most {URL_MAX_LENGTH} characters, got {len(url)}"
    if any(char.isspace() or ord(char) < 0x20 or ord(char) == 0x7F for char in url):
        return "must not contain whitespace or control characters"
    if "\\" in url:
        # Browsers read a backslash as '/', RFC 3986 parsers as part of the host: two parsers
        # would see two hosts, and the check must see the one that is connected to.
        return "must not contain a backslash; write '/' or %5C"
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
    written = parts.hostname or ""
    try:
        host = normalized_host(written)
    except ValueError as exc:
        return str(exc)
    if not host:
        return "must name a host"
    try:
        address = _host_address(host)
    except ValueError as exc:
        return str(exc)
    if address is None:
        local = _LOCAL_NAMES.match(host)
        refusal = AddressRefusal("the local machine", always=False) if local else None
    else:
        refusal = classify_address(address)
    if refusal is None:
        return None
    # Name the host as written, and the address it is when the spelling hides it.
    named = written
    if address is not None and refusal.carried is None and display_address(address) != written:
        named = f"{written} ({display_address(address)})"
    if refusal.always:
        return f"refused: {named} {refusal.explained()}, never a task's target"
    if allow_private_network:
        return None
    return (
        f"refused: {named} {refusal.explained()}; "
        "set AllowPrivateNetwork: true to call it on purpose"
    )


def normalized_host(host: str) -> str:
    """The host as a WHATWG parser connects to it: percent-decoded, IDNA-mapped, no final dot.

    ``host`` is what ``urlsplit`` calls the hostname (lowercase, no brackets). Raises
    ValueError for a host no parser accepts.
    """
    if ":" in host:
        # An IPv6 literal; its zone ("fe80::1%25eth0") is the only part that may be encoded.
        address, percent, zone = host.partition("%")
        return f"{address}%{unquote(zone)}" if percent else address
    if "%" in host:
        # WHATWG decodes a host before reading it: "%31%32%37.0.0.1" is 127.0.0.1.
        try:
            host = unquote(host, errors="strict")
        except UnicodeDecodeError:
            raise ValueError(f"host {host!r} is not a valid host name") from None
    if _FORBIDDEN_IN_HOST.search(host):
        raise ValueError(f"host {host!r} is not a valid host name")
    if not host.isascii():
        # IDNA maps full-width digits (U+FF10...) and ideographic full stops (U+3002) to ASCII,
        # as UTS #46 does: written in those, 127.0.0.1 is still 127.0.0.1 to a browser.
        try:
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise ValueError(f"host {host!r} is not a valid host name") from None
    return host.rstrip(".")


def _host_address(host: str) -> IPv4Address | IPv6Address | None:
    """The address a literal host is, or None for a name; ValueError for a malformed address."""
    if ":" in host:
        try:
            return _without_scope(IPv6Address(host))
        except ValueError:
            raise ValueError(f"host {host!r} is not a valid IPv6 address") from None
    labels = host.split(".")
    if not _NUMERIC_LABEL.match(labels[-1]):
        return None  # a DNS name; the HTTP caller checks what it resolves to
    try:
        return _parse_ipv4(labels)
    except ValueError:
        raise ValueError(f"host {host!r} is not a valid IPv4 address") from None


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
