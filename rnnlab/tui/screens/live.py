"""The live view of one run: header, two pages of plots, a log; stop, continue, sample.

Everything shown comes from the run directory: a thread worker tails it
(`watch_run`, new bytes only) and posts `RunUpdate`s; the screen feeds their
events to a `RunCurves` and marks itself dirty; a 2 Hz timer (REPAINT_SECONDS) repaints the
header and log when dirty, and the plots, which cost far more, at most once a second
(PLOT_SECONDS), all widgets in one `batch_update()`. So a finished run, a run this app
launched and a run started headless in another terminal look the same, and a
trainer writing 1000 steps/s costs at most 2 repaints a second.

Nothing here raises on bad data: a deleted directory, a corrupt line or a
malformed event becomes the header's problem line or a log line.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.reactive import var
from textual.widgets import ContentSwitcher, Footer, RichLog

from ... import worker
from ...curves import RunCurves
from ...literal import visible
from ...store import RunDir
from ..literal import notify
from ..messages import RunUpdate
from .following import FollowsRun
from ..widgets.header import RunHeader, num
from ..widgets.plots import DYNAMICS, LENGTHS, TRAINING, LossPlot, RunPlot, next_smoothing

PAGES = ("training", "dynamics", "lengths")  # lengths: only for runs whose evals score by length
REPAINT_SECONDS = 0.5  # the header and log: at most 2 repaints a second, however fast events arrive
PLOT_SECONDS = 1.0  # plots cost far more to rebuild (and every CPU cycle here is one the trainer lacks)
RESUMABLE = ("stopped", "crashed", "failed")  # failed: e.g. a full disk; `rnnlab run --resume` takes it too
CRASHED = "the trainer process is gone (killed or crashed)"


def last_line(path: Path) -> str:
    """The last non-empty line of a (possibly long) log, reading only its tail."""
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, handle.seek(0, 2) - 4096))
            lines = handle.read().decode(errors="replace").strip().splitlines()
    except OSError as error:
        return f"unreadable ({error.__class__.__name__})"
    return lines[-1] if lines else "(empty)"


class LiveScreen(FollowsRun):
    BINDINGS = [
        Binding("s", "stop", "Stop", tooltip="SIGINT: the trainer finishes its step, checkpoints, stops"),
        Binding("c", "resume", "Continue", tooltip="Resume a stopped, crashed or failed run from its last checkpoint"),
        Binding("tab,p", "page", "Plots page", priority=True,  # priority: tab would move focus
                tooltip="Switch between the training and the dynamics plots (and, scored by length, the lengths)"),
        Binding("x", "sample", "Sample", tooltip="Generate text from this run's checkpoint (seq2seq runs: "
                "decode inputs and see their attention)"),
        Binding("a", "attention", "Attention", tooltip="A seq2seq run's attention heatmaps; a captioning run's "
                "scenes, captions and attention maps"),
        Binding("h", "heads", "Heads", tooltip="An NTM run's read and write heads over memory slots and time"),
        Binding("escape", "back", "Back", tooltip="Back to the runs; a trainer keeps running"),
        # Not in the footer (80 columns are full): ? lists them; the plots' legend and title say the state.
        Binding("w", "smooth", "Smooth the every-step curves (off, 0.6, 0.9, 0.99)", show=False),
        Binding("l", "log_loss", "Loss on a log axis (on/off)", show=False),
    ]
    # Every plot of the page is always shown: three side by side on a short terminal (80x24 too: a plot
    # hidden there was a plot the user never saw), the first across the top when there is height for two rows.
    VERTICAL_BREAKPOINTS = [(0, "-short"), (32, "-tall")]
    DEFAULT_CSS = """
    LiveScreen ContentSwitcher { height: 1fr; }
    LiveScreen .page { layout: grid; grid-size: 3 1; grid-gutter: 0 1; height: 1fr; }
    LiveScreen.-tall .page { grid-size: 2 2; }
    LiveScreen.-tall .page > .first { column-span: 2; }
    LiveScreen #lengths { grid-size: 2 1; }
    LiveScreen.-tall #lengths { grid-size: 1 2; }
    LiveScreen.-tall #lengths > .first { column-span: 1; }
    LiveScreen #log { height: 5; border-top: hkey $foreground 20%; background: $surface; }
    LiveScreen.-tall #log { height: 6; }
    """
    # What the footer's keys depend on (check_action): setting one to a new value refreshes the bindings.
    shown_state: var[str | None] = var(None, bindings=True)  # stop/continue follow the run's state
    arch: var[str | None] = var(None, bindings=True)  # attention (seq2seq) and heads (ntm) are for those archs

    def __init__(self, run: RunDir, process: subprocess.Popen | None = None):
        super().__init__()
        self.run = run
        self.process = process  # the trainer, when this app started it (to reap it and see its exit code)
        self.curves = RunCurves()
        self.status: dict | None = None
        self.problem: str | None = None  # from the watcher: deleted dir, corrupt lines, unreadable status
        self.malformed = 0  # events that parsed as JSON but lack what their kind needs
        self.page = PAGES[0]
        self.dirty = True
        self.plots_drawn_at = 0.0  # monotonic time of the last plot rebuild
        self.logged = 0  # how many of curves.logs are in the log pane
        self.started_noted = False
        self.resume_log: Path | None = None  # the output of a trainer that `c` started
        self.resuming_since: float | None = None  # monotonic time of `c`, until the trainer runs (or exits)
        self.resumes_seen = 0  # `resume` events read: a new one means the trainer is back
        self.resumes_before = 0  # resumes_seen when `c` was pressed
        self.repaints = 0

    def compose(self) -> ComposeResult:
        yield RunHeader(self.run.id, id="header")
        with ContentSwitcher(initial=PAGES[0]):
            for page, plots in zip(PAGES, (TRAINING, DYNAMICS, LENGTHS)):
                with Container(id=page, classes="page"):
                    for i, plot in enumerate(plots):
                        yield plot(classes="first" if i == 0 else "")
        yield RichLog(id="log", max_lines=1000, wrap=True, markup=False, highlight=False)
        yield Footer()

    def on_mount(self) -> None:  # FollowsRun's on_mount starts the watching
        self.set_interval(REPAINT_SECONDS, self.repaint)

    # -- data in ------------------------------------------------------------------------
    def on_run_update(self, update: RunUpdate) -> None:
        self.resumes_seen += sum(1 for event in update.events if event.get("kind") == "resume")
        for event in update.events:
            try:
                self.curves.feed([event])
            except (KeyError, TypeError, ValueError, AttributeError):
                self.malformed += 1  # valid JSON, wrong shape: skip it like a corrupt line
        if update.status is not None or self.status is None:
            self.status = update.status  # keep the last good status when the directory vanishes
            self.arch = (self.status or {}).get("arch")
        self.problem = update.problem
        if update.status is None and not self.run.path.exists() and "deleted" not in (self.problem or ""):
            # the watcher reports one problem at a time, and corrupt lines outrank a deletion there
            self.problem = "the run directory was deleted" + (f" · {self.problem}" if self.problem else "")
        self.dirty = True

    @property
    def state(self) -> str:
        state = (self.status or {}).get("state")
        return state if isinstance(state, str) and state else "unknown"

    def problem_line(self) -> str | None:
        problems = [self.problem] if self.problem else []
        if self.malformed:
            problems.append(f"{self.malformed} malformed event(s) skipped")
        if self.state in ("crashed", "failed", "diverged"):
            error = self.status.get("error") or (CRASHED if self.state == "crashed" else self.state)
            problems.append(str(error).splitlines()[0])
        return " · ".join(problems) or None

    # -- drawing --------------------------------------------------------------------------
    def resuming_notice(self) -> str | None:
        """While a trainer started by `c` is starting (torch, the task, the checkpoint: seconds): say so."""
        if self.resuming_since is None:
            return None
        if self.resumes_seen > self.resumes_before or self.process is None or self.process.poll() is not None:
            self.resuming_since = None  # back to training, or it exited (the log says why)
            return None
        self.dirty = True  # the seconds count on
        return (f"resuming: starting the trainer (imports torch, builds the task, loads the checkpoint) "
                f"{time.monotonic() - self.resuming_since:.0f}s")

    def repaint(self) -> None:
        self.reap()
        notice = self.resuming_notice()
        if not self.dirty:
            return
        now = time.monotonic()
        plots_due = now - self.plots_drawn_at >= PLOT_SECONDS or self.state != "running"
        self.dirty = not plots_due  # the plots still owe this update: draw them at the next due tick
        self.repaints += 1
        with self.app.batch_update():
            self.query_one(RunHeader).pages = self.pages()
            self.query_one(RunHeader).show(self.status, self.curves, self.problem_line(), self.page, notice)
            if plots_due:
                self.plots_drawn_at = now
                for plot in self.query(RunPlot):
                    plot.draw(self.curves)
            if self.curves.start is not None and not self.started_noted:
                start, self.started_noted = self.curves.start, True
                self.write_log(f"[step {start.get('step', 0)}] started on {start.get('device')}: "
                               f"{num(start.get('params')) or 0:,.0f} parameters, "
                               f"{num(start.get('total_steps')) or 0:,.0f} steps")
            for line in self.curves.logs[self.logged:]:
                self.write_log(line)
            self.logged = len(self.curves.logs)
        self.shown_state = self.state  # a new state refreshes the footer's stop/continue

    def reap(self) -> None:
        """Collect our trainer's exit: until then its zombie pid looks alive and 'crashed' is never seen."""
        if self.process is None or self.process.returncode is not None or self.process.poll() is None:
            return
        code = self.process.returncode
        self.note(f"trainer process {self.process.pid} exited with code {code}")
        if not worker.ended_cleanly(code) and self.resume_log is not None:
            # e.g. a config error before the run even continues: the run directory never hears of it
            self.note(f"resume.log: {last_line(self.resume_log)}")
            self.dirty = True

    def note(self, message: str) -> None:
        self.write_log(f"· {message}")

    def write_log(self, line: str) -> None:
        """Log lines echo the run's messages and errors: control characters shown, never obeyed (the log has
        markup=False)."""
        self.query_one(RichLog).write(visible(line))

    # -- keys ---------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "stop":
            return True if self.state == "running" else None  # None: shown, greyed out
        if action == "resume":
            return True if self.state in RESUMABLE else None
        if action == "attention":  # listed for seq2seq and caption runs only: at 80 columns each key costs another
            return self.is_seq2seq() or self.arch == "image_caption"
        if action == "heads":  # likewise, NTM runs only
            return self.arch == "ntm"
        return True

    # A binding that check_action disables (greyed or hidden in the footer) does not run its action: the key
    # then reaches the screen as a plain key press. Say why nothing happens instead of ignoring it.
    def key_c(self) -> None:
        self.action_resume()

    def key_a(self) -> None:
        self.action_attention()

    def key_h(self) -> None:
        self.action_heads()

    def action_stop(self) -> None:
        pid = (self.status or {}).get("pid")
        if self.state != "running" or not isinstance(pid, int):
            self.notify("The run is not running.", severity="warning")
            return
        if not worker.on_this_host(self.status.get("host")):  # its pid means nothing on this machine
            notify(self, f"The run trains on {self.status.get('host')}: stop it there.", severity="warning")
            return
        worker.stop(pid)
        self.note(f"stop requested (SIGINT to pid {pid}); the trainer finishes its step and checkpoints")

    def action_resume(self) -> None:
        if self.state not in RESUMABLE:
            why = {"finished": "it has done all its steps (start a new run to train longer)",
                   "running": "it is still running"}.get(self.state, f"it is {self.state}")
            notify(self, f"Cannot continue this run: {why}. Only a stopped, crashed or failed run continues.",
                   title="Continue", severity="warning")
            return
        if self.process is not None and self.process.poll() is None:
            self.notify("The trainer started here is still running.", severity="warning")
            return
        try:
            self.resume_log = self.run.resume_log_path
            self.process = worker.start(runs_dir=self.run.path.parent, resume=self.run.id, log=self.resume_log)
        except OSError as error:
            notify(self, f"Could not start the trainer: {error}", severity="error")
            return
        getattr(self.app, "children_started", []).append(self.process)
        # The watcher keeps tailing the same events.jsonl: the `resume` event truncates the curves.
        self.note(f"continuing from the last checkpoint (pid {self.process.pid}, output in resume.log)")
        self.resuming_since, self.resumes_before, self.dirty = time.monotonic(), self.resumes_seen, True
        self.repaint()  # the "resuming" line at once: the trainer takes seconds to start

    def pages(self) -> tuple[str, ...]:
        """The pages tab cycles through: the lengths page once an eval has scored by length."""
        return PAGES if self.curves.lengths is not None or self.page == "lengths" else PAGES[:2]

    def action_page(self) -> None:
        pages = self.pages()
        self.page = pages[(pages.index(self.page) + 1) % len(pages)]
        self.query_one(ContentSwitcher).current = self.page
        self.dirty = True

    def action_smooth(self) -> None:
        weight = next_smoothing(self.query(RunPlot).first().smoothing)
        for plot in self.query(RunPlot):
            plot.smoothing = weight
            plot.draw(self.curves)  # its version holds the weight: drawn again now, on every page (the
            # smoothed curves' legend says the weight: no toast over the plots)

    def action_log_loss(self) -> None:
        plot = self.query_one(LossPlot)
        plot.log_y = not plot.log_y
        plot.draw(self.curves)

    def action_sample(self) -> None:
        if not (self.run.checkpoint("best").exists() or self.run.checkpoint("last").exists()):
            self.notify("No checkpoint yet to sample from.", severity="warning")
            return
        if self.is_seq2seq():
            self.app.open_attention(self.run)  # a seq2seq run's "sample" is decoding an input
        elif self.arch == "image_caption":
            self.app.open_caption(self.run)  # a captioning run's, captioning its held-out scenes
        else:
            self.app.open_sample(self.run)

    def is_seq2seq(self) -> bool:
        return self.arch == "seq2seq"

    def action_attention(self) -> None:
        if self.arch == "image_caption":
            self.app.open_caption(self.run)
            return
        if not self.is_seq2seq():
            notify(self, f"Attention heatmaps are drawn for seq2seq runs only (this run's arch is "
                         f"{(self.status or {}).get('arch', 'unknown')}).", title="Attention", severity="warning")
            return
        self.app.open_attention(self.run)

    def action_heads(self) -> None:
        arch = (self.status or {}).get("arch", "unknown")
        if arch != "ntm":
            notify(self, f"Head plots are drawn for NTM runs only (this run's arch is {arch}).", title="Heads",
                   severity="warning")
            return
        self.app.open_heads(self.run)

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()  # the trainer is in its own process group: it keeps running
