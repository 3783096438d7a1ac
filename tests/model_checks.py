"""Checks several model test files share."""

from __future__ import annotations

import torch


def assert_compiled_loop_equals_eager(model, x: torch.Tensor, atol: float = 1e-12) -> None:
    """Outputs and parameter gradients of the scripted time loop equal the eager one's (`model.compiled`)."""
    results = []
    for compiled in (True, False):
        model.compiled = compiled
        y, _ = model(x)
        results.append((y, torch.autograd.grad(y.square().sum(), list(model.parameters()))))
    torch.testing.assert_close(results[0][0], results[1][0], atol=atol, rtol=0)
    for a, b in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(a, b, atol=atol, rtol=0)
