"""iCEM (Pinneri et al., 2020): CEM with colored noise, elites kept across iterations and
across replans, and a population that shrinks every iteration."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from planners.base import BoundLike, Planner, Search, check_config, require
from planners.cem import elite_stats


@dataclass(frozen=True)
class ICEMConfig:
    """Improved cross-entropy method (``configs/planner/icem.yaml``)."""

    num_samples: int = 256  #: N_0, new candidates at the first iteration
    iterations: int = 6  #: refinement iterations per plan
    num_elites: int = 10  #: K, lowest-cost candidates that refit mean and std (paper: 10)
    population_decay: float = 1.25  #: gamma: iteration i samples max(N_0 / gamma**i, 2K)
    noise_beta: float = 2.0  #: colored-noise exponent over time (PSD ~ 1/f**beta; 0 = white)
    keep_elites: float = 0.3  #: fraction of elites carried to the next iteration and plan
    smoothing: float = 0.1  #: alpha in new = alpha * old + (1 - alpha) * elite statistic
    init_std: float = 0.5  #: initial std, in units of half the action range
    min_std: float = 0.05  #: floor of the std, in units of half the action range

    def __post_init__(self) -> None:
        check_config(self)
        require(self.num_samples >= 2, self, "num_samples", ">= 2")
        require(self.iterations >= 1, self, "iterations", ">= 1")
        require(1 <= self.num_elites <= self.num_samples, self, "num_elites", "1..num_samples")
        require(self.population_decay >= 1, self, "population_decay", ">= 1")
        require(0 <= self.noise_beta <= 6, self, "noise_beta", "0 <= noise_beta <= 6")
        require(0 <= self.keep_elites <= 1, self, "keep_elites", "0 <= keep_elites <= 1")
        require(0 <= self.smoothing < 1, self, "smoothing", "0 <= smoothing < 1")
        require(self.init_std > 0, self, "init_std", "> 0")
        require(0 <= self.min_std <= self.init_std, self, "min_std", "0 <= min_std <= init_std")

    def population(self) -> tuple[int, ...]:
        """New candidates per iteration (the current mean is one of them)."""
        floor = min(2 * self.num_elites, self.num_samples)
        return tuple(
            max(round(self.num_samples * self.population_decay**-i), floor)
            for i in range(self.iterations)
        )


def colored_noise_basis(horizon: int, beta: float) -> Tensor:
    """``M (H, C)`` such that ``M @ w`` with ``w ~ N(0, I)`` of shape ``(C,)`` is stationary
    Gaussian noise over time with power spectrum ~ 1/f**beta and unit variance per step.

    It is the inverse real FFT of random Fourier coefficients scaled by f**(-beta/2), as the
    ``colorednoise`` package's ``powerlaw_psd_gaussian`` does (with its sqrt(2) on the real
    DC and, for even H, Nyquist coefficients, whose imaginary parts are zero), written as one
    matrix so sampling is a matmul."""
    if beta == 0:
        return torch.eye(horizon, dtype=torch.float64)
    freqs = torch.fft.rfftfreq(horizon, dtype=torch.float64)  # (F,)
    freqs[0] = freqs[1] if horizon > 1 else 1.0  # low-frequency cutoff at 1/H
    scale = freqs ** (-beta / 2)  # (F,)
    real_scale = scale.clone()
    real_scale[0] *= math.sqrt(2)  # DC: real only
    if horizon % 2 == 0 and horizon > 1:
        real_scale[-1] *= math.sqrt(2)  # Nyquist: real only
    real = torch.fft.irfft(torch.diag(real_scale).to(torch.complex128), n=horizon, dim=-1)
    imag = torch.fft.irfft(1j * torch.diag(scale).to(torch.complex128), n=horizon, dim=-1)
    basis = torch.cat([real, imag]).T  # (H, 2F)
    basis = basis[:, basis.abs().amax(0) > 1e-12]  # drop DC/Nyquist imaginary columns
    return basis / basis.square().sum(1).mean().sqrt()


def shift_tail(x: Tensor, steps: int) -> Tensor:
    """Shift ``x (M, H, A)`` left by ``steps`` along H, padding with the last action."""
    if steps == 0:
        return x
    h = x.shape[1]
    keep = x[:, min(steps, h - 1) :]  # (M, H', A); at least the last action survives
    return torch.cat([keep, keep[:, -1:].expand(-1, h - keep.shape[1], -1)], dim=1)


class ICEMPlanner(Planner):
    """iCEM. Elites kept within a plan keep their cost (the objective is assumed
    deterministic within one plan); elites carried to the next plan are re-evaluated there.

    The caller shifts both the warm start (``init_mean``) and, with ``shift(steps)``, the
    carried elites; ``reset()`` forgets them at episode start.
    """

    name = "icem"
    cfg: ICEMConfig

    def __init__(
        self, cfg: ICEMConfig, action_low: BoundLike, action_high: BoundLike, horizon: int
    ) -> None:
        super().__init__(cfg, action_low, action_high, horizon)
        self.sizes = cfg.population()
        self.num_keep = math.ceil(cfg.keep_elites * cfg.num_elites)
        self.basis64 = colored_noise_basis(horizon, cfg.noise_beta)  # (H, C)
        self._basis: dict[tuple[torch.device, torch.dtype], Tensor] = {}
        self.memory: Tensor | None = None  # (M, H, A) elites of the last plan

    def reset(self) -> None:
        self.memory = None

    def shift(self, steps: int) -> None:
        super().shift(steps)
        if self.memory is not None:
            self.memory = shift_tail(self.memory, steps)

    def basis(self, device: torch.device, dtype: torch.dtype) -> Tensor:
        key = (device, dtype)
        if key not in self._basis:
            self._basis[key] = self.basis64.to(device=device, dtype=dtype)
        return self._basis[key]

    def _search(self, s: Search) -> tuple[int, bool]:
        cfg, a, k = self.cfg, self.action_dim, self.cfg.num_elites
        alpha, keep = cfg.smoothing, self.num_keep
        basis = self.basis(s.device, s.dtype)  # (H, C)
        white = torch.empty(self.sizes[0], basis.shape[1], a, device=s.device, dtype=s.dtype)
        mean = s.mean  # (H, A)
        std = (cfg.init_std * s.half).expand_as(mean)  # (H, A)
        min_std = cfg.min_std * s.half  # (A,)
        kept = s.mean.new_empty(0, *s.mean.shape)  # (0, H, A) elites with known costs
        kept_costs = s.best_cost.new_empty(0)  # (0,)
        timed_out, done = False, 0
        for it, n in enumerate(self.sizes):
            if it and s.clock.out_of_time():
                timed_out = True
                break
            w = white[:n].normal_(generator=s.generator)  # (n, C, A)
            samples = s.clamp(mean + std * torch.matmul(basis, w))  # (n, H, A)
            samples[0] = mean
            if it == 0 and self.memory is not None:  # last plan's elites, shifted by the caller
                samples = torch.cat([samples, self.memory.to(s.device, s.dtype)])
            costs = s.evaluate(samples)  # (n,)
            pool = torch.cat([samples, kept])  # (n + M, H, A)
            pool_costs = torch.cat([costs, kept_costs])  # (n + M,)
            e_mean, e_std, ok = elite_stats(pool, pool_costs, min(k, pool.shape[0]))
            mean = s.clamp(torch.where(ok, torch.lerp(e_mean, mean, alpha), mean))  # rounding
            std = torch.where(ok, torch.maximum(torch.lerp(e_std, std, alpha), min_std), std)
            best = torch.topk(pool_costs, min(keep, pool.shape[0]), largest=False)
            kept, kept_costs = pool.index_select(0, best.indices), best.values  # (M, H, A)
            done = it + 1
        if not timed_out and not s.clock.out_of_time():
            s.evaluate(mean[None])  # (1, H, A)
        self.memory = kept if keep else None
        return done, timed_out
