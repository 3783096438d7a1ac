"""The one DataTable every screen uses: Textual's, measured faster and repainted once measured.

A DataTable measures new rows and grown cells on its next idle, but the lines it drew before that stay
in its line cache, whose key does not hold the column widths (Textual issue 3533, open in 8.2). So a
table painted before its idle kept label-wide columns ("tiny-" for "tiny-widths") until the cursor
moved: on two busy cores, the Studies list did. And update_cell(update_width=True), unlike add_row,
does not ask for that idle: a run's 31/1000 that became 319/1000 stayed cut to five cells.

Measuring: DataTable measures each cell through rich (console.options, and with it three terminal-size
system calls, per cell): 10,000 runs of nine cells took 5 s of the runs browser's 7.8 s to fill on a
busy machine. Every cell rnnlab puts in a table is a rich Text, whose width is that of its longest line,
so plain rows (no label, one line high) are measured here from their text; anything else still goes
through DataTable's own measure.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import DataTable


def text_width(cell) -> int | None:
    """What rich's measure gives a Text (its widest line), or None for another kind of cell."""
    if not isinstance(cell, Text):
        return None
    return max((cell_len(line) for line in cell.plain.splitlines()), default=0)


class Table(DataTable):
    def _update_dimensions(self, new_rows) -> None:
        columns, others = self.ordered_columns, []
        for key in new_rows:
            row, cells = self.rows.get(key), self._data.get(key)
            if row is None or cells is None or self._row_locations.get(key) is None:
                continue  # removed before the idle came
            widths = [text_width(cells.get(column.key, Text())) for column in columns]
            if row.label is not None or row.auto_height or None in widths:
                others.append(key)
                continue
            for column, width in zip(columns, widths):
                column.content_width = max(column.content_width, width)
        super()._update_dimensions(others)  # the rest, and the virtual size from the widths
        self._update_count += 1  # in every cached line's key: lines drawn at the old widths are dropped
        self.refresh()

    def update_cell(self, row_key, column_key, value, *, update_width: bool = False) -> None:
        super().update_cell(row_key, column_key, value, update_width=update_width)
        if update_width:
            self.check_idle()  # the idle that measures the cell
