"""scripts/spearman_references.py: the arm keypoints it ranks by."""

import numpy as np
import pytest

import envs
from tests.load import ROOT, load_module


def test_arm_keypoints_are_the_elbow_and_the_tasks_fingertip():
    keypoints = load_module("scripts/spearman_references.py").arm_keypoints
    env = envs.make("reacher_easy")
    env.reset(seed=0)
    task = env.unwrapped
    rng = np.random.default_rng(0)
    q = np.stack([rng.uniform(-np.pi, np.pi, 20), rng.uniform(-2.7, 2.7, 20)], axis=1)
    state = np.concatenate([np.zeros((20, 2)), q], axis=1)  # (tip xy, shoulder, wrist)
    kp = keypoints(task, state)
    elbow, tip = kp[:, :2], kp[:, 2:]
    np.testing.assert_allclose(np.linalg.norm(elbow, axis=1), 0.12, atol=1e-6)
    np.testing.assert_allclose(tip, [task._fingertip_at(r) for r in q], atol=1e-6)
    env.close()


def test_scene_cost_weighs_the_other_thing_by_w():
    m = load_module("scripts/spearman_references.py")
    rng = np.random.default_rng(0)
    state = np.concatenate(
        [
            rng.uniform(-0.2, 0.2, (50, 4)),
            np.stack([np.cos(y := rng.uniform(-3, 3, 50)), np.sin(y)], 1),
        ],
        axis=1,
    )  # Push-T rows: pusher xy, block xy, cos, sin yaw
    other, measured, shown = m.scene_parts("push_t", state)
    assert other == "pusher" and np.array_equal(shown, state[:, :2])
    # the measured points are the block's keypoints: their mean distance is the task's
    task = envs.make("push_t").unwrapped
    kp = measured.reshape(50, 2, -1)
    mean_kp = np.linalg.norm(kp[1:] - kp[:1], axis=1).mean(1)
    np.testing.assert_allclose(mean_kp, task.state_distance(state[1:], state[:1]), atol=1e-9)
    task.close()
    for w in (0.0, 0.5, 2.0):
        f = m.scene_features(measured, shown, w).numpy()
        cost = ((f[1:] - f[:1]) ** 2).sum(1)
        want = ((measured[1:] - measured[:1]) ** 2).mean(1) + w * (
            (shown[1:] - shown[:1]) ** 2
        ).mean(1)
        np.testing.assert_allclose(cost, want, rtol=1e-9)
    assert m.scene_parts("point_mass", state) is None
    assert m.scene_parts("arm_pick_place_masked", state) is None  # robot not in the images


def test_push_t_components_split_position_yaw_and_pusher():
    m = load_module("scripts/spearman_references.py")
    a = np.array([[0.0, 0.0, 0.1, 0.0, 1.0, 0.0]])  # pusher, block xy, cos, sin (yaw 0)
    b = np.array([[0.3, 0.4, 0.1, 0.0, 0.0, 1.0]])  # pusher 0.5 m away, block turned 90 deg
    parts = m.components("push_t", a, b)
    np.testing.assert_allclose(parts["block position"], 0.0)
    np.testing.assert_allclose(parts["block yaw"], np.pi / 2)
    np.testing.assert_allclose(parts["pusher"], 0.5)
    assert m.components("point_mass", a, b) == {}


def test_cube_components_split_xy_height_and_turn():
    m = load_module("scripts/spearman_references.py")
    turn = np.pi / 3  # about z: quaternion (cos t/2, 0, 0, sin t/2)
    a = np.array([[0.1, 0.0, 0.2, 0.05, 0.0, 0.0, 0.02, 1.0, 0.0, 0.0, 0.0]])
    b = np.array([[0.1, 0.3, 0.2, 0.05, 0.03, 0.04, 0.14, 0.0, 0.0, 0.0, 0.0]])
    b[0, 7:] = -np.array([np.cos(turn / 2), 0.0, 0.0, np.sin(turn / 2)])  # -q: the same turn
    for task in ("arm_pick_place", "arm_pick_place_masked", "arm_pick_place_2view", "arm_push"):
        parts = m.components(task, a, b)
        np.testing.assert_allclose(parts["cube xy"], 0.05)
        np.testing.assert_allclose(parts["cube height"], 0.12)
        np.testing.assert_allclose(parts["cube"], 0.13)
        np.testing.assert_allclose(parts["cube turn"], turn)
        np.testing.assert_allclose(parts["gripper"], 0.3)


@pytest.mark.parametrize("name", ["arm_pick_place_masked", "arm_pick_place_2view"])
def test_cube_image_points_land_on_the_rendered_cube(name):
    """The projected cube centre is where the red cube shows in the observation (each view)."""
    m = load_module("scripts/spearman_references.py")
    env = envs.make(name)
    try:
        for seed in (0, 1, 2):
            obs, _ = env.reset(seed=seed)
            task = env.unwrapped
            points = m.cube_image_points(task, task.state()[None])[0].reshape(-1, 2)
            px = obs["pixels"].astype(int)
            red = (px[..., 0] > 120) & (px[..., 1] < 70) & (px[..., 2] < 70)
            rows = task.image_size // len(points)
            for k, (right, up) in enumerate(points):
                r, c = np.nonzero(red[k * rows : (k + 1) * rows])
                assert len(r) > 3, "the cube shows in every view"
                seen = np.array([c.mean() + 0.5 - task.image_size / 2, rows / 2 - r.mean() - 0.5])
                np.testing.assert_allclose(seen, [right, up], atol=2.0)
    finally:
        env.close()


def test_two_room_report_ranks_the_ball_and_the_door(tmp_path, monkeypatch, capsys):
    """End to end on a few two-room episodes: the scene reference at w=0 is the task distance
    itself (rank 1), and a model's latent reports what it follows."""
    import json
    import sys

    from agent.collector import CollectConfig, collect
    from envs.config import EnvConfig

    out = tmp_path / "two_room"
    collect(
        CollectConfig(env=EnvConfig("two_room"), episodes=6, out=str(out), workers=1, video=False)
    )
    script = "scripts/spearman_references.py"
    ckpt = str(ROOT / "checkpoints" / "two_room.safetensors")
    monkeypatch.setattr(
        sys, "argv", [script, "--data", str(out), "--checkpoint", ckpt, "--heldout-fraction", "0.5"]
    )
    load_module(script).main()
    report = json.loads(capsys.readouterr().out)
    assert report["scene"]["other"] == "door"
    assert report["scene"]["w=0"]["all"] > 0.999
    assert report["scene"]["w=10"]["all"] < report["scene"]["w=0"]["all"]
    assert set(report["latent"]["follows"]) == {"ball", "door"}
    assert -1 <= report["latent"]["all"] <= 1
