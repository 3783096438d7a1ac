"""Round tick labels and flat-series ranges (rnnlab/ticks.py), and the CLI's plots that use them."""

from __future__ import annotations

import math
import re

import pytest

from rnnlab.termplot import line_plot
from rnnlab.ticks import axis_range, labels, ticks

NOISY_LR = [0.003, 0.0030000000000000005, 0.0029999999999999996] * 100  # a constant lr after float math


def test_a_flat_series_gets_a_small_range_around_its_value():
    low, high = axis_range(min(NOISY_LR), max(NOISY_LR))
    assert low == pytest.approx(0.0027) and high == pytest.approx(0.0033)
    assert labels(ticks(min(NOISY_LR), max(NOISY_LR))) == ["0.0028", "0.0030", "0.0032"]
    assert axis_range(0.0, 0.0) == (-1.0, 1.0) and axis_range(2.0, 5.0) == (2.0, 5.0)


@pytest.mark.parametrize("low, high, integer, expected", [
    (1, 319, True, ["50", "100", "150", "200", "250", "300"]),
    (1, 12, True, ["2", "4", "6", "8", "10", "12"]),
    (1, 3, True, ["1", "2", "3"]),  # never a tick at step 1.5
    (-0.86, 1.0, False, ["-0.5", "0.0", "0.5", "1.0"]),
    (1e-5, 5e-5, False, ["1e-05", "2e-05", "3e-05", "4e-05", "5e-05"]),
])
def test_ticks_are_round_numbers(low, high, integer, expected):
    assert labels(ticks(low, high, 5, integer=integer)) == expected


@pytest.mark.parametrize("low, high", [(0.0, 1.0), (1.0, 319.0), (0.00299, 0.00301), (-3.3, 12.7), (1e-7, 3e-6),
                                       (2.0, 2.0), (1234.5, 98765.4), (-1e9, 1e9)])
def test_every_label_is_short_and_every_tick_is_a_round_multiple(low, high):
    values = ticks(low, high, 5)
    shown = labels(values)
    assert 2 <= len(values) <= 9 and all(len(text) <= 8 for text in shown), shown
    step = values[1] - values[0]
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert round(mantissa, 6) in (1, 2, 5)


def test_runs_show_plots_a_constant_lr_with_readable_labels():
    steps = list(range(1, len(NOISY_LR) + 1))
    text = re.sub(r"\x1b\[[0-9;]*m", "", line_plot({"lr": (steps, NOISY_LR)}, "lr", 60, 14, color=False))
    assert "0.0030" in text and not re.search(r"\d\.\d{7,}", text), text  # no 20-digit labels
    assert not re.search(r"\b\d+\.5\b", text)  # no tick at step 150.5
