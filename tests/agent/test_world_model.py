"""World-model verbs, costs and checkpoint I/O."""

import json

import numpy as np
import pytest
import torch

from agent import checkpoint
from agent.model import ModelConfig, WorldModel
from agent.model.config import ENCODERS


@pytest.mark.parametrize("encoder", ENCODERS)
def test_verbs_have_documented_shapes(encoder):
    torch.manual_seed(0)
    cfg = ModelConfig(
        encoder=encoder,
        width=8,
        latent_dim=16,
        history=2,
        predictor_hidden=32,
        predictor_layers=1,
        action_dim=3,
    )
    m = WorldModel(cfg)
    px = torch.randint(0, 256, (4, 64, 64, 3), dtype=torch.uint8)
    z = m.encode(px)
    assert z.shape == (4, *m.latent_shape)
    hist = z[:2]  # (K, *latent)
    acts = torch.randn(5, 6, 3)  # (N, H, A)
    zs = m.rollout(hist, acts)
    assert zs.shape == (5, 6, *m.latent_shape)
    # rollout is next() applied step by step
    h = hist.expand(5, *hist.shape)
    z1 = m.next(h, acts[:, 0])
    z2 = m.next(torch.cat([h[:, 1:], z1[:, None]], 1), acts[:, 1])
    torch.testing.assert_close(zs[:, 1], z2)
    cost = m.latent_cost(zs, z[3])
    assert cost.shape == (5,)
    w = torch.full((6,), 1 / 6)
    assert m.latent_cost(zs, z[3], "l1", w).shape == (5,)
    assert m.proprio_cost(zs, torch.zeros(cfg.proprio_dim)).shape == (5,)
    assert m.decode(z[:1]).dtype == torch.uint8


def test_every_configurable_encoder_name_has_a_class_and_every_class_a_name():
    from agent.model.encoders import ENCODER_CLASSES

    assert tuple(ENCODER_CLASSES) == ENCODERS
    with pytest.raises(ValueError, match="model.encoder='resnet' is unknown: use one of conv"):
        ModelConfig(encoder="resnet")


def test_zero_cost_at_the_goal():
    m = WorldModel(ModelConfig(width=8, latent_dim=8))
    zg = torch.randn(8)
    zs = zg.expand(3, 4, 8).clone()
    assert torch.all(m.latent_cost(zs, zg) == 0)


def test_checkpoint_round_trip_and_refusals(tmp_path):
    torch.manual_seed(0)
    m = WorldModel(ModelConfig(width=8, latent_dim=8, predictor_hidden=16))
    path = checkpoint.save(tmp_path / "m", m, {"task": "point_mass", "step": 3})
    loaded, manifest = checkpoint.load(path, expect={"task": "point_mass"})
    for (k, a), (_, b) in zip(m.state_dict().items(), loaded.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, msg=k)
    assert manifest["step"] == 3 and manifest["model"]["latent_dim"] == 8
    with pytest.raises(checkpoint.CheckpointError, match="made for task='point_mass'"):
        checkpoint.load(path, expect={"task": "umaze"})
    with pytest.raises(checkpoint.CheckpointError, match="model.latent_dim=8"):
        checkpoint.load(path, expect={"model": {"latent_dim": 64}})
    with pytest.raises(checkpoint.CheckpointError, match="not found"):
        checkpoint.load(tmp_path / "missing.safetensors")
    # a manifest that does not describe the weights is refused, not silently half-loaded
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["model"]["predictor_hidden"] = 32
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(checkpoint.CheckpointError):
        checkpoint.load(path)
    # a torn weights file is reported clearly
    path.write_bytes(b"\x00" * 10)
    with pytest.raises(checkpoint.CheckpointError, match="unreadable|do not fit"):
        checkpoint.load(path)


def test_checkpoint_never_holds_pickles(tmp_path):
    m = WorldModel(ModelConfig(width=8, latent_dim=8, predictor_hidden=16))
    path = checkpoint.save(tmp_path / "m", m, {"task": "point_mass"})
    head = path.read_bytes()[:8]
    n = int.from_bytes(head, "little")
    header = json.loads(path.read_bytes()[8 : 8 + n])  # safetensors: JSON header + raw tensors
    assert all("dtype" in v for k, v in header.items() if k != "__metadata__")


def test_within_window_spread_ignores_per_episode_constants_but_batch_spread_does_not():
    from agent import losses

    g = torch.Generator().manual_seed(0)
    z = torch.randn(8, 4, 16, generator=g)  # (B, W, D)
    door = 10 * torch.randn(8, 1, 16, generator=g)  # one constant per window (episode)
    within = lambda x: losses.log_apart(x[:, 0], x[:, -1])  # noqa: E731
    assert torch.allclose(within(z + door), within(z))
    assert losses.log_spread((z + door)[:, 0]) < losses.log_spread(z[:, 0]) - 1.0
    same = losses.log_apart(z[:, 0], z[:, 0])
    assert same == pytest.approx(-np.log(1e-4), rel=1e-5)  # identical pairs: the maximum


def test_weights_of_another_checkpoint_beside_a_manifest_are_refused(tmp_path):
    """Weights copied under another checkpoint's manifest (same architecture) used to load
    and plan silently; their sha256 no longer matches the manifest's."""
    cfg = ModelConfig(width=8, latent_dim=16, predictor_hidden=32)
    a = checkpoint.save(tmp_path / "a.safetensors", WorldModel(cfg), {"task": "point_mass"})
    torch.manual_seed(1)
    b = checkpoint.save(tmp_path / "b.safetensors", WorldModel(cfg), {"task": "point_mass"})
    checkpoint.load(a)
    b.with_suffix(".safetensors").write_bytes(a.read_bytes())  # a's weights, b's manifest
    with pytest.raises(checkpoint.CheckpointError, match="do not match their manifest b.json"):
        checkpoint.load(b)


def test_loaded_sha_is_the_weights_digest_without_reading_them_again(tmp_path, monkeypatch):
    """What probes and policies record of their world model: the sha256 of the weights
    ``load`` read, taken from the manifest it checked them against."""
    cfg = ModelConfig(width=8, latent_dim=16, predictor_hidden=32)
    path = checkpoint.save(tmp_path / "m.safetensors", WorldModel(cfg), {"task": "point_mass"})
    want = checkpoint.digest(path)
    _, manifest = checkpoint.load(path)
    monkeypatch.setattr(checkpoint, "digest", lambda p: pytest.fail("read the weights again"))
    assert checkpoint.loaded_sha(path, manifest) == want
    monkeypatch.undo()
    del manifest["weights_sha256"]  # a manifest without one: the file's digest
    assert checkpoint.loaded_sha(path, manifest) == want


def test_proprio_r2_is_how_well_a_linear_readout_of_the_latent_tells_the_proprio():
    from agent import losses

    g = torch.Generator().manual_seed(0)
    n, m = 256, 1024  # batch rows, more rows for the readout's fit
    p = torch.randn(n + m, 4, generator=g)  # robot state
    cube = torch.randn(n + m, 3, generator=g)  # what the robot's state does not tell
    noise = torch.randn(n + m, 32, generator=g)
    arm = p[:, :3] @ torch.randn(3, 3, generator=g)  # latent entries that follow the robot
    hidden = torch.cat([cube, noise + 0.3 * arm @ torch.randn(3, 32, generator=g)], 1)

    def r2(z):  # batch rows first, fit rows after
        return losses.proprio_r2(z[:n], p[:n], z[n:], p[n:])

    assert r2(torch.cat([arm, cube, noise], 1)) == pytest.approx(0.75, abs=0.03)  # 3 of 4 told
    assert r2(torch.cat([cube, noise], 1)) < 0.05
    assert r2(hidden) > 0.5  # the robot spread thin over many entries is still read
    assert losses.proprio_r2(arm[:n], torch.ones(n, 4)) == 0.0  # a still robot tells nothing
    assert losses.proprio_r2(arm[:n], torch.ones(n, 0)) == 0.0  # no proprio (imported video)
    scaled = (3 * hidden[:n]).requires_grad_(True)  # blind to scale: no pull toward collapse
    losses.proprio_r2(scaled, p[:n], 3 * hidden[n:], p[n:]).backward()
    assert (scaled.grad * scaled).sum().abs() < 1e-4
    z = hidden.clone().requires_grad_(True)  # descent, the readout refit every step
    opt = torch.optim.Adam([z], lr=0.02)
    for _ in range(150):
        opt.zero_grad()
        losses.proprio_r2(z, p).backward()  # fit on all rows
        opt.step()
    assert r2(z.detach()) < 0.2 * r2(hidden)
    kept = torch.corrcoef(torch.cat([z.detach()[:, :3], cube], 1).T)[:3, 3:].diagonal()
    assert (kept > 0.9).all()  # the cube's entries stay
