import json

import numpy as np
import pytest
import yaml

from tests.load import ROOT, load_module

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
             "plan_ms_p50": 0.3, "env_steps": 100, "config": config, "episodes": 100,
             "seeds": [100000, 100099]}  # fmt: skip
        (out / "results.json").write_text(json.dumps(r))
    cells = rl_report.load(tmp_path, None)
    assert list(cells) == [("point_mass", "sac+her (state)", 100)]
    table = rl_report.table(cells)
    assert "| point_mass | sac+her (state) | 100 | 3 | 100 (100000-100099) | 0.40" in table
    assert "-m env=point_mass algo=sac seed=0,1,2 budgets=[100]" in table


def _mpc_result(root, seed, planner, episodes=100):
    """An agent.evaluate results.json of a training seed's checkpoint (+ its manifest)."""
    ckpt = root / f"seed{seed}" / "model.safetensors"
    ckpt.parent.mkdir(parents=True)
    manifest = {"config": {"seed": seed}, "dataset_transitions": 40000, "model": {}}
    ckpt.with_suffix(".json").write_text(json.dumps(manifest))
    cfg = yaml.safe_load((ROOT / "configs" / "planner" / f"{planner}.yaml").read_text())
    r = {"task": "point_mass", "policy": "mpc", "planner": cfg["name"], "checkpoint": str(ckpt),
         "success_rate": 1.0, "plan_ms_p50": 8.0, "episodes": episodes,
         "seeds": [100000, 100000 + episodes - 1], "config": {"planner": cfg}}  # fmt: skip
    out = root / "eval" / f"seed{seed}"
    out.mkdir(parents=True)
    (out / "results.json").write_text(json.dumps(r))
    return out


def test_mpc_cells_show_their_episodes_and_reproduce_with_the_planner_they_used(tmp_path):
    for seed in (0, 1):
        _mpc_result(tmp_path / "fast", seed, "cem_fast")
    mppi = _mpc_result(tmp_path / "mppi", 0, "mppi", episodes=2)
    table = rl_report.table(rl_report.load(None, tmp_path / "fast"))
    assert "| mpc cem (pixels) | 40000 | 2 | 100 (100000-100099) |" in table
    assert "for s in 0 1; do python scripts/mpc_seed.py --task point_mass --seed $s; done" in table
    table = rl_report.table(rl_report.load(None, tmp_path / "mppi"))
    assert "| mpc mppi (pixels) | 40000 | 1 | 2 (100000-100001) |" in table
    assert "mpc_seed.py" not in table  # it reruns the shipped recipe's planner, cem_fast
    ckpt = tmp_path / "mppi" / "seed0" / "model.safetensors"
    assert (
        f"python -m agent.evaluate env=point_mass checkpoint={ckpt} planner=mppi "
        f"eval.episodes=2 eval.seed=100000 output_dir={mppi}"
    ) in table
    # cem_fast records "planner": "cem": a cem result is told apart by its recorded settings
    _mpc_result(tmp_path / "cem", 0, "cem")
    assert "planner=cem eval" in rl_report.table(rl_report.load(None, tmp_path / "cem"))
