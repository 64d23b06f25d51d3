"""A local function process holds every boto3 session to its role, not only the default one.

Powertools Parameters reads an Http task's secret through a ``boto3.session.Session()`` of its
own; on AWS that call is held to the function's role like any other, so locally it must be
too. Each case runs in a fresh interpreter, as a function process does: the enforcement
patches boto3 for the whole process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cronfleet_tools.local.iam import Calls, Enforcement, Naming, Policy, Statement

READS_CRONFLEET_PARAMETERS = Statement(
    effect="Allow",
    actions=("ssm:GetParameter",),
    resources=("arn:aws:ssm:us-east-1:123456789012:parameter/cronfleet/*",),
    sid="ReadCronfleetBearerParameters",
)


def _in_a_function_process(tmp_path: Path, parameter: str) -> str:
    """Read ``parameter`` through a session of its own, as Powertools does; what happened."""
    policy = Policy("arn:aws:sts::123456789012:assumed-role/r/f", (READS_CRONFLEET_PARAMETERS,))
    document = Enforcement(policy, Calls(Naming({}), {})).to_json()
    (tmp_path / "policy.json").write_text(json.dumps(document))
    code = textwrap.dedent(
        f"""
        import boto3.session
        from botocore.exceptions import ClientError, EndpointConnectionError
        from cronfleet_tools.local.iam import enforce_in_this_process

        enforce_in_this_process({str(tmp_path / "policy.json")!r})
        ssm = boto3.session.Session(region_name="us-east-1").client(
            "ssm", endpoint_url="http://127.0.0.1:9",
            aws_access_key_id="local", aws_secret_access_key="local",
        )
        try:
            ssm.get_parameter(Name={parameter!r}, WithDecryption=True)
        except ClientError as exc:
            print(exc.response["Error"]["Code"])
        except EndpointConnectionError:
            print("allowed, then sent")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return result.stdout.strip()


@pytest.mark.parametrize(
    ("parameter", "outcome"),
    [
        ("/cronfleet/cron-secret", "allowed, then sent"),
        ("/payments/api-key", "AccessDeniedException"),
    ],
)
def test_a_session_a_library_makes_is_held_to_the_functions_role(
    tmp_path: Path, parameter: str, outcome: str
) -> None:
    # given a function process whose role reads only parameters under /cronfleet/
    # when a library reads a parameter through a boto3 session it made itself
    # then the call is checked as AWS checks it: refused outside /cronfleet/, before it is sent
    assert _in_a_function_process(tmp_path, parameter) == outcome
