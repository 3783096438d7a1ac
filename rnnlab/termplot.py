"""Terminal line plots with plotext, returned as ANSI strings (no printing here)."""

from __future__ import annotations

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


def line_plot(series: dict[str, tuple[list, list]], title: str, width: int, height: int,
              xlabel: str = "step", ylabel: str = "", hline: tuple[float, str] | None = None,
              log_y: bool = False, color: bool = True) -> str:
    """series: label -> (xs, ys). Returns the plot as text (ANSI colours when `color`)."""
    plt.clear_figure()
    plt.plotsize(width, height)
    plt.theme("clear" if not color else "pro")
    if not color:
        plt.theme("clear")
    for label, (xs, ys) in series.items():
        if xs:
            plt.plot(xs, ys, label=label, marker="braille")
    if hline is not None:  # a reference level, drawn as a labelled series across the x range
        xs = [x for points, _ in series.values() for x in points]
        if xs:
            plt.plot([min(xs), max(xs)], [hline[0]] * 2, label=hline[1], marker="braille")
    if log_y:
        plt.yscale("log")
    plt.title(title)
    plt.xlabel(xlabel)
    if ylabel:
        plt.ylabel(ylabel)
    text = plt.build()
    plt.clear_figure()
    return text
