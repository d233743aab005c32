"""Shared problems with known answers for the planner tests."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
import scipy.linalg
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny batched ops run fastest (and least noisily on a shared box) on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@dataclass(frozen=True)
class LQR:
    """Planar double integrator, x = (p, v) in R^4, u in R^2, over H steps.

    J(u) = sum_t x_t'Q x_t + u_t'R u_t + x_H'P x_H with P the infinite-horizon Riccati
    solution (scipy.linalg.solve_discrete_are). With that terminal cost the finite-horizon
    optimum is the stationary LQR law u_t = -K x_t and J* = x0'P x0 exactly.
    """

    horizon: int
    a: torch.Tensor  # (4, 4)
    b: torch.Tensor  # (4, 2)
    q: torch.Tensor  # (4, 4)
    r: torch.Tensor  # (2, 2)
    p: torch.Tensor  # (4, 4)
    x0: torch.Tensor  # (4,)
    u_opt: torch.Tensor  # (H, 2)
    j_opt: float

    def objective(self, u: torch.Tensor) -> torch.Tensor:  # (N, H, 2) -> (N,)
        x = self.x0.to(u.dtype).expand(u.shape[0], -1)  # (N, 4)
        a, b, q, r, p = (m.to(u.dtype) for m in (self.a, self.b, self.q, self.r, self.p))
        cost = u.new_zeros(u.shape[0])
        for t in range(u.shape[1]):
            ut = u[:, t]  # (N, 2)
            cost = cost + ((x @ q) * x).sum(1) + ((ut @ r) * ut).sum(1)
            x = x @ a.T + ut @ b.T
        return cost + ((x @ p) * x).sum(1)


def make_lqr(horizon: int = 12, dt: float = 0.2) -> LQR:
    eye, zero = np.eye(2), np.zeros((2, 2))
    a = np.block([[eye, dt * eye], [zero, eye]])
    b = np.vstack([0.5 * dt * dt * eye, dt * eye])
    q, r = np.diag([1.0, 1.0, 0.1, 0.1]), 0.1 * eye
    p = scipy.linalg.solve_discrete_are(a, b, q, r)
    k = np.linalg.solve(r + b.T @ p @ b, b.T @ p @ a)
    x0 = np.array([1.0, -0.5, 0.0, 0.3])
    x, us = x0, []
    for _ in range(horizon):
        us.append(-k @ x)
        x = a @ x + b @ us[-1]
    t = lambda m: torch.tensor(m, dtype=torch.float64)  # noqa: E731
    return LQR(horizon, t(a), t(b), t(q), t(r), t(p), t(x0), t(np.array(us)), float(x0 @ p @ x0))


@pytest.fixture(scope="session")
def lqr() -> LQR:
    return make_lqr()


# Gym's Pendulum-v1 dynamics: theta = 0 is upright, torque in [-2, 2], too weak to lift the
# pendulum directly, so it has to pump energy by swinging.
DT, GRAVITY, MAX_SPEED = 0.05, 10.0, 8.0


def pendulum_step(th, thd, u):
    thd = (thd + (1.5 * GRAVITY * torch.sin(th) + 3.0 * u) * DT).clamp(-MAX_SPEED, MAX_SPEED)
    return th + thd * DT, thd


def wrap(angle):
    return (angle + math.pi) % (2 * math.pi) - math.pi


def pendulum_objective(th0: float, thd0: float):
    def cost(a: torch.Tensor) -> torch.Tensor:  # (N, H, 1) -> (N,)
        th = a.new_full(a.shape[:1], th0)  # (N,)
        thd = a.new_full(a.shape[:1], thd0)  # (N,)
        c = a.new_zeros(a.shape[:1])
        for t in range(a.shape[1]):
            th, thd = pendulum_step(th, thd, a[:, t, 0])
            c = c + wrap(th) ** 2 + 0.1 * thd**2 + 0.001 * a[:, t, 0] ** 2
        return c

    return cost


@pytest.fixture(scope="session")
def pendulum():
    """``swing_up(planner, steps, seed) -> |angle| after each executed step``, with MPC
    replanning every step and the warm start shifted by one (as the agent does)."""

    def swing_up(planner, steps: int, seed: int = 0) -> list[float]:
        g = torch.Generator().manual_seed(seed)
        th, thd = torch.tensor(math.pi), torch.tensor(0.0)  # hanging down, at rest
        planner.reset()
        plan, angles = None, []
        for _ in range(steps):
            init = None
            if plan is not None:
                init = torch.cat([plan[1:], plan[-1:]])  # (H, 1) shift, pad the tail
                planner.shift(1)
            result = planner.plan(pendulum_objective(float(th), float(thd)), init, g)
            plan = result.actions
            th, thd = pendulum_step(th, thd, plan[0, 0])
            angles.append(abs(float(wrap(th))))
        return angles

    return swing_up
