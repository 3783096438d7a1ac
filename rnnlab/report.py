"""`rnnlab runs show`: a run's curves and diagnostics as terminal plots.

Reads only the run's events (through rnnlab.store); returns strings, so the
CLI decides where they go.
"""

from __future__ import annotations

from .curves import length_scores, reference_levels
from .literal import visible
from .termplot import complex_plane, downsample, line_plot


def latest(events: list[dict], kind: str) -> dict | None:
    return next((e for e in reversed(events) if e["kind"] == kind), None)


def loss_plot(events: list[dict], width: int, height: int, color: bool) -> str | None:
    train = [e for e in events if e["kind"] == "train"]
    if not train:
        return None
    evals = [e for e in events if e["kind"] == "eval"]
    series = {"train": downsample([e["step"] for e in train], [e["loss"] for e in train])}
    if evals:
        series["val"] = ([e["step"] for e in evals], [e["loss"] for e in evals])
    start = latest(events, "start") or {}
    judged = reference_levels(start, evals[-1] if evals else None)
    baseline = judged["baseline"]
    unit, label = start.get("loss_unit", "nats/token"), start.get("baseline_label", "baseline")
    if judged["ngram"]:  # language models: the Kneser-Ney n-gram, drawn as a flat series
        steps = series["train"][0]
        series["n-gram"] = ([steps[0], steps[-1]], [judged["ngram"]] * 2)
    return line_plot(series, f"loss ({unit})", width, height,
                     hline=(baseline, label) if baseline else None, color=color)


def grad_norm_plot(events: list[dict], width: int, height: int, color: bool) -> str | None:
    """Global pre-clip norm every step, per-layer norms at probe steps, and the clip threshold."""
    train = [e for e in events if e["kind"] == "train"]
    if not train:
        return None
    series = {"global": downsample([e["step"] for e in train], [e["grad_norm"] for e in train])}
    probes = [e for e in events if e["kind"] == "gradnorm"]
    layers = sorted(k for k in (probes[-1]["groups"] if probes else {}) if k.startswith("layer") and "." not in k)
    for layer in layers:
        series[layer] = ([e["step"] for e in probes], [e["groups"].get(layer, 0.0) for e in probes])
    clip = probes[-1].get("clip") if probes else None
    return line_plot(series, "gradient norm before clipping (log10)", width, height, log_y=True,
                     hline=(clip, "clip") if clip else None, color=color)


def gradflow_plot(events: list[dict], width: int, height: int, color: bool) -> str | None:
    flow = latest(events, "gradflow")
    if flow is None:
        return None
    series = {}
    if flow.get("axis") == "depth":  # a tree model (probes/trees.py): by depth below the root
        (values,) = flow["layers"].values()
        series["root loss"] = (list(range(len(values["last"]))), values["last"])
        title = f"log10 ||dL/dh|| of the root's loss, by depth in the tree (probe at step {flow['step']})"
        return line_plot(series, title, width, height, xlabel="depth", log_y=True, color=color)
    for layer, values in flow["layers"].items():
        series[f"{layer} last-step loss"] = (list(range(len(values["last"]))), values["last"])
    title = f"log10 ||dL/dh_t|| of the last step's loss, by t (probe at step {flow['step']})"
    return line_plot(series, title, width, height, xlabel="t", log_y=True, color=color)


def eigen_plot(events: list[dict], width: int, height: int, color: bool) -> str | None:
    spectrum = latest(events, "spectrum")
    if spectrum is None:
        return None
    points = {name: (m["eig_re"], m["eig_im"]) for name, m in spectrum["matrices"].items()}
    return complex_plane(points, f"eigenvalues of the recurrent matrices at step {spectrum['step']}",
                         width, height, color=color)


def radius_plot(events: list[dict], width: int, height: int, color: bool) -> str | None:
    spectra = [e for e in events if e["kind"] == "spectrum"]
    if len(spectra) < 2:
        return None
    names = list(spectra[-1]["matrices"])
    series = {name: ([e["step"] for e in spectra], [e["matrices"][name]["radius"] for e in spectra])
              for name in names}
    return line_plot(series, "spectral radius over training", width, height, hline=(1.0, "1"), color=color)


def jacobian_plot(events: list[dict], width: int, height: int, color: bool) -> str | None:
    spectrum = next((e for e in reversed(events) if e["kind"] == "spectrum" and "jacobian" in e), None)
    if spectrum is None:
        return None
    series = {}
    for layer, jac in spectrum["jacobian"].items():
        points = [(t, v) for t, v in zip(jac["t"], jac["log_product_norm"]) if v is not None]
        if points:
            series[layer] = ([t for t, _ in points], [v for _, v in points])
    title = f"log ||J_t ... J_t0|| along the probe sequence at step {spectrum['step']}"
    return line_plot(series, title, width, height, xlabel="t", color=color) if series else None


def range_label(trained: tuple[int, int]) -> str:
    low, high = trained
    return f"trained {low}-{high}" if high > low else f"trained at {low}"


def length_plot(events: list[dict], width: int, height: int, color: bool) -> str | None:
    """The latest eval's metric against length (tasks with task.eval_lengths), the trained range shaded, and
    over it the plain validation pass's score (which is over that range)."""
    scores = next((s for s in map(length_scores, reversed([e for e in events if e["kind"] == "eval"]))
                   if s is not None), None)
    if scores is None:
        return None
    series = {f"step {scores.step}": (scores.lengths, scores.values)}
    shade = None
    if scores.trained is not None:
        low, high = scores.trained
        shade = (low, high, range_label(scores.trained))
        if scores.in_range is not None:
            series["over the trained range"] = ([low, high], [scores.in_range] * 2)
    # visible: the metric's name comes from the events, and the CLI parses a plot's ANSI codes back
    return line_plot(series, f"{visible(scores.metric)} by length at step {scores.step}", width, height,
                     xlabel="length", color=color, shade=shade)


def length_history_plot(events: list[dict], width: int, height: int, color: bool) -> str | None:
    """The metric at each eval length over training, and over the trained range: when (if) it generalises."""
    evals = [(e, s) for e in events if e["kind"] == "eval" for s in [length_scores(e)] if s is not None]
    if len(evals) < 2:
        return None
    series: dict[str, tuple[list, list]] = {}
    for _, scores in evals:
        if scores.trained is not None and scores.in_range is not None:
            xs, ys = series.setdefault(range_label(scores.trained), ([], []))
            xs.append(scores.step)
            ys.append(scores.in_range)
        for n, value in zip(scores.lengths, scores.values):
            xs, ys = series.setdefault(f"length {n}", ([], []))
            xs.append(scores.step)
            ys.append(value)
    title = f"{visible(evals[-1][1].metric)} at each length over training"
    return line_plot(series, title, width, height, color=color)


PLOTS = (loss_plot, length_plot, length_history_plot, grad_norm_plot, gradflow_plot, eigen_plot, radius_plot,
         jacobian_plot)


def run_plots(events: list[dict], width: int, color: bool) -> list[str]:
    """Every plot that the run's events can fill, in reading order."""
    out = []
    for plot in PLOTS:
        height = 22 if plot is eigen_plot else 16
        text = plot(events, width, height, color)
        if text:
            out.append(text)
    return out
