"""scripts/spearman_references.py: the arm keypoints it ranks by."""

import numpy as np

import envs
from tests.load import load_module


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
