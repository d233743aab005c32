"""``python -m agent.train env=<task> stage=pretrain|finetune ...``: train the world model."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig, OmegaConf

from agent.config import to_dataclass
from agent.errors import friendly_errors
from agent.trainer import TrainConfig, Trainer


@hydra.main(version_base="1.3", config_path="../configs", config_name="train")
@friendly_errors
def main(cfg: DictConfig) -> None:
    cfg = OmegaConf.to_container(cfg, resolve=True)
    cfg.pop("env")  # the task comes from the dataset; env= only sets default paths
    Trainer(to_dataclass(TrainConfig, cfg)).fit()


if __name__ == "__main__":
    main()
