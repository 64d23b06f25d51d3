"""Fixtures for the unit tests that look at the template as an artefact."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from samtranslator.translator.transform import transform


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
