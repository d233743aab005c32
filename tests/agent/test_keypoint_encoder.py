"""The keypoint encoder: a latent of image points (spatial soft-argmax)."""

import pytest
import torch
from torch import nn

from agent.model import ModelConfig, WorldModel
from agent.model.encoders import KeypointEncoder


def _dot(x: int, y: int) -> torch.Tensor:
    img = torch.zeros(1, 64, 64, 3, dtype=torch.uint8)
    img[0, y - 1 : y + 1, x - 1 : x + 1] = 255  # a white 2x2 dot at column x, row y
    return img


def test_each_point_is_the_soft_argmax_of_its_map_in_image_coordinates():
    enc = KeypointEncoder(ModelConfig(encoder="keypoints", width=8, latent_dim=4))
    # feature maps = brightness at half resolution, sharp: every point sits on the dot
    enc.net = nn.Sequential(nn.AvgPool2d(2), nn.Conv2d(3, 2, 1))
    with torch.no_grad():
        enc.net[1].weight.fill_(100.0)
        enc.net[1].bias.zero_()
    for x, y in [(10, 50), (48, 16), (32, 32)]:
        pts = enc(_dot(x, y)).reshape(2, 2)  # (points, xy)
        expected = torch.tensor([x, y], dtype=torch.float32) / 63.0 * 2 - 1
        torch.testing.assert_close(pts, expected.expand(2, 2), atol=0.05, rtol=0)


def test_with_two_views_each_point_is_found_within_its_own_view():
    """model.views=2: the first half of the points look at the top view, the rest at the
    bottom one, each in its view's coordinates; a view with nothing in it puts its points at
    the view's centre, never on the other view's dot."""
    enc = KeypointEncoder(ModelConfig(encoder="keypoints", width=8, latent_dim=8, views=2))
    enc.net = nn.Sequential(nn.AvgPool2d(2), nn.Conv2d(3, 4, 1))
    with torch.no_grad():
        enc.net[1].weight.fill_(100.0)
        enc.net[1].bias.zero_()
    for x, y, view in [(10, 10, 0), (48, 50, 1), (30, 20, 0)]:
        pts = enc(_dot(x, y)).reshape(2, 2, 2)  # (view, point, xy)
        row = y - 32 * view  # the dot's row within its view (32 rows high)
        expected = torch.tensor([x / 63.0, row / 31.0]) * 2 - 1
        torch.testing.assert_close(pts[view], expected.expand(2, 2), atol=0.08, rtol=0)
        torch.testing.assert_close(pts[1 - view], torch.zeros(2, 2), atol=1e-5, rtol=0)


def test_views_are_refused_where_they_cannot_apply():
    with pytest.raises(ValueError, match="model.encoder=keypoints"):
        ModelConfig(encoder="conv", views=2)
    with pytest.raises(ValueError, match="must divide the points"):
        ModelConfig(encoder="keypoints", latent_dim=64, views=3)


def test_points_stay_in_the_image_and_follow_what_moves():
    torch.manual_seed(0)
    m = WorldModel(ModelConfig(encoder="keypoints", width=8, latent_dim=16))
    z = m.encode(torch.cat([_dot(10, 10), _dot(50, 50)]))
    assert z.shape == (2, 16) and z.abs().max() <= 1.0
    assert not torch.allclose(z[0], z[1])  # random features already see the dot move


def test_odd_latent_dim_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="must be even"):
        ModelConfig(encoder="keypoints", latent_dim=15)


def test_proprio_state_works_with_the_keypoint_latent():
    cfg = ModelConfig(encoder="keypoints", width=8, latent_dim=8, proprio_state=True)
    m = WorldModel(cfg)
    z = m.encode(_dot(20, 20), proprio=torch.zeros(1, cfg.proprio_dim))
    assert z.shape == (1, 8 + cfg.proprio_dim)


def test_every_model_config_group_builds_its_model():
    import pathlib

    import yaml

    root = pathlib.Path(__file__).resolve().parents[2] / "configs" / "model"
    names = sorted(p.stem for p in root.glob("*.yaml"))
    assert names == ["conv", "keypoints", "vit"]
    for name in names:
        cfg = ModelConfig(**{**yaml.safe_load((root / f"{name}.yaml").read_text()), "width": 8})
        z = WorldModel(cfg).encode(_dot(30, 30))
        assert cfg.encoder == name and z.shape[-1] == cfg.latent_dim
