"""Goal-conditioned MuJoCo tasks, wrappers, dataset I/O and robot adapters.

Importing ``envs`` registers every task with Gymnasium under the ``jepa/`` namespace, e.g.
``gymnasium.make("jepa/point-mass-v0")``. Rendering is headless (``MUJOCO_GL=egl``) unless
the caller sets ``MUJOCO_GL`` first.
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")

from envs.registry import TASKS, make, register_all, task_spec

register_all()

__all__ = ["TASKS", "make", "register_all", "task_spec"]
