"""Image encoders: pixels (B, H, W, 3) uint8 -> latents (B, D) or patch tokens (B, P, D)."""

from __future__ import annotations

import itertools

import torch
from einops import rearrange
from torch import nn

from agent.model.config import ModelConfig


def preprocess(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> float (B, 3, H, W) in [-0.5, 0.5]. The only pixel normalization."""
    return rearrange(pixels, "b h w c -> b c h w").float().div(255.0).sub(0.5)


class ConvEncoder(nn.Module):
    """Four stride-2 convs and a linear head: a global latent (B, D)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        w = cfg.width
        chans = [3, w, 2 * w, 4 * w, 4 * w]
        layers: list[nn.Module] = []
        for cin, cout in itertools.pairwise(chans):
            layers += [
                nn.Conv2d(cin, cout, 4, stride=2, padding=1),
                nn.GroupNorm(8, cout),
                nn.SiLU(),
            ]
        self.net = nn.Sequential(*layers)
        side = cfg.image_size // 16
        self.head = nn.Linear(chans[-1] * side * side, cfg.latent_dim)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        h = self.net(preprocess(pixels))  # (B, C, H/16, W/16)
        return self.head(h.flatten(1))  # (B, D)


def view_grid(cfg: ModelConfig) -> torch.Tensor:
    """(rows, W, 2) (x, y) in [-1, 1] of one view's pixels at half resolution: where the
    keypoint encoder's points live, and where the heatmap decoder draws them."""
    side = cfg.image_size // 2
    ys, xs = torch.meshgrid(
        torch.linspace(-1.0, 1.0, side // cfg.views),
        torch.linspace(-1.0, 1.0, side),
        indexing="ij",
    )
    return torch.stack([xs, ys], -1)


class KeypointEncoder(nn.Module):
    """Convs at half resolution and a spatial soft-argmax: D/2 image points, (B, D).

    Each of the D/2 feature maps becomes the expected (x, y) of its softmax over the image
    (in [-1, 1]), as in deep spatial autoencoders (Finn et al. 2016). The latent is then a set
    of points on the image, so its distance grows with how far things moved *and turned*: a
    turned object moves the points on its ends apart, which a global conv latent trained for
    prediction may ignore (Push-T's yaw, see docs/results.md).

    With ``cfg.views`` > 1 (views stacked top to bottom) the first D/2/views points are found
    in the top view, the next in the one below, and so on: each point's softmax runs over its
    own view only, in that view's coordinates, so no point sits between two views.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        w, k = cfg.width, cfg.latent_dim // 2
        self.net = nn.Sequential(
            nn.Conv2d(3, w, 4, stride=2, padding=1),
            nn.GroupNorm(8, w),
            nn.SiLU(),
            nn.Conv2d(w, 2 * w, 3, padding=1),
            nn.GroupNorm(8, 2 * w),
            nn.SiLU(),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1),
            nn.GroupNorm(8, 2 * w),
            nn.SiLU(),
            nn.Conv2d(2 * w, k, 1),
        )
        self.views = cfg.views
        # (H*W / views, 2): one view's coordinates
        self.register_buffer("coords", view_grid(cfg).reshape(-1, 2))
        self.log_temperature = nn.Parameter(torch.zeros(()))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        h = self.net(preprocess(pixels))  # (B, K, H, W)
        b, k = h.shape[:2]
        v = self.views
        # point group g looks at view g only: (B, groups, K/V, views, view pixels) -> diagonal
        h = h.reshape(b, v, k // v, v, -1).diagonal(dim1=1, dim2=3)  # (B, K/V, view px, V)
        h = h.permute(0, 3, 1, 2).reshape(b, k, -1)  # (B, K, view pixels), view by view
        attn = torch.softmax(h / self.log_temperature.exp(), dim=-1)
        return (attn @ self.coords).flatten(1)  # (B, K * 2): x, y of each point


class ViTEncoder(nn.Module):
    """A small ViT whose output is a grid of patch tokens (B, P, D), as DINO-WM uses."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        p, w = cfg.patch_size, cfg.width * 2
        self.embed = nn.Conv2d(3, w, p, stride=p)
        self.pos = nn.Parameter(torch.zeros(1, cfg.tokens, w))
        nn.init.trunc_normal_(self.pos, std=0.02)
        block = nn.TransformerEncoderLayer(
            w, nhead=4, dim_feedforward=2 * w, dropout=0.0, batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(block, cfg.vit_depth, enable_nested_tensor=False)
        self.out = nn.Sequential(nn.LayerNorm(w), nn.Linear(w, cfg.latent_dim))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.embed(preprocess(pixels))  # (B, w, H/p, W/p)
        x = rearrange(x, "b c h w -> b (h w) c") + self.pos  # (B, P, w)
        return self.out(self.blocks(x))  # (B, P, D)


#: model.encoder -> class; its keys are ``config.ENCODERS`` (the config validates names without
#: importing torch modules), and a test holds the two equal
ENCODER_CLASSES: dict[str, type[nn.Module]] = {
    "conv": ConvEncoder,
    "keypoints": KeypointEncoder,
    "vit": ViTEncoder,
}


def make_encoder(cfg: ModelConfig) -> nn.Module:
    return ENCODER_CLASSES[cfg.encoder](cfg)


class ConvDecoder(nn.Module):
    """Latent (B, P*D) -> pixels (B, H, W, 3) in [0, 1], trained on detached latents.

    For showing imagined futures in videos (as DINO-WM does), and at pretrain with
    ``weights.reconstruct`` the pixel reconstruction through the encoder. With
    ``cfg.decoder_proprio`` it also reads the robot's proprio (B, P), normalized
    (``WorldModel.normalize_proprio``), added in its first layer, so the robot need not be in
    the latent to be drawn.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        w, self.side = cfg.width, cfg.image_size // 16
        self.fc = nn.Linear(cfg.latent_dim * cfg.tokens, 4 * w * self.side * self.side)
        self.proprio_fc = (
            nn.Linear(cfg.proprio_dim, 4 * w * self.side * self.side)
            if cfg.decoder_proprio
            else None
        )
        chans = [4 * w, 4 * w, 2 * w, w]
        layers: list[nn.Module] = []
        for cin, cout in itertools.pairwise(chans):
            layers += [nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1), nn.SiLU()]
        layers.append(nn.ConvTranspose2d(w, 3, 4, stride=2, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, proprio: torch.Tensor | None = None) -> torch.Tensor:
        h = self.fc(z.flatten(1))
        if self.proprio_fc is not None and proprio is not None:
            h = h + self.proprio_fc(proprio.float())
        h = h.reshape(len(z), -1, self.side, self.side)
        return rearrange(torch.sigmoid(self.net(h)), "b c h w -> b h w c")


class HeatmapDecoder(nn.Module):
    """Keypoints (B, 2K) -> pixels (B, H, W, 3) in [0, 1]: each point drawn as a Gaussian blob.

    As in Jakab et al. 2018 (conditional image generation from landmarks): point k becomes a
    map exp(-|u - p_k|^2 / 2 sigma^2) over the half-resolution grid (in the point's own view
    with ``cfg.views`` > 1), and a small U-shaped conv net with a learned background turns
    the K maps into the picture. A point is then drawn where it sits, so it pays off on a
    4-pixel cube as on the arm; ``ConvDecoder``'s linear layer from coordinates to a picture
    learns what most pixels show and little else.
    """

    SIGMA = 0.1  #: blob width in the [-1, 1] view coordinates (1.5 pixels of the 32x32 grid)

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        w, k, self.views = cfg.width, cfg.latent_dim // 2, cfg.views
        side = cfg.image_size // 2
        self.register_buffer("grid", view_grid(cfg))  # (view rows, W, 2), the encoder's
        self.background = nn.Parameter(torch.zeros(1, w, side, side))

        def block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
            conv = nn.Conv2d(cin, cout, 3 + (stride > 1), stride=stride, padding=1)
            return nn.Sequential(conv, nn.GroupNorm(8, cout), nn.SiLU())

        self.inp = nn.Conv2d(k, w, 3, padding=1)
        self.fine = nn.Sequential(nn.GroupNorm(8, w), nn.SiLU(), block(w, w))
        self.coarse = nn.Sequential(  # at quarter resolution: room to draw a whole arm
            block(w, 4 * w, stride=2),
            block(4 * w, 4 * w),
            nn.ConvTranspose2d(4 * w, w, 4, stride=2, padding=1),
        )
        self.out = nn.Sequential(
            block(w, w),
            nn.ConvTranspose2d(w, 3, 4, stride=2, padding=1),
        )

    def heatmaps(self, z: torch.Tensor) -> torch.Tensor:
        """(B, 2K) points -> (B, K, H/2, W/2) blobs, each in its own view's rows."""
        pts = z.reshape(len(z), -1, 1, 1, 2)  # (B, K, 1, 1, 2)
        d2 = (self.grid - pts).square().sum(-1)  # (B, K, view rows, W)
        maps = torch.exp(-d2 / (2 * self.SIGMA**2))
        if self.views == 1:
            return maps
        b, k, rows, w = maps.shape
        points = torch.arange(k, device=z.device)
        full = maps.new_zeros(b, k, self.views, rows, w)
        full[:, points, points // (k // self.views)] = maps  # point k's blob in its view's rows
        return full.reshape(b, k, self.views * rows, w)

    def forward(self, z: torch.Tensor, proprio: torch.Tensor | None = None) -> torch.Tensor:
        h = self.inp(self.heatmaps(z.flatten(1))) + self.background
        h = self.fine(h)
        h = self.out(h + self.coarse(h))
        return rearrange(torch.sigmoid(h), "b c h w -> b h w c")


def make_decoder(cfg: ModelConfig) -> nn.Module:
    return HeatmapDecoder(cfg) if cfg.decoder == "heatmaps" else ConvDecoder(cfg)
