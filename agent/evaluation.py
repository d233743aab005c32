"""Evaluation harness: episodes in parallel workers -> results.json, results.csv, videos.

One code path for every policy: ``mpc`` (a checkpoint + planner), and the baselines
``random`` (uniform actions), ``oracle`` (the task's true-state controller), so model error
and planner error can be told apart, and ``rl`` (a state-based RL policy from
``agent.train_baseline``), and ``sim_mpc`` (the planner with the simulator as its model:
``agent.sim_mpc``), and ``push_primitives`` (Push-T only: the task's push primitives scored
by the world model, with a state probe reading the T's pose off the image latent:
``agent.push_primitives``). An episode succeeds if ``info["success"]`` holds at any
step within the task's budget; it stops there.
"""

from __future__ import annotations

import csv
import json
import multiprocessing as mp
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

import envs
from agent.dataset import atomic_write_json
from agent.errors import ignore_sigint
from agent.handoff import Handoff, check_handoff
from agent.mpc import AgentConfig
from agent.push_primitives import COSTS as PRIMITIVE_COSTS
from agent.push_primitives import POSES as PRIMITIVE_POSES
from agent.sim_mpc import SIM_COSTS
from envs.config import EnvConfig
from envs.registry import PUSH_T_TASKS

POLICIES = ("mpc", "random", "oracle", "rl", "sim_mpc", "gcbc", "push_primitives")
#: the policies that act on the camera image; the others read the true state (no rendering)
PIXEL_POLICIES = ("mpc", "gcbc", "push_primitives")
#: the tasks ``policy=push_primitives`` knows the primitives of
PRIMITIVE_TASKS = PUSH_T_TASKS


@dataclass(frozen=True)
class EvalSettings:
    """The ``eval`` block."""

    episodes: int = 20  #: episodes to run
    seed: int = 100_000  #: first reset seed (training data uses seeds below 100000)
    workers: int = 2  #: parallel processes (0 = all cores)
    videos: int = 2  #: episodes recorded as mp4 (observation | goal | imagined final step)
    bootstrap: int = 10_000  #: resamples for the 95% interval
    #: 0: the task's own goals; K > 0: near goals, the state the oracle reaches K steps toward
    #: the task's goal (DINO-WM's protocol: goals K steps along a trajectory; envs/base.py)
    goal_steps: int = 0

    def __post_init__(self) -> None:
        for name, least in (("episodes", 1), ("workers", 0), ("videos", 0), ("bootstrap", 1)):
            if getattr(self, name) < least:
                raise ValueError(
                    f"eval.{name}={getattr(self, name)}: use an integer >= {least}"
                    + (" (0: one per core)" if name == "workers" else "")
                )
        if self.seed < 0:
            raise ValueError(f"eval.seed={self.seed}: use a reset seed >= 0 (held-out: 100000+)")
        steps = self.goal_steps
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ValueError(f"eval.goal_steps={steps!r} is invalid: use an int >= 0")


@dataclass(frozen=True)
class EvalConfig:
    """Settings of ``python -m agent.evaluate``."""

    env: EnvConfig = field(default_factory=EnvConfig)  #: task
    policy: str = "mpc"  #: mpc | random | oracle | rl | sim_mpc | gcbc
    #: world model (policy=mpc), RL policy (policy=rl) or gcbc policy (policy=gcbc)
    checkpoint: str = "checkpoints/point_mass.safetensors"
    planner: dict[str, Any] = field(default_factory=lambda: {"name": "cem"})  #: planner config
    agent: AgentConfig = field(default_factory=AgentConfig)  #: MPC settings
    eval: EvalSettings = field(default_factory=EvalSettings)  #: episodes and seeds
    output_dir: str = "outputs/eval"  #: results.json, results.csv, videos/
    sim_cost: str = "state"  #: policy=sim_mpc: state | task (agent.sim_mpc)
    #: policy=gcbc: after this many steps without success the MPC agent on the policy's own
    #: world model (``planner``, ``agent`` settings) finishes the episode; 0 = never
    handoff_steps: int = 0
    #: policy=push_primitives: the state probe (agent.state_probe) of the checkpoint
    probe: str | None = None
    #: policy=push_primitives: score pushes by the probed pose (pose), the latent through the
    #: model's cost view (latent: its slow features with model.cost_features), or the whole
    #: image latent (latent_whole)
    primitive_cost: str = "pose"
    #: policy=push_primitives: the T's pose from the probe (probe), or the true one (state: an
    #: ablation that tells the probe's error from the world model's)
    primitive_pose: str = "probe"
    #: policy=push_primitives: env steps of a chosen push run before the next search (0: all)
    primitive_chunk: int = 0

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"policy={self.policy!r} is unknown: choose one of {list(POLICIES)}")
        if self.policy == "push_primitives":
            if self.env.name not in PRIMITIVE_TASKS:
                raise ValueError(
                    f"policy=push_primitives knows the primitives of {list(PRIMITIVE_TASKS)}, "
                    f"not of {self.env.name}: use policy=mpc"
                )
            if self.primitive_pose not in PRIMITIVE_POSES:
                raise ValueError(
                    f"primitive_pose={self.primitive_pose!r} is unknown: use probe or state"
                )
            if self.primitive_cost not in PRIMITIVE_COSTS:
                raise ValueError(
                    f"primitive_cost={self.primitive_cost!r} is unknown: choose one of "
                    f"{list(PRIMITIVE_COSTS)}"
                )
            if not self.probe:
                raise ValueError(
                    "policy=push_primitives needs probe=<path> (a pose probe of the checkpoint: "
                    "python -m agent.state_probe --dims 2:6)"
                )
        check_handoff(self.handoff_steps, self.policy)
        if self.sim_cost not in SIM_COSTS:
            raise ValueError(
                f"sim_cost={self.sim_cost!r} is unknown: choose one of {list(SIM_COSTS)}"
            )


def build_policy(cfg: EvalConfig, env: Any, torch_threads: int | None = None):
    """Returns ``(reset(goal, seed), act(obs) -> action, agent_or_None)``."""
    task = env.unwrapped
    if cfg.policy == "oracle":
        return (lambda goal, seed: None), (lambda obs: task.oracle_action()), None
    if cfg.policy == "random":
        state = {}

        def reset(goal, seed):
            state["rng"] = np.random.default_rng([seed, 2])

        return reset, (lambda obs: state["rng"].uniform(-1, 1, env.action_space.shape)), None
    import torch

    if torch_threads:
        torch.set_num_threads(torch_threads)
    if cfg.policy == "rl":
        from agent.rl import load_policy
        from envs.wrappers import StateGoal, state_observation

        spaces = StateGoal(envs.make(cfg.env.name))  # only its spaces: the policy's shapes
        act_state, _ = load_policy(cfg.checkpoint, spaces, expect_task=cfg.env.name)
        spaces.close()
        return (lambda goal, seed: None), (lambda obs: act_state(state_observation(task))), None

    if cfg.policy == "gcbc":
        from agent.gcbc import GCBCPolicy

        gcbc = GCBCPolicy(cfg.checkpoint, expect_task=cfg.env.name)
        if cfg.handoff_steps:
            return _handoff(cfg, env, gcbc)
        return gcbc.reset, gcbc.act, None  # timed like the other baselines: per action
    if cfg.policy == "sim_mpc":
        from agent.mpc import make_planner
        from agent.sim_mpc import SimMPC

        space = env.action_space
        planner, path = make_planner(cfg.planner, cfg.agent, space.low, space.high)
        sim = SimMPC(task, cfg.env.name, planner, cfg.agent, cfg.sim_cost, path)
        sim.reset_options = _reset_options(cfg)
        return (lambda goal, seed: sim.reset(goal, seed)), sim.act, sim
    from agent import checkpoint, landmarks

    model, _ = checkpoint.load(cfg.checkpoint, expect={"task": cfg.env.name})
    if cfg.policy == "push_primitives":
        from agent import state_probe
        from agent.push_primitives import PushPrimitiveMPC

        probe, _ = state_probe.load(cfg.probe, cfg.checkpoint)
        truth = None
        if cfg.primitive_pose == "state":
            task = env.unwrapped

            def truth():
                return task.block_pose(), task.goal_pose()

        prim = PushPrimitiveMPC(model, probe, cfg.primitive_cost, truth, cfg.primitive_chunk)
        return prim.reset, prim.act, None  # timed per action, its searches included
    from agent.mpc import build_agent

    graph = landmarks.for_checkpoint(cfg.agent.landmarks, cfg.checkpoint)
    space = env.action_space
    agent = build_agent(model, cfg.planner, cfg.agent, space.low, space.high, landmarks=graph)
    return (lambda goal, seed: agent.reset(goal, seed)), agent.act, agent


def _handoff(cfg: EvalConfig, env: Any, gcbc: Any):
    """The policy for ``cfg.handoff_steps`` steps, then the planner on its world model."""
    from agent.mpc import build_agent

    space = env.action_space
    agent = build_agent(gcbc.model, cfg.planner, cfg.agent, space.low, space.high)
    both = Handoff(gcbc, agent, cfg.handoff_steps)
    return both.reset, both.act, None  # timed per action, planning steps included


def run_episode(
    cfg: EvalConfig, env: Any, policy: tuple, seed: int, record: bool
) -> dict[str, Any]:
    reset, act, agent = policy
    task = env.unwrapped
    task.render_observations = record or cfg.policy in PIXEL_POLICIES
    obs, info = env.reset(seed=seed, options=_reset_options(cfg))
    goal = task.goal_observation()
    reset(goal, seed)
    frames, plan_ms, steps, success = [], [], 0, bool(info["success"])
    truncated = False
    while not (success or truncated):
        t0 = time.perf_counter()
        a = act(obs)
        if agent is None:  # baselines: the latency of one action
            plan_ms.append(1e3 * (time.perf_counter() - t0))
        elif agent.planned:
            plan_ms.append(agent.last_plan_ms)
        if record:
            frames.append(_video_frame(obs, goal, agent))
        obs, _, _, truncated, info = env.step(a)
        steps += 1
        success = bool(info["success"])
    if record:
        frames.append(_video_frame(obs, goal, None))
    return {
        "seed": seed,
        "success": success,
        "final_distance": info["distance_to_goal"],
        "final_state": [float(x) for x in task.state()],
        "steps": steps,
        "plan_ms": plan_ms,
        "frames": frames,
    }


def _reset_options(cfg: EvalConfig) -> dict[str, Any] | None:
    return {"goal_steps": cfg.eval.goal_steps} if cfg.eval.goal_steps else None


def _video_frame(obs: dict, goal: dict, agent: Any) -> np.ndarray:
    imagined = np.zeros_like(obs["pixels"])
    if agent is not None and agent.imagined is not None:
        imagined = agent.model.decode(agent.imagined[-1:])[0].cpu().numpy()
    return np.concatenate([obs["pixels"], goal["pixels"], imagined], axis=1)


_WORKER: dict[str, Any] = {}


def _worker_episode(args: tuple[EvalConfig, int, bool, int]) -> dict[str, Any]:
    cfg, seed, record, threads = args
    if "env" not in _WORKER:
        _WORKER["env"] = envs.make(cfg.env.name, image_size=cfg.env.image_size)
        _WORKER["policy"] = build_policy(cfg, _WORKER["env"], threads)
    return run_episode(cfg, _WORKER["env"], _WORKER["policy"], seed, record)


def _close_worker() -> None:
    agent = _WORKER.get("policy", (None, None, None))[2]
    if hasattr(agent, "close"):  # sim_mpc's twin task
        agent.close()
    if "env" in _WORKER:
        _WORKER["env"].close()
    _WORKER.clear()


def bootstrap_ci(successes: np.ndarray, n: int, seed: int = 0) -> list[float]:
    rng = np.random.default_rng(seed)
    means = rng.choice(successes, size=(n, len(successes)), replace=True).mean(1)
    return [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def _check_checkpoint(cfg: EvalConfig) -> None:
    """Refuse, before any worker starts, a world model (or landmark graph) that is missing,
    made for another task, or that reads images of another size than ``env.image_size``."""
    from agent import checkpoint, landmarks

    manifest = checkpoint.read_manifest(cfg.checkpoint)
    checkpoint.require_finetuned(manifest, cfg.checkpoint, "planning")
    name = Path(cfg.checkpoint).name
    if manifest.get("task") != cfg.env.name:
        raise ValueError(
            f"checkpoint {name} was made for task={manifest.get('task')!r}, not "
            f"{cfg.env.name!r}: pass env={manifest.get('task')} or this task's checkpoint"
        )
    size = manifest.get("model", {}).get("image_size")
    if size is not None and size != cfg.env.image_size:
        raise ValueError(
            f"checkpoint {name} reads {size}x{size} images, env.image_size={cfg.env.image_size}: "
            f"pass env.image_size={size} or a checkpoint trained at {cfg.env.image_size}"
        )
    if cfg.policy == "mpc" and cfg.agent.landmarks:
        landmarks.for_checkpoint(cfg.agent.landmarks, cfg.checkpoint)


def _check_planner(cfg: EvalConfig) -> None:
    """Build the planner once in the parent, so a bad planner or waypoint setting is one error
    line before any worker starts (the workers build their own)."""
    from agent.mpc import make_planner

    env = envs.make(cfg.env.name, image_size=cfg.env.image_size)
    try:
        make_planner(cfg.planner, cfg.agent, env.action_space.low, env.action_space.high)
    finally:
        env.close()


def evaluate(
    cfg: EvalConfig, config_dump: dict[str, Any] | None = None, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Run the episodes; ``extra`` fields join the summary before results.json is written."""
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.policy in ("mpc", "push_primitives"):  # fail fast in the parent: bad checkpoint
        _check_checkpoint(cfg)
    if cfg.policy == "push_primitives":
        from agent import state_probe

        state_probe.load(cfg.probe, cfg.checkpoint)
    elif cfg.policy == "rl":
        from agent.rl import read_policy_manifest

        read_policy_manifest(cfg.checkpoint)
    if cfg.policy in ("mpc", "sim_mpc") or (cfg.policy == "gcbc" and cfg.handoff_steps):
        _check_planner(cfg)
    if cfg.eval.goal_steps and not envs.task_spec(cfg.env.name).env_class().supports_goal_steps():
        raise ValueError(
            f"eval.goal_steps={cfg.eval.goal_steps} is not supported by {cfg.env.name} (near "
            "goals need the task's _goal_here/_use_goal): use eval.goal_steps=0"
        )
    check_same_evaluation(cfg, out)
    n = cfg.eval.episodes
    workers = min(cfg.eval.workers or os.cpu_count() or 1, n)
    threads = max(1, (os.cpu_count() or 1) // workers)
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():  # the caller's limit wins
        threads = max(1, min(threads, int(os.environ["OMP_NUM_THREADS"])))
    jobs = [(cfg, cfg.eval.seed + i, i < cfg.eval.videos, threads) for i in range(n)]
    results = []
    bar = tqdm(total=n, desc=f"eval {cfg.env.name} {cfg.policy}", unit="ep", dynamic_ncols=True)
    torch = sys.modules.get("torch")  # an in-process worker sets torch threads: restore them
    caller_threads = torch.get_num_threads() if torch is not None else None
    # ... and draws from the global RNGs: restore them too, so that a caller's own random
    # stream (e.g. a learner evaluated between training budgets) does not depend on it
    rng = (random.getstate(), np.random.get_state())  # noqa: NPY002 (the legacy global one)
    torch_rng = torch.get_rng_state() if torch is not None else None
    try:
        if workers == 1:
            for job in jobs:
                results.append(_worker_episode(job))
                bar.update(1)
        else:
            with mp.get_context("spawn").Pool(workers, ignore_sigint) as pool:
                for r in pool.imap_unordered(_worker_episode, jobs):
                    results.append(r)
                    bar.update(1)
    finally:
        bar.close()
        _close_worker()
        if caller_threads is not None:
            torch.set_num_threads(caller_threads)
        random.setstate(rng[0])
        np.random.set_state(rng[1])  # noqa: NPY002
        if torch_rng is not None:
            torch.set_rng_state(torch_rng)
    results.sort(key=lambda r: r["seed"])
    return write_results(cfg, out, results, config_dump, extra)


def _same_file(a: str | None, b: str | None) -> bool:
    stem = lambda p: Path(p).resolve().with_suffix("") if p else None  # noqa: E731
    return stem(a) == stem(b)


def check_same_evaluation(cfg: EvalConfig, out: Path) -> None:
    """Refuse an ``out`` that holds the results of another evaluation (another policy,
    checkpoint or goal kind): the default folder names the task, policy, planner and seed,
    not the checkpoint, so a second model evaluated with the defaults would replace the
    first one's results. The same evaluation again replaces them (results, csv, videos)."""
    prev = out / "results.json"
    if not prev.exists():
        return
    fix = f"pass another output_dir=, or delete {out} to replace them"
    try:
        old = json.loads(prev.read_text())["config"]
        was = {
            "policy": old["policy"],
            "checkpoint": old["checkpoint"],
            "eval.goal_steps": old.get("eval", {}).get("goal_steps", 0),
        }
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{out} holds results this code cannot read ({e}): {fix}") from e
    now = {
        "policy": cfg.policy,
        "checkpoint": cfg.checkpoint,
        "eval.goal_steps": cfg.eval.goal_steps,
    }
    for key, value in now.items():
        if key == "checkpoint" and cfg.policy in ("oracle", "random", "sim_mpc"):
            continue  # these read no checkpoint
        same = _same_file(was[key], value) if key == "checkpoint" else was[key] == value
        if not same:
            raise ValueError(f"{out} holds the results of {key}={was[key]}, not {value}: {fix}")


def write_results(
    cfg: EvalConfig,
    out: Path,
    results: list[dict],
    config_dump: dict | None,
    extra: dict[str, Any] | None = None,
) -> dict:
    from agent.video import write_mp4

    succ = np.array([r["success"] for r in results], dtype=float)
    plan_ms = np.concatenate([r["plan_ms"] for r in results]) if results else np.array([])
    summary = {
        "task": cfg.env.name,
        "policy": cfg.policy,
        "planner": cfg.planner.get("name")
        if cfg.policy in ("mpc", "sim_mpc") or cfg.handoff_steps
        else None,
        "checkpoint": cfg.checkpoint if cfg.policy in ("mpc", "rl", "push_primitives") else None,
        "success_rate": float(succ.mean()),
        "success_ci95": bootstrap_ci(succ, cfg.eval.bootstrap),
        "episodes": len(results),
        "seeds": [results[0]["seed"], results[-1]["seed"]],
        "plan_ms_p50": float(np.percentile(plan_ms, 50)) if len(plan_ms) else None,
        "plan_ms_p95": float(np.percentile(plan_ms, 95)) if len(plan_ms) else None,
        "mean_steps": float(np.mean([r["steps"] for r in results])),
        "per_episode": [
            {k: r[k] for k in ("seed", "success", "final_distance", "steps", "final_state")}
            for r in results
        ],
        "config": config_dump if config_dump is not None else asdict(cfg),
        **(extra or {}),
    }
    atomic_write_json(out / "results.json", summary)
    tmp = out / ".results.csv.tmp"
    with open(tmp, "w", newline="") as f:
        fields = ["seed", "success", "final_distance", "steps"]  # final_state: the JSON only
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(summary["per_episode"])
    os.replace(tmp, out / "results.csv")
    videos = out / "videos"
    fresh = {videos / f"seed_{r['seed']}.mp4" for r in results if r["frames"]}
    for old in videos.glob("seed_*.mp4") if videos.is_dir() else ():
        if old not in fresh:
            old.unlink()  # an earlier run's: these results do not describe it
    if fresh:
        videos.mkdir(exist_ok=True)
        for r in results:
            if r["frames"]:
                write_mp4(videos / f"seed_{r['seed']}.mp4", r["frames"])
    return summary
