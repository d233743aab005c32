"""The MuJoCo gantry arm (``envs.tasks.arm``) behind the robot-adapter API.

What a real arm driver does, in simulation: ``stop()`` holds the current position (target =
measured end effector, zero delta), ``reset()`` moves home in small steps, commands older
than half a control period past their target time are dropped (the hold action is applied
instead), and faults can be injected for tests (``inject(state)``, ``obs_delay_s``,
``nan_proprio``). The simulation advances one env step per ``send_action``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
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

ARM_TASKS = ("arm_reach", "arm_push", "arm_pick_place")


class SimArmAdapter(RobotAdapter):
    """``ArmReach`` / ``ArmPush`` / ``ArmPickPlace`` as a robot (ee_delta actions, 12.5 Hz)."""

    def __init__(
        self,
        task: str = "arm_reach",
        image_size: int = 64,
        seed: int = 0,
        home: tuple[float, float, float] = (0.0, 0.0, 0.12),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if task not in ARM_TASKS:
            raise ValueError(f"sim_arm task={task!r}: use one of {ARM_TASKS}")
        self.task, self.image_size, self.seed = task, image_size, seed
        self.home = np.asarray(home, np.float64)
        self.clock = clock
        self.env: Any = None
        self._lock = threading.RLock()
        self._state = RobotState.DISCONNECTED
        self._message = ""
        self._last_command: float | None = None
        self.stops = 0  #: how many times ``stop()`` ran (for tests and logs)
        self.dropped = 0  #: commands dropped as stale
        self.obs_delay_s = 0.0  #: fault injection: report observations this much older
        self.nan_proprio = False  #: fault injection: NaN proprio

    # ---- description ----------------------------------------------------------------
    @property
    def action_spec(self) -> ActionSpec:
        rate = 12.5 if self.env is None else float(self.env.control_rate_hz)
        return ActionSpec("ee_delta", (-1.0,) * 4, (1.0,) * 4, "world", rate, 0.025, 3)

    @property
    def observation_features(self) -> dict[str, dict[str, Any]]:
        s = self.image_size
        return {
            "pixels": {"shape": [s, s, 3], "dtype": "uint8"},
            "proprio": {
                "shape": [7],
                "dtype": "float32",
                "names": ["ee_x", "ee_y", "ee_z", "opening", "ee_vx", "ee_vy", "ee_vz"],
            },
        }

    @property
    def connected(self) -> bool:
        return self.env is not None

    # ---- lifecycle --------------------------------------------------------------------
    def connect(self) -> None:
        with self._lock:
            if self.env is not None:
                return
            import envs  # the registry; imported here so the adapter module stays light

            self.env = envs.make(self.task, image_size=self.image_size).unwrapped
            self.env.reset(seed=self.seed)
            self._state, self._message = RobotState.OK, ""

    def _disconnect(self) -> None:
        with self._lock:
            if self.env is not None:
                self.env.close()
            self.env = None
            self._state = RobotState.DISCONNECTED

    def inject(self, state: RobotState, message: str = "") -> None:
        """Fault injection: put the robot in ``state`` (e.g. an emergency stop)."""
        with self._lock:
            self._state, self._message = RobotState(state), message or f"injected {state.value}"

    # ---- I/O --------------------------------------------------------------------------
    def _env(self) -> Any:
        if self.env is None:
            raise RobotConnectionError("sim arm is not connected: call connect() first")
        return self.env

    def get_observation(self) -> dict[str, Any]:
        with self._lock:
            obs = self._env()._obs()
            t = self.clock() - self.obs_delay_s
            if self.nan_proprio:
                obs["proprio"][:] = np.nan
            # the arm adds each delta to its running target, not to the measured position
            # (which lags it by up to two steps): the safety layer checks the target
            return {**obs, "ee_target": self.env.ee_target(), "t_pixels": t, "t_proprio": t}

    def goal_observation(self) -> dict[str, np.ndarray]:
        """The task's own goal (image + proprio), for demos and tests."""
        with self._lock:
            return self._env().goal_observation()

    def hold_action(self) -> np.ndarray:
        with self._lock:
            return np.array([0.0, 0.0, 0.0, self._env()._grip_to_keep()], np.float32)

    def send_action(self, action: np.ndarray, t_target: float | None = None) -> np.ndarray:
        with self._lock:
            env = self._env()
            if self._state is not RobotState.OK:
                raise RobotError(f"sim arm is in {self._state.value} ({self._message}): not moving")
            a = np.asarray(action, np.float32)
            now = self.clock()
            if t_target is not None and now > t_target + 0.5 / self.action_spec.rate_hz:
                self.dropped += 1
                a = self.hold_action()
            env.step(a)
            self._last_command = now
            return a

    def stop(self) -> None:
        with self._lock:
            if self.env is None:
                return
            self.stops += 1
            self.env._target = self.env.ee_position()  # hold where it is: no wind-up
            # physics only: the watchdog calls this from its own thread, where the renderer's
            # EGL context (current in the thread that made it) cannot be used
            with self.env.physics_only():
                self.env.step(self.hold_action())

    def status(self) -> RobotStatus:
        with self._lock:
            age = None if self._last_command is None else self.clock() - self._last_command
            return RobotStatus(self._state, age, self._message)

    def reset(self, max_steps: int = 100, speed: float = 0.5) -> None:
        """Move home at ``speed`` of the top speed, then hold."""
        with self._lock:
            env = self._env()
            for _ in range(max_steps):
                err = self.home - env.ee_position()
                if np.linalg.norm(err) < 0.005:
                    break
                a = env._move_towards(self.home, env._grip_to_keep())
                a[:3] *= speed
                env.step(a)
            self.stop()

    # ---- what the safety layer reads --------------------------------------------------
    def ee_position(self, obs: dict[str, Any]) -> np.ndarray | None:
        """Where the arm is commanded to (its running target), which the next delta moves:
        the safety layer's box then holds for every command with nothing in flight
        (``travel_margin: 0`` in configs/robot/sim_arm.yaml). The measured position is
        ``proprio[:3]``."""
        if "ee_target" in obs:
            return np.asarray(obs["ee_target"], np.float64)
        return np.asarray(obs["proprio"][:3], np.float64)
