"""The home screen: every run in the runs directory, to filter, sort, mark, compare, open or delete.

Everything shown comes from `store.list_runs` (one status.json per run) and `store.list_sweeps` (one
sweep.json per sweep): 1,000 runs open in well under a second because no event log is read here.
A sweep's trials are grouped under one row per sweep, collapsed until `e` expands it.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Static

from ... import run_filter
from ...console import fmt_duration, fmt_num
from ...store import RunDir, RunSummary, SweepDir, list_runs, list_sweeps, remove_run
from ..widgets.table import Table
from ..literal import notify, plain
from ..run_rows import (COLUMNS, RIGHT, SORT_KEYS, SweepGroup, SweepInfo, as_number, make_group, matches,
                        read_sweep_info, row_key, sort_runs, state_styles)
from .confirm import ConfirmScreen
from .run_labels import LabelActions

REFRESH_SECONDS = 2.0  # a run started in another terminal shows up within 2 s
FIRST_ROWS, MORE_ROWS = 200, 1000  # rows added before the first frame, then per repaint (add_rows)
MARK = "●"
OPEN, CLOSED = "▾", "▸"  # before a sweep's id: its trials shown, or not


class RunsScreen(LabelActions, Screen):
    BINDINGS = [
        # priority: the table's own enter (show=False) would otherwise hide "Open" from the footer
        Binding("enter", "open", "Open", priority=True),
        Binding("space", "mark", "Mark"),
        Binding("c", "compare", "Compare"),
        Binding("d", "delete", "Delete"),
        Binding("n", "new", "New run"),
        Binding("slash", "focus_filter", "Filter", show=False),  # the filter's placeholder says "/"
        Binding("s", "sort", "Sort"),
        Binding("r", "reverse", "Reverse sort", show=False),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        # A sweep's trials (on a trial: fold them back). Not in the footer, which 80 columns fill: the
        # status line says it when the cursor is on a sweep or a trial.
        Binding("e", "expand", "Expand / fold a sweep", show=False),
        Binding("t", "studies", "Studies (the lectures' claims)", show=False),
        Binding("g", "tags", "Tag the run (+name -name)", show=False),  # the status line shows a run's tags
        Binding("o", "note", "Note on the run", show=False),
    ]
    DEFAULT_CSS = """
    RunsScreen #filter { margin: 0 1; }
    RunsScreen DataTable { height: 1fr; }
    RunsScreen #empty { height: auto; padding: 1 2; }
    RunsScreen #status { height: 1; }
    """

    def __init__(self, runs_dir: Path):
        super().__init__()
        self.runs_dir = Path(runs_dir)
        self.summaries: list[RunSummary] = []  # every run, as list_runs gave them
        self.sweeps: list[SweepInfo] = []  # every sweep record, as list_sweeps gave them
        self.grouped: set[str] = set()  # the ids of sweeps with a record: their trials go under them
        self.expanded: set[str] = set()  # sweep ids whose trials are shown
        self.shown: list[RunSummary] = []  # filtered and sorted: the table's rows (SweepGroup or run), in order
        self.marked: set[str] = set()  # run ids
        self.shown_filter = run_filter.parse("")  # the filter box, parsed (rnnlab.run_filter)
        self.sort_column, self.sort_reverse = "started", True  # newest first
        self.problem: str | None = None
        self.added = 0  # how many of self.shown the table holds (the rest are being added: add_rows)
        self.generation = 0  # of the table's rows: a newer rebuild stops an older one's adding
        self.cursor_wanted: str | None = None  # the row key to put the cursor on once its row is added
        self.listing_cache: dict = {}  # store.list_runs' (a refresh reads only the runs that changed)
        self.listing_lock = threading.Lock()

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder="/ filter: text, tag:NAME arch:lstm state:finished val<1.6", id="filter", compact=True)
        yield Static(id="empty", classes="hint")  # above the table: where the eye looks for rows
        # The marker and id stay in view when a narrow terminal scrolls the other columns (left/right).
        yield Table(cursor_type="row", zebra_stripes=True, fixed_columns=2)
        yield Static(id="status", classes="hint")
        yield Footer(compact=True)  # compact: every key, "? Help" included, fits 80 columns

    def on_mount(self) -> None:
        self.sub_title = "runs"
        # The first listing is synchronous: the table is full on the first frame (no empty flash).
        self.take(*self.read_runs())  # not apply(): is_mounted turns True only after on_mount
        self.query_one(DataTable).focus()
        self.set_interval(REFRESH_SECONDS, self.reload)
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.rebuild())

    def on_screen_resume(self) -> None:
        self.reload()  # back from launch/live/compare: a new or deleted run shows at once

    # -- data --------------------------------------------------------------------------
    def reload(self) -> None:
        if self.is_current:  # nobody sees the table while another screen is on top
            self._list_in_thread()

    def read_runs(self) -> tuple[list[RunSummary] | None, str | None, list[SweepInfo] | None]:
        """The runs, why not (the browser must survive an unlistable runs dir), and the sweeps."""
        try:
            with self.listing_lock:  # a cancelled refresh's thread may still be listing
                runs = list_runs(self.runs_dir, cache=self.listing_cache)
        except (OSError, TypeError, ValueError) as error:  # no permission; a status.json with odd types
            return None, f"cannot list {self.runs_dir}: {getattr(error, 'strerror', None) or error}", None
        try:
            sweeps = [read_sweep_info(sweep) for sweep in list_sweeps(self.runs_dir)]
        except OSError:  # runs/sweeps unreadable: its trials are listed as plain runs
            sweeps = []
        return runs, None, sweeps

    # exit_on_error=False: a refresh that fails (or ends as the app quits) must not take the app down.
    @work(thread=True, exclusive=True, group="runs-refresh", exit_on_error=False)
    def _list_in_thread(self) -> None:
        self.app.call_from_thread(self.apply, *self.read_runs())

    def apply(self, rows: list[RunSummary] | None, problem: str | None = None,
              sweeps: list[SweepInfo] | None = None) -> None:
        """Take a new listing (None: keep the old one); redraw only what changed, so the cursor stays."""
        if self.is_mounted:  # else the listing finished after the screen went away
            self.take(rows, problem, sweeps)

    def take(self, rows: list[RunSummary] | None, problem: str | None = None,
             sweeps: list[SweepInfo] | None = None) -> None:
        self.problem = problem
        sweeps = self.sweeps if sweeps is None else sweeps
        if rows is not None and (rows != self.summaries or sweeps != self.sweeps):
            self.summaries, self.sweeps = rows, sweeps
            self.marked &= {row.id for row in rows}  # a deleted run cannot stay marked
            self.rebuild(keep_columns=True)
        self.update_status()

    def row_cells(self, summary: RunSummary, styles: dict[str, str]) -> list[Text]:
        started = as_number(summary.started)
        group = isinstance(summary, SweepGroup)
        shown_id = (f"{OPEN if summary.id in self.expanded else CLOSED} sweep {summary.id}" if group
                    else f"  {summary.id}" if summary.sweep in self.grouped else summary.id)
        texts = {"id": shown_id, "arch": summary.arch, "task": summary.task, "state": summary.state,
                 "steps": f"{summary.step} trials" if group else
                 f"{summary.step}/{summary.total_steps}" if summary.total_steps else "-",
                 "best": fmt_num(as_number(summary.best_val)), "duration": fmt_duration(as_number(summary.duration)),
                 "started": time.strftime("%Y-%m-%d %H:%M", time.localtime(started)) if started else "-"}
        # Text, not str: a str cell is parsed as markup (slower, and "[x]" in a hand-edited status vanishes);
        # plain(): an ESC in a renamed directory or a hand-edited status shows as \x1b, never obeyed.
        return [Text(self.mark_of(summary))] + [
            plain(texts[key], style=("bold" if group and key == "id" else
                                     styles.get(summary.state, "") if key == "state" else ""),
                  justify="right" if key in RIGHT else None) for key, _, _ in COLUMNS]

    def mark_of(self, row: RunSummary) -> str:
        if isinstance(row, SweepGroup):  # marked: every trial of it
            return MARK if row.trials and all(trial.id in self.marked for trial in row.trials) else " "
        return MARK if row.id in self.marked else " "

    def rows(self) -> list[RunSummary]:
        """The table's rows in order: sweeps and plain runs sorted together, each sweep's trials (sorted)
        under it when it is expanded, or when the filter matches them and not the sweep."""
        sweep_ids = self.grouped = {info.id for info in self.sweeps}
        trials: dict[str, list[RunSummary]] = {info.id: [] for info in self.sweeps}
        plain_runs = []
        for row in self.summaries:
            (trials[row.sweep] if row.sweep in sweep_ids else plain_runs).append(row)
        top, under = [row for row in plain_runs if matches(row, self.shown_filter)], {}
        for info in self.sweeps:
            group = make_group(info, trials[info.id])
            if matches(group, self.shown_filter):
                top.append(group)
                under[info.id] = group.trials if info.id in self.expanded else []
            elif hits := [trial for trial in group.trials if matches(trial, self.shown_filter)]:
                top.append(group)
                under[info.id] = hits
        shown = []
        for row in sort_runs(top, self.sort_column, self.sort_reverse):
            shown.append(row)
            if isinstance(row, SweepGroup):
                shown += sort_runs(under[row.id], self.sort_column, self.sort_reverse)
        return shown

    def rebuild(self, keep_columns: bool = False) -> None:
        table = self.query_one(DataTable)
        cursor = self.cursor_summary()
        shown = self.rows()
        styles = state_styles(self.app.theme_variables)
        before = {row_key(row): row for row in self.shown}
        same_rows = (keep_columns and self.added == len(self.shown)
                     and [row_key(row) for row in shown] == [row_key(row) for row in self.shown])
        self.shown = shown
        if same_rows:  # the usual 2 s refresh of a running run: update its cells in place
            for summary in (row for row in shown if row != before[row_key(row)]):
                for (key, *_), value in zip(COLUMNS, self.row_cells(summary, styles)[1:]):
                    table.update_cell(row_key(summary), key, value, update_width=True)  # 31/1000 -> 319/1000 fits
        else:
            table.clear(columns=not keep_columns)
            if not table.columns:
                table.add_column("", key="mark")
                for key, label, _ in COLUMNS:
                    arrow = (" ▼" if self.sort_reverse else " ▲") if key == self.sort_column else ""
                    table.add_column(Text(label + arrow, justify="right" if key in RIGHT else "left"), key=key)
            self.added, self.generation = 0, self.generation + 1
            self.cursor_wanted = row_key(cursor) if cursor is not None else None
            self.add_rows(self.generation, FIRST_ROWS)
        self.update_status()

    def put_cursor(self, key: str) -> None:
        """The cursor on the row of `key`: now, or once add_rows has added it."""
        table = self.query_one(DataTable)
        if key in table.rows:
            table.move_cursor(row=table.get_row_index(key), animate=False)
        else:
            self.cursor_wanted = key

    def add_rows(self, generation: int, count: int) -> None:
        """Add the next `count` rows of self.shown; the rest after the next repaint. 10,000 rows at once took
        the table 2-3 s (each row's cells measured on its idle) before the first frame; a screenful first,
        then the rest a thousand at a time, keeps the screen live and the filter usable meanwhile."""
        if generation != self.generation:  # a newer rebuild took over
            return
        table, styles = self.query_one(DataTable), state_styles(self.app.theme_variables)
        for summary in self.shown[self.added:self.added + count]:
            table.add_row(*self.row_cells(summary, styles), key=row_key(summary))
            if row_key(summary) == self.cursor_wanted:  # the row the cursor was on before the rebuild
                table.move_cursor(row=table.row_count - 1, animate=False)
                self.cursor_wanted = None
        self.added = table.row_count
        if self.added < len(self.shown):
            self.call_after_refresh(lambda: self.is_attached and self.add_rows(generation, MORE_ROWS))

    # -- what the user sees besides the table ------------------------------------------
    def cursor_summary(self) -> RunSummary | None:
        row = self.query_one(DataTable).cursor_row
        return self.shown[row] if 0 <= row < len(self.shown) else None

    def update_status(self) -> None:
        empty = self.query_one("#empty", Static)
        if self.problem and not self.summaries:
            empty.update(plain(f"{self.problem}\nrnnlab lists the runs again every {REFRESH_SECONDS:.0f} s.",
                               keep="\n"))
        elif not self.summaries:
            empty.update(plain(f"No runs yet in {self.runs_dir}.\nPress n to start one "
                               "(or run `rnnlab run experiments/quickstart.toml` in a shell).", keep="\n"))
        elif not self.shown:
            text = self.query_one("#filter", Input).value
            empty.update(plain(f"No run matches {text!r}. Press escape to clear the filter."))
        empty.display = not self.shown
        counts = ([f"{len(self.summaries)} runs"] + [f"{len(self.sweeps)} sweeps"] * bool(self.sweeps)
                  + [f"{len(self.shown)} shown"] * (not self.shown_filter.empty)
                  + [f"{len(self.marked)} marked"] * bool(self.marked))
        cursor = self.cursor_summary()
        # A listing problem (without runs, the hint above says it), else what is wrong with a corrupt run.
        problem = ((self.problem if self.summaries else None)
                   or "; ".join(f"filter: {term}" for term in self.shown_filter.problems)
                   or (cursor.problem if cursor else None))
        line = Text(", ".join(counts)).append(plain(f"  {problem}" if problem else "",
                                                    self.app.theme_variables["error"]))
        if not problem and isinstance(cursor, SweepGroup):
            line.append(f"  e {'folds' if cursor.id in self.expanded else 'shows'} its trials, enter opens the sweep")
        elif not problem and cursor is not None and cursor.sweep in self.expanded:
            line.append("  e folds its sweep")
        if not problem and cursor is not None and not isinstance(cursor, SweepGroup) and (cursor.tags or cursor.note):
            labels = " ".join(f"#{tag}" for tag in cursor.tags) + (" " * bool(cursor.tags) + cursor.note)
            line.append_text(plain(f"  {labels}", style="italic"))  # the user's own words: shown literally
        self.query_one("#status", Static).update(line)

    def on_data_table_row_highlighted(self) -> None:
        self.update_status()

    def on_data_table_row_selected(self) -> None:
        self.action_open()  # a click on the highlighted row

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        column = event.column_key.value
        if column in SORT_KEYS:
            same = column == self.sort_column
            self.sort_column, self.sort_reverse = column, (not self.sort_reverse) if same else False
            self.rebuild()

    @on(Input.Changed, "#filter")
    def filter_changed(self, event: Input.Changed) -> None:
        self.shown_filter = run_filter.parse(event.value)
        self.rebuild(keep_columns=True)

    # -- actions -------------------------------------------------------------------------
    def action_open(self) -> None:
        cursor = self.cursor_summary()
        if self.focused is self.query_one("#filter") or cursor is None:
            self.query_one(DataTable).focus()  # enter in the filter goes back to the table
        elif cursor.problem:
            notify(self, f"{cursor.id}: {cursor.problem}", title="Cannot open", severity="error")
        elif isinstance(cursor, SweepGroup):
            self.app.open_sweep(SweepDir(cursor.path))
        else:
            self.app.open_live(RunDir(cursor.path))

    def action_expand(self) -> None:
        """On a sweep: show or hide its trials; on a trial: hide them, the cursor back on its sweep."""
        cursor = self.cursor_summary()
        if isinstance(cursor, SweepGroup):
            self.expanded ^= {cursor.id}
        elif cursor is not None and cursor.sweep in self.expanded:
            self.expanded.discard(cursor.sweep)
            cursor = next(row for row in self.shown if isinstance(row, SweepGroup) and row.id == cursor.sweep)
        else:
            return
        self.rebuild(keep_columns=True)
        self.put_cursor(row_key(cursor))

    def action_mark(self) -> None:
        """Mark the run; on a sweep, mark every trial of it (or unmark them all when all are marked)."""
        if cursor := self.cursor_summary():
            if isinstance(cursor, SweepGroup):
                ids = {trial.id for trial in cursor.trials}
                self.marked = self.marked - ids if ids <= self.marked else self.marked | ids
            else:
                self.marked ^= {cursor.id}
            sweep = cursor.id if isinstance(cursor, SweepGroup) else cursor.sweep
            table = self.query_one(DataTable)
            for row in self.shown:  # the row, and the sweep's row and trials (its mark follows theirs)
                if row is cursor or sweep is not None and (
                        row.sweep == sweep or isinstance(row, SweepGroup) and row.id == sweep):
                    if row_key(row) in table.rows:  # else not added yet: it comes with its mark
                        table.update_cell(row_key(row), "mark", Text(self.mark_of(row)))
            self.update_status()

    def marked_runs(self) -> list[RunSummary]:
        """Marked runs in the table's order (hidden ones, filtered out or folded in a sweep, after)."""
        shown = {row.id for row in self.shown if not isinstance(row, SweepGroup)}
        hidden = [row for row in self.summaries if row.id in self.marked and row.id not in shown]
        return [row for row in self.shown if row.id in shown and row.id in self.marked] + hidden

    def action_compare(self) -> None:
        runs = self.marked_runs()
        if len(runs) < 2:
            self.notify("Mark two or more runs with space, then press c.", title="Compare")
            return
        self.app.open_compare([RunDir(row.path) for row in runs])

    def action_delete(self) -> None:
        cursor = self.cursor_summary()
        if not self.marked and isinstance(cursor, SweepGroup):
            self.notify("A sweep is not deleted here: mark its trials (space on its row marks them all), "
                        "then press d.", title="Delete")
            return
        targets = self.marked_runs() or ([cursor] if cursor else [])
        live = [row for row in targets if RunDir(row.path).is_live()]
        if live:  # its trainer would keep writing into a deleted directory
            notify(self, f"{', '.join(row.id for row in live)}: still running; stop it first.",
                   title="Not deleted", severity="error")
        targets = [row for row in targets if row not in live]
        if not targets:
            return
        names = [row.id for row in targets[:8]] + ([f"... and {len(targets) - 8} more"] if len(targets) > 8 else [])
        one = len(targets) == 1
        question = f"Delete {len(targets)} run{'' if one else 's'} and {'its' if one else 'all their'} files?"
        self.app.push_screen(ConfirmScreen(question, "\n".join(names)),
                             lambda yes: self.delete_runs(targets) if yes else None)

    def delete_runs(self, targets: list[RunSummary]) -> None:
        for row in targets:
            run = RunDir(row.path)
            if run.is_live():  # started (resumed) while the question was open
                notify(self, f"{row.id}: started running; not deleted.", severity="error")
                continue
            try:
                remove_run(run)
            except OSError as error:
                notify(self, f"{row.id}: {error.strerror or error}", title="Not deleted", severity="error")
            self.marked.discard(row.id)
        self.apply(*self.read_runs())

    def action_new(self) -> None:
        self.app.open_launch()

    def action_studies(self) -> None:
        from .studies import StudiesScreen

        self.app.push_screen(StudiesScreen(self.app.experiments_dir / "studies", self.runs_dir))

    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_clear_filter(self) -> None:
        filter_input = self.query_one("#filter", Input)
        if self.focused is not filter_input:
            filter_input.value = ""  # Input.Changed rebuilds the table
        self.query_one(DataTable).focus()

    def action_sort(self) -> None:
        keys = [key for key, _, _ in COLUMNS]
        self.sort_column = keys[(keys.index(self.sort_column) + 1) % len(keys)]
        self.sort_reverse = False
        self.rebuild()

    def action_reverse(self) -> None:
        self.sort_reverse = not self.sort_reverse
        self.rebuild()
