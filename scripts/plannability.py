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
from agent.metrics import plannability_report


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
    data = Dataset(a.data)
    model, manifest = checkpoint.load(a.checkpoint, expect={"task": data.task})
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
