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
    c = to_dataclass(CollectConfig, cfg)
    root = collect(c)
    print(f"dataset written to {root} ({'meta.json, preview.mp4' if c.video else 'meta.json'})")


if __name__ == "__main__":
    main()
