"""``python -m envs.robots.conformance --robot <name | module:Class>``: check an adapter against
the contract (``envs.robots.adapter``) before it drives anything.

Run it first on a new arm. Nothing moves: the checks connect, read observations, ask for the
hold action and stop; ``--send-hold`` also sends the hold action once through the safety layer
(zero motion by the contract, which is what it checks). Each check prints one line; the exit
status is 1 when any fails. From Python: ``check_adapter(adapter, safety)`` returns the
findings.

What it checks: connect and status, the action spec and observation features, observations
that match the features (dtypes, shapes, finite proprio, capture times that are monotonic,
fresh and not in the future); the end-effector position (``ee_delta``) or joint positions
(joint modes) the safety layer needs; a hold action of the right shape inside the bounds, and
for ``joint_pos`` equal to the current joint positions (the default, zeros, would command a
move to zero); the safety config against the action mode; ``stop()`` from another thread,
twice; disconnect that is idempotent, then reports ``disconnected`` and refuses observations
with a ``RobotError``.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from envs.robots.adapter import ActionSpec, RobotAdapter, RobotError, RobotState
from envs.robots.safety import SafetyConfig, SafetyLayer

#: observation keys the control loop reads
OBS_KEYS = ("pixels", "proprio", "t_pixels", "t_proprio")


@dataclass(frozen=True)
class Finding:
    """One check's outcome."""

    check: str  #: short name
    ok: bool
    detail: str = ""  #: what was wrong (or what was seen)


class _Checks:
    def __init__(self) -> None:
        self.findings: list[Finding] = []

    def run(self, name: str, fn: Any) -> Any:
        """Record ``fn()``'s outcome: an AssertionError or any exception fails the check."""
        try:
            detail = fn()
        except Exception as e:  # noqa: BLE001 - every failure is a finding, not a crash
            self.findings.append(Finding(name, False, f"{type(e).__name__}: {e}"))
            return False
        self.findings.append(Finding(name, True, detail or ""))
        return True


def check_adapter(
    adapter: RobotAdapter,
    safety: SafetyConfig | None = None,
    send_hold: bool = False,
    stale_s: float = 1.0,
    safety_error: str | None = None,
) -> list[Finding]:
    """Run the contract checks on ``adapter`` (not connected yet); it is disconnected after.

    ``safety``: the robot's limits, checked against its action mode (required for
    ``send_hold``); ``stale_s``: the oldest capture time accepted as fresh; ``safety_error``:
    why the robot's limits could not be read (e.g. ``max_velocity: 0``), reported as the
    ``safety_config`` check's failure.
    """
    c = _Checks()
    state: dict[str, Any] = {}

    def spec() -> str:
        s = adapter.action_spec
        assert isinstance(s, ActionSpec), f"action_spec is a {type(s).__name__}, not ActionSpec"
        state["spec"] = s
        return f"{s.mode}, {s.dim}-D, {s.rate_hz} Hz"

    def features() -> str:
        f = adapter.observation_features
        px, pr = f["pixels"], f["proprio"]
        shape = tuple(px["shape"])
        assert len(shape) == 3 and shape[2] == 3, f"pixels shape {shape} is not (H, W, 3)"
        assert px.get("dtype", "uint8") == "uint8", f"pixels dtype {px.get('dtype')} != uint8"
        assert len(pr["shape"]) == 1, f"proprio shape {pr['shape']} is not (P,)"
        state["pixels"], state["proprio"] = shape, tuple(pr["shape"])
        return f"pixels {shape}, proprio {tuple(pr['shape'])}"

    def connect() -> None:
        adapter.connect()
        assert adapter.connected, "connected is False after connect()"
        status = adapter.status()
        assert status.ok, f"status after connect is {status.state.value}: {status.message}"

    def observations() -> str:
        first = adapter.get_observation()
        time.sleep(0.01)
        obs = adapter.get_observation()
        now = time.monotonic()
        for o in (first, obs):
            missing = [k for k in OBS_KEYS if k not in o]
            assert not missing, f"observation lacks {missing}"
            px, pr = np.asarray(o["pixels"]), np.asarray(o["proprio"])
            assert px.dtype == np.uint8, f"pixels dtype {px.dtype} != uint8"
            assert px.shape == state["pixels"], f"pixels {px.shape} != features {state['pixels']}"
            assert pr.dtype == np.float32, f"proprio dtype {pr.dtype} != float32"
            assert pr.shape == state["proprio"], f"proprio {pr.shape} != features"
            assert np.all(np.isfinite(pr)), "proprio is not finite"
            for k in ("t_pixels", "t_proprio"):
                t = float(o[k])
                assert t <= now + 1e-3, f"{k} is {t - now:.3f} s in the future (time.monotonic())"
                assert now - t <= stale_s, f"{k} is {now - t:.3f} s old (limit {stale_s} s)"
        for k in ("t_pixels", "t_proprio"):
            assert float(obs[k]) >= float(first[k]), f"{k} went backwards between observations"
        state["obs"] = obs
        return f"{now - min(float(obs['t_pixels']), float(obs['t_proprio'])):.3f} s old"

    def positions() -> str:
        s, obs = state["spec"], state["obs"]
        if s.mode == "ee_delta":
            ee = adapter.ee_position(obs)
            assert ee is not None, "ee_position(obs) is None: the safety box needs it"
            ee = np.asarray(ee)
            assert ee.shape[0] >= s.motion_dims and np.all(np.isfinite(ee)), f"ee_position {ee}"
            return f"ee {np.round(ee, 4).tolist()}"
        q = adapter.joint_positions(obs)
        assert q is not None, "joint_positions(obs) is None: the joint limits need them"
        q = np.asarray(q)
        assert q.shape == (s.dim,) and np.all(np.isfinite(q)), f"joint_positions {q}"
        state["q"] = q
        return f"q {np.round(q, 4).tolist()}"

    def hold() -> None:
        s = state["spec"]
        a = np.asarray(adapter.hold_action())
        assert a.shape == (s.dim,), f"hold_action shape {a.shape} != ({s.dim},)"
        assert a.dtype == np.float32, f"hold_action dtype {a.dtype} != float32"
        low, high = np.asarray(s.low), np.asarray(s.high)
        assert np.all((a >= low) & (a <= high)), f"hold_action {a.tolist()} is outside the bounds"
        if s.mode == "joint_pos" and "q" in state:
            gap = float(np.max(np.abs(a - state["q"])))
            assert gap <= 1e-3, (
                f"hold_action is {gap:.4f} from the current joint positions: a joint_pos robot "
                "must hold where it is (override hold_action; zeros would command a move to zero)"
            )
        state["hold"] = a

    def limits() -> None:
        if safety_error is not None:
            raise ValueError(safety_error)
        SafetyLayer(safety, state["spec"])  # refuses a missing or bad limit for this mode

    def send() -> None:
        s, obs = state["spec"], adapter.get_observation()
        layer = SafetyLayer(safety, s)  # the hold action goes through the safety layer
        safe = layer.filter(state["hold"], adapter.ee_position(obs), adapter.joint_positions(obs))
        applied = np.asarray(adapter.send_action(safe, time.monotonic() + 0.5))
        assert applied.shape == (s.dim,), f"send_action returned shape {applied.shape}"

    def stop() -> None:
        errors: list[BaseException] = []

        def from_thread() -> None:
            try:
                adapter.stop()
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        t = threading.Thread(target=from_thread)
        t.start()
        t.join(10.0)
        assert not t.is_alive(), "stop() from another thread did not return within 10 s"
        assert not errors, f"stop() from another thread raised {errors[0]!r}"
        adapter.stop()  # and again: stopping a stopped robot is fine

    def disconnect() -> None:
        adapter.disconnect()
        assert not adapter.connected, "connected is True after disconnect()"
        adapter.disconnect()  # idempotent
        state_now = adapter.status().state
        assert state_now is RobotState.DISCONNECTED, f"status after disconnect is {state_now.value}"
        try:
            adapter.get_observation()
        except RobotError:
            return
        raise AssertionError("get_observation() after disconnect did not raise a RobotError")

    connected = c.run("connect", connect)  # a bridge knows its spec only once connected
    if connected and c.run("action_spec", spec) and c.run("observation_features", features):
        if c.run("observations", observations):
            c.run("ee_or_joint_positions", positions)
        c.run("hold_action", hold)
        if safety is not None or safety_error is not None:
            if c.run("safety_config", limits) and send_hold and "hold" in state:
                c.run("send_hold", send)
        c.run("stop", stop)
    if connected:
        c.run("disconnect", disconnect)
    return c.findings


def _error(line: str) -> int:
    print(f"error: {line}", file=sys.stderr)
    return 2


def read_robot_config(path: str) -> dict[str, Any]:
    """A ``configs/robot/*.yaml`` as a mapping; ``ValueError`` (one line) when it cannot be."""
    import yaml

    if not Path(path).is_file():
        raise ValueError(f"--robot-config {path} does not exist: pass a configs/robot/*.yaml")
    try:
        cfg = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"--robot-config {path} is not readable YAML ({first}): fix it") from e
    if not isinstance(cfg, dict):
        raise ValueError(f"--robot-config {path} is not a mapping of name, options and safety")
    if not isinstance(cfg.get("options") or {}, dict):
        raise ValueError(f"--robot-config {path}: options must be a mapping of adapter kwargs")
    return cfg


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--robot", required=True, help="an envs.robots name or module:Class")
    p.add_argument("--options", default="{}", help="adapter constructor kwargs, as JSON")
    p.add_argument(
        "--robot-config", default=None, help="a configs/robot/*.yaml: name, options and safety"
    )
    p.add_argument("--send-hold", action="store_true", help="also send the hold action once")
    a = p.parse_args(argv)
    if a.send_hold and not a.robot_config:
        return _error(
            "--send-hold needs --robot-config (the safety limits the hold passes through): "
            "add --robot-config configs/robot/<robot>.yaml"
        )
    from envs import robots

    try:
        options = json.loads(a.options)
    except json.JSONDecodeError as e:
        return _error(
            f'--options is not JSON ({e}): pass an object, e.g. \'{{"host": "10.0.0.2"}}\''
        )
    if not isinstance(options, dict):
        return _error(f"--options {a.options} is not a JSON object of adapter kwargs")
    safety, safety_error = None, None
    if a.robot_config:
        from agent.config import to_dataclass

        try:
            cfg = read_robot_config(a.robot_config)
        except ValueError as e:
            return _error(str(e))
        options = {**(cfg.get("options") or {}), **options}
        try:  # a bad limit is a failed check (its FAIL line), not a crash
            if not isinstance(cfg.get("safety"), dict):
                raise ValueError(f"{a.robot_config} has no safety block: set every limit")
            safety = to_dataclass(SafetyConfig, cfg["safety"], "safety")
        except ValueError as e:
            safety_error = str(e)
    try:
        adapter = robots.make(a.robot, **options)
    except (ValueError, ImportError, TypeError) as e:
        return _error(f"cannot build robot {a.robot!r}: {e}")
    findings = check_adapter(adapter, safety, a.send_hold, safety_error=safety_error)
    for f in findings:
        print(f"{'ok  ' if f.ok else 'FAIL'} {f.check}" + (f": {f.detail}" if f.detail else ""))
    failed = [f.check for f in findings if not f.ok]
    print(
        f"{len(findings) - len(failed)} of {len(findings)} checks passed"
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
