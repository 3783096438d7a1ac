"""Initialisations of recurrent matrices (each square H x H block of W_hh).

The spectrum of W_hh at the start decides whether early gradients vanish or
explode (the lectures' spectral-radius story), hence the choices:
  default    torch's uniform(-1/sqrt(H), 1/sqrt(H))
  orthogonal every singular value 1 (Saxe et al.): norms preserved step to step
  identity   W_hh = I (IRNN, Le et al. 2015, with relu): the state is copied forward
  radius     torch's default, rescaled so the spectral radius is `init_radius`
             (echo-state style: just below 1 keeps memory without exploding)
  gain       normal with std g / sqrt(H) (Sussillo & Abbott 2009): g = `init_gain`
             > 1 puts a random network in the chaotic regime
"""

from __future__ import annotations

import torch

SCHEMES = ["default", "orthogonal", "identity", "radius", "gain"]


@torch.no_grad()
def init_recurrent_block(block: torch.Tensor, scheme: str, radius: float = 1.0, gain: float = 1.0) -> None:
    """Initialise one square block (H, H) in place."""
    size = block.shape[0]
    if scheme == "default":
        return
    if scheme == "orthogonal":
        torch.nn.init.orthogonal_(block)
    elif scheme == "identity":
        block.copy_(torch.eye(size, dtype=block.dtype))
    elif scheme == "radius":
        current = torch.linalg.eigvals(block.double()).abs().max()
        if current > 0:
            block.mul_(radius / current.item())
    elif scheme == "gain":
        block.normal_(0.0, gain / size ** 0.5)
    else:
        raise ValueError(scheme)  # unreachable: the config validated the choice


def init_recurrent(weight: torch.Tensor, gates: int, scheme: str, radius: float = 1.0, gain: float = 1.0) -> None:
    """Initialise W_hh (gates*H, H) block by block: each gate's square matrix gets the scheme."""
    for block in weight.chunk(gates, dim=0):
        init_recurrent_block(block, scheme, radius, gain)
