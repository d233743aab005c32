"""Search gap or model gap? The world model's cost of the oracle's actions against the plan's.

    python scripts/oracle_vs_plan.py --checkpoint checkpoints/<task>.safetensors \
        [--episodes 20] [--seed 200000] [--at 0 10] [--out report.json]

``policy=sim_mpc`` swaps the model for the simulator; this swaps the *actions*. The task's
oracle (true state, reaches every goal) runs each episode; at env steps ``--at`` of its run the
agent's objective (the checkpoint's shipped agent settings, its evaluation planner) scores

- the oracle's next ``horizon x action_repeat x frameskip`` env-step actions (the lookahead the
  planner sees), and
- the plan the planner finds from the same observation,

and both sequences are then executed in the simulator from that state (true distance to the
goal at the end; success at any step). Read per state:

- ``search gap``: the model rates the oracle's actions cheaper than the plan's; a better plan
  in the model's own terms existed and the planner did not find it;
- ``model gap``: the model rates the plan cheaper (or equal), yet the oracle's actions truly do
  better: they reach the goal within the lookahead and the plan's do not, or, when neither
  does, they end nearer; the planner did its job and the cost misled it (model or latent cost
  error).

Both are open-loop: the lookahead's actions run to the end, no replanning in between, so the
plan column is what the planner's first plan would do if it were never corrected.

Prints one JSON object (``--out`` also writes it): per ``--at`` step, the states scored, the
fractions of search and model gaps, the median model costs (and of their ratio per state, plan
over oracle: how much cheaper the model finds the plan) and true final distances.
Seeds: 200000+ by default (validation), not the held-out 100000+.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

import envs
import planners
from agent import checkpoint
from agent.dataset import atomic_write_json
from agent.errors import friendly_errors
from agent.mpc import AgentConfig, MPCAgent
from agent.shipped_settings import shipped_agent_settings, shipped_evaluation

#: the agent's default planner, for a checkpoint without a recorded evaluation
DEFAULT_PLANNER = Path(__file__).resolve().parents[1] / "configs" / "planner" / "cem_fast.yaml"


def evaluation_planner(path: str) -> dict[str, Any]:
    """The planner config a checkpoint's shipped evaluation used (``cem_fast`` otherwise)."""
    return shipped_evaluation(path, "planner") or yaml.safe_load(DEFAULT_PLANNER.read_text())


def _oracle_run(env: Any, seed: int, steps: int, at: tuple[int, ...]) -> tuple[dict, list, list]:
    """Observations at the ``at`` steps, physics states and actions of ``steps`` oracle env
    steps (not stopped at success: the lookahead after a late ``--at`` step needs the actions
    that follow). The steps after the reset render only the scored observations."""
    task = env.unwrapped
    task.render_observations = True  # the reset renders the goal image with the same switch
    obs, _ = env.reset(seed=seed)
    observations, states, actions = {0: obs}, [task.get_physics_state()], []
    try:
        for t in range(1, steps + 1):
            a = np.asarray(task.oracle_action(), np.float32)
            task.render_observations = t in at
            obs, *_ = task.step(a)  # the task itself: no TimeLimit, the oracle may run past it
            actions.append(a)
            observations[t] = obs
            states.append(task.get_physics_state())
    finally:
        task.render_observations = True
    return observations, states, actions


def _execute(task: Any, state: np.ndarray, actions: np.ndarray) -> tuple[float, bool]:
    """Run ``actions`` from ``state`` in the simulator: final distance, success at any step."""
    task.set_physics_state(state)
    reached = False
    with task.physics_only():  # no pixels needed
        for a in actions:
            _, _, _, _, info = task.step(a)
            reached = reached or bool(info["success"])
    return float(task.distance_to_goal()), reached


def compare(
    ckpt: str,
    episodes: int = 20,
    seed: int = 200_000,
    at: tuple[int, ...] = (0, 10),
    planner_cfg: dict[str, Any] | None = None,
    agent_overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    model, meta = checkpoint.load(ckpt)
    if model.cfg.history > 1:
        raise ValueError(
            f"{ckpt} reads a history of {model.cfg.history} latents; this check scores single "
            "observations: use a history=1 checkpoint"
        )
    task_name = meta["task"]
    settings = {**shipped_agent_settings(ckpt), **(agent_overrides or {})}
    cfg = AgentConfig(**settings)
    planner_cfg = planner_cfg or evaluation_planner(ckpt)
    env = envs.make(task_name)
    task = env.unwrapped
    task.render_observations = True
    planner = planners.make_from_config(
        planner_cfg, env.action_space.low, env.action_space.high, cfg.horizon
    )
    agent = MPCAgent(model, planner, cfg)
    hold = cfg.action_repeat * model.cfg.frameskip
    look = cfg.horizon * hold  # env steps the planner sees
    rows: dict[int, list[dict[str, Any]]] = {t: [] for t in at}
    try:
        for ep in range(episodes):
            s = seed + ep
            observations, states, actions = _oracle_run(env, s, max(at) + look, at)
            goal = task.goal_observation()
            agent.reset(goal, s)
            for t in at:
                with torch.no_grad():
                    z0 = agent._encode(observations[t])
                    oracle = np.stack(actions[t : t + look])  # (look, A)
                    c_oracle = float(
                        agent.step_objective(z0)(torch.as_tensor(oracle, device=agent.device)[None])
                    )
                    planner.reset()
                    res = planner.plan(
                        agent.objective(z0),
                        generator=torch.Generator(device=agent.device).manual_seed(s * 1000 + t),
                    )
                plan = res.actions.repeat_interleave(hold, dim=0).cpu().numpy().astype(np.float32)
                d_oracle, ok_oracle = _execute(task, states[t], oracle)
                d_plan, ok_plan = _execute(task, states[t], plan)
                rows[t].append(
                    {
                        "seed": s,
                        "model_cost_oracle": c_oracle,
                        "model_cost_plan": float(res.cost),
                        "true_distance_oracle": d_oracle,
                        "true_distance_plan": d_plan,
                        "success_oracle": ok_oracle,
                        "success_plan": ok_plan,
                    }
                )
    finally:
        env.close()
    return {
        "checkpoint": ckpt,
        "task": task_name,
        "episodes": episodes,
        "seed": seed,
        "lookahead_env_steps": look,
        "planner": planner_cfg,
        "agent": settings,
        "at": {str(t): summarize(r) for t, r in rows.items()},
    }


def _truly_better(r: dict[str, Any]) -> bool:
    """Whether the oracle's actions truly did better than the plan's: success first (both
    reaching the goal is a tie), then, when neither reaches it, the nearer final distance."""
    if r["success_oracle"] != r["success_plan"]:
        return bool(r["success_oracle"])
    return not r["success_oracle"] and r["true_distance_oracle"] < r["true_distance_plan"]


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Fractions of search and model gaps, median costs and distances over the states."""
    search = [r["model_cost_oracle"] < r["model_cost_plan"] for r in rows]
    model = [r["model_cost_plan"] <= r["model_cost_oracle"] and _truly_better(r) for r in rows]

    def med(key: str) -> float:
        return statistics.median(r[key] for r in rows)

    ratio = [r["model_cost_plan"] / max(r["model_cost_oracle"], 1e-12) for r in rows]
    return {
        "states": len(rows),
        "search_gap": float(np.mean(search)),
        "model_gap": float(np.mean(model)),
        "median_model_cost_oracle": med("model_cost_oracle"),
        "median_model_cost_plan": med("model_cost_plan"),
        "median_cost_ratio_plan_to_oracle": statistics.median(ratio),
        "median_true_distance_oracle": med("true_distance_oracle"),
        "median_true_distance_plan": med("true_distance_plan"),
        "success_oracle": float(np.mean([r["success_oracle"] for r in rows])),
        "success_plan": float(np.mean([r["success_plan"] for r in rows])),
        "per_state": rows,
    }


@friendly_errors
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True, help="world model (.safetensors)")
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--seed", type=int, default=200_000, help="first reset seed")
    p.add_argument("--at", type=int, nargs="+", default=[0, 10], help="oracle env steps")
    p.add_argument(
        "--planner-option",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="override the evaluation planner's options, e.g. num_samples=512 (name=icem)",
    )
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--out", help="also write the report here (JSON)")
    a = p.parse_args()
    if a.episodes < 1 or min(a.at) < 0:
        p.error("--episodes >= 1 and --at steps >= 0 are required")
    torch.set_num_threads(a.threads)
    options = {}
    for item in a.planner_option:
        key, sep, value = item.partition("=")
        if not sep:
            p.error(f"--planner-option {item!r}: write KEY=VALUE, e.g. num_samples=512")
        options[key] = yaml.safe_load(value)
    planner_cfg = evaluation_planner(a.checkpoint)
    if options.get("name", planner_cfg["name"]) != planner_cfg["name"]:
        planner_cfg = options  # another planner: only the options given (its defaults otherwise)
    else:
        planner_cfg.update(options)
    report = compare(a.checkpoint, a.episodes, a.seed, tuple(sorted(set(a.at))), planner_cfg)
    brief = {
        k: {kk: vv for kk, vv in v.items() if kk != "per_state"} for k, v in report["at"].items()
    }
    print(json.dumps({**{k: v for k, v in report.items() if k != "at"}, "at": brief}, indent=1))
    if a.out:
        atomic_write_json(Path(a.out), report)


if __name__ == "__main__":
    main()
