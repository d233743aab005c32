"""Print the README's results table from the shipped manifests and baseline results.

    python scripts/results_table.py [--baselines runs]

(baselines: runs/<task>/{oracle,random}/results.json; ``checkpoints/variants/<task>_<name>`` rows
are other ways to plan the same task, e.g. ``reacher_easy (image)``: image-only planning; a row
evaluated with another policy than the MPC agent names it, e.g. ``policy=push_primitives``)

Every MPC number comes from ``checkpoints/<task>.json`` (written by ``agent.export`` from an
``agent.evaluate`` run; the ``+ landmarks`` rows from ``checkpoints/landmarks/<task>.json``,
written by ``agent.build_landmarks --record-eval``); baseline columns from
``agent.evaluate policy=oracle|random`` runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _rate(path: Path) -> str:
    if not path.exists():
        return "not run"
    r = json.loads(path.read_text())
    return f"{r['success_rate']:.2f} (n={r['episodes']})"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--checkpoints", type=Path, default=Path("checkpoints"))
    p.add_argument("--baselines", type=Path, default=Path("runs"))
    a = p.parse_args()
    print(
        "| task | MPC success [95% CI] | episodes | plan ms p50 / p95 | Spearman all / near "
        "| pred. error h5 / copy | oracle | random |"
    )
    print("|---|---|---|---|---|---|---|---|")
    metas = sorted(a.checkpoints.glob("*.json")) + sorted(a.checkpoints.glob("variants/*.json"))
    for meta in sorted(metas, key=lambda p: p.stem):
        m = json.loads(meta.read_text())
        name = (
            m["task"] if "variant" not in m else f"{m['task']} ({meta.stem[len(m['task']) + 1 :]})"
        )
        rows = [(name, m["evaluation"])]
        graph = a.checkpoints / "landmarks" / meta.name
        graph_eval = json.loads(graph.read_text()).get("evaluation") if graph.exists() else None
        if graph_eval:
            rows.append((f"{name} + landmarks", graph_eval))
        for name, e in rows:
            policy = e.get("config", {}).get("policy", "mpc")
            _row(a.baselines, m, name if policy == "mpc" else f"{name}, `policy={policy}`", e)


def _row(baselines: Path, m: dict, name: str, e: dict) -> None:
    met = m["metrics"]
    lo, hi = e["success_ci95"]
    sp = met["spearman"]
    ratio = met["prediction_error"]["ratio"][:5][-1]  # h5 (a longer window reports more)
    task = m["task"]
    print(
        f"| {name} | {e['success_rate']:.2f} [{lo:.2f}, {hi:.2f}] | {e['episodes']} "
        f"| {e['plan_ms_p50']:.0f} / {e['plan_ms_p95']:.0f} "
        f"| {sp['all']:.2f} / {sp['near']:.2f} "
        f"| {ratio:.2f} | {_rate(baselines / task / 'oracle' / 'results.json')} "
        f"| {_rate(baselines / task / 'random' / 'results.json')} |"
    )


if __name__ == "__main__":
    main()
