"""Collection throughput per task at 64x64: env steps (physics + render) per second.

    python benchmarks/collect_fps.py [--steps 300] [--tasks point_mass,umaze] [--out f.json]

Single-process frames/s per task (median of 3 repeats), and the time the render takes in it.
Also `agent.collect` end to end with all cores on one task (--collect TASK).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np

import envs
from agent.errors import friendly_errors


def measure(name: str, steps: int, repeats: int = 3) -> dict[str, float]:
    env = envs.make(name)
    task = env.unwrapped
    rng = np.random.default_rng(0)
    fps, render_share = [], []
    for r in range(repeats):
        env.reset(seed=r)
        t0 = time.perf_counter()
        for _ in range(steps):
            _, _, _, trunc, _ = env.step(rng.uniform(-1, 1, env.action_space.shape))
            if trunc:
                env.reset(seed=r + 100)
        dt = time.perf_counter() - t0
        t1 = time.perf_counter()
        for _ in range(steps):
            task.render()
        fps.append(steps / dt)
        render_share.append((time.perf_counter() - t1) / dt)
    env.close()
    return {"frames_per_s": float(np.median(fps)), "render_share": float(np.median(render_share))}


def collect_end_to_end(name: str, episodes: int) -> dict[str, float]:
    from agent.collector import CollectConfig, collect
    from envs.config import EnvConfig

    out = tempfile.mkdtemp()
    try:
        cfg = CollectConfig(
            env=EnvConfig(name),
            episodes=episodes,
            out=f"{out}/d",
            workers=0,
            chunk_size=max(1, episodes // 4),
            video=False,
        )
        t0 = time.perf_counter()
        root = collect(cfg)
        dt = time.perf_counter() - t0
        frames = json.loads((root / "meta.json").read_text())["transitions"]
    finally:
        shutil.rmtree(out)
    return {"frames_per_s": frames / dt, "workers": os.cpu_count(), "episodes": episodes}


@friendly_errors
def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--tasks", default=",".join(sorted(envs.TASKS)))
    p.add_argument(
        "--collect", default="point_mass", help="task for the end-to-end run ('' = skip)"
    )
    p.add_argument("--episodes", type=int, default=8)
    p.add_argument("--out", default=None)
    a = p.parse_args()
    rows = {t: measure(t, a.steps) for t in a.tasks.split(",")}
    print("| task | frames/s (1 core, 64x64) | share of time rendering |")
    print("|---|---|---|")
    for t, r in rows.items():
        print(f"| {t} | {r['frames_per_s']:.0f} | {r['render_share']:.0%} |")
    result = {"per_task": rows}
    if a.collect:
        e2e = collect_end_to_end(a.collect, a.episodes)
        result["collect"] = {a.collect: e2e}
        print(
            f"\nagent.collect {a.collect}, {e2e['workers']} workers: "
            f"{e2e['frames_per_s']:.0f} frames/s"
        )
    if a.out:
        with open(a.out, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
