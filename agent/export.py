"""Ship a trained model into ``checkpoints/``.

    python -m agent.export --run <dir> --eval <results.json> --out checkpoints/<task>

Copies the run's final weights into ``<out>.safetensors`` and writes ``<out>.json``: the
training manifest plus sha256, the commands that made it, data size, training time and the
held-out evaluation results. Plain argparse (no Hydra): it only moves files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

from agent import checkpoint
from agent.dataset import atomic_write_json


def export(run: Path, results: Path | None, out: Path, commands: list[str]) -> Path:
    src, _ = checkpoint.paths(run / "model")
    manifest = checkpoint.read_manifest(src)
    checkpoint.load(src)  # refuse to ship something that does not load
    weights, meta = checkpoint.paths(out)
    weights.parent.mkdir(parents=True, exist_ok=True)
    tmp = weights.with_suffix(".safetensors.tmp")
    shutil.copyfile(src, tmp)
    tmp.replace(weights)
    manifest["weights"] = weights.name
    manifest["weights_sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    manifest["size_mb"] = round(weights.stat().st_size / 2**20, 2)
    manifest["commands"] = commands
    init = manifest.get("config", {}).get("init")
    if init and checkpoint.paths(init)[1].exists():
        pre = checkpoint.read_manifest(init)
        manifest["pretrain"] = {k: pre.get(k) for k in ("step", "train_wall_s", "metrics")}
        manifest["total_train_wall_s"] = round(pre["train_wall_s"] + manifest["train_wall_s"], 1)
    if results is not None:
        r = json.loads(results.read_text())
        manifest["evaluation"] = {
            k: r[k]
            for k in (
                "success_rate",
                "success_ci95",
                "episodes",
                "seeds",
                "plan_ms_p50",
                "plan_ms_p95",
                "planner",
            )
        }
        manifest["evaluation"]["config"] = r["config"]
    atomic_write_json(meta, manifest)
    return weights


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--run", required=True, type=Path, help="run folder holding model.safetensors")
    p.add_argument("--eval", type=Path, default=None, help="results.json of agent.evaluate")
    p.add_argument("--out", required=True, type=Path, help="checkpoints/<task> (no suffix)")
    p.add_argument("--command", action="append", default=[], help="a command that made it (repeat)")
    a = p.parse_args(argv)
    try:
        w = export(a.run, a.eval, a.out, a.command)
    except (checkpoint.CheckpointError, FileNotFoundError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(f"shipped {w} (+ {w.with_suffix('.json').name})")


if __name__ == "__main__":
    main()
