"""How well simple references rank a task's true distance, beside a latent's Spearman.

    python scripts/spearman_references.py --data data/reacher_easy

Ranks the same random held-out pairs as the training report (``agent.metrics.rank_correlation``:
all / near / within one episode) by the mean squared difference of (1) raw pixels and (2) for
the reacher tasks, the arm's keypoints (elbow and fingertip, by forward kinematics from the
recorded joint angles): what a latent that encodes the arm as the image shows it could reach.
Add ``--checkpoint`` to print that model's latent ranking on the same pairs.
"""

from __future__ import annotations

import argparse
import json

import mujoco
import numpy as np
import torch

import envs
from agent import checkpoint
from agent.batches import Windows, split_dataset
from agent.dataset import Dataset
from agent.errors import friendly_errors
from agent.metrics import encode_all, rank_correlation

REACHERS = ("reacher_easy", "reacher_hard")


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
    if a.checkpoint:
        model, _ = checkpoint.load(a.checkpoint, expect={"task": data.task})
        model.eval()
        z = model.image_part(encode_all(model, held.pixels, held.proprio))
        report["latent"] = {"checkpoint": a.checkpoint, **rank(z)}
    task.close()
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
