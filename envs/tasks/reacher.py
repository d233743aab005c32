"""dm_control reacher (easy / hard) as a goal-image reaching task.

The MJCF is dm_control's ``reacher.xml``; the links and fingertip get thicker *visual* twins
(massless, no contacts) so they show at 64x64, and the target marker is hidden: the goal is an
image of the arm at a goal configuration (drawn uniformly over the joint ranges).

Success rule (dm_control's radii): the fingertip is within ``0.06`` m (easy: target 0.05 +
finger 0.01) or ``0.025`` m (hard: target 0.015 + finger 0.01) of the goal fingertip position.
Step budget: 50 steps at 12.5 Hz (action repeat 4). Actions: 2 joint torques in [-1, 1].
Proprio (5): cos/sin of the shoulder angle (an unlimited hinge), the wrist angle itself (a hinge
limited to +-160 deg: its cos/sin would put the arm folded at -160 deg next to a goal at +120
deg, across the limit, and a planner would press the arm into the limit), both joint velocities.
"""

from __future__ import annotations

import mujoco
import numpy as np
from dm_control.suite import reacher

from envs.base import GoalEnv

_WRIST_LIMIT = np.deg2rad(160.0)


def _wrap(angle: np.ndarray) -> np.ndarray:
    return (angle + np.pi) % (2 * np.pi) - np.pi


class Reacher(GoalEnv):
    frame_skip = 4
    max_episode_steps = 50
    camera = "obs"

    def __init__(self, difficulty: str = "easy", **kwargs) -> None:
        radii = {"easy": 0.06, "hard": 0.025}
        if difficulty not in radii:
            raise ValueError(f"difficulty={difficulty!r} is unknown: use one of {list(radii)}")
        self.difficulty = difficulty
        self.success_threshold = radii[difficulty]
        super().__init__(**kwargs)

    def _build_model(self) -> mujoco.MjModel:
        xml, assets = reacher.get_model_and_assets()
        spec = mujoco.MjSpec.from_string(xml.decode(), assets)
        for name, size in (("arm", 0.022), ("hand", 0.022)):
            g = spec.geom(name)
            body = spec.body(name)
            v = body.add_geom(
                type=mujoco.mjtGeom.mjGEOM_CAPSULE, fromto=list(g.fromto), size=[size, 0, 0]
            )
            v.contype, v.conaffinity, v.density, v.material = 0, 0, 0.0, "self"
        f = spec.body("finger").add_geom(type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[0.03, 0, 0])
        f.contype, f.conaffinity, f.density, f.material = 0, 0, 0.0, "effector"
        spec.geom("target").rgba = [0, 0, 0, 0]
        spec.geom("target").material = ""
        spec.worldbody.add_camera(name="obs", pos=[0, 0, 0.62])  # frames the reachable disc
        return spec.compile()

    def _sample_episode(self, rng: np.random.Generator) -> None:
        start = np.array([rng.uniform(-np.pi, np.pi), rng.uniform(-_WRIST_LIMIT, _WRIST_LIMIT)])
        self.data.qpos[:] = start
        mujoco.mj_forward(self.model, self.data)
        here = self._fingertip()
        while True:
            goal = np.array([rng.uniform(-np.pi, np.pi), rng.uniform(-_WRIST_LIMIT, _WRIST_LIMIT)])
            self._goal_tip = self._fingertip_at(goal)
            if np.linalg.norm(self._goal_tip - here) > 2 * self.success_threshold:
                break
        self._goal = goal

    def _fingertip(self) -> np.ndarray:
        return self.data.body("finger").xpos[:2].copy()

    def _fingertip_at(self, qpos: np.ndarray) -> np.ndarray:
        a, b = qpos
        return 0.12 * np.array([np.cos(a), np.sin(a)]) + 0.12 * np.array(
            [np.cos(a + b), np.sin(a + b)]
        )

    def _goal_qpos(self) -> np.ndarray:
        return self._goal.copy()

    def _proprio(self) -> np.ndarray:
        q = self.data.qpos
        return np.concatenate([[np.cos(q[0]), np.sin(q[0]), q[1]], self.data.qvel])

    def state(self) -> np.ndarray:
        return np.concatenate([self._fingertip(), self.data.qpos])

    def goal_state(self) -> np.ndarray:
        return np.concatenate([self._goal_tip, self._goal])

    def distance_to_goal(self) -> float:
        return float(np.linalg.norm(self._fingertip() - self._goal_tip))

    def oracle_action(self) -> np.ndarray:
        err = self._goal - self.data.qpos
        err[0] = _wrap(err[0])
        return np.clip(3.0 * err - 0.3 * self.data.qvel, -1.0, 1.0)
