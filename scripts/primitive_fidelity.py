"""How well the world model scores Push-T's push primitives, against the simulator.

``python scripts/primitive_fidelity.py --checkpoint <world model> --probe <pose probe>``
drives validation episodes with the oracle and, every ``--every`` steps, scores every
candidate push (full speed, ``--push-steps`` steps, from the oracle's candidates at the
true pose) twice: by the world model + probe as ``policy=push_primitives`` does
(``PushPrimitiveMPC.predict_gains``, the true pose and goal given), and by simulating it
from the true state as the oracle does. It prints the median rank correlation of the two
gains per state, and the true gain of the candidate the model would pick (gain per step, as
the agent scores) against the best one.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from scipy.stats import spearmanr

import envs
from agent import checkpoint, state_probe
from agent.push_primitives import PushPrimitiveMPC
from envs.tasks.push_t import PUSH_SPEEDS, push_candidates


def measure(model_path: str, probe_path: str, seeds: range, every: int, steps: int) -> dict:
    model, _ = checkpoint.load(model_path, expect={"task": "push_t"})
    probe, _ = state_probe.load(probe_path, model_path)
    env = envs.make("push_t")
    task = env.unwrapped
    agent = PushPrimitiveMPC(model, probe, "pose", lambda: (task.block_pose(), task.goal_pose()))
    rhos, picked, best = [], [], []
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
                    true_gain = task.distance_to_goal() - sim[:, steps - 1]
                    p = agent.predict_gains(model.encode_observation(obs), pose, target, c)
                    col = p.lengths.index(steps)
                    full = PUSH_SPEEDS.index(1.0)
                    pred_gain = p.gain[full * n : (full + 1) * n, col]
                    rhos.append(spearmanr(pred_gain, true_gain).statistic)
                    per_step = c.transit + steps

                    def pick(g, per_step=per_step):
                        return int(np.argmax(np.where(g > 0, g / per_step, g)))

                    picked.append(true_gain[pick(pred_gain)])
                    best.append(true_gain[pick(true_gain)])
                obs, _, _, _, info = env.step(task.oracle_action())
                if info["success"]:
                    break
    finally:
        env.close()
    rhos = np.asarray(rhos, dtype=float)
    return {
        "states": len(rhos),
        "spearman_median": float(np.nanmedian(rhos)),
        "picked_true_gain_mm_median": float(1e3 * np.median(picked)),
        "best_true_gain_mm_median": float(1e3 * np.median(best)),
        "picked_gains_share": float(np.mean(np.asarray(picked) > 0)),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default="checkpoints/variants/push_t_demo.safetensors")
    p.add_argument("--probe", default="checkpoints/probes/push_t_demo_pose.safetensors")
    p.add_argument("--seed", type=int, default=200_000, help="first validation seed")
    p.add_argument("--episodes", type=int, default=8)
    p.add_argument("--every", type=int, default=8, help="score the candidates every N steps")
    p.add_argument("--push-steps", type=int, default=6, help="a push length the agent scores")
    a = p.parse_args(argv)
    torch.set_num_threads(2)
    seeds = range(a.seed, a.seed + a.episodes)
    print(json.dumps(measure(a.checkpoint, a.probe, seeds, a.every, a.push_steps), indent=1))


if __name__ == "__main__":
    main()
