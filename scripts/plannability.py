"""Re-measure a checkpoint's plannability on a dataset's held-out episodes.

    python scripts/plannability.py --checkpoint checkpoints/<task>.safetensors --data data/<task>

Prints the same report as training runs write into their manifests (prediction error vs the
copy baseline, probe R^2, Spearman all / near / within one episode), so metrics added after a
model shipped can be read off it without retraining. The held-out split is the trainer's
(last 10% of episodes). ``--proprio-weight W`` adds ``spearman_cost``: the ranking by the cost
the agent plans with at ``agent.proprio_weight=W`` (model.proprio_state checkpoints).
"""

from __future__ import annotations

import argparse
import json

import envs
from agent import checkpoint
from agent.batches import Windows, split_dataset
from agent.dataset import Dataset
from agent.errors import friendly_errors
from agent.metrics import plannability_report
from agent.model import WorldModel


def _load(path: str, task: str) -> tuple[WorldModel, dict]:
    """The world model at ``path`` for ``task``; a missing or non-world-model file is refused."""
    hint = "pass --checkpoint checkpoints/<task>.safetensors or a run's model.safetensors"
    weights, meta = checkpoint.paths(path)
    if not weights.exists() or not meta.exists():
        raise FileNotFoundError(f"checkpoint {weights} (+ {meta.name}) not found: {hint}")
    try:
        fmt = json.loads(meta.read_text()).get("format")
    except ValueError:
        fmt = checkpoint.FORMAT  # corrupt: checkpoint.load says so
    if fmt != checkpoint.FORMAT:
        raise ValueError(f"{weights} is a {fmt!r} checkpoint, not a world model: {hint}")
    return checkpoint.load(path, expect={"task": task})


@friendly_errors
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--window", type=int, default=6, help="prediction horizon + history")
    p.add_argument("--heldout-fraction", type=float, default=0.1)
    p.add_argument(
        "--proprio-weight",
        type=float,
        default=0.0,
        help="also rank with the agent's cost at this agent.proprio_weight (proprio_state models)",
    )
    a = p.parse_args()
    if a.window < 2:
        p.error(f"--window must be at least 2 (a history and a step to predict), got {a.window}")
    if not 0 < a.heldout_fraction < 1:
        p.error(f"--heldout-fraction must be between 0 and 1 (e.g. 0.1), got {a.heldout_fraction}")
    data = Dataset(a.data)
    model, _ = _load(a.checkpoint, data.task)
    train_eps, held_eps = split_dataset(data, a.heldout_fraction, a.window, model.cfg.frameskip)
    task = envs.make(data.task).unwrapped
    report = plannability_report(
        model,
        Windows(data, train_eps, a.window, model.cfg.frameskip),
        Windows(data, held_eps, a.window, model.cfg.frameskip),
        task.state_distance, a.proprio_weight,
    )  # fmt: skip
    task.close()
    print(json.dumps({"checkpoint": a.checkpoint, "data": a.data, **report}, indent=1))


if __name__ == "__main__":
    main()
