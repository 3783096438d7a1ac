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

from textual_plotext import PlotextPlot

from ...curves import RunCurves, reference_levels
from ...literal import visible
from ...termplot import downsample

CIRCLE = [2 * math.pi * k / 120 for k in range(121)]  # the unit circle, for the eigenvalue plot


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

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.series: dict[str, int] = {}
        self.shown_title = self.heading
        self.drawn_version = None

    def draw(self, curves: RunCurves) -> None:
        # Rebuilding a plot costs CPU the trainer beside us would use: skip it when its data is unchanged.
        version = curves.probes_seen if self.probes_only else curves.events_seen
        if version == self.drawn_version:
            return
        self.drawn_version = version
        plt = self.plt
        plt.clear_figure()  # the widget sets size and theme again at every render
        self.series = {}
        try:
            title = self.plot(curves)
        except Exception as error:  # noqa: BLE001 - odd data must never take the screen down
            plt.clear_figure()
            self.series = {}
            title = f"{self.heading}: cannot draw ({error.__class__.__name__})"
        self.shown_title = title or f"{self.heading}: no data yet"
        # Titles and legends name things from the events (units, layers, labels); plotext writes them into
        # an ANSI string that is parsed back (Text.from_ansi): an ESC in them must arrive as `\x1b`.
        plt.title(visible(self.shown_title))
        self.refresh()

    def plot(self, curves: RunCurves) -> str | None:
        """Draw into self.plt; return the title, or None when there is nothing to draw yet."""
        raise NotImplementedError

    # -- helpers ------------------------------------------------------------------------
    def line(self, label: str, xs: list, ys: list, log10: bool = False, thin: bool = False) -> list:
        """Plot one curve; `thin` averages long series down to about two points per column (braille)."""
        if thin:
            xs, ys = downsample(xs, ys, max(60, 2 * self.size.width) if self.size.width else 300)
        xs, ys = _points(xs, ys, log10)
        if xs:
            self.plt.plot(xs, ys, label=visible(label), marker="braille")
            self.series[label] = len(xs)
        return xs

    def level(self, label: str, value: float | None, xs: list, log10: bool = False) -> None:
        """A horizontal reference line across the plotted x range (plotext's hline has no label)."""
        if value is None or not xs or (log10 and value <= 0):
            return
        y = math.log10(value) if log10 else value
        self.plt.plot([min(xs), max(xs)], [y, y], label=visible(label), marker="braille")
        self.series[label] = 2


class LossPlot(RunPlot):
    """Train loss every step (downsampled), val loss at evals, the task's no-memory baseline."""

    heading = "loss"

    def plot(self, curves):
        xs = self.line("train", curves.train_loss.xs, curves.train_loss.ys, thin=True)
        val = self.line("val", curves.val_loss.xs, curves.val_loss.ys)
        start = curves.start or {}
        judged = reference_levels(start, curves.last_eval)
        self.level(start.get("baseline_label", "baseline"), judged["baseline"], xs + val)
        self.level("n-gram", judged["ngram"], xs + val)  # language models: the Kneser-Ney baseline
        return f"loss ({start.get('loss_unit', 'nats/token')})" if xs or val else None


class GradNormPlot(RunPlot):
    """Global pre-clip norm every step, each layer's norm at probe steps, and the clip threshold."""

    heading = "grad norm before clipping (log10)"

    def plot(self, curves):
        xs = self.line("global", curves.grad_norm.xs, curves.grad_norm.ys, log10=True, thin=True)
        for layer, series in sorted(curves.layer_grad_norms.items()):
            xs = xs + self.line(layer, series.xs, series.ys, log10=True)
        self.level("clip", curves.clip, xs, log10=True)
        return self.heading if xs else None


class LrPlot(RunPlot):
    heading = "learning rate"

    def plot(self, curves):
        xs = self.line("lr", curves.lr.xs, curves.lr.ys, thin=True)
        return f"{self.heading} {curves.lr.ys[-1]:.2g}" if xs else None


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
            last = values["last"]  # (T,) one norm per time step
            self.line(layer, list(range(len(last))), last, log10=True)
        return f"{self.heading} (step {flow['step']})" if self.series else None


class EigenPlot(RunPlot):
    """Eigenvalues of every recurrent matrix in the complex plane; outside the unit circle = expanding."""
    probes_only = True

    heading = "eigenvalues of W_hh"

    def plot(self, curves):
        spectrum = curves.spectrum
        if not spectrum:
            return None
        self.plt.plot([math.cos(a) for a in CIRCLE], [math.sin(a) for a in CIRCLE], marker="braille")
        radius = 0.0
        for name, matrix in spectrum["matrices"].items():
            re, im = matrix["eig_re"], matrix["eig_im"]  # (H,) each: one point per eigenvalue
            self.plt.scatter(re, im, label=visible(name), marker="dot")
            self.series[name] = len(re)
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


TRAINING = (LossPlot, GradNormPlot, LrPlot)  # the "training" page, in reading order
DYNAMICS = (GradFlowPlot, EigenPlot, RadiusPlot)  # the "dynamics" page
