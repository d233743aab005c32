"""agent.waypoints=W: the planner searches waypoints, the agent executes their path."""

import numpy as np
import pytest
import torch

import envs
from agent.model import ModelConfig, WorldModel
from agent.mpc import AgentConfig, build_agent
from agent.waypoints import WaypointPath


def test_path_goes_to_each_point_in_turn_at_full_speed_then_holds():
    path = WaypointPath(2, 8, torch.tensor([1.0, 1.0]))
    actions, reached = path.decode(torch.tensor([[[2.5, 0.0], [2.5, 3.0]]]))
    expect = [[1, 0], [1, 0], [0.5, 0], [0, 1], [0, 1], [0, 1], [0, 0], [0, 0]]
    np.testing.assert_allclose(actions[0].numpy(), expect)
    assert int(reached[0]) == 2


def test_path_keeps_direction_within_per_dimension_bounds():
    high = torch.tensor([0.5, 2.0])
    path = WaypointPath(1, 4, high)
    actions, reached = path.decode(torch.tensor([[[2.0, 2.0]]]))
    a = actions[0]
    assert torch.all(a.abs() <= high + 1e-6)
    # straight toward (2, 2): x is the bound that limits, y follows at the same rate
    torch.testing.assert_close(a[0], torch.tensor([0.5, 0.5]))
    torch.testing.assert_close(a.sum(0), torch.tensor([2.0, 2.0]))
    assert int(reached[0]) == 1


def test_unreached_points_are_cut_at_the_lookahead():
    path = WaypointPath(2, 3, torch.tensor([1.0]))
    actions, reached = path.decode(torch.tensor([[[5.0], [0.0]]]))
    np.testing.assert_allclose(actions[0, :, 0].numpy(), [1, 1, 1])
    assert int(reached[0]) == 0


def test_shift_moves_points_to_the_new_position_and_drops_reached_ones():
    path = WaypointPath(2, 8, torch.tensor([1.0, 1.0]))
    plan = torch.tensor([[2.5, 0.0], [2.5, 3.0]])
    shifted = path.shift(plan, 4)  # 2.5 to the right, then one up: first point reached
    torch.testing.assert_close(shifted, torch.tensor([[0.0, 2.0], [0.0, 2.0]]))
    # the shifted plan continues the old path exactly
    full = path.decode(plan[None])[0][0]
    rest = path.decode(shifted[None], steps=4)[0][0]
    torch.testing.assert_close(rest, full[4:])


def test_bounds_scale_with_reach():
    path = WaypointPath(3, 10, torch.tensor([1.0, 2.0]), reach=4)
    low, high = path.bounds()
    torch.testing.assert_close(high, torch.tensor([4.0, 8.0]))
    torch.testing.assert_close(low, -high)
    assert WaypointPath(3, 10, torch.tensor([1.0])).bounds()[1].item() == 10.0
    with pytest.raises(ValueError, match="waypoint_reach"):
        WaypointPath(3, 10, torch.tensor([1.0]), reach=0)


def _agent(**kw):
    torch.manual_seed(0)
    model = WorldModel(ModelConfig(width=8, latent_dim=16, predictor_hidden=32))
    cfg = AgentConfig(horizon=4, waypoints=2, **kw)
    planner = {"name": "cem", "num_samples": 32, "iterations": 2, "num_elites": 4}
    return build_agent(model, planner, cfg, [-1, -1], [1, 1], seed=0)


def _episode(agent, steps=8, seed=5):
    env = envs.make("point_mass")
    obs, _ = env.reset(seed=seed)
    agent.reset(env.unwrapped.goal_observation(), seed=seed)
    actions, inits = [], []
    real = agent.planner.plan

    def spy(objective, init_mean=None, generator=None, deadline_s=None):
        inits.append(None if init_mean is None else init_mean.clone())
        return real(objective, init_mean=init_mean, generator=generator, deadline_s=deadline_s)

    agent.planner.plan = spy
    for _ in range(steps):
        a = agent.act(obs)
        actions.append(a)
        obs, *_ = env.step(a)
    env.close()
    return np.stack(actions), inits


def test_agent_plans_waypoints_and_executes_their_path():
    agent = _agent(replan_every=2)
    assert agent.planner.horizon == 2  # W waypoints, not H actions
    assert float(agent.planner.high_np[0]) == 4.0  # reach = the 4-step lookahead
    actions, inits = _episode(agent)
    assert actions.shape == (8, 2) and np.all(np.abs(actions) <= 1)
    assert len(inits) == 4 and inits[0] is None
    assert inits[1].shape == (2, 2)  # warm start: the shifted waypoints
    again, _ = _episode(_agent(replan_every=2))
    np.testing.assert_array_equal(actions, again)  # same seed, same actions


def test_waypoints_refuse_asymmetric_bounds_and_icem():
    model = WorldModel(ModelConfig(width=8, latent_dim=16, predictor_hidden=32))
    cfg = AgentConfig(horizon=4, waypoints=2)
    with pytest.raises(ValueError, match="symmetric about 0"):
        build_agent(model, {"name": "cem"}, cfg, [0, 0], [1, 1])
    with pytest.raises(ValueError, match="planner=icem"):
        build_agent(model, {"name": "icem"}, cfg, [-1, -1], [1, 1])
    with pytest.raises(ValueError, match="agent.waypoints=-1"):
        AgentConfig(waypoints=-1)


def _detour_cost(actions):
    """A point that moves by its actions from (0, 0) toward (0, 6), past a wall on y = 3
    spanning x in [-4, 4]: final distance, plus 100 for each step that crosses the wall."""
    pos = actions.cumsum(1)  # (N, T, 2)
    prev = torch.cat([torch.zeros_like(pos[:, :1]), pos[:, :-1]], 1)
    crosses = (prev[..., 1] < 3) & (pos[..., 1] >= 3)
    x_at = prev[..., 0] + (pos[..., 0] - prev[..., 0]) * (3 - prev[..., 1]) / (
        pos[..., 1] - prev[..., 1]
    ).clamp_min(1e-9)
    hit = crosses & (x_at.abs() <= 4)
    return (pos[:, -1] - torch.tensor([0.0, 6.0])).norm(dim=-1) + 100 * hit.sum(1)


def test_waypoints_find_a_detour_around_a_wall():
    import planners

    path = WaypointPath(3, 16, torch.tensor([1.0, 1.0]))
    low, high = path.bounds()
    planner = planners.make("cem", low, high, horizon=3, num_samples=256, iterations=6)
    result = planner.plan(
        lambda p: _detour_cost(path.decode(p)[0]), generator=torch.Generator().manual_seed(0)
    )
    cost = _detour_cost(path.decode(result.actions[None])[0])
    # around the wall's end and near the goal (seeds 0-7: 0.11-0.71); a plan that stays below
    # the wall ends 3 away, as CEM over the 16 raw actions does here (3.00-3.06, seeds 0-4)
    assert cost.item() < 1.0


@pytest.mark.parametrize("waypoints", [0, 2])
def test_upcoming_are_the_next_env_step_actions(waypoints):
    torch.manual_seed(0)
    model = WorldModel(ModelConfig(width=8, latent_dim=16, predictor_hidden=32))
    cfg = AgentConfig(horizon=4, replan_every=3, action_repeat=2, waypoints=waypoints)
    planner = {"name": "cem", "num_samples": 16, "iterations": 2, "num_elites": 4}
    agent = build_agent(model, planner, cfg, [-1, -1], [1, 1], seed=0)
    env = envs.make("point_mass")
    obs, _ = env.reset(seed=2)
    agent.reset(env.unwrapped.goal_observation(), seed=2)
    assert agent.upcoming is None
    first = agent.act(obs)
    upcoming = agent.upcoming
    assert upcoming.shape == (4 * 2 - 1, 2) and np.all(np.abs(upcoming) <= 1)
    for want in upcoming[:5]:  # replan_every 3 x hold 2: the next five come from this plan
        np.testing.assert_array_equal(agent.act(obs), want)
    assert not agent.planned
    assert first.shape == (2,)
    env.close()


def _decode_step_by_step(params, steps, high):
    """The path as a loop over env steps: toward the current point at most one full action
    (direction kept), the next point once it lands; the reference for the batched decode."""
    n, w, _ = params.shape
    pos, j, out = torch.zeros(n, params.shape[-1]), torch.zeros(n, dtype=torch.long), []
    for _ in range(steps):
        delta = params[torch.arange(n), j.clamp(max=w - 1)] - pos
        scale = (high / delta.abs().clamp_min(1e-12)).amin(-1, keepdim=True).clamp(max=1.0)
        step = torch.where((j < w)[:, None], delta * scale, 0.0)
        pos, out = pos + step, [*out, step]
        j = j + ((j < w) & (scale[:, 0] >= 1.0)).long()
    return torch.stack(out, 1), j


def test_batched_decode_matches_the_step_by_step_path():
    gen = torch.Generator().manual_seed(0)
    high = torch.tensor([1.0, 0.5, 2.0])
    params = (torch.rand(64, 3, 3, generator=gen, dtype=torch.float64) - 0.5) * 12
    params[0, 1] = params[0, 0]  # a repeated point: one still step
    params[1, 0] = 0.0  # a first point where the robot is
    path = WaypointPath(3, 20, high.double())
    for steps in (1, 7, 20):
        got, got_j = path.decode(params, steps)
        want, want_j = _decode_step_by_step(params, steps, high.double())
        torch.testing.assert_close(got, want)
        torch.testing.assert_close(got_j, want_j)


def test_absolute_dims_are_held_per_waypoint_not_integrated():
    # (dx, grip): grip in [0, 1] is a command, each waypoint carries one
    path = WaypointPath(2, 6, torch.tensor([1.0, 1.0]), absolute=[1], low=torch.tensor([-1.0, 0]))
    low, high = path.bounds()
    torch.testing.assert_close(low, torch.tensor([-6.0, 0.0]))
    torch.testing.assert_close(high, torch.tensor([6.0, 1.0]))
    points = torch.tensor([[[2.0, 0.9], [3.0, 0.1]]])
    actions, reached = path.decode(points)
    # two steps to x = 2 with grip 0.9, one to x = 3 with grip 0.1, then hold with grip 0.1
    np.testing.assert_allclose(actions[0, :, 0].numpy(), [1, 1, 1, 0, 0, 0])
    np.testing.assert_allclose(actions[0, :, 1].numpy(), [0.9, 0.9, 0.1, 0.1, 0.1, 0.1])
    assert int(reached[0]) == 2
    shifted = path.shift(points[0], 1)  # moved one step along x; the grips stay commands
    torch.testing.assert_close(shifted, torch.tensor([[1.0, 0.9], [2.0, 0.1]]))
    with pytest.raises(ValueError, match="waypoint_absolute_dims=\\[2\\]"):
        WaypointPath(2, 6, torch.tensor([1.0, 1.0]), absolute=[2])


def test_absolute_dims_may_have_asymmetric_bounds():
    model = WorldModel(ModelConfig(width=8, latent_dim=16, predictor_hidden=32))
    planner = {"name": "cem", "num_samples": 8, "iterations": 1, "num_elites": 2}
    cfg = AgentConfig(horizon=4, waypoints=2, waypoint_absolute_dims=[1])
    agent = build_agent(model, planner, cfg, [-1, 0], [1, 1])
    np.testing.assert_allclose(agent.planner.low_np, [-4, 0])
    np.testing.assert_allclose(agent.planner.high_np, [4, 1])
    with pytest.raises(ValueError, match="waypoint_absolute_dims"):
        build_agent(model, planner, AgentConfig(horizon=4, waypoints=2), [-1, 0], [1, 1])


def test_evaluate_refuses_a_bad_planner_setting_before_any_episode(tmp_path, monkeypatch):
    from agent import evaluation
    from agent.evaluation import EvalConfig, EvalSettings, evaluate
    from envs.config import EnvConfig

    def no_episode(job):
        raise AssertionError("an episode ran before the planner setting was checked")

    monkeypatch.setattr(evaluation, "_worker_episode", no_episode)
    cfg = EvalConfig(
        env=EnvConfig("point_mass"),
        policy="sim_mpc",
        planner={"name": "icem"},
        agent=AgentConfig(waypoints=2),
        output_dir=str(tmp_path / "out"),
        eval=EvalSettings(episodes=2, seed=0, workers=1),
    )
    with pytest.raises(ValueError, match="agent.waypoints with planner=icem"):
        evaluate(cfg)
    assert not (tmp_path / "out" / "results.json").exists()
