"""State probes (agent.state_probe) and Push-T primitives scored by a world model
(agent.push_primitives, policy=push_primitives)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from agent import checkpoint, state_probe
from agent.evaluation import EvalConfig, EvalSettings, evaluate
from agent.model import ModelConfig, WorldModel
from agent.push_primitives import PushPrimitiveMPC
from agent.state_probe import ProbeConfig, StateProbe
from envs.config import EnvConfig
from envs.tasks.push_t import ARENA_HALF, keypoint_distance, push_candidates

FAST = ProbeConfig(dims="0:2", hidden=32, layers=1, steps=300, batch_size=64, holdout=0.25)


@pytest.fixture(scope="module")
def world_models(tmp_path_factory):
    cfg = ModelConfig(width=8, latent_dim=16, predictor_hidden=32, action_dim=2, proprio_dim=4)
    root = tmp_path_factory.mktemp("wm")
    torch.manual_seed(0)
    checkpoint.save(root / "a.safetensors", WorldModel(cfg), {"task": "point_mass"})
    checkpoint.save(root / "b.safetensors", WorldModel(cfg), {"task": "point_mass"})
    return str(root / "a.safetensors"), str(root / "b.safetensors")


def test_a_probe_learns_a_function_of_the_latent_and_not_noise():
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(3000, 16, generator=gen)
    y = torch.stack([z[:, 0] + 0.5 * z[:, 1] ** 2, torch.tanh(z[:, 2] - z[:, 3])], 1)
    cfg = ProbeConfig(dims="0:2", hidden=64, layers=2, steps=1500, batch_size=128)
    probe = state_probe.fit(z[:2500], y[:2500], [0, 1], cfg)
    with torch.no_grad():
        err = (probe(z[2500:]) - y[2500:]).pow(2).mean(0) / y[2500:].var(0)
    assert torch.all(err < 0.1)
    noise = torch.randn(3000, 2, generator=gen)
    probe = state_probe.fit(z[:2500], noise[:2500], [0, 1], cfg)
    with torch.no_grad():
        err = (probe(z[2500:]) - noise[2500:]).pow(2).mean(0) / noise[2500:].var(0)
    assert torch.all(err > 0.9)


def test_probe_files_name_their_world_model_and_refuse_another(
    tmp_path, tiny_dataset, world_models
):
    a, b = world_models
    meta = state_probe.train(a, [str(tiny_dataset)], str(tmp_path / "p"), FAST, "cmd")
    assert meta["dims"] == [0, 1] and meta["heldout_episodes"] == 1
    assert meta["frames"] == 404 and len(meta["heldout_rmse"]) == 2
    probe, m = state_probe.load(str(tmp_path / "p"), a)
    assert m["world_model_sha256"] == checkpoint.digest(checkpoint.paths(a)[0])
    again = state_probe.train(a, [str(tiny_dataset)], str(tmp_path / "q"), FAST, "cmd")
    assert again["heldout_rmse"] == meta["heldout_rmse"]  # same seed, same probe
    with pytest.raises(checkpoint.CheckpointError, match="train a probe on this world model"):
        state_probe.load(str(tmp_path / "p"), b)
    with pytest.raises(ValueError, match="reach past the 2 state entries"):
        state_probe.train(a, [str(tiny_dataset)], str(tmp_path / "r"), ProbeConfig(dims="3:9"), "")
    assert not (tmp_path / "r.json").exists()
    for bad in ("x", "2:2", "-1,0"):
        with pytest.raises(ValueError, match="dims=.*is invalid"):
            ProbeConfig(dims=bad)


class _PushedBlock:
    """A stand-in world model whose latent is the T's pose (x, y, cos, sin): the block moves
    with the pusher's displacement during every push step (a nonzero action after a still
    one or at a push's speed), never during the transit's full-speed steps toward a
    waypoint. The planner must then pick the push that carries the block to the goal."""

    def __init__(self, pose: np.ndarray) -> None:
        self.cfg = SimpleNamespace(frameskip=2, latent_dim=4)
        self.pose = pose

    def eval(self):
        return self

    def image_part(self, z):
        return z

    def encode_observation(self, obs):
        x, y, yaw = obs["pose"]
        return torch.tensor([[x, y, np.cos(yaw), np.sin(yaw)]], dtype=torch.float32)

    def rollout(self, z, actions):
        n, t, _ = actions.shape
        z = z.expand(n, -1).clone()
        out = []
        pushing = torch.zeros(n, dtype=torch.bool)
        for i in range(t):
            a = actions[:, i]
            still = a.abs().sum(-1) == 0
            pushing = pushing | (still & (i > 0))  # the transit ends with still padding or not
            z = z.clone()
            z[:, :2] += 0.02 * a * pushing[:, None]
            if i % 2 == 1:
                out.append(z)
        return torch.stack(out, 1)


class _Identity(StateProbe):
    def __init__(self) -> None:
        super().__init__(4, [2, 3, 4, 5], ProbeConfig())

    def forward(self, z):
        return z


def test_the_chosen_push_moves_the_block_toward_the_goal():
    pose, goal = np.array([0.0, 0.0, 0.3]), np.array([0.05, 0.0, 0.3])
    agent = PushPrimitiveMPC(_PushedBlock(pose), _Identity())
    agent.reset({"pose": goal})
    np.testing.assert_allclose(agent.goal_pose, goal, atol=1e-6)
    z = agent.model.encode_observation({"pose": pose})
    plan = agent._choose(z, pose, np.array([0.0, -0.15]))
    assert plan.direction @ (goal[:2] - pose[:2]) > 0.9 * 0.05  # pushes the T toward +x
    assert plan.steps in (2, 4, 6) and plan.path and np.allclose(plan.path[-1], plan.start)


def test_an_agent_near_its_goal_holds_still_and_actions_stay_in_bounds():
    pose = np.array([0.0, 0.0, 0.3])
    agent = PushPrimitiveMPC(_PushedBlock(pose), _Identity())
    agent.reset({"pose": pose + np.array([0.004, 0.0, 0.0])})  # within _DONE of the goal
    a = agent.act({"pose": pose, "proprio": np.array([0.1, 0.1, 0, 0], np.float32)})
    np.testing.assert_array_equal(a, np.zeros(2))
    agent.reset({"pose": pose + np.array([0.06, 0.02, 0.2])})
    for _ in range(12):
        a = agent.act({"pose": pose, "proprio": np.array([0.1, 0.1, 0, 0], np.float32)})
        assert a.shape == (2,) and np.all(np.abs(a) <= 1.0)
    assert keypoint_distance(pose, agent.goal_pose) > 0.01


def test_a_pose_read_past_the_walls_is_held_inside_the_arena():
    """A probe can read the T past a wall (push_t_masked's did, at y = 0.34 m); no push start
    fits around such a T, so the agent plans from the nearest pose inside the arena."""
    inside, past = np.array([0.1, 0.2, -2.4]), np.array([0.1, 0.34, -2.4])
    with pytest.raises(RuntimeError, match="no push start fits"):
        push_candidates(past, np.zeros(2), 0.02)
    agent = PushPrimitiveMPC(_PushedBlock(inside), _Identity())
    agent.reset({"pose": np.array([0.0, 0.0, 0.0])})
    a = agent.act({"pose": past, "proprio": np.array([0.0, 0.0, 0, 0], np.float32)})
    assert a.shape == (2,) and np.all(np.abs(a) <= 1.0)
    np.testing.assert_allclose(agent._plan.pose, [0.1, ARENA_HALF, -2.4], atol=1e-6)
    agent.reset({"pose": np.array([-0.3, 0.0, 0.0])})  # the goal's reading too
    np.testing.assert_allclose(agent.goal_pose, [-ARENA_HALF, 0.0, 0.0], atol=1e-6)


class _CoarseView(_PushedBlock):
    """The stand-in whose cost view (``model.cost_view``) sees the block's y alone: a coarse
    measure, blind to a goal straight along x."""

    def cost_view(self, z):
        return z * torch.tensor([0.0, 1.0, 0.0, 0.0])


@pytest.mark.parametrize("cost", ["latent", "latent_whole"])
def test_latent_whole_scores_pushes_by_the_whole_latent_not_the_cost_view(cost):
    pose, goal = np.array([0.0, 0.0, 0.3]), np.array([0.05, 0.0, 0.3])  # the goal along x
    agent = PushPrimitiveMPC(_CoarseView(pose), _Identity(), cost=cost)
    agent.reset({"pose": goal})
    z = agent.model.encode_observation({"pose": pose})
    plan = agent._choose(z, pose, np.array([0.0, -0.15]))
    if cost == "latent":  # the cost view alone: no push gains, the least loss is picked
        assert plan.gain <= 1e-12
    else:  # the whole latent: the push carries the T toward +x, as with the pose
        assert plan.gain > 0 and plan.direction @ (goal[:2] - pose[:2]) > 0.9 * 0.05


@pytest.mark.parametrize("chunk", [0, 1])
def test_a_chunk_cuts_the_push_short_and_searches_again(chunk):
    pose, goal = np.array([0.0, 0.0, 0.3]), np.array([0.05, 0.0, 0.3])
    agent = PushPrimitiveMPC(_PushedBlock(pose), _Identity(), chunk=chunk)
    agent.reset({"pose": goal})
    pusher = np.array([0.0, -0.15])
    for _ in range(80):  # the pusher follows its target exactly; the block stays
        a = agent.act({"pose": pose, "proprio": np.array([*pusher, 0, 0], np.float32)})
        pusher = agent._target.copy()
        if agent._plan is None and np.linalg.norm(a) > 0:  # a push started
            break
    runs = agent._push_left + 1  # env steps this push runs before the next search
    assert runs == 1 if chunk else runs >= 2  # whole pushes are 2-6 steps long
    for _ in range(runs - 1):
        agent.act({"pose": pose, "proprio": np.array([*pusher, 0, 0], np.float32)})
    assert agent._push_left == 0 and agent._plan is None  # the next call searches
    with pytest.raises(ValueError, match="chunk=-1 must be >= 0"):
        PushPrimitiveMPC(_PushedBlock(pose), _Identity(), chunk=-1)


def test_the_harness_refuses_bad_primitive_settings(tmp_path, world_models):
    with pytest.raises(ValueError, match="primitives of .*'push_t'.*, not of point_mass"):
        EvalConfig(env=EnvConfig(name="point_mass"), policy="push_primitives", probe="p")
    with pytest.raises(ValueError, match="needs probe=<path>"):
        EvalConfig(env=EnvConfig(name="push_t"), policy="push_primitives")
    cfg = EvalConfig(
        env=EnvConfig(name="push_t"),
        policy="push_primitives",
        checkpoint=world_models[0],
        probe=str(tmp_path / "missing"),
        eval=EvalSettings(episodes=1, workers=1, videos=0),
        output_dir=str(tmp_path / "out"),
    )
    with pytest.raises(ValueError, match="made for task='point_mass', not 'push_t'"):
        evaluate(cfg)  # the fixtures' world models are point_mass ones
    shipped = Path(__file__).resolve().parents[2] / "checkpoints" / "push_t.safetensors"
    with pytest.raises(checkpoint.CheckpointError, match="agent.state_probe"):
        evaluate(dataclasses.replace(cfg, checkpoint=str(shipped)))
    assert not (tmp_path / "out" / "results.json").exists()


def test_imagined_rows_are_the_models_rollouts_paired_with_the_states_they_reach(world_models):
    model, _ = checkpoint.load(world_models[0])
    gen = torch.Generator().manual_seed(1)
    full = torch.randn(11, *model.latent_shape, generator=gen)  # 11 frames, 10 actions
    actions = torch.rand(10, 2, generator=gen).numpy() * 2 - 1
    state = np.arange(11 * 4, dtype=np.float32).reshape(11, 4)
    cfg = ProbeConfig(imagined=3, stride=4)
    with torch.no_grad():
        z, y = state_probe._imagined(model, full, actions, state, cfg)
        # starts 0, 4, 8; three steps each, kept while they stay inside the episode
        assert len(z) == 3 + 3 + 2
        np.testing.assert_array_equal(y[:, 0], state[[1, 2, 3, 5, 6, 7, 9, 10], 0])
        ref = model.rollout(full[4][None, None], torch.as_tensor(actions[4:7])[None])
        torch.testing.assert_close(z[3:6], model.image_part(ref[0]).flatten(1))
    with pytest.raises(ValueError, match="imagined must be >= 0"):
        ProbeConfig(imagined=-1)


def test_an_evaluation_is_recorded_only_for_its_own_probe(tmp_path, tiny_dataset, world_models):
    import json

    a, _ = world_models
    state_probe.train(a, [str(tiny_dataset)], str(tmp_path / "p"), FAST, "cmd")
    run = {
        "config": {
            "policy": "push_primitives",
            "probe": str(tmp_path / "p.safetensors"),
            "checkpoint": a,
            "eval": {"goal_steps": 25},
        },
        "success_rate": 0.5,
        "success_ci95": [0.2, 0.8],
        "episodes": 2,
        "mean_steps": 90.0,
        "plan_ms_p50": 2.0,
        "plan_ms_p95": 50.0,
        "per_episode": [{"seed": 100000}, {"seed": 100001}],
    }
    (tmp_path / "r.json").write_text(json.dumps(run))
    meta = state_probe.record_evaluation(str(tmp_path / "p"), str(tmp_path / "r.json"), "cmd")
    assert meta["evaluation_goal_steps_25"]["seeds"] == [100000, 100001]
    run["per_episode"] = [{"seed": 400000}, {"seed": 400001}]  # a second seed set, beside it
    run["config"]["eval"] = {}
    (tmp_path / "r.json").write_text(json.dumps(run))
    meta = state_probe.record_evaluation(str(tmp_path / "p"), str(tmp_path / "r.json"), "cmd2")
    assert meta["evaluation_seed_400000"]["seeds"] == [400000, 400001]
    assert meta["evaluation_goal_steps_25"]["command"] == "cmd" and "evaluation" not in meta
    assert state_probe.HELDOUT_SEED == EvalSettings().seed
    state_probe.load(str(tmp_path / "p"), a)  # the weights still match the manifest
    run["config"]["probe"] = str(tmp_path / "other")
    (tmp_path / "r.json").write_text(json.dumps(run))
    with pytest.raises(ValueError, match="not an evaluation with policy=push_primitives"):
        state_probe.record_evaluation(str(tmp_path / "p"), str(tmp_path / "r.json"))
