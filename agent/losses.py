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


def proprio_r2(
    z: torch.Tensor,
    proprio: torch.Tensor,
    z_fit: torch.Tensor | None = None,
    proprio_fit: torch.Tensor | None = None,
    ridge: float = 1e-3,
) -> torch.Tensor:
    """How well a linear readout of the latent tells the robot's own state: the squared
    correlation, over the rows of ``z``, between each proprio entry and its best linear
    (ridge) readout from the latent, averaged over the entries that vary.

    z (N, *latent), proprio (N, P) -> scalar in [0, 1]. The readout is fit, without gradient,
    on ``z_fit`` / ``proprio_fit`` (more rows: the fit needs many more rows than latent entries;
    a fit on a batch alone overfits and the encoder learns to hide the robot from it, not to
    drop it) plus the rows of ``z``; the gradient then turns the latent away from the readout's
    directions. Pulling it down keeps the latent off what the proprio already tells (the arm),
    so it holds the rest of the scene (the objects) and its distance ranks how far those are
    from a goal. A correlation, blind to the latent's scale: no pull toward collapse.
    """
    zf = z.flatten(1)
    p = proprio.flatten(1).to(zf.dtype)
    if p.shape[1] == 0 or len(zf) < 3:  # no proprio (imported video)
        return zf.sum() * 0.0
    with torch.no_grad():
        a, b = zf.detach(), p
        if z_fit is not None and proprio_fit is not None:
            a = torch.cat([z_fit.flatten(1).to(zf.dtype), a])
            b = torch.cat([proprio_fit.flatten(1).to(zf.dtype), b])
        varies = b.std(0) > 1e-6 * b.abs().amax(0).clamp_min(1e-6)
        if not varies.any():  # a still robot tells nothing
            return zf.sum() * 0.0
        b, p = b[:, varies], p[:, varies]
        mz = a.mean(0)
        ac = a - mz
        gram = ac.T @ ac
        lam = ridge * gram.diagonal().mean().clamp_min(1e-8)
        eye = torch.eye(len(gram), dtype=ac.dtype, device=ac.device)
        coef = torch.linalg.solve(gram + lam * eye, ac.T @ (b - b.mean(0)))  # (D, P)
    r = (zf - mz) @ coef  # (N, P) the readout, with gradient through z
    r = r - r.mean(0)
    pc = p - p.mean(0)
    cov = (r * pc).sum(0)
    corr2 = cov.pow(2) / (r.pow(2).sum(0) * pc.pow(2).sum(0)).clamp_min(1e-12)
    return corr2.mean()


def latent_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (pred - target).pow(2).mean()
