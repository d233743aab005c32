"""Oracle success per task on held-out seeds (the README's task table).

    python scripts/oracle_success.py [--episodes 100] [--tasks a,b] [--out oracle.json]

Runs ``agent.evaluate``'s harness with ``policy=oracle`` for each task, in parallel workers.
"""

from __future__ import annotations

import argparse
import json
import tempfile

import envs
from agent.evaluation import EvalConfig, EvalSettings, evaluate
from envs.config import EnvConfig


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--seed", type=int, default=100_000)
    p.add_argument("--tasks", default=",".join(sorted(envs.TASKS)))
    p.add_argument("--out", default=None)
    a = p.parse_args()
    rows = {}
    for task in a.tasks.split(","):
        with tempfile.TemporaryDirectory() as d:
            cfg = EvalConfig(
                env=EnvConfig(task),
                policy="oracle",
                output_dir=d,
                eval=EvalSettings(episodes=a.episodes, seed=a.seed, videos=0, workers=2),
            )
            r = evaluate(cfg)
        rows[task] = {
            "success_rate": r["success_rate"],
            "success_ci95": r["success_ci95"],
            "episodes": r["episodes"],
            "mean_steps": r["mean_steps"],
        }
        lo, hi = r["success_ci95"]
        line = f"| {task} | {r['success_rate']:.2f} [{lo:.2f}, {hi:.2f}] | {r['mean_steps']:.0f} |"
        print(line, flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
