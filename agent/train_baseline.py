"""``python -m agent.train_baseline env=<task> algo=sac|ppo seed=S budgets=[...]``: train an
RL baseline on the task's true state and evaluate it with the MPC agent's harness."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig, OmegaConf

from agent.baseline import BaselineConfig, run
from agent.config import to_dataclass
from agent.errors import friendly_errors


@hydra.main(version_base="1.3", config_path="../configs", config_name="baseline")
@friendly_errors
def main(cfg: DictConfig) -> None:
    raw = OmegaConf.to_container(cfg, resolve=True)
    for s in run(to_dataclass(BaselineConfig, raw), config_dump=raw):
        print(
            f"{s['task']} {raw['algo']['name']} seed={raw['seed']} steps={s['env_steps']}: "
            f"success {s['success_rate']:.2f} {s['success_ci95']}, "
            f"{s['plan_ms_p50']:.2f} ms/action p50"
        )


if __name__ == "__main__":
    main()
