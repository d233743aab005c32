"""Render docs/tasks.png: for every task, the start observation and the goal image (seed 0).

python scripts/task_gallery.py [--out docs/tasks.png]
"""

from __future__ import annotations

import argparse

import imageio.v2 as imageio
import numpy as np

import envs
from agent.errors import friendly_errors


@friendly_errors
def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", default="docs/tasks.png")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    tiles = []
    for name in sorted(envs.TASKS):
        env = envs.make(name)
        obs, _ = env.reset(seed=a.seed)
        goal = env.unwrapped.goal_observation()["pixels"]
        env.close()
        pair = np.concatenate([obs["pixels"], np.full((64, 2, 3), 255, np.uint8), goal], axis=1)
        tiles.append(np.pad(pair, ((4, 4), (4, 4), (0, 0)), constant_values=255))
    rows = [np.concatenate(tiles[i : i + 5], axis=1) for i in range(0, len(tiles), 5)]
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    img = np.concatenate(rows, axis=0)
    imageio.imwrite(a.out, np.repeat(np.repeat(img, 2, 0), 2, 1))
    print(f"wrote {a.out}: tasks in order {sorted(envs.TASKS)}")


if __name__ == "__main__":
    main()
