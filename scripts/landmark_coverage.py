"""Is a landmark graph connected where episodes need it? Per episode: how many nodes can reach
the goal, whether the start can, and how far the goal image is from its nearest node.

    python scripts/landmark_coverage.py --checkpoint <ckpt> --landmarks <graph.safetensors> \
        --env <task> [--episodes 30] [--seed 200000]

Prints medians over episodes and writes nothing. A graph helps only where the start can reach
the goal through it; a goal far from every node (distance in median one-step latent moves,
above the graph's link radius) is attached to its nearest node alone.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

import envs
from agent import checkpoint, landmarks
from agent.errors import friendly_errors


@friendly_errors
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--landmarks", required=True)
    p.add_argument("--env", required=True)
    p.add_argument("--episodes", type=int, default=30)
    p.add_argument("--seed", type=int, default=200_000)
    a = p.parse_args()
    model, _ = checkpoint.load(a.checkpoint, expect={"task": a.env})
    graph = landmarks.for_checkpoint(a.landmarks, a.checkpoint)
    env = envs.make(a.env)
    task = env.unwrapped
    task.render_observations = True
    reach, start_ok, goal_gap = [], [], []
    for s in range(a.seed, a.seed + a.episodes):
        obs, _ = env.reset(seed=s)
        goal = task.goal_observation()
        with torch.no_grad():
            px = torch.from_numpy(np.stack([obs["pixels"], goal["pixels"]]))
            z0, zg = model.encode(px, torch.from_numpy(np.stack([obs["proprio"], goal["proprio"]])))
        graph.reset(zg, goal.get("proprio"))
        reach.append(float(np.isfinite(graph.to_goal).mean()))
        start_ok.append(bool(graph.path_from(z0, obs.get("proprio"))))
        goal_gap.append(float(graph.steps_to(zg, goal.get("proprio")).min()))
    env.close()
    print(
        f"{a.env}: {graph.nodes} nodes, {len(graph.edges[0])} edges, link radius "
        f"{graph.radius} | over {a.episodes} episodes from seed {a.seed}: nodes that reach the "
        f"goal median {statistics.median(reach):.0%}; start has a path in "
        f"{np.mean(start_ok):.0%}; goal to nearest node median {statistics.median(goal_gap):.1f}"
    )


if __name__ == "__main__":
    main()
