"""Cost of the landmark graph per plan and per episode (CPU).

    python benchmarks/landmark_latency.py [--checkpoint checkpoints/medium_maze.safetensors] \
        [--landmarks checkpoints/landmarks/medium_maze.safetensors] [--threads 1] [--repeats 200]

Times ``reset(goal)`` (one Dijkstra over the whole graph, once per episode) and
``subgoal(z)`` (entry node + path walk, once per plan) with node latents as queries (plus a
small offset so no query hits a node exactly). Prints medians and p95 in ms.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from agent import landmarks
from agent.errors import friendly_errors


@friendly_errors
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default="checkpoints/medium_maze.safetensors")
    p.add_argument("--landmarks", default="checkpoints/landmarks/medium_maze.safetensors")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=200)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    g = landmarks.for_checkpoint(a.landmarks, a.checkpoint)
    rng = np.random.default_rng(0)
    resets, plans = [], []
    for _ in range(a.repeats):
        i, j = rng.integers(g.nodes, size=2)
        t0 = time.perf_counter()
        g.reset(g.z[i])
        t1 = time.perf_counter()
        g.subgoal(g.z[j] + 1e-3, lookahead=5.0)
        t2 = time.perf_counter()
        resets.append(1e3 * (t1 - t0))
        plans.append(1e3 * (t2 - t1))
    for name, ts in (("reset (per episode)", resets), ("subgoal (per plan)", plans)):
        print(
            f"{name}: p50 {np.median(ts):.2f} ms, p95 {np.percentile(ts, 95):.2f} ms "
            f"({g.nodes} nodes, {len(g.edges[0])} edges, {a.threads} thread(s))"
        )


if __name__ == "__main__":
    main()
