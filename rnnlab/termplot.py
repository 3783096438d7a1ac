"""Terminal plots with plotext, returned as strings (no printing here)."""

from __future__ import annotations

import math

import plotext as plt

from .ticks import axis_range, labels, ticks


def downsample(xs: list, ys: list, points: int = 300) -> tuple[list, list]:
    """Average consecutive points so a long curve fits a terminal's width."""
    if len(xs) <= points:
        return list(xs), list(ys)
    size = len(xs) / points
    out_x, out_y = [], []
    for i in range(points):
        a, b = int(i * size), max(int((i + 1) * size), int(i * size) + 1)
        out_x.append(xs[b - 1])
        out_y.append(sum(ys[a:b]) / (b - a))
    return out_x, out_y


def round_axes(plot, xs: list, ys: list, width: int, height: int, integer_x: bool = True) -> None:
    """Round tick labels on both axes, and a small range around a flat series (rnnlab/ticks.py).

    `plot` is plotext itself or a textual-plotext widget's `plt`; `xs`/`ys` are every value drawn.
    """
    if not xs or not ys:
        return
    x_low, x_high = axis_range(min(xs), max(xs))
    y_low, y_high = axis_range(min(ys), max(ys))
    x_ticks = ticks(x_low, x_high, max(3, min(8, width // 12)), integer=integer_x)
    y_ticks = ticks(y_low, y_high, max(2, min(6, height // 4)))
    plot.xlim(x_low, x_high)
    plot.ylim(y_low, y_high)
    plot.xticks(x_ticks, labels(x_ticks))
    plot.yticks(y_ticks, labels(y_ticks))


def _start(width: int, height: int, title: str, color: bool) -> None:
    plt.clear_figure()
    plt.plotsize(width, height)
    plt.theme("pro" if color else "clear")
    plt.title(title)


def _finish() -> str:
    text = plt.build()
    plt.clear_figure()
    return text


SHADE = "░"  # a shaded x range (e.g. the lengths a model was trained on), drawn under the curves


def line_plot(series: dict[str, tuple[list, list]], title: str, width: int, height: int,
              xlabel: str = "step", hline: tuple[float, str] | None = None,
              log_y: bool = False, color: bool = True, shade: tuple[float, float, str] | None = None) -> str:
    """series: label -> (xs, ys); `hline` (level, label) draws a reference level; `shade` (low, high, label)
    shades that x range from 0 to the top of the data (not with log_y)."""
    _start(width, height, title, color)
    all_x = [x for xs, _ in series.values() for x in xs]
    # log_y plots log10 of the values: plotext's own log axis prints unreadable tick labels.
    scale = (lambda v: math.log10(v)) if log_y else (lambda v: v)
    drawn_x, drawn_y = [], []
    curves = {}
    for label, (xs, ys) in series.items():
        points = [(x, scale(y)) for x, y in zip(xs, ys) if y is not None and (y > 0 or not log_y)]
        if points:
            curves[label] = points
    if shade is not None and not log_y:  # first, so that the curves are drawn over it
        top = max([y for points in curves.values() for _, y in points] + [0.0]) or 1.0
        plt.plot([shade[0], shade[1]], [top, top], label=shade[2], marker=SHADE, fillx=True,
                 **({"color": "gray"} if color else {}))
        drawn_x += [shade[0], shade[1]]
        drawn_y += [0.0, top]
        all_x += [shade[0], shade[1]]
    for label, points in curves.items():
        plt.plot([x for x, _ in points], [y for _, y in points], label=label, marker="braille")
        drawn_x += [x for x, _ in points]
        drawn_y += [y for _, y in points]
    if hline is not None and all_x and (hline[0] > 0 or not log_y):
        plt.plot([min(all_x), max(all_x)], [scale(hline[0])] * 2, label=hline[1], marker="braille")
        drawn_y.append(scale(hline[0]))
    round_axes(plt, drawn_x, drawn_y, width, height, integer_x=all(float(x).is_integer() for x in drawn_x))
    plt.xlabel(xlabel)
    if log_y:
        plt.ylabel("log10")
    return _finish()


def complex_plane(points: dict[str, tuple[list, list]], title: str, width: int, height: int,
                  color: bool = True) -> str:
    """Eigenvalues (re, im) per label, with the unit circle for reference."""
    _start(width, height, title, color)
    angles = [2 * math.pi * k / 200 for k in range(201)]
    plt.plot([math.cos(a) for a in angles], [math.sin(a) for a in angles], label="|z|=1", marker="braille")
    for label, (re, im) in points.items():
        plt.scatter(re, im, label=label, marker="dot")
    every_re = [1.0, -1.0] + [x for re, _ in points.values() for x in re]
    every_im = [1.0, -1.0] + [y for _, im in points.values() for y in im]
    round_axes(plt, every_re, every_im, width, height, integer_x=False)
    plt.xlabel("Re")
    return _finish()


def sweep_plot(series: dict[str, tuple[list, list, list, list]], title: str, width: int, height: int,
               xlabel: str, log_x: bool = False, color: bool = True) -> str:
    """series: label -> (xs, means, lows, highs): a line through the means, a bar from low to high at
    each x (the spread over seeds). `log_x` plots log10(x), its ticks labelled with the values."""
    _start(width, height, title, color)
    scale = (lambda v: math.log10(v)) if log_x else (lambda v: v)
    drawn_x, drawn_y = [], []
    for label, (xs, means, lows, highs) in series.items():
        sx = [scale(x) for x in xs]
        plt.plot(sx, means, label=label, marker="braille")
        for x, low, high in zip(sx, lows, highs):
            if high > low:
                plt.plot([x, x], [low, high], marker="braille", **({"color": "gray"} if color else {}))
        drawn_x += sx
        drawn_y += lows + highs + means
    round_axes(plt, drawn_x, drawn_y, width, height, integer_x=not log_x and all(float(x).is_integer()
                                                                                 for x in drawn_x))
    if log_x and drawn_x:
        values = sorted({x for xs, *_ in series.values() for x in xs})
        plt.xticks([scale(v) for v in values], [f"{v:g}" for v in values])
        low, high = min(drawn_x), max(drawn_x)
        pad = (high - low) * 0.05 or 0.5
        plt.xlim(low - pad, high + pad)
    plt.xlabel(xlabel + (" (log)" if log_x else ""))
    return _finish()
