"""Trajectory datasets: chunked numpy files that training memory-maps.

Layout of a dataset folder (format version 1), readable with numpy alone::

    <out>/collect.json            the collection settings (written first; resume checks it)
    <out>/chunk_00000/            one folder per chunk of episodes, renamed into place whole
        pixels.npy        (sum(T_e + 1), H, W, 3) uint8   observations, episode after episode
        proprio.npy       (sum(T_e + 1), P) float32
        state.npy         (sum(T_e + 1), S) float32       true task state (for probes only)
        distance.npy      (sum(T_e + 1),) float32         distance_to_goal at each observation
        actions.npy       (sum(T_e), A) float32           action taken after observation t
        lengths.npy       (E,) int64                      T_e, actions per episode
        seeds.npy         (E,) int64                      reset seed of each episode
        goal_pixels.npy   (E, H, W, 3) uint8              the episode's goal image
        goal_proprio.npy  (E, P) float32
        goal_state.npy    (E, S) float32
        expert_actions.npy (sum(T_e), A) float32          only with ``expert_labels``: the
                                                          task's expert_action() at observation t
                                                          (DAgger labels; ``actions`` is what ran)
    <out>/meta.json               written last: the dataset is complete iff it exists

Open it without this project: ``np.load(f"{out}/chunk_00000/pixels.npy", mmap_mode="r")``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_VERSION = 1
OBS_KEYS = ("pixels", "proprio", "state", "distance")
EPISODE_KEYS = ("lengths", "seeds", "goal_pixels", "goal_proprio", "goal_state")


class DatasetError(ValueError):
    """A dataset that is missing, incomplete, corrupt or of the wrong task or shape."""


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write a file so readers see the old content or the new one, never a torn file (0644)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes it 0600
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """:func:`atomic_write_bytes` of ``text`` (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


@dataclass
class EpisodeBuffer:
    """Accumulates one episode in memory."""

    seed: int
    obs: dict[str, list[np.ndarray]] = field(default_factory=lambda: {k: [] for k in OBS_KEYS})
    actions: list[np.ndarray] = field(default_factory=list)
    #: the task's expert_action() at each step, when the collection records labels (else empty)
    expert_actions: list[np.ndarray] = field(default_factory=list)
    goal: dict[str, np.ndarray] = field(default_factory=dict)

    def add_obs(self, pixels: np.ndarray, proprio: np.ndarray, state: np.ndarray, distance: float):
        for k, v in zip(OBS_KEYS, (pixels, proprio, state, distance), strict=True):
            self.obs[k].append(np.asarray(v))


def write_chunk(root: Path, index: int, episodes: list[EpisodeBuffer]) -> Path:
    """Write a chunk into a hidden temp folder, fsync, then rename it into place."""
    final = root / f"chunk_{index:05d}"
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".chunk_{index:05d}.", suffix=".tmp"))
    tmp.chmod(0o755)
    arrays = {
        "pixels": np.concatenate([np.stack(e.obs["pixels"]) for e in episodes]).astype(np.uint8),
        "proprio": np.concatenate([np.stack(e.obs["proprio"]) for e in episodes]).astype(
            np.float32
        ),
        "state": np.concatenate([np.stack(e.obs["state"]) for e in episodes]).astype(np.float32),
        "distance": np.concatenate([np.stack(e.obs["distance"]) for e in episodes]).astype(
            np.float32
        ),
        "actions": np.concatenate([np.stack(e.actions) for e in episodes]).astype(np.float32),
        "lengths": np.array([len(e.actions) for e in episodes], dtype=np.int64),
        "seeds": np.array([e.seed for e in episodes], dtype=np.int64),
        "goal_pixels": np.stack([e.goal["pixels"] for e in episodes]).astype(np.uint8),
        "goal_proprio": np.stack([e.goal["proprio"] for e in episodes]).astype(np.float32),
        "goal_state": np.stack([e.goal["state"] for e in episodes]).astype(np.float32),
    }
    if any(e.expert_actions for e in episodes):
        if any(len(e.expert_actions) != len(e.actions) for e in episodes):
            raise ValueError("write_chunk: every episode needs one expert action per action")
        arrays["expert_actions"] = np.concatenate(
            [np.stack(e.expert_actions) for e in episodes]
        ).astype(np.float32)
    try:
        for name, arr in arrays.items():
            with open(tmp / f"{name}.npy", "wb") as f:
                np.save(f, arr)
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def completed_chunks(root: Path) -> list[int]:
    return sorted(int(p.name.split("_")[1]) for p in root.glob("chunk_[0-9]*") if p.is_dir())


def remove_stale_temp(root: Path) -> None:
    for p in root.glob(".chunk_*.tmp"):
        shutil.rmtree(p, ignore_errors=True)


def file_digest(paths: list[Path]) -> str:
    """sha256 over the files' bytes, in order (the dataset hash checkpoints record)."""
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


#: meta fields datasets must share for their episodes to be pooled (extra_data, agent.merge)
SAME_KIND = ("task", "action_space", "proprio_dim", "state_dim", "image_size")


def kind_mismatch(a: Dataset, b: Dataset) -> str | None:
    """The first ``SAME_KIND`` field in which ``a`` and ``b`` differ (None: they can pool)."""
    return next((k for k in SAME_KIND if a.meta.get(k) != b.meta.get(k)), None)


class Dataset:
    """Read-only, memory-mapped view of a complete dataset folder."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        meta_path = self.root / "meta.json"
        if not self.root.is_dir():
            raise DatasetError(
                f"dataset folder {self.root} does not exist: run agent.collect first"
            )
        if not meta_path.exists() and (self.root / "control.npz").exists():
            raise DatasetError(
                f"{self.root} is a control run log without meta.json: the run was killed before "
                "it finished writing, so its data is incomplete: leave it out"
            )
        if not meta_path.exists():
            raise DatasetError(
                f"{self.root} has no meta.json, so the collection did not finish: rerun the same "
                "agent.collect command to complete it"
            )
        self.meta = json.loads(meta_path.read_text())
        if self.meta.get("format_version") != FORMAT_VERSION:
            raise DatasetError(
                f"{self.root} has format_version {self.meta.get('format_version')}, this code "
                f"reads {FORMAT_VERSION}: recollect the dataset"
            )
        #: the collection recorded the task's expert_action() at every step (``expert_actions``)
        self.expert_labels = bool(self.meta.get("expert_labels", False))
        extra = ("expert_actions",) if self.expert_labels else ()
        self.chunks = [self._load_chunk(self.root / c, extra) for c in self.meta["chunks"]]
        self.episodes = sum(len(c["lengths"]) for c in self.chunks)
        self.transitions = sum(int(c["lengths"].sum()) for c in self.chunks)

    @staticmethod
    def _load_chunk(path: Path, extra: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
        try:
            return {
                k: np.load(path / f"{k}.npy", mmap_mode="r")
                for k in (*OBS_KEYS, "actions", *EPISODE_KEYS, *extra)
            }
        except (OSError, ValueError) as e:
            raise DatasetError(f"chunk {path} is unreadable ({e}): recollect the dataset") from e

    @property
    def lengths(self) -> np.ndarray:
        """``(E,)`` actions per episode, in episode order."""
        parts = [np.asarray(c["lengths"], dtype=np.int64) for c in self.chunks]
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    @property
    def task(self) -> str:
        return self.meta["task"]

    def first_success(self, ep: dict[str, np.ndarray]) -> int:
        """The first frame of episode ``ep`` within the task's success threshold (-1: none)."""
        hit = np.flatnonzero(np.asarray(ep["distance"]) <= self.meta["success_threshold"])
        return int(hit[0]) if hit.size else -1

    def iter_episodes(self) -> Iterator[dict[str, np.ndarray]]:
        """Yield episodes as dicts of arrays (obs arrays have T+1 rows, actions T, and
        ``expert_actions`` T when the dataset has labels)."""
        for c in self.chunks:
            o = a = 0
            for i, t in enumerate(c["lengths"]):
                t = int(t)
                ep = {k: c[k][o : o + t + 1] for k in OBS_KEYS}
                ep["actions"] = c["actions"][a : a + t]
                if self.expert_labels:
                    ep["expert_actions"] = c["expert_actions"][a : a + t]
                ep.update({k: c[k][i] for k in EPISODE_KEYS})
                yield ep
                o += t + 1
                a += t
