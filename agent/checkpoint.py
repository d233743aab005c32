"""Checkpoints: safetensors weights + a JSON manifest. Loading never unpickles.

A checkpoint ``<path>.safetensors`` has a sibling ``<path>.json`` with the model config, the
training stage and step, the dataset hash and task, and anything else the caller records.
Both are written to temp files and renamed (weights first, then the manifest), so a kill at
any moment leaves the previous checkpoint intact.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_bytes
from safetensors.torch import save_file

from agent.dataset import atomic_write_json
from agent.model import ModelConfig, WorldModel

FORMAT = "jepa-mpc/world-model/1"


class CheckpointError(ValueError):
    """Missing, corrupt or incompatible checkpoint."""


def paths(path: str | os.PathLike) -> tuple[Path, Path]:
    p = Path(path)
    stem = p.with_suffix("") if p.suffix in (".safetensors", ".json") else p
    return stem.with_suffix(".safetensors"), stem.with_suffix(".json")


def save_tensors(
    path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp, metadata)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def digest(path: Path) -> str:
    """sha256 of a weights file, as manifests record it (``weights_sha256``)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def loaded_sha(path: str | os.PathLike, manifest: dict[str, Any]) -> str:
    """sha256 of the weights that ``load(path)`` returned with ``manifest``: the manifest's
    ``weights_sha256``, which ``load`` refuses weights to differ from (no second read), or for
    a manifest without one the file's digest."""
    return manifest.get("weights_sha256") or digest(paths(path)[0])


def write(
    path: str | os.PathLike, tensors: dict[str, torch.Tensor], manifest: dict[str, Any], fmt: str
) -> Path:
    """Weights, then a manifest with ``format`` and their sha256; returns the .safetensors path."""
    weights, meta = paths(path)
    weights.parent.mkdir(parents=True, exist_ok=True)
    save_tensors(weights, tensors)
    sha = digest(weights)
    atomic_write_json(
        meta, {**manifest, "format": fmt, "weights": weights.name, "weights_sha256": sha}
    )
    return weights


def save(path: str | os.PathLike, model: WorldModel, manifest: dict[str, Any]) -> Path:
    """Write weights and manifest atomically; returns the .safetensors path."""
    return write(path, model.state_dict(), {**manifest, "model": asdict(model.cfg)}, FORMAT)


def require_finetuned(manifest: dict[str, Any], path: str | os.PathLike, use: str) -> None:
    """Refuse a pretrain-stage world model where its action predictor is needed (``use``:
    what for, e.g. "planning"): that stage trains the encoder alone, so imagined futures
    from it are the untrained predictor's."""
    if manifest.get("stage") == "pretrain":
        raise CheckpointError(
            f"{path} is a stage=pretrain model (encoder only; its action predictor is "
            f"untrained), not one for {use}: finetune it first (python -m agent.train "
            f"stage=finetune init={path} ...) and use that run's model.safetensors"
        )


def read_manifest(
    path: str | os.PathLike,
    fmt: str = FORMAT,
    hint: str = "train one with agent.train or pass checkpoint=checkpoints/<task>.safetensors",
) -> dict[str, Any]:
    """The manifest of a ``fmt`` checkpoint; ``hint`` says how to get one when it is missing."""
    weights, meta = paths(path)
    if not meta.exists() or not weights.exists():
        inside = Path(path) / "model.safetensors"
        if Path(path).is_dir() and inside.exists():  # a run folder: its final model
            hint = f"{path} is a run folder: pass {inside}"
        raise CheckpointError(f"checkpoint {weights} (+ {meta.name}) not found: {hint}")
    try:
        manifest = json.loads(meta.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(
            f"checkpoint manifest {meta} is corrupt ({e}): retrain or restore it"
        ) from e
    if manifest.get("format") != fmt:
        raise CheckpointError(f"{meta} has format {manifest.get('format')!r}, expected {fmt!r}")
    return manifest


def load_tensors(path: str | os.PathLike, map_location: str = "cpu") -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint's weights file (safetensors: nothing is unpickled); refused
    when its manifest records another ``weights_sha256`` (weights of another checkpoint put
    beside this manifest)."""
    weights, meta = paths(path)
    try:
        data = weights.read_bytes()  # read once: hashed and parsed from the same bytes
        tensors = {k: v.to(map_location) for k, v in load_bytes(data).items()}
    except Exception as e:
        raise CheckpointError(
            f"weights {weights} are unreadable ({e}): retrain or restore them"
        ) from e
    check_weights_sha(weights, meta, hashlib.sha256(data).hexdigest())
    return tensors


def check_weights_sha(weights: Path, meta: Path, sha: str) -> None:
    """Refuse weights whose sha256 (``sha``, hashed from the bytes just read) differs from the
    one their manifest recorded."""
    if not meta.exists():
        return
    try:
        want = json.loads(meta.read_text()).get("weights_sha256")
    except (json.JSONDecodeError, AttributeError):
        return  # read_manifest names a corrupt manifest where one is needed
    if want and sha != want:
        raise CheckpointError(
            f"weights {weights} do not match their manifest {meta.name} (sha256 differs from "
            "weights_sha256): they were changed or belong to another checkpoint; restore the "
            "pair or retrain"
        )


def load(
    path: str | os.PathLike, expect: dict[str, Any] | None = None, map_location: str = "cpu"
) -> tuple[WorldModel, dict[str, Any]]:
    """Rebuild the model from the manifest alone; ``expect`` = manifest fields that must match."""
    weights, meta = paths(path)
    manifest = read_manifest(path)
    for key, want in (expect or {}).items():
        have = manifest.get(key) if key != "model" else manifest["model"]
        if key == "model":
            diff = [k for k, v in want.items() if have.get(k) != v]
            if diff:
                raise CheckpointError(
                    f"checkpoint {weights.name} has model.{diff[0]}={have.get(diff[0])!r} but the "
                    f"config asks for {want[diff[0]]!r}: use a matching config or another "
                    "checkpoint"
                )
        elif have != want:
            raise CheckpointError(
                f"checkpoint {weights.name} was made for {key}={have!r}, not {want!r}: "
                "use the checkpoint of this task or retrain"
            )
    names = {f.name for f in fields(ModelConfig)}
    cfg = ModelConfig(**{k: v for k, v in manifest["model"].items() if k in names})
    model = WorldModel(cfg)
    state = load_tensors(weights, map_location)
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as e:  # shape mismatch
        raise CheckpointError(
            f"weights {weights.name} do not fit the manifest's model "
            f"({str(e).splitlines()[1].strip()}): "
            "the two files belong to different checkpoints"
        ) from e
    if missing or unexpected:
        raise CheckpointError(
            f"weights {weights.name} do not fit the manifest's model (missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}): the two files belong to different checkpoints"
        )
    return model.eval(), manifest
