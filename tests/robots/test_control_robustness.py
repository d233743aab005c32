"""The control entry point and loop: the loop's rate against the robot's, late-plan fallbacks
that reach the arm, the goal's proprio, one-line errors, a stop that raises, goal capture.

Timing is simulated where it matters (a shared fake clock): nothing here asserts wall time.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from agent import checkpoint
from agent.control import (
    RobotConfig,
    capture_goal,
    control,
    goal_proprio_path,
    load_goal,
)
from agent.control_loop import SOURCES, ControlLoop, LoopConfig, RunAborted
from agent.dataset import Dataset
from agent.errors import friendly_errors
from agent.model import ModelConfig, WorldModel
from envs import robots
from envs.robots import RobotConnectionError, RobotError, SafeRobot
from envs.robots.conformance import main as conformance
from envs.robots.sim_arm import SimArmAdapter
from tests.robots.test_control_cli import _gcbc_policy, config
from tests.robots.test_sim_arm import SAFETY

REPO = Path(__file__).resolve().parents[2]
RATE = SimArmAdapter().action_spec.rate_hz  # 12.5 Hz


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Plans inside a 100 ms tick on a busy machine (see test_control_cli)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_ckpt(tmp_path: Path, **kw) -> str:
    cfg = ModelConfig(
        width=8, latent_dim=16, predictor_hidden=32, action_dim=4, proprio_dim=7, **kw
    )
    path = tmp_path / ("arm_ps.safetensors" if kw.get("proprio_state") else "arm.safetensors")
    checkpoint.save(path, WorldModel(cfg), {"task": "arm_reach"})
    return str(path)


class Policy:
    """Moves +x well inside every limit; a plan of five such actions, like MPCAgent."""

    def __init__(self, action=(0.2, 0.0, 0.0, 0.0), on_act=None):
        self.action, self.on_act, self.n = np.asarray(action, np.float32), on_act, 0

    def reset(self, goal):
        self.n = 0

    def act(self, obs):
        self.n += 1
        if self.on_act is not None:
            self.on_act(self.n)
        self.plan = np.stack([self.action] * 5)
        return self.action


# ---- 1. the loop's rate against the robot's -------------------------------------------------
def test_a_loop_faster_than_the_robot_is_refused_slower_or_equal_runs(tmp_path):
    arm = SimArmAdapter(image_size=16)
    with SafeRobot(arm, SAFETY) as safe:
        fast = LoopConfig(rate_hz=50.0, max_steps=2, output_dir=str(tmp_path / "run"))
        with pytest.raises(ValueError, match=r"loop.rate_hz=50 is faster .* \(12.5 Hz.*=12.5 or"):
            ControlLoop(safe, Policy(), fast)
        for rate in (RATE, 10.0):  # the robot's rate and slower are fine
            ControlLoop(safe, Policy(), LoopConfig(rate_hz=rate, output_dir=str(tmp_path)))
    assert not (tmp_path / "run").exists()
    ur = robots.make("ur_rtde", host="127.0.0.1", rate_hz=10.0)  # its spec needs no connection
    from agent.control_loop import check_rate

    with pytest.raises(ValueError, match=r"loop.rate_hz=50 is faster .* \(10 Hz"):
        check_rate(50.0, ur.action_spec)


def test_control_refuses_a_fast_loop_before_loading_the_policy(tmp_path, monkeypatch):
    ckpt = tiny_ckpt(tmp_path)
    assert control(config(tmp_path, ckpt, mode="capture_goal")) is None
    import agent.control

    monkeypatch.setattr(agent.control, "build_policy", lambda *a: pytest.fail("policy built"))
    with pytest.raises(ValueError, match="loop.rate_hz=25 is faster"):
        control(config(tmp_path, ckpt, rate_hz=25.0))
    assert not (tmp_path / "run").exists()
    ur = RobotConfig("ur_rtde", {"host": "127.0.0.1", "rate_hz": 10.0}, SAFETY)
    with pytest.raises(ValueError, match=r"loop.rate_hz=50 is faster .* \(10 Hz"):
        control(config(tmp_path, ckpt, robot=ur, rate_hz=50.0))  # before connecting


# ---- 2. late plans: the shifted actions reach the arm ---------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += max(0.0, s)


def test_shifted_actions_after_late_plans_move_the_arm_and_are_not_counted_limited(
    tmp_path, caplog
):
    clock, period = FakeClock(), 1.0 / RATE

    def late_after_first(n):  # the first plan in time, every later one two ticks late
        if n > 1:
            clock.t += 2 * period  # past the half period a robot allows

    arm = SimArmAdapter(image_size=16, clock=clock)
    cfg = LoopConfig(
        rate_hz=RATE, max_steps=6, max_consecutive_faults=10, output_dir=str(tmp_path / "run")
    )
    with SafeRobot(arm, SAFETY, clock=clock, watchdog_thread=False) as safe:
        x0 = float(safe.get_observation()["proprio"][0])
        goal = {"pixels": safe.get_observation()["pixels"]}
        loop = ControlLoop(
            safe, Policy(on_act=late_after_first), cfg, clock=clock, sleep=clock.sleep
        )
        result = loop.run(goal)
        x1 = float(safe.get_observation()["proprio"][0])
    assert result.sources == {"plan": 1, "shifted": 4, "hold": 1}, result.sources
    assert arm.dropped == 0  # each was due at the end of the tick it was sent in
    assert result.limited == 0 and result.replaced == 0  # nothing here exceeds a limit
    log = np.load(tmp_path / "run" / "control.npz")
    shifted = log["source"] == SOURCES.index("shifted")
    assert np.all(log["t_target"][shifted] > log["t_sent"][shifted])
    applied = next(Dataset(tmp_path / "run").iter_episodes())["actions"]
    np.testing.assert_allclose(applied[shifted][:, 0], 0.2, atol=1e-6)  # sent as planned
    assert x1 - x0 > 0.5 * 5 * 0.2 * 0.025  # five +x steps of 5 mm each: the arm moved
    said = [r.getMessage() for r in caplog.records if "tick 1:" in r.getMessage()]
    assert len(said) == 1 and "ready 160 ms into the 80 ms tick (planning 160 ms" in said[0]


def test_commands_stay_one_robot_period_apart_after_a_late_tick(tmp_path):
    """A late tick's fallback is sent when ready and the next tick starts at once: with a
    quick plan there, two commands used to reach the arm a few ms apart (two steps of motion
    in one period). The loop now waits until a robot period has passed since the last."""
    clock, period = FakeClock(), 1.0 / RATE

    def second_late(n):  # only the second plan is late
        if n == 2:
            clock.t += 2 * period

    arm = SimArmAdapter(image_size=16, clock=clock)
    cfg = LoopConfig(
        rate_hz=RATE, max_steps=5, max_consecutive_faults=10, output_dir=str(tmp_path / "run")
    )
    with SafeRobot(arm, SAFETY, clock=clock, watchdog_thread=False) as safe:
        goal = {"pixels": safe.get_observation()["pixels"]}
        loop = ControlLoop(safe, Policy(on_act=second_late), cfg, clock=clock, sleep=clock.sleep)
        result = loop.run(goal)
    assert result.sources["shifted"] == 1, result.sources
    sent = np.load(tmp_path / "run" / "control.npz")["t_sent"]
    assert np.all(np.diff(sent) >= period - 1e-9), np.diff(sent)


def test_a_joint_velocity_loop_must_run_at_the_robots_rate():
    from agent.control_loop import check_rate
    from envs.robots import ActionSpec

    vel = ActionSpec("joint_vel", (-1.0,) * 2, (1.0,) * 2, "joint", 10.0, motion_dims=2)
    with pytest.raises(ValueError, match="slower than the robot's control rate .* joint_vel"):
        check_rate(5.0, vel)  # each velocity command would act for two robot periods
    check_rate(10.0, vel)
    pos = ActionSpec("joint_pos", (-1.0,) * 2, (1.0,) * 2, "joint", 10.0, motion_dims=2)
    check_rate(5.0, pos)  # position targets: slower is safe


# ---- 3. the goal's proprio ---------------------------------------------------------------------
def test_capture_goal_saves_the_goal_proprio_and_load_goal_reads_it(tmp_path):
    path = str(tmp_path / "goals" / "g.png")
    with SafeRobot(SimArmAdapter(image_size=16), SAFETY) as safe:
        capture_goal(safe, path)
        want = safe.get_observation()["proprio"]
    goal = load_goal(path)
    assert goal["pixels"].shape == (16, 16, 3) and goal["proprio"].dtype == np.float32
    np.testing.assert_array_equal(goal["proprio"], want)
    assert goal_proprio_path(path) == tmp_path / "goals" / "g.png.proprio.json"
    Path(path).write_bytes(Path(path).read_bytes() + b"\0")  # the image changed since
    with pytest.raises(ValueError, match="saved with another image .* overwrite=true"):
        load_goal(path)


def test_a_proprio_state_gcbc_policy_with_handoff_runs_on_a_captured_goal(tmp_path):
    ckpt = tiny_ckpt(tmp_path, proprio_state=True)
    policy = _gcbc_policy(tmp_path, ckpt)
    assert control(config(tmp_path, ckpt, mode="capture_goal")) is None
    result = control(config(tmp_path, policy, policy="gcbc", handoff_steps=1))
    assert result.reason != "error" and result.steps >= 1, result.message
    goal_proprio = next(Dataset(tmp_path / "run").iter_episodes())["goal_proprio"]
    assert np.all(np.isfinite(goal_proprio))  # the run log keeps the captured goal's proprio


def test_a_goal_without_proprio_is_refused_before_connecting(tmp_path, monkeypatch):
    ckpt = tiny_ckpt(tmp_path, proprio_state=True)
    policy = _gcbc_policy(tmp_path, ckpt)
    assert control(config(tmp_path, ckpt, mode="capture_goal")) is None
    goal_proprio_path(tmp_path / "goal.png").unlink()  # as an older version captured it
    monkeypatch.setattr(robots, "make", lambda *a, **k: pytest.fail("connected"))
    for cfg in (
        config(tmp_path, policy, policy="gcbc", handoff_steps=1),
        config(tmp_path, ckpt),
    ):
        with pytest.raises(ValueError, match="no saved proprio .* capture the goal again"):
            control(cfg)
    assert not (tmp_path / "run").exists()


def test_the_shipped_gcbc_policy_hands_off_on_a_captured_goal(tmp_path):
    """README's command: policy=gcbc checkpoint=checkpoints/gcbc/... handoff_steps=..."""
    policy = REPO / "checkpoints" / "gcbc" / "arm_push_masked_fast.safetensors"
    if not policy.is_file():
        pytest.skip("shipped checkpoints are not here")
    robot = RobotConfig("sim_arm", {"task": "arm_push", "image_size": 64}, SAFETY)
    kw = {"robot": robot, "policy": "gcbc", "handoff_steps": 1}
    cfg = config(tmp_path, str(policy), mode="capture_goal", **kw)
    assert control(cfg) is None
    result = control(config(tmp_path, str(policy), mode="dry_run", **kw))
    assert result.reason in ("max_steps", "fault") and result.steps >= 1, result.message


# ---- 4. one line for bad input ----------------------------------------------------------------
def test_a_robot_option_typo_is_one_line_naming_the_options():
    with pytest.raises(
        ValueError,
        match=r"unknown option bogus for SimArmAdapter \(got .*\): fix robot.options .*'task'",
    ):
        robots.make("sim_arm", bogus=1)


def test_a_robot_error_is_a_user_error(capsys):
    @friendly_errors
    def unreachable():
        raise RobotConnectionError("robot bridge tcp://x did not answer: check the server")

    with pytest.raises(SystemExit) as e:
        unreachable()
    assert e.value.code == 2
    assert (
        capsys.readouterr().err == "error: robot bridge tcp://x did not answer: check the server\n"
    )


def test_a_goal_that_is_not_an_image_is_one_line(tmp_path):
    text = tmp_path / "goal.png"
    text.write_text("root:x:0:0:root:/root:/bin/bash\n")
    with pytest.raises(ValueError, match="is not a readable image .* mode=capture_goal"):
        load_goal(str(text))


def test_conformance_bad_input_is_one_line_and_a_zero_limit_a_failed_check(tmp_path, capsys):
    assert conformance(["--robot", "sim_arm", "--options", "{bad"]) == 2
    assert capsys.readouterr().err.startswith("error: --options is not JSON")
    missing = str(tmp_path / "nope.yaml")
    assert conformance(["--robot", "sim_arm", "--robot-config", missing]) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"error: --robot-config {missing} does not exist: pass a configs/robot/*.yaml"
    )
    assert conformance(["--robot", "sim_arm", "--send-hold"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --send-hold needs --robot-config")
    text = (REPO / "configs" / "robot" / "sim_arm.yaml").read_text()
    zero = tmp_path / "zero.yaml"
    zero.write_text(text.replace("max_velocity: 0.3 ", "max_velocity: 0 "))
    args = ["--robot", "sim_arm", "--robot-config", str(zero), "--send-hold"]
    assert conformance(args) == 1
    out = capsys.readouterr().out
    assert "FAIL safety_config: ValueError: safety.max_velocity=0.0: use a positive" in out
    assert "send_hold" not in out.split("checks passed")[0]  # no hold through a bad config
    assert out.strip().endswith("failed: safety_config")


def _free_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MUJOCO_GL": "egl", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "agent.control", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env, timeout=300)


def _one_error_line(r: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in r.stderr, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, r.stderr
    return lines[0]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["+robot.options.bogus=1", "mode=capture_goal"], "unknown option bogus for SimArmAdapter"),
        (["robot=ur_rtde", "mode=capture_goal"], "pip install"),
        (
            ["robot=bridge", "robot.options.connect_timeout_s=0.3", "mode=capture_goal"],
            "did not answer",
        ),
        (["goal=NOT_AN_IMAGE"], "is not a readable image"),
        (["loop.rate_hz=50"], "loop.rate_hz=50 is faster than the robot's control rate (12.5 Hz"),
    ],
)
def test_cli_errors_are_one_line_exit_2(tmp_path, args, says):
    if "robot=ur_rtde" in args:
        try:
            import rtde_control  # noqa: F401

            pytest.skip("ur-rtde is installed")
        except ImportError:
            pass
    ckpt = tiny_ckpt(tmp_path)
    goal = tmp_path / "goal.png"
    if "mode=capture_goal" not in args:
        assert control(config(tmp_path, ckpt, mode="capture_goal")) is None
    (tmp_path / "text.png").write_text("not an image\n")
    args = [a.replace("NOT_AN_IMAGE", str(tmp_path / "text.png")) for a in args]
    if "robot=bridge" in args:
        args.append(f"robot.options.endpoint={_free_endpoint()}")
    base = [f"goal={goal}", f"checkpoint={ckpt}", f"loop.output_dir={tmp_path / 'run'}"]
    r = _cli(*base, *args)
    assert r.returncode == 2, r.stderr
    assert says in _one_error_line(r)
    assert not (tmp_path / "run" / "meta.json").exists()


# ---- 5. a stop or a send that raises ------------------------------------------------------------
class StopRaisesArm(SimArmAdapter):
    """The sim arm whose stop() raises while ``broken`` (an adapter breaking the contract)."""

    broken = True

    def stop(self) -> None:
        if type(self).broken:
            raise OSError("driver socket closed")
        super().stop()


class SendRaisesArm(SimArmAdapter):
    """The sim arm whose third command raises (a driver failing mid-run)."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.sent = 0

    def send_action(self, action, t_target=None):
        self.sent += 1
        if self.sent == 3:
            raise OSError("driver socket closed")
        return super().send_action(action, t_target)


def test_a_stop_that_raises_keeps_the_run_log(tmp_path, monkeypatch):
    arm = StopRaisesArm(image_size=16)
    cfg = LoopConfig(rate_hz=RATE, max_steps=3, output_dir=str(tmp_path / "run"))
    safe = SafeRobot(arm, SAFETY)
    safe.connect()
    try:
        goal = {"pixels": safe.get_observation()["pixels"]}
        result = ControlLoop(safe, Policy(), cfg).run(goal)
    finally:
        monkeypatch.setattr(StopRaisesArm, "broken", False)
        safe.disconnect()
    assert result.reason == "error" and not result.ok
    assert "stop failed: OSError: driver socket closed" in result.message
    meta = json.loads((tmp_path / "run" / "meta.json").read_text())
    assert meta["reason"] == "error" and meta["transitions"] == 3
    assert (tmp_path / "run" / "control.npz").is_file()


def test_control_with_a_stop_that_raises_is_one_robot_error_and_keeps_the_log(tmp_path):
    ckpt = tiny_ckpt(tmp_path)
    assert control(config(tmp_path, ckpt, mode="capture_goal")) is None
    name = "tests.robots.test_control_robustness:StopRaisesArm"
    with pytest.raises(RobotError, match="stopping the robot .* failed .* stop it by hand"):
        control(config(tmp_path, ckpt, robot=name))
    meta = json.loads((tmp_path / "run" / "meta.json").read_text())
    assert meta["reason"] == "error" and "stop failed" in meta["message"]


def test_a_send_that_raises_stops_the_arm_keeps_the_log_and_raises_one_line(tmp_path):
    arm = SendRaisesArm(image_size=16)
    cfg = LoopConfig(rate_hz=RATE, max_steps=5, output_dir=str(tmp_path / "run"))
    with SafeRobot(arm, SAFETY) as safe:
        goal = {"pixels": safe.get_observation()["pixels"]}
        with pytest.raises(RunAborted) as e:
            ControlLoop(safe, Policy(), cfg).run(goal)
        assert arm.stops >= 1
    assert isinstance(e.value.__cause__, OSError)
    line = str(e.value)
    assert "\n" not in line and line.startswith("run stopped (error) after 2 steps: OSError")
    meta = json.loads((tmp_path / "run" / "meta.json").read_text())
    assert meta["reason"] == "error" and meta["transitions"] == 2


@pytest.mark.slow
def test_cli_a_send_that_raises_is_one_line_exit_1_and_keeps_the_log(tmp_path):
    ckpt = tiny_ckpt(tmp_path)
    assert control(config(tmp_path, ckpt, mode="capture_goal")) is None
    out = tmp_path / "run"
    robot = "robot.name=tests.robots.test_control_robustness:SendRaisesArm"
    r = _cli(f"goal={tmp_path / 'goal.png'}", f"checkpoint={ckpt}", f"loop.output_dir={out}", robot)
    assert r.returncode == 1, r.stderr
    assert "run stopped (error)" in _one_error_line(r) and "OSError" in r.stderr
    assert json.loads((out / "meta.json").read_text())["reason"] == "error"


# ---- 6. goal capture: atomic, never a silent overwrite ---------------------------------------
def test_capture_goal_refuses_to_overwrite_unless_asked(tmp_path, monkeypatch):
    ckpt = tiny_ckpt(tmp_path)
    assert control(config(tmp_path, ckpt, mode="capture_goal")) is None
    goal = tmp_path / "goal.png"
    before = goal.read_bytes()
    with monkeypatch.context() as m:
        m.setattr(robots, "make", lambda *a, **k: pytest.fail("connected"))
        with pytest.raises(FileExistsError, match="already exists: pass overwrite=true"):
            control(config(tmp_path, ckpt, mode="capture_goal"))
    assert goal.read_bytes() == before
    import agent.control

    def cut(*a, **k):
        raise OSError("disk full")

    with monkeypatch.context() as m:  # a capture cut short leaves the old goal whole
        m.setattr(agent.control, "atomic_write_json", cut)
        with pytest.raises(OSError, match="disk full"):
            control(config(tmp_path, ckpt, mode="capture_goal", overwrite=True))
    assert goal.read_bytes() == before and load_goal(str(goal))["proprio"].shape == (7,)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    assert control(config(tmp_path, ckpt, mode="capture_goal", overwrite=True)) is None
    assert goal.stat().st_mode & 0o777 == 0o644


def test_control_yaml_documents_overwrite():
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(str(REPO / "configs"), version_base="1.3"):
        cfg = compose("control", ["mode=capture_goal", "overwrite=true"])
    assert cfg.overwrite is True
    assert "overwrite" in (REPO / "configs" / "control.yaml").read_text()
