"""Random shooting: uniform samples in the box, keep the best. The floor for the others."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from planners.base import Planner, Search, check_config, require


@dataclass(frozen=True)
class RandomConfig:
    """Random shooting (``configs/planner/random.yaml``)."""

    num_samples: int = 512  #: N, uniform candidates per batch
    iterations: int = 3  #: batches per plan (the deadline is checked between batches)

    def __post_init__(self) -> None:
        check_config(self)
        require(self.num_samples >= 1, self, "num_samples", ">= 1")
        require(self.iterations >= 1, self, "iterations", ">= 1")


class RandomPlanner(Planner):
    """Uniform random shooting; the warm start (or the box center) is the first candidate."""

    name = "random"
    cfg: RandomConfig

    def _search(self, s: Search) -> tuple[int, bool]:
        cfg, h, a = self.cfg, self.horizon, self.action_dim
        u = torch.empty(cfg.num_samples, h, a, device=s.device, dtype=s.dtype)  # (N, H, A)
        for it in range(cfg.iterations):
            if it and s.clock.out_of_time():
                return it, True
            u.uniform_(generator=s.generator)
            samples = s.clamp(torch.addcmul(s.low, s.high - s.low, u))  # (N, H, A); rounding
            if it == 0:
                samples[0] = s.mean
            s.evaluate(samples)
        return cfg.iterations, False
