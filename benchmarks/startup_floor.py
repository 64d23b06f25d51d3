"""The start-up every cronfleet function pays before any cronfleet code: the cold-start floor.

What the dispatcher's handler needs from its dependencies at import, made the way
``cronfleet.observability`` and the handler make it: botocore's config and errors (the store's
client settings), the Powertools logger, metrics and tracer, and pydantic with one model (the
tick event). `make bench` imports this beside the handler, so the figure says how much of the
handler's cold start is cronfleet's own.
"""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config
from botocore.exceptions import ClientError
from pydantic import AwareDatetime, BaseModel, ConfigDict

logger = Logger(service="cronfleet")
metrics = Metrics(namespace="Cronfleet")
tracer = Tracer(service="cronfleet", patch_modules=[])


class TickEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    scheduled_time: AwareDatetime


__all__ = ["ClientError", "Config", "LambdaContext", "TickEvent", "logger", "metrics", "tracer"]
