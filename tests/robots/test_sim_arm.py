"""The sim arm behind the adapter API, with the safety layer in front."""

from __future__ import annotations

import numpy as np
import pytest

from envs.robots import RobotError, RobotState, SafeRobot, SafetyConfig
from envs.robots.sim_arm import SimArmAdapter

SAFETY = SafetyConfig(
    max_action_change=1.0,
    max_velocity=0.3,
    max_acceleration=5.0,
    watchdog_timeout_s=5.0,
    workspace_low=(-0.15, -0.15, 0.02),
    workspace_high=(0.15, 0.15, 0.19),
)


def test_observation_action_stop_reset_and_context_manager():
    robot = SimArmAdapter(image_size=32)
    with robot:
        obs = robot.get_observation()
        assert obs["pixels"].shape == (32, 32, 3) and obs["pixels"].dtype == np.uint8
        assert obs["proprio"].shape == (7,) and obs["t_pixels"] > 0
        applied = robot.send_action(np.array([1.0, 0, 0, 0], np.float32))
        assert applied[0] == 1.0 and robot.status().ok
        robot.reset()
        assert np.linalg.norm(robot.env.ee_position() - robot.home) < 0.02
        stale = robot.send_action(np.ones(4, np.float32), t_target=robot.clock() - 1.0)
        assert np.all(stale[:3] == 0) and robot.dropped == 1
    assert robot.stops >= 2 and not robot.connected and robot.status().state.value == "disconnected"
    robot.disconnect()  # idempotent


def test_stops_before_disconnect_on_exceptions_and_ctrl_c():
    robot = SimArmAdapter(image_size=16)
    with pytest.raises(KeyboardInterrupt), robot:
        raise KeyboardInterrupt
    assert robot.stops == 1 and not robot.connected


def test_emergency_stop_refuses_motion():
    with SimArmAdapter(image_size=16) as robot:
        robot.inject(RobotState.EMERGENCY_STOP)
        assert robot.status().state is RobotState.EMERGENCY_STOP
        with pytest.raises(RobotError, match="emergency_stop"):
            robot.send_action(np.zeros(4, np.float32))


def test_safe_robot_keeps_the_arm_in_the_box():
    with SafeRobot(SimArmAdapter(image_size=16), SAFETY, watchdog_thread=False) as robot:
        for _ in range(25):
            robot.get_observation()
            robot.send_action(np.array([1.0, 1.0, 1.0, 0.0]))
        ee = robot.robot.env.ee_position()
        assert np.all(ee <= np.array(SAFETY.workspace_high) + 2e-3), ee


def test_safe_robot_refuses_to_connect_without_limits():
    bad = SafetyConfig(**{**SAFETY.__dict__, "workspace_low": None, "workspace_high": None})
    robot = SimArmAdapter(image_size=16)
    with pytest.raises(ValueError, match="workspace_low is missing"):
        SafeRobot(robot, bad).connect()
    assert not robot.connected


def test_safe_robot_watchdog_stops_once_and_needs_rearm():
    from envs.robots import ActionRejected

    now = [0.0]
    arm = SimArmAdapter(image_size=16)
    with SafeRobot(arm, SAFETY, clock=lambda: now[0], watchdog_thread=False) as robot:
        robot.get_observation()
        robot.send_action(np.zeros(4))
        now[0] = 10.0
        robot.watchdog.check()
        robot.watchdog.check()
        assert arm.stops == 1
        with pytest.raises(ActionRejected, match="rearm"):
            robot.send_action(np.zeros(4))
        robot.rearm()
        robot.send_action(np.zeros(4))
