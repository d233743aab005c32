"""Push-T specifics: the keypoint distance, quasi-static pushing, goal image, oracle."""

import numpy as np
import pytest

import envs
from envs.tasks.push_t import (
    BLOCK_HALF_HEIGHT,
    KEYPOINTS,
    PUSHER_RADIUS,
    STEM_CENTER,
    STEM_HALF,
    PushT,
    distance_to_t,
    keypoint_distance,
)


@pytest.fixture(scope="module")
def env():
    e = PushT()
    yield e
    e.close()


def test_distance_is_zero_at_the_goal_and_grows_with_pose_error(env):
    env.reset(seed=0)
    goal = env.goal_pose()
    env.place(goal, env.goal_state()[:2])
    assert env.distance_to_goal() == pytest.approx(0.0, abs=1e-12)
    assert env.distance_to_goal() <= env.success_threshold
    for d in (0.01, 0.05, 0.1):  # a translation by d moves every keypoint by d
        shifted = goal + np.array([d * 0.6, d * 0.8, 0.0])
        assert keypoint_distance(shifted, goal) == pytest.approx(d)
    turns = np.deg2rad([0.0, 5.0, 15.0, 45.0, 90.0, 180.0])
    dist = keypoint_distance(goal + np.outer(turns, [0.0, 0.0, 1.0]), goal)
    assert np.all(np.diff(dist) > 0)
    both = keypoint_distance(goal + np.array([0.03, 0.0, np.deg2rad(20)]), goal)
    assert both > keypoint_distance(goal + np.array([0.03, 0.0, 0.0]), goal)


def test_success_threshold_matches_the_documented_position_and_angle():
    pose = np.zeros(3)
    assert keypoint_distance(np.array([0.02, 0.0, 0.0]), pose) == pytest.approx(0.02)
    mean_radius = np.linalg.norm(KEYPOINTS, axis=1).mean()
    assert mean_radius == pytest.approx(0.0726, abs=1e-4)  # keypoints centred on the COM
    turn = 2 * np.arcsin(PushT.success_threshold / (2 * mean_radius))
    assert np.rad2deg(turn) == pytest.approx(15.8, abs=0.1)
    assert keypoint_distance(np.array([0.0, 0.0, turn]), pose) == pytest.approx(0.02)


def test_goal_image_is_the_scene_at_the_goal_state(env):
    env.reset(seed=5)
    goal_obs = env.goal_observation()
    goal_pusher = env.goal_state()[:2]
    assert distance_to_t(goal_pusher, env.goal_pose()) > PUSHER_RADIUS  # no overlap
    env.place(env.goal_pose(), goal_pusher)
    np.testing.assert_array_equal(env.render(), goal_obs["pixels"])
    np.testing.assert_allclose(env.state(), env.goal_state(), atol=1e-9)


def test_block_stays_when_not_pushed(env):
    env.reset(seed=1)
    before, pusher = env.block_pose(), env.pusher_position()
    for _ in range(20):
        env.step(np.zeros(2))
    np.testing.assert_allclose(env.block_pose(), before, atol=1e-4)
    np.testing.assert_allclose(env.pusher_position(), pusher, atol=1e-4)


def test_block_moves_when_pushed_and_stops_right_after(env):
    env.reset(seed=2)
    bottom = STEM_CENTER[1] - STEM_HALF[1]  # stem end, below the centre of mass
    env.place(np.zeros(3), np.array([0.0, bottom - PUSHER_RADIUS - 0.01]))
    for _ in range(5):  # 10 cm of pusher travel through the centre of mass along +y
        env.step(np.array([0.0, 1.0]))
    pose = env.block_pose()
    assert 0.05 < pose[1] < 0.1
    assert abs(pose[0]) < 0.005 and abs(pose[2]) < np.deg2rad(3)
    assert abs(env.data.qpos[env._block_z]) < 0.002  # stays on the floor
    for _ in range(3):
        env.step(np.zeros(2))
    np.testing.assert_allclose(env.block_pose(), pose, atol=0.003)  # quasi-static


def test_off_centre_push_turns_the_block(env):
    env.reset(seed=3)
    bottom = STEM_CENTER[1] - STEM_HALF[1]
    left = -STEM_HALF[0] - PUSHER_RADIUS - 0.005
    env.place(np.zeros(3), np.array([left, bottom + 0.015]))  # beside the stem's lower end
    assert distance_to_t(env.pusher_position(), env.block_pose()) > PUSHER_RADIUS
    for _ in range(3):
        env.step(np.array([1.0, 0.0]))
    assert env.block_pose()[2] > np.deg2rad(5)  # pushed +x below the COM: turns ccw


def test_pusher_floats_above_the_floor(env):
    env.reset(seed=4)
    z = env.data.geom("pusher").xpos[2] - env.model.geom("pusher").size[1]
    assert 0.0 < z < BLOCK_HALF_HEIGHT


@pytest.mark.parametrize(
    "seed, controller",
    [
        (0, "oracle_action"),
        (1, "oracle_action"),
        (2, "oracle_action"),
        # the DAgger labeller (replans at every step outside a push) on its own: slower
        pytest.param(6, "expert_action", marks=pytest.mark.slow),
    ],
)
def test_oracle_reaches_the_goal(seed, controller):
    e = envs.make("push_t")
    e.reset(seed=seed)
    act = getattr(e.unwrapped, controller)
    for _ in range(e.spec.max_episode_steps):
        _, _, _, truncated, info = e.step(act())
        if info["success"]:
            break
    e.close()
    assert info["success"], f"seed {seed}: distance {info['distance_to_goal']:.3f}"


@pytest.mark.parametrize("seed", [3, 4])
def test_the_oracle_still_reaches_the_goal_through_action_noise(seed):
    # noise moves the pusher target off the oracle's waypoints; it must not stall there
    # (it did: waypoints needed an exact hit, so noisy_oracle data barely touched the block)
    from agent.policies import noisy_oracle

    e = envs.make("push_t")
    e.reset(seed=seed)
    act = noisy_oracle(np.random.default_rng(seed), 2, sigma=0.2, eps=0.1)
    for _ in range(e.spec.max_episode_steps):
        _, _, _, _, info = e.step(act(e.unwrapped))
        if info["success"]:
            break
    e.close()
    assert info["success"], f"seed {seed}: distance {info['distance_to_goal']:.3f}"


@pytest.mark.slow
def test_oracle_success_rate_over_40_seeds():
    e = envs.make("push_t")
    successes = 0
    for seed in range(40):
        e.reset(seed=seed)
        for _ in range(e.spec.max_episode_steps):
            _, _, _, _, info = e.step(e.unwrapped.oracle_action())
            if info["success"]:
                successes += 1
                break
    e.close()
    assert successes >= 32, f"oracle reached {successes}/40 goals"


def test_expert_labels_depend_on_the_state_alone_and_leave_the_oracle_alone():
    from envs.tasks.push_t import _PushOracle

    e, plain = envs.make("push_t"), envs.make("push_t")
    e.reset(seed=5)
    plain.reset(seed=5)
    task, fresh_checked = e.unwrapped, 0
    for _ in range(30):
        if task._labeller._push_left == 0:  # outside a push: a label is a fresh plan's action
            fresh = _PushOracle(task.model, commit=False).act(task)
            np.testing.assert_array_equal(task.expert_action(), fresh)
            fresh_checked += 1
        else:
            task.expert_action()
        a = task.oracle_action()
        np.testing.assert_array_equal(a, plain.unwrapped.oracle_action())  # labels asked or not
        e.step(a)
        plain.step(a)
    e.close()
    plain.close()
    assert fresh_checked >= 10


def test_restore_of_a_snapshot_repeats_the_episode_bit_for_bit():
    e = envs.make("push_t")
    e.reset(seed=11)
    task = e.unwrapped
    for _ in range(15):  # into the oracle's first plan
        e.step(task.oracle_action())

    def run():
        acts, states = [], []
        for _ in range(30):
            acts.append(task.oracle_action())
            task.expert_action()
            task.step(acts[-1])  # unwrapped: no step count
            states.append(task.get_physics_state())
        return np.array(acts), np.array(states)

    snap = task.snapshot()
    first = run()
    task.place(task.block_pose() + np.array([0.05, 0.0, 0.3]), task.pusher_position() + 0.04)
    for a in ([1.0, 0.0], [0.0, -1.0]):
        task.step(np.array(a, np.float32))
    task.restore(snap)
    again = run()
    task.restore(snap)  # a snapshot restores more than once
    third = run()
    e.close()
    assert np.abs(np.diff(first[1][:, 1 + task.block_qpos_index], axis=0)).sum() > 0.005
    for a, b in ((first, again), (first, third)):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def _explored(seed, explore, rng_seed, steps=40):
    """Actions and block poses of ``steps`` exploring-oracle steps from ``reset(seed)``."""
    e = envs.make("push_t")
    e.reset(seed=seed)
    task, rng, acts, poses = e.unwrapped, np.random.default_rng(rng_seed), [], []
    for _ in range(steps):
        acts.append(task.exploring_oracle_action(rng, explore))
        e.step(acts[-1])
        poses.append(task.block_pose())
    e.close()
    return np.array(acts), np.array(poses)


def _oracle_actions(seed: int, steps: int) -> np.ndarray:
    """The oracle's actions over the first ``steps`` env steps of episode ``seed``."""
    e = envs.make("push_t")
    e.reset(seed=seed)
    out = []
    for _ in range(steps):
        out.append(e.unwrapped.oracle_action())
        e.step(out[-1])
    e.close()
    return np.array(out)


def test_exploring_oracle_is_the_oracle_at_zero_and_pushes_elsewhere_at_one():
    oracle = _oracle_actions(7, 40)
    np.testing.assert_array_equal(_explored(7, 0.0, 0)[0], oracle)
    acts, poses = _explored(7, 1.0, 0)
    assert not np.allclose(acts, oracle)
    assert np.abs(np.diff(poses[:, :2], axis=0)).sum() > 0.01  # random pushes still push
    same, _ = _explored(7, 1.0, 0)
    np.testing.assert_array_equal(acts, same)  # same rng seed, same pushes
    assert not np.array_equal(acts, _explored(7, 1.0, 1)[0])


def test_push_explore_policy_needs_a_task_with_an_exploring_oracle():
    from agent.policies import make_policy

    act = make_policy("push_explore", np.random.default_rng(0), 2)
    e = envs.make("point_mass")
    e.reset(seed=0)
    with pytest.raises(ValueError, match="push_explore needs .*push_t.*noisy_oracle"):
        act(e.unwrapped)
    e.close()


def test_wide_starts_reach_the_walls_keep_the_t_inside_and_leave_the_task_alone(env):
    from envs.tasks.push_t import ARENA_HALF, START_RANGES, keypoints

    env.reset(seed=3)
    own = env.block_pose(), env.goal_pose()
    starts = []
    for seed in range(30):
        env.reset(seed=seed, options={"start_range": START_RANGES[1]})
        starts.append(env.block_pose())
        assert np.all(np.abs(keypoints(env.block_pose())) < ARENA_HALF)  # the T fits
        assert np.all(np.abs(env.goal_pose()[:2]) <= START_RANGES[0])  # the task's goals
    assert np.abs(np.array(starts)[:, :2]).max() > 0.12  # beyond the task's 0.08
    env.reset(seed=29, options={"start_range": START_RANGES[1]})
    np.testing.assert_array_equal(env.block_pose(), starts[-1])  # seeded
    env.reset(seed=3)  # the option does not stick
    np.testing.assert_array_equal(env.block_pose(), own[0])
    np.testing.assert_array_equal(env.goal_pose(), own[1])
    for bad in (0.5, 0.01, True, "0.1"):
        with pytest.raises(ValueError, match="start_range.*is invalid"):
            env.reset(seed=0, options={"start_range": bad})


def test_oracle_actions_do_not_depend_on_its_rollout_threads(monkeypatch):
    from envs.tasks import push_t

    def actions(threads):
        monkeypatch.setattr(push_t, "_rollout_threads", lambda: threads)
        return _oracle_actions(7, 25)

    np.testing.assert_array_equal(actions(1), actions(3))


def _blue_pixels(image: np.ndarray) -> int:
    """How many pixels show the (blue) pusher."""
    r, b = image[..., 0].astype(int), image[..., 2].astype(int)
    return int(((b > 150) & (r < 100)).sum())


def test_masked_push_t_hides_the_pusher_and_changes_nothing_else():
    plain, masked = envs.make("push_t"), envs.make("push_t_masked")
    assert masked.unwrapped.hide_pusher and not plain.unwrapped.hide_pusher
    seen = []
    for env in (plain, masked):
        obs, _ = env.reset(seed=3)
        seen.append((obs["pixels"], env.unwrapped.goal_observation()["pixels"]))
    # the pusher shows in push_t's start and goal images, in neither of push_t_masked's
    assert min(_blue_pixels(im) for im in seen[0]) > 0
    assert max(_blue_pixels(im) for im in seen[1]) == 0
    for a in np.random.default_rng(0).uniform(-1, 1, (10, 2)).astype(np.float32):
        o1, r1, *_ = plain.step(a)
        o2, r2, *_ = masked.step(a)
        np.testing.assert_array_equal(plain.unwrapped.state(), masked.unwrapped.state())
        np.testing.assert_array_equal(o1["proprio"], o2["proprio"])
        assert r1 == r2
    plain.close()
    masked.close()
