"""RL baselines: train -> save (safetensors + JSON) -> evaluate through the MPC agent's harness."""

import json
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("stable_baselines3")

import envs
from agent.baseline import BaselineConfig, run
from agent.checkpoint import CheckpointError
from agent.evaluation import EvalConfig, EvalSettings, evaluate
from agent.rl import AlgoConfig, build, load_policy
from envs.config import EnvConfig
from envs.wrappers import StateGoal

TINY_SAC = AlgoConfig(net=[32, 32], batch_size=32, learning_starts=120, buffer_size=1000)
TINY_PPO = AlgoConfig(name="ppo", reward="dense", her=False, net=[32, 32], n_steps=64,
                      batch_size=32, n_epochs=2)  # fmt: skip


def _cfg(tmp_path, algo, seed=0):
    return BaselineConfig(
        env=EnvConfig("point_mass"),
        algo=algo,
        seed=seed,
        budgets=[150, 250],
        eval=EvalSettings(episodes=2, workers=1, videos=0, bootstrap=100),
        output_dir=str(tmp_path / f"{algo.name}{seed}"),
    )


@pytest.mark.parametrize("algo", [TINY_SAC, TINY_PPO], ids=["sac_her", "ppo"])
def test_baseline_writes_the_evaluate_schema_at_every_budget(tmp_path, algo):
    summaries = run(_cfg(tmp_path, algo))
    assert [s["env_steps"] for s in summaries] == [150, 250]
    for budget in (150, 250):
        out = tmp_path / f"{algo.name}0" / f"steps_{budget}"
        r = json.loads((out / "results.json").read_text())
        assert r["policy"] == "rl" and r["episodes"] == 2 and r["env_steps"] == budget
        assert {"success_rate", "success_ci95", "plan_ms_p50", "plan_ms_p95", "per_episode"} <= set(
            r
        )
        assert (out / "results.csv").exists()
        manifest = json.loads((out / "policy.json").read_text())
        assert manifest["format"] == "jepa-mpc/rl-policy/1" and manifest["env_steps"] == budget
        assert (out / "policy.safetensors").read_bytes()[:8] != b"PK\x03\x04"  # not a zip/pickle


def test_same_seed_same_policy_and_a_finished_run_is_not_redone(tmp_path, capsys):
    a = run(_cfg(tmp_path / "a", TINY_SAC, seed=3))
    b = run(_cfg(tmp_path / "b", TINY_SAC, seed=3))
    weights = lambda root: json.loads((root / "sac3/steps_250/policy.json").read_text())  # noqa: E731
    assert weights(tmp_path / "a")["weights_sha256"] == weights(tmp_path / "b")["weights_sha256"]
    assert [s["per_episode"] for s in a] == [s["per_episode"] for s in b]
    again = run(_cfg(tmp_path / "a", TINY_SAC, seed=3))
    assert "nothing to do" in capsys.readouterr().out
    assert [s["success_rate"] for s in again] == [s["success_rate"] for s in a]
    # the same folder with other settings is refused, not reported as this run's
    cfg = _cfg(tmp_path / "a", TINY_SAC, seed=3)
    more = replace(cfg, eval=replace(cfg.eval, episodes=3))
    with pytest.raises(ValueError, match=r"steps_150 was made with eval.episodes=2, not 3: choose"):
        run(more)
    with pytest.raises(ValueError, match="was made with algo=.*'name': 'sac'.*'name': 'ppo'"):
        run(replace(cfg, algo=TINY_PPO))
    with pytest.raises(ValueError, match="was made with seed=3, not 4"):
        run(replace(cfg, seed=4))
    assert json.loads((tmp_path / "a/sac3/steps_150/results.json").read_text())["episodes"] == 2


def test_a_ppo_budget_trains_the_same_steps_whatever_the_other_budgets(tmp_path):
    """PPO takes whole rollouts (n_steps=64): budget 250 is 256 env steps, with or without
    budget 150 before it (which used to add its own rounding: 192 + 128 = 320)."""
    both = _cfg(tmp_path, TINY_PPO)
    run(both)
    run(replace(both, budgets=[250], output_dir=str(tmp_path / "alone")))
    manifest = lambda root: json.loads((Path(root) / "steps_250/policy.json").read_text())  # noqa: E731
    a, b = manifest(both.output_dir), manifest(tmp_path / "alone")
    assert a["env_steps_done"] == b["env_steps_done"] == 256
    assert a["weights_sha256"] == b["weights_sha256"]


def test_loaded_policy_acts_like_the_learner(tmp_path):
    run(_cfg(tmp_path, TINY_PPO))
    path = tmp_path / "ppo0" / "steps_250" / "policy.safetensors"
    env = StateGoal(envs.make("point_mass"), reward="dense")
    act, manifest = load_policy(path, env, expect_task="point_mass")
    learner = build(AlgoConfig(**manifest["algo"]), env, seed=0, for_training=False)
    from safetensors.torch import load_file

    learner.policy.load_state_dict(load_file(path))
    obs, _ = env.reset(seed=5)
    np.testing.assert_allclose(act(obs), learner.predict(obs, deterministic=True)[0])
    with pytest.raises(CheckpointError, match="trained on 'point_mass', not 'umaze'"):
        load_policy(path, env, expect_task="umaze")
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 1  # one bit of a weight flipped: still a readable file
    path.write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="do not match their manifest policy.json"):
        load_policy(path, env)


def test_evaluate_cli_runs_an_rl_policy_and_refuses_a_world_model(tmp_path):
    run(_cfg(tmp_path, TINY_PPO))
    policy = tmp_path / "ppo0" / "steps_250" / "policy.safetensors"
    cmd = [sys.executable, "-m", "agent.evaluate", "env=point_mass", "policy=rl",
           f"checkpoint={policy}", "eval.episodes=2", "eval.workers=1", "eval.videos=1",
           f"output_dir={tmp_path / 'cli'}"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    r = json.loads((tmp_path / "cli" / "results.json").read_text())
    assert r["policy"] == "rl" and r["episodes"] == 2
    assert (tmp_path / "cli" / "videos" / "seed_100000.mp4").stat().st_size > 1000
    world_model = "checkpoints/point_mass.safetensors"
    cfg = EvalConfig(EnvConfig("point_mass"), "rl", world_model, output_dir=str(tmp_path))
    with pytest.raises(CheckpointError, match="expected 'jepa-mpc/rl-policy/1'"):
        evaluate(cfg)


def test_bad_settings_fail_with_one_clear_message(tmp_path):
    with pytest.raises(ValueError, match="algo.her=true needs an off-policy learner"):
        AlgoConfig(name="ppo", her=True)
    with pytest.raises(ValueError, match="HER relabels finished episodes only"):
        run(replace(_cfg(tmp_path, TINY_SAC), algo=replace(TINY_SAC, learning_starts=50)))
    with pytest.raises(ValueError, match="overlaps training seeds"):
        replace(_cfg(tmp_path, TINY_SAC), eval=EvalSettings(seed=5))
    with pytest.raises(ValueError, match=r"budgets=\[100, 250\] has a budget within algo.lear"):
        replace(_cfg(tmp_path, TINY_SAC), budgets=[100, 250])  # learning_starts=120
    done = subprocess.run(
        [sys.executable, "-m", "agent.train_baseline", "algo.name=dqn", f"output_dir={tmp_path}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0
    assert "algo.name='dqn' is unknown" in done.stderr


def test_in_process_evaluation_leaves_the_callers_torch_threads_alone(tmp_path):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run(_cfg(tmp_path, TINY_PPO))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_training_leaves_subnormal_floats_on():
    """The runner flushes denormals while it trains; later code (and hypothesis) must not see it."""
    run(_cfg(Path(tempfile.mkdtemp()), TINY_PPO))
    tiny = np.finfo(np.float32).tiny
    assert np.float32(tiny) / np.float32(2) > 0  # a subnormal survives
    assert torch.tensor(tiny) / 2 > 0
