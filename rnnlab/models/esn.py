"""Echo state network: fixed random reservoirs and a trained linear readout (Jaeger 2001).

    h^l_t = (1 - a^l) * h^l_{t-1} + a^l * f(W^l_in u^l_t + W^l h^l_{t-1} + b^l)     a^l (H,): leak per unit
    u^l_t = [x_t, y_{t-1}]  (a reservoir that reads the input; y_{t-1} only with feedback_scaling > 0)
          = h^{l-1}_t       (layout = "deep", l > 0: Gallicchio & Micheli 2017, scaled by inter_scaling)
    y_t   = head([h^0_t, ..., h^{L-1}_t (, x_t with input_to_readout)])

The reservoirs are drawn in models/reservoir.py (distribution, connectivity, radius, leaks). With
layout = "parallel" every reservoir reads the input; with "deep", reservoir l reads reservoir l - 1's
states; either way the readout sees all of them. Tokens enter one-hot (a fixed identity embedding:
W_in's columns already are a random embedding). Only `head` learns: in closed form with
train.algorithm = "ridge" (rnnlab/train/ridge.py), or by gradient descent with "bptt".

Output feedback (ReservoirPy's Wfb, scaled by feedback_scaling): the reservoirs that read x_t also read
the previous output y_{t-1} (y_{-1} = 0 from a fresh start, else the one the state carries). Training
is teacher-forced, y_{t-1} being the previous *target*: all steps are known in advance and run in the
fused loop, and ridge fits the readout on those teacher-forced features. Evaluation, the probes and
free-running prediction feed back the readout's own previous output: that is a Python loop over time
(one small matmul per reservoir and step: 1.4x the fused loop's time for 32 windows of 100 steps, 300
units, one thread). Feedback needs a real-valued target at every step (series regression): a
classification task is refused. With a one-step-ahead series (mackey_glass, sines) the previous target
*is* the current input, so teacher-forced feedback only adds a second copy of x_t, while evaluation
feeds the readout's own errors back: on Mackey-Glass that closed loop diverges at feedback_scaling 0.5
unless `feedback_noise` adds gaussian noise to the fed-back targets in training (Jaeger 2002), so the
readout learns to live with imperfect feedback (docs/reservoir.md has the numbers).

The first `washout` steps of a fresh sequence (state None), while the reservoir still forgets its zero
start, are left out of the fit: ridge skips them, and in training their outputs carry no gradient.
How evaluation treats those steps is the task's: a series scored continuously (task.protocol =
"continuous", the default) runs a warm-up it does not score, so the transient is never judged there;
tasks whose sequences each start from a zero state (windows, classification) still judge every
position they judge, and a washout then leaves their first steps to a readout never fitted on them.

Each reservoir keeps the custom cells' layout (models/custom.py: frozen `weight_ih`, `weight_hh`,
`bias` in `cells[l]`, the leaky step of cells.py run by the same TorchScript loop) and the probe
interface (`step`, `zero_state`, `recurrent_blocks`), so the spectrum probe shows every W's radius;
`unrolled_trace` gives the probes the same computation step by step (readout over all reservoirs,
the input, the fed-back output), and says what each reservoir's step read for the Jacobian probe
(which holds the fed-back output fixed: the Jacobian of the reservoir's own recurrence).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..options import opt
from .registry import ARCHS
from .base import RecurrentOptions, SequenceModel, State, TaskSpec
from .cells import ACTIVATION_CODES
from .custom import loops_for
from .reservoir import DISTRIBUTIONS, ReservoirCell, frozen
from .unrolled import Trace


def from_sparsity(value, key: str) -> float:
    """The renamed key `sparsity` (share of W's zeros) of old run directories, as rc_connectivity."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ConfigError(key, value, "the old name of model.rc_connectivity = 1 - sparsity", "a number in [0, 1)")
    return round(1.0 - value, 12)  # 1 - 0.9 is 0.09999999999999998 in binary: the config shows 0.1


@dataclass
class ESNOptions(RecurrentOptions):
    arch: str = opt("esn", "architecture (`rnnlab list archs`)")
    hidden: int = opt(256, "units per reservoir", min=1)
    layers: int = opt(1, "reservoirs (> 1: see layout)", min=1, max=16)
    layout: str = opt("deep", "several reservoirs: deep (reservoir l reads reservoir l-1's states) or parallel "
                      "(each reads the input); the readout sees all of them", choices=["deep", "parallel"])
    embed: int = opt(64, "unused: tokens enter the reservoir one-hot", min=1)
    init: str = opt("default", "must stay default: the reservoir is drawn by spectral_radius and rc_connectivity",
                    choices=["default", "orthogonal", "identity", "radius", "gain"])
    spectral_radius: float = opt(0.9, "each W is rescaled to exactly this spectral radius (eigenvalues at build "
                                 "time)", above=0)
    rc_connectivity: float = opt(0.1, "share of W's entries that are non-zero (exactly round(c H^2) of them; "
                                 "the old key sparsity = 1 - rc_connectivity is still read)", above=0, max=1)
    input_connectivity: float = opt(1.0, "share of W_in's (and W_fb's) entries that are non-zero", above=0, max=1)
    weights: str = opt("uniform", "distribution of W's entries before the rescaling to spectral_radius: uniform "
                       "in [-1, 1], standard normal, bernoulli +-1", choices=DISTRIBUTIONS)
    input_weights: str = opt("uniform", "distribution of W_in's (and W_fb's) entries, times input_scaling: "
                             "uniform in [-s, s], normal with std s, bernoulli +-s", choices=DISTRIBUTIONS)
    input_scaling: float = opt(1.0, "scale s of W_in (the input's weights)", above=0)
    inter_scaling: float = opt(1.0, "layout = deep: scale of the weights from reservoir l-1 to reservoir l "
                               "(drawn like W_in: input_weights, input_connectivity)", above=0)
    bias_scaling: float = opt(0.2, "b entries uniform in [-s, s] (0: none; a bias gives tanh even-order terms)", min=0)
    leak: float = opt(1.0, "leak rate a: h_t = (1 - a) h_{t-1} + a f(W_in u_t + W h_{t-1} + b)", above=0, max=1)
    leak_spread: float = opt(0.0, "per-unit leaks: each unit's a uniform in [leak - spread, leak + spread] "
                             "(0: every unit has leak)", min=0)
    activation: str = opt("tanh", "activation f of the reservoir", choices=list(ACTIVATION_CODES))
    feedback_scaling: float = opt(0.0, "output feedback (ReservoirPy's Wfb): y_{t-1} enters the reservoirs that "
                                  "read the input through W_fb of this scale; training feeds the previous target "
                                  "(teacher forcing), evaluation the readout's own output (0: off)", min=0)
    feedback_noise: float = opt(0.0, "std of gaussian noise added to the fed-back target in training (Jaeger "
                                "2002: it makes the readout robust to its own errors, which evaluation feeds "
                                "back; ReservoirPy's noise_fb)", min=0)
    input_to_readout: bool = opt(False, "the readout also sees the input x_t: y_t = head([h_t, x_t])")
    washout: int = opt(0, "first steps of a fresh sequence left out of the readout's fit (ridge) and gradient "
                       "(bptt); evaluation judges them unless the task runs a warm-up (series: task.warmup)", min=0)

    # old key -> (new key, conversion, what the note says): selection.rename_old_keys reads old run directories
    RENAMED = {"sparsity": ("rc_connectivity", from_sparsity, "rc_connectivity = 1 - sparsity")}

    def check(self, section: str) -> None:
        if self.dropout:
            raise ConfigError(f"{section}.dropout", self.dropout, "the reservoir is fixed and the readout linear: "
                              "regularise with train.ridge_alpha (ridge) or train.weight_decay (bptt)", "0")
        if self.init != "default":
            raise ConfigError(f"{section}.init", self.init, "the esn draws its own reservoir",
                              "default (set model.spectral_radius and model.rc_connectivity instead)")
        if self.leak_spread and not (0 < self.leak - self.leak_spread and self.leak + self.leak_spread <= 1):
            allowed = f"a number < {self.leak:g}" if self.leak <= 0.5 else f"a number <= {1 - self.leak:.6g}"
            raise ConfigError(f"{section}.leak_spread", self.leak_spread, f"leak {self.leak:g} +- spread leaves "
                              "(0, 1]", f"{allowed} (or move model.leak)")


@ARCHS.register("esn", "Echo state network: fixed random leaky reservoirs (deep or parallel, tokens one-hot, "
                "optional output feedback), linear readout fitted by ridge or bptt")
class ESNModel(SequenceModel):
    Options = ESNOptions

    def __init__(self, options: ESNOptions, spec: TaskSpec):
        super().__init__()
        self.options, self.spec, self.washout = options, spec, options.washout
        if spec.vocab_size is not None:  # one-hot: row k of the identity is token k
            self.embed = nn.Embedding(spec.vocab_size, spec.vocab_size)
            self.embed.weight = frozen(torch.eye(spec.vocab_size))
            input_size = spec.vocab_size
        else:
            self.embed, input_size = None, spec.input_size
        self.feedback = spec.output_size if options.feedback_scaling else 0  # width of y_{t-1} fed back
        self.takes_targets = bool(self.feedback)  # the trainer then passes y: teacher forcing (models/base.py)
        self.cells = nn.ModuleList(
            ReservoirCell(input_size, options, options.input_scaling, self.feedback) if self.reads_input(layer)
            else ReservoirCell(options.hidden, options, options.inter_scaling)
            for layer in range(options.layers))
        features = options.layers * options.hidden + (input_size if options.input_to_readout else 0)
        self.head = nn.Linear(features, spec.output_size)
        self.compiled = True  # False forces the eager loop (tests compare the two)

    def reads_input(self, layer: int) -> bool:
        return layer == 0 or self.options.layout == "parallel"

    def check_task(self, task, name: str) -> None:
        """Feedback needs a real-valued target at every step (called before a run exists)."""
        if not self.feedback:
            return
        _, y, _ = task.train_batch(1, torch.Generator().manual_seed(0))  # a private generator
        if not y.is_floating_point() or y.dim() < 2 or (y.dim() == 2) != (self.spec.output_size == 1):
            raise ConfigError("model.feedback_scaling", self.options.feedback_scaling, f"feeds the previous target "
                              f"back, and task {name!r} has class labels or one target per sequence",
                              "0, or a series task (mackey_glass, narma10, sines)")

    # ---- the fused path: every input known in advance (no feedback, or teacher-forced feedback)

    def reservoirs(self, inputs: Tensor, state: Tensor, previous: Tensor | None) -> tuple[list[Tensor], Tensor]:
        """Each reservoir's states [(B, T, H)] and the final states (L, B, H); previous (B, T, O): y_{t-1}."""
        reads = inputs if previous is None else torch.cat([inputs, previous], -1)  # (B, T, I [+ O])
        # Nothing before the head learns: without an input or state that asks for a gradient, the
        # loop runs without a graph (the readout's gradient needs only the states' values).
        needs_graph = torch.is_grad_enabled() and (reads.requires_grad or state.requires_grad)
        states, finals = [], []
        with torch.set_grad_enabled(needs_graph), torch.jit.optimized_execution(False):
            for layer, cell in enumerate(self.cells):
                eager, scripted = loops_for(cell)
                loop = scripted if self.compiled and scripted is not None else eager
                gi = cell.project_inputs(reads if self.reads_input(layer) else states[-1])  # (B, T, H) in one matmul
                hidden, final = loop(gi, [state[layer]], cell.step_params(), cell.knobs)  # (B, T, H)
                states.append(hidden)
                finals.append(final[0])
        return states, torch.stack(finals)  # [(B, T, H)], (L, B, H)

    def features(self, states: list[Tensor], inputs: Tensor) -> Tensor:
        """What the readout reads: (..., L H [+ I])."""
        return torch.cat(states + ([inputs] if self.options.input_to_readout else []), -1)

    def target_values(self, targets: Tensor, like: Tensor) -> Tensor:
        """The targets as the values fed back, (B, T, O) in the model's dtype."""
        return (targets if targets.dim() == 3 else targets[..., None]).to(like.dtype)

    def fed_targets(self, targets: Tensor, carried: Tensor) -> Tensor:
        """y_{t-1} under teacher forcing (B, T, O): the carried output at t = 0, then the previous targets,
        plus feedback_noise (from torch's global generator, which checkpoints save and resume restores)."""
        previous = torch.cat([carried[:, None], self.target_values(targets, carried)[:, :-1]], 1)
        if self.options.feedback_noise:
            previous = previous + self.options.feedback_noise * torch.randn_like(previous)
        return previous

    # ---- the step-by-step path: the readout's own output fed back (and the probes' trace)

    def unroll(self, inputs: Tensor, hs: list[Tensor], fed: Tensor | None):
        """One step at a time: outputs (B, T, O), states [layer][t] (B, H), what each layer read [layer][t],
        the last output fed. hs: each reservoir's state (B, H); fed (B, O) or None (no feedback)."""
        outputs, states, reads = [], [[] for _ in self.cells], [[] for _ in self.cells]
        for x_t in inputs.unbind(1):  # (B, I)
            u = x_t if fed is None else torch.cat([x_t, fed], -1)  # (B, I [+ O])
            for layer, cell in enumerate(self.cells):
                read = u if self.reads_input(layer) else hs[layer - 1]
                hs[layer], _, _ = cell.step(read, hs[layer])  # (B, H)
                states[layer].append(hs[layer])
                reads[layer].append(read)
            y = self.head(self.features(hs, x_t))  # (B, O)
            fed = y if fed is not None else None
            outputs.append(y)
        return torch.stack(outputs, 1), states, reads, fed

    def unrolled_trace(self, x: Tensor) -> Trace:
        """The probes' pass (models/unrolled.py): from a zero state, in evaluation's semantics, every h_t its own
        tensor in the graph (the gradient-flow probe reads the total dL/dh_t, through the feedback too)."""
        inputs = self.embed(x) if self.embed is not None else x  # (B, T, I)
        hs = [cell.zero_state(inputs.shape[0], inputs) for cell in self.cells]
        fed = inputs.new_zeros(inputs.shape[0], self.feedback) if self.feedback else None
        output, states, reads, _ = self.unroll(inputs, hs, fed)
        return Trace(output=output, inputs=inputs, hidden=states, cells=[[] for _ in self.cells],
                     gates=[{} for _ in self.cells], layer_inputs=[torch.stack(r, 1) for r in reads])

    # ---- the interface

    def forward(self, x: Tensor, state: State | None = None, targets: Tensor | None = None):
        fresh = state is None
        inputs = self.embed(x) if self.embed is not None else x  # (B, T, I)
        if state is None:
            state = self.init_state(inputs.shape[0], inputs.device)
        hs, fed = state if self.feedback else (state, None)  # (L, B, H), (B, O)
        if self.feedback and not (self.training and targets is not None):  # its own outputs fed back
            y, states, _, fed = self.unroll(inputs, list(hs.unbind(0)), fed)
            final = torch.stack([layer[-1] for layer in states])  # (L, B, H)
        else:
            previous = self.fed_targets(targets, fed) if self.feedback else None  # (B, T, O)
            states, final = self.reservoirs(inputs, hs, previous)
            y = self.head(self.features(states, inputs))  # (B, T, O)
            if self.feedback:  # the next window starts from this one's last target
                fed = self.target_values(targets, fed)[:, -1]  # (B, O)
        w = min(self.washout, y.shape[1])
        if fresh and w and self.training and y.requires_grad:
            y = torch.cat([y[:, :w].detach(), y[:, w:]], dim=1)  # washout steps still predict, but teach nothing
        return y, ((final, fed) if self.feedback else final)

    def readout_features(self, x: Tensor, targets: Tensor | None = None) -> Tensor:
        """What the linear readout reads from a fresh start, teacher-forced with feedback: (B, T, F), for ridge."""
        with torch.no_grad():
            inputs = self.embed(x) if self.embed is not None else x  # (B, T, I)
            state = self.init_state(inputs.shape[0], inputs.device)
            hs, fed = state if self.feedback else (state, None)
            if self.feedback and targets is None:
                raise ValueError("an ESN with output feedback fits its readout teacher-forced: pass the targets")
            previous = self.fed_targets(targets, fed) if self.feedback else None
            return self.features(self.reservoirs(inputs, hs, previous)[0], inputs)

    def init_state(self, batch: int, device=None) -> State:
        dtype = self.head.weight.dtype
        hs = torch.zeros(self.options.layers, batch, self.options.hidden, device=device, dtype=dtype)  # (L, B, H)
        if self.feedback:
            return hs, torch.zeros(batch, self.feedback, device=device, dtype=dtype)  # and y_{t-1} (B, O)
        return hs

    def recurrent_matrices(self) -> dict[str, Tensor]:
        return {f"layer{layer}": cell.weight_hh for layer, cell in enumerate(self.cells)}

    def recurrent_blocks(self) -> dict[str, Tensor]:
        return self.recurrent_matrices()
