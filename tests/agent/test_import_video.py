"""Bring-your-own video joins pretraining."""

from pathlib import Path

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


def _frames(folder, values, dtype=np.uint8, shape=(20, 30)):
    """Uniform frames ``frame0.png, frame1.png, ...`` (unpadded names) of the given values."""
    import imageio.v2 as imageio

    folder.mkdir(parents=True)
    for i, v in enumerate(values):
        imageio.imwrite(folder / f"frame{i}.png", np.full(shape, v, dtype))


def test_greyscale_and_16_bit_frames_import_as_8_bit_rgb(tmp_path):
    _frames(tmp_path / "src" / "a8", [37, 38, 39])
    _frames(tmp_path / "src" / "b16", [257 * 100, 257 * 200, 65535], dtype=np.uint16)
    eps = list(Dataset(import_video(tmp_path / "src", tmp_path / "out")).iter_episodes())
    assert [e["pixels"].shape for e in eps] == [(3, 64, 64, 3)] * 2
    assert all(e["pixels"].dtype == np.uint8 for e in eps)
    assert eps[0]["pixels"][:, 0, 0].tolist() == [[37] * 3, [38] * 3, [39] * 3]
    assert eps[1]["pixels"][:, 0, 0].tolist() == [[100] * 3, [200] * 3, [255] * 3]


def test_frames_and_episode_folders_keep_their_numeric_order(tmp_path):
    values = [10 * i for i in range(12)]  # frame0 .. frame11: string order would be 0,1,10,..
    _frames(tmp_path / "src" / "ep10", [250] * 2, shape=(20, 30, 3))
    _frames(tmp_path / "src" / "ep2", values, shape=(20, 30, 3))
    eps = list(Dataset(import_video(tmp_path / "src", tmp_path / "out")).iter_episodes())
    assert eps[0]["pixels"][:, 0, 0, 0].tolist() == values  # ep2 before ep10, frames in order
    assert eps[1]["pixels"][:, 0, 0, 0].tolist() == [250, 250]
    from agent.import_video import natural_key  # mp4 files sort the same way

    names = ["run10.mp4", "run9.mp4", "Run1.mp4", "run01.mp4"]
    assert sorted(names, key=lambda n: natural_key(Path(n))) == [
        "Run1.mp4", "run01.mp4", "run9.mp4", "run10.mp4"
    ]  # fmt: skip


@pytest.mark.parametrize(("name", "kind"), [("bad.png", "an image"), ("bad.mp4", "a video")])
def test_an_unreadable_file_is_named_in_one_error_line(name, kind, tmp_path, capsys):
    from agent.import_video import main

    _frames(tmp_path / "src", [1, 2, 3], shape=(20, 30, 3))
    (tmp_path / "src" / name).write_text("not a picture")
    with pytest.raises(SystemExit) as e:
        main(["--src", str(tmp_path / "src"), "--out", str(tmp_path / "out")])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: cannot read {tmp_path / 'src' / name} ")
    assert f"as {kind} (" in err[0] and err[0].endswith("): remove or replace it")
    assert "pip install" not in err[0]
    assert not (tmp_path / "out").exists()  # nothing written


def test_an_interrupted_import_continues_where_it_stopped_and_ends_alike(tmp_path, monkeypatch):
    import json

    from agent import dataset as ds

    for e in range(5):
        _frames(tmp_path / "src" / f"ep{e}", [10 * e, 10 * e + 1, 10 * e + 2], shape=(20, 30, 3))
    whole = import_video(tmp_path / "src", tmp_path / "whole", chunk_size=2)

    real, calls = ds.write_chunk, []

    def stop_at_the_second(*args, **kwargs):
        calls.append(args[1])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(ds, "write_chunk", stop_at_the_second)
    with pytest.raises(KeyboardInterrupt):
        import_video(tmp_path / "src", tmp_path / "out", chunk_size=2)
    monkeypatch.setattr(ds, "write_chunk", real)
    out = tmp_path / "out"
    assert not (out / "meta.json").exists() and ds.completed_chunks(out) == [0]
    assert not list(out.glob(".chunk_*"))  # no half-written chunk left behind
    with pytest.raises(FileExistsError, match="unfinished import of other files or settings"):
        import_video(tmp_path / "src", out, image_size=32, chunk_size=2)
    import_video(tmp_path / "src", out, chunk_size=2)  # the same command: continues
    a, b = (json.loads((d / "meta.json").read_text()) for d in (whole, out))
    assert a["sha256"] == b["sha256"] and a["episodes"] == b["episodes"] == 5
    assert [e["pixels"][:, 0, 0, 0].tolist() for e in Dataset(out).iter_episodes()] == [
        [10 * e, 10 * e + 1, 10 * e + 2] for e in range(5)
    ]


def test_ctrl_c_says_what_was_kept_and_how_to_continue(tmp_path, monkeypatch, capsys):
    from agent import import_video as iv

    _frames(tmp_path / "src" / "ep0", [1, 2, 3], shape=(20, 30, 3))

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(iv, "frames_of", interrupted)
    with pytest.raises(SystemExit) as e:
        iv.main(["--src", str(tmp_path / "src"), "--out", str(tmp_path / "out")])
    assert e.value.code == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"interrupted: 0 finished chunk(s) kept in {tmp_path / 'out'}: rerun the same command "
        "to continue"
    ]
