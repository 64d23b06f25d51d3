"""Tables that fit the terminal without breaking a word.

Rich narrows a table that is too wide by shrinking its widest columns, below their longest
word if need be, and then folds words across lines ("HttpCallFa" / "iled:"). A
:class:`FittedTable` instead holds a few layouts of the same facts, widest first, and renders
the first one whose every column can be as wide as its longest word; the space left over goes
to the columns that want it most. A narrow terminal gets fewer columns, each holding more lines,
rather than broken words.

Data that can be arbitrarily long (JSON, error messages) goes through :func:`shortened` first,
which elides its longest words, so that one long URL cannot push a table off the screen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, JustifyMethod, RenderResult

# A table's borders and padding: one bar left of every column and one at the right edge, and
# one space of padding on either side of every column.
_PER_COLUMN = 3
_EDGE = 1
ELLIPSIS = "…"


def shortened(text: str, longest_word: int, *, limit: int | None = None) -> str:
    """``text`` with every word longer than ``longest_word`` cut to it (ending in an
    ellipsis), and, with ``limit``, the whole cut to that many characters."""
    if limit is not None and len(text) > limit:
        text = text[: limit - 1].rstrip() + ELLIPSIS
    lines = []
    for line in text.splitlines() or [""]:
        words = line.split(" ")
        lines.append(
            " ".join(
                word if len(word) <= longest_word else word[: longest_word - 1] + ELLIPSIS
                for word in words
            )
        )
    return "\n".join(lines)


@dataclass(frozen=True)
class Column:
    header: str
    justify: JustifyMethod = "left"


@dataclass
class Layout:
    """One arrangement of a table's facts: its columns and rows of cells."""

    columns: Sequence[Column]
    rows: list[tuple[list[Text], bool]] = field(default_factory=list)  # cells, end of section

    def add_row(self, *cells: str | Text, end_section: bool = False) -> None:
        self.rows.append(
            ([cell if isinstance(cell, Text) else Text(cell) for cell in cells], end_section)
        )

    def widths(self, console: Console, options: ConsoleOptions) -> list[int] | None:
        """Content widths that fit ``options.max_width`` with no word broken, or None."""
        room = options.max_width - _PER_COLUMN * len(self.columns) - _EDGE
        measured = [
            [Measurement.get(console, options, Text(column.header))]
            + [Measurement.get(console, options, cells[index]) for cells, _ in self.rows]
            for index, column in enumerate(self.columns)
        ]
        least = [max(m.minimum for m in column) for column in measured]
        most = [max(m.maximum for m in column) for column in measured]
        if sum(least) > room:
            return None
        # The room left goes to the columns that want least first, each up to its share: short
        # facts (a time, a duration) stay on one line, and long text takes the wrapping.
        widths = list(least)
        spare = room - sum(least)
        wanting = sorted(range(len(widths)), key=lambda index: most[index] - least[index])
        for position, index in enumerate(wanting):
            given = min(most[index] - least[index], spare // (len(wanting) - position))
            widths[index] += given
            spare -= given
        return widths

    def table(self, title: str | None, widths: list[int] | None) -> Table:
        table = Table(title=title, title_justify="left")
        for index, column in enumerate(self.columns):
            table.add_column(
                column.header,
                justify=column.justify,
                width=widths[index] if widths else None,
                overflow="fold",
            )
        for cells, end_section in self.rows:
            table.add_row(*cells, end_section=end_section)
        return table


class FittedTable:
    """The first of ``layouts`` that fits the width it is rendered at (see the module)."""

    def __init__(self, title: str | None, layouts: Sequence[Layout]) -> None:
        assert layouts, "a table needs at least one layout"
        self.title = title
        self.layouts = layouts

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for layout in self.layouts:
            widths = layout.widths(console, options)
            if widths is not None:
                yield layout.table(self.title, widths)
                return
        # Not even the narrowest fits: rich folds what it must.
        yield self.layouts[-1].table(self.title, None)
