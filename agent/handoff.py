"""Policy first, planner after: a goal-conditioned policy acts for the first ``steps`` actions
of an episode, then the MPC agent (on the policy's own world model) takes over.

The two fail on different goals (pick-and-place: the policy lifts the cube, the planner pushes
table goals home), and a policy's successes come early, so a fixed hand-off step keeps most of
both. Used by ``agent.evaluate`` and ``agent.control`` with ``handoff_steps=K``.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def check_handoff(steps: int, policy: str) -> None:
    """A config's ``handoff_steps``: 0 (none), or >= 1 with ``policy=gcbc``."""
    if steps < 0 or (steps and policy != "gcbc"):
        raise ValueError(
            f"handoff_steps={steps} with policy={policy}: a hand-off is "
            "from policy=gcbc to the planner after >= 1 steps (0 = none)"
        )


class Handoff:
    """``first`` (``reset(goal)``, ``act(obs)``) for ``steps`` actions, then ``then`` (an
    ``MPCAgent``-like ``reset(goal, seed)``, ``act(obs)``, optional ``plan``)."""

    def __init__(self, first: Any, then: Any, steps: int) -> None:
        if steps < 1:
            raise ValueError(f"handoff_steps={steps}: hand off after 1 or more steps")
        self.first, self.then, self.steps = first, then, steps
        self.t = 0

    @property
    def planning(self) -> bool:
        """Whether the planner acts now (after the hand-off)."""
        return self.t >= self.steps

    @property
    def plan(self) -> Any:
        """The planner's latest plan once it acts (the control loop's fallback), else None."""
        return getattr(self.then, "plan", None) if self.planning else None

    @property
    def upcoming(self) -> Any:
        """The planner's next env-step actions once it acts (the control loop's fallback)."""
        return getattr(self.then, "upcoming", None) if self.planning else None

    def reset(self, goal: dict[str, np.ndarray], seed: int | None = None) -> None:
        self.t = 0
        self.first.reset(goal)
        self.then.reset(goal, seed)

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        actor = self.then if self.planning else self.first
        self.t += 1
        return actor.act(obs)
