"""MPC over Push-T's push primitives, scored by the world model (``policy=push_primitives``).

Raw-action CEM rarely samples what Push-T asks for: a transit around the T to a contact
point, then a push (the planner's own bound with the simulator as the model is 0.05; README).
This agent searches the primitives the task's oracle searches, but sees only the camera
image and the pusher's proprio:

1. a state probe (``agent.state_probe``) reads the T's pose off the image latent, and the
   goal's pose off the goal image's latent;
2. the candidates are the oracle's (``envs.tasks.push_t.push_candidates``): a start off every
   contact point of the T's outline at the *estimated* pose, directions within 30 degrees of
   the inward normal, two speeds, and the transit path around the T;
3. each candidate's actions (transit, then the push) are rolled out by the **world model**
   from the current latent, and the probe reads the T's pose off every imagined latent; the
   score is the oracle's: the drop of the keypoint distance to the goal per env step,
   transit included (``cost="pose"``), or the drop of the latent distance to the goal
   latent (``cost="latent"``: no probe in the score);
4. the best one runs closed loop (transit waypoints reached within 3 mm, the push open
   loop), replanning after each push, and early when the estimated pose moves in transit;
5. at the push start the pushes from there are scored again (a short rollout, without the
   transit's drift), and the search over every push runs again when none of them gains.

It uses task knowledge (the T's shape, through the candidates) that the image-goal MPC
agent does not; the world model alone decides which push to make. The true state is never
read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from agent.model import WorldModel
from agent.state_probe import StateProbe
from envs.tasks.push_t import (
    ARENA_HALF,
    PUSH_SPEEDS,
    PUSH_STEPS,
    PUSHER_RADIUS,
    PushCandidates,
    PushT,
    keypoint_distance,
    push_candidates,
)

#: what scores a push: the probed pose change; the latent as the planning cost sees it
#: (``model.cost_view``: the slow features of a ``model.cost_features`` model, else the whole
#: image latent); or the whole image latent, whatever the model's cost view
COSTS = ("pose", "latent", "latent_whole")
POSES = ("probe", "state")  #: where the T's pose comes from: the probe, or the true state
_MAX_STEP = PushT.max_step  # m of pusher target motion per unit action
_ARRIVE = 0.003  # a transit waypoint counts as reached within this (m)
_SETTLE = 0.002  # the push starts when the pusher is this close to its start (m)
_DONE = 0.01  # hold still when the estimated keypoint distance is below this (m)
_POSE_TOL = 0.006  # replan when the estimated pose moved this much during a transit (m)
_PUSHER_LIMIT = ARENA_HALF - PUSHER_RADIUS  # pusher centre range (m), as the task clips it
_MAX_TRANSIT = 60  # env steps of transit imagined at most (longer paths are cut there)
_NEAR = 0.008  # a candidate starting this close to the pusher starts here (m)


@dataclass
class _Plan:
    path: list[np.ndarray]  # transit waypoints still to visit (ending at the push start)
    start: np.ndarray  # where the push starts
    direction: np.ndarray  # unit push direction
    speed: float
    steps: int
    pose: np.ndarray  # the estimated pose the plan was made for
    gain: float = 0.0  # its predicted gain
    verified: bool = False  # re-scored from the push start (a short rollout), or not needed


@dataclass
class Predicted:
    """``predict_gains``: rows are the candidates at each speed (speed-major), columns the
    push lengths."""

    gain: np.ndarray  #: (N, S) predicted drop of the distance to the goal
    valid: np.ndarray  #: (N, S) the length fits the push at that speed
    lengths: list[int]  #: (S,) push lengths in env steps
    meta: list[tuple[int, float, int]]  #: (N,) candidate index, speed, longest push


def _transit_actions(pusher: np.ndarray, path: list[np.ndarray]) -> list[np.ndarray]:
    """The open-loop actions that take the pusher along ``path`` (full steps toward each
    waypoint, as the closed loop does)."""
    acts, p = [], np.array(pusher, dtype=np.float64)
    for w in path:
        while np.linalg.norm(w - p) >= _ARRIVE and len(acts) < _MAX_TRANSIT:
            a = _toward(w, p)
            acts.append(a)
            p = p + a * _MAX_STEP
    return acts


def _toward(point: np.ndarray, here: np.ndarray) -> np.ndarray:
    """The action toward ``point`` (at most one full step), as ``envs.tasks.push_t.toward`` but
    in float64: the imagined transits and the tracked target add it up without rounding."""
    delta = (point - here) / _MAX_STEP
    if np.linalg.norm(delta) < 1e-9:
        return np.zeros(2)
    return delta / max(1.0, float(np.abs(delta).max()))


def _pose_of(probe_out: torch.Tensor) -> np.ndarray:
    """Probe rows (..., 4) = (x, y, cos, sin) -> poses (..., 3) = (x, y, yaw)."""
    p = probe_out.detach().double().numpy()
    return np.concatenate([p[..., :2], np.arctan2(p[..., 3], p[..., 2])[..., None]], -1)


def _read_pose(probe: StateProbe, z_image: torch.Tensor) -> np.ndarray:
    """The T's pose (x, y, yaw) the probe reads off one image latent, its centre held inside
    the arena: a probe can read a T that is not there (e.g. past a wall, from a latent unlike
    its training data), and no push start fits around such a T."""
    pose = _pose_of(probe(z_image[None]))[0]
    pose[:2] = np.clip(pose[:2], -ARENA_HALF, ARENA_HALF)
    return pose


def pose_change_gain(
    pose: np.ndarray, before: np.ndarray, after: np.ndarray, goal: np.ndarray
) -> np.ndarray:
    """Drop of the keypoint distance to ``goal`` when the change of the read poses from
    ``before`` to ``after`` (yaw wrapped to one turn) is applied to the estimate ``pose``."""
    delta = after - before
    delta[..., 2] = (delta[..., 2] + np.pi) % (2 * np.pi) - np.pi
    return keypoint_distance(pose, goal) - keypoint_distance(pose + delta, goal)


class PushPrimitiveMPC:
    """``reset(goal, seed)`` then ``act(obs)``, like ``MPCAgent``."""

    def __init__(
        self,
        model: WorldModel,
        probe: StateProbe,
        cost: str = "pose",
        true_pose: Callable[[], tuple[np.ndarray, np.ndarray]] | None = None,
        chunk: int = 0,
    ) -> None:
        """``true_pose`` (an ablation, ``primitive_pose=state``): returns the T's true pose and
        goal pose, used instead of the probe's estimates of the current and goal images (the
        imagined pose changes still come from the world model and the probe). ``chunk``: env
        steps of a chosen push to run before searching again from the new image (receding
        horizon; 0 runs the whole push open loop, as the oracle)."""
        if cost not in COSTS:
            raise ValueError(f"primitive cost={cost!r} is unknown: choose one of {list(COSTS)}")
        if chunk < 0:
            raise ValueError(f"primitive chunk={chunk} must be >= 0 (0: the whole push)")
        if probe.dims != [2, 3, 4, 5]:
            raise ValueError(
                f"the probe reads state entries {probe.dims}; Push-T primitives need the T's "
                "pose, entries 2:6: train one with agent.state_probe --dims 2:6"
            )
        self.model, self.probe, self.cost = model.eval(), probe.eval(), cost
        self.true_pose, self.chunk = true_pose, chunk
        self._plan: _Plan | None = None
        self._push_left = 0

    @torch.no_grad()
    def reset(self, goal: dict[str, np.ndarray], seed: int | None = None) -> None:
        z = self.model.encode_observation(goal)
        self.z_goal = self.model.image_part(z)[0]
        self.goal_pose = _read_pose(self.probe, self.z_goal)
        if self.true_pose is not None:
            self.goal_pose = self.true_pose()[1]
        self._plan, self._push_left, self._target = None, 0, None

    @torch.no_grad()
    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        pusher = np.asarray(obs["proprio"][:2], np.float64)
        if self._target is None:  # an episode starts with the target on the pusher
            self._target = pusher.copy()
        a = self._act(obs, pusher)
        # the command as the task applies it: the pusher target moves by a * max_step,
        # held within two steps of the measured pusher and inside the arena
        target = np.clip(
            self._target + a * _MAX_STEP, pusher - 2 * _MAX_STEP, pusher + 2 * _MAX_STEP
        )
        self._target = np.clip(target, -_PUSHER_LIMIT, _PUSHER_LIMIT)
        return a.astype(np.float32)

    def _act(self, obs: dict[str, np.ndarray], pusher: np.ndarray) -> np.ndarray:
        if self._push_left > 0:  # inside a push: open loop, as the oracle
            self._push_left -= 1
            return self._push
        z = self.model.encode_observation(obs)
        pose = _read_pose(self.probe, self.model.image_part(z)[0])
        if self.true_pose is not None:
            pose = self.true_pose()[0]
        plan = self._plan
        if plan is not None and keypoint_distance(pose, plan.pose) > _POSE_TOL:
            plan = None  # the T moved during the transit: replan
        if plan is None:
            if keypoint_distance(pose, self.goal_pose) <= _DONE:
                self._plan = None
                return np.zeros(2)
            plan = self._search(z, pose)
        if plan.path and np.linalg.norm(self._target - plan.path[0]) < _ARRIVE:
            plan.path.pop(0)
        if not plan.path and np.linalg.norm(pusher - plan.start) <= _SETTLE and not plan.verified:
            # at the start the rollout is short: re-score the pushes from here, and go back
            # to the search over every push when none of them gains
            here = self._search(z, pose, near=pusher)
            plan = here if here is not None and here.gain > 0 else self._search(z, pose)
            plan.verified = True
        if plan.path:  # transit to the push start
            return _toward(plan.path[0], self._target)
        if np.linalg.norm(pusher - plan.start) > _SETTLE:  # settle at the start
            return _toward(plan.start, self._target)
        self._push = plan.direction * plan.speed
        steps = min(plan.steps, self.chunk) if self.chunk else plan.steps
        self._push_left, self._plan = steps - 1, None  # replan after the push (or chunk)
        return self._push

    def _search(self, z: torch.Tensor, pose: np.ndarray, near: np.ndarray | None = None):
        """``_choose``; the plan it returns becomes the current one."""
        plan = self._choose(z, pose, self._target, near)
        if plan is not None:
            self._plan = plan
        return plan

    def _choose(
        self, z: torch.Tensor, pose: np.ndarray, target: np.ndarray, near: np.ndarray | None = None
    ) -> _Plan | None:
        """Imagine every candidate push with the world model; the best gain per step (only
        the pushes starting within ``_NEAR`` of ``near`` when given; None if there are none)."""
        c = push_candidates(pose, target, _MAX_STEP)
        if near is not None:  # only the pushes that start here
            keep = np.flatnonzero(np.linalg.norm(c.start - near, axis=1) <= _NEAR)
            if len(keep) == 0:
                return None
            c = PushCandidates(
                c.start[keep], c.direction[keep], c.transit[keep], [c.paths[i] for i in keep]
            )
        p = self.predict_gains(z, pose, target, c)
        transit = np.concatenate([c.transit for _ in PUSH_SPEEDS])  # the oracle's step counts
        elapsed = transit[:, None] + np.array(p.lengths)[None]  # (N, S)
        score = np.where(p.gain > 0, p.gain / elapsed, p.gain)  # a loss ranks by its size
        score = np.where(p.valid, score, -np.inf)
        j, s = np.unravel_index(int(np.argmax(score)), score.shape)
        i, speed, steps = p.meta[j]
        push = min(p.lengths[s], steps)
        gain = float(p.gain[j, s])
        return _Plan(list(c.paths[i]), c.start[i], c.direction[i], speed, push, pose, gain)

    @torch.no_grad()
    def predict_gains(
        self, z: torch.Tensor, pose: np.ndarray, target: np.ndarray, c: PushCandidates
    ) -> Predicted:
        """The world model's predicted gain of every candidate at every speed and length.

        The transit is padded with still steps to a multiple of the model's frameskip k, so
        an imagined latent falls at the push's start; push lengths are multiples of k (or
        the whole push when it is shorter). ``cost="pose"`` reads the pose change from the
        push's start to its end off the imagined latents and applies it to the current
        estimate (the probe's bias from where the pusher is, and drift over the transit,
        cancel in the difference)."""
        k = self.model.cfg.frameskip
        transits = []
        for path in c.paths:
            tr = _transit_actions(target, path)
            transits.append(tr + [np.zeros(2)] * (-len(tr) % k))
        lengths = sorted({min(m, s) for s in PUSH_STEPS for m in range(k, s + k, k)})
        seqs, starts, meta = [], [], []  # per candidate x speed
        for speed, steps in zip(PUSH_SPEEDS, PUSH_STEPS, strict=True):
            for i, tr in enumerate(transits):
                seqs.append(tr + [c.direction[i] * speed] * steps)
                starts.append(len(tr))
                meta.append((i, speed, steps))
        n_lat = -(-max(len(q) for q in seqs) // k)
        actions = np.zeros((len(seqs), n_lat * k, 2), np.float32)
        for j, q in enumerate(seqs):
            actions[j, : len(q)] = np.asarray(q, np.float32)
        zs = self.model.image_part(self.model.rollout(z, torch.as_tensor(actions)))
        zs = torch.cat([self.model.image_part(z).expand(len(seqs), 1, -1), zs], 1)  # (N, 1+L, D)
        first = np.array(starts) // k  # latent index at each push's start
        reads = np.minimum(first[:, None] + -(-np.array(lengths)[None] // k), n_lat)  # (N, S)
        valid = np.array([[m <= st for m in lengths] for (_, _, st) in meta])  # (N, S)
        rows = np.arange(len(seqs))[:, None]
        if self.cost == "pose":
            poses = _pose_of(self.probe(zs.flatten(0, 1))).reshape(len(seqs), -1, 3)
            before = poses[np.arange(len(seqs)), first][:, None]
            gain = pose_change_gain(pose, before, poses[rows, reads], self.goal_pose)  # (N, S)
        else:
            gain = self.latent_gain(zs, rows, reads)
        return Predicted(gain, valid, lengths, meta)

    def latent_gain(self, zs: torch.Tensor, rows: np.ndarray, reads: np.ndarray) -> np.ndarray:
        """``cost="latent"`` / ``"latent_whole"``: the drop (N, S) of the mean squared distance
        to the goal's image latent from ``zs[0, 0]`` (the current one) to ``zs[rows, reads]``,
        through the model's cost view, or of the whole image latent."""
        z_goal = self.z_goal
        if self.cost != "latent_whole":
            zs, z_goal = self.model.cost_view(zs), self.model.cost_view(z_goal)
        d = (zs - z_goal).flatten(2).pow(2).mean(-1).double().numpy()
        return float(d[0, 0]) - d[rows, reads]
