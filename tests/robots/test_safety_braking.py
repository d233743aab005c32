"""Braking before the walls: the acceleration cap holds at the box faces and joint limits too,
not only away from them (before, the position limit stopped an arm driven at a face in one
step, whatever its speed)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.robots import ActionSpec, SafetyConfig, SafetyLayer
from tests.robots.test_safety import CFG as BASE
from tests.robots.test_safety import HIGH, LOW
from tests.robots.test_safety import SPEC as EE

# test_safety's arm and limits, with nothing in flight: the arm moves exactly as commanded
CFG = SafetyConfig(**{**BASE.__dict__, "travel_margin": 0.0})
JOINT = ActionSpec("joint_vel", (-2.0,) * 2, (2.0,) * 2, "base", 10.0, motion_dims=2)
JOINT_CFG = SafetyConfig(
    max_action_change=4.0,
    max_velocity=1.0,
    max_acceleration=4.0,
    watchdog_timeout_s=0.5,
    joint_limits=((-1.0, 1.0), (-0.5, 0.5)),
    joint_margin=0.1,
    travel_margin=0.0,
)
unit = st.floats(-1, 1)


def _drive_ee(layer, ee, actions):
    """Yield (position, velocity) after each filtered action, moving exactly as commanded."""
    for a in actions:
        out = layer.filter(a, ee).astype(np.float64)
        v = out[:3] * EE.scale * EE.rate_hz
        ee = ee + out[:3] * EE.scale
        yield ee, v


def test_an_arm_driven_at_a_face_slows_down_and_stops_at_it():
    layer = SafetyLayer(CFG, EE)
    start, prev_v, speeds = np.array([0.0, 0.0, 0.1]), np.zeros(3), []
    for ee, v in _drive_ee(layer, start, [[1.0, 0.0, 0.0, 0.0]] * 40):
        assert np.linalg.norm(v - prev_v) * EE.rate_hz <= CFG.max_acceleration + 1e-5
        assert ee[0] <= HIGH[0] + 1e-9
        prev_v = v
        speeds.append(v[0])
    assert max(speeds) == pytest.approx(CFG.max_velocity)  # full speed on the way
    assert ee[0] == pytest.approx(HIGH[0], abs=1e-5) and speeds[-1] == pytest.approx(0, abs=1e-4)
    peak = int(np.argmax(speeds))
    assert np.all(np.diff(speeds[peak:]) <= 1e-9), "it slows down steadily, never jumps"


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.floats(0, 1), min_size=3, max_size=3),
    st.lists(st.lists(unit, min_size=4, max_size=4), min_size=1, max_size=40),
)
def test_inside_the_box_every_step_keeps_speed_and_acceleration_caps(u, seq):
    layer = SafetyLayer(CFG, EE)  # from rest, anywhere in the box
    start, prev_v = LOW + np.asarray(u) * (HIGH - LOW), np.zeros(3)
    for ee, v in _drive_ee(layer, start, seq):
        assert np.all(ee >= LOW - 1e-9) and np.all(ee <= HIGH + 1e-9)
        assert np.linalg.norm(v) <= CFG.max_velocity + 1e-6
        assert np.linalg.norm(v - prev_v) * EE.rate_hz <= CFG.max_acceleration + 1e-5
        prev_v = v


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.floats(0, 1), min_size=2, max_size=2),
    st.lists(st.lists(st.floats(-2, 2), min_size=2, max_size=2), min_size=1, max_size=40),
)
def test_joint_velocities_brake_before_the_limits(u, seq):
    layer = SafetyLayer(JOINT_CFG, JOINT)
    jl = np.asarray(JOINT_CFG.joint_limits)
    lo, hi = jl[:, 0] + JOINT_CFG.joint_margin, jl[:, 1] - JOINT_CFG.joint_margin
    q, prev_v = lo + np.asarray(u) * (hi - lo), np.zeros(2)
    for a in seq:
        v = layer.filter(a, joint_positions=q).astype(np.float64)
        q = q + v / JOINT.rate_hz
        assert np.all(q >= lo - 1e-6) and np.all(q <= hi + 1e-6)
        assert np.linalg.norm(v - prev_v) * JOINT.rate_hz <= JOINT_CFG.max_acceleration + 1e-4
        prev_v = v


def test_braking_speed_is_zero_at_the_face_and_lets_the_next_step_stop_in_time():
    layer = SafetyLayer(CFG, EE)
    a, dt = CFG.max_acceleration / np.sqrt(3), 1 / EE.rate_hz
    gaps = np.array([-0.01, 0.0, 0.001, 0.02, 0.2])
    u = layer.braking_speed(gaps)
    assert u[0] == 0 and u[1] == 0 and np.all(np.diff(u[1:]) > 0)
    np.testing.assert_allclose(u * dt + u**2 / (2 * a), np.maximum(gaps, 0), atol=1e-12)
