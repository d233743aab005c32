"""scripts/where_episodes_end.py and scripts/probe_by_region.py: the numbers they report."""

import numpy as np
import pytest

from tests.load import load_module


def test_where_episodes_end_splits_by_success_and_measures_how_far_out():
    where = load_module("scripts/where_episodes_end.py").where
    rows = [
        {"success": False, "final_state": [0, 0, 0.15, 0.0, 1, 0]},  # out at a wall
        {"success": False, "final_state": [0, 0, 0.02, -0.12, 1, 0]},
        {"success": False, "final_state": [0.3, 0.3, 0.01, 0.05, 1, 0]},  # pusher far, T in
        {"success": True, "final_state": [0, 0, 0.03, 0.04, 1, 0]},
    ]
    out = where({"per_episode": rows}, [2, 3], 0.1)
    assert out["failed"] == {"episodes": 3, "median_reach": 0.12, "share_beyond": 2 / 3}
    assert out["succeeded"]["share_beyond"] == 0.0
    with pytest.raises(ValueError, match="no per_episode final_state"):
        where({"per_episode": [{"success": True}]}, [2, 3], 0.1)


def test_probe_by_region_bands_the_errors_by_the_ts_reach():
    by_band = load_module("scripts/probe_by_region.py").by_band
    reach = np.array([0.01, 0.02, 0.07, 0.14, 0.15])
    pos = np.array([0.001, 0.003, 0.002, 0.05, 0.07])
    yaw = np.deg2rad([1.0, 3.0, 2.0, 90.0, 170.0])
    rows = by_band(reach, pos, yaw)
    assert [r["band_m"] for r in rows] == [[0.0, 0.06], [0.06, 0.1], [0.13, 0.16]]
    assert [r["frames"] for r in rows] == [2, 1, 2]
    assert rows[0]["position_mm_p50"] == 2.0 and rows[2]["yaw_deg_p50"] == 130.0


def test_point_tracking_finds_the_point_that_follows_the_cube():
    per_point_r2 = load_module("scripts/point_tracking.py").per_point_r2
    rng = np.random.default_rng(0)
    cube = rng.uniform(-1, 1, (500, 2))
    gripper = rng.uniform(-1, 1, (500, 2))
    cube_point = 0.3 * cube @ np.array([[1.0, 0.2], [-0.1, 0.8]]) + 0.01 * rng.normal(size=(500, 2))
    points = np.column_stack([gripper, cube_point, rng.normal(size=(500, 2))])
    r2 = per_point_r2(points, cube)
    assert r2.shape == (3, 2)
    assert r2[1].min() > 0.99  # the cube's point, rotated and scaled: linear
    assert r2[0].max() < 0.05 and r2[2].max() < 0.05
    assert per_point_r2(points, gripper)[0].min() > 0.999
