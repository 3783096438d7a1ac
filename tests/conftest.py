"""Every snapshot waits for the screen's tables to be measured before it is taken; the corpus cache is the
session's own."""

from __future__ import annotations

import inspect
import os
import tempfile

import pytest

from tui_fixtures import tables_settled, wait_for


def pytest_configure(config) -> None:
    """One corpus cache for the whole session, children included (rnnlab/tasks/corpus_cache.py): the tests
    share its speed-up but never read or fill the user's ~/.cache."""
    if "RNNLAB_CACHE" not in os.environ:
        os.environ["RNNLAB_CACHE"] = tempfile.mkdtemp(prefix="rnnlab-test-cache-")


@pytest.fixture
def snap_compare(snap_compare):
    """pytest-textual-snapshot's snap_compare, run_before extended: a DataTable measures new rows and grown
    cells on its next idle, which two busy cores delayed past the shot (a table of label-wide columns)."""
    def compare(app, *args, run_before=None, **kwargs):
        async def settled(pilot) -> None:
            if run_before is not None and inspect.isawaitable(result := run_before(pilot)):
                await result
            await wait_for(pilot, lambda: tables_settled(pilot.app), what="the tables measured")
        return snap_compare(app, *args, run_before=settled, **kwargs)
    return compare
