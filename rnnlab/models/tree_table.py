"""The node table: a batch of trees as one plain tensor, and the level-by-level schedule that runs it.

A tree task's x is a node table (the Trainer moves it to a device like any other x):

    x: (B, N, CHILD + K) long, one row per node of each tree, padded to the batch's largest tree
      x[..., TOKEN]    the node's token id (a leaf's symbol, an n-ary node's operator, or the task's
                       "no token" id for the inner nodes of a binarised tree)
      x[..., HEIGHT]   0 for a leaf, 1 + the highest child's height otherwise; -1 on a padding row
      x[..., DEPTH]    distance from the root (0 at the root); -1 on a padding row
      x[..., CHILD:]   the rows (in the same tree) of the node's children, in order; -1 where none
    Rows are in post-order: children before parents, each tree's root the last of its rows.

A tree model composes every node of one height, across the whole batch, in one call: a node's
children all have smaller heights, so they are done by then. `run_levels` gathers the children's
states through index tensors into a table with one extra all-zero row (the child that is not there),
so a leaf and a missing child read zeros and no Python runs per node. What a node reads of its own
token does not depend on its children: the model projects every node's token once, in one matmul over
the whole table, before the levels. Padding rows (height -1) are never composed and keep zero states.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

TOKEN, HEIGHT, DEPTH, CHILD = 0, 1, 2, 3  # the columns; children from CHILD on


def tokens(x: torch.Tensor) -> torch.Tensor:
    """(B*N,) every row's token id, flat in the order run_levels indexes rows."""
    return x[..., TOKEN].reshape(-1)


@dataclass
class Level:
    """The nodes of one height: their flat rows (b * N + i) and their children's flat rows."""

    height: int
    rows: torch.Tensor  # (M,) long
    children: torch.Tensor  # (M, K) long; B * N (the zero row) where a child is missing


def schedule(x: torch.Tensor) -> list[Level]:
    """The levels of a node table, leaves first: the one place its index tensors are built."""
    batch, nodes, _ = x.shape
    flat = x.reshape(batch * nodes, -1)  # (B*N, C)
    offset = torch.arange(batch, device=x.device).repeat_interleave(nodes)[:, None] * nodes  # (B*N, 1)
    kids = flat[:, CHILD:]  # (B*N, K)
    kids = torch.where(kids >= 0, kids + offset, torch.full_like(kids, batch * nodes))  # the zero row for none
    heights = flat[:, HEIGHT]
    order = torch.argsort(heights, stable=True)  # padding (-1) first, then each height in row order
    sizes = torch.bincount(heights + 1).tolist()  # one sync for every level's size
    return [Level(height, rows, kids[rows]) for height, rows in enumerate(order.split(sizes)[1:])]


# compose(inputs (M, D): the nodes' own token terms, children: one (M, K, H) per state tensor, leaf: bool)
#   -> one (M, H) per state tensor
Compose = Callable[[torch.Tensor, tuple[torch.Tensor, ...], bool], tuple[torch.Tensor, ...]]


def run_levels(x: torch.Tensor, inputs: torch.Tensor, compose: Compose, widths: tuple[int, ...],
               record: list | None = None) -> tuple[torch.Tensor, ...]:
    """Every node's states, (B, N, width) per state tensor (h, or h and c), composed a level at a time.

    `record`, when given, receives (Level, states) for each level: the tensors the probes differentiate
    by (a later level reads them, so dL/dh of a node is the gradient at its own level's output)."""
    batch, nodes, _ = x.shape
    # inputs: (B*N, D), every row's token term (tokens(x) projected by the model)
    tables = tuple(inputs.new_zeros(batch * nodes + 1, w) for w in widths)  # + the zero row
    levels = schedule(x)
    # each level's inputs as one split of one gather: their gradients meet in a single cat backward
    # (indexing `inputs` per level would add a (B*N, D) gradient per level)
    per_level = inputs[torch.cat([level.rows for level in levels])].split([len(level.rows) for level in levels])
    for level, own in zip(levels, per_level):
        children = tuple(table[level.children] for table in tables)  # (M, K, H) each
        states = compose(own, children, level.height == 0)  # (M, H) each
        if record is not None:
            record.append((level, states))
        # out of place: the previous table stays in the graph for the children already read from it
        tables = tuple(table.index_copy(0, level.rows, s) for table, s in zip(tables, states))
    return tuple(table[:-1].reshape(batch, nodes, -1) for table in tables)
