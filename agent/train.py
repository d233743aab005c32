"""``python -m agent.train env=<task> stage=pretrain|finetune ...``: train the world model."""

from __future__ import annotations

import json
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from agent.config import to_dataclass
from agent.errors import friendly_errors
from agent.trainer import TrainConfig, Trainer


@hydra.main(version_base="1.3", config_path="../configs", config_name="train")
@friendly_errors
def main(cfg: DictConfig) -> None:
    cfg = OmegaConf.to_container(cfg, resolve=True)
    task = cfg.pop("env")["name"]  # the task comes from the dataset; env= sets default paths
    given = {o.split("=", 1)[0].lstrip("+~") for o in HydraConfig.get().overrides.task}
    if given & {"env", "env.name"}:
        check_data_task(task, cfg["data"])
    Trainer(to_dataclass(TrainConfig, cfg)).fit()


def check_data_task(task: str, data: str) -> None:
    """Refuse ``env=<task>`` with a dataset of another task (it would train, and be labelled,
    on the dataset's task). A missing or unfinished dataset is left to the trainer's message."""
    meta = Path(data) / "meta.json"
    try:
        have = json.loads(meta.read_text()).get("task")
    except (OSError, ValueError):
        return
    if have is not None and have != task and have != "video":  # video: the trainer says
        raise ValueError(
            f"env={task} but data={data} holds {have} episodes: pass env={have}, or the data "
            f"of {task} (python -m agent.collect env={task})"
        )


if __name__ == "__main__":
    main()
