"""Robot adapters (sim arm, network bridge, UR RTDE) and the safety layer in front of them.

``make(name, **options)`` builds an adapter by the name used in ``configs/robot/<name>.yaml``;
drivers are imported only when asked for, so optional dependencies stay optional.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from envs.robots.adapter import (
    ActionSpec,
    RobotAdapter,
    RobotConnectionError,
    RobotError,
    RobotState,
    RobotStatus,
)
from envs.robots.safety import ActionRejected, SafeRobot, SafetyConfig, SafetyLayer, Watchdog

ADAPTERS = {
    "sim_arm": "envs.robots.sim_arm:SimArmAdapter",
    "bridge": "envs.robots.bridge:BridgeClient",
    "ur_rtde": "envs.robots.ur_rtde:URRTDEAdapter",
}


def make(name: str, **options: Any) -> RobotAdapter:
    """The adapter registered as ``name``, or your own as ``"my_pkg.my_arm:MyArm"`` (a
    ``RobotAdapter`` subclass importable from here), built with ``options``."""
    if name not in ADAPTERS and ":" not in name:
        raise ValueError(
            f"robot={name!r} is unknown: use one of {sorted(ADAPTERS)} or module:Class of "
            "your own RobotAdapter"
        )
    module, cls = ADAPTERS.get(name, name).split(":", 1)
    try:
        found = getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError) as e:
        if name in ADAPTERS:
            raise
        raise ValueError(f"robot={name!r}: cannot import {cls} from {module} ({e})") from e
    if not (isinstance(found, type) and issubclass(found, RobotAdapter)):
        raise ValueError(f"robot={name!r} is not a RobotAdapter subclass")
    check_options(name, found, options)
    return found(**options)


def check_options(name: str, adapter: type[RobotAdapter], options: dict[str, Any]) -> None:
    """Refuse ``options`` the adapter's constructor does not take (a typo in ``robot.options``)
    with one line naming the ones it does, before anything is built."""
    try:
        signature = inspect.signature(adapter)
    except (TypeError, ValueError):  # no signature to check against: the constructor decides
        return
    try:
        signature.bind(**options)
    except TypeError as e:
        takes = [
            p.name
            for p in signature.parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]
        unknown = sorted(set(options) - set(takes))
        what = f"unknown option {unknown[0]} for " if unknown else ""
        raise ValueError(
            f"robot={name!r}: {what}{adapter.__name__} ({e}): fix robot.options "
            f"(configs/robot/<robot>.yaml); it takes {takes}"
        ) from e


__all__ = [
    "ADAPTERS",
    "ActionRejected",
    "ActionSpec",
    "RobotAdapter",
    "RobotConnectionError",
    "RobotError",
    "RobotState",
    "RobotStatus",
    "SafeRobot",
    "SafetyConfig",
    "SafetyLayer",
    "Watchdog",
    "check_options",
    "make",
]
