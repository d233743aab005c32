"""MPC with the simulator as the model: the planner-and-cost upper bound of a world model.

``policy=sim_mpc`` runs the same planner, horizon, action repeat and receding horizon as the
MPC agent, but each candidate is rolled out in a twin of the task (restored to the real
episode's physics state, pixels not rendered) and scored in the true state:

- ``sim_cost=state``: L2 distance between the final ``state()`` and ``goal_state()``, every
  state number weighted alike: what a perfect latent (one that is the state) toward the goal
  image would give;
- ``sim_cost=task``: the task's own ``distance_to_goal()`` (the success metric).

A task that fails here fails for the planner or the cost (lookahead, greedy cost), not for the
world model; one that succeeds here and not with ``policy=mpc`` points at the model. Candidates
run one after another in Python (about 1 ms per arm env step): a diagnostic, not a controller.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

import envs
from agent.mpc import AgentConfig, env_actions, warm_start
from agent.waypoints import WaypointPath

SIM_COSTS = ("state", "task")


class SimMPC:
    """``reset(goal, seed)`` then ``act(obs)``, like ``MPCAgent``; reads ``task``'s physics."""

    imagined = None  # nothing imagined to show in the videos
    #: the ``env.reset`` options of the evaluated episodes (e.g. near goals), for the twin
    reset_options: dict[str, Any] | None = None

    def __init__(
        self,
        task: Any,
        task_name: str,
        planner: Any,
        cfg: AgentConfig,
        cost: str = "state",
        path: WaypointPath | None = None,
    ) -> None:
        if cost not in SIM_COSTS:
            raise ValueError(f"sim_cost={cost!r} is unknown: choose one of {list(SIM_COSTS)}")
        self.task, self.planner, self.cfg, self.cost_kind = task, planner, cfg, cost
        self.path = path  # agent.waypoints: the planner plans waypoints, as in MPCAgent
        self.sim = envs.make(task_name).unwrapped  # the twin the candidates run in
        self.sim.render_observations = False
        self.generator = torch.Generator().manual_seed(0)
        self.last_plan_ms: float | None = None
        self.planned = False

    def close(self) -> None:
        self.sim.close()

    def reset(self, goal: dict[str, np.ndarray], seed: int | None = None) -> None:
        self.sim.reset(seed=seed, options=self.reset_options)  # same seed: same goal
        self.goal_state = self.sim.goal_state()
        self.plan: torch.Tensor | None = None
        self.queue: list[np.ndarray] = []
        if seed is not None:
            self.generator.manual_seed(seed)
        if hasattr(self.planner, "reset"):
            self.planner.reset()

    def _score(self) -> float:
        if self.cost_kind == "task":
            return float(self.sim.distance_to_goal())
        return float(np.linalg.norm(self.sim.state() - self.goal_state))

    def objective(self, start: np.ndarray):
        sim = self.sim

        def cost(plans: torch.Tensor) -> torch.Tensor:  # (N, H, A) -> (N,)
            actions = self._env_actions(plans.detach()).cpu().numpy().astype(np.float64)
            out = torch.empty(plans.shape[0], dtype=torch.float32)
            for n, plan in enumerate(actions):
                sim.set_physics_state(start)
                for a in plan:
                    sim.step(a)
                out[n] = self._score()
            return out

        return cost

    def _env_actions(self, plans: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        return env_actions(plans, self.cfg.action_repeat, self.path, steps)

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        self.planned = not self.queue
        if self.planned:
            self._replan()
        return self.queue.pop(0)

    def _replan(self) -> None:
        t0 = time.perf_counter()
        k, hold = self.cfg.replan_every, self.cfg.action_repeat
        init = warm_start(self.plan, self.planner, k, self.path, hold)
        result = self.planner.plan(
            self.objective(self.task.get_physics_state()), init_mean=init, generator=self.generator
        )
        self.plan = result.actions.detach()
        first = self._env_actions(self.plan[None], k * hold)[0]
        self.queue = list(first.cpu().numpy().astype(np.float32))
        self.last_plan_ms = (time.perf_counter() - t0) * 1000
