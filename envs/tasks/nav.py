"""A force-driven ball on a plane: the shared body of the maze and two-room tasks."""

from __future__ import annotations

import mujoco
import numpy as np

from envs.base import GoalEnv

FLOOR_RGBA = [0.85, 0.85, 0.8, 1.0]
WALL_RGBA = [0.2, 0.25, 0.45, 1.0]
BALL_RGBA = [0.9, 0.35, 0.1, 1.0]


def planar_scene(half_extent: float, camera_height: float) -> mujoco.MjSpec:
    """A lit floor and a top-down camera named ``top`` that frames ``[-half, half]^2``."""
    spec = mujoco.MjSpec()
    spec.option.timestep = 0.01
    spec.option.gravity = [0, 0, 0]
    world = spec.worldbody
    world.add_light(
        pos=[0, 0, 5],
        dir=[0, 0, -1],
        type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL,
        castshadow=False,
    )
    floor = world.add_geom(
        type=mujoco.mjtGeom.mjGEOM_PLANE, size=[half_extent * 2, half_extent * 2, 0.1]
    )
    floor.rgba, floor.contype, floor.conaffinity = FLOOR_RGBA, 0, 0
    fovy = float(np.rad2deg(2 * np.arctan(half_extent / camera_height)))
    world.add_camera(name="top", pos=[0, 0, camera_height], fovy=fovy)
    return spec


def add_wall(
    spec: mujoco.MjSpec, center: list[float], half_size: list[float], name: str = ""
) -> None:
    g = spec.worldbody.add_geom(
        type=mujoco.mjtGeom.mjGEOM_BOX, pos=center, size=half_size, rgba=WALL_RGBA
    )
    if name:
        g.name = name


def add_ball(spec: mujoco.MjSpec, radius: float, force: float, damping: float) -> None:
    """A 1 kg ball on slide joints x/y, driven by two motors of ``force`` newtons."""
    body = spec.worldbody.add_body(name="ball", pos=[0, 0, radius])
    for axis, name in (([1, 0, 0], "ball_x"), ([0, 1, 0], "ball_y")):
        body.add_joint(name=name, type=mujoco.mjtJoint.mjJNT_SLIDE, axis=axis, damping=damping)
        spec.add_actuator(
            name=name,
            target=name,
            trntype=mujoco.mjtTrn.mjTRN_JOINT,
            gear=[force, 0, 0, 0, 0, 0],
            ctrlrange=[-1, 1],
            ctrllimited=True,
        )
    body.add_geom(
        type=mujoco.mjtGeom.mjGEOM_SPHERE,
        size=[radius, 0, 0],
        mass=1.0,
        rgba=BALL_RGBA,
        friction=[0.0, 0.005, 0.0001],
    )


class PlanarNav(GoalEnv):
    """Ball navigation: proprio = position (2) + velocity (2); goal = a ball position."""

    frame_skip = 10  # 10 Hz control at 100 Hz physics
    camera = "top"
    distance_units = "m"
    kp, kd = 4.0, 0.8

    def _goal_qpos(self) -> np.ndarray:
        return self._goal.copy()

    def _proprio(self) -> np.ndarray:
        return np.concatenate([self.data.qpos, self.data.qvel])

    def state(self) -> np.ndarray:
        return self.data.qpos.copy()

    def goal_state(self) -> np.ndarray:
        return self._goal.copy()

    def distance_to_goal(self) -> float:
        return float(np.linalg.norm(self.data.qpos - self._goal))

    def _steer(self, target: np.ndarray) -> np.ndarray:
        """PD toward a waypoint."""
        return np.clip(self.kp * (target - self.data.qpos) - self.kd * self.data.qvel, -1, 1)
