"""The README's one-tenant-per-principal policy, checked against every route of the API.

IAM matches an ``execute-api:Invoke`` resource as a wildcard over
``arn:aws:execute-api:<region>:<account>:<api-id>/<stage>/<METHOD>/<path>``; the policy
variable is the caller's tenant tag. The routes come from the template's ApiFunction events.
"""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path
from typing import Any

import pytest

from cronfleet_tools.template import load_template, with_globals

REPO_ROOT = Path(__file__).resolve().parents[2]
API_ARN = "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/v1"


def _readme_policy() -> dict[str, Any]:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("### One tenant per principal", 1)[1]
    block = re.search(r"```json\n(.*?)```", section, re.S)
    assert block is not None
    document: dict[str, Any] = json.loads(block.group(1))
    return document


def _tenant_routes() -> list[tuple[str, str]]:
    template = with_globals(load_template(REPO_ROOT / "template.yaml"))
    events = template["Resources"]["ApiFunction"]["Properties"]["Events"].values()
    routes = [(e["Properties"]["Method"].upper(), e["Properties"]["Path"]) for e in events]
    return [(method, path) for method, path in routes if path.startswith("/tenants/")]


@pytest.mark.parametrize(
    ("caller", "owner", "allowed"),
    [("acme", "acme", True), ("acme", "acme2", False), ("acme2", "acme", False)],
)
def test_a_principal_tagged_with_its_tenant_may_call_its_own_tenants_routes_only(
    caller: str, owner: str, allowed: bool
) -> None:
    # given the README's policy for a principal tagged tenant=<caller>
    (statement,) = _readme_policy()["Statement"]
    pattern = statement["Resource"].replace("${aws:PrincipalTag/tenant}", caller)
    assert statement["Action"] == "execute-api:Invoke"
    routes = _tenant_routes()
    assert len(routes) == 10

    # when it calls each route of <owner>'s schedules
    for method, path in routes:
        concrete = path.replace("{tenant}", owner).replace("{id}", "s-0123456789abcdef01234567")
        concrete = re.sub(r"\{[^}]+\}", "s-0123456789abcdef01234567", concrete)
        arn = f"{API_ARN}/{method}{concrete}"

        # then IAM's wildcard match allows exactly its own tenant's
        assert fnmatch.fnmatchcase(arn, pattern) is allowed, (arn, pattern)
