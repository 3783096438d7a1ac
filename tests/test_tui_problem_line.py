"""The problem line every form shares (tui/widgets/problem.py): no room while empty, text literal."""

from __future__ import annotations

import asyncio

from textual.app import App

from rnnlab.tui.widgets.problem import ProblemLine


class OneLine(App):
    def compose(self):
        yield ProblemLine(id="problem")


def test_a_problem_line_is_hidden_until_it_has_something_to_say_and_shows_it_literally():
    async def scenario():
        app = OneLine()
        async with app.run_test(size=(60, 10)) as pilot:
            line = app.query_one(ProblemLine)
            assert not line.display and line.region.height == 0  # takes no room while empty
            line.say("[bold]x[/bold] = \x1b[2J", "", "a\nb")  # markup and escapes as typed; empty lines skipped
            await pilot.pause()
            assert line.display and line.region.height == 2  # one real break, between the two messages
            assert str(line.render()) == "[bold]x[/bold] = \\x1b[2J\na\\nb"
            line.say("")
            await pilot.pause()
            assert not line.display and line.region.height == 0

    asyncio.run(scenario())
