"""How near goals (``reset(options={"goal_steps": K})``, DINO-WM's protocol) relate to the
task's own goals: how many coincide with them, and how many lie farther from the start.

    python scripts/near_goals.py --task push_t --goal-steps 25 --episodes 50

For each reset seed from ``--seed``, resets once with the task's goal and once with the near
goal, and prints as JSON: how many near goals lie within the success threshold of the task's
goal (the oracle got there in K steps or fewer), and how many are farther from the start than
the task's goal (the oracle's path toward it is not monotone in the task's distance).
"""

from __future__ import annotations

import argparse
import json

import envs
from agent.errors import friendly_errors


def near_goal_stats(task: str, goal_steps: int, episodes: int, seed: int) -> dict:
    env = envs.make(task).unwrapped
    try:
        if not env.supports_goal_steps():
            raise ValueError(f"{task} has no near goals (eval.goal_steps): use push_t")
        same = farther = 0
        for s in range(seed, seed + episodes):
            env.reset(seed=s)
            task_goal, task_distance = env.goal_state().copy(), env.distance_to_goal()
            env.reset(seed=s, options={"goal_steps": goal_steps})
            same += env.state_distance(env.goal_state(), task_goal) <= env.success_threshold
            farther += env.distance_to_goal() > task_distance
    finally:
        env.close()
    return {
        "task": task, "goal_steps": goal_steps, "seeds": [seed, seed + episodes - 1],
        "near_goal_is_the_task_goal": int(same), "near_goal_farther_than_task_goal": int(farther),
    }  # fmt: skip


@friendly_errors
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="push_t", choices=sorted(envs.TASKS))
    p.add_argument("--goal-steps", type=int, default=25)
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--seed", type=int, default=100_000)
    a = p.parse_args()
    if a.goal_steps < 1 or a.episodes < 1 or a.seed < 0:
        p.error("--goal-steps and --episodes must be >= 1 and --seed >= 0")
    print(json.dumps(near_goal_stats(a.task, a.goal_steps, a.episodes, a.seed)))


if __name__ == "__main__":
    main()
