"""Near goals: ``reset(options={"goal_steps": K})`` (DINO-WM's protocol: goals K steps along a
trajectory) on Push-T, and through the evaluation harness."""

import numpy as np
import pytest

import envs
from agent.evaluation import EvalConfig, EvalSettings, evaluate
from envs.config import EnvConfig
from envs.tasks.point_mass import PointMass
from envs.tasks.push_t import PushT, keypoint_distance


@pytest.fixture(scope="module")
def env():
    e = PushT()
    yield e
    e.close()


def test_same_start_as_the_plain_episode_and_the_goal_is_where_the_oracle_got(env):
    seed, k = 200003, 12
    obs, _ = env.reset(seed=seed)
    start, pixels, far_goal = env.state(), obs["pixels"].copy(), env.goal_pose()
    steps = 0
    while True:  # the oracle toward the task's goal: K steps, then until 4 cm from the start
        env.step(env.oracle_action())
        steps += 1
        if steps >= k and env.state_distance(start, env.state()) >= 2 * env.success_threshold:
            break
    reached_pose, reached_pusher = env.block_pose(), env.pusher_position()

    obs, info = env.reset(seed=seed, options={"goal_steps": k})
    np.testing.assert_array_equal(env.state(), start)  # the start is untouched
    np.testing.assert_array_equal(obs["pixels"], pixels)
    assert keypoint_distance(env.goal_pose(), reached_pose) < 1e-9
    np.testing.assert_allclose(env.goal_state()[:2], reached_pusher)
    assert keypoint_distance(env.goal_pose(), far_goal) > 1e-3  # a new goal
    assert info["distance_to_goal"] >= 2 * env.success_threshold
    assert info["distance_to_goal"] == pytest.approx(env.state_distance(start, env.goal_state()))
    goal_image = env.goal_observation()["pixels"]  # rendered from the new goal
    env.place(reached_pose, reached_pusher)
    np.testing.assert_array_equal(env.render(), goal_image)


def test_deterministic_per_seed_and_the_oracle_reaches_it(env):
    env.reset(seed=5, options={"goal_steps": 10})
    goal, goal_image = env.goal_state(), env.goal_observation()["pixels"]
    env.reset(seed=6, options={"goal_steps": 10})
    env.reset(seed=5, options={"goal_steps": 10})
    np.testing.assert_array_equal(env.goal_state(), goal)
    np.testing.assert_array_equal(env.goal_observation()["pixels"], goal_image)
    for _ in range(env.max_episode_steps):
        env.step(env.oracle_action())
        if env.distance_to_goal() <= env.success_threshold:
            break
    assert env.distance_to_goal() <= env.success_threshold


@pytest.mark.parametrize("bad", [-1, 2.5, True, "25"])
def test_bad_goal_steps_is_one_clear_error(env, bad):
    with pytest.raises(ValueError, match=r"goal_steps.*int >= 0"):
        env.reset(seed=0, options={"goal_steps": bad})


def test_tasks_without_the_hooks_refuse_near_goals():
    assert PushT.supports_goal_steps() and not PointMass.supports_goal_steps()
    e = envs.make("point_mass")
    with pytest.raises(ValueError, match="not supported by PointMass"):
        e.reset(seed=0, options={"goal_steps": 5})
    e.reset(seed=0, options={"goal_steps": 0})  # 0: the task's own goals
    e.close()


def _cfg(tmp_path, task, policy, goal_steps, episodes=2):
    return EvalConfig(
        env=EnvConfig(name=task),
        policy=policy,
        eval=EvalSettings(
            episodes=episodes,
            seed=200000,
            workers=1,
            videos=0,
            bootstrap=100,
            goal_steps=goal_steps,
        ),
        output_dir=str(tmp_path),
    )


def test_harness_evaluates_near_goals_and_refuses_them_where_unsupported(tmp_path):
    near = evaluate(_cfg(tmp_path / "near", "push_t", "oracle", 25))
    assert near["success_rate"] == 1.0
    assert near["config"]["eval"]["goal_steps"] == 25
    far = evaluate(_cfg(tmp_path / "far", "push_t", "oracle", 0))
    near_d = [e["steps"] for e in near["per_episode"]]
    far_d = [e["steps"] for e in far["per_episode"]]
    assert sum(near_d) < sum(far_d)  # nearer goals: fewer oracle steps
    with pytest.raises(ValueError, match="goal_steps=5 is not supported by point_mass"):
        evaluate(_cfg(tmp_path / "pm", "point_mass", "random", 5))
    with pytest.raises(ValueError, match="goal_steps"):
        EvalSettings(goal_steps=-3)


def test_the_sim_mpc_twin_plans_toward_the_same_near_goal():
    from agent.evaluation import build_policy

    cfg = EvalConfig(
        env=EnvConfig(name="push_t"),
        policy="sim_mpc",
        planner={"name": "random"},
        eval=EvalSettings(goal_steps=25),
    )
    e = envs.make("push_t")
    reset, _, sim = build_policy(cfg, e)
    e.reset(seed=200001, options={"goal_steps": 25})
    reset(e.unwrapped.goal_observation(), 200001)
    np.testing.assert_array_equal(sim.goal_state, e.unwrapped.goal_state())
    sim.close()
    e.close()


def test_near_goals_script_counts_goals_that_are_the_tasks_own():
    from tests.load import load_module

    stats = load_module("scripts/near_goals.py").near_goal_stats
    r = stats("push_t", goal_steps=200, episodes=2, seed=100_000)  # 200 steps: the oracle is done
    assert r["near_goal_is_the_task_goal"] == 2 and r["seeds"] == [100_000, 100_001]
    with pytest.raises(ValueError, match="point_mass has no near goals"):
        stats("point_mass", goal_steps=5, episodes=1, seed=0)
