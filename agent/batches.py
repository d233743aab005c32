"""Training windows drawn from a dataset, split by episode into train / held-out.

Actions, proprio and state are copied into RAM (small); the frames stay in the dataset's
memory-mapped chunks (``Frames``) and are read per batch, so a 4,800-episode dataset trains in
the memory its small arrays take, not the 6 GB its pixels do.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from agent.dataset import Dataset, DatasetError


def _first_row(view: np.ndarray, base: object) -> int | None:
    """The row of the array ``base`` (a chunk) where ``view`` starts, if ``view`` is a run of
    whole rows of it; else None."""
    if not isinstance(base, np.ndarray) or base.ndim != view.ndim:
        return None
    if base.shape[1:] != view.shape[1:] or base.strides != view.strides:
        return None
    off = view.__array_interface__["data"][0] - base.__array_interface__["data"][0]
    first, rest = divmod(off, base.strides[0])
    return first if off >= 0 and rest == 0 and first + len(view) <= len(base) else None


class Frames:
    """The frames of some episodes, read from their memory-mapped chunks on indexing.

    ``frames[i]`` with an integer array / tensor of any shape, or a slice, gives a uint8 tensor
    ``(*i.shape, H, W, 3)``: the same values a concatenation of the episodes would give.
    """

    def __init__(self, episodes: list[np.ndarray]) -> None:
        # one entry per distinct chunk array; each frame knows its chunk and row there
        bases: dict[int, int] = {}
        self.sources: list[np.ndarray] = []
        chunk, row = [], []
        for px in episodes:
            first = _first_row(px, px.base)
            src = px if first is None else px.base  # index the chunk, not a copy
            first = first or 0
            key = id(src)
            if key not in bases:
                bases[key] = len(self.sources)
                self.sources.append(src)
            chunk.append(np.full(len(px), bases[key], np.int32))
            row.append(first + np.arange(len(px)))
        self.chunk = np.concatenate(chunk)  # (N,) which source array
        self.row = np.concatenate(row).astype(np.int64)  # (N,) row in it
        self.shape = (len(self.chunk), *self.sources[0].shape[1:])
        self.dtype = self.sources[0].dtype

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> torch.Tensor:
        if isinstance(key, slice):
            idx = np.arange(*key.indices(len(self)))
        else:
            idx = np.asarray(key.cpu() if isinstance(key, torch.Tensor) else key, np.int64)
        flat = idx.reshape(-1)
        if flat.size and (flat.min() < -len(self) or flat.max() >= len(self)):
            raise IndexError(f"frame index out of range for {len(self)} frames")
        flat = flat % len(self)  # negative indices count from the end
        out = np.empty((flat.size, *self.shape[1:]), self.dtype)
        chunk, row = self.chunk[flat], self.row[flat]
        for c in np.unique(chunk):
            sel = np.flatnonzero(chunk == c)
            out[sel] = self.sources[c][row[sel]]
        return torch.from_numpy(out.reshape(*idx.shape, *self.shape[1:]))


def window_span(window: int, stride: int = 1) -> int:
    """Env-step frames a window of ``window`` observations ``stride`` steps apart covers."""
    return (window - 1) * stride + 1


class Windows:
    """Some episodes of a dataset (frames read lazily, ``Frames``), and length-W windows.

    A window is W observations ``stride`` env steps apart and the (W-1) * stride actions
    between them (stride > 1: a ``model.frameskip`` world model).
    """

    def __init__(
        self,
        data: Dataset,
        episodes: np.ndarray,
        window: int,
        stride: int = 1,
        extra: Sequence[Dataset] = (),
    ) -> None:
        """``extra``: more datasets of the same task whose episodes (all of them) join these."""
        eps = list(data.iter_episodes())  # views of the memory-mapped chunks: nothing read yet
        sel = [eps[i] for i in episodes] + [e for d in extra for e in d.iter_episodes()]
        if not sel:
            raise DatasetError(
                f"{data.root} has no episodes in this split: collect more episodes "
                "(robot run logs: pool several runs with python -m agent.merge)"
            )
        self.window, self.stride = window, stride
        span = window_span(window, stride)
        self.pixels = Frames([e["pixels"] for e in sel])  # (N_obs, H, W, 3), read on indexing
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

    def gather(self, idx: torch.Tensor, pixels: bool = True) -> dict[str, torch.Tensor]:
        """The windows ``idx``; ``pixels=False`` leaves their frames unread."""
        o = self.frames(idx)  # (B, W)
        a = self.start_act[idx, None] + torch.arange((self.window - 1) * self.stride)
        out = {"actions": self.actions[a], "proprio": self.proprio[o]}
        return {"pixels": self.pixels[o], **out} if pixels else out


class ConcatWindows:
    """Pretraining windows pooled from several datasets (pixels only: action spaces differ)."""

    def __init__(self, parts: list[Windows]) -> None:
        self.parts = parts
        self.offsets = np.cumsum([0] + [len(p) for p in parts])
        self.window = parts[0].window

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def group(self, idx: torch.Tensor) -> torch.Tensor:
        """``idx`` reordered so each dataset's windows are contiguous, in their drawn (random)
        order within a dataset. The spread term pairs each window with the previous one in the
        batch; grouped, those pairs come from one task (all but one pair per dataset), so the
        spread keeps apart frames *within* a task, as in a one-task pretraining, instead of
        spending itself on telling tasks apart (where slowness then wins and a task's latent
        stands still)."""
        return idx[torch.from_numpy(np.argsort(self._part(idx), kind="stable"))]

    def _part(self, idx: torch.Tensor) -> np.ndarray:
        """The dataset (index into ``parts``) of each pooled window index."""
        return np.searchsorted(self.offsets, idx.numpy(), side="right") - 1

    def gather(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        part = self._part(idx)
        out = torch.empty(len(idx), self.window, *self.parts[0].pixels.shape[1:], dtype=torch.uint8)
        for i, p in enumerate(self.parts):
            sel = np.nonzero(part == i)[0]
            if len(sel):
                local = idx[sel] - int(self.offsets[i])
                out[torch.from_numpy(sel)] = p.gather(local)["pixels"]
        return {"pixels": out}


def split_episodes(
    n: int, heldout_fraction: float, usable: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The last ``heldout_fraction`` of episodes (by seed order) are held out.

    ``usable (n,)`` bool: episodes long enough for a window. When given, the held-out
    episodes are the last usable ones (as many as without the mask, keeping at least one
    usable episode for training), so that runs too short for a window, which give no
    windows anyway, train (for nothing) rather than leave the held-out split empty.
    Without short episodes the split is the same either way.
    """
    n_held = max(1, int(round(n * heldout_fraction))) if n > 1 else 0
    if usable is None:
        return np.arange(n - n_held), np.arange(n - n_held, n)
    usable = np.asarray(usable, dtype=bool)
    if usable.shape != (n,):
        raise ValueError(f"usable must have shape ({n},), got {usable.shape}")
    ok = np.flatnonzero(usable)
    n_held = min(n_held, max(len(ok) - 1, 0))
    held = ok[len(ok) - n_held :] if n_held else ok[:0]
    return np.setdiff1d(np.arange(n), held), held


def split_dataset(
    data: Dataset, heldout_fraction: float, window: int, stride: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`split_episodes` of ``data`` whose held-out episodes fit a ``window`` of
    observations ``stride`` steps apart (the split the trainer reports its metrics on)."""
    usable = data.lengths + 1 >= window_span(window, stride)
    return split_episodes(data.episodes, heldout_fraction, usable)
