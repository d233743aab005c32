"""mp4 writing via imageio (atomic: a temp file renamed into place)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import imageio.v2 as imageio
import numpy as np


def upscale(frame: np.ndarray, factor: int) -> np.ndarray:
    return np.repeat(np.repeat(frame, factor, axis=0), factor, axis=1)


def write_mp4(
    path: str | os.PathLike, frames: list[np.ndarray], fps: int = 10, scale: int = 4
) -> None:
    """Write (H, W, 3) uint8 frames; sizes are padded to even numbers for H.264."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".mp4")
    os.close(fd)
    try:
        with imageio.get_writer(tmp, fps=fps, codec="libx264", macro_block_size=16) as w:
            for f in frames:
                w.append_data(upscale(f, scale))
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; the results beside it are 0644
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
