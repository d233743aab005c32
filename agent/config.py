"""Turn composed Hydra configs into plain, validated dataclasses (once, at the entry point)."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf

T = TypeVar("T")


def to_dataclass(cls: type[T], cfg: DictConfig | dict[str, Any], where: str = "") -> T:
    """Build ``cls`` from a config node; nested dataclass fields are built recursively.

    Raises ``ValueError`` naming the unknown key and the valid ones (typos fail loudly).
    """
    data = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    prefix = f"{where}." if where else ""
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ValueError(f"unknown config key {prefix}{unknown[0]}: valid keys are {names}")
    kwargs = {}
    for name, value in data.items():
        if dataclasses.is_dataclass(hints[name]) and isinstance(value, dict):
            value = to_dataclass(hints[name], value, prefix + name)
        kwargs[name] = value
    return cls(**kwargs)
