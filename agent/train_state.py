"""Resumable training state: versioned snapshots plus an atomically updated ``latest.json``.

``state_<step>.safetensors`` holds model + optimizer tensors and RNG states; its JSON holds
the rest (step, optimizer scalars, config). ``latest.json`` points at the newest complete
pair and is written last, so a SIGKILL at any moment loses at most the steps since the last
snapshot and never leaves a pointer to a torn file. Nothing is pickled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from agent.checkpoint import CheckpointError, save_tensors
from agent.dataset import atomic_write_json

KEEP = 2  # snapshots kept on disk


def _flatten_optimizer(
    opt: torch.optim.Optimizer,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"opt.{pid}.{k}"] = v
            else:
                scalars[f"{pid}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        if key.startswith("opt."):
            _, pid, k = key.split(".", 2)
            state.setdefault(int(pid), {})[k] = v
    for key, v in meta["scalars"].items():
        pid, k = key.split(".", 1)
        state.setdefault(int(pid), {})[k] = v
    return {"state": state, "param_groups": meta["param_groups"]}


def save_state(
    run_dir: Path,
    step: int,
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    generator: torch.Generator,
    extra: dict[str, Any],
    rank_rngs: dict[str, torch.Tensor] | None = None,
) -> None:
    """``rank_rngs``: every process's RNG states under torchrun (``rng.<kind>.rank<r>``,
    gathered by rank 0, which alone writes), so that each resumes its own random stream."""
    name = f"state_{step:08d}"
    opt_tensors, opt_meta = _flatten_optimizer(opt)
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors.update(opt_tensors)
    tensors["rng.torch"] = torch.get_rng_state()
    tensors["rng.sampler"] = generator.get_state()
    tensors.update(rank_rngs or {})
    save_tensors(run_dir / f"{name}.safetensors", tensors)
    atomic_write_json(run_dir / f"{name}.json", {"step": step, "optimizer": opt_meta, **extra})
    atomic_write_json(run_dir / "latest.json", {"step": step, "name": name})
    for old in sorted(run_dir.glob("state_*.json"))[:-KEEP]:
        old.with_suffix(".safetensors").unlink(missing_ok=True)
        old.unlink(missing_ok=True)


def latest_snapshot(run_dir: Path) -> tuple[str, dict[str, Any]]:
    """The name and JSON (step, config, dataset hashes) of ``run_dir``'s newest complete
    snapshot."""
    pointer = run_dir / "latest.json"
    if not pointer.exists():
        raise CheckpointError(f"resume=true but {run_dir} has no latest.json: start without resume")
    name = json.loads(pointer.read_text())["name"]
    return name, json.loads((run_dir / f"{name}.json").read_text())


def load_state(
    run_dir: Path,
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    generator: torch.Generator,
    rank: int = 0,
) -> dict[str, Any]:
    name, meta = latest_snapshot(run_dir)
    tensors = load_file(str(run_dir / f"{name}.safetensors"))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    opt.load_state_dict(_unflatten_optimizer(tensors, meta["optimizer"]))
    own = lambda kind: tensors.get(f"rng.{kind}.rank{rank}", tensors[f"rng.{kind}"])  # noqa: E731
    torch.set_rng_state(own("torch"))
    generator.set_state(own("sampler"))
    return meta
