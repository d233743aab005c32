"""The agent settings a shipped checkpoint (or landmark graph) was evaluated with.

A shipped manifest records the full config of its held-out evaluation. The settings that
differ from ``AgentConfig``'s defaults (e.g. reacher's ``proprio_weight=10``, two_room's
graph ``lookahead=8``) are what its number needs, so the entry points apply them as defaults:
built-in defaults < the model's shipped settings < the graph's < the command line.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from agent.mpc import AgentConfig

#: machine- or run-specific keys that are never carried over
_NOT_CARRIED = ("device", "landmarks", "deadline_ms")


def shipped_evaluation(path: str | Path | None, block: str) -> dict[str, Any]:
    """The ``block`` (``agent``, ``planner``, ...) of the evaluation config recorded in
    ``path``'s manifest ({} if the file has none, e.g. a fresh training run)."""
    if not path:
        return {}
    meta = Path(path).with_suffix(".json")
    if not meta.exists():
        return {}
    try:
        return dict(json.loads(meta.read_text())["evaluation"]["config"][block])
    except (KeyError, TypeError, json.JSONDecodeError):
        return {}


def shipped_agent_settings(path: str | Path | None) -> dict[str, Any]:
    """Non-default agent settings of the evaluation recorded in ``path``'s manifest ({} if
    the file has none, e.g. a fresh training run)."""
    agent = shipped_evaluation(path, "agent")
    default = asdict(AgentConfig())
    return {
        k: v for k, v in agent.items() if k in default and k not in _NOT_CARRIED and v != default[k]
    }


def apply(
    agent: dict[str, Any], checkpoint: str | None, explicit: set[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``agent`` (a resolved ``agent`` config block) with the shipped settings of the model
    ``checkpoint`` and of ``agent["landmarks"]`` filled in, except keys in ``explicit`` (set
    on the command line). Returns the new block and what was applied."""
    applied = {
        **shipped_agent_settings(checkpoint),
        **shipped_agent_settings(agent.get("landmarks")),
    }
    applied = {k: v for k, v in applied.items() if k not in explicit}
    return {**agent, **applied}, applied


def fill_in(raw: dict[str, Any], model: str | None = None) -> None:
    """In a resolved entry-point config (with ``agent`` and ``checkpoint``), fill in the
    shipped settings the command line did not set, and say which on stdout. ``model``: the
    world model whose settings apply, when it is not ``checkpoint`` (a gcbc policy's)."""
    raw["agent"], applied = apply(raw["agent"], model or raw["checkpoint"], explicit_agent_keys())
    if applied:
        shown = " ".join(f"agent.{k}={v}" for k, v in applied.items())
        print(f"shipped settings of the checkpoint / graph: {shown} (the command line overrides)")


def fill_in_for_policy(raw: dict[str, Any]) -> None:
    """``fill_in`` where the entry point plans: ``policy=mpc`` with its checkpoint's settings,
    ``policy=gcbc handoff_steps=K`` with those of the policy's world model."""
    if raw["policy"] == "mpc":
        fill_in(raw)
    elif raw["policy"] == "gcbc" and raw.get("handoff_steps"):
        from agent.gcbc import world_model_of

        fill_in(raw, model=world_model_of(raw["checkpoint"]))


def explicit_agent_keys() -> set[str]:
    """``agent.*`` keys given on the command line of the running Hydra app."""
    from hydra.core.hydra_config import HydraConfig

    keys = set()
    for o in HydraConfig.get().overrides.task:
        key = o.split("=", 1)[0].lstrip("+~")
        if key.startswith("agent."):
            keys.add(key.split(".", 1)[1])
    return keys
