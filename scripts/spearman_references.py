"""How well simple references rank a task's true distance, beside a latent's Spearman.

    python scripts/spearman_references.py --data data/reacher_easy

Ranks the same random held-out pairs as the training report (``agent.metrics.rank_correlation``:
all / near / within one episode) by the mean squared difference of (1) raw pixels and (2) for
the reacher tasks, the arm's keypoints (elbow and fingertip, by forward kinematics from the
recorded joint angles): what a latent that encodes the arm as the image shows it could reach;
for the cube tasks, the cube centre's place in each camera's image (``cube_image_points``):
what a latent that tracked the cube in the image exactly could reach.

(3) For tasks whose images show something besides what the distance measures (Push-T's pusher,
the arm beside the cube, two-room's door), ``scene``: the true geometry of both, in metres, with
the other thing's squared distance weighted by ``w`` against the measured one's, for several
``w`` (0: a latent that ignores it; 1: one that counts a metre of it like a metre of the
object). An image latent must keep what the predictor needs, so this shows how little of it
the latent's cost may carry and still rank at a given level.

Add ``--checkpoint`` to print that model's latent ranking on the same pairs (by its planning
cost's view, ``WorldModel.cost_view``: with ``model.cost_features`` its slow features, and the
whole latent's as ``latent_whole``), and, with a scene
reference or a cube, ``follows``: the latent cost's Spearman with each part of what differs
(Push-T: the block's position, its yaw, the pusher; the arm tasks: the cube, its (x, y), height
and turn, the gripper), which says what the latent's distance tracks.
"""

from __future__ import annotations

import argparse
import json

import mujoco
import numpy as np
import torch
from scipy.stats import spearmanr

import envs
from agent import checkpoint
from agent.batches import Windows, split_dataset
from agent.dataset import Dataset
from agent.errors import friendly_errors
from agent.metrics import encode_all, latent_cost, random_pairs, rank_correlation
from envs.registry import PUSH_T_TASKS, TASKS
from envs.tasks.push_t import KEYPOINTS

REACHERS = ("reacher_easy", "reacher_hard")
#: the arm tasks with a cube (robot in view, masked, two cameras): ``state()`` rows are
#: ee position (3), finger opening (1), cube position (3), cube quaternion (4)
CUBE_TASKS = tuple(
    t.name
    for t in TASKS.values()
    if t.entry_point in (TASKS["arm_push"].entry_point, TASKS["arm_pick_place"].entry_point)
)
SCENE_WEIGHTS = (0.0, 0.1, 0.3, 1.0, 3.0, 10.0)


def arm_keypoints(task, state: np.ndarray) -> np.ndarray:
    """Reacher ``state()`` rows (tip xy, shoulder, wrist) -> elbow and fingertip xy (N, 4)."""
    m, d = task.model, task.data
    out = np.empty((len(state), 4))
    for k, q in enumerate(state[:, 2:4]):
        d.qpos[:2] = q
        mujoco.mj_kinematics(m, d)
        out[k, :2] = d.xpos[m.body("hand").id][:2]
        out[k, 2:] = d.xpos[m.body("finger").id][:2]  # as the task's own fingertip
    return out


def cube_image_points(task, state: np.ndarray) -> np.ndarray:
    """Cube tasks: ``state()`` rows -> the cube centre in each observation camera's image, in
    pixels from the view's centre ((right, up) per view, (N, 2 x views)): where a latent that
    tracked the cube's place in the image exactly would put it (one camera's perspective maps
    height and depth onto the same rows)."""
    m, d = task.model, task.data
    mujoco.mj_forward(m, d)  # fixed cameras: their poses do not depend on the state
    cams = task.observation_cameras()
    rows = task.image_size // len(cams)
    out = []
    for name in cams:
        c = m.camera(name).id
        p = (np.asarray(state)[:, 4:7] - d.cam_xpos[c]) @ d.cam_xmat[c].reshape(3, 3)
        f = rows / 2 / np.tan(np.radians(m.cam_fovy[c]) / 2)  # pixels per unit image plane
        out.append(f * p[:, :2] / -p[:, 2:3])  # the camera looks along its -z
    return np.concatenate(out, axis=1)


def scene_parts(task_name: str, state: np.ndarray) -> tuple[str, np.ndarray, np.ndarray] | None:
    """``state()`` rows -> (name of the other thing, measured points, other points), in metres.

    Measured: what ``state_distance`` compares (Push-T's block keypoints, the cube, the ball);
    other: what the images show besides (the pusher, the gripper, the door's height). None for
    tasks whose images show nothing else that moves (or whose robot is masked out).
    """
    state = np.asarray(state, dtype=np.float64)
    if task_name == "push_t":  # (push_t_masked: the pusher is not in the images)
        c, s = state[:, 4:5], state[:, 5:6]
        kp = KEYPOINTS
        kx = kp[:, 0] * c - kp[:, 1] * s + state[:, 2:3]
        ky = kp[:, 0] * s + kp[:, 1] * c + state[:, 3:4]
        return "pusher", np.concatenate([kx, ky], axis=1), state[:, :2]
    if task_name in ("arm_push", "arm_pick_place"):
        cube = state[:, 4:6] if task_name == "arm_push" else state[:, 4:7]
        return "gripper", cube, state[:, :3]
    if task_name == "two_room":
        return "door", state[:, :2], state[:, 2:3]
    return None


def scene_features(measured: np.ndarray, other: np.ndarray, w: float) -> torch.Tensor:
    """Features whose mean squared difference is proportional to (mean squared distance of the
    measured points) + ``w`` (mean squared distance of the other points)."""
    a = measured / np.sqrt(measured.shape[1])
    b = other * np.sqrt(w / other.shape[1])
    return torch.as_tensor(np.concatenate([a, b], axis=1))


def components(task_name: str, a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
    """Named parts of what differs between ``state()`` rows ``a`` and ``b`` (pairs, S) -> (pairs,):
    the measured thing's position (and, for Push-T's block, yaw; for the cube, its (x, y), its
    height and its turn in radians) and the other thing's (shown or, masked, known to exist)."""
    out: dict[str, np.ndarray] = {}
    if task_name in PUSH_T_TASKS:
        out["block position"] = np.linalg.norm(a[:, 2:4] - b[:, 2:4], axis=1)
        yaw = (a[:, 4] + 1j * a[:, 5]) * (b[:, 4] - 1j * b[:, 5])
        out["block yaw"] = np.abs(np.angle(yaw))
        out["pusher"] = np.linalg.norm(a[:, :2] - b[:, :2], axis=1)
    elif task_name in CUBE_TASKS:
        out["cube"] = np.linalg.norm(a[:, 4:7] - b[:, 4:7], axis=1)
        out["cube xy"] = np.linalg.norm(a[:, 4:6] - b[:, 4:6], axis=1)
        out["cube height"] = np.abs(a[:, 6] - b[:, 6])
        dot = np.abs(np.sum(a[:, 7:11] * b[:, 7:11], axis=1))  # q and -q: the same turn
        out["cube turn"] = 2.0 * np.arccos(np.clip(dot, 0.0, 1.0))
        out["gripper"] = np.linalg.norm(a[:, :3] - b[:, :3], axis=1)
    elif task_name == "two_room":
        out["ball"] = np.linalg.norm(a[:, :2] - b[:, :2], axis=1)
        out["door"] = np.abs(a[:, 2] - b[:, 2])
    return out


def component_ranks(task_name: str, z: torch.Tensor, state: np.ndarray) -> dict[str, float]:
    """Spearman of the latent cost with each of ``components`` over the report's pairs
    (``rank_correlation``'s draw across the held-out frames): what the latent's distance follows."""
    i, j = random_pairs(len(z))
    lat = latent_cost(z, i, j)
    parts = components(task_name, np.asarray(state)[i], np.asarray(state)[j])
    return {k: float(spearmanr(lat, v).statistic) for k, v in parts.items()}


@friendly_errors
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--checkpoint", help="also rank this model's latent distance")
    p.add_argument("--heldout-fraction", type=float, default=0.1)
    a = p.parse_args()
    data = Dataset(a.data)
    _, held_eps = split_dataset(data, a.heldout_fraction, 2)
    held = Windows(data, held_eps, 2, 1)
    task = envs.make(data.task).unwrapped
    rank = lambda f: rank_correlation(f, held.state, task.state_distance, episode=held.episode)  # noqa: E731
    pixels = held.pixels[:].flatten(1).float() / 255.0  # (N, H*W*3)
    report = {"data": a.data, "pairs_from_frames": len(held.state), "pixels": rank(pixels)}
    if data.task in REACHERS:
        report["arm_keypoints"] = rank(torch.as_tensor(arm_keypoints(task, held.state)))
    if data.task in CUBE_TASKS:
        report["cube_image_points"] = rank(torch.as_tensor(cube_image_points(task, held.state)))
    parts = scene_parts(data.task, held.state)
    if parts is not None:
        other, measured, shown = parts
        report["scene"] = {
            "other": other,
            **{f"w={w:g}": rank(scene_features(measured, shown, w)) for w in SCENE_WEIGHTS},
        }
    if a.checkpoint:
        model, _ = checkpoint.load(a.checkpoint, expect={"task": data.task})
        model.eval()
        z = model.image_part(encode_all(model, held.pixels, held.proprio))
        if model.cfg.cost_features:  # the whole latent, beside the cost's slow features
            report["latent_whole"] = rank(z)
            z = model.image_part(model.cost_view(z))
        report["latent"] = {"checkpoint": a.checkpoint, **rank(z)}
        follows = component_ranks(data.task, z, held.state)
        if follows:  # tasks with named parts (Push-T, the cube tasks, two-room)
            report["latent"]["follows"] = follows
    task.close()
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
