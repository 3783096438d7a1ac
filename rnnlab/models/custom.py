"""Custom recurrent cells as architectures: the real models, not analysis copies.

CustomRecurrentModel has the shape of the fused models (input layer, a stack
of `layers` cells with dropout between, a linear read-out at every step) with
cells from cells.py. Speed, on the CPU: the input projections of all time
steps are one matmul per layer, (B, T, I) -> (B, T, G*H), before the loop,
the loop walks `gi.unbind(1)` (T slices gi[:, t] would each zero-fill a
(B, T, G*H) gradient in backward: quadratic in T), and the loop itself is a
TorchScript function, run without graph optimisation (see run_loop). When
scripting fails the same loop runs eagerly. In training, a cell that declares
its hand-derived backward (cells.py: every cell but indrnn) runs its
whole sequence as one autograd node (sequence_grad.py): the loop without a
graph, then time in reverse with the recurrent weight's gradient as one
matmul: lstm_cell went from ~0.7 to ~0.9 of the fused LSTM's training speed,
lstm_peephole from ~0.6 to 0.8-0.9 (issue 17). model.hand_backward = False runs autograd's loop instead
(the reference, and the way to a double backward). torch.compile works here (gcc)
and ran the loop ~20% faster than eager, but took 20-85 s to compile per
input shape (train windows, eval windows, sampling at T = 1): more than a
two-minute run saves. benchmarks/custom_cells_speed.py measures it all.
Every row of cells.CELLS gets its arch here (model_for): a new cell needs no line in this file.
"""

from __future__ import annotations

import warnings
from typing import List, Tuple

import torch
from torch import Tensor, nn

from .registry import ARCHS
from .base import RecurrentOptions, SequenceModel, State, TaskSpec, input_layer
from .cell_base import Cell, Knobs
from .cells import CELLS, LSTMCell
from .sequence_grad import run_sequence


def make_loop(recurrent, update):
    """The time loop around one cell's two halves, TorchScript-compatible (both resolve from the closure)."""

    def loop(gi: Tensor, state: List[Tensor], params: List[Tensor], knobs: Knobs) -> Tuple[Tensor, List[Tensor]]:
        outputs: List[Tensor] = []
        # unbind, not gi[:, t]: the backward of T slices would zero-fill a (B, T, G*H) tensor per step
        for gi_t in gi.unbind(1):
            h, state, _ = update(gi_t, recurrent(state[0], params), state, params, knobs)
            outputs.append(h)
        return torch.stack(outputs, 1), state  # (B, T, H)

    return loop


_LOOPS: dict = {}  # (recurrent, update) -> (eager loop, scripted loop or None)


def loops(recurrent, update):
    """(eager, scripted or None) time loops around one recurrent half and update; scripted on first use."""
    key = (recurrent, update)
    if key not in _LOOPS:
        eager = make_loop(*key)
        try:
            scripted = torch.jit.script(make_loop(*key))
        except Exception as error:  # noqa: BLE001 - any scripting failure means: run eagerly
            warnings.warn(f"TorchScript unavailable for {update.__qualname__}, running eagerly: {error}")
            scripted = None
        _LOOPS[key] = (eager, scripted)
    return _LOOPS[key]


def loops_for(cell):
    """The loops of one cell (anything with `recurrent` and `update`: cells, reservoirs); both take
    (gi (B, T, G*H), state, cell.step_params(), cell.knobs)."""
    return loops(cell.recurrent, cell.update)


def run_loop(cell, gi: Tensor, state: List[Tensor], compiled: bool = True,
             hand_backward: bool = True) -> Tuple[Tensor, List[Tensor]]:
    """One cell over time from its input half gi (B, T, G*H): outputs (B, T, H) and the final state.

    With a gradient to compute, a cell with a HandBackward runs as one sequence_grad.CellSequence
    (hand_backward=False: autograd through the loop, the reference it is tested against). Under
    autocast it does not: the loop's mixed dtypes (a bf16 h, a float32 c) are autograd's to track."""
    if (hand_backward and cell.hand_backward is not None and torch.is_grad_enabled()
            and not torch.is_autocast_enabled(gi.device.type)):
        return run_sequence(cell, gi, state, compiled)
    eager, scripted = loops_for(cell)
    loop = scripted if compiled and scripted is not None else eager
    # No graph optimisation: TorchScript's own autodiff (DifferentiableGraph) was slower here and
    # mis-shaped gradients once one loop had run with several requires_grad patterns.
    with torch.jit.optimized_execution(False):
        return loop(gi, state, cell.step_params(), cell.knobs)


def compile_path(cell_class: type[Cell] = LSTMCell) -> str:
    """'torchscript' or 'eager': what the time loop of a cell class (default: LSTM) runs on."""
    return "torchscript" if loops(cell_class.recurrent, cell_class.update)[1] is not None else "eager"


class CustomRecurrentModel(SequenceModel):
    cell_class: type[Cell]

    def __init__(self, options: RecurrentOptions, spec: TaskSpec):
        super().__init__()
        self.options, self.spec = options, spec
        self.embed, input_size = input_layer(options, spec)
        self.cells = nn.ModuleList(  # options: the arch's own, cell_class.Options
            self.cell_class(input_size if layer == 0 else options.hidden, options.hidden, options)
            for layer in range(options.layers)
        )
        self.drop = nn.Dropout(options.dropout)
        self.head = nn.Linear(options.hidden, spec.output_size)
        for cell in self.cells:  # the recurrent-init keys every arch shares
            cell.init_recurrent(options)
        self.compiled = True  # False forces the eager loop (tests compare the two)
        self.hand_backward = True  # False: autograd through the loop, for every cell (tests compare the two)

    @property
    def paired(self) -> bool:
        return self.cell_class.paired

    def forward(self, x: Tensor, state: State | None = None):
        inputs = self.drop(self.embed(x) if self.embed is not None else x)  # (B, T, E)
        if state is None:
            state = self.init_state(inputs.shape[0], inputs.device)
        parts = state if self.paired else (state,)  # each (L, B, H)
        finals = []
        for layer, cell in enumerate(self.cells):
            gi = cell.project_inputs(inputs)  # (B, T, G*H): every step's input half in one matmul
            hidden, final = run_loop(cell, gi, [p[layer] for p in parts], self.compiled,
                                     self.hand_backward)  # (B, T, H)
            finals.append(final)
            inputs = self.drop(hidden)  # dropout between layers and before the head
        new = tuple(torch.stack([f[k] for f in finals]) for k in range(len(parts)))  # each (L, B, H)
        return self.head(inputs), (new if self.paired else new[0])  # (B, T, O)

    def init_state(self, batch: int, device=None) -> State:
        shape = (self.options.layers, batch, self.options.hidden)  # (L, B, H)
        zeros = torch.zeros(shape, device=device, dtype=self.head.weight.dtype)
        return (zeros, zeros.clone()) if self.paired else zeros

    def recurrent_matrices(self) -> dict[str, Tensor]:
        return {f"layer{i}": cell.recurrent_matrix() for i, cell in enumerate(self.cells)}

    def recurrent_blocks(self) -> dict[str, Tensor]:
        """Square (H, H) blocks per layer and gate, as the spectra probe names them."""
        return {
            f"layer{i}" + (f".{gate}" if gate else ""): block
            for i, cell in enumerate(self.cells) for gate, block in cell.recurrent_blocks().items()
        }


def model_for(cell_class: type[Cell]) -> type[CustomRecurrentModel]:
    """The arch of one row of CELLS: its Options, its summary, a stack of its cells."""
    model = type(cell_class.__name__ + "Model", (CustomRecurrentModel,), {"Options": cell_class.Options, "cell_class": cell_class,
                                                 "__module__": __name__})
    return ARCHS.register(cell_class.Options.arch, cell_class.summary)(model)


MODELS = {name: model_for(cell) for name, cell in CELLS.items()}  # cell name -> its arch's model class
