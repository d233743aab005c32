"""The safety layer between the agent and a robot adapter, and the command watchdog.

``SafetyLayer.filter`` applies, in this order: reject non-finite actions (``ActionRejected``,
never forwarded); clip to the action bounds; cap the change per step; limit velocity and
acceleration (commanded motion per step), braking before the walls (per axis, the speed
toward a face of the box or a joint limit is kept to what the acceleration cap can shed
before reaching it: ``SafetyLayer.braking_speed``); keep the end effector inside the
workspace box (``ee_delta``: the next ee ``ee + delta * scale`` must stay inside, the delta is
scaled along its direction) or the joints inside their limits minus a margin (joint modes).
The box comes last because it is the hard limit: where it and the per-step cap disagree, the
box wins.
An arm already outside the box (or the joint margin) may stay or move back in on that axis,
never jump: every output keeps the speed cap.

The box (and, for ``joint_vel``, the joint range) is checked shrunk by ``travel_margin`` per
side, by default one step's largest travel, ``max_velocity / rate_hz``: the position checked
is the one observed at the start of the tick, while a real arm may still be finishing the
previous command (at most one step of travel) and adapters add the delta to the pose they
read when the command lands. An adapter whose ``ee_position`` is the pose each delta is
added to (the simulated arm reports its running target) has nothing in flight: its config
sets ``travel_margin: 0``.
``joint_pos`` targets are absolute, so their range is not shrunk.

``Watchdog`` calls ``stop()`` once when no fresh command arrived within its timeout and lets
commands through again only after an explicit ``rearm()``.

``SafeRobot`` wraps any adapter with both; it refuses to connect when a limit is missing,
zero or infinite. Each command is checked against an observation taken after the previous
command was sent (``send_action`` reads a fresh one when the last was already used), so
commands sent back to back cannot walk the arm out of the box. ``rearm()`` and
``watchdog_tripped`` also reach a watchdog inside the wrapped adapter (the bridge server's).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from envs.robots.adapter import ActionSpec, RobotAdapter, RobotError, RobotStatus

log = logging.getLogger(__name__)

Clock = Callable[[], float]


class ActionRejected(ValueError):
    """An action the safety layer refuses to forward (NaN / inf, or the watchdog tripped)."""


@dataclass(frozen=True)
class SafetyConfig:
    """Safety limits (the ``safety`` block of ``configs/robot/*.yaml``); all required."""

    max_action_change: float | None = None  #: largest change of any action entry per step
    max_velocity: float | None = None  #: m/s (ee_delta) or joint units/s, commanded
    max_acceleration: float | None = None  #: m/s^2 (ee_delta) or joint units/s^2
    watchdog_timeout_s: float | None = None  #: stop when no command arrives for this long
    workspace_low: tuple[float, ...] | None = None  #: (3,) end-effector box, m (ee_delta)
    workspace_high: tuple[float, ...] | None = None  #: (3,) end-effector box, m (ee_delta)
    joint_limits: tuple[tuple[float, float], ...] | None = None  #: (J, 2) for joint modes
    joint_margin: float = 0.0  #: keep this far inside the joint limits
    #: how far inside the box (ee_delta, m) or the joint range (joint_vel) the observed
    #: position is kept, for motion still in flight when a command lands (module docstring);
    #: None: one step of travel, ``max_velocity / rate_hz``; 0 for an adapter that reports
    #: the pose each delta is added to (the simulated arm: its running target)
    travel_margin: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_action_change", "max_velocity", "max_acceleration", "watchdog_timeout_s"):
            _positive_finite(name, getattr(self, name))
        if not (math.isfinite(self.joint_margin) and self.joint_margin >= 0):
            raise ValueError(f"safety.joint_margin={self.joint_margin}: use a finite value >= 0")
        tm = self.travel_margin
        if tm is not None and not (math.isfinite(tm) and tm >= 0):
            raise ValueError(
                f"safety.travel_margin={tm}: use a finite value >= 0, or null for one step of "
                "travel (max_velocity / rate_hz)"
            )
        if (self.workspace_low is None) != (self.workspace_high is None):
            missing = "workspace_low" if self.workspace_low is None else "workspace_high"
            raise ValueError(f"safety.{missing} is missing: set both workspace bounds")
        if self.workspace_low is not None:
            lo, hi = np.asarray(self.workspace_low, float), np.asarray(self.workspace_high, float)
            if lo.shape != (3,) or hi.shape != (3,):
                raise ValueError("safety.workspace_low/high must have 3 entries (x, y, z in m)")
            if not np.all(np.isfinite(lo) & np.isfinite(hi)) or not np.all(hi - lo > 0):
                raise ValueError(
                    f"safety.workspace_low {_plain(lo)} / workspace_high {_plain(hi)}: need "
                    "finite bounds with low < high on every axis"
                )
        if self.joint_limits is not None:
            jl = np.asarray(self.joint_limits, float)
            if jl.ndim != 2 or jl.shape[1] != 2 or not np.all(np.isfinite(jl)):
                raise ValueError("safety.joint_limits must be finite [low, high] pairs")
            if not np.all(jl[:, 1] - jl[:, 0] > 2 * self.joint_margin):
                raise ValueError("safety.joint_limits: every range must exceed 2 * joint_margin")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "safety") -> SafetyConfig:
        """The limits of a robot config's ``safety:`` block (YAML lists become tuples); an
        unknown key or a value that is not a number fails with one line naming it."""
        if not isinstance(d, Mapping):
            raise ValueError(f"{where} must be a mapping of limits: see configs/robot/sim_arm.yaml")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(d) - set(names))
        if unknown:
            raise ValueError(f"unknown config key {where}.{unknown[0]}: valid keys are {names}")
        return cls(**{k: _numbers(v, f"{where}.{k}") for k, v in d.items()})

    def step_travel(self, spec: ActionSpec) -> float:
        """The margin kept for motion in flight: ``travel_margin``, by default the largest
        commanded motion in one control step, ``max_velocity / rate_hz``."""
        if self.travel_margin is not None:
            return float(self.travel_margin)
        return float(self.max_velocity) / spec.rate_hz

    def check_for(self, spec: ActionSpec) -> None:
        """Raise ValueError when a limit this action mode needs is missing, or when the range
        left after the one-step shrink (see the module docstring) is empty."""
        r = self.step_travel(spec)
        if spec.mode == "ee_delta":
            if self.workspace_low is None:
                raise ValueError("safety.workspace_low is missing: ee_delta robots need a box")
            width = np.asarray(self.workspace_high, float) - np.asarray(self.workspace_low, float)
            if np.any(width <= 2 * r):
                raise ValueError(
                    f"safety.workspace_low/high: the box ({_plain(width)} m wide) must be wider "
                    f"than twice the travel margin ({2 * r:g} m: safety.travel_margin, by default "
                    "max_velocity / rate_hz) on every axis: widen the box or lower "
                    "safety.max_velocity"
                )
        if spec.mode != "ee_delta":
            if self.joint_limits is None:
                raise ValueError(f"safety.joint_limits is missing: {spec.mode} robots need them")
            if len(self.joint_limits) != spec.dim:
                raise ValueError(
                    f"safety.joint_limits has {len(self.joint_limits)} joints, the robot {spec.dim}"
                )
        if spec.mode == "joint_vel":
            jl = np.asarray(self.joint_limits, float)
            if np.any(jl[:, 1] - jl[:, 0] <= 2 * (self.joint_margin + r)):
                raise ValueError(
                    "safety.joint_limits: every range must exceed 2 * (joint_margin + "
                    f"travel margin) = {2 * (self.joint_margin + r):g} for joint_vel: "
                    "widen the limits or lower joint_margin / max_velocity"
                )


def _plain(a: Any) -> Any:
    """Numbers as plain Python floats (lists of them), for messages: ``[0.2, 0.0]``, never
    ``[np.float64(0.2), ...]``."""
    return np.asarray(a, np.float64).round(12).tolist()


def _numbers(v: Any, key: str) -> Any:
    """A YAML value as the config wants it: numbers as floats, lists as tuples, None kept."""
    if v is None:
        return None
    if isinstance(v, str):  # YAML 1.1 reads 3e-1 (no dot) as a string
        try:
            v = float(v)
        except ValueError:
            pass
    if isinstance(v, bool) or not isinstance(v, int | float | list | tuple):
        raise ValueError(f"{key}={v!r} is not a number (or a list of numbers): fix the value")
    if isinstance(v, list | tuple):
        return tuple(_numbers(x, key) for x in v)
    return float(v)


def _positive_finite(name: str, value: Any) -> None:
    if value is None:
        raise ValueError(f"safety.{name} is missing: set it in configs/robot/<robot>.yaml")
    v = float(value)
    if v == 0 or not math.isfinite(v) or v < 0:
        raise ValueError(f"safety.{name}={value}: use a positive finite limit")


class SafetyLayer:
    """Turns a policy action into one that is safe to send; stateful (previous command).

    The workspace box (``ee_delta``) and the joint range (``joint_vel``) are enforced shrunk
    by ``travel_margin`` (default: one step's largest travel, ``max_velocity / rate_hz``) on
    every side: the ee / joints passed in were observed at the start of the tick, and a real
    arm may still travel up to one step (the previous command) before this one lands on the
    pose the adapter reads then. So by default a box of 0.30 m at 0.3 m/s and 12.5 Hz keeps
    the checked position 0.024 m inside each face; a box narrower than twice the margin is
    refused. Outside the (shrunk) range, an
    axis may stay or move back in, never jump in.
    """

    def __init__(self, cfg: SafetyConfig, spec: ActionSpec) -> None:
        cfg.check_for(spec)
        self.cfg, self.spec = cfg, spec
        self.low = np.asarray(spec.low, np.float64)
        self.high = np.asarray(spec.high, np.float64)
        self.dt = 1.0 / spec.rate_hz
        self.m = spec.motion_dims
        r = cfg.step_travel(spec)  # motion the arm may still make from the observed position
        if cfg.workspace_low is not None:
            self.box_low = np.asarray(cfg.workspace_low, np.float64) + r
            self.box_high = np.asarray(cfg.workspace_high, np.float64) - r
        if cfg.joint_limits is not None:
            jl = np.asarray(cfg.joint_limits, np.float64)
            inset = cfg.joint_margin + (r if spec.mode == "joint_vel" else 0.0)
            self.q_low, self.q_high = jl[:, 0] + inset, jl[:, 1] - inset
        self.reset()

    def reset(self, previous: np.ndarray | None = None) -> None:
        """Forget the previous command (after a stop: the robot is at rest)."""
        self.prev = None if previous is None else np.asarray(previous, np.float64).copy()
        self.prev_vel = np.zeros(self.m)

    # ---- the pipeline ---------------------------------------------------------------
    def filter(
        self,
        action: Any,
        ee_position: np.ndarray | None = None,
        joint_positions: np.ndarray | None = None,
    ) -> np.ndarray:
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (self.spec.dim,):
            raise ActionRejected(f"action has shape {a.shape}, the robot takes ({self.spec.dim},)")
        if not np.all(np.isfinite(a)):
            raise ActionRejected(f"action {a.tolist()} contains NaN or inf: not sent")
        a = np.clip(a, self.low, self.high)
        if self.prev is not None:
            c = self.cfg.max_action_change
            a = np.clip(a, self.prev - c, self.prev + c)
        if self.spec.mode == "ee_delta":
            a = self._ee_delta(a, ee_position)
        else:
            a = self._joint(a, joint_positions)
        a = np.clip(a, self.low, self.high)
        self.prev = a.copy()
        return a.astype(np.float32)

    def _limit_velocity(
        self, v: np.ndarray, pos: np.ndarray, low: np.ndarray, high: np.ndarray
    ) -> np.ndarray:
        """Cap |v|, |v - v_prev| / dt and, per axis, the speed toward a face of [low, high]
        (v: commanded motion velocity, (M,); pos: where the motion starts).

        The speed toward a face is kept to what the acceleration cap can shed before the face
        (``braking_speed``), so an arm driven at a wall slows down on its way and stops at it
        without a jump in deceleration; the hard position limit after this step then rarely
        acts. The braking budget per axis is ``max_acceleration / sqrt(M)``: braking on every
        axis at once still keeps |v - v_prev| / dt within the cap. Where the cap and the
        braking disagree (the arm moved otherwise than commanded), braking wins.
        """
        speed = float(np.linalg.norm(v))
        if speed > self.cfg.max_velocity:
            v = v * (self.cfg.max_velocity / speed)
        up = self.braking_speed(high - pos)
        down = self.braking_speed(pos - low)
        v = np.clip(v, -down, up)
        r = self.cfg.max_acceleration * self.dt  # largest |v - v_prev|
        v0 = self.prev_vel
        if np.linalg.norm(v - v0) <= r:
            return v
        c = np.clip(v0, -down, up)  # the previous velocity, braked: a start inside every cap
        if np.linalg.norm(c - v0) >= r:
            return c
        # the farthest point from c toward v within the acceleration ball around v0
        e, f = v - c, c - v0
        aa, bb, cc = float(e @ e), float(e @ f), float(f @ f) - r * r
        t = (-bb + math.sqrt(max(bb * bb - aa * cc, 0.0))) / aa
        return c + min(max(t, 0.0), 1.0) * e

    def braking_speed(self, gap: np.ndarray) -> np.ndarray:
        """The highest speed toward a face ``gap`` away (per axis) from which braking at
        ``max_acceleration / sqrt(M)`` per step stops before it, commanded motion included:
        u with u dt + u^2 / (2 a) = gap (0 at or beyond the face)."""
        a = self.cfg.max_acceleration / math.sqrt(self.m)
        g = np.maximum(np.asarray(gap, np.float64), 0.0)
        return a * (np.sqrt(self.dt * self.dt + 2.0 * g / a) - self.dt)

    def _ee_delta(self, a: np.ndarray, ee: np.ndarray | None) -> np.ndarray:
        if ee is None or not np.all(np.isfinite(ee)):
            raise ActionRejected("no finite end-effector position: cannot check the workspace")
        m, s = self.m, self.spec.scale
        ee = np.asarray(ee, np.float64)[:m]
        v = self._limit_velocity(a[:m] * s / self.dt, ee, self.box_low, self.box_high)
        d = v * self.dt  # (3,) metres this step
        # outside the box on an axis: only motion back toward it is allowed on that axis
        d = np.where((ee < self.box_low) & (d < 0) | (ee > self.box_high) & (d > 0), 0.0, d)
        lo, hi = np.minimum(self.box_low, ee), np.maximum(self.box_high, ee)
        t = 1.0
        for i in range(m):  # largest t in [0, 1] with ee + t d inside [lo, hi]
            if d[i] > 1e-12:
                t = min(t, (hi[i] - ee[i]) / d[i])
            elif d[i] < -1e-12:
                t = min(t, (lo[i] - ee[i]) / d[i])
        d = d * max(0.0, t) * (1 - 1e-9)
        self.prev_vel = d / self.dt
        out = a.copy()
        out[:m] = d / s
        return out

    def _joint(self, a: np.ndarray, q: np.ndarray | None) -> np.ndarray:
        if q is None or not np.all(np.isfinite(q)):
            raise ActionRejected("no finite joint positions: cannot check the joint limits")
        q = np.asarray(q, np.float64)
        # outside the (margin) range on a joint: it may stay or move back in, never jump in
        lo, hi = np.minimum(self.q_low, q), np.maximum(self.q_high, q)
        if self.spec.mode == "joint_pos":
            v = self._limit_velocity((a - q) / self.dt, q, self.q_low, self.q_high)
            target = np.clip(q + v * self.dt, lo, hi)
            self.prev_vel = (target - q) / self.dt
            return target
        v = self._limit_velocity(a, q, self.q_low, self.q_high)
        nxt = np.clip(q + v * self.dt, lo, hi)
        v = (nxt - q) / self.dt
        self.prev_vel = v
        return v


class Watchdog:
    """Calls ``on_timeout`` once when ``feed()`` was not called within ``timeout_s``."""

    def __init__(self, timeout_s: float, on_timeout: Callable[[], None], clock: Clock) -> None:
        self.timeout_s, self.on_timeout, self.clock = timeout_s, on_timeout, clock
        self._lock = threading.Lock()
        self._last = clock()
        self._tripped = False
        self._thread: threading.Thread | None = None
        self._halt = threading.Event()

    @property
    def tripped(self) -> bool:
        return self._tripped

    def feed(self) -> None:
        """A fresh command arrived; raises ``ActionRejected`` while tripped."""
        with self._lock:
            if self._tripped:
                raise ActionRejected("watchdog tripped (commands stopped arriving): call rearm()")
            self._last = self.clock()

    def check(self) -> bool:
        """Trip (and stop) if the timeout passed; returns whether it is tripped."""
        with self._lock:
            fire = not self._tripped and self.clock() - self._last > self.timeout_s
            if fire:
                self._tripped = True
        if fire:
            self.on_timeout()
        return self._tripped

    def rearm(self) -> None:
        with self._lock:
            self._tripped = False
            self._last = self.clock()

    def start(self, period_s: float | None = None) -> None:
        """Check in a background thread (real time) until ``close()``."""
        period = period_s or self.timeout_s / 4
        self._halt.clear()

        def run() -> None:
            while not self._halt.wait(period):
                try:
                    self.check()
                except Exception:  # a failed stop must not end the watchdog: keep guarding
                    log.exception("watchdog: on_timeout (stopping the robot) raised")

        self._thread = threading.Thread(target=run, name="watchdog", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._halt.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None


class SafeRobot(RobotAdapter):
    """An adapter whose every command passes the safety layer and feeds the watchdog."""

    def __init__(
        self,
        robot: RobotAdapter,
        cfg: SafetyConfig,
        clock: Clock = time.monotonic,
        watchdog_thread: bool = True,
    ) -> None:
        self.robot, self.cfg, self.clock = robot, cfg, clock
        self.watchdog_thread = watchdog_thread
        self.layer: SafetyLayer | None = None
        self.watchdog: Watchdog | None = None
        self._last_obs: dict[str, Any] | None = None
        self._obs_used = False  # a command was sent (or a stop) since _last_obs was read

    @property
    def action_spec(self) -> ActionSpec:
        return self.robot.action_spec

    @property
    def observation_features(self) -> dict[str, dict[str, Any]]:
        return self.robot.observation_features

    @property
    def connected(self) -> bool:
        return self.robot.connected

    def connect(self) -> None:
        self.robot.connect()
        try:
            self.layer = SafetyLayer(self.cfg, self.robot.action_spec)  # refuses bad limits
        except BaseException:
            self.robot.disconnect()
            raise
        self.watchdog = Watchdog(self.cfg.watchdog_timeout_s, self.stop, self.clock)
        if self.watchdog_thread:
            self.watchdog.start()

    def _disconnect(self) -> None:
        if self.watchdog is not None:
            self.watchdog.close()
        self.robot.disconnect()

    def get_observation(self) -> dict[str, Any]:
        self._last_obs = self.robot.get_observation()
        self._obs_used = False
        return self._last_obs

    def filter(self, action: Any, obs: dict[str, Any] | None = None) -> np.ndarray:
        """The safe version of ``action`` given ``obs`` (default: the last observation)."""
        obs = obs if obs is not None else self._last_obs
        if obs is None or self.layer is None:
            raise RobotError("no observation yet: call get_observation() before send_action()")
        return self.layer.filter(
            action, self.robot.ee_position(obs), self.robot.joint_positions(obs)
        )

    def send_action(
        self, action: np.ndarray, t_target: float | None = None, dry_run: bool = False
    ) -> np.ndarray:
        """Filter ``action`` through the safety layer, feed the watchdog and send it; with
        ``dry_run`` the same except the send: returns what would have gone to the robot.

        The action is checked against the last observation when no command was sent since
        it was read, else against a fresh one (read here): the arm may have moved since."""
        assert self.watchdog is not None, "connect() first"
        if self.watchdog.tripped:  # checked first, so a refused command changes no state
            self.watchdog.feed()  # raises the rearm error
        if self._last_obs is None or self._obs_used:
            self.get_observation()
        safe = self.filter(action)
        self.watchdog.feed()
        if dry_run:
            return safe
        self._obs_used = True  # from here on the arm moves: the observation is old
        try:
            return self.robot.send_action(safe, t_target)
        except BaseException:
            # not sent (or not known to be): the layer's ramp must not build on it; the next
            # command starts from rest, as after a stop
            if self.layer is not None:
                self.layer.reset()
            raise

    def stop(self) -> None:
        self._obs_used = True  # a stopping arm still moves
        self.robot.stop()
        if self.layer is not None:
            self.layer.reset()

    @property
    def last_command(self) -> np.ndarray | None:
        """The last command the safety layer let through (None before any, and after a stop or
        reset): what the robot should have applied, whatever it did apply."""
        if self.layer is None or self.layer.prev is None:
            return None
        return self.layer.prev.copy()

    @property
    def watchdog_tripped(self) -> bool:
        """Whether a command watchdog stopped the arm: this one, or one inside the wrapped
        adapter (a bridge server's); False before ``connect``."""
        if self.watchdog is None:
            return False
        return self.watchdog.tripped or bool(getattr(self.robot, "watchdog_tripped", False))

    def rearm(self) -> None:
        """Let commands through again, here and in the wrapped adapter when it has a watchdog
        of its own (``BridgeClient.rearm`` rearms the server's)."""
        if self.watchdog is not None:
            self.watchdog.rearm()
        inner = getattr(self.robot, "rearm", None)
        if callable(inner):
            inner()

    def status(self) -> RobotStatus:
        return self.robot.status()

    def reset(self) -> None:
        self._obs_used = True  # the arm moves home
        self.robot.reset()
        if self.layer is not None:
            self.layer.reset()
        self.rearm()

    def hold_action(self) -> np.ndarray:
        return self.robot.hold_action()

    def ee_position(self, obs: dict[str, Any]) -> np.ndarray | None:
        return self.robot.ee_position(obs)

    def joint_positions(self, obs: dict[str, Any]) -> np.ndarray | None:
        return self.robot.joint_positions(obs)
