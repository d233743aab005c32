"""Ship a trained model into ``checkpoints/``.

    python -m agent.export --run <dir> --eval <results.json> --out checkpoints/<task> \
        [--validation <results.json> ...] [--variant "<how it differs>"]

Copies the run's final weights into ``<out>.safetensors`` and writes ``<out>.json``: the
training manifest plus sha256, the commands that made it, data size, training time and the
held-out evaluation results. When the model was chosen among several (training seeds), pass
every candidate's ``--validation`` results (seeds disjoint from the held-out ones): the
manifest records the choice and what it was based on. Plain argparse (no Hydra): it only
moves files.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from agent import checkpoint
from agent.dataset import atomic_write_json

#: how the shipped candidate was chosen among those validated (``--rule`` says otherwise)
RULE = "highest validation success rate among the candidates"


def export(
    run: Path,
    results: Path | None,
    out: Path,
    commands: list[str],
    validation: list[Path] | None = None,
    variant: str | None = None,
    rule: str = RULE,
) -> Path:
    src, _ = checkpoint.paths(run / "model")
    manifest = checkpoint.read_manifest(src)
    checkpoint.load(src)  # refuse to ship something that does not load
    if results is not None:
        manifest["evaluation"] = evaluation_of(_results_of(results, src))
    if validation:  # checked before anything is written
        manifest["selection"] = _selection(validation, manifest, rule)
    init = manifest.get("config", {}).get("init")
    pretrain = None
    if init and checkpoint.paths(init)[1].exists():
        pretrain = _pretrain_of(checkpoint.read_manifest(init), init)
    weights, meta = checkpoint.paths(out)
    weights.parent.mkdir(parents=True, exist_ok=True)
    tmp = weights.with_suffix(".safetensors.tmp")
    shutil.copyfile(src, tmp)
    tmp.replace(weights)
    manifest["weights"] = weights.name
    manifest["weights_sha256"] = checkpoint.digest(weights)
    manifest["size_mb"] = round(weights.stat().st_size / 2**20, 2)
    manifest["commands"] = commands
    if variant:  # checkpoints/variants/<task>_<name>: another way to plan the task (README)
        manifest["variant"] = variant
    if pretrain is not None:
        manifest["pretrain"] = pretrain
        manifest["total_train_wall_s"] = round(
            pretrain["train_wall_s"] + manifest["train_wall_s"], 1
        )
    atomic_write_json(meta, manifest)
    return weights


def _pretrain_of(init: dict[str, Any], path: str) -> dict[str, Any]:
    """What a finetune's encoder cost to pretrain. A finetune takes only the encoders of its
    ``init``; when ``init`` is itself a finetuned (e.g. shipped) model, whose encoder stayed
    frozen, that is *its* pretrain, recorded in its manifest."""
    if init.get("stage") == "finetune":
        if "pretrain" not in init or init.get("config", {}).get("train_encoder"):
            raise ValueError(
                f"init {path} is a finetuned model without a recorded pretrain of a frozen "
                "encoder: finetune from the pretrain run's model.safetensors instead"
            )
        return {**init["pretrain"], "encoder_from": str(path)}
    out = {k: init.get(k) for k in ("step", "train_wall_s", "metrics")}
    cfg = init.get("config", {})
    if cfg.get("extra_video"):  # a pretrain on pooled video: which datasets it saw
        shas = init.get("extra_video_sha256") or {}
        out["data"] = {
            cfg.get("data"): init.get("dataset_sha256"),
            **{p: shas.get(p) or _dataset_sha(p) for p in cfg["extra_video"]},
        }
    return out


def _dataset_sha(path: str) -> str | None:
    """The sha256 a dataset's meta.json records (None when it is not on this machine)."""
    try:
        return json.loads((Path(path) / "meta.json").read_text())["sha256"]
    except (OSError, KeyError, json.JSONDecodeError):
        return None


#: policies whose evaluation measures the world model they plan with
MODEL_POLICIES = ("mpc", "push_primitives")


def _results_of(path: Path, model: Path) -> dict[str, Any]:
    """``path``'s results, if they are an ``agent.evaluate`` run of ``model`` itself (the
    same weights, by sha256) planning with it; anything else is refused in one line."""
    fix = f"pass --eval the results.json of python -m agent.evaluate checkpoint={model}"
    try:
        r = json.loads(Path(path).read_text())
        policy, ckpt, _ = r["policy"], r["config"]["checkpoint"], r["success_rate"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path} is not an agent.evaluate results.json ({e!r}): {fix}") from e
    if policy not in MODEL_POLICIES:
        raise ValueError(f"{path} evaluated policy={policy}, not the world model's planner: {fix}")
    weights = checkpoint.paths(ckpt)[0]
    if not weights.exists():
        raise ValueError(f"{path} evaluated {ckpt}, which is not here to compare: {fix}")
    if checkpoint.digest(weights) != checkpoint.digest(model):
        raise ValueError(f"{path} evaluated {ckpt}, other weights than {model}: {fix}")
    return r


def evaluation_of(results: dict[str, Any]) -> dict[str, Any]:
    """The part of an ``agent.evaluate`` results.json that a manifest records."""
    keys = ("success_rate", "success_ci95", "episodes", "seeds", "plan_ms_p50", "plan_ms_p95")
    recorded = {k: results[k] for k in (*keys, "planner")}
    if "policy" in results:
        recorded["policy"] = results["policy"]
    return {**recorded, "config": results["config"]}


def _selection(paths: list[Path], manifest: dict, rule: str = RULE) -> dict:
    """The candidates' validation results; refuses validation seeds that overlap the test's."""
    rows = []
    for path in paths:
        r = json.loads(Path(path).read_text())
        row = {k: r[k] for k in ("checkpoint", "success_rate", "episodes", "seeds")}
        # what told the candidates apart when they share a checkpoint (horizon, planner)
        row.update({k: r["config"][k] for k in ("agent", "planner") if k in r["config"]})
        rows.append(row)
    test = manifest.get("evaluation", {}).get("seeds")
    for row in rows:
        lo, hi = row["seeds"]
        if test and not (hi < test[0] or lo > test[1]):
            raise ValueError(
                f"validation seeds {row['seeds']} overlap the held-out seeds {test}: "
                "validate on another range (eval.seed=200000)"
            )
    return {"rule": rule, "candidates": rows}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--run", required=True, type=Path, help="run folder holding model.safetensors")
    p.add_argument("--eval", type=Path, default=None, help="results.json of agent.evaluate")
    p.add_argument("--out", required=True, type=Path, help="checkpoints/<task> (no suffix)")
    p.add_argument("--command", action="append", default=[], help="a command that made it (repeat)")
    p.add_argument(
        "--validation",
        action="append",
        type=Path,
        default=[],
        help="results.json of every candidate on validation seeds, when choosing among several",
    )
    p.add_argument(
        "--variant",
        default=None,
        help="for checkpoints/variants/<task>_<name>: one line on how it differs from the main one",
    )
    p.add_argument(
        "--rule",
        default=RULE,
        help="how the candidate was chosen among the validated ones (say how a tie was broken)",
    )
    a = p.parse_args(argv)
    try:
        w = export(a.run, a.eval, a.out, a.command, a.validation, a.variant, a.rule)
    except (checkpoint.CheckpointError, FileNotFoundError, KeyError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(f"shipped {w} (+ {w.with_suffix('.json').name})")


if __name__ == "__main__":
    main()
