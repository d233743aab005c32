"""Base class for goal-conditioned MuJoCo tasks.

Every task speaks Gymnasium exactly: ``reset(seed=...) -> (obs, info)`` and
``step(a) -> (obs, reward, terminated, truncated, info)``. Observations are dicts with
``pixels`` (H, W, 3) uint8 and ``proprio`` (P,) float32. Actions are normalized to [-1, 1].

A task subclass provides (dm_control's split: model, named physics queries, task hooks):

- ``_build_model() -> mujoco.MjModel``         the MJCF, compiled once;
- ``_sample_episode(rng) -> None``             set the start state in ``self.data`` and store
                                               whatever defines the goal (``self._goal``);
- ``_goal_qpos() -> np.ndarray``               the full qpos of the scene at the goal, used to
                                               render the goal image;
- ``_apply_action(a)``                         write controls for one env step;
- ``_proprio() -> np.ndarray``                 robot-only state (no object or goal info);
- ``state() -> np.ndarray``                    low-dim true task state (for probes and oracles);
- ``distance_to_goal() -> float``              in the units named by ``distance_units``;
- ``oracle_action() -> np.ndarray``            a controller with access to the true state;
- ``_goal_here()`` / ``_use_goal(spec)``        optional: what defines a goal at the current
                                               state, and set it (``reset(options=
                                               {"goal_steps": K})``, below).

Episodes never terminate on their own; truncation comes only from ``TimeLimit`` (the step
budget registered with the task). ``info["success"]`` is ``distance_to_goal() <=
success_threshold`` at every step.

Near goals: ``reset(seed=s, options={"goal_steps": K})`` starts the same episode as
``reset(seed=s)`` but replaces its goal by the state the oracle reaches after ``K`` steps
toward it (or the first state after that at least two success thresholds from the start), the
way DINO-WM draws its evaluation goals from a trajectory ``K`` steps ahead of the start. Tasks
that implement ``_goal_here`` / ``_use_goal`` support it (``supports_goal_steps``).
"""

from __future__ import annotations

import atexit
import copy
import os
import weakref

os.environ.setdefault("MUJOCO_GL", "egl")

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import gymnasium as gym
import mujoco
import numpy as np

#: the process whose MuJoCo renderers hold EGL contexts (None: none made yet); a child forked
#: after that inherits the value, and EGL does not survive fork (a new context hangs there)
_EGL_PID: int | None = None


def new_renderer(model: mujoco.MjModel, height: int, width: int) -> mujoco.Renderer:
    """``mujoco.Renderer``, refused with one clear line (instead of hanging in EGL) in a
    process forked from one that had already rendered with EGL."""
    global _EGL_PID, _CLOSE_AT_EXIT
    if os.environ.get("MUJOCO_GL") == "egl":
        if _EGL_PID is not None and _EGL_PID != os.getpid():
            raise RuntimeError(
                f"this process was forked from process {_EGL_PID} after it had rendered with "
                "EGL, which does not survive a fork (a new renderer would hang): start worker "
                "processes with the 'spawn' method, e.g. gymnasium.make_vec(..., "
                "vectorization_mode='async', vector_kwargs={'context': 'spawn'}) or "
                "multiprocessing.get_context('spawn'), or make the parent's envs after forking"
            )
        _EGL_PID = os.getpid()
    renderer = mujoco.Renderer(model, height, width)
    if not _CLOSE_AT_EXIT:
        # after the first renderer, so after EGL registered its eglTerminate: atexit runs
        # handlers last-in first-out, and contexts must be freed before the display goes
        atexit.register(_close_renderers)
        _CLOSE_AT_EXIT = True
    _RENDERERS.add(renderer)
    return renderer


#: renderers not closed yet: closed at interpreter exit, while their GL context still works
#: (freed later, during teardown, EGL prints tracebacks: an env nobody closed, e.g. a script
#: that ends without ``env.close()``)
_RENDERERS: weakref.WeakSet[mujoco.Renderer] = weakref.WeakSet()
_CLOSE_AT_EXIT = False  # True once the exit handler is registered


def _close_renderers() -> None:
    for renderer in list(_RENDERERS):
        try:
            renderer.close()
        except Exception:  # noqa: BLE001 (exiting anyway: never mask the real exit)
            pass


class GoalEnv(gym.Env):
    """Goal-conditioned MuJoCo task with pixel + proprio observations and a goal image."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 10}

    #: success when ``distance_to_goal() <= success_threshold``
    success_threshold: float = 0.0
    #: what ``distance_to_goal`` measures, for docs and results tables
    distance_units: str = "m"
    #: physics steps per env step (action repeat)
    frame_skip: int = 1
    #: step budget registered with ``TimeLimit``
    max_episode_steps: int = 100
    #: camera name used for observations
    camera: str | int = -1
    #: render ``pixels``; False gives black frames at no cost (state-based baselines, oracles)
    render_observations: bool = True
    #: visualization options of the observation camera (None: MuJoCo's defaults)
    scene_option: mujoco.MjvOption | None = None

    def __init__(self, image_size: int = 64, render_mode: str | None = "rgb_array") -> None:
        if not isinstance(image_size, int) or image_size < 8 or image_size > 1024:
            raise ValueError(f"image_size={image_size!r} is invalid: use an int in [8, 1024]")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode={render_mode!r} is unsupported: use 'rgb_array'")
        self.render_mode = render_mode
        self.image_size = image_size
        self.model = self._build_model()
        self.data = mujoco.MjData(self.model)
        self._renderer: mujoco.Renderer | None = None
        self._goal_obs: dict[str, np.ndarray] | None = None
        n_act = self.action_dim()
        self.action_space = gym.spaces.Box(-1.0, 1.0, (n_act,), dtype=np.float32)
        mujoco.mj_forward(self.model, self.data)
        p = self._proprio().shape[0]
        self.observation_space = gym.spaces.Dict(
            {
                "pixels": gym.spaces.Box(0, 255, (image_size, image_size, 3), dtype=np.uint8),
                "proprio": gym.spaces.Box(-np.inf, np.inf, (p,), dtype=np.float32),
            }
        )
        self.metadata = dict(self.metadata, render_fps=round(self.control_rate_hz))

    @classmethod
    def step_budget(cls, **kwargs: Any) -> int:
        """The ``TimeLimit`` budget of the task built with these constructor kwargs."""
        return cls.max_episode_steps

    # ---- hooks (override) -------------------------------------------------------------
    def _build_model(self) -> mujoco.MjModel:
        raise NotImplementedError

    def action_dim(self) -> int:
        return int(self.model.nu)

    def _sample_episode(self, rng: np.random.Generator) -> None:
        raise NotImplementedError

    def _goal_qpos(self) -> np.ndarray:
        raise NotImplementedError

    def _apply_action(self, action: np.ndarray) -> None:
        self.data.ctrl[:] = action

    def _proprio(self) -> np.ndarray:
        raise NotImplementedError

    def state(self) -> np.ndarray:
        """Low-dimensional true task state (agent and object poses)."""
        raise NotImplementedError

    def goal_state(self) -> np.ndarray:
        """The true task state at the goal, in the same layout as ``state()``."""
        raise NotImplementedError

    def distance_to_goal(self) -> float:
        raise NotImplementedError

    def state_distance(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The task's distance between batches of ``state()`` vectors (..., S) -> (...).

        ``distance_to_goal()`` equals ``state_distance(state(), goal_state())``; used to score
        how well latent distances rank true distances. Default: Euclidean over the first two
        state entries (the agent's planar position); tasks with objects override it.
        """
        return np.linalg.norm(np.asarray(a)[..., :2] - np.asarray(b)[..., :2], axis=-1)

    def oracle_action(self) -> np.ndarray:
        """Action of a controller that sees the true state; reaches the goal within budget."""
        raise NotImplementedError

    def _goal_here(self) -> Any:
        """What defines a goal at the current state (read by ``_use_goal``); tasks that support
        near goals (``reset(options={"goal_steps": K})``) override this and ``_use_goal``."""
        raise NotImplementedError

    def _use_goal(self, spec: Any) -> None:
        """Make ``spec`` (from ``_goal_here``) the episode's goal."""
        raise NotImplementedError

    @classmethod
    def supports_goal_steps(cls) -> bool:
        """Whether ``reset(options={"goal_steps": K})`` (goals along the oracle's path) works."""
        return cls._goal_here is not GoalEnv._goal_here and cls._use_goal is not GoalEnv._use_goal

    def expert_action(self) -> np.ndarray:
        """The action a learner should imitate here (DAgger labels, ``agent.collect
        expert_labels=true``), asked once per env step: ``oracle_action`` unless the task's
        oracle commits to a plan across steps, whose labels a policy that sees only the
        current observation could not learn; such tasks override it with a controller that
        depends on the current state alone."""
        return self.oracle_action()

    # ---- Gymnasium API ----------------------------------------------------------------
    @property
    def control_rate_hz(self) -> float:
        return 1.0 / (self.model.opt.timestep * self.frame_skip)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        goal_steps = self._goal_steps_option(options)
        rng = copy.deepcopy(self.np_random) if goal_steps else None
        mujoco.mj_resetData(self.model, self.data)
        self._sample_episode(self.np_random)
        mujoco.mj_forward(self.model, self.data)
        if goal_steps:
            spec = self._goal_along_oracle(goal_steps)
            mujoco.mj_resetData(self.model, self.data)
            self._sample_episode(rng)  # the same start again (the same draws)
            mujoco.mj_forward(self.model, self.data)
            self._use_goal(spec)
        self._goal_obs = self._render_goal()
        return self._obs(), self._info()

    def _goal_steps_option(self, options: dict[str, Any] | None) -> int:
        k = (options or {}).get("goal_steps", 0)
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
            raise ValueError(
                f"options['goal_steps']={k!r} is invalid: use an int >= 0 (0 = the task's goals)"
            )
        if k and not self.supports_goal_steps():
            raise ValueError(
                f"options['goal_steps'] is not supported by {type(self).__name__}: it has no "
                "_goal_here/_use_goal; use goal_steps=0 (the task's own goals)"
            )
        return int(k)

    def _goal_along_oracle(self, goal_steps: int) -> Any:
        """Run the oracle toward the sampled goal for ``goal_steps`` steps (longer while the
        state is within two success thresholds of the start, up to the step budget) and return
        the goal found there."""
        start = self.state()
        self._goal_obs = {}  # step() runs while the new goal is drawn; reset() renders it after
        with self.physics_only():
            for k in range(1, max(goal_steps, self.max_episode_steps) + 1):
                self.step(self.oracle_action())
                far = self.state_distance(start, self.state()) >= 2 * self.success_threshold
                if k >= goal_steps and far:
                    break
            return self._goal_here()

    def step(
        self, action: np.ndarray
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        if self._goal_obs is None:
            raise RuntimeError("step() called before reset(): call env.reset(seed=...) first")
        a = self.validate_action(action)
        for _ in range(self.frame_skip):
            self._apply_action(a)
            mujoco.mj_step(self.model, self.data)
        info = self._info()
        return self._obs(), -info["distance_to_goal"], False, False, info

    def validate_action(self, action: Any) -> np.ndarray:
        """Return the action as float64 clipped to [-1, 1]; raise on wrong shape or NaN."""
        a = np.asarray(action, dtype=np.float64)
        if a.shape != self.action_space.shape:
            raise ValueError(
                f"action has shape {a.shape} but {type(self).__name__} expects "
                f"{self.action_space.shape}: pass one value per action dimension in [-1, 1]"
            )
        if not np.all(np.isfinite(a)):
            raise ValueError(
                f"action {a.tolist()} contains NaN or inf: check the policy or planner output"
            )
        return np.clip(a, -1.0, 1.0)

    def _hide_geom_group(self, group: int) -> None:
        """Leave the geoms of ``group`` (and their shadows) out of every rendered observation,
        goal images included (the masked tasks: the robot known from its proprio alone)."""
        if self.scene_option is None:
            self.scene_option = mujoco.MjvOption()
        self.scene_option.geomgroup[group] = 0

    def render(self) -> np.ndarray:
        return self._render_pixels()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    # ---- goal ---------------------------------------------------------------------------
    def goal_observation(self) -> dict[str, np.ndarray]:
        """The goal as an observation (goal image + proprio), rendered from the goal state."""
        if self._goal_obs is None:
            raise RuntimeError("goal_observation() needs a goal: call env.reset(seed=...) first")
        return {k: v.copy() for k, v in self._goal_obs.items()}

    def _render_goal(self) -> dict[str, np.ndarray]:
        saved = self.get_physics_state()
        self.data.qpos[:] = self._goal_qpos()
        self.data.qvel[:] = 0.0
        mujoco.mj_forward(self.model, self.data)
        goal = self._obs()
        self.set_physics_state(saved)
        return goal

    # ---- physics state (for oracles, tests and simulator-in-the-loop baselines) --------
    def get_physics_state(self) -> np.ndarray:
        spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
        out = np.empty(mujoco.mj_stateSize(self.model, spec))
        mujoco.mj_getState(self.model, self.data, out, spec)
        return out

    def set_physics_state(self, state: np.ndarray) -> None:
        mujoco.mj_setState(self.model, self.data, state, mujoco.mjtState.mjSTATE_FULLPHYSICS)
        mujoco.mj_forward(self.model, self.data)

    # ---- helpers ------------------------------------------------------------------------
    @contextmanager
    def physics_only(self) -> Iterator[None]:
        """Steps inside render no pixels (black frames); the switch is restored after."""
        rendering, self.render_observations = self.render_observations, False
        try:
            yield
        finally:
            self.render_observations = rendering

    def _obs(self) -> dict[str, np.ndarray]:
        if self.render_observations:
            pixels = self._render_pixels()
        else:
            pixels = np.zeros(self.observation_space["pixels"].shape, np.uint8)
        return {"pixels": pixels, "proprio": self._proprio().astype(np.float32)}

    def _info(self) -> dict[str, Any]:
        d = float(self.distance_to_goal())
        return {"distance_to_goal": d, "success": bool(d <= self.success_threshold)}

    def _render_pixels(self) -> np.ndarray:
        if self._renderer is None:
            self._renderer = new_renderer(self.model, self.image_size, self.image_size)
        self._renderer.update_scene(self.data, camera=self.camera, scene_option=self.scene_option)
        return self._renderer.render().copy()

    def __del__(self) -> None:  # renderers must close before the GL context is torn down
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter teardown: nothing left to report to
            pass
