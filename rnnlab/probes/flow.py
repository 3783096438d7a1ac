"""Gradient flow through time, gate saturation, and per-group gradient norms."""

from __future__ import annotations

import torch

from ..models.unrolled import Trace, gate_names, layer_parameters

LOW, HIGH = 0.1, 0.9  # a sigmoid gate below/above these is saturated (shut/open)


def gradient_flow(trace: Trace, loss_total: torch.Tensor, loss_last: torch.Tensor) -> dict:
    """||dL/dh_t|| for every layer and time step, for two losses.

    `total`: the loss summed over the sequence (what training sees);
    `last`: the loss at the last step only, whose gradient going back in time
    is the vanishing/exploding picture. The h_t are the unrolled tensors, so
    the gradient is the total one (through the recurrence and upwards).
    Uses autograd.grad: nothing is accumulated into the parameters' .grad.
    """
    states = [h for layer in trace.hidden for h in layer]
    out = {}
    for name, loss in (("total", loss_total), ("last", loss_last)):
        grads = torch.autograd.grad(loss, states, retain_graph=True, allow_unused=True)
        steps = len(trace.hidden[0])
        for layer in range(len(trace.hidden)):
            norms = []
            for g in grads[layer * steps:(layer + 1) * steps]:
                norms.append(0.0 if g is None else float(g.double().norm()))  # over batch and units
            out.setdefault(f"layer{layer}", {})[name] = [float(f"{n:.5g}") for n in norms]
    return out


def gate_saturation(trace: Trace, kind: str) -> dict:
    """Mean activation and the shares below LOW / above HIGH, per gate and layer."""
    out = {}
    for layer, gates in enumerate(trace.gates):
        stats = {}
        for name, values in gates.items():  # (B, T, H)
            values = values.detach()
            if name in ("cell", "new"):  # tanh candidates, in (-1, 1): saturated means |v| > 0.9
                low, high = float((values < -HIGH).double().mean()), float((values > HIGH).double().mean())
            else:
                low, high = float((values < LOW).double().mean()), float((values > HIGH).double().mean())
            stats[name] = {"mean": round(float(values.double().mean()), 5), "low": round(low, 5), "high": round(high, 5)}
        if stats:
            out[f"layer{layer}"] = stats
    return out


def gradient_groups(model) -> dict[str, float]:
    """Norms of the current .grad by group: embedding, head, each layer, each gate block.

    Call between backward() and clipping: these are the pre-clip gradients.
    """
    out: dict[str, float] = {}

    def norm(tensors) -> float:
        tensors = [t for t in tensors if t is not None]
        return float(torch.linalg.vector_norm(torch.stack([t.double().norm() for t in tensors]))) if tensors else 0.0

    if model.embed is not None:
        out["embed"] = norm([model.embed.weight.grad])
    out["head"] = norm([p.grad for p in model.head.parameters()])
    for layer in range(model.options.layers):
        params = layer_parameters(model, layer)
        gates = gate_names(model, layer)
        out[f"layer{layer}"] = norm([p.grad for p in params.values()])
        for short, name in (("ih", "weight_ih"), ("hh", "weight_hh")):
            grad = params[name].grad
            if grad is None:
                continue
            if not gates:
                out[f"layer{layer}.{short}"] = float(grad.double().norm())
                continue
            for gate, block in zip(gates, grad.chunk(len(gates), dim=0)):
                out[f"layer{layer}.{short}.{gate}"] = float(block.double().norm())
    return {k: float(f"{v:.5g}") for k, v in out.items()}
