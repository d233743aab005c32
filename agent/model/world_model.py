"""The world model's verb API: ``encode``, ``next``, ``rollout`` and cost helpers.

Shapes: N samples, H horizon, A action dim, K history, D latent, P patch tokens.
A latent ``z`` is (D,) for the conv encoder and (P, D) for the ViT; batched (B, *latent).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from agent.model.config import ModelConfig
from agent.model.encoders import ConvDecoder, make_encoder
from agent.model.predictor import FramePredictor, make_predictor


class WorldModel(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = make_encoder(cfg)
        self.target_encoder = copy.deepcopy(self.encoder).requires_grad_(False)  # EMA copy
        self.frame_predictor = FramePredictor(cfg)  # action-free, pretraining only
        self.predictor = make_predictor(cfg)  # action-conditioned
        d = cfg.latent_dim * cfg.tokens
        self.proprio_head = nn.Linear(d, cfg.proprio_dim)  # optional proprio cost term
        self.decoder = ConvDecoder(cfg)  # for videos of imagined futures only

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return (
            (self.cfg.latent_dim,)
            if self.cfg.encoder == "conv"
            else (self.cfg.tokens, self.cfg.latent_dim)
        )

    # ---- verbs --------------------------------------------------------------------------
    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, H, W, 3) uint8 -> (B, *latent)."""
        return self.encoder(pixels)

    def next(self, z_hist: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """(N, K, *latent) history and (N, A) action -> (N, *latent) next latent."""
        return self.predictor(z_hist, action)

    def rollout(self, z0: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Imagine H steps from z0 (K, *latent) or (N, K, *latent).

        actions (N, H, A) -> imagined latents (N, H, *latent).
        """
        n, h, _ = actions.shape
        hist = z0.expand(n, *z0.shape) if z0.dim() == len(self.latent_shape) + 1 else z0
        out = []
        for t in range(h):
            z = self.next(hist, actions[:, t])  # (N, *latent)
            out.append(z)
            hist = torch.cat([hist[:, 1:], z[:, None]], dim=1)  # (N, K, *latent)
        return torch.stack(out, dim=1)  # (N, H, *latent)

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, *latent) -> (B, H, W, 3) uint8 picture of what the latent shows."""
        return (self.decoder(z) * 255).round().to(torch.uint8)

    # ---- costs --------------------------------------------------------------------------
    @staticmethod
    def latent_cost(
        zs: torch.Tensor,
        z_goal: torch.Tensor,
        metric: str = "l2",
        weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Distance of imagined latents (N, H, *latent) to a goal latent (*latent) -> (N,).

        ``weights`` (H,) mixes the per-step distances; None = the final step only.
        """
        diff = (zs - z_goal).flatten(2)  # (N, H, P*D)
        if metric == "l2":
            d = diff.pow(2).mean(-1)  # (N, H)
        elif metric == "l1":
            d = diff.abs().mean(-1)
        else:
            raise ValueError(f"metric={metric!r} is unknown: use 'l1' or 'l2'")
        return d[:, -1] if weights is None else d @ weights

    def proprio_cost(self, zs: torch.Tensor, goal_proprio: torch.Tensor) -> torch.Tensor:
        """Squared error of the proprio decoded from the final latent (N, H, ...) -> (N,)."""
        return (self.proprio_head(zs[:, -1].flatten(1)) - goal_proprio).pow(2).mean(-1)
