"""Print the README's results table from the shipped manifests and baseline results.

    python scripts/results_table.py [--baselines runs]

(baselines: runs/<task>/{oracle,random}/results.json)

Every MPC number comes from ``checkpoints/<task>.json`` (written by ``agent.export`` from an
``agent.evaluate`` run); baseline columns from ``agent.evaluate policy=oracle|random`` runs.
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
    for meta in sorted(a.checkpoints.glob("*.json")):
        m = json.loads(meta.read_text())
        e, met = m["evaluation"], m["metrics"]
        lo, hi = e["success_ci95"]
        sp = met["spearman"]
        ratio = met["prediction_error"]["ratio"][-1]
        task = m["task"]
        print(
            f"| {task} | {e['success_rate']:.2f} [{lo:.2f}, {hi:.2f}] | {e['episodes']} "
            f"| {e['plan_ms_p50']:.0f} / {e['plan_ms_p95']:.0f} "
            f"| {sp['all']:.2f} / {sp['near']:.2f} "
            f"| {ratio:.2f} | {_rate(a.baselines / task / 'oracle' / 'results.json')} "
            f"| {_rate(a.baselines / task / 'random' / 'results.json')} |"
        )


if __name__ == "__main__":
    main()
