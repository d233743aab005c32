"""``python -m agent.evaluate env=<task> checkpoint=<path> planner=<name> eval.episodes=N
eval.seed=S output_dir=<dir>``: success rate, latency and videos on held-out seeds.

With ``policy=mpc`` the agent settings a shipped checkpoint (and landmark graph) was evaluated
with are the defaults (``agent.shipped_settings``); the command line still wins. With
``policy=gcbc handoff_steps=K`` the planner takes over after K steps, with the settings of the
policy's world model."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from agent import shipped_settings
from agent.config import to_dataclass
from agent.errors import friendly_errors
from agent.evaluation import EvalConfig, EvalSettings, evaluate

HELD_OUT_SEED = EvalSettings().seed  #: reset seeds from here on are never collected for training


@hydra.main(version_base="1.3", config_path="../configs", config_name="evaluate")
@friendly_errors(
    interrupted="interrupted: no results were written (results.json, results.csv and videos are "
    "written once every episode is done); rerun the same command to evaluate from the start"
)
def main(cfg: DictConfig) -> None:
    raw = OmegaConf.to_container(cfg, resolve=True)
    shipped_settings.fill_in_for_policy(raw)
    evaluation = to_dataclass(EvalConfig, raw)
    if evaluation.eval.seed < HELD_OUT_SEED:
        print(
            f"note: eval.seed={evaluation.eval.seed} is below {HELD_OUT_SEED}: training data uses "
            f"reset seeds from 0, so these episodes may be ones the model trained on",
            file=sys.stderr,
        )
    # ``planner`` in results.json is the algorithm (cem for both cem and cem_fast); the preset
    # the command chose is recorded beside it.
    preset = HydraConfig.get().runtime.choices.get("planner")
    summary = evaluate(evaluation, config_dump=raw, extra={"planner_preset": preset})
    keys = (
        "task",
        "policy",
        "planner",
        "planner_preset",
        "success_rate",
        "success_ci95",
        "episodes",
        "plan_ms_p50",
        "plan_ms_p95",
    )
    print(json.dumps({k: summary[k] for k in keys}))
    videos = " and videos/" if any((Path(cfg.output_dir) / "videos").glob("*.mp4")) else ""
    print(f"wrote {cfg.output_dir}/results.json, results.csv{videos}")


if __name__ == "__main__":
    main()
