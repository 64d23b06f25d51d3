"""A certificate authority the local runtime's functions trust, for HTTPS servers on this machine.

An Http task verifies its server's certificate, locally as on AWS; a test server or a
development proxy on this machine usually has a certificate from a local CA (mkcert, trustme,
a company's own), which the public CA bundle does not hold. ``CRONFLEET_LOCAL_CA_FILE`` names
such a CA's PEM file. Only the local runtime reads it: the runner writes a bundle of the public
CAs (certifi's, what the HTTP caller trusts by default) plus that file into the state directory
and gives every function process ``SSL_CERT_FILE`` pointing at it, which httpx reads when it
builds its TLS context. So public endpoints still verify, the local server verifies too, and
verification is never turned off. Deployed functions get no such variable.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path

from cronfleet_tools.local.stack import LocalStackError

CA_FILE_VARIABLE = "CRONFLEET_LOCAL_CA_FILE"
CA_BUNDLE_FILE = "ca-bundle.pem"  # in the state directory
# What httpx (the HTTP caller's client) reads for its CA bundle, in each function process.
CA_BUNDLE_VARIABLE = "SSL_CERT_FILE"


class InvalidCaFile(LocalStackError):
    """The file named to be trusted is not a PEM file of CA certificates."""


def trusted_ca_from_environment() -> Path | None:
    """The CA file ``CRONFLEET_LOCAL_CA_FILE`` names in the runner's environment, if any."""
    value = os.environ.get(CA_FILE_VARIABLE, "").strip()
    return Path(value) if value else None


def ca_bundle_text(ca_file: Path) -> str:
    """The public CAs plus ``ca_file``, as one PEM bundle; a clear error if it holds no CA."""
    import certifi

    try:
        local = ca_file.read_text(encoding="ascii")
    except FileNotFoundError:
        raise InvalidCaFile(f"{CA_FILE_VARIABLE}: {ca_file}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidCaFile(f"{CA_FILE_VARIABLE}: {ca_file}: cannot be read ({exc})") from None
    if "-----BEGIN CERTIFICATE-----" not in local:
        raise InvalidCaFile(
            f"{CA_FILE_VARIABLE}: {ca_file}: holds no PEM certificate "
            "(-----BEGIN CERTIFICATE-----); give the CA's certificate, not its key"
        )
    try:
        ssl.create_default_context(cadata=local)
    except ssl.SSLError as exc:
        raise InvalidCaFile(
            f"{CA_FILE_VARIABLE}: {ca_file}: not a valid PEM certificate ({exc.reason or exc})"
        ) from None
    public = Path(certifi.where()).read_text(encoding="ascii")
    return f"{public.rstrip()}\n\n# {CA_FILE_VARIABLE}: {ca_file}\n{local}"


def write_ca_bundle(text: str | None, state_dir: Path) -> Path | None:
    """Write the bundle to the state directory, or remove an earlier run's when there is none."""
    bundle = state_dir / CA_BUNDLE_FILE
    if text is None:
        bundle.unlink(missing_ok=True)
        return None
    bundle.write_text(text, encoding="ascii")
    return bundle
