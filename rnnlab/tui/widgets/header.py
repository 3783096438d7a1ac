"""The live run's header: what the run is, where it stands, and what is wrong.

    20261118-100000-tiny-lstm-aaaa  lstm · charlm  ● running  cpu      training  dynamics
    ━━━━━━━──── 1,200/3,000 40%  8.1k tok/s  ETA 2m10s  val 1.921 (best 1.904)  lr 0.002
    ⚠ the trainer process is gone (killed or crashed)       <- only when something is wrong

Rendered from plain values at the widget's current width, so the progress bar
shrinks on a small terminal instead of wrapping the line.
"""

from __future__ import annotations

from textual.content import Content
from textual.widget import Widget

from ...curves import RunCurves
from ...literal import visible

STATE_STYLES = {
    "running": "bold $accent", "finished": "bold $success", "stopped": "bold $warning",
    "crashed": "bold $error", "failed": "bold $error", "diverged": "bold $error",
}


def num(value) -> float | None:
    """A number from status.json, which may be hand-edited: anything else reads as missing."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def rate(tokens_per_s: float | None) -> str:
    if tokens_per_s is None:
        return "– tok/s"
    return f"{tokens_per_s / 1000:.1f}k tok/s" if tokens_per_s >= 10_000 else f"{tokens_per_s:,.0f} tok/s"


class RunHeader(Widget):
    DEFAULT_CSS = """
    RunHeader { height: auto; padding: 0 1; background: $boost; }
    """

    def __init__(self, run_id: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.run_id = visible(run_id)  # a renamed directory may hold escape sequences: shown, not obeyed
        self.status: dict | None = None
        self.curves = RunCurves()
        self.problem: str | None = None
        self.notice: str | None = None  # e.g. "resuming: starting the trainer ... 3s"
        self.page = "training"
        self.pages: tuple[str, ...] = ("training", "dynamics")  # the live screen's, shown at the right

    def show(self, status: dict | None, curves: RunCurves, problem: str | None, page: str,
             notice: str | None = None) -> None:
        self.status, self.curves, self.problem, self.page, self.notice = status, curves, problem, page, notice
        self.refresh(layout=True)  # the problem and notice lines come and go

    @property
    def state(self) -> str:
        state = (self.status or {}).get("state")
        return state if isinstance(state, str) and state else "unknown"

    def render(self) -> Content:
        try:
            return self._render()
        except (TypeError, ValueError) as error:  # a hand-edited status or odd event values: say so, go on
            return Content.assemble((self.run_id, "bold"), ("  header unavailable: " + visible(error), "$error"))

    def _render(self) -> Content:
        status, curves = self.status or {}, self.curves
        start = curves.start or {}
        width = max(self.content_size.width, 40)
        pages = [(f" {name} ", "reverse" if name == self.page else "dim") for name in self.pages]
        # Content.assemble takes strings as plain text (no markup); visible() shows their control characters.
        arch, task = (visible(status.get(key) or start.get(key) or "?") for key in ("arch", "task"))
        first = Content.assemble(
            (self.run_id, "bold"), f"  {arch} · {task}  ",
            ("● " + visible(self.state), STATE_STYLES.get(self.state, "$text-muted")), "  ",
            (visible(status.get("device") or start.get("device") or ""), "$text-muted"),
        )
        if first.cell_length + 2 + sum(len(text) for text, _ in pages) > width:
            pages = [(f" {self.page} ", "reverse")]  # a small terminal: just the page shown
        gap = max(2, width - first.cell_length - sum(len(text) for text, _ in pages))
        first = Content.assemble(first, " " * gap, *pages)
        lines = [first.truncate(width, ellipsis=True), self._progress_line(status, width)]
        if self.notice:
            lines.append(Content.assemble(("⟳ " + self.notice, "bold $accent")).truncate(width, ellipsis=True))
        if self.problem:
            lines.append(Content.assemble(("⚠ " + visible(self.problem), "bold $error")))  # may wrap: all of it matters
        return Content("\n").join(lines)

    def _progress_line(self, status: dict, width: int) -> Content:
        curves = self.curves
        step = int(max(curves.step, num(status.get("step")) or 0))
        total = int(num(status.get("total_steps")) or num((curves.start or {}).get("total_steps")) or 0)
        share = min(step / total, 1.0) if total else 0.0
        parts = [f" {step:,}/{total:,} {share:.0%}", rate(curves.tokens_per_s_recent)]
        if self.state == "running" and 0 < step < total and curves.elapsed > 0:
            # the average pace so far, evaluations included: steadier than the last step's
            parts.append("ETA " + duration((total - step) * curves.elapsed / step))
        elif curves.elapsed:
            parts.append(f"took {duration(curves.elapsed)}" if self.state != "running" else "ETA –")
        vals = curves.val_loss.ys
        last, best = (vals[-1], min(vals)) if vals else (num(status.get("last_val")), num(status.get("best_val")))
        if last is not None:
            parts.append(f"val {last:.3f} (best {best:.3f})" if best is not None else f"val {last:.3f}")
        if curves.lr.ys:
            parts.append(f"lr {curves.lr.ys[-1]:.2g}")
        rest = "  ".join(parts)
        bar = max(8, min(40, width - len(rest) - 1))
        done = round(bar * share)
        return Content.assemble(("━" * done, "$accent"), ("─" * (bar - done), "$text-muted"),
                                rest).truncate(width, ellipsis=True)
