"""RL baselines (stable-baselines3) on the state interface of a task, saved without pickle.

``build(cfg, env, seed)`` makes an SB3 SAC (+ hindsight experience replay) or PPO learner on a
``StateGoal`` env. ``save_policy`` writes only the policy's tensors (safetensors) and a JSON
manifest with everything needed to rebuild it; ``load_policy`` rebuilds the network from the
manifest and returns ``act(state_obs) -> action``. SB3's own ``.zip`` format pickles, so it is
never used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agent.checkpoint import CheckpointError, load_tensors, read_manifest, write

FORMAT = "jepa-mpc/rl-policy/1"
ALGOS = ("sac", "ppo")


@dataclass(frozen=True)
class AlgoConfig:
    """The ``algo`` block: learner and its hyperparameters (SB3 names)."""

    name: str = "sac"  #: sac (off-policy, + HER) | ppo (on-policy)
    reward: str = "sparse"  #: sparse (0 at success, else -1) | dense (minus distance)
    her: bool = True  #: hindsight relabeling (sac only): goal_selection_strategy=future
    n_sampled_goal: int = 4  #: relabeled goals per real one (her)
    learning_rate: float = 1e-3  #: Adam step size
    gamma: float = 0.95  #: discount
    batch_size: int = 256  #: minibatch
    net: list[int] = field(default_factory=lambda: [256, 256])  #: MLP widths (actor and critic)
    # off-policy
    buffer_size: int = 1_000_000  #: replay capacity (sac)
    learning_starts: int = 1000  #: random steps before updates (sac)
    tau: float = 0.05  #: target network Polyak rate (sac)
    train_freq: int = 1  #: env steps between updates (sac)
    gradient_steps: int = 1  #: updates per train_freq (sac)
    # on-policy
    n_steps: int = 2048  #: rollout length per update (ppo)
    n_epochs: int = 10  #: passes over each rollout (ppo)
    ent_coef: float = 0.0  #: entropy bonus (ppo)

    def __post_init__(self) -> None:
        if self.name not in ALGOS:
            raise ValueError(f"algo.name={self.name!r} is unknown: choose one of {list(ALGOS)}")
        if self.her and self.name != "sac":
            raise ValueError("algo.her=true needs an off-policy learner: use algo=sac")
        if self.reward not in ("sparse", "dense"):
            raise ValueError(f"algo.reward={self.reward!r} is unknown: use sparse or dense")


def build(cfg: AlgoConfig, env: Any, seed: int, for_training: bool = True) -> Any:
    """An SB3 learner on ``env`` (a ``StateGoal`` env). ``for_training=False`` skips replay."""
    from stable_baselines3 import PPO, SAC, HerReplayBuffer

    policy_kwargs = {"net_arch": list(cfg.net)}
    common = {
        "learning_rate": cfg.learning_rate,
        "gamma": cfg.gamma,
        "batch_size": cfg.batch_size,
        "policy_kwargs": policy_kwargs,
        "seed": seed,
        "device": "cpu",
        "verbose": 0,
    }
    if cfg.name == "ppo":
        return PPO(
            "MultiInputPolicy",
            env,
            n_steps=cfg.n_steps,
            n_epochs=cfg.n_epochs,
            ent_coef=cfg.ent_coef,
            **common,
        )
    replay: dict[str, Any] = {"buffer_size": cfg.buffer_size if for_training else 1}
    if cfg.her and for_training:
        replay["replay_buffer_class"] = HerReplayBuffer
        replay["replay_buffer_kwargs"] = {
            "n_sampled_goal": cfg.n_sampled_goal,
            "goal_selection_strategy": "future",
        }
    return SAC(
        "MultiInputPolicy",
        env,
        learning_starts=cfg.learning_starts,
        tau=cfg.tau,
        train_freq=cfg.train_freq,
        gradient_steps=cfg.gradient_steps,
        **replay,
        **common,
    )


def save_policy(path: str | os.PathLike, learner: Any, manifest: dict[str, Any]) -> Path:
    """Policy tensors + manifest, atomically (weights first); returns the .safetensors path."""
    return write(path, learner.policy.state_dict(), manifest, FORMAT)


def read_policy_manifest(path: str | os.PathLike) -> dict[str, Any]:
    hint = "train one with python -m agent.train_baseline env=<task> algo=sac"
    return read_manifest(path, FORMAT, hint)


def load_policy(path: str | os.PathLike, env: Any, expect_task: str | None = None):
    """Rebuild a saved policy on ``env`` (a ``StateGoal`` env): ``act(obs) -> action``."""
    import torch

    manifest = read_policy_manifest(path)
    if expect_task is not None and manifest["task"] != expect_task:
        raise CheckpointError(
            f"RL policy {path} was trained on {manifest['task']!r}, not {expect_task!r}: "
            f"pass checkpoint=<a policy trained on {expect_task}>"
        )
    tensors = load_tensors(path)  # refused unless its sha256 is the manifest's
    cfg = AlgoConfig(**manifest["algo"])
    learner = build(cfg, env, seed=0, for_training=False)
    learner.policy.load_state_dict(tensors, strict=True)
    learner.policy.set_training_mode(False)

    def act(obs: dict[str, np.ndarray]) -> np.ndarray:
        with torch.no_grad():
            action, _ = learner.predict(obs, deterministic=True)
        return np.asarray(action, dtype=np.float64)

    return act, manifest
