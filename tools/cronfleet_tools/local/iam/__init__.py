"""IAM, enforced here as AWS enforces it: each function's AWS calls checked against its role.

On AWS a missing permission fails a deploy or a run; locally nothing would, and a defect such
as a registry that cannot write the ledger would only show after deploying. So the local
runtime and the integration tests give each function the policy statements its role has in
the *transformed* template (what `sam deploy` submits, SAM policy templates expanded), and
every call its boto3 clients make is checked before it is sent:

- the IAM actions a call needs, per AWS's rules: a TransactWriteItems needs PutItem,
  UpdateItem, DeleteItem or ConditionCheckItem on each table it touches, a Query on an index
  needs Query on ``table/<name>/index/<index>``;
- the resource ARNs, built from the local names of the template's resources;
- ``aws:ResourceTag/<key>`` conditions, from the tags the template gives the target function.

A call no statement allows fails as AWS fails it, with AccessDeniedException. Only identity
policies are modelled: no permission boundaries, no SCPs, no resource policies. Managed
policies the template declares (TaskFunctionPolicy) are read like inline ones; AWS's own
(logging, X-Ray) are left out because nothing here calls those services with boto3.

Modules: :mod:`.resolving` transforms the template, :mod:`.policies` reads the roles,
:mod:`.calls` says what each call needs, :mod:`.enforcement` holds each process to its role.
"""

from cronfleet_tools.local.iam.calls import Calls, enforce, granted_actions, local_naming
from cronfleet_tools.local.iam.enforcement import (
    ENFORCEMENT_VARIABLE,
    CheckedInvoker,
    Enforcement,
    enforce_in_this_process,
    enforcements,
)
from cronfleet_tools.local.iam.policies import Policy, Statement, function_policies, function_tags
from cronfleet_tools.local.iam.resolving import (
    LOCAL_STACK_NAME,
    Naming,
    PolicyError,
    Resolver,
    transform,
)

__all__ = [
    "ENFORCEMENT_VARIABLE",
    "LOCAL_STACK_NAME",
    "Calls",
    "CheckedInvoker",
    "Enforcement",
    "Naming",
    "Policy",
    "PolicyError",
    "Resolver",
    "Statement",
    "enforce",
    "enforce_in_this_process",
    "enforcements",
    "function_policies",
    "function_tags",
    "granted_actions",
    "local_naming",
    "transform",
]
