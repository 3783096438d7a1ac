"""Spectra of recurrent matrices and of the state-to-state Jacobian.

The lecture's story in numbers: backpropagation multiplies the gradient by
dh_t/dh_{t-1} once per step, so its singular values (bounded by those of W_hh
times the activation's slope) decide whether gradients vanish (< 1) or
explode (> 1) over many steps.
"""

from __future__ import annotations

import math

import torch

from ..models.unrolled import GATE_NAMES, cell_kind, is_custom, layer_step


def _round(values, digits: int = 5) -> list[float]:
    return [float(f"{v:.{digits}g}") for v in values.tolist()]


def matrix_spectrum(matrix: torch.Tensor) -> dict:
    """Eigenvalues (complex, as re/im lists), spectral radius, largest/smallest singular value."""
    m = matrix.detach().float().cpu()  # (H, H); float32 halves the cost, plenty for a plot
    eig = torch.linalg.eigvals(m)  # (H,) complex
    sv = torch.linalg.svdvals(m)  # (H,) descending
    return {
        "radius": float(eig.abs().max()), "sv_max": float(sv[0]), "sv_min": float(sv[-1]),
        "eig_re": _round(eig.real), "eig_im": _round(eig.imag),
    }


def recurrent_blocks(model) -> dict[str, torch.Tensor]:
    """Square recurrent matrices: W_hh for Elman, each gate's H x H block for LSTM/GRU."""
    if is_custom(model):
        return model.recurrent_blocks()
    kind = cell_kind(model)
    blocks = {}
    for name, weight in model.recurrent_matrices().items():  # (G*H, H)
        gates = GATE_NAMES[kind]
        if not gates:
            blocks[name] = weight
            continue
        for gate, block in zip(gates, weight.chunk(len(gates), dim=0)):
            blocks[f"{name}.{gate}"] = block  # (H, H)
    return blocks


def weight_spectra(model) -> dict:
    return {name: matrix_spectrum(block) for name, block in recurrent_blocks(model).items()}


def top_singular_values(mats: torch.Tensor, k: int, iterations: int = 12) -> torch.Tensor:
    """The k largest singular values of each matrix in (W, S, S), by subspace iteration.

    A full SVD of W matrices of 2H x 2H costs seconds on a CPU at every probe;
    iterating on a random (k + 4)-dimensional subspace costs milliseconds and
    converges to the leading singular values. Seeded locally: the training RNG
    is never touched.
    """
    n = mats.shape[-1]
    width = min(n, k + 4) if k > 1 else 1  # k = 1: plain power iteration
    start = torch.randn(n, width, generator=torch.Generator().manual_seed(0)).to(mats.dtype)
    q = torch.linalg.qr(start.expand(mats.shape[0], n, width)).Q  # (W, S, p)
    if width < n:
        for _ in range(iterations):
            q = mats.mT @ (mats @ q)  # (W, S, p)
            q = torch.linalg.qr(q).Q if width > 1 else q / q.norm(dim=1, keepdim=True)
    return torch.linalg.svdvals(mats @ q)[:, :k]  # (W, k)


def _flatten(state) -> torch.Tensor:
    return torch.cat(state, -1) if isinstance(state, tuple) else state


def _unflatten(paired: bool, flat: torch.Tensor, hidden: int):
    return (flat[..., :hidden], flat[..., hidden:]) if paired else flat


@torch.no_grad()
def jacobian_spectra(model, trace, layer: int, steps: int, top: int, example: int = 0) -> dict:
    """Singular values of J_t = d s_t / d s_{t-1} along the probe trajectory of one example.

    s is the layer's whole state ((h, c) for LSTM). Covers the last `steps`
    time steps: the `top` leading singular values of each J_t, and the log
    spectral norm of the running product J_t ... J_{t0}, whose growth or decay
    is what a gradient travelling back over those steps sees.
    """
    hidden = model.options.hidden
    cell_step, _ = layer_step(model, layer, detach=True)
    paired = bool(trace.cells[layer])  # the state is (h, c)
    hs = trace.hidden[layer]
    inputs = trace.hidden[layer - 1] if layer > 0 else None
    total = len(hs)
    start = max(1, total - steps)

    def state_at(t):  # (S,) the state after step t
        h = hs[t][example].detach()
        return torch.cat([h, trace.cells[layer][t][example].detach()]) if paired else h

    def input_at(t):  # (1, I) the layer's input at step t
        if trace.layer_inputs:
            return trace.layer_inputs[layer][example:example + 1, t].detach()
        if inputs is not None:
            return inputs[t][example:example + 1].detach()
        return trace.inputs[example:example + 1, t].detach()

    jacobians = []
    for t in range(start, total):
        x = input_at(t)

        def step(flat, x=x):
            _, new, _ = cell_step(x, _unflatten(paired, flat[None], hidden))
            return _flatten(new)[0]

        # Forward mode: one pass per input column, batched by vmap; 4x faster than jacrev here.
        jacobians.append(torch.func.jacfwd(step)(state_at(t - 1)))  # (S, S)
    J = torch.stack(jacobians)  # (W, S, S)
    # Running products J_t ... J_{t0}, renormalised (Frobenius, cheap) so they never overflow;
    # the scale is kept as a log and added back to each product's spectral norm.
    products, running, log_scale = [], torch.eye(J.shape[-1], dtype=J.dtype), 0.0
    scales = []
    for j in J:
        running = j @ running
        norm = float(torch.linalg.matrix_norm(running))
        if norm == 0.0 or not math.isfinite(norm):
            break
        log_scale += math.log(norm)
        running = running / norm
        products.append(running)
        scales.append(log_scale)
    product_norms = [None] * len(J)
    if products:
        leading = top_singular_values(torch.stack(products), 1, iterations=20)[:, 0]  # (W,)
        for i, (scale, value) in enumerate(zip(scales, leading.tolist())):
            product_norms[i] = round(scale + math.log(value), 5) if value > 0 else None
    sv = top_singular_values(J, top)  # (W, top) descending
    return {
        "t": list(range(start, total)),
        "sv": [_round(row) for row in sv],
        "log_product_norm": product_norms,
    }
