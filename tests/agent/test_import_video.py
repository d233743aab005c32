"""Bring-your-own video joins pretraining."""

import numpy as np
import pytest

from agent import checkpoint
from agent.dataset import Dataset
from agent.import_video import import_video
from agent.model import ModelConfig
from agent.trainer import TrainConfig, Trainer
from agent.video import write_mp4


@pytest.fixture
def video_folder(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (48, 80, 3), dtype=np.uint8) for _ in range(6)]
    write_mp4(src / "a.mp4", frames, scale=1)
    sub = src / "ep2"
    sub.mkdir()
    import imageio.v2 as imageio

    for i in range(4):
        imageio.imwrite(sub / f"{i:03d}.png", frames[i])
    return src


def test_import_then_pretrain_with_extra_video(video_folder, tiny_dataset, tmp_path):
    out = import_video(video_folder, tmp_path / "vid", image_size=64)
    data = Dataset(out)
    assert data.episodes == 2
    ep = next(data.iter_episodes())
    assert ep["pixels"].shape[1:] == (64, 64, 3) and ep["actions"].shape[1] == 0
    cfg = TrainConfig(
        data=str(tiny_dataset),
        out=str(tmp_path / "run"),
        steps=3,
        batch_size=8,
        window=2,
        checkpoint_every=3,
        log_every=3,
        threads=1,
        model=ModelConfig(width=8, latent_dim=16, predictor_hidden=32),
        extra_video=[str(out)],
    )
    trainer = Trainer(cfg)
    assert len(trainer.pool) > len(trainer.train)
    path = trainer.fit()
    manifest = checkpoint.read_manifest(path)
    assert manifest["extra_video_sha256"] == {str(out): data.meta["sha256"]}
    with pytest.raises(FileExistsError):
        import_video(video_folder, out)


def test_extra_video_is_for_pretraining_only():
    with pytest.raises(ValueError, match="extra_video"):
        TrainConfig(stage="finetune", extra_video=["x"])
