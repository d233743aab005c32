"""Safety layer fixes: joint_pos outside the margin never jumps, the box is checked one step
inside its faces, back-to-back commands see a fresh observation, plain numbers in messages,
and ``rearm`` / ``watchdog_tripped`` reach a watchdog inside the wrapped adapter."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.robots import ActionSpec, SafeRobot, SafetyConfig, SafetyLayer
from envs.robots.sim_arm import SimArmAdapter
from tests.robots.test_sim_arm import SAFETY

JOINT_SPEC = ActionSpec("joint_pos", (-3.0,) * 2, (3.0,) * 2, "base", 10.0, motion_dims=2)
JOINT_CFG = SafetyConfig(
    max_action_change=1.0,
    max_velocity=0.5,
    max_acceleration=50.0,
    watchdog_timeout_s=0.5,
    joint_limits=((-1.0, 1.0), (-1.0, 1.0)),
    joint_margin=0.2,
)
STEP = JOINT_CFG.max_velocity / JOINT_SPEC.rate_hz  # 0.05 rad per step


def test_joint_pos_hold_outside_the_margin_stays_put():
    """The walkthrough's case: at q=0.95 (margin edge 0.8) the hold [0.95, 0] became
    [0.8, 0], a 0.15 rad jump where the cap is 0.05 per step."""
    q = np.array([0.95, 0.0])
    out = SafetyLayer(JOINT_CFG, JOINT_SPEC).filter(q, joint_positions=q)
    np.testing.assert_allclose(out, q, atol=1e-6)


def test_joint_pos_outside_the_margin_moves_only_back_in_within_the_caps():
    layer = SafetyLayer(JOINT_CFG, JOINT_SPEC)
    q = np.array([0.95, -0.95])
    out = layer.filter([1.0, -1.0], joint_positions=q)  # further out: refused, it stays
    np.testing.assert_allclose(out, q, atol=1e-6)
    out = layer.filter([0.0, 0.0], joint_positions=q).astype(np.float64)  # back in: capped
    assert np.all(np.abs(out) < np.abs(q)) and np.linalg.norm(out - q) <= STEP + 1e-6


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.floats(-1.3, 1.3), min_size=2, max_size=2),
    st.lists(st.lists(st.floats(-3, 3), min_size=2, max_size=2), min_size=1, max_size=8),
)
def test_joint_pos_every_output_keeps_the_speed_cap(q0, seq):
    """Wherever the arm starts (inside, in the margin, past the limits) and whatever it is
    asked, no target is more than one step of travel from where the arm is."""
    layer = SafetyLayer(JOINT_CFG, JOINT_SPEC)
    q = np.asarray(q0, np.float64)
    for a in seq:
        out = layer.filter(a, joint_positions=q).astype(np.float64)
        assert np.linalg.norm(out - q) <= STEP + 1e-6
        # never further outside the margin than it was, on any joint
        assert np.all(np.maximum(np.abs(out) - 0.8, 0) <= np.maximum(np.abs(q) - 0.8, 0) + 1e-6)
        q = out


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0.8, 1.3), min_size=2, max_size=2), st.integers(1, 6))
def test_joint_pos_holds_from_rest_keep_speed_and_acceleration(q0, n):
    layer = SafetyLayer(JOINT_CFG, JOINT_SPEC)
    q = np.asarray(q0, np.float64)
    for _ in range(n):
        out = layer.filter(q, joint_positions=q).astype(np.float64)
        np.testing.assert_allclose(out, q, atol=1e-6)  # zero velocity: both caps hold


EE_SPEC = ActionSpec("ee_delta", (-1.0,) * 4, (1.0,) * 4, "world", 12.5, scale=0.025)


def test_box_is_checked_one_step_of_travel_inside_its_faces():
    """The ee is read at the start of the tick; the arm may still travel one step before the
    command lands. A command from 1 cm inside the +x face must leave room for that step."""
    layer = SafetyLayer(SAFETY, EE_SPEC)
    r = SAFETY.max_velocity / EE_SPEC.rate_hz  # 0.024 m
    high = np.asarray(SAFETY.workspace_high)
    ee = np.array([high[0] - r - 0.004, 0.0, 0.1])
    out = layer.filter([1.0, 0.0, 0.0, 0.0], ee).astype(np.float64)
    # the old check let it go to the face itself; now to one step inside it
    assert ee[0] + out[0] * EE_SPEC.scale <= high[0] - r + 1e-9
    assert out[0] > 0
    # so the previous step's travel still in progress cannot carry it past the face
    assert ee[0] + r + out[0] * EE_SPEC.scale <= high[0] + 1e-9


def test_box_narrower_than_two_steps_is_refused_in_plain_numbers():
    narrow = SafetyConfig(**{**SAFETY.__dict__, "workspace_high": (0.15, 0.15, 0.05)})
    with pytest.raises(ValueError, match="twice the travel margin") as e:
        SafetyLayer(narrow, EE_SPEC)
    assert "np.float64" not in str(e.value) and "\n" not in str(e.value)


def test_travel_margin_sets_the_shrink_and_zero_keeps_the_whole_box():
    """The simulated arm (nothing in flight) sets travel_margin 0: it may push at the cube's
    mid-height, 5 mm above the box's floor, which the one-step default (24 mm) would forbid."""
    at = np.array([0.0, 0.0, 0.03])
    down = np.array([0.0, 0.0, -1.0, 0.0], np.float32)  # as far down as one step goes
    default = SafetyLayer(SAFETY, EE_SPEC)
    assert default.filter(down, ee_position=at)[2] == pytest.approx(0.0)  # already below 0.044
    sim = SafetyLayer(SafetyConfig(**{**SAFETY.__dict__, "travel_margin": 0.0}), EE_SPEC)
    ee = at.copy()
    for _ in range(4):  # braking toward the floor takes it there in a few steps
        ee = ee + sim.filter(down, ee_position=ee)[:3].astype(np.float64) * EE_SPEC.scale
    assert ee[2] == pytest.approx(SAFETY.workspace_low[2], abs=1e-6)  # the box's own floor
    with pytest.raises(ValueError, match="travel_margin=-0.01: use a finite value >= 0"):
        SafetyConfig(**{**SAFETY.__dict__, "travel_margin": -0.01})


def test_workspace_error_prints_plain_numbers():
    with pytest.raises(ValueError) as e:
        SafetyConfig(**{**SAFETY.__dict__, "workspace_low": (0.2, 0.0, 0.0)})
    msg = str(e.value)
    assert "np.float64" not in msg
    assert "[0.2, 0.0, 0.0]" in msg and "[0.15, 0.15, 0.19]" in msg


def test_from_dict_reads_a_yaml_safety_block_and_refuses_typos():
    import yaml

    block = yaml.safe_load(open("configs/robot/sim_arm.yaml"))["safety"]
    cfg = SafetyConfig.from_dict(block)
    assert cfg.workspace_low == (-0.15, -0.15, 0.02) and cfg.max_velocity == 0.3
    with pytest.raises(ValueError, match=r"unknown config key safety\.max_speed"):
        SafetyConfig.from_dict({**block, "max_speed": 1.0})
    with pytest.raises(ValueError, match=r"safety\.max_velocity='fast' is not a number"):
        SafetyConfig.from_dict({**block, "max_velocity": "fast"})


def test_back_to_back_commands_without_observing_stay_in_the_box():
    """15 full +x/+y commands with no get_observation in between used to be checked against
    the same (first) observation, so each passed and the arm walked out of the box."""
    arm = SimArmAdapter(image_size=16)
    with SafeRobot(arm, SAFETY, watchdog_thread=False) as robot:
        robot.get_observation()
        for _ in range(40):
            robot.send_action(np.array([1.0, 1.0, 0.0, 0.0]))
            ee = arm.env.ee_position()
            target = arm.env.ee_target()
            for p in (ee, target):
                assert np.all(p <= np.asarray(SAFETY.workspace_high) + 1e-6), p
        assert ee[0] > 0.1  # it did travel to the face


def test_last_command_is_what_the_layer_let_through():
    arm = SimArmAdapter(image_size=16)
    with SafeRobot(arm, SAFETY, watchdog_thread=False) as robot:
        assert robot.last_command is None
        robot.get_observation()
        sent = robot.send_action(np.array([5.0, 0.0, 0.0, 0.0]))  # clipped to the bounds
        np.testing.assert_allclose(robot.last_command, sent, atol=1e-6)
        assert robot.last_command[0] <= 1.0
        robot.last_command[0] = 9.0  # a copy: the layer's state is not the caller's
        assert robot.last_command[0] <= 1.0
        robot.stop()
        assert robot.last_command is None


class _InnerWithWatchdog(SimArmAdapter):
    """An adapter with its own watchdog (what a BridgeClient exposes for its server's)."""

    tripped = False
    rearms = 0

    @property
    def watchdog_tripped(self) -> bool:
        return self.tripped

    def rearm(self) -> None:
        self.rearms += 1
        self.tripped = False


def test_rearm_and_watchdog_tripped_reach_the_wrapped_adapter():
    arm = _InnerWithWatchdog(image_size=16)
    robot = SafeRobot(arm, SAFETY, watchdog_thread=False)
    assert not robot.watchdog_tripped  # before connect
    with robot:
        assert not robot.watchdog_tripped
        arm.tripped = True  # e.g. the bridge server's watchdog after an agent crash
        assert robot.watchdog_tripped
        robot.rearm()
        assert arm.rearms == 1 and not robot.watchdog_tripped


def test_the_simulated_arm_stays_in_the_box_with_its_shipped_limits():
    """sim_arm.yaml sets travel_margin 0: the arm adds each delta to its running target (up
    to two steps ahead of the measured position), so the layer checks that target. Driven at
    full speed into every face, the arm stayed 1.4 mm outside when it checked the measured
    position."""
    import yaml

    from tests.load import ROOT

    block = yaml.safe_load((ROOT / "configs/robot/sim_arm.yaml").read_text())["safety"]
    cfg = SafetyConfig.from_dict(block)
    assert cfg.travel_margin == 0.0
    lo, hi = np.asarray(cfg.workspace_low), np.asarray(cfg.workspace_high)
    arm = SimArmAdapter(image_size=16)
    worst = -np.inf
    with SafeRobot(arm, cfg, watchdog_thread=False) as robot:
        for a in ([1, 1, 1, 0],) * 30 + ([-1, -1, -1, 0],) * 40 + ([1, -1, 0, 0],) * 30:
            robot.get_observation()
            robot.send_action(np.array(a, np.float32))
            for p in (arm.env.ee_position(), arm.env.ee_target()):
                worst = max(worst, float(np.max(np.r_[p - hi, lo - p])))
    assert worst <= 2e-4, f"{worst * 1000:.2f} mm outside the box"


class _FailingSend(SimArmAdapter):
    fail = False

    def send_action(self, action, t_target=None):
        if self.fail:
            raise RuntimeError("protective stop")
        return super().send_action(action, t_target)


def test_a_send_that_raises_does_not_advance_the_acceleration_ramp():
    """The layer used to keep the refused command as its previous one: after a few failed
    sends the first command that got through jumped past the acceleration cap."""
    arm = _FailingSend(image_size=16)
    with SafeRobot(arm, SAFETY, watchdog_thread=False) as robot:
        robot.get_observation()
        first = robot.send_action(np.array([1.0, 0.0, 0.0, 0.0]))
        arm.fail = True
        for _ in range(3):
            with pytest.raises(RuntimeError):
                robot.send_action(np.array([1.0, 0.0, 0.0, 0.0]))
        assert robot.last_command is None  # as after a stop
        arm.fail = False
        again = robot.send_action(np.array([1.0, 0.0, 0.0, 0.0]))
    assert again[0] <= first[0] + 1e-9  # from rest again, not three ramps further


def test_yaml_numbers_written_without_a_dot_are_numbers():
    cfg = SafetyConfig.from_dict({**_sim_block(), "max_velocity": "3e-1"})
    assert cfg.max_velocity == 0.3
    with pytest.raises(ValueError, match="max_velocity='fast' is not a number"):
        SafetyConfig.from_dict({**_sim_block(), "max_velocity": "fast"})


def _sim_block() -> dict:
    import yaml

    from tests.load import ROOT

    return yaml.safe_load((ROOT / "configs/robot/sim_arm.yaml").read_text())["safety"]
