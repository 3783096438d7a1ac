"""What every sequence model in rnnlab shares: options, task shape, interface."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..options import opt


@dataclass
class TaskSpec:
    """What a task feeds a model and expects back.

    vocab_size: inputs are token ids in [0, vocab_size) when set, else float
    vectors of `input_size` features. `output_size` is the width of the
    model's output (logits for classification/LM, values for regression).
    """

    input_size: int
    output_size: int
    vocab_size: int | None = None
    # True when the input at t + 1 is the target at t (language models, one-step prediction):
    # a model must then not look ahead, so bidirectional models refuse such tasks.
    causal: bool = False
    # Sequence-to-sequence tasks: token id ending an output sequence (None: outputs have no end)
    eos: int | None = None
    # Variable lengths: the token filling the steps after a sequence's end (only ever trailing), so a
    # bidirectional model starts its backward pass at each sequence's own end (None: no padding)
    pad: int | None = None
    # Trees (models/tree_table.py): x is a node table of "binary" or n-ary ("nary") trees, which only a
    # tree model (reads_trees) composes; None: x is a sequence
    tree: str | None = None


@dataclass
class RecurrentOptions:
    """Keys every recurrent architecture accepts under [model]."""

    arch: str = opt("lstm", "architecture (`rnnlab list archs`)")
    hidden: int = opt(256, "units per recurrent layer", min=1)
    layers: int = opt(2, "stacked recurrent layers", min=1, max=64)
    dropout: float = opt(0.0, "dropout on embeddings, between layers and before the output", min=0, max=0.95)
    embed: int = opt(64, "token embedding width (token inputs only)", min=1)
    init: str = opt("default", "recurrent matrix init: default | orthogonal | identity (IRNN) | radius "
                    "(scaled to init_radius) | gain (normal, std init_gain/sqrt(H))",
                    choices=["default", "orthogonal", "identity", "radius", "gain"])
    init_radius: float = opt(1.0, "init = radius: spectral radius of every recurrent block", above=0)
    init_gain: float = opt(1.0, "init = gain: Sussillo-Abbott gain g", above=0)


State = torch.Tensor | tuple[torch.Tensor, ...]


class SequenceModel(nn.Module):
    """forward(x, state=None) -> (y, state); state is None for a fresh start.

    x: (B, T) token ids or (B, T, I) features; y: (B, T, O).
    """

    Options = RecurrentOptions
    # True: the trainer calls model(x, targets=y) in training and evaluation, for models whose
    # recurrence reads the previous target (teacher forcing: Jordan nets, seq2seq decoders).
    takes_targets = False

    def init_state(self, batch: int, device=None) -> State:  # pragma: no cover - interface
        raise NotImplementedError

    def recurrent_matrices(self) -> dict[str, torch.Tensor]:  # pragma: no cover - interface
        """Name -> recurrent weight matrix, for spectra and probes."""
        raise NotImplementedError


def input_layer(options: RecurrentOptions, spec: TaskSpec) -> tuple[nn.Embedding | None, int]:
    """(embedding or None, width of what the first recurrent layer reads): tokens are embedded,
    feature vectors go in as they are."""
    if spec.vocab_size is not None:
        return nn.Embedding(spec.vocab_size, options.embed), options.embed
    return None, spec.input_size


def apply_model(model: nn.Module, x: torch.Tensor, y: torch.Tensor, state: State | None = None):
    """model(x, state), with the targets too for models that read them (teacher forcing)."""
    if getattr(model, "takes_targets", False):
        return model(x, state, targets=y)
    return model(x, state)


def detach_state(state: State | None) -> State | None:
    """Cut the graph at a chunk boundary (truncated BPTT) but keep the values."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
