import importlib.util
from pathlib import Path

import numpy as np

spec = importlib.util.spec_from_file_location(
    "data_motion", Path(__file__).parents[2] / "scripts" / "data_motion.py"
)
data_motion = importlib.util.module_from_spec(spec)
spec.loader.exec_module(data_motion)


class _Data:
    def iter_episodes(self):
        still = np.zeros((11, 4))
        moving = np.zeros((11, 4))
        moving[:, 2] = np.linspace(0, 0.1, 11)  # 1 cm per step along x of dims 2:4
        yield {"state": still}
        yield {"state": moving}


def test_motion_counts_path_steps_and_net_displacement():
    m = data_motion.motion(_Data(), 2, 4, step=2e-4, net=0.02)
    assert m["episodes"] == 2
    assert abs(m["mean_path"] - 0.05) < 1e-9 and abs(m["median_path"] - 0.05) < 1e-9
    assert m["share_episodes_net_above"] == 0.5 and m["share_steps_moving"] == 0.5
