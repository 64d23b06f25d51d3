"""The execution envelope: what a task function receives for one attempt of one slot."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationInfo, field_validator

from cronfleet.lifecycle.slots import MANUAL_MARK, parse_slot
from cronfleet.lifecycle.states import Trigger


class ExecutionEnvelope(BaseModel):
    """What a task function receives: which slot, which attempt, by when, and the payload.

    It travels under the ``cronfleet`` key of the invoke payload, so a plain test event (as
    `sam local invoke` sends) is told apart from a scheduled run.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = 1
    task_id: Annotated[str, Field(min_length=1, max_length=64)]
    slot: str
    attempt: Annotated[int, Field(ge=1, le=10)]
    deadline: str  # ISO-8601 UTC: the attempt must finish by then
    trigger: Trigger
    payload: dict[str, JsonValue] = Field(default_factory=dict)

    @field_validator("slot", "deadline")
    @classmethod
    def _iso_utc(cls, value: str, info: ValidationInfo) -> str:
        # A manual run's slot is its start time with its own suffix (see manual_slot).
        time, _, suffix = (
            value.partition(MANUAL_MARK) if info.field_name == "slot" else (value, "", "")
        )
        try:
            parse_slot(time)
        except ValueError as exc:
            raise ValueError(
                f"must be an ISO-8601 UTC time such as 2026-11-01T09:00:00Z, got {value!r}"
            ) from exc
        if MANUAL_MARK in value and not re.fullmatch(r"[0-9a-f]{1,32}", suffix):
            raise ValueError(f"a manual slot ends in {MANUAL_MARK}<hex>, got {value!r}")
        return value

    @property
    def slot_time(self) -> datetime:
        return parse_slot(self.slot.partition(MANUAL_MARK)[0])

    @property
    def deadline_time(self) -> datetime:
        return parse_slot(self.deadline)

    def to_event(self) -> dict[str, Any]:
        return {"cronfleet": self.model_dump(mode="json")}

    @classmethod
    def from_event(cls, event: Any) -> ExecutionEnvelope | None:
        """The envelope of a scheduled run, or None for a plain event (a manual run)."""
        if isinstance(event, dict) and "cronfleet" in event:
            return cls.model_validate(event["cronfleet"])
        return None
