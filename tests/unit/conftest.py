"""Fixtures for the unit tests that look at the template as an artefact."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from samtranslator.translator.transform import transform

# The Powertools Tracer (cronfleet.observability) imports the X-Ray SDK, whose UDP emitter opens
# a socket on import. Import it here, before pytest-socket blocks sockets for each test; the
# tracer is off outside Lambda, so nothing is ever sent.
import cronfleet.observability  # noqa: F401


class _NoManagedPolicies:
    """The translator asks IAM for managed policy ARNs; offline there is nothing to ask."""

    def load(self) -> dict[str, str]:
        return {}


@pytest.fixture
def transformed(template: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The CloudFormation template `sam deploy` would submit (code locations stubbed)."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    sam = copy.deepcopy(template)
    # sam package would upload these; the translator only accepts S3 locations.
    for resource in sam["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://cronfleet-artifacts/function.zip"
        elif resource["Type"] == "AWS::Serverless::LayerVersion":
            resource["Properties"]["ContentUri"] = "s3://cronfleet-artifacts/layer.zip"
    result: dict[str, Any] = transform(sam, {}, _NoManagedPolicies())
    return result
