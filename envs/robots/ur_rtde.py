"""Universal Robots arms over RTDE (``ur-rtde``: ``rtde_control`` / ``rtde_receive``).

UNTESTED WITHOUT HARDWARE. This driver was written against the ur-rtde API documentation
and has never moved a real arm; its tests (``tests/robots/test_ur_rtde.py``) drive a fake of
the two ur-rtde interfaces that records the calls, so they check what is sent, not what a
robot does with it. Before trusting it: measure the workspace box of your cell, run at low
``max_velocity`` with the emergency stop in hand, and check that ``stop()`` and the watchdog
stop the arm.

Install the optional extra (``pip install 'jepa-mpc[ur]'``); the import happens in
``connect()``, so the rest of the project works without it. Actions are ``ee_delta``
``(dx, dy, dz)`` in [-1, 1] in the base frame, ``max_step_m`` metres per unit per step, sent
with ``servoL``; ``stop()`` is ``servoStop`` + ``stopL`` (controlled deceleration). There is no
camera driver here: ``pixels`` are black frames unless a subclass overrides ``_grab_frame``.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from envs.robots.adapter import (
    ActionSpec,
    RobotAdapter,
    RobotConnectionError,
    RobotError,
    RobotState,
    RobotStatus,
)


def _import_rtde() -> tuple[Any, Any]:
    try:
        import rtde_control
        import rtde_receive
    except ImportError as e:
        raise RobotConnectionError(
            "robot=ur_rtde needs the ur-rtde package: pip install 'jepa-mpc[ur]' (or ur-rtde)"
        ) from e
    return rtde_control, rtde_receive


class URRTDEAdapter(RobotAdapter):
    """A UR arm driven with Cartesian deltas through RTDE servoL (see the module warning)."""

    def __init__(
        self,
        host: str,
        rate_hz: float = 10.0,
        max_step_m: float = 0.01,
        camera: Any = None,
        image_size: int = 64,
        home_joints_rad: tuple[float, ...] = (0.0, -1.571, 1.571, -1.571, -1.571, 0.0),
    ) -> None:
        self.host, self.rate_hz, self.max_step_m = host, rate_hz, max_step_m
        self.camera, self.image_size = camera, image_size
        self.home = list(home_joints_rad)
        self._ctrl: Any = None
        self._recv: Any = None
        self._lock = threading.RLock()
        self._last_command: float | None = None

    @property
    def action_spec(self) -> ActionSpec:
        return ActionSpec(
            "ee_delta", (-1.0,) * 3, (1.0,) * 3, "base", self.rate_hz, self.max_step_m
        )

    @property
    def observation_features(self) -> dict[str, dict[str, Any]]:
        s = self.image_size
        return {
            "pixels": {"shape": [s, s, 3], "dtype": "uint8"},
            "proprio": {"shape": [12], "dtype": "float32", "names": "tcp pose (6), tcp speed (6)"},
        }

    @property
    def connected(self) -> bool:
        return self._ctrl is not None

    def connect(self) -> None:
        rtde_control, rtde_receive = _import_rtde()
        with self._lock:
            self._recv = rtde_receive.RTDEReceiveInterface(self.host)
            self._ctrl = rtde_control.RTDEControlInterface(self.host)

    def _disconnect(self) -> None:
        with self._lock:
            if self._ctrl is not None:
                self._ctrl.stopScript()
                self._ctrl.disconnect()
            if self._recv is not None:
                self._recv.disconnect()
            self._ctrl = self._recv = None

    def _grab_frame(self) -> np.ndarray:
        return np.zeros((self.image_size, self.image_size, 3), np.uint8)

    def get_observation(self) -> dict[str, Any]:
        with self._lock:
            if self._recv is None:
                raise RobotConnectionError("ur_rtde is not connected: call connect() first")
            t = time.monotonic()
            proprio = np.array(
                [*self._recv.getActualTCPPose(), *self._recv.getActualTCPSpeed()], np.float32
            )
        pixels = self._grab_frame()
        return {"pixels": pixels, "proprio": proprio, "t_pixels": time.monotonic(), "t_proprio": t}

    def send_action(self, action: np.ndarray, t_target: float | None = None) -> np.ndarray:
        with self._lock:
            if self._ctrl is None or self._recv is None:
                raise RobotConnectionError("ur_rtde is not connected: call connect() first")
            st = self.status()
            if not st.ok:
                raise RobotError(f"UR arm is in {st.state.value}: {st.message}")
            a = np.asarray(action, np.float64)
            if a.shape != (3,) or not np.all(np.isfinite(a)):
                raise RobotError(
                    f"ur_rtde takes a finite (dx, dy, dz) action, got {a.tolist()}: send it "
                    "through the safety layer (SafeRobot), which checks and bounds it"
                )
            now = time.monotonic()
            if t_target is not None and now > t_target + 0.5 / self.rate_hz:
                a = np.zeros(3)
            pose = list(self._recv.getActualTCPPose())
            for i in range(3):
                pose[i] += float(a[i]) * self.max_step_m
            dt = 1.0 / self.rate_hz
            self._ctrl.servoL(pose, 0.0, 0.0, dt, 0.1, 300)  # speed, acc unused by servoL
            self._last_command = now
            return a.astype(np.float32)

    def stop(self) -> None:
        with self._lock:
            if self._ctrl is None:
                return
            try:
                self._ctrl.servoStop(2.0)
                self._ctrl.stopL(0.5)
            except RuntimeError:  # ur-rtde raises RuntimeError on a lost link
                pass

    def status(self) -> RobotStatus:
        with self._lock:
            age = None if self._last_command is None else time.monotonic() - self._last_command
            if self._recv is None:
                return RobotStatus(RobotState.DISCONNECTED, age, "not connected")
            if self._recv.isEmergencyStopped():
                return RobotStatus(RobotState.EMERGENCY_STOP, age, "emergency stop pressed")
            if self._recv.isProtectiveStopped():
                return RobotStatus(RobotState.PROTECTIVE_STOP, age, "protective stop")
            if not self._recv.isConnected():
                return RobotStatus(RobotState.DISCONNECTED, age, "RTDE link lost")
            return RobotStatus(RobotState.OK, age)

    def reset(self) -> None:
        with self._lock:
            if self._ctrl is None:
                raise RobotConnectionError("ur_rtde is not connected: call connect() first")
            self._ctrl.moveJ(self.home, 0.2, 0.2)  # slow: 0.2 rad/s

    def ee_position(self, obs: dict[str, Any]) -> np.ndarray | None:
        return np.asarray(obs["proprio"][:3], np.float64)
