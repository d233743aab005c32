"""Can a policy learn a dataset's action labels from the *true* state at all?

    python scripts/label_predictability.py --data data/pusht_dagger_r1 data/pusht_dagger_r2
    python scripts/label_predictability.py --data data/pusht_demo_1000 --labels actions

Fits an MLP from (true state, goal state), normalized, to each step's label (``expert_actions``
where the dataset has them, else ``actions``; ``--labels`` chooses) on all episodes but the
last ``--val-share``, and prints the held-out squared error against predicting the mean label.
The true state is more than any image policy sees, so a held-out error near or above the mean's
says the labels are no function of the state a behaviour-cloned policy could learn from this
much data (a teacher whose action depends on a plan it committed to earlier, or several equally
good actions): cloning them from images will not work either. Prints one JSON line per
``--eval-every`` steps and a final one; reads no images.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.dataset import Dataset
from agent.errors import friendly_errors


def load(folders: list[str], labels: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inputs (N, 2S): state and goal state per step; labels (N, A); episode index (N,)."""
    xs, ys, eps = [], [], []
    for folder in folders:
        ds = Dataset(folder)
        key = ("expert_actions" if ds.expert_labels else "actions") if labels == "auto" else labels
        if key == "expert_actions" and not ds.expert_labels:
            raise ValueError(
                f"{folder} has no expert_actions: collect with expert_labels=true or use "
                "--labels actions"
            )
        for ep in ds.iter_episodes():
            state = np.asarray(ep["state"][:-1], np.float32)
            goal = np.repeat(np.asarray(ep["goal_state"], np.float32)[None], len(state), 0)
            xs.append(np.concatenate([state, goal], 1))
            ys.append(np.asarray(ep[key], np.float32))
            eps.append(np.full(len(state), len(eps)))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(eps)


def fit(
    x: np.ndarray,
    y: np.ndarray,
    episode: np.ndarray,
    val_share: float = 0.1,
    steps: int = 4000,
    hidden: int = 512,
    eval_every: int = 1000,
    seed: int = 0,
) -> list[dict[str, float]]:
    """Train on the first episodes, report the held-out error of the last ones every
    ``eval_every`` steps (a list of dicts: step, train_mse, val_mse, val_mse_mean_label)."""
    n_eps = int(episode.max()) + 1
    n_val = max(1, int(round(val_share * n_eps)))
    if n_eps - n_val < 1:
        raise ValueError(f"{n_eps} episode(s): need at least 2 (one to fit, one to hold out)")
    val = episode >= n_eps - n_val
    xt, yt = torch.as_tensor(x[~val]), torch.as_tensor(y[~val])
    xv, yv = torch.as_tensor(x[val]), torch.as_tensor(y[val])
    mu, sd = xt.mean(0), xt.std(0) + 1e-6
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Linear(x.shape[1], hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
        nn.Linear(hidden, y.shape[1]),
    )  # fmt: skip
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    gen = torch.Generator().manual_seed(seed)
    mean_mse = float((yv - yt.mean(0)).pow(2).mean())
    out = []
    for step in range(1, steps + 1):
        i = torch.randint(0, len(xt), (512,), generator=gen)
        loss = (net((xt[i] - mu) / sd) - yt[i]).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % eval_every == 0 or step == steps:
            with torch.no_grad():
                val_mse = float((net((xv - mu) / sd) - yv).pow(2).mean())
            out.append(
                {"step": step, "train_mse": float(loss.detach()), "val_mse": val_mse,
                 "val_mse_mean_label": mean_mse}
            )  # fmt: skip
    return out


@friendly_errors
def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", nargs="+", required=True, help="dataset folder(s)")
    p.add_argument(
        "--labels",
        default="auto",
        choices=["auto", "expert_actions", "actions"],
        help="auto: expert_actions where the dataset has them, else actions",
    )
    p.add_argument("--val-share", type=float, default=0.1)
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--eval-every", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    x, y, episode = load(a.data, a.labels)
    rows = fit(x, y, episode, a.val_share, a.steps, eval_every=a.eval_every, seed=a.seed)
    for row in rows:
        print(json.dumps({k: round(v, 4) for k, v in row.items()}))
    best = min(rows, key=lambda r: r["val_mse"])
    print(
        f"best held-out error {best['val_mse']:.4f} at step {best['step']} against "
        f"{best['val_mse_mean_label']:.4f} for the mean label "
        f"(ratio {best['val_mse'] / best['val_mse_mean_label']:.2f})"
    )


if __name__ == "__main__":
    main()
