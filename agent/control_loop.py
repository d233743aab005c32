"""The real-time MPC loop on a robot adapter, with fallbacks and a run log.

Every tick (``1 / rate_hz`` s): read the robot's status and observation, plan, stamp the
action with its target time (the end of this tick), send it through the safety layer, log
the observation and the applied action. The loop never runs faster than the robot's own
control rate (``action_spec.rate_hz``): the safety layer's speed and acceleration limits
assume one command per robot period, so more commands per second would move the arm faster
than they allow. What happens when something goes wrong:

- observation older than ``stale_obs_s`` or non-finite: no planning on it, hold;
- planner late (status, observation and plan not ready by the tick's target time): the
  action is dropped and the previous plan's next env-step actions are used
  (``MPCAgent.upcoming``; a policy without it: its ``plan``, shifted by one step), stamped
  with the target time of the tick that starts then (the missed one would have the robot
  drop them as stale); when they are used up, hold (the planner's own ``deadline_s`` already
  returns its best plan so far for mildly late plans);
- the safety layer rejects the action (NaN or inf): hold;
- ``max_consecutive_faults`` such ticks in a row, a robot that reports anything but ``ok``,
  a lost link or Ctrl-C: stop the robot and end the run with one line saying why;
- the adapter or the policy raises anything else: stop the robot, write the log, raise
  ``RunAborted`` (one line; the cause chained); a ``stop()`` that raises is reported in the
  run's message and the log is still written.

The log is a dataset in the project's format (``agent.dataset``: one chunk, one episode)
plus ``control.npz`` (per-step timing, which fallback acted, and the ``commanded`` action
before the safety layer), closed by ``meta.json`` written atomically at the end of every run,
including faults and Ctrl-C; so robot runs are fine-tuning data. Goal proprio is the captured
goal's (``agent.control`` saves it beside the goal image; NaN when the goal has none); task
state is unknown on a robot: empty.

A dry run (``dry_run=True``) does all of that except sending: each tick's action passes the
safety layer and feeds the watchdog, and what would have been sent is logged
(``control.npz`` ``safe``); the arm never gets a command. Its log holds no dataset chunk
(nothing was applied, so it is not training data) and says ``"dry_run": true``.
"""

from __future__ import annotations

import io
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from agent import dataset as ds
from agent.errors import USER_ERRORS, is_out_of_memory
from envs.robots.adapter import ActionSpec, RobotConnectionError, RobotError, RobotState
from envs.robots.safety import ActionRejected, SafeRobot

log = logging.getLogger(__name__)

#: where the action of a tick came from (``control.npz`` ``source``)
SOURCES = ("plan", "shifted", "hold")


class Policy(Protocol):
    def reset(self, goal: dict[str, np.ndarray]) -> None: ...
    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray: ...


@dataclass(frozen=True)
class LoopConfig:
    """Control loop settings (the ``loop`` block of ``configs/control.yaml``)."""

    rate_hz: float = 10.0  #: control rate (ticks per second)
    max_steps: int = 100  #: actions per run
    stale_obs_s: float = 0.25  #: an observation older than this is not planned on
    max_consecutive_faults: int = 3  #: fallback ticks in a row before the run stops
    output_dir: str = "outputs/control/run"  #: where the run log is written

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate_hz) and self.rate_hz > 0):
            raise ValueError(f"loop.rate_hz={self.rate_hz}: use a positive rate")
        if self.max_steps < 1 or self.max_consecutive_faults < 1:
            raise ValueError("loop.max_steps and loop.max_consecutive_faults must be >= 1")
        if not (math.isfinite(self.stale_obs_s) and self.stale_obs_s > 0):
            raise ValueError(f"loop.stale_obs_s={self.stale_obs_s}: use a positive time")


@dataclass
class RunResult:
    """How a run ended."""

    reason: str  #: max_steps | fault | disconnected | interrupted | error | <robot state>
    message: str  #: one line for humans
    steps: int = 0  #: actions sent (a dry run: ticks, nothing sent)
    sources: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SOURCES, 0))
    #: ticks whose action the safety layer changed (clipped, capped, boxed, rejected)
    limited: int = 0
    #: ticks whose safe command the robot replaced (e.g. dropped as late: the hold instead)
    replaced: int = 0
    plan_ms: list[float] = field(default_factory=list)  #: each planned tick's planning time

    def plan_ms_percentiles(self) -> dict[str, float | None]:
        """p50 / p95 planning time (None before any plan): does it fit the tick?"""
        if not self.plan_ms:
            return {"plan_ms_p50": None, "plan_ms_p95": None}
        p50, p95 = np.percentile(self.plan_ms, [50, 95])
        return {"plan_ms_p50": round(float(p50), 1), "plan_ms_p95": round(float(p95), 1)}

    log_dir: str = ""

    @property
    def ok(self) -> bool:
        return self.reason == "max_steps"


class RunLog:
    """Observations and applied actions of one run, in the dataset format."""

    def __init__(
        self, root: Path, goal: dict[str, np.ndarray], meta: dict[str, Any], dry_run: bool = False
    ) -> None:
        self.root, self.meta, self.dry_run = root, meta, dry_run
        check_output_dir(root)
        root.mkdir(parents=True, exist_ok=True)
        ds.remove_stale_temp(root)
        self.episode = ds.EpisodeBuffer(seed=0)
        self.goal = goal
        self.steps: dict[str, list[float]] = {
            k: [] for k in ("t_obs", "t_target", "t_sent", "plan_ms", "source")
        }
        self.commanded: list[np.ndarray] = []  # each tick's action before the safety layer

    def add_obs(self, obs: dict[str, Any]) -> None:
        self.episode.add_obs(obs["pixels"], obs["proprio"], np.zeros(0, np.float32), np.nan)

    def add_action(self, action: np.ndarray, commanded: np.ndarray, **timing: float) -> None:
        """``action``: what the robot got (dry run: would have got); ``commanded``: the
        loop's action before the safety layer."""
        self.episode.actions.append(np.asarray(action, np.float32))
        self.commanded.append(np.asarray(commanded, np.float32))
        for k, v in timing.items():
            self.steps[k].append(v)

    def close(self, result: RunResult) -> None:
        """Write the chunk (obs T+1, actions T), control.npz, then meta.json, atomically."""
        e = self.episode
        while len(e.actions) >= len(e.obs["pixels"]) and e.actions:  # no obs after the last
            e.actions.pop()
            self.commanded.pop()
            for v in self.steps.values():
                v.pop()
        chunks = []
        per_step = {k: np.asarray(v) for k, v in self.steps.items()}
        if e.actions:
            per_step["commanded"] = np.stack(self.commanded)
        if e.actions and self.dry_run:  # nothing was applied: no dataset chunk
            per_step["safe"] = np.stack(e.actions)
        elif e.actions:
            p = len(e.obs["proprio"][0])
            e.goal = {
                "pixels": self.goal["pixels"],
                "proprio": self.goal.get("proprio", np.full(p, np.nan, np.float32)),
                "state": np.zeros(0, np.float32),
            }
            n = len(e.actions) + 1
            for k in ds.OBS_KEYS:
                e.obs[k] = e.obs[k][:n]
            ds.write_chunk(self.root, 0, [e])
            chunks = ["chunk_00000"]
            self.meta["sha256"] = ds.file_digest(
                [self.root / "chunk_00000" / f"{k}.npy" for k in ("pixels", "actions")]
            )
        if e.actions:
            _atomic_npz(self.root / "control.npz", per_step)
        meta = {
            **self.meta,
            "format_version": ds.FORMAT_VERSION,
            "chunks": chunks,
            "episodes": len(chunks),
            "transitions": len(e.actions) if chunks else 0,
            "dry_run": self.dry_run,
            "ticks": len(e.actions),
            "reason": result.reason,
            "message": result.message,
            "sources": result.sources,
            "limited": result.limited,
            "replaced": result.replaced,
            **result.plan_ms_percentiles(),
        }
        ds.atomic_write_json(self.root / "meta.json", meta)


def check_output_dir(root: str | os.PathLike) -> None:
    """Refuse a folder that already holds a run log (complete or cut short): a run never
    overwrites another's data. Called before the robot moves."""
    root = Path(root)
    held = [n for n in ("meta.json", "control.npz", "chunk_00000") if (root / n).exists()]
    if held:
        raise FileExistsError(
            f"loop.output_dir={root} already holds a run log ({held[0]}): pass another "
            "loop.output_dir (the default is a new timestamped folder per run)"
        )


class RunAborted(RuntimeError):
    """A run ended by an unexpected exception of the adapter or the policy (not bad input):
    the robot was stopped and the run log written; ``result`` says how far it got, the cause
    is chained."""

    def __init__(self, result: RunResult) -> None:
        super().__init__(result.message)
        self.result = result

    def __str__(self) -> str:  # read at print time: the stop's outcome is added after raising
        r = self.result
        return f"run stopped ({r.reason}) after {r.steps} steps: {r.message}; run log {r.log_dir}"


def one_line(e: BaseException) -> str:
    """``Type: first line of the message``, for a run's one-line message."""
    first = next((line.strip() for line in str(e).splitlines() if line.strip()), "")
    return f"{type(e).__name__}: {first}" if first else type(e).__name__


def check_rate(rate_hz: float, spec: ActionSpec) -> None:
    """Refuse a loop faster than the robot's control rate: the safety layer limits speed and
    acceleration per robot period (``1 / spec.rate_hz``), so k times as many commands per
    second would move the arm up to k times as fast as ``max_velocity``. Slower is safe for
    position commands (``ee_delta``, ``joint_pos``), not for ``joint_vel``, whose command acts
    until the next one arrives: it must run at the robot's rate. Commands are also kept at
    least one robot period apart (a late tick's fallback and the next tick's plan)."""
    if spec.mode == "joint_vel" and rate_hz < spec.rate_hz * (1 - 1e-9):
        raise ValueError(
            f"loop.rate_hz={rate_hz:g} is slower than the robot's control rate "
            f"({spec.rate_hz:g} Hz) for joint_vel: a velocity command acts until the next one, "
            "so it would move the joints further than the safety layer's limits allow: set "
            f"loop.rate_hz={spec.rate_hz:g}"
        )
    if rate_hz > spec.rate_hz * (1 + 1e-9):
        raise ValueError(
            f"loop.rate_hz={rate_hz:g} is faster than the robot's control rate "
            f"({spec.rate_hz:g} Hz, action_spec.rate_hz), which the safety layer's speed and "
            f"acceleration limits assume (the arm could move {rate_hz / spec.rate_hz:.2g}x as "
            f"fast as max_velocity): set loop.rate_hz={spec.rate_hz:g} or lower"
        )


def dataset_fields(robot: SafeRobot) -> dict[str, Any]:
    """The dataset meta fields a robot's run log needs to be training data (``agent.train``,
    ``agent.merge``): its action space, proprio size, image size and rate; no task state."""
    spec, features = robot.action_spec, robot.observation_features
    return {
        "action_space": {
            "low": [float(x) for x in spec.low],
            "high": [float(x) for x in spec.high],
            "shape": [len(spec.low)],
        },
        "action_mode": spec.mode,
        "proprio_dim": int(features["proprio"]["shape"][0]),
        "state_dim": 0,
        "image_size": int(features["pixels"]["shape"][0]),
        "control_rate_hz": float(spec.rate_hz),
    }


def _atomic_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    ds.atomic_write_bytes(path, buf.getvalue())


class ControlLoop:
    """Runs ``policy`` on ``robot`` (a ``SafeRobot``, so every command is filtered)."""

    def __init__(
        self,
        robot: SafeRobot,
        policy: Policy,
        cfg: LoopConfig,
        meta: dict[str, Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        dry_run: bool = False,
    ) -> None:
        if not isinstance(robot, SafeRobot):
            raise TypeError(
                f"ControlLoop drives a robot only through the safety layer, got "
                f"{type(robot).__name__}: pass SafeRobot(adapter, safety_config)"
            )
        check_rate(cfg.rate_hz, robot.action_spec)
        self.robot, self.policy, self.cfg = robot, policy, cfg
        self.meta = {"rate_hz": cfg.rate_hz, **(meta or {})}
        self.clock, self.sleep, self.dry_run = clock, sleep, dry_run
        self.period = 1.0 / cfg.rate_hz

    def run(self, goal: dict[str, np.ndarray]) -> RunResult:
        n = self.cfg.max_steps
        said = f"dry run: planned {n} ticks, sent nothing" if self.dry_run else f"ran {n} steps"
        result = RunResult("max_steps", said)
        result.log_dir = self.cfg.output_dir
        meta = {**self.meta, **dataset_fields(self.robot)}
        runlog = RunLog(Path(self.cfg.output_dir), goal, meta, self.dry_run)
        try:
            self._loop(goal, runlog, result)
        except RobotConnectionError as e:
            result.reason, result.message = "disconnected", str(e)
        except RobotError as e:
            state = self._safe_status()
            result.reason = state.value if state is not RobotState.OK else "fault"
            result.message = str(e)
        except KeyboardInterrupt:
            result.reason, result.message = "interrupted", "stopped by Ctrl-C"
        except Exception as e:
            result.reason, result.message = "error", one_line(e)
            if isinstance(e, USER_ERRORS) or is_out_of_memory(e):
                raise  # e.g. a goal the policy cannot use: the entry point's one line
            raise RunAborted(result) from e  # the adapter or the policy broke
        finally:
            try:
                self._stop(result)
                self._final_obs(runlog, result)
            finally:
                runlog.close(result)  # whatever the stop did: the log is kept
        log.info("control run ended (%s): %s", result.reason, result.message)
        return result

    def _safe_status(self) -> RobotState:
        try:
            return self.robot.status().state
        except RobotError:
            return RobotState.DISCONNECTED

    def _stop(self, result: RunResult) -> None:
        try:
            self.robot.stop()
        except RobotError as e:  # the link is gone: the robot-side watchdog stops the arm
            result.message += f" (stop failed: {e})"
        except Exception as e:  # the adapter broke its contract: the arm may still move
            log.debug("the robot's stop() raised", exc_info=True)  # the message says it
            result.message += f" (stop failed: {one_line(e)}: the arm may still move, stop it)"
            if result.reason == "max_steps":
                result.reason = "error"

    def _final_obs(self, runlog: RunLog, result: RunResult) -> None:
        if result.reason == "disconnected":
            return
        try:
            runlog.add_obs(self.robot.get_observation())
        except Exception as e:  # noqa: BLE001 - the last action is dropped from the log instead
            log.warning("no observation after the run (%s): its last action is not logged", e)

    def _loop(self, goal: dict[str, np.ndarray], runlog: RunLog, result: RunResult) -> None:
        cfg, period = self.cfg, self.period
        self.policy.reset(goal)  # may outlast the watchdog: agent.compile compiles here
        if self.robot.watchdog_tripped:
            # no command of this run was sent yet (setup: loading, compiling, the policy's
            # reset): the trip only stopped an idle arm, and a run starts the watchdog afresh
            log.info("the command watchdog tripped before the run's first command: rearmed it")
            self.robot.rearm()
        plan, plan_i, faults = None, 0, 0
        robot_period, last_sent = 1.0 / self.robot.action_spec.rate_hz, -math.inf
        tick = self.clock()
        for _ in range(cfg.max_steps):
            status = self.robot.status()
            if not status.ok:
                result.reason = status.state.value
                result.message = f"robot reports {status.state.value}: {status.message}"
                return
            obs = self.robot.get_observation()
            t_obs = min(float(obs["t_pixels"]), float(obs["t_proprio"]))
            t_target = tick + period
            action, source, plan_ms, why = None, "hold", float("nan"), ""
            age = self.clock() - t_obs
            if not np.all(np.isfinite(obs["proprio"])):
                why = "observation proprio is NaN or inf"
            elif age > cfg.stale_obs_s:
                why = f"observation is {age * 1000:.0f} ms old (limit {cfg.stale_obs_s * 1000:.0f})"
            else:
                t0 = self.clock()
                fresh = np.asarray(self.policy.act(obs), np.float32)
                now = self.clock()
                plan_ms = (now - t0) * 1000
                result.plan_ms.append(plan_ms)
                # the fallback: the policy's next env-step actions (MPCAgent.upcoming), or
                # else its plan (one action per step, the first one just returned)
                new_plan, start = getattr(self.policy, "upcoming", None), 0
                if new_plan is None:
                    new_plan, start = getattr(self.policy, "plan", None), 1
                if now <= t_target:
                    action, source, plan_i = fresh, "plan", start
                    plan = None if new_plan is None else _as_numpy(new_plan)
                else:  # what is measured: the tick's status, observation and plan together
                    why = (
                        f"the action was ready {(now - tick) * 1000:.0f} ms into the "
                        f"{period * 1000:.0f} ms tick (planning {plan_ms:.0f} ms, reading "
                        "status and observation the rest)"
                    )
                    # sent now: due at the end of the tick that starts now, not at the missed
                    # target (the robot would drop it as stale and hold instead)
                    t_target = now + period
                    if plan is not None and plan_i < len(plan):
                        action, source = plan[plan_i], "shifted"
                        plan_i += 1
            if action is None:
                action = self.robot.hold_action()
            if not self.dry_run:  # at least one robot period since the last command (a late
                # tick's fallback is sent when ready, and the next tick follows at once)
                self.sleep(max(0.0, last_sent + robot_period - self.clock()))
                last_sent = self.clock()
            try:
                applied = self.robot.send_action(action, t_target, dry_run=self.dry_run)
                safe = self._filtered(applied)
            except ActionRejected as e:  # nothing safe to send: stop (hold where it is)
                why, source = why or str(e), "hold"
                self.robot.stop()
                applied = safe = self.robot.hold_action()
            if not np.allclose(safe, action, rtol=0, atol=1e-6):
                result.limited += 1  # the safety layer changed it (or rejected it)
            if not np.allclose(applied, safe, rtol=0, atol=1e-6):
                result.replaced += 1
                log.warning(
                    "tick %d: the robot applied %s instead of %s", result.steps, applied, safe
                )
            faults = faults + 1 if why else 0
            if why:
                log.warning("tick %d: %s: %s", result.steps, why, source)
            runlog.add_obs(obs)
            runlog.add_action(
                applied,
                action,
                t_obs=t_obs,
                t_target=t_target,
                t_sent=self.clock(),
                plan_ms=plan_ms,
                source=SOURCES.index(source),
            )
            result.steps += 1
            result.sources[source] += 1
            if faults >= cfg.max_consecutive_faults:
                result.reason, result.message = "fault", f"{why} ({faults} ticks in a row)"
                return
            tick = max(tick + period, self.clock())  # late: start the next tick now, no catch-up
            self.sleep(max(0.0, tick - self.clock()))

    def _filtered(self, applied: np.ndarray) -> np.ndarray:
        """What the safety layer let through this tick (the robot may have applied another
        action, e.g. the hold when the command came late): its last filtered command."""
        if self.dry_run:
            return applied  # a dry run returns the filtered command itself
        last = self.robot.last_command
        return applied if last is None else np.asarray(last, np.float32)


def _as_numpy(plan: Any) -> np.ndarray:
    if hasattr(plan, "detach"):
        plan = plan.detach().cpu().numpy()
    return np.asarray(plan, np.float32)
