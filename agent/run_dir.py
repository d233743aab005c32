"""A Hydra callback: an output folder that cannot be created is one ``error:`` line, exit 2.

Hydra creates the run folder (``hydra.run.dir``, inside the user's ``output_dir`` for
``agent.evaluate``, ``agent.train_baseline`` and ``agent.control``) before the entry point
runs, and reports a failure there as a traceback. Listed under ``hydra.callbacks`` in those
configs, :class:`CheckRunDir` creates it first and says what to change.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf


class CheckRunDir(Callback):
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        run_dir = OmegaConf.select(config, "hydra.run.dir")
        try:
            Path(run_dir).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            print(
                f"error: cannot create the output folder {run_dir} "
                f"({e.strerror or type(e).__name__}): choose a writable output folder "
                "(output_dir=, or loop.output_dir= for agent.control)",
                file=sys.stderr,
            )
            sys.exit(2)
