"""Which training algorithm a run uses, and whether it can train this model on this task.

Every check raises a one-line ConfigError before a run directory exists.
ALGORITHMS pairs each train.algorithm with how its state is built and the kind
of step (steps.py) that trains with it: the Trainer chooses once, here, and
never asks the name again (the checks below read it to know which apply):
  bptt, tbptt    Backprop        the loss backpropagated, clipped, an optimizer step
  rtrl           GivenGradients  the algorithm sets .grad itself; clipped and stepped as for BPTT
  ekf            Filter          the algorithm changes the weights itself; no optimizer step
  ridge          Readout         a closed-form readout re-solved each batch; no gradient at all
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..selection import needs_encoder_decoder
from ..errors import ConfigError
from .bptt import FullBPTT, TruncatedBPTT
from . import ekf, rtrl
from .ekf import ExtendedKalmanFilter
from .regularizer import check_regularizer
from .ridge import RidgeReadout, check_ridge
from .rtrl import RTRL, OneStep, StepAbandoned, check_rtrl
from .scheduled import feeds_itself
from .steps import Backprop, Filter, GivenGradients, Readout, Step


def check_algorithm(cfg, model, task) -> None:
    tc, arch = cfg.train, cfg.model.arch
    if task.spec.eos is not None and not hasattr(model, "decode"):
        raise needs_encoder_decoder(arch, cfg.task.name)
    if tc.algorithm == "tbptt":
        if not hasattr(task, "train_streams"):
            raise ConfigError("train.algorithm", "tbptt", f"task {cfg.task.name!r} has no continuous text to "
                              "truncate (its sequences are independent)", "bptt")
        if getattr(task.options, "predict", "all") == "last":
            raise ConfigError("task.predict", "last", "truncated BPTT reads one continuous stream; predicting "
                              "only the last character of each window needs windows", "all, or train.algorithm = bptt")
        if not getattr(model, "carries_state", True):
            raise ConfigError("train.algorithm", "tbptt", f"model.arch = {arch!r} cannot carry a state from one "
                              "chunk to the next", "bptt")
    if task.spec.tree is not None and not getattr(model, "reads_trees", False):  # tree models refuse sequences
        raise ConfigError("model.arch", arch, f"reads sequences; task {cfg.task.name!r} gives trees (a node table)",
                          "treernn, treelstm, treelstm_binary, or the task's token strings: task.input = \"flat\"")
    if hasattr(model, "check_task"):  # what only the model knows it needs of a task (an ESN's output feedback)
        model.check_task(task, cfg.task.name)
    if tc.algorithm == "ridge":
        check_ridge(model, task, arch)
    if tc.algorithm in ("rtrl", "ekf"):
        check_rtrl(model, cfg.model)
        if getattr(model, "takes_targets", False):
            raise ConfigError("train.algorithm", tc.algorithm, f"model.arch = {arch!r} reads its targets; "
                              f"{tc.algorithm} is written for nets that read only their inputs", "bptt")
        check_memory(cfg, model)
    if tc.pascanu_weight:
        check_regularizer(model, cfg.model)
    if (tc.scheduled_sampling != "none" or tc.free_running_eval) and not (
            hasattr(model, "teacher_forcing") or feeds_itself(task)):
        key = "train.scheduled_sampling" if tc.scheduled_sampling != "none" else "train.free_running_eval"
        raise ConfigError(key, getattr(tc, key.split(".")[1]), f"nothing is fed back: task {cfg.task.name!r} does "
                          f"not take its outputs as next inputs and model.arch = {arch!r} has no output feedback",
                          "a language model task (charlm), or a jordan / seq2seq model")


def check_memory(cfg, model) -> None:
    """RTRL's sensitivities grow as B x S x P and the EKF's covariance as P x P: refuse a model whose
    estimate is over train.memory_budget_gb before a run exists (a 22k-parameter LSTM under EKF once ran
    one step for 11 minutes at 5.8 GB)."""
    tc = cfg.train
    if not tc.memory_budget_gb:
        return
    step_model = OneStep(model)
    batch = 1 if tc.algorithm == "rtrl" and tc.rtrl_mode == "pattern" else tc.batch_size
    needed = rtrl.memory_needed(step_model, batch)
    if tc.algorithm == "ekf":
        needed += ekf.memory_needed(step_model, batch)
    if needed > tc.memory_budget_gb * 1e9:
        count, _ = rtrl.state_parameters(step_model)
        what = "covariance (P x P) and sensitivities" if tc.algorithm == "ekf" else "sensitivities (B x S x P)"
        raise ConfigError("train.algorithm", tc.algorithm, f"model.arch = {cfg.model.arch!r} has {count:,} "
                          f"parameters: its {what} would need about {needed / 1e9:.2f} GB, over "
                          f"train.memory_budget_gb = {tc.memory_budget_gb:g}",
                          "a smaller model or train.batch_size, train.algorithm = bptt, or a larger budget")


# Each builds the algorithm's state from (cfg, task, model, generator, device): step_loss, state_dict
def _full_bptt(cfg, task, model, generator, device):
    tc = cfg.train
    # language models mix their own inputs under scheduled sampling; models with feedback do it themselves
    mixes_inputs = feeds_itself(task) and not hasattr(model, "teacher_forcing")
    return FullBPTT(task, tc.batch_size, generator, device, pascanu_weight=tc.pascanu_weight,
                    mixes_inputs=mixes_inputs)


def _truncated_bptt(cfg, task, model, generator, device):
    return TruncatedBPTT(task, cfg.train.batch_size, cfg.train.tbptt_k1, cfg.train.tbptt_k2, device)


def _ridge(cfg, task, model, generator, device):
    return RidgeReadout(task, cfg.train.batch_size, generator, device, cfg.train.ridge_alpha)


def _rtrl(cfg, task, model, generator, device):
    tc = cfg.train
    return RTRL(task, model, tc.batch_size, tc.rtrl_mode, generator, device, tc.rtrl_check_every)


def _ekf(cfg, task, model, generator, device):
    tc = cfg.train
    return ExtendedKalmanFilter(task, model, tc.batch_size, generator, device, tc.ekf_noise, tc.ekf_process,
                                tc.ekf_prior)


@dataclass(frozen=True)
class Algorithm:
    build: Callable  # one of the functions above
    step: type[Step]  # the kind of step that trains with what it builds (steps.py)


ALGORITHMS = {  # train.algorithm -> Algorithm; config.py's choices name the same keys (test_algorithms.py)
    "bptt": Algorithm(_full_bptt, Backprop),
    "tbptt": Algorithm(_truncated_bptt, Backprop),
    "ridge": Algorithm(_ridge, Readout),
    "rtrl": Algorithm(_rtrl, GivenGradients),
    "ekf": Algorithm(_ekf, Filter),
}


def make_algorithm(cfg, task, model, generator: torch.Generator, device: torch.device) -> tuple[object, type[Step]]:
    """The run's algorithm state and the kind of step that trains with it."""
    chosen = ALGORITHMS[cfg.train.algorithm]
    return chosen.build(cfg, task, model, generator, device), chosen.step
