"""Action-conditioned predictors: (latent history, action) -> next latent."""

from __future__ import annotations

import torch
from torch import nn

from agent.model.config import ModelConfig


def mlp(din: int, hidden: int, dout: int, layers: int) -> nn.Sequential:
    mods: list[nn.Module] = []
    d = din
    for _ in range(layers):
        mods += [nn.Linear(d, hidden), nn.LayerNorm(hidden), nn.SiLU()]
        d = hidden
    mods.append(nn.Linear(d, dout))
    return nn.Sequential(*mods)


class MLPPredictor(nn.Module):
    """Residual MLP on global latents: z' = z_t + f([z_{t-k+1..t}, a_t])."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        din = cfg.state_dim * cfg.history + cfg.action_dim * cfg.frameskip
        self.net = mlp(din, cfg.predictor_hidden, cfg.state_dim, cfg.predictor_layers)
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, hist: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        # hist: (N, K, D); action: (N, A * frameskip)
        return hist[:, -1] + self.net(torch.cat([hist.flatten(1), action], dim=-1))  # (N, D)


class TokenPredictor(nn.Module):
    """Transformer over patch tokens with an action token: (N, K, P, D) -> (N, P, D)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        d = cfg.latent_dim
        self.act = nn.Linear(cfg.action_dim * cfg.frameskip, d)
        self.time = nn.Parameter(torch.zeros(1, cfg.history, 1, d))
        block = nn.TransformerEncoderLayer(
            d,
            nhead=4,
            dim_feedforward=cfg.predictor_hidden,
            dropout=0.0,
            batch_first=True,
            norm_first=True,
        )
        self.blocks = nn.TransformerEncoder(block, cfg.predictor_layers, enable_nested_tensor=False)
        self.out = nn.Linear(d, d)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, hist: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        n, k, p, d = hist.shape
        x = (hist + self.time).reshape(n, k * p, d)  # (N, K*P, D)
        x = torch.cat([self.act(action)[:, None], x], dim=1)  # (N, 1 + K*P, D)
        y = self.blocks(x)[:, -p:]  # (N, P, D): tokens of the latest frame
        return hist[:, -1] + self.out(y)


class FramePredictor(nn.Module):
    """Action-free predictor for pretraining: latent history (N, K, ...) -> next latent.

    It works on the image latent alone (pretraining has no proprio)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.inner = (MLPPredictor if cfg.global_latent else TokenPredictor)(
            ModelConfig(**{**cfg.__dict__, "action_dim": 1, "frameskip": 1, "proprio_state": False})
        )

    def forward(self, hist: torch.Tensor) -> torch.Tensor:
        zero = hist.new_zeros(hist.shape[0], 1)
        return self.inner(hist, zero)


def make_predictor(cfg: ModelConfig) -> nn.Module:
    return MLPPredictor(cfg) if cfg.global_latent else TokenPredictor(cfg)
