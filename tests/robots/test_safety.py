"""Safety layer properties (hypothesis), config validation and the fake-clock watchdog."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.robots import ActionRejected, ActionSpec, SafetyConfig, SafetyLayer, Watchdog

SPEC = ActionSpec("ee_delta", (-1.0,) * 4, (1.0,) * 4, "world", 12.5, scale=0.025)
LOW, HIGH = np.array([-0.15, -0.15, 0.02]), np.array([0.15, 0.15, 0.19])
CFG = SafetyConfig(
    max_action_change=0.5,
    max_velocity=0.25,
    max_acceleration=2.0,
    watchdog_timeout_s=0.5,
    workspace_low=tuple(LOW),
    workspace_high=tuple(HIGH),
)
anything = st.floats(allow_nan=True, allow_infinity=True, width=64)
finite = st.floats(-10, 10)
actions = st.lists(st.lists(finite, min_size=4, max_size=4), min_size=1, max_size=8)


def _inside(p: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> bool:
    return bool(np.all(p >= lo - 1e-9) and np.all(p <= hi + 1e-9))


@settings(max_examples=150, deadline=None)
@given(actions, st.lists(st.floats(0, 1), min_size=3, max_size=3))
def test_output_finite_in_bounds_inside_workspace(seq, u):
    layer = SafetyLayer(CFG, SPEC)
    ee = LOW + np.asarray(u) * (HIGH - LOW)
    for a in seq:
        out = layer.filter(a, ee)
        assert out.dtype == np.float32 and np.all(np.isfinite(out))
        assert np.all(out >= -1) and np.all(out <= 1)
        ee = ee + out[:3].astype(np.float64) * SPEC.scale
        assert _inside(ee, LOW, HIGH)


@settings(max_examples=150, deadline=None)
@given(actions)
def test_change_velocity_acceleration_capped_away_from_the_walls(seq):
    big = SafetyConfig(**{**CFG.__dict__, "workspace_low": (-9,) * 3, "workspace_high": (9,) * 3})
    layer = SafetyLayer(big, SPEC)  # a box that never binds: the rate limits alone act
    ee = np.zeros(3)
    prev, prev_v = None, np.zeros(3)
    for a in seq:
        out = layer.filter(a, ee).astype(np.float64)
        if prev is not None:
            assert np.all(np.abs(out - prev) <= CFG.max_action_change + 1e-6)
        v = out[:3] * SPEC.scale * SPEC.rate_hz
        assert np.linalg.norm(v) <= CFG.max_velocity + 1e-6
        assert np.linalg.norm(v - prev_v) * SPEC.rate_hz <= CFG.max_acceleration + 1e-5
        prev, prev_v = out, v
        ee = ee + out[:3] * SPEC.scale


@given(st.lists(anything, min_size=4, max_size=4).filter(lambda a: not np.all(np.isfinite(a))))
def test_non_finite_actions_are_rejected_never_forwarded(a):
    with pytest.raises(ActionRejected, match="NaN or inf"):
        SafetyLayer(CFG, SPEC).filter(a, (LOW + HIGH) / 2)


def test_outside_the_box_only_motion_back_in_passes():
    layer = SafetyLayer(CFG, SPEC)
    ee = np.array([0.2, 0.0, 0.1])  # 5 cm outside in +x
    out = layer.filter([1.0, 0.2, 0.0, 0.0], ee)
    assert out[0] == 0.0 and out[1] > 0
    out = SafetyLayer(CFG, SPEC).filter([-1.0, 0.0, 0.0, 0.0], ee)
    assert out[0] < 0


def test_joint_pos_mode_keeps_joints_inside_limits_with_margin():
    spec = ActionSpec("joint_pos", (-3.0,) * 2, (3.0,) * 2, "base", 10.0, motion_dims=2)
    limits = ((-1.0, 1.0), (-2.0, 2.0))
    cfg = SafetyConfig(0.5, 1.0, 50.0, 0.5, joint_limits=limits, joint_margin=0.1)
    layer = SafetyLayer(cfg, spec)
    q = np.array([0.85, 0.0])
    for _ in range(5):
        out = layer.filter([3.0, -3.0], joint_positions=q)
        assert -1.9 - 1e-6 <= out[1] and out[0] <= 0.9 + 1e-6
        assert np.linalg.norm(out - q) <= 1.0 / spec.rate_hz + 1e-6  # velocity cap
        q = out.astype(np.float64)


@pytest.mark.parametrize(
    "field,value,match",
    [
        ("max_velocity", None, "safety.max_velocity is missing"),
        ("max_acceleration", 0.0, "safety.max_acceleration=0.0"),
        ("max_action_change", float("inf"), "safety.max_action_change=inf"),
        ("watchdog_timeout_s", float("nan"), "safety.watchdog_timeout_s=nan"),
        ("workspace_high", None, "safety.workspace_high is missing"),
    ],
)
def test_config_refuses_missing_zero_or_infinite_limits(field, value, match):
    kwargs = {**CFG.__dict__, field: value}
    with pytest.raises(ValueError, match=match.replace(".", r"\.")) as e:
        SafetyConfig(**kwargs)
    assert "\n" not in str(e.value)


def test_watchdog_thread_keeps_guarding_after_a_stop_that_raises():
    calls = []

    def failing_stop():
        calls.append(time.monotonic())
        raise RuntimeError("link lost while stopping")

    dog = Watchdog(0.05, failing_stop, clock=time.monotonic)
    dog.start(period_s=0.01)
    try:
        deadline = time.monotonic() + 5
        while not dog.tripped and time.monotonic() < deadline:
            time.sleep(0.01)
        assert dog.tripped and len(calls) == 1
        dog.rearm()  # the thread is still there: a second silence trips it again
        while len(calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(calls) == 2 and dog.tripped
    finally:
        dog.close()


def test_watchdog_stops_exactly_once_and_needs_rearm():
    now = [0.0]
    stops = []
    dog = Watchdog(0.5, lambda: stops.append(now[0]), clock=lambda: now[0])
    dog.feed()
    now[0] = 0.4
    assert not dog.check()
    now[0] = 0.95
    assert dog.check() and stops == [0.95]
    for t in (1.0, 2.0, 5.0):
        now[0] = t
        dog.check()
    assert stops == [0.95]  # exactly one stop
    with pytest.raises(ActionRejected, match="rearm"):
        dog.feed()
    dog.rearm()
    dog.feed()
    now[0] = 5.3
    assert not dog.check() and stops == [0.95]
