"""The tables of a SAM template, created in the engine with the template's own schema."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


# Copied from a template's table as they are: together they are the table's schema. The rest
# (SSE, PITR, tags) is not something DynamoDB Local models.
SCHEMA_PROPERTIES = (
    "AttributeDefinitions",
    "KeySchema",
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
    "BillingMode",
    "StreamSpecification",
)

# --- tables ----------------------------------------------------------------------------------


def create_table(client: DynamoDBClient, name: str, properties: Mapping[str, Any]) -> None:
    """Create ``name`` with the key schema, indexes and TTL of a template's table properties."""
    schema = {key: properties[key] for key in SCHEMA_PROPERTIES if key in properties}
    if "GlobalSecondaryIndexes" in schema:
        schema["GlobalSecondaryIndexes"] = new_stack_indexes(schema["GlobalSecondaryIndexes"])
    client.create_table(TableName=name, **schema)
    # botocore sleeps Delay as a float; the stubs say int. DynamoDB Local is quick: poll often.
    client.get_waiter("table_exists").wait(
        TableName=name,
        WaiterConfig={"Delay": 0.2, "MaxAttempts": 100},  # type: ignore[typeddict-item]
    )
    ttl = properties.get("TimeToLiveSpecification")
    if ttl:
        client.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={
                "AttributeName": ttl["AttributeName"],
                "Enabled": bool(ttl.get("Enabled", True)),
            },
        )


def new_stack_indexes(indexes: list[Any]) -> list[Mapping[str, Any]]:
    """The indexes a new stack's table has: those the template lists as they are.

    An index under ``Fn::If`` exists only while a deployed stack is upgraded from an earlier
    layout (the PreviousIndexes parameter); a local stack is always created new.
    """
    return [index for index in indexes if "Fn::If" not in index]


def template_tables(template: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(logical id, properties) of every DynamoDB table a parsed template declares."""
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") == "AWS::DynamoDB::Table":
            yield logical_id, resource["Properties"]


def create_tables_from_template(
    client: DynamoDBClient, template_path: str | os.PathLike[str], prefix: str
) -> dict[str, str]:
    """Create ``prefix + logical id`` for every table of the template; returns id -> name.

    The template is the schema: tables built from it cannot drift from what deploys.
    """
    from cronfleet_tools.template import load_template  # PyYAML: a CLI dependency

    names: dict[str, str] = {}
    for logical_id, properties in template_tables(load_template(template_path)):
        names[logical_id] = f"{prefix}{logical_id}"
        create_table(client, names[logical_id], properties)
    return names
