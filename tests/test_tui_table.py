"""rnnlab's Table measures its Text cells itself (widgets/table.py): the widths must be DataTable's own."""

from __future__ import annotations

import asyncio

from rich.text import Text
from textual.app import App
from textual.widgets import DataTable

from rnnlab.tui.widgets.table import Table

ROWS = [
    [Text("plain"), Text(""), Text("wide 漢字漢字"), "a [b]str cell"],
    [Text("two\nlines, the second longer"), Text("x" * 30), Text("é́ combining"), Text("ok")],
    [Text("\\x1b[31m shown literally"), Text("right", justify="right"), Text("🙂🙂"), None],
]


class Both(App):
    def compose(self):
        yield DataTable(id="theirs")
        yield Table(id="ours")


def test_fast_widths_equal_datatables_measure():
    async def run():
        app = Both()
        async with app.run_test(size=(200, 30)) as pilot:
            tables = [app.query_one("#theirs", DataTable), app.query_one("#ours", Table)]
            for table in tables:
                for label in ("a", "bb", "ccc", "d"):
                    table.add_column(label, key=label)
                for index, row in enumerate(ROWS):
                    table.add_row(*row, key=str(index))
                table.add_row(Text("a label"), Text("y"), Text("z"), Text("w"), key="labelled", label="L")
            await pilot.pause()
            theirs, ours = ([column.content_width for column in table.ordered_columns] for table in tables)
            assert ours == theirs and max(ours) == 30
            assert tables[0].virtual_size == tables[1].virtual_size
            for table in tables:
                table.update_cell("0", "bb", Text("a cell longer than thirty cells"), update_width=True)
            await pilot.pause()
            theirs, ours = ([column.content_width for column in table.ordered_columns] for table in tables)
            assert ours == theirs and ours[1] == len("a cell longer than thirty cells")

    asyncio.run(run())
