"""Success split by a goal-state entry: where does a task fail (e.g. pick-and-place goals in the
air vs on the table)?

    python scripts/success_split.py --results runs/<eval>/results.json --dim 6 --above 0.04

Resets the results' task at each episode's seed, reads ``goal_state()[dim]`` and prints the
success rate of the episodes whose entry is above ``--above`` and of the others, as JSON.
(arm tasks: ``goal_state()`` is ee position (3), finger opening (1), cube position (3), ...;
the cube's centre rests at 0.0225 m on the table.)
"""

from __future__ import annotations

import argparse
import json

import numpy as np

import envs
from agent.errors import friendly_errors


def split(results: dict, dim: int, above: float) -> dict:
    env = envs.make(results["config"]["env"]["name"])
    try:
        groups: dict[str, list[bool]] = {"above": [], "below": []}
        for e in results["per_episode"]:
            env.reset(seed=int(e["seed"]))
            value = float(env.unwrapped.goal_state()[dim])
            groups["above" if value > above else "below"].append(bool(e["success"]))
    finally:
        env.close()
    return {
        k: {"episodes": len(v), "success_rate": float(np.mean(v)) if v else None}
        for k, v in groups.items()
    }


@friendly_errors
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--results", required=True, help="results.json of agent.evaluate")
    p.add_argument("--dim", type=int, required=True, help="index into the task's goal_state()")
    p.add_argument("--above", type=float, required=True, help="threshold on that entry")
    a = p.parse_args()
    r = json.loads(open(a.results).read())
    print(
        json.dumps(
            {"results": a.results, "dim": a.dim, "threshold": a.above, **split(r, a.dim, a.above)}
        )
    )


if __name__ == "__main__":
    main()
