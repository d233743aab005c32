"""model.decoder=heatmaps: keypoints drawn as Gaussian blobs where they sit."""

from dataclasses import replace

import pytest
import torch

from agent import checkpoint
from agent.model import ModelConfig
from agent.model.encoders import ConvDecoder, HeatmapDecoder

KP = ModelConfig(encoder="keypoints", width=8, latent_dim=16, decoder="heatmaps")


def _pixel(x: float, y: float, rows: int = 32) -> tuple[int, int]:
    """Grid cell (row, column) of a point in [-1, 1] coordinates on a rows x 32 grid."""
    return round((y + 1) / 2 * (rows - 1)), round((x + 1) / 2 * 31)


def test_each_point_is_a_blob_at_its_place():
    dec = HeatmapDecoder(KP)
    z = torch.tensor([[-0.5, 0.5, 0.8, -0.8] + [0.0] * 12])
    maps = dec.heatmaps(z)
    assert maps.shape == (1, 8, 32, 32) and maps.max() <= 1.0
    for k, (x, y) in enumerate([(-0.5, 0.5), (0.8, -0.8)]):
        assert divmod(int(maps[0, k].argmax()), 32) == _pixel(x, y)


def test_with_two_views_each_blob_is_drawn_in_its_own_view_only():
    dec = HeatmapDecoder(replace(KP, views=2))
    z = torch.tensor([0.3, -0.4]).repeat(1, 8)  # every point at one place of its own view
    maps = dec.heatmaps(z)[0]  # (8, 32, 32): points 0-3 in the top view, 4-7 below
    assert maps[:4, 16:].abs().max() == 0 and maps[4:, :16].abs().max() == 0
    row, col = _pixel(0.3, -0.4, rows=16)
    assert divmod(int(maps[0].argmax()), 32) == (row, col)
    assert divmod(int(maps[4].argmax()), 32) == (row + 16, col)


def test_moving_a_point_redraws_the_picture_where_it_was_and_where_it_went():
    """What makes the decoder pay a point for a small object: its effect is local, so the
    gradient of a 4-pixel cube's error reaches the point near the cube (a linear layer from
    coordinates to the picture spreads it over the whole image)."""
    torch.manual_seed(0)
    dec = HeatmapDecoder(KP)
    z = torch.rand(1, 16) * 0.4 - 0.8  # the other points in the top-left corner
    a, b = z.clone(), z.clone()
    a[0, :2] = torch.tensor([0.5, 0.5])
    b[0, :2] = torch.tensor([0.5, -0.5])
    with torch.no_grad():
        change = (dec(a) - dec(b)).abs().sum(-1)[0]  # (64, 64)
    ys, xs = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")

    def within(x: float, y: float, r: float) -> torch.Tensor:
        return ((xs - (x + 1) * 31.5) ** 2 + (ys - (y + 1) * 31.5) ** 2).sqrt() < r

    near_a, near_b = within(0.5, 0.5, 8), within(0.5, -0.5, 8)
    far = ~within(0.5, 0.5, 24) & ~within(0.5, -0.5, 24)
    assert change[near_a].mean() > 20 * change[far].mean()
    assert change[near_b].mean() > 20 * change[far].mean()


@pytest.mark.parametrize("kw", [{"encoder": "conv"}, {"encoder": "vit"}, {"decoder_proprio": True}])
def test_heatmaps_are_refused_where_there_are_no_points_to_draw(kw):
    with pytest.raises(ValueError, match="model.decoder=heatmaps draws keypoints"):
        replace(KP, **kw)
    with pytest.raises(ValueError, match="model.decoder='pixels' is unknown"):
        replace(KP, decoder="pixels")


def test_a_heatmap_pretrain_saves_and_loads_its_decoder(tiny_dataset, tmp_path):
    from agent.objectives import LossWeights
    from agent.trainer import TrainConfig, Trainer

    cfg = replace(KP, predictor_hidden=32, predictor_layers=1)
    base = dict(data=str(tiny_dataset), batch_size=8, window=2, checkpoint_every=3, threads=1)
    pre = TrainConfig(
        out=str(tmp_path / "pre"),
        model=cfg,
        weights=LossWeights(reconstruct=100.0),
        steps=3,
        **base,
    )
    path = Trainer(pre).fit()
    model, manifest = checkpoint.load(path)
    assert manifest["model"]["decoder"] == "heatmaps" and isinstance(model.decoder, HeatmapDecoder)
    pictures = model.decode(model.encode(torch.zeros(2, 64, 64, 3, dtype=torch.uint8)))
    assert pictures.shape == (2, 64, 64, 3)
    # the finetune takes the encoder, with the decoder its own config names
    ft = TrainConfig(
        out=str(tmp_path / "ft"),
        model=replace(cfg, decoder="conv"),
        stage="finetune",
        init=str(path),
        steps=2,
        **base,
    )
    assert isinstance(Trainer(ft).model.decoder, ConvDecoder)
