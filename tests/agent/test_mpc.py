"""The MPC agent and the evaluation harness."""

import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import envs
import planners
from agent import checkpoint
from agent.evaluation import (
    EvalConfig,
    EvalSettings,
    bootstrap_ci,
    check_same_evaluation,
    evaluate,
)
from agent.model import ModelConfig, WorldModel
from agent.mpc import AgentConfig, MPCAgent
from envs.config import EnvConfig


def _agent(seed=0, **kw):
    torch.manual_seed(0)
    model = WorldModel(ModelConfig(width=8, latent_dim=16, predictor_hidden=32))
    planner = planners.make(
        "cem", [-1, -1], [1, 1], horizon=4, num_samples=32, iterations=2, num_elites=4
    )
    return MPCAgent(model, planner, AgentConfig(horizon=4, **kw), seed=seed)


def _episode(agent, steps=6, seed=5):
    env = envs.make("point_mass")
    obs, _ = env.reset(seed=seed)
    agent.reset(env.unwrapped.goal_observation(), seed=seed)
    actions = []
    for _ in range(steps):
        a = agent.act(obs)
        actions.append(a)
        obs, *_ = env.step(a)
    env.close()
    return np.stack(actions)


def test_actions_in_bounds_and_deterministic():
    a1 = _episode(_agent())
    a2 = _episode(_agent())
    assert a1.shape == (6, 2) and np.all(np.abs(a1) <= 1)
    np.testing.assert_array_equal(a1, a2)


def test_replan_every_k_and_warm_start():
    agent = _agent(replan_every=2)
    calls = []
    real = agent.planner.plan

    def spy(objective, init_mean=None, generator=None, deadline_s=None):
        calls.append(None if init_mean is None else init_mean.clone())
        return real(objective, init_mean=init_mean, generator=generator, deadline_s=deadline_s)

    agent.planner.plan = spy
    _episode(agent, steps=6)
    assert len(calls) == 3 and calls[0] is None
    # the warm start is the previous plan shifted by the two executed actions, tail padded
    prev = agent.plan
    assert calls[2].shape == prev.shape


def test_action_repeat_holds_each_planned_action_and_looks_further_ahead():
    agent = _agent(replan_every=1, action_repeat=3)
    seen = []
    real = agent.model.rollout

    def spy(z0, actions):
        seen.append(actions.shape[1])
        return real(z0, actions)

    agent.model.rollout = spy
    actions = _episode(agent, steps=6)
    np.testing.assert_array_equal(actions[0], actions[2])  # held for 3 env steps
    np.testing.assert_array_equal(actions[3], actions[5])
    assert set(seen) == {12}  # horizon 4 x repeat 3 imagined steps
    with pytest.raises(ValueError, match="action_repeat=0"):
        AgentConfig(action_repeat=0)


def test_objective_is_latent_distance_to_the_goal():
    agent = _agent()
    env = envs.make("point_mass")
    obs, _ = env.reset(seed=1)
    goal = env.unwrapped.goal_observation()
    agent.reset(goal)
    z0 = agent.model.encode(torch.as_tensor(obs["pixels"])[None])
    acts = torch.zeros(3, 4, 2)
    with torch.no_grad():
        cost = agent.objective(z0)(acts)
        expect = (agent.model.rollout(z0, acts)[:, -1] - agent.z_goal).pow(2).mean(-1)
    torch.testing.assert_close(cost, expect)
    env.close()


def test_agent_config_rejects_bad_values():
    with pytest.raises(ValueError, match="replan_every"):
        AgentConfig(horizon=3, replan_every=4)
    with pytest.raises(ValueError, match="cost_metric"):
        AgentConfig(cost_metric="cos")


def test_eval_settings_name_the_value_that_is_wrong():
    with pytest.raises(ValueError, match=r"eval.bootstrap=0: use an integer >= 1"):
        EvalSettings(bootstrap=0)  # used to fail after every episode had run
    with pytest.raises(ValueError, match=r"eval.episodes=0: use an integer >= 1"):
        EvalSettings(episodes=0)
    with pytest.raises(ValueError, match=r"eval.workers=-1: use an integer >= 0 \(0: one per"):
        EvalSettings(workers=-1)


def test_bootstrap_interval_brackets_the_rate():
    lo, hi = bootstrap_ci(np.array([1.0] * 8 + [0.0] * 2), 2000)
    assert lo < 0.8 < hi and 0 <= lo and hi <= 1


def test_harness_writes_results_csv_and_video(tmp_path):
    cfg = EvalConfig(
        env=EnvConfig("point_mass"),
        policy="oracle",
        output_dir=str(tmp_path),
        eval=EvalSettings(episodes=2, seed=100_000, workers=1, videos=1),
    )
    summary = evaluate(cfg)
    r = json.loads((tmp_path / "results.json").read_text())
    for key in (
        "success_rate",
        "success_ci95",
        "episodes",
        "plan_ms_p50",
        "plan_ms_p95",
        "per_episode",
        "config",
    ):
        assert key in r
    assert r["success_rate"] == 1.0 and r["episodes"] == 2 == len(r["per_episode"])
    first = r["per_episode"][0]
    assert {"seed", "success", "final_distance", "steps", "final_state"} == set(first)
    env = envs.make("point_mass")  # the oracle reached the goal: the final state is there
    env.reset(seed=100_000)
    assert env.unwrapped.state_distance(first["final_state"], env.unwrapped.goal_state()) < 0.05
    env.close()
    rows = list(csv.DictReader(open(tmp_path / "results.csv")))
    assert [int(x["seed"]) for x in rows] == [100_000, 100_001]
    video = tmp_path / "videos" / "seed_100000.mp4"
    assert video.stat().st_size > 1000 and video.stat().st_mode & 0o777 == 0o644
    assert summary["success_rate"] == r["success_rate"]
    # the same evaluation again replaces it, videos included (none asked for: none left)
    evaluate(replace(cfg, eval=replace(cfg.eval, videos=0)))
    assert not video.exists() and (tmp_path / "results.json").exists()
    # another policy or goal kind into the same folder is refused: the results stay
    before = (tmp_path / "results.json").read_text()
    with pytest.raises(ValueError, match="holds the results of policy=oracle, not random: pass"):
        evaluate(replace(cfg, policy="random"))
    with pytest.raises(ValueError, match="holds the results of eval.goal_steps=0, not 3"):
        check_same_evaluation(replace(cfg, eval=replace(cfg.eval, goal_steps=3)), tmp_path)
    check_same_evaluation(replace(cfg, checkpoint="another.safetensors"), tmp_path)  # unused
    assert (tmp_path / "results.json").read_text() == before


def test_random_baseline_rarely_succeeds(tmp_path):
    cfg = EvalConfig(
        env=EnvConfig("point_mass"),
        policy="random",
        output_dir=str(tmp_path),
        eval=EvalSettings(episodes=2, workers=1, videos=0),
    )
    assert evaluate(cfg)["success_rate"] <= 0.5


def test_history_models_plan_from_the_last_k_latents():
    """A predictor with history K > 1 gets the latents of the last K env steps (the first
    frame standing in for the ones before the episode), not one latent."""
    torch.manual_seed(0)
    model = WorldModel(ModelConfig(width=8, latent_dim=16, predictor_hidden=32, history=2))
    planner = planners.make(
        "cem", [-1, -1], [1, 1], horizon=4, num_samples=32, iterations=2, num_elites=4
    )
    agent = MPCAgent(model, planner, AgentConfig(horizon=4, replan_every=2), seed=0)
    env = envs.make("point_mass")
    obs, _ = env.reset(seed=5)
    agent.reset(env.unwrapped.goal_observation(), seed=5)
    seen = []
    for _ in range(3):
        seen.append(model.encode(torch.as_tensor(obs["pixels"])[None])[0])
        obs, *_ = env.step(agent.act(obs))
    env.close()
    assert len(agent.history) == 2
    torch.testing.assert_close(torch.stack(agent.history), torch.stack(seen[-2:]))
    assert agent.imagined.shape == (4, 16)


def test_step_objective_scores_env_step_sequences_as_the_planner_scores_held_actions():
    agent = _agent(action_repeat=3)
    env = envs.make("point_mass")
    obs, _ = env.reset(seed=2)
    agent.reset(env.unwrapped.goal_observation(), seed=2)
    env.close()
    with torch.no_grad():
        z0 = agent._encode(obs)
        plans = torch.rand(5, 4, 2) * 2 - 1  # (N, H, A)
        held = agent.objective(z0)(plans)
        steps = agent.step_objective(z0)(plans.repeat_interleave(3, dim=1))  # (N, 12, A)
    torch.testing.assert_close(held, steps)


def test_bfloat16_rollouts_rank_candidates_as_float32_does():
    env = envs.make("point_mass")
    obs, _ = env.reset(seed=1)
    goal = env.unwrapped.goal_observation()
    env.close()
    costs = {}
    for precision in ("float32", "bfloat16"):
        agent = _agent(precision=precision)
        torch.manual_seed(1)
        for p in agent.model.parameters():  # untrained predictors start still: make it move
            torch.nn.init.normal_(p, std=0.3)
        agent.reset(goal)
        z0 = agent.model.encode(torch.as_tensor(obs["pixels"])[None])
        acts = torch.rand(64, 4, 2, generator=torch.Generator().manual_seed(0)) * 2 - 1
        with torch.no_grad():
            costs[precision] = agent.objective(z0)(acts)
    low, full = costs["bfloat16"], costs["float32"]
    assert low.dtype == torch.float32 and not torch.equal(low, full)  # it did run in bf16
    ranks = [c.argsort().argsort().double() for c in (low, full)]
    assert torch.corrcoef(torch.stack(ranks))[0, 1] > 0.95
    assert len(set(low.argsort()[:8].tolist()) & set(full.argsort()[:8].tolist())) >= 6
    np.testing.assert_array_equal(
        _episode(_agent(precision="bfloat16")), _episode(_agent(precision="bfloat16"))
    )
    with pytest.raises(ValueError, match="agent.precision='fp16': use float32 or bfloat16"):
        AgentConfig(precision="fp16")
    with pytest.raises(ValueError, match="agent.compile='yes': use true or false"):
        AgentConfig(compile="yes")


@pytest.mark.slow
def test_compiled_rollout_costs_as_eager_and_repeats_itself():
    env = envs.make("point_mass")
    obs, _ = env.reset(seed=1)
    goal = env.unwrapped.goal_observation()
    env.close()
    costs, agents = {}, {}
    for compiled in (False, True):
        agent = agents[compiled] = _agent(compile=compiled)
        torch.manual_seed(1)
        for p in agent.model.parameters():  # untrained predictors start still: make it move
            torch.nn.init.normal_(p, std=0.3)
        state = agent.generator.get_state()
        agent.reset(goal)  # the compiled agent warms up here, on its own generator
        assert torch.equal(agent.generator.get_state(), state)
        z0 = agent.model.encode(torch.as_tensor(obs["pixels"])[None])
        acts = torch.rand(64, 4, 2, generator=torch.Generator().manual_seed(0)) * 2 - 1
        with torch.no_grad():
            costs[compiled] = agent.objective(z0)(acts)
    assert agents[True]._imagine is not agents[False]._imagine
    torch.testing.assert_close(costs[True], costs[False], rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(_episode(_agent(compile=True)), _episode(_agent(compile=True)))
    # the warm-up compiles every graph an episode needs: a recompilation in a plan would raise
    torch._dynamo.reset()  # forget the graphs compiled above
    agent = _agent(compile=True)
    agent.reset(goal)
    with torch._dynamo.config.patch(error_on_recompile=True):
        for _ in range(3):
            agent.act(obs)


@pytest.mark.parametrize(
    "task, image_size, landmarks, message",
    [
        ("umaze", 64, None, r"made for task='point_mass', not 'umaze': pass env=point_mass"),
        ("point_mass", 32, None, r"reads 64x64 images, env.image_size=32: pass env.image_size=64"),
        ("point_mass", 64, "missing.safetensors", r"missing.safetensors .* not found: build one"),
        ("point_mass", 64, "landmarks/medium_maze.safetensors", r"another world model"),
    ],
)
def test_evaluate_refuses_a_checkpoint_that_does_not_fit_before_any_episode(
    task, image_size, landmarks, message, tmp_path
):
    shipped = Path(__file__).resolve().parents[2] / "checkpoints"
    cfg = EvalConfig(
        env=EnvConfig(task, image_size=image_size),
        checkpoint=str(shipped / "point_mass.safetensors"),
        agent=AgentConfig(landmarks=landmarks and str(shipped / landmarks)),
        output_dir=str(tmp_path),
        eval=EvalSettings(episodes=2, workers=1),
    )
    with pytest.raises(ValueError, match=message):
        evaluate(cfg)
    assert not (tmp_path / "results.json").exists()


def test_evaluate_cli_says_when_the_seeds_are_not_held_out(tmp_path):
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "agent.evaluate", "policy=random", "eval.episodes=1",
           "eval.workers=1", "eval.videos=0", "eval.seed=5", f"output_dir={tmp_path}"]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "note: eval.seed=5 is below 100000: training data uses reset seeds" in r.stderr
    assert r.stdout.strip().endswith(f"wrote {tmp_path}/results.json, results.csv")  # no videos


def test_a_pretrain_stage_model_is_refused_for_planning(tmp_path):
    path = tmp_path / "pre.safetensors"
    model = WorldModel(ModelConfig(width=8, latent_dim=16, predictor_hidden=32))
    checkpoint.save(path, model, {"task": "point_mass", "stage": "pretrain"})
    cfg = EvalConfig(
        env=EnvConfig("point_mass"),
        checkpoint=str(path),
        output_dir=str(tmp_path / "e"),
        eval=EvalSettings(episodes=1, workers=1),
    )
    with pytest.raises(checkpoint.CheckpointError, match="stage=pretrain model .* finetune it"):
        evaluate(cfg)


@pytest.mark.parametrize(
    "field, value",
    [
        ("proprio_weight", float("nan")),
        ("proprio_weight", -10.0),
        ("proprio_part_weight", float("nan")),
        ("subgoal_image_weight", float("inf")),
        ("lookahead", float("nan")),
        ("waypoint_reach", float("nan")),
    ],
)
def test_agent_weights_must_be_finite_and_not_negative(field, value):
    """A NaN weight used to be accepted and turned every cost into NaN (success 0.0, exit 0)."""
    with pytest.raises(ValueError, match=f"agent.{field}="):
        AgentConfig(**{field: value})
