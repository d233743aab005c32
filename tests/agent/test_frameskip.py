"""model.frameskip: one predictor step per k env steps (training windows, rollout, agent)."""

import numpy as np
import pytest
import torch
from test_mpc import _episode  # tests/agent is on sys.path under pytest

import planners
from agent import checkpoint
from agent.batches import Windows, split_episodes
from agent.dataset import Dataset
from agent.model import ModelConfig, WorldModel
from agent.mpc import AgentConfig, MPCAgent
from agent.trainer import TrainConfig, Trainer

CFG = dict(width=8, latent_dim=16, predictor_hidden=32, predictor_layers=1)


def test_windows_take_frames_k_steps_apart_and_every_action_between(tiny_dataset):
    data = Dataset(tiny_dataset)
    train, _ = split_episodes(data.episodes, 0.25)
    one, three = Windows(data, train, 4), Windows(data, train, 4, stride=3)
    b = three.gather(torch.tensor([0, 5]))
    assert b["pixels"].shape[1] == 4 and b["actions"].shape[1] == 9
    torch.testing.assert_close(b["pixels"][0], three.pixels[[0, 3, 6, 9]])
    torch.testing.assert_close(b["actions"][1], three.actions[5:14])
    # a window now spans 10 env frames: fewer start positions per episode
    assert len(three) == len(one) - 6 * len(train)


def test_rollout_takes_env_step_actions_and_returns_a_latent_per_k_steps():
    torch.manual_seed(0)
    m = WorldModel(ModelConfig(**CFG, frameskip=3))
    z0 = m.encode(torch.randint(0, 256, (1, 64, 64, 3), dtype=torch.uint8))
    acts = torch.rand(5, 6, 2) * 2 - 1
    zs = m.rollout(z0, acts)
    assert zs.shape == (5, 2, 16)
    # the predictor's action is the k actions in time order
    first = m.next(z0.expand(5, 1, 16), acts[:, :3].reshape(5, 6))
    torch.testing.assert_close(zs[:, 0], first)
    with pytest.raises(ValueError, match="multiple of 3"):
        m.rollout(z0, acts[:, :5])
    with pytest.raises(ValueError, match="frameskip=2 with model.history=2"):
        ModelConfig(**CFG, frameskip=2, history=2)


def test_finetune_and_agent_with_frameskip(tiny_dataset, tmp_path):
    def cfg(out, **kw):
        base = dict(data=str(tiny_dataset), out=str(tmp_path / out), steps=20, batch_size=8)
        return TrainConfig(**{**base, "window": 3, "threads": 1, **kw})

    pre = Trainer(cfg("pre", model=ModelConfig(**CFG), steps=2)).fit()
    ft = Trainer(
        cfg("ft", model=ModelConfig(**CFG, frameskip=2), stage="finetune", init=str(pre))
    ).fit()
    model, manifest = checkpoint.load(ft)
    assert model.cfg.frameskip == 2 and manifest["model"]["frameskip"] == 2
    assert len(manifest["metrics"]["prediction_error"]["ratio"]) == 2  # window 3: 2 steps
    planner = planners.make(
        "cem", [-1, -1], [1, 1], horizon=3, num_samples=16, iterations=2, num_elites=4
    )
    agent = MPCAgent(model, planner, AgentConfig(horizon=3, action_repeat=2), seed=0)
    actions = _episode(agent, steps=5, seed=3)
    # each planned action is held action_repeat x frameskip = 4 env steps
    np.testing.assert_array_equal(actions[0], actions[3])
    assert not np.array_equal(actions[3], actions[4]) and agent.planned
    assert agent.imagined.shape == (3 * 2, 16)  # horizon x action_repeat predictor steps
