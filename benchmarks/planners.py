"""Planner benchmark on a representative latent objective (CPU).

    python benchmarks/planners.py [--quick] [--threads 2] [--hidden 512 --layers 3] [--out f.json]

The objective is the world model's MLP predictor (latent D=64, LayerNorm + SiLU, residual,
action A=2; by default 3 hidden layers of 512, ``--hidden/--layers`` to change that; the
agent's conv default is now 128 x 2), rolled out over the horizon from one
latent, cost = squared L2 distance of the last latent to a goal latent (the agent's default
``cost_weighting=final``). Weights are PyTorch's default init (seeded). Goals are rollouts of
uniform random action sequences, so a cost of 0 is reachable. Sections:

1. matmul peak: median GFLOP/s of a 2048^3 fp32 matmul;
2. time per plan (CEM) over samples x horizon x iterations, and achieved rollout GFLOP/s
   (matmul FLOPs of all objective calls / plan time) against that peak;
3. every planner at its defaults (N=256, H=16): time per plan and cost;
4. pytorch-mppi (PyPI, a bench-only dependency) against planners' MPPI on the same objective
   at equal samples, horizon and iterations: time per plan and cost reached (its temperature
   swept, its best reported);
5. iCEM against CEM: the fewest samples with which iCEM reaches CEM's final cost.

Prints a markdown report and writes all numbers to ``--out`` (JSON). Timings are medians.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

# This script shares its name with the package: import the package, not this file.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

import torch  # noqa: E402
from torch import nn  # noqa: E402

import planners  # noqa: E402
from agent.errors import friendly_errors  # noqa: E402

D, A = 64, 2  # latent and action sizes (configs/model/conv.yaml)
LOW, HIGH = [-1.0] * A, [1.0] * A
MPPI_LAMBDAS = (0.001, 0.01, 0.1, 1.0)  #: pytorch-mppi's temperatures swept (its best counts)


class Predictor(nn.Module):
    """The agent's MLP predictor shape: z' = z + f([z, a])."""

    def __init__(self, hidden: int, layers: int) -> None:
        super().__init__()
        self.hidden, self.layers = hidden, layers
        mods: list[nn.Module] = []
        d = D + A
        for _ in range(layers):
            mods += [nn.Linear(d, hidden), nn.LayerNorm(hidden), nn.SiLU()]
            d = hidden
        mods.append(nn.Linear(d, D))
        self.net = nn.Sequential(*mods)

    def forward(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return z + self.net(torch.cat([z, a], dim=-1))  # (N, D)


def flops_per_step(model: Predictor, n: int) -> float:
    """Matmul FLOPs of one predictor step for n samples."""
    h, layers = model.hidden, model.layers
    return 2.0 * n * ((D + A) * h + (layers - 1) * h * h + h * D)


class Problem:
    """One start latent and one reachable goal; ``objective (N, H, A) -> (N,)``."""

    def __init__(self, model: Predictor, horizon: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.model, self.horizon = model, horizon
        self.z0 = torch.randn(D, generator=g)  # (D,)
        reach = torch.rand(1, horizon, A, generator=g) * 2 - 1  # (1, H, A)
        with torch.no_grad():
            self.goal = self.rollout(reach)[0, -1]  # (D,)

    def rollout(self, actions: torch.Tensor) -> torch.Tensor:
        z = self.z0.expand(actions.shape[0], D)  # (N, D)
        zs = []
        for t in range(actions.shape[1]):
            z = self.model(z, actions[:, t])
            zs.append(z)
        return torch.stack(zs, 1)  # (N, H, D)

    def objective(self, actions: torch.Tensor) -> torch.Tensor:  # (N, H, A) -> (N,)
        z = self.z0.expand(actions.shape[0], D)  # (N, D)
        for t in range(actions.shape[1]):
            z = self.model(z, actions[:, t])
        return (z - self.goal).square().sum(-1)

    def cost_of(self, plan: torch.Tensor) -> float:  # (H, A)
        with torch.no_grad():
            return float(self.objective(plan[None]))


def median_time(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def matmul_peak(repeats: int) -> float:
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    return 2 * 2048**3 / median_time(lambda: a @ b, repeats) / 1e9


def plan_fn(
    name: str, problem: Problem, seed: int = 0, objective=None, **options
) -> Callable[[], object]:
    """A plan of ``problem`` by a planner of ours (``objective``: default the problem's)."""
    planner = planners.make(name, LOW, HIGH, problem.horizon, **options)
    objective = problem.objective if objective is None else objective

    def run():
        planner.reset()
        return planner.plan(objective, generator=torch.Generator().manual_seed(seed))

    return run


def pytorch_mppi_fn(
    problem: Problem, iterations: int, lam: float, seed: int, n: int = 256, dynamics=None
) -> Callable[[], torch.Tensor]:
    """A plan of ``problem`` by pytorch_mppi.MPPI (``dynamics``: default the problem's model)
    with our MPPI's noise scale, ``iterations`` commands from a zero nominal plan; the run
    returns its (H, A) plan."""
    from pytorch_mppi import MPPI

    h, sigma = problem.horizon, planners.MPPIConfig().noise_std  # bounds [-1, 1]: half = 1
    ctrl = MPPI(
        problem.model if dynamics is None else dynamics,
        lambda z, a: z.new_zeros(z.shape[0]),  # running cost: none
        D,
        terminal_state_cost=lambda zs, a: (zs[..., -1, :] - problem.goal).square().sum(-1),
        noise_sigma=sigma**2 * torch.eye(A),
        num_samples=n,
        horizon=h,
        lambda_=lam,
        u_min=torch.tensor(LOW),
        u_max=torch.tensor(HIGH),
        U_init=torch.zeros(h, A),
    )

    def run():
        torch.manual_seed(seed)  # pytorch-mppi samples from the global RNG: each run alike
        ctrl.U = torch.zeros(h, A)
        with torch.no_grad():
            for _ in range(iterations):
                ctrl.command(problem.z0, shift_nominal_trajectory=False)
        return ctrl.U.clamp(LOW[0], HIGH[0])

    return run


def time_grid(model, samples, horizons, iterations, repeats, peak) -> list[dict]:
    rows = []
    for h in horizons:
        problem = Problem(model, h, seed=0)
        for n in samples:
            for it in iterations:
                elites = max(2, n // 8)
                t = median_time(
                    plan_fn("cem", problem, num_samples=n, iterations=it, num_elites=elites),
                    repeats,
                )
                flops = (n * it + 1) / n * flops_per_step(model, n) * h  # + the final mean (N=1)
                rows.append(
                    {
                        "samples": n,
                        "horizon": h,
                        "iterations": it,
                        "plan_ms": 1e3 * t,
                        "gflops": flops / t / 1e9,
                        "peak_fraction": flops / t / 1e9 / peak,
                    }
                )
                print(f"  N={n:5d} H={h:3d} it={it}: {1e3 * t:8.1f} ms", flush=True)
    return rows


def objective_throughput(model, n: int, h: int, repeats: int, bf16: bool = False) -> float:
    """GFLOP/s of the objective; ``bf16``: under CPU autocast (as ``agent.precision``)."""
    problem = Problem(model, h, seed=0)
    actions = torch.rand(n, h, A) * 2 - 1
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        t = median_time(lambda: problem.objective(actions), repeats)
    return flops_per_step(model, n) * h / t / 1e9


def defaults_table(model, problems: int, repeats: int) -> list[dict]:
    rows = []
    for name in sorted(planners.PLANNERS):
        costs, times, evals = [], [], []
        for p in range(problems):
            problem = Problem(model, 16, seed=100 + p)
            fn = plan_fn(name, problem, seed=p)
            result = fn()
            costs.append(result.cost)
            evals.append(result.evaluations)
            if p == 0:
                times.append(median_time(fn, repeats))
        rows.append(
            {
                "planner": name,
                "plan_ms": 1e3 * times[0],
                "median_cost": statistics.median(costs),
                "evaluations": statistics.median(evals),
            }
        )
        print(f"  {name}: {1e3 * times[0]:.1f} ms, cost {statistics.median(costs):.4g}")
    return rows


def pytorch_mppi_comparison(model, problems: int, repeats: int, iterations: tuple) -> dict:
    """planners' MPPI (defaults) vs pytorch_mppi.MPPI at N=256, H=16, equal iterations."""
    try:
        import pytorch_mppi  # noqa: F401
    except ImportError as e:  # bench-only dependency: pip install -e ".[bench]"
        return {"error": f"pytorch-mppi not installed ({e})"}
    n, h, sigma = 256, 16, planners.MPPIConfig().noise_std  # bounds are [-1, 1]: half = 1
    lambdas = MPPI_LAMBDAS
    out = {"samples": n, "horizon": h, "noise_std": sigma, "lambdas_swept": lambdas, "rows": []}
    for it in iterations:
        ours_costs, theirs = [], {lam: [] for lam in lambdas}
        ours_t = theirs_t = None
        for p in range(problems):
            problem = Problem(model, h, seed=200 + p)
            fn = plan_fn("mppi", problem, seed=p, iterations=it)
            ours_costs.append(fn().cost)
            if p == 0:
                ours_t = median_time(fn, repeats)
            for lam in lambdas:
                run = pytorch_mppi_fn(problem, it, lam, seed=p, n=n)
                theirs[lam].append(problem.cost_of(run()))
                if p == 0 and lam == lambdas[0]:
                    theirs_t = median_time(run, repeats)
        best_lam = min(lambdas, key=lambda lam: statistics.median(theirs[lam]))
        row = {
            "iterations": it,
            "planners_mppi_ms": 1e3 * ours_t,
            "pytorch_mppi_ms": 1e3 * theirs_t,
            "speedup": theirs_t / ours_t,
            "planners_mppi_cost": statistics.median(ours_costs),
            "pytorch_mppi_cost": statistics.median(theirs[best_lam]),
            "pytorch_mppi_best_lambda": best_lam,
            "pytorch_mppi_cost_by_lambda": {
                str(lam): statistics.median(c) for lam, c in theirs.items()
            },
        }
        out["rows"].append(row)
        print(
            f"  it={it}: ours {row['planners_mppi_ms']:.1f} ms cost "
            f"{row['planners_mppi_cost']:.4g} | pytorch-mppi {row['pytorch_mppi_ms']:.1f} ms "
            f"cost {row['pytorch_mppi_cost']:.4g} (lambda={best_lam})"
        )
    return out


def icem_vs_cem(model, problems: int, sizes: tuple, iterations: tuple) -> dict:
    """CEM at its defaults sets the cost to reach. iCEM runs a grid of budgets (N0 x
    iterations; other options at their defaults, K=10 elites) at its default noise_beta, and
    for reference with white noise (noise_beta=0); the target is judged at the default."""
    probs = [Problem(model, 16, seed=300 + p) for p in range(problems)]
    cem = [plan_fn("cem", pr, seed=p)() for p, pr in enumerate(probs)]
    target = statistics.median(r.cost for r in cem)
    cem_samples = statistics.median(r.evaluations for r in cem)
    default_beta = planners.ICEMConfig().noise_beta
    rows = []
    for beta in (default_beta, 0.0):
        for n0 in sizes:
            for it in iterations:
                opts = {"num_samples": n0, "iterations": it, "noise_beta": beta}
                res = [plan_fn("icem", pr, seed=p, **opts)() for p, pr in enumerate(probs)]
                rows.append(
                    {
                        **opts,
                        "samples": statistics.median(r.evaluations for r in res),
                        "median_cost": statistics.median(r.cost for r in res),
                    }
                )

    def cheapest(beta):
        ok = [r for r in rows if r["noise_beta"] == beta and r["median_cost"] <= target]
        return min(ok, key=lambda r: r["samples"]) if ok else None

    best, best_white = cheapest(default_beta), cheapest(0.0)
    ratio = best["samples"] / cem_samples if best else None
    shown = "n/a" if ratio is None else f"{ratio:.2f}"
    print(f"  CEM cost {target:.4f} with {cem_samples} samples; iCEM sample ratio: {shown}")
    return {
        "cem_cost": target,
        "cem_samples": cem_samples,
        "icem": rows,
        "icem_cheapest_reaching_cem": best,
        "sample_ratio": ratio,
        "white_noise_sample_ratio": best_white["samples"] / cem_samples if best_white else None,
    }


def markdown(res: dict) -> str:
    peak = res["matmul_peak_gflops"]
    lines = [
        f"Predictor: {res['objective']['layers']} x {res['objective']['hidden']} hidden. "
        f"Machine: {res['machine']}, torch {res['torch']}, {res['threads']} threads, "
        f"load average at start {res['load_avg_start']:.2f}, at end {res['load_avg_end']:.2f}.",
        "",
        f"Matmul peak (2048^3 fp32): **{peak:.1f} GFLOP/s**. Objective alone at N=256, "
        f"H=16: **{res['objective_gflops']:.1f} GFLOP/s** "
        f"({res['objective_gflops'] / peak:.0%} of peak); in bfloat16 autocast "
        f"(`agent.precision=bfloat16`): {res['objective_gflops_bf16']:.1f} GFLOP/s "
        f"({res['objective_gflops_bf16'] / res['objective_gflops']:.2f}x).",
        "",
        "### Time per plan (CEM, elites N/8)",
        "",
        "| samples | horizon | iterations | ms / plan | rollout GFLOP/s | of peak |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in res["grid"]:
        lines.append(
            f"| {r['samples']} | {r['horizon']} | {r['iterations']} | {r['plan_ms']:.1f} | "
            f"{r['gflops']:.1f} | {r['peak_fraction']:.0%} |"
        )
    lines += [
        "",
        "### Planners at their defaults (H=16; median cost over problems)",
        "",
        "| planner | ms / plan | evaluations | median cost |",
        "|---|---:|---:|---:|",
    ]
    for r in res["defaults"]:
        lines.append(
            f"| {r['planner']} | {r['plan_ms']:.1f} | {r['evaluations']:.0f} | "
            f"{r['median_cost']:.4g} |"
        )
    cmp = res["pytorch_mppi"]
    lines += ["", "### planners MPPI vs pytorch-mppi (N=256, H=16, equal iterations)", ""]
    if "error" in cmp:
        lines.append(cmp["error"])
    else:
        lines += [
            "| iterations | planners ms | pytorch-mppi ms | speed-up | planners cost | "
            "pytorch-mppi cost (best lambda) |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for r in cmp["rows"]:
            lines.append(
                f"| {r['iterations']} | {r['planners_mppi_ms']:.1f} | "
                f"{r['pytorch_mppi_ms']:.1f} | {r['speedup']:.2f}x | "
                f"{r['planners_mppi_cost']:.4g} | {r['pytorch_mppi_cost']:.4g} "
                f"({r['pytorch_mppi_best_lambda']}) |"
            )
    ic = res["icem_vs_cem"]
    lines += [
        "",
        f"### iCEM vs CEM (CEM defaults: median cost {ic['cem_cost']:.4f} with "
        f"{ic['cem_samples']:.0f} samples)",
        "",
        "| noise_beta | N0 | iterations | samples | median cost | reaches CEM |",
        "|---:|---:|---:|---:|---:|---|",
    ]
    for r in ic["icem"]:
        ok = "yes" if r["median_cost"] <= ic["cem_cost"] else "no"
        lines.append(
            f"| {r['noise_beta']} | {r['num_samples']} | {r['iterations']} | "
            f"{r['samples']:.0f} | {r['median_cost']:.4g} | {ok} |"
        )
    lines += ["", "### Targets", ""]
    for name, value in res["targets"].items():
        lines.append(f"- {name}: {value}")
    return "\n".join(lines)


def targets(res: dict) -> dict:
    peak, out = res["matmul_peak_gflops"], {}
    default = [r for r in res["grid"] if (r["samples"], r["horizon"]) == (256, 16)]
    frac = min((r["peak_fraction"] for r in default), default=None)
    obj = res["objective_gflops"] / peak
    out["rollout >= 0.5 x matmul peak (N=256, H=16)"] = (
        f"{'met' if (frac or 0) >= 0.5 else 'NOT met'}: whole plans >= {frac:.0%} "
        f"(worst over iterations), objective alone {obj:.0%}"
        if frac is not None
        else f"objective alone {obj:.0%} (N=256, H=16 not in the grid)"
    )
    cmp = res["pytorch_mppi"]
    if "error" not in cmp:
        for r in cmp["rows"]:
            fast = r["speedup"] >= 2
            cheap = r["planners_mppi_cost"] <= r["pytorch_mppi_cost"]
            out[f">= 2x faster than pytorch-mppi, cost <= (it={r['iterations']})"] = (
                f"{'met' if fast and cheap else 'NOT met'}: {r['speedup']:.2f}x, cost "
                f"{r['planners_mppi_cost']:.4g} vs {r['pytorch_mppi_cost']:.4g}"
            )
    ratio = res["icem_vs_cem"]["sample_ratio"]
    white = res["icem_vs_cem"]["white_noise_sample_ratio"]
    out["iCEM reaches CEM's cost with <= 1/3 of its samples"] = (
        "NOT met: no iCEM budget tried reached CEM's cost"
        if ratio is None
        else f"{'met' if ratio <= 1 / 3 else 'NOT met'}: {ratio:.2f} of CEM's samples"
    ) + (f" (white noise: {white:.2f})" if white is not None else " (white noise: none)")
    return out


@friendly_errors
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small grid, fewer repeats")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--out", default="planners_bench.json", help="JSON results file")
    parser.add_argument("--hidden", type=int, default=512, help="predictor MLP width")
    parser.add_argument("--layers", type=int, default=3, help="predictor hidden layers")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = Predictor(args.hidden, args.layers).eval().requires_grad_(False)
    q = args.quick
    repeats = 3 if q else 5
    problems = 3 if q else 8
    res: dict = {
        "quick": q,
        "threads": args.threads,
        "machine": f"{platform.machine()} x{os.cpu_count()}",
        "torch": torch.__version__,
        "load_avg_start": os.getloadavg()[0],
        "objective": {"latent": D, "hidden": args.hidden, "layers": args.layers, "action": A},
    }
    print("matmul peak ...", flush=True)
    res["matmul_peak_gflops"] = matmul_peak(repeats + 2)
    res["objective_gflops"] = objective_throughput(model, 256, 16, repeats)
    res["objective_gflops_bf16"] = objective_throughput(model, 256, 16, repeats, bf16=True)
    print("time per plan ...", flush=True)
    res["grid"] = time_grid(
        model,
        samples=(64, 256) if q else (64, 256, 1024),
        horizons=(8, 16) if q else (8, 16, 32),
        iterations=(1, 6) if q else (1, 3, 6),
        repeats=repeats,
        peak=res["matmul_peak_gflops"],
    )
    print("defaults ...", flush=True)
    res["defaults"] = defaults_table(model, problems, repeats)
    print("pytorch-mppi ...", flush=True)
    res["pytorch_mppi"] = pytorch_mppi_comparison(model, problems, repeats, (1, 3, 6))
    print("iCEM vs CEM ...", flush=True)
    res["icem_vs_cem"] = icem_vs_cem(
        model,
        problems,
        sizes=(32, 64, 128) if q else (32, 64, 96, 128, 256),
        iterations=(3, 6),
    )
    res["load_avg_end"] = os.getloadavg()[0]
    res["targets"] = targets(res)
    report = markdown(res)
    print("\n" + report)
    with open(args.out, "w") as f:
        json.dump({**res, "markdown": report}, f, indent=1)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
