"""Bring your own video: turn mp4 files or folders of frames into a pretraining dataset.

    python -m agent.import_video --src <folder> --out data/my_video [--image-size 64]

``src`` may hold ``*.mp4`` files (one episode each), image files (``*.png``/``*.jpg``, one
episode, in name order) or subfolders of images (one episode each). Names sort naturally
(``frame2`` before ``frame10``). Greyscale and 16-bit images become 8-bit RGB. Frames are
centre-cropped to a square and resized. The result is an action-free dataset in the project's
format (actions with 0 columns), usable as ``extra_video=[...]`` in ``agent.train
stage=pretrain``. Every file is opened before anything is written; episodes are then decoded
and written one chunk at a time, and an import stopped part-way continues when the same
command is rerun (``<out>/import.json`` records what it imports).
"""

from __future__ import annotations

import argparse
import json
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


IMAGE_ERRORS = (OSError, ValueError, SyntaxError, EOFError)  # what Pillow raises on a non-image
VIDEO_ERRORS = (OSError, RuntimeError, ValueError)  # ... and imageio's ffmpeg reader


def _unreadable(path: Path, kind: str, e: BaseException) -> ValueError:
    """The one error line for a file that is not ``kind`` ("an image" / "a video")."""
    return ValueError(f"cannot read {path} as {kind} ({_reason(e)}): remove or replace it")


def _no_episodes(src: Path) -> FileNotFoundError:
    return FileNotFoundError(f"no video with 2+ frames in {src}: add *.mp4 or image files")


def _is_video(path: Path) -> bool:
    return path.suffix.lower() == ".mp4"


def read_image(path: Path) -> np.ndarray:
    """One image file as (H, W, 3) uint8; one error line naming the file if it is no image."""
    try:
        with Image.open(path) as im:
            im.load()
            # 16-bit grey ("I;16", "I"): Pillow's convert("RGB") would clip, not scale
            arr = np.asarray(im) if im.mode.startswith("I") else np.asarray(im.convert("RGB"))
        return rgb8(arr)
    except IMAGE_ERRORS as e:
        raise _unreadable(path, "an image", e) from e


def read_video(path: Path, size: int) -> list[np.ndarray]:
    """Every frame of a video file, squared to ``size`` as it is read (a long high-resolution
    video never sits in memory whole); one error line naming the file if it cannot be decoded."""
    try:
        with imageio.get_reader(path, format="FFMPEG") as reader:
            # iterate (not list()): the ffmpeg reader reports an infinite length
            return [square(rgb8(np.asarray(f)), size) for f in reader]
    except VIDEO_ERRORS as e:
        raise _unreadable(path, "a video", e) from e


def check_readable(path: Path) -> None:
    """Open a file far enough to know it is an image or a video (one error line if not),
    without decoding it all: the first pass of an import, before anything is written."""
    if _is_video(path):
        try:
            with imageio.get_reader(path, format="FFMPEG") as reader:
                reader.get_next_data()
        except (*VIDEO_ERRORS, IndexError, StopIteration) as e:  # a video without frames
            raise _unreadable(path, "a video", e) from e
        return
    try:
        with Image.open(path) as im:
            im.verify()
    except IMAGE_ERRORS as e:
        raise _unreadable(path, "an image", e) from e


def sources_in(src: Path) -> list[list[Path]]:
    """Every episode in ``src`` as its files: ``[video]`` or image frames in order (module
    docstring). Nothing is decoded; episodes of images need 2+ frames."""
    if not src.is_dir():
        raise FileNotFoundError(
            f"--src {src} is not a folder: pass a folder of mp4 files or images"
        )
    entries = sorted(src.iterdir(), key=natural_key)
    eps = [[p] for p in entries if _is_video(p) and p.is_file()]
    images = [p for p in entries if p.suffix.lower() in IMAGES and p.is_file()]
    if len(images) >= 2:
        eps.append(images)
    for sub in (p for p in entries if p.is_dir()):
        frames = sorted((p for p in sub.iterdir() if p.suffix.lower() in IMAGES), key=natural_key)
        if len(frames) >= 2:
            eps.append(frames)
    if not eps:
        raise _no_episodes(src)
    return eps


def frames_of(files: list[Path], size: int) -> list[np.ndarray]:
    """One episode's frames, squared to ``size``."""
    if len(files) == 1 and _is_video(files[0]):
        return read_video(files[0], size)
    return [square(read_image(p), size) for p in files]


def _episode(i: int, frames: list[np.ndarray]) -> ds.EpisodeBuffer:
    ep = ds.EpisodeBuffer(seed=i)
    for f in frames:
        ep.add_obs(f, np.zeros(0), np.zeros(0), np.nan)
    ep.actions = [np.zeros(0, np.float32)] * (len(frames) - 1)
    ep.goal = {"pixels": ep.obs["pixels"][-1], "proprio": np.zeros(0), "state": np.zeros(0)}
    return ep


def import_video(src: Path, out: Path, image_size: int = 64, chunk_size: int = 10) -> Path:
    """Write ``src``'s episodes into ``out``, one chunk of ``chunk_size`` episodes at a time
    (only that chunk's frames in memory). Every file is opened first, so an unreadable one
    fails before anything is written. An import stopped part-way (Ctrl-C, a kill, a file that
    fails to decode) keeps its finished chunks; rerunning the same command continues it."""
    src, out = Path(src), Path(out)
    if (out / "meta.json").exists():
        raise FileExistsError(f"--out {out} already holds a dataset: choose a new folder")
    eps = sources_in(src)
    identity = {
        "src": str(src.resolve()),
        "image_size": image_size,
        "chunk_size": chunk_size,
        "episodes": [[str(p.relative_to(src)) for p in files] for files in eps],
    }
    plan = out / "import.json"  # what this import writes: a rerun must match it to resume
    if plan.exists():
        try:
            planned = json.loads(plan.read_text())
        except (OSError, ValueError):
            planned = None
        if planned != identity:
            raise FileExistsError(
                f"--out {out} holds an unfinished import of other files or settings: rerun "
                "that import's command, or delete the folder, or choose a new one"
            )
    elif any(out.glob("chunk_*")):
        raise FileExistsError(f"--out {out} already holds a dataset: choose a new folder")
    else:
        for files in eps:  # every file opened before anything is written
            for p in files:
                check_readable(p)
        out.mkdir(parents=True, exist_ok=True)
        ds.atomic_write_json(plan, identity)
    ds.remove_stale_temp(out)
    done = set(ds.completed_chunks(out))
    for c in range(0, len(eps), chunk_size):
        if c // chunk_size in done:
            continue
        ids = range(c, min(c + chunk_size, len(eps)))
        batch = [_episode(i, frames_of(eps[i], image_size)) for i in ids]
        batch = [e for e in batch if len(e.actions) >= 1]  # a video of one frame is no episode
        if batch:
            ds.write_chunk(out, c // chunk_size, batch)
    chunks = [f"chunk_{i:05d}" for i in ds.completed_chunks(out)]
    lengths = [np.load(out / c / "lengths.npy") for c in chunks]
    if not chunks:
        raise _no_episodes(src)
    meta = {
        "format_version": ds.FORMAT_VERSION,
        "task": "video",
        "source": str(src),
        "image_size": image_size,
        "action_space": {"low": [], "high": [], "shape": [0]},
        "proprio_dim": 0,
        "state_dim": 0,
        "episodes": int(sum(len(n) for n in lengths)),
        "transitions": int(sum(n.sum() for n in lengths)),
        "chunks": chunks,
        "sha256": ds.file_digest([out / c / "pixels.npy" for c in chunks]),
    }
    ds.atomic_write_json(out / "meta.json", meta)
    return out


def _kept(out: Path) -> str:
    n = len(ds.completed_chunks(out)) if out.is_dir() else 0
    return f"{n} finished chunk(s) kept in {out}: rerun the same command to continue"


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
    except KeyboardInterrupt:
        print(f"interrupted: {_kept(a.out)}", file=sys.stderr)
        sys.exit(130)
    except (FileNotFoundError, FileExistsError, ValueError, OSError) as e:
        started = (a.out / "import.json").exists() and not isinstance(e, FileExistsError)
        print(f"error: {e}" + (f" ({_kept(a.out)})" if started else ""), file=sys.stderr)
        sys.exit(2)
    print(f"imported {out} (meta.json); use it with agent.train stage=pretrain extra_video=[{out}]")


if __name__ == "__main__":
    main()
