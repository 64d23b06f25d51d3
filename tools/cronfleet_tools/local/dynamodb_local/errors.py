"""Why DynamoDB Local could not run, each with what to do about it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from cronfleet.errors import CronfleetError

if TYPE_CHECKING:
    pass


class DynamoDBLocalError(CronfleetError, RuntimeError):
    """DynamoDB Local cannot be started here; the message says what to do about it."""


class JavaNotFound(DynamoDBLocalError):
    pass


class JavaTooOld(DynamoDBLocalError):
    pass


class JarNotFound(DynamoDBLocalError):
    pass


class StartupFailed(DynamoDBLocalError):
    """The engine exited, or did not answer in time; the message ends with its log."""


class DataDirInUse(DynamoDBLocalError):
    """Another live process runs an engine on this db_path."""

    def __init__(self, db_path: Path, owner: int | None) -> None:
        super().__init__(
            f"DynamoDB Local's data in {db_path} is in use by the engine of process "
            f"{owner if owner is not None else '(unknown)'}: stop that first, or use another "
            "directory"
        )
        self.db_path = db_path
        self.owner = owner
