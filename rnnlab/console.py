"""What the headless CLI prints: a live progress bar, summaries, run tables (rich).

Every string read from a run directory (ids, names, status fields, tokens, text) goes into a table or a
line as a rich `Text` made by `literal()`: never parsed as markup, control characters shown as `\\x1b`.
Every number goes through `fmt_num`, so a perplexity of 5e21 reads 5.18e+21, not 22 digits."""

from __future__ import annotations

import json
import math
import sys
import time

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from .literal import visible
from .store import RunSummary

STATE_STYLES = {"running": "cyan", "finished": "green", "stopped": "yellow", "diverged": "red",
                "failed": "red", "crashed": "magenta", "corrupt": "red reverse"}


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def literal(value, style: str = "", keep: str = "", **text_options) -> Text:
    """Text from disk (or from a model) as rich Text: shown as it is, its control characters visible
    (`keep` spares some, e.g. the new lines of a block of text). The TUI shows text through this too."""
    return Text(visible(value, keep), style=style, **text_options)


def sample_text(sample: dict) -> Text:
    """A study's saved sample (rnnlab/studies/samples.py): where it came from, then its text literally,
    lines and tabs kept (the CLI's `reproduce` and the TUI's study screen)."""
    where = "".join(f"{k}={v}, " for k, v in (sample.get("point") or {}).items())
    head = Text.assemble(Text("sample", "bold"), literal(f" ({where}seed {sample.get('seed')}"))
    if sample.get("error"):
        return Text.assemble(head, literal(f"): {sample['error']}"))
    return Text.assemble(head, literal(f", step {sample.get('step')}, temperature {sample.get('temperature')}):"),
                         "\n", literal(str(sample.get("text", "")), keep="\n\t"))


def fmt_num(value, digits: int = 4) -> str:
    """`digits` decimals for ordinary magnitudes; 3 significant digits in e-notation for huge or tiny ones."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return "-" if value is None else visible(value)
    if math.isnan(value):
        return "-"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value != 0 and not 10 ** -digits <= abs(value) < 1e6:
        return f"{value:.2e}"
    return f"{value:.{digits}f}"


def fmt_metric(value) -> str:
    """A metric of any scale (error rate, NRMSE, a count): 4 significant digits, e-notation when large."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return visible(value)
    if isinstance(value, int):
        return str(value) if abs(value) < 1e6 else f"{value:.2e}"
    return f"{value:.4g}" if math.isfinite(value) else fmt_num(value)


class RunProgress:
    """Consumes trainer events: a rich progress bar, `--json` lines, or nothing (`--quiet`)."""

    def __init__(self, mode: str, total_steps: int, run_id: str, start_step: int = 0):
        self.mode, self.total = mode, total_steps
        self.progress = None
        if mode == "bar":
            # The id goes on its own line: the bar row must fit 80 columns.
            console = Console(stderr=True, highlight=False)
            console.print(Text.assemble("run ", literal(run_id, "bold")))
            self.progress = Progress(
                MofNCompleteColumn(), BarColumn(bar_width=20),
                TextColumn("loss {task.fields[loss]}  val {task.fields[val]}  {task.fields[speed]} tok/s"),
                TimeRemainingColumn(), console=console, refresh_per_second=4,
            )
            self.task = self.progress.add_task("train", total=total_steps, completed=start_step,
                                               loss="-", val="-", speed="-")

    def __enter__(self):
        if self.progress:
            self.progress.start()
        return self

    def __exit__(self, *exc):
        if self.progress:
            self.progress.stop()

    def __call__(self, event: dict) -> None:
        if self.mode == "json":
            sys.stdout.write(json.dumps(event) + "\n")
            sys.stdout.flush()
            return
        if self.progress is None:
            return
        kind = event["kind"]
        if kind == "train":
            speed = event["tokens_per_s"]
            self.progress.update(self.task, completed=event["step"], loss=fmt_num(event["loss"], 3),
                                 speed=f"{speed:,.0f}")
        elif kind == "eval":
            self.progress.update(self.task, val=fmt_num(event["loss"], 3))
        elif kind == "log":
            self.progress.console.print(literal(event["message"], "dim"))


# metrics()/eval_summary() keys that are bookkeeping, not results: the table leaves them out
NOT_METRICS = {"kind", "step", "t", "best", "loss", "baseline", "bpc", "ppl", "baseline_bpc", "ngram", "ngram_bpc"}


def summary_table(run_id: str, status: dict, outcome, final: dict, throughput: float | None, task=None) -> Table:
    # The id goes in the title only when the table is wide enough to hold it on one line.
    title = Text.assemble("run ", literal(run_id))
    table = Table(title=title, show_header=False, title_justify="left", min_width=len(title) + 4)
    table.add_column(style="bold")
    table.add_column()
    state = outcome.state
    table.add_row("state", literal(state, STATE_STYLES.get(state, "")))
    table.add_row("steps", f"{outcome.step} / {status.get('total_steps', '?')}")
    unit = getattr(task, "loss_unit", "nats/token")
    if final:
        table.add_row("val loss", f"{fmt_num(final['loss'])} {unit}")
        for key, label in (("bpc", "val bits/char"), ("ppl", "val perplexity")):
            if key in final:
                table.add_row(label, fmt_num(final[key], 3))
        if final.get("baseline"):
            gain = 1 - final["loss"] / final["baseline"]
            verdict = f"the model is {gain:.0%} lower" if gain >= 0 else f"the model is {-gain:.0%} higher: worse"
            label = getattr(task, "baseline_label", "baseline")
            table.add_row("baseline", f"{fmt_num(final['baseline'])} {unit}{per_char(final, 'baseline_bpc', unit)}, "
                                      f"{label} ({verdict})")
        if final.get("ngram"):
            gain = 1 - final["loss"] / final["ngram"]
            verdict = f"the model is {gain:.0%} lower" if gain >= 0 else f"the model is {-gain:.0%} higher: worse"
            order = getattr(getattr(task, "options", None), "ngram_order", "n")
            table.add_row("n-gram", f"{fmt_num(final['ngram'])} {unit}{per_char(final, 'ngram_bpc', unit)}, "
                                    f"Kneser-Ney {order}-gram ({verdict})")
        for key, value in final.items():  # the task's own metrics: error rate, NRMSE, exact match...
            if key not in NOT_METRICS and isinstance(value, (int, float)):
                table.add_row(literal(key), fmt_metric(value))
    table.add_row("best val loss", fmt_num(status.get("best_val")))
    if throughput:
        table.add_row("tokens/s", f"{throughput:,.0f}")
    table.add_row("duration", fmt_duration(status.get("elapsed")))
    table.add_row("device", literal(status.get("device")))
    if outcome.error:
        table.add_row("error", literal(outcome.error, "red"))
    return table


def per_char(final: dict, key: str, unit: str) -> str:
    """' = X bits/char' for a loss per word or subword (a per-character loss already says it)."""
    return f" = {fmt_num(final[key], 3)} bits/char" if key in final and unit != "nats/char" else ""


RUNS_COLUMNS = ("id", "arch", "task", "state", "steps", "best val", "time")
RUNS_DROPPED_FIRST = ("time", "best val", "steps", "task", "arch")  # id and state always stay


def runs_table(rows: list[RunSummary], width: int | None = None) -> Table:
    """Every column whole (no wrapping, no `…`): ids are copied into other commands. Where a row would be
    wider than `width`, whole columns go, least needed first, down to id and state."""
    tagged = any(row.tags for row in rows)  # a tags column only where some run has tags
    columns = RUNS_COLUMNS + ("tags",) * tagged
    cells = [[literal(row.id, "bold"), literal(row.arch), literal(row.task),
              literal(row.state, STATE_STYLES.get(row.state, "")),
              Text(f"{row.step}/{row.total_steps}" if row.total_steps else "-"), Text(fmt_num(row.best_val)),
              Text(fmt_duration(row.duration))] + [literal(" ".join(row.tags))] * tagged for row in rows]
    widths = [max([len(name)] + [row[i].cell_len for row in cells]) for i, name in enumerate(columns)]
    shown = list(range(len(columns)))
    for name in ("tags",) * tagged + RUNS_DROPPED_FIRST:
        if width is None or sum(widths[i] for i in shown) + len(shown) - 1 <= width:  # one space between
            break
        shown.remove(columns.index(name))
    # Light borders and single spaces between columns: a full row of ordinary ids fits 80 columns.
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 0))
    for i in shown:
        table.add_column(columns[i], justify="right" if columns[i] in ("steps", "best val", "time")
                         else "left", no_wrap=True, min_width=widths[i])
    for row in cells:
        table.add_row(*(row[i] for i in shown))
    return table


def status_table(status: dict) -> Table:
    """status.json as key/value rows; a field of the wrong type is shown as it is, never a crash."""
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    for key in ("name", "arch", "task", "state", "step", "total_steps", "best_val", "last_val", "device", "params", "host", "pid",
                "started", "ended", "elapsed", "clipped_share", "error"):
        if key not in status or status[key] is None:
            continue
        value = status[key]
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if key in ("started", "ended") and number:
            try:
                value = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))
            except (OverflowError, OSError, ValueError):
                value = fmt_metric(value)
        elif key == "elapsed" and number and math.isfinite(value):
            value = fmt_duration(value)
        elif number:
            value = fmt_metric(value)
        table.add_row(key, literal(value, STATE_STYLES.get(str(value), "") if key == "state" else ""))
    versions = status.get("versions") or {}
    if isinstance(versions, dict) and versions:
        table.add_row("versions", literal(", ".join(f"{k} {v}" for k, v in versions.items())))
    elif versions:
        table.add_row("versions", literal(versions))
    if "sweep" in status:  # a sweep's trial: which sweep, at which point
        point = status.get("point")
        shown = ", ".join(f"{k}={v}" for k, v in point.items()) if isinstance(point, dict) else point
        table.add_row("sweep", literal(f"{status['sweep']} ({shown})"))
    return table


def colour_by_values(pieces, values: list[float]) -> Text:
    """Each token's text (a string: each character) on a background from red (negative) through black to
    blue (positive)."""
    scale = max((abs(v) for v in values), default=1.0) or 1.0
    out = Text()
    for piece, value in zip(pieces, values):
        level = int(40 + 215 * min(abs(value) / scale, 1.0))
        colour = f"rgb(0,{level // 3},{level})" if value >= 0 else f"rgb({level},{level // 5},0)"
        out.append(visible(piece, keep="\n\t").replace("\n", "↵\n"), style=f"white on {colour}")
    return out


def attention_heatmap(source: list[str], output: list[str], weights: list[list[float]]) -> Table:
    """Rows: the output tokens (then <eos>); columns: the source tokens; each cell shaded by its weight and,
    while 22 source tokens or fewer fit 80 columns that way, the weight in percent."""
    numbers = len(source) <= 22
    table = Table(box=box.SIMPLE_HEAD if numbers else None, show_edge=False, padding=(0, 0), pad_edge=False,
                  collapse_padding=True)
    table.add_column("%" if numbers else "", style="bold", no_wrap=True, min_width=6)
    for token in source:
        header = literal(token)
        table.add_column(header, justify="right", no_wrap=True, min_width=max(2, len(header)))
    for token, row in zip([*output, "<eos>"], weights):
        cells = []
        for value in row:
            level = int(255 * min(max(value, 0.0), 1.0))
            ink = "black" if level > 150 else "white"
            shown = f"{min(99, round(100 * value)):2d}" if numbers else "  "  # 100% shows as 99: the shade says it
            cells.append(Text(shown, style=f"{ink} on rgb({level},{level},{level // 2})"))
        table.add_row(literal(token), *cells)
    return table


def _rgb(pixel) -> str:
    return "rgb({},{},{})".format(*(int(255 * min(max(value, 0.0), 1.0)) for value in pixel))


def image_cells(image: list) -> Text:
    """An RGB image (3, H, W) of floats in [0, 1] in half-block cells: each "▀" is two pixels, the upper as its
    colour and the lower as its background, so H rows take H / 2 lines (an odd last row over black)."""
    channels, height, width = len(image), len(image[0]), len(image[0][0])
    pixel = [[[image[c][y][x] for c in range(channels)] for x in range(width)] for y in range(height)]
    black = [0.0] * channels
    out = Text()
    for y in range(0, height, 2):
        for x in range(width):
            lower = pixel[y + 1][x] if y + 1 < height else black
            out.append("▀", style=f"{_rgb(pixel[y][x])} on {_rgb(lower)}")
        if y + 2 < height:
            out.append("\n")
    return out


def attended_image(image: list, weights: list[float], grid: int) -> Text:
    """The image lit where one word's attention (L = grid * grid weights, row-major) falls, as in Xu et al.'s
    figures: each pixel takes its grid cell's weight a, scaled so the largest is 1; the image is dimmed to 30%
    where a = 0 and a grey light of 0.45 a is added (the background is black: a dimmed image alone would hide
    attention on empty canvas)."""
    height, width = len(image[0]), len(image[0][0])
    top = max(weights, default=0.0) or 1.0
    lit = []
    for channel in image:
        rows = []
        for y in range(height):
            row_weights = weights[(y * grid // height) * grid:(y * grid // height + 1) * grid]
            rows.append([value * (0.3 + 0.7 * a) + 0.45 * a for value, a in
                         ((channel[y][x], row_weights[x * grid // width] / top) for x in range(width))])
        lit.append(rows)
    return image_cells(lit)


def caption_maps(image: list, words: list[str], weights: list[list[float]], grid: int, columns: int = 3) -> Table:
    """Each generated word (then <eos>) above the image lit by its attention, `columns` maps to a row."""
    table = Table.grid(padding=(0, 2))
    for _ in range(columns):
        table.add_column(no_wrap=True)
    cells = [Text.assemble(literal(word, "bold"), f"  max {max(row, default=0):.2f}", "\n",
                           attended_image(image, row, grid)) for word, row in zip([*words, "<eos>"], weights)]
    for start in range(0, len(cells), columns):
        table.add_row(*cells[start:start + columns])
    return table


def shares_table(shares) -> Table | Text:
    """captioning.Shares: the exact match, and for each word naming a thing, its attention on either thing."""
    if not shares.roles:  # a fixed context, or no scene captioned exactly
        return Text(f"{shares.scenes} held-out scenes: exact match {fmt_num(shares.exact, 3)} (no attention "
                    "to measure: a fixed image context, or no caption exactly right)")
    table = Table(title=f"{shares.scenes} held-out scenes: exact match {fmt_num(shares.exact, 3)}", box=box.SIMPLE_HEAD,
                  title_justify="left")
    table.add_column("word")
    table.add_column("attention on the subject", justify="right")
    table.add_column("on the object", justify="right")
    for role, (subject, other) in shares.roles.items():
        table.add_row(role, fmt_num(subject, 2), fmt_num(other, 2))
    return table
