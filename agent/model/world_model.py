"""The world model's verb API: ``encode``, ``next``, ``rollout`` and cost helpers.

Shapes: N samples, H horizon, A action dim, K history, D latent, P patch tokens.
A latent ``z`` is (D,) for the conv and keypoint encoders and (P, D) for the ViT; batched
(B, *latent). With ``model.proprio_state`` (global latents only) it is (D + proprio_dim,): the
image latent followed by the normalized proprio, so the predictor conditions on the robot's
state and predicts it.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import nn

from agent.model.config import ModelConfig
from agent.model.encoders import make_decoder, make_encoder
from agent.model.predictor import FramePredictor, make_predictor


class WorldModel(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = make_encoder(cfg)
        self.target_encoder = copy.deepcopy(self.encoder).requires_grad_(False)  # EMA copy
        self.frame_predictor = FramePredictor(cfg)  # action-free, pretraining only
        self.predictor = make_predictor(cfg)  # action-conditioned
        d = cfg.state_dim * cfg.tokens
        if cfg.proprio_stats:  # proprio normalization (from the data)
            self.register_buffer("proprio_mean", torch.zeros(cfg.proprio_dim))
            self.register_buffer("proprio_std", torch.ones(cfg.proprio_dim))
        if cfg.cost_features:  # set by agent.slow_features.fit_cost_basis
            self.register_buffer("cost_basis", torch.eye(cfg.latent_dim))
        self.proprio_head = nn.Linear(d, cfg.proprio_dim)  # optional proprio cost term
        self.decoder = make_decoder(cfg)  # for videos of imagined futures only

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return (
            (self.cfg.state_dim,)
            if self.cfg.global_latent
            else (self.cfg.tokens, self.cfg.latent_dim)
        )

    # ---- proprio inside the latent (model.proprio_state) --------------------------------
    def set_proprio_stats(self, proprio: torch.Tensor) -> None:
        """Normalization of the latent's proprio part from data rows (N, P)."""
        p = proprio.double()
        self.proprio_mean.copy_(p.mean(0).float())
        self.proprio_std.copy_(p.std(0).clamp_min(1e-3).float())

    def normalize_proprio(self, proprio: torch.Tensor) -> torch.Tensor:
        """(..., P) raw proprio -> (..., P) standardized by the data's stats."""
        p = proprio.to(self.proprio_mean.device, torch.float32)
        return (p - self.proprio_mean) / self.proprio_std

    def embed_proprio(self, proprio: torch.Tensor) -> torch.Tensor:
        """(..., P) raw proprio -> (..., P) the latent's proprio part."""
        return self.normalize_proprio(proprio) * self.cfg.proprio_scale

    def proprio_of(self, z: torch.Tensor) -> torch.Tensor:
        """(..., *latent) of a proprio_state model -> (..., P) the raw proprio it carries
        (the inverse of ``embed_proprio``), e.g. the robot state an imagined latent predicts."""
        part = z[..., self.cfg.latent_dim :] / self.cfg.proprio_scale
        return part * self.proprio_std + self.proprio_mean

    def with_proprio(self, z: torch.Tensor, proprio: torch.Tensor | None) -> torch.Tensor:
        """Image latents (..., D) -> model latents: + the proprio part with proprio_state."""
        if not self.cfg.proprio_state:
            return z
        p = None if proprio is None else torch.as_tensor(proprio)
        if p is None or not torch.isfinite(p).all():
            raise ValueError(
                "this world model plans on proprio too (model.proprio_state=true): give the "
                "observation's and the goal's proprio (finite), or use an image-only checkpoint"
            )
        return torch.cat([z, self.embed_proprio(p)], dim=-1)

    def image_part(self, z: torch.Tensor) -> torch.Tensor:
        """(..., *latent) -> the image latent alone (drops the proprio part, if any)."""
        return z[..., : self.cfg.latent_dim] if self.cfg.proprio_state else z

    def cost_view(self, z: torch.Tensor) -> torch.Tensor:
        """(..., *latent) -> the latent as the planning cost measures it: with
        ``model.cost_features`` the image part mapped through ``cost_basis`` (its slowest
        features, the other columns zero), the proprio part as it is; else ``z`` itself."""
        if not self.cfg.cost_features:
            return z
        d = self.cfg.latent_dim
        return torch.cat([z[..., :d] @ self.cost_basis.to(z.dtype), z[..., d:]], dim=-1)

    # ---- verbs --------------------------------------------------------------------------
    def encode(self, pixels: torch.Tensor, proprio: torch.Tensor | None = None) -> torch.Tensor:
        """(B, H, W, 3) uint8 [+ (B, P) proprio] -> (B, *latent).

        ``proprio`` is needed by ``model.proprio_state`` models and ignored by the others.
        """
        return self.with_proprio(self.encoder(pixels), proprio)

    def encode_observation(self, obs: dict[str, Any]) -> torch.Tensor:
        """One observation (``pixels`` (H, W, 3) uint8, optional ``proprio``) -> (1, *latent)
        on the model's device; ``model.proprio_state`` models also read its proprio."""
        device = next(self.parameters()).device
        pixels = torch.as_tensor(np.array(obs["pixels"], copy=True), device=device)[None]
        p = obs.get("proprio") if self.cfg.proprio_state else None
        if p is not None:
            p = torch.as_tensor(np.asarray(p, np.float32), device=device)[None]
        return self.encode(pixels, p)

    def next(self, z_hist: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """(N, K, *latent) history and (N, A * frameskip) actions -> (N, *latent) next latent.

        With ``model.frameskip`` k > 1 the action is the k env-step actions that follow the
        latent, concatenated in time order, and the result is the latent k env steps later."""
        return self.predictor(z_hist, action)

    def rollout(self, z0: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Imagine H steps from z0 (K, *latent) or (N, K, *latent).

        actions (N, H, A) -> imagined latents (N, H, *latent). With ``model.frameskip`` k > 1,
        actions are still per env step, H must be a multiple of k, and the result holds the
        H / k latents after every k-th step: (N, H / k, *latent).
        """
        actions = self.action_chunks(actions)
        n, h, _ = actions.shape
        hist = z0.expand(n, *z0.shape) if z0.dim() == len(self.latent_shape) + 1 else z0
        out = []
        for t in range(h):
            z = self.next(hist, actions[:, t])  # (N, *latent)
            out.append(z)
            hist = torch.cat([hist[:, 1:], z[:, None]], dim=1)  # (N, K, *latent)
        return torch.stack(out, dim=1)  # (N, H, *latent)

    def action_chunks(self, actions: torch.Tensor) -> torch.Tensor:
        """Env-step actions (N, T, A) -> predictor actions (N, T / k, k * A): each predictor
        step takes the ``model.frameskip`` k actions it spans, in time order."""
        k = self.cfg.frameskip
        n, t, a = actions.shape
        if t % k:
            raise ValueError(
                f"rollout of {t} env steps with model.frameskip={k}: pass a multiple of {k}"
            )
        return actions.reshape(n, t // k, k * a)

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, *latent) -> (B, H, W, 3) uint8 picture of what the latent shows."""
        return (self.decoder(self.image_part(z)) * 255).round().to(torch.uint8)

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
        """Squared proprio error of the final imagined latent (N, H, ...) -> (N,).

        proprio_state models: the latent's own (normalized) proprio part; others: the proprio
        decoded by the probe head, in raw units.
        """
        if self.cfg.proprio_state:
            part = zs[:, -1, self.cfg.latent_dim :]
            return (part - self.embed_proprio(goal_proprio)).pow(2).mean(-1)
        return (self.proprio_head(zs[:, -1].flatten(1)) - goal_proprio).pow(2).mean(-1)
