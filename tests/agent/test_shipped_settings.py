"""A shipped checkpoint's evaluation settings are the entry points' defaults; CLI wins."""

import json
import subprocess
import sys
from pathlib import Path

from agent.shipped_settings import apply, shipped_agent_settings

ROOT = Path(__file__).resolve().parents[2]


def _manifest(path: Path, agent: dict) -> Path:
    path.with_suffix(".json").write_text(json.dumps({"evaluation": {"config": {"agent": agent}}}))
    return path.with_suffix(".safetensors")


def test_only_non_default_portable_settings_carry_over(tmp_path):
    model = _manifest(
        tmp_path / "m",
        {"horizon": 5, "proprio_weight": 10, "device": "cuda", "landmarks": "g.safetensors"},
    )
    graph = _manifest(tmp_path / "g", {"lookahead": 8.0, "proprio_weight": 3})
    assert shipped_agent_settings(model) == {"proprio_weight": 10}
    assert shipped_agent_settings(tmp_path / "none.safetensors") == {}
    block = {"horizon": 5, "proprio_weight": 0.0, "lookahead": 5.0, "landmarks": str(graph)}
    out, applied = apply(block, str(model), explicit=set())
    assert applied == {"proprio_weight": 3, "lookahead": 8.0}  # the graph's come last
    out, applied = apply(block, str(model), explicit={"proprio_weight"})
    assert out["proprio_weight"] == 0.0 and applied == {"lookahead": 8.0}


def _evaluate(tmp_path, *extra):
    cmd = [sys.executable, "-m", "agent.evaluate", "env=reacher_easy", "eval.episodes=1",
           "eval.workers=1", "eval.videos=0", f"output_dir={tmp_path}", *extra]  # fmt: skip
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout, json.loads((tmp_path / "results.json").read_text())["config"]["agent"]


def test_evaluate_uses_the_shipped_reacher_settings_unless_told_otherwise(tmp_path):
    shipped = json.loads((ROOT / "checkpoints" / "reacher_easy.json").read_text())
    want = shipped["evaluation"]["config"]["agent"]["proprio_weight"]
    assert want != 0
    out, agent = _evaluate(tmp_path / "a")
    assert agent["proprio_weight"] == want and f"agent.proprio_weight={want}" in out
    out, agent = _evaluate(tmp_path / "b", "agent.proprio_weight=0")
    assert agent["proprio_weight"] == 0 and "shipped settings" not in out


def test_results_record_the_planner_preset_beside_the_algorithm(tmp_path):
    """cem and cem_fast are both the cem algorithm; results.json says which preset ran."""
    _evaluate(tmp_path / "fast")
    fast = json.loads((tmp_path / "fast" / "results.json").read_text())
    _evaluate(tmp_path / "cem", "planner=cem")
    full = json.loads((tmp_path / "cem" / "results.json").read_text())
    assert fast["planner"] == full["planner"] == "cem"
    assert (fast["planner_preset"], full["planner_preset"]) == ("cem_fast", "cem")


def test_a_gcbc_handoff_plans_with_its_world_models_shipped_settings(tmp_path):
    policy = "checkpoints/gcbc/arm_pick_place_masked_lift_ens5.safetensors"
    world_model = json.loads((ROOT / policy).with_suffix(".json").read_text())["world_model"]
    want = shipped_agent_settings(ROOT / world_model)
    assert want.get("horizon") == 8  # the (lift) model plans 8 steps ahead
    cmd = [sys.executable, "-m", "agent.evaluate", "env=arm_pick_place_masked", "policy=gcbc",
           f"checkpoint={policy}", "handoff_steps=2", "eval.episodes=1", "eval.workers=1",
           "eval.videos=0", f"output_dir={tmp_path}"]  # fmt: skip
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    assert all(results["config"]["agent"][k] == v for k, v in want.items())
    assert results["planner"] == "cem" and "agent.horizon=8" in done.stdout
