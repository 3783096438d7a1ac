"""Neural Turing machine (Graves, Wayne & Danihelka 2014): a controller with an external memory.

One step t, in this order:
  1. the controller (an LSTM stack or a feedforward stack) reads [x_t, r_{t-1}] (the reads of
     the previous step, all heads concatenated) and emits h_t;
  2. a linear layer turns h_t into each head's parameters, clipped to +-20 before their
     nonlinearities (Collier & Beel 2018: keeps a saturating head from sending NaN gradients):
       key k = tanh, strength beta = softplus, gate g = sigmoid, shift s = softmax over -S..S,
       sharpening gamma = 1 + softplus; write heads also erase e = sigmoid and add a = tanh;
  3. every head addresses the previous memory M_{t-1} (ntm_memory.address); the read heads
     read r_t from M_{t-1}, then the write heads erase and add, giving M_t;
  4. the output y_t = W [h_t, r_t] + b.
Heads read before the writes of the same step, as in Collier & Beel's implementation (the
paper leaves the order open): all heads then address the same memory.

Initial state (Collier & Beel 2018, section 3, compared these schemes):
  memory_init = constant  every slot filled with memory_init_value, 1e-6 by default (their most
                          reliable scheme: about twice as fast to converge as learned or random);
                          memory_init_trained = true makes that start a parameter, as their code does
                          (its init_M is a trainable variable, so their "constant" is learned from 1e-6)
                learned   tanh(a learned (N, M) bias), the bias started near 0 (Glorot-uniform for a
                          dense layer from a constant 1, as theirs);
                random    tanh(N(0, 0.5^2)) drawn once at build from the seeded init: a buffer saved
                          with the checkpoint, so evaluations and probes draw from no RNG
  initial_reads = constant   memory_init_value (what a one-hot head reads from constant memory);
                  learned    tanh(a learned (R, M) bias), as theirs
  initial_weights = first    one-hot on slot 0: a definite start that location-based shifting can
                             walk from (constant memory makes content addressing uniform at first);
                    learned  softmax of a learned (R + W, N) bias, as theirs (starts near uniform)
The learned ones are parameters used in init_state, so they get gradients through the whole sequence.

State carried across chunks (TBPTT), a tuple:
  (memory (B, N, M), reads (B, R, M), read weightings (B, R, N), write weightings (B, W, N),
   *controller) with controller = (h (L, B, H), c (L, B, H)) for an LSTM and () for feedforward.

Visualisation: in eval mode every forward leaves `model.last_addressing` =
  {"read": (B, T, R, N), "write": (B, T, W, N)}, the weightings of each step, detached, on the CPU,
float32 (training skips the copy; it stays None until an evaluation forward).

Speed on the CPU: a Python loop of ~40 small ops a step; B = 32, T = 20, N = 16, M = 8, H = 64 takes
~31 ms forward + backward on one thread, 5-6x a fused LSTM of the same size. With ops this small a
second OpenMP thread only helps on an idle machine: on a busy one, OMP_NUM_THREADS=1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ..options import opt
from .registry import ARCHS
from .base import RecurrentOptions, SequenceModel, State, TaskSpec, input_layer
from .init import init_recurrent
from .ntm_memory import address, read, write

MEMORY_INITS = ("constant", "learned", "random")
HEAD_CLIP = 20.0  # head parameters are clipped to +-HEAD_CLIP before their nonlinearities


@dataclass
class NTMOptions(RecurrentOptions):
    arch: str = opt("ntm", "architecture (`rnnlab list archs`)")
    # `hidden` and `layers` (the common keys) size the controller
    controller: str = opt("lstm", "controller network: lstm (recurrent) or feedforward (tanh layers; "
                          "then the memory is the only state)", choices=["lstm", "feedforward"])
    memory_slots: int = opt(32, "N: memory locations", min=2)
    memory_width: int = opt(16, "M: width of each memory location", min=1)
    read_heads: int = opt(1, "read heads", min=1, max=16)
    write_heads: int = opt(1, "write heads", min=1, max=16)
    shift_range: int = opt(1, "S: a head's location shift is a distribution over -S..S slots", min=0)
    memory_init: str = opt("constant", "initial memory contents (Collier & Beel 2018): constant (memory_init_value "
                           "in every cell), learned (tanh of a learned bias) or random (tanh of N(0, 0.5^2), "
                           "drawn once at build)", choices=list(MEMORY_INITS))
    memory_init_value: float = opt(1e-6, "memory_init = constant: the value of every memory cell (and of the "
                                   "initial reads with initial_reads = constant)")
    memory_init_trained: bool = opt(False, "memory_init = constant: train the starting memory from "
                                    "memory_init_value (a parameter, as Collier & Beel's code, whose constant "
                                    "init_M is a trainable variable) rather than keep it fixed")
    initial_reads: str = opt("constant", "read vectors before the first step: constant (memory_init_value) or "
                             "learned (tanh of a learned bias per head)", choices=["constant", "learned"])
    initial_weights: str = opt("first", "head weightings before the first step: first (one-hot on slot 0) or "
                               "learned (softmax of a learned bias per head)", choices=["first", "learned"])
    forget_bias: float = opt(1.0, "controller = lstm: initial forget-gate bias (1, as the LSTM arch and Collier & "
                             "Beel 2018's controller)")

    def check(self, section: str) -> None:
        if 2 * self.shift_range + 1 > self.memory_slots:
            raise ConfigError(f"{section}.shift_range", self.shift_range,
                              f"2 S + 1 shifts exceed memory_slots = {self.memory_slots} (they would alias)",
                              f"<= {(self.memory_slots - 1) // 2}")
        if self.memory_init_trained and self.memory_init != "constant":
            raise ConfigError(f"{section}.memory_init_trained", self.memory_init_trained,
                              f"only memory_init = constant has a fixed start to train (learned is trained "
                              f"already, random stays drawn)", "false, or memory_init = constant")
        if self.controller == "feedforward" and self.forget_bias != 1.0:
            raise ConfigError(f"{section}.forget_bias", self.forget_bias, "a feedforward controller has no forget gate",
                              "1.0, or controller = lstm")
        if self.controller == "feedforward" and self.init != "default":
            raise ConfigError(f"{section}.init", self.init, "a feedforward controller has no recurrent matrix",
                              "default, or controller = lstm")


@ARCHS.register("ntm", "Neural Turing machine: LSTM or feedforward controller with an addressable memory")
class NTMModel(SequenceModel):
    Options = NTMOptions

    def __init__(self, options: NTMOptions, spec: TaskSpec):
        super().__init__()
        self.options, self.spec = options, spec
        o = options
        self.embed, input_size = input_layer(options, spec)
        read_width = o.read_heads * o.memory_width  # R * M: the reads, concatenated
        widths = [input_size + read_width] + [o.hidden] * o.layers
        if o.controller == "lstm":
            self.controller = nn.ModuleList(nn.LSTMCell(widths[i], o.hidden) for i in range(o.layers))
            for cell in self.controller:
                init_recurrent(cell.weight_hh, 4, o.init, o.init_radius, o.init_gain)
                with torch.no_grad():  # gate blocks (input, forget, cell, output); the two biases add up
                    cell.bias_ih[o.hidden:2 * o.hidden].fill_(o.forget_bias)
                    cell.bias_hh[o.hidden:2 * o.hidden].zero_()
        else:
            self.controller = nn.ModuleList(nn.Linear(widths[i], o.hidden) for i in range(o.layers))
        # One linear layer emits every head's parameters: (key, beta, g, shift, gamma) for the R read
        # heads then the W write heads, then (erase, add) for the write heads
        self.address_size = o.memory_width + 2 * o.shift_range + 4  # P
        heads = o.read_heads + o.write_heads
        self.head_params = nn.Linear(o.hidden, heads * self.address_size + o.write_heads * 2 * o.memory_width)
        self.drop = nn.Dropout(o.dropout)
        self.head = nn.Linear(o.hidden + read_width, spec.output_size)
        self.last_addressing: dict[str, Tensor] | None = None
        self._initial_parameters()

    def _initial_parameters(self) -> None:
        """The learned or random parts of the initial state (see the module doc)."""
        o = self.options
        slots, width, heads = o.memory_slots, o.memory_width, o.read_heads + o.write_heads

        def bias(*shape: int) -> nn.Parameter:  # a dense layer's Glorot-uniform weights from the input 1
            bound = (6.0 / (1 + math.prod(shape))) ** 0.5
            return nn.Parameter(torch.empty(shape).uniform_(-bound, bound))

        if o.memory_init_trained:  # (N, M), used as it is: no tanh, so it starts exactly at the constant
            self.memory_start = nn.Parameter(torch.full((slots, width), o.memory_init_value))
        if o.memory_init == "learned":
            self.memory_bias = bias(slots, width)  # (N, M)
        elif o.memory_init == "random":
            self.register_buffer("random_memory", torch.tanh(0.5 * torch.randn(slots, width)))  # (N, M)
        if o.initial_reads == "learned":
            self.reads_bias = bias(o.read_heads, width)  # (R, M)
        if o.initial_weights == "learned":
            self.weights_bias = bias(heads, slots)  # (R + W, N)

    @property
    def recurrent_controller(self) -> bool:
        return self.options.controller == "lstm"

    def init_state(self, batch: int, device=None) -> State:
        o, dtype = self.options, self.head.weight.dtype
        device = self.head.weight.device if device is None else device
        slots, width, heads = o.memory_slots, o.memory_width, o.read_heads + o.write_heads
        if o.memory_init_trained:
            memory = self.memory_start.to(device, dtype).expand(batch, slots, width)  # (B, N, M)
        elif o.memory_init == "constant":
            memory = torch.full((batch, slots, width), o.memory_init_value, device=device, dtype=dtype)
        else:
            start = torch.tanh(self.memory_bias) if o.memory_init == "learned" else self.random_memory
            memory = start.to(device, dtype).expand(batch, slots, width)  # (B, N, M); write() makes a new tensor
        if o.initial_reads == "learned":
            reads = torch.tanh(self.reads_bias).to(device, dtype).expand(batch, o.read_heads, width)  # (B, R, M)
        else:
            reads = torch.full((batch, o.read_heads, width), o.memory_init_value, device=device, dtype=dtype)
        if o.initial_weights == "learned":
            weights = torch.softmax(self.weights_bias, -1).to(device, dtype).expand(batch, heads, slots)
        else:
            weights = torch.zeros(batch, heads, slots, device=device, dtype=dtype)
            weights[..., 0] = 1.0  # (B, R + W, N): one-hot on slot 0
        state = (memory, reads, weights[:, :o.read_heads], weights[:, o.read_heads:])
        if self.recurrent_controller:
            zeros = torch.zeros(o.layers, batch, o.hidden, device=device, dtype=dtype)  # (L, B, H)
            state += (zeros, zeros.clone())
        return state

    def recurrent_matrices(self) -> dict[str, Tensor]:
        if not self.recurrent_controller:
            return {}
        return {f"layer{i}": cell.weight_hh for i, cell in enumerate(self.controller)}

    def heads(self, h: Tensor) -> tuple[list[Tensor], Tensor, Tensor]:
        """Controller output (B, H) -> ([key, beta, g, shift, gamma] of all R + W heads, erase, add).

        The addressing parameters are each (B, R + W, .) (read heads first); erase and add (B, W, M).
        """
        o = self.options
        raw = self.head_params(h).clamp(-HEAD_CLIP, HEAD_CLIP)  # (B, (R+W) P + 2 W M)
        split = (o.read_heads + o.write_heads) * self.address_size
        addressing = raw[:, :split].view(h.shape[0], -1, self.address_size)  # (B, R+W, P)
        key, beta, gate, shift, gamma = addressing.split([o.memory_width, 1, 1, 2 * o.shift_range + 1, 1], dim=-1)
        erase, add = raw[:, split:].view(h.shape[0], o.write_heads, 2 * o.memory_width).chunk(2, dim=-1)
        params = [torch.tanh(key), F.softplus(beta[..., 0]), torch.sigmoid(gate[..., 0]), torch.softmax(shift, -1),
                  1.0 + F.softplus(gamma[..., 0])]
        return params, torch.sigmoid(erase), torch.tanh(add)  # erase e in (0, 1), add a in (-1, 1)

    def control(self, inputs: Tensor, hs: list[Tensor], cs: list[Tensor]) -> Tensor:
        """One controller step on (B, I + R*M); updates the LSTM states hs, cs (lists of (B, H)) in place."""
        for layer, module in enumerate(self.controller):
            if layer > 0:
                inputs = self.drop(inputs)
            if self.recurrent_controller:
                hs[layer], cs[layer] = module(inputs, (hs[layer], cs[layer]))
                inputs = hs[layer]
            else:
                inputs = torch.tanh(module(inputs))
        return inputs  # (B, H)

    def forward(self, x: Tensor, state: State | None = None):
        o = self.options
        inputs = self.drop(self.embed(x) if self.embed is not None else x)  # (B, T, E)
        if state is None:
            state = self.init_state(inputs.shape[0], inputs.device)
        memory, reads, read_w, write_w, *controller = state  # see the module doc for shapes
        hs, cs = (list(controller[0].unbind(0)), list(controller[1].unbind(0))) if controller else ([], [])
        weights = torch.cat([read_w, write_w], dim=1)  # (B, R+W, N): read heads first
        outputs, trace = [], []
        for x_t in inputs.unbind(1):  # (B, E); unbind, not x[:, t]: cheaper backward
            h = self.control(torch.cat([x_t, reads.flatten(1)], dim=1), hs, cs)  # (B, H)
            params, erase, add = self.heads(h)
            # all heads address M_{t-1} (reads come before writes), so one call serves R + W heads
            weights = address(memory, weights, *params)  # (B, R+W, N)
            reads = read(memory, weights[:, :o.read_heads])  # (B, R, M), from M_{t-1}
            memory = write(memory, weights[:, o.read_heads:], erase, add)  # (B, N, M): M_t
            outputs.append(torch.cat([h, reads.flatten(1)], dim=1))  # (B, H + R*M)
            trace.append(weights)
        if not self.training:
            steps = torch.stack(trace, 1).detach().float().cpu()  # (B, T, R+W, N)
            self.last_addressing = {"read": steps[:, :, :o.read_heads], "write": steps[:, :, o.read_heads:]}
        y = self.head(self.drop(torch.stack(outputs, 1)))  # (B, T, O)
        new_state = (memory, reads, weights[:, :o.read_heads], weights[:, o.read_heads:])
        if controller:
            new_state += (torch.stack(hs), torch.stack(cs))  # (L, B, H) each
        return y, new_state
