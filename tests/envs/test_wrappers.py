import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs.wrappers import StateGoal, state_observation


@pytest.mark.parametrize("task", sorted(envs.TASKS))
def test_state_goal_passes_check_env_and_rewards_follow_the_success_rule(task):
    env = StateGoal(envs.make(task))
    check_env(env, skip_render_check=True)
    obs, info = env.reset(seed=3)
    assert env.observation_space.contains(obs)
    for _ in range(5):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert reward == (0.0 if info["success"] else -1.0)
        assert not terminated
    d = env.unwrapped.state_distance(obs["achieved_goal"], obs["desired_goal"])
    assert d == pytest.approx(info["distance_to_goal"], abs=1e-5)
    env.close()


def test_compute_reward_is_batched_and_relabeled_goals_succeed():
    env = StateGoal(envs.make("point_mass"), reward="sparse")
    obs, _ = env.reset(seed=0)
    achieved = np.stack([obs["achieved_goal"]] * 4)
    desired = np.stack([obs["desired_goal"], *[obs["achieved_goal"]] * 3])
    r = env.compute_reward(achieved, desired, [{}] * 4)
    assert r.shape == (4,) and r.tolist() == [-1.0, 0.0, 0.0, 0.0]
    dense = StateGoal(envs.make("point_mass"), reward="dense")
    obs, info = dense.reset(seed=0)
    assert dense.compute_reward(obs["achieved_goal"], obs["desired_goal"], {}) == pytest.approx(
        -info["distance_to_goal"], abs=1e-5
    )


def test_state_goal_skips_rendering_but_the_pixel_env_still_renders():
    pixel = envs.make("point_mass")
    obs, _ = pixel.reset(seed=0)
    assert obs["pixels"].max() > 0
    state = StateGoal(envs.make("point_mass"))
    state.reset(seed=0)
    assert state.unwrapped._renderer is None  # never created: no GL work
    np.testing.assert_allclose(
        state_observation(pixel.unwrapped)["desired_goal"],
        state_observation(state.unwrapped)["desired_goal"],
    )


def test_unknown_reward_is_refused():
    with pytest.raises(ValueError, match="reward='shaped' is unknown"):
        StateGoal(envs.make("point_mass"), reward="shaped")
