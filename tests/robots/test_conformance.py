"""``envs.robots.conformance``: the contract checks pass on the shipped adapters and name what
is wrong with a broken one; ``robots.make`` builds your own adapter from ``module:Class``."""

from __future__ import annotations

import time

import numpy as np
import pytest

from envs import robots
from envs.robots import ActionSpec, RobotAdapter, RobotError, RobotState, RobotStatus
from envs.robots.conformance import check_adapter, main
from envs.robots.safety import SafetyConfig
from envs.robots.sim_arm import SimArmAdapter
from tests.robots.test_sim_arm import SAFETY

JOINT_SAFETY = SafetyConfig(
    max_action_change=1.0,
    max_velocity=1.0,
    max_acceleration=10.0,
    watchdog_timeout_s=1.0,
    joint_limits=((-3.0, 3.0), (-3.0, 3.0)),
    joint_margin=0.05,
)


class FakeJointArm(RobotAdapter):
    """A two-joint position-controlled arm in memory, resting away from zero."""

    def __init__(self, override_hold: bool = True) -> None:
        self.override_hold = override_hold
        self.q = np.array([0.4, -0.7], np.float32)
        self._on = False

    @property
    def action_spec(self) -> ActionSpec:
        return ActionSpec("joint_pos", (-3.0, -3.0), (3.0, 3.0), "base", 10.0, 1.0, 2)

    @property
    def observation_features(self):
        return {"pixels": {"shape": [8, 8, 3], "dtype": "uint8"}, "proprio": {"shape": [2]}}

    def connect(self) -> None:
        self._on = True

    def _disconnect(self) -> None:
        self._on = False

    @property
    def connected(self) -> bool:
        return self._on

    def get_observation(self):
        if not self._on:
            raise RobotError("not connected")
        t = time.monotonic()
        pixels = np.zeros((8, 8, 3), np.uint8)
        return {"pixels": pixels, "proprio": self.q.copy(), "t_pixels": t, "t_proprio": t}

    def send_action(self, action, t_target=None):
        self.q = np.asarray(action, np.float32)
        return self.q

    def stop(self) -> None:
        return None

    def status(self) -> RobotStatus:
        state = RobotState.OK if self._on else RobotState.DISCONNECTED
        return RobotStatus(state, None)

    def reset(self) -> None:
        return None

    def joint_positions(self, obs):
        return obs["proprio"]

    def hold_action(self):
        return self.q.copy() if self.override_hold else super().hold_action()


class FutureArm(SimArmAdapter):
    """Stamps its observations with another clock (a second ahead)."""

    def get_observation(self):
        obs = super().get_observation()
        return {**obs, "t_pixels": obs["t_pixels"] + 1.0, "t_proprio": obs["t_proprio"] + 1.0}


class LeakyArm(SimArmAdapter):
    """Serves observations after disconnect (a dead link must raise RobotError)."""

    def get_observation(self):
        if self.env is None:
            return {"pixels": np.zeros((16, 16, 3), np.uint8)}
        return super().get_observation()


def _failed(findings):
    return {f.check: f.detail for f in findings if not f.ok}


def test_the_sim_arm_passes_every_check_and_does_not_move():
    arm = SimArmAdapter(image_size=16)
    findings = check_adapter(arm, SAFETY, send_hold=True)
    assert [f.check for f in findings] == [
        "connect",
        "action_spec",
        "observation_features",
        "observations",
        "ee_or_joint_positions",
        "hold_action",
        "safety_config",
        "send_hold",
        "stop",
        "disconnect",
    ]
    assert not _failed(findings) and not arm.connected


def test_a_joint_robot_that_holds_at_zero_fails_and_one_that_holds_still_passes():
    bad = _failed(check_adapter(FakeJointArm(override_hold=False), JOINT_SAFETY, send_hold=True))
    assert set(bad) == {"hold_action"}
    assert "must hold where it is" in bad["hold_action"]
    assert not _failed(check_adapter(FakeJointArm(), JOINT_SAFETY, send_hold=True))
    wrong_mode = _failed(check_adapter(FakeJointArm(), SAFETY))  # a box, no joint limits
    assert "joint_limits is missing" in wrong_mode["safety_config"]


def test_clock_and_disconnect_faults_are_named():
    assert "in the future" in _failed(check_adapter(FutureArm(image_size=16)))["observations"]
    leaky = _failed(check_adapter(LeakyArm(image_size=16)))
    assert (
        leaky == {"disconnect": leaky["disconnect"]}
        and "did not raise a RobotError" in (leaky["disconnect"])
    )


def test_make_builds_your_own_adapter_from_module_and_class():
    arm = robots.make("tests.robots.test_conformance:FakeJointArm", override_hold=False)
    assert type(arm).__name__ == "FakeJointArm" and not arm.override_hold  # imported by name
    with pytest.raises(ValueError, match="is not a RobotAdapter subclass"):
        robots.make("tests.robots.test_conformance:JOINT_SAFETY")
    with pytest.raises(ValueError, match="cannot import Arm from nowhere"):
        robots.make("nowhere:Arm")
    with pytest.raises(ValueError, match="unknown: use one of .* or module:Class"):
        robots.make("my_arm")


def test_cli_prints_one_line_per_check_and_exits_1_on_a_failure(capsys):
    assert main(["--robot", "tests.robots.test_conformance:FakeJointArm"]) == 0
    assert capsys.readouterr().out.strip().endswith("8 of 8 checks passed")
    bad = '{"override_hold": false}'
    assert main(["--robot", "tests.robots.test_conformance:FakeJointArm", "--options", bad]) == 1
    out = capsys.readouterr().out
    assert "FAIL hold_action: AssertionError: hold_action is" in out
    assert out.strip().endswith("7 of 8 checks passed; failed: hold_action")
