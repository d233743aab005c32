"""benchmarks/icem_tasks.py keeps running on the shipped agents, counts budgets and repeats."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARGS = [
    "--tasks", "umaze", "--problems", "1", "--steps", "2", "--sizes", "16",
    "--iterations", "2", "--variants", "default",
]  # fmt: skip


def _run(out: Path) -> dict:
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    cmd = [sys.executable, str(ROOT / "benchmarks" / "icem_tasks.py"), *ARGS, "--out", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT, env=env, timeout=300)
    return json.loads(out.read_text())["tasks"]["umaze"]


def test_icem_tasks_benchmark_counts_budgets_and_repeats_itself(tmp_path):
    a, b = _run(tmp_path / "a.json"), _run(tmp_path / "b.json")
    assert a["cem"]["cem_shipped"]["plan_samples"] == 513  # cem_fast: 128 x 4 + the mean
    assert a["cem"]["cem"]["plan_samples"] == 1537  # configs/planner/cem.yaml: 256 x 6 + 1
    (row,) = a["icem"]
    assert row["variant"] == "default" and row["plan_samples"] < 513
    assert set(a["targets"]) == {"plan/cem_shipped", "plan/cem", "mpc/cem_shipped", "mpc/cem"}
    for x, y in ((a["cem"], b["cem"]), (a["icem"], b["icem"])):
        assert json.dumps(x, sort_keys=True) == json.dumps(y, sort_keys=True)  # same seeds
