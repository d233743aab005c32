"""Gradient planner: Adam on R restarts at once, through a differentiable objective."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from planners.base import BoundLike, Planner, Search, check_config, require
from planners.cem import CEMConfig, CEMPlanner


@dataclass(frozen=True)
class GDConfig:
    """Gradient-descent planner (``configs/planner/gd.yaml``). Needs a differentiable objective."""

    restarts: int = 8  #: R, action sequences optimized together (restart 0 starts at the mean)
    iterations: int = 30  #: Adam steps per plan
    learning_rate: float = 0.1  #: Adam step size on u, where actions = center + half * tanh(u)
    init_std: float = 0.3  #: spread of restarts 1..R-1 around the mean, in half-ranges
    init_from_cem: bool = False  #: run a short CEM first and start the restarts around its plan
    cem_samples: int = 64  #: N of that CEM (init_from_cem only)
    cem_iterations: int = 2  #: iterations of that CEM (init_from_cem only)
    cem_elites: int = 8  #: K of that CEM (init_from_cem only)

    def __post_init__(self) -> None:
        check_config(self)
        require(self.restarts >= 1, self, "restarts", ">= 1")
        require(self.iterations >= 1, self, "iterations", ">= 1")
        require(self.learning_rate > 0, self, "learning_rate", "> 0")
        require(self.init_std >= 0, self, "init_std", ">= 0")
        require(self.cem_samples >= 2, self, "cem_samples", ">= 2")
        require(self.cem_iterations >= 1, self, "cem_iterations", ">= 1")
        require(1 <= self.cem_elites <= self.cem_samples, self, "cem_elites", "1..cem_samples")


class Adam:
    """Adam (Kingma & Ba) on one tensor, updated in place; elementwise, so restarts are
    independent. Written out because ``torch.optim.Adam`` costs seconds on first use."""

    def __init__(
        self, param: Tensor, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8
    ) -> None:
        self.param, self.lr, (self.b1, self.b2), self.eps = param, lr, betas, eps
        self.m = torch.zeros_like(param)
        self.v = torch.zeros_like(param)
        self.t = 0

    @torch.no_grad()
    def step(self, grad: Tensor) -> None:
        self.t += 1
        self.m.lerp_(grad, 1 - self.b1)
        self.v.mul_(self.b2).addcmul_(grad, grad, value=1 - self.b2)
        step = self.lr / (1 - self.b1**self.t)
        denom = (self.v / (1 - self.b2**self.t)).sqrt_().add_(self.eps)
        self.param.addcdiv_(self.m, denom, value=-step)


class GDPlanner(Planner):
    """Minimizes the sum of the R restarts' costs (each restart gets its own gradient) with
    Adam. Actions are ``center + half * tanh(u)``, so they stay in bounds. Gradients of
    restarts whose cost is not finite are zeroed. Objective parameters get no ``.grad``.
    """

    name = "gd"
    needs_grad = True
    cfg: GDConfig

    def __init__(
        self, cfg: GDConfig, action_low: BoundLike, action_high: BoundLike, horizon: int
    ) -> None:
        super().__init__(cfg, action_low, action_high, horizon)
        self.cem = None
        if cfg.init_from_cem:
            cem_cfg = CEMConfig(
                num_samples=cfg.cem_samples,
                iterations=cfg.cem_iterations,
                num_elites=cfg.cem_elites,
            )
            self.cem = CEMPlanner(cem_cfg, self.low_np, self.high_np, horizon)

    def _search(self, s: Search) -> tuple[int, bool]:
        cfg, done = self.cfg, 0
        if self.cem is not None:
            with torch.no_grad():
                done, timed_out = self.cem._search(s)
            if timed_out or s.clock.out_of_time():
                return done, True
        start = s.best_actions if self.cem is not None else s.mean  # (H, A)
        limit = 1 - 1e-4
        u0 = torch.atanh(((start - s.center) / s.half).clamp(-limit, limit))  # (H, A)
        noise = torch.randn(
            cfg.restarts, *u0.shape, generator=s.generator, device=s.device, dtype=s.dtype
        )  # (R, H, A)
        noise[0] = 0
        u = (u0 + cfg.init_std * noise).requires_grad_(True)  # (R, H, A)
        adam = Adam(u, cfg.learning_rate)
        for step in range(cfg.iterations):
            if (step or done) and s.clock.out_of_time():
                return done + step, True
            actions = s.clamp(s.center + s.half * torch.tanh(u))  # (R, H, A)
            costs = s.objective(actions)  # (R,) with graph
            s.evaluate_costs(actions, costs)
            if not costs.requires_grad:
                raise ValueError(
                    "gd planner: the objective's costs do not require grad; it must be "
                    "differentiable in the actions"
                )
            loss = torch.where(torch.isfinite(costs), costs, 0.0).sum()
            (grad,) = torch.autograd.grad(loss, u)  # (R, H, A); objective params untouched
            adam.step(torch.nan_to_num(grad, nan=0.0, posinf=0.0, neginf=0.0))
        if not s.clock.out_of_time():
            with torch.no_grad():
                s.evaluate(s.clamp(s.center + s.half * torch.tanh(u)))  # (R, H, A) last step
        return done + cfg.iterations, False
