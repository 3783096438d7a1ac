"""Gradient flow through a tree: ||dL/dh|| of the nodes at each depth below the root.

A recursive net's depth plays the part a sequence's length plays for a recurrent one: the gradient
of the root's loss reaches a node through one composition per level between them. So the probe
is the gradflow event (flow.py's, for sequences) with depth for t: `axis` = "depth", index 0 the
root, and one series, `tree`. A node's dL/dh is the gradient at the output of its own level
(tree_table.run_levels records it), the total one through every path up to the root; the value at
depth d is the mean over the probe batch's nodes at depth d of each node's norm, where each tree
contributes its own root's loss (so a node's gradient is its tree's, not shrunk by the batch size).
Balanced trees keep every leaf within about log n levels of the root; a left-branching chain puts
the first digits n levels down, as a sequence puts its first token T steps back.
"""

from __future__ import annotations

import torch

from ..models.tree_table import DEPTH


def reads_trees(model) -> bool:
    return bool(getattr(model, "reads_trees", False))


def tree_gradient_flow(model, task, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None) -> dict:
    """The gradflow payload of a tree model on the probe batch (no parameter's .grad is touched)."""
    record: list = []
    output, _ = model(x, record=record)  # (B, N, O)
    loss = task.step_losses(output, y, mask).sum()  # each tree's root loss, summed: per-tree gradients
    grads = torch.autograd.grad(loss, [states[0] for _, states in record], allow_unused=True)  # (M, H) each
    depths = x[..., DEPTH].reshape(-1)  # (B*N,)
    total = torch.zeros(int(depths.max()) + 1, dtype=torch.float64, device=x.device)  # summed norms per depth
    count = torch.zeros_like(total)
    for (level, _), grad in zip(record, grads):
        if grad is None:
            continue
        at = depths[level.rows]  # (M,)
        total.index_add_(0, at, grad.double().norm(dim=1))
        count.index_add_(0, at, torch.ones_like(at, dtype=torch.float64))
    norms = [float(f"{v:.5g}") for v in (total / count.clamp_min(1)).tolist()]
    return {"steps": len(norms), "axis": "depth", "layers": {"tree": {"total": norms, "last": norms}}}
