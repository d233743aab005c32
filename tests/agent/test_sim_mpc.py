"""policy=sim_mpc: the planner with the simulator as its model (agent.sim_mpc)."""

import numpy as np
import pytest
import torch

import envs
import planners
from agent.evaluation import EvalConfig, EvalSettings, evaluate
from agent.mpc import AgentConfig
from agent.sim_mpc import SimMPC
from envs.config import EnvConfig


def _sim_agent(cost="state", horizon=4, repeat=2):
    planner = planners.make(
        "cem", [-1, -1], [1, 1], horizon=horizon, num_samples=24, iterations=2, num_elites=4
    )
    env = envs.make("point_mass")
    cfg = AgentConfig(horizon=horizon, action_repeat=repeat)
    return env, SimMPC(env.unwrapped, "point_mass", planner, cfg, cost)


def _run(env, agent, seed, steps):
    obs, info = env.reset(seed=seed)
    agent.reset(env.unwrapped.goal_observation(), seed=seed)
    start, actions = info["distance_to_goal"], []
    for _ in range(steps):
        a = agent.act(obs)
        actions.append(a)
        obs, _, _, _, info = env.step(a)
    return start, info["distance_to_goal"], np.stack(actions)


def test_cost_is_the_true_state_distance_after_the_held_actions():
    env, agent = _sim_agent(repeat=3)
    env.reset(seed=3)
    agent.reset(env.unwrapped.goal_observation(), seed=3)
    plan = np.full((1, 4, 2), 0.7, np.float32)
    cost = agent.objective(env.unwrapped.get_physics_state())(torch.as_tensor(plan))
    for a in plan[0]:  # the same 4 x 3 env steps in the real task
        for _ in range(3):
            env.step(a)
    want = np.linalg.norm(env.unwrapped.state() - env.unwrapped.goal_state())
    assert cost.item() == pytest.approx(want, rel=1e-5)
    env.close()
    agent.close()


def test_moves_toward_the_goal_and_is_deterministic():
    env, agent = _sim_agent(cost="task")
    start, end, a1 = _run(env, agent, seed=11, steps=40)
    assert end < 0.2 * start  # the true model and a true cost: real progress
    _, _, a2 = _run(env, agent, seed=11, steps=40)
    np.testing.assert_array_equal(a1, a2)
    assert np.all(np.abs(a1) <= 1.0)
    env.close()
    agent.close()


def test_harness_runs_sim_mpc_and_refuses_an_unknown_cost(tmp_path):
    cfg = EvalConfig(
        env=EnvConfig("point_mass"),
        policy="sim_mpc",
        planner={"name": "cem", "num_samples": 16, "iterations": 2, "num_elites": 4},
        agent=AgentConfig(horizon=3, action_repeat=2),
        output_dir=str(tmp_path),
        eval=EvalSettings(episodes=1, workers=1, videos=0),
    )
    summary = evaluate(cfg)
    assert summary["policy"] == "sim_mpc" and summary["planner"] == "cem"
    assert summary["plan_ms_p50"] > 0
    with pytest.raises(ValueError, match="sim_cost"):
        _sim_agent(cost="pixels")


def test_waypoint_plans_are_scored_and_executed_as_their_path():
    from agent.mpc import make_planner

    env = envs.make("point_mass")
    cfg = AgentConfig(horizon=6, replan_every=2, waypoints=2)
    planner_cfg = {"name": "cem", "num_samples": 16, "iterations": 2, "num_elites": 4}
    planner, path = make_planner(planner_cfg, cfg, [-1, -1], [1, 1])
    agent = SimMPC(env.unwrapped, "point_mass", planner, cfg, "task", path)
    obs, _ = env.reset(seed=4)
    agent.reset(env.unwrapped.goal_observation(), seed=4)
    points = torch.tensor([[[1.5, -2.0], [3.0, 1.0]]])
    cost = agent.objective(env.unwrapped.get_physics_state())(points)
    for a in path.decode(points)[0][0].numpy():  # 6 env steps along the path
        env.step(a)
    assert cost.item() == pytest.approx(env.unwrapped.distance_to_goal(), rel=1e-5)
    obs, _ = env.reset(seed=4)
    agent.reset(env.unwrapped.goal_observation(), seed=4)
    first = [agent.act(obs) for _ in range(2)]  # replan_every=2: two env steps of the path
    want = path.decode(agent.plan[None], 2)[0][0].numpy()
    np.testing.assert_allclose(np.stack(first), want)
    env.close()
    agent.close()
