"""A network bridge: the robot-side ``BridgeServer`` serves an adapter behind the safety
layer (a ``SafeRobot``), the agent-side ``BridgeClient`` is an adapter itself. ZeroMQ
REQ/REP, JSON messages, never pickle.

Run the robot side next to the arm (binds 127.0.0.1 unless told otherwise), with the robot
config ``agent.control`` uses: its name, options and ``safety:`` limits. Every command that
reaches the port passes those limits on the robot's side, whatever the client is; without a
robot config the server refuses to start::

    python -m envs.robots.bridge --robot-config configs/robot/sim_arm.yaml \
        --endpoint tcp://127.0.0.1:5555 [--option task=arm_push] [--option 'home=[0, 0, 0.1]']

Messages (``PROTOCOL_VERSION`` 1), validated on both ends by ``validate_request`` /
``validate_reply``::

    request  {"v": 1, "id": int, "method": str, "args": {...}}
    reply    {"v": 1, "id": int, "ok": true, "result": ...}
             {"v": 1, "id": int, "ok": false, "error": {"type": str, "message": str}}

Arrays travel as ``{"__ndarray__": {"dtype", "shape", "b64"}}`` (raw bytes, base64; dtypes
uint8 / float32 / float64 only). Clocks are not shared: observations carry their age and
actions their time-to-target, and each side converts to its own ``time.monotonic()``.

Every client call has a timeout. On a timeout the client raises ``RobotConnectionError``,
reports ``disconnected`` and recreates its socket (a REQ socket that missed a reply is stuck).
The server stops the robot itself when commands stop arriving (its ``Watchdog``), so a dead
agent leaves the arm at rest; commands pass again after a ``rearm`` request. A client reads
the trip with ``watchdog_tripped`` (from ``status``), and ``SafeRobot.rearm()`` on the agent
side forwards the rearm, so the next run's start rearms it like a local watchdog.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import math
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import zmq

from envs.robots.adapter import (
    ActionSpec,
    RobotAdapter,
    RobotConnectionError,
    RobotError,
    RobotState,
    RobotStatus,
)
from envs.robots.safety import ActionRejected, SafeRobot, SafetyConfig, Watchdog

PROTOCOL_VERSION = 1
DEFAULT_ENDPOINT = "tcp://127.0.0.1:5555"
DTYPES = ("uint8", "float32", "float64")
#: method -> {arg name: allowed python types after decoding}
METHODS: dict[str, dict[str, tuple[type, ...]]] = {
    "hello": {},
    "get_observation": {},
    "send_action": {"action": (np.ndarray,), "t_target_in": (float, int, type(None))},
    "stop": {},
    "status": {},
    "reset": {},
    "hold_action": {},
    "rearm": {},
}
#: error types a reply may name, and the exception the client raises for each
ERRORS: dict[str, type[Exception]] = {
    "RobotError": RobotError,
    "RobotConnectionError": RobotConnectionError,
    "ActionRejected": ActionRejected,
    "ValueError": ValueError,
    "ProtocolError": ValueError,
}
log = logging.getLogger(__name__)


class ProtocolError(ValueError):
    """A message that does not follow the bridge schema."""


# ---- encoding -----------------------------------------------------------------------
def encode(obj: Any) -> Any:
    """JSON-ready copy of ``obj`` (arrays become base64 raw bytes with dtype and shape)."""
    if isinstance(obj, np.ndarray):
        if obj.dtype.name not in DTYPES:
            raise ProtocolError(f"array dtype {obj.dtype} cannot travel: use one of {DTYPES}")
        a = np.ascontiguousarray(obj)
        b64 = base64.b64encode(a.tobytes()).decode("ascii")
        return {"__ndarray__": {"dtype": a.dtype.name, "shape": list(a.shape), "b64": b64}}
    if isinstance(obj, dict):
        return {str(k): encode(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [encode(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def decode(obj: Any) -> Any:
    if isinstance(obj, dict):
        if "__ndarray__" in obj:
            return _decode_array(obj["__ndarray__"])
        return {k: decode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [decode(v) for v in obj]
    return obj


def _decode_array(d: Any) -> np.ndarray:
    if not isinstance(d, dict) or set(d) != {"dtype", "shape", "b64"}:
        raise ProtocolError("an __ndarray__ needs exactly dtype, shape and b64")
    if d["dtype"] not in DTYPES:
        raise ProtocolError(f"array dtype {d['dtype']!r} is not allowed: use one of {DTYPES}")
    shape = d["shape"]
    if not isinstance(shape, list) or not all(isinstance(s, int) and s >= 0 for s in shape):
        raise ProtocolError(f"array shape {shape!r} must be a list of non-negative ints")
    raw = base64.b64decode(d["b64"], validate=True)
    dtype = np.dtype(d["dtype"])
    if len(raw) != int(np.prod(shape)) * dtype.itemsize:
        raise ProtocolError(f"array of shape {shape} {dtype} does not match {len(raw)} bytes")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


def dumps(msg: dict[str, Any]) -> bytes:
    return json.dumps(encode(msg), allow_nan=True).encode("utf-8")


def loads(data: bytes) -> dict[str, Any]:
    try:
        msg = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ProtocolError(f"message is not JSON: {e}") from e
    if not isinstance(msg, dict):
        raise ProtocolError("message must be a JSON object")
    if msg.get("v") != PROTOCOL_VERSION:
        raise ProtocolError(
            f"protocol version {msg.get('v')!r}, this side speaks {PROTOCOL_VERSION}"
        )
    if not isinstance(msg.get("id"), int):
        raise ProtocolError("message needs an integer id")
    return msg


def validate_request(msg: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    method, args = msg.get("method"), msg.get("args")
    if method not in METHODS:
        raise ProtocolError(f"unknown method {method!r}: use one of {sorted(METHODS)}")
    if not isinstance(args, dict):
        raise ProtocolError("args must be an object")
    args = decode(args)
    schema = METHODS[method]
    if set(args) != set(schema):
        raise ProtocolError(f"{method} takes args {sorted(schema)}, got {sorted(args)}")
    for name, types in schema.items():
        if not isinstance(args[name], types):
            raise ProtocolError(f"{method}.{name} has type {type(args[name]).__name__}")
    return method, args


def validate_reply(msg: dict[str, Any], want_id: int) -> Any:
    if msg["id"] != want_id:
        raise ProtocolError(f"reply id {msg['id']} does not answer request {want_id}")
    if msg.get("ok") is True and "result" in msg:
        return decode(msg["result"])
    err = msg.get("error")
    if msg.get("ok") is False and isinstance(err, dict) and {"type", "message"} <= set(err):
        raise ERRORS.get(str(err["type"]), RobotError)(str(err["message"]))
    raise ProtocolError("reply needs ok=true with result, or ok=false with error{type, message}")


# ---- robot side -----------------------------------------------------------------------
class BridgeServer:
    """Serves one ``SafeRobot`` on ``endpoint`` (a bare adapter is refused: every command
    passes the safety layer here, on the robot's side, at most one per robot period); stops
    it when commands stop arriving. The caller connects the robot; ``serve`` binds (or
    ``bind`` first, before the arm moves)."""

    def __init__(
        self,
        robot: SafeRobot,
        endpoint: str = DEFAULT_ENDPOINT,
        watchdog_timeout_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not isinstance(robot, SafeRobot):
            raise TypeError(
                f"BridgeServer serves a SafeRobot, got {type(robot).__name__}: wrap the adapter "
                "in the safety layer, SafeRobot(adapter, safety_config)"
            )
        self.robot, self.endpoint, self.clock = robot, endpoint, clock
        self.watchdog = Watchdog(watchdog_timeout_s, robot.stop, clock)
        self._armed = False  # the watchdog runs from the first command on
        self._ctx: zmq.Context | None = None
        self._sock: zmq.Socket | None = None
        self._last_send = -math.inf  # when the last command was forwarded (pacing)
        self.sleep: Callable[[float], None] = time.sleep

    def handle(self, data: bytes) -> bytes:
        """One request in, one reply out; never raises."""
        req_id = 0
        try:
            msg = loads(data)
            req_id = msg["id"]
            method, args = validate_request(msg)
            result = getattr(self, f"_do_{method}")(**args)
            reply = {"v": PROTOCOL_VERSION, "id": req_id, "ok": True, "result": result}
        except Exception as e:  # noqa: BLE001 - every failure goes back to the client as a reply
            name = type(e).__name__ if type(e).__name__ in ERRORS else "RobotError"
            if isinstance(e, ProtocolError):
                name = "ProtocolError"
            log.warning("bridge request failed: %s: %s", name, e)
            reply = {
                "v": PROTOCOL_VERSION,
                "id": req_id,
                "ok": False,
                "error": {"type": name, "message": " ".join(str(e).split())},  # one line
            }
        return dumps(reply)

    def _do_hello(self) -> dict[str, Any]:
        return {
            "action_spec": self.robot.action_spec.to_dict(),
            "observation_features": self.robot.observation_features,
        }

    def _do_get_observation(self) -> dict[str, Any]:
        obs = self.robot.get_observation()
        now = self.clock()
        ee, q = self.robot.ee_position(obs), self.robot.joint_positions(obs)
        return {
            "pixels": obs["pixels"],
            "proprio": np.asarray(obs["proprio"], np.float32),
            "age_pixels": now - obs["t_pixels"],
            "age_proprio": now - obs["t_proprio"],
            # what the client's safety layer checks, read by the robot's own adapter
            "ee_position": None if ee is None else np.asarray(ee, np.float64),
            "joint_positions": None if q is None else np.asarray(q, np.float64),
        }

    def _do_send_action(self, action: np.ndarray, t_target_in: float | None) -> dict[str, Any]:
        self.watchdog.feed()  # raises while tripped: the client must rearm
        self._armed = True
        t_target = None if t_target_in is None else self.clock() + t_target_in
        # the safety layer caps motion per robot period: a client sending faster would move
        # the arm faster than max_velocity, so commands are paced to the robot's rate
        wait = self._last_send + 1.0 / self.robot.action_spec.rate_hz - self.clock()
        if wait > 0:
            self.sleep(wait)
        self._last_send = self.clock()  # when it is forwarded: the next one a period later
        applied = self.robot.send_action(action, t_target)
        return {"applied": np.asarray(applied, np.float32)}

    def _do_stop(self) -> dict[str, Any]:
        self.robot.stop()
        self._armed = False  # a stopped robot needs no watchdog until the next command
        return {}

    def _do_status(self) -> dict[str, Any]:
        s = self.robot.status()
        tripped = self.watchdog.tripped or self.robot.watchdog_tripped
        return {
            "state": s.state.value,
            "command_age_s": s.command_age_s,
            "message": s.message,
            "watchdog_tripped": tripped,  # commands are refused until a rearm request
        }

    def _do_reset(self) -> dict[str, Any]:
        self.robot.reset()
        return {}

    def _do_hold_action(self) -> dict[str, Any]:
        return {"action": np.asarray(self.robot.hold_action(), np.float32)}

    def _do_rearm(self) -> dict[str, Any]:
        self.watchdog.rearm()
        self.robot.rearm()  # the safety layer's own watchdog too, when it has one running
        self._armed = False  # armed again by the next command
        log.info("bridge: watchdog rearmed by the client")
        return {}

    def bind(self) -> None:
        """Bind ``endpoint``; raises one ``ValueError`` line when it cannot. Idempotent."""
        if self._sock is not None:
            return
        ctx = zmq.Context()
        sock = ctx.socket(zmq.REP)
        sock.setsockopt(zmq.LINGER, 0)
        try:
            sock.bind(self.endpoint)
        except zmq.ZMQError as e:
            sock.close(0)
            ctx.term()
            raise ValueError(
                f"cannot bind endpoint {self.endpoint} ({e}): pass --endpoint with a free port "
                f"on an address of this computer, e.g. {DEFAULT_ENDPOINT}"
            ) from e
        self._ctx, self._sock = ctx, sock

    def close(self) -> None:
        """Release the socket (idempotent); ``serve`` does this on its way out."""
        if self._sock is not None:
            self._sock.close(0)
            self._sock = None
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None

    def serve(self, halt: threading.Event | None = None, poll_ms: int = 50) -> None:
        """Answer requests until ``halt`` is set (or forever); stops the robot on the way out."""
        self.bind()
        sock = self._sock
        assert sock is not None
        try:
            while halt is None or not halt.is_set():
                if sock.poll(poll_ms):
                    sock.send(self.handle(sock.recv()))
                if self._armed and self.watchdog.check():
                    self._armed = False
                    log.warning(
                        "bridge: no command for %.2f s: robot stopped", self.watchdog.timeout_s
                    )
        finally:
            self.close()
            self.robot.stop()


def run_server(
    robot: str,
    options: dict[str, Any],
    endpoint: str,
    watchdog_s: float,
    safety: SafetyConfig | None = None,
) -> None:
    """Build the adapter behind the safety layer (``safety``: the robot config's limits,
    required), bind, connect and serve (a ``multiprocessing`` target; also the CLI). Bad input
    raises one ``ValueError`` line, before the arm connects where it can."""
    from envs.robots import make

    if not isinstance(safety, SafetyConfig):
        raise ValueError(
            "the bridge server sends commands only through the safety layer and got no limits: "
            "pass the robot config, --robot-config configs/robot/<robot>.yaml (the file "
            "agent.control uses), or run_server(..., safety=SafetyConfig(...))"
        )
    if not (isinstance(watchdog_s, int | float) and math.isfinite(watchdog_s) and watchdog_s > 0):
        raise ValueError(f"--watchdog-s={watchdog_s}: use a positive number of seconds, e.g. 0.5")
    if robot == "bridge":
        raise ValueError(
            "robot=bridge: the server serves the arm itself, not another bridge: pass the "
            "arm's own robot config (e.g. configs/robot/sim_arm.yaml)"
        )
    try:
        adapter = make(robot, **options)
    except (TypeError, ImportError) as e:
        raise ValueError(
            f"cannot build robot {robot!r} with options {options} ({e}): check the options "
            "(--option key=value, the config's options:) against the adapter, and that its "
            "driver is installed"
        ) from e
    safe = SafeRobot(adapter, safety, watchdog_thread=False)  # the server's watchdog guards
    server = BridgeServer(safe, endpoint, watchdog_s)
    server.bind()  # a bad endpoint fails before the arm connects
    try:
        with safe:  # refuses limits that do not fit the robot's action mode
            log.info("bridge: serving %s on %s behind the safety layer", robot, endpoint)
            server.serve()
    finally:
        server.close()


# ---- agent side -----------------------------------------------------------------------
class BridgeClient(RobotAdapter):
    """A remote adapter over ZeroMQ; every call times out after ``timeout_s``."""

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        timeout_s: float = 1.0,
        connect_timeout_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoint, self.timeout_s, self.clock = endpoint, timeout_s, clock
        self.connect_timeout_s = connect_timeout_s
        self._ctx: zmq.Context | None = None
        self._sock: zmq.Socket | None = None
        self._lock = threading.RLock()  # zmq sockets are not thread-safe: one call at a time
        self._id = 0
        self._spec: ActionSpec | None = None
        self._features: dict[str, dict[str, Any]] = {}
        self._lost: str | None = None  # why the link is considered down

    @property
    def action_spec(self) -> ActionSpec:
        if self._spec is None:
            raise RobotConnectionError("bridge client is not connected: call connect() first")
        return self._spec

    @property
    def observation_features(self) -> dict[str, dict[str, Any]]:
        return self._features

    @property
    def connected(self) -> bool:
        return self._sock is not None and self._spec is not None

    def _open(self) -> None:
        if self._ctx is None:
            self._ctx = zmq.Context()
        self._sock = self._ctx.socket(zmq.REQ)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.connect(self.endpoint)

    def _close_socket(self) -> None:
        if self._sock is not None:
            self._sock.close(0)
        self._sock = None

    def connect(self) -> None:
        """Open the socket and ``hello`` until the server answers or ``connect_timeout_s``."""
        with self._lock:
            deadline = self.clock() + self.connect_timeout_s
            self._open()
            while True:
                try:
                    hello = self._call("hello", {}, timeout_s=min(self.timeout_s, 1.0))
                    break
                except RobotConnectionError:
                    if self.clock() > deadline:
                        self._disconnect()
                        raise
            self._spec = ActionSpec.from_dict(hello["action_spec"])
            self._features = hello["observation_features"]
            self._lost = None

    def _disconnect(self) -> None:
        with self._lock:
            self._close_socket()
            self._spec = None
            if self._ctx is not None:
                self._ctx.term()
                self._ctx = None

    def _call(self, method: str, args: dict[str, Any], timeout_s: float | None = None) -> Any:
        timeout = self.timeout_s if timeout_s is None else timeout_s
        with self._lock:
            if self._sock is None:
                raise RobotConnectionError(
                    f"robot bridge {self.endpoint} is not connected: call connect() first"
                )
            self._id += 1
            req = {"v": PROTOCOL_VERSION, "id": self._id, "method": method, "args": args}
            data = dumps(req)
            validate_request(loads(data))  # what leaves this side follows the schema too
            self._sock.send(data)
            if not self._sock.poll(int(timeout * 1000)):
                self._close_socket()
                self._open()  # a REQ socket that missed its reply is stuck: start afresh
                self._lost = (
                    f"robot bridge {self.endpoint} did not answer {method} within {timeout:g} s: "
                    "check that the robot-side server runs (python -m envs.robots.bridge)"
                )
                raise RobotConnectionError(self._lost)
            result = validate_reply(loads(self._sock.recv()), self._id)
            self._lost = None
            return result

    def get_observation(self) -> dict[str, Any]:
        t_send = self.clock()
        r = self._call("get_observation", {})
        # ages are measured on the robot; from the send time they are conservative (older)
        obs = {
            "pixels": r["pixels"],
            "proprio": r["proprio"],
            "t_pixels": t_send - float(r["age_pixels"]),
            "t_proprio": t_send - float(r["age_proprio"]),
        }
        for k in ("ee_position", "joint_positions"):  # the robot adapter's own readings
            if r.get(k) is not None:
                obs[k] = r[k]
        return obs

    def send_action(self, action: np.ndarray, t_target: float | None = None) -> np.ndarray:
        t_in = None if t_target is None else float(t_target - self.clock())
        args = {"action": np.asarray(action, np.float32), "t_target_in": t_in}
        return self._call("send_action", args)["applied"]

    def stop(self) -> None:
        """Ask the robot to stop; on a lost link, log it (the server's watchdog stops it)."""
        try:
            self._call("stop", {})
        except RobotConnectionError as e:
            log.warning("stop() could not reach the robot (%s); its watchdog will stop it", e)

    def status(self) -> RobotStatus:
        if self._lost is not None or self._sock is None:
            return RobotStatus(RobotState.DISCONNECTED, None, self._lost or "not connected")
        try:
            r = self._call("status", {})
        except RobotConnectionError as e:
            return RobotStatus(RobotState.DISCONNECTED, None, str(e))
        return RobotStatus(RobotState(r["state"]), r["command_age_s"], r["message"])

    def reset(self) -> None:
        self._call("reset", {}, timeout_s=max(self.timeout_s, 30.0))

    def rearm(self) -> None:
        """Let the server pass commands again after its watchdog tripped."""
        self._call("rearm", {})

    @property
    def watchdog_tripped(self) -> bool:
        """Whether the server's watchdog stopped the arm (its commands are refused until
        ``rearm()``); False when not connected or when the server does not answer (``status``
        then reports ``disconnected``)."""
        if not self.connected:
            return False
        try:
            r = self._call("status", {})
        except RobotConnectionError:
            return False
        return bool(r.get("watchdog_tripped", False))

    def hold_action(self) -> np.ndarray:
        return self._call("hold_action", {})["action"]

    def ee_position(self, obs: dict[str, Any]) -> np.ndarray | None:
        if "ee_position" in obs:  # read by the robot's adapter on the server
            return np.asarray(obs["ee_position"], np.float64)
        if self._spec is not None and self._spec.mode == "ee_delta":  # an older server
            return np.asarray(obs["proprio"][:3], np.float64)
        return None

    def joint_positions(self, obs: dict[str, Any]) -> np.ndarray | None:
        q = obs.get("joint_positions")  # read by the robot's adapter on the server
        return None if q is None else np.asarray(q, np.float64)


# ---- command line -----------------------------------------------------------------------
ROBOT_CONFIG_KEYS = ("name", "options", "safety")


def load_robot_config(path: str) -> tuple[str, dict[str, Any], SafetyConfig]:
    """``(name, options, safety)`` of a ``configs/robot/*.yaml``; one ``ValueError`` line
    (``FileNotFoundError`` for a missing file) when it is not usable."""
    import yaml

    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(
            f"robot config {path} does not exist: pass a configs/robot/<robot>.yaml "
            "(name, options and every safety limit)"
        )
    try:
        cfg = yaml.safe_load(file.read_text())
    except yaml.YAMLError as e:
        raise ValueError(f"robot config {path} is not valid YAML ({e}): fix the file") from e
    if not isinstance(cfg, dict):
        raise ValueError(f"robot config {path} is not a mapping: see configs/robot/sim_arm.yaml")
    unknown = sorted(set(cfg) - set(ROBOT_CONFIG_KEYS))
    if unknown:
        raise ValueError(
            f"unknown key {unknown[0]} in robot config {path}: valid keys are "
            f"{list(ROBOT_CONFIG_KEYS)}"
        )
    if cfg.get("safety") is None:
        raise ValueError(
            f"robot config {path} has no safety block: every limit is required (copy the block "
            "of configs/robot/sim_arm.yaml and set it for your cell)"
        )
    options = cfg.get("options") or {}
    if not isinstance(options, dict):
        raise ValueError(f"options in robot config {path} must be a mapping of adapter kwargs")
    return str(cfg.get("name") or ""), options, SafetyConfig.from_dict(cfg["safety"])


def parse_option(text: str) -> tuple[str, Any]:
    """``key=value`` -> ``(key, value)``: the value as JSON when it is valid JSON
    (``seed=3``, ``'home=[0, 0, 0.1]'``), else the plain string (``task=arm_push``)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(
            f"--option {text!r} is not key=value: write e.g. --option task=arm_push or "
            "--option 'home=[0, 0, 0.1]'"
        )
    try:
        return key.strip(), json.loads(raw)
    except json.JSONDecodeError:
        return key.strip(), raw


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        description="Serve a robot adapter over ZeroMQ (JSON), behind its safety limits."
    )
    p.add_argument(
        "--robot-config",
        default=None,
        help="configs/robot/<robot>.yaml (required): the adapter name, its options and the "
        "safety limits every command passes, as agent.control uses them",
    )
    p.add_argument(
        "--robot", default=None, help="adapter name or module:Class (default: the config's name)"
    )
    p.add_argument("--endpoint", default=DEFAULT_ENDPOINT)
    p.add_argument(
        "--watchdog-s",
        type=float,
        default=None,
        help="stop after this long idle (default: the config's safety.watchdog_timeout_s)",
    )
    p.add_argument(
        "--option",
        action="append",
        default=[],
        help="adapter option key=value, over the config's options; the value is read as JSON "
        "when it is valid JSON, else as a plain string (task=arm_push, 'home=[0, 0, 0.1]')",
    )
    a = p.parse_args(argv)
    try:
        if a.robot_config is None:
            raise ValueError(
                "the bridge server needs the robot's safety limits: pass --robot-config "
                "configs/robot/<robot>.yaml (e.g. configs/robot/sim_arm.yaml)"
            )
        name, options, safety = load_robot_config(a.robot_config)
        options = {**options, **dict(parse_option(o) for o in a.option)}
        robot = a.robot or name
        if not robot:
            raise ValueError(f"robot config {a.robot_config} has no name: set name: or --robot")
        logging.basicConfig(level=logging.INFO, force=True)  # an import may have set one up
        watchdog_s = safety.watchdog_timeout_s if a.watchdog_s is None else a.watchdog_s
        run_server(robot, options, a.endpoint, watchdog_s, safety)
    except (ValueError, FileNotFoundError, RobotError) as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)  # one line
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print("interrupted: the robot was stopped", file=sys.stderr)
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
