"""``python -m agent.collect env=<task> episodes=N out=<dir>``: collect a trajectory dataset."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from agent.collector import CollectConfig, collect
from agent.config import to_dataclass
from agent.errors import friendly_errors


@hydra.main(version_base="1.3", config_path="../configs", config_name="collect")
@friendly_errors
def main(cfg: DictConfig) -> None:
    root = collect(to_dataclass(CollectConfig, cfg))
    print(f"dataset written to {root} (meta.json, preview.mp4)")


if __name__ == "__main__":
    main()
