"""The two training stages as loss modules (wrappable by DistributedDataParallel).

pretrain: action-free JEPA on video. The online encoder sees frame t, the action-free frame
  predictor maps it to the EMA target encoder's latent of frame t+1, plus slowness and
  log-spread regularizers that keep latent distance meaningful for planning.
finetune: action-conditioned. With the encoder frozen (default) the targets are its latents;
  loss = teacher-forced one-step + autoregressive multi-step rollout, plus a proprio probe.
  With model.proprio_state the latents carry the normalized proprio, so both losses cover it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange
from torch import nn

from agent import losses
from agent.model import WorldModel


@dataclass(frozen=True)
class LossWeights:
    """Loss weights of both stages."""

    jepa: float = 1.0  #: pretrain: predict the EMA latent of the next frame
    slowness: float = 1.0  #: pretrain: consecutive latents close
    spread: float = 0.05  #: pretrain: random pairs apart (log scale)
    #: pretrain: first and last frame of each window apart (log scale). Both come from one
    #: episode, so a per-episode constant (two_room's door) cannot satisfy it; use window >= 4
    spread_within: float = 0.0
    variance: float = 0.0  #: pretrain: VICReg variance hinge (off by default)
    #: pretrain: pixel reconstruction of each window's first frame from its latent, through the
    #: encoder (off by default): small objects and cues the JEPA terms leave out (a lifted
    #: cube's shadow) must then be in the latent
    reconstruct: float = 0.0
    #: pretrain: how well a linear readout of the latent tells the proprio (R^2; off by
    #: default): with the robot in view, latents otherwise follow the arm, the largest thing
    #: that moves, and their distance ranks the gripper's, not the object's, distance to a goal
    proprio_r2: float = 0.0
    one_step: float = 1.0  #: finetune: teacher-forced next latent
    rollout: float = 1.0  #: finetune: autoregressive multi-step
    proprio: float = 0.1  #: finetune: proprio probe head
    decoder: float = 1.0  #: finetune: pixel decoder on detached latents (videos only)
    #: finetune with ``probe=``: the state probe's reading of each imagined latent (rollout)
    #: pulled toward its reading of the true one, in units of the probed entries' spread;
    #: weights the latent directions the probe reads (an object's pose) that a plain latent
    #: MSE lets drown among the rest (off by default)
    probe: float = 0.0


def encode_window(encoder: nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    b, w = pixels.shape[:2]
    z = encoder(rearrange(pixels, "b w h x c -> (b w) h x c"))  # (B*W, *latent)
    return z.reshape(b, w, *z.shape[1:])  # (B, W, *latent)


class PretrainObjective(nn.Module):
    def __init__(self, model: WorldModel, weights: LossWeights) -> None:
        super().__init__()
        self.model, self.w = model, weights

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        m, k = self.model, self.model.cfg.history
        z = encode_window(m.encoder, batch["pixels"])  # (B, W, *latent)
        with torch.no_grad():
            target = encode_window(m.target_encoder, batch["pixels"])
        pred = m.frame_predictor(z[:, :k])  # (B, *latent)
        out = {
            "jepa": losses.latent_mse(pred, target[:, k]),
            "slowness": losses.slowness(z),
            "spread": losses.log_spread(z[:, 0]),
            "spread_within": losses.log_apart(z[:, 0], z[:, -1]),
            "variance": losses.variance_hinge(z[:, 0]),
        }
        if self.w.reconstruct:
            robot = m.normalize_proprio(batch["proprio"][:, 0]) if m.cfg.decoder_proprio else None
            pic = m.decoder(z[:, 0], robot)
            out["reconstruct"] = losses.latent_mse(pic, batch["pixels"][:, 0].float() / 255.0)
        if self.w.proprio_r2:  # TrainConfig refuses it where batches hold no proprio
            fit = {}
            if "probe_pixels" in batch:  # more rows for the readout's fit (no gradient)
                with torch.no_grad():
                    fit = {"z_fit": m.encoder(batch["probe_pixels"])}
                fit["proprio_fit"] = batch["probe_proprio"]
            out["proprio_r2"] = losses.proprio_r2(
                z.flatten(0, 1), batch["proprio"].flatten(0, 1), **fit
            )
        out["loss"] = sum(getattr(self.w, name) * v for name, v in list(out.items()))
        return out


class FinetuneObjective(nn.Module):
    def __init__(
        self,
        model: WorldModel,
        weights: LossWeights,
        train_encoder: bool,
        probe: nn.Module | None = None,
    ) -> None:
        """``probe``: a frozen state probe of the encoder's image latent (``agent.state_probe``)
        for the ``probe`` loss term."""
        super().__init__()
        self.model, self.w, self.train_encoder = model, weights, train_encoder
        self.probe = probe
        if probe is not None:
            probe.requires_grad_(False)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        m, k = self.model, self.model.cfg.history
        if "latents" in batch:  # frozen encoder: latents precomputed once (+ proprio part)
            z = batch["latents"]
        else:
            z = m.with_proprio(encode_window(m.encoder, batch["pixels"]), batch["proprio"])
        target = z if self.train_encoder else z.detach()
        acts = batch["actions"]  # (B, (W-1) * frameskip, A): env-step actions
        steps = z.shape[1] - k
        fs = m.cfg.frameskip
        chunks = m.action_chunks(acts)  # (B, W-1, fs * A)
        # teacher forcing: every position predicted from true history
        hist = torch.stack([z[:, t : t + k] for t in range(steps)], dim=1)  # (B, S, K, *latent)
        b = hist.shape[0]
        one = m.next(hist.flatten(0, 1), chunks[:, k - 1 : k - 1 + steps].flatten(0, 1))
        one = one.reshape(b, steps, *one.shape[1:])
        roll = m.rollout(z[:, :k], acts[:, (k - 1) * fs :])  # (B, S, *latent)
        proprio = m.proprio_head(z.detach().flatten(2)).float()  # (B, W, P)
        out = {
            "one_step": losses.latent_mse(one, target[:, k:]),
            "rollout": losses.latent_mse(roll, target[:, k:]),
            "proprio": losses.latent_mse(proprio, batch["proprio"]),
        }
        if self.probe is not None:  # the probed entries, imagined against true, in spreads
            read = self.probe(m.image_part(torch.cat([roll, target[:, k:]])).flatten(0, 1))
            imagined, true = read.chunk(2)
            out["probe"] = ((imagined - true.detach()) / self.probe.y_std).pow(2).mean()
        if "frame" in batch:  # one frame per window for the picture decoder
            pic = m.decoder(m.image_part(z[: len(batch["frame"]), 0]).detach())
            out["decoder"] = losses.latent_mse(pic, batch["frame"].float() / 255.0)
        out["loss"] = sum(getattr(self.w, name) * v for name, v in list(out.items()))
        return out


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, decay: float) -> None:
    for pt, po in zip(target.parameters(), online.parameters(), strict=True):
        pt.lerp_(po, 1.0 - decay)
    for bt, bo in zip(target.buffers(), online.buffers(), strict=True):
        bt.copy_(bo)
