"""The control loop on the sim arm (and over the bridge) with injected faults.

Every run must end with the arm stopped (or the client reporting disconnected), the reason
in one line, no unhandled exception, and a readable run log (meta.json, the dataset).
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from agent.control_loop import SOURCES, ControlLoop, LoopConfig
from agent.dataset import Dataset
from envs.robots import RobotState, SafeRobot
from envs.robots.bridge import BridgeClient
from envs.robots.sim_arm import SimArmAdapter
from tests.robots.test_sim_arm import SAFETY  # the sim arm's workspace and limits

#: the sim arm's own control rate: a faster loop is refused (the safety limits assume it)
RATE = SimArmAdapter().action_spec.rate_hz


class StubPolicy:
    """Moves +x; hooks for faults; exposes a plan like MPCAgent."""

    def __init__(self, delay_s: float = 0.0, on_step=None, action=(0.5, 0.0, 0.0, 0.0)):
        self.delay_s, self.on_step, self.action = delay_s, on_step, np.asarray(action, np.float32)
        self.n = 0

    def reset(self, goal):
        self.n = 0

    def act(self, obs):
        self.n += 1
        if self.on_step is not None:
            self.on_step(self.n)
        time.sleep(self.delay_s)
        self.plan = np.stack([self.action] * 5)
        return self.action


def run(tmp_path, policy, steps=6, robot=None, **loop):
    arm = robot or SimArmAdapter(image_size=16)
    cfg = LoopConfig(rate_hz=RATE, max_steps=steps, output_dir=str(tmp_path / "run"), **loop)
    with SafeRobot(arm, SAFETY) as safe:
        goal = {"pixels": safe.get_observation()["pixels"]}
        result = ControlLoop(safe, policy, cfg, {"robot": "sim_arm"}).run(goal)
    meta = json.loads((tmp_path / "run" / "meta.json").read_text())
    assert meta["reason"] == result.reason and "\n" not in result.message
    return arm, result, meta


def test_normal_run_logs_a_dataset(tmp_path):
    arm, result, meta = run(tmp_path, StubPolicy())
    assert result.ok and result.steps == 6 and result.sources["plan"] == 6
    data = Dataset(tmp_path / "run")
    ep = next(data.iter_episodes())
    assert ep["pixels"].shape == (7, 16, 16, 3) and ep["actions"].shape == (6, 4)
    assert arm.stops >= 1


def test_delayed_observations_hold_then_stop(tmp_path):
    arm = SimArmAdapter(image_size=16)
    arm.obs_delay_s = 1.0
    policy = StubPolicy()
    _, result, meta = run(tmp_path, policy, robot=arm)
    assert result.reason == "fault" and "ms old" in result.message
    assert policy.n == 0 and result.sources["hold"] == 3 and arm.stops >= 1
    assert meta["transitions"] == 3


def test_nan_observations_are_not_planned_on(tmp_path):
    arm = SimArmAdapter(image_size=16)
    arm.nan_proprio = True
    _, result, _ = run(tmp_path, StubPolicy(), robot=arm)
    assert result.reason == "fault" and "NaN" in result.message


def test_nan_actions_are_rejected_and_the_arm_holds(tmp_path):
    _, result, _ = run(tmp_path, StubPolicy(action=(np.nan, 0, 0, 0)))
    assert result.reason == "fault" and "NaN or inf" in result.message
    assert result.sources["hold"] == 3


def test_emergency_stop_ends_the_run(tmp_path):
    arm = SimArmAdapter(image_size=16)

    def estop(n):
        if n == 3:
            arm.inject(RobotState.EMERGENCY_STOP, "red button pressed")

    _, result, meta = run(tmp_path, StubPolicy(on_step=estop), robot=arm)
    assert result.reason == "emergency_stop" and "red button" in result.message
    assert meta["transitions"] >= 2


def test_slow_planner_falls_back_to_shifted_plan_then_hold_then_stop(tmp_path):
    policy = StubPolicy()

    def slow_after_first(n):
        policy.delay_s = 0.0 if n == 1 else 0.15  # 150 ms > the 80 ms tick

    policy.on_step = slow_after_first
    arm, result, meta = run(tmp_path, policy, steps=20, max_consecutive_faults=6)
    assert result.reason == "fault" and "ms into the 80 ms tick (planning" in result.message
    assert result.sources["plan"] == 1 and result.sources["shifted"] >= 4
    assert result.sources["hold"] >= 1 and arm.stops >= 1


def test_ctrl_c_stops_and_keeps_the_log(tmp_path):
    def interrupt(n):
        if n == 4:
            raise KeyboardInterrupt

    arm, result, meta = run(tmp_path, StubPolicy(on_step=interrupt))
    assert result.reason == "interrupted" and arm.stops >= 1
    assert meta["transitions"] == 3
    Dataset(tmp_path / "run")


def test_dropped_connection_over_the_bridge(tmp_path):
    from tests.robots.test_bridge import free_endpoint, serving

    robot, endpoint = SimArmAdapter(image_size=16), free_endpoint()
    with serving(robot, endpoint, watchdog_timeout_s=0.3) as (_, halt):
        client = BridgeClient(endpoint, timeout_s=0.3)
        policy = StubPolicy(on_step=lambda n: halt.set() if n == 3 else None)
        _, result, meta = run(tmp_path, policy, steps=10, robot=client)
    assert result.reason == "disconnected" and "did not answer" in result.message
    assert client.status().state is RobotState.DISCONNECTED
    assert robot.stops >= 1  # the server stopped the arm on its way out
    assert meta["transitions"] >= 1


class WaypointStub(StubPolicy):
    """Exposes waypoints as ``plan`` (not actions) and its next actions as ``upcoming``."""

    def act(self, obs):
        action = super().act(obs)
        self.plan = np.full((3, 4), 12.0, np.float32)  # waypoints, far out of action bounds
        self.upcoming = np.stack([np.full(4, 0.1 * (i + 1), np.float32) for i in range(4)])
        return action


def test_late_plans_fall_back_to_upcoming_actions_not_to_waypoints(tmp_path):
    policy = WaypointStub()

    def slow_after_first(n):
        policy.delay_s = 0.0 if n == 1 else 0.15  # 150 ms > the 80 ms tick

    policy.on_step = slow_after_first
    arm, result, meta = run(tmp_path, policy, steps=8, max_consecutive_faults=6)
    assert result.sources["plan"] == 1 and result.sources["shifted"] == 4
    log = np.load(tmp_path / "run" / "control.npz")  # commanded: before the safety layer
    shifted = log["commanded"][log["source"] == SOURCES.index("shifted")]
    np.testing.assert_allclose(shifted[:, 0], [0.1, 0.2, 0.3, 0.4], atol=1e-6)


class SlowResetPolicy(StubPolicy):
    """A policy whose reset takes longer than the watchdog allows (agent.compile's warm-up)."""

    def reset(self, goal):
        time.sleep(0.5)
        super().reset(goal)


@pytest.mark.parametrize("slow", ["setup", "reset"])
def test_a_setup_longer_than_the_watchdog_does_not_end_the_run(tmp_path, slow):
    """Loading and compiling a policy (agent.compile) can outlast the watchdog's timeout
    before the run's first command, in the setup before ``run`` or in the policy's reset."""
    arm = SimArmAdapter(image_size=16)
    cfg = LoopConfig(rate_hz=RATE, max_steps=4, output_dir=str(tmp_path / "run"))
    safety = SAFETY.__class__(**{**SAFETY.__dict__, "watchdog_timeout_s": 0.2})
    with SafeRobot(arm, safety) as safe:
        goal = {"pixels": safe.get_observation()["pixels"]}
        if slow == "setup":
            time.sleep(0.5)
        policy = SlowResetPolicy() if slow == "reset" else StubPolicy()
        result = ControlLoop(safe, policy, cfg).run(goal)
        assert result.ok and result.sources["plan"] == 4
        assert arm.stops >= 1  # the trip stopped the idle arm; the run then started afresh
        time.sleep(0.5)  # after the run the watchdog guards as before: a silence trips it
        assert safe.watchdog.tripped


def test_the_loop_refuses_an_adapter_outside_the_safety_layer(tmp_path):
    arm = SimArmAdapter(image_size=16)
    cfg = LoopConfig(rate_hz=RATE, max_steps=2, output_dir=str(tmp_path / "run"))
    with pytest.raises(TypeError, match="only through the safety layer.*SafeRobot"):
        ControlLoop(arm, StubPolicy(), cfg)
    assert arm.stops == 0 and not (tmp_path / "run").exists()
    safe = SafeRobot(arm, SAFETY)
    assert not safe.watchdog_tripped  # no watchdog before connect


class CountingArm(SimArmAdapter):
    """The sim arm, counting the commands that reach it."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.received = 0

    def send_action(self, action, t_target=None):
        self.received += 1
        return super().send_action(action, t_target)


def test_a_dry_run_plans_and_filters_every_tick_and_sends_nothing(tmp_path):
    # +x at full speed: the safety layer caps the change per step and the velocity
    arm, result, meta = run(
        tmp_path, StubPolicy(action=(1.0, 0.0, 0.0, 0.0)), steps=6, robot=CountingArm(image_size=16)
    )
    assert arm.received == 6  # the same run, sent: every command reaches the arm
    dry_arm = CountingArm(image_size=16)
    cfg = LoopConfig(rate_hz=RATE, max_steps=6, output_dir=str(tmp_path / "dry"))
    with SafeRobot(dry_arm, SAFETY) as safe:
        first = safe.get_observation()["proprio"].copy()
        goal = {"pixels": safe.get_observation()["pixels"]}
        dry = ControlLoop(safe, StubPolicy(action=(1.0, 0.0, 0.0, 0.0)), cfg, dry_run=True)
        dry_result = dry.run(goal)
        last = safe.get_observation()["proprio"]
    assert dry_arm.received == 0 and dry_result.ok and dry_result.steps == 6
    assert dry_result.message.startswith("dry run: planned 6 ticks, sent nothing")
    np.testing.assert_allclose(last, first, atol=1e-6)  # the arm never moved
    meta = json.loads((tmp_path / "dry" / "meta.json").read_text())
    assert meta["dry_run"] is True and meta["chunks"] == [] and meta["ticks"] == 6
    assert not (tmp_path / "dry" / "chunk_00000").exists()  # nothing applied: no training data
    log = np.load(tmp_path / "dry" / "control.npz")
    assert log["safe"].shape == log["commanded"].shape == (6, 4)
    np.testing.assert_allclose(log["commanded"][:, 0], 1.0)
    assert np.all(log["safe"][:, 0] < 1.0)  # what the safety layer would have sent instead
    assert dry_result.limited == meta["limited"] == 6
    assert len(dry_result.plan_ms) == 6  # does planning fit the tick? p50 / p95 in meta.json
    assert meta["plan_ms_p50"] == dry_result.plan_ms_percentiles()["plan_ms_p50"] >= 0
