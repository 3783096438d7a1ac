"""The one DataTable every screen uses: Textual's, repainted once it has measured its columns.

A DataTable measures new rows and grown cells on its next idle, but the lines it drew before that stay
in its line cache, whose key does not hold the column widths (Textual issue 3533, open in 8.2). So a
table painted before its idle kept label-wide columns ("tiny-" for "tiny-widths") until the cursor
moved: on two busy cores, the Studies list did. And update_cell(update_width=True), unlike add_row,
does not ask for that idle: a run's 31/1000 that became 319/1000 stayed cut to five cells.
"""

from __future__ import annotations

from textual.widgets import DataTable


class Table(DataTable):
    def _update_dimensions(self, new_rows) -> None:
        super()._update_dimensions(new_rows)
        self._update_count += 1  # in every cached line's key: lines drawn at the old widths are dropped
        self.refresh()

    def update_cell(self, row_key, column_key, value, *, update_width: bool = False) -> None:
        super().update_cell(row_key, column_key, value, update_width=update_width)
        if update_width:
            self.check_idle()  # the idle that measures the cell
