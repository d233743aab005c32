"""Which keypoints follow which part of the scene? Per-point linear R^2 of state entries.

    python scripts/point_tracking.py --checkpoint <keypoints model>.safetensors \
        --data data/app_lift_2400 --dims 4:7 --against 0:3 --episodes 200

Encodes every frame of the first ``--episodes`` episodes of ``--data`` with a keypoint
encoder (``model.encoder=keypoints``), fits each point's image x and y linearly to the state
entries ``--dims`` (arm tasks: 4:7 is the cube's position) and, with ``--against``, to those
entries too (0:3: the gripper's), and prints, as JSON, each point's R^2 per entry, points
sorted by their mean R^2 on ``--dims``. A cost that should follow the cube needs points whose
R^2 is high on the cube and low on the gripper; the data need not be the encoder's own task
(one pretrain can serve several tasks that share a camera).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from agent import checkpoint
from agent.dataset import Dataset
from agent.errors import friendly_errors
from agent.metrics import encode_episode
from agent.state_probe import parse_dims


def per_point_r2(points: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(points (N, 2P) as x, y pairs; target (N, k)) -> (P, k): R^2 of a linear fit per point."""
    n, d = points.shape
    target = np.asarray(target, np.float64)
    var = ((target - target.mean(0)) ** 2).sum(0)
    out = np.zeros((d // 2, target.shape[1]))
    for p in range(d // 2):
        x = np.column_stack([np.ones(n), points[:, 2 * p : 2 * p + 2]]).astype(np.float64)
        w = np.linalg.lstsq(x, target, rcond=None)[0]
        out[p] = 1.0 - ((target - x @ w) ** 2).sum(0) / np.maximum(var, 1e-12)
    return out


def encode_points(model, ds: Dataset, episodes: int) -> tuple[np.ndarray, np.ndarray]:
    """(image points (N, D), states (N, S)) of every frame of the first ``episodes`` episodes."""
    zs, states = [], []
    for i, ep in enumerate(ds.iter_episodes()):
        if i == episodes:
            break
        zs.append(model.image_part(encode_episode(model, ep)).flatten(1).numpy())
        states.append(np.asarray(ep["state"], np.float64))
    return np.concatenate(zs), np.concatenate(states)


@friendly_errors
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--checkpoint", required=True, help="a keypoint world model (safetensors)")
    p.add_argument("--data", required=True, help="a dataset folder of a task the camera sees")
    p.add_argument("--dims", required=True, help="state entries the points should follow, 'a:b'")
    p.add_argument("--against", default=None, help="state entries to compare, e.g. the gripper's")
    p.add_argument("--episodes", type=int, default=200, help="episodes at the start of --data")
    a = p.parse_args()
    torch.set_num_threads(2)
    if a.episodes < 1:
        raise SystemExit(f"error: --episodes={a.episodes}: use at least 1")
    dims = parse_dims(a.dims)
    against = parse_dims(a.against) if a.against else []
    model, _ = checkpoint.load(a.checkpoint)
    if model.cfg.encoder != "keypoints":
        raise SystemExit(
            f"error: {a.checkpoint} has a {model.cfg.encoder} encoder; point tracking needs "
            "model.encoder=keypoints"
        )
    ds = Dataset(a.data)
    entries = np.shape(next(ds.iter_episodes())["state"])[1]
    if max(dims + against) >= entries:  # before encoding anything
        raise SystemExit(
            f"error: the data's state has {entries} entries; --dims/--against "
            f"ask for entry {max(dims + against)}"
        )
    z, state = encode_points(model.eval(), ds, a.episodes)
    r2 = per_point_r2(z, state[:, dims])
    r2_against = per_point_r2(z, state[:, against]) if against else None
    rows = []
    for i in np.argsort(-r2.mean(1), kind="stable"):
        row = {"point": int(i), "r2": np.round(r2[i], 3).tolist()}
        if r2_against is not None:
            row["r2_against"] = np.round(r2_against[i], 3).tolist()
        rows.append(row)
    print(json.dumps({"checkpoint": a.checkpoint, "data": a.data, "dims": dims,
                      "against": against, "frames": len(z), "points": rows}))  # fmt: skip


if __name__ == "__main__":
    main()
