"""Terminal plots with plotext, returned as strings (no printing here)."""

from __future__ import annotations

import math

import plotext as plt


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


def _start(width: int, height: int, title: str, color: bool) -> None:
    plt.clear_figure()
    plt.plotsize(width, height)
    plt.theme("pro" if color else "clear")
    plt.title(title)


def _finish() -> str:
    text = plt.build()
    plt.clear_figure()
    return text


def line_plot(series: dict[str, tuple[list, list]], title: str, width: int, height: int,
              xlabel: str = "step", hline: tuple[float, str] | None = None,
              log_y: bool = False, color: bool = True) -> str:
    """series: label -> (xs, ys); `hline` (level, label) draws a reference level."""
    _start(width, height, title, color)
    all_x = [x for xs, _ in series.values() for x in xs]
    # log_y plots log10 of the values: plotext's own log axis prints unreadable tick labels.
    scale = (lambda v: math.log10(v)) if log_y else (lambda v: v)
    for label, (xs, ys) in series.items():
        points = [(x, scale(y)) for x, y in zip(xs, ys) if y is not None and (y > 0 or not log_y)]
        if points:
            plt.plot([x for x, _ in points], [y for _, y in points], label=label, marker="braille")
    if hline is not None and all_x and (hline[0] > 0 or not log_y):
        plt.plot([min(all_x), max(all_x)], [scale(hline[0])] * 2, label=hline[1], marker="braille")
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
    plt.xlabel("Re")
    return _finish()
