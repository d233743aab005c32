"""Planners: optimizers over a batched objective ``(N, H, A) -> (N,)``, lower is better.

    planner = planners.make("cem", action_low, action_high, horizon, num_samples=512)
    result = planner.plan(objective, init_mean=None, generator=g, deadline_s=0.05)
    result.actions  # (H, A) within bounds; result.cost, result.iterations, result.timed_out

The caller owns warm start and receding horizon: pass the previous plan shifted by the
executed steps as ``init_mean``, call ``planner.shift(steps)`` after executing steps (iCEM
shifts its carried elites) and ``planner.reset()`` at episode start.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from planners.base import BoundLike, Objective, Planner, PlanResult
from planners.cem import CEMConfig, CEMPlanner
from planners.gd import GDConfig, GDPlanner
from planners.icem import ICEMConfig, ICEMPlanner
from planners.mppi import MPPIConfig, MPPIPlanner
from planners.random_shooting import RandomConfig, RandomPlanner

__all__ = [
    "PLANNERS",
    "BoundLike",
    "CEMConfig",
    "CEMPlanner",
    "GDConfig",
    "GDPlanner",
    "ICEMConfig",
    "ICEMPlanner",
    "MPPIConfig",
    "MPPIPlanner",
    "Objective",
    "PlanResult",
    "Planner",
    "RandomConfig",
    "RandomPlanner",
    "make",
    "make_config",
    "make_from_config",
]

#: name -> (config dataclass, planner class)
PLANNERS: dict[str, tuple[type, type[Planner]]] = {
    "cem": (CEMConfig, CEMPlanner),
    "icem": (ICEMConfig, ICEMPlanner),
    "mppi": (MPPIConfig, MPPIPlanner),
    "gd": (GDConfig, GDPlanner),
    "random": (RandomConfig, RandomPlanner),
}


def make_config(name: str, **options: Any) -> Any:
    """The validated config dataclass of planner ``name`` with ``options`` overriding defaults."""
    if name not in PLANNERS:
        raise ValueError(f"unknown planner {name!r}: choose one of {sorted(PLANNERS)}")
    cfg_cls = PLANNERS[name][0]
    valid = [f.name for f in dataclasses.fields(cfg_cls)]
    unknown = [k for k in options if k not in valid]
    if unknown:
        raise ValueError(
            f"unknown option {unknown[0]!r} for planner {name!r}: valid options are {valid}"
        )
    return cfg_cls(**options)


def make(
    name: str, action_low: BoundLike, action_high: BoundLike, horizon: int, **options: Any
) -> Planner:
    """Build planner ``name`` (cem | icem | mppi | gd | random) for actions in
    ``[action_low, action_high]`` (array-likes of shape (A,)) and ``horizon`` steps.

    Raises ValueError with one line for an unknown name, bad bounds, horizon < 1, an unknown
    option or an invalid option value.
    """
    cfg = make_config(name, **options)
    return PLANNERS[name][1](cfg, action_low, action_high, horizon)


def make_from_config(
    cfg: Mapping[str, Any], action_low: BoundLike, action_high: BoundLike, horizon: int
) -> Planner:
    """Build a planner from a ``configs/planner/*.yaml`` mapping: ``name`` plus options."""
    options = dict(cfg)
    if "name" not in options:
        raise ValueError(f"planner config needs a 'name' key (one of {sorted(PLANNERS)})")
    return make(options.pop("name"), action_low, action_high, horizon, **options)
