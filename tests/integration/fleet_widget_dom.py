"""The fleet widget's HTML read back as a browser would: rows, buttons and refusals.

Parsed with the standard library's HTML parser, which decodes entities as a browser does, so a
name written ``&lt;b&gt;`` reads back as the text ``<b>`` and never as an element.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any


@dataclass
class Button:
    label: str
    attributes: dict[str, str]
    body: str = ""

    @property
    def params(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Row:
    task: str
    cells: list[str] = field(default_factory=list)
    buttons: list[Button] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " | ".join(self.cells)


class WidgetDom(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[Row] = []
        self.buttons: list[Button] = []  # every button, in or out of a row
        self.elements: list[str] = []  # every start tag's name, in order
        self.refusal: dict[str, str] | None = None
        self.refusal_text = ""
        self.title = ""
        self.text = ""
        self._row: Row | None = None
        self._cell: list[str] | None = None
        self._label: list[str] | None = None
        self._action: Button | None = None
        self._in_refusal = 0
        self._in_title = False
        self._last_label = ""
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        self.elements.append(tag)
        if tag == "title":
            self._in_title = True
        elif tag == "tr" and "data-task" in attributes:
            self._row = Row(attributes["data-task"])
            self.rows.append(self._row)
        elif tag == "td" and self._row is not None:
            self._cell = []
        elif tag == "a" and "btn" in attributes.get("class", ""):
            self._label = []
        elif tag == "cwdb-action":
            self._action = Button(self._last_label, attributes)
            self.buttons.append(self._action)
            if self._row is not None:
                self._row.buttons.append(self._action)
        elif "data-field" in attributes:
            self.refusal = attributes
            self._in_refusal = 1
        elif self._in_refusal:
            self._in_refusal += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag == "tr":
            self._row = None
        elif tag == "td" and self._row is not None and self._cell is not None:
            self._row.cells.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "a" and self._label is not None:
            self._last_label = "".join(self._label).strip()
            self._label = None
        elif tag == "cwdb-action":
            self._action = None
        elif self._in_refusal:
            self._in_refusal -= 1

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        if self._action is not None:
            self._action.body += data
            return  # a button's parameters are not text anyone reads
        self.text += data
        if self._label is not None:
            self._label.append(data)
        if self._cell is not None:
            self._cell.append(data)
        if self._in_refusal:
            self.refusal_text += data

    def row(self, task: str) -> Row:
        (found,) = [row for row in self.rows if row.task == task]
        return found

    def button(self, task: str, label: str) -> Button:
        (found,) = [button for button in self.row(task).buttons if button.label == label]
        return found
