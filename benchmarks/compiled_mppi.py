"""planners' MPPI against pytorch-mppi, eager and with torch.compile, in one run (CPU).

    python benchmarks/compiled_mppi.py [--hidden 128 --layers 2] [--threads 2] [--out f.json]

The same objective as ``benchmarks/planners.py`` (the world model's MLP predictor rolled out
over H=16 from one latent, squared L2 to a reachable goal latent) at N=256 samples and equal
iterations, four ways: planners' MPPI on the eager objective and on ``torch.compile`` of it
(what ``agent.compile=true`` does to the agent's rollout), and pytorch-mppi with the eager
predictor and with ``torch.compile`` of it as its ``dynamics``. The default predictor is the
agent's conv default (2 x 128). Times are medians over ``--repeats`` plans, taken round-robin
across the four so that load hits them alike; compilation happens before timing and is
reported apart. Costs are medians over ``--problems`` start/goal pairs (pytorch-mppi at its
best temperature of four, as in planners.py).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("planners_bench", HERE / "planners.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)  # also puts the repository's planners package on sys.path

N, H = 256, 16
LAMBDAS = bench.MPPI_LAMBDAS


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--problems", type=int, default=8)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--iterations", default="1,3,6")
    p.add_argument("--out", default=None, help="JSON results file")
    a = p.parse_args()
    try:
        import pytorch_mppi  # noqa: F401
    except ImportError:
        p.error("pytorch-mppi is not installed (bench-only): pip install -e '.[bench]'")
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = bench.Predictor(a.hidden, a.layers).eval().requires_grad_(False)
    compiled_model = torch.compile(model)
    res = {
        "predictor": f"{a.layers} x {a.hidden}",
        "samples": N,
        "horizon": H,
        "threads": a.threads,
        "torch": torch.__version__,
        "load_avg_start": os.getloadavg()[0],
        "rows": [],
    }
    for it in (int(i) for i in a.iterations.split(",")):
        costs = {k: [] for k in ("eager", "compiled")}
        theirs_costs = {(k, lam): [] for k in ("eager", "compiled") for lam in LAMBDAS}
        timed = {}
        for q in range(a.problems):
            problem = bench.Problem(model, H, seed=200 + q)
            objectives = {"eager": problem.objective, "compiled": torch.compile(problem.objective)}
            dynamics = {"eager": model, "compiled": compiled_model}
            for k in ("eager", "compiled"):
                ours = bench.plan_fn("mppi", problem, q, objectives[k], iterations=it)
                costs[k].append(problem.cost_of(ours().actions))
                for lam in LAMBDAS:
                    plan = bench.pytorch_mppi_fn(problem, it, lam, q, N, dynamics[k])()
                    theirs_costs[k, lam].append(problem.cost_of(plan))
            if q == 0:  # the timed problem: every variant run once (compiled) before timing
                timed = {
                    f"planners {k}": bench.plan_fn("mppi", problem, 0, o, iterations=it)
                    for k, o in objectives.items()
                } | {
                    f"pytorch-mppi {k}": bench.pytorch_mppi_fn(problem, it, LAMBDAS[0], 0, N, d)
                    for k, d in dynamics.items()
                }
                t0 = time.perf_counter()
                for fn in timed.values():
                    fn()
                compile_s = time.perf_counter() - t0
        times = {k: [] for k in timed}
        for _ in range(a.repeats):
            for k, fn in timed.items():
                t0 = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t0)
        ms = {k: 1e3 * statistics.median(v) for k, v in times.items()}
        best = {
            k: min(statistics.median(theirs_costs[k, lam]) for lam in LAMBDAS)
            for k in ("eager", "compiled")
        }
        row = {
            "iterations": it,
            "ms": ms,
            "cost": {
                "planners eager": statistics.median(costs["eager"]),
                "planners compiled": statistics.median(costs["compiled"]),
                "pytorch-mppi eager": best["eager"],
                "pytorch-mppi compiled": best["compiled"],
            },
            "first_plans_s": compile_s,
        }
        res["rows"].append(row)
        print(json.dumps(row), flush=True)
    res["load_avg_end"] = os.getloadavg()[0]
    lines = [
        f"Predictor {res['predictor']}, N={N}, H={H}, {a.threads} threads, torch {res['torch']}, "
        f"load average {res['load_avg_start']:.2f} -> {res['load_avg_end']:.2f}.",
        "",
        "| iterations | planners eager ms | planners compiled ms | pytorch-mppi eager ms | "
        "pytorch-mppi compiled ms | compiled planners vs eager pytorch-mppi | vs compiled "
        "pytorch-mppi | cost: planners eager / compiled | pytorch-mppi eager / compiled |",
        "|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in res["rows"]:
        m, c = r["ms"], r["cost"]
        lines.append(
            f"| {r['iterations']} | {m['planners eager']:.1f} | {m['planners compiled']:.1f} | "
            f"{m['pytorch-mppi eager']:.1f} | {m['pytorch-mppi compiled']:.1f} | "
            f"{m['pytorch-mppi eager'] / m['planners compiled']:.2f}x | "
            f"{m['pytorch-mppi compiled'] / m['planners compiled']:.2f}x | "
            f"{c['planners eager']:.4g} / {c['planners compiled']:.4g} | "
            f"{c['pytorch-mppi eager']:.4g} / {c['pytorch-mppi compiled']:.4g} |"
        )
    report = "\n".join(lines)
    print("\n" + report)
    if a.out:
        Path(a.out).write_text(json.dumps({**res, "markdown": report}, indent=1))


if __name__ == "__main__":
    main()
