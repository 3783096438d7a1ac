"""A run's history as plot-ready series, built incrementally from its events.

The TUI feeds it the new events of each poll; `rnnlab runs show` feeds it all
at once. Pure Python: no file access (that is rnnlab.store) and no drawing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class Series:
    xs: list = field(default_factory=list)
    ys: list = field(default_factory=list)

    def add(self, x, y) -> None:
        self.xs.append(x)
        self.ys.append(y)

    def truncate(self, step: int) -> None:
        """Drop points after `step` (a resumed run rewrites them)."""
        keep = sum(1 for x in self.xs if x <= step)
        del self.xs[keep:], self.ys[keep:]


def smooth(ys: list, weight: float) -> list:
    """Exponential moving average with bias correction, as TensorBoard and W&B define it: the average starts
    at 0 and is divided by 1 - weight^n, so the first values are not pulled toward 0 (the plain EMA's flaw).
    A value that is not a finite number (None, NaN: a diverged step) passes through and does not enter the
    average. weight 0: the values themselves; toward 1: smoother."""
    if not 0 <= weight < 1:
        raise ValueError(f"smoothing weight {weight} not in [0, 1)")
    average, count, out = 0.0, 0, []
    for y in ys:
        if not isinstance(y, (int, float)) or not math.isfinite(y):
            out.append(y)
            continue
        average, count = average * weight + (1 - weight) * y, count + 1
        out.append(average / (1 - weight ** count))
    return out


def reference_levels(start: dict | None, last_eval: dict | None) -> dict:
    """The loss plot's reference lines, {'baseline', 'ngram'}: the latest evaluation's (scored on the tokens
    it judged), the start event's before the first evaluation."""
    levels = {key: (start or {}).get(key) for key in ("baseline", "ngram")}
    levels.update({key: value for key, value in (last_eval or {}).items() if key in levels})
    return levels


def _number(value) -> float | None:
    """A finite int or float from an event (untrusted: bools, strings, NaN are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _length(key) -> int | None:
    """A by_length key ("30") as a length; anything else (a float, a name, a negative) is skipped."""
    if isinstance(key, str) and key.isdigit() and len(key) <= 9:  # isdigit: no sign, no point, no spaces
        return int(key)
    return None


@dataclass
class LengthScores:
    """One eval's main metric by length (its `by_length`), for the error-against-length plot."""

    step: int
    metric: str  # e.g. error_rate (the eval's length_metric)
    lengths: list[int]  # ascending
    values: list[float]  # the metric at each length
    trained: tuple[int, int] | None  # the training range, when the event says it
    in_range: float | None  # the plain validation pass's metric: over the trained range


def length_scores(event: dict) -> LengthScores | None:
    """The by_length of an eval event, with what cannot be drawn left out; None when it has none."""
    by_length = event.get("by_length")
    if not isinstance(by_length, dict):
        return None
    metric = event.get("length_metric")
    metric = metric if isinstance(metric, str) else "error_rate"  # the metric of the first runs that had it
    points = []
    for key, row in by_length.items():
        n, value = _length(key), _number(row.get(metric)) if isinstance(row, dict) else None
        if n is not None and value is not None:
            points.append((n, value))
    if not points:
        return None
    points.sort()
    trained = event.get("trained_lengths")
    bounds = [_number(v) for v in trained] if isinstance(trained, list) and len(trained) == 2 else [None]
    ok = None not in bounds and bounds[0] <= bounds[1]
    step = event.get("step")
    return LengthScores(step if isinstance(step, int) and not isinstance(step, bool) else 0, metric,
                        [n for n, _ in points], [v for _, v in points],
                        (int(bounds[0]), int(bounds[1])) if ok else None, _number(event.get(metric)))


@dataclass
class RunCurves:
    train_loss: Series = field(default_factory=Series)
    grad_norm: Series = field(default_factory=Series)
    lr: Series = field(default_factory=Series)
    tokens_per_s: Series = field(default_factory=Series)
    val_loss: Series = field(default_factory=Series)
    val_bpc: Series = field(default_factory=Series)  # language models: bits per character, whatever the token
    layer_grad_norms: dict[str, Series] = field(default_factory=dict)  # "layer0" -> norms at probe steps
    radius: dict[str, Series] = field(default_factory=dict)  # matrix name -> spectral radius over steps
    start: dict | None = None  # the start event: device, params, total_steps, baseline
    last_eval: dict | None = None
    gradflow: dict | None = None  # the latest gradflow event
    spectrum: dict | None = None  # the latest spectrum event
    jacobian: dict | None = None  # the latest spectrum event that has a Jacobian
    gates: dict | None = None  # the latest gates event
    lengths: LengthScores | None = None  # the latest eval's metric by length (tasks with eval_lengths)
    by_length: dict[int, Series] = field(default_factory=dict)  # length -> its metric at each eval step
    in_range: Series = field(default_factory=Series)  # that metric over the trained range, at each eval step
    clip: float | None = None
    end: dict | None = None
    logs: list[str] = field(default_factory=list)
    step: int = 0
    elapsed: float = 0.0
    skipped: int = 0  # events of kinds this version does not know
    events_seen: int = 0  # bumps with every event: a cheap "has anything changed?" for displays
    probes_seen: int = 0  # bumps with probe events only (the dynamics plots change only then)

    def feed(self, events: list[dict]) -> None:
        for event in events:
            handler = getattr(self, f"_on_{event['kind']}", None)
            if handler is None:
                self.skipped += 1
                continue
            handler(event)
            self.events_seen += 1
            if event["kind"] in ("gradnorm", "gradflow", "gates", "spectrum", "resume"):
                self.probes_seen += 1
            self.step = max(self.step, int(event.get("step", 0) or 0))
            if isinstance(event.get("t"), (int, float)):
                self.elapsed = event["t"]

    def _on_start(self, e):
        self.start = e

    def _on_resume(self, e):
        step = e["step"]
        for series in (self.train_loss, self.grad_norm, self.lr, self.tokens_per_s, self.val_loss, self.val_bpc,
                       *self.layer_grad_norms.values(), *self.radius.values(), *self.by_length.values(),
                       self.in_range):
            series.truncate(step)
        if self.lengths is not None and self.lengths.step > step:
            self.lengths = None  # that evaluation is rewritten: the next one says it again
        self.end, self.step = None, step
        self.logs.append(f"[step {step}] resumed")

    def _on_train(self, e):
        step = e["step"]
        self.train_loss.add(step, e["loss"])
        self.grad_norm.add(step, e["grad_norm"])
        self.lr.add(step, e["lr"])
        self.tokens_per_s.add(step, e["tokens_per_s"])

    def _on_eval(self, e):
        self.val_loss.add(e["step"], e["loss"])
        if "bpc" in e:
            self.val_bpc.add(e["step"], e["bpc"])
        self.last_eval = e
        scores = length_scores(e)
        if scores is not None:
            self.lengths = scores
            for n, value in zip(scores.lengths, scores.values):
                self.by_length.setdefault(n, Series()).add(e["step"], value)
            if scores.in_range is not None:
                self.in_range.add(e["step"], scores.in_range)

    def _on_gradnorm(self, e):
        self.clip = e.get("clip")
        for name, value in e["groups"].items():
            if name.startswith("layer") and "." not in name:
                self.layer_grad_norms.setdefault(name, Series()).add(e["step"], value)

    def _on_gradflow(self, e):
        self.gradflow = e

    def _on_gates(self, e):
        self.gates = e

    def _on_spectrum(self, e):
        self.spectrum = e
        if "jacobian" in e:
            self.jacobian = e
        for name, matrix in e["matrices"].items():
            self.radius.setdefault(name, Series()).add(e["step"], matrix["radius"])

    def _on_checkpoint(self, e):
        pass

    def _on_activations(self, e):
        pass

    def _on_log(self, e):
        self.logs.append(f"[step {e['step']}] {e['message']}")

    def _on_end(self, e):
        self.end = e
        message = f"[step {e['step']}] {e['state']}"
        self.logs.append(message + (f": {e['error']}" if e.get("error") else ""))

    @property
    def tokens_per_s_recent(self) -> float | None:
        """Mean throughput over the last 20 steps (one step's number is noisy)."""
        recent = [v for v in self.tokens_per_s.ys[-20:] if v > 0]
        return len(recent) / sum(1 / v for v in recent) if recent else None
