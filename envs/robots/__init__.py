"""Robot adapters (sim arm, network bridge, UR RTDE) and the safety layer in front of them.

``make(name, **options)`` builds an adapter by the name used in ``configs/robot/<name>.yaml``;
drivers are imported only when asked for, so optional dependencies stay optional.
"""

from __future__ import annotations

import importlib
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
    return found(**options)


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
    "make",
]
