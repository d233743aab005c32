"""Does a two_room world model know the wall? Imagined vs simulated pushes, from held-out starts.

    python scripts/wall_check.py --checkpoint runs/<run>/model.safetensors [--steps 24]

From each start (reset seeds 300000+, held out from training and evaluation) two action
sequences of ``--steps`` env steps are run in the simulator and rolled out by the model:

- ``wall``: full force straight at the middle wall (toward the other room), no y force. The
  simulated ball stays on its side unless it happens to be in line with the door;
- ``door``: steer to the door's height, then cross (a scripted controller that reads the door).

For each, the ball position the model imagines after the last step (read from the latent's
proprio part, so ``model.proprio_state`` checkpoints only) is compared with the simulator's:
the median position error (m), and for ``wall`` how often the model agrees with the simulator
on which side of the wall the ball ends. A model that rolls the ball through the wall cannot
plan the detour through the door, whatever the planner. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

import envs
from agent import checkpoint
from agent.errors import friendly_errors
from agent.model import WorldModel


def _scripted(u: object, kind: str, side: float) -> np.ndarray:
    """Action of the ``wall`` or ``door`` sequence at the current simulator state."""
    if kind == "wall":
        return np.array([-side, 0.0], dtype=np.float32)
    x, y = u.data.qpos[:2]
    a = np.array([-side, np.clip((u.door_y - y) * 5, -1, 1)])
    if abs(y - u.door_y) > 0.1 and abs(x) > 0.15:  # line up with the door before crossing
        a[0] *= 0.2
    return a.astype(np.float32)


def wall_check(model: WorldModel, starts: int = 40, steps: int = 24, seed: int = 300000) -> dict:
    """The report above for a loaded ``model.proprio_state`` two_room model."""
    if not model.cfg.proprio_state:
        raise ValueError(
            "this is not a model.proprio_state checkpoint: its latent holds no ball position "
            "to compare; check a proprio_state model"
        )
    if steps % model.cfg.frameskip:
        raise ValueError(
            f"steps={steps} is not a multiple of the model's frameskip {model.cfg.frameskip}: "
            f"pass --steps {steps + model.cfg.frameskip - steps % model.cfg.frameskip}"
        )
    model.eval()
    env = envs.make("two_room")
    u = env.unwrapped
    err: dict[str, list[float]] = {"wall": [], "door": []}
    same_side, sim_stays = [], []
    for s in range(seed, seed + starts):
        obs, _ = env.reset(seed=s)
        start, side = u.get_physics_state(), float(np.sign(u.data.qpos[0]))
        for kind in err:
            u.set_physics_state(start)
            acts = []
            for _ in range(steps):
                acts.append(_scripted(u, kind, side))
                env.step(acts[-1])
            true = u.data.qpos[:2].copy()
            with torch.no_grad():
                z0 = model.encode(
                    torch.from_numpy(obs["pixels"][None]), torch.from_numpy(obs["proprio"][None])
                )
                z = model.rollout(z0, torch.from_numpy(np.stack(acts))[None])[0, -1]
                pred = model.proprio_of(z)[:2].numpy()
            err[kind].append(float(np.linalg.norm(pred - true)))
            if kind == "wall":
                same_side.append(bool(np.sign(pred[0]) == np.sign(true[0])))
                sim_stays.append(bool(np.sign(true[0]) == side))
    env.close()
    return {
        "starts": starts,
        "steps": steps,
        "wall_position_error_m": float(np.median(err["wall"])),
        "door_position_error_m": float(np.median(err["door"])),
        "wall_side_agreement": float(np.mean(same_side)),
        "wall_sim_stays": float(np.mean(sim_stays)),
    }


@friendly_errors
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--starts", type=int, default=40)
    p.add_argument("--steps", type=int, default=24)
    p.add_argument("--seed", type=int, default=300000)
    a = p.parse_args()
    model, _ = checkpoint.load(a.checkpoint, expect={"task": "two_room"})
    try:
        report = wall_check(model, a.starts, a.steps, a.seed)
    except ValueError as e:
        raise SystemExit(f"{a.checkpoint}: {e}") from None
    print(json.dumps({"checkpoint": a.checkpoint, **report}))


if __name__ == "__main__":
    main()
