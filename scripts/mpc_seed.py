"""Retrain a shipped world model with another training seed and evaluate it (for seed spreads).

    python scripts/mpc_seed.py --task arm_reach --seed 1 [--runs runs] [--episodes 100]

Reads the shipped manifest's own commands (``checkpoints/<task>.json``). With ``<run>`` the
folder holding the shipped finetune run (``runs/<task>`` for most tasks, the parent of the
finetune command's ``out=``), it reruns pretrain and finetune with ``seed=S`` into
``<run>/seed<S>/``, then evaluates on the held-out seeds into
``<runs>/mpc_seeds/<run name>/seed<S>/results.json``. ``--seed 0`` evaluates the original
finetune run when it exists, so every result names the run that made it. The
dataset is the same for every seed; only initialization and batch order change. Finished steps
are skipped, so rerunning resumes.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
from pathlib import Path

from agent.errors import friendly_errors


def _run(cmd: list[str]) -> None:
    print("+", shlex.join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def _seed_of(manifest: Path) -> int:
    return int(json.loads(manifest.read_text())["config"].get("seed", 0))


@friendly_errors
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--runs", default="runs")
    p.add_argument("--episodes", type=int, default=100)
    a = p.parse_args()
    shipped = Path("checkpoints") / f"{a.task}.json"
    if not shipped.exists():
        raise SystemExit(f"no shipped checkpoint {shipped}: choose a task in checkpoints/")
    commands = json.loads(shipped.read_text())["commands"]
    evaluate = shlex.split(commands[-1])
    finetune_out = next(w[4:] for w in shlex.split(commands[2]) if w.startswith("out="))
    run = Path(a.runs) / Path(finetune_out).parent.name  # the shipped recipe's run folder
    original = run / "finetune" / "model.json"  # the first run: seed 0
    if a.seed == 0 and original.exists() and _seed_of(original) == 0:
        model = original.with_suffix(".safetensors")
    else:
        root = run / f"seed{a.seed}"
        for stage, cmd in (("pretrain", commands[1]), ("finetune", commands[2])):
            out = root / stage
            if (out / "model.json").exists():
                continue
            drop = ("out=", "init=", "seed=", "threads=")
            args = [w for w in shlex.split(cmd) if not w.startswith(drop)]
            args += [f"out={out}", f"seed={a.seed}", "threads=1"]  # one core: runs beside others
            if stage == "finetune":
                args.append(f"init={root / 'pretrain' / 'model.safetensors'}")
            _run(args)
        model = root / "finetune" / "model.safetensors"
    out = Path(a.runs) / "mpc_seeds" / run.name / f"seed{a.seed}"
    if (out / "results.json").exists():
        print(f"{out}/results.json exists: done")
        return
    args = [
        w for w in evaluate if not w.startswith(("checkpoint=", "output_dir=", "eval.episodes="))
    ]
    _run([*args, f"checkpoint={model}", f"eval.episodes={a.episodes}", "eval.videos=0",
          f"output_dir={out}"])  # fmt: skip


if __name__ == "__main__":
    main()
