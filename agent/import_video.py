"""Bring your own video: turn mp4 files or folders of frames into a pretraining dataset.

    python -m agent.import_video --src <folder> --out data/my_video [--image-size 64]

``src`` may hold ``*.mp4`` files (one episode each), image files (``*.png``/``*.jpg``, one
episode, in name order) or subfolders of images (one episode each). Frames are centre-cropped
to a square and resized. The result is an action-free dataset in the project's format (actions
with 0 columns), usable as ``extra_video=[...]`` in ``agent.train stage=pretrain``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
from PIL import Image

from agent import dataset as ds

IMAGES = (".png", ".jpg", ".jpeg")


def square(frame: np.ndarray, size: int) -> np.ndarray:
    h, w = frame.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    crop = Image.fromarray(np.ascontiguousarray(frame[top : top + s, left : left + s, :3]))
    return np.asarray(crop.resize((size, size), Image.BILINEAR), dtype=np.uint8)


def episodes_in(src: Path) -> list[list[np.ndarray]]:
    """Frames of every episode found in ``src`` (as described in the module docstring)."""
    if not src.is_dir():
        raise FileNotFoundError(
            f"--src {src} is not a folder: pass a folder of mp4 files or images"
        )
    # iterate (not list()): the ffmpeg reader reports an infinite length
    eps = [[f for f in imageio.get_reader(p, format="FFMPEG")] for p in sorted(src.glob("*.mp4"))]
    images = sorted(p for p in src.iterdir() if p.suffix.lower() in IMAGES)
    if images:
        eps.append([imageio.imread(p) for p in images])
    for sub in sorted(p for p in src.iterdir() if p.is_dir()):
        frames = sorted(p for p in sub.iterdir() if p.suffix.lower() in IMAGES)
        if frames:
            eps.append([imageio.imread(p) for p in frames])
    eps = [e for e in eps if len(e) >= 2]
    if not eps:
        raise FileNotFoundError(f"no video with 2+ frames in {src}: add *.mp4 or image files")
    return eps


def import_video(src: Path, out: Path, image_size: int = 64, chunk_size: int = 10) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    if (out / "meta.json").exists() or any(out.glob("chunk_*")):
        raise FileExistsError(f"--out {out} already holds a dataset: choose a new folder")
    eps = episodes_in(src)
    buffers = []
    for i, frames in enumerate(eps):
        ep = ds.EpisodeBuffer(seed=i)
        for f in frames:
            ep.add_obs(square(np.asarray(f), image_size), np.zeros(0), np.zeros(0), np.nan)
        ep.actions = [np.zeros(0, np.float32)] * (len(frames) - 1)
        ep.goal = {"pixels": ep.obs["pixels"][-1], "proprio": np.zeros(0), "state": np.zeros(0)}
        buffers.append(ep)
    chunks = []
    for c in range(0, len(buffers), chunk_size):
        chunks.append(ds.write_chunk(out, c // chunk_size, buffers[c : c + chunk_size]).name)
    meta = {
        "format_version": ds.FORMAT_VERSION,
        "task": "video",
        "source": str(src),
        "image_size": image_size,
        "action_space": {"low": [], "high": [], "shape": [0]},
        "proprio_dim": 0,
        "state_dim": 0,
        "episodes": len(buffers),
        "transitions": sum(len(b.actions) for b in buffers),
        "chunks": chunks,
        "sha256": ds.file_digest([out / c / "pixels.npy" for c in chunks]),
    }
    ds.atomic_write_json(out / "meta.json", meta)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--src", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--image-size", type=int, default=64)
    a = p.parse_args(argv)
    try:
        out = import_video(a.src, a.out, a.image_size)
    except (FileNotFoundError, FileExistsError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(f"imported {out} (meta.json); use it with agent.train stage=pretrain extra_video=[{out}]")


if __name__ == "__main__":
    main()
