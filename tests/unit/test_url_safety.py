"""What a task URL may name, however its host is spelled.

The oracle for each spelling is the standard that defines it (RFC 4291 IPv4-mapped and
-compatible, RFC 2765 SIIT, RFC 6052/8215 NAT64, RFC 3056 6to4, RFC 4380 Teredo, RFC 5214
ISATAP, the WHATWG URL host parser), written out by hand below rather than computed by the code
under test.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from cronfleet.registry.definition import HttpTarget
from cronfleet.registry.url_safety import url_refusal

METADATA = "the cloud instance metadata service"
ECS = "the ECS task metadata service"
EKS = "the EKS Pod Identity credentials service"

# Each: a URL whose host reaches a credentials endpoint, and the service it reaches.
CREDENTIAL_ENDPOINTS = {
    "IMDS": ("http://169.254.169.254/latest/meta-data/", METADATA),
    "IMDS over IPv6": ("http://[fd00:ec2::254]/latest/meta-data/", METADATA),
    "IMDS over IPv6, zero-padded": ("http://[fd00:0ec2:0:0:0:0:0:0254]/", METADATA),
    "IMDS over IPv6 with a zone": ("http://[fd00:ec2::254%25eth0]/", METADATA),
    "ECS credentials": ("http://169.254.170.2/v2/credentials/x", ECS),
    "EKS Pod Identity": ("http://169.254.170.23/v1/credentials", EKS),
    "EKS Pod Identity over IPv6": ("http://[fd00:ec2::23]/v1/credentials", EKS),
    "decimal": ("http://2852039166/", METADATA),
    "hex": ("http://0xa9fea9fe/", METADATA),
    "hex parts": ("http://0xa9.0xfe.0xa9.0xfe/", METADATA),
    "octal": ("http://0251.0376.0251.0376/", METADATA),
    "two parts": ("http://169.16689662/", METADATA),
    "three parts": ("http://169.254.43518/", METADATA),
    "trailing dot": ("http://169.254.169.254./", METADATA),
    "percent-encoded host": ("http://%31%36%39.254.169.254/", METADATA),
    "full-width digits": ("http://\uff11\uff16\uff19\u3002254\u3002169\u3002254/", METADATA),
    "IPv4-mapped": ("http://[::ffff:169.254.169.254]/", METADATA),
    "IPv4-mapped, hex": ("http://[::ffff:a9fe:a9fe]/", METADATA),
    "IPv4-compatible": ("http://[::a9fe:a9fe]/", METADATA),
    "IPv4-compatible, dotted": ("http://[::169.254.169.254]/", METADATA),
    "IPv4-translated (SIIT)": ("http://[::ffff:0:a9fe:a9fe]/", METADATA),
    "NAT64 well-known prefix": ("http://[64:ff9b::a9fe:a9fe]/", METADATA),
    "NAT64 local-use /96": ("http://[64:ff9b:1::a9fe:a9fe]/", METADATA),
    # RFC 6052 /48 layout: 16 bits after the prefix, the zero "u" octet, then 16 more.
    "NAT64 local-use /48": ("http://[64:ff9b:1:a9fe:a9:fe00::]/", METADATA),
    "NAT64 network-specific /96": ("http://[2001:db8:64::a9fe:a9fe]/", METADATA),
    "6to4": ("http://[2002:a9fe:a9fe::1]/", METADATA),
    # Teredo: server 65.54.227.120 in bits 32-63, client 169.254.169.254 inverted in the last 32.
    "Teredo client": ("http://[2001:0:4136:e378:8000:63bf:5601:5601]/", METADATA),
    "Teredo server": ("http://[2001:0:a9fe:a9fe::1]/", METADATA),
    "ISATAP": ("http://[2600:1f18::5efe:a9fe:a9fe]/", METADATA),
    "ISATAP, universal bit": ("http://[2600:1f18::200:5efe:169.254.169.254]/", METADATA),
    "ECS over NAT64": ("http://[64:ff9b::a9fe:aa02]/", ECS),
    "EKS over IPv4-mapped": ("http://[::ffff:169.254.170.23]/", EKS),
}


@pytest.mark.parametrize(
    ("url", "service"), CREDENTIAL_ENDPOINTS.values(), ids=CREDENTIAL_ENDPOINTS.keys()
)
@pytest.mark.parametrize("allow_private_network", [False, True])
def test_a_credentials_endpoint_is_refused_in_every_spelling_even_with_allow_private_network(
    url: str, service: str, allow_private_network: bool
) -> None:
    refusal = url_refusal(
        url, allow_insecure_http=True, allow_private_network=allow_private_network
    )

    assert refusal is not None
    assert f" is {service}" in refusal
    assert refusal.endswith(", never a task's target")  # no opt-in can lift it


@pytest.mark.parametrize(("url", "service"), CREDENTIAL_ENDPOINTS.values())
def test_a_task_definition_naming_a_credentials_endpoint_is_invalid(url: str, service: str) -> None:
    definition = {"Url": url, "AllowInsecureHttp": True, "AllowPrivateNetwork": True}

    with pytest.raises(ValidationError, match=service):
        HttpTarget.model_validate(definition)


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("http://[::ffff:10.0.0.1]/", "is a private address (10.0.0.1 embedded as IPv4-mapped)"),
        ("http://[::a00:1]/", "is a private address (10.0.0.1 embedded as IPv4-compatible)"),
        (
            "http://[::ffff:0:7f00:1]/",
            "is a loopback address (127.0.0.1 embedded as IPv4-translated)",
        ),
        ("http://[64:ff9b::c0a8:101]/", "is a private address (192.168.1.1 embedded by NAT64)"),
        (
            "http://[64:ff9b:1::a00:1]/",
            "is a private address (10.0.0.1 embedded by local-use NAT64)",
        ),
        ("http://[2002:a00:1::]/", "is a private address (10.0.0.1 embedded by 6to4)"),
        (
            "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",
            "is a loopback address (127.0.0.1 embedded as the Teredo client)",
        ),
        ("http://[2600::200:5efe:10.0.0.1]/", "is a private address (10.0.0.1 embedded by ISATAP)"),
        (
            "http://[2600::5efe:a9fe:a01]/",
            "is a link-local address (169.254.10.1 embedded by ISATAP)",
        ),
        ("http://0x7f000001/", "0x7f000001 (127.0.0.1) is a loopback address"),
        ("http://10.0.0.5./", "10.0.0.5. (10.0.0.5) is a private address"),
        ("http://[fe80::1%25eth0]/", "is a link-local address"),
    ],
)
def test_a_private_address_is_refused_in_every_spelling_unless_the_task_opts_in(
    url: str, said: str
) -> None:
    refused = url_refusal(url, allow_insecure_http=True, allow_private_network=False)
    opted_in = url_refusal(url, allow_insecure_http=True, allow_private_network=True)

    assert refused is not None
    assert said in refused
    assert refused.endswith("set AllowPrivateNetwork: true to call it on purpose")
    assert opted_in is None


@pytest.mark.parametrize(
    "url",
    [
        "https://[64:ff9b::808:808]/",  # 8.8.8.8 through a NAT64 gateway
        "https://[::ffff:8.8.8.8]/",
        "https://[2002:808:808::1]/",
        "https://[2600:1f18:abcd::1]/",
        "https://b\u00fccher.example/",  # an IDN: a name, resolved and checked by the caller
    ],
)
def test_a_public_address_behind_an_ipv6_spelling_stays_callable(url: str) -> None:
    assert url_refusal(url, allow_insecure_http=False, allow_private_network=False) is None


@pytest.mark.parametrize(
    ("url", "words"),
    [
        # A browser reads the host as 169.254.169.254, an RFC 3986 parser as the whole authority.
        ("https://169.254.169.254\\.example.com/", "backslash"),
        ("https://api.example.com\\@169.254.169.254/", "backslash"),
        ("https://%3A%3A1/", "not a valid host name"),  # ::1 once decoded, which no host may be
        ("https://example.com%2F@x/", "credentials"),
        ("https://%ff%fe.example/", "not a valid host name"),
        ("https://[::ffff:0251.0.0.1]/", "not a valid"),  # no leading zeros inside IPv6
    ],
)
def test_a_host_that_parsers_would_read_differently_is_refused(url: str, words: str) -> None:
    for opt_in in (False, True):
        refusal = url_refusal(url, allow_insecure_http=False, allow_private_network=opt_in)

        assert refusal is not None
        assert words in refusal


def test_opting_in_still_leaves_every_other_hop_check_in_place() -> None:
    # Given the opt-ins, a hand-made target naming the metadata service through NAT64
    fields: dict[str, Any] = {"AllowInsecureHttp": True, "AllowPrivateNetwork": True}

    # Then it is invalid, and the reason says what the address carries
    with pytest.raises(ValidationError) as invalid:
        HttpTarget.model_validate({"Url": "http://[64:ff9b:1::a9fe:a9fe]/latest", **fields})
    assert "(169.254.169.254 embedded by local-use NAT64)" in str(invalid.value)
