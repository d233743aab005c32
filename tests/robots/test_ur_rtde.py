"""The UR RTDE adapter against a fake of ur-rtde's two interfaces (no robot, no package).

The fake records every call, so these tests pin what the adapter sends (servoL targets,
stop order, the home move) and what it refuses; they cannot show what a real arm does."""

from __future__ import annotations

import sys
import time
import types

import numpy as np
import pytest
import yaml

from agent.config import to_dataclass
from envs import robots
from envs.robots import ActionRejected, RobotError, RobotState, SafeRobot, SafetyConfig

HOME_POSE = [0.45, 0.0, 0.25, 3.14, 0.0, 0.0]


class FakeUR:
    """One arm behind both interfaces: the TCP jumps to each servoL target."""

    def __init__(self) -> None:
        self.pose = list(HOME_POSE)
        self.speed = [0.0] * 6
        self.calls: list[tuple] = []
        self.protective = self.estop = False
        self.link = True
        self.fail_stop = False


@pytest.fixture
def ur(monkeypatch):
    arm = FakeUR()

    class Control:
        def __init__(self, host):
            arm.calls.append(("control", host))

        def servoL(self, pose, speed, acc, t, lookahead, gain):  # ur-rtde's method names
            arm.calls.append(("servoL", list(pose), t, lookahead, gain))
            arm.pose = list(pose)
            return True

        def servoStop(self, a):
            if arm.fail_stop:
                raise RuntimeError("RTDE link lost")
            arm.calls.append(("servoStop", a))

        def stopL(self, a):
            arm.calls.append(("stopL", a))

        def moveJ(self, q, speed, acc):
            arm.calls.append(("moveJ", list(q), speed, acc))

        def stopScript(self):
            arm.calls.append(("stopScript",))

        def disconnect(self):
            arm.calls.append(("control.disconnect",))

    class Receive:
        def __init__(self, host):
            arm.calls.append(("receive", host))

        def getActualTCPPose(self):
            return list(arm.pose)

        def getActualTCPSpeed(self):
            return list(arm.speed)

        def isProtectiveStopped(self):
            return arm.protective

        def isEmergencyStopped(self):
            return arm.estop

        def isConnected(self):
            return arm.link

        def disconnect(self):
            arm.calls.append(("receive.disconnect",))

    monkeypatch.setitem(
        sys.modules, "rtde_control", types.SimpleNamespace(RTDEControlInterface=Control)
    )
    monkeypatch.setitem(
        sys.modules, "rtde_receive", types.SimpleNamespace(RTDEReceiveInterface=Receive)
    )
    return arm


def _names(arm: FakeUR) -> list[str]:
    return [c[0] for c in arm.calls]


def test_observation_and_the_servo_target(ur):
    with robots.make("ur_rtde", host="10.0.0.2", rate_hz=10.0, max_step_m=0.01) as arm:
        obs = arm.get_observation()
        assert obs["proprio"].shape == tuple(arm.observation_features["proprio"]["shape"])
        np.testing.assert_allclose(obs["proprio"][:6], HOME_POSE, rtol=1e-6)
        assert obs["t_proprio"] <= obs["t_pixels"] <= time.monotonic()
        applied = arm.send_action(np.array([1.0, 0.0, -0.5]))
        np.testing.assert_allclose(applied, [1.0, 0.0, -0.5])
        _, pose, t, lookahead, gain = next(c for c in ur.calls if c[0] == "servoL")
        np.testing.assert_allclose(pose, [0.46, 0.0, 0.245, 3.14, 0.0, 0.0])  # base frame, m
        assert t == pytest.approx(0.1) and 0.03 <= lookahead <= 0.2 and 100 <= gain <= 2000
    assert ur.calls[0][1] == "10.0.0.2"


def test_a_stale_command_holds_the_arm_where_it_is(ur):
    with robots.make("ur_rtde", host="h") as arm:
        applied = arm.send_action(np.array([1.0, 1.0, 1.0]), t_target=time.monotonic() - 1.0)
        assert not applied.any()
        assert next(c for c in ur.calls if c[0] == "servoL")[1] == HOME_POSE


@pytest.mark.parametrize(
    ("flag", "state"),
    [
        ("protective", RobotState.PROTECTIVE_STOP),
        ("estop", RobotState.EMERGENCY_STOP),
        ("link", RobotState.DISCONNECTED),
    ],
)
def test_a_stopped_arm_refuses_commands(ur, flag, state):
    with robots.make("ur_rtde", host="h") as arm:
        assert arm.status().ok
        setattr(ur, flag, flag != "link")  # the link flag reads True when up
        assert arm.status().state is state
        with pytest.raises(RobotError, match=state.value):
            arm.send_action(np.zeros(3))
    assert "servoL" not in _names(ur)


@pytest.mark.parametrize("action", [[np.nan, 0.0, 0.0], [0.1, 0.0, 0.0, 1.0]])
def test_the_adapter_refuses_a_bad_action_itself(ur, action):
    with robots.make("ur_rtde", host="h") as arm, pytest.raises(RobotError, match="safety layer"):
        arm.send_action(np.array(action))
    assert "servoL" not in _names(ur)


def test_leaving_stops_before_releasing_the_link_and_tolerates_a_lost_one(ur):
    with robots.make("ur_rtde", host="h") as arm:
        arm.reset()
    tail = _names(ur)[-6:]
    assert tail == ["moveJ", "servoStop", "stopL", "stopScript", "control.disconnect",
                    "receive.disconnect"]  # fmt: skip
    move = next(c for c in ur.calls if c[0] == "moveJ")
    assert move[2] <= 0.2 and move[3] <= 0.2  # home slowly
    ur.fail_stop = True
    arm = robots.make("ur_rtde", host="h")
    arm.connect()
    arm.stop()  # a lost link during stop() is not an error
    arm.disconnect()
    assert not arm.connected


def test_through_the_safety_layer_of_its_config(ur):
    cfg = yaml.safe_load(open("configs/robot/ur_rtde.yaml"))
    safety = to_dataclass(SafetyConfig, cfg["safety"], "safety")  # as agent.control builds it
    clock = [0.0]
    options = {k: v for k, v in cfg["options"].items() if k != "host"}
    robot = SafeRobot(
        robots.make("ur_rtde", host="h", **options), safety, clock=lambda: clock[0],
        watchdog_thread=False,
    )  # fmt: skip
    low, high = np.array(safety.workspace_low), np.array(safety.workspace_high)
    with robot:
        ur.pose[:3] = [high[0] - 0.002, 0.0, 0.25]  # 2 mm inside the box's +x face
        robot.get_observation()
        with pytest.raises(ActionRejected, match="NaN"):
            robot.send_action(np.array([np.nan, 0.0, 0.0]))
        robot.send_action(np.array([1.0, 0.0, 0.0]))  # would leave the box by 8 mm
        target = np.array(ur.calls[-1][1][:3])
        assert np.all(target <= high) and np.all(target >= low)
        clock[0] += 2 * safety.watchdog_timeout_s  # commands stopped arriving
        assert robot.watchdog.check()
        assert _names(ur)[-2:] == ["servoStop", "stopL"]
        with pytest.raises(ActionRejected, match="rearm"):
            robot.send_action(np.zeros(3))


def test_the_ur_adapter_passes_the_contract_checks(ur):
    """envs.robots.conformance on the UR adapter (the fake's link; a camera-less adapter
    serves black frames): every check, the hold action sent once through its safety config."""
    from envs.robots.conformance import check_adapter

    cfg = yaml.safe_load(open("configs/robot/ur_rtde.yaml"))
    safety = to_dataclass(SafetyConfig, cfg["safety"], "safety")
    options = {k: v for k, v in cfg["options"].items() if k != "host"}
    findings = check_adapter(robots.make("ur_rtde", host="h", **options), safety, send_hold=True)
    assert [f.check for f in findings if not f.ok] == [], findings
    assert len(findings) == 10
    servo = [c for c in ur.calls if c[0] == "servoL"]
    assert len(servo) == 1 and servo[0][1] == HOME_POSE  # the hold: the arm stays put
