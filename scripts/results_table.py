"""Print the README's results table from the shipped manifests and baseline results.

    python scripts/results_table.py [--baselines runs]

(baselines: runs/<task>/{oracle,random}/results.json; ``checkpoints/variants/<task>_<name>`` rows
are other ways to plan the same task, e.g. ``reacher_easy (image)``: image-only planning; a row
evaluated with another policy than the MPC agent names it, e.g. ``policy=push_primitives``)

Every MPC number comes from ``checkpoints/<task>.json`` (written by ``agent.export`` from an
``agent.evaluate`` run; the ``+ landmarks`` rows from ``checkpoints/landmarks/<task>.json``,
written by ``agent.build_landmarks --record-eval``); baseline columns from
``agent.evaluate env=<task> policy=oracle|random output_dir=<baselines>/<task>/<policy>`` runs
(without ``output_dir`` they land under outputs/eval/, which this does not read).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from agent.checkpoint import FORMAT
from agent.errors import friendly_errors


def _rate(path: Path) -> str:
    if not path.exists():
        return "not run"
    try:
        r = json.loads(path.read_text())
        return f"{r['success_rate']:.2f} (n={r['episodes']})"
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(
            f"{path} is not an agent.evaluate results.json ({type(e).__name__}: {e}): rerun "
            f"python -m agent.evaluate env={path.parent.parent.name} policy={path.parent.name} "
            f"output_dir={path.parent}, or remove it"
        ) from e


def _skip(m: dict) -> str | None:
    """Why a manifest has no row (None: it has one)."""
    if m.get("format") != FORMAT:
        return f"format {m.get('format')!r}, not a world model"
    if "evaluation" not in m:
        return "no evaluation (export the model with python -m agent.export)"
    return None


def _manifests(folder: Path) -> dict[Path, dict]:
    """The evaluated world-model manifests in ``folder`` and ``folder/variants``; the others
    are skipped with a note on stderr, or refused in one line when none is one."""
    metas = sorted(folder.glob("*.json")) + sorted(folder.glob("variants/*.json"))
    if not metas:
        raise FileNotFoundError(
            f"no manifests (*.json) found in {folder}: pass --checkpoints a folder of exported "
            "world models (default: checkpoints)"
        )
    manifests, skipped = {}, []
    for meta in metas:
        try:
            m = json.loads(meta.read_text())
        except ValueError as e:
            raise ValueError(f"manifest {meta} is not JSON ({e}): restore or remove it") from e
        if why := _skip(m):
            skipped.append(f"{meta}: {why}")
        else:
            manifests[meta] = m
    if not manifests:
        raise ValueError(
            f"none of the {len(metas)} manifests in {folder} is an evaluated world model (e.g. "
            f"{skipped[0]}): pass --checkpoints checkpoints or a folder of agent.export outputs"
        )
    for why in skipped:
        print(f"note: skipped {why}", file=sys.stderr)
    return manifests


@friendly_errors
def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--checkpoints", type=Path, default=Path("checkpoints"))
    p.add_argument("--baselines", type=Path, default=Path("runs"))
    a = p.parse_args()
    manifests = _manifests(a.checkpoints)
    print(
        "| task | MPC success [95% CI] | episodes | plan ms p50 / p95 | Spearman all / near "
        "| pred. error h5 / copy | oracle | random |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for meta, m in sorted(manifests.items(), key=lambda x: x[0].stem):
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
    image = met.get("spearman_image")  # proprio_state models: the image latent alone
    image = f" (image {image['all']:.2f} / {image['near']:.2f})" if image else ""
    ratio = f"{met['prediction_error']['ratio'][:5][-1]:.2f}"  # h5 (a longer window: more)
    if "prediction_error_image" in met:  # proprio_state models: the image part alone
        ratio += f" (image {met['prediction_error_image']['ratio'][:5][-1]:.2f})"
    task = m["task"]
    print(
        f"| {name} | {e['success_rate']:.2f} [{lo:.2f}, {hi:.2f}] | {e['episodes']} "
        f"| {e['plan_ms_p50']:.0f} / {e['plan_ms_p95']:.0f} "
        f"| {sp['all']:.2f} / {sp['near']:.2f}{image} "
        f"| {ratio} | {_rate(baselines / task / 'oracle' / 'results.json')} "
        f"| {_rate(baselines / task / 'random' / 'results.json')} |"
    )


if __name__ == "__main__":
    main()
