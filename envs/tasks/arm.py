"""A Cartesian (gantry) arm with a parallel gripper: reach, push and pick-and-place.

The MJCF is ``assets/arm.xml``: three position-controlled slide joints ``x, y, z`` on a
gantry carry a wrist with two finger pads (coupled by an equality constraint, one position
actuator) over a 0.6 m table, with a 4.5 cm, 60 g cube on a free joint. Contacts, friction
and gravity are real (the cube is held by pad friction alone); the robot bodies are
gravity-compensated, like a real arm driver. The ``x, y, z`` joint ranges are the
end-effector workspace: x, y in [-0.16, 0.16] m, z in [0.016, 0.2] m above the table top.

Actions are end-effector Cartesian deltas ``(dx, dy, dz, grip)`` in [-1, 1]^4, the action
space of real arm drivers and of V-JEPA 2-AC / DROID: each env step moves the end-effector
*target* by ``delta * max_step`` (2.5 cm per unit), clipped to the workspace box and to
``2 * max_step`` from the measured end-effector (no wind-up when blocked); the position
actuators track it (ramped over the first half of the step) over the ``frame_skip`` physics
steps. ``grip`` sets the finger opening target, absolute, not a delta: -1 closed (4 mm gap)
.. +1 open (9.4 cm gap). The targets live in ``data.userdata``, so ``get_physics_state`` /
``set_physics_state`` restore the controller with the physics.

Control rate: 12.5 Hz (physics at 500 Hz, action repeat 40). Camera ``front``: a 3/4
top-down view of the workspace; the overhead light casts the gripper's shadow straight down,
so its height shows as the gap between gripper and shadow. Proprio (robot only): end-effector
position (3), finger opening (1), end-effector velocity (3). No goal marker is drawn: the
goal is conveyed by the goal image only, rendered from the goal state.

Success rules (Fetch's 5 cm threshold, in metres):

- ``ArmReach`` (no cube in the scene): the grasp site is within ``0.05`` m of the goal 3-D
  position. Budget: 50 steps (4 s). Goal image: the gripper at the goal.
- ``ArmPush``: the cube centre is within ``0.05`` m of the goal (x, y) on the table.
  Budget: 100 steps (8 s). Goal image: the cube at the goal, the closed gripper backed off
  10 cm behind it along the push direction.
- ``ArmPickPlace``: the cube centre is within ``0.05`` m of the goal 3-D position (half of
  the goals on the table, half up to 0.15 m above it). Budget: 100 steps (8 s). Goal image:
  the cube at the goal, held between the pads.

Robot-masked observations (``hide_robot=True``; the tasks ``arm_push_masked`` /
``arm_pick_place_masked``): the robot's geoms (gantry bridge, carriage, column, palm, fingers)
are left out of every rendered image, goal image included, shadows too, so the pixels show
only the table and the cube, and the robot is known from its proprio alone. A real arm gets
the same observation by masking the pixels its kinematic model projects onto (robot-aware
visual control, Hu et al. 2022); a world model then needs ``model.proprio_state=true`` to know
where the gripper is. Physics, proprio and success are unchanged.

Two views (``two_views=True``; the task ``arm_pick_place_2view``, robot masked as above): one
camera cannot tell a lifted cube from one further back on the table (a 3/4 view maps height
and depth onto the same image rows; only the shadow separates them). The observation is then
two views stacked in one square image, each ``image_size / 2`` rows high: on top an overview of
the table from the front (camera ``overview``, 35 degrees down), below a near-level view from
the +x side (camera ``side``), where height is image rows and y is columns. Everything else
(image size, channels, models, datasets) stays as for one camera.

Starts: the gripper 8-18 cm above the table anywhere over it, with a random opening; the cube
at x, y in [-0.1, 0.1] m with yaw in +-45 deg (push) or +-0.4 rad (pick-place: the wrist does
not rotate). Goals are drawn at least 10 cm from the start (ee for reach, cube otherwise).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import mujoco
import numpy as np

from envs.base import GoalEnv, new_renderer

_ASSET = Path(__file__).parent / "assets" / "arm.xml"
# physics state + the controller targets kept in userdata + the solver warm start, so that a
# restored state replays bit-identically
_STATE = (
    mujoco.mjtState.mjSTATE_FULLPHYSICS
    | mujoco.mjtState.mjSTATE_USERDATA
    | mujoco.mjtState.mjSTATE_WARMSTART
)

CUBE_HALF = 0.0225  #: cube half side (m)
PAD_GAP = 0.004  #: gap between the finger pads when fully closed (m)
_FINGER_MAX = 0.045  #: travel of each finger joint (m); opening = PAD_GAP + 2 * travel
_GRASP_Q = CUBE_HALF - PAD_GAP / 2  # finger travel at which the pads touch the cube
_OBJECT_RANGE = 0.1  # cube starts and push / pick-place goals in [-0.1, 0.1]^2
_MIN_GOAL_DIST = 0.1  # goals are drawn at least this far from the start (m)
_PUSH_Z = 0.025  # grasp-site height when pushing: pads straddle the cube's mid-height
_TRAVEL_Z = 0.085  # height at which the gripper clears the cube
_BEHIND = 0.06  # pusher stand-off behind the cube centre along the push direction
_BACK_OFF = 0.1  # after a push the gripper backs off this far (keeps the cube in view)
_ROBOT_BODIES = ("bridge", "carriage", "column", "finger_l", "finger_r")
_ROBOT_GROUP = 2  # geom group of the robot (shown by default); hide_robot turns it off
# two_views cameras (name, position, point looked at, vertical field of view in degrees)
_VIEWS = (
    ("overview", (0.0, -0.62, 0.50), (0.0, 0.02, 0.06), 28.0),
    ("side", (0.75, 0.0, 0.13), (0.0, 0.0, 0.085), 19.0),
)


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Distance from point ``p`` to the segment ``a``-``b`` (2-D)."""
    ab = b - a
    t = np.clip((p - a) @ ab / max(ab @ ab, 1e-12), 0.0, 1.0)
    return float(np.linalg.norm(a + t * ab - p))


def _look_at(pos: tuple[float, ...], target: tuple[float, ...]) -> list[float]:
    """MuJoCo ``xyaxes`` of a camera at ``pos`` looking at ``target``, image up toward +z."""
    forward = np.subtract(target, pos) / np.linalg.norm(np.subtract(target, pos))
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    return [*right, *np.cross(right, forward)]


def _yaw_quat(yaw: float) -> np.ndarray:
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])


class _ArmTask(GoalEnv):
    """Shared model and end-effector controller of the arm tasks.

    Robot-adapter interface (what a sim-arm adapter wraps):

    - ``ee_position()`` (3,) grasp-site position (midpoint of the pads) in the world frame
      (m), table top at z = 0; ``ee_velocity()`` (3,) its velocity (m/s);
      ``finger_opening()`` the gap between the pads (m), in ``opening_range``;
    - ``workspace_low`` / ``workspace_high`` (3,) the end-effector box (m), equal to the
      ``x, y, z`` joint limits;
    - ``joint_names`` ``("x", "y", "z", "finger_l", "finger_r")`` and ``joint_limits``
      (5, 2) in the same order (slide joints, m);
    - ``max_step`` metres of target motion per unit action per env step;
    - ``ee_target()`` the commanded end-effector target (3,).

    ``state()`` / ``goal_state()``: ee position (3), finger opening (1), then for the cube
    tasks cube position (3) and quaternion (4, w x y z).
    """

    frame_skip = 40
    camera = "front"
    success_threshold = 0.05
    #: metres of end-effector target motion per unit action per env step
    max_step: float = 0.025
    joint_names: ClassVar[tuple[str, ...]] = ("x", "y", "z", "finger_l", "finger_r")
    #: (closed, open) gap between the finger pads (m)
    opening_range: ClassVar[tuple[float, float]] = (PAD_GAP, PAD_GAP + 2 * _FINGER_MAX)
    #: whether the scene has the cube
    has_cube: ClassVar[bool] = True

    def __init__(self, hide_robot: bool = False, two_views: bool = False, **kwargs: Any) -> None:
        self._ramp_from = np.zeros(3)
        self._substep = 0
        self.two_views = bool(two_views)
        self._view_renderer: mujoco.Renderer | None = None
        super().__init__(**kwargs)
        if self.two_views and self.image_size % 2:
            raise ValueError(
                f"image_size={self.image_size} with two_views: use an even size (two views of "
                "image_size / 2 rows each)"
            )
        self.hide_robot = bool(hide_robot)
        if self.hide_robot:
            self._hide_geom_group(_ROBOT_GROUP)

    # the controller state lives in ``data.userdata`` so ``get/set_physics_state`` restore it
    @property
    def _target(self) -> np.ndarray:
        return self.data.userdata[:3]

    @_target.setter
    def _target(self, value: np.ndarray) -> None:
        self.data.userdata[:3] = value

    @property
    def _finger_target(self) -> float:
        return float(self.data.userdata[3])

    @_finger_target.setter
    def _finger_target(self, value: float) -> None:
        self.data.userdata[3] = value

    # ---- model ------------------------------------------------------------------------
    def _build_model(self) -> mujoco.MjModel:
        spec = mujoco.MjSpec.from_file(str(_ASSET))
        if not self.has_cube:
            spec.delete(spec.body("cube"))
        if self.two_views:
            for name, pos, target, fovy in _VIEWS:
                spec.worldbody.add_camera(
                    name=name, pos=pos, xyaxes=_look_at(pos, target), fovy=fovy
                )
        model = spec.compile()
        robot = {model.body(n).id for n in _ROBOT_BODIES}
        model.geom_group[np.isin(model.geom_bodyid, list(robot))] = _ROBOT_GROUP  # visual only
        joints = [model.joint(n) for n in self.joint_names]
        self._arm_q = np.array([int(j.qposadr[0]) for j in joints[:3]])
        self._arm_v = np.array([int(j.dofadr[0]) for j in joints[:3]])
        self._finger_q = np.array([int(j.qposadr[0]) for j in joints[3:]])
        self._finger_v = np.array([int(j.dofadr[0]) for j in joints[3:]])
        self._cube_q = int(model.joint("cube").qposadr[0]) if self.has_cube else -1
        self.joint_limits = np.array([j.range for j in joints], dtype=np.float64)
        self.workspace_low = self.joint_limits[:3, 0].copy()
        self.workspace_high = self.joint_limits[:3, 1].copy()
        return model

    def action_dim(self) -> int:
        return 4

    def observation_cameras(self) -> tuple[str, ...]:
        """The cameras the observation image is rendered from, top to bottom (two views stack
        two, each ``image_size / 2`` rows high)."""
        return tuple(v[0] for v in _VIEWS) if self.two_views else (str(self.camera),)

    def _render_pixels(self) -> np.ndarray:
        if not self.two_views:
            return super()._render_pixels()
        if self._view_renderer is None:
            self._view_renderer = new_renderer(self.model, self.image_size // 2, self.image_size)
        views = []
        for name in self.observation_cameras():
            self._view_renderer.update_scene(self.data, camera=name, scene_option=self.scene_option)
            views.append(self._view_renderer.render().copy())
        return np.concatenate(views, axis=0)  # (image_size, image_size, 3)

    def close(self) -> None:
        if self._view_renderer is not None:
            self._view_renderer.close()
            self._view_renderer = None
        super().close()

    # ---- named physics queries --------------------------------------------------------
    def ee_position(self) -> np.ndarray:
        # the grasp site sits at (qx, qy, qz) by construction; qpos is never stale after a step
        return self.data.qpos[self._arm_q].copy()

    def ee_velocity(self) -> np.ndarray:
        return self.data.qvel[self._arm_v].copy()

    def ee_target(self) -> np.ndarray:
        return self._target.copy()

    def finger_opening(self) -> float:
        return float(PAD_GAP + self.data.qpos[self._finger_q].sum())

    def cube_position(self) -> np.ndarray:
        return self.data.qpos[self._cube_q : self._cube_q + 3].copy()

    def cube_quat(self) -> np.ndarray:
        return self.data.qpos[self._cube_q + 3 : self._cube_q + 7].copy()

    # ---- controller -------------------------------------------------------------------
    def step(
        self, action: np.ndarray
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        if self._goal_obs is not None:  # else super().step raises the reset() error
            self._set_targets(self.validate_action(action))
        return super().step(action)

    def _set_targets(self, a: np.ndarray) -> None:
        """Move the end-effector target by ``a[:3] * max_step``; set the finger target."""
        ee = self.ee_position()
        target = self._target + a[:3] * self.max_step
        target = np.clip(target, ee - 2 * self.max_step, ee + 2 * self.max_step)
        self._ramp_from = self._target.copy()
        self._target = np.clip(target, self.workspace_low, self.workspace_high)
        self._finger_target = _FINGER_MAX * (a[3] + 1.0) / 2.0
        self._substep = 0

    def _apply_action(self, action: np.ndarray) -> None:
        # the target ramps over the first half of the env step, the second half settles
        frac = min(1.0, (self._substep + 1) / (self.frame_skip // 2))
        self.data.ctrl[:3] = self._ramp_from + frac * (self._target - self._ramp_from)
        self.data.ctrl[3] = self._finger_target
        self._substep += 1

    # ---- physics state: the controller state (userdata) and the solver warm start included
    def get_physics_state(self) -> np.ndarray:
        out = np.empty(mujoco.mj_stateSize(self.model, _STATE))
        mujoco.mj_getState(self.model, self.data, out, _STATE)
        return out

    def set_physics_state(self, state: np.ndarray) -> None:
        mujoco.mj_setState(self.model, self.data, state, _STATE)
        mujoco.mj_forward(self.model, self.data)

    def _place_robot(self, ee: np.ndarray, finger_q: float) -> None:
        """Put the arm at ``ee`` with both fingers at ``finger_q``, at rest, on target."""
        self.data.qpos[self._arm_q] = ee
        self.data.qpos[self._finger_q] = finger_q
        self._target = ee.copy()
        self._ramp_from = ee.copy()
        self._finger_target = finger_q
        self._substep = self.frame_skip
        self.data.ctrl[:3] = ee
        self.data.ctrl[3] = finger_q

    def _robot_qpos(self, ee: np.ndarray, finger_q: float) -> np.ndarray:
        qpos = self.data.qpos.copy()
        qpos[self._arm_q] = np.clip(ee, self.workspace_low, self.workspace_high)
        qpos[self._finger_q] = finger_q
        return qpos

    def _sample_start(self, rng: np.random.Generator) -> None:
        """Gripper above cube height anywhere over the table, random finger opening."""
        ee = rng.uniform([-0.12, -0.12, 0.08], [0.12, 0.12, 0.18])
        self._place_robot(ee, float(rng.uniform(0.0, _FINGER_MAX)))

    # ---- GoalEnv hooks ----------------------------------------------------------------
    def _proprio(self) -> np.ndarray:
        return np.concatenate([self.ee_position(), [self.finger_opening()], self.ee_velocity()])

    def state(self) -> np.ndarray:
        """ee position (3), finger opening (1), cube position (3), cube quaternion (4)."""
        return np.concatenate(
            [self.ee_position(), [self.finger_opening()], self.cube_position(), self.cube_quat()]
        )

    def goal_state(self) -> np.ndarray:
        qpos = self._goal_qpos()
        c = self._cube_q
        return np.concatenate(
            [qpos[self._arm_q], [PAD_GAP + qpos[self._finger_q].sum()], qpos[c : c + 7]]
        )

    def _grip_to_keep(self) -> float:
        """The grip action that keeps the current finger target."""
        return 2.0 * self._finger_target / _FINGER_MAX - 1.0

    def _move_towards(self, desired: np.ndarray, grip: float) -> np.ndarray:
        """Action that moves the end-effector straight to ``desired`` (capped per step)."""
        delta = (desired - self.ee_position()) / self.max_step
        delta = delta / max(1.0, float(np.abs(delta).max()))  # keep the direction
        return np.append(delta, grip).astype(np.float32)


class ArmReach(_ArmTask):
    """Move the grasp site to a goal 3-D position (no cube in the scene)."""

    max_episode_steps = 50
    has_cube = False

    def _sample_episode(self, rng: np.random.Generator) -> None:
        self._sample_start(rng)
        start = self.data.qpos[self._arm_q].copy()
        while True:
            goal = rng.uniform([-0.14, -0.14, 0.03], [0.14, 0.14, 0.18])
            if np.linalg.norm(goal - start) >= _MIN_GOAL_DIST:
                break
        self._goal = goal
        self._goal_finger_q = self._finger_target  # the opening is not part of the goal

    def _goal_qpos(self) -> np.ndarray:
        return self._robot_qpos(self._goal, self._goal_finger_q)

    def state(self) -> np.ndarray:
        """ee position (3), finger opening (1)."""
        return np.append(self.ee_position(), self.finger_opening())

    def goal_state(self) -> np.ndarray:
        return np.append(self._goal, PAD_GAP + 2 * self._goal_finger_q)

    def distance_to_goal(self) -> float:
        return float(np.linalg.norm(self.ee_position() - self._goal))

    def state_distance(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.linalg.norm(np.asarray(a)[..., :3] - np.asarray(b)[..., :3], axis=-1)

    def oracle_action(self) -> np.ndarray:
        return self._move_towards(self._goal, self._grip_to_keep())


class ArmPush(_ArmTask):
    """Push the cube on the table to a goal (x, y); the gripper stays closed."""

    max_episode_steps = 100

    def _sample_episode(self, rng: np.random.Generator) -> None:
        self._sample_start(rng)
        cube = rng.uniform(-_OBJECT_RANGE, _OBJECT_RANGE, 2)
        yaw = rng.uniform(-np.pi / 4, np.pi / 4)
        c = self._cube_q
        self.data.qpos[c : c + 7] = [*cube, CUBE_HALF, *_yaw_quat(yaw)]
        while True:
            goal = rng.uniform(-_OBJECT_RANGE, _OBJECT_RANGE, 2)
            if np.linalg.norm(goal - cube) >= _MIN_GOAL_DIST:
                break
        self._goal = goal
        self._goal_yaw = yaw
        self._push_dir = (goal - cube) / np.linalg.norm(goal - cube)

    def _goal_qpos(self) -> np.ndarray:
        # the cube at the goal, the closed gripper backed off behind it (where a push ends)
        ee = np.append(self._goal - self._push_dir * _BACK_OFF, _PUSH_Z)
        qpos = self._robot_qpos(ee, 0.0)
        c = self._cube_q
        qpos[c : c + 7] = [*self._goal, CUBE_HALF, *_yaw_quat(self._goal_yaw)]
        return qpos

    def distance_to_goal(self) -> float:
        return float(np.linalg.norm(self.cube_position()[:2] - self._goal))

    def state_distance(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.linalg.norm(np.asarray(a)[..., 4:6] - np.asarray(b)[..., 4:6], axis=-1)

    def oracle_action(self) -> np.ndarray:
        """Go behind the cube (over it when in the way), lower, push, back off.

        Re-approaches from behind whenever the pusher drifts off the cube-goal line.
        """
        ee, cube = self.ee_position(), self.cube_position()[:2]
        to_goal = self._goal - cube
        dist = float(np.linalg.norm(to_goal))
        if dist < 0.01:  # done: back off along the push line, as in the goal image
            if (ee[:2] - cube) @ self._push_dir < -0.02:
                back = np.append(self._goal - self._push_dir * _BACK_OFF, _PUSH_Z)
                return self._move_towards(back, -1.0)
            return self._move_towards(ee, -1.0)
        u = to_goal / dist
        n = np.array([-u[1], u[0]])
        rel = ee[:2] - cube
        along, lateral = float(rel @ u), float(rel @ n)
        if along < -0.025 and abs(lateral) < 0.012 and ee[2] < _PUSH_Z + 0.015:
            # push along the line, steering the contact back onto it
            xy = ee[:2] + u * min(self.max_step, dist) - n * lateral
            return self._move_towards(np.append(xy, _PUSH_Z), -1.0)
        behind = cube - u * _BEHIND
        if np.linalg.norm(ee[:2] - behind) < 0.01:
            return self._move_towards(np.append(behind, _PUSH_Z), -1.0)  # lower
        if _segment_distance(cube, ee[:2], behind) < 0.055:  # the cube is in the way
            if ee[2] < _TRAVEL_Z - 0.01:
                return self._move_towards(np.append(ee[:2], _TRAVEL_Z), -1.0)
            return self._move_towards(np.append(behind, _TRAVEL_Z), -1.0)
        return self._move_towards(np.append(behind, _PUSH_Z), -1.0)


class ArmPickPlace(_ArmTask):
    """Pick the cube and place it at a goal 3-D position (on the table or in the air)."""

    max_episode_steps = 100

    def _sample_episode(self, rng: np.random.Generator) -> None:
        self._sample_start(rng)
        cube = np.append(rng.uniform(-_OBJECT_RANGE, _OBJECT_RANGE, 2), CUBE_HALF)
        c = self._cube_q
        self.data.qpos[c : c + 7] = [*cube, *_yaw_quat(rng.uniform(-0.4, 0.4))]
        while True:
            lift = rng.uniform(0.0, 0.15) if rng.uniform() < 0.5 else 0.0
            goal = np.append(rng.uniform(-_OBJECT_RANGE, _OBJECT_RANGE, 2), CUBE_HALF + lift)
            if np.linalg.norm(goal - cube) >= _MIN_GOAL_DIST:
                break
        self._goal = goal

    def _goal_qpos(self) -> np.ndarray:
        # the cube at the goal, held square between the pads
        qpos = self._robot_qpos(self._goal, _GRASP_Q)
        c = self._cube_q
        qpos[c : c + 7] = [*self._goal, 1.0, 0.0, 0.0, 0.0]
        return qpos

    def distance_to_goal(self) -> float:
        return float(np.linalg.norm(self.cube_position() - self._goal))

    def state_distance(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.linalg.norm(np.asarray(a)[..., 4:7] - np.asarray(b)[..., 4:7], axis=-1)

    def _holding(self) -> bool:
        """Fingers commanded closed and at rest on the cube (not on air), cube between them."""
        opening = self.finger_opening()
        near = np.linalg.norm(self.cube_position() - self.ee_position()) < 0.02
        on_cube = 2 * CUBE_HALF - 0.008 < opening < 2 * np.sqrt(2) * CUBE_HALF + 0.002
        settled = float(np.abs(self.data.qvel[self._finger_v]).max()) < 0.01
        return bool(near and on_cube and settled and self._finger_target == 0.0)

    def oracle_action(self) -> np.ndarray:
        """Open above the cube, descend, close, lift, carry to the goal."""
        ee, cube = self.ee_position(), self.cube_position()
        if self._holding():
            err = self._goal - cube
            carry_z = max(self._goal[2], 0.06)  # cube height while carrying over the table
            if np.linalg.norm(err[:2]) > 0.02:
                lift = np.array([0.0, 0.0, carry_z - cube[2]])
                if cube[2] < carry_z - 0.01:  # lift first
                    return self._move_towards(ee + lift, -1.0)
                return self._move_towards(ee + lift + np.append(err[:2], 0.0), -1.0)
            return self._move_towards(ee + err, -1.0)  # lower / raise onto the goal
        xy_err = float(np.linalg.norm(ee[:2] - cube[:2]))
        if xy_err > 0.008:
            if ee[2] < cube[2] + 0.04 and xy_err < 0.06:  # pads could hit the cube: rise
                return self._move_towards(np.append(ee[:2], cube[2] + 0.065), 1.0)
            return self._move_towards(np.append(cube[:2], cube[2] + 0.065), 1.0)
        if ee[2] > cube[2] + 0.006:
            if self.finger_opening() < 2 * CUBE_HALF + 0.03:  # wait for the fingers to open
                return self._move_towards(np.append(cube[:2], ee[2]), 1.0)
            return self._move_towards(cube, 1.0)  # descend around the cube
        return self._move_towards(np.append(cube[:2], ee[2]), -1.0)  # close
