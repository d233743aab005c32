"""``python -m agent.control robot=<adapter> goal=<image> checkpoint=<ckpt>``: MPC on a robot.

``mode=capture_goal`` saves the robot's current camera view to ``goal`` instead;
``mode=dry_run`` runs the loop without sending a command (bring-up: camera, planning time,
what the safety layer would change; see ``agent.control_loop``). The robot
(``configs/robot/<name>.yaml``) is always driven through the safety layer, and the run log
lands in ``loop.output_dir`` as a dataset (see ``agent.control_loop``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf

from agent import shipped_settings
from agent.config import to_dataclass
from agent.control_loop import ControlLoop, LoopConfig, RunResult, check_output_dir
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


def load_goal(path: str, features: dict[str, dict[str, Any]]) -> dict[str, np.ndarray]:
    from PIL import Image

    if not Path(path).is_file():
        raise FileNotFoundError(
            f"goal image {path} does not exist: capture one with mode=capture_goal"
        )
    pixels = np.asarray(Image.open(path).convert("RGB"), np.uint8)
    want = tuple(features["pixels"]["shape"])
    if pixels.shape != want:
        raise ValueError(f"goal image {path} is {pixels.shape}, the robot's camera gives {want}")
    return {"pixels": pixels}


def capture_goal(robot: robots.RobotAdapter, path: str) -> None:
    from PIL import Image

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(robot.get_observation()["pixels"]).save(path)


def control(cfg: ControlConfig, config_dump: dict[str, Any] | None = None) -> RunResult | None:
    """Connect (through the safety layer), then capture a goal or run the loop."""
    if cfg.mode != "capture_goal":
        check_output_dir(cfg.loop.output_dir)  # before connecting: a run never overwrites one
    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    adapter = robots.make(cfg.robot.name, **cfg.robot.options)
    with SafeRobot(adapter, cfg.robot.safety) as robot:
        if cfg.mode == "capture_goal":
            capture_goal(robot, cfg.goal)
            return None
        goal = load_goal(cfg.goal, robot.observation_features)
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
    result = control(to_dataclass(ControlConfig, raw), config_dump=raw)
    if result is None:
        print(f"wrote goal image {cfg.goal}")
        return
    summary = {"reason": result.reason, "steps": result.steps, **result.sources}
    summary.update(limited=result.limited, **result.plan_ms_percentiles())
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
