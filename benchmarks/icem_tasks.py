"""iCEM against CEM on the real planning objectives of shipped world models (issue #3).

    python benchmarks/icem_tasks.py [--tasks point_mass umaze ...] [--problems 16] [--steps 6]
        [--seed 300000] [--confirm-seed 310000] [--out f.json] [--md f.md]

``benchmarks/planners.py`` and ``benchmarks/icem_mpc.py`` use a synthetic objective whose goals
are reached by iid uniform actions. Here the objective is the agent's own: for each shipped
checkpoint the task env, the world model and the agent settings it was evaluated with (its
manifest's ``evaluation.config``, filled in by ``agent.shipped_settings`` as ``agent.evaluate``
does) build the real ``MPCAgent`` (``agent.evaluation.build_policy``); only its planner changes.

A problem is one reset of the task env with seed ``--seed + i`` (the README's held-out seeds
are 100000-100099 and validation 200000+; 300000+ is a range no result has used). Every
planner drives the agent from the same start toward the same goal image for ``--steps``
replans, executing each plan's first ``replan_every`` actions in the real env, exactly as in
an evaluation episode (warm start, iCEM's shifted elites, the agent's generator reseeded by
the episode seed). Episodes do not stop at success, so every run has the same replans.

- single plan: the first replan of each episode (from scratch: no warm start, no elites);
  quality = median of its cost over problems, budget = its objective evaluations;
- MPC loop: replans 2..steps; quality = median cost over problems x replans, budget = median
  evaluations per replan. Each planner follows its own trajectory, so this also credits a
  planner whose earlier plans got closer to the goal; ``final distance`` (the task's true
  distance to the goal after the last replan's actions, median) is that outcome.

Budgets count every candidate passed to the objective (``PlanResult.evaluations``), as the
other two benchmarks do. CEM runs as shipped (the manifest's planner, ``cem_fast``: 128 x 4)
and at ``configs/planner/cem.yaml`` (256 x 6); iCEM (``configs/planner/icem.yaml`` otherwise)
over N0 x iterations for four variants: defaults (noise_beta 2, keep_elites 0.3), no kept
elites, white noise, noise_beta 1. K is halved to N0 // 2 where N0 < 2K (as in icem_mpc.py).

The cheapest iCEM setting reaching a CEM's median cost is picked on the ``--seed`` problems,
so it is biased low (a minimum over many noisy medians); it is rerun with both CEMs on fresh
problems (``--confirm-seed``) and the target (iCEM at CEM's cost with <= 1/3 of its samples)
is judged there. Costs and sample counts are deterministic; nothing is timed. Nothing here
tunes iCEM's defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MUJOCO_GL", "egl")

import torch  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

import envs  # noqa: E402
import planners  # noqa: E402
from agent import shipped_settings  # noqa: E402
from agent.checkpoint import read_manifest  # noqa: E402
from agent.config import to_dataclass  # noqa: E402
from agent.errors import friendly_errors  # noqa: E402
from agent.evaluation import EvalConfig, build_policy  # noqa: E402
from agent.mpc import AgentConfig, MPCAgent  # noqa: E402

#: label -> shipped checkpoint
CHECKPOINTS = {
    "point_mass": "checkpoints/point_mass.safetensors",
    "umaze": "checkpoints/umaze.safetensors",
    "arm_reach": "checkpoints/arm_reach.safetensors",
    "arm_push_masked_fast": "checkpoints/variants/arm_push_masked_fast.safetensors",
    "reacher_easy": "checkpoints/reacher_easy.safetensors",
}
SIZES = (16, 32, 64, 128, 256)  #: iCEM N0
ITERATIONS = (2, 3, 4, 6)
#: variant -> options over configs/planner/icem.yaml
VARIANTS = {
    "default": {},
    "keep0": {"keep_elites": 0.0},
    "white": {"noise_beta": 0.0},
    "beta1": {"noise_beta": 1.0},
}


def planner_yaml(name: str) -> dict[str, Any]:
    return OmegaConf.to_container(OmegaConf.load(ROOT / "configs" / "planner" / f"{name}.yaml"))


def icem_config(variant: str, n0: int, iterations: int) -> dict[str, Any]:
    cfg = {**planner_yaml("icem"), **VARIANTS[variant], "num_samples": n0}
    cfg["iterations"] = iterations
    cfg["num_elites"] = min(cfg["num_elites"], n0 // 2)
    return cfg


class Recorded:
    """The planner the agent sees: forwards plan / shift / reset and keeps each PlanResult."""

    needs_grad = False

    def __init__(self, planner: planners.Planner) -> None:
        self.planner = planner
        self.results: list[planners.PlanResult] = []

    def plan(self, *args: Any, **kwargs: Any) -> planners.PlanResult:
        result = self.planner.plan(*args, **kwargs)
        self.results.append(result)
        return result

    def shift(self, steps: int) -> None:
        self.planner.shift(steps)

    def reset(self) -> None:
        self.planner.reset()


class Task:
    """A shipped checkpoint with the env and agent settings of its evaluation."""

    def __init__(self, label: str, checkpoint: str) -> None:
        shipped = shipped_settings.shipped_evaluation(ROOT / checkpoint, "env")
        agent, _ = shipped_settings.apply(asdict(AgentConfig()), str(ROOT / checkpoint), set())
        self.cfg = to_dataclass(
            EvalConfig,
            {
                "env": shipped or {"name": read_manifest(ROOT / checkpoint)["task"]},
                "checkpoint": str(ROOT / checkpoint),
                "planner": shipped_settings.shipped_evaluation(ROOT / checkpoint, "planner"),
                "agent": agent,
            },
        )
        self.label, self.checkpoint = label, checkpoint
        self.env = envs.make(self.cfg.env.name, image_size=self.cfg.env.image_size)
        _, _, self.agent = build_policy(self.cfg, self.env, torch_threads=1)  # the shipped agent
        if self.agent.landmarks is not None:
            raise ValueError(f"{label}: landmark graphs are not benchmarked here")

    def describe(self) -> dict[str, Any]:
        a, m = self.cfg.agent, self.agent.model.cfg
        return {
            "checkpoint": self.checkpoint,
            "env": self.cfg.env.name,
            "horizon": a.horizon,
            "replan_every": a.replan_every,
            "hold": a.action_repeat * m.frameskip,
            "action_dim": int(self.env.action_space.shape[0]),
            "shipped_agent_settings": shipped_settings.shipped_agent_settings(
                ROOT / self.checkpoint
            ),
            "shipped_planner": dict(self.cfg.planner),
        }

    def episode(self, planner_cfg: dict[str, Any], seed: int, replans: int) -> dict[str, Any]:
        """Drive the agent with ``planner_cfg`` for ``replans`` plans from reset ``seed``."""
        space = self.env.action_space
        rec = Recorded(
            planners.make_from_config(planner_cfg, space.low, space.high, self.cfg.agent.horizon)
        )
        agent = MPCAgent(self.agent.model, rec, self.cfg.agent)
        task = self.env.unwrapped
        task.render_observations = True
        obs, info = self.env.reset(seed=seed)
        agent.reset(task.goal_observation(), seed)
        while len(rec.results) < replans or agent.queue:
            obs, _, _, truncated, info = self.env.step(agent.act(obs))
            if truncated:
                raise ValueError(f"{self.label}: the step budget ended before {replans} replans")
        return {
            "seed": seed,
            "costs": [r.cost for r in rec.results],
            "evaluations": [r.evaluations for r in rec.results],
            "final_distance": info["distance_to_goal"],
        }


def summary(runs: list[dict]) -> dict[str, float]:
    warm = [c for r in runs for c in r["costs"][1:]]
    return {
        "plan_cost": statistics.median(r["costs"][0] for r in runs),
        "plan_samples": statistics.median(r["evaluations"][0] for r in runs),
        "mpc_cost": statistics.median(warm) if warm else float("nan"),
        "mpc_samples": statistics.median(e for r in runs for e in r["evaluations"][1:])
        if warm
        else float("nan"),
        "final_distance": statistics.median(r["final_distance"] for r in runs),
    }


def measure(task: Task, planner_cfg: dict, seeds: list[int], replans: int) -> dict[str, Any]:
    with torch.no_grad():
        runs = [task.episode(planner_cfg, s, replans) for s in seeds]
    return {"planner": planner_cfg, **summary(runs), "runs": runs}


def cheapest(rows: list[dict], setting: str, target: float) -> dict | None:
    ok = [r for r in rows if r[f"{setting}_cost"] <= target]
    return min(ok, key=lambda r: (r[f"{setting}_samples"], r[f"{setting}_cost"])) if ok else None


def run_task(task: Task, args: argparse.Namespace) -> dict[str, Any]:
    seeds = [args.seed + i for i in range(args.problems)]
    confirm = [args.confirm_seed + i for i in range(args.problems)]
    cems = {"cem_shipped": dict(task.cfg.planner), "cem": planner_yaml("cem")}
    out: dict[str, Any] = {**task.describe(), "seeds": [seeds[0], seeds[-1]], "cem": {}}
    t0 = time.perf_counter()
    for name, cfg in cems.items():
        out["cem"][name] = measure(task, cfg, seeds, args.steps)
        r = out["cem"][name]
        print(
            f"  {name}: plan {r['plan_cost']:.4g} ({r['plan_samples']:.0f}), "
            f"mpc {r['mpc_cost']:.4g} ({r['mpc_samples']:.0f})",
            flush=True,
        )
    rows = []
    for variant in args.variants:
        for n0 in args.sizes:
            for it in args.iterations:
                r = measure(task, icem_config(variant, n0, it), seeds, args.steps)
                rows.append({"variant": variant, "num_samples": n0, "iterations": it, **r})
                print(
                    f"  icem {variant:7s} N0={n0:3d} it={it}: plan {r['plan_cost']:.4g} "
                    f"({r['plan_samples']:.0f}), mpc {r['mpc_cost']:.4g} ({r['mpc_samples']:.0f})",
                    flush=True,
                )
    out["icem"] = rows
    # the cheapest iCEM reaching each CEM's median, picked on `seeds`, rerun on `confirm`
    picks, verdicts = {}, {}
    for setting in ("plan", "mpc"):
        for name, ref in out["cem"].items():
            best = cheapest(rows, setting, ref[f"{setting}_cost"])
            picks[f"{setting}/{name}"] = best
            if best is not None:
                key = (best["variant"], best["num_samples"], best["iterations"])
                verdicts.setdefault(key, best["planner"])
    out["confirm_seeds"] = [confirm[0], confirm[-1]]
    out["confirm_cem"] = {n: measure(task, c, confirm, args.steps) for n, c in cems.items()}
    confirmed = {k: measure(task, c, confirm, args.steps) for k, c in verdicts.items()}
    out["targets"] = {}
    for key, best in picks.items():
        setting, name = key.split("/")
        cem_samples = out["cem"][name][f"{setting}_samples"]
        entry: dict[str, Any] = {"picked": None}
        if best is not None:
            pick = (best["variant"], best["num_samples"], best["iterations"])
            fresh, fresh_cem = confirmed[pick], out["confirm_cem"][name]
            entry = {
                "picked": {"variant": pick[0], "num_samples": pick[1], "iterations": pick[2]},
                "ratio": best[f"{setting}_samples"] / cem_samples,
                "confirm_cost": fresh[f"{setting}_cost"],
                "confirm_cem_cost": fresh_cem[f"{setting}_cost"],
                "confirm_ratio": fresh[f"{setting}_samples"] / fresh_cem[f"{setting}_samples"],
                "confirmed": fresh[f"{setting}_cost"] <= fresh_cem[f"{setting}_cost"],
            }
            ok = entry["confirmed"] and entry["confirm_ratio"] <= 1 / 3
            entry["met"] = ok
        else:
            entry["met"] = False
        out["targets"][key] = entry
    out["wall_s"] = time.perf_counter() - t0
    return out


# --------------------------------------------------------------------------- report


def fmt(x: float) -> str:
    return f"{x:.4g}"


def markdown(res: dict) -> str:
    lines = [
        f"Problems: {res['problems']} env resets per task, seeds {res['seed']}.. (grid) and "
        f"{res['confirm_seed']}.. (confirmation); {res['steps']} replans per episode; "
        f"torch {res['torch']}, {res['threads']} thread.",
    ]
    for label, t in res["tasks"].items():
        sh, cem = t["cem"]["cem_shipped"], t["cem"]["cem"]
        lines += [
            "",
            f"### {label} (`{t['checkpoint']}`: H={t['horizon']}, A={t['action_dim']}, "
            f"each action held {t['hold']} env steps; shipped agent settings "
            f"{t['shipped_agent_settings'] or 'none'})",
            "",
            "| planner | samples / plan | single-plan cost | samples / replan | MPC cost | "
            "final distance |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, r in t["cem"].items():
            p = r["planner"]
            lines.append(
                f"| {name} ({p['num_samples']} x {p['iterations']}, K={p['num_elites']}) | "
                f"{r['plan_samples']:.0f} | {fmt(r['plan_cost'])} | {r['mpc_samples']:.0f} | "
                f"{fmt(r['mpc_cost'])} | {fmt(r['final_distance'])} |"
            )
        lines += [
            "",
            "iCEM (ratio: samples / shipped CEM's; reaches: median cost <= shipped CEM's, "
            "cem.yaml's):",
            "",
            "| variant | N0 | it | samples / plan | single-plan cost | ratio | reaches | "
            "samples / replan | MPC cost | ratio | reaches | final distance |",
            "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---|---:|",
        ]
        for r in t["icem"]:
            cells = [r["variant"], str(r["num_samples"]), str(r["iterations"])]
            for s in ("plan", "mpc"):
                reach = ["yes" if r[f"{s}_cost"] <= ref[f"{s}_cost"] else "no" for ref in (sh, cem)]
                cells += [
                    f"{r[f'{s}_samples']:.0f}",
                    fmt(r[f"{s}_cost"]),
                    f"{r[f'{s}_samples'] / sh[f'{s}_samples']:.2f}",
                    " / ".join(reach),
                ]
            cells.append(fmt(r["final_distance"]))
            lines.append("| " + " | ".join(cells) + " |")
        lines += [
            "",
            "Cheapest iCEM reaching CEM's median (picked on the grid seeds, rerun on the "
            "confirmation seeds):",
            "",
            "| setting | CEM | picked (variant N0 x it) | ratio | confirmation: iCEM cost | "
            "CEM cost | ratio | reaches | <= 1/3 and reaches |",
            "|---|---|---|---:|---:|---:|---:|---|---|",
        ]
        for key, e in t["targets"].items():
            setting, name = key.split("/")
            if e["picked"] is None:
                lines.append(f"| {setting} | {name} | none reaches | | | | | | no |")
                continue
            p = e["picked"]
            lines.append(
                f"| {setting} | {name} | {p['variant']} {p['num_samples']} x {p['iterations']} | "
                f"{e['ratio']:.2f} | {fmt(e['confirm_cost'])} | {fmt(e['confirm_cem_cost'])} | "
                f"{e['confirm_ratio']:.2f} | {'yes' if e['confirmed'] else 'no'} | "
                f"{'yes' if e['met'] else 'no'} |"
            )
    return "\n".join(lines)


@friendly_errors
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tasks", nargs="+", default=list(CHECKPOINTS), choices=list(CHECKPOINTS))
    p.add_argument("--problems", type=int, default=16, help="env resets per task")
    p.add_argument("--steps", type=int, default=6, help="replans per episode (>= 2)")
    p.add_argument("--seed", type=int, default=300_000, help="first reset seed of the grid")
    p.add_argument("--confirm-seed", type=int, default=310_000, help="first confirmation seed")
    p.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="iCEM N0 grid")
    p.add_argument("--iterations", type=int, nargs="+", default=list(ITERATIONS))
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="icem_tasks.json", help="JSON results")
    p.add_argument("--md", default=None, help="also write the markdown tables here")
    a = p.parse_args()
    if a.steps < 2 or a.problems < 1:
        p.error("need --steps >= 2 and --problems >= 1")
    if abs(a.confirm_seed - a.seed) < a.problems:
        p.error("--seed and --confirm-seed ranges overlap")
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    res: dict[str, Any] = {
        **{k: getattr(a, k) for k in ("problems", "steps", "seed", "confirm_seed", "threads")},
        "sizes": a.sizes,
        "iterations": a.iterations,
        "variants": {v: VARIANTS[v] for v in a.variants},
        "icem_yaml": planner_yaml("icem"),
        "torch": torch.__version__,
        "tasks": {},
    }
    for label in a.tasks:
        print(f"{label} ...", flush=True)
        task = Task(label, CHECKPOINTS[label])
        res["tasks"][label] = run_task(task, a)
        task.env.close()
        print(f"  {res['tasks'][label]['wall_s']:.0f} s", flush=True)
    report = markdown(res)
    print("\n" + report)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({**res, "markdown": report}, indent=1))
    if a.md:
        Path(a.md).write_text(report + "\n")
    print(f"\nwrote {a.out}")


if __name__ == "__main__":
    main()
