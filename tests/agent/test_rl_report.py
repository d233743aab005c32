import json

import numpy as np
import pytest

from tests.load import load_module

rl_report = load_module("benchmarks/rl_report.py")


def test_iqm_trims_the_outer_quartiles_and_its_interval_brackets_it():
    x = np.array([0.0, 0.5, 0.6, 0.7, 1.0, 1.0, 1.0, 0.0])
    assert rl_report.iqm(x) == pytest.approx(np.mean(np.sort(x)[2:6]))
    lo, hi = rl_report.iqm_ci(x, n=2000)
    assert lo <= rl_report.iqm(x) <= hi


def test_report_groups_seeds_into_cells(tmp_path):
    for seed, rate in enumerate([0.2, 0.4, 0.6]):
        out = tmp_path / f"seed{seed}" / "steps_100"
        out.mkdir(parents=True)
        config = {"seed": seed, "budgets": [100], "algo": {"name": "sac", "her": True}}
        r = {"task": "point_mass", "policy": "rl", "planner": None, "success_rate": rate,
             "plan_ms_p50": 0.3, "env_steps": 100, "config": config}  # fmt: skip
        (out / "results.json").write_text(json.dumps(r))
    cells = rl_report.load(tmp_path, None)
    assert list(cells) == [("point_mass", "sac+her (state)", 100)]
    table = rl_report.table(cells)
    assert "| point_mass | sac+her (state) | 100 | 3 | 0.40" in table
    assert "-m env=point_mass algo=sac seed=0,1,2 budgets=[100]" in table
