"""scripts/oracle_vs_plan.py: search gap vs model gap."""

import pytest
import torch

from agent import checkpoint
from agent.model import ModelConfig, WorldModel
from tests.load import ROOT, load_module

ovp = load_module("scripts/oracle_vs_plan.py")

SMALL = {"name": "cem", "num_samples": 16, "iterations": 2, "num_elites": 4}


def _row(c_oracle, c_plan, d_oracle, d_plan):
    return {
        "seed": 0,
        "model_cost_oracle": c_oracle,
        "model_cost_plan": c_plan,
        "true_distance_oracle": d_oracle,
        "true_distance_plan": d_plan,
        "success_oracle": d_oracle < 0.1,
        "success_plan": d_plan < 0.1,
    }


def test_summary_counts_each_gap_by_its_definition():
    rows = [
        _row(0.1, 0.5, 0.0, 0.3),  # the model prefers the oracle: search gap
        _row(0.5, 0.1, 0.0, 0.3),  # the model prefers the plan, the oracle truly better: model gap
        _row(0.5, 0.1, 0.3, 0.0),  # the model prefers the plan, rightly: neither
        _row(0.2, 0.2, 0.0, 0.3),  # a tie is no search gap; the model did not see the difference
        _row(0.5, 0.1, 0.0, 0.05),  # both reach the goal: a tie, whatever the distances
        _row(0.5, 0.1, 0.2, 0.3),  # neither reaches it, the oracle nearer: model gap
    ]
    s = ovp.summarize(rows)
    assert s["states"] == 6
    assert s["search_gap"] == pytest.approx(1 / 6) and s["model_gap"] == pytest.approx(3 / 6)
    assert s["success_oracle"] == pytest.approx(4 / 6) and s["success_plan"] == pytest.approx(2 / 6)
    assert s["median_cost_ratio_plan_to_oracle"] == pytest.approx(0.2)


def test_a_model_blind_to_actions_has_no_search_gap(tmp_path):
    """An untrained predictor (zero last layer) imagines no motion: every action sequence costs
    the same, so the planner can never miss a cheaper one; where the oracle truly gets nearer,
    the miss is the model's."""
    torch.manual_seed(0)
    m = WorldModel(ModelConfig(width=8, latent_dim=16, predictor_hidden=32, predictor_layers=1))
    ckpt = checkpoint.save(tmp_path / "blind", m, {"task": "point_mass", "step": 0})
    r = ovp.compare(str(ckpt), episodes=3, at=(0, 4), planner_cfg=SMALL)
    assert r["task"] == "point_mass" and r["lookahead_env_steps"] == 5
    for t in ("0", "4"):
        s = r["at"][t]
        assert s["states"] == 3 and s["search_gap"] == 0.0
        costs = {(p["model_cost_oracle"], p["model_cost_plan"]) for p in s["per_state"]}
        assert all(a == pytest.approx(b) for a, b in costs)
        assert s["model_gap"] == pytest.approx(sum(map(ovp._truly_better, s["per_state"])) / 3)
        assert s["median_true_distance_oracle"] < s["median_true_distance_plan"]


def test_same_seed_same_report():
    ckpt = str(ROOT / "checkpoints" / "point_mass.safetensors")
    a = ovp.compare(ckpt, episodes=2, at=(0,), planner_cfg=SMALL)
    b = ovp.compare(ckpt, episodes=2, at=(0,), planner_cfg=SMALL)
    assert a == b and a["agent"] == ovp.shipped_agent_settings(ckpt)


def test_history_models_are_refused(tmp_path):
    m = WorldModel(ModelConfig(width=8, latent_dim=16, predictor_hidden=32, history=2))
    ckpt = checkpoint.save(tmp_path / "hist", m, {"task": "point_mass"})
    with pytest.raises(ValueError, match="history"):
        ovp.compare(str(ckpt), episodes=1, at=(0,), planner_cfg=SMALL)
