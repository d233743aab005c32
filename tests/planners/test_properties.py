"""Properties every planner has: bounds, NaN ranking, determinism, deadline, device, batching."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

import planners
from planners.icem import colored_noise_basis, shift_tail
from planners.mppi import importance_weights

NAMES = sorted(planners.PLANNERS)
SMALL = {  # small budgets: these tests are about properties, not quality
    "cem": {"num_samples": 32, "iterations": 3, "num_elites": 4},
    "icem": {"num_samples": 32, "iterations": 3, "num_elites": 4},
    "mppi": {"num_samples": 32, "iterations": 3},
    "gd": {"restarts": 4, "iterations": 5},
    "random": {"num_samples": 32, "iterations": 3},
}


def small(name, low, high, horizon, **options):
    return planners.make(name, low, high, horizon, **{**SMALL[name], **options})


def quadratic(target):
    return lambda a: (a - target).square().sum((1, 2))  # (N, H, A) -> (N,)


# --------------------------------------------------------------------------- bounds

bound_pairs = st.lists(
    st.tuples(st.floats(-50, 50, allow_nan=False), st.floats(1e-3, 100, allow_nan=False)).map(
        lambda p: (p[0], p[0] + p[1])
    ),
    min_size=1,
    max_size=3,
)


@settings(max_examples=20, deadline=None, database=None)
@example(name="mppi", pairs=[(11.0, 11.001)], push=0.125, warm=0.0)  # weighted mean rounding
@given(
    name=st.sampled_from(NAMES),
    pairs=bound_pairs,
    push=st.floats(-1e3, 1e3, allow_nan=False),
    warm=st.floats(-1e3, 1e3, allow_nan=False),
)
def test_actions_always_in_bounds(name, pairs, push, warm):
    """Candidates and results stay in the box, even pulled far outside and warm-started
    outside it."""
    low = torch.tensor([p[0] for p in pairs])
    high = torch.tensor([p[1] for p in pairs])
    seen = []

    def objective(a):
        seen.append((a.amin((0, 1)), a.amax((0, 1))))
        return (a - push).square().sum((1, 2)) - 1e-3 * (a * push).sum((1, 2))

    planner = small(name, low, high, 4)
    init = torch.full((4, len(pairs)), warm)
    result = planner.plan(objective, init_mean=init, generator=torch.Generator().manual_seed(1))
    assert ((result.actions >= low) & (result.actions <= high)).all()
    for lo, hi in seen:
        assert (lo >= low).all() and (hi <= high).all()


# --------------------------------------------------------------------------- NaN / inf


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("name", NAMES)
def test_non_finite_costs_rank_worst(name, bad):
    """The unconstrained optimum (0.8) lies in a region where the objective is not finite:
    the planner must never pick a candidate from there."""

    def objective(a):
        cost = (a - 0.8).square().sum((1, 2))
        return torch.where(a[:, 0, 0] > 0.5, bad, cost)

    planner = small(name, [-1.0], [1.0], 3)
    result = planner.plan(objective, generator=torch.Generator().manual_seed(0))
    assert result.actions[0, 0] <= 0.5
    assert math.isfinite(result.cost)
    assert result.cost == pytest.approx(objective(result.actions[None]).item(), rel=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_all_costs_non_finite_keeps_the_warm_start(name):
    init = torch.tensor([[0.3], [-0.2], [2.0]])  # last entry outside: clamped to 1
    planner = small(name, [-1.0], [1.0], 3)
    result = planner.plan(lambda a: a.sum((1, 2)) * math.nan, init_mean=init)
    assert result.cost == math.inf
    assert torch.equal(result.actions, init.clamp(-1, 1))
    assert result.iterations == SMALL[name]["iterations"] and not result.timed_out


@pytest.mark.parametrize("name", ["cem", "icem", "mppi", "random"])
def test_never_worse_than_the_warm_start(name):
    init = torch.full((6, 2), 0.4)
    objective = quadratic(0.5)
    planner = small(name, [-1.0, -1.0], [1.0, 1.0], 6)
    result = planner.plan(objective, init_mean=init, generator=torch.Generator().manual_seed(3))
    assert result.cost <= objective(init[None]).item()


def test_importance_weights_are_stable():
    costs = torch.tensor([1e30, 1e30 + 1e25, math.inf, 2e30])
    w = importance_weights(costs, 0.5, torch.tensor(1e25))
    assert torch.isfinite(w).all() and w.sum().item() == pytest.approx(1.0)
    assert w[2] == 0 and w[0] > w[1] > w[3]
    assert torch.equal(
        importance_weights(torch.full((3,), math.inf), 1.0, torch.tensor(1.0)), torch.zeros(3)
    )


# --------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_plan(name):
    """Same seed, same plan (after reset(): iCEM's carried elites are part of its state)."""
    planner = small(name, [-1.0, -1.0], [1.0, 1.0], 5)
    objective = quadratic(torch.tensor([0.3, -0.6]))

    def plan(generator=None):
        planner.reset()
        return planner.plan(objective, generator=generator)

    runs = [plan(torch.Generator().manual_seed(s)) for s in (7, 7, 8)]
    assert torch.equal(runs[0].actions, runs[1].actions) and runs[0].cost == runs[1].cost
    assert not torch.equal(runs[0].actions, runs[2].actions)
    torch.manual_seed(11)
    a = plan().actions
    torch.manual_seed(11)
    assert torch.equal(a, plan().actions)  # default generator: seeded from the global RNG


def test_icem_memory_is_deterministic_and_resettable():
    planner = small("icem", [-1.0], [1.0], 5)
    objective = quadratic(0.5)

    def episode():
        planner.reset()
        g = torch.Generator().manual_seed(0)
        first = planner.plan(objective, generator=g)
        planner.shift(1)
        second = planner.plan(objective, init_mean=first.actions, generator=g)
        return first, second

    (f1, s1), (_, s2) = episode(), episode()
    assert torch.equal(s1.actions, s2.actions)
    kept = math.ceil(0.3 * 4)
    assert s1.evaluations == f1.evaluations + kept  # carried elites are re-evaluated
    planner.reset()
    assert planner.memory is None


def test_shift_pads_with_the_last_action():
    x = torch.arange(8.0).reshape(2, 4, 1)  # (M, H, A)
    assert shift_tail(x, 1)[0, :, 0].tolist() == [1.0, 2.0, 3.0, 3.0]
    assert shift_tail(x, 3)[1, :, 0].tolist() == [7.0, 7.0, 7.0, 7.0]
    assert shift_tail(x, 9)[1, :, 0].tolist() == [7.0, 7.0, 7.0, 7.0]
    assert torch.equal(shift_tail(x, 0), x)


def test_colored_noise_basis():
    white = colored_noise_basis(16, 0.0)
    assert torch.equal(white, torch.eye(16, dtype=torch.float64))
    pink = colored_noise_basis(16, 2.0)  # (H, C)
    cov = pink @ pink.T  # (H, H) covariance of the samples
    assert torch.allclose(cov.diagonal(), torch.ones(16, dtype=torch.float64))
    lag1 = cov.diagonal(1)
    assert torch.allclose(lag1, lag1.mean().expand(15)) and lag1.mean() > 0.7  # stationary
    pinkish = colored_noise_basis(16, 1.0)
    assert (pinkish @ pinkish.T).diagonal(1).mean() < lag1.mean()  # beta sets the smoothness
    assert colored_noise_basis(1, 2.0).shape[0] == 1


def _powerlaw_psd_gaussian(beta: float, n: int, size: int, rng: np.random.Generator):
    """The ``colorednoise`` package's sampler (its published algorithm, written out here)."""
    f = np.fft.rfftfreq(n)
    s_scale = f.copy()
    s_scale[0] = f[1]  # fmin = 1 / n
    s_scale = s_scale ** (-beta / 2)
    w = s_scale[1:].copy()
    w[-1] *= (1 + (n % 2)) / 2.0
    sigma = 2 * np.sqrt(np.sum(w**2)) / n
    sr = rng.normal(scale=s_scale, size=(size, len(f)))
    si = rng.normal(scale=s_scale, size=(size, len(f)))
    if n % 2 == 0:
        si[:, -1] = 0
        sr[:, -1] *= np.sqrt(2)
    si[:, 0] = 0
    sr[:, 0] *= np.sqrt(2)
    return np.fft.irfft(sr + 1j * si, n=n, axis=-1) / sigma


@pytest.mark.parametrize("horizon", [5, 8])
def test_colored_noise_has_the_colorednoise_packages_correlations(horizon):
    ref = _powerlaw_psd_gaussian(2.0, horizon, 200_000, np.random.default_rng(0))
    ref_corr = np.corrcoef(ref.T)  # (H, H)
    basis = colored_noise_basis(horizon, 2.0)
    assert np.allclose((basis @ basis.T).numpy(), ref_corr, atol=0.01)


# --------------------------------------------------------------------------- deadline


@pytest.mark.parametrize("name", NAMES)
def test_deadline_returns_best_so_far_on_time(name):
    calls = []

    def slow(a):
        calls.append(a.shape[0])
        time.sleep(0.02)
        return quadratic(0.2)(a)

    planner = small(name, [-1.0], [1.0], 4, iterations=1000)
    deadline = 0.2
    t0 = time.perf_counter()
    result = planner.plan(slow, deadline_s=deadline, generator=torch.Generator().manual_seed(0))
    elapsed = time.perf_counter() - t0
    assert result.timed_out and 1 <= result.iterations < 1000
    assert elapsed < deadline + 0.06, elapsed
    assert result.cost == pytest.approx(quadratic(0.2)(result.actions[None]).item(), rel=1e-6)
    untimed = planner.plan(quadratic(0.2), deadline_s=60.0)
    assert not untimed.timed_out and untimed.iterations == 1000


# --------------------------------------------------------------------------- batching, device


def test_one_batched_call_per_iteration():
    sizes = []

    def objective(a):
        sizes.append(a.shape[0])
        return quadratic(0.1)(a)

    planners.make("cem", [-1.0], [1.0], 4).plan(objective)
    assert sizes == [256] * 6 + [1]  # six iterations, then the refit mean
    sizes.clear()
    planners.make("icem", [-1.0], [1.0], 4).plan(objective)
    assert sizes[:3] == [256, 205, 164] and sizes[-1] == 1 and len(sizes) == 7


@pytest.mark.parametrize("name", NAMES)
def test_dtype_follows_init_mean_and_costs_may_differ(name):
    planner = small(name, [-1.0], [1.0], 3)
    init = torch.zeros(3, 1, dtype=torch.float64)
    result = planner.plan(lambda a: quadratic(0.3)(a).float(), init_mean=init)
    assert result.actions.dtype == torch.float64
    result = planner.plan(lambda a: quadratic(0.3)(a).double())
    assert result.actions.dtype == torch.float32


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@cuda
@pytest.mark.parametrize("name", NAMES)
def test_runs_on_cuda_and_accepts_costs_from_another_device(name):
    planner = small(name, [-1.0], [1.0], 3)
    g = torch.Generator(device="cuda").manual_seed(0)
    result = planner.plan(lambda a: quadratic(0.3)(a).cpu(), generator=g)
    assert result.actions.device.type == "cuda" and math.isfinite(result.cost)
    result = planner.plan(lambda a: quadratic(0.3)(a.cuda()), generator=torch.Generator())
    assert result.actions.device.type == "cpu" and math.isfinite(result.cost)


def test_icem_without_its_improvements_is_cem():
    """White noise, no decay and no kept elites reduce iCEM to CEM, sample for sample (up to
    rounding: CEM fuses mean + std * noise)."""
    objective = quadratic(torch.tensor([0.3, -0.6]))
    cem = planners.make("cem", [-1.0, -1.0], [1.0, 1.0], 5, **SMALL["cem"])
    icem = planners.make(
        "icem",
        [-1.0, -1.0],
        [1.0, 1.0],
        5,
        **SMALL["icem"],
        noise_beta=0.0,
        population_decay=1.0,
        keep_elites=0.0,
    )
    a = cem.plan(objective, generator=torch.Generator().manual_seed(4))
    b = icem.plan(objective, generator=torch.Generator().manual_seed(4))
    assert torch.allclose(a.actions, b.actions, atol=1e-6)  # same samples, fused vs not
    assert a.cost == pytest.approx(b.cost, rel=1e-5) and a.evaluations == b.evaluations
