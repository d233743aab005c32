"""Bring your own video: turn mp4 files or folders of frames into a pretraining dataset.

    python -m agent.import_video --src <folder> --out data/my_video [--image-size 64]

``src`` may hold ``*.mp4`` files (one episode each), image files (``*.png``/``*.jpg``, one
episode, in name order) or subfolders of images (one episode each). Names sort naturally
(``frame2`` before ``frame10``). Greyscale and 16-bit images become 8-bit RGB. Frames are
centre-cropped to a square and resized. The result is an action-free dataset in the project's
format (actions with 0 columns), usable as ``extra_video=[...]`` in ``agent.train
stage=pretrain``.
"""

from __future__ import annotations

import argparse
import re
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


def natural_key(path: Path) -> tuple[list[str | int], str]:
    """Sort key comparing the numbers in a name as numbers: ``frame2`` before ``frame10``."""
    parts = re.split(r"(\d+)", path.name)
    return [int(t) if i % 2 else t.casefold() for i, t in enumerate(parts)], path.name


def _reason(e: BaseException) -> str:
    """One short line from a reader's error (ffmpeg's ends its banner with the cause)."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    text = lines[-1] if lines else type(e).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def rgb8(frame: np.ndarray) -> np.ndarray:
    """``frame`` as (H, W, 3) uint8: grey is replicated, alpha dropped, 16-bit scaled."""
    if frame.ndim == 2:
        frame = frame[:, :, None]
    if frame.shape[2] < 3:  # grey or grey + alpha
        frame = np.repeat(frame[:, :, :1], 3, axis=2)
    frame = frame[:, :, :3]
    if frame.dtype == np.uint8:
        return frame
    if frame.dtype == np.bool_:
        return frame.astype(np.uint8) * 255
    if frame.dtype.kind in "iu":  # 16-bit (Pillow reads some as int32)
        return np.round(np.clip(frame, 0, 65535) / 257).astype(np.uint8)
    raise ValueError(f"{frame.dtype} pixels: save the frames as 8- or 16-bit PNG or JPEG")


def read_image(path: Path) -> np.ndarray:
    """One image file as (H, W, 3) uint8; one error line naming the file if it is no image."""
    try:
        with Image.open(path) as im:
            im.load()
            # 16-bit grey ("I;16", "I"): Pillow's convert("RGB") would clip, not scale
            arr = np.asarray(im) if im.mode.startswith("I") else np.asarray(im.convert("RGB"))
        return rgb8(arr)
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise ValueError(
            f"cannot read {path} as an image ({_reason(e)}): remove or replace it"
        ) from e


def read_video(path: Path) -> list[np.ndarray]:
    """Every frame of a video file; one error line naming the file if it cannot be decoded."""
    try:
        with imageio.get_reader(path, format="FFMPEG") as reader:
            # iterate (not list()): the ffmpeg reader reports an infinite length
            return [rgb8(np.asarray(f)) for f in reader]
    except (OSError, RuntimeError, ValueError) as e:
        raise ValueError(
            f"cannot read {path} as a video ({_reason(e)}): remove or replace it"
        ) from e


def episodes_in(src: Path) -> list[list[np.ndarray]]:
    """Frames of every episode found in ``src`` (as described in the module docstring)."""
    if not src.is_dir():
        raise FileNotFoundError(
            f"--src {src} is not a folder: pass a folder of mp4 files or images"
        )
    entries = sorted(src.iterdir(), key=natural_key)
    videos = [p for p in entries if p.suffix.lower() == ".mp4" and p.is_file()]
    eps = [read_video(p) for p in videos]
    images = [p for p in entries if p.suffix.lower() in IMAGES and p.is_file()]
    if images:
        eps.append([read_image(p) for p in images])
    for sub in (p for p in entries if p.is_dir()):
        frames = sorted((p for p in sub.iterdir() if p.suffix.lower() in IMAGES), key=natural_key)
        if frames:
            eps.append([read_image(p) for p in frames])
    eps = [e for e in eps if len(e) >= 2]
    if not eps:
        raise FileNotFoundError(f"no video with 2+ frames in {src}: add *.mp4 or image files")
    return eps


def import_video(src: Path, out: Path, image_size: int = 64, chunk_size: int = 10) -> Path:
    if (out / "meta.json").exists() or any(out.glob("chunk_*")):
        raise FileExistsError(f"--out {out} already holds a dataset: choose a new folder")
    eps = episodes_in(src)  # every file read before anything is written
    out.mkdir(parents=True, exist_ok=True)
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
