import numpy as np
import torch

from agent.metrics import probe_r2, probe_r2_dims, rank_correlation


def test_within_episode_ranking_sees_through_a_per_episode_constant():
    """Latent = position + a large per-episode offset (two_room's door): ranking across
    episodes is poor, ranking within one episode is perfect."""
    rng = np.random.default_rng(0)
    episode = np.repeat(np.arange(20), 50)
    state = rng.uniform(-1, 1, (len(episode), 2))
    offset = 20 * rng.standard_normal((20, 8))[episode]
    z = torch.tensor(np.c_[state, np.zeros((len(episode), 6))] + offset)
    dist = lambda a, b: np.linalg.norm(a - b, axis=-1)  # noqa: E731
    r = rank_correlation(z, state, dist, episode=episode)
    assert r["within"] > 0.95 and r["all"] < 0.3
    assert "within" not in rank_correlation(z, state, dist)


def test_probe_r2_per_dimension_names_the_factor_the_latent_lacks():
    """State = (encoded, unencoded, constant): R^2 near 1, near 0, None; the mean skips None."""
    rng = np.random.default_rng(0)
    s = np.c_[rng.uniform(-1, 1, (2000, 2)), np.ones(2000)]
    z = torch.tensor(np.c_[3 * s[:, :1] + 1, rng.standard_normal((2000, 7))])
    dims = probe_r2_dims(z[:1500], s[:1500], z[1500:], s[1500:])
    assert dims[0] > 0.99 and abs(dims[1]) < 0.05 and dims[2] is None
    assert probe_r2(z[:1500], s[:1500], z[1500:], s[1500:]) == np.mean(dims[:2])
