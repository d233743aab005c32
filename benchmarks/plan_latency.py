"""MPC planning latency per step with a shipped checkpoint, alone on the machine.

    python benchmarks/plan_latency.py [--task point_mass] [--planners cem_fast,cem] [--steps 60]
        [--precisions float32,bfloat16] [--waypoints 0,3] [--compile false,true]
        [--checkpoint <path>]

Runs the agent on real observations of the task (held-out seeds) and times each replan
(encode + plan + imagined rollout for the video): median and p95 in ms, per planner config
from ``configs/planner/``. Evaluation runs report latency too, but with parallel workers
sharing the cores; this is the number to compare with the 25 ms target. ``--precisions``
times each planner with the agent's rollouts in each precision (``agent.precision``), in one
run, so their ratio is measured under the same conditions; ``--waypoints`` likewise times
raw action plans (0) against plans of W waypoints (``agent.waypoints``: the path decoding is
the difference, planner dimensions aside); ``--compile false,true`` times eager rollouts
against ``agent.compile`` ones, and reports the compiled agent's one-time warm-up (its first
``reset``: compilation, or loading it from inductor's on-disk cache on a later run).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

# benchmarks/planners.py would shadow the planners package when run as a script
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

import envs  # noqa: E402
from agent import checkpoint  # noqa: E402
from agent.errors import friendly_errors  # noqa: E402
from agent.mpc import AgentConfig, build_agent  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "planner"


def measure(
    task: str,
    planner_cfg: str,
    steps: int,
    horizon: int,
    precision: str = "float32",
    waypoints: int = 0,
    ckpt: str | None = None,
    compiled: bool = False,
) -> dict[str, float]:
    model, _ = checkpoint.load(ckpt or f"checkpoints/{task}.safetensors", expect={"task": task})
    env = envs.make(task)
    cfg = yaml.safe_load((CONFIGS / f"{planner_cfg}.yaml").read_text())
    agent_cfg = AgentConfig(
        horizon=horizon, precision=precision, waypoints=waypoints, compile=compiled
    )
    space = env.action_space
    agent = build_agent(model, cfg, agent_cfg, space.low, space.high)
    times, seed = [], 100_000
    obs, _ = env.reset(seed=seed)
    t0 = time.perf_counter()
    agent.reset(env.unwrapped.goal_observation(), seed=seed)
    first_reset_s = time.perf_counter() - t0
    for _ in range(steps):
        obs, _, _, trunc, info = env.step(agent.act(obs))
        times.append(agent.last_plan_ms)
        if trunc or info["success"]:
            seed += 1
            obs, _ = env.reset(seed=seed)
            agent.reset(env.unwrapped.goal_observation(), seed=seed)
    env.close()
    t = np.array(times[5:])  # first plans include one-off allocation
    return {
        "p50_ms": float(np.median(t)),
        "p95_ms": float(np.percentile(t, 95)),
        "plans": len(t),
        "first_reset_s": first_reset_s,
    }


@friendly_errors
def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--task", default="point_mass")
    p.add_argument("--planners", default="cem_fast,cem,icem,mppi")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--horizon", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--precisions", default="float32", help="agent.precision values to time")
    p.add_argument("--waypoints", default="0", help="agent.waypoints values (0 = raw actions)")
    p.add_argument("--compile", default="false", help="agent.compile values: false,true")
    p.add_argument("--checkpoint", default=None, help="default: checkpoints/<task>.safetensors")
    p.add_argument("--out", default=None)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if bad := set(a.compile.split(",")) - {"false", "true"}:
        p.error(f"--compile {a.compile}: use false, true or false,true (got {sorted(bad)})")
    rows = {
        f"{name} {precision}"
        + (f" waypoints={w}" if w != "0" else "")
        + (" compiled" if c == "true" else ""): measure(
            a.task, name, a.steps, a.horizon, precision, int(w), a.checkpoint, c == "true"
        )
        for name in a.planners.split(",")
        for precision in a.precisions.split(",")
        for w in a.waypoints.split(",")
        for c in a.compile.split(",")
    }
    print(
        f"| planner config, precision ({a.task}, H={a.horizon}, {a.threads} threads) "
        "| p50 ms | p95 ms | first reset s |"
    )
    print("|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['first_reset_s']:.1f} |")
    if a.out:
        Path(a.out).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
