"""Tags and notes: the store's labels.json (two processes tagging one run at once), the filter language,
the CLI (`runs tag`, `runs note`, `runs ls --filter`) and the runs browser's g / o keys and filter box."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

import pytest
from textual.widgets import DataTable, Input
from typer.testing import CliRunner

from rnnlab import store
from rnnlab.cli import app
from rnnlab.errors import ConfigError, CorruptRun
from rnnlab.run_filter import parse
from rnnlab.store import RunSummary
from rnnlab.tui import make_app
from rnnlab.tui.screens.ask import AskScreen

from tui_fixtures import FIXED_START, screen_text, wait_for

runner = CliRunner()


def make_run(runs_dir, name: str, arch: str, best: float | None, started: float) -> store.RunDir:
    run = store.create_run(runs_dir, name, now=started)
    run.config_path.write_text("")
    run.write_status({"id": run.id, "name": name, "arch": arch, "task": "charlm", "state": "finished",
                      "step": 100, "total_steps": 100, "best_val": best, "started": started, "elapsed": 5.0})
    return run


@pytest.fixture
def runs(tmp_path):
    runs_dir = tmp_path / "runs"
    made = [make_run(runs_dir, "shakespeare-lstm", "lstm", 1.52, FIXED_START),
            make_run(runs_dir, "shakespeare-gru", "gru", 1.71, FIXED_START + 60),
            make_run(runs_dir, "stdlib-lstm", "lstm", None, FIXED_START + 120)]
    return runs_dir, made


def test_tags_are_added_removed_in_order_and_the_note_replaced(runs):
    _, (run, *_) = runs
    assert store.read_labels(run.path) == store.Labels()
    assert store.update_labels(run.path, add=("baseline", "gpu", "baseline")).tags == ("baseline", "gpu")
    labels = store.update_labels(run.path, add=("v2",), remove=("gpu",), note="lr too high")
    assert labels == store.Labels(("baseline", "v2"), "lr too high") == store.read_labels(run.path)
    assert store.summarize(run.path).tags == ("baseline", "v2") and store.summarize(run.path).note == "lr too high"
    assert store.update_labels(run.path, note="").note == "" and store.read_labels(run.path).tags == ("baseline", "v2")
    with pytest.raises(ConfigError, match="not a tag name"):
        store.update_labels(run.path, add=("two words",))
    assert store.parse_tag_changes(["+a", "b", "-c"]) == (("a", "b"), ("c",))
    assert store.parse_tag_changes(["+a"], keep=("a", "old")) == (("a",), ("old",))  # the dialog's edit


def test_a_corrupt_labels_file_is_reported_and_never_overwritten(runs):
    _, (run, *_) = runs
    (run.path / store.LABELS).write_text("{not json")
    with pytest.raises(CorruptRun, match="unreadable"):
        store.update_labels(run.path, add=("x",))
    assert (run.path / store.LABELS).read_text() == "{not json"
    assert store.summarize(run.path).tags == () and store.summarize(run.path).state == "finished"  # still listed
    result = runner.invoke(app, ["runs", "tag", run.id, "+x", "--runs-dir", str(run.path.parent)])
    assert result.exit_code != 0 and "fix or delete it" in result.output and "Traceback" not in result.output


def test_two_processes_tagging_one_run_at_once_both_land(runs):
    _, (run, *_) = runs
    script = textwrap.dedent(f"""
        import sys
        from rnnlab.store import update_labels
        for i in range(60):
            update_labels({str(run.path)!r}, add=(f"{{sys.argv[1]}}{{i}}",))
    """)
    writers = [subprocess.Popen([sys.executable, "-c", script, prefix]) for prefix in ("a", "b")]
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0]
    tags = store.read_labels(run.path).tags
    assert sorted(tags) == sorted([f"a{i}" for i in range(60)] + [f"b{i}" for i in range(60)])


def summary(**fields) -> RunSummary:
    return RunSummary(**{"id": "20261118-100000-x-aaaa", "path": None, "arch": "lstm", "task": "charlm",
                         "state": "finished", **fields})


def test_the_filter_language():
    run = summary(name="shakespeare", best_val=1.52, step=900, tags=("Baseline", "gpu"), note="lr too high")
    assert parse("tag:baseline arch:lstm state:finished val<1.6").matches(run)
    assert parse("TAG:GPU step>=900 shakes").matches(run)  # case never matters
    assert parse("too high").matches(run)  # words of the note
    assert not parse("tag:base").matches(run)  # a tag is matched whole
    assert not parse("val<1.5").matches(run) and not parse("step>900").matches(run)
    assert not parse("val<2").matches(summary(best_val=None))  # no value: no comparison holds
    assert parse("arch:ls").matches(run)  # a field matches a part
    bad = parse("val<abc")
    assert bad.problems == ["val<abc: abc is not a number"] and not bad.matches(run)
    assert parse("").empty and parse("").matches(run)


def test_cli_tags_notes_and_filters(runs):
    runs_dir, (lstm, gru, stdlib) = runs
    where = ["--runs-dir", str(runs_dir)]
    result = runner.invoke(app, ["runs", "tag", lstm.id, "+baseline", "gpu", *where])
    assert result.exit_code == 0 and result.output.strip() == f"{lstm.id}: baseline gpu"
    result = runner.invoke(app, ["runs", "tag", lstm.id, "-gpu", *where])  # -name is a removal, not an option
    assert result.exit_code == 0 and result.output.strip() == f"{lstm.id}: baseline", result.output
    assert runner.invoke(app, ["runs", "note", gru.id, "a second look", *where]).exit_code == 0
    assert runner.invoke(app, ["runs", "note", gru.id, *where]).output.strip() == f"{gru.id}: a second look"

    def listed(text: str) -> list[str]:
        result = runner.invoke(app, ["runs", "ls", "--filter", text, *where], terminal_width=200)
        assert result.exit_code == 0, result.output
        return [run.id for run in (lstm, gru, stdlib) if run.id in result.output]

    assert listed("tag:baseline") == [lstm.id]
    assert listed("shakespeare val<1.8") == [lstm.id, gru.id]
    assert listed("second") == [gru.id]
    bad = runner.invoke(app, ["runs", "ls", "--filter", "val<", *where])
    assert bad.exit_code == 2 and bad.output.strip().splitlines()[0].startswith("error: --filter")
    bad = runner.invoke(app, ["runs", "tag", lstm.id, "+a b", *where])
    assert bad.exit_code == 2 and "not a tag name" in bad.output


def test_the_browser_filters_by_tag_and_g_o_edit_labels(runs):
    runs_dir, (lstm, gru, stdlib) = runs
    store.update_labels(lstm.path, add=("baseline",))

    async def main():
        app_ = make_app(runs_dir=runs_dir)
        async with app_.run_test(size=(120, 30)) as pilot:
            table = app_.screen.query_one(DataTable)
            await wait_for(pilot, lambda: table.row_count == 3, what="three runs")
            app_.screen.query_one("#filter", Input).value = "tag:baseline"
            await wait_for(pilot, lambda: [row.key.value for row in table.ordered_rows] == [lstm.id],
                           what="the tagged run alone")
            assert "#baseline" in screen_text(app_)  # the cursor's run: its tags on the status line
            app_.screen.query_one("#filter", Input).value = "val<"
            await wait_for(pilot, lambda: "filter: val<: (nothing) is not a number" in screen_text(app_),
                           what="the filter's problem")
            app_.screen.query_one("#filter", Input).value = ""
            await wait_for(pilot, lambda: table.row_count == 3, what="all three again")
            table.focus()
            table.move_cursor(row=[row.key.value for row in table.ordered_rows].index(gru.id))
            await pilot.press("g")
            await wait_for(pilot, lambda: isinstance(app_.screen, AskScreen), what="the tags dialog")
            await pilot.press(*"+v2 +sweep-b", "enter")
            await wait_for(pilot, lambda: store.read_labels(gru.path).tags == ("v2", "sweep-b"), what="saved")
            await pilot.press("o")
            await wait_for(pilot, lambda: isinstance(app_.screen, AskScreen), what="the note dialog")
            await pilot.press(*"[bold]lr", "enter")
            await wait_for(pilot, lambda: store.read_labels(gru.path).note == "[bold]lr", what="the note saved")
            await wait_for(pilot, lambda: "#v2 #sweep-b [bold]lr" in screen_text(app_), what="shown literally")
            await pilot.press("g")
            await wait_for(pilot, lambda: isinstance(app_.screen, AskScreen), what="the tags dialog again")
            await pilot.press("escape")  # nothing changes
            assert store.read_labels(gru.path).tags == ("v2", "sweep-b")

    asyncio.run(main())
