"""The ``env`` config group as a validated dataclass."""

from __future__ import annotations

from dataclasses import dataclass

from envs.registry import TASKS


@dataclass(frozen=True)
class EnvConfig:
    """Which task to build and how it renders."""

    name: str = "point_mass"  #: short task name, one of ``envs.TASKS``
    image_size: int = 64  #: square observation size in pixels

    def __post_init__(self) -> None:
        if self.name not in TASKS:
            raise ValueError(f"env.name={self.name!r} is unknown: choose one of {sorted(TASKS)}")
        if not 8 <= self.image_size <= 1024:
            raise ValueError(f"env.image_size={self.image_size} is out of range: use 8..1024")
