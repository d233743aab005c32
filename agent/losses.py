"""Self-supervised losses for plannable latents.

Collapse is prevented by a *spread* term (random pairs of latents kept apart on a log scale)
instead of VICReg's covariance term: a trial here showed the covariance term decorrelates
dimensions at the cost of the latent geometry (probe R^2 0.99 but latent distance ranked true
distance with Spearman 0.10), while slowness + log-spread made latent distance track true
distance. The optional VICReg variance hinge is kept (weight 0 by default).
"""

from __future__ import annotations

import torch


def slowness(z: torch.Tensor) -> torch.Tensor:
    """Consecutive latents close: z (B, T, *latent) -> mean squared step."""
    return (z[:, 1:] - z[:, :-1]).flatten(2).pow(2).mean()


def log_spread(z: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """Random pairs apart, with a log so far pairs stop pulling: z (B, *latent) -> scalar."""
    return log_apart(z, z.roll(1, dims=0), eps)  # pairs (i, i-1): different windows


def log_apart(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """Pairs ``(a[i], b[i])`` apart on a log scale: (B, *latent) x 2 -> scalar."""
    d = (a - b).flatten(1).pow(2).mean(-1)  # (B,)
    return -torch.log(d + eps).mean()


def variance_hinge(z: torch.Tensor, target: float = 1.0) -> torch.Tensor:
    """VICReg's variance term: std of every latent dimension over the batch >= target."""
    flat = z.flatten(1)
    return torch.relu(target - flat.std(0)).mean()


def proprio_r2(z: torch.Tensor, proprio: torch.Tensor, rel_tol: float = 1e-3) -> torch.Tensor:
    """How much of the latent the robot's own state explains: the mean, over latent entries,
    of the R^2 of their linear regression on the proprio over the batch, in [0, 1].

    z (N, *latent), proprio (N, P) -> scalar. Pulling it down keeps the latent off what the
    proprio already tells (the arm), so it holds the rest of the scene (the objects) and its
    distance ranks how far those are from a goal. Proprio directions that barely vary in the
    batch (singular value under ``rel_tol`` of the largest) are left out.
    """
    zc = z.flatten(1) - z.flatten(1).mean(0)  # (N, D)
    if proprio.flatten(1).shape[1] == 0:  # no proprio (imported video): nothing explains z
        return zc.sum() * 0.0
    with torch.no_grad():
        pc = proprio.flatten(1).to(zc.dtype)
        pc = pc - pc.mean(0)
        u, s, _ = torch.linalg.svd(pc, full_matrices=False)  # (N, P) orthonormal columns
        u = u[:, s > rel_tol * s.max().clamp_min(1e-12)]
    explained = (u.T @ zc).pow(2).sum(0)  # (D,) variance along the proprio's span
    # a ratio of live terms, blind to scale: shrinking the latent does not lower it (with the
    # total detached, a pretraining collapsed to one point within 50 steps)
    return (explained / zc.pow(2).sum(0).clamp_min(1e-8)).mean()


def latent_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (pred - target).pow(2).mean()
