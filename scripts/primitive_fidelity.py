"""How well the world model scores Push-T's push primitives, against the simulator.

``python scripts/primitive_fidelity.py --checkpoint <world model> --probe <pose probe>``
drives validation episodes with the oracle and, every ``--every`` steps, scores every
candidate push (full speed, ``--push-steps`` steps, from the oracle's candidates at the
true pose) against simulating it from the true state as the oracle does, three ways:

- ``agent``: as ``policy=push_primitives`` does (``PushPrimitiveMPC.predict_gains``, the true
  pose and goal given): the world model imagines the transit and the push from the current
  image;
- ``from_start``: the pusher is put at the push's start, the scene rendered and encoded, and
  the world model imagines the push alone (no transit to drift over);
- ``real_latents``: the push is simulated and its last frame encoded; the probe reads the pose
  change off real latents (no imagination: what a perfect predictor would give the probe).

For each it prints the median rank correlation of the gains per state, and the true gain of
the candidate it would pick (gain per step, as the agent scores) against the best one; the
same for the states nearer the goal than ``--near`` (m of keypoint distance) and the others.
``--cost`` scores every way as ``primitive_cost`` does (``latent``: the drop of the latent's
distance to the goal's, through the model's cost view, from the current image to the push's
end; ``latent_whole``: the whole image latent's), so ``real_latents`` against ``agent`` tells
the cost's own reading of real outcomes from the predictor's error in it.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from scipy.stats import spearmanr

import envs
from agent import checkpoint, state_probe
from agent.errors import friendly_errors
from agent.push_primitives import COSTS, PushPrimitiveMPC, _pose_of, pose_change_gain
from envs.tasks.push_t import PUSH_SPEEDS, push_candidates

WAYS = ("agent", "from_start", "real_latents")


@torch.no_grad()
def _placed_gains(env, model, probe, c, steps: int, agent, now) -> tuple[np.ndarray, np.ndarray]:
    """``from_start`` and ``real_latents`` gains of the candidates ``c`` at full speed, scored
    by ``agent``'s cost (``now``: the current image's latent); the task's state (physics,
    pusher target, the oracle's plan) is put back afterwards."""
    task = env.unwrapped
    pose, goal = task.block_pose(), task.goal_pose()
    saved = task.snapshot()
    z0, z1 = [], []
    for start, direction in zip(c.start, c.direction, strict=True):
        task.place(pose, start)
        z0.append(model.encode_observation(task._obs()))
        for _ in range(steps):
            obs, *_ = task.step(direction.astype(np.float32))  # unwrapped: no step count
        z1.append(model.encode_observation(obs))
    task.restore(saved)
    z0, z1 = torch.cat(z0), torch.cat(z1)
    actions = torch.as_tensor(np.repeat(c.direction[:, None], steps, 1), dtype=torch.float32)
    imagined = model.rollout(z0[:, None], actions)[:, -1]  # (N, K=1, *latent) histories

    def gain(end: torch.Tensor) -> np.ndarray:
        if agent.cost != "pose":  # as the agent: the latent's drop from the current
            # image's to the push's end (so the pick is by the end's distance)
            zs = model.image_part(torch.cat([now[:, None], end[:, None]], 0))  # (1+N, 1, D)
            rows = np.arange(1, len(zs))[:, None]
            return agent.latent_gain(zs, rows, np.zeros_like(rows))[:, 0]
        p0, p1 = _pose_of(probe(model.image_part(z0))), _pose_of(probe(model.image_part(end)))
        return pose_change_gain(pose, p0, p1, goal)

    return gain(imagined), gain(z1)


def measure(
    model_path: str,
    probe_path: str,
    seeds: range,
    every: int,
    steps: int,
    cost: str = "pose",
    near: float = 0.05,
) -> dict:
    model, _ = checkpoint.load(model_path, expect={"task": "push_t"})
    probe, _ = state_probe.load(probe_path, model_path)
    env = envs.make("push_t")
    task = env.unwrapped
    agent = PushPrimitiveMPC(model, probe, cost, lambda: (task.block_pose(), task.goal_pose()))
    rhos = {w: [] for w in WAYS}
    picked = {w: [] for w in WAYS}
    best, dist = [], []
    try:
        for seed in seeds:
            obs, _ = env.reset(seed=seed)
            agent.reset(task.goal_observation())
            for t in range(task.max_episode_steps):
                if t % every == 0:
                    pose, target = task.block_pose(), task.pusher_target()
                    c = push_candidates(pose, target, task.max_step)
                    n = len(c.start)
                    sim = task._oracle._simulate(task, c.start, c.direction, 1.0, steps)
                    dist.append(task.distance_to_goal())
                    true_gain = dist[-1] - sim[:, steps - 1]
                    z = model.encode_observation(obs)
                    p = agent.predict_gains(z, pose, target, c)
                    full = PUSH_SPEEDS.index(1.0)
                    gains = {"agent": p.gain[full * n : (full + 1) * n, p.lengths.index(steps)]}
                    gains["from_start"], gains["real_latents"] = _placed_gains(
                        env, model, probe, c, steps, agent, z
                    )
                    per_step = c.transit + steps

                    def pick(g, per_step=per_step):
                        return int(np.argmax(np.where(g > 0, g / per_step, g)))

                    for w in WAYS:
                        rhos[w].append(spearmanr(gains[w], true_gain).statistic)
                        picked[w].append(true_gain[pick(gains[w])])
                    best.append(true_gain[pick(true_gain)])
                obs, _, _, _, info = env.step(task.oracle_action())
                if info["success"]:
                    break
    finally:
        env.close()

    dist = np.asarray(dist)

    def summary(w: str, where: np.ndarray) -> dict:
        if not where.any():
            return {"states": 0}
        return {
            "states": int(where.sum()),
            "spearman_median": float(np.nanmedian(np.asarray(rhos[w], dtype=float)[where])),
            "picked_true_gain_mm_median": float(1e3 * np.median(np.asarray(picked[w])[where])),
            "picked_gains_share": float(np.mean(np.asarray(picked[w])[where] > 0)),
            "best_true_gain_mm_median": float(1e3 * np.median(np.asarray(best)[where])),
        }

    splits = {"all": dist >= 0, f"near (< {near} m)": dist < near, "far": dist >= near}
    return {
        "states": len(best),
        "cost": cost,
        **{w: {k: summary(w, m) for k, m in splits.items()} for w in WAYS},
    }


@friendly_errors
def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default="checkpoints/variants/push_t_demo.safetensors")
    p.add_argument("--probe", default="checkpoints/probes/push_t_demo_pose.safetensors")
    p.add_argument("--seed", type=int, default=200_000, help="first validation seed")
    p.add_argument("--episodes", type=int, default=8)
    p.add_argument("--every", type=int, default=8, help="score the candidates every N steps")
    p.add_argument("--push-steps", type=int, default=6, help="a push length the agent scores")
    p.add_argument("--cost", choices=COSTS, default="pose", help="the agent's primitive_cost")
    p.add_argument("--near", type=float, default=0.05, help="m of keypoint distance: near goal")
    a = p.parse_args(argv)
    torch.set_num_threads(2)
    seeds = range(a.seed, a.seed + a.episodes)
    out = measure(a.checkpoint, a.probe, seeds, a.every, a.push_steps, a.cost, a.near)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
