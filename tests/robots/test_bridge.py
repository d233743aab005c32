"""The ZeroMQ bridge over loopback: schema, round trips, timeouts, a killed robot process."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import socket
import threading

import numpy as np
import pytest

from envs.robots import ActionRejected, RobotConnectionError, RobotState, SafeRobot
from envs.robots.bridge import (
    BridgeClient,
    BridgeServer,
    ProtocolError,
    decode,
    dumps,
    encode,
    loads,
    run_server,
    validate_request,
)
from envs.robots.sim_arm import SimArmAdapter
from tests.robots.test_sim_arm import SAFETY  # the sim arm's workspace and limits


def free_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


@contextlib.contextmanager
def serving(robot, endpoint: str, watchdog_timeout_s: float, safety=SAFETY):
    """Serve ``robot`` behind ``safety`` (the server's own safety layer) at ``endpoint`` from
    a thread; yields ``(server, halt)``, joins on exit.

    The arm connects in the serving thread: its GL context belongs to the thread that made it.
    """
    safe = SafeRobot(robot, safety, watchdog_thread=False)  # as run_server builds it
    server = BridgeServer(safe, endpoint, watchdog_timeout_s=watchdog_timeout_s)
    halt, ready = threading.Event(), threading.Event()

    def serve() -> None:
        with safe:
            ready.set()
            server.serve(halt)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ready.wait(30)
    try:
        yield server, halt
    finally:
        halt.set()
        thread.join()


@pytest.fixture
def served():
    """A sim arm served in a thread; yields (client endpoint, robot, server)."""
    robot, endpoint = SimArmAdapter(image_size=16), free_endpoint()
    with serving(robot, endpoint, watchdog_timeout_s=5.0) as (server, _):
        yield endpoint, robot, server


def test_arrays_round_trip_as_raw_bytes_never_pickle():
    a = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    msg = loads(dumps({"v": 1, "id": 3, "x": a}))
    assert b"pickle" not in dumps({"v": 1, "id": 1, "x": a})
    assert np.array_equal(decode(msg["x"]), a)
    with pytest.raises(ProtocolError, match="dtype"):
        encode(np.zeros(2, dtype=object))
    bad = encode(a)
    bad["__ndarray__"]["shape"] = [5]
    with pytest.raises(ProtocolError, match="does not match"):
        decode(bad)


@pytest.mark.parametrize(
    "msg,match",
    [
        ({"v": 1, "id": 1, "method": "explode", "args": {}}, "unknown method"),
        ({"v": 1, "id": 1, "method": "stop", "args": {"x": 1}}, "takes args"),
        (
            {"v": 1, "id": 1, "method": "send_action", "args": {"action": [1], "t_target_in": 0}},
            "type",
        ),
    ],
)
def test_requests_are_validated(msg, match):
    with pytest.raises(ProtocolError, match=match):
        validate_request(msg)
    with pytest.raises(ProtocolError, match="version"):
        loads(b'{"v": 2, "id": 1}')


def test_client_round_trip_and_errors_cross_the_wire(served):
    endpoint, robot, _ = served
    with BridgeClient(endpoint, timeout_s=2.0) as client:
        assert client.action_spec.mode == "ee_delta" and client.action_spec.dim == 4
        obs = client.get_observation()
        assert obs["pixels"].shape == (16, 16, 3) and obs["pixels"].dtype == np.uint8
        assert client.clock() - obs["t_pixels"] < 1.0
        applied = client.send_action(np.array([0.5, 0, 0, 0]), t_target=client.clock() + 0.05)
        assert applied[0] == pytest.approx(0.5) and client.status().ok
        robot.inject(RobotState.EMERGENCY_STOP)
        assert client.status().state is RobotState.EMERGENCY_STOP
        with pytest.raises(RuntimeError, match="emergency_stop"):
            client.send_action(np.zeros(4))
    assert robot.stops >= 1  # the client's exit stopped the robot


def test_server_watchdog_stops_the_robot_when_commands_stop(served):
    endpoint, robot, server = served
    server.watchdog.timeout_s = 0.2
    client = BridgeClient(endpoint, timeout_s=2.0)
    client.connect()
    client.send_action(np.zeros(4))
    before = robot.stops
    import time

    time.sleep(0.6)
    assert robot.stops == before + 1
    with pytest.raises(ActionRejected, match="rearm"):
        client.send_action(np.zeros(4))
    client.rearm()
    client.send_action(np.zeros(4))
    client.disconnect()


def test_timeout_raises_clear_error_and_reports_disconnected():
    client = BridgeClient(free_endpoint(), timeout_s=0.2, connect_timeout_s=0.3)
    with pytest.raises(RobotConnectionError, match="did not answer hello within 0.2 s"):
        client.connect()
    assert client.status().state is RobotState.DISCONNECTED


def test_killed_robot_process_gives_a_connection_error():
    endpoint = free_endpoint()
    ctx = mp.get_context("spawn")
    args = ("sim_arm", {"image_size": 16}, endpoint, 5.0, SAFETY)
    proc = ctx.Process(target=run_server, args=args)
    proc.start()
    try:
        client = BridgeClient(endpoint, timeout_s=0.5, connect_timeout_s=60.0)
        client.connect()
        client.send_action(np.zeros(4))
        proc.kill()
        proc.join()
        with pytest.raises(RobotConnectionError, match="did not answer"):
            client.get_observation()
        assert client.status().state is RobotState.DISCONNECTED
        client.disconnect()  # stop() cannot reach it: logged, no exception
        assert not client.connected
    finally:
        proc.kill()
        proc.join()


def test_a_joint_robot_over_the_bridge_gives_the_safety_layer_its_joints():
    """The client used to report no joint positions, so a joint_pos / joint_vel robot behind
    the bridge had every command refused by the safety layer; the server now sends the robot
    adapter's own readings with each observation (found by envs.robots.conformance)."""
    from envs.robots.conformance import check_adapter
    from tests.robots.test_conformance import JOINT_SAFETY, FakeJointArm

    robot, endpoint = FakeJointArm(), free_endpoint()
    with serving(robot, endpoint, watchdog_timeout_s=5.0, safety=JOINT_SAFETY):
        client = BridgeClient(endpoint, timeout_s=5.0)
        findings = check_adapter(client, JOINT_SAFETY, send_hold=True)
    assert [f.check for f in findings if not f.ok] == [], findings
    np.testing.assert_allclose(robot.q, [0.4, -0.7], atol=1e-6)  # the hold held
