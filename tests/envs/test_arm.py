"""Arm tasks: end-effector control, gripper, workspace, oracle success, goal rendering."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

import envs
from envs.tasks.arm import CUBE_HALF, PAD_GAP, ArmPickPlace, ArmPush, ArmReach

TASKS = (ArmReach, ArmPush, ArmPickPlace)
ORACLE_SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def arm_envs():
    made = {cls: cls() for cls in TASKS}
    yield made
    for env in made.values():
        env.close()


def _act(*a: float) -> np.ndarray:
    return np.array(a, dtype=np.float32)


def _place(env, ee: np.ndarray, finger_q: float) -> None:
    env._place_robot(ee, finger_q)
    mujoco.mj_forward(env.model, env.data)


def test_spaces_and_layouts(arm_envs):
    for cls, env in arm_envs.items():
        env.reset(seed=0)
        assert env.action_space.shape == (4,)
        assert env.observation_space["proprio"].shape == (7,)
        assert env.observation_space["pixels"].shape == (64, 64, 3)
        n = 4 if cls is ArmReach else 11
        assert env.state().shape == env.goal_state().shape == (n,)
        assert env.control_rate_hz == pytest.approx(12.5)
        assert np.array_equal(env.workspace_low, env.joint_limits[:3, 0])
        assert np.array_equal(env.workspace_high, env.joint_limits[:3, 1])
        mujoco.mj_forward(env.model, env.data)  # the grasp site is at the x, y, z joints
        assert np.allclose(env.data.site("grasp").xpos, env.ee_position(), atol=1e-9)


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("sign", [-1.0, 1.0])
def test_action_moves_ee_in_commanded_direction(arm_envs, axis, sign):
    env = arm_envs[ArmReach]
    env.reset(seed=3)
    _place(env, np.array([0.0, 0.0, 0.1]), 0.02)
    a = np.zeros(4, dtype=np.float32)
    a[axis] = sign
    before = env.ee_position()
    env.step(a)
    moved = env.ee_position() - before
    assert moved[axis] * sign == pytest.approx(env.max_step, rel=0.2)
    others = np.delete(moved, axis)
    assert np.abs(others).max() < 0.1 * env.max_step
    assert env.ee_position()[axis] * sign > before[axis] * sign


def test_grip_closes_and_opens(arm_envs):
    env = arm_envs[ArmReach]
    env.reset(seed=0)
    for _ in range(6):
        env.step(_act(0, 0, 0, -1))
    assert env.finger_opening() == pytest.approx(PAD_GAP, abs=0.002)
    for _ in range(6):
        env.step(_act(0, 0, 0, 1))
    assert env.finger_opening() > 2 * CUBE_HALF + 0.04


def test_workspace_clipping(arm_envs):
    env = arm_envs[ArmReach]
    for sign, bound in ((1.0, env.workspace_high), (-1.0, env.workspace_low)):
        env.reset(seed=1)
        for _ in range(20):
            env.step(_act(sign, sign, sign, 0))
        assert np.allclose(env.ee_target(), bound)
        assert np.allclose(env.ee_position(), bound, atol=0.003)
        assert np.all(env.ee_position() <= env.workspace_high + 0.003)
        assert np.all(env.ee_position() >= env.workspace_low - 0.003)


def test_target_does_not_wind_up_when_blocked(arm_envs):
    env = arm_envs[ArmPickPlace]
    env.reset(seed=0)
    cube = env.cube_position()
    _place(env, np.append(cube[:2], 0.09), 0.0)  # closed, above the cube
    for _ in range(10):  # press down onto the cube top
        env.step(_act(0, 0, -1, -1))
    assert env.ee_target()[2] - env.ee_position()[2] <= 2 * env.max_step + 1e-9
    assert env.cube_position()[2] > CUBE_HALF - 0.003  # not pushed through the table


@pytest.mark.parametrize("cls", TASKS)
def test_oracle_succeeds_within_budget(arm_envs, cls):
    env = arm_envs[cls]
    for seed in ORACLE_SEEDS:
        env.reset(seed=seed)
        for _ in range(cls.max_episode_steps):
            _, reward, terminated, truncated, info = env.step(env.oracle_action())
            assert not (terminated or truncated)
        assert info["success"], f"{cls.__name__} seed {seed}: {info['distance_to_goal']:.3f} m"
        assert reward == pytest.approx(-info["distance_to_goal"])


def test_pick_place_oracle_lifts_cube_to_goal_in_the_air(arm_envs):
    env = arm_envs[ArmPickPlace]
    for seed in range(50):  # a goal well above the table
        env.reset(seed=seed)
        if env.goal_state()[6] > 0.1:  # goal cube z
            break
    assert env.cube_position()[2] == pytest.approx(CUBE_HALF)
    heights = []
    for _ in range(env.max_episode_steps):
        env.step(env.oracle_action())
        heights.append(env.cube_position()[2])
    assert max(heights) > CUBE_HALF + 0.07  # lifted by the grasp, not thrown
    assert env.distance_to_goal() <= env.success_threshold
    assert env.finger_opening() == pytest.approx(2 * CUBE_HALF, abs=0.01)  # held, not dropped


def test_goal_image_shows_goal_state(arm_envs):
    for cls, env in arm_envs.items():
        obs, _ = env.reset(seed=4)
        goal = env.goal_observation()
        assert not np.array_equal(goal["pixels"], obs["pixels"])
        gs = env.goal_state()
        assert np.allclose(goal["proprio"][:4], gs[:4], atol=1e-5)  # ee and opening
        if cls is ArmPush:
            assert np.allclose(gs[4:6], env._goal)
        if cls is ArmPickPlace:
            assert np.allclose(gs[4:7], env._goal)
        # rendering the goal leaves the episode untouched
        assert np.array_equal(env.goal_observation()["pixels"], goal["pixels"])
        assert np.array_equal(env.render(), obs["pixels"])


def test_goal_far_enough_from_start(arm_envs):
    for cls, env in arm_envs.items():
        for seed in range(10):
            env.reset(seed=seed)
            assert env.distance_to_goal() >= 0.1 - 1e-9, (cls.__name__, seed)


def test_physics_state_restores_controller(arm_envs):
    env = arm_envs[ArmPush]
    env.reset(seed=5)
    for _ in range(3):
        env.step(env.oracle_action())
    saved = env.get_physics_state()
    actions = [env.oracle_action(), *[_act(0.5, -0.3, 0.2, 1)] * 4]
    first = [env.step(a)[0]["proprio"] for a in actions]
    env.set_physics_state(saved)
    second = [env.step(a)[0]["proprio"] for a in actions]
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


def test_masked_tasks_hide_the_robot_and_nothing_else():
    shown, masked = envs.make("arm_push"), envs.make("arm_push_masked")
    for env in (shown, masked):
        env.reset(seed=4)
    images = {}
    for name, env in (("shown", shown), ("masked", masked)):
        first = env.unwrapped.render()
        for _ in range(4):  # the gripper moves, the cube stays (the start is above it)
            env.step(np.array([1.0, 0.0, 0.0, 0.0]))
        images[name] = (first, env.unwrapped.render())
    assert np.abs(images["shown"][0].astype(int) - images["shown"][1]).max() > 50
    np.testing.assert_array_equal(images["masked"][0], images["masked"][1])
    np.testing.assert_array_equal(shown.unwrapped.state(), masked.unwrapped.state())
    assert masked.unwrapped.hide_robot and not shown.unwrapped.hide_robot
    shown.close()
    masked.close()


def _red_rows(image: np.ndarray) -> np.ndarray:
    """Row indices of the cube's (red) pixels."""
    r, g, b = (image[..., k].astype(int) for k in range(3))
    return np.nonzero((r > 120) & (g < 80) & (b < 80))[0]


def test_two_views_show_the_cube_height_in_the_side_view():
    env = envs.make("arm_pick_place_2view")
    task = env.unwrapped
    obs, _ = env.reset(seed=200036)
    goal = task.goal_observation()["pixels"]
    half = task.image_size // 2
    assert obs["pixels"].shape == goal.shape == (64, 64, 3)
    assert task.hide_robot and task.two_views
    lifted = task.goal_state()[6] - CUBE_HALF  # this seed's goal is 0.15 m up
    assert lifted > 0.1
    # the cube appears in both views; in the side view (bottom half) the lifted goal cube
    # sits many rows above the start cube on the table
    for image in (obs["pixels"], goal):
        rows = _red_rows(image)
        assert (rows < half).any() and (rows >= half).any()
    side_start = _red_rows(obs["pixels"][half:]).mean()
    side_goal = _red_rows(goal[half:]).mean()
    assert side_start - side_goal > 8
    env.close()


def test_two_views_change_the_pixels_only():
    one, two = envs.make("arm_pick_place_masked"), envs.make("arm_pick_place_2view")
    for env in (one, two):
        env.reset(seed=7)
    for a in np.random.default_rng(0).uniform(-1, 1, (10, 4)).astype(np.float32):
        o1, *_ = one.step(a)
        o2, *_ = two.step(a)
        np.testing.assert_array_equal(one.unwrapped.state(), two.unwrapped.state())
        np.testing.assert_array_equal(o1["proprio"], o2["proprio"])
    assert o1["pixels"].shape == o2["pixels"].shape and not np.array_equal(
        o1["pixels"], o2["pixels"]
    )
    one.close()
    two.close()


def test_two_views_need_an_even_image_size():
    with pytest.raises(ValueError, match="even size"):
        ArmPickPlace(hide_robot=True, two_views=True, image_size=66 + 1)
