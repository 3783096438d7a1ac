"""One sweep: its trials' progress, its results table and its metric-against-parameter plot.

The numbers are rnnlab/sweeps/results.py's (those `rnnlab sweep show` prints), computed from the
trials' own events; a thread worker reads the record and the trials every second and the screen
repaints only what changed. A finished trial is read once (cached by its files' size and time).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.reactive import var
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from ... import store
from ...console import fmt_duration, fmt_metric
from ...errors import CorruptRun
from ...sweeps import results
from ...termplot import round_axes
from ..widgets.table import Table
from ..literal import notify, plain
from ..widgets.plots import RunPlot
from ..run_rows import state_styles

POLL_SECONDS = 1.0  # the screen repaints at most once a second
NARROW = 100  # below this many columns the trials and the plot take turns (v)
DONE, FAILED = ("finished", "diverged"), ("failed", "crashed", "corrupt")


def point_text(point: dict, short: bool = False) -> str:
    """`model.arch=gru, model.hidden=16`; short: `arch=gru, hidden=16` (as the plot's legend names them)."""
    return ", ".join(f"{key.rsplit('.', 1)[-1] if short else key}={value}" for key, value in point.items())


def mean_text(point: results.PointResult) -> str:
    """`1.234 ± 0.05`, as `rnnlab sweep show` prints it."""
    return "-" if point.mean is None else f"{fmt_metric(point.mean)} ± {fmt_metric(point.std)}"


@dataclass
class SweepView:
    """Everything the screen shows, read in the worker thread; equal views need no repaint."""

    record: dict | None = None
    problem: str | None = None
    trials: list[results.TrialResult] = field(default_factory=list)
    steps: dict[str, str] = field(default_factory=dict)  # trial key -> "step/total"
    points: list[results.PointResult] = field(default_factory=list)
    plots: dict[str, dict] = field(default_factory=dict)  # numeric key -> plot_series

    def counts(self) -> dict[str, int]:
        counts = {"queued": 0, "running": 0, "done": 0, "failed": 0, "stopped": 0}
        for trial in self.trials:
            state = trial.state
            group = "done" if state in DONE else "failed" if state in FAILED else state
            counts[group] = counts.get(group, 0) + 1
        return counts


class SweepReader:
    """Reads a sweep's record and trials through store and results.py, caching every trial that is not running."""

    def __init__(self, sweep: store.SweepDir):
        self.sweep = sweep
        self.cache: dict[tuple, tuple] = {}  # (trial key, run id) -> (its files' version, TrialResult)

    def read(self) -> SweepView:
        try:
            record = self.sweep.read()
        except CorruptRun as error:
            return SweepView(problem=str(error))
        view = SweepView(record)
        unrecorded = []
        for trial in record["trials"]:
            run_id = trial.get("run")
            if isinstance(run_id, str) and store.is_run_dir(self.sweep.runs_dir / run_id):
                view.trials.append(self.trial(record, trial, run_id))
            elif trial.get("state") == "queued":  # no run yet: nothing to read
                view.trials.append(results.TrialResult(trial["key"], trial["point"], trial["seed"], None, "queued",
                                                       None))
            else:  # a run the driver did not get to record: results.py looks for it (one scan for them all)
                unrecorded.append(trial)
                view.trials.append(None)
        if unrecorded:
            found = iter(results.trial_results(self.sweep, {**record, "trials": unrecorded}))
            view.trials = [trial or next(found) for trial in view.trials]
        for trial in view.trials:
            view.steps[trial.key] = self.steps_of(trial)
        view.points = results.point_results(view.trials)
        view.plots = {key: results.plot_series(record, view.trials, key)
                      for key in results.numeric_keys(record, view.trials)}
        return view

    def trial(self, record: dict, trial: dict, run_id: str) -> results.TrialResult:
        run = store.RunDir(self.sweep.runs_dir / run_id)
        version = run.version()
        cached = self.cache.get((trial["key"], run_id))
        if cached and cached[0] == version:
            return cached[1]
        [result] = results.trial_results(self.sweep, {**record, "trials": [trial]})
        if result.state != "running":  # a running trial may crash without touching its files
            self.cache[(trial["key"], run_id)] = (version, result)
        return result

    def steps_of(self, trial: results.TrialResult) -> str:
        if trial.run is None:
            return "-"
        summary = store.summarize(self.sweep.runs_dir / trial.run)
        return f"{summary.step}/{summary.total_steps}" if summary.total_steps else str(trial.steps)


class SweepPlot(RunPlot):
    """The metric against one numeric swept key: a line through the means (one per combination of the
    categorical keys, as `sweep show` draws), a grey bar from the lowest to the highest seed."""

    heading = "sweep"
    integer_x = False

    def show(self, series: dict, metric: str, key: str) -> None:
        if not self.start_drawing((repr(series), metric, key), lambda: self.show(series, metric, key)):
            return
        plt = self.plt
        xs_all = [x for xs, *_ in series.values() for x in xs]
        log_x = results.geometric(xs_all)
        scale = math.log10 if log_x else float
        try:
            for label, (xs, means, lows, highs) in series.items():
                sx = [scale(x) for x in xs]
                self.line(label, sx, means)
                for x, low, high in zip(sx, lows, highs):
                    if high > low:
                        plt.plot([x, x], [low, high], color="gray", marker="braille")
                self.drawn_y += lows + highs
            round_axes(plt, self.drawn_x, self.drawn_y, self.size.width or 60, self.size.height or 15,
                       integer_x=not log_x and all(float(x).is_integer() for x in self.drawn_x))
            if log_x and xs_all:
                values = sorted(set(xs_all))
                plt.xticks([scale(v) for v in values], [f"{v:g}" for v in values])
            plt.xlabel(key + (" (log)" if log_x else ""))
            title = f"{metric} by {key}" if self.series else None
        except Exception as error:  # noqa: BLE001 - odd data must never take the screen down
            plt.clear_figure()
            self.series, self.legend = {}, []
            title = f"{self.heading}: cannot draw ({error.__class__.__name__})"
        self.shown_title = title or f"{metric} by {key}: no finished trial yet"
        self.refresh()


class SweepScreen(Screen):
    BINDINGS = [
        Binding("enter", "open", "Open trial", priority=True),
        Binding("v", "toggle_view", "Plot/trials"),  # only below 100 columns, where they take turns
        Binding("p", "next_plot", "Next plot"),  # the metric against the next numeric key
        Binding("escape", "app.pop_screen", "Back"),
    ]
    DEFAULT_CSS = """
    SweepScreen #progress { height: auto; padding: 0 1; }
    SweepScreen #results { height: auto; max-height: 40%; }
    SweepScreen #lower { height: 1fr; }
    SweepScreen #trials { width: 1fr; height: 1fr; }
    SweepScreen SweepPlot { width: 1fr; height: 1fr; margin-left: 1; }
    SweepScreen #noplot { width: 1fr; padding: 1 2; }
    """
    # What the footer's keys depend on (check_action): setting one to a new value refreshes the bindings.
    narrow = var(False, bindings=True)  # below NARROW columns the plot and the trials take turns (v)
    plot_count = var(0, bindings=True)  # p cycles the plots: listed once there are two

    def __init__(self, sweep: store.SweepDir):
        super().__init__()
        self.sweep = sweep
        self.reader = SweepReader(sweep)
        self.view = SweepView()
        self.plot_key: str | None = None
        self.plot_first = True  # below NARROW columns: the plot is shown (v: the trials)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="progress")
        yield Table(id="results", cursor_type="none", zebra_stripes=True)
        with Horizontal(id="lower"):
            yield Table(id="trials", cursor_type="row", zebra_stripes=True)
            yield SweepPlot(id="plot")
            yield Static(id="noplot", classes="hint")
        yield Footer(compact=True)

    def on_resize(self) -> None:
        self.paint_plot()
        self.narrow = self.size.width < NARROW

    def check_action(self, action: str, parameters) -> bool | None:
        if action == "toggle_view":
            return self.narrow
        if action == "next_plot":
            return self.plot_count > 1
        return True

    def on_mount(self) -> None:
        self.sub_title = f"sweep {self.sweep.id}"
        self.take(self.reader.read())  # the first frame is full; not apply(): is_mounted is False until after
        self.query_one("#trials", DataTable).focus()
        self.set_interval(POLL_SECONDS, self.poll)

    def poll(self) -> None:
        if self.is_current:
            self._read_in_thread()

    @work(thread=True, exclusive=True, group="sweep-poll", exit_on_error=False)
    def _read_in_thread(self) -> None:
        self.app.call_from_thread(self.apply, self.reader.read())

    # -- painting --------------------------------------------------------------------------
    def apply(self, view: SweepView) -> None:
        if self.is_mounted:  # else the screen went away while the worker read
            self.take(view)

    def take(self, view: SweepView) -> None:
        if view == self.view:
            return
        self.view = view
        self.plot_count = len(view.plots)
        self.paint_progress()
        if view.record is not None:
            self.paint_results()
            self.paint_trials()
            self.paint_plot()

    def paint_progress(self) -> None:
        view, line = self.view, Text()
        if view.problem:
            line.append_text(plain(view.problem, self.app.theme_variables["error"]))
        else:
            record = view.record
            counts = view.counts()
            state = str(record.get("state"))  # the header names the sweep
            line.append_text(plain(state, state_styles(self.app.theme_variables).get(state, "bold"))).append(
                f": {len(view.trials)} trials: {counts['queued']} queued, {counts['running']} running, "
                f"{counts['done']} done, {counts['failed']} failed")
            if counts.get("stopped"):
                line.append(f", {counts['stopped']} stopped")
            winner = results.best(view.points, record.get("goal"))
            if winner is not None:
                line.append("\nbest ").append_text(plain(f"{record['metric']} {mean_text(winner)} "
                                                         f"({point_text(winner.point)})", "bold"))
        self.query_one("#progress", Static).update(line)

    def paint_results(self) -> None:
        record, table = self.view.record, self.query_one("#results", DataTable)
        keys = results.swept_keys(record)
        table.clear(columns=True)
        for key in keys:
            table.add_column(plain(key), key=f"point:{key}")
        table.add_column(plain(f"{record['metric']} ({record['goal']})"), key="metric")
        for key in ("n", "steps", "time", "states"):
            table.add_column(key, key=key)
        winner = results.best(self.view.points, record["goal"])
        styles = state_styles(self.app.theme_variables)
        for point in self.view.points:
            states = Text(" ").join(plain(f"{s} {c}", styles.get(s, "")) for s, c in sorted(point.states.items()))
            table.add_row(*(plain(point.point.get(key)) for key in keys),
                          plain(mean_text(point), f"bold {self.app.theme_variables['success']}" if point is winner
                                else "", justify="right"),
                          Text(str(point.n), justify="right"), Text(str(point.mean_steps), justify="right"),
                          Text(fmt_duration(point.seconds), justify="right"), states)

    def paint_trials(self) -> None:
        table, view = self.query_one("#trials", DataTable), self.view
        styles = state_styles(self.app.theme_variables)
        if not table.columns:
            for key in ("trial", "seed", "state", "step", view.record["metric"], "run"):
                table.add_column(plain(key), key=key)
        rows = [[plain(point_text(t.point, short=True)), Text(str(t.seed), justify="right"), plain(t.state, styles.get(t.state, "")),
                 Text(view.steps.get(t.key, "-"), justify="right"),
                 Text(fmt_metric(t.value) if t.value is not None else "-", justify="right"), plain(t.run or "-")]
                for t in view.trials]
        keys = [t.key for t in view.trials]
        if [row.key.value for row in table.ordered_rows] == keys:
            for key, cells in zip(keys, rows):
                for column, value in zip(table.columns, cells):
                    if str(table.get_cell(key, column)) != str(value):
                        table.update_cell(key, column, value, update_width=True)
        else:
            row = table.cursor_row
            table.clear()
            for key, cells in zip(keys, rows):
                table.add_row(*cells, key=key)
            table.move_cursor(row=max(0, min(row, len(keys) - 1)), animate=False)

    def paint_plot(self) -> None:
        plot, hint = self.query_one(SweepPlot), self.query_one("#noplot", Static)
        keys = list(self.view.plots)
        if self.plot_key not in keys:
            self.plot_key = keys[0] if keys else None
        narrow = self.size.width < NARROW
        self.query_one("#trials").display = not narrow or not self.plot_first
        plot.display = self.plot_key is not None and (not narrow or self.plot_first)
        hint.display = self.plot_key is None and (not narrow or self.plot_first)
        if self.view.record is None:
            return
        if self.plot_key is None:
            hint.update("No numeric swept key to plot against (the table has every point).")
            return
        plot.show({plain(label).plain: series for label, series in self.view.plots[self.plot_key].items()},
                  self.view.record["metric"], self.plot_key)

    # -- actions ---------------------------------------------------------------------------
    def action_open(self) -> None:
        table = self.query_one("#trials", DataTable)
        if not table.display:  # below 100 columns, with the plot shown: enter shows the trials to choose from
            self.action_toggle_view()
            return
        if not self.view.trials or not 0 <= table.cursor_row < len(self.view.trials):
            return
        trial = self.view.trials[table.cursor_row]
        if trial.run is None:
            notify(self, f"{point_text(trial.point)}, seed={trial.seed}: not started yet", title="Trial")
        else:
            self.app.open_live(store.RunDir(self.sweep.runs_dir / trial.run))

    def action_toggle_view(self) -> None:
        self.plot_first = not self.plot_first
        self.paint_plot()
        if not self.plot_first:
            self.query_one("#trials", DataTable).focus()

    def action_next_plot(self) -> None:
        keys = list(self.view.plots)
        if len(keys) > 1:
            self.plot_key = keys[(keys.index(self.plot_key) + 1) % len(keys)]
            self.paint_plot()
