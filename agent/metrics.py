"""Plannability metrics on held-out trajectories (reported by every training run).

- multi-step prediction error per horizon step vs the copy-last-latent baseline;
- linear-probe R^2 of the true state from the latent (ridge, fit on train, scored held-out);
- Spearman rank correlation between latent cost and true task distance over random pairs,
  on all pairs, on near pairs (true distance below the median), which is what MPC needs, and
  on pairs from one episode (the goal image shares the episode's scene).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from scipy.stats import spearmanr

from agent.batches import Windows
from agent.model import WorldModel


@torch.no_grad()
def encode_all(
    model: WorldModel, pixels: torch.Tensor, proprio: torch.Tensor | None = None, batch: int = 512
) -> torch.Tensor:
    """Latents of many frames (and their proprio, which proprio_state models need).

    The output is allocated once, before the per-batch frames and activations come and go:
    long-lived pieces between them would keep the freed heap from going back to the OS."""
    dev = next(model.parameters()).device
    out: torch.Tensor | None = None
    for i in range(0, len(pixels), batch):
        z = model.encode(
            pixels[i : i + batch].to(dev),
            None if proprio is None else proprio[i : i + batch].to(dev),
        ).cpu()
        if out is None:
            out = torch.empty((len(pixels), *z.shape[1:]), dtype=z.dtype)
        out[i : i + len(z)] = z
    if out is None:
        raise ValueError("encode_all: no frames to encode")
    return out


def encode_episode(model: WorldModel, ep: dict) -> torch.Tensor:
    """Latents of a recorded episode's frames (``Dataset.iter_episodes``), with its proprio
    where the model's latent carries it (``model.proprio_state``)."""
    proprio = torch.as_tensor(np.array(ep["proprio"])) if model.cfg.proprio_state else None
    return encode_all(model, torch.as_tensor(np.array(ep["pixels"])), proprio)


@torch.no_grad()
def rollout_windows(
    model: WorldModel,
    win: Windows,
    latents: Callable[[torch.Tensor], torch.Tensor],
    n: int = 512,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One rollout of ``n`` random windows of ``win`` (drawn with ``seed``) from their first
    ``model.cfg.history`` latents: (predicted (B, W - K, *latent), the windows' latents
    (B, W, *latent)). ``latents`` maps the windows' frame indices (B, W) to their latents."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(len(win), (min(n, len(win)),), generator=g)
    k = model.cfg.history
    s = win.stride  # a model.frameskip model: frames ``stride`` env steps apart
    zw = latents(win.frames(idx))
    a = win.start_act[idx, None] + torch.arange((k - 1) * s, (win.window - 1) * s)
    dev = next(model.parameters()).device
    return model.rollout(zw[:, :k].to(dev), win.actions[a].to(dev)).cpu(), zw


@torch.no_grad()
def prediction_error(
    model: WorldModel, win: Windows, z: torch.Tensor, n: int = 512, seed: int = 0
) -> dict[str, list[float]]:
    """Rollout error at h = 1..W-K and the copy baseline, on held-out windows."""
    return prediction_errors(model, win, z, {"latent": None}, n, seed)["latent"]


@torch.no_grad()
def prediction_errors(
    model: WorldModel,
    win: Windows,
    z: torch.Tensor,
    parts: dict[str, Callable[[torch.Tensor], torch.Tensor] | None],
    n: int = 512,
    seed: int = 0,
) -> dict[str, dict[str, list[float]]]:
    """``prediction_error`` of one rollout of the held-out windows, measured on each of
    ``parts`` (name -> a part of the latent, e.g. ``model.image_part``; None: all of it)."""
    k = model.cfg.history
    steps = win.window - k
    pred, zw = rollout_windows(model, win, lambda o: z[o], n, seed)
    out = {}
    for name, part in parts.items():
        view = part or (lambda x: x)
        target, last = view(zw[:, k:]), view(zw[:, k - 1 : k])
        err = (view(pred) - target).flatten(2).pow(2).mean(-1).mean(0)  # (steps,)
        copy = (last - target).flatten(2).pow(2).mean(-1).mean(0)
        out[name] = {
            "model": err.tolist(),
            "copy": copy.tolist(),
            "ratio": (err / copy.clamp_min(1e-12)).tolist()[:steps],
        }
    return out


def probe_r2_dims(
    z_train: torch.Tensor,
    s_train: np.ndarray,
    z_test: torch.Tensor,
    s_test: np.ndarray,
    ridge: float = 1e-3,
) -> list[float | None]:
    """R^2 of a ridge probe state <- latent for each state dimension (None: constant there).

    Per dimension, because an average hides which factor the latent lacks (two_room: the door
    is decoded at 0.99 while the ball x / y are at 0.74 / 0.63)."""
    x, xt = z_train.flatten(1).double().numpy(), z_test.flatten(1).double().numpy()
    mu, sd = x.mean(0), x.std(0) + 1e-8
    x, xt = (x - mu) / sd, (xt - mu) / sd
    x1 = np.c_[x, np.ones(len(x))]
    w = np.linalg.solve(x1.T @ x1 + ridge * len(x) * np.eye(x1.shape[1]), x1.T @ s_train)
    pred = np.c_[xt, np.ones(len(xt))] @ w
    ss_res = ((s_test - pred) ** 2).sum(0)
    ss_tot = ((s_test - s_test.mean(0)) ** 2).sum(0) + 1e-12
    keep = ss_tot > 1e-8  # constant state entries carry no signal
    return [float(1 - r / t) if k else None for r, t, k in zip(ss_res, ss_tot, keep, strict=True)]


def probe_r2(
    z_train: torch.Tensor,
    s_train: np.ndarray,
    z_test: torch.Tensor,
    s_test: np.ndarray,
    ridge: float = 1e-3,
) -> float:
    """R^2 (averaged over the non-constant state dims) of a ridge probe state <- latent."""
    return _mean_r2(probe_r2_dims(z_train, s_train, z_test, s_test, ridge))


def _mean_r2(dims: list[float | None]) -> float:
    return float(np.mean([r for r in dims if r is not None]))


def rank_correlation(
    z: torch.Tensor,
    state: np.ndarray,
    distance: Callable[[np.ndarray, np.ndarray], np.ndarray],
    n_pairs: int = 4000,
    seed: int = 0,
    episode: np.ndarray | None = None,
    dim_weights: torch.Tensor | None = None,
) -> dict[str, float]:
    """Spearman between latent L2 cost and the task's true distance over random pairs.

    ``all``/``near``: pairs drawn across the whole held-out set. ``within`` (when ``episode``
    gives each frame's episode): both frames from one episode, as in planning, where the goal
    image shares the episode's scene (two_room's door) with the current one.
    ``dim_weights`` (latent size,): the cost is ``sum(w * diff^2)`` instead of the mean square
    (see ``planning_cost_weights``).
    """
    rng = np.random.default_rng(seed)
    i, j = random_pairs(len(z), n_pairs, rng)
    lat = latent_cost(z, i, j, dim_weights)
    true = distance(state[i], state[j])
    near = true < np.median(true)
    out = {
        "all": float(spearmanr(lat, true).statistic),
        "near": float(spearmanr(lat[near], true[near]).statistic),
    }
    if episode is not None:
        _, first, count = np.unique(episode, return_index=True, return_counts=True)
        e = episode[i]  # episodes are contiguous runs of frames
        j = first[e] + (rng.random(n_pairs) * count[e]).astype(int)
        out["within"] = float(
            spearmanr(latent_cost(z, i, j, dim_weights), distance(state[i], state[j])).statistic
        )
    return out


def random_pairs(
    n: int, n_pairs: int = 4000, rng: np.random.Generator | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(i, j)`` of ``n_pairs`` random pairs among ``n`` frames: ``rank_correlation``'s
    draw (its first, across the whole set, with ``default_rng(0)``)."""
    rng = np.random.default_rng(0) if rng is None else rng
    i, j = rng.integers(n, size=(2, n_pairs))
    return i, j


def latent_cost(
    z: torch.Tensor, i: np.ndarray, j: np.ndarray, w: torch.Tensor | None = None
) -> np.ndarray:
    """The L2 cost between latents ``z[i]`` and ``z[j]`` (mean square, or ``w``-weighted sum)."""
    d = (z[i] - z[j]).flatten(1).pow(2)
    return (d.mean(-1) if w is None else d @ w).numpy()


def planning_cost_weights(model: WorldModel, proprio_weight: float) -> torch.Tensor:
    """Per-dimension weights that turn the squared latent difference into the agent's l2 cost
    with ``agent.proprio_weight`` (mean over the latent + weight x mean over its proprio part)."""
    if not model.cfg.proprio_state:
        raise ValueError(
            "proprio_weight in the plannability report needs a model.proprio_state checkpoint "
            "(its latent holds the proprio): drop --proprio-weight for this one"
        )
    n, d = model.cfg.state_dim, model.cfg.latent_dim
    w = torch.full((n,), 1.0 / n)
    w[d:] += proprio_weight / (n - d)
    return w


def plannability_report(
    model: WorldModel,
    train: Windows,
    held: Windows,
    distance: Callable[[np.ndarray, np.ndarray], np.ndarray] | None,
    proprio_weight: float = 0.0,
) -> dict:
    """The metrics above (the rankings by the planning cost's view of the latent,
    ``WorldModel.cost_view``; with ``model.cost_features`` also ``spearman_latent``: by the
    whole latent); with ``proprio_weight`` also ``spearman_cost``: the same ranking for
    the cost the agent plans with at that ``agent.proprio_weight``. ``model.proprio_state``
    models also get ``spearman_image`` and ``prediction_error_image``: the ranking and the
    rollout error by the image latent alone (what the encoder learned; ``spearman`` and
    ``prediction_error`` count the proprio the latent carries too); ``model.cost_features``
    models ``prediction_error_cost``: the rollout error in the cost's slow features, against
    their copy baseline (a ratio above 1: the planner would chase the predictor's errors).
    With ``distance=None`` (data without a true state, e.g. a robot's run logs) the prediction
    error alone."""
    model.eval()
    if distance is None:
        z_he = encode_all(model, held.pixels, held.proprio)
        return {"prediction_error": prediction_error(model, held, z_he)}
    every = max(1, len(train.pixels) // 5000)
    z_tr = encode_all(model, train.pixels[::every], train.proprio[::every])
    s_tr = train.state[::every]
    z_he = encode_all(model, held.pixels, held.proprio)
    dims = probe_r2_dims(z_tr, s_tr, z_he, held.state)
    z_c = model.cost_view(z_he)  # what the planning cost measures (model.cost_features)
    # the image part alone (model.proprio_state): what the proprio's error would hide
    image = {"prediction_error_image": model.image_part} if model.cfg.proprio_state else {}
    if model.cfg.cost_features:  # the rollout's error as the cost sees it (its slow features)
        image["prediction_error_cost"] = lambda z: model.image_part(model.cost_view(z))
    report = {
        **prediction_errors(model, held, z_he, {"prediction_error": None, **image}),
        "probe_r2": _mean_r2(dims),  # the same fit, averaged (probe_r2)
        "probe_r2_dims": dims,
        "spearman": rank_correlation(z_c, held.state, distance, episode=held.episode),
    }
    if model.cfg.cost_features:  # the whole latent's ranking, beside the slow features'
        report["spearman_latent"] = rank_correlation(
            z_he, held.state, distance, episode=held.episode
        )
    if model.cfg.proprio_state:
        z_image = model.image_part(z_c)
        report["spearman_image"] = rank_correlation(
            z_image, held.state, distance, episode=held.episode
        )
    if proprio_weight:
        w = planning_cost_weights(model, proprio_weight)
        cost = rank_correlation(z_c, held.state, distance, episode=held.episode, dim_weights=w)
        report["spearman_cost"] = {**cost, "proprio_weight": proprio_weight}
    return report
