"""The memory of a neural Turing machine (Graves et al. 2014, section 3): addressing, reading, writing.

Plain functions of tensors, batched over B sequences and H heads, so tests can
check each stage on its own. Shapes: memory (B, N, M) with N slots of width M;
a weighting (B, H, N), one distribution over the slots per head.

Addressing (section 3.3), in the paper's order:
  content     w^c = softmax_i(beta * cos(k, M_i))                      eq. (5)-(6)
  interpolate w^g = g w^c + (1 - g) w_{t-1}                              eq. (7)
  shift       w~(i) = sum_j w^g(j) s(i - j mod N), s over -S..S          eq. (8)
  sharpen     w(i) = w~(i)^gamma / sum_j w~(j)^gamma                     eq. (9)
Numerical care: cosine divides by sqrt(|u|^2 + eps) rather than |u| (smooth at the
zero vector, so the tiny constant initial memory has finite gradients), and
sharpening runs as softmax(gamma * log(w~ + eps)), which is (w~ + eps)^gamma
renormalised: it never divides by a sum that underflowed to zero.
"""

from __future__ import annotations

import torch
from torch import Tensor

EPS = 1e-8  # in the cosine's norms (squared norms, so a norm floor of 1e-4)
SHARPEN_EPS = 1e-12  # added to w~ before the power: keeps log finite where a weight underflowed to 0


def cosine_similarity(memory: Tensor, keys: Tensor) -> Tensor:
    """cos(k_h, M_i) for every head h and slot i: (B, N, M), (B, H, M) -> (B, H, N)."""
    dots = torch.einsum("bhm,bnm->bhn", keys, memory)  # (B, H, N)
    key_norms = (keys.square().sum(-1) + EPS).sqrt()  # (B, H)
    slot_norms = (memory.square().sum(-1) + EPS).sqrt()  # (B, N)
    return dots / (key_norms[:, :, None] * slot_norms[:, None, :])


def content_weights(memory: Tensor, keys: Tensor, beta: Tensor) -> Tensor:
    """w^c = softmax over slots of beta * cos: beta (B, H) >= 0 is the key strength -> (B, H, N)."""
    return torch.softmax(beta[..., None] * cosine_similarity(memory, keys), dim=-1)


def interpolate(content: Tensor, previous: Tensor, gate: Tensor) -> Tensor:
    """w^g = g w^c + (1 - g) w_{t-1}; gate (B, H) in (0, 1): 1 takes the content weighting, 0 keeps the old one."""
    g = gate[..., None]  # (B, H, 1)
    return g * content + (1.0 - g) * previous


def circular_shift(weights: Tensor, shift: Tensor) -> Tensor:
    """Circular convolution of weights (B, H, N) with a distribution over shifts -S..S, shift (B, H, 2S+1).

    shift[..., S + k] is the probability of moving by +k: a one-hot weighting on slot i and a
    shift one-hot on +1 give a one-hot on slot i + 1 (mod N).
    """
    span = (shift.shape[-1] - 1) // 2  # S
    if span == 0:
        return weights * shift  # the only shift is 0, with probability 1
    # pad circularly by S on both sides: window i then holds w(i - S .. i + S)
    padded = torch.cat([weights[..., -span:], weights, weights[..., :span]], dim=-1)  # (B, H, N + 2S)
    windows = padded.unfold(-1, 2 * span + 1, 1)  # (B, H, N, 2S+1); windows[..., i, j] = w(i - S + j)
    # w~(i) = sum_k s(k) w(i - k): w(i - k) sits at j = S - k, so flip the window to line up with s(-S..S)
    return (windows.flip(-1) * shift[..., None, :]).sum(-1)  # (B, H, N)


def sharpen(weights: Tensor, gamma: Tensor) -> Tensor:
    """w^gamma renormalised, gamma (B, H) >= 1; computed as softmax(gamma * log(w + eps)) (see the module doc)."""
    return torch.softmax(gamma[..., None] * torch.log(weights + SHARPEN_EPS), dim=-1)


def address(memory: Tensor, previous: Tensor, keys: Tensor, beta: Tensor, gate: Tensor, shift: Tensor,
            gamma: Tensor) -> Tensor:
    """The whole pipeline of section 3.3 for H heads: (B, N, M), (B, H, N), ... -> (B, H, N)."""
    content = content_weights(memory, keys, beta)  # (B, H, N)
    return sharpen(circular_shift(interpolate(content, previous, gate), shift), gamma)


def read(memory: Tensor, weights: Tensor) -> Tensor:
    """r_h = sum_i w_h(i) M_i: (B, N, M), (B, R, N) -> (B, R, M)."""
    return weights @ memory


def write(memory: Tensor, weights: Tensor, erase: Tensor, add: Tensor) -> Tensor:
    """Erase, then add (section 3.2), for W write heads at once: weights (B, W, N), erase and add (B, W, M).

    M~ = M * prod_h (1 - w_h e_h^T), then M' = M~ + sum_h w_h a_h^T: the erasures multiply and the
    additions sum, so the order of the heads does not matter.
    """
    keep = (1.0 - weights[..., :, None] * erase[..., None, :]).prod(dim=1)  # (B, N, M)
    return memory * keep + torch.einsum("bwn,bwm->bnm", weights, add)
