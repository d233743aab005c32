"""Push-T: push a T-shaped block to a goal position *and* orientation with a round pusher.

A planar pushing task in the spirit of Diffusion Policy's / DINO-WM's Push-T, simulated in
MuJoCo (the MJCF is built in this module). A 0.5 m x 0.5 m arena is bounded by low walls. The
T (a 0.15 x 0.04 m bar on a 0.04 x 0.11 m stem, 2 cm tall, 0.1 kg) slides on the floor on
joints ``block_x, block_y, block_z, block_yaw`` (origin at its centre of mass); real floor
contacts with Coulomb friction (mu = 0.5, as for every contact) stop it within millimetres
once it is no longer pushed, so it moves quasi-statically. The pusher is a 2 cm radius disc on
slide joints ``pusher_x, pusher_y`` that floats just above the floor, driven by stiff
position actuators.

Actions: 2-D pusher displacement in [-1, 1]^2. Each env step moves the pusher *target* by
``a * max_step`` (2 cm per unit, i.e. up to 0.2 m/s), clipped to the arena and to
``2 * max_step`` from the measured pusher (no wind-up when blocked); the actuators track the
target, ramped linearly over the step. Control rate: 10 Hz (physics at 200 Hz, action
repeat 20). Proprio (robot only): pusher position (2) and velocity (2). Camera ``top``: an
orthographic top-down view framing the arena walls; the T is red, the pusher blue, the floor
light grey. No goal marker is drawn: the goal is conveyed by the goal image only, rendered
from the goal state (block at the goal pose, pusher resting 1-5 cm clear of it).

Pusher-masked observations (``hide_pusher=True``; the task ``push_t_masked``): the pusher is
left out of every rendered image, goal image included, so the pixels show only the arena and
the T, and the pusher is known from its proprio alone, as the arm tasks' robot is in
``arm_push_masked`` (a real robot masks the pixels its kinematic model projects onto). A world
model then needs ``model.proprio_state=true`` to know where the pusher is. Physics, proprio,
seeds, oracle and success are those of ``push_t``.

Task distribution: the block starts with its centre of mass in [-0.08, 0.08]^2 m at a uniform
random yaw; the goal pose has its centre in the same square, at most 0.15 m from the start,
and a yaw within +-90 degrees of the start yaw; start and goal are at least 0.04 m apart in
the distance below (twice the success threshold). The pusher starts anywhere in the arena at
least 1 cm clear of the block. ``reset(options={"start_range": r})`` draws the block's start
centre in [-r, r]^2 instead (r up to 0.2 m; the whole T inside the arena, the goal anywhere in
the task's square): episodes that start near the walls, where the task's own episodes rarely
go, for data that covers recovering from there (``agent.collect start_range=r``).

Distance: the mean distance (m) between the 8 outline corners of the T at its current pose
and at the goal pose. It is 0 only at the goal pose and grows with both position and
orientation error: a pure translation by ``d`` gives ``d``; a pure rotation by ``a`` about the
centre of mass gives ``2 sin(a/2) * 0.0726`` m (the corners' mean distance from it).

Success rule: distance ``<= 0.02`` m, i.e. the T within 2 cm of the goal position at the goal
yaw, or within 15.8 degrees of the goal yaw at the goal position (a mix of smaller errors in
between). Step budget: 150 steps (15 s at 10 Hz).

Oracle (``oracle_action``): a greedy push-primitive planner that simulates its candidate
pushes with ``mujoco.rollout`` (see ``_PushOracle``); it reached the goal on 40/40 seeds
(0-39: 39 steps on average, 74 at most) and 100/100 more (1000-1099: 35 on average, 71 at
most; ``python scripts/oracle_success.py --tasks push_t --episodes 40 --seed 0``, and
``--episodes 100 --seed 1000``), at about
20-25 env steps/s on one core. It tolerates action noise (it steers a drifted pusher target
back onto its path): with Gaussian noise sigma 0.2 and a uniform action 10% of the time
(``agent.collect env=push_t policy=noisy_oracle policy_sigma=0.2 policy_eps=0.1
episodes=1000``) it reached the goal in 882 of 1000 episodes (seeds 0-999), median 78 steps
(``python scripts/data_motion.py --data <that dataset> --dims 2:4``).
"""

from __future__ import annotations

import dataclasses
import heapq
import os
from dataclasses import dataclass
from typing import Any

import mujoco
import numpy as np
from mujoco import rollout

from envs.base import GoalEnv

ARENA_HALF = 0.25  #: half width of the arena inside the walls (m)
PUSHER_RADIUS = 0.02  #: pusher disc radius (m)
BLOCK_HALF_HEIGHT = 0.01  #: half height of the T (m)
BAR_HALF = np.array([0.075, 0.02])  #: half sizes of the T's bar (m)
STEM_HALF = np.array([0.02, 0.055])  #: half sizes of the T's stem (m)
# the body origin is the T's centre of mass; the bar sits on top of the stem along +y
_BAR_AREA, _STEM_AREA = np.prod(BAR_HALF), np.prod(STEM_HALF)
_COM_Y = (_BAR_AREA * BAR_HALF[1] - _STEM_AREA * STEM_HALF[1]) / (_BAR_AREA + _STEM_AREA)
BAR_CENTER = np.array([0.0, BAR_HALF[1] - _COM_Y])  #: bar centre in the block frame (m)
STEM_CENTER = np.array([0.0, -STEM_HALF[1] - _COM_Y])  #: stem centre in the block frame (m)
_RECTS = ((BAR_CENTER, BAR_HALF), (STEM_CENTER, STEM_HALF))

_START_RANGE = 0.08  # block start and goal centres in [-0.08, 0.08]^2 (m)
_MAX_GOAL_SHIFT = 0.15  # goal centre at most this far from the start centre (m)
_MAX_GOAL_TURN = np.deg2rad(90.0)  # goal yaw within +-90 degrees of the start yaw
MAX_START_RANGE = 0.2  #: the largest ``start_range`` reset option (m)
START_RANGES = (_START_RANGE, MAX_START_RANGE)  #: the ``start_range`` reset option's bounds (m)
_WALL_CLEAR = 0.005  # a wide start keeps the T's outline this far inside the walls (m)
_PUSHER_LIMIT = ARENA_HALF - PUSHER_RADIUS  # pusher centre range (m)
_PUSHER_GROUP = 2  # geom group of the pusher (shown by default); hide_pusher turns it off

# ---- oracle constants (m unless noted) ----------------------------------------------------
_GAP = 0.005  # a push starts with the pusher this far from the block
_CLEAR = 0.003  # transit segments keep at least this clearance from the block
_CORNER = 0.008  # transit waypoints sit this far outside the block's corners
_PUSH_TURNS = np.deg2rad([-30.0, 0.0, 30.0])  # push directions relative to the inward normal
PUSH_SPEEDS = (1.0, 0.4)  #: push speeds (fraction of max_step per step)
PUSH_STEPS = (6, 3)  #: longest push evaluated at each speed (env steps)
_POSE_TOL = 0.002  # replan when the block moved more than this (keypoint metres) in transit
_BLOCKED_STEPS = 20  # transit price (env steps) of a push start that no free path reaches
_ARRIVE = 0.003  # a transit waypoint counts as reached within this (noisy actions miss it)


def _t_outline() -> np.ndarray:
    """The 8 outline corners of the T in the block frame, (8, 2)."""
    bx, by = BAR_HALF
    sx, sy = STEM_HALF
    top, mid, bottom = BAR_CENTER[1] + by, BAR_CENTER[1] - by, STEM_CENTER[1] - sy
    return np.array(
        [[-bx, top], [bx, top], [bx, mid], [sx, mid], [sx, bottom], [-sx, bottom], [-sx, mid],
         [-bx, mid]]
    )  # fmt: skip


KEYPOINTS = _t_outline()  #: keypoints of ``distance_to_goal`` in the block frame, (K, 2)


def _contacts() -> tuple[np.ndarray, np.ndarray]:
    """Candidate contact points on the T's outline and their outward normals, (C, 2) each."""
    bx, by = BAR_HALF
    sx, sy = STEM_HALF
    top, mid, bottom = BAR_CENTER[1] + by, BAR_CENTER[1] - by, STEM_CENTER[1] - sy
    under = sx + PUSHER_RADIUS + _GAP  # first x under the bar where the pusher fits
    pts, normals = [], []

    def edge(a: np.ndarray, b: np.ndarray, n: tuple[float, float], count: int) -> None:
        for t in np.linspace(0.0, 1.0, count):
            pts.append(a + t * (b - a))
            normals.append(n)

    edge(np.array([-bx + 0.008, top]), np.array([bx - 0.008, top]), (0.0, 1.0), 8)
    for s in (-1.0, 1.0):
        edge(np.array([s * bx, mid + 0.008]), np.array([s * bx, top - 0.008]), (s, 0.0), 2)
        edge(np.array([s * under, mid]), np.array([s * (bx - 0.008), mid]), (0.0, -1.0), 2)
        stem_top = mid - PUSHER_RADIUS - _GAP
        edge(np.array([s * sx, bottom + 0.008]), np.array([s * sx, stem_top]), (s, 0.0), 4)
    edge(np.array([-sx + 0.008, bottom]), np.array([sx - 0.008, bottom]), (0.0, -1.0), 3)
    return np.array(pts), np.array(normals)


_CONTACTS, _NORMALS = _contacts()


def _rot(theta: float) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, -s], [s, c]])


def keypoints(pose: np.ndarray) -> np.ndarray:
    """World positions (K, 2) of the T's keypoints at ``pose`` = (x, y, yaw)."""
    return KEYPOINTS @ _rot(pose[2]).T + pose[:2]


def keypoint_distance(pose: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """Mean keypoint distance between poses ``(..., 3)`` and ``goal`` (3,), in metres."""
    pose = np.asarray(pose, dtype=np.float64)
    c, s = np.cos(pose[..., 2]), np.sin(pose[..., 2])
    kx = KEYPOINTS[:, 0] * c[..., None] - KEYPOINTS[:, 1] * s[..., None] + pose[..., :1]
    ky = KEYPOINTS[:, 0] * s[..., None] + KEYPOINTS[:, 1] * c[..., None] + pose[..., 1:2]
    g = keypoints(goal)
    return np.hypot(kx - g[:, 0], ky - g[:, 1]).mean(axis=-1)


def distance_to_t(point: np.ndarray, pose: np.ndarray) -> float:
    """Distance (m) from a world point to the T at ``pose`` (0 inside)."""
    local = (np.asarray(point) - pose[:2]) @ _rot(pose[2])
    return min(float(np.linalg.norm(np.maximum(np.abs(local - c) - h, 0.0))) for c, h in _RECTS)


def _segment_hits_t(a: np.ndarray, b: np.ndarray, pose: np.ndarray, margin: float) -> bool:
    """Whether segment ``a``-``b`` (world) passes within ``margin`` of the T (box-inflated)."""
    rot = _rot(pose[2])
    la, lb = (a - pose[:2]) @ rot, (b - pose[:2]) @ rot
    for c, h in _RECTS:
        lo, hi = c - h - margin, c + h + margin
        t0, t1 = 0.0, 1.0  # Liang-Barsky clipping of the segment against the box
        d = lb - la
        for k in range(2):
            if abs(d[k]) < 1e-12:
                if la[k] < lo[k] or la[k] > hi[k]:
                    break
                continue
            u0, u1 = (lo[k] - la[k]) / d[k], (hi[k] - la[k]) / d[k]
            t0, t1 = max(t0, min(u0, u1)), min(t1, max(u0, u1))
            if t0 > t1:
                break
        else:
            return True
    return False


def _back_off(
    point: np.ndarray, pose: np.ndarray, margin: float, clearance: float
) -> np.ndarray | None:
    """If ``point`` is within ``margin`` of a rectangle of the T (box-inflated), the point
    moved out of it along the shortest axis to ``clearance``; else None."""
    rot = _rot(pose[2])
    local = (point - pose[:2]) @ rot
    for c, h in _RECTS:
        lo, hi = c - h - margin, c + h + margin
        if np.all(local > lo) and np.all(local < hi):
            depth = np.concatenate([local - lo, hi - local])  # exits: -x, -y, +x, +y
            k = int(np.argmin(depth))
            out = local.copy()
            out[k % 2] = (c - h - clearance)[k % 2] if k < 2 else (c + h + clearance)[k % 2]
            return np.clip(rot @ out + pose[:2], -_PUSHER_LIMIT, _PUSHER_LIMIT)
    return None


def _transit_path(start: np.ndarray, goal: np.ndarray, pose: np.ndarray) -> list[np.ndarray] | None:
    """Shortest pusher path from ``start`` to ``goal`` around the T (visibility graph).

    Nodes are the corners of the T's rectangles inflated by pusher radius + ``_CORNER``,
    dropping those inside the other rectangle or outside the arena. A pusher that touches
    the T first backs off along the shortest way out. Returns the waypoints after
    ``start``, ending at ``goal``, or None when the T blocks every path.
    """
    margin = PUSHER_RADIUS + _CLEAR
    path: list[np.ndarray] = []
    for _ in range(2):  # inside the inflated T: back out of each rectangle in turn
        escaped = _back_off(start, pose, margin, PUSHER_RADIUS + _CORNER)
        if escaped is None:
            break
        start = escaped
        path.append(start)
    if not _segment_hits_t(start, goal, pose, margin):
        return [*path, goal]
    rot = _rot(pose[2])
    nodes = [start, goal]
    for c, h in _RECTS:
        for sx, sy in ((-1, -1), (-1, 1), (1, -1), (1, 1)):
            local = c + np.array([sx, sy]) * (h + PUSHER_RADIUS + _CORNER)
            world = rot @ local + pose[:2]
            if np.all(np.abs(world) <= _PUSHER_LIMIT) and distance_to_t(world, pose) > margin:
                nodes.append(world)
    n = len(nodes)
    dist = np.full(n, np.inf)
    prev = np.full(n, -1)
    dist[0] = 0.0
    queue = [(0.0, 0)]
    while queue:
        d, i = heapq.heappop(queue)
        if d > dist[i] or i == 1:
            continue
        for j in range(1, n):
            if j == i:
                continue
            step = float(np.linalg.norm(nodes[j] - nodes[i]))
            if d + step < dist[j] and not _segment_hits_t(nodes[i], nodes[j], pose, margin):
                dist[j], prev[j] = d + step, i
                heapq.heappush(queue, (d + step, j))
    if prev[1] < 0:
        return None
    tail, i = [], 1
    while i > 0:
        tail.append(nodes[i])
        i = prev[i]
    return path + tail[::-1]


@dataclass
class PushCandidates:
    """The oracle's candidate pushes around the T at one pose (``push_candidates``)."""

    start: np.ndarray  #: (N, 2) pusher start, ``_GAP`` off a contact point (world, m)
    direction: np.ndarray  #: (N, 2) unit push direction (world)
    transit: np.ndarray  #: (N,) env steps to reach the start (path length / max_step, + a
    #: price of ``_BLOCKED_STEPS`` where no free path exists)
    paths: list[list[np.ndarray]]  #: (N,) transit waypoints to the start (ending at it)


def push_candidates(pose: np.ndarray, pusher: np.ndarray, max_step: float) -> PushCandidates:
    """Every push the oracle considers with the T at ``pose`` (x, y, yaw) and the pusher (or
    its target) at ``pusher``: a start off each contact point of the outline that fits in the
    arena, directions within 30 degrees of the inward normal, and the transit path to it
    around the T. Raises if no start fits in the arena."""
    rot = _rot(pose[2])
    starts = (_CONTACTS + _NORMALS * (PUSHER_RADIUS + _GAP)) @ rot.T + pose[:2]  # (C, 2)
    inward = -_NORMALS @ rot.T  # (C, 2)
    keep = np.all(np.abs(starts) <= _PUSHER_LIMIT, axis=1)
    if not keep.any():
        raise RuntimeError(f"no push start fits in the arena around the T at {pose}")
    paths, transit = [], []
    for start in starts[keep]:
        path = _transit_path(pusher, start, pose)
        extra = 0
        if path is None:  # blocked: allow the straight line, at a price
            path, extra = [start], _BLOCKED_STEPS
        length = np.linalg.norm(np.diff(np.vstack([pusher, *path]), axis=0), axis=1).sum()
        paths.append(path)
        transit.append(np.ceil(length / max_step) + extra)
    turns = np.stack([inward[keep] @ _rot(t).T for t in _PUSH_TURNS], axis=1)  # (C, U, 2)
    n_turn = len(_PUSH_TURNS)
    return PushCandidates(
        start=np.repeat(starts[keep], n_turn, axis=0),
        direction=turns.reshape(-1, 2),
        transit=np.repeat(np.array(transit), n_turn),
        paths=[p for p in paths for _ in range(n_turn)],
    )


@dataclass
class _Push:
    """One planned pushing primitive of the oracle."""

    start: np.ndarray  #: where the pusher starts (world, m)
    direction: np.ndarray  #: unit push direction (world)
    speed: float  #: fraction of ``max_step`` per env step
    steps: int  #: env steps of pushing
    block_pose: np.ndarray  #: block pose (x, y, yaw) the push was planned for
    path: list[np.ndarray]  #: transit waypoints to ``start`` still to visit


def _toward(point: np.ndarray, target: np.ndarray, max_step: float) -> np.ndarray:
    """The action that moves the pusher target to ``point`` (at most one full step); zero
    when it is there already."""
    delta = (point - target) / max_step
    if np.linalg.norm(delta) < 1e-9:
        return np.zeros(2, dtype=np.float32)
    return (delta / max(1.0, float(np.abs(delta).max()))).astype(np.float32)


class _PushOracle:
    """Greedy push-primitive planner that simulates its candidate pushes.

    When idle it scores every candidate push (start ``_GAP`` off a contact point on the
    T's outline, direction within 30 degrees of the inward normal, two speeds, up to 6
    steps) by simulating it from the current state with ``mujoco.rollout``, and picks the
    one with the largest keypoint-distance reduction per env step, counting the transit
    steps to its start. It then moves the pusher around the T to the start (shortest path
    on a visibility graph of the inflated T's corners), pushes open-loop, and replans. It
    replans early when the block moved during the transit. It keeps its plan between calls:
    call ``act`` once per env step. With ``commit=False`` it replans at every step outside a
    push, so its action depends on the current state alone (and the push it is in): the
    labeller of ``PushT.expert_action``, slower (a plan per step).
    """

    def __init__(self, model: mujoco.MjModel, commit: bool = True) -> None:
        self.commit = commit
        #: chance that a planned push is a random candidate instead of the best (with ``rng``)
        self.explore = 0.0
        self.rng: np.random.Generator | None = None
        #: one MjData per rollout thread: the candidates' simulations run in parallel, each
        #: from its own initial state (results are bit-identical to one thread, in any order)
        self._scratch = [mujoco.MjData(model) for _ in range(_rollout_threads())]
        self._push: _Push | None = None
        self._push_left = 0  # env steps of the current push still to execute

    def reset(self) -> None:
        self._push, self._push_left = None, 0

    def save(self) -> tuple[_Push | None, int]:
        """The current push and its steps left, for ``load`` (``PushT.snapshot``)."""
        return _copy_push(self._push), self._push_left

    def load(self, saved: tuple[_Push | None, int]) -> None:
        push, self._push_left = saved
        self._push = _copy_push(push)  # the saved plan stays whole for another load

    def act(self, env: PushT) -> np.ndarray:
        pose, target = env.block_pose(), env.pusher_target()
        if not self.commit and self._push_left == 0:
            self._push = None  # outside a push: plan afresh from this state
        push = self._push
        if push is not None and self._push_left == 0:
            if keypoint_distance(pose, push.block_pose) > _POSE_TOL:
                push = None  # the block moved while the pusher was in transit: replan
        if push is None:
            if env.distance_to_goal() <= 0.5 * env.success_threshold:
                return np.zeros(2, dtype=np.float32)  # done: hold still
            push = self._push = self._plan(env, pose, target)
        if self._push_left == 0:
            if push.path and np.linalg.norm(target - push.path[0]) < _ARRIVE:
                push.path.pop(0)
            if push.path:  # transit to the push start
                return _toward(push.path[0], target, env.max_step)
            if np.linalg.norm(env.pusher_position() - push.start) > 0.002:
                # let the pusher settle at the start (and bring a target that noise moved back)
                return _toward(push.start, target, env.max_step)
            self._push_left = push.steps
        self._push_left -= 1
        if self._push_left == 0:
            self._push = None
        return (push.direction * push.speed).astype(np.float32)

    def _plan(self, env: PushT, pose: np.ndarray, target: np.ndarray) -> _Push:
        """Score all candidate pushes in simulation; return the best one."""
        c = push_candidates(pose, target, env.max_step)
        if self.explore > 0 and self.rng is not None and self.rng.random() < self.explore:
            i = int(self.rng.integers(len(c.start)))
            s = int(self.rng.integers(len(PUSH_SPEEDS)))
            steps = int(self.rng.integers(1, PUSH_STEPS[s] + 1))
            return _Push(c.start[i], c.direction[i], PUSH_SPEEDS[s], steps, pose, list(c.paths[i]))
        now = env.distance_to_goal()
        best, best_score = _Push(c.start[0], c.direction[0], 0.0, 1, pose, []), -np.inf
        for speed, steps in zip(PUSH_SPEEDS, PUSH_STEPS, strict=True):
            after = self._simulate(env, c.start, c.direction, speed, steps)  # (N, steps)
            gain = now - after
            elapsed = c.transit[:, None] + 1 + np.arange(steps)  # (N, steps)
            score = np.where(gain > 0, gain / elapsed, gain)  # a loss ranks by its size
            i, k = np.unravel_index(int(np.argmax(score)), score.shape)
            if score[i, k] > best_score:
                best_score = score[i, k]
                best = _Push(c.start[i], c.direction[i], speed, int(k) + 1, pose, list(c.paths[i]))
        return best

    def _simulate(
        self, env: PushT, starts: np.ndarray, directions: np.ndarray, speed: float, steps: int
    ) -> np.ndarray:
        """Keypoint distance to the goal after each env step of each push, (N, steps)."""
        model, skip = env.model, env.frame_skip
        # full physics state: time, qpos, qvel, ...
        init = np.tile(env.get_physics_state(), (len(starts), 1))  # (N, state)
        init[:, 1 + env.pusher_qpos_index] = starts  # the pusher at rest at the push start
        init[:, 1 + model.nq + env.pusher_dof_index] = 0.0
        frac = np.arange(1, steps * skip + 1) / skip  # (S,) env steps since the start
        ctrl = starts[:, None] + directions[:, None] * (speed * env.max_step * frac[:, None])
        ctrl = np.clip(ctrl, -_PUSHER_LIMIT, _PUSHER_LIMIT)  # (N, S, 2)
        states, _ = rollout.rollout(model, self._scratch, init, ctrl)  # (N, S, state)
        qpos = states[:, skip - 1 :: skip, 1 : 1 + model.nq]  # (N, steps, nq)
        return keypoint_distance(qpos[..., env.block_qpos_index], env.goal_pose())


def _rollout_threads() -> int:
    """Threads for the oracle's simulated pushes: the cores this process may use, at most 4."""
    affinity = getattr(os, "sched_getaffinity", None)  # Linux; elsewhere all the cores
    cores = len(affinity(0)) if affinity is not None else (os.cpu_count() or 1)
    return max(1, min(4, cores))


def _copy_push(push: _Push | None) -> _Push | None:
    """A copy that the oracle's transit (which pops ``path``) leaves alone."""
    return None if push is None else dataclasses.replace(push, path=list(push.path))


#: physics, user data and the constraint solver's warm start (``PushT.snapshot``)
_SNAPSHOT_STATE = mujoco.mjtState.mjSTATE_INTEGRATION


def _model_xml() -> str:
    wall = ARENA_HALF + 0.01
    bar, stem = BAR_CENTER, STEM_CENTER
    return f"""
<mujoco model="push_t">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="0.005" integrator="implicitfast" cone="elliptic"/>
  <visual>
    <headlight ambient="0.4 0.4 0.4" diffuse="0.2 0.2 0.2" specular="0 0 0"/>
    <global offwidth="1024" offheight="1024"/>
  </visual>
  <default>
    <!-- collision bits: 1 = pusher, walls; 2 = floor; the block (3) touches both -->
    <geom condim="3" friction="0.5 0.005 0.0001" contype="1" conaffinity="1"/>
  </default>
  <worldbody>
    <light name="top" pos="0 0 2" dir="0 0 -1" directional="true" castshadow="false"
           diffuse="0.3 0.3 0.3"/>
    <camera name="top" pos="0 0 1" xyaxes="1 0 0 0 1 0" projection="orthographic"
            fovy="{2 * wall + 0.02}"/>
    <geom name="floor" type="plane" size="0.4 0.4 0.1" rgba="0.85 0.85 0.82 1" contype="2"
          conaffinity="2"/>
    <geom name="wall_px" type="box" pos=" {wall} 0 0.01" size="0.01 {wall + 0.01} 0.01"
          rgba="0.3 0.3 0.32 1"/>
    <geom name="wall_nx" type="box" pos="-{wall} 0 0.01" size="0.01 {wall + 0.01} 0.01"
          rgba="0.3 0.3 0.32 1"/>
    <geom name="wall_py" type="box" pos="0  {wall} 0.01" size="{wall + 0.01} 0.01 0.01"
          rgba="0.3 0.3 0.32 1"/>
    <geom name="wall_ny" type="box" pos="0 -{wall} 0.01" size="{wall + 0.01} 0.01 0.01"
          rgba="0.3 0.3 0.32 1"/>
    <body name="block" pos="0 0 {BLOCK_HALF_HEIGHT}">
      <joint name="block_x" type="slide" axis="1 0 0" damping="0.05"/>
      <joint name="block_y" type="slide" axis="0 1 0" damping="0.05"/>
      <joint name="block_z" type="slide" axis="0 0 1"/>
      <joint name="block_yaw" type="hinge" axis="0 0 1" damping="0.0005"/>
      <geom name="bar" type="box" pos="{bar[0]} {bar[1]} 0"
            size="{BAR_HALF[0]} {BAR_HALF[1]} {BLOCK_HALF_HEIGHT}" rgba="0.85 0.2 0.15 1"
            density="480" contype="3" conaffinity="3"/>
      <geom name="stem" type="box" pos="{stem[0]} {stem[1]} 0"
            size="{STEM_HALF[0]} {STEM_HALF[1]} {BLOCK_HALF_HEIGHT}" rgba="0.85 0.2 0.15 1"
            density="480" contype="3" conaffinity="3"/>
    </body>
    <body name="pusher" pos="0 0 {BLOCK_HALF_HEIGHT + 0.002}">
      <joint name="pusher_x" type="slide" axis="1 0 0" range="-{_PUSHER_LIMIT} {_PUSHER_LIMIT}"
             damping="20"/>
      <joint name="pusher_y" type="slide" axis="0 1 0" range="-{_PUSHER_LIMIT} {_PUSHER_LIMIT}"
             damping="20"/>
      <geom name="pusher" type="cylinder" size="{PUSHER_RADIUS} {BLOCK_HALF_HEIGHT}" mass="0.1"
            rgba="0.15 0.35 0.9 1" group="{_PUSHER_GROUP}"/>
    </body>
  </worldbody>
  <actuator>
    <position name="pusher_x" joint="pusher_x" kp="1000"
              ctrlrange="-{_PUSHER_LIMIT} {_PUSHER_LIMIT}"/>
    <position name="pusher_y" joint="pusher_y" kp="1000"
              ctrlrange="-{_PUSHER_LIMIT} {_PUSHER_LIMIT}"/>
  </actuator>
</mujoco>
"""


class PushT(GoalEnv):
    """Push a T-shaped block to a goal pose (position and yaw) with a round pusher."""

    success_threshold = 0.02
    frame_skip = 20
    max_episode_steps = 150
    camera = "top"
    #: metres of pusher target motion per unit action per env step
    max_step: float = 0.02

    def __init__(self, hide_pusher: bool = False, **kwargs: Any) -> None:
        self._target = np.zeros(2)  # commanded pusher position at the end of this env step
        self._ramp_from = np.zeros(2)  # commanded pusher position at its start
        self._substep = 0
        self._goal = np.zeros(3)
        self._goal_pusher = np.zeros(2)
        self._start_range: float | None = None  # reset option: wide starts (None: the task's)
        super().__init__(**kwargs)
        self._oracle = _PushOracle(self.model)
        self._labeller = _PushOracle(self.model, commit=False)  # see expert_action
        self._explorer = _PushOracle(self.model)  # see exploring_oracle_action
        self._oracles = (self._oracle, self._labeller, self._explorer)
        self.hide_pusher = bool(hide_pusher)
        if self.hide_pusher:
            self._hide_geom_group(_PUSHER_GROUP)

    # ---- model ------------------------------------------------------------------------
    def _build_model(self) -> mujoco.MjModel:
        model = mujoco.MjModel.from_xml_string(_model_xml())

        def qpos(*names: str) -> np.ndarray:
            return np.array([int(model.joint(n).qposadr[0]) for n in names])

        #: qpos indices of the pusher (x, y) and of the block pose (x, y, yaw)
        self.pusher_qpos_index = qpos("pusher_x", "pusher_y")
        self.block_qpos_index = qpos("block_x", "block_y", "block_yaw")
        self._block_z = int(qpos("block_z")[0])
        #: qvel indices of the pusher (x, y)
        self.pusher_dof_index = np.array(
            [int(model.joint(n).dofadr[0]) for n in ("pusher_x", "pusher_y")]
        )
        return model

    # ---- named physics queries --------------------------------------------------------
    def pusher_position(self) -> np.ndarray:
        """Pusher centre (x, y) in metres."""
        return self.data.qpos[self.pusher_qpos_index].copy()

    def pusher_velocity(self) -> np.ndarray:
        return self.data.qvel[self.pusher_dof_index].copy()

    def pusher_target(self) -> np.ndarray:
        """Commanded pusher position that the actuators track (m)."""
        return self._target.copy()

    def block_pose(self) -> np.ndarray:
        """(x, y, yaw) of the T's centre of mass (m, m, rad)."""
        return self.data.qpos[self.block_qpos_index].copy()

    def goal_pose(self) -> np.ndarray:
        """(x, y, yaw) of the T at the goal."""
        return self._goal.copy()

    def place(self, block_pose: np.ndarray, pusher: np.ndarray) -> None:
        """Put the T at ``block_pose`` (x, y, yaw) on the floor and the pusher at rest at
        ``pusher`` (x, y), its target included; the oracle forgets its plan."""
        self.data.qpos[self.block_qpos_index] = block_pose
        self.data.qpos[self._block_z] = 0.0
        pusher = np.array(pusher, dtype=np.float64)
        self.data.qpos[self.pusher_qpos_index] = pusher
        self.data.qvel[:] = 0.0
        self.data.ctrl[:] = pusher
        self._target, self._ramp_from = pusher.copy(), pusher.copy()
        self._substep = self.frame_skip
        for o in self._oracles:
            o.reset()
        mujoco.mj_forward(self.model, self.data)

    def snapshot(self) -> dict[str, Any]:
        """Everything ``step`` and the oracles read, for ``restore``: the physics including
        the solver's warm start (so a restored run repeats bit for bit), the pusher target's
        ramp, and each oracle's current push. The goal stays (it is the episode's)."""
        physics = np.empty(mujoco.mj_stateSize(self.model, _SNAPSHOT_STATE))
        mujoco.mj_getState(self.model, self.data, physics, _SNAPSHOT_STATE)
        return {
            "physics": physics,
            "controller": (self._target.copy(), self._ramp_from.copy(), self._substep),
            "oracles": [o.save() for o in self._oracles],
        }

    def restore(self, snap: dict[str, Any]) -> None:
        """Put back a ``snapshot`` of this episode."""
        mujoco.mj_setState(self.model, self.data, snap["physics"], _SNAPSHOT_STATE)
        mujoco.mj_forward(self.model, self.data)
        target, ramp_from, self._substep = snap["controller"]
        self._target, self._ramp_from = target.copy(), ramp_from.copy()
        for o, saved in zip(self._oracles, snap["oracles"], strict=True):
            o.load(saved)

    # ---- controller -------------------------------------------------------------------
    def step(
        self, action: np.ndarray
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        if self._goal_obs is not None:  # else super().step raises the reset() error
            self._set_target(self.validate_action(action))
        return super().step(action)

    def _set_target(self, a: np.ndarray) -> None:
        """Move the pusher target by ``a * max_step``, capped near the measured pusher."""
        pos = self.pusher_position()
        target = self._target + a * self.max_step
        target = np.clip(target, pos - 2 * self.max_step, pos + 2 * self.max_step)
        self._ramp_from = self._target
        self._target = np.clip(target, -_PUSHER_LIMIT, _PUSHER_LIMIT)
        self._substep = 0

    def _apply_action(self, action: np.ndarray) -> None:
        # the target ramps linearly over the env step: a steady pusher velocity
        frac = min(1.0, (self._substep + 1) / self.frame_skip)
        self.data.ctrl[:] = self._ramp_from + frac * (self._target - self._ramp_from)
        self._substep += 1

    # ---- GoalEnv hooks ----------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        options = dict(options or {})
        r = options.pop("start_range", None)
        if r is not None and (
            isinstance(r, bool)
            or not isinstance(r, (int, float))
            or not START_RANGES[0] <= r <= START_RANGES[1]
        ):
            raise ValueError(
                f"options['start_range']={r!r} is invalid: use a number of metres in "
                f"{list(START_RANGES)} (the task's own starts: {_START_RANGE})"
            )
        self._start_range = None if r is None else float(r)
        return super().reset(seed=seed, options=options or None)

    def _sample_start(self, rng: np.random.Generator) -> np.ndarray:
        half = self._start_range or _START_RANGE
        while True:  # a wide start keeps the whole T inside the walls
            start = np.append(rng.uniform(-half, half, 2), rng.uniform(-np.pi, np.pi))
            if self._start_range is None or np.all(
                np.abs(keypoints(start)) <= ARENA_HALF - _WALL_CLEAR
            ):
                return start

    def _sample_episode(self, rng: np.random.Generator) -> None:
        start = self._sample_start(rng)
        wide = self._start_range is not None
        while True:
            goal = np.append(
                rng.uniform(-_START_RANGE, _START_RANGE, 2),
                start[2] + rng.uniform(-_MAX_GOAL_TURN, _MAX_GOAL_TURN),
            )
            far_enough = keypoint_distance(start, goal) >= 2 * self.success_threshold
            near = wide or np.linalg.norm(goal[:2] - start[:2]) <= _MAX_GOAL_SHIFT
            if far_enough and near:
                break
        goal[2] = (goal[2] + np.pi) % (2 * np.pi) - np.pi
        while True:
            pusher = rng.uniform(-_PUSHER_LIMIT, _PUSHER_LIMIT, 2)
            if distance_to_t(pusher, start) >= PUSHER_RADIUS + 0.01:
                break
        while True:  # at the goal the pusher rests near the block, 1-5 cm clear of it
            goal_pusher = goal[:2] + rng.uniform(-0.15, 0.15, 2)
            gap = distance_to_t(goal_pusher, goal) - PUSHER_RADIUS
            if 0.01 <= gap <= 0.05 and np.all(np.abs(goal_pusher) <= _PUSHER_LIMIT):
                break
        self.place(start, pusher)
        self._goal, self._goal_pusher = goal, goal_pusher

    def _goal_here(self) -> tuple[np.ndarray, np.ndarray]:
        """The T's pose and the pusher's place now (the pusher shows in the goal image)."""
        return self.block_pose(), self.pusher_position()

    def _use_goal(self, spec: tuple[np.ndarray, np.ndarray]) -> None:
        pose, pusher = spec
        pose = np.array(pose, dtype=np.float64)
        pose[2] = (pose[2] + np.pi) % (2 * np.pi) - np.pi
        self._goal, self._goal_pusher = pose, np.array(pusher, dtype=np.float64)
        for o in self._oracles:
            o.reset()

    def _goal_qpos(self) -> np.ndarray:
        qpos = self.data.qpos.copy()
        qpos[self.block_qpos_index] = self._goal
        qpos[self._block_z] = 0.0
        qpos[self.pusher_qpos_index] = self._goal_pusher
        return qpos

    def _proprio(self) -> np.ndarray:
        return np.concatenate([self.pusher_position(), self.pusher_velocity()])

    def state(self) -> np.ndarray:
        """Pusher (x, y), block (x, y, cos yaw, sin yaw)."""
        x, y, yaw = self.block_pose()
        return np.array([*self.pusher_position(), x, y, np.cos(yaw), np.sin(yaw)])

    def goal_state(self) -> np.ndarray:
        x, y, yaw = self._goal
        return np.array([*self._goal_pusher, x, y, np.cos(yaw), np.sin(yaw)])

    def distance_to_goal(self) -> float:
        return float(keypoint_distance(self.block_pose(), self._goal))

    def state_distance(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Mean keypoint distance between the block poses of two ``state()`` batches."""

        def corners(s: np.ndarray) -> np.ndarray:  # (..., 6) -> (..., K, 2)
            s = np.asarray(s, dtype=np.float64)
            c, si = s[..., 4:5], s[..., 5:6]
            kx = KEYPOINTS[:, 0] * c - KEYPOINTS[:, 1] * si + s[..., 2:3]
            ky = KEYPOINTS[:, 0] * si + KEYPOINTS[:, 1] * c + s[..., 3:4]
            return np.stack([kx, ky], axis=-1)

        return np.linalg.norm(corners(a) - corners(b), axis=-1).mean(axis=-1)

    def oracle_action(self) -> np.ndarray:
        """Greedy push-primitive planner with the true simulator (see ``_PushOracle``)."""
        return self._oracle.act(self)

    def expert_action(self) -> np.ndarray:
        """The oracle replanning at every step outside a push (``_PushOracle(commit=False)``,
        a second instance, so asking it leaves ``oracle_action``'s plan alone): the committed
        oracle's transit depends on the push it chose steps ago, which no image shows."""
        return self._labeller.act(self)

    def exploring_oracle_action(self, rng: np.random.Generator, explore: float) -> np.ndarray:
        """The oracle (a third instance, with its own plan), except that each push it plans is,
        with probability ``explore``, a random one of its candidates (random start, direction,
        speed and length) instead of the best: data of the pushes the oracle would not make,
        which a world model that scores every candidate must predict too
        (``agent.collect policy=push_explore``)."""
        self._explorer.rng, self._explorer.explore = rng, explore
        return self._explorer.act(self)
