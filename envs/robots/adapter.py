"""The robot adapter contract: what the control loop needs from any arm, real or simulated.

An adapter is a context manager that always stops the robot before disconnecting, also when
the body raises or the user presses Ctrl-C::

    with SimArmAdapter(task="arm_reach") as robot:
        obs = robot.get_observation()      # {"pixels", "proprio", "t_pixels", "t_proprio"}
        robot.send_action(a, t_target=t)   # returns the action actually applied

Timestamps are ``time.monotonic()`` seconds of the process that calls the adapter.
"""

from __future__ import annotations

import abc
import enum
import math
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import numpy as np

ACTION_MODES = ("ee_delta", "joint_pos", "joint_vel")


class RobotState(str, enum.Enum):
    """What the robot reports about itself."""

    OK = "ok"
    PROTECTIVE_STOP = "protective_stop"
    EMERGENCY_STOP = "emergency_stop"
    FAULT = "fault"
    DISCONNECTED = "disconnected"


class RobotError(RuntimeError):
    """The robot refused or could not carry out a request (not a bug in the caller)."""


class RobotConnectionError(RobotError):
    """The link to the robot is gone or did not answer in time."""


@dataclass(frozen=True)
class ActionSpec:
    """What ``send_action`` accepts."""

    mode: str  #: ee_delta | joint_pos | joint_vel
    low: tuple[float, ...]  #: lower bound per action dimension
    high: tuple[float, ...]  #: upper bound per action dimension
    frame: str  #: frame the action is expressed in, e.g. "world" or "base"
    rate_hz: float  #: control rate the robot expects commands at
    #: ee_delta: metres of end-effector motion per unit action per step (joint modes: 1.0)
    scale: float = 1.0
    #: the first ``motion_dims`` entries move the arm; the rest (e.g. the gripper) do not
    motion_dims: int = 3

    def __post_init__(self) -> None:
        if self.mode not in ACTION_MODES:
            raise ValueError(f"action_spec.mode={self.mode!r}: use one of {ACTION_MODES}")
        lo, hi = np.asarray(self.low, float), np.asarray(self.high, float)
        if lo.shape != hi.shape or lo.ndim != 1 or not np.all(np.isfinite(lo) & np.isfinite(hi)):
            raise ValueError("action_spec.low/high must be finite 1-D sequences of equal length")
        if not np.all(lo < hi):
            raise ValueError(f"action_spec.low {self.low} must be below high {self.high}")
        if not (math.isfinite(self.rate_hz) and self.rate_hz > 0):
            raise ValueError(f"action_spec.rate_hz={self.rate_hz}: use a positive rate")
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"action_spec.scale={self.scale}: use a positive scale")
        if not 0 <= self.motion_dims <= len(self.low):
            raise ValueError(f"action_spec.motion_dims={self.motion_dims} exceeds the action dim")

    @property
    def dim(self) -> int:
        return len(self.low)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "low": list(self.low),
            "high": list(self.high),
            "frame": self.frame,
            "rate_hz": self.rate_hz,
            "scale": self.scale,
            "motion_dims": self.motion_dims,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ActionSpec:
        return cls(
            mode=str(d["mode"]),
            low=tuple(float(x) for x in d["low"]),
            high=tuple(float(x) for x in d["high"]),
            frame=str(d["frame"]),
            rate_hz=float(d["rate_hz"]),
            scale=float(d["scale"]),
            motion_dims=int(d["motion_dims"]),
        )


@dataclass(frozen=True)
class RobotStatus:
    """A snapshot of the robot's health."""

    state: RobotState  #: ok | protective_stop | emergency_stop | fault | disconnected
    command_age_s: float | None  #: seconds since the last command (None: none sent yet)
    message: str = ""  #: one line for humans when ``state`` is not ok

    @property
    def ok(self) -> bool:
        return self.state is RobotState.OK


class RobotAdapter(abc.ABC):
    """One arm (plus its cameras) behind a small, thread-safe API; see the module docstring."""

    # ---- description ----------------------------------------------------------------
    @property
    @abc.abstractmethod
    def action_spec(self) -> ActionSpec: ...

    @property
    @abc.abstractmethod
    def observation_features(self) -> dict[str, dict[str, Any]]:
        """``{"pixels": {"shape": [H, W, 3], "dtype": "uint8"}, "proprio": {...}}``."""

    # ---- lifecycle --------------------------------------------------------------------
    @abc.abstractmethod
    def connect(self) -> None: ...

    @abc.abstractmethod
    def _disconnect(self) -> None:
        """Release the link (the robot is already stopped); called at most once per connect."""

    @property
    @abc.abstractmethod
    def connected(self) -> bool: ...

    def disconnect(self) -> None:
        """Stop, then release the link. Idempotent."""
        if not self.connected:
            return
        try:
            self.stop()
        finally:
            self._disconnect()

    def __enter__(self) -> RobotAdapter:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.disconnect()  # runs on exceptions and KeyboardInterrupt too: always stop first

    # ---- I/O --------------------------------------------------------------------------
    @abc.abstractmethod
    def get_observation(self) -> dict[str, Any]:
        """``pixels`` (H, W, 3) uint8, ``proprio`` (P,) float32 and their capture times."""

    @abc.abstractmethod
    def send_action(self, action: np.ndarray, t_target: float | None = None) -> np.ndarray:
        """Command one step; returns what was applied (the hold action if dropped as stale)."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Controlled slow-down to standstill. Thread-safe; never raises for a lost link."""

    @abc.abstractmethod
    def status(self) -> RobotStatus: ...

    @abc.abstractmethod
    def reset(self) -> None:
        """Move home slowly."""

    def hold_action(self) -> np.ndarray:
        """The action that keeps the robot where it is (zero motion)."""
        return np.zeros(self.action_spec.dim, dtype=np.float32)

    def ee_position(self, obs: dict[str, Any]) -> np.ndarray | None:
        """The end-effector position (3,) in the observation, for the safety layer."""
        return None

    def joint_positions(self, obs: dict[str, Any]) -> np.ndarray | None:
        """Joint positions in the observation, for the safety layer's joint limits."""
        return None
