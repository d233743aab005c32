"""Bridge fixes: the server drives the arm only through its own safety layer, a tripped
server watchdog is rearmed by the next run's start (through ``SafeRobot.rearm``), and the
server CLI answers bad input with one ``error: <problem>: <fix>`` line and exit 2."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from agent.control_loop import ControlLoop, LoopConfig
from envs.robots import ActionRejected, SafeRobot
from envs.robots.bridge import BridgeClient, BridgeServer, main, parse_option, run_server
from envs.robots.sim_arm import SimArmAdapter
from tests.robots.test_bridge import free_endpoint, serving
from tests.robots.test_sim_arm import SAFETY

HIGH = np.asarray(SAFETY.workspace_high)


def test_a_plain_client_cannot_drive_the_arm_out_of_the_workspace():
    """The walkthrough's case: a BridgeClient with no SafeRobot sent [1, 1, 0, 0] 15 times
    and the arm left the box; the server now filters every command itself."""
    arm, endpoint = SimArmAdapter(image_size=16), free_endpoint()
    with serving(arm, endpoint, watchdog_timeout_s=5.0):
        client = BridgeClient(endpoint, timeout_s=5.0)
        client.connect()
        try:
            for _ in range(20):
                client.send_action(np.array([1.0, 1.0, 0.0, 0.0], np.float32))
                for p in (arm.env.ee_target(), arm.env.ee_position()):
                    assert np.all(p <= HIGH + 1e-6), p
            assert arm.env.ee_position()[0] > 0.1  # it did travel to the face
            with pytest.raises(ActionRejected, match="NaN"):
                client.send_action(np.array([np.nan, 0.0, 0.0, 0.0], np.float32))
        finally:
            client.disconnect()


def test_the_server_paces_commands_to_the_robot_rate():
    """Sent back to back, commands would move the arm faster than max_velocity (the layer
    caps motion per robot period): the server forwards at most one per period."""
    arm, endpoint = SimArmAdapter(image_size=16), free_endpoint()
    with serving(arm, endpoint, watchdog_timeout_s=5.0):
        client = BridgeClient(endpoint, timeout_s=5.0)
        client.connect()
        t0 = time.monotonic()
        for _ in range(6):
            client.send_action(np.zeros(4, np.float32))
        elapsed = time.monotonic() - t0
        client.disconnect()
    assert elapsed >= 5 / arm.action_spec.rate_hz - 0.01


def test_the_server_refuses_a_bare_adapter_and_missing_limits():
    with pytest.raises(TypeError, match="SafeRobot"):
        BridgeServer(SimArmAdapter(image_size=16), free_endpoint())
    with pytest.raises(ValueError, match="--robot-config"):
        run_server("sim_arm", {"image_size": 16}, free_endpoint(), 0.5)


def _crash_then_run(endpoint: str, tmp_path) -> None:
    """An agent that sends one command and dies (its server watchdog trips)."""
    dead = BridgeClient(endpoint, timeout_s=5.0)
    dead.connect()
    dead.send_action(np.zeros(4, np.float32))
    dead._disconnect()  # a crash: no stop request, the socket just goes


class _Still:
    def reset(self, goal):
        pass

    def act(self, obs):
        return np.zeros(4, np.float32)


def test_the_next_run_after_an_agent_crash_rearms_the_server(tmp_path):
    """After one agent crash the server's watchdog tripped and every later run failed:
    SafeRobot.rearm() rearmed the agent side only. The control loop's start now sees the
    server's trip (watchdog_tripped) and its rearm reaches the server."""
    arm, endpoint = SimArmAdapter(image_size=16), free_endpoint()
    with serving(arm, endpoint, watchdog_timeout_s=0.2) as (server, _):
        _crash_then_run(endpoint, tmp_path)
        deadline = time.monotonic() + 5
        while not server.watchdog.tripped and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.watchdog.tripped
        client = BridgeClient(endpoint, timeout_s=5.0)
        with SafeRobot(client, SAFETY) as robot:
            assert robot.watchdog_tripped  # the server's trip, seen from the agent side
            goal = {"pixels": robot.get_observation()["pixels"]}
            cfg = LoopConfig(rate_hz=10.0, max_steps=3, output_dir=str(tmp_path / "run"))
            result = ControlLoop(robot, _Still(), cfg, {"robot": "bridge"}).run(goal)
            assert result.ok and result.sources["plan"] == 3, result
            assert not server.watchdog.tripped


def test_a_new_client_alone_does_not_rearm_the_server():
    """Rearming stays explicit: a hello does not let commands through again."""
    arm, endpoint = SimArmAdapter(image_size=16), free_endpoint()
    with serving(arm, endpoint, watchdog_timeout_s=0.2) as (server, _):
        client = BridgeClient(endpoint, timeout_s=5.0)
        client.connect()
        client.send_action(np.zeros(4, np.float32))
        time.sleep(0.5)
        client._disconnect()
        client.connect()  # hello again
        assert client.watchdog_tripped
        with pytest.raises(ActionRejected, match="rearm"):
            client.send_action(np.zeros(4, np.float32))
        client.rearm()
        assert not client.watchdog_tripped
        client.send_action(np.zeros(4, np.float32))
        client.disconnect()


def test_option_values_are_json_or_plain_strings():
    assert parse_option("task=arm_push") == ("task", "arm_push")
    assert parse_option("seed=3") == ("seed", 3)
    assert parse_option("home=[0, 0, 0.1]") == ("home", [0, 0, 0.1])
    with pytest.raises(ValueError, match="is not key=value"):
        parse_option("task")


def _cli_error(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    assert err.count(": ") >= 2, err  # error: <problem>: <fix>
    return err


def test_cli_bad_input_is_one_line_and_exit_2(capsys, tmp_path):
    cfg = ["--robot-config", "configs/robot/sim_arm.yaml", "--option", "image_size=16"]
    assert "pass --robot-config" in _cli_error(capsys, ["--robot", "sim_arm"])
    assert "robot='nope' is unknown" in _cli_error(capsys, [*cfg, "--robot", "nope"])
    assert "is not key=value" in _cli_error(capsys, [*cfg, "--option", "task"])
    # a plain string now reaches the adapter, which names the valid tasks
    assert "task='arm_x': use one of" in _cli_error(capsys, [*cfg, "--option", "task=arm_x"])
    assert "got an unexpected keyword" in _cli_error(capsys, [*cfg, "--option", "colour=red"])
    assert "does not exist" in _cli_error(capsys, ["--robot-config", str(tmp_path / "x.yaml")])
    bad = tmp_path / "bad.yaml"
    bad.write_text(json.dumps({"name": "sim_arm", "safety": {"max_velocity": 0.3}}))
    assert "safety.max_action_change is missing" in _cli_error(capsys, ["--robot-config", str(bad)])


def test_cli_endpoint_it_cannot_bind_is_one_line(capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = f"tcp://127.0.0.1:{s.getsockname()[1]}"
        base = ["--robot-config", "configs/robot/sim_arm.yaml", "--option", "image_size=16"]
        err = _cli_error(capsys, [*base, "--endpoint", taken])
        assert f"cannot bind endpoint {taken}" in err and "pass --endpoint" in err
    err = _cli_error(capsys, [*base, "--endpoint", "tcp://203.0.113.7:5555"])
    assert "cannot bind endpoint" in err


def test_cli_module_entry_point_prints_one_line():
    """``python -m envs.robots.bridge`` itself, as a user runs it (no traceback)."""
    r = subprocess.run(
        [sys.executable, "-m", "envs.robots.bridge", "--robot", "nope"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and r.stderr.strip().startswith("error: ") and not r.stdout
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
