"""Two rooms joined by a door: the agent must find the door in the wall (as DINO-WM's Wall).

A 2 x 2 m arena split by a vertical wall at x = 0 with a 0.4 m door whose height is drawn per
episode from [-0.5, 0.5] m, so the door must be read from the image. The start is in one room
and the goal in the other (side drawn at random).

Success rule: the ball centre is within ``0.1`` m of the goal position.
Step budget: 100 steps at 10 Hz (action repeat 10, physics at 100 Hz).
Actions: 2-D force in [-1, 1]. Proprio: position (2) and velocity (2).
"""

from __future__ import annotations

import mujoco
import numpy as np

from envs.tasks.nav import PlanarNav, add_ball, add_wall, planar_scene

HALF = 1.0  # arena half-width
DOOR = 0.4  # door width
BALL = 0.08
_WALL_LEN = 2 * HALF  # each wall segment is an arena long; the door moves them along y


class TwoRoom(PlanarNav):
    success_threshold = 0.1
    max_episode_steps = 100
    kp, kd = 5.0, 0.8
    door_y: float = 0.0  #: door centre; drawn per episode

    def _build_model(self) -> mujoco.MjModel:
        spec = planar_scene(HALF + 0.05, camera_height=3.0)
        t = 0.05
        for sx, sy, w, h in (
            (1, 0, t, HALF + t),
            (-1, 0, t, HALF + t),
            (0, 1, HALF, t),
            (0, -1, HALF, t),
        ):
            add_wall(spec, [sx * (HALF + t), sy * (HALF + t), 0.1], [w, h, 0.1])
        add_wall(spec, [0, 0, 0.1], [t, _WALL_LEN / 2, 0.1], name="wall_low")
        add_wall(spec, [0, 0, 0.1], [t, _WALL_LEN / 2, 0.1], name="wall_high")
        add_ball(spec, radius=BALL, force=6.0, damping=4.0)
        return spec.compile()

    def _place_door(self, door_y: float) -> None:
        self.door_y = door_y
        m = self.model
        m.geom("wall_low").pos[1] = door_y - DOOR / 2 - _WALL_LEN / 2
        m.geom("wall_high").pos[1] = door_y + DOOR / 2 + _WALL_LEN / 2

    def _sample_episode(self, rng: np.random.Generator) -> None:
        self._place_door(float(rng.uniform(-0.5, 0.5)))
        side = rng.choice([-1.0, 1.0])
        lo, hi = 0.2, HALF - 0.15
        start = np.array([side * rng.uniform(lo, hi), rng.uniform(-hi, hi)])
        self._goal = np.array([-side * rng.uniform(lo, hi), rng.uniform(-hi, hi)])
        self.data.qpos[:] = start

    def state(self) -> np.ndarray:
        return np.concatenate([self.data.qpos, [self.door_y]])

    def goal_state(self) -> np.ndarray:
        return np.concatenate([self._goal, [self.door_y]])

    def oracle_action(self) -> np.ndarray:
        """Line up with the door on this side, pass through, then go to the goal."""
        x, y = self.data.qpos
        if np.sign(x) == np.sign(self._goal[0]) and abs(x) > BALL + 0.06:
            return self._steer(self._goal)
        here = np.sign(x) if abs(x) > 0.05 else -np.sign(self._goal[0])
        if abs(y - self.door_y) < DOOR / 2 - BALL - 0.02 or abs(x) < 0.1:
            return self._steer(np.array([-here * 0.3, self.door_y]))
        return self._steer(np.array([here * 0.25, self.door_y]))
