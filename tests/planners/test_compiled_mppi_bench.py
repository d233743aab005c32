"""benchmarks/compiled_mppi.py keeps running: both planners tuned alike, the rollout ceiling."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pytorch_mppi")  # the bench extra: pip install -e '.[bench]'
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_compiled_mppi_benchmark_tunes_both_planners_and_times_the_rollouts_alone(tmp_path):
    out = tmp_path / "r.json"
    args = ["--hidden", "16", "--layers", "1", "--problems", "2", "--repeats", "1"]
    cmd = [sys.executable, str(ROOT / "benchmarks" / "compiled_mppi.py"), *args]
    subprocess.run([*cmd, "--iterations", "2", "--out", str(out)], check=True, timeout=600)
    (row,) = json.loads(out.read_text())["rows"]
    assert set(row["ms"]) == {
        f"{who} {k}" for who in ("planners", "pytorch-mppi", "rollouts alone")
        for k in ("eager", "compiled")
    }  # fmt: skip
    assert row["temperature"]["planners"] in (0.01, 0.03, 0.1, 0.3)
    assert row["temperature"]["pytorch-mppi"] in (0.001, 0.01, 0.1, 1.0)
    c = row["cost"]
    for who in ("planners", "pytorch-mppi"):  # same noise, same plan, to float rounding
        assert c[f"{who} eager"] == pytest.approx(c[f"{who} compiled"], rel=1e-3)
