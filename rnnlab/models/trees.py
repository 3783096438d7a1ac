"""Recursive (tree) networks: a state per node, composed from its children's, leaves first.

treernn          Socher et al. 2011/2013: a leaf's h is its token's vector; an inner node's
                 h = tanh(W [h_left; h_right] + b), one W for every node (binary trees only)
treelstm         the child-sum Tree-LSTM (Tai et al. 2015, eqs. 2-8), any number of children,
                 their order ignored; every node reads its own token x_j:
                   h~ = sum_k h_k
                   i = s(W_i x + U_i h~ + b_i)   o = s(W_o x + U_o h~ + b_o)   u = tanh(W_u x + U_u h~ + b_u)
                   f_k = s(W_f x + U_f h_k + b_f)            (one forget gate per child)
                   c = i * u + sum_k f_k * c_k               h = o * tanh(c)
treelstm_binary  the binary N-ary Tree-LSTM (Tai et al. eqs. 9-14, N = 2): each gate has a matrix per
                 child position, and each child's forget gate reads both children:
                   g = W_g x + U_g^left h_left + U_g^right h_right + b_g      for g in i, f_left, f_right, o, u
                   c = i * u + f_left * c_left + f_right * c_right           h = o * tanh(c)

A leaf is a node without children: it reads zeros for them (c = i * u for a Tree-LSTM leaf).
All run level by level (tree_table.py): one matmul per height over the whole batch. The output
is one vector per node, (B, N, O); the task says which nodes it judges (its mask: the roots).
The composition matrices (W's two halves, the U blocks) are `recurrent_matrices`, for the spectrum
probe: a tree's depth plays the part a sequence's length does, each level one more product.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ConfigError
from ..options import opt
from .base import SequenceModel, TaskSpec
from .registry import ARCHS
from .tree_table import run_levels, tokens


@dataclass
class TreeOptions:
    """Keys of the tree models under [model]."""

    arch: str = opt("treelstm", "architecture (`rnnlab list archs`)")
    hidden: int = opt(64, "units of each node's state", min=1)
    embed: int = opt(32, "token embedding width (Tree-LSTMs; a TreeRNN's leaf vectors are `hidden` wide)", min=1)
    dropout: float = opt(0.0, "dropout on the node states before the output", min=0, max=0.95)


class TreeModel(SequenceModel):
    """forward(x, state=None) -> ((B, N, O) one output per node, None): x is a node table."""

    Options = TreeOptions
    reads_trees = True  # algorithms.check_algorithm: a tree task's node table goes only to these
    carries_state = False  # each tree starts from its leaves: nothing to carry between chunks
    binary_only = False  # True: composes exactly a left and a right child
    widths = 1  # state tensors per node: h (1) or h and c (2)

    def __init__(self, options: TreeOptions, spec: TaskSpec):
        super().__init__()
        name = type(self).registry_name
        if spec.tree is None:
            raise ConfigError("model.arch", name, "composes trees; this task gives token sequences",
                              "a tree task (listops with task.input = \"binary\" or \"tree\")")
        if self.binary_only and spec.tree != "binary":
            raise ConfigError("model.arch", name, "composes exactly two children; this task's trees are "
                              "n-ary (task.input = \"tree\")", "treelstm, or task.input = \"binary\"")
        self.options, self.hidden = options, options.hidden
        self.drop = nn.Dropout(options.dropout)
        self.head = nn.Linear(options.hidden, spec.output_size)

    def init_state(self, batch: int, device=None):
        return None  # every tree starts at its leaves

    def node_inputs(self, ids: torch.Tensor) -> torch.Tensor:  # pragma: no cover - each model
        """(M, D) what nodes with token ids (M,) read of their own token (an embedding, W x + b)."""
        raise NotImplementedError

    def compose(self, inputs, children, leaf):  # pragma: no cover - each model
        raise NotImplementedError

    def node_states(self, x: torch.Tensor, record: list | None = None) -> tuple[torch.Tensor, ...]:
        inputs = self.node_inputs(tokens(x).clamp_min(0))  # (B*N, D): one matmul for every node's token
        return run_levels(x, inputs, self.compose, (self.hidden,) * self.widths, record)

    def forward(self, x: torch.Tensor, state=None, record: list | None = None):
        h = self.node_states(x, record)[0]  # (B, N, H)
        return self.head(self.drop(h)), None  # (B, N, O)


@ARCHS.register("treernn", "Recursive net (Socher et al.): h = tanh(W (h_left, h_right) + b), binary trees")
class TreeRNN(TreeModel):
    binary_only = True

    def __init__(self, options: TreeOptions, spec: TaskSpec):
        super().__init__(options, spec)
        self.embed = nn.Embedding(spec.vocab_size, options.hidden)  # the leaves' vectors live in h's space
        self.compose_layer = nn.Linear(2 * options.hidden, options.hidden)  # W (H, 2H), b (H,)

    def node_inputs(self, ids):
        return self.embed(ids)  # (M, H): a leaf's vector (inner nodes read none)

    def compose(self, inputs, children, leaf):
        if leaf:
            return (inputs,)  # (M, H)
        (h,) = children  # (M, 2, H)
        return (torch.tanh(self.compose_layer(h.flatten(1))),)  # (M, H)

    def recurrent_matrices(self):
        w, hidden = self.compose_layer.weight, self.hidden  # (H, 2H)
        return {"W_left": w[:, :hidden], "W_right": w[:, hidden:]}


@ARCHS.register("treelstm", "Child-sum Tree-LSTM (Tai et al. 2015): any number of children")
class ChildSumTreeLSTM(TreeModel):
    widths = 2

    def __init__(self, options: TreeOptions, spec: TaskSpec):
        super().__init__(options, spec)
        hidden = options.hidden
        self.embed = nn.Embedding(spec.vocab_size, options.embed)
        self.input = nn.Linear(options.embed, 4 * hidden)  # W_i, W_o, W_u, W_f and the biases
        self.iou = nn.Linear(hidden, 3 * hidden, bias=False)  # U_i, U_o, U_u (3H, H) on h~
        self.forget = nn.Linear(hidden, hidden, bias=False)  # U_f (H, H) on each h_k

    def node_inputs(self, ids):
        return self.input(self.embed(ids))  # (M, 4H): W x + b for i, o, u, f

    def compose(self, inputs, children, leaf):
        h_kids, c_kids = children  # (M, K, H) each; zeros for missing children
        wi, wo, wu, wf = inputs.chunk(4, dim=-1)  # (M, H) each
        if leaf:  # no children: U h~ = 0 and no forget gate, so skip the matmuls on zeros (the same values)
            c = torch.sigmoid(wi) * torch.tanh(wu)
            return torch.sigmoid(wo) * torch.tanh(c), c
        ui, uo, uu = self.iou(h_kids.sum(1)).chunk(3, dim=-1)  # (M, H) each, from h~ = sum_k h_k
        i, o, u = torch.sigmoid(wi + ui), torch.sigmoid(wo + uo), torch.tanh(wu + uu)
        f = torch.sigmoid(wf[:, None] + self.forget(h_kids))  # (M, K, H): one gate per child
        c = i * u + (f * c_kids).sum(1)  # a missing child's c is 0: it adds nothing
        return o * torch.tanh(c), c

    def recurrent_matrices(self):
        ui, uo, uu = self.iou.weight.chunk(3, dim=0)  # (H, H) each
        return {"U_i": ui, "U_o": uo, "U_u": uu, "U_f": self.forget.weight}


@ARCHS.register("treelstm_binary", "Binary N-ary Tree-LSTM (Tai et al. 2015): a matrix per child position")
class BinaryTreeLSTM(TreeModel):
    binary_only = True
    widths = 2
    GATES = ("i", "f_left", "f_right", "o", "u")

    def __init__(self, options: TreeOptions, spec: TaskSpec):
        super().__init__(options, spec)
        hidden = options.hidden
        self.embed = nn.Embedding(spec.vocab_size, options.embed)
        self.input = nn.Linear(options.embed, 5 * hidden)  # W_g and b_g for the five gates
        self.children_layer = nn.Linear(2 * hidden, 5 * hidden, bias=False)  # [U_g^left U_g^right] (5H, 2H)

    def node_inputs(self, ids):
        return self.input(self.embed(ids))  # (M, 5H): W_g x + b_g

    def compose(self, inputs, children, leaf):
        h_kids, c_kids = children  # (M, 2, H) each
        if leaf:  # U h = 0 and c_left = c_right = 0: the leaf's own gates alone (the same values, half the matmuls)
            i, _, _, o, u = inputs.chunk(5, dim=-1)
            c = torch.sigmoid(i) * torch.tanh(u)
            return torch.sigmoid(o) * torch.tanh(c), c
        gates = inputs + self.children_layer(h_kids.flatten(1))  # (M, 5H)
        i, f_left, f_right, o, u = gates.chunk(5, dim=-1)  # (M, H) each
        c = (torch.sigmoid(i) * torch.tanh(u) + torch.sigmoid(f_left) * c_kids[:, 0]
             + torch.sigmoid(f_right) * c_kids[:, 1])
        return torch.sigmoid(o) * torch.tanh(c), c

    def recurrent_matrices(self):
        hidden, out = self.hidden, {}
        for gate, rows in zip(self.GATES, self.children_layer.weight.chunk(5, dim=0)):  # (H, 2H) each
            out[f"U_{gate}.left"], out[f"U_{gate}.right"] = rows[:, :hidden], rows[:, hidden:]
        return out

