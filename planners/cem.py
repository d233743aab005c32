"""Cross-entropy method: refit a diagonal Gaussian over (H, A) to the K best of N samples."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from planners.base import Planner, Search, check_config, require


@dataclass(frozen=True)
class CEMConfig:
    """Cross-entropy method (``configs/planner/cem.yaml``)."""

    num_samples: int = 256  #: N, candidates per iteration (one of them is the current mean)
    iterations: int = 6  #: refinement iterations per plan
    num_elites: int = 32  #: K, lowest-cost candidates that refit mean and std
    smoothing: float = 0.1  #: alpha in new = alpha * old + (1 - alpha) * elite statistic
    init_std: float = 0.5  #: initial std, in units of half the action range
    min_std: float = 0.05  #: floor of the std, in units of half the action range

    def __post_init__(self) -> None:
        check_config(self)
        require(self.num_samples >= 2, self, "num_samples", ">= 2")
        require(self.iterations >= 1, self, "iterations", ">= 1")
        require(1 <= self.num_elites <= self.num_samples, self, "num_elites", "1..num_samples")
        require(0 <= self.smoothing < 1, self, "smoothing", "0 <= smoothing < 1")
        require(self.init_std > 0, self, "init_std", "> 0")
        require(0 <= self.min_std <= self.init_std, self, "min_std", "0 <= min_std <= init_std")


def elite_stats(samples: Tensor, costs: Tensor, k: int) -> tuple[Tensor, Tensor, Tensor]:
    """Mean and std ``(H, A)`` of the ``k`` cheapest of ``samples (N, H, A)``, and whether any
    of them had a finite cost (``()`` bool). Non-finite elites get zero weight."""
    top = torch.topk(costs, k, largest=False, sorted=False)
    elites = samples.index_select(0, top.indices)  # (K, H, A)
    w = torch.isfinite(top.values).to(samples.dtype)  # (K,)
    count = w.sum()
    w = w / count.clamp_min(1)
    mean = torch.tensordot(w, elites, 1)  # (H, A)
    var = torch.tensordot(w, (elites - mean).square(), 1)  # (H, A)
    return mean, var.sqrt(), count > 0


class CEMPlanner(Planner):
    """CEM with smoothed mean/std and a std floor. The current mean is always one candidate,
    so a plan is never worse than its warm start; the final mean is evaluated at the end."""

    name = "cem"
    cfg: CEMConfig

    def _search(self, s: Search) -> tuple[int, bool]:
        cfg, h, a = self.cfg, self.horizon, self.action_dim
        alpha = cfg.smoothing
        eps = torch.empty(cfg.num_samples, h, a, device=s.device, dtype=s.dtype)  # (N, H, A)
        mean = s.mean  # (H, A)
        std = (cfg.init_std * s.half).expand(h, a)  # (H, A)
        min_std = cfg.min_std * s.half  # (A,)
        for it in range(cfg.iterations):
            if it and s.clock.out_of_time():
                return it, True
            eps.normal_(generator=s.generator)
            samples = s.clamp(torch.addcmul(mean, std, eps))  # (N, H, A)
            samples[0] = mean
            costs = s.evaluate(samples)  # (N,)
            e_mean, e_std, ok = elite_stats(samples, costs, cfg.num_elites)
            mean = s.clamp(torch.where(ok, torch.lerp(e_mean, mean, alpha), mean))  # rounding
            std = torch.where(ok, torch.maximum(torch.lerp(e_std, std, alpha), min_std), std)
        if not s.clock.out_of_time():
            s.evaluate(mean[None])  # (1, H, A): the refit mean is often the best plan
        return cfg.iterations, False
