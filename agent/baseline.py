"""Train an RL baseline on a task's state interface and evaluate it at each step budget.

The learner trains once up to the largest budget; at each budget in ``budgets`` the policy is
saved (``steps_<N>/policy.safetensors`` + ``.json``) and evaluated by the same harness as the MPC
agent (``agent.evaluation.evaluate`` with ``policy=rl``), which writes ``steps_<N>/results.json``.

Resuming: a budget whose ``results.json`` exists is done, if it was made with the same task,
learner, seed and evaluation settings (another is refused, never reported under this run's
name). SB3 replay buffers and optimizer states serialize only through pickle, so an
interrupted run retrains from step 0 (minutes).

Budgets count env steps: the learner trains until it has taken at least ``budget`` steps in
total (PPO collects whole rollouts of ``n_steps``, so it may take up to one rollout more;
``env_steps_done`` in ``policy.json`` says how many).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

import envs
from agent.config import to_dataclass
from agent.evaluation import EvalConfig, EvalSettings, evaluate
from agent.rl import AlgoConfig, build, save_policy
from envs.config import EnvConfig
from envs.wrappers import StateGoal


@dataclass(frozen=True)
class BaselineConfig:
    """Settings of ``python -m agent.train_baseline``."""

    env: EnvConfig = field(default_factory=EnvConfig)  #: task
    algo: AlgoConfig = field(default_factory=AlgoConfig)  #: learner
    seed: int = 0  #: learner, network init and training-episode seed
    budgets: list[int] = field(default_factory=lambda: [10_000, 20_000, 40_000])  #: env steps
    threads: int = 1  #: torch threads for training
    eval: EvalSettings = field(default_factory=lambda: EvalSettings(episodes=100, videos=0))
    output_dir: str = "outputs/baselines"  #: steps_<N>/{policy.*, results.json}

    def __post_init__(self) -> None:
        if not self.budgets or any(b < 1 for b in self.budgets):
            raise ValueError(f"budgets={self.budgets}: give positive env-step counts, e.g. [10000]")
        if self.algo.name == "sac" and min(self.budgets) <= self.algo.learning_starts:
            raise ValueError(
                f"budgets={self.budgets} has a budget within algo.learning_starts="
                f"{self.algo.learning_starts} (random actions, no update yet): its policy would "
                "be untrained; use budgets above it or lower algo.learning_starts"
            )
        if self.eval.seed < 100_000:
            raise ValueError(
                f"eval.seed={self.eval.seed} overlaps training seeds: use eval.seed >= 100000"
            )


def budget_dir(cfg: BaselineConfig, budget: int) -> Path:
    return Path(cfg.output_dir) / f"steps_{budget}"


def run(cfg: BaselineConfig, config_dump: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Train to each budget, save, evaluate; returns the result summaries in budget order."""
    import torch

    budgets = sorted(set(cfg.budgets))
    for b in budgets:
        check_same_run(cfg, budget_dir(cfg, b) / "results.json")
    if all((budget_dir(cfg, b) / "results.json").exists() for b in budgets):
        print(f"{cfg.output_dir}: every budget already evaluated; nothing to do")
        return [_read(budget_dir(cfg, b) / "results.json") for b in budgets]
    torch.set_num_threads(cfg.threads)
    env = StateGoal(envs.make(cfg.env.name), reward=cfg.algo.reward)
    # SAC's gradients drift into denormal floats, which run 10-20x slower on x86 CPUs
    torch.set_flush_denormal(True)
    try:
        _check_her(cfg, env.spec.max_episode_steps)
        return _train_and_evaluate(cfg, env, budgets, config_dump)
    finally:
        torch.set_flush_denormal(False)  # a process-wide flag (off by default): leave it off
        env.close()


#: what makes a budget's results: a folder made with other values is not this run's
SAME_RUN = ("env", "algo", "seed", "eval.episodes", "eval.seed", "eval.bootstrap")


def check_same_run(cfg: BaselineConfig, results: Path) -> None:
    """Refuse ``results`` (a budget's ``results.json``, if it exists) made with other
    settings than ``cfg``: a rerun into the same output_dir must not report them as its own."""
    if not results.exists():
        return
    fix = f"choose another output_dir, or delete {results.parent} to redo it"
    try:
        stored = json.loads(results.read_text())["config"]
        old = to_dataclass(
            BaselineConfig, {k: v for k, v in stored.items() if k not in ("policy", "checkpoint")}
        )
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{results} does not say which settings made it ({e}): {fix}") from e
    for key in SAME_RUN:
        was, now = _get(old, key), _get(cfg, key)
        if was != now:
            raise ValueError(f"{results.parent} was made with {key}={was}, not {now}: {fix}")


def _get(cfg: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        cfg = getattr(cfg, part)
    return asdict(cfg) if hasattr(cfg, "__dataclass_fields__") else cfg


def _check_her(cfg: BaselineConfig, episode: int) -> None:
    if cfg.algo.her and cfg.algo.learning_starts <= episode:
        raise ValueError(
            f"algo.learning_starts={cfg.algo.learning_starts} is within the first episode "
            f"({episode} steps on {cfg.env.name}); HER relabels finished episodes only: "
            f"set algo.learning_starts above {episode}"
        )


def _train_and_evaluate(
    cfg: BaselineConfig, env: StateGoal, budgets: list[int], config_dump: dict[str, Any] | None
) -> list[dict[str, Any]]:
    learner = build(cfg.algo, env, seed=cfg.seed)
    summaries, train_s = [], 0.0
    command = " ".join(["python -m agent.train_baseline", *sys.argv[1:]])
    with tqdm(total=budgets[-1], desc=f"{cfg.algo.name} {cfg.env.name}", unit="step") as bar:
        for budget in budgets:
            t0 = time.perf_counter()
            done = int(learner.num_timesteps)  # ppo: whole rollouts, may be past this budget
            if budget > done:
                learner.learn(budget - done, reset_num_timesteps=done == 0, callback=_progress(bar))
            train_s += time.perf_counter() - t0
            out = budget_dir(cfg, budget)
            policy = save_policy(
                out / "policy.safetensors",
                learner,
                {
                    "task": cfg.env.name,
                    "algo": asdict(cfg.algo),
                    "seed": cfg.seed,
                    "env_steps": budget,
                    "env_steps_done": int(learner.num_timesteps),  # ppo rounds up to n_steps
                    "train_seconds": round(train_s, 1),
                    "torch_threads": cfg.threads,
                    "observation": "state: [qpos, qvel, state()] + goal_state()",
                    "command": command,
                },
            )
            ev = EvalConfig(env=cfg.env, policy="rl", checkpoint=str(policy), eval=cfg.eval,
                            output_dir=str(out))  # fmt: skip
            dump = dict(config_dump or asdict(cfg), policy="rl", checkpoint=str(policy))
            extra = {"env_steps": budget, "train_seconds": round(train_s, 1)}
            summary = evaluate(ev, config_dump=dump, extra=extra)  # one results.json, whole
            bar.write(f"{budget} steps: success {summary['success_rate']:.2f} -> {out}")
            summaries.append(summary)
    return summaries


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _progress(bar: tqdm) -> Any:
    """An SB3 callback that advances ``bar`` by env steps."""
    from stable_baselines3.common.callbacks import BaseCallback

    class Progress(BaseCallback):
        def _on_step(self) -> bool:
            bar.update(self.training_env.num_envs)
            return True

    return Progress()
