"""A run's history as plot-ready series, built incrementally from its events.

The TUI feeds it the new events of each poll; `rnnlab runs show` feeds it all
at once. Pure Python: no file access (that is rnnlab.store) and no drawing.
"""

from __future__ import annotations

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


def reference_levels(start: dict | None, last_eval: dict | None) -> dict:
    """The loss plot's reference lines, {'baseline', 'ngram'}: the latest evaluation's (scored on the tokens
    it judged), the start event's before the first evaluation."""
    levels = {key: (start or {}).get(key) for key in ("baseline", "ngram")}
    levels.update({key: value for key, value in (last_eval or {}).items() if key in levels})
    return levels


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
                       *self.layer_grad_norms.values(), *self.radius.values()):
            series.truncate(step)
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
