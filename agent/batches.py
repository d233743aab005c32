"""In-memory training windows drawn from a dataset, split by episode into train / held-out."""

from __future__ import annotations

import numpy as np
import torch

from agent.dataset import Dataset, DatasetError


class Windows:
    """All frames of some episodes in RAM, and sampling of length-W windows.

    A window is W observations ``stride`` env steps apart and the (W-1) * stride actions
    between them (stride > 1: a ``model.frameskip`` world model).
    """

    def __init__(self, data: Dataset, episodes: np.ndarray, window: int, stride: int = 1) -> None:
        eps = list(data.iter_episodes())
        sel = [eps[i] for i in episodes]
        if not sel:
            raise DatasetError(f"{data.root} has no episodes in this split: collect more episodes")
        self.window, self.stride = window, stride
        span = (window - 1) * stride + 1  # env-step frames a window covers
        self.pixels = torch.from_numpy(
            np.concatenate([e["pixels"] for e in sel])
        )  # (N_obs, H, W, 3)
        self.actions = torch.from_numpy(np.concatenate([e["actions"] for e in sel]))  # (N_act, A)
        self.proprio = torch.from_numpy(np.concatenate([e["proprio"] for e in sel]))
        self.state = np.concatenate([e["state"] for e in sel])
        for name, arr in (("actions", self.actions), ("proprio", self.proprio)):
            if not torch.isfinite(arr).all():
                raise DatasetError(f"{data.root} has NaN or inf in {name}: recollect the dataset")
        lengths = np.array([len(e["actions"]) for e in sel])
        self.episode = np.repeat(np.arange(len(sel)), lengths + 1)  # (N_obs,) episode of a frame
        obs_off = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]])
        starts_obs, starts_act = [], []
        act_off = obs_off - np.arange(len(sel))
        for i, t in enumerate(lengths):
            n = t + 1 - span + 1
            if n > 0:
                starts_obs.append(obs_off[i] + np.arange(n))
                starts_act.append(act_off[i] + np.arange(n))
        if not starts_obs:
            raise DatasetError(
                f"episodes in {data.root} are shorter than window={window}"
                + (f" x frameskip {stride}" if stride > 1 else "")
                + ": use a shorter window"
            )
        self.start_obs = torch.from_numpy(np.concatenate(starts_obs))
        self.start_act = torch.from_numpy(np.concatenate(starts_act))

    def __len__(self) -> int:
        return len(self.start_obs)

    def sample(self, batch: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """pixels (B, W, H, W, 3) uint8, actions (B, (W-1) * stride, A), proprio (B, W, P)."""
        idx = torch.randint(len(self.start_obs), (batch,), generator=generator)
        return self.gather(idx)

    def frames(self, idx: torch.Tensor) -> torch.Tensor:
        """(B, W) indices into ``pixels`` of the windows ``idx``."""
        return self.start_obs[idx, None] + torch.arange(self.window) * self.stride

    def gather(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        o = self.frames(idx)  # (B, W)
        a = self.start_act[idx, None] + torch.arange((self.window - 1) * self.stride)
        return {"pixels": self.pixels[o], "actions": self.actions[a], "proprio": self.proprio[o]}


class ConcatWindows:
    """Pretraining windows pooled from several datasets (pixels only: action spaces differ)."""

    def __init__(self, parts: list[Windows]) -> None:
        self.parts = parts
        self.offsets = np.cumsum([0] + [len(p) for p in parts])
        self.window = parts[0].window

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def gather(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        part = np.searchsorted(self.offsets, idx.numpy(), side="right") - 1
        out = torch.empty(len(idx), self.window, *self.parts[0].pixels.shape[1:], dtype=torch.uint8)
        for i, p in enumerate(self.parts):
            sel = np.nonzero(part == i)[0]
            if len(sel):
                local = idx[sel] - int(self.offsets[i])
                out[torch.from_numpy(sel)] = p.gather(local)["pixels"]
        return {"pixels": out}


def split_episodes(n: int, heldout_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """The last ``heldout_fraction`` of episodes (by seed order) are held out."""
    n_held = max(1, int(round(n * heldout_fraction))) if n > 1 else 0
    return np.arange(n - n_held), np.arange(n - n_held, n)
