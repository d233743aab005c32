"""Known answers: linear-quadratic optimum from the Riccati solution; pendulum swing-up."""

from __future__ import annotations

import pytest
import torch

import planners

# Options per planner for the LQR check (24 decision variables) and the stated margin:
# every planner but random shooting lands within 5% of J*; random shooting is the floor.
LQR_CASES = {
    "cem": ({"iterations": 20}, 1.05),
    "icem": ({"iterations": 25, "noise_beta": 0.5, "population_decay": 1.1}, 1.05),
    "mppi": ({"iterations": 15, "noise_std": 0.2, "temperature": 0.1}, 1.05),
    "gd": ({"iterations": 60}, 1.05),
    "random": ({"num_samples": 512, "iterations": 10}, 3.0),
}


def test_riccati_solution_is_the_optimum(lqr):
    u = lqr.u_opt[None].clone().requires_grad_(True)  # (1, H, 2)
    cost = lqr.objective(u)
    (grad,) = torch.autograd.grad(cost.sum(), u)
    assert cost.item() == pytest.approx(lqr.j_opt, rel=1e-9)
    assert grad.abs().max() < 1e-9  # stationary point of a convex quadratic: the optimum
    assert lqr.u_opt.abs().max() < 3.0  # interior of the box used below


@pytest.mark.parametrize("name", sorted(LQR_CASES))
def test_lqr_within_margin_of_optimum(name, lqr):
    options, margin = LQR_CASES[name]
    planner = planners.make(name, [-3.0, -3.0], [3.0, 3.0], lqr.horizon, **options)
    for seed in range(2):
        result = planner.plan(lqr.objective, generator=torch.Generator().manual_seed(seed))
        assert lqr.j_opt <= result.cost <= margin * lqr.j_opt, (name, seed, result.cost)
        exact = lqr.objective(result.actions[None].double()).item()
        assert result.cost == pytest.approx(exact, rel=1e-5)


# Options per planner for the swing-up, steps executed, and whether it is slow (> 5 s).
SWING_UP = {
    "cem": ({}, 100),
    "icem": ({}, 100),
    "mppi": ({}, 100),
    "random": ({"num_samples": 1024, "iterations": 2}, 150),
    "gd": (
        {
            "iterations": 10,
            "init_from_cem": True,
            "cem_samples": 128,
            "cem_iterations": 3,
            "cem_elites": 16,
        },
        100,
    ),
}


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n == "gd" else n for n in SWING_UP]
)
def test_pendulum_swing_up_ends_upright(name, pendulum):
    options, steps = SWING_UP[name]
    planner = planners.make(name, [-2.0], [2.0], 20, **options)
    angles = pendulum(planner, steps)
    assert max(angles[-10:]) < 0.2, (name, angles[-10:])  # within 0.2 rad of upright
