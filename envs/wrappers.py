"""Wrappers that change what a task shows an agent. One transformation each.

``StateGoal`` turns a pixel task into the goal-conditioned *state* interface that RL baselines
expect (Gymnasium-Robotics' ``GoalEnv`` layout, so hindsight relabeling works):

- ``observation``: ``[qpos, qvel, state()]`` -- full physics plus the task's named state;
- ``achieved_goal``: ``state()``;  ``desired_goal``: ``goal_state()``;
- ``compute_reward(achieved, desired, info)``: batched, from the task's own ``state_distance``
  and ``success_threshold``, so relabeled rewards use exactly the evaluation's success rule.

Rewards: ``sparse`` is 0 on success and -1 otherwise; ``dense`` is minus the distance to the
goal. Pixels are not rendered (``render_observations = False``), so stepping costs physics only.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

REWARDS = ("sparse", "dense")


class StateGoal(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Pixel goal task -> dict of ``observation`` / ``achieved_goal`` / ``desired_goal``."""

    def __init__(self, env: gym.Env, reward: str = "sparse") -> None:
        if reward not in REWARDS:
            raise ValueError(f"reward={reward!r} is unknown: choose one of {list(REWARDS)}")
        gym.utils.RecordConstructorArgs.__init__(self, reward=reward)
        gym.Wrapper.__init__(self, env)
        self.reward_type = reward
        task = env.unwrapped
        task.render_observations = False
        obs_dim, goal_dim = len(_flat_state(task)), len(task.state())
        box = lambda n: gym.spaces.Box(-np.inf, np.inf, (n,), dtype=np.float32)  # noqa: E731
        self.observation_space = gym.spaces.Dict(
            {
                "observation": box(obs_dim),
                "achieved_goal": box(goal_dim),
                "desired_goal": box(goal_dim),
            }
        )

    def observation(self) -> dict[str, np.ndarray]:
        return state_observation(self.env.unwrapped)

    def reset(self, **kwargs: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        _, info = self.env.reset(**kwargs)
        return self.observation(), info

    def step(self, action: np.ndarray):
        _, _, terminated, truncated, info = self.env.step(action)
        obs = self.observation()
        reward = float(self.compute_reward(obs["achieved_goal"], obs["desired_goal"], info))
        return obs, reward, terminated, truncated, info

    def compute_reward(self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any):
        """Batched reward ``(..., G), (..., G) -> (...)`` from the task's success rule."""
        task = self.env.unwrapped
        d = task.state_distance(achieved_goal, desired_goal)
        if self.reward_type == "dense":
            return (-d).astype(np.float32)
        return -(d > task.success_threshold).astype(np.float32)


def _flat_state(task: Any) -> np.ndarray:
    return np.concatenate([task.data.qpos, task.data.qvel, task.state()]).astype(np.float32)


def state_observation(task: Any) -> dict[str, np.ndarray]:
    """The state observation of an (unwrapped) task now; evaluation reads it off a pixel env."""
    return {
        "observation": _flat_state(task),
        "achieved_goal": task.state().astype(np.float32),
        "desired_goal": task.goal_state().astype(np.float32),
    }
