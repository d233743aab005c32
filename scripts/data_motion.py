"""How much does something move in a dataset? Per-episode path length of ``state()[dims]``.

    python scripts/data_motion.py --data data/push_t --dims 2:4     # Push-T's block (x, y)

Prints the median and mean path length per episode, the share of episodes whose net
displacement exceeds ``--net``, and the share of steps that move more than ``--step``; used to
tell whether a dataset shows the object motion a world model must learn to predict. Also how
often the data reaches its episode's goal (``distance`` within the task's success threshold)
and the median step it first does so.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from agent.dataset import Dataset
from agent.errors import friendly_errors


def motion(
    data: Dataset, lo: int, hi: int, step: float, net: float, above: float | None = None
) -> dict[str, float]:
    """``above``: also the share of episodes whose first selected entry ever exceeds it, and
    of frames where it does (e.g. a cube's height: how often the data lifts it)."""
    paths, nets, moving, steps, eps_above, frames_above = [], [], 0, 0, 0, 0
    reached = []  # first step at the goal, per episode that gets there
    for ep in data.iter_episodes():
        first = data.first_success(ep)
        if first >= 0:
            reached.append(first)
        s = ep["state"][:, lo:hi]
        if above is not None:
            high = s[:, 0] > above
            eps_above, frames_above = eps_above + int(high.any()), frames_above + int(high.sum())
        d = np.linalg.norm(np.diff(s, axis=0), axis=1)  # (T,)
        paths.append(d.sum())
        nets.append(np.linalg.norm(s[-1] - s[0]))
        moving, steps = moving + int((d > step).sum()), steps + len(d)
    extra = {}
    if above is not None:
        frames = steps + len(paths)  # each episode has one frame more than steps
        extra = {
            "share_episodes_above": eps_above / max(len(paths), 1),
            "share_frames_above": frames_above / max(frames, 1),
        }
    return {
        "episodes": len(paths),
        "median_path": float(np.median(paths)),
        "mean_path": float(np.mean(paths)),
        "share_episodes_net_above": float(np.mean(np.array(nets) > net)),
        "share_steps_moving": moving / max(steps, 1),
        "share_episodes_reaching_goal": len(reached) / max(len(paths), 1),
        "median_steps_to_goal": float(np.median(reached)) if reached else None,
        **extra,
    }


@friendly_errors
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--dims", default="0:2", help="slice of state(), e.g. 2:4")
    p.add_argument("--step", type=float, default=2e-4, help="per-step motion that counts")
    p.add_argument("--net", type=float, default=0.02, help="net displacement that counts")
    p.add_argument("--above", type=float, default=None, help="level of the first dim to count")
    a = p.parse_args()
    lo, hi = (int(x) for x in a.dims.split(":"))
    stats = motion(Dataset(a.data), lo, hi, a.step, a.net, a.above)
    print(json.dumps({"data": a.data, "dims": a.dims, **stats}))


if __name__ == "__main__":
    main()
