"""Training a recurrent net with the global extended Kalman filter (Puskorius & Feldkamp 1994; Williams 1992).

The weights w are the state the filter estimates, each judged output a noisy
measurement of them. At every time step t, for the B sequences of a batch
as one stacked measurement (multi-stream EKF):

    H_t = do_t/dw                        (B*O, P): direct + do_t/ds_{t-1} . ds_{t-1}/dw (RTRL's sensitivity)
    e_t = -d l_t / d o_t                 the innovation: y - o for squared error, onehot - softmax for
                                         cross-entropy (the per-step loss l_t of the task)
    A   = (R I + H P H^T)^-1             R: measurement noise (a large R is a small learning rate)
    K   = P H^T A                        the Kalman gain, (P, B*O)
    w  <- w + K e_t
    P  <- P - K H P + Q I                Q: process noise, keeps P from collapsing (and the filter learning)

The filter keeps a P x P covariance: it suits small nets (a few hundred weights),
which is where the lectures use it. Steps with no judged output (e = 0) update nothing.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.func import functional_call, jacrev, vmap

from .rtrl import RTRL, state_parameters


def memory_needed(step_model, batch: int) -> int:
    """Bytes the filter holds at its peak on top of RTRL's sensitivities: four P x P matrices (the
    covariance, the copy kept to abandon a step, K H P and the updated covariance; see _update) and four
    (B*O) x P ones (H per sequence and stacked, P H^T, K)."""
    count, _ = state_parameters(step_model)
    measurements = batch * step_model.model.head.out_features
    return (4 * count * count + 4 * measurements * count) * step_model.model.head.weight.element_size()


class ExtendedKalmanFilter(RTRL):
    """Updates the weights itself (steps.Filter): the optimizer, learning rate and clipping do not apply."""

    def __init__(self, task, model, batch_size: int, generator, device, noise: float, process: float, prior: float):
        super().__init__(task, model, batch_size, "batch", generator, device)
        self.noise, self.process = noise, process
        params = dict(self.step_model.named_parameters())
        count = sum(params[n].numel() for n in self.names)
        dtype = model.head.weight.dtype
        self.covariance = torch.eye(count, device=device, dtype=dtype) * prior  # P (P, P)

    def _output_jacobians(self, params: dict, x_t: Tensor, flat: Tensor):
        """Per sequence: do_t/dw (B, O, P) and do_t/ds_{t-1} (B, O, S), and o_t (B, O)."""

        def output(p, s, x):
            return functional_call(self.step_model, p, (x[None], s[None]))[0][0]  # (O,)

        d_params, d_state = vmap(jacrev(output, argnums=(0, 1)), in_dims=(None, 0, 0))(params, flat, x_t)
        by_param = torch.cat([d_params[n].flatten(2) for n in self.names], 2)  # (B, O, P)
        with torch.no_grad():
            out = functional_call(self.step_model, params, (x_t, flat))[0]
        return by_param, d_state, out

    def _innovation(self, out_t: Tensor, y, mask, t: int, steps: int) -> Tensor:
        """e_t = -d l_t/d o_t (B, O) from the task's own per-step losses; zero where step t is not judged."""
        out_t = out_t.detach().requires_grad_()
        outputs = out_t.new_zeros(out_t.shape[0], steps, out_t.shape[1])
        outputs = torch.cat([outputs[:, :t], out_t[:, None], outputs[:, t + 1:]], 1)  # (B, T, O)
        step_loss = self.task.step_losses(outputs, y, mask)[:, t].sum()
        (grad,) = torch.autograd.grad(step_loss, out_t)
        return -grad

    def _update(self, weights: list[Tensor], jacobian: Tensor, innovation: Tensor) -> float:
        """One Kalman step: jacobian H (M, P), innovation e (M,); returns ||delta w||."""
        covariance = self.covariance
        ph = covariance @ jacobian.T  # (P, M)
        gain = torch.linalg.solve(self.noise * torch.eye(len(innovation), dtype=ph.dtype, device=ph.device)
                                  + jacobian @ ph, ph.T).T  # K = P H^T A, (P, M); A symmetric
        delta = gain @ innovation  # (P,)
        updated = covariance - gain @ ph.T
        updated.diagonal().add_(self.process)  # + Q I, without a P x P identity
        self.covariance = (updated + updated.T).mul_(0.5)  # rounding must not break symmetry
        with torch.no_grad():
            for weight, piece in zip(weights, delta.split([w.numel() for w in weights])):
                weight.add_(piece.view_as(weight))
        return float(delta.norm())

    def step_loss(self, model) -> tuple[Tensor, int]:
        params = dict(self.step_model.named_parameters())
        weights = [params[n] for n in self.names]
        # what an abandoned step puts back: the filter updates the weights and P at every time step
        # (_update replaces P, never writes into it, so holding the reference keeps the old one)
        before = self.covariance, [w.detach().clone() for w in weights]
        undrawn = self.generator.get_state()
        x, y, mask = self._batch()
        flat, sensitivity, _ = self._begin(x, y, mask)
        steps, outputs, moved = x.shape[1], [], 0.0
        for t in range(steps):
            self._stop_if_asked(undrawn, put_back=lambda: self._put_back(weights, *before))
            current = {n: params[n].detach() for n in self.names}
            d_out_w, d_out_s, out_t = self._output_jacobians(current, x[:, t], flat)
            outputs.append(out_t)
            by_param, d_state, s_new = self._state_jacobians(current, x[:, t], flat)
            # the read-out's columns carry no sensitivity (RTRL keeps only the state's parameters)
            through_state = torch.bmm(d_out_s, sensitivity)  # (B, O, P_s)
            total = d_out_w.clone()
            total[..., :self.state_count] += through_state  # H_t per sequence, (B, O, P)
            innovation = self._innovation(out_t, y, mask, t, steps)  # (B, O)
            sensitivity = torch.bmm(d_state, sensitivity) + by_param
            flat = s_new
            if bool(innovation.abs().max() > 0):
                moved += self._update(weights, total.flatten(0, 1), innovation.flatten())
        self.last_update_norm = moved
        with torch.no_grad():
            loss = self.task.loss(torch.stack(outputs, 1), y, mask)
        return loss.to(torch.float64), int(mask.sum()) if mask is not None else y.numel()

    def _put_back(self, weights: list[Tensor], covariance: Tensor, kept: list[Tensor]) -> None:
        self.covariance = covariance
        with torch.no_grad():
            for weight, value in zip(weights, kept):
                weight.copy_(value)

    def state_dict(self) -> dict:
        return {"covariance": self.covariance.cpu()}

    def load_state_dict(self, state: dict) -> None:
        if "covariance" in state:
            self.covariance = state["covariance"].to(self.covariance.device)
