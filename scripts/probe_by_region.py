"""A state probe's error by how far out the T is: does the probe read the pose near the walls?

    python scripts/probe_by_region.py --checkpoint <model>.safetensors --probe <probe> \
        --data data/pusht_wide_400 --last 40

Encodes every frame of the last ``--last`` episodes of ``--data`` with the world model, reads
the T's pose (state entries 2:6: x, y, cos, sin of yaw) with the probe, and prints, as JSON,
the median and 90th-percentile position error (mm) and yaw error (degrees) per band of
``max(|x|, |y|)`` of the true centre (Push-T's starts and goals lie within 0.08 m).
"""

from __future__ import annotations

import argparse
import itertools
import json

import numpy as np
import torch

from agent import checkpoint, state_probe
from agent.dataset import Dataset
from agent.errors import friendly_errors
from agent.metrics import encode_episode

BANDS = (0.0, 0.06, 0.1, 0.13, 0.16, 0.25)  #: edges of the max(|x|, |y|) bands (m)


def errors(model, probe, folder: str, last: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(reach, position error, yaw error) of every frame of the last ``last`` episodes."""
    ds = Dataset(folder)
    eps = list(ds.iter_episodes())[-last:]
    reach, pos, yaw = [], [], []
    for ep in eps:
        with torch.no_grad():
            z = encode_episode(model, ep)
            p = probe(model.image_part(z).flatten(1)).double().numpy()
        y = np.asarray(ep["state"], np.float64)[:, 2:6]
        reach.append(np.abs(y[:, :2]).max(1))
        pos.append(np.linalg.norm(p[:, :2] - y[:, :2], axis=1))
        turn = np.arctan2(p[:, 3], p[:, 2]) - np.arctan2(y[:, 3], y[:, 2])
        yaw.append(np.abs(np.angle(np.exp(1j * turn))))
    return np.concatenate(reach), np.concatenate(pos), np.concatenate(yaw)


def by_band(reach: np.ndarray, pos: np.ndarray, yaw: np.ndarray) -> list[dict]:
    rows = []
    for lo, hi in itertools.pairwise(BANDS):
        m = (reach >= lo) & (reach < hi)
        if not m.any():
            continue
        rows.append({
            "band_m": [lo, hi], "frames": int(m.sum()),
            "position_mm_p50": round(1e3 * float(np.median(pos[m])), 1),
            "position_mm_p90": round(1e3 * float(np.percentile(pos[m], 90)), 1),
            "yaw_deg_p50": round(float(np.degrees(np.median(yaw[m]))), 1),
            "yaw_deg_p90": round(float(np.degrees(np.percentile(yaw[m], 90))), 1),
        })  # fmt: skip
    return rows


@friendly_errors
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--checkpoint", required=True, help="world model (safetensors)")
    p.add_argument("--probe", required=True, help="its pose probe (agent.state_probe --dims 2:6)")
    p.add_argument("--data", required=True, help="a Push-T dataset folder")
    p.add_argument("--last", type=int, default=40, help="episodes at the end of --data to read")
    a = p.parse_args()
    torch.set_num_threads(2)
    model, _ = checkpoint.load(a.checkpoint, expect={"task": "push_t"})
    probe, _ = state_probe.load(a.probe, a.checkpoint)
    if probe.dims != [2, 3, 4, 5]:
        raise SystemExit(f"error: the probe reads state entries {probe.dims}, not the T's pose 2:6")
    rows = by_band(*errors(model.eval(), probe.eval(), a.data, a.last))
    print(json.dumps({"checkpoint": a.checkpoint, "probe": a.probe, "data": a.data,
                      "episodes": a.last, "bands": rows}))  # fmt: skip


if __name__ == "__main__":
    main()
