"""Jordan network (Jordan 1986): the recurrence runs through the output, not the hidden layer.

    s_t = mu s_{t-1} + o_{t-1}                 state units: a decaying sum of past outputs (B, O)
    h_t = f(W x_t + U s_t + b)                 then `layers - 1` more layers f(W_l h + b_l), no recurrence
    y_t = V h_t + c                            the output (logits or values), (B, O)

o_{t-1} is what is fed back: the previous *target* under teacher forcing, or
the model's own previous output (softmax of the logits for classes, the value
itself for regression). Teacher forcing makes every s_t known in advance, so
training runs all steps at once (no time loop at all); feeding back the
model's own output needs the loop, which is TorchScript-compiled.

Evaluation always feeds back the model's own outputs (free running): that is
how the model is used, and the gap to the teacher-forced training loss is the
exposure bias.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ..options import opt
from .registry import ARCHS
from .base import RecurrentOptions, SequenceModel, State, TaskSpec, input_layer
from .cells import ACTIVATION_CODES, activate


@dataclass
class JordanOptions(RecurrentOptions):
    arch: str = opt("jordan", "architecture (`rnnlab list archs`)")
    layers: int = opt(1, "hidden layers between input and output (only the output is recurrent)", min=1, max=8)
    activation: str = opt("tanh", "activation f of the hidden layers", choices=list(ACTIVATION_CODES))
    feedback: str = opt("target", "what training feeds back: target (teacher forcing) or output (the model's "
                        "own); evaluation always feeds back the model's own outputs", choices=["target", "output"])
    decay: float = opt(0.0, "mu: state units keep mu of their previous value (0: only the last output)",
                       min=0, max=0.99)


def jordan_loop(gi: Tensor, s: Tensor, fed: Tensor, weight_fb: Tensor, layers: List[Tensor], head_w: Tensor,
                head_b: Tensor, decay: float, act: int, classes: bool, teacher: Tensor,
                truth: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """The time loop: gi (B, T, H) input half of layer 0; s, fed (B, O): state units, last output fed.

    truth (B, T) bool: after step t feed teacher[:, t] (B, O) where truth[:, t], else the model's own
    output (scheduled sampling); an empty `truth` means always the own output (free running).
    """
    outputs: List[Tensor] = []
    mixing = truth.numel() > 0
    t = 0
    for gi_t in gi.unbind(1):
        s = decay * s + fed  # (B, O)
        h = activate(gi_t + F.linear(s, weight_fb), act)  # (B, H)
        for k in range(len(layers) // 2):
            h = activate(F.linear(h, layers[2 * k], layers[2 * k + 1]), act)
        y = F.linear(h, head_w, head_b)  # (B, O)
        fed = torch.softmax(y, -1) if classes else y
        if mixing:
            fed = torch.where(truth[:, t, None], teacher[:, t], fed)
        outputs.append(y)
        t += 1
    return torch.stack(outputs, 1), s, fed  # (B, T, O)


_SCRIPTED: list = []


def scripted_loop():
    if not _SCRIPTED:
        try:
            _SCRIPTED.append(torch.jit.script(jordan_loop))
        except Exception:  # noqa: BLE001 - any scripting failure: the same loop, eagerly
            _SCRIPTED.append(jordan_loop)
    return _SCRIPTED[0]


@ARCHS.register("jordan", "Jordan network: the previous output (or target, teacher forcing) feeds the hidden layer")
class JordanModel(SequenceModel):
    Options = JordanOptions
    takes_targets = True
    teacher_forcing = 1.0  # scheduled sampling: the probability of feeding the target (set by the trainer)
    eval_teacher_forced = False  # the trainer's exposure-bias metric: evaluate once with the targets fed

    def __init__(self, options: JordanOptions, spec: TaskSpec):
        super().__init__()
        self.options, self.spec = options, spec
        self.classes = spec.vocab_size is not None  # token tasks predict classes; feature tasks predict values
        self.embed, input_size = input_layer(options, spec)
        self.input = nn.Linear(input_size, options.hidden)  # W, b
        self.feedback = nn.Linear(spec.output_size, options.hidden, bias=False)  # U: state units -> hidden
        self.hidden_layers = nn.ModuleList(nn.Linear(options.hidden, options.hidden) for _ in range(options.layers - 1))
        self.drop = nn.Dropout(options.dropout)
        self.head = nn.Linear(options.hidden, spec.output_size)  # V, c
        self.act = ACTIVATION_CODES[options.activation]
        if options.init != "default":
            raise ConfigError("model.init", options.init, "a Jordan net has no square recurrent matrix to "
                              "initialise (its loop runs through the output)", "default")

    def init_state(self, batch: int, device=None) -> State:
        zeros = torch.zeros(batch, self.spec.output_size, device=device, dtype=self.head.weight.dtype)  # (B, O)
        return (zeros, zeros.clone())  # (state units s, last output fed back)

    def fed_targets(self, targets: Tensor) -> Tensor:
        """What teacher forcing feeds back: one-hot classes (B, T, O) or the values (B, T, O)."""
        if self.classes:
            if targets.dim() != 2:
                raise ValueError("Jordan teacher forcing needs a target at every step; this task has one per "
                                 "sequence: use model.feedback = \"output\"")
            return F.one_hot(targets.clamp(min=0), self.spec.output_size).to(self.head.weight.dtype)
        return (targets if targets.dim() == 3 else targets[..., None]).to(self.head.weight.dtype)

    def forward(self, x: Tensor, state: State | None = None, targets: Tensor | None = None):
        inputs = self.drop(self.embed(x) if self.embed is not None else x)  # (B, T, E)
        s, fed = state if state is not None else self.init_state(inputs.shape[0], inputs.device)
        gi = self.input(inputs)  # (B, T, H): the input half of every step at once
        teacher = truth = gi.new_zeros(0)  # free running unless training with targets
        forced = self.training and self.options.feedback == "target" or self.eval_teacher_forced
        if forced and targets is not None:
            teacher = self.fed_targets(targets)
            if self.teacher_forcing >= 1.0 or not self.training:
                return self.teacher_forced(gi, s, fed, teacher)
            truth = torch.rand(targets.shape[:2], device=gi.device) < self.teacher_forcing  # (B, T)
        layers = [t for layer in self.hidden_layers for t in (layer.weight, layer.bias)]
        # No graph optimisation: as in custom.py, TorchScript's autodiff graphs were slower on this loop
        with torch.jit.optimized_execution(False):
            y, s, fed = scripted_loop()(gi, s, fed, self.feedback.weight, layers, self.head.weight, self.head.bias,
                                        float(self.options.decay), self.act, self.classes, teacher, truth)
        return y, (s, fed)  # (B, T, O)

    def teacher_forced(self, gi: Tensor, s: Tensor, fed: Tensor, teacher: Tensor):
        # o_{t-1}: the carried last output at t = 0, then the previous targets
        previous = torch.cat([fed[:, None], teacher[:, :-1]], 1)  # (B, T, O)
        if self.options.decay == 0:
            units = previous  # s_t = o_{t-1}
        else:  # s_t = mu s_{t-1} + o_{t-1}: elementwise, cheap next to the layers
            steps = []
            for o_t in previous.unbind(1):
                s = self.options.decay * s + o_t
                steps.append(s)
            units = torch.stack(steps, 1)  # (B, T, O)
        h = activate(gi + self.feedback(units), self.act)  # (B, T, H)
        for layer in self.hidden_layers:
            h = activate(layer(h), self.act)
        y = self.head(h)  # (B, T, O); dropout only on the inputs, as in the free-running loop
        return y, (units[:, -1], teacher[:, -1])

    def recurrent_matrices(self) -> dict[str, Tensor]:
        """The loop hidden -> output -> hidden, U V (H, H), linear part only; exact for one hidden layer."""
        return {"loop": self.feedback.weight @ self.head.weight}
