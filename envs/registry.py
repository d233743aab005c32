"""The task table: short names (used by configs) -> Gymnasium ids and entry points."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

NAMESPACE = "jepa"


@dataclass(frozen=True)
class TaskSpec:
    """One registered task."""

    name: str  #: short name used in configs (``env=point_mass``)
    entry_point: str  #: ``module:Class``
    kwargs: dict[str, Any] = field(default_factory=dict)  #: constructor arguments
    kind: str = "navigation"  #: navigation | manipulation

    @property
    def gym_id(self) -> str:
        return f"{NAMESPACE}/{self.name.replace('_', '-')}-v0"

    def env_class(self) -> type:
        module, cls = self.entry_point.split(":")
        return getattr(importlib.import_module(module), cls)


TASKS: dict[str, TaskSpec] = {
    t.name: t
    for t in [
        TaskSpec("point_mass", "envs.tasks.point_mass:PointMass"),
        TaskSpec("umaze", "envs.tasks.maze:Maze", {"layout": "umaze"}),
        TaskSpec("medium_maze", "envs.tasks.maze:Maze", {"layout": "medium"}),
        TaskSpec("two_room", "envs.tasks.two_room:TwoRoom"),
        TaskSpec(
            "reacher_easy", "envs.tasks.reacher:Reacher", {"difficulty": "easy"}, "manipulation"
        ),
        TaskSpec(
            "reacher_hard", "envs.tasks.reacher:Reacher", {"difficulty": "hard"}, "manipulation"
        ),
        TaskSpec("arm_reach", "envs.tasks.arm:ArmReach", {}, "manipulation"),
        TaskSpec("arm_push", "envs.tasks.arm:ArmPush", {}, "manipulation"),
        TaskSpec("arm_pick_place", "envs.tasks.arm:ArmPickPlace", {}, "manipulation"),
        # the same tasks seen without the robot in the images (robot known from proprio)
        TaskSpec("arm_push_masked", "envs.tasks.arm:ArmPush", {"hide_robot": True}, "manipulation"),
        TaskSpec(
            "arm_pick_place_masked",
            "envs.tasks.arm:ArmPickPlace",
            {"hide_robot": True},
            "manipulation",
        ),
        # pick-and-place, robot masked, seen by two cameras (front overview + side: height shows)
        TaskSpec(
            "arm_pick_place_2view",
            "envs.tasks.arm:ArmPickPlace",
            {"hide_robot": True, "two_views": True},
            "manipulation",
        ),
        TaskSpec("push_t", "envs.tasks.push_t:PushT", {}, "manipulation"),
        # Push-T seen without the pusher in the images (pusher known from proprio)
        TaskSpec("push_t_masked", "envs.tasks.push_t:PushT", {"hide_pusher": True}, "manipulation"),
    ]
}


#: the tasks built on Push-T's env (its push primitives, wide starts and block state apply)
PUSH_T_TASKS: tuple[str, ...] = tuple(
    t.name for t in TASKS.values() if t.entry_point == TASKS["push_t"].entry_point
)


def task_spec(name: str) -> TaskSpec:
    """Look up a task by short name or Gymnasium id; one clear error when unknown."""
    for spec in TASKS.values():
        if name in (spec.name, spec.gym_id):
            return spec
    raise ValueError(f"unknown task {name!r}: choose one of {sorted(TASKS)}")


def register_all() -> None:
    for spec in TASKS.values():
        if spec.gym_id in gym.registry:
            continue
        steps = spec.env_class().step_budget(**spec.kwargs)
        gym.register(
            spec.gym_id, entry_point=spec.entry_point, kwargs=spec.kwargs, max_episode_steps=steps
        )


def make(name: str, **kwargs: Any) -> gym.Env:
    """``gymnasium.make`` by short name or id, with ``TimeLimit`` at the task's step budget."""
    spec = task_spec(name)
    register_all()
    return gym.make(spec.gym_id, **kwargs)
