"""The live run's plots: textual-plotext widgets fed from a `RunCurves`.

The same views as `rnnlab runs show` (rnnlab/report.py), drawn into widgets:
`draw(curves)` replaces a plot's data and asks for a repaint; plotext builds
the picture at render time, at the widget's size, in the app's theme
("auto"), so a hidden page costs nothing until it is shown.

Values that span decades (gradient norms, ||dL/dh_t||) are plotted as log10:
plotext's own log axis prints tick labels nobody can read (see termplot.py).
"""

from __future__ import annotations

import math

from rich.text import Text
from textual_plotext import PlotextPlot

from ...curves import RunCurves, reference_levels, smooth
from ...literal import visible
from ...termplot import SHADE, downsample, round_axes

CIRCLE = [2 * math.pi * k / 120 for k in range(121)]  # the unit circle, for the eigenvalue plot
# Series colours, named so that plotext's ANSI output and the legend line's rich styles are the same colour.
COLOURS = ("cyan", "magenta", "yellow", "green", "red", "blue", "white")


SMOOTHING = (0.0, 0.6, 0.9, 0.99)  # the EMA weights `w` steps through (TensorBoard's slider: 0 to 0.999)


def next_smoothing(weight: float) -> float:
    """The weight after `weight` in SMOOTHING (from the last one: off again)."""
    later = [w for w in SMOOTHING if w > weight]
    return later[0] if later else SMOOTHING[0]


def _points(xs: list, ys: list, log10: bool = False) -> tuple[list, list]:
    """Drop what plotext cannot draw: None, NaN/inf (a diverged step) and, for log10, values <= 0."""
    keep = [(x, y) for x, y in zip(xs, ys)
            if isinstance(y, (int, float)) and math.isfinite(y) and (y > 0 or not log10)]
    return [x for x, _ in keep], [math.log10(y) if log10 else y for _, y in keep]


class RunPlot(PlotextPlot):
    """One view of a run. `series` records what was drawn (label -> points), for tests and debugging."""

    DEFAULT_CSS = """
    RunPlot { width: 1fr; height: 1fr; min-height: 6; }
    """

    heading = "plot"
    probes_only = False  # True: the data changes only with probe events
    integer_x = True  # x is a step or a time index: ticks at whole numbers only

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.series: dict[str, int] = {}
        self.legend: list[tuple[str, str]] = []  # (label, colour) of each series, shown below the plot
        self.drawn_x: list[float] = []  # every value drawn, for round axes
        self.drawn_y: list[float] = []
        self.shown_title = self.heading
        self.drawn_version = None
        self.drawn_size = None  # the size the ticks were chosen for
        self.last_drawing = None  # draws the last data again: the ticks are chosen for the plot's size
        self.smoothing = 0.0  # the EMA weight for every-step series (curves.smooth); 0: raw
        self.log_y = False  # a plot that offers a log axis (the loss) draws log10 values

    def on_resize(self) -> None:
        if self.last_drawing is not None:
            self.last_drawing()

    def start_drawing(self, data_version: tuple, again) -> bool:
        """Whether to draw now, into an empty figure: not when the same data was drawn last at this size and
        with these settings (rebuilding a plot costs CPU the trainer beside us would use; the size counts:
        the ticks are chosen for it, and a plot first drawn before its layout kept the fallback's). `again`
        draws the same data again, at a new size."""
        self.last_drawing = again
        version = (*data_version, self.size, self.smoothing, self.log_y)
        if version == self.drawn_version:
            return False
        self.drawn_version, self.drawn_size = version, self.size
        self.plt.clear_figure()  # the widget sets size and theme again at every render
        self.series, self.legend, self.drawn_x, self.drawn_y = {}, [], [], []
        return True

    def draw(self, curves: RunCurves) -> None:
        # the run's end counts too: an empty plot's title changes when it ends
        if not self.start_drawing((curves.probes_seen if self.probes_only else curves.events_seen,
                                   curves.end is None), lambda: self.draw(curves)):
            return
        plt = self.plt
        try:
            title = self.plot(curves)
            # Round ticks, and a readable range for a flat series (a constant learning rate): rnnlab/ticks.py
            round_axes(plt, self.drawn_x, self.drawn_y, self.size.width or 60, self.size.height or 15,
                       integer_x=self.integer_x)
        except Exception as error:  # noqa: BLE001 - odd data must never take the screen down
            plt.clear_figure()
            self.series, self.legend = {}, []
            title = f"{self.heading}: cannot draw ({error.__class__.__name__})"
        # drawn by render(), at the widget's width; a run that has ended will not record more (a feedforward
        # NTM has no recurrent state for the dynamics probes)
        self.shown_title = title or f"{self.heading}: {'none recorded' if curves.end else 'no data yet'}"
        self.refresh()

    def plot(self, curves: RunCurves) -> str | None:
        """Draw into self.plt; return the title, or None when there is nothing to draw yet."""
        raise NotImplementedError

    def render(self):
        """The plot, and under it its legend (wrapped to as few lines as fit): plotext's own legend box is
        drawn over the data and covered a third of a small plot."""
        width = self.size.width
        # Titles name things from the events (units, layers): visible(), since plotext's ANSI output is parsed
        # back (Text.from_ansi); and shortened, since plotext drops a title wider than the plot.
        title, room = visible(self.shown_title), width - 8  # the canvas: the width less the y labels and frame
        self.plt.title(title if len(title) <= room else title[:max(room - 1, 1)] + "…")
        if not self.legend:
            return super().render()
        lines = [Text(no_wrap=True, overflow="ellipsis", end="")]
        for label, colour in self.legend:
            entry = Text.assemble(("━ ", colour), visible(label))
            if lines[-1].cell_len and lines[-1].cell_len + 1 + entry.cell_len > width:
                lines.append(Text(no_wrap=True, overflow="ellipsis", end=""))
            lines[-1].append(" " if lines[-1].cell_len else "").append_text(entry)
        for line in lines:
            line.truncate(width, overflow="ellipsis")
        height = max(self.size.height - len(lines), 2)
        plot = self.plt
        plot.plotsize(width, height)
        plot._set_size(width, height)  # as PlotextPlot.render does (textual-plotext issue 5)
        plot.theme(self._get_plotext_theme_name(self.app.theme))
        return Text("\n").join([Text.from_ansi(plot.build().rstrip("\n")), *lines])

    def colour(self, label: str) -> str:
        """The next series colour, and the label's place in the legend."""
        colour = COLOURS[len(self.legend) % len(COLOURS)]
        self.legend.append((label, colour))
        return colour

    # -- helpers ------------------------------------------------------------------------
    def line(self, label: str, xs: list, ys: list, log10: bool = False, thin: bool = False) -> list:
        """Plot one curve; `thin` averages long series down to about two points per column (braille). A
        thin (every-step) series is smoothed when the screen asks (`smoothing`, the EMA weight): the raw
        points stay beneath it, faint, so a smoothed curve never hides a spike."""
        points = max(60, 2 * self.size.width) if self.size.width else 300
        if thin and self.smoothing:
            raw_x, raw_y = _points(*downsample(xs, ys, points), log10)
            if raw_x:
                self.plt.plot(raw_x, raw_y, color="gray", marker="braille")
                self.drawn_x += raw_x
                self.drawn_y += raw_y
            ys, label = smooth(ys, self.smoothing), f"{label} (smoothed {self.smoothing:g})"
        if thin:
            xs, ys = downsample(xs, ys, points)
        xs, ys = _points(xs, ys, log10)
        if xs:
            self.plt.plot(xs, ys, color=self.colour(label), marker="braille")
            self.series[label] = len(xs)
            self.drawn_x += xs
            self.drawn_y += ys
        return xs

    def level(self, label: str, value: float | None, xs: list, log10: bool = False) -> None:
        """A horizontal reference line across the plotted x range (plotext's hline has no label)."""
        if value is None or not xs or (log10 and value <= 0):
            return
        y = math.log10(value) if log10 else value
        self.plt.plot([min(xs), max(xs)], [y, y], color=self.colour(label), marker="braille")
        self.series[label] = 2
        self.drawn_y.append(y)


    def shade(self, label: str, low: float, high: float, values: list) -> None:
        """Shade x from low to high, from 0 to the top of `values`: call it before the curves (plotext draws
        in call order: a shade drawn last would cover them)."""
        top = max(_points(values, values)[1] + [0.0]) or 1.0
        self.plt.plot([low, high], [top, top], color="gray", marker=SHADE, fillx=True)
        self.legend.append((label, "grey50"))
        self.series[label] = 2
        self.drawn_x += [low, high]
        self.drawn_y += [0.0, top]


class LossPlot(RunPlot):
    """Train loss every step (downsampled), val loss at evals, the task's no-memory baseline."""

    heading = "loss"

    def plot(self, curves):
        log = self.log_y  # a loss that spans decades (a regression task's MSE) reads better on a log axis
        xs = self.line("train", curves.train_loss.xs, curves.train_loss.ys, log10=log, thin=True)
        val = self.line("val", curves.val_loss.xs, curves.val_loss.ys, log10=log)
        start = curves.start or {}
        judged = reference_levels(start, curves.last_eval)
        self.level(start.get("baseline_label", "baseline"), judged["baseline"], xs + val, log10=log)
        self.level("n-gram", judged["ngram"], xs + val, log10=log)  # language models: the Kneser-Ney baseline
        unit = start.get("loss_unit", "nats/token")
        return (f"log10 loss ({unit})" if log else f"loss ({unit})") if xs or val else None


class GradNormPlot(RunPlot):
    """Global pre-clip norm every step, each layer's norm at probe steps, and the clip threshold."""

    heading = "grad norm log10"  # short: at 80 columns a plot is 26 wide (the legend says "pre-clip")

    def plot(self, curves):
        xs = self.line("global pre-clip", curves.grad_norm.xs, curves.grad_norm.ys, log10=True, thin=True)
        for layer, series in sorted(curves.layer_grad_norms.items()):
            xs = xs + self.line(layer, series.xs, series.ys, log10=True)
        self.level("clip", curves.clip, xs, log10=True)
        return self.heading if xs else None


class LrPlot(RunPlot):
    heading = "learning rate"

    def plot(self, curves):
        xs = self.line("lr", curves.lr.xs, curves.lr.ys, thin=True)
        return self.heading if xs else None  # its latest value is in the header (and on the y axis)


class GradFlowPlot(RunPlot):
    """||dL/dh_t|| of the last step's loss by t, per layer: how far back the gradient reaches."""
    probes_only = True

    heading = "log10 ||dL/dh_t|| by t"

    def plot(self, curves):
        flow = curves.gradflow
        if not flow:
            if curves.spectrum:  # probes ran, but this architecture has no one-step form to trace
                return f"{self.heading}: not traced for this architecture (fused or custom cells only)"
            return None
        for layer, values in sorted(flow["layers"].items()):
            last = values["last"]  # (T,) one norm per time step (a tree: per depth below the root)
            self.line(layer, list(range(len(last))), last, log10=True)
        heading = "log10 ||dL/dh|| by depth in the tree" if flow.get("axis") == "depth" else self.heading
        return f"{heading} (step {flow['step']})" if self.series else None


class EigenPlot(RunPlot):
    """Eigenvalues of every recurrent matrix in the complex plane; outside the unit circle = expanding."""
    probes_only = True
    integer_x = False  # the real axis

    heading = "eigenvalues of W_hh"

    def plot(self, curves):
        spectrum = curves.spectrum
        if not spectrum:
            return None
        self.plt.plot([math.cos(a) for a in CIRCLE], [math.sin(a) for a in CIRCLE], color="gray", marker="braille")
        self.drawn_x, self.drawn_y = [-1.0, 1.0], [-1.0, 1.0]
        radius = 0.0
        for name, matrix in spectrum["matrices"].items():
            re, im = matrix["eig_re"], matrix["eig_im"]  # (H,) each: one point per eigenvalue
            self.plt.scatter(re, im, color=self.colour(name), marker="dot")
            self.series[name] = len(re)
            self.drawn_x += re
            self.drawn_y += im
            radius = max(radius, matrix.get("radius") or 0.0)
        return f"{self.heading} (step {spectrum['step']}, max |λ| {radius:.3g})"


class RadiusPlot(RunPlot):
    probes_only = True
    heading = "spectral radius"

    def plot(self, curves):
        xs = []
        for name, series in curves.radius.items():
            xs = xs + self.line(name, series.xs, series.ys)
        self.level("1", 1.0, xs)
        return self.heading if xs else None


class LengthPlot(RunPlot):
    """The latest eval's metric against length (task.eval_lengths), the trained range shaded, and over it
    the plain validation pass's score (which is over that range): Graves's length generalisation."""

    heading = "by length"

    def plot(self, curves):
        scores = curves.lengths
        if scores is None:
            return None
        if scores.trained is not None:
            low, high = scores.trained
            self.shade(f"trained {low}-{high}" if high > low else f"trained at {low}", low, high,
                       scores.values + [scores.in_range])
            if scores.in_range is not None:
                self.line("over it", [low, high], [scores.in_range] * 2)
        self.line(f"step {scores.step}", scores.lengths, scores.values)
        return f"{scores.metric} by length, step {scores.step}"


class LengthHistoryPlot(RunPlot):
    """The metric at each eval length (and over the trained range) at every eval: when it generalises."""

    heading = "by length over steps"

    def plot(self, curves):
        if curves.lengths is None:
            return None
        self.line("trained", curves.in_range.xs, curves.in_range.ys)
        for n, series in sorted(curves.by_length.items()):
            self.line(str(n), series.xs, series.ys)
        return f"{curves.lengths.metric} per length by step"


TRAINING = (LossPlot, GradNormPlot, LrPlot)  # the "training" page, in reading order
DYNAMICS = (GradFlowPlot, EigenPlot, RadiusPlot)  # the "dynamics" page
LENGTHS = (LengthPlot, LengthHistoryPlot)  # the "lengths" page: only for runs scored by length
