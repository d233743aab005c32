"""The planners contract: construction, validation, configs, result fields, imports."""

from __future__ import annotations

import ast
import dataclasses
import math
from pathlib import Path

import pytest
import torch
import yaml

import planners
from planners import PlanResult

ROOT = Path(__file__).resolve().parents[2]
NAMES = sorted(planners.PLANNERS)


def quadratic(actions: torch.Tensor) -> torch.Tensor:  # (N, H, A) -> (N,)
    return (actions - 0.25).square().sum((1, 2))


@pytest.mark.parametrize("name", NAMES)
def test_plan_returns_the_contract(name):
    planner = planners.make(name, [-1.0, -2.0], [1.0, 2.0], 5)
    result = planner.plan(quadratic, generator=torch.Generator().manual_seed(0))
    assert isinstance(result, PlanResult)
    assert result.actions.shape == (5, 2) and result.actions.dtype == torch.float32
    assert not result.actions.requires_grad
    assert isinstance(result.cost, float) and math.isfinite(result.cost)
    assert result.cost == pytest.approx(quadratic(result.actions[None]).item(), rel=1e-6)
    assert result.iterations == planner.cfg.iterations and result.timed_out is False
    assert result.evaluations > 0
    assert planner.needs_grad == (name == "gd")
    assert name in repr(planner) or type(planner).__name__ in repr(planner)


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown planner 'cme'.*'cem'.*'random'"):
        planners.make("cme", [-1.0], [1.0], 4)


@pytest.mark.parametrize(
    ("low", "high", "match"),
    [
        ([-1.0, -1.0], [1.0], "shape"),
        ([[-1.0]], [[1.0]], "shape"),
        ([], [], "shape"),
        ([1.0], [1.0], "action_low < action_high"),
        ([2.0, 0.0], [1.0, 1.0], "action_low < action_high"),
        ([-math.inf], [1.0], "finite"),
        ([-1.0], [math.nan], "finite"),
    ],
)
def test_bad_bounds(low, high, match):
    with pytest.raises(ValueError, match=match):
        planners.make("cem", low, high, 4)


def test_bounds_round_inward_to_the_planning_dtype():
    low, high = [-0.1, 1 / 3], [0.1, 0.7]  # not representable in float32
    planner = planners.make("random", low, high, 2, num_samples=64, iterations=1)
    actions = planner.plan(lambda a: -a.sum((1, 2))).actions.double()  # pulled to the top
    assert (actions >= torch.tensor(low, dtype=torch.float64)).all()
    assert (actions <= torch.tensor(high, dtype=torch.float64)).all()
    lo, hi = planner.bounds(torch.device("cpu"), torch.float32)
    assert (lo.double() >= torch.tensor(low, dtype=torch.float64)).all()
    assert (hi.double() <= torch.tensor(high, dtype=torch.float64)).all()


def test_bounds_accept_numpy_and_tensors():
    import numpy as np

    planners.make("cem", np.array([-1.0], np.float32), np.array([1.0], np.float32), 3)
    planners.make("cem", torch.tensor([-1.0]), torch.tensor([1.0]), 3)


@pytest.mark.parametrize("horizon", [0, -3, 2.5, True, "8"])
def test_bad_horizon(horizon):
    with pytest.raises(ValueError, match="horizon"):
        planners.make("mppi", [-1.0], [1.0], horizon)


def test_unknown_option_is_named_with_the_valid_ones():
    with pytest.raises(ValueError, match=r"'num_sample'.*'cem'.*\['num_samples', 'iterations'"):
        planners.make("cem", [-1.0], [1.0], 4, num_sample=10)


BAD_OPTIONS = [
    ("cem", {"num_samples": 1}),
    ("cem", {"num_elites": 0}),
    ("cem", {"num_elites": 300}),
    ("cem", {"smoothing": 1.0}),
    ("cem", {"init_std": 0.0}),
    ("cem", {"min_std": 0.9}),
    ("cem", {"iterations": 2.0}),
    ("cem", {"num_samples": True}),
    ("cem", {"init_std": "0.5"}),
    ("cem", {"init_std": math.nan}),
    ("icem", {"population_decay": 0.5}),
    ("icem", {"noise_beta": -1.0}),
    ("icem", {"keep_elites": 1.5}),
    ("mppi", {"temperature": 0.0}),
    ("mppi", {"noise_std": -0.1}),
    ("mppi", {"normalize_costs": 1}),
    ("gd", {"restarts": 0}),
    ("gd", {"learning_rate": 0.0}),
    ("gd", {"cem_elites": 100}),
    ("random", {"num_samples": 0}),
    ("random", {"iterations": 0}),
]


@pytest.mark.parametrize(("name", "options"), BAD_OPTIONS)
def test_invalid_option_values(name, options):
    key = next(iter(options))
    with pytest.raises(ValueError, match=key):
        planners.make(name, [-1.0], [1.0], 4, **options)


def test_int_is_accepted_for_float_options():
    cfg = planners.make("cem", [-1.0], [1.0], 4, smoothing=0).cfg
    assert cfg.smoothing == 0


@pytest.mark.parametrize("name", NAMES)
def test_yaml_mirrors_the_dataclass(name):
    cfg = yaml.safe_load((ROOT / "configs" / "planner" / f"{name}.yaml").read_text())
    cfg_cls = planners.PLANNERS[name][0]
    defaults = {f.name: f.default for f in dataclasses.fields(cfg_cls)}
    assert list(cfg) == ["name", *defaults]
    assert cfg.pop("name") == name
    assert cfg == defaults
    assert all(type(cfg[k]) is type(v) for k, v in defaults.items())
    assert planners.make_from_config({"name": name, **cfg}, [-1.0], [1.0], 4).cfg == cfg_cls()


def test_every_planner_config_builds():
    """Each planner has its YAML; variants (e.g. cem_fast.yaml) must be valid configs too."""
    paths = sorted((ROOT / "configs" / "planner").glob("*.yaml"))
    assert set(NAMES) <= {p.stem for p in paths}
    for path in paths:
        cfg = yaml.safe_load(path.read_text())
        planners.make_from_config(cfg, [-1.0], [1.0], 4)


def test_make_from_config_errors():
    with pytest.raises(ValueError, match="'name'"):
        planners.make_from_config({"num_samples": 8}, [-1.0], [1.0], 4)
    with pytest.raises(ValueError, match=r"'temprature'.*valid options.*'temperature'"):
        planners.make_from_config({"name": "mppi", "temprature": 1.0}, [-1.0], [1.0], 4)
    planner = planners.make_from_config({"name": "icem", "num_samples": 64}, [-1], [1], 4)
    assert planner.cfg.num_samples == 64


def test_plan_argument_errors():
    planner = planners.make("cem", [-1.0], [1.0], 4, num_samples=8, iterations=1, num_elites=2)
    with pytest.raises(ValueError, match="init_mean"):
        planner.plan(quadratic, init_mean=torch.zeros(3, 1))
    with pytest.raises(ValueError, match="non-finite"):
        planner.plan(quadratic, init_mean=torch.full((4, 1), math.nan))
    with pytest.raises(ValueError, match="floating"):
        planner.plan(quadratic, init_mean=torch.zeros(4, 1, dtype=torch.long))
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="deadline_s"):
            planner.plan(quadratic, deadline_s=bad)
    with pytest.raises(ValueError, match=r"shape \(8,\)"):
        planner.plan(lambda a: a.sum(2))
    with pytest.raises(ValueError, match="shift"):
        planner.shift(-1)


def test_gd_needs_a_differentiable_objective():
    planner = planners.make("gd", [-1.0], [1.0], 4)
    with pytest.raises(ValueError, match="differentiable"):
        planner.plan(lambda a: quadratic(a).detach())


def test_gd_leaves_objective_parameters_alone():
    weight = torch.ones(1, requires_grad=True)
    planner = planners.make("gd", [-1.0], [1.0], 4, iterations=3)
    result = planner.plan(lambda a: quadratic(a * weight))
    assert weight.grad is None and result.iterations == 3


def test_sampling_planners_build_no_graph():
    seen = []

    def objective(actions):
        seen.append(torch.is_grad_enabled())
        return quadratic(actions)

    with torch.enable_grad():
        planners.make("cem", [-1.0], [1.0], 4, iterations=2).plan(objective)
    assert seen and not any(seen)


FORBIDDEN = ("agent", "envs", "torch.nn", "logging", "tensorboard", "wandb", "hydra")


def test_planners_import_no_agent_env_nn_or_logger():
    for path in sorted((ROOT / "planners").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                mods = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            for mod in mods:
                assert not mod.startswith(FORBIDDEN), f"{path.name} imports {mod}"
