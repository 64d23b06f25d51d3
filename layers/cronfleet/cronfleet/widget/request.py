"""What a widget invocation asks for: its ``widgetContext`` and the parameters of the call.

CloudWatch sends the widget's configured parameters at the top level of the event on a plain
view, and a button's ``<cwdb-action>`` JSON at the top level when it is pressed; the values of
the widget's form fields arrive in ``widgetContext.forms.all``. Every parameter a button sends is
checked here, so a bad one is refused by name before anything is read or changed.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cronfleet.errors import CronfleetError
from cronfleet.health import Health

DEFAULT_PAGE_SIZE = 20
# A widget is a few hundred pixels tall; past this a page is a scroll nobody reads, and every
# row costs a ledger query.
MAX_PAGE_SIZE = 100
FILTERS = ("health", "tenant", "tag")

Action = Literal["view", "trigger", "pause", "resume"]
ACTIONS_ON_A_TASK = ("trigger", "pause", "resume")


class WidgetRefusal(CronfleetError, ValueError):
    """A request the widget will not carry out; names the parameter at fault and why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class WidgetForms(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    all: dict[str, Any] = Field(default_factory=dict)


class WidgetContext(BaseModel):
    """The part of ``widgetContext`` the widget reads; CloudWatch sends more (time range, theme)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    dashboard_name: str | None = Field(None, alias="dashboardName")
    widget_id: str | None = Field(None, alias="widgetId")
    forms: WidgetForms = Field(default_factory=WidgetForms)
    # The widget's configured parameters, which CloudWatch repeats on every button's call.
    params: dict[str, Any] = Field(default_factory=dict)


class WidgetRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    widget_context: WidgetContext = Field(alias="widgetContext")
    action: Action = "view"
    task: str | None = Field(None, min_length=1, max_length=256)
    page: int = Field(1, ge=1)
    page_size: int = Field(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    health: Health | None = None
    tenant: str | None = Field(None, max_length=256)
    # ``key`` (the task has the tag) or ``key=value``.
    tag: str | None = Field(None, max_length=512)
    # The Filter button: take the filters from the widget's form fields.
    form: bool = False

    @model_validator(mode="before")
    @classmethod
    def _filters_from_the_form(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("form") is not True:
            return data
        context = data.get("widgetContext")
        forms = context.get("forms") if isinstance(context, dict) else None
        fields = forms.get("all") if isinstance(forms, dict) else None
        values = fields if isinstance(fields, dict) else {}
        merged = dict(data)
        for name in FILTERS:
            value = values.get(name)
            # An empty field is no filter: forms send "" for what was left blank.
            merged[name] = value.strip() or None if isinstance(value, str) else value
        return merged

    @model_validator(mode="after")
    def _an_action_names_its_task(self) -> WidgetRequest:
        if self.action in ACTIONS_ON_A_TASK and self.task is None:
            raise ValueError(f"the {self.action} action needs a task: name it in 'task'")
        return self

    @property
    def filters(self) -> dict[str, str]:
        return {
            name: str(value.value if isinstance(value, Health) else value)
            for name in FILTERS
            if (value := getattr(self, name)) is not None
        }

    def view_params(self, *, page: int | None = None) -> dict[str, Any]:
        """The parameters that show this view again (at ``page``), for a button to send."""
        return {"page": self.page if page is None else page, "page_size": self.page_size} | (
            self.filters
        )


def parse_request(event: Any) -> WidgetRequest:
    """The request of a widget event, or a refusal naming the first bad field."""
    if not isinstance(event, dict):
        raise WidgetRefusal("event", f"expected a JSON object, got {type(event).__name__}")
    try:
        return WidgetRequest.model_validate(event)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        # The action-needs-a-task check is the model's own, so pydantic gives it no field.
        field = ".".join(map(str, first["loc"])) or "task"
        raise WidgetRefusal(field, first["msg"].removeprefix("Value error, ")) from exc
