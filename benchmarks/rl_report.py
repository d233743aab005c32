"""RL baselines vs the MPC agent: a markdown table and a plot from ``results.json`` files.

    python benchmarks/rl_report.py --runs outputs/baselines --mpc runs/mpc_seeds \
        --out docs/rl_comparison

Reads every ``results.json`` under ``--runs`` (written by ``agent.train_baseline``, one per
task x algo x seed x budget) and under ``--mpc`` (``agent.evaluate`` runs of world-model
checkpoints, one per training seed). A cell is (task, method, env steps): the interquartile
mean (IQM) of the per-seed success rates with a 95% stratified-bootstrap interval over seeds
(rliable's recipe), the held-out episodes (and their reset seeds) each seed's rate is over, so
a smoke run does not pass for a full one, and the median per-action latency. Each cell prints
the commands that rebuild it. Writes ``<out>.md`` and ``<out>.png`` (the plot needs
matplotlib: ``pip install -e ".[rl]"``).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy.stats import trim_mean

from agent.errors import friendly_errors

PLANNERS = Path(__file__).resolve().parents[1] / "configs" / "planner"


def iqm(x: np.ndarray) -> float:
    return float(trim_mean(np.asarray(x, float), 0.25))


def iqm_ci(x: np.ndarray, n: int = 10_000, seed: int = 0) -> list[float]:
    """95% percentile bootstrap of the IQM, resampling seeds."""
    x = np.asarray(x, float)
    rng = np.random.default_rng(seed)
    boots = trim_mean(rng.choice(x, size=(n, len(x)), replace=True), 0.25, axis=1)
    return [float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))]


def _method(r: dict[str, Any]) -> str:
    cfg = r["config"]
    if r["policy"] == "rl":
        algo = cfg["algo"]
        return f"{algo['name']}{'+her' if algo.get('her') else ''} (state)"
    return f"mpc {r['planner']} ({'pixels + proprio' if r.get('_proprio') else 'pixels'})"


def load(runs: Path | None, mpc: Path | None) -> dict[tuple, list[dict[str, Any]]]:
    """Group result summaries by (task, method, env_steps)."""
    cells: dict[tuple, list[dict]] = defaultdict(list)
    for root in (runs, mpc):
        if root is None or not root.exists():
            continue
        for path in sorted(root.rglob("results.json")):
            r = json.loads(path.read_text())
            if r["policy"] == "rl":
                seed, steps = r["config"]["seed"], r["env_steps"]
            elif r["policy"] == "mpc":
                manifest = json.loads(Path(r["checkpoint"]).with_suffix(".json").read_text())
                seed = manifest["config"].get("seed", 0)
                steps = manifest["dataset_transitions"]
                r["_proprio"] = manifest["model"].get("proprio_state", False)
            else:
                continue
            r["_seed"], r["_path"] = seed, str(path)
            cells[(r["task"], _method(r), steps)].append(r)
    return cells


@functools.cache
def _planner_presets() -> dict[str, Any]:
    """``configs/planner/<name>.yaml`` settings by name, read once."""
    return {p.stem: yaml.safe_load(p.read_text()) for p in sorted(PLANNERS.glob("*.yaml"))}


def planner_choice(r: dict[str, Any]) -> str:
    """The ``planner=`` an MPC result was planned with: the ``configs/planner`` file whose
    settings it recorded (``cem_fast`` records ``"planner": "cem"``), else the recorded name."""
    recorded = r["config"].get("planner")
    return next((k for k, v in _planner_presets().items() if v == recorded), r["planner"])


def cell_command(rs: list[dict[str, Any]]) -> str:
    """One shell line that rebuilds every seed of a cell."""
    r, seeds = rs[0], ",".join(str(x["_seed"]) for x in sorted(rs, key=lambda x: x["_seed"]))
    if r["policy"] == "rl":
        c = r["config"]
        budgets = ",".join(str(b) for b in c["budgets"])
        return (
            f"python -m agent.train_baseline -m env={r['task']} algo={c['algo']['name']} "
            f"seed={seeds} budgets=[{budgets}]"
        )
    planner = planner_choice(r)
    if planner != "cem_fast":  # not the shipped recipes' planner, the one mpc_seed.py reruns
        return "; ".join(
            f"python -m agent.evaluate env={x['task']} checkpoint={x['checkpoint']} "
            f"planner={planner} eval.episodes={x['episodes']} eval.seed={x['seeds'][0]} "
            f"output_dir={Path(x['_path']).parent}"
            for x in sorted(rs, key=lambda x: x["_seed"])
        )
    episodes = f" --episodes {r['episodes']}" if r["episodes"] != 100 else ""
    return (
        f"for s in {seeds.replace(',', ' ')}; do "
        f"python scripts/mpc_seed.py --task {r['task']} --seed $s{episodes}; done"
    )


def eval_episodes(rs: list[dict[str, Any]]) -> str:
    """Held-out episodes per seed and their reset seeds, e.g. ``100 (100000-100099)``; a cell
    whose seeds were evaluated differently lists each way."""
    ways = sorted({(r["episodes"], *r["seeds"]) for r in rs})
    return ", ".join(f"{n} ({first}-{last})" for n, first, last in ways)


def table(cells: dict[tuple, list[dict]]) -> str:
    lines = [
        "| task | method | env steps | seeds | eval episodes (reset seeds) | success IQM [95% CI] "
        "| ms/action p50 | reproduce |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (task, method, steps), rs in sorted(cells.items()):
        x = np.array([r["success_rate"] for r in rs])
        lo, hi = iqm_ci(x)
        ms = np.median([r["plan_ms_p50"] for r in rs])
        lines.append(
            f"| {task} | {method} | {steps} | {len(rs)} | {eval_episodes(rs)} "
            f"| {iqm(x):.2f} [{lo:.2f}, {hi:.2f}] "
            f"| {ms:.2f} | `{cell_command(rs)}` |"
        )
    return "\n".join(lines)


def plot(cells: dict[tuple, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = sorted({k[0] for k in cells})
    fig, axes = plt.subplots(1, len(tasks) + 1, figsize=(4 * (len(tasks) + 1), 3.4))
    axes = np.atleast_1d(axes)
    latency: dict[str, list[float]] = defaultdict(list)
    color = {m: f"C{i}" for i, m in enumerate(sorted({k[1] for k in cells}))}
    for ax, task in zip(axes, tasks, strict=False):
        methods = sorted({k[1] for k in cells if k[0] == task})
        for method in methods:
            keys = sorted(k for k in cells if k[0] == task and k[1] == method)
            steps = [k[2] for k in keys]
            xs = [np.array([r["success_rate"] for r in cells[k]]) for k in keys]
            mid = [iqm(x) for x in xs]
            ci = np.array([iqm_ci(x) for x in xs])
            mpc = method.startswith("mpc")
            yerr = np.abs(ci.T - np.array(mid))  # (2, cells): 95% interval around the IQM
            ax.errorbar(steps, mid, yerr=yerr, fmt="*" if mpc else "o-", capsize=3,
                        label=method, markersize=10 if mpc else 5, color=color[method])  # fmt: skip
            latency[method] += [r["plan_ms_p50"] for k in keys for r in cells[k]]
        ax.set(title=task, xlabel="environment steps", ylabel="success (IQM)", ylim=(-0.05, 1.05))
        ax.legend(fontsize=7)
    names = sorted(latency)
    axes[-1].bar(range(len(names)), [np.median(latency[n]) for n in names],
                 color=[color[n] for n in names])  # fmt: skip
    axes[-1].set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=7)
    axes[-1].set(yscale="log", ylabel="ms per action (p50)", title="latency (2 CPU cores)")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)


@friendly_errors
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=Path, default=Path("outputs/baselines"))
    p.add_argument("--mpc", type=Path, default=None)
    p.add_argument("--out", type=Path, default=Path("docs/rl_comparison"))
    a = p.parse_args()
    cells = load(a.runs, a.mpc)
    if not cells:
        raise SystemExit(
            f"no results.json under {a.runs} or {a.mpc}: run scripts/rl_sweep.sh first"
        )
    text = table(cells) + "\n"
    a.out.parent.mkdir(parents=True, exist_ok=True)
    from agent.dataset import atomic_write_text

    atomic_write_text(a.out.with_suffix(".md"), text)
    print(text)
    try:
        plot(cells, a.out.with_suffix(".png"))
        print(f"wrote {a.out.with_suffix('.md')} and {a.out.with_suffix('.png')}")
    except ImportError:
        print(f"wrote {a.out.with_suffix('.md')}; no plot: pip install matplotlib")


if __name__ == "__main__":
    main()
