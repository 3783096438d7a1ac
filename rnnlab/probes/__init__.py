"""Diagnostics computed during training, written as events (docs/run-directory.md).

Every `probes.every` steps, on a fixed probe batch (the first validation
windows), in eval mode and float32, the Prober records:
  gradnorm  pre-clip gradient norms per layer and per gate block (the step's own gradients)
  gradflow  ||dL/dh_t|| for every t and layer, for the total loss and the last step's loss
  gates     mean activation and saturated shares per gate and layer
  spectrum  eigenvalues / radius / singular values of every recurrent block, and,
            every `probes.jacobian_every` steps, the spectrum of dh_t/dh_{t-1}
  heads     a memory model's (NTM) read and write weightings on the first probe example (heads.py)
  attention an encoder-decoder's greedy answer to the first probe example, with its weights (attention.py)
  A tree model (trees.py) has a gradflow event by depth below the root instead of by t, and the
  spectra of its composition matrices.
Probes never touch the parameters' .grad, the RNG, or the training mode they found.
"""

from __future__ import annotations

import torch
from torch import nn

from ..models.unrolled import cell_kind, is_custom, unrolled_forward
from .flow import gate_saturation, gradient_flow, gradient_groups
from .heads import heads_event, records_heads
from .spectra import jacobian_spectra, matrix_spectrum, weight_spectra
from .trees import reads_trees, tree_gradient_flow


def supports(model) -> bool:
    """Probes read the unrolled form of fused Elman/LSTM/GRU layers, or a custom cell's own step."""
    return isinstance(getattr(model, "rnn", None), (nn.RNN, nn.LSTM, nn.GRU)) or is_custom(model)


class Prober:
    def __init__(self, cfg, model, task, device: torch.device):
        self.cfg = cfg
        self.enabled = cfg.every > 0 and supports(model)
        # encoder-decoders with attention: an `attention` event of the first probe example instead
        self.attends = cfg.every > 0 and getattr(model, "attention", None) is not None and hasattr(model, "decode")
        # memory models (the NTM): a `heads` event, the read and write weightings of the first probe example
        self.heads = cfg.every > 0 and records_heads(model)
        # recursive nets: gradient flow by depth in the tree (trees.py)
        self.tree = cfg.every > 0 and cfg.gradflow and reads_trees(model)
        # any other model (delay, clockwork, ntm, jordan, seq2seq, ...): the spectra of its recurrent matrices
        self.spectra_only = cfg.every > 0 and cfg.spectrum and not self.enabled and bool(square_blocks(model))
        x, y, mask = task.probe_batch(cfg.batch)
        self.x, self.y = x.to(device), y.to(device)  # the same batch at every probe
        self.mask = mask.to(device) if mask is not None else None  # (B, T): steps that are judged
        self.task = task

    def due(self, step: int) -> bool:
        return (self.enabled or self.attends or self.heads or self.spectra_only or self.tree) and \
            step % self.cfg.every == 0

    def gradnorms(self, model) -> dict | None:
        return {"groups": gradient_groups(model)} if self.enabled and self.cfg.gradnorms else None

    def run(self, model, step: int) -> list[tuple[str, dict]]:
        """[(kind, payload)] for the events of this probe."""
        cfg, events = self.cfg, []
        if not self.enabled:  # no unrolled form: what can be read off the weights, and attention
            if self.spectra_only:
                with torch.no_grad():
                    events.append(("spectrum", {"matrices": {name: matrix_spectrum(block)
                                                             for name, block in square_blocks(model).items()}}))
            if self.attends:
                from .attention import attention_event  # only seq2seq runs pay for importing decoding

                payload = attention_event(model, self.task, self.x, self.y)
                events.extend([("attention", payload)] if payload is not None else [])
            if self.heads:
                payload = heads_event(model, self.x, self.y)
                events.extend([("heads", payload)] if payload is not None else [])
            if self.tree:
                events.append(("gradflow", self.tree_flow(model)))
            return events
        was_training = model.training
        model.eval()
        try:
            with torch.enable_grad(), torch.autocast(self.x.device.type, enabled=False):
                trace = unrolled_forward(model, self.x)
                per_token = self.task.step_losses(trace.output, self.y, self.mask)  # (B, T)
                if cfg.gradflow:
                    flow = gradient_flow(trace, per_token.mean(), per_token[:, -1].mean())
                    events.append(("gradflow", {"steps": per_token.shape[1], "layers": flow}))
            if cfg.gates:
                gates = gate_saturation(trace, cell_kind(model))
                if gates:
                    events.append(("gates", {"layers": gates}))
            if cfg.spectrum:
                payload = {"matrices": weight_spectra(model)}
                if cfg.jacobian_every and step % cfg.jacobian_every == 0:
                    payload["jacobian"] = {
                        f"layer{layer}": jacobian_spectra(model, trace, layer, cfg.jacobian_steps, cfg.top_singular)
                        for layer in range(model.options.layers)
                    }
                events.append(("spectrum", payload))
        finally:
            model.train(was_training)
        return events


    def tree_flow(self, model) -> dict:
        was_training = model.training
        model.eval()
        try:
            with torch.enable_grad(), torch.autocast(self.x.device.type, enabled=False):
                return tree_gradient_flow(model, self.task, self.x, self.y, self.mask)
        finally:
            model.train(was_training)


def square_blocks(model) -> dict[str, torch.Tensor]:
    """The square blocks of a model's recurrent matrices: (G*H, H) gate stacks cut into G blocks."""
    try:
        matrices = model.recurrent_matrices()
    except NotImplementedError:
        return {}
    blocks = {}
    for name, weight in matrices.items():
        rows, cols = weight.shape[-2:] if weight.dim() >= 2 else (0, 1)
        if weight.dim() != 2 or cols == 0 or rows % cols:
            continue
        parts = weight.chunk(rows // cols, dim=0)
        blocks.update({name: weight} if len(parts) == 1 else {f"{name}.{i}": part for i, part in enumerate(parts)})
    return blocks


__all__ = ["Prober", "square_blocks", "supports"]
