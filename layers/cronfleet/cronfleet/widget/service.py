"""One widget invocation: read the request, do its action if it has one, answer with HTML.

Whatever goes wrong with the request itself (a malformed event, an unknown action, a task that
is not there, a page past the last) is answered with an HTML refusal naming the parameter, and
nothing is changed: an action is only attempted once its request has been read whole.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from cronfleet.lifecycle.attempts import Attempts
from cronfleet.store import Store
from cronfleet.widget.actions import FleetActions
from cronfleet.widget.render import DOCS, render_page, render_refusal
from cronfleet.widget.request import WidgetRefusal, parse_request
from cronfleet.widget.view import fleet_page


class FleetWidget:
    def __init__(self, store: Store, attempts: Callable[[], Attempts]) -> None:
        self.store = store
        self.actions = FleetActions(store, attempts)

    def answer(self, event: Any, now: datetime, *, endpoint: str, request_id: str) -> str:
        """The widget's HTML for ``event``; its documentation (markdown) for ``describe``."""
        from cronfleet.observability import logger

        if isinstance(event, dict) and event.get("describe") is True:
            return DOCS
        try:
            request = parse_request(event)
            notice = None
            if request.action != "view":
                notice = self.actions.perform(request, now, request_id=request_id).notice
            # After an action the page stays where it was, or moves back to the last page when
            # the action made the filters match fewer tasks.
            page = fleet_page(self.store, request, now, clamp=request.action != "view")
        except WidgetRefusal as refusal:
            logger.warning(
                "Fleet widget request refused",
                extra={"field": refusal.field, "reason": refusal.reason, "request_id": request_id},
            )
            return render_refusal(refusal.field, refusal.reason, endpoint)
        return render_page(page, endpoint, notice=notice)
