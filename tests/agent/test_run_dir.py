"""An output folder that cannot be created is one error line at every Hydra entry point whose
run folder lives in it (Hydra's own failure there is a traceback)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("module", "key"),
    [("agent.evaluate", "output_dir"), ("agent.train_baseline", "output_dir"),
     ("agent.control", "loop.output_dir")],
)  # fmt: skip
def test_an_output_folder_that_cannot_be_created_is_one_error_line(tmp_path, module, key):
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    r = subprocess.run(
        [sys.executable, "-m", module, f"{key}={afile}"], capture_output=True, text=True
    )
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [
        f"error: cannot create the output folder {afile}/hydra (Not a directory): choose a "
        "writable output folder (output_dir=, or loop.output_dir= for agent.control)"
    ]
    assert afile.read_text() == "not a folder"
