"""Image captioning: a small CNN encoder and a recurrent decoder, with a fixed image context (Show and tell,
Vinyals et al. 2014) or soft attention over the feature grid (Show, attend and tell, Xu et al. 2015).

The encoder reads the image (B, 3, H, W) with two coordinate channels added
(x and y in [-1, 1], as CoordConv: a small CNN's features are otherwise
the same wherever a shape stands, and captions say where things are), three
3x3 convolutions with two 2x2 poolings between, and an adaptive average pool
to a grid x grid feature map: the annotations a_l, (B, L = grid^2, C).

attention = "none": the image vector g = tanh(W flatten(a)) (B, hidden), a
whole image summary like a CNN's top layer, starts the decoder (s_0 = tanh(bridge g))
and is its fixed context at every step, beside the previous word, and in the
readout. attention = "soft": s_0 comes from the mean annotation (Xu et al.'s
init), and each step's context is additive attention over the L locations,
queried with s_{t-1}.

Everything after the encoder is the seq2seq decoder (seq2seq.py): teacher
forcing, scheduled sampling, greedy decoding, and beam search through
decoding.py's Stepper. The doubly stochastic regulariser (Xu et al. eq. 14)
adds lambda * mean over images of sum_l (1 - sum_t alpha_tl)^2 to the training
loss (t over the caption's real steps, EOS included): it pushes the attention
to visit every location over a caption, rather than stare at one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..options import opt
from .base import RecurrentOptions, TaskSpec
from .registry import ARCHS
from .seq2seq import PAD, RNN_CLASSES, Memory, Seq2SeqModel, init_rnn


@dataclass
class CaptionOptions(RecurrentOptions):
    arch: str = opt("image_caption", "architecture (`rnnlab list archs`)")
    hidden: int = opt(128, "units per recurrent layer", min=1)
    layers: int = opt(1, "stacked recurrent layers of the decoder", min=1, max=8)
    cell: str = opt("lstm", "recurrent cell of the decoder (fused kernels)", choices=list(RNN_CLASSES))
    attention: str = opt("soft", "soft: additive attention over the feature grid at every word (Xu et al. 2015); "
                         "none: one fixed image vector (Show and tell)", choices=["soft", "none"])
    attention_size: int = opt(0, "width of the additive attention's tanh layer (0: hidden)", min=0)
    channels: int = opt(32, "CNN channels: the width of each grid location's annotation", min=1)
    grid: int = opt(6, "the feature grid's side: the decoder attends over grid x grid locations", min=1, max=16)
    doubly_stochastic: float = opt(0.0, "lambda of the doubly stochastic attention regulariser, "
                                   "lambda * sum_l (1 - sum_t alpha_tl)^2 (0: off; needs attention = soft)", min=0)


def coordinates(images: Tensor) -> Tensor:
    """images (B, 3, H, W) -> (B, 5, H, W): with x and y, each in [-1, 1], as two more channels."""
    batch, _, height, width = images.shape
    ys = torch.linspace(-1, 1, height, device=images.device, dtype=images.dtype)
    xs = torch.linspace(-1, 1, width, device=images.device, dtype=images.dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")  # (H, W)
    where = torch.stack([grid_x, grid_y])[None].expand(batch, -1, -1, -1)  # (B, 2, H, W)
    return torch.cat([images, where], 1)


@ARCHS.register("image_caption", "CNN encoder + LSTM/GRU decoder, fixed image context or soft attention; scenes")
class CaptionModel(Seq2SeqModel):
    Options = CaptionOptions

    def __init__(self, options: CaptionOptions, spec: TaskSpec):
        nn.Module.__init__(self)  # not Seq2SeqModel's: no source embedding, no recurrent encoder
        if spec.eos is None or spec.vocab_size is not None or spec.input_size != 3:
            raise ConfigError("model.arch", options.arch, "needs an image captioning task (RGB images in, "
                              "captions ending in EOS)", "scenes")
        if options.doubly_stochastic and options.attention == "none":
            raise ConfigError("model.doubly_stochastic", options.doubly_stochastic, "regularises attention "
                              "weights: a fixed context has none", "0, or model.attention = soft")
        self.options, self.spec = options, spec
        self.lstm = options.cell == "lstm"
        self.bos, self.eos = spec.output_size, spec.eos
        channels = options.channels
        self.target_embed = nn.Embedding(spec.output_size + 1, options.embed)
        self.cnn = nn.Sequential(
            nn.Conv2d(5, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(options.grid))
        attends = options.attention == "soft"
        # D, the context's width: the annotations' C, or an image vector as wide as the decoder (Show and tell
        # embeds the image in the LSTM's input space; a C-wide one, 32, stalled on the plateau where the
        # decoder writes the grammar and ignores the image, at seeds 0 and 2 of caption-fixed)
        self.whole = None if attends else nn.Linear(options.grid ** 2 * channels, options.hidden)  # flatten(a) -> g
        self.build_decoder(channels if attends else options.hidden, attends)
        init_rnn(self.decoder, options)
        self.penalty: Tensor | None = None  # the regulariser of the latest training forward, until taken

    def encode(self, x: Tensor) -> Memory:
        """Images x (B, 3, H, W) -> the annotations as the decoder's memory: states (B, L, C), no padding."""
        features = self.cnn(coordinates(x))  # (B, C, grid, grid)
        states = features.flatten(2).transpose(1, 2)  # (B, L, C), row-major over the grid
        pad = torch.zeros(states.shape[:2], dtype=torch.bool, device=x.device)  # (B, L): every location is real
        if self.attention is None:
            summary = torch.tanh(self.whole(states.flatten(1)))  # (B, hidden)
            return Memory(states, None, pad, summary)
        return Memory(states, self.attention.keys(states), pad, states.mean(1))  # keys (B, L, A)

    def attended(self, weights: Tensor, targets: Tensor) -> None:
        super().attended(weights, targets)
        lam = self.options.doubly_stochastic
        if self.training and lam > 0:
            self.penalty = doubly_stochastic(weights, targets != PAD, lam)

    def take_penalty(self) -> Tensor | None:
        """The training loss's own term from the latest forward (FullBPTT adds it), once."""
        penalty, self.penalty = self.penalty, None
        return penalty

    def recurrent_matrices(self) -> dict[str, Tensor]:
        return {f"decoder.layer{name.removeprefix('weight_hh_l')}": weight
                for name, weight in self.decoder.named_parameters() if name.startswith("weight_hh")}


def doubly_stochastic(weights: Tensor, real: Tensor, lam: float) -> Tensor:
    """lambda * mean_b sum_l (1 - sum_t alpha_btl)^2 over the real steps: weights (B, U, L), real (B, U) bool."""
    coverage = (weights * real[:, :, None].to(weights.dtype)).sum(1)  # (B, L): sum over t of alpha_tl
    return lam * ((1.0 - coverage) ** 2).sum(1).mean()
