"""The command line shared by the tools that train a small head on a world model's latents
(``agent.gcbc``, ``agent.state_probe``): what to read, where to write, how to record an
evaluation, and one flag per field of the tool's config dataclass."""

from __future__ import annotations

import argparse
from dataclasses import fields
from typing import Any


def head_parser(description: str, config: type) -> argparse.ArgumentParser:
    """``--checkpoint``, ``--data``, ``--out``, ``--record-eval``, ``--eval-command`` and
    ``--<field>`` for each field of ``config`` (booleans as ``--x`` / ``--no-x``)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--checkpoint", help="world model (safetensors); required to train")
    p.add_argument(
        "--data", nargs="+", help="dataset folder(s) of the same task; required to train"
    )
    p.add_argument("--out", required=True, help="output path without suffix")
    p.add_argument(
        "--record-eval",
        default=None,
        help="instead of training: add this agent.evaluate results.json to <out>.json",
    )
    p.add_argument("--eval-command", default=None, help="with --record-eval: the command run")
    for f in fields(config):
        flag = f"--{f.name.replace('_', '-')}"
        if isinstance(f.default, bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default)
        else:
            p.add_argument(flag, type=type(f.default), default=f.default)
    return p


def config_of(config: type, args: dict[str, Any]) -> Any:
    """The config dataclass from parsed ``vars(args)``."""
    return config(**{f.name: args[f.name] for f in fields(config)})
