"""DAgger data: the oracle labels the states a trained policy visits; gcbc learns the labels."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import envs
from agent import checkpoint
from agent.collector import CollectConfig, collect
from agent.dataset import Dataset
from agent.gcbc import GCBCConfig, _Pairs, train
from agent.model import ModelConfig, WorldModel
from envs.config import EnvConfig

FAST = GCBCConfig(horizon=2, hidden=32, layers=1, steps=30, batch_size=32)


@pytest.fixture(scope="module")
def world_model(tmp_path_factory):
    cfg = ModelConfig(width=8, latent_dim=16, predictor_hidden=32, action_dim=2, proprio_dim=4)
    path = tmp_path_factory.mktemp("wm") / "pm.safetensors"
    checkpoint.save(path, WorldModel(cfg), {"task": "point_mass"})
    return str(path)


@pytest.fixture(scope="module")
def labelled(tmp_path_factory, tiny_dataset, world_model):
    """A policy trained on the tiny data, and two episodes it drove with oracle labels."""
    root = tmp_path_factory.mktemp("dagger")
    train(world_model, str(tiny_dataset), str(root / "bc"), FAST)
    cfg = CollectConfig(
        env=EnvConfig("point_mass"),
        episodes=2,
        out=str(root / "d"),
        workers=1,
        video=False,
        policy="gcbc",
        policy_checkpoint=str(root / "bc.safetensors"),
        policy_sigma=0.1,
        policy_eps=0.0,
        seed=11,
        expert_labels=True,
    )
    return root, cfg, Dataset(collect(cfg))


def test_labels_are_the_experts_actions_on_the_states_the_policy_visited(labelled):
    _, _, data = labelled
    assert data.expert_labels and data.meta["expert_labels"] is True
    env = envs.make("point_mass")
    try:
        for ep in data.iter_episodes():
            acts, labels = np.array(ep["actions"]), np.array(ep["expert_actions"])
            assert labels.shape == acts.shape
            assert not np.allclose(acts, labels)  # the policy acted, not the oracle
            env.reset(seed=int(ep["seeds"]))  # replay what ran, asking the oracle each step
            replayed = []
            for a in acts:
                replayed.append(env.unwrapped.expert_action())
                env.step(a)
            np.testing.assert_allclose(labels, np.array(replayed), atol=1e-6)
    finally:
        env.close()


def test_asking_for_labels_leaves_the_episode_as_it_was(labelled):
    root, cfg, data = labelled
    plain = Dataset(
        collect(
            CollectConfig(**{**cfg.__dict__, "out": str(root / "plain"), "expert_labels": False})
        )
    )
    assert not plain.expert_labels and "expert_labels" not in plain.meta
    assert plain.meta["sha256"] == data.meta["sha256"]  # same pixels and actions
    assert "expert_labels" not in json.loads((root / "plain" / "collect.json").read_text())


def test_an_oracle_driven_collection_cannot_also_ask_for_labels():
    for policy in ("noisy_oracle", "oracle_segments", "repeat+noisy_oracle"):
        with pytest.raises(ValueError, match="advance its plan twice per step"):
            CollectConfig(env=EnvConfig("point_mass"), policy=policy, expert_labels=True)
    CollectConfig(env=EnvConfig("point_mass"), policy="repeat", expert_labels=True)


def test_labelled_episodes_aim_at_their_goal_with_every_step_and_no_hindsight():
    lengths, starts = np.array([50, 50]), np.array([0, 50])
    z = torch.arange(100, dtype=torch.float32)[:, None]  # a frame's latent is its index
    targets = torch.zeros(100, 1, 1)
    goals = torch.tensor([[-1.0], [-2.0]])
    reached = np.array([-1, 49])  # episode 0: demonstrations that never succeed
    expert = np.array([False, True])
    pairs = _Pairs(
        z, z, targets, starts, lengths, np.arange(2), 1, 5, None, goals, reached, 0.5, expert
    )
    x, _ = pairs.batch(2000, np.random.default_rng(0))
    z_in, g_in = x[:, 0], x[:, 1]
    goal_rows = g_in < 0
    assert goal_rows.sum() == 1000 and torch.all(g_in[goal_rows] == -2.0)
    assert z_in[goal_rows].min() == 50 and z_in[goal_rows].max() == 98  # every labelled step
    assert z_in[~goal_rows].max() < 50 and g_in[~goal_rows].max() < 50  # hindsight: episode 0
    alone = _Pairs(
        z, z, targets, starts, lengths, np.array([1]), 1, 5, None, goals, reached, 0.5, expert
    )
    x, _ = alone.batch(100, np.random.default_rng(0))
    assert torch.all(x[:, 1] == -2.0)  # labelled data alone: every pair aims at the goal


def test_gcbc_learns_the_labels_and_needs_goal_pairs_for_them(labelled, tiny_dataset, world_model):
    root, _, data = labelled
    cfg = GCBCConfig(**{**FAST.__dict__, "goal_share": 0.5})
    meta = train(world_model, [str(tiny_dataset), str(data.root)], str(root / "bc2"), cfg)
    assert meta["dataset_episodes"] == 6 and np.isfinite(meta["val_mse"])
    with pytest.raises(ValueError, match="train with --goal-share > 0"):
        train(world_model, [str(data.root)], str(root / "bc3"), FAST)
    assert not (root / "bc3.json").exists()


def test_without_labelled_data_pairs_are_drawn_in_the_order_they_always_were():
    lengths, starts = np.array([50, 50]), np.array([0, 50])
    z = torch.arange(100, dtype=torch.float32)[:, None]
    targets = torch.arange(100, dtype=torch.float32)[:, None, None]
    goals, reached = torch.tensor([[-1.0], [-2.0]]), np.array([30, 40])
    pairs = _Pairs(z, z, targets, starts, lengths, np.arange(2), 1, 5, None, goals, reached, 0.5)
    x, y = pairs.batch(64, np.random.default_rng(3))
    ref = np.random.default_rng(3)  # hindsight pairs first, then the goal pairs
    xh, yh = pairs._hindsight(32, ref)
    e = pairs.with_goal[ref.integers(0, 2, 32)]
    i = starts[e] + (ref.random(32) * reached[e]).astype(int)
    torch.testing.assert_close(x, torch.cat([xh, torch.cat([z[i], goals[e], z[i] - goals[e]], 1)]))
    torch.testing.assert_close(y, torch.cat([yh, targets[i].flatten(1)]))
