"""Data collection runner: episodes -> chunked dataset, in parallel, resumable."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

import envs
from agent import dataset as ds
from agent.errors import ignore_sigint
from agent.policies import (
    LEARNED,
    LEARNED_NOISE,
    NOISY,
    ORACLE_DRIVEN,
    make_policy,
    policy_choices,
)
from envs.config import EnvConfig
from envs.registry import PUSH_T_TASKS
from envs.tasks.push_t import START_RANGES


@dataclass(frozen=True)
class CollectConfig:
    """Settings of ``python -m agent.collect``."""

    env: EnvConfig = field(default_factory=EnvConfig)  #: task and image size
    episodes: int = 100  #: episodes to collect
    out: str = "data/point_mass"  #: dataset folder
    policy: str = "mixed"  #: exploration policy (see agent.policies)
    workers: int = 2  #: parallel processes; 0 = all cores
    chunk_size: int = 10  #: episodes per chunk
    seed: int = 0  #: episode e is reset with seed + e
    video: bool = True  #: write preview.mp4 of the first episode
    #: a trained policy (``agent.gcbc``) for ``policy=gcbc``: on-policy data, e.g. for GCSL
    policy_checkpoint: str = ""
    #: Gaussian noise added to the actions of policy=gcbc (None: 0.2) or, in a collection
    #: without gcbc, of noisy_oracle (None: 0.3) and push_explore (None: 0.1)
    policy_sigma: float | None = None
    #: ... and the chance of a uniform action instead (None: gcbc 0.1, noisy_oracle 0.2); for
    #: push_explore the chance that a planned push is a random candidate (None: 0.5)
    policy_eps: float | None = None
    #: also record the task's ``expert_action()`` at every step (``expert_actions``): labels
    #: for DAgger, whose data the acting policy (e.g. ``policy=gcbc``) visits and the expert labels
    expert_labels: bool = False
    #: Push-T: the block's start centre in [-r, r]^2 m instead of the task's 0.08 (up to 0.2:
    #: episodes starting near the walls, the goals still the task's; None: the task's starts)
    start_range: float | None = None

    def __post_init__(self) -> None:
        if self.episodes < 1:
            raise ValueError(f"episodes={self.episodes} must be >= 1")
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size={self.chunk_size} must be >= 1")
        if self.seed < 0:
            raise ValueError(f"seed={self.seed}: use a reset seed >= 0 (evaluation uses 100000+)")
        if self.workers < 0:
            raise ValueError(f"workers={self.workers} must be >= 0 (0 = all cores)")
        choices = policy_choices(self.policy)  # raises on an unknown name
        if (LEARNED in choices) != bool(self.policy_checkpoint):
            raise ValueError(
                f"policy={self.policy} with policy_checkpoint={self.policy_checkpoint!r}: "
                f"policy={LEARNED} and policy_checkpoint=<gcbc>.safetensors go together"
            )
        sigma, eps = self.policy_sigma, self.policy_eps
        if (sigma is not None and sigma < 0) or (eps is not None and not 0 <= eps <= 1):
            raise ValueError(
                f"policy_sigma={sigma}, policy_eps={eps}: use a sigma >= 0 and an eps in [0, 1]"
            )
        if (sigma, eps) != (None, None) and not set(choices) & set(NOISY):
            raise ValueError(
                f"policy_sigma / policy_eps set with policy={self.policy}: they apply to "
                f"{' or '.join(NOISY)} only; drop them or choose one of those policies"
            )
        acting_oracles = sorted(set(choices) & set(ORACLE_DRIVEN))
        if self.expert_labels and acting_oracles:
            raise ValueError(
                f"expert_labels=true with policy={self.policy}: the oracle already acts in "
                f"{', '.join(acting_oracles)} episodes, and asking it for labels too would "
                "advance its plan twice per step; use policy=gcbc (DAgger) or exploration policies"
            )
        if self.start_range is not None and self.env.name not in PUSH_T_TASKS:
            raise ValueError(
                f"start_range={self.start_range} with env={self.env.name}: only "
                f"{' and '.join(PUSH_T_TASKS)} have wide starts; drop start_range"
            )
        lo, hi = START_RANGES
        if self.start_range is not None and not lo <= self.start_range <= hi:
            raise ValueError(
                f"start_range={self.start_range} is out of range: use {lo}..{hi} m (the task's "
                f"own starts: {lo})"
            )
        if self.policy_checkpoint and not Path(self.policy_checkpoint).is_file():
            raise FileNotFoundError(
                f"policy_checkpoint={self.policy_checkpoint} does not exist: train one with "
                "python -m agent.gcbc"
            )

    def identity(self) -> dict[str, Any]:
        """The settings that determine the dataset's content (resume must match them)."""
        d = asdict(self)
        for k in ("out", "workers", "video"):
            d.pop(k)
        if not self.expert_labels:  # collections without labels keep their old identity
            d.pop("expert_labels")
        # collections without a trained policy or noise settings keep their old identity
        for k, default in zip(("policy_sigma", "policy_eps"), LEARNED_NOISE, strict=True):
            if d[k] is None:
                if self.policy_checkpoint:
                    d[k] = default
                else:
                    d.pop(k)
        if self.start_range is None:  # collections with the task's starts keep their identity
            d.pop("start_range")
        if not self.policy_checkpoint:
            d.pop("policy_checkpoint")
        else:
            d["policy_checkpoint_sha256"] = ds.file_digest([Path(self.policy_checkpoint)])
        return d


def run_episode(
    env: Any,
    seed: int,
    policy_name: str,
    learned: Any = None,
    noise: dict[str, float] | None = None,
    expert_labels: bool = False,
    start_range: float | None = None,
) -> ds.EpisodeBuffer:
    """One full-budget episode with the exploration policy (no early stop at success); with
    ``expert_labels`` the task's ``expert_action`` is asked at every step, before the policy
    acts (an oracle may keep its plan between calls, so it must see every step)."""
    task = env.unwrapped
    rng = np.random.default_rng([seed, 1])  # independent of the env's own seed stream
    policy = make_policy(policy_name, rng, env.action_space.shape[0], learned, noise)
    wants_obs = getattr(policy, "wants_obs", False)
    options = None if start_range is None else {"start_range": start_range}
    obs, info = env.reset(seed=seed, options=options)
    ep = ds.EpisodeBuffer(seed=seed)
    goal = task.goal_observation()
    ep.goal = {"pixels": goal["pixels"], "proprio": goal["proprio"], "state": task.goal_state()}
    ep.add_obs(obs["pixels"], obs["proprio"], task.state(), info["distance_to_goal"])
    truncated = terminated = False
    while not (terminated or truncated):
        if expert_labels:
            ep.expert_actions.append(np.asarray(task.expert_action(), np.float32))
        a = (policy(task, obs) if wants_obs else policy(task)).astype(np.float32)
        obs, _, terminated, truncated, info = env.step(a)
        ep.actions.append(a)
        ep.add_obs(obs["pixels"], obs["proprio"], task.state(), info["distance_to_goal"])
    return ep


_WORKER_ENV: dict[str, Any] = {}
_WORKER_POLICY: dict[str, Any] = {}


def _learned_policy(path: str, task: str) -> Any:
    """The trained policy ``policy=gcbc`` drives, loaded once per worker."""
    if not path:
        return None
    if path not in _WORKER_POLICY:
        import torch

        from agent.gcbc import GCBCPolicy

        torch.set_num_threads(1)  # one per worker process
        _WORKER_POLICY[path] = GCBCPolicy(path, expect_task=task)
    return _WORKER_POLICY[path]


def noise_of(ident: dict[str, Any]) -> dict[str, float]:
    """The noise settings a collection's identity fixes, as keyword arguments of the noisy
    policies (``sigma``, ``eps``); absent ones stay the policy's own."""
    return {k: ident[f"policy_{k}"] for k in ("sigma", "eps") if f"policy_{k}" in ident}


def _collect_chunk(args: tuple[dict[str, Any], str, int]) -> tuple[int, int, int]:
    ident, out, index = args
    key = json.dumps(ident["env"], sort_keys=True)
    if key not in _WORKER_ENV:
        _WORKER_ENV[key] = envs.make(ident["env"]["name"], image_size=ident["env"]["image_size"])
    env = _WORKER_ENV[key]
    first = index * ident["chunk_size"]
    last = min(first + ident["chunk_size"], ident["episodes"])
    learned = _learned_policy(ident.get("policy_checkpoint", ""), ident["env"]["name"])
    noise, labels = noise_of(ident), ident.get("expert_labels", False)
    wide = ident.get("start_range")
    eps = [
        run_episode(env, ident["seed"] + e, ident["policy"], learned, noise, labels, wide)
        for e in range(first, last)
    ]
    ds.write_chunk(Path(out), index, eps)
    return index, len(eps), sum(len(e.actions) for e in eps)


def _close_worker_envs() -> None:
    for env in _WORKER_ENV.values():
        env.close()
    _WORKER_ENV.clear()


def prepare_output(cfg: CollectConfig) -> Path:
    """Create ``out`` (or check it holds this same collection); fail clearly otherwise."""
    root = Path(cfg.out)
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / ".write_probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise PermissionError(
            f"cannot write to out={cfg.out} ({e.strerror}): choose a writable folder"
        ) from e
    settings = root / "collect.json"
    ident = cfg.identity()
    if settings.exists():
        old = json.loads(settings.read_text())
        if old != json.loads(json.dumps(ident)):
            diff = sorted(k for k in ident if old.get(k) != json.loads(json.dumps(ident))[k])
            raise FileExistsError(
                f"out={cfg.out} holds a collection with different settings ({', '.join(diff)}): "
                "use another out= or delete that folder"
            )
    elif any(root.iterdir()):
        raise FileExistsError(
            f"out={cfg.out} is not empty and holds no collection: choose a new folder"
        )
    else:
        ds.atomic_write_json(settings, ident)
    ds.remove_stale_temp(root)
    return root


def check_policy(cfg: CollectConfig) -> None:
    """Load ``policy_checkpoint`` (if any) once here, so that a file that is no gcbc policy, or
    one for another task or image size, is one error before ``out`` is claimed: a failed
    command then leaves no ``collect.json`` that would refuse the corrected one."""
    if not cfg.policy_checkpoint:
        return
    path = cfg.policy_checkpoint  # loading checks the format and the task
    size = _learned_policy(path, cfg.env.name).model.cfg.image_size
    if size != cfg.env.image_size:
        raise ValueError(
            f"policy_checkpoint={path} reads {size}x{size} images, env.image_size="
            f"{cfg.env.image_size}: pass env.image_size={size} or a policy trained at "
            f"{cfg.env.image_size}"
        )


def collect(cfg: CollectConfig) -> Path:
    """Collect (or finish collecting) the dataset described by ``cfg``; returns its folder."""
    check_policy(cfg)  # before prepare_output writes collect.json
    root = prepare_output(cfg)
    n_chunks = -(-cfg.episodes // cfg.chunk_size)
    todo = [i for i in range(n_chunks) if i not in set(ds.completed_chunks(root))]
    ident = cfg.identity()
    workers = cfg.workers or os.cpu_count() or 1
    done_eps = (n_chunks - len(todo)) * cfg.chunk_size
    bar = tqdm(
        total=cfg.episodes,
        initial=min(done_eps, cfg.episodes),
        unit="ep",
        desc=f"collect {cfg.env.name}",
        dynamic_ncols=True,
    )
    jobs = [(ident, str(root), i) for i in todo]
    try:
        if workers == 1 or len(jobs) <= 1:
            for job in jobs:
                bar.update(_collect_chunk(job)[1])
        else:
            with mp.get_context("spawn").Pool(min(workers, len(jobs)), ignore_sigint) as pool:
                for _, n_eps, _ in pool.imap_unordered(_collect_chunk, jobs):
                    bar.update(n_eps)
    finally:
        bar.close()
        _close_worker_envs()
    write_meta(cfg, root, n_chunks)
    if cfg.video:
        write_preview(root)
    return root


def write_meta(cfg: CollectConfig, root: Path, n_chunks: int) -> None:
    chunks = [f"chunk_{i:05d}" for i in range(n_chunks)]
    lengths = [np.load(root / c / "lengths.npy") for c in chunks]
    env = envs.make(cfg.env.name, image_size=cfg.env.image_size)
    task = env.unwrapped
    env.reset(seed=cfg.seed)
    meta = {
        "format_version": ds.FORMAT_VERSION,
        "task": cfg.env.name,
        "gym_id": env.spec.id,
        "image_size": cfg.env.image_size,
        "action_space": {
            "low": env.action_space.low.tolist(),
            "high": env.action_space.high.tolist(),
            "shape": list(env.action_space.shape),
        },
        "proprio_dim": int(env.observation_space["proprio"].shape[0]),
        "state_dim": int(task.state().shape[0]),
        "control_rate_hz": task.control_rate_hz,
        "max_episode_steps": env.spec.max_episode_steps,
        "success_threshold": task.success_threshold,
        "distance_units": task.distance_units,
        "policy": cfg.policy,
        **{
            k: v
            for k, v in cfg.identity().items()
            if k in ("policy_checkpoint", "policy_sigma", "policy_eps")
        },
        "policy_choices": policy_choices(cfg.policy),
        **({"expert_labels": True} if cfg.expert_labels else {}),
        "seed": cfg.seed,
        "reset_seeds": [cfg.seed, cfg.seed + cfg.episodes - 1],
        "episodes": int(sum(len(x) for x in lengths)),
        "transitions": int(sum(int(x.sum()) for x in lengths)),
        "chunk_size": cfg.chunk_size,
        "chunks": chunks,
        "sha256": ds.file_digest(
            [root / c / f"{k}.npy" for c in chunks for k in ("pixels", "actions")]
        ),
    }
    env.close()
    ds.atomic_write_json(root / "meta.json", meta)


def write_preview(root: Path) -> None:
    from agent.video import write_mp4

    ep = next(ds.Dataset(root).iter_episodes())
    frames = [np.concatenate([p, ep["goal_pixels"]], axis=1) for p in ep["pixels"]]
    write_mp4(root / "preview.mp4", frames)
