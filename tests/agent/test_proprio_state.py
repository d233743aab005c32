"""model.proprio_state: the latent carries the normalized proprio; training, planning, refusals."""

import numpy as np
import pytest
import torch

import envs
import planners
from agent import checkpoint
from agent.model import ModelConfig, WorldModel
from agent.mpc import AgentConfig, MPCAgent
from agent.trainer import TrainConfig, Trainer

CFG = dict(width=8, latent_dim=16, predictor_hidden=32, predictor_layers=1, proprio_dim=4)


def _model(**kw) -> WorldModel:
    torch.manual_seed(0)
    return WorldModel(ModelConfig(**{**CFG, "proprio_state": True, **kw}))


def test_latent_is_image_latent_then_normalized_proprio():
    m = _model(proprio_scale=2.0)
    m.set_proprio_stats(torch.tensor([[0.0, 1, 2, 3], [2.0, 3, 4, 5]]))
    px = torch.randint(0, 256, (2, 64, 64, 3), dtype=torch.uint8)
    p = torch.tensor([[1.0, 2, 3, 4], [2.0, 3, 4, 5]])
    z = m.encode(px, p)
    assert z.shape == (2, 20) == (2, *m.latent_shape)
    torch.testing.assert_close(z[:, :16], m.encoder(px))
    std = 2**0.5  # sample std of {a, a + 2}
    torch.testing.assert_close(z[1, 16:], torch.full((4,), 1 / std * 2.0))
    torch.testing.assert_close(m.proprio_of(z), p)  # the inverse of the embedding
    assert m.rollout(z[:1], torch.zeros(3, 5, 2)).shape == (3, 5, 20)
    assert m.decode(z[:1]).shape == (1, 64, 64, 3)  # the decoder sees the image part only
    # the proprio cost reads the latent's own proprio part
    zs = z[None, None, 1].expand(3, 2, 20)
    torch.testing.assert_close(m.proprio_cost(zs, p[1]), torch.zeros(3))
    assert torch.all(m.proprio_cost(zs, p[0]) > 0)


def test_image_only_models_ignore_proprio_and_proprio_models_demand_it():
    plain = WorldModel(ModelConfig(**CFG))
    px = torch.randint(0, 256, (1, 64, 64, 3), dtype=torch.uint8)
    torch.testing.assert_close(plain.encode(px, torch.ones(1, 4)), plain.encode(px))
    m = _model()
    with pytest.raises(ValueError, match="proprio_state=true"):
        m.encode(px)
    with pytest.raises(ValueError, match="finite"):
        m.encode(px, torch.full((1, 4), float("nan")))
    with pytest.raises(ValueError, match="encoder=conv"):
        ModelConfig(**{**CFG, "encoder": "vit", "proprio_state": True})
    with pytest.raises(ValueError, match="dataset with proprio"):
        ModelConfig(**{**CFG, "proprio_dim": 0, "proprio_state": True})


def test_checkpoint_keeps_the_proprio_normalization(tmp_path):
    m = _model()
    m.set_proprio_stats(torch.randn(50, 4) * 3 + 1)
    loaded, _ = checkpoint.load(checkpoint.save(tmp_path / "m", m, {"task": "point_mass"}))
    torch.testing.assert_close(loaded.proprio_mean, m.proprio_mean)
    torch.testing.assert_close(loaded.proprio_std, m.proprio_std)


def test_finetune_learns_the_proprio_part_and_the_agent_plans_with_it(tiny_dataset, tmp_path):
    def cfg(out, **kw):
        model = ModelConfig(**{**CFG, "proprio_state": True})
        base = dict(data=str(tiny_dataset), out=str(tmp_path / out), model=model, steps=30)
        return TrainConfig(**{**base, "batch_size": 8, "window": 3, "threads": 1, **kw})

    pre = Trainer(cfg("pre", steps=2)).fit()
    ft = Trainer(cfg("ft", stage="finetune", init=str(pre))).fit()
    model, manifest = checkpoint.load(ft)
    assert model.cfg.proprio_state and manifest["model"]["proprio_state"]
    # the report ranks the whole latent and, apart, the image latent the encoder learned
    metrics = manifest["metrics"]
    assert set(metrics["spearman_image"]) == set(metrics["spearman"]) == {"all", "near", "within"}
    assert metrics["spearman_image"] != metrics["spearman"]
    # and the rollout error of the image part alone, beside the whole latent's
    pe, pe_image = metrics["prediction_error"], metrics["prediction_error_image"]
    assert set(pe_image) == set(pe) and len(pe_image["ratio"]) == len(pe["ratio"])
    assert pe_image["copy"] != pe["copy"]  # the proprio part's change is left out
    # stats come from the data: point_mass proprio (position, velocity) is not standard normal
    assert not torch.allclose(model.proprio_std, torch.ones(4))
    planner = planners.make(
        "cem", [-1, -1], [1, 1], horizon=3, num_samples=16, iterations=2, num_elites=4
    )
    env = envs.make("point_mass")
    obs, _ = env.reset(seed=3)
    agent = MPCAgent(model, planner, AgentConfig(horizon=3, proprio_weight=1.0), seed=0)
    agent.reset(env.unwrapped.goal_observation(), seed=0)
    actions = [agent.act(obs) for _ in range(2)]
    assert all(np.all(np.abs(a) <= 1) for a in actions)
    assert agent.imagined.shape == (3, 16 + 4)
    with pytest.raises(ValueError, match="goal's proprio"):
        agent.reset({"pixels": obs["pixels"]})
    with pytest.raises(ValueError, match="has 3 values"):
        agent.reset({"pixels": obs["pixels"], "proprio": np.zeros(3, np.float32)})
    env.close()


def test_plannability_cost_weights_reproduce_the_agents_cost():
    from agent.metrics import planning_cost_weights

    m = _model()
    m.set_proprio_stats(torch.randn(50, 4) * 2)
    px = torch.randint(0, 256, (2, 64, 64, 3), dtype=torch.uint8)
    p = torch.randn(2, 4)
    z = m.encode(px, p)
    w = planning_cost_weights(m, 10.0)
    agent_cost = m.latent_cost(z[None, None, 0], z[1]) + 10.0 * m.proprio_cost(
        z[None, None, 0], p[1]
    )
    torch.testing.assert_close((z[0] - z[1]).pow(2) @ w, agent_cost[0])
    with pytest.raises(ValueError, match="proprio_state"):
        planning_cost_weights(WorldModel(ModelConfig(**CFG)), 10.0)


def test_landmark_graph_encodes_frames_with_their_proprio():
    from agent import landmarks

    m = _model()
    rng = np.random.default_rng(0)
    eps = [
        {
            "pixels": rng.integers(0, 256, (9, 64, 64, 3), dtype=np.uint8),
            "proprio": rng.normal(size=(9, 4)).astype(np.float32),
        }
        for _ in range(2)
    ]
    graph = landmarks.build(m, eps, landmarks.LandmarkConfig(stride=2))
    assert graph.z.shape == (10, 20)  # 5 nodes per episode, image latent + proprio part
    want = m.encode(
        torch.from_numpy(eps[1]["pixels"][::2]), torch.from_numpy(eps[1]["proprio"][::2])
    )
    torch.testing.assert_close(graph.z[5:], want)


def test_proprio_part_weight_zero_plans_on_the_image_part_alone():
    m = _model()
    planner = planners.make(
        "cem", [-1, -1], [1, 1], horizon=3, num_samples=8, iterations=1, num_elites=2
    )
    agent = MPCAgent(m, planner, AgentConfig(horizon=3, proprio_part_weight=0.0))
    z0 = torch.randn(1, 20)
    actions = torch.rand(5, 3, 2) * 2 - 1
    agent.z_goal, agent.goal_proprio = torch.randn(20), None
    c1 = agent.objective(z0)(actions)
    agent.z_goal = torch.cat([agent.z_goal[:16], torch.randn(4) * 5])  # another goal pose
    torch.testing.assert_close(agent.objective(z0)(actions), c1)
    zs = m.rollout(z0, actions)  # the image part's mean square, over the whole latent size
    want = (zs[:, -1, :16] - agent.z_goal[:16]).pow(2).sum(-1) / 20
    torch.testing.assert_close(c1, want)
    # weight 1 is the plain latent cost, and the weight needs a proprio_state model
    agent1 = MPCAgent(m, planner, AgentConfig(horizon=3))
    agent1.z_goal, agent1.goal_proprio = agent.z_goal, None
    torch.testing.assert_close(agent1.objective(z0)(actions), m.latent_cost(zs, agent.z_goal, "l2"))
    with pytest.raises(ValueError, match="proprio_part_weight"):
        MPCAgent(WorldModel(ModelConfig(**CFG)), planner, AgentConfig(proprio_part_weight=0.0))
    with pytest.raises(ValueError, match="proprio_part_weight"):
        AgentConfig(proprio_part_weight=-1.0)


def test_subgoal_cost_can_pin_only_chosen_proprio_entries():
    m = _model()
    planner = planners.make(
        "cem", [-1, -1], [1, 1], horizon=3, num_samples=8, iterations=1, num_elites=2
    )
    cfg = AgentConfig(horizon=3, subgoal_image_weight=0.0, subgoal_proprio_dims=[0, 1])
    agent = MPCAgent(m, planner, cfg)
    assert agent.cfg.subgoal_proprio_dims == (0, 1)  # a YAML list becomes a tuple
    z0, actions = torch.randn(1, 20), torch.rand(5, 3, 2) * 2 - 1
    agent.z_goal, agent.goal_proprio = torch.randn(20), None
    sub = torch.randn(20)
    zs = m.rollout(z0, actions)
    c = agent.objective(z0, sub)(actions)  # toward a subgoal: proprio entries 0 and 1 alone
    torch.testing.assert_close(c, (zs[:, -1, 16:18] - sub[16:18]).pow(2).sum(-1) / 20)
    other = sub.clone()
    other[:16], other[18:] = torch.randn(16), torch.randn(2) * 5  # its image, its velocity
    torch.testing.assert_close(agent.objective(z0, other)(actions), c)
    # toward the episode's goal the plain latent cost is unchanged
    torch.testing.assert_close(agent.objective(z0)(actions), m.latent_cost(zs, agent.z_goal, "l2"))
    with pytest.raises(ValueError, match="subgoal_proprio_dims"):
        MPCAgent(m, planner, AgentConfig(subgoal_proprio_dims=[4]))
    with pytest.raises(ValueError, match="subgoal_image_weight"):
        MPCAgent(WorldModel(ModelConfig(**CFG)), planner, AgentConfig(subgoal_image_weight=0.5))
    with pytest.raises(ValueError, match="subgoal_proprio_dims"):
        MPCAgent(WorldModel(ModelConfig(**CFG)), planner, AgentConfig(subgoal_proprio_dims=[0]))


def test_subgoal_proprio_weight_pins_the_gripper_even_when_the_goal_cost_ignores_it():
    """A masked arm plans to its goal on the image part alone (proprio_part_weight=0) while
    its subgoals also pin a gripper pose (subgoal_proprio_weight)."""
    m = _model()
    planner = planners.make(
        "cem", [-1, -1], [1, 1], horizon=3, num_samples=8, iterations=1, num_elites=2
    )
    cfg = AgentConfig(horizon=3, proprio_part_weight=0.0, subgoal_proprio_weight=4.0)
    agent = MPCAgent(m, planner, cfg)
    z0, actions = torch.randn(1, 20), torch.rand(5, 3, 2) * 2 - 1
    agent.z_goal, agent.goal_proprio = torch.randn(20), None
    sub = torch.randn(20)
    zs = m.rollout(z0, actions)[:, -1]
    image = (zs[:, :16] - sub[:16]).pow(2).sum(-1)
    torch.testing.assert_close(
        agent.objective(z0, sub)(actions),
        (image + 4.0 * (zs[:, 16:] - sub[16:]).pow(2).sum(-1)) / 20,
    )
    goal_image = (zs[:, :16] - agent.z_goal[:16]).pow(2).sum(-1) / 20
    torch.testing.assert_close(agent.objective(z0)(actions), goal_image)  # goal: image alone
    # unset, the subgoal proprio weighs what the goal's does (the behaviour before the option)
    same = MPCAgent(m, planner, AgentConfig(horizon=3, proprio_part_weight=0.0))
    same.z_goal, same.goal_proprio = agent.z_goal, None
    torch.testing.assert_close(same.objective(z0, sub)(actions), image / 20)
    with pytest.raises(ValueError, match="subgoal_proprio_weight"):
        AgentConfig(subgoal_proprio_weight=-1.0)
    with pytest.raises(ValueError, match="subgoal_proprio_weight"):
        MPCAgent(WorldModel(ModelConfig(**CFG)), planner, AgentConfig(subgoal_proprio_weight=2.0))
