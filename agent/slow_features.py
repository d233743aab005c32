"""Slow features of a latent: the planning cost's metric, fitted on video alone.

    python -m agent.slow_features --checkpoint runs/<pretrain>/model.safetensors \\
        --data data/<task> --features 4 --out runs/<name>/model

A latent can hold what distance-to-goal measures and still rank it badly: Push-T's keypoint
latent reads the block's yaw linearly (probe R^2 0.99), yet its plain distance follows the
block's position and the fast-moving pusher far more than the yaw. Slow feature analysis
(Wiskott & Sejnowski 2002) finds, with no labels, the linear directions of the latent that
change least from one frame to the next relative to how much they vary over the video: an
object's pose moves slowly, a pusher or arm that darts about does not. The cost then measures
the k slowest of them (``WorldModel.cost_view``), each scaled to unit spread over the frames,
or with ``--scale steps`` (``model.cost_scale=steps``) to unit spread of its one-step change: the
distance then counts typical steps, so a feature weighs more the slower it is. A slow direction
changes little, so the predictor's error along it can dwarf its change, and the planner then
chases that error; ``--predictable`` (``model.cost_predictable``, finetuned models) counts the
predictor's rollout error beside the one-step change, so the features are the slow directions
it also predicts (docs/results.md, "Slow features the predictor gets right"; the manifest's
``metrics.prediction_error_cost`` shows the error in the features against their copy baseline).
An arm in view moves as slowly as the cube it carries; ``--exclude-proprio``
(``model.cost_exclude_proprio``) counts the part of the latent the robot's proprio explains as
fast too, so the features are the scene's (the manifest's ``cost_features_fit.proprio_r2``: how
much of the latent that part is). A keypoint latent can instead be cut point by point:
``--points`` (``model.cost_points``) keeps the image coordinates of the ``--features / 2`` points
the same regression explains least (``scene_point_basis``; the manifest's
``cost_features_fit.points_proprio_r2``).

Fitted at the end of training when ``model.cost_features > 0``, or by this command on any
checkpoint with a global latent (the weights are unchanged; the manifest's ``metrics`` are
recomputed with the new cost and the old ones kept as ``metrics_plain_latent``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
from pathlib import Path

import numpy as np
import torch

import envs
from agent import checkpoint
from agent.batches import Windows, split_dataset
from agent.dataset import Dataset
from agent.errors import friendly_errors
from agent.metrics import encode_all, plannability_report, rollout_windows
from agent.model import WorldModel
from agent.model.config import COST_SCALES

MAX_FRAMES = 20000  #: frames the fit encodes at most (whole episodes, spread over the data)
#: model.cost_predictable: training windows whose rollouts give the predictor's error
ERROR_WINDOWS = 4096


def slow_basis(
    z: torch.Tensor,
    episode: np.ndarray,
    features: int,
    scale: str = "frames",
    error: torch.Tensor | None = None,
) -> torch.Tensor:
    """(D, D) map: column i < ``features`` the i-th slowest direction of latents ``z`` (N, D)
    (consecutive frames of one ``episode`` are one step), the other columns zero. Scaled by
    ``scale`` (``ModelConfig.cost_scale``): ``frames``, each to unit variance over the frames;
    ``steps``, each to unit variance of its one-step change (the squared distance counts typical
    steps: the i-th feature weighs its slowness ratio r_i more than under ``frames``), then all
    by one factor that brings their mean variance over the frames to 1. Then by
    sqrt(D / features), so the mean square over D equals the mean over the features.
    ``error`` (D, D): a covariance added to the one-step one (``rollout_error_cov``: the
    predictor's, so a direction counts as slow only where it is also predicted well;
    ``proprio_explained_cov``: the robot's, so only where the robot's state does not explain it).

    Slowness is the generalized eigenproblem C v = r S v (C: covariance of the frames, S: mean
    outer product of one-step differences); the largest r are the slowest directions."""
    x = z.flatten(1).double()
    d = x.shape[1]
    if scale not in COST_SCALES:
        raise ValueError(f"scale={scale!r} is unknown: use one of {', '.join(COST_SCALES)}")
    if not 1 <= features <= d:
        raise ValueError(f"features={features} must be between 1 and the latent size {d}")
    same = torch.as_tensor(np.asarray(episode[1:] == episode[:-1]))
    steps = (x[1:] - x[:-1])[same]
    if len(steps) < d or len(x) < 2 * d:
        raise ValueError(
            f"slow features of a {d}-d latent need at least {2 * d} frames with {d} one-step "
            f"pairs (have {len(x)} and {len(steps)}): use more episodes"
        )
    cov = torch.cov(x.T)
    s = steps.T @ steps / len(steps)
    if error is not None:
        if error.shape != (d, d):
            raise ValueError(f"error covariance {tuple(error.shape)} does not fit the {d}-d latent")
        s = s + error.to(s)
    eye = torch.eye(d, dtype=x.dtype)
    chol = torch.linalg.cholesky(s + 1e-9 * s.trace() / d * eye)
    inv = torch.linalg.solve_triangular(chol, eye, upper=False)  # L^-1
    ratio, u = torch.linalg.eigh(inv @ cov @ inv.T)  # ascending slowness
    dirs = (inv.T @ u).flip(1)[:, :features]  # (D, k), slowest first; unit step variance
    slowness = ratio.flip(0)[:features].clamp_min(1e-12)  # frame variance / step variance
    if scale == "frames":
        dirs = dirs / slowness.sqrt()  # unit variance over frames
    else:
        dirs = dirs / slowness.mean().sqrt()  # mean variance over frames 1, steps kept in ratio
    basis = torch.zeros(d, d, dtype=x.dtype)
    basis[:, :features] = dirs * (d / features) ** 0.5
    return basis.float()


def spread_episodes(lengths: np.ndarray, max_frames: int = MAX_FRAMES) -> np.ndarray:
    """Indices of whole episodes, evenly spread over all of them, with at most ``max_frames``
    frames together (at least one episode)."""
    frames = np.asarray(lengths) + 1
    if frames.sum() <= max_frames:
        return np.arange(len(frames))
    keep = max(1, int(len(frames) * max_frames / frames.sum()))
    return np.unique(np.linspace(0, len(frames) - 1, keep).round().astype(int))


@torch.no_grad()
def rollout_error_cov(model: WorldModel, win: Windows, n: int = ERROR_WINDOWS, seed: int = 0):
    """(D, D) mean outer product of the predictor's errors in the image latent over rollouts
    of ``n`` random windows of ``win`` (``agent.metrics.rollout_windows``: from their first
    ``model.cfg.history`` frames, every step of the rest), and the number of windows used."""

    def latents(o: torch.Tensor) -> torch.Tensor:  # only the drawn windows' frames
        z = encode_all(model, win.pixels[o.flatten()], win.proprio[o.flatten()])
        return z.reshape(*o.shape, *z.shape[1:])

    pred, zw = rollout_windows(model, win, latents, n, seed)
    e = model.image_part(pred - zw[:, model.cfg.history :]).flatten(2).double()  # (B, steps, D)
    return torch.einsum("bhd,bhe->de", e, e) / (e.shape[0] * e.shape[1]), len(e)


#: model.cost_exclude_proprio: ridge of the proprio regression, per frame (relative to N)
PROPRIO_RIDGE = 1e-3


def proprio_explained_cov(z: torch.Tensor, proprio: torch.Tensor, ridge: float = PROPRIO_RIDGE):
    """(D, D) covariance of the part of latents ``z`` (N, D) that the robot's ``proprio``
    (N, P) explains (ridge regression on the standardized proprio and its pairwise products: a
    camera sees a gripper's position through a projection, mildly nonlinear), and that part's
    fraction of the latent's variance (the regression's R^2 over all of D)."""
    x, p = z.flatten(1).double(), proprio.double()
    if p.ndim != 2 or len(p) != len(x) or p.shape[1] == 0:
        raise ValueError(
            f"proprio {tuple(p.shape)} does not pair with {len(x)} latents: the data needs "
            "the robot's proprio (drop cost_exclude_proprio for a task without one)"
        )
    p = (p - p.mean(0)) / p.std(0).clamp_min(1e-6)
    iu = torch.triu_indices(p.shape[1], p.shape[1])
    f = torch.cat([p, (p[:, :, None] * p[:, None, :])[:, iu[0], iu[1]]], 1)
    f = f - f.mean(0)
    x = x - x.mean(0)
    gram = f.T @ f + ridge * len(f) * torch.eye(f.shape[1], dtype=f.dtype)
    fitted = f @ torch.linalg.solve(gram, f.T @ x)
    r2 = 1.0 - float(((x - fitted) ** 2).sum() / (x**2).sum().clamp_min(1e-12))
    return fitted.T @ fitted / len(fitted), r2


def scene_point_basis(z: torch.Tensor, proprio: torch.Tensor, features: int):
    """(D, D) map that keeps the image coordinates of the ``features / 2`` keypoints (latent
    (N, D) of D/2 (x, y) points) whose place the ``proprio`` (N, P) explains least (the
    regression of ``proprio_explained_cov``, R^2 per point: the mean of its x's and y's), the
    other columns zero, scaled by sqrt(D / features) as ``slow_basis`` is; and the chosen
    points with their R^2."""
    explained, _ = proprio_explained_cov(z, proprio)
    x = z.flatten(1).double()
    d = x.shape[1]
    r2 = (explained.diagonal() / x.var(0, unbiased=False).clamp_min(1e-12)).reshape(-1, 2).mean(1)
    points = torch.argsort(r2)[: features // 2].sort().values
    basis = torch.zeros(d, d, dtype=x.dtype)
    for i, j in enumerate(points.tolist()):
        basis[2 * j, 2 * i] = basis[2 * j + 1, 2 * i + 1] = (d / features) ** 0.5
    return basis.float(), {int(j): round(float(r2[j]), 4) for j in points}


@torch.no_grad()
def fit_cost_basis(model: WorldModel, data: Dataset, episodes: np.ndarray, window: int = 2) -> dict:
    """Fit ``model.cost_basis`` (``model.cost_features`` slow features) on the frames of
    ``data``'s ``episodes`` (with ``model.cost_predictable``, also the predictor's error over
    ``window``-frame rollouts of them; with ``model.cost_exclude_proprio``, the part of the
    latent their proprio explains); returns what the fit used (for the manifest)."""
    k = model.cfg.cost_features
    if not k:
        raise ValueError("the model has model.cost_features=0: no cost basis to fit")
    sel = episodes[spread_episodes(data.lengths[episodes])]
    win = Windows(data, sel, 1)
    z = model.image_part(encode_all(model, win.pixels, win.proprio))
    fit = {"features": k, "scale": model.cfg.cost_scale, "episodes": len(sel), "frames": len(z)}
    if model.cfg.cost_points:
        basis, points = scene_point_basis(z, win.proprio, k)
        model.cost_basis.copy_(basis.to(model.cost_basis.device))
        return {**fit, "scale": "points", "points_proprio_r2": points}
    error = None
    if model.cfg.cost_predictable:
        if window <= model.cfg.history:
            raise ValueError(
                f"model.cost_predictable needs rollouts: window={window} must exceed "
                f"model.history={model.cfg.history}"
            )
        error, n = rollout_error_cov(model, Windows(data, episodes, window, model.cfg.frameskip))
        fit.update(predictable=True, error_windows=n, error_window=window)
    if model.cfg.cost_exclude_proprio:
        explained, r2 = proprio_explained_cov(z, win.proprio)
        error = explained if error is None else error + explained
        fit.update(exclude_proprio=True, proprio_r2=round(r2, 4))
    basis = slow_basis(z, win.episode, k, model.cfg.cost_scale, error)
    model.cost_basis.copy_(basis.to(model.cost_basis.device))
    return fit


def with_cost_features(
    model: WorldModel,
    features: int,
    scale: str = "frames",
    predictable: bool = False,
    exclude_proprio: bool = False,
    points: bool = False,
) -> WorldModel:
    """A copy of ``model`` (same weights) whose config has ``cost_features=features``,
    ``cost_scale=scale``, ``cost_predictable=predictable`` and
    ``cost_exclude_proprio=exclude_proprio`` and ``cost_points=points``."""
    cfg = dataclasses.replace(
        model.cfg,
        cost_features=features,
        cost_scale=scale,
        cost_predictable=predictable,
        cost_exclude_proprio=exclude_proprio,
        cost_points=points,
    )
    out = WorldModel(cfg)
    state = {k: v for k, v in model.state_dict().items() if k != "cost_basis"}
    missing, unexpected = out.load_state_dict(state, strict=False)
    assert set(missing) <= {"cost_basis"} and not unexpected, (missing, unexpected)
    return out.eval()


@friendly_errors
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="a world model with a global latent")
    p.add_argument("--data", required=True, help="the dataset it was trained on")
    p.add_argument("--features", type=int, required=True, help="slow features in the cost")
    p.add_argument(
        "--scale",
        choices=COST_SCALES,
        default="frames",
        help="frames: each feature to unit variance over the frames; steps: to unit variance of "
        "its one-step change (model.cost_scale)",
    )
    p.add_argument(
        "--predictable",
        action="store_true",
        help="also count the predictor's rollout error in the slowness (a finetuned model; "
        "model.cost_predictable)",
    )
    p.add_argument(
        "--exclude-proprio",
        action="store_true",
        help="also count the part of the latent the robot's proprio explains, so the features "
        "follow the scene and not the robot (model.cost_exclude_proprio)",
    )
    p.add_argument(
        "--points",
        action="store_true",
        help="keypoints: the cost measures the --features / 2 points the robot's proprio "
        "explains least, not slow features (model.cost_points)",
    )
    p.add_argument("--out", required=True, help="the new checkpoint (<path>.safetensors/.json)")
    a = p.parse_args()
    model, manifest = checkpoint.load(a.checkpoint)
    data = Dataset(a.data)
    if data.task != manifest["task"]:
        raise ValueError(
            f"--data {a.data} is task {data.task!r}, the checkpoint is {manifest['task']!r}: "
            "pass the dataset the model was trained on"
        )
    if not model.cfg.global_latent:
        raise ValueError(
            f"{a.checkpoint} has patch tokens (model.encoder={model.cfg.encoder}): slow "
            "features need a global latent (model.encoder=conv or keypoints)"
        )
    if not 1 <= a.features <= model.cfg.latent_dim:
        raise ValueError(
            f"--features={a.features} must be between 1 and the latent size {model.cfg.latent_dim}"
        )
    out_path = Path(a.out)
    if checkpoint.paths(out_path)[0].resolve() == checkpoint.paths(a.checkpoint)[0].resolve():
        raise ValueError(f"--out {a.out} is the input checkpoint: write a new one")
    if a.predictable and manifest.get("stage") != "finetune":
        raise ValueError(
            f"--predictable needs a finetuned checkpoint (its predictor's errors); "
            f"{a.checkpoint} is stage={manifest.get('stage')!r}: drop --predictable or pass the "
            "finetuned model"
        )
    model = with_cost_features(
        model, a.features, a.scale, a.predictable, a.exclude_proprio, a.points
    )
    train_cfg = manifest.get("config", {})
    window, stride = int(train_cfg.get("window", 2)), model.cfg.frameskip
    train_eps, held_eps = split_dataset(
        data, float(train_cfg.get("heldout_fraction", 0.1)), window, stride
    )
    fit = fit_cost_basis(model, data, train_eps, window)
    task = envs.make(data.task).unwrapped if data.task in envs.TASKS else None
    report = plannability_report(
        model,
        Windows(data, train_eps, window, stride),
        Windows(data, held_eps, window, stride),
        None if task is None else task.state_distance,
    )
    if task is not None:
        task.close()
    new = {
        **manifest,
        "model": dataclasses.asdict(model.cfg),
        "metrics": report,
        "metrics_plain_latent": manifest.get("metrics"),
        "cost_features_fit": {
            **fit,
            "data": a.data,
            "dataset_sha256": data.meta["sha256"],
            "command": shlex.join(["python", "-m", "agent.slow_features", *sys.argv[1:]]),
        },
    }
    for key in ("format", "weights", "weights_sha256"):
        new.pop(key, None)
    path = checkpoint.write(out_path, model.state_dict(), new, checkpoint.FORMAT)
    print(json.dumps({"checkpoint": str(path), "spearman": report.get("spearman")}, indent=1))


if __name__ == "__main__":
    main()
