"""Contract tests every task must pass: Gymnasium API, goal images, determinism, oracle."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs

ALL = sorted(envs.TASKS)


@pytest.fixture(params=ALL)
def env(request):
    e = envs.make(request.param)
    yield e
    e.close()


def test_every_task_is_registered_under_the_namespace():
    for name in ALL:
        spec = envs.task_spec(name)
        assert spec.gym_id in gym.registry, f"{spec.gym_id} did not register"
        assert gym.spec(spec.gym_id).max_episode_steps > 0


def test_check_env_passes(env):
    check_env(env.unwrapped, skip_render_check=False)


def test_observation_and_goal_layout(env):
    obs, info = env.reset(seed=3)
    assert env.observation_space.contains(obs)
    assert obs["pixels"].shape == (64, 64, 3) and obs["pixels"].dtype == np.uint8
    assert obs["proprio"].dtype == np.float32
    goal = env.unwrapped.goal_observation()
    assert env.observation_space.contains(goal)
    assert not np.array_equal(goal["pixels"], obs["pixels"]), "goal image equals the start image"
    assert {"success", "distance_to_goal"} <= set(info)
    assert info["distance_to_goal"] > env.unwrapped.success_threshold
    _, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert {"success", "distance_to_goal"} <= set(info)
    assert reward == pytest.approx(-info["distance_to_goal"])
    assert not terminated and not truncated
    task = env.unwrapped
    assert task.goal_state().shape == task.state().shape
    # the batched state distance used by plannability metrics agrees with the success metric
    assert task.state_distance(task.state(), task.goal_state()) == pytest.approx(
        info["distance_to_goal"], abs=1e-5
    )
    assert task.state_distance(task.goal_state(), task.goal_state()) == pytest.approx(0, abs=1e-9)


def test_image_size_is_configurable():
    e = envs.make("point_mass", image_size=32)
    obs, _ = e.reset(seed=0)
    assert obs["pixels"].shape == (32, 32, 3)
    assert e.unwrapped.goal_observation()["pixels"].shape == (32, 32, 3)
    e.close()


def test_truncation_only_at_the_budget(env):
    env.reset(seed=0)
    budget = env.spec.max_episode_steps
    for t in range(budget):
        _, _, terminated, truncated, _ = env.step(np.zeros(env.action_space.shape))
        assert not terminated
        assert truncated == (t == budget - 1)


def _rollout(name, seed, n=12):
    e = envs.make(name)
    obs, _ = e.reset(seed=seed)
    rng = np.random.default_rng(0)
    frames, infos = [obs["pixels"]], []
    for _ in range(n):
        obs, _, _, _, info = e.step(rng.uniform(-1, 1, e.action_space.shape))
        frames.append(obs["pixels"])
        infos.append((info["distance_to_goal"], *obs["proprio"].tolist()))
    goal = e.unwrapped.goal_observation()["pixels"]
    e.close()
    return np.stack(frames), infos, goal


@pytest.mark.parametrize("name", ALL)
def test_same_seed_same_trajectory(name):
    f1, i1, g1 = _rollout(name, seed=11)
    f2, i2, g2 = _rollout(name, seed=11)
    np.testing.assert_array_equal(f1, f2)
    np.testing.assert_array_equal(g1, g2)
    assert i1 == i2
    _, _, g3 = _rollout(name, seed=12, n=0)
    assert not np.array_equal(g1, g3), "another seed gave the same goal"


def test_bad_actions_fail_clearly(env):
    env.reset(seed=0)
    dim = env.action_space.shape[0]
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(dim + 1))
    bad = np.zeros(dim)
    bad[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        env.step(bad)


def test_step_before_reset_fails_clearly():
    e = envs.make("point_mass").unwrapped
    with pytest.raises(RuntimeError, match="reset"):
        e.step(np.zeros(2))
    e.close()


def test_unknown_task_fails_clearly():
    with pytest.raises(ValueError, match="unknown task 'nope'.*point_mass"):
        envs.make("nope")


@pytest.mark.slow
@pytest.mark.parametrize("name", ALL)
def test_oracle_reaches_the_goal_within_budget(name):
    e = envs.make(name)
    for seed in (901, 902, 903):
        e.reset(seed=seed)
        success = False
        for _ in range(e.spec.max_episode_steps):
            _, _, _, truncated, info = e.step(e.unwrapped.oracle_action())
            if info["success"]:
                success = True
                break
        assert success, (
            f"{name} oracle failed on seed {seed}: distance {info['distance_to_goal']:.3f}"
        )
    e.close()


def test_reacher_proprio_keeps_the_limited_wrist_as_an_angle():
    """cos/sin would put a wrist folded at -160 deg next to a goal at +120 deg (across the
    limit); the raw angle keeps them apart, as the arm has to travel between them."""
    env = envs.make("reacher_easy")
    obs, _ = env.reset(seed=3)
    task = env.unwrapped
    q = task.data.qpos
    assert obs["proprio"].shape == (5,)
    np.testing.assert_allclose(obs["proprio"][:3], [np.cos(q[0]), np.sin(q[0]), q[1]], rtol=1e-5)
    goal = task.goal_observation()["proprio"]
    np.testing.assert_allclose(goal[2], task._goal_qpos()[1], rtol=1e-5)
    np.testing.assert_allclose(goal[3:], 0.0)  # the goal is at rest
    env.close()
