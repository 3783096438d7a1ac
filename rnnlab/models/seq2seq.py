"""Encoder-decoder models: a fixed context vector (Cho et al. 2014) or Bahdanau attention.

The encoder is torch's fused RNN/GRU/LSTM (bidirectional by default) over the
packed source, so right padding is never read: the backward direction starts
at each sentence's last real token, and the final states are the real ones.
Its top layer's final states (forward: last token, backward: first token)
form the summary (B, D); s_0 = tanh(bridge(summary)) starts every decoder
layer (an LSTM's cell state starts at 0).

attention = "none": the summary is the fixed context c, fed at every step
beside the previous target's embedding, and into the output layer. The
decoder input is then known for all steps in advance, so the whole decoder
runs as one fused kernel call.
attention = "bahdanau": c_t comes from additive attention (attention.py)
queried with the top layer's s_{t-1}; [embedding(y_{t-1}); c_t] is the
decoder's input and the readout sees [s_t; c_t; embedding(y_{t-1})]. c_t
needs s_{t-1}, so the decoder steps in a Python loop, each step one fused
kernel call for all layers at T = 1.

Training (`forward`) is teacher-forced: the decoder reads [BOS] + y[:, :-1],
BOS being an extra embedding row; under scheduled sampling (the trainer sets
`teacher_forcing` < 1) each step may read the model's own sample instead. `decode` runs free, feeding back its own
choices, with a decoding strategy from DECODERS (greedy for now; a beam
search plugs in as another function of (model, memory, max_len) built on
`initial_carry` and `step`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..errors import ConfigError
from ..options import opt
from .registry import ARCHS
from .attention import AdditiveAttention
from .base import RecurrentOptions, SequenceModel, TaskSpec
from .init import init_recurrent

PAD = 0  # source and target padding id, shared with the seq2seq tasks
RNN_CLASSES = {"elman": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
GATES = {"elman": 1, "gru": 3, "lstm": 4}


@dataclass
class Seq2SeqOptions(RecurrentOptions):
    arch: str = opt("seq2seq", "architecture (`rnnlab list archs`)")
    cell: str = opt("gru", "recurrent cell of the encoder and the decoder (fused kernels)",
                    choices=list(RNN_CLASSES))
    attention: str = opt("bahdanau", "bahdanau: additive attention over the source at every step; "
                         "none: one fixed context vector, the encoder's final states (Cho et al. 2014)",
                         choices=["bahdanau", "none"])
    bidirectional_encoder: bool = opt(True, "the encoder reads the source both ways (memory 2 x hidden wide)")
    attention_size: int = opt(0, "width of the additive attention's tanh layer (0: hidden)", min=0)


def init_rnn(rnn: nn.Module, options) -> None:
    """model.init on a fused layer's recurrent matrices; an LSTM's forget gate biased to 1 (keep memory early)."""
    hidden = options.hidden
    for name, weight in rnn.named_parameters():
        if name.startswith("weight_hh"):
            init_recurrent(weight, GATES[options.cell], options.init, options.init_radius, options.init_gain)
        elif options.cell == "lstm" and name.startswith("bias_"):  # the forget gate is the 2nd block
            with torch.no_grad():
                weight[hidden:2 * hidden].fill_(1.0 if name.startswith("bias_ih") else 0.0)


class Memory(NamedTuple):
    """What the decoder reads of one encoded source batch."""

    states: Tensor  # (B, S, D) encoder states, 0 on PAD
    keys: Tensor | None  # (B, S, A) U h_s + b for attention, None without
    pad: Tensor  # (B, S) True on padding
    summary: Tensor  # (B, D) top layer's final states, both directions


class Decoded(NamedTuple):
    ids: Tensor  # (B, T) chosen ids, T <= max_len; after a row's EOS: PAD
    attention: Tensor | None  # (B, T, S) attention weights (None without attention)
    logits: Tensor  # (B, T, V) the logits each choice was made from


@ARCHS.register("seq2seq", "Encoder-decoder, fixed context (Cho 2014) or Bahdanau attention; seq2seq tasks")
class Seq2SeqModel(SequenceModel):
    Options = Seq2SeqOptions
    takes_targets = True  # teacher forcing: the decoder reads the previous target
    carries_state = False  # every batch starts from its own encoding; nothing carries between batches
    teacher_forcing = 1.0  # scheduled sampling (train/scheduled.py): P(feed the true previous token) in training

    def __init__(self, options: Seq2SeqOptions, spec: TaskSpec):
        super().__init__()
        if spec.eos is None or spec.vocab_size is None:
            raise ConfigError("model.arch", options.arch, "needs a sequence-to-sequence task (token inputs, "
                              "outputs ending in EOS)",
                              "reverse, sort, addition, dates, translate (scenes: model.arch = image_caption)")
        self.options, self.spec = options, spec
        hidden, embed, layers = options.hidden, options.embed, options.layers
        self.lstm = options.cell == "lstm"
        self.bos, self.eos = spec.output_size, spec.eos  # BOS: the extra last row of target_embed
        rnn_class = RNN_CLASSES[options.cell]
        between = options.dropout if layers > 1 else 0.0
        directions = 2 if options.bidirectional_encoder else 1
        memory = hidden * directions  # D
        self.source_embed = nn.Embedding(spec.vocab_size, embed)
        self.target_embed = nn.Embedding(spec.output_size + 1, embed)
        self.encoder = rnn_class(embed, hidden, num_layers=layers, batch_first=True, dropout=between,
                                 bidirectional=options.bidirectional_encoder)
        self.build_decoder(memory, options.attention == "bahdanau")
        for rnn in (self.encoder, self.decoder):
            init_rnn(rnn, options)

    def build_decoder(self, memory: int, attends: bool) -> None:
        """The decoder's parts after target_embed, for a memory of width D (models/caption.py's captioner shares them;
        their creation order is the parameters' draw order, kept as it was)."""
        options, spec = self.options, self.spec
        hidden, embed, layers = options.hidden, options.embed, options.layers
        between = options.dropout if layers > 1 else 0.0
        self.bridge = nn.Linear(memory, layers * hidden)  # summary -> s_0 of every decoder layer
        self.decoder = RNN_CLASSES[options.cell](embed + memory, hidden, num_layers=layers, batch_first=True,
                                                 dropout=between)
        self.attention = AdditiveAttention(hidden, memory, options.attention_size or hidden) if attends else None
        self.head = nn.Linear(hidden + memory + embed, spec.output_size)  # [s_t; c_t; emb(y_{t-1})]
        self.drop = nn.Dropout(options.dropout)
        self.last_attention: Tensor | None = None  # (B, U, S) of the latest forward or decode, detached

    # -- the pieces a decoding strategy uses ------------------------------------------
    def encode(self, x: Tensor) -> Memory:
        """x (B, S) right-padded source ids -> the decoder's memory."""
        batch, length = x.shape
        lengths = (x != PAD).sum(1).clamp_min(1)  # (B,) an empty source reads one PAD
        pad = torch.arange(length, device=x.device)[None] >= lengths[:, None]  # (B, S)
        packed = pack_padded_sequence(self.drop(self.source_embed(x)), lengths.cpu(), batch_first=True,
                                      enforce_sorted=False)
        out, final = self.encoder(packed)
        states, _ = pad_packed_sequence(out, batch_first=True, total_length=length)  # (B, S, D)
        final = final[0] if self.lstm else final  # (L * dirs, B, H), layer-major, in batch order
        directions = 2 if self.options.bidirectional_encoder else 1
        summary = torch.cat(list(final[-directions:]), dim=-1)  # (B, D): top layer's final states
        keys = self.attention.keys(states) if self.attention is not None else None  # (B, S, A)
        return Memory(states, keys, pad, summary)

    def initial_carry(self, memory: Memory):
        """s_0 = tanh(bridge(summary)) for every decoder layer: (L, B, H), with a zero cell for an LSTM."""
        batch = memory.summary.shape[0]
        s0 = torch.tanh(self.bridge(memory.summary)).view(batch, self.options.layers, -1)  # (B, L, H)
        s0 = s0.transpose(0, 1).contiguous()  # (L, B, H)
        return (s0, torch.zeros_like(s0)) if self.lstm else s0

    def advance(self, inputs: Tensor, carry, memory: Memory):
        """One decoder step from the embedded previous token (B, E): (s_t (B, H), c_t (B, D), carry, weights)."""
        if self.attention is None:
            context, weights = memory.summary, None  # (B, D), the same at every step
        else:
            query = (carry[0] if self.lstm else carry)[-1]  # (B, H): the top layer's s_{t-1}
            context, weights = self.attention(query, memory.keys, memory.states, memory.pad)  # (B, D), (B, S)
        out, carry = self.decoder(torch.cat([inputs, context], dim=-1)[:, None], carry)  # (B, 1, H)
        return out[:, 0], context, carry, weights

    def readout(self, states: Tensor, contexts: Tensor, inputs: Tensor) -> Tensor:
        """Logits from [s_t; c_t; emb(y_{t-1})], for (B, V) or (B, U, V) alike."""
        return self.head(torch.cat([self.drop(states), contexts, inputs], dim=-1))

    def step(self, tokens: Tensor, carry, memory: Memory):
        """Previous ids (B,) -> (logits (B, V), carry, attention weights (B, S) or None)."""
        inputs = self.drop(self.target_embed(tokens))  # (B, E)
        state, context, carry, weights = self.advance(inputs, carry, memory)
        return self.readout(state, context, inputs), carry, weights

    # -- training and decoding -------------------------------------------------------
    def forward(self, x: Tensor, state=None, targets: Tensor | None = None):
        """Teacher-forced logits (B, U, V) for targets (B, U); the returned state is always None."""
        if state is not None:
            raise ValueError("seq2seq models carry no state between batches (carries_state = False); pass None")
        if targets is None:
            raise ValueError("seq2seq forward needs the targets (teacher forcing); decode() generates without them")
        memory = self.encode(x)
        if self.training and self.teacher_forcing < 1.0:
            return self.scheduled_sampling(memory, targets), None
        batch, steps = targets.shape
        bos = torch.full((batch, 1), self.bos, dtype=targets.dtype, device=targets.device)
        inputs = self.drop(self.target_embed(torch.cat([bos, targets[:, :-1]], dim=1)))  # (B, U, E)
        carry = self.initial_carry(memory)
        if self.attention is None:
            contexts = memory.summary[:, None].expand(-1, steps, -1)  # (B, U, D)
            states, _ = self.decoder(torch.cat([inputs, contexts], dim=-1), carry)  # (B, U, H), one fused call
            self.last_attention = None
        else:
            states, contexts, weights = [], [], []
            for step_inputs in inputs.unbind(1):  # unbind: one backward buffer, not U zero-filled slices
                state_t, context, carry, weights_t = self.advance(step_inputs, carry, memory)
                states.append(state_t)
                contexts.append(context)
                weights.append(weights_t)
            states, contexts = torch.stack(states, 1), torch.stack(contexts, 1)  # (B, U, H), (B, U, D)
            self.attended(torch.stack(weights, 1), targets)  # (B, U, S)
        return self.readout(states, contexts, inputs), None  # (B, U, V)

    def attended(self, weights: Tensor, targets: Tensor) -> None:
        """The attention weights (B, U, S) of a training-style pass, still in the graph: kept detached for
        the probes (the captioner also regularises them: models/caption.py)."""
        self.last_attention = weights.detach()

    def scheduled_sampling(self, memory: Memory, targets: Tensor) -> Tensor:
        """Logits (B, U, V) when each step reads the true previous token with probability teacher_forcing,
        else a sample of the model's own previous output (Bengio et al. 2015); the choice, a discrete
        token, passes no gradient. Both attention modes step here: the inputs are not known in advance."""
        batch, steps = targets.shape
        truth = torch.rand(batch, steps, device=targets.device) < self.teacher_forcing  # (B, U): a coin per token
        tokens = torch.full((batch,), self.bos, dtype=targets.dtype, device=targets.device)  # (B,)
        carry, logits, weights = self.initial_carry(memory), [], []
        for t in range(steps):
            step_logits, carry, step_weights = self.step(tokens, carry, memory)  # (B, V)
            logits.append(step_logits)
            weights.append(step_weights)
            with torch.no_grad():
                own = torch.multinomial(torch.softmax(step_logits.float(), -1), 1)[:, 0]  # (B,)
            tokens = torch.where(truth[:, t], targets[:, t], own)
        if self.attention is not None:
            self.attended(torch.stack(weights, 1), targets)  # (B, U, S)
        else:
            self.last_attention = None
        return torch.stack(logits, 1)  # (B, U, V)

    @torch.no_grad()
    def decode(self, x: Tensor, max_len: int, strategy: str = "greedy") -> Decoded:
        """Free-running decoding of sources x (B, S), at most max_len tokens (EOS included)."""
        if max_len < 1:
            raise ValueError(f"decode needs max_len >= 1, got {max_len}")
        if strategy not in DECODERS:
            raise ValueError(f"unknown decoding strategy {strategy!r}; known: {', '.join(DECODERS)}")
        decoded = DECODERS[strategy](self, self.encode(x), max_len)
        self.last_attention = decoded.attention
        return decoded

    def init_state(self, batch: int, device=None):
        return None  # nothing carries between batches: the decoder starts from the encoding

    def recurrent_matrices(self) -> dict[str, Tensor]:
        return {f"{part}.layer{name.removeprefix('weight_hh_l').replace('_reverse', '.reverse')}": weight
                for part, rnn in (("encoder", self.encoder), ("decoder", self.decoder))
                for name, weight in rnn.named_parameters() if name.startswith("weight_hh")}


def greedy(model: Seq2SeqModel, memory: Memory, max_len: int) -> Decoded:
    """Take the most likely token at every step; stop once every row has produced EOS."""
    batch = memory.states.shape[0]
    device = memory.states.device
    tokens = torch.full((batch,), model.bos, dtype=torch.long, device=device)  # (B,)
    carry, done = model.initial_carry(memory), torch.zeros(batch, dtype=torch.bool, device=device)
    ids, weights, logits = [], [], []
    for _ in range(max_len):
        step_logits, carry, step_weights = model.step(tokens, carry, memory)  # (B, V), (B, S)
        tokens = step_logits.argmax(-1).masked_fill(done, PAD)  # finished rows only pad
        ids.append(tokens)
        logits.append(step_logits)
        if step_weights is not None:
            weights.append(step_weights.masked_fill(done[:, None], 0.0))
        done = done | (tokens == model.eos)
        if bool(done.all()):
            break
    attention = torch.stack(weights, 1) if weights else None  # (B, T, S)
    return Decoded(torch.stack(ids, 1), attention, torch.stack(logits, 1))


DECODERS = {"greedy": greedy}  # name -> fn(model, memory, max_len) -> Decoded
