"""MPPI: move the mean to the softmin-weighted average of Gaussian perturbations."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from planners.base import BoundLike, Planner, Search, check_config, require


@dataclass(frozen=True)
class MPPIConfig:
    """Model predictive path integral control (``configs/planner/mppi.yaml``)."""

    num_samples: int = 256  #: N, candidates per iteration (one of them is the current mean)
    iterations: int = 6  #: weighted-mean updates per plan (1 = classic one-shot MPPI)
    temperature: float = 0.1  #: lambda: weights ~ exp(-(cost - min cost) / (lambda * scale))
    normalize_costs: bool = True  #: scale = std of the finite costs (else 1: raw cost units)
    noise_std: float = 0.5  #: std of the perturbations, in units of half the action range

    def __post_init__(self) -> None:
        check_config(self)
        require(self.num_samples >= 2, self, "num_samples", ">= 2")
        require(self.iterations >= 1, self, "iterations", ">= 1")
        require(self.temperature > 0, self, "temperature", "> 0")
        require(self.noise_std > 0, self, "noise_std", "> 0")


def _std_scale(costs: Tensor, finite: Tensor) -> Tensor:
    """Std of the finite entries of ``costs (N,)`` (a tiny positive floor if they are equal)."""
    n = finite.sum().clamp_min(1)
    c = torch.where(finite, costs, 0.0)
    mu = c.sum() / n
    var = torch.where(finite, (c - mu).square(), 0.0).sum() / n
    return var.sqrt().clamp_min(torch.finfo(costs.dtype).tiny ** 0.5 * (1 + mu.abs()))


def _unit_scale(costs: Tensor, finite: Tensor) -> Tensor:
    return costs.new_ones(())


def importance_weights(costs: Tensor, temperature: float, scale: Tensor) -> Tensor:
    """Softmin weights ``(N,)`` summing to 1; non-finite costs get weight exactly 0.

    The minimum finite cost is subtracted before ``exp``, so the best candidate has weight
    ``exp(0) = 1`` before normalization and nothing overflows. All costs non-finite -> zeros.
    """
    finite = torch.isfinite(costs)
    gap = torch.where(finite, costs - costs.min(), math.inf)  # (N,) >= 0, inf if non-finite
    w = torch.exp(-gap / (temperature * scale))  # (N,) in [0, 1]
    return w / w.sum().clamp_min(torch.finfo(w.dtype).tiny)


class MPPIPlanner(Planner):
    """MPPI with a fixed isotropic noise scale. The mean is the returned plan's candidate
    in the next iteration, and the final mean is evaluated at the end."""

    name = "mppi"
    cfg: MPPIConfig

    def __init__(
        self, cfg: MPPIConfig, action_low: BoundLike, action_high: BoundLike, horizon: int
    ) -> None:
        super().__init__(cfg, action_low, action_high, horizon)
        self.scale_fn = _std_scale if cfg.normalize_costs else _unit_scale

    def _search(self, s: Search) -> tuple[int, bool]:
        cfg, h, a = self.cfg, self.horizon, self.action_dim
        eps = torch.empty(cfg.num_samples, h, a, device=s.device, dtype=s.dtype)  # (N, H, A)
        std = cfg.noise_std * s.half  # (A,)
        mean = s.mean  # (H, A)
        for it in range(cfg.iterations):
            if it and s.clock.out_of_time():
                return it, True
            eps.normal_(generator=s.generator)
            samples = s.clamp(torch.addcmul(mean, std, eps))  # (N, H, A)
            samples[0] = mean
            costs = s.evaluate(samples)  # (N,)
            finite = torch.isfinite(costs)
            w = importance_weights(costs, cfg.temperature, self.scale_fn(costs, finite))
            update = s.clamp(torch.tensordot(w, samples, 1))  # (H, A); clamp: rounding
            mean = torch.where(finite.any(), update, mean)
        if not s.clock.out_of_time():
            s.evaluate(mean[None])  # (1, H, A)
        return cfg.iterations, False
