"""Axis ranges and round tick labels for terminal plots (pure Python: no plotting here).

plotext divides an axis into equal parts and prints them at full precision: steps 0..319 get ticks
at 80.5 and 239.5, and a constant learning rate (0.003, with float noise in the last digit) gets a
range of 5e-19 and labels like 0.00300000000000000050. Here ticks are 1, 2 or 5 times a power of
ten, labels have just the digits the step needs, and a flat series gets a small range around its
value. Both the live view (rnnlab/tui/widgets/plots.py) and `runs show` (termplot.py) use it.
"""

from __future__ import annotations

import math

FLAT = 1e-9  # a spread below this share of the values' size is float noise: the series is flat


def axis_range(low: float, high: float) -> tuple[float, float]:
    """The range to draw [low, high] in: as given, or a small range around a flat series' value."""
    if low > high:
        low, high = high, low
    size = max(abs(low), abs(high))
    if high - low > FLAT * size and high - low > 1e-300:
        return low, high
    middle = (low + high) / 2
    pad = abs(middle) * 0.1 if middle else 1.0  # 0.003 -> 0.0027..0.0033; 0 -> -1..1
    return middle - pad, middle + pad


def _multiples(low: float, high: float, step: float) -> list[float]:
    first, last = math.ceil(low / step - 1e-9), math.floor(high / step + 1e-9)
    return [0.0 if k == 0 else k * step for k in range(first, last + 1)]  # k == 0: never "-0.0"


def ticks(low: float, high: float, count: int = 5, integer: bool = False) -> list[float]:
    """Round values (multiples of 1, 2 or 5 x 10^k) inside [low, high]: the step whose number of ticks is
    nearest to `count` (the fewer on a tie). `integer`: training steps, never a tick at step 12.5."""
    low, high = axis_range(low, high)
    power = 10.0 ** math.floor(math.log10((high - low) / max(count, 1)))
    candidates = [m * power * scale for scale in (1, 10) for m in (1, 2, 5)]
    if integer:
        candidates = [step for step in candidates if step >= 1] or [1.0]
    best = min(candidates, key=lambda step: (abs(len(_multiples(low, high, step)) - count), -step))
    return _multiples(low, high, best)


def labels(values: list[float]) -> list[str]:
    """Each tick with the digits its step needs: 0.0028 0.0030 0.0032; 0 100 200; 1e-05 2e-05."""
    if not values:
        return []
    step = min((b - a for a, b in zip(values, values[1:])), default=abs(values[0]) or 1.0)
    biggest = max(abs(v) for v in values)
    if biggest and (biggest < 1e-3 or biggest >= 1e6):  # too many zeros either way: scientific notation
        digits = max(0, math.floor(math.log10(biggest or 1)) - math.floor(math.log10(step)))
        return [f"{v:.{min(digits, 6)}e}" for v in values]
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step else 0
    return [f"{v:.{decimals}f}" for v in values]
