"""dm_control point_mass as a goal-image navigation task.

The MJCF is dm_control's ``point_mass.xml``; the mass is drawn larger (contacts are disabled,
so this changes nothing in the dynamics) and the target marker is hidden, so the goal is
conveyed only by the goal image.

Success rule: the point is within ``0.03`` m (3 cm; the arena is 0.6 m wide) of the goal
position. Step budget: 100 steps at 12.5 Hz (action repeat 4, physics at 50 Hz).
Actions: 2-D force in [-1, 1]. Proprio: position (2) and velocity (2).
"""

from __future__ import annotations

import mujoco
import numpy as np
from dm_control.suite import point_mass

from envs.tasks.nav import PlanarNav

_ARENA = 0.25  # start and goal positions are drawn from [-0.25, 0.25]^2


class PointMass(PlanarNav):
    """A planar point: shares the ball-navigation hooks (proprio, state, distance, PD steer)."""

    success_threshold = 0.03
    frame_skip = 4
    max_episode_steps = 100
    camera = "fixed"
    kp, kd = 40.0, 2.0

    def _build_model(self) -> mujoco.MjModel:
        xml, assets = point_mass.get_model_and_assets()
        spec = mujoco.MjSpec.from_string(xml.decode(), assets)
        spec.geom("pointmass").size[0] = 0.03
        spec.geom("target").rgba = [0, 0, 0, 0]
        spec.geom("target").material = ""
        return spec.compile()

    def _sample_episode(self, rng: np.random.Generator) -> None:
        start = rng.uniform(-_ARENA, _ARENA, 2)
        while True:
            goal = rng.uniform(-_ARENA, _ARENA, 2)
            if np.linalg.norm(goal - start) > 2 * self.success_threshold:
                break
        self.data.qpos[:] = start
        self._goal = goal

    def oracle_action(self) -> np.ndarray:
        return self._steer(self._goal)
