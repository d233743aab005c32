"""Oracle success per task on held-out seeds (the README's task table).

    python scripts/oracle_success.py [--episodes 100] [--tasks a,b] [--out oracle.json]

Runs ``agent.evaluate``'s harness with ``policy=oracle`` for each task, in parallel workers.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import envs
from agent.errors import friendly_errors
from agent.evaluation import EvalConfig, EvalSettings, evaluate
from envs.config import EnvConfig


@friendly_errors
def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--seed", type=int, default=100_000)
    p.add_argument("--tasks", default=",".join(sorted(envs.TASKS)))
    p.add_argument("--out", default=None)
    a = p.parse_args()
    tasks = a.tasks.split(",")
    if a.episodes < 1:
        p.error(f"--episodes must be at least 1, got {a.episodes}")
    if unknown := [t for t in tasks if t not in envs.TASKS]:
        p.error(
            f"unknown task {unknown[0]!r} in --tasks: choose from {','.join(sorted(envs.TASKS))}"
        )
    if a.out and not Path(a.out).resolve().parent.is_dir():
        p.error(f"--out {a.out}: its folder does not exist; create it or write elsewhere")
    rows = {}
    for task in tasks:
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
