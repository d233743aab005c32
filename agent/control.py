"""``python -m agent.control robot=<adapter> goal=<image> checkpoint=<ckpt>``: MPC on a robot.

``mode=capture_goal`` saves the robot's current camera view to ``goal`` instead, and its
proprio beside it (``goal_proprio_path``: models that plan on proprio need the goal's), each
written atomically; an existing goal is replaced only with ``overwrite=true``;
``mode=dry_run`` runs the loop without sending a command (bring-up: camera, planning time,
what the safety layer would change; see ``agent.control_loop``). The robot
(``configs/robot/<name>.yaml``) is always driven through the safety layer, and the run log
lands in ``loop.output_dir`` as a dataset (see ``agent.control_loop``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf

from agent import shipped_settings
from agent.config import to_dataclass
from agent.control_loop import (
    ControlLoop,
    LoopConfig,
    RunAborted,
    RunResult,
    check_output_dir,
    check_rate,
)
from agent.dataset import atomic_write_bytes, atomic_write_json, file_digest
from agent.errors import friendly_errors
from agent.handoff import Handoff, check_handoff
from agent.model import ModelConfig
from agent.mpc import AgentConfig
from envs import robots
from envs.robots.safety import SafeRobot, SafetyConfig


def path_part(name: str) -> str:
    """``name`` as one folder name: anything but letters, digits, ``._-`` becomes ``_``
    (``my_arms.ur:MyArm`` -> ``my_arms.ur_MyArm``), so a ``module:Class`` robot gets a
    portable run folder."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", str(name)) or "_"


if not OmegaConf.has_resolver("path_part"):  # configs/control.yaml's loop.output_dir
    OmegaConf.register_new_resolver("path_part", path_part)


@dataclass(frozen=True)
class RobotConfig:
    """One ``configs/robot/*.yaml``."""

    name: str = "sim_arm"  #: adapter name (``envs.robots.ADAPTERS``)
    options: dict[str, Any] = field(default_factory=dict)  #: adapter constructor kwargs
    safety: SafetyConfig = field(default_factory=SafetyConfig)  #: limits (all required)


@dataclass(frozen=True)
class ControlConfig:
    """``configs/control.yaml``."""

    mode: str = "run"  #: run | dry_run (plan and filter every tick, send nothing) | capture_goal
    goal: str = "goal.png"  #: goal image to reach (run) or to write (capture_goal)
    #: capture_goal: replace an existing goal image (and its proprio); off, one is refused
    overwrite: bool = False
    checkpoint: str = "checkpoints/arm_reach.safetensors"  #: world model (policy=gcbc: the policy)
    policy: str = "mpc"  #: mpc (plan on the world model) | gcbc (an agent.gcbc policy)
    #: policy=gcbc: the planner on the policy's world model takes over after this many
    #: actions (0 = never; agent.evaluate's handoff_steps)
    handoff_steps: int = 0
    task: str | None = None  #: checkpoint task to insist on (None: any)
    seed: int = 0  #: planner seed
    #: torch threads for planning (0: torch's default, all cores); on a computer whose cores
    #: also serve cameras and drivers, fewer threads can plan faster and steadier
    threads: int = 0
    robot: RobotConfig = field(default_factory=RobotConfig)
    planner: dict[str, Any] = field(default_factory=dict)  #: a configs/planner/*.yaml
    agent: AgentConfig = field(default_factory=AgentConfig)
    loop: LoopConfig = field(default_factory=LoopConfig)

    def __post_init__(self) -> None:
        if self.mode not in ("run", "dry_run", "capture_goal"):
            raise ValueError(f"mode={self.mode!r}: use run, dry_run or capture_goal")
        if self.policy not in ("mpc", "gcbc"):
            raise ValueError(f"policy={self.policy!r}: use mpc or gcbc")
        check_handoff(self.handoff_steps, self.policy)
        if self.threads < 0:
            raise ValueError(f"threads={self.threads}: use 0 (torch's default) or a count >= 1")


def check_fits(
    model: ModelConfig, path: str, robot: str, spec: robots.ActionSpec, features: dict[str, Any]
) -> None:
    """Refuse, before the first motion, a world model whose actions or observations are not
    the robot's (e.g. a 4-D gantry checkpoint on a 3-D ``ur_rtde`` arm)."""
    fix = "train on this robot's data (agent.collect / agent.import_video) or pick its checkpoint"
    if model.action_dim != spec.dim:
        raise ValueError(
            f"checkpoint {path} plans {model.action_dim}-D actions, robot={robot} takes "
            f"{spec.dim}-D ({spec.mode}): {fix}"
        )
    shape = tuple(features.get("pixels", {}).get("shape", ()))
    if shape and shape != (model.image_size, model.image_size, 3):
        raise ValueError(
            f"checkpoint {path} reads {model.image_size}x{model.image_size} images, "
            f"robot={robot}'s camera gives {shape}: set the robot's image_size option to "
            f"{model.image_size} or {fix}"
        )
    proprio = tuple(features.get("proprio", {}).get("shape", ()))
    if model.proprio_state and proprio and proprio != (model.proprio_dim,):
        raise ValueError(
            f"checkpoint {path} carries {model.proprio_dim} proprio values in its latent, "
            f"robot={robot} reports {proprio[0]}: {fix}"
        )


class _Clipped:
    """A policy whose actions are clipped into the robot's action bounds (as a planner's are)."""

    def __init__(self, policy: Any, spec: robots.ActionSpec) -> None:
        self.policy = policy
        self.low, self.high = np.asarray(spec.low, np.float32), np.asarray(spec.high, np.float32)

    def reset(self, goal: dict[str, np.ndarray]) -> None:
        self.policy.reset(goal)

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return np.clip(self.policy.act(obs), self.low, self.high)


def build_policy(
    cfg: ControlConfig, spec: robots.ActionSpec, features: dict[str, Any] | None = None
) -> Any:
    """The MPC agent from the checkpoint, planning within the robot's action bounds, or
    (``policy=gcbc``) the goal-conditioned policy; either is checked against the robot first."""
    from agent import checkpoint, landmarks
    from agent.mpc import build_agent

    if cfg.policy == "gcbc":
        from agent.gcbc import GCBCPolicy

        policy = GCBCPolicy(cfg.checkpoint, expect_task=cfg.task)
        check_fits(policy.model.cfg, cfg.checkpoint, cfg.robot.name, spec, features or {})
        if not cfg.handoff_steps:
            return _Clipped(policy, spec)
        agent = build_agent(policy.model, cfg.planner, cfg.agent, spec.low, spec.high, cfg.seed)
        return Handoff(_Clipped(policy, spec), agent, cfg.handoff_steps)

    expect = {"task": cfg.task} if cfg.task else None
    model, manifest = checkpoint.load(cfg.checkpoint, expect=expect)
    checkpoint.require_finetuned(manifest, cfg.checkpoint, "planning")
    check_fits(model.cfg, cfg.checkpoint, cfg.robot.name, spec, features or {})
    graph = landmarks.for_checkpoint(cfg.agent.landmarks, cfg.checkpoint)
    return build_agent(model, cfg.planner, cfg.agent, spec.low, spec.high, cfg.seed, graph)


def goal_proprio_path(goal: str | os.PathLike) -> Path:
    """Where ``mode=capture_goal`` keeps the goal's proprio: beside the image, named after it
    (``goal.png`` -> ``goal.png.proprio.json``), with the image's sha256 to tie the two."""
    goal = Path(goal)
    return goal.with_name(goal.name + ".proprio.json")


def load_goal(path: str) -> dict[str, np.ndarray]:
    """The goal image at ``path`` (``pixels`` (H, W, 3) uint8) and, when it was captured with
    it, the goal's ``proprio`` (P,) float32. Reads files only: called before connecting."""
    from PIL import Image, UnidentifiedImageError

    if not Path(path).is_file():
        raise FileNotFoundError(
            f"goal image {path} does not exist: capture one with mode=capture_goal"
        )
    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"), np.uint8)
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(
            f"goal={path} is not a readable image ({e}): pass a goal image written by "
            "mode=capture_goal"
        ) from e
    goal = {"pixels": pixels}
    side = goal_proprio_path(path)
    if side.is_file():
        again = f"capture the goal again (mode=capture_goal goal={path} overwrite=true)"
        try:
            saved = json.loads(side.read_text())
            proprio = np.asarray(saved["proprio"], np.float32)
            digest = saved["image_sha256"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ValueError(f"goal proprio {side} is unreadable ({e}): {again}") from e
        if digest != file_digest([Path(path)]):
            raise ValueError(
                f"goal proprio {side} was saved with another image than {path}: {again}"
            )
        if proprio.ndim != 1 or not np.all(np.isfinite(proprio)):
            raise ValueError(f"goal proprio {side} is not a finite vector: {again}")
        goal["proprio"] = proprio
    return goal


def check_goal(goal: dict[str, np.ndarray], path: str, features: dict[str, Any]) -> None:
    """Refuse a goal the robot's camera or proprio cannot match (another robot's goal)."""
    want = tuple(features["pixels"]["shape"])
    if goal["pixels"].shape != want:
        raise ValueError(
            f"goal image {path} is {goal['pixels'].shape}, the robot's camera gives {want}"
        )
    proprio = tuple(features.get("proprio", {}).get("shape", ()))
    if "proprio" in goal and proprio and goal["proprio"].shape != proprio:
        raise ValueError(
            f"goal {path}'s proprio has {goal['proprio'].shape[0]} values, the robot reports "
            f"{proprio[0]}: capture the goal on this robot (mode=capture_goal overwrite=true)"
        )


def goal_proprio_need(cfg: ControlConfig) -> str | None:
    """Why the policy needs the goal's proprio (None: it does not), from the checkpoint's
    manifest alone, so that a goal without one is refused before connecting."""
    from agent import checkpoint, gcbc

    model = gcbc.world_model_of(cfg.checkpoint) if cfg.policy == "gcbc" else cfg.checkpoint
    if checkpoint.read_manifest(model).get("model", {}).get("proprio_state"):
        return f"the world model {model} plans on proprio (model.proprio_state=true)"
    plans = cfg.policy == "mpc" or cfg.handoff_steps > 0
    if plans and cfg.agent.proprio_weight:
        return f"agent.proprio_weight={cfg.agent.proprio_weight:g} weighs the distance to it"
    return None


def check_goal_proprio(cfg: ControlConfig, goal: dict[str, np.ndarray]) -> None:
    """Refuse, before connecting, a goal without proprio for a policy that needs it."""
    if "proprio" in goal:
        return
    need = goal_proprio_need(cfg)
    if need is not None:
        raise ValueError(
            f"goal {cfg.goal} has no saved proprio ({goal_proprio_path(cfg.goal).name}) and "
            f"{need}: capture the goal again with this version (mode=capture_goal "
            f"goal={cfg.goal} overwrite=true saves it beside the image)"
        )


def check_goal_target(path: str, overwrite: bool) -> str:
    """The image format ``path`` is written in; refuses a name PIL cannot write and an
    existing goal unless ``overwrite`` (before connecting)."""
    from PIL import Image

    fmt = Image.registered_extensions().get(Path(path).suffix.lower())
    if fmt is None or fmt not in Image.SAVE:
        raise ValueError(f"goal={path}: name an image file, e.g. goal.png")
    if Path(path).exists() and not overwrite:
        raise FileExistsError(
            f"goal {path} already exists: pass overwrite=true to replace it, or another goal="
        )
    return fmt


def capture_goal(robot: robots.RobotAdapter, path: str, overwrite: bool = False) -> None:
    """Save the robot's camera view as the goal image and its proprio beside it, each
    atomically: the proprio (with the new image's sha256) first, then the image, so a cut
    leaves the old goal whole or a mismatch ``load_goal`` names, never a half-written file."""
    from PIL import Image

    fmt = check_goal_target(path, overwrite)
    obs = robot.get_observation()
    proprio = np.asarray(obs["proprio"], np.float32)
    if not np.all(np.isfinite(proprio)):
        raise robots.RobotError(
            f"the robot reports non-finite proprio {proprio.tolist()}: goal {path} not captured"
            " (check the robot's state readings, then capture again)"
        )
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    image = io.BytesIO()
    Image.fromarray(np.asarray(obs["pixels"], np.uint8)).save(image, format=fmt)
    data = image.getvalue()
    atomic_write_json(
        goal_proprio_path(path),
        {"proprio": [float(x) for x in proprio], "image_sha256": hashlib.sha256(data).hexdigest()},
    )
    atomic_write_bytes(path, data)


@contextlib.contextmanager
def connected(adapter: robots.RobotAdapter, safety: SafetyConfig) -> Iterator[SafeRobot]:
    """The adapter behind the safety layer, connected; stopped and disconnected after. A stop
    that raises then is one ``RobotError`` line (the arm may still move), not a traceback."""
    robot = SafeRobot(adapter, safety)
    robot.connect()
    try:
        yield robot
    finally:
        try:
            robot.disconnect()
        except robots.RobotError:
            raise
        except Exception as e:
            raise robots.RobotError(
                f"stopping the robot before disconnecting failed ({type(e).__name__}: {e}): "
                "the arm may still move, stop it by hand"
            ) from e


def control(cfg: ControlConfig, config_dump: dict[str, Any] | None = None) -> RunResult | None:
    """Check what can be checked without the robot, connect (through the safety layer), then
    capture a goal or run the loop."""
    if cfg.mode == "capture_goal":
        check_goal_target(cfg.goal, cfg.overwrite)  # before connecting
    else:
        check_output_dir(cfg.loop.output_dir)  # before connecting: a run never overwrites one
        goal = load_goal(cfg.goal)
        check_goal_proprio(cfg, goal)
    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    adapter = robots.make(cfg.robot.name, **cfg.robot.options)
    if cfg.mode != "capture_goal":
        with contextlib.suppress(robots.RobotError):  # a bridge knows it once connected
            check_rate(cfg.loop.rate_hz, adapter.action_spec)  # before connecting
    with connected(adapter, cfg.robot.safety) as robot:
        if cfg.mode == "capture_goal":
            capture_goal(robot, cfg.goal, cfg.overwrite)
            return None
        check_rate(cfg.loop.rate_hz, robot.action_spec)  # (ControlLoop checks it too)
        check_goal(goal, cfg.goal, robot.observation_features)
        policy = build_policy(cfg, robot.action_spec, robot.observation_features)
        meta = {"task": cfg.robot.name, "goal": cfg.goal, "checkpoint": cfg.checkpoint}
        meta = {**meta, "config": config_dump}
        dry = cfg.mode == "dry_run"
        return ControlLoop(robot, policy, cfg.loop, meta, dry_run=dry).run(goal)


@hydra.main(version_base="1.3", config_path="../configs", config_name="control")
@friendly_errors
def main(cfg: DictConfig) -> None:
    raw = OmegaConf.to_container(cfg, resolve=True)
    if raw["mode"] in ("run", "dry_run"):  # the shipped planning settings
        shipped_settings.fill_in_for_policy(raw)
    try:
        result = control(to_dataclass(ControlConfig, raw), config_dump=raw)
    except RunAborted as e:  # the adapter or the policy raised: stopped, logged, one line
        raise SystemExit(f"error: {e}") from e
    if result is None:
        print(f"wrote goal image {cfg.goal} and its proprio {goal_proprio_path(cfg.goal)}")
        return
    summary = {"reason": result.reason, "steps": result.steps, **result.sources}
    summary.update(limited=result.limited, replaced=result.replaced)
    summary.update(result.plan_ms_percentiles())
    print(
        json.dumps(
            {**summary, "tick_ms": 1000 / cfg.loop.rate_hz, "dry_run": cfg.mode == "dry_run"}
        )
    )
    print(f"wrote run log {result.log_dir}")
    if not result.ok:
        raise SystemExit(f"error: run stopped ({result.reason}): {result.message}")


if __name__ == "__main__":
    main()
