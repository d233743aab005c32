"""The training command under torchrun with DistributedDataParallel (gloo on CPU)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from agent import checkpoint

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_two_process_training_on_cpu(tiny_dataset, tmp_path):
    out = tmp_path / "run"
    _torchrun(tiny_dataset, out, "steps=4", "log_every=2", port=29533)
    manifest = checkpoint.read_manifest(out / "model.safetensors")
    assert manifest["step"] == 4
    rows = (out / "log.csv").read_text().splitlines()
    assert len(rows) == 3, "only rank 0 writes the log, once per log period"
    assert sorted(p.name for p in out.glob("state_*.json")) == [
        "state_00000002.json",
        "state_00000004.json",
    ]


def _torchrun(tiny_dataset, out, *extra, port):
    """Train under torchrun with 2 processes; on failure, say what each rank wrote last."""
    logs = Path(f"{out}.logs")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           f"--master_port={port}", f"--log-dir={logs}", "--redirects=3",
           "-m", "agent.train", f"data={tiny_dataset}", f"out={out}",
           "batch_size=8", "window=3", "model.width=8", "model.latent_dim=16",
           "checkpoint_every=2", "threads=1", *extra]  # fmt: skip
    env = dict(os.environ, MUJOCO_GL="egl", OMP_NUM_THREADS="1")
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    ranks = {
        p.parent.name: p.read_text()[-1500:]
        for p in sorted(logs.rglob("stderr.log"))  # <run>/attempt_0/<rank>/stderr.log
    }
    assert r.returncode == 0, f"{r.stderr[-1500:]}\n" + "\n".join(
        f"--- rank {k}:\n{v}" for k, v in ranks.items()
    )


@pytest.mark.slow
def test_a_resumed_two_process_run_continues_exactly(tiny_dataset, tmp_path):
    """Each process resumes its own batch sampler and RNG: before, both took rank 0's, drew
    the same batches after a resume and ended elsewhere than the run that was not stopped."""
    from safetensors.torch import load_file

    _torchrun(tiny_dataset, tmp_path / "a", "steps=4", port=29534)
    _torchrun(tiny_dataset, tmp_path / "b", "steps=2", port=29535)
    _torchrun(tiny_dataset, tmp_path / "b", "steps=4", "resume=true", port=29536)
    a, b = (load_file(str(tmp_path / r / "model.safetensors")) for r in ("a", "b"))
    for k in a:
        assert torch.equal(a[k], b[k]), k
