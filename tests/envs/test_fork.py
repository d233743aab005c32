"""EGL does not survive fork: a renderer made in a process forked after its parent rendered
hangs in MuJoCo. ``envs.base.new_renderer`` refuses it with one line instead, so
``gymnasium.make_vec(..., vectorization_mode="async")`` after any env in the parent rendered
fails fast and says to spawn."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import gymnasium as gym
    import envs

    fork = {"context": "fork"}
    a = gym.make_vec("jepa/point-mass-v0", 2, vectorization_mode="async", vector_kwargs=fork)
    a.reset(seed=0)  # the parent has not rendered: forked workers render fine
    a.close()
    parent = envs.make("point_mass")
    parent.reset(seed=0)  # now it has
    b = gym.make_vec("jepa/point-mass-v0", 2, vectorization_mode="async", vector_kwargs=fork)
    try:
        b.reset(seed=0)
    except RuntimeError as e:
        print("refused:", e)
    b.close()
    parent.close()
    """
)


def test_a_renderer_forked_after_the_parent_rendered_is_refused_not_hung():
    r = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        env=dict(os.environ, MUJOCO_GL="egl"),
        timeout=120,  # the hang this guards against would end here
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "refused: this process was forked from process" in r.stdout
    assert "vector_kwargs={'context': 'spawn'}" in r.stdout
