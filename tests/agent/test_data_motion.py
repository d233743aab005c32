import numpy as np

from agent.dataset import Dataset
from tests.load import load_module

data_motion = load_module("scripts/data_motion.py")


class _Data:
    first_success = Dataset.first_success  # the real rule, on this fake's episodes

    def __init__(self):
        self.meta = {"success_threshold": 0.025}

    def iter_episodes(self):
        still = np.zeros((11, 4))
        moving = np.zeros((11, 4))
        moving[:, 2] = np.linspace(0, 0.1, 11)  # 1 cm per step along x of dims 2:4
        yield {"state": still, "distance": np.full(11, 0.5)}  # never at its goal
        yield {"state": moving, "distance": 0.1 - moving[:, 2]}  # at the goal from step 8


def test_motion_counts_path_steps_and_net_displacement():
    m = data_motion.motion(_Data(), 2, 4, step=2e-4, net=0.02)
    assert m["episodes"] == 2
    assert abs(m["mean_path"] - 0.05) < 1e-9 and abs(m["median_path"] - 0.05) < 1e-9
    assert m["share_episodes_net_above"] == 0.5 and m["share_steps_moving"] == 0.5


def test_above_counts_episodes_and_frames_over_a_level():
    m = data_motion.motion(_Data(), 2, 4, step=2e-4, net=0.02, above=0.05)
    # the moving episode's x passes 0.05 at frames 6..10 (5 of its 11); the still one never
    assert m["share_episodes_above"] == 0.5
    assert abs(m["share_frames_above"] - 5 / 22) < 1e-9
    assert "share_episodes_above" not in data_motion.motion(_Data(), 2, 4, 2e-4, 0.02)


def test_goal_reaching_counts_episodes_and_the_first_step_there():
    m = data_motion.motion(_Data(), 2, 4, step=2e-4, net=0.02)
    assert m["share_episodes_reaching_goal"] == 0.5 and m["median_steps_to_goal"] == 8
