"""A script that ends without ``env.close()`` exits quietly: renderers still open are closed
at exit while EGL still works (freed during teardown, EGL printed tracebacks)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import gymnasium as gym
import envs
env = envs.make("point_mass"); env.reset(seed=0)
arm = gym.make("jepa/arm-pick-place-2view-v0"); arm.reset(seed=0)  # two renderers
print("done")
"""


def test_envs_left_open_exit_without_egl_tracebacks():
    env = {**os.environ, "MUJOCO_GL": "egl", "PYTHONPATH": str(ROOT)}
    r = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=120
    )
    assert r.returncode == 0 and r.stdout.strip() == "done", r.stderr
    assert "Exception ignored" not in r.stderr and "EGLError" not in r.stderr, r.stderr
